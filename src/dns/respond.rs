//! Wire format in, wire format out: the whole answering of one DNS message,
//! with no I/O. Both the UDP and the TCP server call [`respond`].
//!
//! hickory-proto is the codec. The header rules of RFC 1035, RFC 6891
//! (EDNS), RFC 8906 (what a server must answer to odd queries) and RFC 8945
//! (TSIG) are applied here; the name lookup itself is [`super::lookup`].

use hickory_proto::op::{Edns, Header, Message, MessageType, Metadata, Query, ResponseCode};
use hickory_proto::rr::rdata::TSIG;
use hickory_proto::rr::rdata::tsig::TsigError;
use hickory_proto::rr::{DNSClass, LowerName, RData, Record, RecordType};
use hickory_proto::serialize::binary::{
    BinDecodable, BinDecoder, BinEncodable, BinEncoder, NameEncoding,
};

use hickory_proto::rr::rdata::opt::EdnsOption;

use super::header::{is_query, response_metadata};
use super::lookup::{Outcome, lookup};
use super::skim::skim;
use super::zone::ZoneSet;

/// Largest UDP payload we send or advertise: the DNS Flag Day 2020 value,
/// which avoids IP fragmentation on any common path.
pub const MAX_UDP_PAYLOAD: u16 = 1232;
/// Largest UDP response to a query without EDNS (RFC 1035 §4.2.1).
pub const PLAIN_UDP_PAYLOAD: u16 = 512;

/// How the message arrived: it decides the response size limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

impl From<Transport> for crate::metrics::Via {
    fn from(t: Transport) -> Self {
        match t {
            Transport::Udp => Self::Udp,
            Transport::Tcp => Self::Tcp,
        }
    }
}

/// Answers one DNS message. `zones` is `None` before any registry has been
/// loaded, which gives SERVFAIL. Returns `None` when the message must be
/// dropped: too short to carry a header, or itself a response.
pub fn respond(zones: Option<&ZoneSet>, packet: &[u8], transport: Transport) -> Option<Vec<u8>> {
    let header = Header::read(&mut BinDecoder::new(packet)).ok()?;
    // Never answer a response: two servers would otherwise ping-pong.
    if header.metadata.message_type == MessageType::Response {
        return None;
    }
    let Ok(request) = Message::from_vec(packet) else {
        return undecodable(&header.metadata, packet);
    };
    let mut response = answer(zones, &request, packet);
    let limit = match transport {
        Transport::Udp => udp_limit(&request),
        Transport::Tcp => usize::from(u16::MAX),
    };
    let mut bytes = fit(&mut response, limit)?;
    if response.metadata.response_code == ResponseCode::NotAuth
        && let Some(tsig) = unknown_key(&request)
    {
        append_record(&mut bytes, &tsig)?;
    }
    Some(bytes)
}

/// Answers a message known to be unreadable (e.g. cut short on receipt)
/// as [`respond`] answers one that does not decode; nothing if even the
/// header is missing or it is a response.
pub fn malformed(packet: &[u8]) -> Option<Vec<u8>> {
    let header = Header::read(&mut BinDecoder::new(packet)).ok()?;
    if header.metadata.message_type == MessageType::Response {
        return None;
    }
    undecodable(&header.metadata, packet)
}

/// The answer to a message whose header reads but whose body does not:
/// NOTIMP for an opcode we do not implement, whatever the body (RFC 8906
/// §3.1.5), else FORMERR (RFC 1035 §4.1.1). Either carries the question
/// and an OPT record when the walk of [`skim`] could read them: RFC 6891
/// §7 asks for the OPT in a FORMERR to a malformed OPT, so that the
/// requestor can tell it from a server without EDNS.
fn undecodable(request: &Metadata, packet: &[u8]) -> Option<Vec<u8>> {
    let skimmed = skim(packet).unwrap_or_default();
    let mut response = Message::new(request.id, MessageType::Response, request.op_code);
    response.metadata = response_metadata(request);
    response.metadata.response_code = if is_query(request.op_code) {
        ResponseCode::FormErr
    } else {
        ResponseCode::NotImp
    };
    // At most 12 + 259 + 11 bytes: within any UDP limit.
    response.queries = skimmed.question.into_iter().collect();
    response.edns = skimmed.opt_dnssec_ok.map(our_edns);
    response.to_vec().ok()
}

/// Encodes `response` within `limit` bytes. RFC 2181 §9: additional data
/// that does not fit is dropped first, without TC, whole RRsets from the
/// end (an SRV target's AAAA before its A); only when the answer itself
/// does not fit is TC set, and the response cut to header, question and
/// OPT (RFC 6891 §7), so the client retries over TCP.
fn fit(response: &mut Message, limit: usize) -> Option<Vec<u8>> {
    let bytes = response.to_vec().ok()?;
    if bytes.len() <= limit {
        return Some(bytes);
    }
    while let Some(last) = response.additionals.last() {
        let (name, rtype) = (last.name.clone(), last.record_type());
        while response
            .additionals
            .last()
            .is_some_and(|r| r.record_type() == rtype && r.name == name)
        {
            response.additionals.pop();
        }
        let bytes = response.to_vec().ok()?;
        if bytes.len() <= limit {
            return Some(bytes);
        }
    }
    response.metadata.truncation = true;
    response.answers.clear();
    response.authorities.clear();
    response.to_vec().ok()
}

/// The UDP size limit for the response to `request` (RFC 6891 §6.2.5): the
/// requestor's advertised payload, at least 512, at most ours.
fn udp_limit(request: &Message) -> usize {
    match &request.edns {
        Some(edns) => usize::from(edns.max_payload().clamp(PLAIN_UDP_PAYLOAD, MAX_UDP_PAYLOAD)),
        None => usize::from(PLAIN_UDP_PAYLOAD),
    }
}

/// Our OPT record (RFC 6891 §7): our payload size, version 0, DO echoed
/// (RFC 3225 §3); unknown flags and options are not echoed.
fn our_edns(dnssec_ok: bool) -> Edns {
    let mut edns = Edns::new();
    edns.set_max_payload(MAX_UDP_PAYLOAD);
    edns.set_version(0);
    edns.set_dnssec_ok(dnssec_ok);
    edns
}

/// The Extended DNS Error option code (RFC 8914 §2).
const EDE_OPTION: u16 = 15;
/// Its INFO-CODE 3, "Stale Answer" (RFC 8914 §4.4).
const EDE_STALE_ANSWER: u16 = 3;
/// That option as the fast path writes it: code, length 2, INFO-CODE.
pub(crate) const EDE_STALE: [u8; 6] = {
    let [c0, c1] = EDE_OPTION.to_be_bytes();
    let [i0, i1] = EDE_STALE_ANSWER.to_be_bytes();
    [c0, c1, 0, 2, i0, i1]
};

/// Builds the full response to a decoded request (`packet` is its wire
/// form, for what decoding does not keep).
fn answer(zones: Option<&ZoneSet>, request: &Message, packet: &[u8]) -> Message {
    let mut response = Message::new(
        request.metadata.id,
        MessageType::Response,
        request.metadata.op_code,
    );
    response.metadata = response_metadata(&request.metadata);
    // The question is echoed when there is one; none or several is FORMERR
    // (or NOTIMP) without them, which bounds the response's size.
    if request.queries.len() == 1 {
        response.queries = request.queries.clone();
    }
    response.edns = request
        .edns
        .as_ref()
        .map(|req| our_edns(req.flags().dnssec_ok));
    let rcode = decide(zones, request, packet, &mut response);
    response.metadata.response_code = rcode;
    // design §4: answers from the last-known-good snapshot, before the
    // registry source has delivered, say so where EDNS allows (RFC 8914).
    if let (Some(edns), Some(zones)) = (response.edns.as_mut(), zones)
        && zones.is_stale()
    {
        let info = EDE_STALE_ANSWER.to_be_bytes().to_vec();
        edns.options_mut()
            .insert(EdnsOption::Unknown(EDE_OPTION, info));
    }
    response
}

/// Fills in the response sections and returns the response code.
fn decide(
    zones: Option<&ZoneSet>,
    request: &Message,
    packet: &[u8],
    response: &mut Message,
) -> ResponseCode {
    if !is_query(request.metadata.op_code) {
        // RFC 8906 §3.1.5 / RFC 1035 §4.1.1.
        return ResponseCode::NotImp;
    }
    let signed = request.additionals.iter().any(is_tsig);
    if signed && skim(packet).is_some_and(|s| s.tsig_misplaced()) {
        // RFC 8945 §5.2: a TSIG that is not the one, last record of the
        // message is a format error, whoever holds the key.
        return ResponseCode::FormErr;
    }
    if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
        // RFC 6891 §6.1.3: we speak EDNS version 0 only.
        return ResponseCode::BADVERS;
    }
    if signed {
        // RFC 8945 §5.2.2: a key we do not know gets NOTAUTH, and the
        // unsigned TSIG with error BADKEY is appended by the caller.
        return ResponseCode::NotAuth;
    }
    let [query] = request.queries.as_slice() else {
        // Exactly one question (RFC 9619); none or several is FORMERR.
        return ResponseCode::FormErr;
    };
    if query.query_class() != DNSClass::IN {
        // Our zones exist in class IN only.
        return ResponseCode::Refused;
    }
    if matches!(query.query_type(), RecordType::AXFR | RecordType::IXFR) {
        // No zone transfers: the zones are derived data, not for copying.
        return ResponseCode::Refused;
    }
    let Some(zones) = zones else {
        // design §4: before the first registry load, SERVFAIL, never
        // NXDOMAIN (which clients would cache).
        return ResponseCode::ServFail;
    };
    let name = LowerName::new(query.name());
    if let Some(rcode) = explain(zones, &name, query, response) {
        return rcode;
    }
    match lookup(zones, &name, query.query_type()) {
        Outcome::Refused => ResponseCode::Refused,
        Outcome::Answer {
            answers,
            additionals,
            ..
        } => {
            response.metadata.authoritative = true;
            response.answers = answers.into_iter().map(|r| echo_case(r, query)).collect();
            response.additionals = additionals;
            ResponseCode::NoError
        }
        Outcome::NoData { zone } => {
            response.metadata.authoritative = true;
            response.authorities = vec![zone.soa.clone()];
            ResponseCode::NoError
        }
        Outcome::NxDomain { zone } => {
            response.metadata.authoritative = true;
            response.authorities = vec![zone.soa.clone()];
            ResponseCode::NXDomain
        }
    }
}

/// `_explain.<name>` while `--explain-txt` is on ([`super::explain_txt`]):
/// for a name inside a zone, a TXT answer with its provenance (any other
/// type: NODATA); `None` for every other query, which takes the lookup.
fn explain(
    zones: &ZoneSet,
    name: &LowerName,
    query: &Query,
    response: &mut Message,
) -> Option<ResponseCode> {
    let explainer = zones.explainer()?;
    let host = super::explain_txt::target(name)?;
    let zone = zones.find(name)?;
    response.metadata.authoritative = true;
    if matches!(query.query_type(), RecordType::TXT | RecordType::ANY) {
        let text = host.to_ascii().trim_end_matches('.').to_ascii_lowercase();
        let exists = !matches!(
            lookup(zones, &LowerName::new(&host), RecordType::A),
            Outcome::NxDomain { .. }
        );
        let Some(line) = explainer.line(&text, zones.serial(), exists) else {
            response.metadata.authoritative = false;
            return Some(ResponseCode::Refused);
        };
        response.answers = vec![super::explain_txt::record(query.name().clone(), &line)];
    } else {
        response.authorities = vec![zone.soa.clone()];
    }
    Some(ResponseCode::NoError)
}

fn is_tsig(record: &Record) -> bool {
    matches!(record.data, RData::TSIG(_))
}

/// `record` owned by the question's name as the client spelled it.
fn echo_case(mut record: Record, query: &Query) -> Record {
    record.name = query.name().clone();
    record
}

/// A TSIG record for the response when the request is signed, since we hold
/// no keys: unsigned, with error BADKEY (RFC 8945 §5.2.2, §5.3.2).
fn unknown_key(request: &Message) -> Option<Record> {
    let record = request.additionals.iter().find(|r| is_tsig(r))?;
    let RData::TSIG(tsig) = &record.data else {
        return None;
    };
    let reply = TSIG::new(
        tsig.algorithm.clone(),
        tsig.time,
        tsig.fudge,
        Vec::new(),
        request.metadata.id,
        Some(TsigError::BadKey),
        Vec::new(),
    );
    let mut record = Record::from_rdata(record.name.clone(), 0, RData::TSIG(reply));
    record.dns_class = DNSClass::ANY;
    Some(record)
}

/// Appends `record` to an encoded message as the last additional record.
/// Names are written uncompressed, as pointers into a message the record
/// was not encoded with would be wrong.
fn append_record(bytes: &mut Vec<u8>, record: &Record) -> Option<()> {
    let mut encoded = Vec::new();
    let mut encoder = BinEncoder::new(&mut encoded);
    encoder.set_name_encoding(NameEncoding::Uncompressed);
    record.emit(&mut encoder).ok()?;
    bytes.extend_from_slice(&encoded);
    let count = u16::from_be_bytes([bytes[10], bytes[11]]).checked_add(1)?;
    bytes[10..12].copy_from_slice(&count.to_be_bytes());
    Some(())
}
