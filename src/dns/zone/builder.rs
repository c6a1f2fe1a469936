//! Building a [`ZoneSet`] whole: zones first, then hosts. The controller
//! builds one at start and whenever it cannot patch (see `patch.rs`).

use std::net::IpAddr;
use std::sync::atomic::AtomicBool;

use hickory_proto::rr::rdata::{NS, SOA, TXT};
use hickory_proto::rr::{LowerName, RData, Record};

use super::host::HostNames;
use super::names::{Names, Shard, ZoneIndex, place, shard_count};
use super::patch::Parents;
use super::{
    DNS_VERSION, FastSoa, SOA_EXPIRE, SOA_REFRESH, SOA_RETRY, Zone, ZoneError, ZoneSet, fqdn, wire,
};
use crate::naming::CLUSTERSET_LABEL;

/// A host to put in a zone: its addresses and its named TCP ports.
#[derive(Debug, Clone, Copy)]
pub struct HostData<'a> {
    pub host: &'a str,
    pub addresses: &'a [IpAddr],
    pub ports: &'a [(&'a str, u16)],
}

/// Builds a [`ZoneSet`]: zones first, then hosts.
pub struct ZoneSetBuilder {
    pub(super) zones: Vec<Zone>,
    shards: Vec<Shard>,
    parents: Parents,
    serial: u32,
    ttl: u32,
    ns_addresses: Vec<IpAddr>,
}

impl ZoneSetBuilder {
    /// An empty set whose zones get `serial` and whose records get `ttl`.
    /// `names` is how many names it will hold (apexes, hosts and empty
    /// non-terminals; a host's SRV names are held by its node): the table
    /// is cut into shards and sized once, for that many. The table is a
    /// good part of a snapshot's memory, and a count short by a few names
    /// doubles a shard while it grows.
    pub fn new(serial: u32, ttl: u32, names: usize) -> Self {
        // Wire names of mesh hosts run to about 30 bytes; one port each.
        Self::with_sizes(serial, ttl, names, names.saturating_mul(32), names)
    }

    /// [`Self::new`], the shards' arenas sized for `key_bytes` bytes of
    /// keys and SRV labels (`_<port>`) in all, and `ports` SRV names. Room
    /// reserved and never used is freed only when the set is sealed, in the
    /// middle of the heap, where it stays resident.
    pub fn with_sizes(serial: u32, ttl: u32, names: usize, key_bytes: usize, ports: usize) -> Self {
        let count = shard_count(names);
        // A shard gets its share and a margin for the luck of the hash.
        let share = |n: usize, least: usize| n / count + n / count / 8 + least;
        let (each, bytes, srv) = (
            share(names, 16),
            share(key_bytes, 16 * 32),
            share(ports, 16),
        );
        Self {
            zones: Vec::new(),
            shards: (0..count)
                .map(|_| Shard::with_capacity(each, bytes, srv))
                .collect(),
            parents: Parents::default(),
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

    /// The node at `key`, created if new: its shard and index.
    fn find_or_insert(&mut self, key: &[u8], zone: ZoneIndex) -> Result<(usize, u32), ZoneError> {
        let (shard, hash) = place(key, self.shards.len());
        let index = self.shards[shard].find_or_insert(key, hash, zone)?;
        Ok((shard, index))
    }

    /// Adds a zone (e.g. `global`). Its name server is `ns.<origin>`, with
    /// the [`Self::name_server_addresses`] as its A and AAAA records, so
    /// that resolvers which prime a stub zone (unbound `stub-prime`, BIND
    /// `type stub`) find it. Zones may not nest (the command line refuses
    /// it), so every name has one zone. Fails when `origin` is not a DNS
    /// name ([`ZoneError::NotAName`]) or there are more than
    /// [`super::MAX_ZONES`] zones ([`ZoneError::TooManyZones`]).
    pub fn zone(&mut self, origin: &str) -> Result<&mut Self, ZoneError> {
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
        let index = ZoneIndex::try_from(self.zones.len()).map_err(|_| ZoneError::TooManyZones)?;
        let mut zone = Zone {
            origin: LowerName::new(&origin),
            key: wire(&origin),
            ns_key: wire(&ns_name),
            soa: Record::from_rdata(origin.clone(), self.ttl, RData::SOA(soa)),
            ns: vec![Record::from_rdata(
                origin.clone(),
                self.ttl,
                RData::NS(NS(ns_name.clone())),
            )],
            ns_host: LowerName::new(&ns_name),
            ns_glue: Vec::new(),
            ttl: self.ttl,
            dns_version: None,
            has_wildcards: false,
            fast_soa: None,
        };
        zone.fast_soa = FastSoa::encode(&zone);
        // The apex and the name server are there for good: a patch never
        // takes them away, whatever is below them.
        self.parents.claim(&zone.key);
        self.parents.claim(&zone.ns_key);
        self.find_or_insert(&zone.key.clone(), index)?;
        let (shard, ns) = self.find_or_insert(&zone.ns_key.clone(), index)?;
        let shard = &mut self.shards[shard];
        shard.set_addresses(ns, &self.ns_addresses)?;
        let ns = shard.node(ns);
        zone.ns_glue = ns.a_records(&ns_name, self.ttl);
        zone.ns_glue.extend(ns.aaaa_records(&ns_name, self.ttl));
        self.zones.push(zone);
        Ok(self)
    }

    /// Adds a zone served in the Multi-Cluster Services form (MCS DNS
    /// specification, schema 1.0.0), e.g. `clusterset.local`: the apex as
    /// [`Self::zone`] makes it (SOA, NS), the TXT record
    /// `dns-version.<origin>` = [`DNS_VERSION`] (§2.2), and the empty
    /// non-terminal `svc.<origin>` above the hosts
    /// `<service>.<namespace>.svc.<origin>` (§2.3.1), there even with no
    /// host below it, as the apex is. Names under the apex other than
    /// these and the hosts are NXDOMAIN. No PTR records (§2.3.3): not
    /// served. Fails as [`Self::zone`] does.
    pub fn clusterset_zone(&mut self, origin: &str) -> Result<&mut Self, ZoneError> {
        self.zone(origin)?;
        let index =
            ZoneIndex::try_from(self.zones.len() - 1).map_err(|_| ZoneError::TooManyZones)?;
        let svc = wire(&fqdn(&format!("{CLUSTERSET_LABEL}.{origin}"))?);
        let version = fqdn(&format!("dns-version.{origin}"))?;
        let txt = TXT::new(vec![DNS_VERSION.to_string()]);
        // Both are there for good, as the apex: a patch never takes them.
        for key in [svc, wire(&version)] {
            self.parents.claim(&key);
            self.find_or_insert(&key, index)?;
        }
        let zone = self.zones.last_mut().expect("the zone just added");
        zone.dns_version = Some(Record::from_rdata(version, self.ttl, RData::TXT(txt)));
        Ok(self)
    }

    /// Adds a host in one of the zones, its SRV names, and the empty
    /// non-terminals between them and the zone's apex. Fails, leaving the
    /// set as it was, when the host or an SRV name is not a DNS name, the
    /// host is in no zone or is a zone's name server (see [`ZoneError`]).
    pub fn add_host(&mut self, data: &HostData<'_>) -> Result<(), ZoneError> {
        let names = HostNames::of(data, &self.zones)?;
        self.place(&names, data)
    }

    /// [`Self::add_host`] for a host that others may share a name with
    /// (drop-in mode's hand-written hosts): a patch of the set leaves its
    /// name alone even when nothing is left below it. Fails as
    /// [`Self::add_host`] does.
    pub fn add_shared_host(&mut self, data: &HostData<'_>) -> Result<(), ZoneError> {
        let names = HostNames::of(data, &self.zones)?;
        self.place(&names, data)?;
        self.parents.claim(&names.host);
        Ok(())
    }

    fn place(&mut self, names: &HostNames, data: &HostData<'_>) -> Result<(), ZoneError> {
        if names.wildcard {
            self.zones[usize::from(names.zone)].has_wildcards = true;
        }
        for parent in &names.parents {
            self.parents.claim(parent);
            self.find_or_insert(parent, names.zone)?;
        }
        let (shard, host) = self.find_or_insert(&names.host, names.zone)?;
        let shard = &mut self.shards[shard];
        shard.set_addresses(host, data.addresses)?;
        if !names.srv.is_empty() {
            shard.set_ports(host, names.ports())?;
        }
        Ok(())
    }

    /// The finished set: zones ordered longest origin first, the name
    /// table shrunk to its contents.
    pub fn build(self) -> ZoneSet {
        self.build_with_parents().0
    }

    /// [`Self::build`], and what a later [`ZoneSet::patched`] of it needs.
    pub fn build_with_parents(self) -> (ZoneSet, Parents) {
        let mut zones = self.zones;
        // Longest origin first; node zone indexes follow the new order.
        let mut order: Vec<usize> = (0..zones.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(zones[i].origin.num_labels()));
        let mut new_index = vec![0 as ZoneIndex; zones.len()];
        for (new, &old) in order.iter().enumerate() {
            new_index[old] = new as ZoneIndex;
        }
        let shards = self
            .shards
            .into_iter()
            .map(|mut shard| {
                for node in &mut shard.nodes {
                    node.zone = new_index[usize::from(node.zone)];
                }
                shard.seal()
            })
            .collect();
        let mut slots: Vec<Option<Zone>> = zones.drain(..).map(Some).collect();
        let zones = order.iter().filter_map(|&i| slots[i].take()).collect();
        let set = ZoneSet {
            zones,
            names: Names { shards },
            serial: self.serial,
            stale: AtomicBool::new(false),
            explain: Default::default(),
        };
        (set, self.parents)
    }
}
