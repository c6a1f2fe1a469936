//! The allocator and its full reconcile: a table brought in line with
//! every host that should exist (see [`super::change`] for a change of a
//! few hosts).

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use compact_str::CompactString;

use super::{Event, Family, Lease, Released, Table, VipRange, Want};

/// The addresses a new VIP may not be: in use, pinned or in quarantine.
pub(super) trait Taken {
    fn taken(&self, addr: &IpAddr) -> bool;
    /// `addr` is now a lease.
    fn take(&mut self, addr: IpAddr);
}

impl Taken for HashSet<IpAddr> {
    fn taken(&self, addr: &IpAddr) -> bool {
        self.contains(addr)
    }

    fn take(&mut self, addr: IpAddr) {
        self.insert(addr);
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

        let pinned: HashMap<IpAddr, &str> = wants
            .iter()
            .flat_map(|w| w.pinned.iter().map(move |a| (*a, w.host.as_str())))
            .collect();
        {
            let wanted: HashMap<&str, &Want> = wants.iter().map(|w| (w.host.as_str(), w)).collect();
            self.release(table, &wanted, &pinned, now, emit);
        }
        // A pin outranks a claim held in quarantine: the host that released
        // the address may not take it back from the host that pins it now.
        table.quarantine.retain(|r| !pinned.contains_key(&r.addr));

        let mut used: HashSet<IpAddr> = table
            .hosts
            .values()
            .flat_map(|leases| leases.values().map(|l| l.addr))
            .chain(pinned.keys().copied())
            .chain(table.quarantine.iter().map(|r| r.addr))
            .collect();

        // Hosts missing a VIP of a family; a host's families are placed
        // together, IPv4 first.
        let lacks = |table: &Table, want: &Want, family: Family| {
            self.range(family).is_some()
                && !want.pins(family)
                && table.lease(&want.host, family).is_none()
        };
        let mut missing: Vec<&Want> = wants
            .iter()
            .filter(|want| {
                [Family::V4, Family::V6]
                    .into_iter()
                    .any(|f| lacks(table, want, f))
            })
            .collect();
        // Hosts that arrive together are placed in name order, whatever order
        // the registry lists them in.
        missing.sort_unstable_by(|a, b| a.host.cmp(&b.host));
        let added = missing.len();
        for want in missing {
            for family in [Family::V4, Family::V6] {
                if lacks(table, want, family) {
                    self.allocate(table, &want.host, family, &mut used, now, emit);
                }
            }
        }
        // The working sets go before the table is rebuilt: that is the
        // step's peak.
        drop(used);
        drop(pinned);
        if added > 0 && added >= table.hosts.len() / 4 {
            table.compact();
        }
    }

    /// Drops leases of hosts no longer wanted, of families now pinned, of
    /// addresses another host pins, and of addresses outside the ranges.
    fn release(
        &self,
        table: &mut Table,
        wanted: &HashMap<&str, &Want>,
        pinned: &HashMap<IpAddr, &str>,
        now: u64,
        emit: &mut dyn FnMut(Event),
    ) {
        let mut quarantined = Vec::new();
        table.hosts.retain(|host, leases| {
            let want = wanted.get(host.as_str()).copied();
            leases.retain(|family, lease| {
                let by = pinned.get(&lease.addr).copied();
                self.keeps(host, family, lease, want, by, now, emit, &mut quarantined)
            });
            !leases.is_empty()
        });
        table.quarantine.extend(quarantined);
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
        let Some(range) = self.range(family) else {
            return;
        };
        let own = table.quarantine.iter().position(|r| {
            r.host == host && Family::of(&r.addr) == family && range.contains(&r.addr)
        });
        let (addr, event) = if let Some(i) = own {
            let addr = table.quarantine.swap_remove(i).addr;
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
            return;
        };
        used.take(addr);
        table
            .hosts
            .entry(CompactString::from(host))
            .or_default()
            .insert(family, Lease { addr, since: now });
        emit(event);
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
