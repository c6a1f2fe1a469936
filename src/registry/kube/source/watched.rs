//! One watched cluster as the source loop keeps it ([`Watched`]): its
//! stores, the lists it still awaits, whether it answers; and what the
//! loop reads of the peers together (whether they have settled, which
//! lack their MeshCluster, their state for the metrics).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use crate::metrics::{Metrics, PeerStatus};
use crate::registry::kube::cluster_watch::{Changed, ClusterWatch, Kind};
use crate::registry::kube::peers::PeerError;

/// One watched cluster: its stores, the lists still awaited, and whether
/// it answers.
pub(super) struct Watched {
    pub(super) watch: ClusterWatch,
    /// The namespace its registry resources are read in.
    namespace: String,
    /// What its last failed request said, while it fails.
    error: Option<String>,
    /// A peer's missing MeshCluster has been warned about (once per time
    /// it goes missing).
    warned_no_cluster: bool,
    /// The kinds whose first list has not come yet.
    pub(super) awaited: BTreeSet<&'static str>,
    /// When it stopped answering, while it does not.
    pub(super) failing_since: Option<Instant>,
    /// Its exports are no longer served (unreachable for too long).
    pub(super) dropped: bool,
    /// Stops its watch when the peer goes.
    pub(super) stop: CancellationToken,
}

/// Awaited until the cluster's discovery says whether it serves MCS.
const MCS_DISCOVERY: &str = "MCS discovery";

impl Watched {
    /// A cluster just started to be watched (`watch`), its registry
    /// resources read in `namespace`: every first list still awaited.
    pub(super) fn new(watch: ClusterWatch, namespace: &str) -> Self {
        Self {
            watch,
            namespace: namespace.to_string(),
            error: None,
            warned_no_cluster: false,
            // The registry resources, and discovery's answer on MCS (then
            // the lists of ServiceExports and Services, if it serves it):
            // a view without them would drop every MCS export for a moment.
            awaited: [Kind::Cluster.name(), Kind::Service.name(), MCS_DISCOVERY].into(),
            failing_since: None,
            dropped: false,
            stop: CancellationToken::new(),
        }
    }

    /// Notes what a watch said; true when the registry may have changed.
    /// Any answer means the cluster is reachable (and current again).
    pub(super) fn note(&mut self, changed: &Changed) -> bool {
        if !matches!(changed, Changed::Error(..) | Changed::Relisting) {
            self.error = None;
        }
        match changed {
            Changed::Listed(kind) => {
                self.awaited.remove(kind.name());
                self.failing_since = None;
                self.dropped = false;
                true
            }
            Changed::Mcs(serves) => {
                self.awaited.remove(MCS_DISCOVERY);
                if *serves {
                    self.awaited
                        .extend([Kind::ServiceExport.name(), Kind::KubeService.name()]);
                }
                self.failing_since = None;
                true
            }
            Changed::Relisting => false,
            Changed::Object => {
                self.failing_since = None;
                self.dropped = false;
                true
            }
            Changed::Error(kind, e) => {
                self.failing_since.get_or_insert_with(Instant::now);
                self.error = Some(format!("watching {}s: {e}", kind.name()));
                false
            }
        }
    }
}

/// Whether every peer known at start has listed or failed (an unreachable
/// peer is not waited for).
pub(super) fn peers_settled(known: bool, peers: &BTreeMap<String, Watched>) -> bool {
    known
        && peers
            .values()
            .all(|p| p.awaited.is_empty() || p.failing_since.is_some())
}

/// Warns once about each listed peer that holds no MeshCluster of its own
/// name: its own exports then have no gateway and are not served, which
/// is most often a kubeconfig read in the wrong namespace.
pub(super) fn warn_clusterless(peers: &mut BTreeMap<String, Watched>) {
    for (name, watched) in peers.iter_mut() {
        let missing = watched.awaited.is_empty() && !watched.watch.holds_cluster(name);
        if missing && !watched.warned_no_cluster {
            tracing::warn!(
                peer = %name,
                "peer {name} holds no MeshCluster `{name}` in namespace {}: its own exports are not served (does its kubeconfig's context name the namespace its globaldns objects are in?)",
                watched.namespace
            );
        }
        watched.warned_no_cluster = missing;
    }
}

/// The peers' state, for the metrics and explain: those read, and those
/// no client could be made for (`unusable`, with why).
pub(super) fn report_peers(
    metrics: &Metrics,
    peers: &BTreeMap<String, Watched>,
    unusable: &BTreeMap<String, PeerError>,
) {
    let mut status: BTreeMap<String, PeerStatus> = peers
        .iter()
        .map(|(name, watched)| {
            let listed = watched.awaited.is_empty();
            (
                name.clone(),
                PeerStatus {
                    namespace: watched.namespace.clone(),
                    listed,
                    mesh_cluster: listed && watched.watch.holds_cluster(name),
                    error: watched.error.clone(),
                    unreachable_for: watched.failing_since.map(|s| s.elapsed()),
                    dropped: watched.dropped,
                },
            )
        })
        .collect();
    for (name, error) in unusable {
        status.insert(
            name.clone(),
            PeerStatus {
                error: Some(error.to_string()),
                ..PeerStatus::default()
            },
        );
    }
    *metrics.peers.status.lock().unwrap() = status;
}
