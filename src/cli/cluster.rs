//! The arguments of the commands that ask a cluster or a running server:
//! `stub-config`, `explain`, `peer-secret`, `doctor`.

use std::path::PathBuf;

use clap::Args;

use super::ZoneArgs;

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The name to explain, e.g. httpbin.bar.global.
    pub name: String,
    /// The server's admin endpoint (`serve`'s default address).
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
    pub target: StubTarget,
    /// Merge into this kube-dns ConfigMap (`kubectl -n kube-system get
    /// configmap kube-dns -o yaml`) instead of the one read from the API
    /// server.
    #[arg(long, value_name = "FILE", conflicts_with = "no_merge")]
    pub kube_dns_configmap: Option<PathBuf>,
    /// Merge into this CoreDNS ConfigMap (`kubectl -n kube-system get
    /// configmap coredns -o yaml`) instead of the one read from the API
    /// server.
    #[arg(long, value_name = "FILE", conflicts_with = "no_merge")]
    pub coredns_configmap: Option<PathBuf>,
    /// Print the wiring alone, merged into nothing: applied as it is, the
    /// kube-dns ConfigMap replaces the cluster's stubDomains.
    #[arg(long)]
    pub no_merge: bool,
}

#[derive(Debug, Args)]
pub struct PeerSecretArgs {
    /// The cluster to be read, as the registry names it.
    #[arg(long, value_name = "NAME", value_parser = super::parse_cluster_name)]
    pub cluster: String,
    /// The kubeconfig context that reaches it [default: the current one].
    #[arg(long, value_name = "CONTEXT")]
    pub context: Option<String>,
    /// globaldns' namespace, in that cluster and in the ones the Secret is
    /// applied to.
    #[arg(long, value_name = "NAMESPACE", default_value = "globaldns")]
    pub namespace: String,
    /// The API server's URL as the other clusters' pods reach it [default:
    /// the context's server], when that differs (a private endpoint, a
    /// load balancer in front of the API server).
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
}

/// Which wiring to print.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StubTarget {
    /// The kube-dns ConfigMap with `stubDomains` (YAML, for kubectl apply).
    KubeDns,
    /// The CoreDNS ConfigMap with the server blocks merged into its Corefile
    /// (YAML, for kubectl apply); the blocks alone with --no-merge.
    Coredns,
    /// Both, each under a comment saying where it goes.
    Both,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The kubeconfig context of a cluster to check; repeat for several,
    /// which adds the checks across them (one root of trust, one VIP per
    /// host) [default: the current context].
    #[arg(long = "context", value_name = "CONTEXT")]
    pub contexts: Vec<String>,
    /// globaldns' namespace.
    #[arg(long, value_name = "NAMESPACE", default_value = "globaldns")]
    pub namespace: String,
    /// The name of globaldns' Deployment, Service and sync Lease.
    #[arg(long, value_name = "NAME", default_value = "globaldns")]
    pub name: String,
    /// Istio's namespace, where globaldns writes its objects
    /// (`serve --service-entry-namespace`) and istiod runs.
    #[arg(long, value_name = "NAMESPACE", default_value = "istio-system")]
    pub istio_namespace: String,
    #[command(flatten)]
    pub zones: ZoneArgs,
    #[command(flatten)]
    pub mesh: super::MeshArgs,
    /// The cluster's name as the registry has it [default: the key
    /// `cluster` of ConfigMap globaldns-config, as the Deployment reads it].
    /// Only with one --context.
    #[arg(long, value_name = "NAME", value_parser = super::parse_cluster_name)]
    pub cluster: Option<String>,
    /// A registry file to check against [default: the registry the
    /// cluster's globaldns reads: ConfigMap globaldns-registry in file mode,
    /// else the registry resources of the namespace and its peers'].
    #[arg(long, value_name = "FILE")]
    pub registry: Option<PathBuf>,
    /// How long reading one cluster's registry resources may take.
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub timeout: super::Interval,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    pub output: DoctorOutput,
}

/// How `doctor` prints its findings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DoctorOutput {
    /// A table per cluster, each warning and failure with its fix.
    Table,
    /// A JSON array, one object per check.
    Json,
}
