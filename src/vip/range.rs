//! VIP ranges: a CIDR checked for use, the addresses never handed out, and
//! each host's documented first choice and probe sequence.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;
use sha2::{Digest, Sha256};

use super::{Family, MAX_PROBES, istio_auto_allocation};

/// Why a VIP range cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RangeError {
    #[error("VIP range {0} is too small: it needs at least 2 usable addresses")]
    TooSmall(IpNet),
    #[error(
        "VIP range {0} lies inside {1}, which Istio's own VIP auto-allocation uses \
         (istiod's PILOT_IP_AUTOALLOCATE_IPV{v}_PREFIX): take a range outside it",
        v = if matches!(.1, IpNet::V4(_)) { 4 } else { 6 }
    )]
    IstioRange(IpNet, IpNet),
    #[error("VIP range {0} is not an {1} range")]
    WrongFamily(IpNet, Family),
}

/// A CIDR range VIPs are allocated from, and the range of the same family
/// that Istio's own auto-allocation uses (never handed out).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VipRange {
    net: IpNet,
    size: u128,
    istio: IpNet,
}

impl VipRange {
    /// Checks `net` for use as the range of `family`, beside Istio's
    /// default auto-allocation range of that family.
    pub fn new(net: IpNet, family: Family) -> Result<Self, RangeError> {
        Self::beside_istio(net, family, istio_auto_allocation(family))
    }

    /// Checks `net` for use as the range of `family`, beside `istio`, the
    /// range the mesh's Istio auto-allocates from (Istio 1.27+:
    /// `PILOT_IP_AUTOALLOCATE_IPV4_PREFIX` / `_IPV6_PREFIX`). Errors: `net`
    /// (or `istio`) of the other family, `net` inside `istio`, `net` of
    /// fewer than 4 addresses. A `net` that contains `istio` is accepted;
    /// `istio`'s addresses are skipped.
    pub fn beside_istio(net: IpNet, family: Family, istio: IpNet) -> Result<Self, RangeError> {
        let net = net.trunc();
        let istio = istio.trunc();
        if Family::of(&istio.network()) != family {
            return Err(RangeError::WrongFamily(istio, family));
        }
        let (bits, actual) = match net {
            IpNet::V4(n) => (32 - u32::from(n.prefix_len()), Family::V4),
            IpNet::V6(n) => (128 - u32::from(n.prefix_len()), Family::V6),
        };
        if actual != family {
            return Err(RangeError::WrongFamily(net, family));
        }
        if istio.contains(&net) {
            return Err(RangeError::IstioRange(net, istio));
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
        Ok(Self { net, size, istio })
    }

    pub fn net(&self) -> IpNet {
        self.net
    }

    /// The range Istio's own auto-allocation uses, whose addresses are
    /// never handed out.
    pub fn istio(&self) -> IpNet {
        self.istio
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
    pub(super) fn excluded(&self, addr: &IpAddr) -> bool {
        if *addr == self.net.network() {
            return true;
        }
        self.istio.contains(addr) || matches!(addr, IpAddr::V4(v4) if v4.is_broadcast())
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
    pub(super) fn probe(&self, host: &str) -> impl Iterator<Item = IpAddr> + '_ {
        let start = self.preferred_slot(host);
        (0..self.size.min(MAX_PROBES))
            .map(move |i| self.addr((start + i) % self.size))
            .filter(|addr| !self.excluded(addr))
    }
}
