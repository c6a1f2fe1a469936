//! The allocation table: each host's leases and the quarantine, what the
//! caller persists; and a host that should exist, with its pins.

use std::collections::BTreeMap;
use std::net::IpAddr;

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
