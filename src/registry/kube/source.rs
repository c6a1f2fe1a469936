//! The registry from the API servers: the local cluster's registry
//! resources and, when it has peers, theirs (design §2, federated
//! registry). Each cluster is watched ([`crate::registry::kube::cluster_watch`]); after a change,
//! and once the local lists are in, the views are merged ([`crate::registry::kube::merge`])
//! and validated ([`crate::registry::kube::declared::registry_from`]), for the services
//! that changed only ([`crate::registry::kube::assemble`]), and the registry is handed to
//! the controller like a re-read registry file.
//!
//! At start, the first registry waits (at most [`PEER_START_WAIT`]) for
//! the peers known at start to list or fail, so that a fresh start
//! allocates the VIPs of every cluster's exports in one batch, as every
//! other globaldns does: allocating the local exports first would give the
//! rare hash collision between a local and a peer's host the other way
//! round than in that peer (design §3: the same VIPs without talking).
//!
//! A restart must not lose what an unreachable peer said: until a peer
//! known at start answers, its part of the last-known-good registry (its
//! MeshCluster, the services it exports) stands for it, for
//! `--peer-stale-after` from the start.
//!
//! Peers come and go with their Secrets ([`crate::registry::kube::peers`]). A peer that
//! cannot be reached keeps serving what it last said, for
//! `--peer-stale-after`; then its exports are dropped, and a large drop is
//! held by the shrink brake like any other. When it answers again, its
//! watch relists and it is current again.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::{BoxStream, SelectAll};
use kube::Client;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::assemble::Assembler;
use super::cluster_watch::{Changed, ClusterWatch, Kind};
use super::declared::declared;
use super::merge::View;
use super::peers::{Peer, PeerError, PeerEvent};
use crate::metrics::{Metrics, PeerStatus};
use crate::registry::{Registry, RegistryError};
use crate::watch::Debounce;

/// Longest the first registry waits for the peers known at start.
pub const PEER_START_WAIT: Duration = Duration::from_secs(10);

/// What the Kubernetes registry source reads.
#[derive(Clone, Debug, Default)]
pub struct WatchConfig {
    /// Where the local registry resources (and peer Secrets) live.
    pub namespace: String,
    pub zones: Vec<String>,
    /// The local cluster's name (`--cluster`): the exporter of its
    /// ExportedServices without `exportedFrom`. Empty: none.
    pub cluster: String,
    /// Peers given as kubeconfig files.
    pub peer_files: Vec<Peer>,
    /// Watch peer Secrets in `namespace`.
    pub peer_secrets: bool,
    /// A peer unreachable this long has its exports dropped.
    pub peer_stale_after: Duration,
    /// The last-known-good registry at start: what a peer that has not
    /// answered since the start said before it (its MeshCluster and its
    /// exports), served for it until it answers or `peer_stale_after`.
    pub remembered: Option<Registry>,
}

/// Which cluster a watch event is about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Source {
    Local,
    Peer(String),
}

/// One watched cluster: its stores, the lists still awaited, and whether
/// it answers.
struct Watched {
    watch: ClusterWatch,
    /// The namespace its registry resources are read in.
    namespace: String,
    /// What its last failed request said, while it fails.
    error: Option<String>,
    /// A peer's missing MeshCluster has been warned about (once per time
    /// it goes missing).
    warned_no_cluster: bool,
    /// The kinds whose first list has not come yet.
    awaited: BTreeSet<&'static str>,
    /// When it stopped answering, while it does not.
    failing_since: Option<Instant>,
    /// Its exports are no longer served (unreachable for too long).
    dropped: bool,
    /// Stops its watch when the peer goes.
    stop: CancellationToken,
}

/// Awaited until the cluster's discovery says whether it serves MCS.
const MCS_DISCOVERY: &str = "MCS discovery";

impl Watched {
    fn new(watch: ClusterWatch, namespace: &str) -> Self {
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
    fn note(&mut self, changed: &Changed) -> bool {
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

/// Watches the local cluster (and its peers) until `shutdown`, sending
/// each rebuilt registry: after the local lists, and after changes
/// (gathered as [`Debounce`] says).
pub async fn run(
    client: Client,
    config: WatchConfig,
    tx: mpsc::Sender<Result<Registry, RegistryError>>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let (watch, stream) = ClusterWatch::start(&client, &config.namespace);
    let mut local = Watched::new(watch, &config.namespace);
    let mut events: SelectAll<BoxStream<'static, (Source, Changed)>> = SelectAll::new();
    events.push(stream.map(|c| (Source::Local, c)).boxed());
    let mut peers: BTreeMap<String, Watched> = BTreeMap::new();
    // Peers no client could be made for, and why: reported beside the rest.
    let mut unusable: BTreeMap<String, PeerError> = BTreeMap::new();
    let (peer_tx, mut peer_rx) = mpsc::channel(16);
    for peer in &config.peer_files {
        let _ = peer_tx.send(PeerEvent::Up(Box::new(peer.clone()))).await;
    }
    if config.peer_secrets {
        tokio::spawn(crate::registry::kube::peers::watch_secrets(
            client.clone(),
            config.namespace.clone(),
            peer_tx.clone(),
            shutdown.clone(),
        ));
    }
    drop(peer_tx);
    let started = Instant::now();
    let mut peers_known = !config.peer_secrets;
    let mut first_sent = false;
    let mut peer_events_open = true;
    let mut debounce = Debounce::default();
    let mut reported = BTreeSet::new();
    let mut assembler = Assembler::default();
    let mut staleness = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            event = events.next() => match event {
                Some((source, changed)) => {
                    if let Changed::Error(kind, e) = &changed {
                        // The watch retries by itself (watch).
                        tracing::warn!("watching {} objects of {}: {e}", kind.name(), describe(&source));
                    }
                    let watched = match &source {
                        Source::Local => Some(&mut local),
                        Source::Peer(name) => peers.get_mut(name),
                    };
                    if let Some(watched) = watched && watched.note(&changed) {
                        debounce.touch();
                    }
                }
                None => return,
            },
            event = peer_rx.recv(), if peer_events_open => match event {
                Some(PeerEvent::Up(peer)) => {
                    if let Some(old) = peers.remove(&peer.name) {
                        old.stop.cancel();
                    }
                    unusable.remove(&peer.name);
                    match peer.client().await {
                        Ok(peer_client) => {
                            let namespace = peer.namespace().unwrap_or_else(|| config.namespace.clone());
                            let (watch, stream) = ClusterWatch::start(&peer_client, &namespace);
                            let watched = Watched::new(watch, &namespace);
                            let stop = watched.stop.clone();
                            let name = peer.name.clone();
                            events.push(stream.take_until(stop.cancelled_owned()).map(move |c| (Source::Peer(name.clone()), c)).boxed());
                            tracing::info!(peer = %peer.name, source = %peer.source, %namespace, "reading peer cluster");
                            peers.insert(peer.name.clone(), watched);
                        }
                        Err(e) => {
                            tracing::warn!("peer {} not read: {e}", peer.name);
                            unusable.insert(peer.name.clone(), e);
                        }
                    }
                    debounce.touch();
                }
                Some(PeerEvent::Listed) => {
                    peers_known = true;
                    debounce.touch();
                }
                Some(PeerEvent::Down(name)) => {
                    if let Some(old) = peers.remove(&name) {
                        old.stop.cancel();
                        tracing::info!(peer = %name, "peer removed: its exports go");
                    }
                    unusable.remove(&name);
                    debounce.touch();
                }
                None => {
                    peer_events_open = false;
                    peers_known = true;
                }
            },
            _ = staleness.tick() => {
                for (name, watched) in &mut peers {
                    let stale = watched
                        .failing_since
                        .is_some_and(|since| since.elapsed() >= config.peer_stale_after);
                    if stale && !watched.dropped {
                        watched.dropped = true;
                        tracing::warn!(peer = %name, "peer unreachable for {:?}: its exports are dropped", config.peer_stale_after);
                        debounce.touch();
                    }
                }
                warn_clusterless(&mut peers);
                report_peers(&metrics, &peers, &unusable);
                if !first_sent && started.elapsed() >= Duration::from_secs(1) {
                    let waiting: Vec<String> = peers
                        .iter()
                        .filter(|(_, p)| !p.awaited.is_empty())
                        .map(|(name, p)| format!("{name} ({})", p.awaited.iter().copied().collect::<Vec<_>>().join(", ")))
                        .collect();
                    tracing::debug!(
                        local = ?local.awaited,
                        peers = ?waiting,
                        peers_known,
                        "the first registry waits for these lists"
                    );
                }
            }
            _ = debounce.due(), if local.awaited.is_empty()
                && (first_sent || started.elapsed() >= PEER_START_WAIT || peers_settled(peers_known, &peers)) => {
                first_sent = true;
                let remember = started.elapsed() < config.peer_stale_after;
                let registry = build(&config, &local, &peers, remember, &mut assembler, &mut reported, &metrics);
                warn_clusterless(&mut peers);
                report_peers(&metrics, &peers, &unusable);
                if tx.send(Ok(registry)).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Whether every peer known at start has listed or failed (an unreachable
/// peer is not waited for).
fn peers_settled(known: bool, peers: &BTreeMap<String, Watched>) -> bool {
    known
        && peers
            .values()
            .all(|p| p.awaited.is_empty() || p.failing_since.is_some())
}

fn describe(source: &Source) -> String {
    match source {
        Source::Local => "the local cluster".to_string(),
        Source::Peer(name) => format!("peer {name}"),
    }
}

/// The registry from the local view and every current peer's, built by
/// what changed since the last ([`Assembler`]). Warnings (objects left
/// out, conflicts) are logged when they first appear.
fn build(
    config: &WatchConfig,
    local: &Watched,
    peers: &BTreeMap<String, Watched>,
    remember: bool,
    assembler: &mut Assembler,
    reported: &mut BTreeSet<String>,
    metrics: &Metrics,
) -> Registry {
    let started = Instant::now();
    let mut warnings = Vec::new();
    let mut inputs = vec![local.watch.input(&config.cluster, true, &mut warnings)];
    let mut remembered_views = Vec::new();
    for (name, watched) in peers {
        if watched.dropped {
            continue;
        }
        if watched.awaited.is_empty() {
            inputs.push(watched.watch.input(name, false, &mut warnings));
        } else if remember && let Some(registry) = &config.remembered {
            remembered_views.push(remembered(registry, name));
        }
    }
    let assembled = assembler.build(inputs, remembered_views, &config.zones);
    tracing::debug!(
        services = assembled.registry.services.len(),
        incremental = assembled.incremental,
        ms = started.elapsed().as_millis() as u64,
        "registry built from the registry resources"
    );
    let undecoded = warnings.len() + assembled.undecoded.len();
    warnings.extend(assembled.undecoded);
    warnings.extend(assembled.warnings);
    let conflicts: Vec<String> = assembled
        .conflicts
        .iter()
        .map(|c| format!("conflict: {c}"))
        .collect();
    let gauges = [
        (
            &metrics.registry_objects_skipped,
            undecoded + assembled.skipped,
        ),
        (
            &metrics.registry_dangling_exports,
            assembled.dangling_exports,
        ),
        (&metrics.registry_conflicts, assembled.conflicts.len()),
    ];
    for (gauge, value) in gauges {
        gauge.store(value as u64, Ordering::Relaxed);
    }
    *metrics.registry_conflict_detail.lock().unwrap() = assembled.conflicts;
    let current: BTreeSet<String> = warnings.into_iter().chain(conflicts).collect();
    for warning in current.difference(reported) {
        tracing::warn!("{warning}");
    }
    *reported = current;
    assembled.registry
}

/// What `registry` (the last-known-good one) says peer `name` said: its
/// MeshCluster and the services it exports (from it alone).
fn remembered(registry: &Registry, name: &str) -> View {
    let part = Registry {
        clusters: registry
            .clusters
            .iter()
            .filter(|c| c.name == name)
            .cloned()
            .collect(),
        services: registry
            .services
            .iter()
            .filter(|s| s.exported_from.iter().any(|c| c == name))
            .map(|s| {
                let mut service = s.as_ref().clone();
                service.exported_from = smallvec::smallvec![name.into()];
                std::sync::Arc::new(service)
            })
            .collect(),
    };
    let (clusters, services) = declared(&part, "last-known-good");
    View {
        cluster: name.to_string(),
        local: false,
        clusters,
        services: services.into_iter().map(std::sync::Arc::new).collect(),
        exports: Vec::new(),
    }
}

/// Warns once about each listed peer that holds no MeshCluster of its own
/// name: its own exports then have no gateway and are not served, which
/// is most often a kubeconfig read in the wrong namespace.
fn warn_clusterless(peers: &mut BTreeMap<String, Watched>) {
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
fn report_peers(
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
    *metrics.peers.lock().unwrap() = status;
}

#[cfg(test)]
mod tests;
