//! The allocator and its full reconcile: a table brought in line with
//! every host that should exist (see [`super::change`] for a change of a
//! few hosts).

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use compact_str::CompactString;
use rustc_hash::FxBuildHasher;

use super::{Event, Family, Lease, Leases, Released, Table, VipRange, Want};

/// The addresses a new VIP may not be: in use, pinned or in quarantine.
pub(super) trait Taken {
    fn taken(&self, addr: &IpAddr) -> bool;
    /// `addr` is now a lease.
    fn take(&mut self, addr: IpAddr);
}

/// The addresses in use during a full reconcile: those of the IPv4 range
/// as a bitmap, one bit an address, every other address in a hash set. A
/// probe walks consecutive addresses of the range, each a bit test in the
/// bitmap where a hash set took a cache miss: at 1,000,000 hosts in the
/// default /12 (95% full by the end, so probes grow long) the set's
/// lookups were 30% of a first start's CPU. A range of more than 2^24
/// addresses (a bitmap over 2 MiB) keeps to the hash set.
pub(super) struct Used {
    /// The IPv4 range's first address.
    base: u32,
    bits: Vec<u64>,
    others: HashSet<IpAddr, FxBuildHasher>,
}

/// Largest IPv4 range [`Used`] keeps as a bitmap, in addresses.
const MAX_BITMAP: u128 = 1 << 24;

impl Used {
    pub(super) fn new(v4: &VipRange) -> Self {
        let (base, bits) = match v4.net() {
            ipnet::IpNet::V4(net) if v4.size() <= MAX_BITMAP => (
                u32::from(net.network()),
                vec![0u64; (v4.size() as usize).div_ceil(64)],
            ),
            _ => (0, Vec::new()),
        };
        Self {
            base,
            bits,
            others: HashSet::default(),
        }
    }

    /// The bit of `addr`, when it is in the bitmap.
    fn bit(&self, addr: &IpAddr) -> Option<usize> {
        match addr {
            IpAddr::V4(a) => {
                let at = u32::from(*a).wrapping_sub(self.base) as usize;
                (at < self.bits.len() * 64).then_some(at)
            }
            IpAddr::V6(_) => None,
        }
    }
}

impl Taken for Used {
    fn taken(&self, addr: &IpAddr) -> bool {
        match self.bit(addr) {
            Some(at) => self.bits[at / 64] & (1 << (at % 64)) != 0,
            None => self.others.contains(addr),
        }
    }

    fn take(&mut self, addr: IpAddr) {
        match self.bit(&addr) {
            Some(at) => self.bits[at / 64] |= 1 << (at % 64),
            None => {
                self.others.insert(addr);
            }
        }
    }
}

/// Allocates VIPs from one IPv4 and an optional IPv6 range.
#[derive(Clone, Debug)]
pub struct Allocator {
    pub v4: VipRange,
    pub v6: Option<VipRange>,
    /// Seconds a released VIP is held back from other hosts.
    pub quarantine: u64,
}

/// How a host came by its VIP, as far as another cluster is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Pinned by the user: every cluster gives the same.
    Pinned,
    /// The first slot of its probe sequence: a cluster running on the same
    /// registry computes the same address.
    FirstChoice,
    /// Its first choice was taken (or quarantined) when it arrived: another
    /// cluster, with a different history, may have given it another VIP.
    Probed { first: IpAddr },
    /// Outside the current range (adopted, or the range changed).
    OutOfRange,
}

impl Allocator {
    /// How `addr`, the VIP `host` holds, was placed. `pinned`: the user
    /// pinned this address for the host. Costs one SHA-256.
    pub fn placement(&self, host: &str, addr: IpAddr, pinned: bool) -> Placement {
        if pinned {
            return Placement::Pinned;
        }
        let Some(range) = self.range(Family::of(&addr)).filter(|r| r.contains(&addr)) else {
            return Placement::OutOfRange;
        };
        match range.first_choice(host) {
            Some(first) if first == addr => Placement::FirstChoice,
            Some(first) => Placement::Probed { first },
            None => Placement::OutOfRange,
        }
    }

    pub(super) fn range(&self, family: Family) -> Option<&VipRange> {
        match family {
            Family::V4 => Some(&self.v4),
            Family::V6 => self.v6.as_ref(),
        }
    }

    /// Brings `table` in line with `wants` at time `now` (Unix seconds).
    pub fn reconcile(&self, table: &mut Table, wants: &[Want], now: u64) -> Vec<Event> {
        let mut events = Vec::new();
        self.reconcile_with(table, wants, now, &mut |event| events.push(event));
        events
    }

    /// [`Allocator::reconcile`], handing each event to `emit` as it
    /// happens instead of collecting them: a first load of 100,000 hosts
    /// makes 200,000 (IPv4 and IPv6), 26 MB when held in a vector.
    pub fn reconcile_with(
        &self,
        table: &mut Table,
        wants: &[Want],
        now: u64,
        emit: &mut dyn FnMut(Event),
    ) {
        table
            .quarantine
            .retain(|r| now < r.released.saturating_add(self.quarantine));

        let pinned: HashMap<IpAddr, &str, FxBuildHasher> = wants
            .iter()
            .flat_map(|w| w.pinned.iter().map(move |a| (*a, w.host.as_str())))
            .collect();
        let complete = {
            let wanted: HashMap<&str, &Want, FxBuildHasher> =
                wants.iter().map(|w| (w.host.as_str(), w)).collect();
            self.release(table, &wanted, &pinned, now, emit)
        };
        // A pin outranks a claim held in quarantine: the host that released
        // the address may not take it back from the host that pins it now.
        table.quarantine.retain(|r| !pinned.contains_key(&r.addr));

        let mut used = Used::new(&self.v4);
        let in_use = table
            .hosts
            .values()
            .flat_map(|leases| leases.values().map(|l| l.addr))
            .chain(pinned.keys().copied())
            .chain(table.quarantine.iter().map(|r| r.addr));
        for addr in in_use {
            used.take(addr);
        }

        // Hosts missing a VIP of a family, with the leases they have. None
        // when every want's host was found complete in the table, each
        // once (a restart: a million B-tree lookups spared).
        let mut missing: Vec<(&Want, Leases)> = if complete == wants.len() {
            Vec::new()
        } else {
            wants
                .iter()
                .filter_map(|want| {
                    let leases = table
                        .hosts
                        .get(want.host.as_str())
                        .copied()
                        .unwrap_or_default();
                    self.lacks_any(&leases, want).then_some((want, leases))
                })
                .collect()
        };
        // Hosts that arrive together are placed in name order, whatever order
        // the registry lists them in; a host's families together, IPv4
        // first; a host listed twice, once.
        missing.sort_unstable_by(|a, b| a.0.host.cmp(&b.0.host));
        missing.dedup_by(|a, b| a.0.host == b.0.host);
        for (want, leases) in &mut missing {
            for family in [Family::V4, Family::V6] {
                if self.lacks(leases, want, family)
                    && let Some((addr, event)) =
                        self.pick(&mut table.quarantine, &want.host, family, &mut used, emit)
                {
                    leases.insert(family, Lease { addr, since: now });
                    emit(event);
                }
            }
        }
        // The working sets go before the table grows: that is the step's
        // peak.
        drop(used);
        drop(pinned);
        let added = missing.iter().filter(|(_, leases)| !leases.is_empty());
        if !missing.is_empty() && missing.len() >= table.hosts.len() / 4 {
            // Many hosts (all of them, at a first start): the table is
            // built anew from the old one and the new leases, both in name
            // order, which packs its nodes full. Inserted one by one, in
            // order, they would be left half full (twice the nodes), and
            // rebuilding after costs both at once.
            let new = added.map(|(want, leases)| (want.host.clone(), *leases));
            let old = std::mem::take(&mut table.hosts);
            table.hosts = merge_sorted(old.into_iter(), new).collect();
        } else {
            for (want, leases) in added {
                table.hosts.insert(want.host.clone(), *leases);
            }
        }
    }

    /// Whether `want` lacks a VIP of `family` that it should be given:
    /// the family has a range, the host pins none of it, and `leases` has
    /// none.
    fn lacks(&self, leases: &Leases, want: &Want, family: Family) -> bool {
        self.range(family).is_some() && !want.pins(family) && leases.get(family).is_none()
    }

    /// Whether `want` lacks a VIP of either family (see [`Self::lacks`]).
    fn lacks_any(&self, leases: &Leases, want: &Want) -> bool {
        [Family::V4, Family::V6]
            .into_iter()
            .any(|family| self.lacks(leases, want, family))
    }

    /// Drops leases of hosts no longer wanted, of families now pinned, of
    /// addresses another host pins, and of addresses outside the ranges.
    /// Returns how many wanted hosts the table then holds that lack
    /// nothing.
    fn release(
        &self,
        table: &mut Table,
        wanted: &HashMap<&str, &Want, FxBuildHasher>,
        pinned: &HashMap<IpAddr, &str, FxBuildHasher>,
        now: u64,
        emit: &mut dyn FnMut(Event),
    ) -> usize {
        let mut quarantined = Vec::new();
        let mut complete = 0;
        table.hosts.retain(|host, leases| {
            let want = wanted.get(host.as_str()).copied();
            leases.retain(|family, lease| {
                let by = pinned.get(&lease.addr).copied();
                self.keeps(host, family, lease, want, by, now, emit, &mut quarantined)
            });
            if let Some(want) = want
                && !leases.is_empty()
                && !self.lacks_any(leases, want)
            {
                complete += 1;
            }
            !leases.is_empty()
        });
        table.quarantine.extend(quarantined);
        complete
    }

    /// Whether `host` keeps `lease` of `family`, given what it wants now
    /// (`None`: not wanted) and who pins the address (`by`). A lease given
    /// up is reported, and put in `quarantined` when it waits there.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn keeps(
        &self,
        host: &str,
        family: Family,
        lease: &Lease,
        want: Option<&Want>,
        by: Option<&str>,
        now: u64,
        emit: &mut dyn FnMut(Event),
        quarantined: &mut Vec<Released>,
    ) -> bool {
        let addr = lease.addr;
        let in_range = self
            .range(family)
            .is_some_and(|r| r.contains(&addr) && !r.excluded(&addr));
        match (want, by) {
            (_, Some(by)) if by != host => {
                emit(Event::Displaced {
                    host: host.to_string(),
                    addr,
                    by: by.to_string(),
                });
                false
            }
            _ if !in_range => {
                emit(Event::OutOfRange {
                    host: host.to_string(),
                    addr,
                });
                false
            }
            (Some(w), _) if !w.pins(family) => true,
            _ => {
                // Not wanted, or now pinned by its own host.
                emit(Event::Released {
                    host: host.to_string(),
                    addr,
                });
                quarantined.push(Released {
                    addr,
                    host: host.to_string(),
                    released: now,
                });
                false
            }
        }
    }

    pub(super) fn allocate(
        &self,
        table: &mut Table,
        host: &str,
        family: Family,
        used: &mut dyn Taken,
        now: u64,
        emit: &mut dyn FnMut(Event),
    ) {
        if let Some((addr, event)) = self.pick(&mut table.quarantine, host, family, used, emit) {
            table
                .hosts
                .entry(CompactString::from(host))
                .or_default()
                .insert(family, Lease { addr, since: now });
            emit(event);
        }
    }

    /// A VIP of `family` for `host`: its own address back from
    /// `quarantine`, or the first address of its probe sequence not in
    /// `used` (taken then), with the event that says which. `None` (and an
    /// [`Event::Exhausted`] emitted) when the range has none left.
    fn pick(
        &self,
        quarantine: &mut Vec<Released>,
        host: &str,
        family: Family,
        used: &mut dyn Taken,
        emit: &mut dyn FnMut(Event),
    ) -> Option<(IpAddr, Event)> {
        let range = self.range(family)?;
        let own = quarantine.iter().position(|r| {
            r.host == host && Family::of(&r.addr) == family && range.contains(&r.addr)
        });
        let (addr, event) = if let Some(i) = own {
            let addr = quarantine.swap_remove(i).addr;
            (
                addr,
                Event::Reclaimed {
                    host: host.to_string(),
                    addr,
                },
            )
        } else if let Some((tries, addr)) =
            range.probe(host).enumerate().find(|(_, a)| !used.taken(a))
        {
            (
                addr,
                Event::Allocated {
                    host: host.to_string(),
                    addr,
                    first: tries == 0,
                },
            )
        } else {
            emit(Event::Exhausted {
                host: host.to_string(),
                family,
            });
            return None;
        };
        used.take(addr);
        Some((addr, event))
    }

    /// The addresses `want`'s host answers with: its pins where it has them,
    /// otherwise its allocated VIP, per family.
    pub fn addresses(&self, table: &Table, want: &Want) -> Vec<IpAddr> {
        let mut out = Vec::new();
        for family in [Family::V4, Family::V6] {
            if want.pins(family) {
                out.extend(want.pinned.iter().filter(|a| Family::of(a) == family));
            } else if let Some(lease) = table.lease(&want.host, family) {
                out.push(lease.addr);
            }
        }
        out
    }
}

/// Two sequences in key order merged into one, in key order; `new`'s entry
/// wins where both have a key.
fn merge_sorted<K: Ord, V>(
    old: impl Iterator<Item = (K, V)>,
    new: impl Iterator<Item = (K, V)>,
) -> impl Iterator<Item = (K, V)> {
    let (mut old, mut new) = (old.peekable(), new.peekable());
    std::iter::from_fn(move || match (old.peek(), new.peek()) {
        (Some((a, _)), Some((b, _))) => match a.cmp(b) {
            std::cmp::Ordering::Less => old.next(),
            std::cmp::Ordering::Equal => {
                old.next();
                new.next()
            }
            std::cmp::Ordering::Greater => new.next(),
        },
        (Some(_), None) => old.next(),
        (None, _) => new.next(),
    })
}
