//! The writer's series (`globaldns_sync_*`): the Lease holder's sync
//! passes, the writes they made, and the writes that failed, by reason.

use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::{header, plain};

/// The reasons a sync write fails, as `globaldns_sync_failures_total`
/// labels them (the order of [`crate::mesh::sync::Reason::ALL`]).
pub const SYNC_FAILURE_REASONS: [&str; 5] =
    ["forbidden", "conflict", "invalid", "unavailable", "other"];

/// The series of the sync.
#[derive(Default)]
pub struct SyncSeries {
    pub passes: AtomicU64,
    pub applied: AtomicU64,
    pub deleted: AtomicU64,
    /// Failed writes by reason, in [`SYNC_FAILURE_REASONS`] order.
    pub failures: [AtomicU64; 5],
    /// Writes that failed in the last pass of this replica (0 when it is
    /// not the Lease holder).
    pub failing: AtomicU64,
    /// What failed in the last pass, in one line (empty when nothing did):
    /// the detail `/readyz?verbose` shows.
    pub detail: Mutex<String>,
    pub held_back: AtomicU64,
    pub throttled: AtomicU64,
    pub lease_lost: AtomicU64,
    /// 1 while this replica holds the sync Lease.
    pub leader: AtomicU64,
}

impl SyncSeries {
    /// Writes the series of one value each to `out`.
    pub(super) fn render(&self, out: &mut String) {
        plain(
            out,
            &[
                (
                    "globaldns_sync_passes_total",
                    "counter",
                    "ServiceEntry sync passes run by the Lease holder.",
                    &self.passes,
                ),
                (
                    "globaldns_sync_applies_total",
                    "counter",
                    "ServiceEntries applied.",
                    &self.applied,
                ),
                (
                    "globaldns_sync_deletes_total",
                    "counter",
                    "Owned ServiceEntries deleted.",
                    &self.deleted,
                ),
                (
                    "globaldns_sync_failing",
                    "gauge",
                    "Writes of Istio objects that failed in this replica's last sync pass (retried with backoff; 0 when all went through).",
                    &self.failing,
                ),
                (
                    "globaldns_sync_held_back_deletions",
                    "gauge",
                    "Deletions the brake held back in the last pass.",
                    &self.held_back,
                ),
                (
                    "globaldns_sync_throttled_total",
                    "counter",
                    "Writes the API server asked to wait (429) and that were tried again after the wait it gave.",
                    &self.throttled,
                ),
                (
                    "globaldns_sync_lease_lost_total",
                    "counter",
                    "Sync passes stopped early because the Lease was lost mid-pass.",
                    &self.lease_lost,
                ),
                (
                    "globaldns_sync_leader",
                    "gauge",
                    "1 while this replica holds the sync Lease and writes the Istio objects, 0 otherwise (summed over the replicas: 1 when the sync has a writer).",
                    &self.leader,
                ),
            ],
        );
    }

    /// Writes the failures by reason to `out`.
    pub(super) fn render_failures(&self, out: &mut String) {
        header(
            out,
            "globaldns_sync_failures_total",
            "counter",
            "ServiceEntry applies and deletes that failed, by reason (forbidden, conflict, invalid, unavailable, other).",
        );
        for (reason, value) in SYNC_FAILURE_REASONS.iter().zip(&self.failures) {
            let _ = writeln!(
                out,
                "globaldns_sync_failures_total{{reason=\"{reason}\"}} {}",
                value.load(Relaxed)
            );
        }
    }
}
