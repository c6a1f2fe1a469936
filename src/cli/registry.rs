//! The arguments of the commands that read a registry file and print:
//! `check`, `zonefile`, `render`, `export-resources`.

use std::path::{Path, PathBuf};

use clap::Args;

use super::{ServingArgs, ZoneArgs};

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
pub struct ZonefileArgs {
    #[command(flatten)]
    pub snapshot: SnapshotArgs,
    /// A zone file printed before (by `zonefile`): the new serial follows
    /// its serial and digest as the server's does (the same content keeps
    /// it, other content gets a greater one). With `--state-dir`, the
    /// server's last served serial counts too.
    #[arg(long, value_name = "FILE")]
    pub previous: Option<PathBuf>,
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
    pub mesh: super::MeshArgs,
    /// The `networking.istio.io` version to write: `v1` (Istio 1.22+),
    /// `v1beta1` (1.5+) or `v1alpha3` (1.1+). `serve` asks the API server
    /// instead.
    #[arg(
        long,
        env = "GLOBALDNS_ISTIO_API_VERSION",
        value_name = "VERSION",
        default_value = "v1"
    )]
    pub istio_api_version: crate::mesh::IstioApiVersion,
}

#[derive(Debug, Args)]
pub struct ExportResourcesArgs {
    /// Registry file (YAML or JSON).
    #[arg(long, env = "GLOBALDNS_REGISTRY", value_name = "FILE")]
    pub registry: PathBuf,
    /// Namespace of the objects: where `serve --registry kubernetes`
    /// watches them (its --kube-namespace; the manifests use `globaldns`).
    #[arg(long, value_name = "NAMESPACE", default_value = "globaldns", value_parser = parse_namespace)]
    pub namespace: String,
    /// The zones the servers serve: the registry is validated for them.
    #[command(flatten)]
    pub zones: ZoneArgs,
}

fn parse_namespace(s: &str) -> Result<String, String> {
    crate::naming::dns1123_label(s).map_err(|e| format!("`{s}` is not a namespace name: {e}"))?;
    Ok(s.to_string())
}
