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
//! first address, the range Istio's own auto-allocation uses for the family
//! (default `240.240.0.0/16` and `2001:2::/48`), `255.255.255.255`), addresses in
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

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

pub mod agreement;
mod change;
mod event;
mod follow;
mod range;
mod reconcile;
mod table;

pub use change::{Change, Leased, Unsure};
pub use event::Event;
pub use follow::Record;
pub use range::{RangeError, VipRange};
pub use reconcile::{Allocator, Placement};
pub use table::{Lease, Leases, Released, Table, TableError, Want};

/// The IPv4 range Istio's own VIP auto-allocation uses by default
/// (istiod's `PILOT_IP_AUTOALLOCATE_IPV4_PREFIX`, pilot/pkg/features/pilot.go;
/// fixed before Istio 1.27); never handed out here.
pub const ISTIO_AUTO_ALLOCATION_V4: Ipv4Net = match Ipv4Net::new(Ipv4Addr::new(240, 240, 0, 0), 16)
{
    Ok(net) => net,
    Err(_) => unreachable!(),
};

/// The IPv6 range Istio's own VIP auto-allocation uses by default
/// (`PILOT_IP_AUTOALLOCATE_IPV6_PREFIX`: the benchmarking range of RFC 5180);
/// never handed out here.
pub const ISTIO_AUTO_ALLOCATION_V6: Ipv6Net =
    match Ipv6Net::new(Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0), 48) {
        Ok(net) => net,
        Err(_) => unreachable!(),
    };

/// Istio's default auto-allocation range of `family`.
pub fn istio_auto_allocation(family: Family) -> IpNet {
    match family {
        Family::V4 => IpNet::V4(ISTIO_AUTO_ALLOCATION_V4),
        Family::V6 => IpNet::V6(ISTIO_AUTO_ALLOCATION_V6),
    }
}

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

#[cfg(test)]
mod tests;
