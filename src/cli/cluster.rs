//! The arguments of the commands that ask a cluster or a running server:
//! `stub-config`, `explain`.

use std::path::PathBuf;

use clap::Args;

use super::ZoneArgs;

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
