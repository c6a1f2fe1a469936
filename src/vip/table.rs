//! The allocation table: each host's leases and the quarantine, what the
//! caller persists; and a host that should exist, with its pins.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::num::NonZeroU32;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use super::Family;

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

/// A host's VIPs, at most one per family. Each family in its own compact
/// slot (the address as its own type, the time as [`Stamp`], whose niche
/// makes the slot's `Option` free): 28 bytes, where two `Option<Lease>`
/// took 64 (2.8 MB at 100,000 hosts, and as much again in a reconcile's
/// working list); a one-entry `BTreeMap` took a 376-byte node. In the
/// table's B-tree a host then takes 52 bytes, a node of 11 a 592-byte
/// chunk instead of 688 (36-byte leases; 0.9 MB at 100,000 hosts). Written as `{"v4": {"addr":
/// …, "since": …}, "v6": …}`, as before; an address of the wrong family in
/// a slot is refused when read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "LeasesOnDisk", into = "LeasesOnDisk")]
pub struct Leases {
    v4: Option<(Ipv4Addr, Stamp)>,
    v6: Option<(Ipv6Addr, Stamp)>,
}

/// A lease's `since` as held in [`Leases`]: seconds plus one, so that it
/// is never zero. Seconds past `u32::MAX - 1` (2106) stay there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp(NonZeroU32);

impl Stamp {
    fn of(since: u64) -> Self {
        let seconds = u32::try_from(since).unwrap_or(u32::MAX);
        Self(NonZeroU32::MIN.saturating_add(seconds))
    }

    fn seconds(self) -> u64 {
        u64::from(self.0.get() - 1)
    }
}

/// How [`Leases`] is written.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LeasesOnDisk {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    v4: Option<Lease>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    v6: Option<Lease>,
}

impl From<Leases> for LeasesOnDisk {
    fn from(leases: Leases) -> Self {
        Self {
            v4: leases.get(Family::V4),
            v6: leases.get(Family::V6),
        }
    }
}

/// Why a table read from disk cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    /// A host's lease of `family` holds `addr`, an address of the other
    /// family.
    #[error("{addr} is not an {family} address")]
    WrongFamily { addr: IpAddr, family: Family },
}

impl TryFrom<LeasesOnDisk> for Leases {
    type Error = TableError;

    /// The leases written, each checked to be of its slot's family.
    fn try_from(disk: LeasesOnDisk) -> Result<Self, TableError> {
        let mut leases = Leases::default();
        for (family, lease) in [(Family::V4, disk.v4), (Family::V6, disk.v6)] {
            if let Some(lease) = lease {
                if Family::of(&lease.addr) != family {
                    return Err(TableError::WrongFamily {
                        addr: lease.addr,
                        family,
                    });
                }
                leases.insert(family, lease);
            }
        }
        Ok(leases)
    }
}

impl Leases {
    /// The lease of `family`, if any.
    pub fn get(&self, family: Family) -> Option<Lease> {
        match family {
            Family::V4 => self.v4.map(|(a, since)| Lease {
                addr: IpAddr::V4(a),
                since: since.seconds(),
            }),
            Family::V6 => self.v6.map(|(a, since)| Lease {
                addr: IpAddr::V6(a),
                since: since.seconds(),
            }),
        }
    }

    /// Gives `family` the lease `lease`, whose address must be of that
    /// family (a lease of the other family is not stored).
    pub fn insert(&mut self, family: Family, lease: Lease) {
        match (family, lease.addr) {
            (Family::V4, IpAddr::V4(a)) => self.v4 = Some((a, Stamp::of(lease.since))),
            (Family::V6, IpAddr::V6(a)) => self.v6 = Some((a, Stamp::of(lease.since))),
            _ => debug_assert!(false, "{} is not an {family} address", lease.addr),
        }
    }

    fn remove(&mut self, family: Family) {
        match family {
            Family::V4 => self.v4 = None,
            Family::V6 => self.v6 = None,
        }
    }

    /// The leases with their family, IPv4 first.
    pub fn iter(&self) -> impl Iterator<Item = (Family, Lease)> + use<> {
        let leases = *self;
        [Family::V4, Family::V6]
            .into_iter()
            .filter_map(move |f| Some((f, leases.get(f)?)))
    }

    pub fn values(&self) -> impl Iterator<Item = Lease> + use<> {
        self.iter().map(|(_, lease)| lease)
    }

    /// Keeps the leases for which `keep` says so.
    pub fn retain(&mut self, mut keep: impl FnMut(Family, &Lease) -> bool) {
        for family in [Family::V4, Family::V6] {
            if self.get(family).is_some_and(|lease| !keep(family, &lease)) {
                self.remove(family);
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
    #[serde(deserialize_with = "bulk_built")]
    pub hosts: BTreeMap<CompactString, Leases>,
    #[serde(default)]
    pub quarantine: Vec<Released>,
}

/// The host map read whole, then built at once: a B-tree collected from
/// a sequence in key order (as the table is written) is bulk-built with
/// full nodes, where an insert per host descends the tree each time and
/// leaves nodes half full (then rebuilt by [`Table::compact`]). Reading a
/// table of 1,000,000 hosts spent 17% of a restart's CPU inserting. A key
/// given twice keeps its last value, as inserting did.
fn bulk_built<'de, D>(decoder: D) -> Result<BTreeMap<CompactString, Leases>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Ok(crate::mapping::entries(decoder)?.into_iter().collect())
}

impl Table {
    /// Rebuilds the host map with full nodes. Hosts inserted one by one in
    /// name order (a table read from disk) leave every B-tree node about
    /// half full: twice the nodes (about 110 bytes a host instead of 63
    /// at 100,000). Collecting a sorted sequence builds it packed.
    pub fn compact(&mut self) {
        self.hosts = std::mem::take(&mut self.hosts).into_iter().collect();
    }

    /// The allocated VIP of `host` in `family`, if any.
    pub fn lease(&self, host: &str, family: Family) -> Option<Lease> {
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
