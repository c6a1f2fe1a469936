//! The writes of a pass: server-side applies and deletes, a bounded number
//! at a time, paced, and patient with an API server that says 429.
//!
//! One write at a time costs a round trip each (about 19 ms on loopback):
//! a new leader facing 10,000 ServiceEntries needed over three minutes.
//! `--sync-concurrency` writes go out together. `--sync-qps` caps how many
//! start per second, so a large pass does not crowd out the API server's
//! other clients; and a 429 (API Priority and Fairness, or a proxy) is
//! waited out as its `retryAfterSeconds` asks, up to [`THROTTLE_RETRIES`]
//! times, before the write counts as failed.

use std::sync::Mutex;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use tokio::time::Instant;

use super::failure::Failure;
use super::{FIELD_MANAGER, Ref, Report, resource};
use crate::mesh::{IstioApiVersion, Kind, Object};

/// How many times a write waits out a 429 before it counts as failed.
pub const THROTTLE_RETRIES: usize = 5;

/// How hard a pass may press the API server.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Writes in flight at once (at least 1).
    pub concurrency: usize,
    /// Writes started per second at most; `None`: no cap.
    pub qps: Option<f64>,
}

impl Default for Limits {
    /// 8 at a time, no cap: 10,000 ServiceEntries in seconds on a real API
    /// server (bench/sync_scale), and a small share of its default
    /// max-mutating-requests-inflight (200).
    fn default() -> Self {
        Self {
            concurrency: 8,
            qps: None,
        }
    }
}

/// Spaces the starts of writes `interval` apart. A hand-written pacer:
/// tower's RateLimit would have to wrap the client, pacing the watches and
/// lists as well, and cannot be cloned into it.
pub(crate) struct Pacer {
    interval: Option<Duration>,
    next: Mutex<Instant>,
}

impl Pacer {
    pub(crate) fn new(qps: Option<f64>) -> Self {
        Self {
            interval: qps
                .filter(|q| *q > 0.0)
                .map(|q| Duration::from_secs_f64(1.0 / q)),
            next: Mutex::new(Instant::now()),
        }
    }

    /// Waits for this write's slot.
    pub(crate) async fn wait(&self) {
        let Some(interval) = self.interval else {
            return;
        };
        let at = {
            let mut next = self.next.lock().unwrap();
            let at = (*next).max(Instant::now());
            *next = at + interval;
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

/// How a pass writes to one namespace.
pub(super) struct Writer {
    client: kube::Client,
    namespace: String,
    /// The `networking.istio.io` version every request is made in.
    version: IstioApiVersion,
    concurrency: usize,
    pacer: Pacer,
}

/// What one write came to.
pub(crate) enum Outcome {
    Done { throttled: usize },
    Failed { failure: Failure, throttled: usize },
    NotStarted,
}

impl Writer {
    pub(super) fn new(
        client: &kube::Client,
        namespace: &str,
        version: IstioApiVersion,
        limits: &Limits,
    ) -> Self {
        Self {
            client: client.clone(),
            namespace: namespace.to_string(),
            version,
            concurrency: limits.concurrency.max(1),
            pacer: Pacer::new(limits.qps),
        }
    }

    fn api(&self, kind: Kind) -> Api<DynamicObject> {
        Api::namespaced_with(
            self.client.clone(),
            &self.namespace,
            &resource(kind, self.version),
        )
    }

    /// Applies every object (server-side apply, field manager `globaldns`,
    /// `force`), adding to `report`.
    pub(super) async fn apply_all(
        &self,
        objects: &[Object],
        holds: &(dyn Fn() -> bool + Sync),
        report: &mut Report,
    ) {
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let writes: Vec<_> = objects
            .iter()
            .map(|object| self.apply(object, &params, holds))
            .collect();
        let outcomes = futures::stream::iter(writes)
            .buffered(self.concurrency)
            .collect::<Vec<Outcome>>()
            .await;
        tally(outcomes, report, |r| &mut r.applied);
    }

    async fn apply(
        &self,
        object: &Object,
        params: &PatchParams,
        holds: &(dyn Fn() -> bool + Sync),
    ) -> Outcome {
        self.pacer.wait().await;
        if !holds() {
            return Outcome::NotStarted;
        }
        let target = Ref {
            kind: object.kind(),
            name: object.name().to_string(),
        };
        let patch = Patch::Apply(object.to_value());
        let api = self.api(object.kind());
        patiently("apply", &target, || {
            api.patch(object.name(), params, &patch)
        })
        .await
    }

    /// Deletes every object named; one already gone counts as deleted.
    pub(super) async fn delete_all(
        &self,
        targets: &[Ref],
        holds: &(dyn Fn() -> bool + Sync),
        report: &mut Report,
    ) {
        let writes: Vec<_> = targets
            .iter()
            .map(|target| self.delete(target, holds))
            .collect();
        let outcomes = futures::stream::iter(writes)
            .buffered(self.concurrency)
            .collect::<Vec<Outcome>>()
            .await;
        tally(outcomes, report, |r| &mut r.deleted);
    }

    async fn delete(&self, target: &Ref, holds: &(dyn Fn() -> bool + Sync)) -> Outcome {
        self.pacer.wait().await;
        if !holds() {
            return Outcome::NotStarted;
        }
        let api = self.api(target.kind);
        patiently("delete", target, || async {
            match api.delete(&target.name, &DeleteParams::default()).await {
                Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
                other => other.map(|_| ()),
            }
        })
        .await
    }
}

/// Runs `write`, waiting out 429s as the API server asks.
pub(crate) async fn patiently<T, F, Fut>(
    what: &'static str,
    target: &impl std::fmt::Display,
    mut write: F,
) -> Outcome
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let mut throttled = 0;
    loop {
        match write().await {
            Ok(_) => return Outcome::Done { throttled },
            Err(kube::Error::Api(status)) if status.code == 429 && throttled < THROTTLE_RETRIES => {
                throttled += 1;
                let seconds = status
                    .details
                    .as_ref()
                    .map_or(0, |d| d.retry_after_seconds)
                    .max(1);
                tokio::time::sleep(Duration::from_secs(u64::from(seconds))).await;
            }
            Err(e) => {
                return Outcome::Failed {
                    failure: Failure::new(what, target, &e),
                    throttled,
                };
            }
        }
    }
}

/// Adds the outcomes to `report`: successes to the count `done` picks.
pub(crate) fn tally(
    outcomes: Vec<Outcome>,
    report: &mut Report,
    done: fn(&mut Report) -> &mut usize,
) {
    for outcome in outcomes {
        match outcome {
            Outcome::Done { throttled } => {
                *done(report) += 1;
                report.throttled += throttled;
            }
            Outcome::Failed { failure, throttled } => {
                report.failures.push(failure);
                report.throttled += throttled;
            }
            Outcome::NotStarted => report.lease_lost = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_pacer_spaces_starts_by_the_qps() {
        let pacer = Pacer::new(Some(10.0));
        let start = Instant::now();
        for _ in 0..5 {
            pacer.wait().await;
        }
        assert_eq!(start.elapsed(), Duration::from_millis(400));
        let unpaced = Pacer::new(None);
        let start = Instant::now();
        unpaced.wait().await;
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
