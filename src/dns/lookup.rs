//! The lookup: one question against a [`ZoneSet`], decided in a pure
//! function. Each branch says which row of the DESIGN §4 table it serves.

use hickory_proto::rr::{LowerName, Record, RecordType};

use super::zone::{Zone, ZoneSet};

/// The decision for one question.
#[derive(Debug)]
pub enum Outcome<'z> {
    /// The name is in no served zone: we are not the server to ask, and an
    /// authoritative-only server must not recurse (RFC 1035 §4.1.1, REFUSED).
    Refused,
    /// NOERROR with data (and optional additional records).
    Answer {
        zone: &'z Zone,
        answers: &'z [Record],
        additionals: &'z [Record],
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
    let Some(node) = zone.nodes.get(name) else {
        return Outcome::NxDomain { zone };
    };
    let (answers, additionals): (&[Record], &[Record]) = match qtype {
        RecordType::A => (&node.a, &[]),
        RecordType::AAAA => (&node.aaaa, &[]),
        RecordType::SRV => (&node.srv, &node.srv_glue),
        // RFC 8482 §4.2: answer ANY with one RRset of the name, not all.
        RecordType::ANY => first_nonempty([&node.a, &node.aaaa, &node.srv]),
        _ => (&[], &[]),
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

fn apex(zone: &Zone, qtype: RecordType) -> Outcome<'_> {
    let answers: &[Record] = match qtype {
        RecordType::SOA | RecordType::ANY => std::slice::from_ref(&zone.soa),
        RecordType::NS => &zone.ns,
        _ => return Outcome::NoData { zone },
    };
    Outcome::Answer {
        zone,
        answers,
        additionals: &[],
    }
}

fn first_nonempty(sets: [&Vec<Record>; 3]) -> (&[Record], &[Record]) {
    let answers = sets
        .into_iter()
        .find(|s| !s.is_empty())
        .map_or(&[][..], |s| s.as_slice());
    (answers, &[])
}
