//! The header flags of every response, from one rule per opcode. Both the
//! general path ([`super::respond`]) and the fast path ([`super::fast`])
//! take the bits they copy from [`copied_bits`], so the two cannot drift.
//!
//! The rule:
//!
//! - QR is set; the opcode and the ID are the request's.
//! - QUERY copies RD (RFC 1035 §4.1.1) and CD (RFC 4035 §3.2.2) from the
//!   request. Every other opcode copies neither: both flags are defined for
//!   QUERY only, and a NOTIMP to an unknown opcode that echoes them says
//!   the server understood a message it did not (RFC 8906 §3.1.5).
//! - AA is ours to set (authoritative answers only); TC is set only when
//!   the answer itself does not fit (RFC 2181 §9); RA is always 0 (no
//!   recursion, design §4); AD and Z are never copied (RFC 1035 §4.1.1
//!   says Z must be zero, and we do not validate DNSSEC).

use hickory_proto::op::{Metadata, OpCode};

/// Header byte 2: QR, opcode, AA, TC, RD.
pub(crate) const QR: u8 = 0x80;
pub(crate) const AA: u8 = 0x04;
pub(crate) const TC: u8 = 0x02;
const RD: u8 = 0x01;
/// Header byte 3: RA, Z, AD, CD, RCODE.
const CD: u8 = 0x10;

/// The opcode of QUERY (RFC 1035 §4.1.1).
pub(crate) const QUERY: u8 = 0;

/// The bits of header bytes 2 and 3 a response to a request of `opcode`
/// copies from the request: RD and CD for QUERY, nothing for any other.
pub(crate) const fn copied_bits(opcode: u8) -> [u8; 2] {
    if opcode == QUERY { [RD, CD] } else { [0, 0] }
}

/// The response metadata for `request` before any answering: ID, opcode,
/// QR, and the flags [`copied_bits`] allows; AA, TC and the RCODE are left
/// to the caller.
pub fn response_metadata(request: &Metadata) -> Metadata {
    let [copy2, copy3] = copied_bits(u8::from(request.op_code));
    let mut metadata = Metadata::response_from_request(request);
    metadata.recursion_desired = request.recursion_desired && copy2 & RD != 0;
    metadata.checking_disabled = request.checking_disabled && copy3 & CD != 0;
    metadata
}

/// True when `op_code` is QUERY, the only opcode we answer.
pub fn is_query(op_code: OpCode) -> bool {
    u8::from(op_code) == QUERY
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{MessageType, ResponseCode};

    fn request(op_code: OpCode) -> Metadata {
        let mut m = Metadata::new(7, MessageType::Query, op_code);
        m.recursion_desired = true;
        m.checking_disabled = true;
        m.authoritative = true;
        m.truncation = true;
        m.recursion_available = true;
        m.authentic_data = true;
        m.response_code = ResponseCode::NXDomain;
        m
    }

    /// RFC 1035 §4.1.1 and RFC 4035 §3.2.2: RD and CD are copied for QUERY
    /// only; AA, TC, RA and AD never are.
    #[test]
    fn rd_and_cd_are_copied_for_query_only() {
        let query = response_metadata(&request(OpCode::Query));
        assert!(query.recursion_desired && query.checking_disabled);
        for op_code in [
            OpCode::Status,
            OpCode::Notify,
            OpCode::Update,
            OpCode::from_u8(15),
        ] {
            let other = response_metadata(&request(op_code));
            assert!(!other.recursion_desired, "{op_code:?}: RD");
            assert!(!other.checking_disabled, "{op_code:?}: CD");
            assert_eq!(other.op_code, op_code, "opcode echoed");
        }
        for m in [request(OpCode::Query), request(OpCode::Notify)] {
            let r = response_metadata(&m);
            assert_eq!(r.message_type, MessageType::Response);
            assert!(!r.authoritative && !r.truncation && !r.recursion_available);
            assert!(!r.authentic_data);
            assert_eq!(r.response_code, ResponseCode::NoError);
            assert_eq!(r.id, 7);
        }
    }
}
