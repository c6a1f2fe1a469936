//! The name table of a snapshot: every name of every zone, keyed by its
//! lower-case wire form, with what the answers need (addresses, SRV port
//! and target).
//!
//! The table is cut into shards ([`Shard`]), each shared (`Arc`) between
//! the snapshots that have it unchanged: a change of one host copies the
//! one or two shards its names are in, never the whole table, so a patch
//! costs the same at a thousand hosts as at a million (see `patch.rs`).
//!
//! A host's SRV names (`_<port>._tcp.<host>`, RFC 2782) and the empty
//! non-terminal `_tcp.<host>` above them are not stored as names of their
//! own: the host's node lists its ports ([`SrvPort`]), and a lookup of a
//! name that begins with `_` labels finds them through the host. A name's
//! shard is chosen by the name without its leading `_` labels, so that
//! host is in the shard the lookup is already in. At 100,000 hosts this is
//! 62 bytes a host less than a node for each of the three names.
//!
//! Reading a shard is here; writing one (placing hosts, sealing it) is in
//! `names/shard.rs`.

use std::hash::BuildHasher;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use hashbrown::HashTable;
use hickory_proto::rr::rdata::{A, AAAA, SRV};
use hickory_proto::rr::{Name, RData, Record};
use rustc_hash::FxBuildHasher;

use super::ZoneError;

mod shard;

/// Names a shard holds at most on average when a set is built: a patch
/// copies a shard of about this many names (tens of microseconds).
pub(super) const SHARD_NAMES: usize = 2048;

/// Most shards a set is cut into.
const MAX_SHARDS: usize = 1 << 16;

/// The wire label `_tcp`, which sits between a host and its SRV names.
pub(super) const TCP_LABEL: &[u8] = b"\x04_tcp";

/// The name table: shards, their count a power of two.
#[derive(Debug, Clone)]
pub(super) struct Names {
    pub(super) shards: Vec<Arc<Shard>>,
}

/// One shard. Nodes sit in one vector, their keys (lower-case wire names)
/// back to back in one byte arena, their addresses in two more, their SRV
/// ports in another; the hash table holds only node indexes. At 100,000
/// hosts this is about 93 bytes a host, against 420 for a
/// `HashMap<Box<[u8]>, Node>` with boxed addresses (one allocation per key,
/// per address list and per SRV).
#[derive(Debug, Default, Clone)]
pub(super) struct Shard {
    pub(super) table: HashTable<u32>,
    pub(super) nodes: Vec<Node>,
    /// Keys, and the first labels (`_<port>`) of SRV names.
    pub(super) keys: Vec<u8>,
    pub(super) v4: Vec<Ipv4Addr>,
    pub(super) v6: Vec<Ipv6Addr>,
    pub(super) srv: Vec<SrvPort>,
    /// The sum of its names' digests (see `digest.rs`), set when sealed.
    pub(super) sum: u64,
    /// Some stored name begins with a `_` label (a hand-written host, in
    /// drop-in mode; registry hosts cannot): a name found through its host
    /// may then be stored too, and is one name with the data of both.
    pub(super) underscored: bool,
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
    /// On a host with named TCP ports: its SRV names, in `Shard::srv`.
    pub(super) srv: Span,
}

/// One SRV name of a host, `_<port>._tcp.<host>`: its first label (wire
/// form, in the key arena) and the port it gives.
#[derive(Debug, Clone, Copy)]
pub(super) struct SrvPort {
    pub(super) label: u32,
    pub(super) label_len: u8,
    pub(super) port: u16,
}

/// A run of entries in one of a shard's arenas. Packed to 6 bytes, so that
/// a [`Node`] with three of them fits 24 (32 with their padding: 2.4 MB
/// more at 100,000 hosts); read by value only.
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

    /// The span from `start` to the arena's `end`; fails past `u32`
    /// entries or `u16` in one run ([`ZoneError::TooManyAddresses`]).
    fn of(start: usize, end: usize) -> Result<Self, ZoneError> {
        let too_many = |_| ZoneError::TooManyAddresses;
        Ok(Span {
            start: u32::try_from(start).map_err(too_many)?,
            len: u16::try_from(end - start).map_err(too_many)?,
        })
    }
}

/// A name found only through its host (see the module's doc).
#[derive(Debug, Clone, Copy)]
enum ThroughHost {
    /// `_tcp.<host>`: an empty non-terminal.
    Tcp { host: u32 },
    /// `_<port>._tcp.<host>`.
    Srv { host: u32, port: u16 },
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
    let (shard, hash, _) = place_by(key, count);
    (shard, hash)
}

/// [`place`], and the hash of the part of `key` that chose the shard: for
/// `_tcp.<host>` and `_<port>._tcp.<host>`, the host's.
fn place_by(key: &[u8], count: usize) -> (usize, u64, u64) {
    let hash = hash_key(key);
    let of = shard_key(key);
    let by = if of.len() == key.len() {
        hash
    } else {
        hash_key(of)
    };
    ((by >> 32) as usize & (count - 1), hash, by)
}

impl Names {
    /// The node at `key` (a lower-case wire name), if the name exists:
    /// stored, or found through its host (`_tcp.<host>`, an SRV name).
    pub(super) fn find(&self, key: &[u8]) -> Option<NodeRef<'_>> {
        let (shard, hash, by) = place_by(key, self.shards.len());
        let shard = &self.shards[shard];
        let own = shard.find(key, hash).map(|i| &shard.nodes[i as usize]);
        // Only a name that begins with a `_` label may be found through
        // its host; the rest (every A and AAAA question) pays one test.
        let through = match key.get(1) {
            Some(b'_') => shard.through_host(key, Some(by)),
            _ => None,
        };
        let zone = match (own, through) {
            (Some(node), _) => node.zone,
            (None, Some(ThroughHost::Tcp { host } | ThroughHost::Srv { host, .. })) => {
                shard.nodes[host as usize].zone
            }
            (None, None) => return None,
        };
        let srv = match through {
            Some(ThroughHost::Srv { host, port }) => Some((port, host)),
            _ => None,
        };
        Some(NodeRef {
            shard,
            node: own,
            srv,
            zone,
        })
    }

    /// Number of names, those found through their hosts included.
    pub(super) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.names()).sum()
    }
}

impl Shard {
    /// Room for `names` nodes whose keys (and SRV labels) take `key_bytes`
    /// bytes, and for `ports` SRV names.
    pub(super) fn with_capacity(names: usize, key_bytes: usize, ports: usize) -> Self {
        Self {
            table: HashTable::with_capacity(names),
            nodes: Vec::with_capacity(names),
            keys: Vec::with_capacity(key_bytes),
            srv: Vec::with_capacity(ports),
            ..Self::default()
        }
    }

    pub(super) fn key(&self, node: &Node) -> &[u8] {
        &self.keys[node.key as usize..][..usize::from(node.key_len)]
    }

    /// The first label of an SRV name, `_<port>`, in wire form.
    pub(super) fn label(&self, port: &SrvPort) -> &[u8] {
        &self.keys[port.label as usize..][..usize::from(port.label_len)]
    }

    /// The SRV names of a node's host.
    pub(super) fn ports(&self, node: &Node) -> &[SrvPort] {
        &self.srv[node.srv.range()]
    }

    /// Names in this shard: its nodes, and for each host with ports, its
    /// `_tcp` and SRV names (once, when one is also stored).
    pub(super) fn names(&self) -> usize {
        if self.underscored {
            let mut names = 0;
            self.each_name(|_, _| names += 1);
            return names;
        }
        let through: usize = self
            .nodes
            .iter()
            .filter(|n| n.srv.len > 0)
            .map(|n| 1 + usize::from(n.srv.len))
            .sum();
        self.nodes.len() + through
    }

    pub(super) fn node(&self, index: u32) -> NodeRef<'_> {
        let node = &self.nodes[index as usize];
        NodeRef {
            shard: self,
            node: Some(node),
            srv: None,
            zone: node.zone,
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

    /// `key` as `_tcp.<host>` or `_<port>._tcp.<host>` of a host in this
    /// shard that has such a port. `shard_hash`, when known, is the hash of
    /// `key` without its leading `_` labels (see [`place_by`]): the host's,
    /// unless the host's own name begins with one.
    fn through_host(&self, key: &[u8], shard_hash: Option<u64>) -> Option<ThroughHost> {
        let host_with_ports = |host: &[u8]| {
            let hash = match shard_hash {
                Some(hash) if host.get(1) != Some(&b'_') => hash,
                _ => hash_key(host),
            };
            let index = self.find(host, hash)?;
            let node = &self.nodes[index as usize];
            (node.srv.len > 0).then_some((index, node))
        };
        // `_tcp._tcp.<host>` is the SRV name of a port named `tcp`.
        if let Some((host, _)) = key.strip_prefix(TCP_LABEL).and_then(host_with_ports) {
            return Some(ThroughHost::Tcp { host });
        }
        let (label, rest) = key.split_at_checked(1 + usize::from(key[0]))?;
        let (index, node) = host_with_ports(rest.strip_prefix(TCP_LABEL)?)?;
        let port = self.ports(node).iter().find(|p| self.label(p) == label)?;
        Some(ThroughHost::Srv {
            host: index,
            port: port.port,
        })
    }

    /// Every name of the shard once, with what is there: each node, then
    /// the names found through each host, with their keys written out. A
    /// name both stored and found through its host (see
    /// [`Self::underscored`]) comes with its node, and the SRV data its
    /// host gives it, as [`Names::find`] answers it.
    pub(super) fn each_name<'s>(&'s self, mut f: impl FnMut(&[u8], NodeRef<'s>)) {
        let mut key = Vec::new();
        let stored = |key: &[u8]| self.underscored && self.find(key, hash_key(key)).is_some();
        for (i, node) in self.nodes.iter().enumerate() {
            let host = self.key(node);
            let mut own = self.node(i as u32);
            if self.underscored
                && host.get(1) == Some(&b'_')
                && let Some(ThroughHost::Srv { host, port }) = self.through_host(host, None)
            {
                own.srv = Some((port, host));
            }
            f(host, own);
            if node.srv.len == 0 {
                continue;
            }
            let through = |srv| NodeRef {
                shard: self,
                node: None,
                srv,
                zone: node.zone,
            };
            key.clear();
            key.extend_from_slice(TCP_LABEL);
            key.extend_from_slice(host);
            if !stored(&key) {
                f(&key, through(None));
            }
            for port in self.ports(node) {
                key.clear();
                key.extend_from_slice(self.label(port));
                key.extend_from_slice(TCP_LABEL);
                key.extend_from_slice(host);
                if !stored(&key) {
                    f(&key, through(Some((port.port, i as u32))));
                }
            }
        }
    }
}

/// A name found in a [`super::ZoneSet`], and what exists there.
#[derive(Debug, Clone, Copy)]
pub struct NodeRef<'a> {
    shard: &'a Shard,
    /// The name's own node; none for a name found only through its host.
    node: Option<&'a Node>,
    /// On an SRV name: its port, and its host's node.
    srv: Option<(u16, u32)>,
    pub(super) zone: ZoneIndex,
}

impl<'a> NodeRef<'a> {
    /// Its IPv4 addresses.
    pub fn a(&self) -> &'a [Ipv4Addr] {
        self.node.map_or(&[], |n| &self.shard.v4[n.a.range()])
    }

    /// Its IPv6 addresses.
    pub fn aaaa(&self) -> &'a [Ipv6Addr] {
        self.node.map_or(&[], |n| &self.shard.v6[n.aaaa.range()])
    }

    /// On an SRV name: the port, and the node of the host it points at.
    pub fn srv(&self) -> Option<(u16, NodeRef<'a>)> {
        let (port, host) = self.srv?;
        Some((port, self.shard.node(host)))
    }

    /// The key of a stored node; `None` for a name found only through its
    /// host.
    pub(super) fn stored_key(&self) -> Option<&'a [u8]> {
        Some(self.shard.key(self.node?))
    }

    /// The name of a stored node, rebuilt from its key; `None` for a name
    /// found only through its host (its owner is the question's name).
    pub fn name(&self) -> Option<Name> {
        let mut name = name_from_wire(self.shard.key(self.node?))?;
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

    /// A name's entry is 24 bytes (100,000 of them at 100,000 hosts), an
    /// SRV name's 8.
    #[test]
    fn a_node_is_24_bytes() {
        assert_eq!(std::mem::size_of::<Node>(), 24);
        assert_eq!(std::mem::size_of::<SrvPort>(), 8);
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
