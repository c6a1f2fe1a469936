//! The command line: commands and flags, each flag also read from an
//! environment variable `GLOBALDNS_<FLAG>`, and every value typed and
//! checked here, at the door.
//!
//! This file holds the commands and what several of them share (zones,
//! serving settings, durations); each group of commands has its arguments
//! in a file of its own: `cli/serve.rs` (the server), `cli/registry.rs`
//! (commands that read a registry file and print), `cli/cluster.rs`
//! (commands that ask a cluster or a running server), `cli/mesh.rs` (what
//! shapes the Istio objects, for `serve` and `render`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use ipnet::IpNet;

use crate::controller::Settings;
use crate::naming;
use crate::vip::{self, Allocator, Family, VipRange};

mod cluster;
mod mesh;
mod registry;
mod serve;

pub use cluster::{
    DoctorArgs, DoctorOutput, ExplainArgs, PeerSecretArgs, StubConfigArgs, StubTarget,
};
pub use mesh::{MeshArgs, Selector};
pub use registry::{CheckArgs, ExportResourcesArgs, RenderArgs, SnapshotArgs, ZonefileArgs};
pub use serve::{BrakeArgs, ServeArgs};

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
    /// Print the zones as a master file (RFC 1035 §5), with the VIPs and the
    /// SOA serial a server on the same state directory would give; for
    /// other DNS servers and diffs.
    Zonefile(ZonefileArgs),
    /// Print the Istio ServiceEntries a cluster needs, as YAML documents
    /// ready for `kubectl apply -f -` or a GitOps repository.
    Render(RenderArgs),
    /// Print a registry file as registry resources (a MeshCluster per
    /// cluster, an ExportedService per service) for `kubectl apply -f -`:
    /// what `serve --registry kubernetes` reads back as the same registry.
    ExportResources(ExportResourcesArgs),
    /// Print the CustomResourceDefinitions of the registry resources
    /// (MeshCluster, ExportedService); `manifests/crds.yaml` is this output.
    Crds,
    /// Explain a name, asking a running server's admin endpoint: served or
    /// not and why, its VIPs, the clusters and gateways behind it, its
    /// ServiceEntry, and any conflict.
    Explain(ExplainArgs),
    /// Print the cluster DNS wiring for the served zones: kube-dns
    /// `stubDomains` and CoreDNS server blocks pointing at globaldns,
    /// merged into the cluster's own ConfigMaps.
    ///
    /// The ConfigMaps kube-system/kube-dns and kube-system/coredns are read
    /// from the API server (or from --kube-dns-configmap and
    /// --coredns-configmap), and printed whole: their other stub domains,
    /// server blocks and keys kept, the served zones' entries added or
    /// replaced, ready for `kubectl apply -f -`. Reading them takes `get` on
    /// configmaps in kube-system: run this with an administrator's
    /// kubeconfig. globaldns' own ServiceAccount is not granted it (the
    /// manifests' RBAC stays without it); the server never needs it.
    StubConfig(StubConfigArgs),
    /// Print the Secret that lets the other clusters read this one's
    /// registry resources (a peer): a kubeconfig with a read-only token of
    /// its globaldns-reader ServiceAccount, for `kubectl apply -f -` in the
    /// others' globaldns namespace.
    PeerSecret(PeerSecretArgs),
    /// Check a cluster's whole `.global` path, or several clusters', and
    /// say what to fix: globaldns' Deployment, Service and Lease, the
    /// cluster DNS wiring, Istio's versions, the east-west Gateway and its
    /// pods, the ServiceEntries, leftovers of older installs, the Istio
    /// network, the peers; across clusters, the root of trust and the VIPs.
    /// Reads with the kubeconfig (an administrator's: it reads kube-system
    /// and every namespace's Istio objects); writes nothing. Exits 1 when a
    /// check fails.
    Doctor(DoctorArgs),
}

/// What decides the served names and addresses: shared by `serve` and
/// `zonefile` so both see the same zones.
#[derive(Debug, Args)]
pub struct ServingArgs {
    #[command(flatten)]
    pub zones: ZoneArgs,
    /// IPv4 range VIPs are allocated from.
    #[arg(long, env = "GLOBALDNS_VIP_RANGE", value_name = "CIDR", default_value = vip::DEFAULT_V4_RANGE, value_parser = parse_v4_cidr)]
    pub vip_range: IpNet,
    /// IPv6 range VIPs are allocated from; without it, no IPv6 VIPs.
    #[arg(long, env = "GLOBALDNS_VIP_RANGE_V6", value_name = "CIDR", value_parser = parse_v6_cidr)]
    pub vip_range_v6: Option<IpNet>,
    /// The IPv4 range the mesh's Istio auto-allocates ServiceEntry
    /// addresses from: istiod's `PILOT_IP_AUTOALLOCATE_IPV4_PREFIX` (Istio
    /// 1.27+). No VIP is handed out inside it; a --vip-range inside it is
    /// refused.
    #[arg(long, env = "GLOBALDNS_ISTIO_IP_AUTOALLOCATE_IPV4_PREFIX", value_name = "CIDR", default_value = "240.240.0.0/16", value_parser = parse_v4_cidr)]
    pub istio_ip_autoallocate_ipv4_prefix: IpNet,
    /// The IPv6 range the mesh's Istio auto-allocates from: istiod's
    /// `PILOT_IP_AUTOALLOCATE_IPV6_PREFIX` (Istio 1.27+).
    #[arg(long, env = "GLOBALDNS_ISTIO_IP_AUTOALLOCATE_IPV6_PREFIX", value_name = "CIDR", default_value = "2001:2::/48", value_parser = parse_v6_cidr)]
    pub istio_ip_autoallocate_ipv6_prefix: IpNet,
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
    /// Serve no per-cluster names: without this flag, each cluster that
    /// exports a service also gives it `<cluster>.<name>.<namespace>.<zone>`,
    /// with a VIP and a ServiceEntry of its own that reach that cluster's
    /// copy only.
    #[arg(long, env = "GLOBALDNS_NO_PER_CLUSTER_NAMES")]
    pub no_per_cluster_names: bool,
    /// Also serve this zone (e.g. `clusterset.local`) in the Multi-Cluster
    /// Services DNS form: hosts `<name>.<namespace>.svc.<ZONE>` with the
    /// service's VIP (its ClusterSetIP), SRV per port, and the TXT
    /// `dns-version.<ZONE>` = `1.0.0`; no per-cluster names. It may not
    /// be, contain or lie in a --zone.
    #[arg(long, env = "GLOBALDNS_CLUSTERSET_ZONE", value_name = "ZONE", value_parser = parse_zone)]
    pub clusterset_zone: Option<String>,
}

/// A duration: `250ms`, `30s`, `10m`, `1h`, or plain seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interval(pub Duration);

impl FromStr for Interval {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        crate::registry::failover::parse_duration(s)
            .map(Interval)
            .map_err(|e| e.to_string())
    }
}

fn parse_cluster_name(s: &str) -> Result<String, String> {
    naming::dns1123_label(s).map_err(|e| format!("`{s}` is not a cluster name: {e}"))?;
    Ok(s.to_string())
}

fn parse_zone(s: &str) -> Result<String, String> {
    naming::zone(s).map_err(|e| format!("`{s}` is not a valid zone: {e}"))
}

fn parse_v4_cidr(s: &str) -> Result<IpNet, String> {
    parse_cidr(s, Family::V4)
}

fn parse_v6_cidr(s: &str) -> Result<IpNet, String> {
    parse_cidr(s, Family::V6)
}

fn parse_cidr(s: &str, family: Family) -> Result<IpNet, String> {
    let net: IpNet = s
        .parse()
        .map_err(|_| format!("`{s}` is not a CIDR range"))?;
    if Family::of(&net.network()) != family {
        return Err(format!("`{s}` is not an {family} range"));
    }
    Ok(net)
}

/// Zones must be distinct and must not nest: a host of one would otherwise
/// also be a name inside the other. A `--zone` may not start with the
/// label `svc.`: that host suffix is the Multi-Cluster Services form's
/// ([`naming::clusterset_zone`]), served with --clusterset-zone.
fn check_zones(zones: &[String]) -> Result<(), String> {
    for (i, a) in zones.iter().enumerate() {
        if let Some(apex) = naming::clusterset_zone(a) {
            return Err(format!(
                "--zone {a}: hosts `<name>.<namespace>.{a}` are the Multi-Cluster Services form; \
                 serve it with --clusterset-zone {apex}"
            ));
        }
        for b in &zones[i + 1..] {
            if a == b {
                return Err(format!("--zone {a} is given twice"));
            }
            if nest(a, b) {
                return Err(format!("--zone {a} and --zone {b} nest; serve one of them"));
            }
        }
    }
    Ok(())
}

/// True when `a` and `b` are one zone or one lies inside the other.
fn nest(a: &str, b: &str) -> bool {
    a == b || a.ends_with(&format!(".{b}")) || b.ends_with(&format!(".{a}"))
}

/// The MCS zone must be apart from every `--zone`: neither the same, nor
/// inside one, nor holding one (each name has one zone, design §4).
fn check_clusterset_zone(clusterset: &str, zones: &[String]) -> Result<(), String> {
    match zones.iter().find(|z| nest(clusterset, z)) {
        Some(z) if z == clusterset => Err(format!(
            "--clusterset-zone {clusterset} is also a --zone; serve it in one form"
        )),
        Some(z) => Err(format!(
            "--clusterset-zone {clusterset} and --zone {z} nest; they must be apart"
        )),
        None => Ok(()),
    }
}

impl ZoneArgs {
    /// The host suffixes served, checked: each `--zone` (distinct, not
    /// nested), then, with `--clusterset-zone Z`, `svc.Z`
    /// ([`naming::clusterset_suffix`]), so that every host, VIP and Istio
    /// object of a service follows for that zone too. At most
    /// [`MAX_ZONES`](crate::dns::zone::MAX_ZONES) in all. Errors name the
    /// flag and the value.
    pub fn checked(&self) -> Result<Vec<String>, String> {
        use crate::dns::zone::MAX_ZONES;
        check_zones(&self.zones)?;
        let mut zones = self.zones.clone();
        if let Some(clusterset) = &self.clusterset_zone {
            check_clusterset_zone(clusterset, &self.zones)?;
            zones.push(naming::clusterset_suffix(clusterset));
        }
        if zones.len() > MAX_ZONES {
            return Err(format!(
                "{} zones given; at most {MAX_ZONES} can be served",
                zones.len()
            ));
        }
        Ok(zones)
    }

    /// The DNS zones served, checked as [`Self::checked`]: each `--zone`
    /// and the `--clusterset-zone` itself (its apex, not `svc.<ZONE>`):
    /// what the cluster DNS forwards to globaldns.
    pub fn dns_zones(&self) -> Result<Vec<String>, String> {
        Ok(self
            .checked()?
            .iter()
            .map(|suffix| naming::dns_zone(suffix).to_string())
            .collect())
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
            per_cluster_names: !self.zones.no_per_cluster_names,
            ttl: self.ttl,
            allocator: self.allocator()?,
            ns_addresses,
        })
    }

    /// The VIP ranges, each checked beside the range Istio uses for its
    /// family; an error names the flag.
    fn allocator(&self) -> Result<Allocator, String> {
        let v4 = VipRange::beside_istio(
            self.vip_range,
            Family::V4,
            self.istio_ip_autoallocate_ipv4_prefix,
        )
        .map_err(|e| format!("--vip-range {}: {e}", self.vip_range))?;
        let v6 = self
            .vip_range_v6
            .map(|net| {
                VipRange::beside_istio(net, Family::V6, self.istio_ip_autoallocate_ipv6_prefix)
                    .map_err(|e| format!("--vip-range-v6 {net}: {e}"))
            })
            .transpose()?;
        Ok(Allocator {
            v4,
            v6,
            quarantine: self.quarantine.0.as_secs(),
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
}
