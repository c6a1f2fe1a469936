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
use super::cluster_watch::{Changed, ClusterWatch};
use super::declared::declared;
use super::merge::View;
use super::peers::{Peer, PeerError, PeerEvent};
use crate::metrics::Metrics;
use crate::registry::{Registry, RegistryError};
use crate::watch::Debounce;

mod watched;
use watched::{Watched, peers_settled, report_peers, warn_clusterless};

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

/// Watches the local cluster (and its peers) until `shutdown`, sending
/// each rebuilt registry: after the local lists, and after changes
/// (gathered as [`Debounce`] says). One loop over four kinds of events,
/// each handled by a method of `WatchLoop`: a cluster's watch says
/// something, the set of peers changes, the once-a-second check of stale
/// peers, and the debounce firing, which rebuilds and sends.
pub async fn run(
    client: Client,
    config: WatchConfig,
    tx: mpsc::Sender<Result<Registry, RegistryError>>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let (watch, stream) = ClusterWatch::start(&client, &config.namespace);
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
    let mut state = WatchLoop::new(config, metrics, watch, stream);
    let mut peer_events_open = true;
    let mut staleness = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            event = state.events.next() => match event {
                Some((source, changed)) => state.cluster_changed(&source, &changed),
                None => return,
            },
            event = peer_rx.recv(), if peer_events_open => match event {
                Some(event) => state.peer_changed(event).await,
                None => {
                    peer_events_open = false;
                    state.peers_known = true;
                }
            },
            _ = staleness.tick() => state.check_stale(),
            _ = state.debounce.due(), if state.may_send() => {
                let registry = state.rebuild();
                if tx.send(Ok(registry)).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// What [`run`]'s loop keeps between events: the clusters watched and the
/// stream of what they say, the peers no client could be made for, the
/// changes waiting to be rebuilt, and whether the first registry was sent.
struct WatchLoop {
    config: WatchConfig,
    metrics: Arc<Metrics>,
    local: Watched,
    peers: BTreeMap<String, Watched>,
    /// What every watched cluster says, tagged with which cluster says it.
    events: SelectAll<BoxStream<'static, (Source, Changed)>>,
    /// Peers no client could be made for, and why: reported beside the rest.
    unusable: BTreeMap<String, PeerError>,
    started: Instant,
    /// The peers known at start have all been sent (or there are none to
    /// wait for: no peer Secrets are watched, or their watch ended).
    peers_known: bool,
    first_sent: bool,
    debounce: Debounce,
    /// The warnings and conflicts of the last registry, logged once each.
    reported: BTreeSet<String>,
    assembler: Assembler,
}

impl WatchLoop {
    /// The loop's state at start: the local cluster's watch (`watch`,
    /// saying what it does on `stream`) and no peer yet.
    fn new(
        config: WatchConfig,
        metrics: Arc<Metrics>,
        watch: ClusterWatch,
        stream: BoxStream<'static, Changed>,
    ) -> Self {
        let local = Watched::new(watch, &config.namespace);
        let mut events = SelectAll::new();
        events.push(stream.map(|c| (Source::Local, c)).boxed());
        Self {
            peers_known: !config.peer_secrets,
            config,
            metrics,
            local,
            peers: BTreeMap::new(),
            events,
            unusable: BTreeMap::new(),
            started: Instant::now(),
            first_sent: false,
            debounce: Debounce::default(),
            reported: BTreeSet::new(),
            assembler: Assembler::default(),
        }
    }

    /// A cluster's watch said something: an error is logged (the watch
    /// retries by itself), and the cluster notes it; a change that may
    /// change the registry is gathered for the next rebuild.
    fn cluster_changed(&mut self, source: &Source, changed: &Changed) {
        if let Changed::Error(kind, e) = changed {
            // The watch retries by itself (watch).
            tracing::warn!(
                "watching {} objects of {}: {e}",
                kind.name(),
                describe(source)
            );
        }
        let watched = match source {
            Source::Local => Some(&mut self.local),
            Source::Peer(name) => self.peers.get_mut(name),
        };
        if let Some(watched) = watched
            && watched.note(changed)
        {
            self.debounce.touch();
        }
    }

    /// The set of peers changed: a peer is read (anew), the peers known at
    /// start are all in, or a peer goes with its exports.
    async fn peer_changed(&mut self, event: PeerEvent) {
        match event {
            PeerEvent::Up(peer) => self.peer_up(&peer).await,
            PeerEvent::Listed => self.peers_known = true,
            PeerEvent::Down(name) => {
                if let Some(old) = self.peers.remove(&name) {
                    old.stop.cancel();
                    tracing::info!(peer = %name, "peer removed: its exports go");
                }
                self.unusable.remove(&name);
            }
        }
        self.debounce.touch();
    }

    /// Starts watching `peer`, in place of a peer of its name; one no
    /// client can be made for is warned of and kept as unusable.
    async fn peer_up(&mut self, peer: &Peer) {
        if let Some(old) = self.peers.remove(&peer.name) {
            old.stop.cancel();
        }
        self.unusable.remove(&peer.name);
        match peer.client().await {
            Ok(peer_client) => {
                let namespace = peer
                    .namespace()
                    .unwrap_or_else(|| self.config.namespace.clone());
                let (watch, stream) = ClusterWatch::start(&peer_client, &namespace);
                let watched = Watched::new(watch, &namespace);
                let stop = watched.stop.clone();
                let name = peer.name.clone();
                self.events.push(
                    stream
                        .take_until(stop.cancelled_owned())
                        .map(move |c| (Source::Peer(name.clone()), c))
                        .boxed(),
                );
                tracing::info!(peer = %peer.name, source = %peer.source, %namespace, "reading peer cluster");
                self.peers.insert(peer.name.clone(), watched);
            }
            Err(e) => {
                tracing::warn!("peer {} not read: {e}", peer.name);
                self.unusable.insert(peer.name.clone(), e);
            }
        }
    }

    /// The once-a-second check: a peer unreachable for
    /// `--peer-stale-after` has its exports dropped (a change to rebuild),
    /// the peers' state is reported, and, while the first registry has
    /// not been sent, what it waits for is logged (debug).
    fn check_stale(&mut self) {
        for (name, watched) in &mut self.peers {
            let stale = watched
                .failing_since
                .is_some_and(|since| since.elapsed() >= self.config.peer_stale_after);
            if stale && !watched.dropped {
                watched.dropped = true;
                tracing::warn!(peer = %name, "peer unreachable for {:?}: its exports are dropped", self.config.peer_stale_after);
                self.debounce.touch();
            }
        }
        self.report();
        if !self.first_sent && self.started.elapsed() >= Duration::from_secs(1) {
            let waiting: Vec<String> = self
                .peers
                .iter()
                .filter(|(_, p)| !p.awaited.is_empty())
                .map(|(name, p)| {
                    let kinds: Vec<_> = p.awaited.iter().copied().collect();
                    format!("{name} ({})", kinds.join(", "))
                })
                .collect();
            tracing::debug!(
                local = ?self.local.awaited,
                peers = ?waiting,
                peers_known = self.peers_known,
                "the first registry waits for these lists"
            );
        }
    }

    /// Whether a registry may be sent when the debounce fires: once the
    /// local lists are in and, for the first, once the peers known at
    /// start have listed or failed (at most [`PEER_START_WAIT`]).
    fn may_send(&self) -> bool {
        self.local.awaited.is_empty()
            && (self.first_sent
                || self.started.elapsed() >= PEER_START_WAIT
                || peers_settled(self.peers_known, &self.peers))
    }

    /// The debounce fired: the registry rebuilt from what the clusters
    /// say now (a peer not yet heard from since the start stands in by
    /// what it last said, within `--peer-stale-after`), with the peers'
    /// state reported.
    fn rebuild(&mut self) -> Registry {
        self.first_sent = true;
        let remember = self.started.elapsed() < self.config.peer_stale_after;
        let registry = build(
            &self.config,
            &self.local,
            &self.peers,
            remember,
            &mut self.assembler,
            &mut self.reported,
            &self.metrics,
        );
        self.report();
        registry
    }

    /// Warns of peers without their MeshCluster and reports the peers'
    /// state to the metrics.
    fn report(&mut self) {
        warn_clusterless(&mut self.peers);
        report_peers(&self.metrics, &self.peers, &self.unusable);
    }
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
            &metrics.registry.objects_skipped,
            undecoded + assembled.skipped,
        ),
        (
            &metrics.registry.dangling_exports,
            assembled.dangling_exports,
        ),
        (&metrics.registry.conflicts, assembled.conflicts.len()),
    ];
    for (gauge, value) in gauges {
        gauge.store(value as u64, Ordering::Relaxed);
    }
    *metrics.registry.conflict_detail.lock().unwrap() = assembled.conflicts;
    *metrics.registry.warning_detail.lock().unwrap() = warnings.clone();
    let current: BTreeSet<String> = warnings.into_iter().chain(conflicts).collect();
    for warning in current.difference(reported) {
        tracing::warn!("{warning}");
    }
    if current != *reported {
        metrics.registry.findings_changed.notify_one();
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
        ..Registry::default()
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

#[cfg(test)]
mod tests;
