//! The arguments of the commands that ask a cluster or a running server:
//! `stub-config`, `explain`.

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
}
