//! The lookup: one question against a [`ZoneSet`], decided in a pure
//! function. Each branch says which row of the design §4 table it serves.
//! This is the general path; [`super::fast`] answers the commonest
//! questions the same way without building records.

use hickory_proto::rr::{LowerName, Name, Record, RecordType};

use super::zone::{NodeRef, Zone, ZoneSet, wire};

/// The decision for one question.
#[derive(Debug)]
pub enum Outcome<'z> {
    /// The name is in no served zone: we are not the server to ask, and an
    /// authoritative-only server must not recurse (RFC 1035 §4.1.1, REFUSED).
    Refused,
    /// NOERROR with data (and optional additional records).
    Answer {
        zone: &'z Zone,
        answers: Vec<Record>,
        additionals: Vec<Record>,
    },
    /// The name exists but has no data of the type: NOERROR with the SOA in
    /// authority (RFC 2308 §2.2). Never NXDOMAIN, which would tell the
    /// client the name itself does not exist.
    NoData { zone: &'z Zone },
    /// The name does not exist: NXDOMAIN with the SOA (RFC 2308 §2.1).
    NxDomain { zone: &'z Zone },
}

/// Decides the answer to `name`/`qtype`. `name` is already lower-case.
pub fn lookup<'z>(zones: &'z ZoneSet, name: &LowerName, qtype: RecordType) -> Outcome<'z> {
    let Some(zone) = zones.find(name) else {
        return Outcome::Refused;
    };
    if *name == zone.origin {
        return apex(zone, qtype);
    }
    let owner = Name::from(name.clone());
    if let Some(txt) = zone.dns_version.as_ref().filter(|t| t.name == owner) {
        return dns_version(zone, txt, owner, qtype);
    }
    let Some(node) = zones
        .node(&wire(&owner))
        .or_else(|| zones.wildcard_for(zone, &owner))
    else {
        return Outcome::NxDomain { zone };
    };
    let ttl = zone.ttl;
    let (answers, additionals) = match qtype {
        RecordType::A => (node.a_records(&owner, ttl), Vec::new()),
        RecordType::AAAA => (node.aaaa_records(&owner, ttl), Vec::new()),
        RecordType::SRV => (
            node.srv_record(&owner, ttl).into_iter().collect(),
            srv_glue(node, ttl),
        ),
        // RFC 8482 §4.2: answer ANY with one RRset of the name, not all;
        // an SRV one with its additional data, as for an SRV question.
        RecordType::ANY => {
            let sets = [node.a_records(&owner, ttl), node.aaaa_records(&owner, ttl)];
            match sets.into_iter().find(|s| !s.is_empty()) {
                Some(set) => (set, Vec::new()),
                None => (
                    node.srv_record(&owner, ttl).into_iter().collect(),
                    srv_glue(node, ttl),
                ),
            }
        }
        _ => (Vec::new(), Vec::new()),
    };
    if answers.is_empty() {
        // Also covers empty non-terminals (RFC 8020 §2: they exist).
        Outcome::NoData { zone }
    } else {
        Outcome::Answer {
            zone,
            answers,
            additionals,
        }
    }
}

/// RFC 2782: the SRV target's addresses, when we hold them, save the
/// client a lookup. A records first: they are the last dropped when the
/// additional data does not all fit.
fn srv_glue(node: NodeRef<'_>, ttl: u32) -> Vec<Record> {
    let glue = node.srv().and_then(|(_, target)| {
        let name = target.name()?;
        let mut glue = target.a_records(&name, ttl);
        glue.extend(target.aaaa_records(&name, ttl));
        Some(glue)
    });
    glue.unwrap_or_default()
}

fn apex(zone: &Zone, qtype: RecordType) -> Outcome<'_> {
    let (answers, additionals) = match qtype {
        RecordType::SOA | RecordType::ANY => (vec![zone.soa.clone()], Vec::new()),
        // RFC 1035 §3.3.11: the name server's addresses as additional data.
        RecordType::NS => (zone.ns.clone(), zone.ns_glue.clone()),
        _ => return Outcome::NoData { zone },
    };
    Outcome::Answer {
        zone,
        answers,
        additionals,
    }
}

/// `dns-version.<zone>` of a Multi-Cluster Services zone (MCS DNS spec
/// §2.2): its TXT record for TXT (and ANY, RFC 8482 §4.2: the one RRset it
/// has); NODATA for any other type, as at every name that exists.
fn dns_version<'z>(zone: &'z Zone, txt: &Record, owner: Name, qtype: RecordType) -> Outcome<'z> {
    if !matches!(qtype, RecordType::TXT | RecordType::ANY) {
        return Outcome::NoData { zone };
    }
    let mut answer = txt.clone();
    answer.name = owner;
    Outcome::Answer {
        zone,
        answers: vec![answer],
        additionals: Vec::new(),
    }
}
