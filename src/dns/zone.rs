//! The DNS data of one published snapshot: every served zone with its apex
//! records and a node per name. Records are built once per snapshot and only
//! borrowed by queries. Owner names are stored lower-case; the response
//! writer puts the question's own spelling back (DESIGN §4, case echo).

use std::collections::HashMap;
use std::net::IpAddr;

use hickory_proto::rr::rdata::{A, AAAA, NS, SOA, SRV};
use hickory_proto::rr::{LowerName, Name, RData, Record};

use super::fast::FastIndex;

/// SOA timers. Secondaries never transfer these zones, so refresh, retry
/// and expire matter little; `minimum` is the negative-caching TTL.
const SOA_REFRESH: i32 = 3600;
const SOA_RETRY: i32 = 600;
const SOA_EXPIRE: i32 = 86400;

/// All zones of a snapshot.
#[derive(Debug)]
pub struct ZoneSet {
    /// Longest origin first, so the first match is the most specific zone.
    zones: Vec<Zone>,
    serial: u32,
    /// The A and AAAA answers pre-encoded for the UDP fast path.
    fast: FastIndex,
}

impl ZoneSet {
    pub fn new(mut zones: Vec<Zone>, serial: u32) -> Self {
        zones.sort_by_key(|z| std::cmp::Reverse(z.origin.num_labels()));
        let fast = FastIndex::build(&zones);
        Self {
            zones,
            serial,
            fast,
        }
    }

    pub fn fast(&self) -> &FastIndex {
        &self.fast
    }

    /// The most specific zone `name` lies in, if any.
    pub fn find(&self, name: &LowerName) -> Option<&Zone> {
        self.zones.iter().find(|z| z.origin.zone_of(name))
    }

    pub fn serial(&self) -> u32 {
        self.serial
    }

    pub fn zones(&self) -> &[Zone] {
        &self.zones
    }
}

/// What exists at one name. A node with no records is an empty
/// non-terminal: the name exists because names below it do.
#[derive(Debug, Default)]
pub struct Node {
    pub a: Vec<Record>,
    pub aaaa: Vec<Record>,
    pub srv: Vec<Record>,
    /// Address records of SRV targets, for the additional section.
    pub srv_glue: Vec<Record>,
}

/// One authoritative zone.
#[derive(Debug)]
pub struct Zone {
    pub origin: LowerName,
    pub soa: Record,
    pub ns: Vec<Record>,
    pub nodes: HashMap<LowerName, Node>,
}

/// A host to put in a zone: its addresses and its named TCP ports.
#[derive(Debug)]
pub struct HostData<'a> {
    pub host: &'a str,
    pub addresses: &'a [IpAddr],
    pub ports: &'a [(String, u16)],
}

/// Builds a [`Zone`] from hosts.
pub struct ZoneBuilder {
    zone: Zone,
    ttl: u32,
}

impl ZoneBuilder {
    /// A zone `origin` (e.g. `global`) with the given serial and TTL. The
    /// name server is `ns.<origin>`; forwarders never follow it, but a zone
    /// must name one.
    pub fn new(origin: &str, serial: u32, ttl: u32) -> Result<Self, String> {
        let origin = fqdn(origin)?;
        let ns_name = fqdn(&format!("ns.{origin}"))?;
        let mbox = fqdn(&format!("hostmaster.{origin}"))?;
        let soa = SOA::new(
            ns_name.clone(),
            mbox,
            serial,
            SOA_REFRESH,
            SOA_RETRY,
            SOA_EXPIRE,
            ttl,
        );
        let lower = LowerName::new(&origin);
        let mut nodes = HashMap::new();
        nodes.insert(lower.clone(), Node::default());
        Ok(Self {
            zone: Zone {
                origin: lower,
                soa: Record::from_rdata(origin.clone(), ttl, RData::SOA(soa)),
                ns: vec![Record::from_rdata(origin, ttl, RData::NS(NS(ns_name)))],
                nodes,
            },
            ttl,
        })
    }

    /// Adds a host below the origin, its SRV names, and the empty
    /// non-terminals between them and the origin.
    pub fn add_host(&mut self, data: &HostData<'_>) -> Result<(), String> {
        let name = fqdn(data.host)?;
        if !self.zone.origin.zone_of(&LowerName::new(&name)) {
            return Err(format!("{} is not in zone {}", data.host, self.zone.origin));
        }
        let addresses: Vec<Record> = data
            .addresses
            .iter()
            .map(|addr| Record::from_rdata(name.clone(), self.ttl, rdata(*addr)))
            .collect();
        let (a, aaaa): (Vec<Record>, Vec<Record>) = addresses
            .iter()
            .cloned()
            .partition(|r| matches!(r.data, RData::A(_)));
        let node = self.node(&name);
        node.a = a;
        node.aaaa = aaaa;
        for (port_name, number) in data.ports {
            let srv_name = fqdn(&format!("_{port_name}._tcp.{}", data.host))?;
            let srv = SRV::new(0, 0, *number, name.clone());
            let record = Record::from_rdata(srv_name.clone(), self.ttl, RData::SRV(srv));
            let node = self.node(&srv_name);
            node.srv = vec![record];
            node.srv_glue = addresses.clone();
        }
        Ok(())
    }

    /// The node at `name`, created with its empty non-terminals if new.
    fn node(&mut self, name: &Name) -> &mut Node {
        let mut parent = name.base_name();
        while parent.num_labels() > self.zone.origin.num_labels() {
            self.zone.nodes.entry(LowerName::new(&parent)).or_default();
            parent = parent.base_name();
        }
        self.zone.nodes.entry(LowerName::new(name)).or_default()
    }

    pub fn build(self) -> Zone {
        self.zone
    }
}

fn rdata(addr: IpAddr) -> RData {
    match addr {
        IpAddr::V4(v4) => RData::A(A(v4)),
        IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
    }
}

/// A fully qualified, lower-case name from presentation text.
fn fqdn(text: &str) -> Result<Name, String> {
    let mut name =
        Name::from_ascii(text).map_err(|e| format!("`{text}` is not a DNS name: {e}"))?;
    name.set_fqdn(true);
    Ok(name.to_lowercase())
}
