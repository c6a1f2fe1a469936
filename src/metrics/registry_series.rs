//! The registry's series (`globaldns_registry_*`): what is served, what
//! the Kubernetes source left out or decided, and how the last versions
//! went (reloads, the shrink brake). Set by the controller, the sources
//! and the controller's input loop.

use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use super::plain;

/// The series of the registry and its sources.
#[derive(Default)]
pub struct RegistrySeries {
    /// Hosts served: each service's in every zone, and its per-cluster
    /// names.
    pub hosts: AtomicU64,
    /// Hosts not served because a derived name could not be built.
    pub hosts_left_out: AtomicU64,
    /// Registry resources that do not decode or validate.
    pub objects_skipped: AtomicU64,
    /// `exportedFrom` entries naming a MeshCluster not there.
    pub dangling_exports: AtomicU64,
    /// Conflicts between clusters' views the merge decided (each with its
    /// winner).
    pub conflicts: AtomicU64,
    /// Those conflicts, one line each, for explain.
    pub conflict_detail: Mutex<Vec<String>>,
    /// The Kubernetes source's warnings (objects left out: a ServiceExport
    /// without its Service, an object that does not decode), one line
    /// each, for explain.
    pub warning_detail: Mutex<Vec<String>>,
    /// Signalled when the Kubernetes source's warnings or conflicts
    /// change (an export without its Service, a port conflict): what the
    /// ServiceExports' conditions say may have changed although the
    /// registry did not, so the sync runs a pass. Not a series.
    pub findings_changed: tokio::sync::Notify,
    pub reloads_ok: AtomicU64,
    pub reloads_failed: AtomicU64,
    /// When a registry was last published, in Unix seconds.
    pub last_reload_seconds: AtomicU64,
    /// Services a held-back version would remove (0: none held).
    pub held_back: AtomicU64,
}

impl RegistrySeries {
    /// Writes the series to `out`.
    pub(super) fn render(&self, out: &mut String) {
        plain(
            out,
            &[
                (
                    "globaldns_registry_hosts",
                    "gauge",
                    "Hosts served: each service's in every zone, and its per-cluster names.",
                    &self.hosts,
                ),
                (
                    "globaldns_registry_hosts_left_out",
                    "gauge",
                    "Registry hosts not served because a name derived from them could not be built (each is logged as an error).",
                    &self.hosts_left_out,
                ),
                (
                    "globaldns_registry_objects_skipped",
                    "gauge",
                    "Registry resources left out because they do not decode or do not validate (each is logged as a warning).",
                    &self.objects_skipped,
                ),
                (
                    "globaldns_registry_dangling_exports",
                    "gauge",
                    "exportedFrom entries of registry resources naming a MeshCluster that does not exist or was left out; the service is served from its other clusters.",
                    &self.dangling_exports,
                ),
                (
                    "globaldns_registry_conflicts",
                    "gauge",
                    "Conflicts between clusters' descriptions the merge of a federated registry decided (shown by explain).",
                    &self.conflicts,
                ),
                (
                    "globaldns_registry_reloads_total{result=\"success\"}",
                    "counter",
                    "Registry versions published or refused.",
                    &self.reloads_ok,
                ),
                (
                    "globaldns_registry_reloads_total{result=\"failure\"}",
                    "",
                    "",
                    &self.reloads_failed,
                ),
                (
                    "globaldns_registry_last_success_timestamp_seconds",
                    "gauge",
                    "When a registry was last published (Unix time).",
                    &self.last_reload_seconds,
                ),
                (
                    "globaldns_registry_held_back",
                    "gauge",
                    "Services a held-back registry version would remove (0: no version held).",
                    &self.held_back,
                ),
            ],
        );
    }
}
