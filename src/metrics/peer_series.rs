//! The peer clusters' series (`globaldns_peer_*`): their state as the
//! registry watch last saw it, rendered one series per peer.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use super::header;

/// A peer cluster's state, as the registry watch last saw it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerStatus {
    /// The namespace its registry resources are read in.
    pub namespace: String,
    /// Its registry resources have been listed (its exports are known).
    pub listed: bool,
    /// Once listed: it holds the MeshCluster of its own name (without it,
    /// its own exports have no gateway and are not served).
    pub mesh_cluster: bool,
    /// What the last failed request to it said, while it fails (or why no
    /// client could be made for it).
    pub error: Option<String>,
    /// How long its API server has not answered, while it does not.
    pub unreachable_for: Option<Duration>,
    /// Unreachable too long: its exports are no longer served.
    pub dropped: bool,
}

/// Each peer cluster's state, by name.
#[derive(Default)]
pub struct PeerSeries {
    pub status: Mutex<BTreeMap<String, PeerStatus>>,
}

impl PeerSeries {
    /// One series per peer cluster: whether it answers, and for how long
    /// it has not.
    pub(super) fn render(&self, out: &mut String) {
        let peers = self.status.lock().unwrap().clone();
        header(
            out,
            "globaldns_peer_up",
            "gauge",
            "1 while a peer cluster's API server answers and its exports are served, 0 otherwise.",
        );
        for (name, status) in &peers {
            let up = status.listed && status.unreachable_for.is_none() && !status.dropped;
            let _ = writeln!(out, "globaldns_peer_up{{peer=\"{name}\"}} {}", u8::from(up));
        }
        header(
            out,
            "globaldns_peer_unreachable_seconds",
            "gauge",
            "How long a peer cluster's API server has not answered (0 while it does); its last exports keep serving until --peer-stale-after.",
        );
        for (name, status) in &peers {
            let seconds = status.unreachable_for.map_or(0.0, |d| d.as_secs_f64());
            let _ = writeln!(
                out,
                "globaldns_peer_unreachable_seconds{{peer=\"{name}\"}} {seconds:.0}"
            );
        }
        header(
            out,
            "globaldns_peer_mesh_cluster",
            "gauge",
            "1 when a listed peer holds the MeshCluster of its own name, 0 when it does not (its exports are not served: is its namespace right?).",
        );
        for (name, status) in peers.iter().filter(|(_, s)| s.listed) {
            let _ = writeln!(
                out,
                "globaldns_peer_mesh_cluster{{peer=\"{name}\"}} {}",
                u8::from(status.mesh_cluster)
            );
        }
    }
}
