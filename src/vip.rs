//! The VIP allocator (design §3). Pure: it changes an allocation [`Table`]
//! given the hosts that should exist and the current time; reading and
//! writing the table is the caller's job.
//!
//! # The documented hash and probe sequence
//!
//! A new host's first choice is slot
//! `u128::from_be_bytes(sha256(lower(host))[0..16]) mod N`, where `N` is the
//! number of addresses in the range and slot `k` is the range's network
//! address plus `k`. On collision the probe goes on to slots `k+1, k+2, …`
//! (wrapping), skipping addresses that are never handed out (the range's
//! first address, Istio's `240.240.0.0/16`, `255.255.255.255`), addresses in
//! use or pinned, and addresses in quarantine. Hosts that arrive together are
//! placed in order of their names, so two clusters given the same registry
//! make the same choices without talking to each other.
//!
//! # Stability
//!
//! A host keeps its VIP for as long as it is wanted. It loses it only when a
//! user pins that address for another host (the pin wins, and the event is
//! reported as [`Event::Displaced`]) or when the range is changed so that the
//! address falls outside it. A released VIP stays in quarantine for the
//! configured time; only the host that released it may take it back then.

use compact_str::CompactString;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The range Istio's own VIP auto-allocation uses; never handed out here.
pub const ISTIO_AUTO_ALLOCATION: Ipv4Net = match Ipv4Net::new(Ipv4Addr::new(240, 240, 0, 0), 16) {
    Ok(net) => net,
    Err(_) => unreachable!(),
};

/// The default IPv4 range: about a million addresses of class E.
pub const DEFAULT_V4_RANGE: &str = "240.0.0.0/12";

/// Most slots one allocation looks at. Enough to scan a /10 completely, so
/// exhaustion of any practical range is found; beyond that a range is so
/// sparse that a free slot is always within a few probes.
const MAX_PROBES: u128 = 1 << 22;

/// An IP family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(addr: &IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        })
    }
}

/// Why a VIP range cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RangeError {
    #[error("VIP range {0} is too small: it needs at least 2 usable addresses")]
    TooSmall(IpNet),
    #[error("VIP range {0} lies inside 240.240.0.0/16, which Istio's own VIP auto-allocation uses")]
    IstioRange(IpNet),
    #[error("VIP range {0} is not an {1} range")]
    WrongFamily(IpNet, Family),
}

/// A CIDR range VIPs are allocated from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VipRange {
    net: IpNet,
    size: u128,
}

impl VipRange {
    /// Checks `net` for use as the range of `family`.
    pub fn new(net: IpNet, family: Family) -> Result<Self, RangeError> {
        let net = net.trunc();
        let (bits, actual) = match net {
            IpNet::V4(n) => (32 - u32::from(n.prefix_len()), Family::V4),
            IpNet::V6(n) => (128 - u32::from(n.prefix_len()), Family::V6),
        };
        if actual != family {
            return Err(RangeError::WrongFamily(net, family));
        }
        if let IpNet::V4(n) = net
            && ISTIO_AUTO_ALLOCATION.contains(&n)
        {
            return Err(RangeError::IstioRange(net));
        }
        // The first address is never used, so a /31 or /32 leaves too little.
        if bits < 2 {
            return Err(RangeError::TooSmall(net));
        }
        let size = if bits == 128 {
            u128::MAX
        } else {
            1u128 << bits
        };
        Ok(Self { net, size })
    }

    pub fn net(&self) -> IpNet {
        self.net
    }

    /// Addresses in the range (a few of which are never handed out).
    pub fn size(&self) -> u128 {
        self.size
    }

    pub fn contains(&self, addr: &IpAddr) -> bool {
        self.net.contains(addr)
    }

    fn addr(&self, slot: u128) -> IpAddr {
        match self.net {
            IpNet::V4(n) => IpAddr::V4(Ipv4Addr::from(u32::from(n.network()) + slot as u32)),
            IpNet::V6(n) => IpAddr::V6((u128::from(n.network()) + slot).into()),
        }
    }

    /// Addresses of the range that are never handed out.
    fn excluded(&self, addr: &IpAddr) -> bool {
        if *addr == self.net.network() {
            return true;
        }
        match addr {
            IpAddr::V4(v4) => ISTIO_AUTO_ALLOCATION.contains(v4) || v4.is_broadcast(),
            IpAddr::V6(_) => false,
        }
    }

    /// The slot a host tries first (see the module documentation).
    pub fn preferred_slot(&self, host: &str) -> u128 {
        let digest = Sha256::digest(host.to_ascii_lowercase().as_bytes());
        let mut first = [0u8; 16];
        first.copy_from_slice(&digest[..16]);
        u128::from_be_bytes(first) % self.size
    }

    /// The address `host` gets when nothing is in its way: the first of
    /// its probe sequence.
    pub fn first_choice(&self, host: &str) -> Option<IpAddr> {
        self.probe(host).next()
    }

    /// The host's probe sequence: its preferred address, then the next ones.
    fn probe(&self, host: &str) -> impl Iterator<Item = IpAddr> + '_ {
        let start = self.preferred_slot(host);
        (0..self.size.min(MAX_PROBES))
            .map(move |i| self.addr((start + i) % self.size))
            .filter(|addr| !self.excluded(addr))
    }
}

/// An allocated VIP and when it was given (Unix seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub addr: IpAddr,
    pub since: u64,
}

/// A VIP in quarantine: released by `host` at `released` (Unix seconds).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Released {
    pub addr: IpAddr,
    pub host: String,
    pub released: u64,
}

/// A host's VIPs, at most one per family. Two fields rather than a map:
/// a one-entry `BTreeMap` costs a 376-byte node per host (38 MB at 100,000
/// hosts). Written as `{"v4": …, "v6": …}`, as the map was.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Leases {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    v4: Option<Lease>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    v6: Option<Lease>,
}

impl Leases {
    fn slot(&mut self, family: Family) -> &mut Option<Lease> {
        match family {
            Family::V4 => &mut self.v4,
            Family::V6 => &mut self.v6,
        }
    }

    pub fn get(&self, family: Family) -> Option<&Lease> {
        match family {
            Family::V4 => self.v4.as_ref(),
            Family::V6 => self.v6.as_ref(),
        }
    }

    pub fn get_mut(&mut self, family: Family) -> Option<&mut Lease> {
        self.slot(family).as_mut()
    }

    pub fn insert(&mut self, family: Family, lease: Lease) {
        *self.slot(family) = Some(lease);
    }

    /// The leases with their family, IPv4 first.
    pub fn iter(&self) -> impl Iterator<Item = (Family, &Lease)> {
        let v4 = self.v4.as_ref().map(|l| (Family::V4, l));
        let v6 = self.v6.as_ref().map(|l| (Family::V6, l));
        v4.into_iter().chain(v6)
    }

    pub fn values(&self) -> impl Iterator<Item = &Lease> {
        self.iter().map(|(_, lease)| lease)
    }

    /// Keeps the leases for which `keep` says so.
    pub fn retain(&mut self, mut keep: impl FnMut(Family, &Lease) -> bool) {
        for family in [Family::V4, Family::V6] {
            let slot = self.slot(family);
            if slot.as_ref().is_some_and(|lease| !keep(family, lease)) {
                *slot = None;
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.v4.is_none() && self.v6.is_none()
    }
}

/// The allocation table: what the caller persists.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Table {
    /// Allocated VIPs by host. Hosts of up to 24 bytes are held inline.
    pub hosts: BTreeMap<CompactString, Leases>,
    #[serde(default)]
    pub quarantine: Vec<Released>,
}

impl Table {
    /// Rebuilds the host map with full nodes. Hosts inserted one by one in
    /// name order (a first allocation, a table read from disk) leave every
    /// B-tree node about half full: 168 bytes a host instead of about 95.
    /// Collecting a sorted sequence builds it packed.
    pub fn compact(&mut self) {
        self.hosts = std::mem::take(&mut self.hosts).into_iter().collect();
    }

    /// The allocated VIP of `host` in `family`, if any.
    pub fn lease(&self, host: &str, family: Family) -> Option<&Lease> {
        self.hosts.get(host)?.get(family)
    }
}

/// A host that should exist, with the addresses its user pinned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Want {
    pub host: CompactString,
    pub pinned: Vec<IpAddr>,
}

impl Want {
    pub fn pins(&self, family: Family) -> bool {
        self.pinned.iter().any(|a| Family::of(a) == family)
    }
}

/// What a reconcile did, for logs and metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Allocated {
        host: String,
        addr: IpAddr,
    },
    /// A host took the VIP recorded for it elsewhere (its ServiceEntry,
    /// see [`Allocator::follow`]), giving up `was` if it had another.
    Recorded {
        host: String,
        addr: IpAddr,
        was: Option<IpAddr>,
    },
    /// `host` lost `addr` because the record gives it to `by`.
    Taken {
        host: String,
        addr: IpAddr,
        by: String,
    },
    /// A host took back its own VIP from quarantine.
    Reclaimed {
        host: String,
        addr: IpAddr,
    },
    Released {
        host: String,
        addr: IpAddr,
    },
    /// `host` lost `addr` because `by` pins it.
    Displaced {
        host: String,
        addr: IpAddr,
        by: String,
    },
    /// `host` lost `addr` because it is no longer in the configured range.
    OutOfRange {
        host: String,
        addr: IpAddr,
    },
    /// No free VIP was left for `host`; other hosts are unaffected.
    Exhausted {
        host: String,
        family: Family,
    },
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Allocated { host, addr } => write!(f, "allocated {addr} to {host}"),
            Event::Reclaimed { host, addr } => write!(f, "{host} took back {addr} from quarantine"),
            Event::Recorded {
                host,
                addr,
                was: None,
            } => write!(f, "{host} takes {addr}, as its ServiceEntry records"),
            Event::Recorded {
                host,
                addr,
                was: Some(was),
            } => write!(
                f,
                "{host} moves from {was} to {addr}, as its ServiceEntry records (the record wins over this replica's table)"
            ),
            Event::Taken { host, addr, by } => write!(
                f,
                "{host} gave up {addr}: the ServiceEntry of {by} records it"
            ),
            Event::Released { host, addr } => {
                write!(f, "released {addr} of {host} into quarantine")
            }
            Event::Displaced { host, addr, by } => {
                write!(
                    f,
                    "{host} lost {addr} because the registry pins it for {by}"
                )
            }
            Event::OutOfRange { host, addr } => {
                write!(
                    f,
                    "{host} lost {addr} because it is outside the configured VIP range"
                )
            }
            Event::Exhausted { host, family } => {
                write!(f, "no free {family} VIP is left for {host}")
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

    fn range(&self, family: Family) -> Option<&VipRange> {
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
            let want = wanted.get(host.as_str());
            leases.retain(|family, lease| {
                let addr = lease.addr;
                let in_range = self
                    .range(family)
                    .is_some_and(|r| r.contains(&addr) && !r.excluded(&addr));
                match (want, pinned.get(&addr)) {
                    (_, Some(by)) if *by != host.as_str() => {
                        emit(Event::Displaced {
                            host: host.to_string(),
                            addr,
                            by: (*by).to_string(),
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
            });
            !leases.is_empty()
        });
        table.quarantine.extend(quarantined);
    }

    fn allocate(
        &self,
        table: &mut Table,
        host: &str,
        family: Family,
        used: &mut HashSet<IpAddr>,
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
        } else if let Some(addr) = range.probe(host).find(|a| !used.contains(a)) {
            used.insert(addr);
            (
                addr,
                Event::Allocated {
                    host: host.to_string(),
                    addr,
                },
            )
        } else {
            emit(Event::Exhausted {
                host: host.to_string(),
                family,
            });
            return;
        };
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

mod record;
pub use record::Record;

#[cfg(test)]
mod tests;
