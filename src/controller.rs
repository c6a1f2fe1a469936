//! The one owner of mutable state. It turns each registry version into a
//! published snapshot: reconcile VIPs, persist the table, build the zones
//! outside any lock, swap them in, then record the registry as last good.
//! A version that fails to load never reaches it; the last good one keeps
//! serving.
//!
//! A version is compared with the one served, service by service
//! (`controller/delta.rs`), and only the services that differ are worked
//! on: their VIPs reconciled ([`Allocator::reconcile_change`]), their
//! hosts journaled ([`StateDir::journal_table`]), their names patched into
//! a copy of the published zones that shares everything else
//! ([`index::patch`]), the gauges moved by the events
//! (`controller/report.rs`). Whatever only a full pass decides (the first
//! version, drop-in mode's hosts or the VIP record changing, a patch that
//! cannot be made) is done in full, as before: both give the same
//! snapshot and the same table, which the tests check on random edits.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use compact_str::CompactString;

use crate::dns::ZoneSet;
use crate::dns::server::Published;
use crate::dns::zone::Parents;
use crate::index::{self, HandWritten};
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::state::{LastGood, LastGoodWriter, StateDir};
use crate::vip::{Allocator, Leased, Table, Want};
use std::sync::atomic::Ordering::Relaxed;

mod delta;
pub mod feed;
mod pass;
mod persist;
mod report;

use delta::Delta;
use report::{Counts, Took, log_published, pins_of};

/// What the controller serves, fixed for its lifetime.
#[derive(Clone, Debug)]
pub struct Settings {
    pub zones: Vec<String>,
    /// Serve each exporter's per-cluster name `<cluster>.<host>` beside
    /// every host (design §2; `--no-per-cluster-names` turns them off).
    pub per_cluster_names: bool,
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

/// The published zones and what patching them needs.
struct Patchable {
    zones: Arc<ZoneSet>,
    parents: Parents,
}

/// What the allocator did during one publish.
#[derive(Default)]
struct Tally {
    changes: usize,
    followed: u64,
    /// Hosts whose leases changed: journaled, and re-placed in the zones.
    hosts: BTreeSet<String>,
    /// Hosts left without a VIP of a family.
    exhausted: BTreeSet<String>,
    /// An event that may have changed the quarantine.
    quarantine: bool,
}

pub struct Controller {
    settings: Settings,
    /// Every published registry, for those who subscribed.
    changes: tokio::sync::watch::Sender<Option<Arc<Allocated>>>,
    state: Option<StateDir>,
    /// Writes the last-known-good registry after each publish.
    writer: Option<LastGoodWriter>,
    table: Table,
    /// The addresses of the table's leases.
    leased: Leased,
    /// Wanted hosts left without a VIP of a family, retried on each change.
    lacking: Vec<Want>,
    counts: Counts,
    /// `counts` is to be taken over the whole table (it was loaded).
    counts_stale: bool,
    current: Option<Registry>,
    /// The zones published for `current`; `None` until the first full
    /// build, and whenever the next publish must be a full one.
    patchable: Option<Patchable>,
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
    /// Drop-in mode's hosts changed: the next publish builds in full, and
    /// publishes even if the registry is the same.
    hand_written_changed: bool,
    /// The record changed: the next publish follows it for every host.
    record_changed: bool,
    /// Size of the table's journal after the last append.
    journal_bytes: u64,
    /// Conflicts already logged, so each is logged once.
    reported_conflicts: BTreeSet<String>,
    /// Registry hosts left out of the snapshot, already logged.
    reported_left_out: BTreeSet<String>,
    /// VIPs recorded outside the table (the owned ServiceEntries), sorted;
    /// they win over the table.
    record: Vec<(String, Vec<std::net::IpAddr>)>,
    /// Each pinned address and the host it was pinned for at the last
    /// publish, to tell when a pin moves to another host.
    pins: HashMap<std::net::IpAddr, CompactString>,
    /// Shared by every published snapshot: `serve --explain-txt` puts its
    /// explainer in it ([`Controller::explain_slot`]).
    explain: Arc<crate::dns::explain_txt::ExplainSlot>,
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
        // The two files are read side by side: at 100,000 services they
        // are 20 to 30 MB of JSON each, and a restart is served from them.
        let (table, last_good) = std::thread::scope(|scope| {
            let state = state.as_ref();
            let last_good = scope.spawn(move || {
                state.and_then(|s| {
                    s.load_last_good()
                        .inspect_err(|e| {
                            tracing::error!("last-known-good registry not loaded: {e}")
                        })
                        .ok()
                        .flatten()
                })
            });
            let table = state
                .and_then(|s| {
                    s.load_table()
                        .inspect_err(|e| tracing::error!("allocation table not loaded: {e}"))
                        .ok()
                })
                .unwrap_or_default();
            // A reader that panicked is a file not read: start without it.
            (table, last_good.join().ok().flatten())
        });
        let mut record = record;
        record.sort();
        // Counted over the table once the first snapshot is out (a SHA-256
        // per lease), then kept in step by the events.
        let counts_stale = !table.hosts.is_empty();
        let mut controller = Self {
            settings,
            changes: tokio::sync::watch::Sender::new(None),
            writer: state.clone().map(LastGoodWriter::start),
            state,
            table,
            leased: Leased::default(),
            lacking: Vec::new(),
            counts: Counts::default(),
            counts_stale,
            current: None,
            patchable: None,
            serial: last_good.as_ref().map_or(0, |l| l.serial),
            digest: last_good.as_ref().and_then(|l| l.digest),
            confirmed: false,
            published,
            metrics,
            hand_written: Vec::new(),
            hand_written_changed: false,
            record_changed: false,
            journal_bytes: 0,
            reported_conflicts: Default::default(),
            reported_left_out: Default::default(),
            record,
            pins: Default::default(),
            explain: Default::default(),
        };
        if let Some(last_good) = last_good {
            tracing::info!(
                services = last_good.registry.services.len(),
                "answering from the last-known-good registry until the registry is read"
            );
            // Where its pins were, in the zones it was served in.
            // (Per-cluster names hold no pins.)
            controller.pins = pins_of(&index::wants(&last_good.registry, &last_good.zones, false));
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

    /// Publishes `registry` as of `now`: reconciles its VIPs and, unless
    /// nothing changed, saves the table, builds the zones (or patches the
    /// published ones), serves them, and keeps the registry as the last
    /// good one; logs what each step took.
    fn publish(&mut self, registry: Registry, now: SystemTime) -> Applied {
        let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let started = Instant::now();
        let (delta, full, tally) = self.reconcile(&registry, now);
        if self.unchanged(&registry, delta.as_ref(), &tally) {
            return self.confirm_served();
        }
        let reconciled = started.elapsed();
        let (zones, saved) = if full {
            self.build_while_writing(&registry, &tally)
        } else {
            self.persist_table(false, &tally);
            let saved = started.elapsed() - reconciled;
            (
                self.patch_or_build(&registry, delta.as_ref(), &tally),
                saved,
            )
        };
        let Some((zones, parents)) = zones else {
            return Applied::default();
        };
        let (serial, digest) = self.serve(zones, parents, now);
        self.count(&registry, now);
        let published = started.elapsed();
        if self.changes.receiver_count() > 0 {
            self.share_current(&registry);
        }
        let took = Took {
            reconciled,
            saved,
            published,
        };
        log_published(&registry, delta.as_ref(), serial, full, took);
        self.remember(serial, digest, registry);
        self.fold_journal();
        Applied {
            published: true,
            serial,
            changes: tally.changes,
        }
    }

    /// Whether publishing `registry` would serve what is served: the same
    /// services (by `delta`, when one was taken) and clusters, no VIP
    /// moved (`tally`), and the hand-written hosts as they were.
    fn unchanged(&self, registry: &Registry, delta: Option<&Delta>, tally: &Tally) -> bool {
        let same = match delta {
            Some(delta) => {
                delta.is_empty()
                    && self.current.as_ref().map(|c| &c.clusters) == Some(&registry.clusters)
            }
            None => self.current.as_ref() == Some(registry),
        };
        same && tally.changes == 0 && !self.hand_written_changed
    }

    /// Publishes nothing: what is served stays, and is no longer stale
    /// once the registry source has confirmed it.
    fn confirm_served(&self) -> Applied {
        if self.confirmed
            && let Some(zones) = self.published.load_full()
        {
            zones.set_stale(false); // the source confirms what is served
        }
        Applied {
            published: false,
            serial: self.serial,
            changes: 0,
        }
    }

    /// Swaps `zones` in for the queries, with `parents` (what patching
    /// them needs), their serial and staleness set. Returns their serial
    /// and their [`ZoneSet::digest`].
    fn serve(&mut self, mut zones: ZoneSet, parents: Parents, now: u64) -> (u32, u64) {
        // The serial moves when what is served changes, and only then (a
        // restart on the same registry keeps it); it never goes back, across
        // restarts too: the current time in seconds, or one more than the
        // last serial if that is already ahead.
        let digest = zones.digest();
        let serial = ZoneSet::next_serial(Some((self.serial, self.digest)), digest, now);
        zones.set_serial(serial);
        zones.set_stale(!self.confirmed);
        zones.set_explain_slot(self.explain.clone());
        let zones = Arc::new(zones);
        self.published.store(Some(zones.clone()));
        self.patchable = Some(Patchable { zones, parents });
        self.serial = serial;
        self.digest = Some(digest);
        self.hand_written_changed = false;
        (serial, digest)
    }

    /// Keeps `registry` as the one served (under `serial`, whose zones
    /// have `digest`) and, once the registry source has confirmed it,
    /// hands it to the writer of the last-known-good registry.
    fn remember(&mut self, serial: u32, digest: u64, registry: Registry) {
        // Until the registry source confirms, what is published is the
        // last-known-good registry read from disk: written back, it would
        // cost a warm start a second core's worth of serializing (160 ms
        // at 100,000 services) for the same registry.
        if let Some(writer) = &self.writer
            && self.confirmed
        {
            writer.submit(LastGood {
                serial,
                digest: Some(digest),
                zones: self.settings.zones.clone(),
                registry: registry.clone(),
            });
        }
        self.current = Some(registry);
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
        self.record_changed = true;
        match self.current.clone() {
            Some(registry) => self.apply(registry, now),
            None => Applied::default(),
        }
    }

    /// Sets the gauges that describe the published snapshot; the VIP
    /// counts are first taken over the whole table when it was loaded.
    fn count(&mut self, registry: &Registry, now: u64) {
        if self.counts_stale {
            self.counts = Counts::of(&self.table, &self.settings.allocator);
            self.counts_stale = false;
        }
        let m = &self.metrics;
        let allocator = &self.settings.allocator;
        // Per zone, each service's host and its per-cluster names, which
        // a Multi-Cluster Services zone has none of (`index::hosts`).
        let zones = &self.settings.zones;
        let mcs = usize::from(crate::index::clusterset_suffix_in(zones).is_some());
        let clusters = match self.settings.per_cluster_names {
            true => registry
                .services
                .iter()
                .map(|s| s.exported_from.len())
                .sum(),
            false => 0,
        };
        let hosts = registry.services.len() * zones.len() + clusters * (zones.len() - mcs);
        self.counts.store(m, &self.table, hosts, now);
        let clamp = |n: u128| u64::try_from(n).unwrap_or(u64::MAX);
        m.vip
            .pool_size_v4
            .store(clamp(allocator.v4.size()), Relaxed);
        m.vip.pool_size_v6.store(
            allocator.v6.as_ref().map_or(0, |r| clamp(r.size())),
            Relaxed,
        );
    }

    /// The current conflicts between the registry and hand-written entries.
    pub fn conflicts(&self) -> &BTreeSet<String> {
        &self.reported_conflicts
    }

    /// The slot every snapshot, published or to come, reads its
    /// `TXT _explain` explainer from: filled once by `serve --explain-txt`.
    pub fn explain_slot(&self) -> Arc<crate::dns::explain_txt::ExplainSlot> {
        self.explain.clone()
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

    /// Waits until the last-known-good registry of the last publish is
    /// written (it is written by a thread of its own).
    pub fn flush(&self) {
        if let Some(writer) = &self.writer {
            writer.flush();
        }
    }
}

#[cfg(test)]
mod tests;
