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

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};

use hickory_proto::rr::rdata::{NS, SOA};
use hickory_proto::rr::{LowerName, Name, RData, Record};

mod digest;
mod names;
mod soa;

pub(crate) use soa::FastSoa;

use names::Names;
pub use names::NodeRef;

/// The class IN (RFC 1035 §3.2.4), as it is on the wire.
pub(crate) const CLASS_IN: u16 = 1;

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

    /// The wildcard that covers `name` in `zone`, if any (design §4): a
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

    /// The zones' SOA serial.
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
    /// confirmed by the registry source (design §4).
    pub fn is_stale(&self) -> bool {
        self.stale.load(Ordering::Relaxed)
    }

    /// Marks the snapshot stale (warm start) or confirmed. Relaxed: a query
    /// that sees the old value a moment longer is harmless.
    pub fn set_stale(&self, stale: bool) {
        self.stale.store(stale, Ordering::Relaxed);
    }

    /// The zones, longest origin first.
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
        // Every name is made before anything is inserted: a host whose SRV
        // name is not a DNS name leaves no trace, and the rest still builds.
        let srv_names = data
            .ports
            .iter()
            .map(|(port_name, _)| fqdn(&format!("_{port_name}._tcp.{}", data.host)))
            .collect::<Result<Vec<Name>, String>>()?;
        if name.is_wildcard() {
            self.zones[usize::from(index)].has_wildcards = true;
        }
        let host = self.node(&name, index, origin_labels)?;
        self.names.set_addresses(host, data.addresses)?;
        for (srv_name, (_, number)) in srv_names.iter().zip(data.ports) {
            let srv = self.node(srv_name, index, origin_labels)?;
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

    /// The finished set: zones ordered longest origin first, the name
    /// table shrunk to its contents.
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

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
