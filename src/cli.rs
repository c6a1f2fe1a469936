//! The command line: commands and flags, each flag also read from an
//! environment variable `GLOBALDNS_<FLAG>`, and every value typed and
//! checked here, at the door.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::controller::Settings;
use crate::dns::server::TcpLimits;
use crate::k8s::sync::SyncConfig;
use crate::names;
use crate::registry::brake::BrakeConfig;
use crate::serve::{ServeConfig, Source};
use crate::vip::{self, Allocator, Family, VipRange};

#[derive(Debug, Parser)]
#[command(
    name = "globaldns",
    version,
    about = "Authoritative DNS and stable VIPs for the .global names of a multi-cluster Istio mesh"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve DNS for the registry's hosts, re-reading the registry on change.
    Serve(Box<ServeArgs>),
    /// Validate a registry file and summarise it; exit 1 listing every problem.
    Check(CheckArgs),
    /// Print the zones as a master file (RFC 1035 §5), with the VIPs a server
    /// on the same state directory would give; for other DNS servers and diffs.
    Zonefile(SnapshotArgs),
    /// Print the Istio ServiceEntries a cluster needs, as YAML documents
    /// ready for `kubectl apply -f -` or a GitOps repository.
    Render(RenderArgs),
    /// Print the CustomResourceDefinitions of the registry resources
    /// (MeshCluster, ExportedService); `manifests/crds.yaml` is this output.
    Crds,
    /// Explain a name, asking a running server's admin endpoint: served or
    /// not and why, its VIPs, the clusters and gateways behind it, its
    /// ServiceEntry, and any conflict.
    Explain(ExplainArgs),
    /// Print the cluster DNS wiring for the served zones: kube-dns
    /// `stubDomains` and CoreDNS server blocks pointing at globaldns.
    StubConfig(StubConfigArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Registry file (YAML or JSON), or `kubernetes` to watch the
    /// MeshCluster and ExportedService resources.
    #[arg(long, env = "GLOBALDNS_REGISTRY", value_name = "FILE|kubernetes")]
    pub registry: PathBuf,
    /// Namespace of the registry resources [default: the pod's own, or the
    /// kubeconfig context's].
    #[arg(long, env = "GLOBALDNS_KUBE_NAMESPACE", value_name = "NAMESPACE")]
    pub kube_namespace: Option<String>,
    /// Address to serve DNS on, UDP and TCP alike. Port 0 picks a free port.
    #[arg(
        long,
        env = "GLOBALDNS_LISTEN",
        value_name = "ADDR:PORT",
        default_value = "127.0.0.1:5353"
    )]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub serving: ServingArgs,
    /// Directory for the allocation table and the last-known-good registry
    /// [default: FILE.state next to the registry file].
    #[arg(long, env = "GLOBALDNS_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// How often the registry file is checked for changes.
    #[arg(
        long,
        env = "GLOBALDNS_RELOAD_INTERVAL",
        value_name = "DURATION",
        default_value = "250ms"
    )]
    pub reload_interval: Interval,
    /// TCP connections served at once; more are closed on accept.
    #[arg(long, env = "GLOBALDNS_TCP_MAX_CONNECTIONS", value_name = "N", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub tcp_max_connections: u32,
    /// How long a TCP connection may stay idle.
    #[arg(
        long,
        env = "GLOBALDNS_TCP_IDLE_TIMEOUT",
        value_name = "DURATION",
        default_value = "10s"
    )]
    pub tcp_idle_timeout: Interval,
    /// UDP worker threads, each with its own socket on the listening port
    /// (SO_REUSEPORT) [default: one per CPU].
    #[arg(long, env = "GLOBALDNS_UDP_WORKERS", value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub udp_workers: Option<u16>,
    /// Serve /metrics, /healthz and /readyz here [default: off].
    #[arg(long, env = "GLOBALDNS_ADMIN", value_name = "ADDR:PORT")]
    pub admin: Option<std::net::SocketAddr>,
    /// On SIGTERM, keep answering this long with /readyz false before
    /// stopping (set it to cover endpoint removal, e.g. 5s, in Kubernetes).
    #[arg(
        long,
        env = "GLOBALDNS_DRAIN_DELAY",
        value_name = "DURATION",
        default_value = "0s"
    )]
    pub drain_delay: Interval,
    /// Also answer the CoreDNS `grpc` plugin protocol here (for a Corefile
    /// with `grpc global ADDR:PORT`, as istiocoredns has) [default: off].
    #[arg(long, env = "GLOBALDNS_GRPC", value_name = "ADDR:PORT")]
    pub grpc: Option<std::net::SocketAddr>,
    /// Also answer the hosts of the ServiceEntries already in the cluster
    /// that globaldns does not own (drop-in mode; the registry wins a host
    /// both claim).
    #[arg(long, env = "GLOBALDNS_SERVE_SERVICE_ENTRIES")]
    pub serve_service_entries: bool,
    /// Keep this cluster's ServiceEntries in step with the registry
    /// (server-side apply, prune of owned ones; only the Lease holder writes).
    #[arg(long, env = "GLOBALDNS_SYNC_SERVICE_ENTRIES", requires = "cluster")]
    pub sync_service_entries: bool,
    /// The cluster this server runs in, as named in the registry.
    #[arg(long, env = "GLOBALDNS_CLUSTER", value_name = "NAME")]
    pub cluster: Option<String>,
    #[command(flatten)]
    pub mesh: MeshArgs,
    /// Namespace of the synced Istio objects (ServiceEntries, Gateway,
    /// DestinationRules).
    #[arg(
        long,
        env = "GLOBALDNS_SERVICE_ENTRY_NAMESPACE",
        value_name = "NAMESPACE",
        default_value = "istio-system"
    )]
    pub service_entry_namespace: String,
    /// Largest share of the owned ServiceEntries one sync pass may delete;
    /// a pass that would delete more deletes none and says so.
    #[arg(long, env = "GLOBALDNS_DELETE_BRAKE", value_name = "FRACTION", default_value_t = 0.5, value_parser = parse_fraction)]
    pub delete_brake: f64,
    /// A full sync pass at least this often, to repair drift.
    #[arg(
        long,
        env = "GLOBALDNS_RESYNC_INTERVAL",
        value_name = "DURATION",
        default_value = "5m"
    )]
    pub resync_interval: Interval,
    /// Writes of a sync pass in flight at once.
    #[arg(long, env = "GLOBALDNS_SYNC_CONCURRENCY", value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub sync_concurrency: u16,
    /// Writes of a sync pass started per second at most (0: no cap); a 429
    /// from the API server is waited out whatever this says.
    #[arg(long, env = "GLOBALDNS_SYNC_QPS", value_name = "N", default_value_t = 0.0, value_parser = parse_rate)]
    pub sync_qps: f64,
    #[command(flatten)]
    pub brake: BrakeArgs,
}

/// The shrink brake on registry versions (file and Kubernetes alike).
#[derive(Debug, Args)]
pub struct BrakeArgs {
    /// Largest share of the served services one registry version may remove
    /// and still be published at once; a version removing more is held
    /// until it has stayed unchanged for --shrink-hold (1 turns it off).
    #[arg(long, env = "GLOBALDNS_SHRINK_BRAKE", value_name = "FRACTION", default_value_t = 0.5, value_parser = parse_fraction)]
    pub shrink_brake: f64,
    /// How long a version held by the shrink brake must stay unchanged
    /// before it is published.
    #[arg(
        long,
        env = "GLOBALDNS_SHRINK_HOLD",
        value_name = "DURATION",
        default_value = "30s"
    )]
    pub shrink_hold: Interval,
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(r) if r >= 0.0 && r.is_finite() => Ok(r),
        _ => Err(format!(
            "`{text}` is not a rate (writes per second, 0 for no cap)"
        )),
    }
}

fn parse_fraction(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        _ => Err(format!("`{text}` is not a fraction between 0 and 1")),
    }
}

/// What decides the served names and addresses: shared by `serve` and
/// `zonefile` so both see the same zones.
#[derive(Debug, Args)]
pub struct ServingArgs {
    #[command(flatten)]
    pub zones: ZoneArgs,
    /// IPv4 range VIPs are allocated from.
    #[arg(long, env = "GLOBALDNS_VIP_RANGE", value_name = "CIDR", default_value = vip::DEFAULT_V4_RANGE, value_parser = parse_v4_range)]
    pub vip_range: VipRange,
    /// IPv6 range VIPs are allocated from; without it, no IPv6 VIPs.
    #[arg(long, env = "GLOBALDNS_VIP_RANGE_V6", value_name = "CIDR", value_parser = parse_v6_range)]
    pub vip_range_v6: Option<VipRange>,
    /// TTL of answers, and of negative answers (the SOA minimum), in seconds.
    #[arg(
        long,
        env = "GLOBALDNS_TTL",
        value_name = "SECONDS",
        default_value_t = 30
    )]
    pub ttl: u32,
    /// How long a released VIP is held back before another host may get it.
    #[arg(
        long,
        env = "GLOBALDNS_QUARANTINE",
        value_name = "DURATION",
        default_value = "10m"
    )]
    pub quarantine: Interval,
    /// An address this server is reached at, answered for the zones' name
    /// server `ns.<zone>` (A/AAAA); repeat for several [default: the
    /// --listen address, or 127.0.0.1 when that is a wildcard].
    #[arg(
        long = "ns-address",
        env = "GLOBALDNS_NS_ADDRESS",
        value_name = "IP",
        value_delimiter = ','
    )]
    pub ns_addresses: Vec<std::net::IpAddr>,
}

/// The served zones.
#[derive(Debug, Args)]
pub struct ZoneArgs {
    /// Zone to serve; repeat for several (`--zone global --zone region`).
    /// Services' hosts are `<name>.<namespace>.<zone>`.
    #[arg(long = "zone", env = "GLOBALDNS_ZONE", value_name = "ZONE", default_value = "global", value_delimiter = ',', value_parser = parse_zone)]
    pub zones: Vec<String>,
}

/// What shapes the Istio objects (`serve --sync-service-entries` and
/// `render` alike).
#[derive(Debug, Args)]
pub struct MeshArgs {
    /// The local cluster's DNS domain: its own exports' endpoint is
    /// `<name>.<namespace>.svc.<domain>`.
    #[arg(
        long,
        env = "GLOBALDNS_CLUSTER_DOMAIN",
        value_name = "DOMAIN",
        default_value = crate::mesh::DEFAULT_CLUSTER_DOMAIN,
        value_parser = parse_cluster_domain
    )]
    pub cluster_domain: String,
    /// Labels of the east-west gateway's pods, for the Gateway that accepts
    /// the served zones' traffic: `key=value[,key=value]`.
    #[arg(
        long,
        env = "GLOBALDNS_GATEWAY_SELECTOR",
        value_name = "LABELS",
        default_value = "istio=eastwestgateway",
        value_parser = parse_selector
    )]
    pub gateway_selector: Selector,
    /// Also write a DestinationRule `*.<zone>` with ISTIO_MUTUAL per zone
    /// (for installs with auto mTLS turned off).
    #[arg(long, env = "GLOBALDNS_DESTINATION_RULES")]
    pub destination_rules: bool,
}

/// Pod labels to select, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector(pub std::collections::BTreeMap<String, String>);

fn parse_selector(text: &str) -> Result<Selector, String> {
    let mut labels = std::collections::BTreeMap::new();
    for pair in text.split(',') {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(format!("`{pair}` is not key=value"));
        };
        names::label_key(key).map_err(|e| format!("`{key}` is not a label key: {e}"))?;
        names::label_value(value).map_err(|e| format!("`{value}` is not a label value: {e}"))?;
        labels.insert(key.to_string(), value.to_string());
    }
    Ok(Selector(labels))
}

fn parse_cluster_domain(text: &str) -> Result<String, String> {
    let domain = text.trim_end_matches('.').to_ascii_lowercase();
    names::dns1123_subdomain(&domain).map_err(|e| format!("`{text}` is not a DNS domain: {e}"))?;
    Ok(domain)
}

impl MeshArgs {
    /// The render target for `cluster`, objects in `namespace`.
    pub fn target(&self, cluster: &str, namespace: &str) -> crate::mesh::Target {
        crate::mesh::Target {
            cluster: cluster.to_string(),
            namespace: namespace.to_string(),
            cluster_domain: self.cluster_domain.clone(),
            gateway_selector: self.gateway_selector.0.clone(),
            destination_rules: self.destination_rules,
        }
    }
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Registry file (YAML or JSON).
    #[arg(
        long,
        env = "GLOBALDNS_REGISTRY",
        value_name = "FILE",
        required_unless_present = "file"
    )]
    pub registry: Option<PathBuf>,
    /// The registry file, given without `--registry` (as earlier versions
    /// took it).
    #[arg(value_name = "FILE", conflicts_with = "registry", hide = true)]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub zones: ZoneArgs,
}

impl CheckArgs {
    /// The registry file, however it was given.
    pub fn path(&self) -> &Path {
        self.registry
            .as_deref()
            .or(self.file.as_deref())
            .expect("clap requires one of them")
    }
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The name to explain, e.g. httpbin.bar.global.
    pub name: String,
    /// The server's admin endpoint.
    #[arg(
        long,
        env = "GLOBALDNS_ADMIN",
        value_name = "ADDR:PORT",
        default_value = "127.0.0.1:9153"
    )]
    pub admin: std::net::SocketAddr,
}

#[derive(Debug, Args)]
pub struct StubConfigArgs {
    #[command(flatten)]
    pub zones: ZoneArgs,
    /// globaldns' address; without it, the ClusterIP of `--service` is read
    /// from the API server.
    #[arg(long, value_name = "IP", conflicts_with = "service")]
    pub ip: Option<std::net::IpAddr>,
    /// The Service in front of globaldns, as NAMESPACE/NAME.
    #[arg(
        long,
        value_name = "NAMESPACE/NAME",
        default_value = "globaldns/globaldns"
    )]
    pub service: String,
    /// The Service's DNS port.
    #[arg(long, value_name = "PORT", default_value_t = 53)]
    pub port: u16,
    /// Which wiring to print.
    #[arg(long = "for", value_enum, default_value = "both")]
    pub target: crate::k8s::stub::Target,
}

/// What decides a snapshot outside a server: the registry, the serving
/// flags, and optionally the state directory VIPs are taken from.
#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// Registry file (YAML or JSON).
    #[arg(long, env = "GLOBALDNS_REGISTRY", value_name = "FILE")]
    pub registry: PathBuf,
    #[command(flatten)]
    pub serving: ServingArgs,
    /// State directory to take existing VIPs from (read only); without it,
    /// the VIPs a server starting from an empty state would give.
    #[arg(long, env = "GLOBALDNS_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub snapshot: SnapshotArgs,
    /// The cluster the ServiceEntries are for (its own exports get the
    /// local endpoint; the others' go through their gateways).
    #[arg(long, env = "GLOBALDNS_CLUSTER", value_name = "NAME")]
    pub cluster: String,
    /// Namespace of the ServiceEntries (as `serve` names it; `--namespace`
    /// is an older spelling, still taken).
    #[arg(
        long,
        alias = "namespace",
        env = "GLOBALDNS_SERVICE_ENTRY_NAMESPACE",
        value_name = "NAMESPACE",
        default_value = "istio-system"
    )]
    pub service_entry_namespace: String,
    #[command(flatten)]
    pub mesh: MeshArgs,
}

/// A duration: `250ms`, `30s`, `10m`, `1h`, or plain seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interval(pub Duration);

impl FromStr for Interval {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (digits, unit) = s.split_at(split);
        let n: u64 = digits
            .parse()
            .map_err(|_| format!("`{s}` is not a duration (try 250ms, 30s, 10m or 1h)"))?;
        let millis = match unit {
            "ms" => Some(n),
            "" | "s" => n.checked_mul(1000),
            "m" => n.checked_mul(60_000),
            "h" => n.checked_mul(3_600_000),
            _ => {
                return Err(format!(
                    "`{s}` has unknown unit `{unit}` (use ms, s, m or h)"
                ));
            }
        };
        millis
            .map(|ms| Interval(Duration::from_millis(ms)))
            .ok_or_else(|| format!("`{s}` is too long"))
    }
}

fn parse_zone(s: &str) -> Result<String, String> {
    names::zone(s).map_err(|e| format!("`{s}` is not a valid zone: {e}"))
}

fn parse_v4_range(s: &str) -> Result<VipRange, String> {
    parse_range(s, Family::V4)
}

fn parse_v6_range(s: &str) -> Result<VipRange, String> {
    parse_range(s, Family::V6)
}

fn parse_range(s: &str, family: Family) -> Result<VipRange, String> {
    let net = s
        .parse()
        .map_err(|_| format!("`{s}` is not a CIDR range"))?;
    VipRange::new(net, family).map_err(|e| e.to_string())
}

/// Zones must be distinct and must not nest: a host of one would otherwise
/// also be a name inside the other.
fn check_zones(zones: &[String]) -> Result<(), String> {
    for (i, a) in zones.iter().enumerate() {
        for b in &zones[i + 1..] {
            if a == b {
                return Err(format!("--zone {a} is given twice"));
            }
            if a.ends_with(&format!(".{b}")) || b.ends_with(&format!(".{a}")) {
                return Err(format!("--zone {a} and --zone {b} nest; serve one of them"));
            }
        }
    }
    Ok(())
}

impl ZoneArgs {
    /// The zones, once checked to be distinct and not nested.
    pub fn checked(&self) -> Result<Vec<String>, String> {
        check_zones(&self.zones)?;
        Ok(self.zones.clone())
    }
}

impl ServingArgs {
    /// The settings, for a server listening on `listen` (`None`: printing
    /// only). The name server's address defaults to where the server
    /// listens, when that is one address; a wildcard says nothing about
    /// how clients reach it, so then 127.0.0.1 (where `dig` and a local
    /// resolver find it): set --ns-address to the Service's address.
    pub fn settings(&self, listen: Option<SocketAddr>) -> Result<Settings, String> {
        let ns_addresses = if self.ns_addresses.is_empty() {
            let ip = listen
                .map(|l| l.ip())
                .filter(|ip| !ip.is_unspecified())
                .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into());
            vec![ip]
        } else {
            self.ns_addresses.clone()
        };
        Ok(Settings {
            zones: self.zones.checked()?,
            ttl: self.ttl,
            allocator: Allocator {
                v4: self.vip_range,
                v6: self.vip_range_v6,
                quarantine: self.quarantine.0.as_secs(),
            },
            ns_addresses,
        })
    }
}

/// The default state directory: `<registry file>.state`, beside it.
pub fn default_state_dir(registry: &Path) -> PathBuf {
    let mut name = registry.file_name().unwrap_or_default().to_os_string();
    name.push(".state");
    registry.with_file_name(name)
}

/// The `--registry` value that selects the Kubernetes source. (A file of
/// that name is still reachable as `./kubernetes`.)
pub const KUBERNETES: &str = "kubernetes";

impl ServeArgs {
    pub fn config(&self) -> Result<ServeConfig, String> {
        let kubernetes = self.registry.as_os_str() == KUBERNETES;
        let state_dir = match (&self.state_dir, kubernetes) {
            (Some(dir), _) => dir.clone(),
            (None, false) => default_state_dir(&self.registry),
            (None, true) => {
                return Err("--state-dir is required with --registry kubernetes".to_string());
            }
        };
        if !kubernetes && self.kube_namespace.is_some() {
            return Err("--kube-namespace applies only to --registry kubernetes".to_string());
        }
        let sync = self.sync_service_entries.then(|| SyncConfig {
            target: self.mesh.target(
                self.cluster.as_deref().unwrap_or_default(),
                &self.service_entry_namespace,
            ),
            brake: self.delete_brake,
            lease_name: "globaldns".to_string(),
            identity: ["POD_NAME", "HOSTNAME"]
                .iter()
                .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
                .unwrap_or_else(|| format!("globaldns-{}", std::process::id())),
            resync: self.resync_interval.0,
            limits: crate::k8s::sync::Limits {
                concurrency: usize::from(self.sync_concurrency),
                qps: (self.sync_qps > 0.0).then_some(self.sync_qps),
            },
        });
        Ok(ServeConfig {
            sync,
            grpc: self.grpc,
            admin: self.admin,
            drain_delay: self.drain_delay.0,
            serve_service_entries: self.serve_service_entries,
            registry: if kubernetes {
                Source::Kubernetes {
                    namespace: self.kube_namespace.clone(),
                }
            } else {
                Source::File(self.registry.clone())
            },
            listen: self.listen,
            state_dir,
            settings: self.serving.settings(Some(self.listen))?,
            brake: BrakeConfig {
                share: self.brake.shrink_brake,
                hold: self.brake.shrink_hold.0,
            },
            reload_interval: self.reload_interval.0.max(Duration::from_millis(10)),
            tcp: TcpLimits {
                max_connections: self.tcp_max_connections as usize,
                idle_timeout: self.tcp_idle_timeout.0,
            },
            udp_workers: self.udp_workers.map_or_else(
                || std::thread::available_parallelism().map_or(1, |n| n.get()),
                usize::from,
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations() {
        assert_eq!(
            "250ms".parse::<Interval>().unwrap().0,
            Duration::from_millis(250)
        );
        assert_eq!("30".parse::<Interval>().unwrap().0, Duration::from_secs(30));
        assert_eq!(
            "10m".parse::<Interval>().unwrap().0,
            Duration::from_secs(600)
        );
        assert_eq!(
            "1h".parse::<Interval>().unwrap().0,
            Duration::from_secs(3600)
        );
        assert!("10 minutes".parse::<Interval>().is_err());
        assert!("m".parse::<Interval>().is_err());
    }

    #[test]
    fn defaults_follow_the_issue() {
        let cli = Cli::try_parse_from(["globaldns", "serve", "--registry", "dir/r.yaml"]).unwrap();
        let Command::Serve(args) = cli.command else {
            panic!()
        };
        let config = args.config().unwrap();
        assert_eq!(config.listen, "127.0.0.1:5353".parse().unwrap());
        assert_eq!(config.settings.zones, ["global"]);
        assert_eq!(
            config.settings.allocator.v4.net().to_string(),
            "240.0.0.0/12"
        );
        assert!(config.settings.allocator.v6.is_none());
        assert_eq!(config.settings.allocator.quarantine, 600);
        assert_eq!(config.settings.ttl, 30);
        assert_eq!(config.state_dir, PathBuf::from("dir/r.yaml.state"));
        assert_eq!(config.registry, Source::File(PathBuf::from("dir/r.yaml")));
    }

    #[test]
    fn bad_flags_name_the_flag_and_the_value() {
        let err = Cli::try_parse_from([
            "globaldns",
            "serve",
            "--registry",
            "r",
            "--vip-range",
            "240.240.0.0/24",
        ])
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("--vip-range") && err.contains("240.240.0.0/24") && err.contains("Istio"),
            "{err}"
        );
        let err = Cli::try_parse_from(["globaldns", "serve", "--registry", "r", "--zone", "a..b"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--zone") && err.contains("a..b"), "{err}");
        let cli = Cli::try_parse_from([
            "globaldns",
            "serve",
            "--registry",
            "r",
            "--zone",
            "global",
            "--zone",
            "x.global",
        ])
        .unwrap();
        let Command::Serve(args) = cli.command else {
            panic!()
        };
        assert!(args.config().unwrap_err().contains("nest"));
    }

    #[test]
    fn registry_kubernetes_selects_the_watch_and_needs_a_state_dir() {
        let serve = |args: &[&str]| {
            let mut all = vec!["globaldns", "serve", "--registry"];
            all.extend_from_slice(args);
            let Command::Serve(args) = Cli::try_parse_from(all).unwrap().command else {
                panic!()
            };
            args.config()
        };
        assert_eq!(
            serve(&["kubernetes"]).unwrap_err(),
            "--state-dir is required with --registry kubernetes"
        );
        let config = serve(&[
            "kubernetes",
            "--state-dir",
            "/var/lib/globaldns",
            "--kube-namespace",
            "mesh",
        ])
        .unwrap();
        assert_eq!(
            config.registry,
            Source::Kubernetes {
                namespace: Some("mesh".to_string())
            }
        );
        let config = serve(&["./kubernetes"]).unwrap();
        assert_eq!(config.registry, Source::File(PathBuf::from("./kubernetes")));
        assert_eq!(
            serve(&["r.yaml", "--kube-namespace", "mesh"]).unwrap_err(),
            "--kube-namespace applies only to --registry kubernetes"
        );
    }
}
