//! The controller's input loop: what reaches the controller, and the one
//! task that hands it over. The registry source's versions pass the shrink
//! brake (design §2) on the way; the hand-written hosts of drop-in mode and
//! the VIP record of the owned ServiceEntries go straight in. Which sources
//! run is the caller's choice (`serve`); this loop only hands on what they
//! send.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, watch};

use super::Controller;
use crate::index::HandWritten;
use crate::metrics::Metrics;
use crate::registry::brake::{Brake, BrakeConfig, Decision, HeldBack};
use crate::registry::{Registry, RegistryError};

/// A host (lower-case) and the addresses its owned ServiceEntry records
/// (what `mesh::record` reads back).
pub type Recorded = (String, Vec<IpAddr>);

/// The channels into the controller, and the brake on the registry's.
pub struct Feeds {
    registry: mpsc::Receiver<Result<Registry, RegistryError>>,
    hand_written: Option<mpsc::Receiver<Vec<HandWritten>>>,
    record: Option<mpsc::Receiver<Vec<Recorded>>>,
    brake: Braked,
}

impl Feeds {
    /// The loop over the registry source's channel, drop-in mode's (when it
    /// runs) and the record's (when it runs), with a brake of `brake` whose
    /// state `metrics` reports.
    pub fn new(
        registry: mpsc::Receiver<Result<Registry, RegistryError>>,
        hand_written: Option<mpsc::Receiver<Vec<HandWritten>>>,
        record: Option<mpsc::Receiver<Vec<Recorded>>>,
        brake: BrakeConfig,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            registry,
            hand_written,
            record,
            brake: Braked {
                brake: Brake::new(brake),
                held: watch::Sender::new(None),
                metrics,
            },
        }
    }

    /// Offers a version read before the loop runs (the registry file's
    /// first read, so the first answers come from it) through the brake.
    pub fn offer(&mut self, controller: &mut Controller, registry: Registry) {
        self.brake.offer(controller, registry);
    }

    /// The registry version the brake holds, if any (for explain).
    pub fn held(&self) -> watch::Receiver<Option<HeldBack>> {
        self.brake.held.subscribe()
    }

    /// Hands every version, hand-written set and record to `controller`
    /// until the registry source ends.
    pub async fn run(mut self, mut controller: Controller) {
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
        self.metrics
            .registry
            .reloads_failed
            .fetch_add(1, Ordering::Relaxed);
        tracing::error!("registry not reloaded, still serving the last good one: {error}")
    }

    fn report(&self) {
        let held = self.brake.held().cloned();
        let removed = held.as_ref().map_or(0, |h| h.removed as u64);
        self.metrics
            .registry
            .held_back
            .store(removed, Ordering::Relaxed);
        self.held.send_replace(held);
    }
}
