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

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::rr::rdata::{A, AAAA, NS, SOA, SRV};
use hickory_proto::rr::{LowerName, Name, RData, Record};
use rustc_hash::FxBuildHasher;

use super::fast::FastSoa;

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
    /// Every name of every zone (apex and empty non-terminals included),
    /// keyed by lower-case wire form.
    names: HashMap<Box<[u8]>, Node, FxBuildHasher>,
    serial: u32,
}

impl ZoneSet {
    /// The most specific zone `name` lies in, if any.
    pub fn find(&self, name: &LowerName) -> Option<&Zone> {
        self.zones.iter().find(|z| z.origin.zone_of(name))
    }

    /// The node at `key` (a lower-case wire name), if the name exists.
    pub fn node(&self, key: &[u8]) -> Option<&Node> {
        self.names.get(key)
    }

    /// The wildcard that covers `name` in `zone`, if any (DESIGN §4): a
    /// wildcard `*.suffix` matches any name at any depth below `suffix`,
    /// never `suffix` itself, and the most specific (longest) suffix wins.
    /// Names that exist are never covered (their own node answers).
    pub fn wildcard_for(&self, zone: &Zone, name: &Name) -> Option<&Node> {
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
    pub fn zone_of(&self, node: &Node) -> &Zone {
        &self.zones[usize::from(node.zone)]
    }

    pub fn serial(&self) -> u32 {
        self.serial
    }

    pub fn zones(&self) -> &[Zone] {
        &self.zones
    }

    /// Number of names, empty non-terminals included.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Every record of `zone` below its apex, in name order, for printing.
    pub fn records(&self, zone: &Zone) -> Vec<Record> {
        let mut nodes: Vec<(Name, &Node)> = self
            .names
            .iter()
            .filter(|(_, node)| std::ptr::eq(self.zone_of(node), zone))
            .filter_map(|(key, node)| Some((name_from_wire(key)?, node)))
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

/// What exists at one name. A node with no data is an empty non-terminal
/// (or the apex): the name exists because names below it do.
#[derive(Debug, Default)]
pub struct Node {
    /// Index of its zone in [`ZoneSet::zones`].
    pub zone: u16,
    pub a: Box<[Ipv4Addr]>,
    pub aaaa: Box<[Ipv6Addr]>,
    /// Set on `_<port>._tcp.<host>` names.
    pub srv: Option<Box<Srv>>,
}

/// The data of an SRV name: the port, and the host it points at.
#[derive(Debug)]
pub struct Srv {
    pub port: u16,
    pub target: Name,
}

impl Node {
    pub fn a_records(&self, owner: &Name, ttl: u32) -> Vec<Record> {
        let data = self.a.iter().map(|a| RData::A(A(*a)));
        data.map(|d| Record::from_rdata(owner.clone(), ttl, d))
            .collect()
    }

    pub fn aaaa_records(&self, owner: &Name, ttl: u32) -> Vec<Record> {
        let data = self.aaaa.iter().map(|a| RData::AAAA(AAAA(*a)));
        data.map(|d| Record::from_rdata(owner.clone(), ttl, d))
            .collect()
    }

    pub fn srv_record(&self, owner: &Name, ttl: u32) -> Option<Record> {
        let srv = self.srv.as_ref()?;
        let data = SRV::new(0, 0, srv.port, srv.target.clone());
        Some(Record::from_rdata(owner.clone(), ttl, RData::SRV(data)))
    }
}

/// One authoritative zone's apex.
#[derive(Debug)]
pub struct Zone {
    pub origin: LowerName,
    pub soa: Record,
    pub ns: Vec<Record>,
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
    pub ports: &'a [(String, u16)],
}

/// Builds a [`ZoneSet`]: zones first, then hosts.
pub struct ZoneSetBuilder {
    zones: Vec<Zone>,
    names: HashMap<Box<[u8]>, Node, FxBuildHasher>,
    serial: u32,
    ttl: u32,
}

impl ZoneSetBuilder {
    /// An empty set whose zones get `serial` and whose records get `ttl`.
    /// `names` is how many names it will hold (apexes, hosts, SRV names and
    /// empty non-terminals): the table is sized once, for that many. The
    /// table is most of a snapshot's memory, so a guess on the high side
    /// costs: 3 names per host where there are 2 doubled it at 100,000.
    pub fn new(serial: u32, ttl: u32, names: usize) -> Self {
        let mut table = HashMap::with_hasher(FxBuildHasher);
        table.reserve(names);
        let names = table;
        Self {
            zones: Vec::new(),
            names,
            serial,
            ttl,
        }
    }

    /// Adds a zone (e.g. `global`). Its name server is `ns.<origin>`;
    /// forwarders never follow it, but a zone must name one. Zones may not
    /// nest (the command line refuses it), so every name has one zone.
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
                RData::NS(NS(ns_name)),
            )],
            ttl: self.ttl,
            has_wildcards: false,
            fast_soa: None,
        };
        zone.fast_soa = FastSoa::encode(&zone);
        self.names.insert(
            wire(&origin),
            Node {
                zone: index,
                ..Node::default()
            },
        );
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
        let (mut a, mut aaaa) = (Vec::new(), Vec::new());
        for addr in data.addresses {
            match addr {
                IpAddr::V4(v4) => a.push(*v4),
                IpAddr::V6(v6) => aaaa.push(*v6),
            }
        }
        if name.is_wildcard() {
            self.zones[usize::from(index)].has_wildcards = true;
        }
        let node = self.node(&name, index, origin_labels);
        node.a = a.into_boxed_slice();
        node.aaaa = aaaa.into_boxed_slice();
        for (port_name, number) in data.ports {
            let srv_name = fqdn(&format!("_{port_name}._tcp.{}", data.host))?;
            let node = self.node(&srv_name, index, origin_labels);
            node.srv = Some(Box::new(Srv {
                port: *number,
                target: name.clone(),
            }));
        }
        Ok(())
    }

    /// The node at `name`, created with its empty non-terminals if new.
    fn node(&mut self, name: &Name, zone: u16, origin_labels: u8) -> &mut Node {
        let mut parent = name.base_name();
        while parent.num_labels() > origin_labels {
            let key = wire(&parent);
            if self.names.contains_key(&key) {
                break; // its own parents were made when it was
            }
            self.names.insert(
                key,
                Node {
                    zone,
                    ..Node::default()
                },
            );
            parent = parent.base_name();
        }
        self.names.entry(wire(name)).or_insert_with(|| Node {
            zone,
            ..Node::default()
        })
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
        for node in names.values_mut() {
            node.zone = new_index[usize::from(node.zone)];
        }
        let mut slots: Vec<Option<Zone>> = zones.drain(..).map(Some).collect();
        let zones = order.iter().filter_map(|&i| slots[i].take()).collect();
        names.shrink_to_fit();
        ZoneSet {
            zones,
            names,
            serial: self.serial,
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
