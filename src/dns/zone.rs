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
//!
//! A set is built whole (`builder.rs`) or patched from the one before it
//! (`patch.rs`): the name table is cut into shards shared between the two,
//! so a change of one host costs the same at any size (`names.rs`), and
//! so does the digest that decides the serial (`digest.rs`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use hickory_proto::rr::{LowerName, Name, RData, Record};

mod builder;
mod digest;
mod host;
pub mod master;
mod names;
mod patch;
mod soa;

pub use builder::{HostData, ZoneSetBuilder};
pub(crate) use soa::FastSoa;

use names::Names;

use super::explain_txt::ExplainSlot;
pub use names::NodeRef;
pub use patch::Parents;

/// Most zones a [`ZoneSet`] holds: a name's zone is one byte of its entry
/// in the name table (`names.rs`). The command line refuses more.
pub const MAX_ZONES: usize = 256;

/// The MCS DNS specification's schema version that a zone served in the
/// Multi-Cluster Services form follows: the text of its
/// `dns-version.<zone>` TXT record (MCS DNS spec §2.2).
pub const DNS_VERSION: &str = "1.0.0";

/// The class IN (RFC 1035 §3.2.4), as it is on the wire.
pub(crate) const CLASS_IN: u16 = 1;

/// SOA timers. Secondaries never transfer these zones, so refresh, retry
/// and expire matter little; `minimum` is the negative-caching TTL.
const SOA_REFRESH: i32 = 3600;
const SOA_RETRY: i32 = 600;
const SOA_EXPIRE: i32 = 86400;

/// All zones of a snapshot and every name in them. Built whole by a
/// [`ZoneSetBuilder`], or from the one before it by [`ZoneSet::patched`].
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
    /// `serve --explain-txt`'s explainer, shared by every snapshot.
    explain: Arc<ExplainSlot>,
}

impl ZoneSet {
    /// The explainer that answers `TXT _explain.<host>`, if it is on.
    pub fn explainer(&self) -> Option<&Arc<dyn super::explain_txt::Explainer>> {
        self.explain.get()
    }

    /// Shares `slot` as this snapshot's explainer (the controller gives
    /// every snapshot the same one).
    pub fn set_explain_slot(&mut self, slot: Arc<ExplainSlot>) {
        self.explain = slot;
    }

    /// The most specific zone `name` lies in, if any.
    pub fn find(&self, name: &LowerName) -> Option<&Zone> {
        self.zones.iter().find(|z| z.origin.zone_of(name))
    }

    /// The node at `key` (a lower-case wire name), if the name exists.
    pub fn node(&self, key: &[u8]) -> Option<NodeRef<'_>> {
        self.names.find(key)
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
        &self.zones[usize::from(node.zone)]
    }

    /// The zones' SOA serial.
    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// The SOA serial of what is served now, with digest `digest`
    /// ([`ZoneSet::digest`]), after `last` (the serial of what was served
    /// or printed before, and its digest where known) at `now` (seconds
    /// since the epoch). Design §4: the serial moves on every change, and only then:
    /// the same digest keeps the last serial (a restart on an unchanged
    /// registry, a zone file printed again); another takes the current time
    /// or, if the last serial is already there or ahead, one more than it,
    /// so it never goes back and two changes within a second still differ.
    /// Used by the server and by `zonefile` alike.
    pub fn next_serial(last: Option<(u32, Option<u64>)>, digest: u64, now: u64) -> u32 {
        match last {
            Some((serial, Some(last_digest))) if last_digest == digest => serial,
            Some((serial, _)) => serial.wrapping_add(1).max(now as u32),
            None => now as u32,
        }
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
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of the name table's key arenas: each stored name's key, and
    /// the first label of each SRV name (`names.rs`).
    pub fn key_bytes(&self) -> usize {
        self.names.shards.iter().map(|s| s.keys.len()).sum()
    }

    /// What the name table's arenas hold: stored names (a host's `_tcp`
    /// and SRV names are not, `names.rs`), bytes of keys and SRV labels,
    /// and SRV names held by their hosts. What a build is sized by.
    pub fn stored(&self) -> (usize, usize, usize) {
        let shards = &self.names.shards;
        let nodes = shards.iter().map(|s| s.nodes.len()).sum();
        let ports = shards.iter().map(|s| s.srv.len()).sum();
        (nodes, self.key_bytes(), ports)
    }

    /// Every name with what is there, one line each in key order: two sets
    /// with the same dump serve the same names with the same data. What
    /// tests compare a patched set and a full build by.
    pub fn dump(&self) -> String {
        let mut lines = Vec::with_capacity(self.len());
        for shard in &self.names.shards {
            shard.each_name(|key, node| {
                let srv = node.srv().map(|(port, target)| (port, target.stored_key()));
                lines.push(format!(
                    "{key:?} zone={} a={:?} aaaa={:?} srv={srv:?}",
                    self.zone_of(node).origin,
                    node.a(),
                    node.aaaa(),
                ));
            });
        }
        lines.sort();
        for zone in &self.zones {
            lines.push(format!(
                "zone {} ttl={} wildcards={} soa={} ns={:?} glue={:?}",
                zone.origin, zone.ttl, zone.has_wildcards, zone.soa, zone.ns, zone.ns_glue
            ));
        }
        lines.join("\n")
    }

    /// Every record of `zone` below its apex, in name order, for printing.
    pub fn records(&self, zone: &Zone) -> Vec<Record> {
        let mut nodes: Vec<(Name, NodeRef<'_>)> = Vec::new();
        for shard in &self.names.shards {
            shard.each_name(|key, node| {
                if std::ptr::eq(self.zone_of(node), zone)
                    && let Some(mut name) = names::name_from_wire(key)
                {
                    name.set_fqdn(true);
                    nodes.push((name, node));
                }
            });
        }
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
#[derive(Debug, Clone)]
pub struct Zone {
    pub origin: LowerName,
    /// The origin's lower-case wire form.
    pub(crate) key: Box<[u8]>,
    /// The name server's lower-case wire form.
    pub(crate) ns_key: Box<[u8]>,
    pub soa: Record,
    pub ns: Vec<Record>,
    /// The name server `ns.<origin>`, lower-case.
    pub ns_host: LowerName,
    /// Its A and AAAA records: the additional data of an NS answer
    /// (RFC 1035 §3.3.11), and what resolvers priming a stub zone ask for.
    pub ns_glue: Vec<Record>,
    /// TTL of every record in the zone.
    pub ttl: u32,
    /// The TXT record `dns-version.<origin>` of a zone served in the
    /// Multi-Cluster Services form (MCS DNS spec §2.2), with the schema
    /// version [`DNS_VERSION`]; `None` for other zones.
    pub dns_version: Option<Record>,
    /// The zone holds wildcard names (`*.suffix`, from hand-written
    /// ServiceEntries): a name not found may still match one.
    pub has_wildcards: bool,
    /// The SOA pre-encoded for the fast path; `None` if it cannot be.
    pub(crate) fast_soa: Option<FastSoa>,
}

/// Why a zone or a host could not be put in a [`ZoneSet`], built whole
/// ([`ZoneSetBuilder`]) or patched ([`ZoneSet::patched`]). Each carries
/// the offending name; its text is what reports and logs show.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ZoneError {
    /// `text` (a zone's origin, a host, or an SRV name made of a host and
    /// a port's name) is not a DNS name; `reason` is hickory's word on it.
    #[error("`{text}` is not a DNS name: {reason}")]
    NotAName { text: String, reason: String },
    /// More than [`MAX_ZONES`] zones.
    #[error("too many zones")]
    TooManyZones,
    /// The host lies in none of the set's zones.
    #[error("{host} is in none of the zones")]
    OutsideZones { host: String },
    /// The host is `ns.<zone>`, whose addresses are the server's own.
    #[error("{host} is the name server of zone {zone}")]
    NameServer { host: String, zone: String },
    /// A wire name of `len` bytes, over the 255 a name may have.
    #[error("a name longer than 255 bytes")]
    NameTooLong { len: usize },
    /// A shard of the name table would hold more than `u32::MAX` names
    /// (or bytes of keys).
    #[error("too many names in one snapshot")]
    TooManyNames,
    /// A shard would hold more than `u32::MAX` addresses or SRV names, or
    /// one name more than `u16::MAX`.
    #[error("too many addresses or ports in one snapshot")]
    TooManyAddresses,
    /// A patch would remove a host that shares one of its names with
    /// another (a hand-written host): only a full build decides.
    #[error("{host} shares a name with another host")]
    SharedName { host: String },
    /// A patch would remove a host that is not in the set.
    #[error("{host} is not in the set")]
    NotInSet { host: String },
    /// A patch would add a wildcard host: only a full build places one.
    #[error("{host} is a wildcard")]
    Wildcard { host: String },
    /// A patch would add a host whose name (`key`, lower-case wire form)
    /// is in the set already.
    #[error("{key:?} is in the set already")]
    AlreadyInSet { key: Box<[u8]> },
}

/// A fully qualified, lower-case name from presentation text.
fn fqdn(text: &str) -> Result<Name, ZoneError> {
    let mut name = Name::from_ascii(text).map_err(|e| ZoneError::NotAName {
        text: text.to_string(),
        reason: e.to_string(),
    })?;
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
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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
        assert!(set.node(&key("_grpc._tcp.httpbin.bar.global")).is_none());
        assert!(
            set.node(&key("_tcp.db.foo.east.region")).is_none(),
            "no ports"
        );
    }

    /// Zone `global` with the host `db.bar.global` (240.0.0.1) and `ports`.
    fn db_bar_global(ports: &[(&str, u16)]) -> ZoneSetBuilder {
        let mut builder = ZoneSetBuilder::new(1, 30, 8);
        builder.zone("global").unwrap();
        builder
            .add_host(&HostData {
                host: "db.bar.global",
                addresses: &["240.0.0.1".parse().unwrap()],
                ports,
            })
            .unwrap();
        builder
    }

    /// A hand-written host named like a registry host's SRV name (drop-in
    /// mode) is one name with the data of both, found once by a lookup and
    /// counted and listed once, as when the SRV name was a node of its own.
    #[test]
    fn a_stored_name_that_is_also_an_srv_name_is_one_name() {
        let mut builder = db_bar_global(&[("http", 80), ("grpc", 90)]);
        builder
            .add_shared_host(&HostData {
                host: "_http._tcp.db.bar.global",
                addresses: &["192.0.2.7".parse().unwrap()],
                ports: &[],
            })
            .unwrap();
        let set = builder.build();
        let both = set.node(&key("_http._tcp.db.bar.global")).unwrap();
        assert_eq!(both.a(), ["192.0.2.7".parse::<Ipv4Addr>().unwrap()]);
        assert_eq!(both.srv().unwrap().0, 80);
        // Apex, ns, bar, the host, _tcp (stored as the shared host's
        // parent), _http and _grpc: each once.
        assert_eq!(set.len(), 7);
        let dump = set.dump();
        let srv_lines: Vec<&str> = dump.lines().filter(|l| l.contains("srv=Some")).collect();
        assert_eq!(srv_lines.len(), 2, "{dump}");
        assert!(
            srv_lines.iter().any(|l| l.contains("a=[192.0.2.7]")),
            "{dump}"
        );
        assert_eq!(
            dump.lines().count(),
            7 + 1,
            "seven names and the zone: {dump}"
        );
    }

    /// A port named `tcp` has the SRV name `_tcp._tcp.<host>`, found
    /// through the host like any other (`names.rs`), beside `_tcp.<host>`.
    #[test]
    fn a_port_named_tcp_is_an_srv_name() {
        let set = db_bar_global(&[("tcp", 5432)]).build();
        let srv = set.node(&key("_tcp._tcp.db.bar.global")).unwrap();
        assert_eq!(srv.srv().unwrap().0, 5432);
        let ent = set.node(&key("_tcp.db.bar.global")).unwrap();
        assert!(ent.srv().is_none() && ent.a().is_empty());
        assert!(set.node(&key("_tcp._tcp._tcp.db.bar.global")).is_none());
    }
}
