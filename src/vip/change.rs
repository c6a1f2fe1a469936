//! A change of a few hosts, reconciled in time proportional to the change:
//! the table a full reconcile ([`Allocator::reconcile_with`]) of every host
//! would give, without looking at the hosts the change leaves alone.
//!
//! It relies on what the last reconcile left: no lease of a host that is
//! not wanted, none on an address another host pins, none outside the
//! range, no pinned address in quarantine, and the record followed. So a
//! change only has to release the hosts it removes, the leases its new pins
//! take or cover, follow the record for the hosts it brings, and allocate
//! for those that lack a VIP, in name order, against the addresses in use:
//! [`Leased`] holds those, kept in step as leases come and go. Where the
//! outcome depends on hosts the change does not name (a recorded address
//! that another host holds or is recorded for), it says [`Unsure`] before
//! touching anything, and the caller reconciles in full.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;

use compact_str::CompactString;
use rustc_hash::FxBuildHasher;

use super::reconcile::Taken;
use super::{Allocator, Event, Family, Lease, Record, Released, Table, Want};

/// The addresses the table's leases hold, by family: what a change's new
/// VIPs are probed against. IPv4 as `u32` in a set of their own, 5 bytes an
/// address rather than 18 for an `IpAddr`. IPv6 by their lower 64 bits when
/// their upper 64 are those of the first one seen (the range's, for a
/// range of /64 or longer: every lease of the default range), whole
/// otherwise: 9 bytes an address instead of 17 (1 MB less at 100,000
/// hosts), and exact either way.
#[derive(Debug, Default, Clone)]
pub struct Leased {
    v4: HashSet<u32, FxBuildHasher>,
    /// The upper 64 bits of the addresses in `v6_lower`.
    v6_upper: Option<u64>,
    v6_lower: HashSet<u64, FxBuildHasher>,
    /// IPv6 addresses with other upper bits.
    v6: HashSet<u128, FxBuildHasher>,
}

/// Where an IPv6 address goes in [`Leased`].
enum V6Slot {
    Lower(u64),
    Whole(u128),
}

impl Leased {
    /// The addresses of every lease of `table`.
    pub fn of(table: &Table) -> Self {
        let mut leased = Self::default();
        for leases in table.hosts.values() {
            for lease in leases.values() {
                leased.insert(lease.addr);
            }
        }
        leased
    }

    pub fn contains(&self, addr: &IpAddr) -> bool {
        match addr {
            IpAddr::V4(a) => self.v4.contains(&u32::from(*a)),
            IpAddr::V6(a) => match self.slot(u128::from(*a)) {
                V6Slot::Lower(lower) => self.v6_lower.contains(&lower),
                V6Slot::Whole(whole) => self.v6.contains(&whole),
            },
        }
    }

    fn slot(&self, addr: u128) -> V6Slot {
        let (upper, lower) = ((addr >> 64) as u64, addr as u64);
        match self.v6_upper {
            Some(u) if u == upper => V6Slot::Lower(lower),
            _ => V6Slot::Whole(addr),
        }
    }

    fn insert(&mut self, addr: IpAddr) {
        match addr {
            IpAddr::V4(a) => {
                self.v4.insert(u32::from(a));
            }
            IpAddr::V6(a) => {
                let a = u128::from(a);
                self.v6_upper.get_or_insert((a >> 64) as u64);
                match self.slot(a) {
                    V6Slot::Lower(lower) => self.v6_lower.insert(lower),
                    V6Slot::Whole(whole) => self.v6.insert(whole),
                };
            }
        }
    }

    fn remove(&mut self, addr: IpAddr) {
        match addr {
            IpAddr::V4(a) => {
                self.v4.remove(&u32::from(a));
            }
            IpAddr::V6(a) => {
                match self.slot(u128::from(a)) {
                    V6Slot::Lower(lower) => self.v6_lower.remove(&lower),
                    V6Slot::Whole(whole) => self.v6.remove(&whole),
                };
            }
        }
    }

    /// Every IPv6 address held, whole.
    fn v6_addresses(&self) -> impl Iterator<Item = u128> + '_ {
        let upper = u128::from(self.v6_upper.unwrap_or_default()) << 64;
        let lower = self.v6_lower.iter().map(move |&l| upper | u128::from(l));
        lower.chain(self.v6.iter().copied())
    }
}

/// The same addresses, however they are held.
impl PartialEq for Leased {
    fn eq(&self, other: &Self) -> bool {
        let v6 = |l: &Leased| l.v6_addresses().collect::<HashSet<u128, FxBuildHasher>>();
        self.v4 == other.v4 && v6(self) == v6(other)
    }
}

impl Eq for Leased {}

/// A change of the hosts that should exist.
#[derive(Debug, Clone, Copy)]
pub struct Change<'a> {
    /// Hosts no longer wanted.
    pub removed: &'a [Want],
    /// Hosts new, or wanted with other pins, as they are wanted now.
    pub upserted: &'a [Want],
    /// Hosts wanted that lacked a VIP after the last reconcile (the range
    /// was exhausted): retried, as a full reconcile retries every host.
    pub lacking: &'a [Want],
    /// Every pinned address of every wanted host, and that host.
    pub pins: &'a HashMap<IpAddr, CompactString>,
    /// Addresses the changed hosts pinned before and pin no more.
    pub unpinned: &'a [IpAddr],
    /// The record of VIPs followed (see [`Allocator::follow`]), sorted.
    pub record: &'a Record,
}

/// The change's outcome depends on hosts it does not name: reconcile in
/// full. The table is untouched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}: a full reconcile decides")]
pub struct Unsure(pub String);

/// The addresses `record` (sorted) gives `host`.
fn recorded<'r>(record: &'r Record, host: &str) -> impl Iterator<Item = &'r IpAddr> {
    let first = record.partition_point(|(h, _)| h.as_str() < host);
    record[first..]
        .iter()
        .take_while(move |(h, _)| h.as_str() == host)
        .flat_map(|(_, addresses)| addresses)
}

/// The addresses a new VIP may not be, during a change.
struct InUse<'a> {
    leased: &'a mut Leased,
    pins: &'a HashMap<IpAddr, CompactString>,
    quarantine: HashSet<IpAddr, FxBuildHasher>,
}

impl Taken for InUse<'_> {
    fn taken(&self, addr: &IpAddr) -> bool {
        self.leased.contains(addr) || self.pins.contains_key(addr) || self.quarantine.contains(addr)
    }

    fn take(&mut self, addr: IpAddr) {
        self.leased.insert(addr);
    }
}

impl Allocator {
    /// Brings `table` (and `leased`, its addresses) in line with `change`
    /// at time `now`, as [`Allocator::follow`] and
    /// [`Allocator::reconcile_with`] of every wanted host would, with the
    /// same events in the same order for the hosts it names.
    pub fn reconcile_change(
        &self,
        table: &mut Table,
        leased: &mut Leased,
        change: &Change<'_>,
        now: u64,
        emit: &mut dyn FnMut(Event),
    ) -> Result<(), Unsure> {
        let mut brought: Vec<&Want> = change.upserted.iter().chain(change.lacking).collect();
        brought.sort_unstable_by(|a, b| a.host.cmp(&b.host));
        brought.dedup_by(|a, b| a.host == b.host);
        let follows = self.follows(table, leased, change, &brought)?;

        for (host, family, addr) in follows {
            let was = table.lease(host, family).map(|l| l.addr);
            table.quarantine.retain(|r| r.addr != addr);
            if let Some(old) = was {
                leased.remove(old);
                table.quarantine.push(Released {
                    addr: old,
                    host: host.to_string(),
                    released: now,
                });
            }
            table
                .hosts
                .entry(CompactString::from(host))
                .or_default()
                .insert(family, Lease { addr, since: now });
            leased.insert(addr);
            emit(Event::Recorded {
                host: host.to_string(),
                addr,
                was,
            });
        }

        table
            .quarantine
            .retain(|r| now < r.released.saturating_add(self.quarantine));
        let displaced = self.release_change(table, leased, change, &brought, now, emit);
        // A pin outranks a claim held in quarantine.
        table
            .quarantine
            .retain(|r| !change.pins.contains_key(&r.addr));

        let mut missing: Vec<Want> = brought.into_iter().cloned().chain(displaced).collect();
        missing.sort_unstable_by(|a, b| a.host.cmp(&b.host));
        missing.dedup_by(|a, b| a.host == b.host);
        let mut in_use = InUse {
            quarantine: table.quarantine.iter().map(|r| r.addr).collect(),
            leased,
            pins: change.pins,
        };
        for want in &missing {
            for family in [Family::V4, Family::V6] {
                if self.range(family).is_some()
                    && !want.pins(family)
                    && table.lease(&want.host, family).is_none()
                {
                    self.allocate(table, &want.host, family, &mut in_use, now, emit);
                }
            }
        }
        Ok(())
    }

    /// What following the record does for the `brought` hosts: each
    /// (host, family, address) that moves, in record order. Unsure when an
    /// address to move to is held by, or recorded for, another host.
    fn follows<'w>(
        &self,
        table: &Table,
        leased: &Leased,
        change: &Change<'_>,
        brought: &[&'w Want],
    ) -> Result<Vec<(&'w str, Family, IpAddr)>, Unsure> {
        let mut moves = Vec::new();
        if change.record.is_empty() {
            return Ok(moves);
        }
        // What the change frees for hosts it does not name: an address no
        // longer pinned, or recorded for a host no longer wanted as well as
        // for another, may now go to a host the record gives it to.
        let recorded_elsewhere = |addr: &IpAddr, host: &str| {
            change
                .record
                .iter()
                .any(|(h, a)| h.as_str() != host && a.contains(addr))
        };
        if let Some(addr) = change.unpinned.iter().find(|a| recorded_elsewhere(a, "")) {
            return Err(Unsure(format!("{addr}, no longer pinned, is recorded")));
        }
        for want in change.removed {
            for addr in recorded(change.record, &want.host) {
                if recorded_elsewhere(addr, &want.host) {
                    return Err(Unsure(format!(
                        "{addr}, recorded for {} which goes, is recorded for another host",
                        want.host
                    )));
                }
            }
        }
        let mut claimed = HashSet::new();
        // The first address of each host and family, as in `follow`.
        let mut first = HashSet::new();
        for want in brought {
            let host = want.host.as_str();
            // An address recorded for two hosts goes to the first that may
            // take it: a change of this host (a pin) may hand it to the
            // other, which the change does not name.
            if let Some(addr) = recorded(change.record, host).find(|a| recorded_elsewhere(a, host))
            {
                return Err(Unsure(format!(
                    "{addr}, recorded for {host}, is recorded for another host as well"
                )));
            }
            for addr in recorded(change.record, host) {
                let family = Family::of(addr);
                let usable = self
                    .range(family)
                    .is_some_and(|r| r.contains(addr) && !r.excluded(addr));
                if !first.insert((host, family))
                    || !usable
                    || want.pins(family)
                    || change.pins.contains_key(addr)
                    || !claimed.insert(*addr)
                {
                    continue;
                }
                if table.lease(host, family).map(|l| l.addr) == Some(*addr) {
                    continue;
                }
                if leased.contains(addr) || recorded_elsewhere(addr, host) {
                    return Err(Unsure(format!(
                        "{addr}, recorded for {host}, is held by or recorded for another host"
                    )));
                }
                moves.push((host, family, *addr));
            }
        }
        Ok(moves)
    }

    /// Releases, in name order, the leases the change gives up: of hosts
    /// removed, of families the brought hosts now pin, of addresses they
    /// now pin that another host holds. Returns the wants of the hosts that
    /// lost a lease to a pin and are still wanted.
    fn release_change(
        &self,
        table: &mut Table,
        leased: &mut Leased,
        change: &Change<'_>,
        brought: &[&Want],
        now: u64,
        emit: &mut dyn FnMut(Event),
    ) -> Vec<Want> {
        let mut wants: HashMap<&str, Option<&Want>> = HashMap::new();
        for want in change.removed {
            wants.insert(&want.host, None);
        }
        for want in brought {
            wants.insert(&want.host, Some(*want));
        }
        // Hosts holding an address a brought host pins: another host, as
        // a host never holds its own pin. Rare, and found by a scan.
        let taken: Vec<IpAddr> = brought
            .iter()
            .flat_map(|w| w.pinned.iter().copied())
            .filter(|a| leased.contains(a))
            .collect();
        let mut holders: BTreeSet<CompactString> = BTreeSet::new();
        if !taken.is_empty() {
            for (host, leases) in &table.hosts {
                if leases.values().any(|l| taken.contains(&l.addr)) {
                    holders.insert(host.clone());
                }
            }
        }
        // An untouched holder is wanted as it was: its own pins, if any.
        let own_pins = |host: &str| Want {
            host: host.into(),
            pinned: change
                .pins
                .iter()
                .filter(|(_, by)| by.as_str() == host)
                .map(|(addr, _)| *addr)
                .collect(),
        };
        let holder_wants: Vec<Want> = holders
            .iter()
            .filter(|h| !wants.contains_key(h.as_str()))
            .map(|h| own_pins(h))
            .collect();
        for want in &holder_wants {
            wants.insert(&want.host, Some(want));
        }
        let mut hosts: Vec<&str> = wants.keys().copied().collect();
        hosts.sort_unstable();
        let mut quarantined = Vec::new();
        for host in hosts {
            let Some(leases) = table.hosts.get_mut(host) else {
                continue;
            };
            let want = wants[host];
            leases.retain(|family, lease| {
                let by = change.pins.get(&lease.addr).map(CompactString::as_str);
                let keep = self.keeps(host, family, lease, want, by, now, emit, &mut quarantined);
                if !keep {
                    leased.remove(lease.addr);
                }
                keep
            });
            if leases.is_empty() {
                table.hosts.remove(host);
            }
        }
        table.quarantine.extend(quarantined);
        holder_wants
    }
}

#[cfg(test)]
mod tests;
