//! The name table of a snapshot: every name of every zone, keyed by its
//! lower-case wire form, with what the answers need (addresses, SRV port
//! and target).
//!
//! The table is cut into shards ([`Shard`]), each shared (`Arc`) between
//! the snapshots that have it unchanged: a change of one host copies the
//! one or two shards its names are in, never the whole table, so a patch
//! costs the same at a thousand hosts as at a million (see `patch.rs`).
//! A name's shard is chosen by the name without its leading `_` labels,
//! so a host and its SRV names (`_<port>._tcp.<host>`) share one: an SRV
//! name points at its host's node by index, which a shard can renumber
//! on its own.

use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use hashbrown::HashTable;
use hickory_proto::rr::rdata::{A, AAAA, SRV};
use hickory_proto::rr::{Name, RData, Record};
use rustc_hash::FxBuildHasher;

/// Names a shard holds at most on average when a set is built: a patch
/// copies a shard of about this many names (tens of microseconds).
pub(super) const SHARD_NAMES: usize = 2048;

/// Most shards a set is cut into.
const MAX_SHARDS: usize = 1 << 16;

/// The name table: shards, their count a power of two.
#[derive(Debug, Clone)]
pub(super) struct Names {
    pub(super) shards: Vec<Arc<Shard>>,
}

/// One shard. Nodes sit in one vector, their keys (lower-case wire names)
/// back to back in one byte arena, their addresses in two more; the hash
/// table holds only node indexes. At 100,000 hosts (300,000 names) this is
/// about 156 bytes a host, against 420 for a `HashMap<Box<[u8]>, Node>`
/// with boxed addresses (one allocation per key, per address list and per
/// SRV).
#[derive(Debug, Default, Clone)]
pub(super) struct Shard {
    pub(super) table: HashTable<u32>,
    pub(super) nodes: Vec<Node>,
    pub(super) keys: Vec<u8>,
    pub(super) v4: Vec<Ipv4Addr>,
    pub(super) v6: Vec<Ipv6Addr>,
    /// The sum of its names' digests (see `digest.rs`), set when sealed.
    pub(super) sum: u64,
}

/// Index of a zone in [`super::ZoneSet::zones`]: at most 256 zones, so
/// that a [`Node`] fits 24 bytes.
pub(super) type ZoneIndex = u8;

/// What exists at one name, as indexes into its [`Shard`]. A node with no
/// data is an empty non-terminal (or the apex): the name exists because
/// names below it do.
#[derive(Debug, Clone, Copy)]
pub(super) struct Node {
    /// Its key: `keys[key..key + key_len]`.
    pub(super) key: u32,
    pub(super) key_len: u8,
    /// Index of its zone in [`super::ZoneSet::zones`].
    pub(super) zone: ZoneIndex,
    pub(super) a: Span,
    pub(super) aaaa: Span,
    /// On `_<port>._tcp.<host>` names: the port, and the host's node.
    pub(super) srv_port: u16,
    pub(super) srv_target: u32,
}

/// `srv_target` of a node without SRV data.
pub(super) const NO_SRV: u32 = u32::MAX;

/// A run of addresses in one of the address arenas. Packed to 6 bytes,
/// so that a [`Node`] with two of them fits 24 (32 with their padding: 2.4
/// MB more at 100,000 hosts); read by value only.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C, packed(2))]
pub(super) struct Span {
    pub(super) start: u32,
    pub(super) len: u16,
}

impl Span {
    pub(super) fn range(self) -> std::ops::Range<usize> {
        let start = self.start as usize;
        start..start + usize::from(self.len)
    }
}

/// Key bytes in a shard's arena that later keys may point into: a name's
/// key ends with its parent's, so the key of `_<port>._tcp.<host>` holds
/// those of `_tcp.<host>` and `<host>` as its tail. A host's three names
/// then take its SRV name's bytes once: 57 bytes a host less for a mesh
/// host of usual length (5.7 MB at 100,000 hosts).
#[derive(Debug, Clone, Copy)]
pub(super) struct Carrier {
    /// Where its bytes end in the arena, and how many there are.
    end: u32,
    len: u8,
}

impl Carrier {
    fn range(self) -> std::ops::Range<usize> {
        self.end as usize - usize::from(self.len)..self.end as usize
    }
}

pub(super) fn hash_key(key: &[u8]) -> u64 {
    FxBuildHasher.hash_one(key)
}

/// The part of `key` that picks its shard: the name without its leading
/// `_` labels.
fn shard_key(key: &[u8]) -> &[u8] {
    let mut at = 0;
    while let (Some(&len), Some(b'_')) = (key.get(at), key.get(at + 1)) {
        if len == 0 {
            break;
        }
        at += 1 + usize::from(len);
    }
    key.get(at..).unwrap_or_default()
}

/// How many shards a set of `names` names is cut into.
pub(super) fn shard_count(names: usize) -> usize {
    (names / SHARD_NAMES)
        .next_power_of_two()
        .clamp(1, MAX_SHARDS)
}

/// The shard of `key` among `count` (a power of two), and the key's hash.
/// Bits 32 and up choose the shard: the shard's own table uses the low
/// bits for its buckets and the top seven for its tags.
pub(super) fn place(key: &[u8], count: usize) -> (usize, u64) {
    let hash = hash_key(key);
    let of = shard_key(key);
    let by = if of.len() == key.len() {
        hash
    } else {
        hash_key(of)
    };
    ((by >> 32) as usize & (count - 1), hash)
}

impl Names {
    /// The node at `key` (a lower-case wire name), if the name exists.
    pub(super) fn find(&self, key: &[u8]) -> Option<NodeRef<'_>> {
        let (shard, hash) = place(key, self.shards.len());
        let shard = &self.shards[shard];
        let index = shard.find(key, hash)?;
        Some(shard.node(index))
    }

    /// Number of names.
    pub(super) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.nodes.len()).sum()
    }

    /// Every node, shard by shard.
    pub(super) fn iter(&self) -> impl Iterator<Item = NodeRef<'_>> {
        self.shards
            .iter()
            .flat_map(|s| (0..s.nodes.len()).map(move |i| s.node(i as u32)))
    }
}

impl Shard {
    /// Room for `names` names whose keys take `key_bytes` bytes.
    pub(super) fn with_capacity(names: usize, key_bytes: usize) -> Self {
        Self {
            table: HashTable::with_capacity(names),
            nodes: Vec::with_capacity(names),
            keys: Vec::with_capacity(key_bytes),
            ..Self::default()
        }
    }

    pub(super) fn key(&self, node: &Node) -> &[u8] {
        &self.keys[node.key as usize..][..usize::from(node.key_len)]
    }

    pub(super) fn node(&self, index: u32) -> NodeRef<'_> {
        NodeRef {
            shard: self,
            node: &self.nodes[index as usize],
        }
    }

    /// The node at `key`, whose hash is `hash`.
    pub(super) fn find(&self, key: &[u8], hash: u64) -> Option<u32> {
        let Self {
            table, nodes, keys, ..
        } = self;
        table
            .find(hash, |&i| {
                let node = &nodes[i as usize];
                keys[node.key as usize..][..usize::from(node.key_len)] == *key
            })
            .copied()
    }

    /// The node at `key`, created (in `zone`, with no data) if new.
    pub(super) fn find_or_insert(
        &mut self,
        key: &[u8],
        hash: u64,
        zone: ZoneIndex,
    ) -> Result<u32, String> {
        self.find_or_insert_in(key, hash, zone, None)
    }

    /// Puts `key` in the key arena for later names to point into (see
    /// [`Carrier`]).
    pub(super) fn carry(&mut self, key: &[u8]) -> Result<Carrier, String> {
        let len = u8::try_from(key.len()).map_err(|_| "a name longer than 255 bytes")?;
        self.keys.extend_from_slice(key);
        let end = u32::try_from(self.keys.len()).map_err(|_| "too many names in one snapshot")?;
        Ok(Carrier { end, len })
    }

    /// A new node at `key`, which must not be there yet. When `carrier`'s
    /// bytes end with `key`, the node's key points into them instead of
    /// being copied.
    pub(super) fn insert_in(
        &mut self,
        key: &[u8],
        hash: u64,
        zone: ZoneIndex,
        carrier: Option<Carrier>,
    ) -> Result<u32, String> {
        let too_many = || "too many names in one snapshot".to_string();
        let index = u32::try_from(self.nodes.len())
            .ok()
            .filter(|&i| i != NO_SRV)
            .ok_or_else(too_many)?;
        // The key's own bytes, unless `carrier` ends with them.
        let carrier = match carrier {
            Some(c) if self.keys[c.range()].ends_with(key) => c,
            _ => self.carry(key)?,
        };
        let key_len = key.len() as u8; // at most the carrier's
        self.nodes.push(Node {
            key: carrier.end - u32::from(key_len),
            key_len,
            zone,
            a: Span::default(),
            aaaa: Span::default(),
            srv_port: 0,
            srv_target: NO_SRV,
        });
        let Self {
            table, nodes, keys, ..
        } = self;
        table.insert_unique(hash, index, |&i| {
            let node = &nodes[i as usize];
            hash_key(&keys[node.key as usize..][..usize::from(node.key_len)])
        });
        Ok(index)
    }

    /// The node at `key`, created in `zone` with no data if new, its key
    /// pointing into `carrier` when it can (see [`Self::insert_in`]).
    pub(super) fn find_or_insert_in(
        &mut self,
        key: &[u8],
        hash: u64,
        zone: ZoneIndex,
        carrier: Option<Carrier>,
    ) -> Result<u32, String> {
        match self.find(key, hash) {
            Some(index) => Ok(index),
            None => self.insert_in(key, hash, zone, carrier),
        }
    }

    pub(super) fn set_addresses(&mut self, index: u32, addresses: &[IpAddr]) -> Result<(), String> {
        let v4 = addresses.iter().filter_map(|a| match a {
            IpAddr::V4(v4) => Some(*v4),
            IpAddr::V6(_) => None,
        });
        let v6 = addresses.iter().filter_map(|a| match a {
            IpAddr::V6(v6) => Some(*v6),
            IpAddr::V4(_) => None,
        });
        self.set_split_addresses(index, v4, v6)
    }

    /// Sets the node's addresses, IPv4 and IPv6 given apart.
    pub(super) fn set_split_addresses(
        &mut self,
        index: u32,
        v4: impl IntoIterator<Item = Ipv4Addr>,
        v6: impl IntoIterator<Item = Ipv6Addr>,
    ) -> Result<(), String> {
        let too_many = || "too many addresses".to_string();
        let span = |arena_len: usize, start: usize| -> Result<Span, String> {
            Ok(Span {
                start: u32::try_from(start).map_err(|_| too_many())?,
                len: u16::try_from(arena_len - start).map_err(|_| too_many())?,
            })
        };
        let start = self.v4.len();
        self.v4.extend(v4);
        let a = span(self.v4.len(), start)?;
        let start = self.v6.len();
        self.v6.extend(v6);
        let aaaa = span(self.v6.len(), start)?;
        let node = &mut self.nodes[index as usize];
        node.a = a;
        node.aaaa = aaaa;
        Ok(())
    }

    pub(super) fn shrink_to_fit(&mut self) {
        let Self {
            table, nodes, keys, ..
        } = self;
        table.shrink_to_fit(|&i| {
            let node = &nodes[i as usize];
            hash_key(&keys[node.key as usize..][..usize::from(node.key_len)])
        });
        nodes.shrink_to_fit();
        keys.shrink_to_fit();
        self.v4.shrink_to_fit();
        self.v6.shrink_to_fit();
    }

    /// Shrunk to its contents, its digest sum taken: ready to publish.
    pub(super) fn seal(mut self) -> Arc<Self> {
        self.shrink_to_fit();
        self.sum = super::digest::sum(&self);
        Arc::new(self)
    }
}

/// A name found in a [`super::ZoneSet`], and what exists there.
#[derive(Debug, Clone, Copy)]
pub struct NodeRef<'a> {
    pub(super) shard: &'a Shard,
    pub(super) node: &'a Node,
}

impl<'a> NodeRef<'a> {
    /// Its IPv4 addresses.
    pub fn a(&self) -> &'a [Ipv4Addr] {
        &self.shard.v4[self.node.a.range()]
    }

    /// Its IPv6 addresses.
    pub fn aaaa(&self) -> &'a [Ipv6Addr] {
        &self.shard.v6[self.node.aaaa.range()]
    }

    /// On an SRV name: the port, and the node of the host it points at.
    pub fn srv(&self) -> Option<(u16, NodeRef<'a>)> {
        (self.node.srv_target != NO_SRV)
            .then(|| (self.node.srv_port, self.shard.node(self.node.srv_target)))
    }

    /// Its key: the lower-case wire name.
    pub fn key(&self) -> &'a [u8] {
        self.shard.key(self.node)
    }

    /// The name, rebuilt from its key.
    pub fn name(&self) -> Option<Name> {
        let mut name = name_from_wire(self.key())?;
        name.set_fqdn(true);
        Some(name)
    }

    /// Its A records, owned by `owner`.
    pub fn a_records(&self, owner: &Name, ttl: u32) -> Vec<Record> {
        let data = self.a().iter().map(|a| RData::A(A(*a)));
        data.map(|d| Record::from_rdata(owner.clone(), ttl, d))
            .collect()
    }

    /// Its AAAA records, owned by `owner`.
    pub fn aaaa_records(&self, owner: &Name, ttl: u32) -> Vec<Record> {
        let data = self.aaaa().iter().map(|a| RData::AAAA(AAAA(*a)));
        data.map(|d| Record::from_rdata(owner.clone(), ttl, d))
            .collect()
    }

    /// Its SRV record (`0 0 port target`), owned by `owner`.
    pub fn srv_record(&self, owner: &Name, ttl: u32) -> Option<Record> {
        let (port, target) = self.srv()?;
        let data = SRV::new(0, 0, port, target.name()?);
        Some(Record::from_rdata(owner.clone(), ttl, RData::SRV(data)))
    }
}

/// A name back from its uncompressed wire form.
pub(super) fn name_from_wire(key: &[u8]) -> Option<Name> {
    let mut labels = Vec::new();
    let mut at = 0;
    while let Some(&len) = key.get(at) {
        if len == 0 {
            break;
        }
        labels.push(key.get(at + 1..at + 1 + usize::from(len))?);
        at += 1 + usize::from(len);
    }
    Name::from_labels(labels).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A name's entry is 24 bytes (300,000 of them at 100,000 hosts).
    #[test]
    fn a_node_is_24_bytes() {
        assert_eq!(std::mem::size_of::<Node>(), 24);
        assert_eq!(usize::from(ZoneIndex::MAX) + 1, super::super::MAX_ZONES);
    }

    /// A host and its SRV names land in one shard, whatever the count.
    #[test]
    fn a_host_and_its_srv_names_share_a_shard() {
        let host = b"\x07httpbin\x03bar\x06global\x00".as_slice();
        let srv = [b"\x05_http\x04_tcp".as_slice(), host].concat();
        let tcp = [b"\x04_tcp".as_slice(), host].concat();
        for count in [1, 2, 64, 1 << 16] {
            let at = place(host, count).0;
            assert_eq!(place(&srv, count).0, at);
            assert_eq!(place(&tcp, count).0, at);
        }
        assert_eq!(shard_key(b"\x01_\x00"), b"\x00");
        assert_eq!(shard_count(0), 1);
        assert_eq!(shard_count(300_000), 256);
    }
}
