//! The DNS data of one published snapshot: the served zones with their apex
//! records, and one table of every name in them.
//!
//! Names are keyed by their lower-case wire form, the same bytes a query
//! carries, so both the fast path and the general path find a name with one
//! hash lookup. A name holds only what the answers need (its addresses, its
//! SRV port and target): at 100,000 hosts, keeping a full hickory `Record`
//! per answer cost about 2 KiB a host, the compact form about a tenth of
//! that. The general path builds `Record`s from it when asked; the fast
//! path writes the bytes directly.

use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, Ordering};

use hashbrown::HashTable;

use hickory_proto::rr::rdata::{A, AAAA, NS, SOA, SRV};
use hickory_proto::rr::{LowerName, Name, RData, Record};
use rustc_hash::FxBuildHasher;

use super::fast::FastSoa;

mod digest;

/// SOA timers. Secondaries never transfer these zones, so refresh, retry
/// and expire matter little; `minimum` is the negative-caching TTL.
const SOA_REFRESH: i32 = 3600;
const SOA_RETRY: i32 = 600;
const SOA_EXPIRE: i32 = 86400;

/// All zones of a snapshot and every name in them.
#[derive(Debug)]
pub struct ZoneSet {
    /// Longest origin first, so the first match is the most specific zone.
    zones: Vec<Zone>,
    /// Every name of every zone (apex and empty non-terminals included).
    names: Names,
    serial: u32,
    /// Served from the last-known-good state before the registry source
    /// has delivered: answers with EDNS carry an RFC 8914 "Stale Answer".
    stale: AtomicBool,
}

impl ZoneSet {
    /// The most specific zone `name` lies in, if any.
    pub fn find(&self, name: &LowerName) -> Option<&Zone> {
        self.zones.iter().find(|z| z.origin.zone_of(name))
    }

    /// The node at `key` (a lower-case wire name), if the name exists.
    pub fn node(&self, key: &[u8]) -> Option<NodeRef<'_>> {
        let index = self.names.find(key)?;
        Some(self.names.node(index))
    }

    /// The wildcard that covers `name` in `zone`, if any (DESIGN §4): a
    /// wildcard `*.suffix` matches any name at any depth below `suffix`,
    /// never `suffix` itself, and the most specific (longest) suffix wins.
    /// Names that exist are never covered (their own node answers).
    pub fn wildcard_for(&self, zone: &Zone, name: &Name) -> Option<NodeRef<'_>> {
        if !zone.has_wildcards {
            return None;
        }
        let star = Name::from_ascii("*").ok()?;
        let mut suffix = name.base_name();
        while suffix.num_labels() >= zone.origin.num_labels() {
            if let Ok(candidate) = star.clone().append_domain(&suffix)
                && let Some(node) = self.node(&wire(&candidate))
            {
                return Some(node);
            }
            suffix = suffix.base_name();
        }
        None
    }

    /// The zone a node belongs to.
    pub fn zone_of(&self, node: NodeRef<'_>) -> &Zone {
        &self.zones[usize::from(node.node.zone)]
    }

    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// Gives every zone's SOA `serial`. The controller decides the serial
    /// once the snapshot is built, from whether what it serves changed
    /// ([`ZoneSet::digest`]).
    pub fn set_serial(&mut self, serial: u32) {
        self.serial = serial;
        for zone in &mut self.zones {
            if let RData::SOA(soa) = &mut zone.soa.data {
                soa.serial = serial;
            }
            zone.fast_soa = FastSoa::encode(zone);
        }
    }

    /// True while this snapshot is the last-known-good one, not yet
    /// confirmed by the registry source (DESIGN §4).
    pub fn is_stale(&self) -> bool {
        self.stale.load(Ordering::Relaxed)
    }

    /// Marks the snapshot stale (warm start) or confirmed. Relaxed: a query
    /// that sees the old value a moment longer is harmless.
    pub fn set_stale(&self, stale: bool) {
        self.stale.store(stale, Ordering::Relaxed);
    }

    pub fn zones(&self) -> &[Zone] {
        &self.zones
    }

    /// Number of names, empty non-terminals included.
    pub fn len(&self) -> usize {
        self.names.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.nodes.is_empty()
    }

    /// Every record of `zone` below its apex, in name order, for printing.
    pub fn records(&self, zone: &Zone) -> Vec<Record> {
        let mut nodes: Vec<(Name, NodeRef<'_>)> = (0..self.names.nodes.len())
            .map(|i| self.names.node(i as u32))
            .filter(|node| std::ptr::eq(self.zone_of(*node), zone))
            .filter_map(|node| Some((node.name()?, node)))
            .collect();
        nodes.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out = Vec::new();
        for (name, node) in nodes {
            out.extend(node.a_records(&name, zone.ttl));
            out.extend(node.aaaa_records(&name, zone.ttl));
            out.extend(node.srv_record(&name, zone.ttl));
        }
        out
    }
}

/// The name table. Nodes sit in one vector, their keys (lower-case wire
/// names) back to back in one byte arena, their addresses in two more; the
/// hash table holds only node indexes. At 100,000 hosts this is about 150
/// bytes a host, against 420 for a `HashMap<Box<[u8]>, Node>` with boxed
/// addresses (one allocation per key, per address list and per SRV).
#[derive(Debug, Default)]
struct Names {
    table: HashTable<u32>,
    nodes: Vec<Node>,
    keys: Vec<u8>,
    v4: Vec<Ipv4Addr>,
    v6: Vec<Ipv6Addr>,
}

/// What exists at one name, as indexes into [`Names`]. A node with no data
/// is an empty non-terminal (or the apex): the name exists because names
/// below it do.
#[derive(Debug, Clone, Copy)]
struct Node {
    /// Its key: `keys[key..key + key_len]`.
    key: u32,
    key_len: u8,
    /// Index of its zone in [`ZoneSet::zones`].
    zone: u16,
    a: Span,
    aaaa: Span,
    /// On `_<port>._tcp.<host>` names: the port, and the host's node.
    srv_port: u16,
    srv_target: u32,
}

/// `srv_target` of a node without SRV data.
const NO_SRV: u32 = u32::MAX;

/// A run of addresses in one of the address arenas.
#[derive(Debug, Clone, Copy, Default)]
struct Span {
    start: u32,
    len: u16,
}

impl Span {
    fn range(self) -> std::ops::Range<usize> {
        let start = self.start as usize;
        start..start + usize::from(self.len)
    }
}

fn hash_key(key: &[u8]) -> u64 {
    FxBuildHasher.hash_one(key)
}

impl Names {
    fn with_capacity(names: usize) -> Self {
        Self {
            table: HashTable::with_capacity(names),
            nodes: Vec::with_capacity(names),
            // Wire names of mesh hosts run to about 30 bytes.
            keys: Vec::with_capacity(names.saturating_mul(32)),
            v4: Vec::new(),
            v6: Vec::new(),
        }
    }

    fn key<'k>(keys: &'k [u8], node: &Node) -> &'k [u8] {
        &keys[node.key as usize..][..usize::from(node.key_len)]
    }

    fn node(&self, index: u32) -> NodeRef<'_> {
        NodeRef {
            names: self,
            node: &self.nodes[index as usize],
        }
    }

    fn find(&self, key: &[u8]) -> Option<u32> {
        self.table
            .find(hash_key(key), |&i| {
                Self::key(&self.keys, &self.nodes[i as usize]) == key
            })
            .copied()
    }

    /// The node at `key`, created (in `zone`, with no data) if new.
    fn find_or_insert(&mut self, key: &[u8], zone: u16) -> Result<u32, String> {
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

    fn set_addresses(&mut self, index: u32, addresses: &[IpAddr]) -> Result<(), String> {
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

    fn shrink_to_fit(&mut self) {
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
    names: &'a Names,
    node: &'a Node,
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

    pub fn a_records(&self, owner: &Name, ttl: u32) -> Vec<Record> {
        let data = self.a().iter().map(|a| RData::A(A(*a)));
        data.map(|d| Record::from_rdata(owner.clone(), ttl, d))
            .collect()
    }

    pub fn aaaa_records(&self, owner: &Name, ttl: u32) -> Vec<Record> {
        let data = self.aaaa().iter().map(|a| RData::AAAA(AAAA(*a)));
        data.map(|d| Record::from_rdata(owner.clone(), ttl, d))
            .collect()
    }

    pub fn srv_record(&self, owner: &Name, ttl: u32) -> Option<Record> {
        let (port, target) = self.srv()?;
        let data = SRV::new(0, 0, port, target.name()?);
        Some(Record::from_rdata(owner.clone(), ttl, RData::SRV(data)))
    }
}

/// One authoritative zone's apex.
#[derive(Debug)]
pub struct Zone {
    pub origin: LowerName,
    pub soa: Record,
    pub ns: Vec<Record>,
    /// The name server `ns.<origin>`, lower-case.
    pub ns_host: LowerName,
    /// Its A and AAAA records: the additional data of an NS answer
    /// (RFC 1035 §3.3.11), and what resolvers priming a stub zone ask for.
    pub ns_glue: Vec<Record>,
    /// TTL of every record in the zone.
    pub ttl: u32,
    /// The zone holds wildcard names (`*.suffix`, from hand-written
    /// ServiceEntries): a name not found may still match one.
    pub has_wildcards: bool,
    /// The SOA pre-encoded for the fast path; `None` if it cannot be.
    pub(crate) fast_soa: Option<FastSoa>,
}

/// A host to put in a zone: its addresses and its named TCP ports.
#[derive(Debug)]
pub struct HostData<'a> {
    pub host: &'a str,
    pub addresses: &'a [IpAddr],
    pub ports: &'a [(&'a str, u16)],
}

/// Builds a [`ZoneSet`]: zones first, then hosts.
pub struct ZoneSetBuilder {
    zones: Vec<Zone>,
    names: Names,
    serial: u32,
    ttl: u32,
    ns_addresses: Vec<IpAddr>,
}

impl ZoneSetBuilder {
    /// An empty set whose zones get `serial` and whose records get `ttl`.
    /// `names` is how many names it will hold (apexes, hosts, SRV names and
    /// empty non-terminals): the table is sized once, for that many. The
    /// table is a good part of a snapshot's memory, and a count short by a
    /// few names doubles it while it grows.
    pub fn new(serial: u32, ttl: u32, names: usize) -> Self {
        Self {
            zones: Vec::new(),
            names: Names::with_capacity(names),
            serial,
            ttl,
            ns_addresses: Vec::new(),
        }
    }

    /// The addresses the zones' name server `ns.<zone>` answers with: where
    /// this server is reached. Set before adding zones.
    pub fn name_server_addresses(&mut self, addresses: &[IpAddr]) -> &mut Self {
        self.ns_addresses = addresses.to_vec();
        self
    }

    /// Adds a zone (e.g. `global`). Its name server is `ns.<origin>`, with
    /// the [`Self::name_server_addresses`] as its A and AAAA records, so
    /// that resolvers which prime a stub zone (unbound `stub-prime`, BIND
    /// `type stub`) find it. Zones may not nest (the command line refuses
    /// it), so every name has one zone.
    pub fn zone(&mut self, origin: &str) -> Result<&mut Self, String> {
        let origin = fqdn(origin)?;
        let ns_name = fqdn(&format!("ns.{origin}"))?;
        let mbox = fqdn(&format!("hostmaster.{origin}"))?;
        let soa = SOA::new(
            ns_name.clone(),
            mbox,
            self.serial,
            SOA_REFRESH,
            SOA_RETRY,
            SOA_EXPIRE,
            self.ttl,
        );
        let index = u16::try_from(self.zones.len()).map_err(|_| "too many zones".to_string())?;
        let mut zone = Zone {
            origin: LowerName::new(&origin),
            soa: Record::from_rdata(origin.clone(), self.ttl, RData::SOA(soa)),
            ns: vec![Record::from_rdata(
                origin.clone(),
                self.ttl,
                RData::NS(NS(ns_name.clone())),
            )],
            ns_host: LowerName::new(&ns_name),
            ns_glue: Vec::new(),
            ttl: self.ttl,
            has_wildcards: false,
            fast_soa: None,
        };
        zone.fast_soa = FastSoa::encode(&zone);
        self.names.find_or_insert(&wire(&origin), index)?;
        let ns = self.names.find_or_insert(&wire(&ns_name), index)?;
        self.names.set_addresses(ns, &self.ns_addresses)?;
        let ns = self.names.node(ns);
        zone.ns_glue = ns.a_records(&ns_name, self.ttl);
        zone.ns_glue.extend(ns.aaaa_records(&ns_name, self.ttl));
        self.zones.push(zone);
        Ok(self)
    }

    /// Adds a host in one of the zones, its SRV names, and the empty
    /// non-terminals between them and the zone's apex.
    pub fn add_host(&mut self, data: &HostData<'_>) -> Result<(), String> {
        let name = fqdn(data.host)?;
        let lower = LowerName::new(&name);
        let (index, origin_labels) = self
            .zones
            .iter()
            .enumerate()
            .find(|(_, z)| z.origin.zone_of(&lower))
            .map(|(i, z)| (i as u16, z.origin.num_labels()))
            .ok_or_else(|| format!("{} is in none of the zones", data.host))?;
        if self.zones[usize::from(index)].ns_host == lower {
            // Its addresses are the server's own (--ns-address).
            return Err(format!(
                "{} is the name server of zone {}",
                data.host,
                self.zones[usize::from(index)].origin
            ));
        }
        if name.is_wildcard() {
            self.zones[usize::from(index)].has_wildcards = true;
        }
        let host = self.node(&name, index, origin_labels)?;
        self.names.set_addresses(host, data.addresses)?;
        for (port_name, number) in data.ports {
            let srv_name = fqdn(&format!("_{port_name}._tcp.{}", data.host))?;
            let srv = self.node(&srv_name, index, origin_labels)?;
            let node = &mut self.names.nodes[srv as usize];
            node.srv_port = *number;
            node.srv_target = host;
        }
        Ok(())
    }

    /// The node at `name`, created with its empty non-terminals if new.
    fn node(&mut self, name: &Name, zone: u16, origin_labels: u8) -> Result<u32, String> {
        let mut parent = name.base_name();
        while parent.num_labels() > origin_labels {
            let key = wire(&parent);
            if self.names.find(&key).is_some() {
                break; // its own parents were made when it was
            }
            self.names.find_or_insert(&key, zone)?;
            parent = parent.base_name();
        }
        self.names.find_or_insert(&wire(name), zone)
    }

    pub fn build(self) -> ZoneSet {
        let mut zones = self.zones;
        let mut names = self.names;
        // Longest origin first; node zone indexes follow the new order.
        let mut order: Vec<usize> = (0..zones.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(zones[i].origin.num_labels()));
        let mut new_index = vec![0u16; zones.len()];
        for (new, &old) in order.iter().enumerate() {
            new_index[old] = new as u16;
        }
        for node in &mut names.nodes {
            node.zone = new_index[usize::from(node.zone)];
        }
        let mut slots: Vec<Option<Zone>> = zones.drain(..).map(Some).collect();
        let zones = order.iter().filter_map(|&i| slots[i].take()).collect();
        names.shrink_to_fit();
        ZoneSet {
            zones,
            names,
            serial: self.serial,
            stale: AtomicBool::new(false),
        }
    }
}

/// A fully qualified, lower-case name from presentation text.
fn fqdn(text: &str) -> Result<Name, String> {
    let mut name =
        Name::from_ascii(text).map_err(|e| format!("`{text}` is not a DNS name: {e}"))?;
    name.set_fqdn(true);
    Ok(name.to_lowercase())
}

/// The uncompressed, lower-case wire form of a name.
pub fn wire(name: &Name) -> Box<[u8]> {
    let mut bytes = Vec::with_capacity(name.len() + 1);
    for label in name.iter() {
        bytes.push(label.len() as u8);
        bytes.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    bytes.push(0);
    bytes.into_boxed_slice()
}

/// A name back from its uncompressed wire form.
fn name_from_wire(key: &[u8]) -> Option<Name> {
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

    fn key(text: &str) -> Box<[u8]> {
        wire(&fqdn(text).unwrap())
    }

    /// The compact name table gives back what was put in: several
    /// addresses per family, SRV port and target, empty non-terminals, and
    /// each name's zone after the zones are reordered (longest first).
    #[test]
    fn the_name_table_keeps_every_name_and_its_data() {
        let mut builder = ZoneSetBuilder::new(7, 30, 2);
        builder.zone("global").unwrap().zone("east.region").unwrap();
        let v4: IpAddr = "240.0.0.1".parse().unwrap();
        let v4b: IpAddr = "240.0.0.2".parse().unwrap();
        let v6: IpAddr = "fd00::1".parse().unwrap();
        builder
            .add_host(&HostData {
                host: "httpbin.bar.global",
                addresses: &[v4, v6, v4b],
                ports: &[("http", 8000)],
            })
            .unwrap();
        builder
            .add_host(&HostData {
                host: "db.foo.east.region",
                addresses: &[],
                ports: &[],
            })
            .unwrap();
        let set = builder.build();
        // Apexes 2, their name servers 2, hosts 2, SRV 1, and the empty
        // non-terminals bar.global, _tcp.httpbin.bar.global and
        // foo.east.region.
        assert_eq!(set.len(), 10);
        assert!(set.node(&key("ns.east.region")).is_some());
        assert!(set.node(&key("_tcp.httpbin.bar.global")).is_some());

        let host = set.node(&key("httpbin.bar.global")).unwrap();
        assert_eq!(
            host.a(),
            ["240.0.0.1", "240.0.0.2"].map(|a| a.parse::<Ipv4Addr>().unwrap())
        );
        assert_eq!(host.aaaa(), ["fd00::1".parse::<Ipv6Addr>().unwrap()]);
        assert!(host.srv().is_none());
        assert_eq!(set.zone_of(host).origin.to_string(), "global.");

        let srv = set.node(&key("_http._tcp.httpbin.bar.global")).unwrap();
        let (port, target) = srv.srv().unwrap();
        assert_eq!(port, 8000);
        assert_eq!(target.name().unwrap(), fqdn("httpbin.bar.global").unwrap());
        assert!(srv.a().is_empty());

        let ent = set.node(&key("bar.global")).unwrap();
        assert!(ent.a().is_empty() && ent.aaaa().is_empty() && ent.srv().is_none());
        let other = set.node(&key("db.foo.east.region")).unwrap();
        assert_eq!(set.zone_of(other).origin.to_string(), "east.region.");
        assert_eq!(set.zones()[0].origin.to_string(), "east.region.");
        assert!(set.node(&key("nope.bar.global")).is_none());
    }
}
