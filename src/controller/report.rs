//! What the controller tells the operator: the VIP gauges (kept in step
//! with the table event by event, so a change costs what it changes), the
//! allocator's events in the log, drop-in conflicts, hosts left out, and
//! pins that moved.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use compact_str::CompactString;

use super::delta::Delta;
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::vip::{Allocator, Event, Family, Placement, Table, Want};

/// The VIP gauges: leases per family, and leases off their host's first
/// choice (`globaldns_vip_not_first_choice`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Counts {
    v4: u64,
    v6: u64,
    probed: u64,
}

/// Whether a cluster with another history may have given `host` another
/// address than `addr`. A lease is never on a pinned address: reconcile
/// releases those. Costs one SHA-256.
fn probed(allocator: &Allocator, host: &str, addr: IpAddr) -> bool {
    matches!(
        allocator.placement(host, addr, false),
        Placement::Probed { .. } | Placement::OutOfRange
    )
}

impl Counts {
    /// Counted over the whole table.
    pub(super) fn of(table: &Table, allocator: &Allocator) -> Self {
        let mut counts = Self::default();
        for (host, leases) in &table.hosts {
            for (family, lease) in leases.iter() {
                counts.add(family, probed(allocator, host, lease.addr), 1);
            }
        }
        counts
    }

    fn add(&mut self, family: Family, probed: bool, sign: i64) {
        let step = |n: &mut u64| *n = n.saturating_add_signed(sign);
        match family {
            Family::V4 => step(&mut self.v4),
            Family::V6 => step(&mut self.v6),
        }
        if probed {
            step(&mut self.probed);
        }
    }

    /// Follows one change of the table: every lease added or taken away
    /// is an event naming its host and address.
    pub(super) fn apply(&mut self, event: &Event, allocator: &Allocator) {
        let off = |host: &str, addr: &IpAddr| probed(allocator, host, *addr);
        match event {
            // The allocator knows, which saves a SHA-256 per new host.
            Event::Allocated { addr, first, .. } => self.add(Family::of(addr), !first, 1),
            Event::Reclaimed { host, addr }
            | Event::Recorded {
                host,
                addr,
                was: None,
            } => self.add(Family::of(addr), off(host, addr), 1),
            Event::Recorded {
                host,
                addr,
                was: Some(was),
            } => {
                self.add(Family::of(was), off(host, was), -1);
                self.add(Family::of(addr), off(host, addr), 1);
            }
            Event::Taken { host, addr, .. }
            | Event::Released { host, addr }
            | Event::Displaced { host, addr, .. }
            | Event::OutOfRange { host, addr } => self.add(Family::of(addr), off(host, addr), -1),
            Event::Exhausted { .. } => {}
        }
    }

    /// Sets the gauges of `metrics`.
    pub(super) fn store(&self, metrics: &Metrics, table: &Table, hosts: usize, now: u64) {
        metrics.registry.hosts.store(hosts as u64, Relaxed);
        metrics.registry.reloads_ok.fetch_add(1, Relaxed);
        metrics.registry.last_reload_seconds.store(now, Relaxed);
        metrics.vip.not_first_choice.store(self.probed, Relaxed);
        metrics.vip.allocated_v4.store(self.v4, Relaxed);
        metrics.vip.allocated_v6.store(self.v6, Relaxed);
        metrics
            .vip
            .quarantined
            .store(table.quarantine.len() as u64, Relaxed);
    }
}

/// Logs what the allocator did: routine moves at debug, anything an operator
/// must act on as a warning.
pub(super) fn log_event(event: &Event) {
    match event {
        Event::Allocated { .. }
        | Event::Recorded { was: None, .. }
        | Event::Reclaimed { .. }
        | Event::Released { .. } => {
            tracing::debug!("{event}")
        }
        // A replica converging on what the leader wrote: expected now and
        // then (another history of collisions, a stale state directory).
        Event::Recorded { was: Some(_), .. } => tracing::info!("{event}"),
        Event::Displaced { .. }
        | Event::Taken { .. }
        | Event::OutOfRange { .. }
        | Event::Exhausted { .. } => {
            tracing::warn!("{event}")
        }
    }
}

/// Each pinned address and the host it is pinned for.
pub(super) fn pins_of(wants: &[Want]) -> HashMap<IpAddr, CompactString> {
    wants
        .iter()
        .flat_map(|w| w.pinned.iter().map(|a| (*a, w.host.clone())))
        .collect()
}

/// Logs and counts a pinned address that now belongs to another host than
/// at the last publish.
pub(super) fn pin_moved(metrics: &Metrics, addr: IpAddr, before: &str, host: &str) {
    metrics.vip.pins_moved.fetch_add(1, Relaxed);
    tracing::warn!(
        "pinned address {addr} moved from {before} to {host}: the pin zone (the served zone that sorts first) changed"
    );
}

/// The problems of `current` not in `reported` logged (with `log`), the
/// gauge set to how many there are; returns the new reported set.
pub(super) fn report_new(
    current: Vec<String>,
    reported: &BTreeSet<String>,
    gauge: &std::sync::atomic::AtomicU64,
    log: impl Fn(&str),
) -> BTreeSet<String> {
    let current: BTreeSet<String> = current.into_iter().collect();
    for problem in current.difference(reported) {
        log(problem);
    }
    gauge.store(current.len() as u64, Relaxed);
    current
}

/// How long a publish took, step by step.
pub(super) struct Took {
    /// From its start until the VIPs were reconciled.
    pub(super) reconciled: Duration,
    /// Writing the table: the whole table beside the build on a full pass,
    /// the journal before the patch on a change's.
    pub(super) saved: Duration,
    /// From its start until the snapshot was served and counted.
    pub(super) published: Duration,
}

/// Logs a publish of `registry` under `serial`: how many services changed
/// (by `delta`, or all of them when none was taken), whether the pass was
/// incremental (not `full`), and what its steps took, in milliseconds.
pub(super) fn log_published(
    registry: &Registry,
    delta: Option<&Delta>,
    serial: u32,
    full: bool,
    took: Took,
) {
    let Took {
        reconciled,
        saved,
        published,
    } = took;
    tracing::info!(
        services = registry.services.len(),
        serial,
        changed = delta.map_or(registry.services.len(), |d| d.added.len() + d.removed.len()),
        incremental = !full,
        reconcile_ms = reconciled.as_millis() as u64,
        // A full pass writes the table while it builds: then the
        // build's time includes the write's.
        save_table_ms = saved.as_millis() as u64,
        build_ms =
            (published - reconciled - if full { Duration::ZERO } else { saved }).as_millis() as u64,
        "registry published"
    );
}
