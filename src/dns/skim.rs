//! A tolerant walk over a message's wire form, for what a full decode
//! loses or refuses: the question and the OPT record of a message too
//! malformed to decode (so that its FORMERR can carry both, RFC 6891 §7),
//! and where TSIG records sit in the additional section (RFC 8945 §5.1:
//! one TSIG, and the last record; hickory's decoder takes the OPT record
//! out of the section, which hides the order).
//!
//! The walk reads each record's owner, type, class, TTL and RDLENGTH and
//! skips its RDATA without interpreting it; it stops at the first thing it
//! cannot read and reports what it had read by then.

use hickory_proto::op::{Header, Query};
use hickory_proto::rr::Name;
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

const TYPE_OPT: u16 = 41;
const TYPE_TSIG: u16 = 250;
/// The DO bit in the OPT record's TTL field (RFC 3225 §3).
const DO: u32 = 0x8000;

/// What a walk over a message found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Skimmed {
    /// The question, when the message has exactly one and it could be read.
    pub question: Option<Query>,
    /// The first OPT record of the additional section, when the walk got
    /// that far: its DO bit.
    pub opt_dnssec_ok: Option<bool>,
    /// TSIG records seen in the additional section.
    pub tsig_count: usize,
    /// The last record of the additional section, read whole, is a TSIG.
    pub tsig_last: bool,
}

impl Skimmed {
    /// A TSIG that is not the one, last record (RFC 8945 §5.2: FORMERR).
    pub fn tsig_misplaced(&self) -> bool {
        self.tsig_count > 1 || (self.tsig_count == 1 && !self.tsig_last)
    }
}

/// Walks `packet`; `None` when not even the header can be read.
pub fn skim(packet: &[u8]) -> Option<Skimmed> {
    let mut decoder = BinDecoder::new(packet);
    let header = Header::read(&mut decoder).ok()?;
    let counts = header.counts;
    let mut out = Skimmed::default();
    for i in 0..counts.queries {
        let Ok(query) = Query::read(&mut decoder) else {
            return Some(out);
        };
        if counts.queries == 1 && i == 0 {
            out.question = Some(query);
        }
    }
    let records = u32::from(counts.answers) + u32::from(counts.authorities);
    for _ in 0..records {
        if skip_record(&mut decoder).is_none() {
            return Some(out);
        }
    }
    for i in 0..counts.additionals {
        let Some((rtype, ttl)) = skip_record(&mut decoder) else {
            return Some(out);
        };
        if rtype == TYPE_OPT && out.opt_dnssec_ok.is_none() {
            out.opt_dnssec_ok = Some(ttl & DO != 0);
        }
        if rtype == TYPE_TSIG {
            out.tsig_count += 1;
        }
        out.tsig_last = rtype == TYPE_TSIG && i + 1 == counts.additionals;
    }
    Some(out)
}

/// Reads one record's fixed part and skips its data; returns its type and
/// TTL field, or `None` if it runs past the end.
fn skip_record(decoder: &mut BinDecoder<'_>) -> Option<(u16, u32)> {
    Name::read(decoder).ok()?;
    let rtype = decoder.read_u16().ok()?.unverified();
    let _class = decoder.read_u16().ok()?;
    let ttl = decoder.read_u32().ok()?.unverified();
    let len = decoder.read_u16().ok()?.unverified();
    decoder.read_slice(usize::from(len)).ok()?;
    Some((rtype, ttl))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(qd: u16, an: u16, ar: u16) -> Vec<u8> {
        let mut p = vec![0xbe, 0xef, 0x01, 0x00];
        for count in [qd, an, 0, ar] {
            p.extend_from_slice(&count.to_be_bytes());
        }
        p
    }

    const QUESTION: &[u8] = b"\x07httpbin\x03bar\x06global\x00\x00\x01\x00\x01";

    fn record(rtype: u16, ttl: u32, rdata: &[u8]) -> Vec<u8> {
        let mut r = vec![0];
        r.extend_from_slice(&rtype.to_be_bytes());
        r.extend_from_slice(&1232u16.to_be_bytes());
        r.extend_from_slice(&ttl.to_be_bytes());
        r.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        r.extend_from_slice(rdata);
        r
    }

    /// RFC 6891 §7: a malformed OPT (an option running past its RDATA)
    /// is still seen as an OPT, with its DO bit, behind a readable question.
    #[test]
    fn a_malformed_opt_is_found_behind_the_question() {
        let mut p = header(1, 0, 1);
        p.extend_from_slice(QUESTION);
        p.extend_from_slice(&record(TYPE_OPT, DO, &[0, 10, 0, 99, 1]));
        let s = skim(&p).unwrap();
        assert_eq!(
            s.question.as_ref().unwrap().name().to_ascii(),
            "httpbin.bar.global."
        );
        assert_eq!(s.opt_dnssec_ok, Some(true));
        assert!(!s.tsig_misplaced());
    }

    /// RFC 8945 §5.1: the TSIG must be the only one and the last record.
    #[test]
    fn tsig_placement_is_told() {
        let tsig = record(TYPE_TSIG, 0, &[1, 2, 3]);
        let opt = record(TYPE_OPT, 0, &[]);
        for (records, misplaced) in [
            (vec![opt.clone(), tsig.clone()], false),
            (vec![tsig.clone(), opt.clone()], true),
            (vec![tsig.clone(), tsig.clone()], true),
            (vec![opt.clone()], false),
        ] {
            let mut p = header(1, 0, records.len() as u16);
            p.extend_from_slice(QUESTION);
            records.iter().for_each(|r| p.extend_from_slice(r));
            assert_eq!(skim(&p).unwrap().tsig_misplaced(), misplaced, "{records:?}");
        }
    }

    /// The walk stops at what it cannot read and keeps what it had.
    #[test]
    fn unreadable_parts_stop_the_walk() {
        assert_eq!(skim(&[0, 1, 2]), None, "no header");
        let mut cut = header(1, 0, 1);
        cut.extend_from_slice(&QUESTION[..10]);
        assert_eq!(skim(&cut).unwrap(), Skimmed::default());
        let mut two = header(2, 0, 0);
        two.extend_from_slice(QUESTION);
        two.extend_from_slice(QUESTION);
        assert_eq!(skim(&two).unwrap().question, None, "only a lone question");
        let mut short_answer = header(1, 1, 1);
        short_answer.extend_from_slice(QUESTION);
        short_answer.extend_from_slice(&[0, 0, 1, 0]);
        let s = skim(&short_answer).unwrap();
        assert!(s.question.is_some() && s.opt_dnssec_ok.is_none());
    }
}
