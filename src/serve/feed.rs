//! What reaches the controller, and the one task that hands it over: the
//! registry source's versions (through the shrink brake), the hand-written
//! hosts of drop-in mode, and the VIP record of the owned ServiceEntries.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::kubernetes::Cluster;
use super::{ServeConfig, Source};
use crate::controller::Controller;
use crate::index::HandWritten;
use crate::mesh;
use crate::mesh::record::Recorded;
use crate::metrics::Metrics;
use crate::registry::brake::{Brake, Decision, HeldBack};
use crate::registry::file::FileWatcher;
use crate::registry::kube;
use crate::registry::{Registry, RegistryError};

/// The channels into the controller, and the brake on the registry's.
pub(super) struct Feeds {
    registry: mpsc::Receiver<Result<Registry, RegistryError>>,
    hand_written: Option<mpsc::Receiver<Vec<HandWritten>>>,
    record: Option<mpsc::Receiver<Vec<Recorded>>>,
    brake: Braked,
}

impl Feeds {
    /// Starts the sources: the registry file (read once now, so the first
    /// answers come from it) or the registry resources' watch (its first
    /// registry comes once both lists are in; until then the last-known-good
    /// one serves), and, when asked for, drop-in mode's watch and the
    /// record's.
    pub(super) async fn start(
        config: &ServeConfig,
        controller: &mut Controller,
        cluster: Option<&Cluster>,
        metrics: &Arc<Metrics>,
        tasks: &mut JoinSet<()>,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Self> {
        let (tx, registry) = mpsc::channel(1);
        let mut brake = Braked {
            brake: Brake::new(config.brake),
            held: watch::Sender::new(None),
            metrics: metrics.clone(),
        };
        match (&config.registry, cluster) {
            (Source::File(path), _) => {
                let mut watcher = FileWatcher::new(
                    path.clone(),
                    config.settings.zones.clone(),
                    config.reload_interval,
                    config.in_place_settle,
                );
                // On a blocking thread: DNS may be answering already (a
                // warm start), and its TCP task, spawned on this worker,
                // is first polled once this task lets go of the worker.
                let (watcher, first) = tokio::task::spawn_blocking(move || {
                    let first = watcher.load_now();
                    (watcher, first)
                })
                .await
                .context("the registry file's first read panicked")?;
                match first {
                    Ok(first) => brake.offer(controller, first),
                    Err(e) => tracing::error!("{e}"),
                }
                tasks.spawn(watcher.run(tx, shutdown.clone()));
            }
            (Source::Kubernetes { peers, .. }, Some(cluster)) => {
                let watch = kube::source::WatchConfig {
                    namespace: cluster.namespace.clone(),
                    zones: config.settings.zones.clone(),
                    cluster: config.cluster.clone().unwrap_or_default(),
                    peer_files: peers.files.clone(),
                    peer_secrets: peers.secrets,
                    peer_stale_after: peers.stale_after,
                    remembered: controller.current().cloned(),
                };
                tasks.spawn(kube::source::run(
                    cluster.client.clone(),
                    watch,
                    tx,
                    metrics.clone(),
                    shutdown.clone(),
                ));
            }
            (Source::Kubernetes { .. }, None) => {
                anyhow::bail!("the Kubernetes registry source needs a cluster")
            }
        }
        let hand_written = match (config.serve_service_entries, cluster) {
            (true, Some(cluster)) => {
                let (tx, rx) = mpsc::channel(1);
                tasks.spawn(mesh::dropin::run(
                    cluster.client.clone(),
                    tx,
                    shutdown.clone(),
                ));
                Some(rx)
            }
            _ => None,
        };
        let record = match (&config.sync, cluster) {
            (Some(sync), Some(cluster)) => {
                let (tx, rx) = mpsc::channel(1);
                tasks.spawn(mesh::record::run(
                    cluster.client.clone(),
                    sync.target.namespace.clone(),
                    tx,
                    shutdown.clone(),
                ));
                Some(rx)
            }
            _ => None,
        };
        Ok(Self {
            registry,
            hand_written,
            record,
            brake,
        })
    }

    /// The registry version the brake holds, if any (for explain).
    pub(super) fn held(&self) -> watch::Receiver<Option<HeldBack>> {
        self.brake.held.subscribe()
    }

    /// Hands every version, hand-written set and record to `controller`
    /// until the registry source ends.
    pub(super) async fn run(mut self, mut controller: Controller) {
        loop {
            let release = self.brake.brake.held().map(HeldBack::release_at);
            let far = std::time::Instant::now() + Duration::from_secs(3600);
            let release_timer = tokio::time::sleep_until(release.unwrap_or(far).into());
            tokio::select! {
                result = self.registry.recv() => match result {
                    Some(Ok(registry)) => self.brake.offer(&mut controller, registry),
                    Some(Err(e)) => self.brake.refused(&e),
                    None => return,
                },
                _ = release_timer, if release.is_some() => self.brake.release(&mut controller),
                hosts = next(&mut self.hand_written) => {
                    controller.set_hand_written(hosts, SystemTime::now());
                }
                record = next(&mut self.record) => {
                    controller.set_record(record, SystemTime::now());
                }
            }
        }
    }
}

/// The next value of an optional channel; never, once it is closed or when
/// there is none.
async fn next<T>(channel: &mut Option<mpsc::Receiver<T>>) -> T {
    if let Some(rx) = channel {
        if let Some(value) = rx.recv().await {
            return value;
        }
        *channel = None;
    }
    std::future::pending().await
}

/// The shrink brake with what it reports to: the metric, and the held
/// version for explain.
struct Braked {
    brake: Brake,
    held: tokio::sync::watch::Sender<Option<HeldBack>>,
    metrics: Arc<Metrics>,
}

impl Braked {
    /// Passes a version from the source to the controller, or holds it.
    fn offer(&mut self, controller: &mut Controller, registry: Registry) {
        let before = self.brake.held().map(|h| h.since);
        match self
            .brake
            .offer(controller.current(), registry, std::time::Instant::now())
        {
            Decision::Publish(registry) => {
                controller.apply(registry, SystemTime::now());
            }
            Decision::Hold(held) if before != Some(held.since) => {
                tracing::warn!("registry version held back: {held}");
            }
            Decision::Hold(_) => {}
        }
        self.report();
    }

    /// Publishes the held version if it has been stable for the window.
    fn release(&mut self, controller: &mut Controller) {
        if let Some(registry) = self.brake.release(std::time::Instant::now()) {
            tracing::warn!(
                services = registry.services.len(),
                "held registry version unchanged for the hold window: publishing it"
            );
            controller.apply(registry, SystemTime::now());
        }
        self.report();
    }

    /// A version the source could not load: the held one, if any, is no
    /// longer what the source says (it was not stable), and the last good
    /// registry keeps serving.
    fn refused(&mut self, error: &RegistryError) {
        self.brake.discard();
        self.report();
        self.metrics.reloads_failed.fetch_add(1, Ordering::Relaxed);
        tracing::error!("registry not reloaded, still serving the last good one: {error}")
    }

    fn report(&self) {
        let held = self.brake.held().cloned();
        let removed = held.as_ref().map_or(0, |h| h.removed as u64);
        self.metrics
            .registry_held_back
            .store(removed, Ordering::Relaxed);
        self.held.send_replace(held);
    }
}
