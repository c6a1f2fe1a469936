//! The fast path: the common queries answered from bytes encoded when the
//! snapshot was built, with no decoding, no allocation and no lock. The UDP
//! workers and the TCP connections both try it first.
//!
//! It takes the shape nearly every query from a cluster DNS forwarder has:
//! a plain QUERY with one question of type A or AAAA in class IN, the name
//! uncompressed with the zone suffix in lower case (the host labels may be
//! in any case), and at most an OPT record of version 0 with no options.
//! For such a query the answer is one of three things:
//!
//! - the name's A or AAAA records, written with the owner as a pointer to
//!   the question (offset 12), so the question's spelling is echoed for free;
//! - NODATA: the zone's SOA, whose three names point at the zone suffix
//!   inside the question;
//! - NXDOMAIN: the same SOA, when the name is in a zone but not in the index.
//!
//! An answer too large for the UDP limit is cut here as the general path
//! cuts it: header, question and OPT, with TC (RFC 2181 §9). While the
//! snapshot is the last-known-good one, the OPT carries an RFC 8914
//! "Stale Answer" as the general path's does.
//!
//! Everything else (other types, EDNS options, odd classes, names outside
//! the zones, anything malformed) returns `None` and goes to
//! [`super::respond`], the general path. The two
//! paths produce the same bytes for every query the fast path takes; the
//! tests below hold them to that.
//!
//! This mirrors [`super::lookup::lookup`] for A and AAAA: a change to what
//! the lookup answers must be made here too, and the equality tests fail
//! until it is.

use super::header;
use super::respond::{EDE_STALE, MAX_UDP_PAYLOAD, PLAIN_UDP_PAYLOAD, Transport};
use super::zone::{CLASS_IN, ZoneSet};

const HEADER: usize = 12;
const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;
const TYPE_OPT: u16 = 41;
/// A name is at most 255 bytes on the wire (RFC 1035 §2.3.4).
const MAX_NAME: usize = 255;
/// Response code values in the header's low nibble.
const NOERROR: u8 = 0;
const NXDOMAIN: u8 = 3;

/// Writes the response to `query`, received over `transport`, into `out`
/// and returns its length, or `None` when the query must take the general
/// path (or the answer is larger than `out`).
pub fn respond(
    zones: &ZoneSet,
    query: &[u8],
    transport: Transport,
    out: &mut [u8],
) -> Option<usize> {
    let q = Query::parse(query)?;
    if zones.explainer().is_some() && super::explain_txt::asks(q.name) {
        return None; // `_explain.<host>`: the general path answers it
    }
    let mut lower = [0u8; MAX_NAME];
    let lower = &mut lower[..q.name.len()];
    for (to, from) in lower.iter_mut().zip(q.name) {
        *to = from.to_ascii_lowercase();
    }
    // Length bytes (all < 64) are unchanged by lower-casing.
    let (zone, rcode, node) = match zones.node(lower) {
        Some(node) => (zones.zone_of(node), NOERROR, Some(node)),
        None => {
            let zone = zones
                .zones()
                .iter()
                .find(|z| z.fast_soa.as_ref().is_some_and(|soa| q.in_zone(&soa.wire)))?;
            if zone.has_wildcards {
                return None; // a wildcard may cover it: the general path decides
            }
            (zone, NXDOMAIN, None)
        }
    };
    let soa = zone.fast_soa.as_ref()?;
    // The SOA's names point at the zone suffix; it must be spelled in lower
    // case, as the general path's compression only matches it then.
    let suffix = q.name.len() - soa.wire.len();
    if q.name[suffix..] != *soa.wire {
        return None;
    }
    let (count, rr_len) = match node {
        Some(node) if q.qtype == TYPE_A => (node.a().len(), node.a().len() * A_RR),
        Some(node) => (node.aaaa().len(), node.aaaa().len() * AAAA_RR),
        None => (0, 0),
    };

    let question_end = HEADER + q.name.len() + 4;
    let soa_len = if count == 0 { soa.record.len() } else { 0 };
    // RFC 8914: answers from the last-known-good snapshot say so.
    let stale = q.edns.is_some() && zones.is_stale();
    let opt_len = match (q.edns, stale) {
        (None, _) => 0,
        (Some(_), false) => OPT_LEN,
        (Some(_), true) => OPT_LEN + EDE_STALE.len(),
    };
    let limit = match transport {
        Transport::Udp => q.udp_limit(),
        Transport::Tcp => usize::from(u16::MAX),
    };
    // RFC 2181 §9: an answer that does not fit is cut to header, question
    // and OPT, with TC. (This path has no additional data to drop first.)
    let truncated = question_end + rr_len + soa_len + opt_len > limit;
    let (count, rr_len, soa_len) = if truncated {
        (0, 0, 0)
    } else {
        (count, rr_len, soa_len)
    };
    if question_end + rr_len + soa_len + opt_len > out.len() {
        return None;
    }
    let count = u16::try_from(count).ok()?;

    out[..2].copy_from_slice(&query[..2]);
    // QR and AA, TC when cut; the request's bits that the one rule of
    // `header` copies for QUERY (RD and CD).
    let [copy2, copy3] = header::copied_bits(header::QUERY);
    let tc = if truncated { header::TC } else { 0 };
    out[2] = header::QR | header::AA | tc | (query[2] & copy2);
    out[3] = (query[3] & copy3) | rcode;
    out[4..6].copy_from_slice(&1u16.to_be_bytes());
    out[6..8].copy_from_slice(&count.to_be_bytes());
    out[8..10].copy_from_slice(&u16::from(soa_len > 0).to_be_bytes());
    out[10..12].copy_from_slice(&u16::from(opt_len > 0).to_be_bytes());
    out[HEADER..question_end].copy_from_slice(&query[HEADER..question_end]);
    let mut at = question_end;
    let ttl = zone.ttl.to_be_bytes();
    if let Some(node) = node.filter(|_| count > 0) {
        if q.qtype == TYPE_A {
            for addr in node.a() {
                at += write_rr(&mut out[at..], TYPE_A, ttl, &addr.octets());
            }
        } else {
            for addr in node.aaaa() {
                at += write_rr(&mut out[at..], TYPE_AAAA, ttl, &addr.octets());
            }
        }
    }
    if soa_len > 0 {
        let record = &mut out[at..at + soa_len];
        record.copy_from_slice(&soa.record);
        let pointer = (0xC000 | (HEADER + suffix) as u16).to_be_bytes();
        for p in soa.pointers {
            record[p..p + 2].copy_from_slice(&pointer);
        }
        at += soa_len;
    }
    if let Some(dnssec_ok) = q.edns {
        let opt = &mut out[at..at + opt_len];
        opt[..OPT_LEN].copy_from_slice(&OPT);
        if dnssec_ok {
            opt[7] = 0x80;
        }
        if stale {
            opt[9..OPT_LEN].copy_from_slice(&(EDE_STALE.len() as u16).to_be_bytes());
            opt[OPT_LEN..].copy_from_slice(&EDE_STALE);
        }
        at += opt_len;
    }
    Some(at)
}

/// Encoded sizes of one A and one AAAA record with a compressed owner.
const A_RR: usize = 2 + 10 + 4;
const AAAA_RR: usize = 2 + 10 + 16;

/// Writes an address record owned by the question name (a pointer to
/// offset 12) and returns its length.
fn write_rr(out: &mut [u8], rtype: u16, ttl: [u8; 4], data: &[u8]) -> usize {
    let [t0, t1] = rtype.to_be_bytes();
    let [c0, c1] = CLASS_IN.to_be_bytes();
    let [l0, l1] = (data.len() as u16).to_be_bytes();
    let head = [
        0xC0,
        HEADER as u8,
        t0,
        t1,
        c0,
        c1,
        ttl[0],
        ttl[1],
        ttl[2],
        ttl[3],
        l0,
        l1,
    ];
    out[..head.len()].copy_from_slice(&head);
    out[head.len()..head.len() + data.len()].copy_from_slice(data);
    head.len() + data.len()
}

/// Our OPT record: root owner, type 41, payload 1232, extended RCODE 0,
/// version 0, no flags, no options (RFC 6891 §6.1.2). Byte 7 holds DO.
const OPT_LEN: usize = 11;
const OPT: [u8; OPT_LEN] = {
    let payload = MAX_UDP_PAYLOAD.to_be_bytes();
    [0, 0, 41, payload[0], payload[1], 0, 0, 0, 0, 0, 0]
};

/// The parts of a query the fast path reads, borrowed from the packet.
struct Query<'p> {
    /// The question name as sent, wire form, root label included.
    name: &'p [u8],
    /// Bit `i` set when a label starts at byte `i` of `name`.
    label_starts: [u64; 4],
    qtype: u16,
    /// `Some(DO)` when the query has an OPT record.
    edns: Option<bool>,
    /// The requestor's UDP payload size, when it sent OPT.
    payload: u16,
}

impl<'p> Query<'p> {
    /// Reads a query of the one shape the fast path serves; `None` for
    /// anything else.
    fn parse(packet: &'p [u8]) -> Option<Self> {
        let header = packet.get(..HEADER)?;
        // QR = 0 and OPCODE = QUERY. Other header flags are ignored by both
        // paths: AA, TC, RA, Z and AD are not copied into a response.
        if header[2] & 0xF8 != 0 {
            return None;
        }
        let counts = [
            u16::from_be_bytes([header[4], header[5]]),
            u16::from_be_bytes([header[6], header[7]]),
            u16::from_be_bytes([header[8], header[9]]),
            u16::from_be_bytes([header[10], header[11]]),
        ];
        if counts[..3] != [1, 0, 0] || counts[3] > 1 {
            return None;
        }

        let mut label_starts = [0u64; 4];
        let mut at = HEADER;
        loop {
            let len = usize::from(*packet.get(at)?);
            if len & 0xC0 != 0 {
                return None; // compression pointer or extended label type
            }
            let offset = at - HEADER;
            label_starts[offset / 64] |= 1 << (offset % 64);
            at += 1 + len;
            if at - HEADER > MAX_NAME {
                return None;
            }
            if len == 0 {
                break;
            }
        }
        let name = &packet[HEADER..at];
        let fixed = packet.get(at..at + 4)?;
        let qtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        if !matches!(qtype, TYPE_A | TYPE_AAAA)
            || u16::from_be_bytes([fixed[2], fixed[3]]) != CLASS_IN
        {
            return None;
        }
        at += 4;

        let (edns, payload) = if counts[3] == 1 {
            // OPT: root owner, type 41, class = payload, TTL = extended
            // RCODE, version, flags; and no options.
            let opt = packet.get(at..at + OPT_LEN)?;
            let rtype = u16::from_be_bytes([opt[1], opt[2]]);
            if opt[0] != 0 || rtype != TYPE_OPT || opt[5] != 0 || opt[6] != 0 || opt[9..] != [0, 0]
            {
                return None;
            }
            at += OPT_LEN;
            (
                Some(opt[7] & 0x80 != 0),
                u16::from_be_bytes([opt[3], opt[4]]),
            )
        } else {
            (None, 0)
        };
        if at != packet.len() {
            return None; // trailing bytes: let the general path judge them
        }
        Some(Query {
            name,
            label_starts,
            qtype,
            edns,
            payload,
        })
    }

    /// True when the name ends in `zone` (wire form) at a label boundary.
    fn in_zone(&self, zone: &[u8]) -> bool {
        let Some(start) = self.name.len().checked_sub(zone.len()) else {
            return false;
        };
        self.label_starts[start / 64] & (1 << (start % 64)) != 0
            && self.name[start..].eq_ignore_ascii_case(zone)
    }

    /// The largest response this query may get over UDP (RFC 6891 §6.2.5).
    fn udp_limit(&self) -> usize {
        match self.edns {
            Some(_) => usize::from(self.payload.clamp(PLAIN_UDP_PAYLOAD, MAX_UDP_PAYLOAD)),
            None => usize::from(PLAIN_UDP_PAYLOAD),
        }
    }
}

#[cfg(test)]
mod tests;
