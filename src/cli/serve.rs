//! The arguments of `serve`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::{Interval, KUBERNETES, MeshArgs, ServingArgs, default_state_dir};
use crate::dns::server::TcpLimits;
use crate::mesh::sync::SyncConfig;
use crate::registry::brake::BrakeConfig;
use crate::serve::{PeerOptions, ServeConfig, Source};

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
    /// How long a registry file rewritten in place (not renamed over) must
    /// stay unchanged before a version that removes a service or a port is
    /// used: a writer that stalled half-way leaves a valid, shorter file.
    #[arg(
        long,
        env = "GLOBALDNS_IN_PLACE_SETTLE",
        value_name = "DURATION",
        default_value = "10s"
    )]
    pub in_place_settle: Interval,
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
    /// Serve /metrics, /healthz, /readyz and /explain here, or `off`
    /// [default: 127.0.0.1:9153, where `explain` asks; skipped with a
    /// warning when that port is taken].
    #[arg(long, env = "GLOBALDNS_ADMIN", value_name = "ADDR:PORT|off", value_parser = parse_admin)]
    pub admin: Option<Admin>,
    /// Answer `TXT _explain.<host>` with a one-line provenance of the name
    /// (its exporters, VIP and whether it is its first choice, peers, a
    /// held registry version), for `dig` from a pod that cannot reach the
    /// admin endpoint. It tells anyone who can query the server which
    /// clusters export what: off unless asked.
    #[arg(long, env = "GLOBALDNS_EXPLAIN_TXT")]
    pub explain_txt: bool,
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
    /// With --sync-service-entries: also keep one MCS ServiceImport per
    /// exported service, its ClusterSetIP the VIP, in every namespace the
    /// cluster has, and (--registry kubernetes) the conditions of the
    /// cluster's ServiceExports, when the API server serves the MCS API.
    #[arg(long, env = "GLOBALDNS_SERVICE_IMPORTS", value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub service_imports: bool,
    /// The cluster this server runs in, as named in the registry; with
    /// `--registry kubernetes`, the exporter of its ExportedServices that
    /// leave `exportedFrom` out.
    #[arg(long, env = "GLOBALDNS_CLUSTER", value_name = "NAME")]
    pub cluster: Option<String>,
    /// A peer cluster whose registry resources are read too, given by its
    /// kubeconfig: `NAME=FILE`; repeat for several (`--registry kubernetes`).
    #[arg(
        long,
        env = "GLOBALDNS_PEER_KUBECONFIG",
        value_name = "NAME=FILE",
        value_delimiter = ','
    )]
    pub peer_kubeconfig: Vec<String>,
    /// Read the peers the Secrets labelled `globaldns.io/peer: "true"` in
    /// globaldns' namespace give (`--registry kubernetes`).
    #[arg(long, env = "GLOBALDNS_PEER_SECRETS", value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub peer_secrets: bool,
    /// A peer unreachable this long has its exports dropped (through the
    /// shrink brake); until then its last exports keep serving.
    #[arg(
        long,
        env = "GLOBALDNS_PEER_STALE_AFTER",
        value_name = "DURATION",
        default_value = "10m"
    )]
    pub peer_stale_after: Interval,
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
    #[command(flatten)]
    pub probes: ProbeArgs,
}

/// The Lease holder's probes of the remote east-west gateways (design §5,
/// gateway health), with `--sync-service-entries`.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Probe no gateway: none is ever withdrawn from the ServiceEntries.
    #[arg(long, env = "GLOBALDNS_NO_GATEWAY_PROBES")]
    pub no_gateway_probes: bool,
    /// How often each remote gateway is probed (a TCP connect to its
    /// address and port).
    #[arg(long, env = "GLOBALDNS_GATEWAY_PROBE_INTERVAL", value_name = "DURATION", default_value = "5s", value_parser = parse_positive)]
    pub gateway_probe_interval: Interval,
    /// How long one probe may take before it counts as failed.
    #[arg(long, env = "GLOBALDNS_GATEWAY_PROBE_TIMEOUT", value_name = "DURATION", default_value = "2s", value_parser = parse_positive)]
    pub gateway_probe_timeout: Interval,
    /// Failed probes in a row that withdraw a gateway from the endpoints.
    #[arg(long, env = "GLOBALDNS_GATEWAY_UNHEALTHY_AFTER", value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub gateway_unhealthy_after: u32,
    /// Passed probes in a row that put a withdrawn gateway back.
    #[arg(long, env = "GLOBALDNS_GATEWAY_HEALTHY_AFTER", value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub gateway_healthy_after: u32,
}

impl ProbeArgs {
    /// The probes' configuration; `None` with `--no-gateway-probes`.
    pub fn config(&self) -> Option<crate::mesh::gateway_health::HealthConfig> {
        (!self.no_gateway_probes).then_some(crate::mesh::gateway_health::HealthConfig {
            interval: self.gateway_probe_interval.0,
            timeout: self.gateway_probe_timeout.0,
            unhealthy_after: self.gateway_unhealthy_after,
            healthy_after: self.gateway_healthy_after,
        })
    }
}

/// Where `serve` puts its admin endpoint unless told, and where `explain`
/// asks: loopback, so that the README's two commands work together and
/// nothing is exposed beyond the machine.
pub const DEFAULT_ADMIN: std::net::SocketAddr =
    std::net::SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9153);

/// `--admin`: an address, or `None` for `off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Admin(pub Option<std::net::SocketAddr>);

fn parse_admin(text: &str) -> Result<Admin, String> {
    if text == "off" {
        return Ok(Admin(None));
    }
    text.parse()
        .map(|at| Admin(Some(at)))
        .map_err(|_| format!("`{text}` is neither ADDR:PORT nor `off`"))
}

/// A duration that is not zero.
fn parse_positive(text: &str) -> Result<Interval, String> {
    let interval: Interval = text.parse()?;
    if interval.0.is_zero() {
        return Err(format!("`{text}` is zero; give a positive duration"));
    }
    Ok(interval)
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
        if !kubernetes && !self.peer_kubeconfig.is_empty() {
            return Err("--peer-kubeconfig applies only to --registry kubernetes".to_string());
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
            limits: crate::mesh::sync::Limits {
                concurrency: usize::from(self.sync_concurrency),
                qps: (self.sync_qps > 0.0).then_some(self.sync_qps),
            },
            probes: self.probes.config(),
            service_imports: self.service_imports,
            export_status: self.service_imports && kubernetes,
        });
        Ok(ServeConfig {
            sync,
            grpc: self.grpc,
            admin: match self.admin {
                None => Some(DEFAULT_ADMIN),
                Some(Admin(at)) => at,
            },
            admin_is_default: self.admin.is_none(),
            explain_txt: self.explain_txt,
            drain_delay: self.drain_delay.0,
            serve_service_entries: self.serve_service_entries,
            registry: if kubernetes {
                Source::Kubernetes {
                    namespace: self.kube_namespace.clone(),
                    peers: PeerOptions {
                        files: self
                            .peer_kubeconfig
                            .iter()
                            .map(|spec| crate::registry::kube::peers::Peer::from_file(spec))
                            .collect::<Result<_, _>>()
                            .map_err(|e| format!("--peer-kubeconfig: {e}"))?,
                        secrets: self.peer_secrets,
                        stale_after: self.peer_stale_after.0,
                    },
                }
            } else {
                Source::File(self.registry.clone())
            },
            cluster: self.cluster.clone(),
            listen: self.listen,
            state_dir,
            settings: self.serving.settings(Some(self.listen))?,
            brake: BrakeConfig {
                share: self.brake.shrink_brake,
                hold: self.brake.shrink_hold.0,
            },
            reload_interval: self.reload_interval.0.max(Duration::from_millis(10)),
            in_place_settle: self.in_place_settle.0,
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
    use crate::cli::{Cli, Command};
    use clap::Parser;
    use std::path::PathBuf;

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

    fn config_error(flags: &[&str]) -> String {
        let mut argv = vec!["globaldns", "serve", "--registry", "r"];
        argv.extend_from_slice(flags);
        let Command::Serve(args) = Cli::try_parse_from(argv).unwrap().command else {
            panic!()
        };
        args.config().unwrap_err()
    }

    /// Issue 24: a VIP range inside the range Istio auto-allocates from,
    /// its IPv4 or IPv6 default or the one the operator says it uses
    /// (Istio 1.27+), is refused with the flag named.
    #[test]
    fn vip_ranges_inside_istios_own_are_refused() {
        let err = config_error(&["--vip-range", "240.240.0.0/24"]);
        assert!(
            err.contains("--vip-range") && err.contains("240.240.0.0/24") && err.contains("Istio"),
            "{err}"
        );
        let err = config_error(&["--vip-range-v6", "2001:2::/64"]);
        assert!(
            err.contains("--vip-range-v6") && err.contains("2001:2::/48"),
            "{err}"
        );
        let moved = "--istio-ip-autoallocate-ipv4-prefix";
        let err = config_error(&[moved, "240.0.0.0/8"]);
        assert!(
            err.contains("--vip-range 240.0.0.0/12") && err.contains("lies inside 240.0.0.0/8"),
            "{err}"
        );
        // A range that holds Istio's is taken; Istio's addresses are
        // skipped (see vip's tests).
        let cli = Cli::try_parse_from([
            "globaldns",
            "serve",
            "--registry",
            "r",
            moved,
            "240.0.0.0/16",
        ]);
        let Command::Serve(args) = cli.unwrap().command else {
            panic!()
        };
        let v4 = args.config().unwrap().settings.allocator.v4;
        assert_eq!(v4.istio().to_string(), "240.0.0.0/16");
    }

    #[test]
    fn bad_flags_name_the_flag_and_the_value() {
        let err = Cli::try_parse_from([
            "globaldns",
            "serve",
            "--registry",
            "r",
            "--vip-range",
            "2001:db8::/64",
        ])
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("--vip-range") && err.contains("2001:db8::/64") && err.contains("IPv4"),
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
        // One zone more than a snapshot holds.
        let mut many = vec![
            "globaldns".to_string(),
            "serve".into(),
            "--registry".into(),
            "r".into(),
        ];
        for i in 0..=crate::dns::zone::MAX_ZONES {
            many.extend(["--zone".to_string(), format!("z{i}")]);
        }
        let Command::Serve(args) = Cli::try_parse_from(many).unwrap().command else {
            panic!()
        };
        let err = args.config().unwrap_err();
        assert!(err.contains("257 zones given; at most 256"), "{err}");
    }

    /// `--clusterset-zone`: one zone served in the MCS form, whose host
    /// suffix `svc.<ZONE>` joins the `--zone`s (design §4); a bad value,
    /// a second one, or one that is or nests with a `--zone` is refused
    /// with the flag and the value named.
    #[test]
    fn clusterset_zone_joins_the_zones_and_is_checked() {
        let parse = |extra: &[&str]| {
            let mut all = vec!["globaldns", "serve", "--registry", "r"];
            all.extend_from_slice(extra);
            Cli::try_parse_from(all).map(|cli| match cli.command {
                Command::Serve(args) => args,
                _ => panic!(),
            })
        };
        let args = parse(&["--clusterset-zone", "ClusterSet.Local."]).unwrap();
        let config = args.config().unwrap();
        assert_eq!(config.settings.zones, ["global", "svc.clusterset.local"]);
        assert_eq!(
            args.serving.zones.dns_zones().unwrap(),
            ["global", "clusterset.local"]
        );
        let err = parse(&["--clusterset-zone", "a..b"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--clusterset-zone") && err.contains("a..b"),
            "{err}"
        );
        let err = parse(&[
            "--clusterset-zone",
            "a.local",
            "--clusterset-zone",
            "b.local",
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("--clusterset-zone"), "{err}");
        for (zones, said) in [
            (
                &["--zone", "clusterset.local"][..],
                "--clusterset-zone clusterset.local is also a --zone",
            ),
            (
                &["--zone", "local"][..],
                "--clusterset-zone clusterset.local and --zone local nest",
            ),
            (
                &["--zone", "x.clusterset.local"][..],
                "--clusterset-zone clusterset.local and --zone x.clusterset.local nest",
            ),
            (
                &["--zone", "global", "--zone", "svc.clusterset.local"][..],
                "--zone svc.clusterset.local: hosts",
            ),
        ] {
            let mut extra = zones.to_vec();
            extra.extend(["--clusterset-zone", "clusterset.local"]);
            let err = parse(&extra).unwrap().config().unwrap_err();
            assert!(err.contains(said), "{zones:?}: {err}");
        }
        // The MCS form's suffix is only ever made by the flag.
        let err = parse(&["--zone", "svc.example"])
            .unwrap()
            .config()
            .unwrap_err();
        assert!(
            err.contains("serve it with --clusterset-zone example"),
            "{err}"
        );
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
                namespace: Some("mesh".to_string()),
                peers: PeerOptions::default(),
            }
        );
        let config = serve(&[
            "kubernetes",
            "--state-dir",
            "/s",
            "--peer-secrets",
            "false",
            "--peer-stale-after",
            "2m",
        ])
        .unwrap();
        let Source::Kubernetes { peers, .. } = config.registry else {
            panic!("not kubernetes");
        };
        assert!(!peers.secrets);
        assert_eq!(peers.stale_after, Duration::from_secs(120));
        let missing = serve(&[
            "kubernetes",
            "--state-dir",
            "/s",
            "--peer-kubeconfig",
            "east=/nonexistent/east.kubeconfig",
        ])
        .unwrap_err();
        assert!(
            missing.starts_with("--peer-kubeconfig: cannot read /nonexistent/east.kubeconfig"),
            "{missing}"
        );
        assert_eq!(
            serve(&[
                "kubernetes",
                "--state-dir",
                "/s",
                "--peer-kubeconfig",
                "east"
            ])
            .unwrap_err(),
            "--peer-kubeconfig: `east` is not NAME=FILE"
        );
        assert_eq!(
            serve(&["r.yaml", "--peer-kubeconfig", "east=/e"]).unwrap_err(),
            "--peer-kubeconfig applies only to --registry kubernetes"
        );
        let config = serve(&["./kubernetes"]).unwrap();
        assert_eq!(config.registry, Source::File(PathBuf::from("./kubernetes")));
        assert_eq!(
            serve(&["r.yaml", "--kube-namespace", "mesh"]).unwrap_err(),
            "--kube-namespace applies only to --registry kubernetes"
        );
    }
}
