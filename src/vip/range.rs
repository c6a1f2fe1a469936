//! VIP ranges: a CIDR checked for use, the addresses never handed out, and
//! each host's documented first choice and probe sequence.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;
use sha2::{Digest, Sha256};

use super::{Family, ISTIO_AUTO_ALLOCATION, MAX_PROBES};

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
    pub(super) fn excluded(&self, addr: &IpAddr) -> bool {
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
    pub(super) fn probe(&self, host: &str) -> impl Iterator<Item = IpAddr> + '_ {
        let start = self.preferred_slot(host);
        (0..self.size.min(MAX_PROBES))
            .map(move |i| self.addr((start + i) % self.size))
            .filter(|addr| !self.excluded(addr))
    }
}
