//! A digest of what a snapshot serves, its SOA serial aside: two snapshots
//! with the same digest give the same answers, so the controller moves the
//! serial only when the digest changes (design §4: "the SOA serial moves on
//! every change"; and only then, so that a restart on an unchanged registry
//! keeps it).
//!
//! Each name is hashed on its own and the hashes are added up, so the
//! order in which the registry lists its services does not matter. The hash
//! is FNV-1a with the MurmurHash3 finaliser, written out here so that it
//! never changes with a toolchain or a crate version: the digest is
//! persisted and compared across restarts and upgrades.

use super::names::Shard;
use super::{Zone, ZoneSet};
use hickory_proto::rr::{Name, RData};

/// FNV-1a over the bytes fed to it, finalised with MurmurHash3's `fmix64`
/// so that every input bit moves every output bit (the sum of the names'
/// hashes needs that: plain FNV would let two hosts swap addresses unseen).
struct Hash(u64);

impl Hash {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    fn new() -> Self {
        Hash(Self::OFFSET)
    }

    fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(Self::PRIME);
        }
        self
    }

    /// A field of variable length, prefixed with it so that fields cannot
    /// run into each other.
    fn field(&mut self, bytes: &[u8]) -> &mut Self {
        self.bytes(&(bytes.len() as u32).to_be_bytes()).bytes(bytes)
    }

    fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

impl ZoneSet {
    /// The digest of the names, their data and the zones' apex records,
    /// leaving out the SOA serial. Each shard keeps the sum of its names'
    /// hashes (taken when it is sealed), so this costs one addition per
    /// shard: a patched set has its digest as cheaply as it has its names,
    /// and the same one as a full build of the same names.
    pub fn digest(&self) -> u64 {
        let shards = &self.names.shards;
        let sum = shards.iter().fold(0u64, |sum, s| sum.wrapping_add(s.sum));
        let count: usize = shards.iter().map(|s| s.names()).sum();
        let mut h = Hash::new();
        h.bytes(&sum.to_be_bytes())
            .bytes(&(count as u64).to_be_bytes());
        for zone in &self.zones {
            apex(&mut h, zone);
        }
        h.finish()
    }
}

/// The sum of the hashes of a shard's names, each hashed on its own: its
/// key, addresses, and SRV port and target. The names found through their
/// hosts (`names.rs`) are hashed as the nodes they once were, so that the
/// digest, persisted, did not change with that.
pub(super) fn sum(shard: &Shard) -> u64 {
    let mut sum = 0u64;
    shard.each_name(|key, node| {
        let mut h = Hash::new();
        h.field(key);
        let (a, aaaa) = (node.a(), node.aaaa());
        h.field(&(a.len() as u32).to_be_bytes());
        a.iter().for_each(|addr| {
            h.bytes(&addr.octets());
        });
        h.field(&(aaaa.len() as u32).to_be_bytes());
        aaaa.iter().for_each(|addr| {
            h.bytes(&addr.octets());
        });
        if let Some((port, target)) = node.srv() {
            h.bytes(&port.to_be_bytes())
                .field(target.stored_key().unwrap_or_default());
        }
        sum = sum.wrapping_add(h.finish());
    });
    sum
}

/// Feeds a zone's apex records, all but the serial.
fn apex(h: &mut Hash, zone: &Zone) {
    let name = |n: &Name| n.to_lowercase().to_ascii();
    h.field(zone.origin.to_string().as_bytes())
        .bytes(&zone.ttl.to_be_bytes());
    if let RData::SOA(soa) = &zone.soa.data {
        h.field(name(&soa.mname).as_bytes())
            .field(name(&soa.rname).as_bytes());
        for timer in [soa.refresh, soa.retry, soa.expire] {
            h.bytes(&timer.to_be_bytes());
        }
        h.bytes(&soa.minimum.to_be_bytes());
    }
    for ns in &zone.ns {
        h.field(ns.data.to_string().as_bytes());
    }
    if let Some(txt) = &zone.dns_version {
        h.field(txt.data.to_string().as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::super::{HostData, ZoneSetBuilder};

    fn set(hosts: &[(&str, &str)], serial: u32) -> super::ZoneSet {
        let mut b = ZoneSetBuilder::new(serial, 30, 8);
        b.name_server_addresses(&["192.0.2.53".parse().unwrap()]);
        b.zone("global").unwrap();
        for (host, addr) in hosts {
            let addr: IpAddr = addr.parse().unwrap();
            b.add_host(&HostData {
                host,
                addresses: &[addr],
                ports: &[("http", 80)],
            })
            .unwrap();
        }
        b.build()
    }

    /// The serial is not part of the digest, the order of the hosts is
    /// not, and every change of served data is (two hosts swapping their
    /// addresses included).
    #[test]
    fn the_digest_follows_what_is_served() {
        let one = [("a.x.global", "240.0.0.1"), ("b.x.global", "240.0.0.2")];
        let base = set(&one, 1).digest();
        assert_eq!(set(&one, 2).digest(), base, "serial aside");
        let reordered = [one[1], one[0]];
        assert_eq!(set(&reordered, 1).digest(), base, "order aside");
        let swapped = [("a.x.global", "240.0.0.2"), ("b.x.global", "240.0.0.1")];
        assert_ne!(set(&swapped, 1).digest(), base, "addresses swapped");
        assert_ne!(set(&one[..1], 1).digest(), base, "a host removed");
        let renamed = [("a.x.global", "240.0.0.1"), ("c.x.global", "240.0.0.2")];
        assert_ne!(set(&renamed, 1).digest(), base, "a host renamed");
        let mut other_ttl = ZoneSetBuilder::new(1, 60, 8);
        other_ttl
            .name_server_addresses(&["192.0.2.53".parse().unwrap()])
            .zone("global")
            .unwrap();
        assert_ne!(other_ttl.build().digest(), set(&[], 1).digest(), "TTL");
        let mut other_ns = ZoneSetBuilder::new(1, 30, 8);
        other_ns
            .name_server_addresses(&["192.0.2.54".parse().unwrap()])
            .zone("global")
            .unwrap();
        assert_ne!(other_ns.build().digest(), set(&[], 1).digest(), "NS glue");
    }

    /// The digest is persisted and a restart on an unchanged registry must
    /// keep the serial, also across an upgrade: its value for a fixed set
    /// stays what it was (taken before SRV names moved into their hosts'
    /// nodes, `names.rs`). A change of this value is a serial moved on
    /// every upgraded server: say so in the release notes.
    #[test]
    fn the_digest_of_a_fixed_set_stays_as_it_was() {
        let hosts = [("a.x.global", "240.0.0.1"), ("b.y.global", "fd00::2")];
        assert_eq!(set(&hosts, 1).digest(), 0x51da_ff93_1c34_1730);
    }

    /// The same for a set where a hand-written host is named like a
    /// registry host's SRV name (drop-in mode): one name, as it was.
    #[test]
    fn the_digest_of_a_name_both_stored_and_an_srv_name_stays_as_it_was() {
        let mut b = ZoneSetBuilder::new(1, 30, 8);
        b.name_server_addresses(&["192.0.2.53".parse().unwrap()]);
        b.zone("global").unwrap();
        b.add_host(&HostData {
            host: "db.bar.global",
            addresses: &["240.0.0.1".parse().unwrap()],
            ports: &[("http", 80), ("grpc", 90)],
        })
        .unwrap();
        b.add_shared_host(&HostData {
            host: "_http._tcp.db.bar.global",
            addresses: &["192.0.2.7".parse().unwrap()],
            ports: &[],
        })
        .unwrap();
        assert_eq!(b.build().digest(), 0xe380_f97a_ad77_2dfb);
    }
}
