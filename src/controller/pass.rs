//! The two ways a version is worked through: in full (every host
//! reconciled, the zones built whole), or by its delta (the hosts of the
//! services that differ reconciled, their names patched in). Both give the
//! same table and the same snapshot; the delta way says when it cannot.

use std::collections::HashMap;
use std::time::Instant;

use compact_str::CompactString;

use super::delta::{Delta, delta};
use super::report::{Counts, log_event, pin_moved, pins_of, report_new};
use super::{Controller, Patchable, Tally};
use crate::dns::ZoneSet;
use crate::dns::zone::{Parents, ZoneError};
use crate::index;
use crate::registry::Registry;
use crate::vip::{Allocator, Change, Event, Leased, Want};
use std::sync::atomic::Ordering::Relaxed;

impl Controller {
    /// The event handler of a reconcile: counts, logs, and notes the hosts
    /// touched when `note_hosts` (a change's pass journals and patches
    /// them; a full pass saves and builds everything, and a note of every
    /// host at a first load held 7 MB through the build, its peak).
    pub(super) fn on_event<'t>(
        counts: &'t mut Counts,
        allocator: &'t Allocator,
        tally: &'t mut Tally,
        note_hosts: bool,
    ) -> impl FnMut(Event) + 't {
        move |event: Event| {
            tally.changes += 1;
            tally.followed += u64::from(matches!(event, Event::Recorded { was: Some(_), .. }));
            tally.quarantine |= matches!(
                event,
                Event::Released { .. } | Event::Reclaimed { .. } | Event::Recorded { .. }
            );
            counts.apply(&event, allocator);
            log_event(&event);
            let host = match &event {
                Event::Allocated { host, .. }
                | Event::Recorded { host, .. }
                | Event::Taken { host, .. }
                | Event::Reclaimed { host, .. }
                | Event::Released { host, .. }
                | Event::Displaced { host, .. }
                | Event::OutOfRange { host, .. } => host,
                Event::Exhausted { host, .. } => {
                    tally.exhausted.insert(host.clone());
                    return;
                }
            };
            if note_hosts {
                tally.hosts.insert(host.clone());
            }
        }
    }

    /// Reconciles the VIPs of `registry` as of `now`: by its delta from
    /// the registry served, when the published zones can be patched and
    /// neither the hand-written hosts nor the record changed; else, or
    /// when the delta cannot decide, every host. Returns the delta if one
    /// was taken, whether the pass was a full one, and what the allocator
    /// did.
    pub(super) fn reconcile(
        &mut self,
        registry: &Registry,
        now: u64,
    ) -> (Option<Delta>, bool, Tally) {
        let full_pass = self.hand_written_changed || self.record_changed;
        let delta = match (&self.current, &self.patchable) {
            (Some(current), Some(_)) if !full_pass => {
                Some(delta(&current.services, &registry.services))
            }
            _ => None,
        };
        let quarantined = self.table.quarantine.len();
        let mut tally = Tally::default();
        let full = match &delta {
            Some(delta) => !self.reconcile_delta(delta, now, &mut tally),
            None => true,
        };
        if full {
            tally = Tally::default();
            self.reconcile_all(registry, now, &mut tally);
        }
        self.record_changed = false;
        tally.quarantine |= self.table.quarantine.len() != quarantined;
        (delta, full, tally)
    }

    /// Follows the record and reconciles every host of `registry`.
    pub(super) fn reconcile_all(&mut self, registry: &Registry, now: u64, tally: &mut Tally) {
        let wants = index::wants(
            registry,
            &self.settings.zones,
            self.settings.per_cluster_names,
        );
        self.report_moved_pins(pins_of(&wants));
        let allocator = &self.settings.allocator;
        let mut emit = Self::on_event(&mut self.counts, allocator, tally, false);
        allocator.follow(&mut self.table, &self.record, &wants, now, &mut emit);
        allocator.reconcile_with(&mut self.table, &wants, now, &mut emit);
        drop(emit);
        self.metrics.vip.followed.fetch_add(tally.followed, Relaxed);
        self.leased = Leased::of(&self.table);
        // Cloned out rather than filtered in place: an in-place collect
        // keeps the whole list's buffer (4.8 MB at 100,000 hosts) for the
        // few hosts, usually none, left without a VIP.
        self.lacking = wants
            .iter()
            .filter(|w| tally.exhausted.contains(w.host.as_str()))
            .cloned()
            .collect();
    }

    /// Reconciles the hosts of the services in `delta` only. False when
    /// the allocator cannot decide without every host (nothing changed
    /// then; the caller reconciles in full).
    pub(super) fn reconcile_delta(&mut self, delta: &Delta, now: u64, tally: &mut Tally) -> bool {
        let zones = &self.settings.zones;
        let per_cluster = self.settings.per_cluster_names;
        let old = index::wants_of(&delta.removed, zones, per_cluster);
        let new = index::wants_of(&delta.added, zones, per_cluster);
        let staying: std::collections::HashSet<&str> =
            new.iter().map(|w| w.host.as_str()).collect();
        let removed: Vec<Want> = old
            .iter()
            .filter(|w| !staying.contains(w.host.as_str()))
            .cloned()
            .collect();
        let mut pins = std::mem::take(&mut self.pins);
        let moved = update_pins(&mut pins, &old, &new);
        let lacking: Vec<Want> = self
            .lacking
            .iter()
            .filter(|w| {
                !staying.contains(w.host.as_str()) && !removed.iter().any(|r| r.host == w.host)
            })
            .cloned()
            .collect();
        let unpinned: Vec<std::net::IpAddr> = old
            .iter()
            .flat_map(|w| w.pinned.iter().copied())
            .filter(|a| !pins.contains_key(a))
            .collect();
        let change = Change {
            removed: &removed,
            upserted: &new,
            lacking: &lacking,
            pins: &pins,
            unpinned: &unpinned,
            record: &self.record,
        };
        let allocator = &self.settings.allocator;
        let mut counts = self.counts;
        let result = {
            let mut emit = Self::on_event(&mut counts, allocator, tally, true);
            allocator.reconcile_change(&mut self.table, &mut self.leased, &change, now, &mut emit)
        };
        if let Err(unsure) = result {
            tracing::debug!("reconciling every host: {unsure}");
            // The pins are worked out again in full.
            self.pins = pins_of(&index::wants_of(
                &self
                    .current
                    .as_ref()
                    .map(|r| r.services.clone())
                    .unwrap_or_default(),
                zones,
                per_cluster,
            ));
            return false;
        }
        for (addr, before, host) in moved {
            pin_moved(&self.metrics, addr, &before, &host);
        }
        self.pins = pins;
        self.counts = counts;
        self.metrics.vip.followed.fetch_add(tally.followed, Relaxed);
        let exhausted = &tally.exhausted;
        self.lacking = lacking
            .into_iter()
            .chain(new.iter().cloned())
            .filter(|w| exhausted.contains(w.host.as_str()))
            .collect();
        self.lacking.sort_by(|a, b| a.host.cmp(&b.host));
        self.lacking.dedup_by(|a, b| a.host == b.host);
        true
    }

    /// The published zones patched for `delta`, if they can be: every host
    /// the allocator touched is one of the change's.
    pub(super) fn patch(
        &mut self,
        registry: &Registry,
        delta: &Delta,
        tally: &Tally,
    ) -> Option<(ZoneSet, Parents)> {
        let Patchable { zones, mut parents } = self.patchable.take()?;
        let zone_names = &self.settings.zones;
        let per_cluster = self.settings.per_cluster_names;
        let changed: std::collections::HashSet<CompactString> = delta
            .removed
            .iter()
            .chain(&delta.added)
            .flat_map(|s| {
                zone_names
                    .iter()
                    .flat_map(move |z| index::hosts(s, z, None, per_cluster).map(|(_, w)| w.host))
            })
            .collect();
        if let Some(host) = tally.hosts.iter().find(|h| !changed.contains(h.as_str())) {
            tracing::debug!("building the zones whole: the VIP of {host} moved");
            return None;
        }
        let started = Instant::now();
        let patched = index::patch(
            &zones,
            &mut parents,
            zone_names,
            per_cluster,
            &self.settings.allocator,
            &self.table,
            &self.hand_written,
            &delta.removed,
            &delta.added,
        );
        match patched {
            Ok(set) => {
                tracing::debug!(
                    us = started.elapsed().as_micros() as u64,
                    services = registry.services.len(),
                    "zones patched"
                );
                Some((set, parents))
            }
            Err(e) => {
                tracing::debug!("building the zones whole: {e}");
                None
            }
        }
    }

    /// The zones after a change's pass: the published ones patched for
    /// `delta`, or, when there is none or the patch cannot take it, the
    /// zones of `registry` built whole.
    pub(super) fn patch_or_build(
        &mut self,
        registry: &Registry,
        delta: Option<&Delta>,
        tally: &Tally,
    ) -> Option<(ZoneSet, Parents)> {
        let patched = delta.and_then(|delta| self.patch(registry, delta, tally));
        // A change the patch cannot take is built whole.
        patched.or_else(|| self.build(registry))
    }

    /// The zones of `registry` built whole, with the hand-written hosts.
    pub(super) fn build(&mut self, registry: &Registry) -> Option<(ZoneSet, Parents)> {
        let built = self.zones_of(registry);
        self.take_built(built)
    }

    /// [`Self::build`]'s work, reading the controller only. Fails as
    /// [`index::zones`] does: a zone's apex cannot be made.
    pub(super) fn zones_of(&self, registry: &Registry) -> Result<index::Built, ZoneError> {
        index::zones(
            registry,
            &self.settings.zones,
            self.settings.per_cluster_names,
            &self.settings.allocator,
            &self.table,
            &self.hand_written,
            self.settings.ttl,
            &self.settings.ns_addresses,
        )
    }

    /// The zones built, their reports made.
    pub(super) fn take_built(
        &mut self,
        built: Result<index::Built, ZoneError>,
    ) -> Option<(ZoneSet, Parents)> {
        match built {
            Ok(built) => {
                self.metrics
                    .dropin
                    .istio_prefers_hand_written
                    .store(built.istio_prefers_hand_written as u64, Relaxed);
                self.reported_conflicts = report_new(
                    built.conflicts,
                    &self.reported_conflicts,
                    &self.metrics.dropin.conflicts,
                    |c| tracing::warn!("drop-in conflict: {c}"),
                );
                self.reported_left_out = report_new(
                    built.left_out,
                    &self.reported_left_out,
                    &self.metrics.registry.hosts_left_out,
                    |p| tracing::error!("{p}"),
                );
                Some((built.zones, built.parents))
            }
            Err(e) => {
                self.metrics.registry.reloads_failed.fetch_add(1, Relaxed);
                tracing::error!("snapshot not built, keeping the last one: {e}");
                None
            }
        }
    }

    /// Logs and counts each pinned address that now belongs to another host
    /// than at the last publish: the registry is the same, but the pin zone
    /// changed (a zone that sorts first was added or removed, see
    /// [`index::pin_zone`]), so another host answers with it.
    pub(super) fn report_moved_pins(&mut self, pins: HashMap<std::net::IpAddr, CompactString>) {
        for (addr, host) in &pins {
            if let Some(before) = self.pins.get(addr)
                && before != host
            {
                pin_moved(&self.metrics, *addr, before, host);
            }
        }
        self.pins = pins;
    }
}

/// Moves the pins of the changed wants: `old` as they were, `new` as they
/// are. Returns each address that went from one host to another.
fn update_pins(
    pins: &mut HashMap<std::net::IpAddr, CompactString>,
    old: &[Want],
    new: &[Want],
) -> Vec<(std::net::IpAddr, CompactString, CompactString)> {
    let touched: Vec<(std::net::IpAddr, Option<CompactString>)> = old
        .iter()
        .chain(new)
        .flat_map(|w| w.pinned.iter())
        .map(|a| (*a, pins.get(a).cloned()))
        .collect();
    for want in old {
        for addr in &want.pinned {
            if pins.get(addr) == Some(&want.host) {
                pins.remove(addr);
            }
        }
    }
    for want in new {
        for addr in &want.pinned {
            pins.insert(*addr, want.host.clone());
        }
    }
    let mut moved: Vec<_> = touched
        .into_iter()
        .filter_map(|(addr, before)| {
            let now = pins.get(&addr)?;
            let before = before?;
            (before != *now).then(|| (addr, before, now.clone()))
        })
        .collect();
    moved.sort();
    moved.dedup();
    moved
}
