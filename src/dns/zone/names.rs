//! The name table of a snapshot: every name of every zone, keyed by its
//! lower-case wire form, with what the answers need (addresses, SRV port
//! and target) held in arenas rather than per-name allocations.

use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hashbrown::HashTable;
use hickory_proto::rr::rdata::{A, AAAA, SRV};
use hickory_proto::rr::{Name, RData, Record};
use rustc_hash::FxBuildHasher;

/// The name table. Nodes sit in one vector, their keys (lower-case wire
/// names) back to back in one byte arena, their addresses in two more; the
/// hash table holds only node indexes. At 100,000 hosts this is about 150
/// bytes a host, against 420 for a `HashMap<Box<[u8]>, Node>` with boxed
/// addresses (one allocation per key, per address list and per SRV).
#[derive(Debug, Default)]
pub(super) struct Names {
    pub(super) table: HashTable<u32>,
    pub(super) nodes: Vec<Node>,
    pub(super) keys: Vec<u8>,
    pub(super) v4: Vec<Ipv4Addr>,
    pub(super) v6: Vec<Ipv6Addr>,
}

/// What exists at one name, as indexes into [`Names`]. A node with no data
/// is an empty non-terminal (or the apex): the name exists because names
/// below it do.
#[derive(Debug, Clone, Copy)]
pub(super) struct Node {
    /// Its key: `keys[key..key + key_len]`.
    pub(super) key: u32,
    pub(super) key_len: u8,
    /// Index of its zone in [`ZoneSet::zones`].
    pub(super) zone: u16,
    pub(super) a: Span,
    pub(super) aaaa: Span,
    /// On `_<port>._tcp.<host>` names: the port, and the host's node.
    pub(super) srv_port: u16,
    pub(super) srv_target: u32,
}

/// `srv_target` of a node without SRV data.
pub(super) const NO_SRV: u32 = u32::MAX;

/// A run of addresses in one of the address arenas.
#[derive(Debug, Clone, Copy, Default)]
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

pub(super) fn hash_key(key: &[u8]) -> u64 {
    FxBuildHasher.hash_one(key)
}

impl Names {
    pub(super) fn with_capacity(names: usize) -> Self {
        Self {
            table: HashTable::with_capacity(names),
            nodes: Vec::with_capacity(names),
            // Wire names of mesh hosts run to about 30 bytes.
            keys: Vec::with_capacity(names.saturating_mul(32)),
            v4: Vec::new(),
            v6: Vec::new(),
        }
    }

    pub(super) fn key<'k>(keys: &'k [u8], node: &Node) -> &'k [u8] {
        &keys[node.key as usize..][..usize::from(node.key_len)]
    }

    pub(super) fn node(&self, index: u32) -> NodeRef<'_> {
        NodeRef {
            names: self,
            node: &self.nodes[index as usize],
        }
    }

    pub(super) fn find(&self, key: &[u8]) -> Option<u32> {
        self.table
            .find(hash_key(key), |&i| {
                Self::key(&self.keys, &self.nodes[i as usize]) == key
            })
            .copied()
    }

    /// The node at `key`, created (in `zone`, with no data) if new.
    pub(super) fn find_or_insert(&mut self, key: &[u8], zone: u16) -> Result<u32, String> {
        if let Some(index) = self.find(key) {
            return Ok(index);
        }
        let too_many = || "too many names in one snapshot".to_string();
        let index = u32::try_from(self.nodes.len())
            .ok()
            .filter(|&i| i != NO_SRV)
            .ok_or_else(too_many)?;
        let start = u32::try_from(self.keys.len()).map_err(|_| too_many())?;
        let key_len = u8::try_from(key.len()).map_err(|_| "a name longer than 255 bytes")?;
        self.keys.extend_from_slice(key);
        self.nodes.push(Node {
            key: start,
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
        table.insert_unique(hash_key(key), index, |&i| {
            hash_key(Self::key(keys, &nodes[i as usize]))
        });
        Ok(index)
    }

    pub(super) fn set_addresses(&mut self, index: u32, addresses: &[IpAddr]) -> Result<(), String> {
        let too_many = || "too many addresses".to_string();
        let a = Span {
            start: u32::try_from(self.v4.len()).map_err(|_| too_many())?,
            len: 0,
        };
        let aaaa = Span {
            start: u32::try_from(self.v6.len()).map_err(|_| too_many())?,
            len: 0,
        };
        for addr in addresses {
            match addr {
                IpAddr::V4(v4) => self.v4.push(*v4),
                IpAddr::V6(v6) => self.v6.push(*v6),
            }
        }
        let node = &mut self.nodes[index as usize];
        node.a = Span {
            len: u16::try_from(self.v4.len() - a.start as usize).map_err(|_| too_many())?,
            ..a
        };
        node.aaaa = Span {
            len: u16::try_from(self.v6.len() - aaaa.start as usize).map_err(|_| too_many())?,
            ..aaaa
        };
        Ok(())
    }

    pub(super) fn shrink_to_fit(&mut self) {
        let Self {
            table, nodes, keys, ..
        } = self;
        table.shrink_to_fit(|&i| hash_key(Self::key(keys, &nodes[i as usize])));
        nodes.shrink_to_fit();
        keys.shrink_to_fit();
        self.v4.shrink_to_fit();
        self.v6.shrink_to_fit();
    }
}

/// A name found in a [`ZoneSet`], and what exists there.
#[derive(Debug, Clone, Copy)]
pub struct NodeRef<'a> {
    pub(super) names: &'a Names,
    pub(super) node: &'a Node,
}

impl<'a> NodeRef<'a> {
    /// Its IPv4 addresses.
    pub fn a(&self) -> &'a [Ipv4Addr] {
        &self.names.v4[self.node.a.range()]
    }

    /// Its IPv6 addresses.
    pub fn aaaa(&self) -> &'a [Ipv6Addr] {
        &self.names.v6[self.node.aaaa.range()]
    }

    /// On an SRV name: the port, and the node of the host it points at.
    pub fn srv(&self) -> Option<(u16, NodeRef<'a>)> {
        (self.node.srv_target != NO_SRV)
            .then(|| (self.node.srv_port, self.names.node(self.node.srv_target)))
    }

    /// The name, rebuilt from its key.
    pub fn name(&self) -> Option<Name> {
        let mut name = name_from_wire(Names::key(&self.names.keys, self.node))?;
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
