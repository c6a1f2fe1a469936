//! The one owner of mutable state. It turns each registry version into a
//! published snapshot: reconcile VIPs, persist the table, build the zones
//! outside any lock, swap them in, then record the registry as last good.
//! A version that fails to load never reaches it; the last good one keeps
//! serving.

use std::path::Path;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::dns::server::Published;
use crate::index::{self, HandWritten};
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::state::{LastGood, StateDir};
use crate::vip::{Allocator, Event, Family, Placement, Table, Want};
use std::sync::atomic::Ordering::Relaxed;

/// What the controller serves, fixed for its lifetime.
#[derive(Clone, Debug)]
pub struct Settings {
    pub zones: Vec<String>,
    pub ttl: u32,
    pub allocator: Allocator,
    /// The addresses of the zones' name server `ns.<zone>`: where this
    /// server is reached (design §4).
    pub ns_addresses: Vec<std::net::IpAddr>,
}

/// What one [`Controller::apply`] did.
#[derive(Debug, Default)]
pub struct Applied {
    /// A new snapshot was published.
    pub published: bool,
    pub serial: u32,
    /// Allocation events (allocated, released, displaced…), each logged.
    pub changes: usize,
}

/// A registry as published, with the allocation table it was published
/// with: what the ServiceEntry sync renders from.
#[derive(Debug)]
pub struct Allocated {
    pub registry: Registry,
    pub table: Table,
    /// Hand-written hosts served beside the registry (drop-in mode).
    pub hand_written: Vec<HandWritten>,
    /// Current conflicts between the registry and hand-written entries.
    pub conflicts: Vec<String>,
}

pub struct Controller {
    settings: Settings,
    /// Every published registry, for those who subscribed.
    changes: tokio::sync::watch::Sender<Option<Arc<Allocated>>>,
    state: Option<StateDir>,
    table: Table,
    current: Option<Registry>,
    serial: u32,
    /// The [`crate::dns::ZoneSet::digest`] of what is served under `serial`.
    digest: Option<u64>,
    /// The registry source has delivered since the start: until then the
    /// warm-start snapshot is served as stale (RFC 8914 "Stale Answer").
    confirmed: bool,
    published: Arc<Published>,
    metrics: Arc<Metrics>,
    /// Hosts of ServiceEntries globaldns does not own (drop-in mode).
    hand_written: Vec<HandWritten>,
    hand_written_changed: bool,
    /// Conflicts already logged, so each is logged once.
    reported_conflicts: std::collections::BTreeSet<String>,
    /// Registry hosts left out of the snapshot, already logged.
    reported_left_out: std::collections::BTreeSet<String>,
    /// VIPs recorded outside the table (the owned ServiceEntries), sorted;
    /// they win over the table.
    record: Vec<(String, Vec<std::net::IpAddr>)>,
    /// Each pinned address and the host it was pinned for at the last
    /// publish, to tell when a pin moves to another host.
    pins: std::collections::HashMap<std::net::IpAddr, compact_str::CompactString>,
}

impl Controller {
    /// Opens the state directory, loads the allocation table and, if there
    /// is one, publishes the last-known-good registry so that DNS answers
    /// before the registry source is read (design §4, warm start).
    ///
    /// A state directory that cannot be used is reported, and globaldns runs
    /// from memory: serving DNS matters more than remembering.
    ///
    /// `record` are the VIPs recorded outside the table (in Kubernetes,
    /// the owned ServiceEntries' addresses): followed before anything is
    /// allocated, and on every later publish; see [`Controller::set_record`].
    pub fn start(
        settings: Settings,
        state_dir: &Path,
        published: Arc<Published>,
        metrics: Arc<Metrics>,
        record: Vec<(String, Vec<std::net::IpAddr>)>,
    ) -> Self {
        let state = StateDir::open(state_dir)
            .inspect_err(|e| tracing::error!("state directory unusable, running without it: {e}"))
            .ok();
        let table = state
            .as_ref()
            .and_then(|s| {
                s.load_table()
                    .inspect_err(|e| tracing::error!("allocation table not loaded: {e}"))
                    .ok()
            })
            .unwrap_or_default();
        let mut record = record;
        record.sort();
        let last_good = state.as_ref().and_then(|s| {
            s.load_last_good()
                .inspect_err(|e| tracing::error!("last-known-good registry not loaded: {e}"))
                .ok()
                .flatten()
        });
        let mut controller = Self {
            settings,
            changes: tokio::sync::watch::Sender::new(None),
            state,
            table,
            current: None,
            serial: last_good.as_ref().map_or(0, |l| l.serial),
            digest: last_good.as_ref().and_then(|l| l.digest),
            confirmed: false,
            published,
            metrics,
            hand_written: Vec::new(),
            hand_written_changed: false,
            reported_conflicts: Default::default(),
            reported_left_out: Default::default(),
            record,
            pins: Default::default(),
        };
        if let Some(last_good) = last_good {
            tracing::info!(
                services = last_good.registry.services.len(),
                "answering from the last-known-good registry until the registry is read"
            );
            // Where its pins were, in the zones it was served in.
            controller.pins = pins_of(&index::wants(&last_good.registry, &last_good.zones));
            controller.publish(last_good.registry, SystemTime::now());
        }
        controller
    }

    /// Publishes `registry` (already validated), as delivered by the
    /// registry source, as of `now`.
    pub fn apply(&mut self, registry: Registry, now: SystemTime) -> Applied {
        self.confirmed = true;
        self.publish(registry, now)
    }

    /// The registry served, if any.
    pub fn current(&self) -> Option<&Registry> {
        self.current.as_ref()
    }

    fn publish(&mut self, registry: Registry, now: SystemTime) -> Applied {
        let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let started = Instant::now();
        let wants = index::wants(&registry, &self.settings.zones);
        self.report_moved_pins(&wants);
        let mut changes = 0;
        let mut followed = 0;
        self.settings
            .allocator
            .follow(&mut self.table, &self.record, &wants, now, &mut |event| {
                changes += 1;
                followed += u64::from(matches!(event, Event::Recorded { was: Some(_), .. }));
                log_event(&event);
            });
        self.metrics.vips_followed.fetch_add(followed, Relaxed);
        self.settings
            .allocator
            .reconcile_with(&mut self.table, &wants, now, &mut |event| {
                changes += 1;
                log_event(&event);
            });
        if self.current.as_ref() == Some(&registry) && changes == 0 && !self.hand_written_changed {
            if self.confirmed
                && let Some(zones) = self.published.load_full()
            {
                zones.set_stale(false); // the source confirms what is served
            }
            return Applied {
                published: false,
                serial: self.serial,
                changes,
            };
        }
        let reconciled = started.elapsed();
        if changes > 0
            && let Some(state) = &self.state
            && let Err(e) = state.save_table(&self.table)
        {
            tracing::error!("allocation table not saved (VIPs still served): {e}");
        }
        let saved = started.elapsed();
        let mut zones = match index::zones(
            &registry,
            &self.settings.zones,
            &self.settings.allocator,
            &self.table,
            &self.hand_written,
            self.settings.ttl,
            &self.settings.ns_addresses,
        ) {
            Ok(built) => {
                self.report_conflicts(built.conflicts);
                self.report_left_out(built.left_out);
                built.zones
            }
            Err(e) => {
                self.metrics.reloads_failed.fetch_add(1, Relaxed);
                tracing::error!("snapshot not built, keeping the last one: {e}");
                return Applied::default();
            }
        };
        // The serial moves when what is served changes, and only then (a
        // restart on the same registry keeps it); it never goes back, across
        // restarts too: the current time in seconds, or one more than the
        // last serial if that is already ahead.
        let digest = zones.digest();
        let serial = if self.digest == Some(digest) {
            self.serial
        } else {
            self.serial.wrapping_add(1).max(now as u32)
        };
        zones.set_serial(serial);
        zones.set_stale(!self.confirmed);
        self.published.store(Some(Arc::new(zones)));
        self.serial = serial;
        self.digest = Some(digest);
        self.hand_written_changed = false;
        self.count(&wants, now);
        let published = started.elapsed();
        if self.changes.receiver_count() > 0 {
            self.share_current(&registry);
        }
        tracing::info!(
            services = registry.services.len(),
            hosts = wants.len(),
            serial,
            reconcile_ms = reconciled.as_millis() as u64,
            save_table_ms = (saved - reconciled).as_millis() as u64,
            build_ms = (published - saved).as_millis() as u64,
            "registry published"
        );
        if let Some(state) = &self.state {
            let last_good = LastGood {
                serial,
                digest: Some(digest),
                zones: self.settings.zones.clone(),
                registry,
            };
            if let Err(e) = state.save_last_good(&last_good) {
                tracing::error!("last-known-good registry not saved: {e}");
            }
            tracing::debug!(
                ms = (started.elapsed() - published).as_millis() as u64,
                "last-known-good registry saved"
            );
            self.current = Some(last_good.registry);
        } else {
            self.current = Some(registry);
        }
        Applied {
            published: true,
            serial,
            changes,
        }
    }

    /// Replaces the hand-written hosts (drop-in mode) and republishes with
    /// the current registry; before any registry they wait for the first.
    pub fn set_hand_written(&mut self, mut hosts: Vec<HandWritten>, now: SystemTime) -> Applied {
        hosts.sort();
        if hosts == self.hand_written {
            return Applied::default();
        }
        self.hand_written = hosts;
        self.hand_written_changed = true;
        match self.current.clone() {
            Some(registry) => self.publish(registry, now),
            None => Applied::default(),
        }
    }

    /// Logs and counts each pinned address that now belongs to another host
    /// than at the last publish: the registry is the same, but the pin zone
    /// changed (a zone that sorts first was added or removed, see
    /// [`index::pin_zone`]), so another host answers with it.
    fn report_moved_pins(&mut self, wants: &[Want]) {
        let pins = pins_of(wants);
        for (addr, host) in &pins {
            if let Some(before) = self.pins.get(addr)
                && before != host
            {
                self.metrics.pins_moved.fetch_add(1, Relaxed);
                tracing::warn!(
                    "pinned address {addr} moved from {before} to {host}: the pin zone (the served zone that sorts first) changed"
                );
            }
        }
        self.pins = pins;
    }

    /// Replaces the record of VIPs (the owned ServiceEntries' hosts and
    /// addresses, as the Lease holder wrote them) and republishes with the
    /// current registry if it moves anything. Before any registry, it waits
    /// for the first.
    pub fn set_record(
        &mut self,
        mut record: Vec<(String, Vec<std::net::IpAddr>)>,
        now: SystemTime,
    ) -> Applied {
        record.sort();
        if record == self.record {
            return Applied::default();
        }
        self.record = record;
        match self.current.clone() {
            Some(registry) => self.apply(registry, now),
            None => Applied::default(),
        }
    }

    /// Sets the gauges that describe the published snapshot.
    fn count(&self, wants: &[Want], now: u64) {
        let m = &self.metrics;
        let allocator = &self.settings.allocator;
        m.hosts.store(wants.len() as u64, Relaxed);
        m.reloads_ok.fetch_add(1, Relaxed);
        m.last_reload_seconds.store(now, Relaxed);
        let clamp = |n: u128| u64::try_from(n).unwrap_or(u64::MAX);
        m.vip_pool_size_v4
            .store(clamp(allocator.v4.size()), Relaxed);
        m.vip_pool_size_v6.store(
            allocator.v6.as_ref().map_or(0, |r| clamp(r.size())),
            Relaxed,
        );
        let pinned: std::collections::HashSet<std::net::IpAddr> = wants
            .iter()
            .flat_map(|want| want.pinned.iter().copied())
            .collect();
        let (mut v4, mut v6, mut probed) = (0, 0, 0);
        for (host, leases) in &self.table.hosts {
            for (family, lease) in leases.iter() {
                match family {
                    Family::V4 => v4 += 1,
                    Family::V6 => v6 += 1,
                }
                let placement = allocator.placement(host, lease.addr, pinned.contains(&lease.addr));
                if matches!(placement, Placement::Probed { .. } | Placement::OutOfRange) {
                    probed += 1;
                }
            }
        }
        m.vips_probed.store(probed, Relaxed);
        m.vips_allocated_v4.store(v4, Relaxed);
        m.vips_allocated_v6.store(v6, Relaxed);
        m.vips_quarantined
            .store(self.table.quarantine.len() as u64, Relaxed);
    }

    /// Logs each conflict between the registry and hand-written entries
    /// once, as a warning.
    fn report_conflicts(&mut self, conflicts: Vec<String>) {
        let current: std::collections::BTreeSet<String> = conflicts.into_iter().collect();
        for conflict in current.difference(&self.reported_conflicts) {
            tracing::warn!("drop-in conflict: {conflict}");
        }
        self.metrics
            .dropin_conflicts
            .store(current.len() as u64, Relaxed);
        self.reported_conflicts = current;
    }

    /// Logs each registry host left out of the snapshot once, as an error,
    /// and counts them (`globaldns_registry_hosts_left_out`).
    fn report_left_out(&mut self, left_out: Vec<String>) {
        let current: std::collections::BTreeSet<String> = left_out.into_iter().collect();
        for problem in current.difference(&self.reported_left_out) {
            tracing::error!("{problem}");
        }
        self.metrics
            .hosts_left_out
            .store(current.len() as u64, Relaxed);
        self.reported_left_out = current;
    }

    /// The current conflicts between the registry and hand-written entries.
    pub fn conflicts(&self) -> &std::collections::BTreeSet<String> {
        &self.reported_conflicts
    }

    /// Receives each registry published from now on, with its table, and
    /// the one published already, if any. (Cloned per publish only while
    /// someone is subscribed: the sync, or the admin endpoint's explain.)
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Option<Arc<Allocated>>> {
        let receiver = self.changes.subscribe();
        if let Some(registry) = &self.current {
            self.share_current(registry);
        }
        receiver
    }

    fn share_current(&self, registry: &Registry) {
        self.changes.send_replace(Some(Arc::new(Allocated {
            registry: registry.clone(),
            table: self.table.clone(),
            hand_written: self.hand_written.clone(),
            conflicts: self.reported_conflicts.iter().cloned().collect(),
        })));
    }

    pub fn table(&self) -> &Table {
        &self.table
    }
}

/// Each pinned address and the host it is pinned for.
fn pins_of(
    wants: &[Want],
) -> std::collections::HashMap<std::net::IpAddr, compact_str::CompactString> {
    wants
        .iter()
        .flat_map(|w| w.pinned.iter().map(|a| (*a, w.host.clone())))
        .collect()
}

/// Logs what the allocator did: routine moves at debug, anything an operator
/// must act on as a warning.
fn log_event(event: &Event) {
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

#[cfg(test)]
mod tests;
