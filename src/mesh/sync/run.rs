//! The sync as a long-running task: the Lease, when to run a pass, and
//! what a pass's outcome does (metrics, logs, the health detail, retries).

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use kube::api::Api;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::failure::{Failure, summary};
use super::probing::Probing;
use super::{Report, sync_once};
use crate::controller::{Allocated, Settings};
use crate::mesh::api_version;
use crate::mesh::gateway_health::HealthConfig;
use crate::mesh::lease::Elector;
use crate::mesh::{IstioApiVersion, Object, RenderError, Target, render};
use crate::metrics::Metrics;

/// How the sync runs (`serve --sync-service-entries`).
#[derive(Clone, Debug, PartialEq)]
pub struct SyncConfig {
    /// The local cluster and where its objects go, with the choices that
    /// shape them.
    pub target: Target,
    /// Largest share of owned objects one pass may delete.
    pub brake: f64,
    /// The Lease, in the namespace globaldns runs in.
    pub lease_name: String,
    /// This replica's name in the Lease (the pod name).
    pub identity: String,
    /// A full pass at least this often, to repair hand edits and drift.
    pub resync: Duration,
    /// How hard a pass may press the API server.
    pub limits: super::Limits,
    /// How the Lease holder probes the remote gateways (design §5, gateway
    /// health); `None`: no probes, no gateway is withdrawn.
    pub probes: Option<HealthConfig>,
    /// Keep the MCS ServiceImports too (`--service-imports`), after the
    /// Istio objects, in the same pass ([`crate::mesh::mcs::import_sync`]).
    pub service_imports: bool,
    /// With `service_imports`: also set the conditions of the local
    /// cluster's ServiceExports (`--registry kubernetes`, where they are
    /// read; [`crate::mesh::mcs::export_status`]).
    pub export_status: bool,
}

/// How long shutdown waits to give the Lease up.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(2);

/// Lease duration: a new leader takes over at most this long after the
/// old one stopped renewing.
pub const LEASE_DURATION: Duration = Duration::from_secs(15);

/// First retry after a pass with failed writes (or that failed as a whole),
/// doubled on each failure in a row.
pub const RETRY_FIRST: Duration = Duration::from_secs(1);
/// Longest wait between retries: an error that does not go away (RBAC as
/// installed lacks a verb) is tried once a minute, not once per resync.
pub const RETRY_MAX: Duration = Duration::from_secs(60);

/// When the next retry is due, doubling while passes keep failing.
#[derive(Debug, Default)]
struct Retry {
    next: Option<(Instant, Duration)>,
}

impl Retry {
    /// A pass failed: the next one is due after the next wait.
    fn failed(&mut self) -> Duration {
        let wait = self
            .next
            .map_or(RETRY_FIRST, |(_, last)| (last * 2).min(RETRY_MAX));
        self.next = Some((Instant::now() + wait, wait));
        wait
    }

    fn succeeded(&mut self) {
        self.next = None;
    }

    async fn due(&self) {
        match self.next {
            Some((at, _)) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    }
}

/// Keeps the ServiceEntries in step until `shutdown`: renews or seeks the
/// lease every third of its duration, and while holding it runs a pass on
/// every published registry, at least every `resync`, and after a pass
/// with failures on a retry schedule ([`RETRY_FIRST`] doubling to
/// [`RETRY_MAX`]). A replica that is not (or no longer) the holder writes
/// nothing.
pub async fn run(
    client: kube::Client,
    lease_namespace: String,
    config: SyncConfig,
    settings: Settings,
    mut changes: watch::Receiver<Option<Arc<Allocated>>>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let elector = Elector::new(
        Api::namespaced(client.clone(), &lease_namespace),
        &config.lease_name,
        &config.identity,
        LEASE_DURATION,
    );
    let mut tick = tokio::time::interval(elector.renew_every());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut leader = false;
    let mut pending = true;
    let mut last_pass: Option<Instant> = None;
    let mut retry = Retry::default();
    let lease = format!("{lease_namespace}/{}", config.lease_name);
    let mut probing = Probing::new(config.probes, &config.target.cluster, metrics.clone());
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            // A gateway withdrawn or back: render again.
            _ = probing.changed() => pending = true,
            // An export without its Service, a conflict come or gone: the
            // ServiceExports' conditions may say something new.
            _ = metrics.registry.findings_changed.notified(), if config.export_status => pending = true,
            changed = changes.changed() => {
                if changed.is_err() {
                    break;
                }
                pending = true;
            }
            _ = retry.due() => {
                retry.next = None;
                pending = true;
            }
            // A resync shorter than the renewal period is kept too.
            _ = resync_due(last_pass, config.resync) => {}
            _ = tick.tick() => {}
        }
        let now_leader = match elector.try_lead().await {
            Ok(held) => held,
            Err(e) => {
                // Unsure whether the renewal landed: go on while the last
                // one's deadline lasts.
                tracing::warn!("lease {lease}: {e}");
                elector.holds()
            }
        };
        if now_leader != leader {
            tracing::info!(leader = now_leader, identity = %config.identity, "sync leadership changed");
            leader = now_leader;
            pending |= leader;
            probing.lead(leader, &shutdown);
            metrics.sync.leader.store(u64::from(leader), Relaxed);
            if !leader {
                // Failures of a pass this replica no longer runs are not news.
                metrics.sync.failing.store(0, Relaxed);
                *metrics.sync.detail.lock().unwrap() = String::new();
            }
        }
        let due = last_pass.is_none_or(|t| t.elapsed() >= config.resync);
        if !leader || !(pending || due) {
            continue;
        }
        let Some(current) = changes.borrow_and_update().clone() else {
            continue; // nothing published yet
        };
        probing.registry(&current.registry);
        let withdrawn = probing.withdrawn();
        let (version, desired) =
            match prepare(&client, &config, &settings, &current, withdrawn).await {
                Ok(prepared) => prepared,
                Err(Unprepared::Discovery(failure)) => {
                    pending = false;
                    last_pass = Some(Instant::now());
                    pass_failed(&metrics, &mut retry, failure);
                    continue;
                }
                Err(Unprepared::Render(e)) => {
                    tracing::error!("Istio objects not rendered: {e}");
                    pending = false;
                    continue;
                }
            };
        // A pass may outlast a renewal period: the lease is renewed beside
        // it, and the pass asks before every write whether it still holds.
        let holds = || elector.holds();
        let pass = sync_once(
            &client,
            &config.target.namespace,
            version,
            &desired,
            config.brake,
            &config.limits,
            &holds,
        );
        let imports = async {
            let mut report = pass.await?;
            if config.service_imports && !report.lease_lost {
                let imports = imports_pass(&client, &config, &settings, &current, &holds).await;
                merge(&mut report, imports);
            }
            Ok(report)
        };
        let outcome = tokio::select! {
            outcome = imports => outcome,
            never = renew_beside(&elector, &lease) => match never {},
            _ = shutdown.cancelled() => break,
        };
        pending = false;
        last_pass = Some(Instant::now());
        settle(
            outcome,
            &metrics,
            &mut retry,
            &lease,
            &config.target.namespace,
        );
    }
    if elector.holds() {
        // Bounded: an unreachable API server must not hold up shutdown.
        match tokio::time::timeout(RELEASE_TIMEOUT, elector.release()).await {
            Ok(Ok(())) => tracing::info!("lease {lease} released"),
            Ok(Err(e)) => tracing::warn!("lease {lease} not released, it will expire: {e}"),
            Err(_) => tracing::warn!("lease {lease} not released in time, it will expire"),
        }
    }
    metrics.sync.leader.store(0, Relaxed);
}

/// Why a pass could not start.
enum Unprepared {
    /// Which version of Istio's API to write was not found out.
    Discovery(Failure),
    /// The objects could not be rendered (the cluster is not in the registry).
    Render(RenderError),
}

/// What a pass writes, and in which `networking.istio.io` version: asked
/// of the API server every pass, as an Istio upgrade may add a version
/// (1.22: v1) or take one away while globaldns runs.
async fn prepare(
    client: &kube::Client,
    config: &SyncConfig,
    settings: &Settings,
    current: &Allocated,
    withdrawn: std::collections::BTreeSet<crate::mesh::GatewayKey>,
) -> Result<(IstioApiVersion, Vec<Object>), Unprepared> {
    let version = api_version::istio_api_version(client)
        .await
        .map_err(|e| Unprepared::Discovery(Failure::discovery(&e)))?;
    let target = Target {
        api_version: version,
        withdrawn,
        ..config.target.clone()
    };
    let desired = render(
        &current.registry,
        &settings.zones,
        settings.per_cluster_names,
        &settings.allocator,
        &current.table,
        &target,
    )
    .map_err(Unprepared::Render)?;
    Ok((version, desired))
}

/// The MCS part of a pass, in the MCS version the API server serves: the
/// ServiceImports ([`crate::mesh::mcs::import_sync`]), then the local
/// ServiceExports' conditions when asked for. An empty report when the
/// API server serves no MCS version; a failure (retried like a failed
/// write) when discovery or a list fails.
async fn imports_pass(
    client: &kube::Client,
    config: &SyncConfig,
    settings: &Settings,
    current: &Allocated,
    holds: &(dyn Fn() -> bool + Sync),
) -> Report {
    use crate::mesh::mcs::import_sync;
    let version = match import_sync::version(client).await {
        Ok(Some(version)) => version,
        Ok(None) => {
            tracing::debug!("the API server serves no MCS API: no ServiceImports");
            return Report::default();
        }
        Err(e) => {
            return Report {
                failures: vec![import_sync::discovery_failure(&e)],
                ..Report::default()
            };
        }
    };
    let desired = crate::mesh::mcs::service_imports(
        &current.registry,
        &settings.zones,
        &settings.allocator,
        &current.table,
        version,
    );
    let mut report = match import_sync::sync_once(
        client,
        version,
        &desired,
        config.brake,
        &config.limits,
        holds,
    )
    .await
    {
        Ok(report) => report,
        Err(e) => Report {
            failures: vec![Failure::new("list", &"ServiceImports", &e)],
            ..Report::default()
        },
    };
    if config.export_status && !report.lease_lost {
        let cluster = &config.target.cluster;
        let registry = &current.registry;
        let exports =
            crate::mesh::mcs::export_status::sync_once(client, version, cluster, registry, holds)
                .await;
        merge(&mut report, exports);
    }
    report
}

/// Adds the counts of `more` (a later part of the same pass) to `report`.
fn merge(report: &mut Report, more: Report) {
    report.applied += more.applied;
    report.deleted += more.deleted;
    report.held_back += more.held_back;
    report.conflicts += more.conflicts;
    report.failures.extend(more.failures);
    report.lease_lost |= more.lease_lost;
    report.throttled += more.throttled;
    report.skipped += more.skipped;
}

/// What a pass's outcome does: the counts, the health detail, the log
/// line, and the retry schedule.
fn settle(
    outcome: Result<Report, kube::Error>,
    metrics: &Metrics,
    retry: &mut Retry,
    lease: &str,
    namespace: &str,
) {
    match outcome {
        Ok(report) if report.lease_lost => {
            count(metrics, &report);
            metrics.sync.lease_lost.fetch_add(1, Relaxed);
            tracing::warn!(
                applied = report.applied,
                deleted = report.deleted,
                "lease {lease} lost during a sync pass: stopped writing"
            );
            // The next round finds out who holds it now.
        }
        Ok(report) if report.failures.is_empty() => {
            count(metrics, &report);
            retry.succeeded();
            metrics.sync.failing.store(0, Relaxed);
            *metrics.sync.detail.lock().unwrap() = String::new();
            tracing::info!(
                applied = report.applied,
                deleted = report.deleted,
                held_back = report.held_back,
                conflicts = report.conflicts,
                "Istio objects synced"
            );
        }
        Ok(report) => {
            count(metrics, &report);
            let wait = retry.failed();
            let line = summary(&report.failures);
            metrics
                .sync
                .failing
                .store(report.failures.len() as u64, Relaxed);
            *metrics.sync.detail.lock().unwrap() = format!(
                "{} write(s) failed in the last sync pass: {line}",
                report.failures.len()
            );
            tracing::warn!(
                applied = report.applied,
                deleted = report.deleted,
                failed = report.failures.len(),
                retry_in_seconds = wait.as_secs_f64(),
                "sync pass: {} write(s) failed: {line}",
                report.failures.len()
            );
        }
        Err(e) => pass_failed(metrics, retry, Failure::new("list", &namespace, &e)),
    }
}

/// A pass that failed as a whole (nothing written): counted, shown as the
/// health detail, logged, and retried on the retry schedule.
fn pass_failed(metrics: &Metrics, retry: &mut Retry, failure: Failure) {
    let wait = retry.failed();
    metrics.sync.failures[failure.reason.index()].fetch_add(1, Relaxed);
    metrics.sync.failing.store(1, Relaxed);
    *metrics.sync.detail.lock().unwrap() = format!("the last sync pass failed: {failure}");
    tracing::warn!(
        retry_in_seconds = wait.as_secs_f64(),
        "sync pass failed: {failure}"
    );
}

/// Waits until a pass is due by `resync` after the last one (none yet: not
/// this way; the first pass comes with the Lease).
async fn resync_due(last_pass: Option<Instant>, resync: Duration) {
    match last_pass {
        Some(at) => tokio::time::sleep_until(at + resync).await,
        None => std::future::pending().await,
    }
}

/// Adds a pass's counts to the metrics.
fn count(metrics: &Metrics, report: &Report) {
    metrics.sync.passes.fetch_add(1, Relaxed);
    metrics
        .sync
        .applied
        .fetch_add(report.applied as u64, Relaxed);
    metrics
        .sync
        .deleted
        .fetch_add(report.deleted as u64, Relaxed);
    for failure in &report.failures {
        metrics.sync.failures[failure.reason.index()].fetch_add(1, Relaxed);
    }
    metrics
        .sync
        .held_back
        .store(report.held_back as u64, Relaxed);
    metrics
        .sync
        .throttled
        .fetch_add(report.throttled as u64, Relaxed);
}

/// Renews the lease every renewal period while a pass runs. Never ends;
/// the pass reads the outcome through [`Elector::holds`].
async fn renew_beside(elector: &Elector, lease: &str) -> std::convert::Infallible {
    loop {
        tokio::time::sleep(elector.renew_every()).await;
        if let Err(e) = elector.try_lead().await {
            tracing::warn!("lease {lease}: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn retries_double_up_to_a_minute_and_reset_on_success() {
        let mut retry = Retry::default();
        let waits: Vec<u64> = (0..9).map(|_| retry.failed().as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        retry.succeeded();
        assert_eq!(retry.failed(), RETRY_FIRST);
        let start = Instant::now();
        retry.due().await;
        assert_eq!(start.elapsed(), RETRY_FIRST);
    }
}
