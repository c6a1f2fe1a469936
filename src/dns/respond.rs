//! Wire format in, wire format out: the whole answering of one DNS message,
//! with no I/O. Both the UDP and the TCP server call [`respond`].
//!
//! hickory-proto is the codec. The header rules of RFC 1035, RFC 6891
//! (EDNS), RFC 8906 (what a server must answer to odd queries) and RFC 8945
//! (TSIG) are applied here; the name lookup itself is [`super::lookup`].

use hickory_proto::op::{
    Edns, Header, Message, MessageType, Metadata, OpCode, Query, ResponseCode,
};
use hickory_proto::rr::rdata::TSIG;
use hickory_proto::rr::rdata::tsig::TsigError;
use hickory_proto::rr::{DNSClass, LowerName, RData, Record, RecordType};
use hickory_proto::serialize::binary::{
    BinDecodable, BinDecoder, BinEncodable, BinEncoder, NameEncoding,
};

use super::lookup::{Outcome, lookup};
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

/// Answers one DNS message. `zones` is `None` before any registry has been
/// loaded, which gives SERVFAIL. Returns `None` when the message must be
/// dropped: too short to carry a header, or itself a response.
pub fn respond(zones: Option<&ZoneSet>, packet: &[u8], transport: Transport) -> Option<Vec<u8>> {
    let header = Header::read(&mut BinDecoder::new(packet)).ok()?;
    // Never answer a response: two servers would otherwise ping-pong.
    if header.metadata.message_type == MessageType::Response {
        return None;
    }
    let request = match Message::from_vec(packet) {
        Ok(request) => request,
        // RFC 8906 §3.1.5: an unknown opcode gets NOTIMP even if the rest
        // of the message is of a shape we cannot read.
        Err(_) if header.metadata.op_code != OpCode::Query => {
            return encode_header_only(&header.metadata, ResponseCode::NotImp);
        }
        // The header was readable: FORMERR (RFC 1035 §4.1.1).
        Err(_) => return encode_header_only(&header.metadata, ResponseCode::FormErr),
    };
    let response = answer(zones, &request);
    let mut bytes = response.to_vec().ok()?;
    if transport == Transport::Udp && bytes.len() > udp_limit(&request) {
        bytes = truncated(&response).to_vec().ok()?;
    }
    if let Some(tsig) = unknown_key(&request) {
        append_record(&mut bytes, &tsig)?;
    }
    Some(bytes)
}

/// Answers a message known to be unreadable (e.g. cut short on receipt):
/// FORMERR from its header, or nothing if even that is missing or it is a
/// response.
pub fn malformed(packet: &[u8]) -> Option<Vec<u8>> {
    let header = Header::read(&mut BinDecoder::new(packet)).ok()?;
    if header.metadata.message_type == MessageType::Response {
        return None;
    }
    encode_header_only(&header.metadata, ResponseCode::FormErr)
}

/// The UDP size limit for the response to `request` (RFC 6891 §6.2.5): the
/// requestor's advertised payload, at least 512, at most ours.
fn udp_limit(request: &Message) -> usize {
    match &request.edns {
        Some(edns) => usize::from(edns.max_payload().clamp(PLAIN_UDP_PAYLOAD, MAX_UDP_PAYLOAD)),
        None => usize::from(PLAIN_UDP_PAYLOAD),
    }
}

/// Builds the full response to a decoded request.
fn answer(zones: Option<&ZoneSet>, request: &Message) -> Message {
    let mut response = Message::new(
        request.metadata.id,
        MessageType::Response,
        request.metadata.op_code,
    );
    response.metadata = Metadata::response_from_request(&request.metadata);
    response.queries = request.queries.clone();
    // RFC 6891 §7: a request with OPT gets a response with OPT: our own
    // payload size, version 0, DO echoed, unknown flags and options dropped.
    response.edns = request.edns.as_ref().map(|req| {
        let mut edns = Edns::new();
        edns.set_max_payload(MAX_UDP_PAYLOAD);
        edns.set_version(0);
        edns.set_dnssec_ok(req.flags().dnssec_ok);
        edns
    });
    let rcode = decide(zones, request, &mut response);
    response.metadata.response_code = rcode;
    response
}

/// Fills in the response sections and returns the response code.
fn decide(zones: Option<&ZoneSet>, request: &Message, response: &mut Message) -> ResponseCode {
    if request.metadata.op_code != OpCode::Query {
        // RFC 8906 §3.1.5 / RFC 1035 §4.1.1.
        return ResponseCode::NotImp;
    }
    if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
        // RFC 6891 §6.1.3: we speak EDNS version 0 only.
        return ResponseCode::BADVERS;
    }
    if unknown_key(request).is_some() {
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
        // DESIGN §4: before the first registry load, SERVFAIL, never
        // NXDOMAIN (which clients would cache).
        return ResponseCode::ServFail;
    };
    let name = LowerName::new(query.name());
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

/// `record` owned by the question's name as the client spelled it.
fn echo_case(mut record: Record, query: &Query) -> Record {
    record.name = query.name().clone();
    record
}

/// The response cut down to what always fits: header, question and OPT,
/// with TC set so the client retries over TCP (RFC 2181 §9, RFC 6891 §7).
fn truncated(response: &Message) -> Message {
    let mut cut = response.clone();
    cut.metadata.truncation = true;
    cut.answers.clear();
    cut.authorities.clear();
    cut.additionals.clear();
    cut
}

/// A TSIG record for the response when the request is signed, since we hold
/// no keys: unsigned, with error BADKEY (RFC 8945 §5.2.2, §5.3.2).
fn unknown_key(request: &Message) -> Option<Record> {
    let record = request.additionals.last()?;
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

/// A response of only a header, for requests too malformed to echo.
fn encode_header_only(request: &Metadata, rcode: ResponseCode) -> Option<Vec<u8>> {
    let mut response = Message::new(request.id, MessageType::Response, request.op_code);
    response.metadata = Metadata::response_from_request(request);
    response.metadata.response_code = rcode;
    response.to_vec().ok()
}
