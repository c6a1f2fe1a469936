//! EDNS and the odd queries DNS compliance testers send (RFC 6891, RFC 7873,
//! RFC 8906, RFC 8945), each over UDP and TCP. Packets are built byte by
//! byte so that what is sent is exactly what the row names.

use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::{RData, RecordType};

use crate::support::{BOTH, TestServer, Via, send};

/// Header flags byte 2 and 3 of a plain query with RD set.
pub const RD: [u8; 2] = [0x01, 0x00];

pub fn name(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in text
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

/// A query: header with `flags`, `qdcount` copies of the question, and
/// `additional` records (already encoded) counted in ARCOUNT.
pub fn packet(
    flags: [u8; 2],
    qdcount: u16,
    qname: &str,
    qtype: u16,
    additional: &[Vec<u8>],
) -> Vec<u8> {
    let mut p = vec![0xbe, 0xef, flags[0], flags[1]];
    p.extend_from_slice(&qdcount.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 0]);
    p.extend_from_slice(&(additional.len() as u16).to_be_bytes());
    for _ in 0..qdcount {
        p.extend_from_slice(&name(qname));
        p.extend_from_slice(&qtype.to_be_bytes());
        p.extend_from_slice(&1u16.to_be_bytes()); // IN
    }
    for record in additional {
        p.extend_from_slice(record);
    }
    p
}

/// An OPT record (RFC 6891 §6.1.2).
pub fn opt(payload: u16, version: u8, flags: u16, options: &[(u16, &[u8])]) -> Vec<u8> {
    let mut rdata = Vec::new();
    for (code, data) in options {
        rdata.extend_from_slice(&code.to_be_bytes());
        rdata.extend_from_slice(&(data.len() as u16).to_be_bytes());
        rdata.extend_from_slice(data);
    }
    let mut r = vec![0]; // root owner
    r.extend_from_slice(&41u16.to_be_bytes());
    r.extend_from_slice(&payload.to_be_bytes());
    r.extend_from_slice(&[0, version]);
    r.extend_from_slice(&flags.to_be_bytes());
    r.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    r.extend_from_slice(&rdata);
    r
}

pub async fn ask(server: &TestServer, packet: &[u8], via: Via) -> Message {
    let reply = send(server.addr, packet, via)
        .await
        .unwrap_or_else(|| panic!("no reply over {via:?}"));
    Message::from_vec(&reply).unwrap_or_else(|e| panic!("reply over {via:?} does not decode: {e}"))
}

pub const HOST: &str = "httpbin.bar.global";

/// RFC 6891 §7: OPT in, OPT out, with our payload size (1232, DNS Flag Day
/// 2020) and version 0.
#[tokio::test]
async fn opt_is_echoed_with_our_payload_size() {
    let server = TestServer::start().await;
    for via in BOTH {
        let reply = ask(
            &server,
            &packet(RD, 1, HOST, 1, &[opt(4096, 0, 0, &[])]),
            via,
        )
        .await;
        let edns = reply.edns.expect("OPT in the response");
        assert_eq!(edns.max_payload(), 1232, "{via:?}");
        assert_eq!(edns.version(), 0);
        assert_eq!(reply.answers.len(), 1);
    }
}

/// RFC 6891 §6.1.3: an EDNS version we do not speak gets BADVERS, with an
/// OPT carrying the version we do.
#[tokio::test]
async fn unknown_edns_version_gets_badvers() {
    let server = TestServer::start().await;
    for via in BOTH {
        let reply = ask(
            &server,
            &packet(RD, 1, HOST, 1, &[opt(1232, 1, 0, &[])]),
            via,
        )
        .await;
        // Code 16 is BADVERS in a message with OPT (hickory names it BADSIG).
        assert_eq!(
            u16::from(reply.metadata.response_code),
            16,
            "{via:?}: BADVERS"
        );
        assert_eq!(reply.edns.expect("OPT").version(), 0);
        assert!(reply.answers.is_empty());
    }
}

/// RFC 6891 §6.1.2 and RFC 7873 §5.2: options we do not know (here a
/// COOKIE and a private code) are ignored and not echoed.
#[tokio::test]
async fn unknown_options_are_ignored_and_not_echoed() {
    let server = TestServer::start().await;
    let cookie: &[u8] = &[1, 2, 3, 4, 5, 6, 7, 8];
    for via in BOTH {
        let reply = ask(
            &server,
            &packet(
                RD,
                1,
                HOST,
                1,
                &[opt(1232, 0, 0, &[(10, cookie), (65001, b"x")])],
            ),
            via,
        )
        .await;
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::NoError,
            "{via:?}"
        );
        assert_eq!(reply.answers.len(), 1);
        assert!(
            reply.edns.expect("OPT").options().as_ref().is_empty(),
            "no options echoed"
        );
    }
}

/// RFC 6891 §6.1.4 / RFC 8906 §3.1.4: unknown EDNS flags are cleared in the
/// response; DO is echoed (RFC 3225 §3).
#[tokio::test]
async fn unknown_edns_flags_are_cleared_and_do_is_echoed() {
    let server = TestServer::start().await;
    for via in BOTH {
        let reply = ask(
            &server,
            &packet(
                RD,
                1,
                HOST,
                1,
                &[opt(1232, 0, 0x8000 | 0x4000 | 0x0001, &[])],
            ),
            via,
        )
        .await;
        let flags = reply.edns.expect("OPT").flags().to_owned();
        assert!(flags.dnssec_ok, "{via:?}: DO echoed");
        assert_eq!(flags.z, 0, "{via:?}: unknown flags cleared");

        let reply = ask(
            &server,
            &packet(RD, 1, HOST, 1, &[opt(1232, 0, 0, &[])]),
            via,
        )
        .await;
        assert!(!reply.edns.unwrap().flags().dnssec_ok, "DO not invented");
    }
}

/// RFC 8906 §3.1.3: the header's Z bit is ignored: a normal answer, and Z
/// is zero in the response (RFC 1035 §4.1.1).
#[tokio::test]
async fn header_z_bit_gets_a_normal_answer() {
    let server = TestServer::start().await;
    for via in BOTH {
        let q = packet([0x01, 0x40], 1, HOST, 1, &[]);
        let raw = send(server.addr, &q, via).await.expect("reply");
        assert_eq!(raw[3] & 0x40, 0, "{via:?}: Z cleared");
        let reply = Message::from_vec(&raw).unwrap();
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert_eq!(reply.answers.len(), 1);
    }
}

/// RFC 8906 §3.1.5: an opcode we do not implement gets NOTIMP.
#[tokio::test]
async fn unknown_opcodes_get_notimp() {
    let server = TestServer::start().await;
    for opcode in [1u8, 2, 4, 5, 15] {
        for via in BOTH {
            let q = packet([opcode << 3, 0x00], 1, HOST, 1, &[]);
            let reply = ask(&server, &q, via).await;
            assert_eq!(
                reply.metadata.response_code,
                ResponseCode::NotImp,
                "opcode {opcode} over {via:?}"
            );
            assert_eq!(
                reply.metadata.op_code,
                OpCode::from_u8(opcode),
                "opcode echoed"
            );
        }
    }
}

/// A TSIG record (RFC 8945 §4.2) with key `key.example.com`, a 32-byte MAC
/// and original ID 0xbeef.
pub fn tsig() -> Vec<u8> {
    let mut tsig = name("key.example.com");
    tsig.extend_from_slice(&250u16.to_be_bytes()); // TSIG
    tsig.extend_from_slice(&255u16.to_be_bytes()); // class ANY
    tsig.extend_from_slice(&0u32.to_be_bytes()); // TTL
    let mut rdata = name("hmac-sha256");
    rdata.extend_from_slice(&[0, 0, 0x65, 0x5f, 0x00, 0x00]); // time signed
    rdata.extend_from_slice(&300u16.to_be_bytes()); // fudge
    rdata.extend_from_slice(&32u16.to_be_bytes()); // MAC size
    rdata.extend_from_slice(&[0xaa; 32]); // MAC
    rdata.extend_from_slice(&0xbeefu16.to_be_bytes()); // original id
    rdata.extend_from_slice(&0u16.to_be_bytes()); // error
    rdata.extend_from_slice(&0u16.to_be_bytes()); // other len
    tsig.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    tsig.extend_from_slice(&rdata);
    tsig
}

/// RFC 8945 §5.2.2: a query signed with a key we do not know gets NOTAUTH
/// and an unsigned TSIG with error BADKEY (RFC 8945 §5.3.2).
#[tokio::test]
async fn unknown_tsig_key_gets_notauth_badkey() {
    let server = TestServer::start().await;
    let tsig = tsig();
    for via in BOTH {
        let reply = ask(
            &server,
            &packet(RD, 1, HOST, 1, std::slice::from_ref(&tsig)),
            via,
        )
        .await;
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::NotAuth,
            "{via:?}"
        );
        assert!(reply.answers.is_empty());
        let last = reply.additionals.last().expect("TSIG in the response");
        let RData::TSIG(t) = &last.data else {
            panic!("{last:?}")
        };
        assert_eq!(last.name.to_string(), "key.example.com.");
        assert_eq!(u16::from(t.error.expect("TSIG error")), 17, "BADKEY");
        assert!(t.mac.is_empty(), "unsigned");
        assert_eq!(t.oid, 0xbeef);
    }
}

/// RFC 1035 §4.1.1 / RFC 9619: exactly one question; none or two is FORMERR.
#[tokio::test]
async fn question_count_other_than_one_is_formerr() {
    let server = TestServer::start().await;
    for qdcount in [0u16, 2] {
        for via in BOTH {
            let reply = ask(&server, &packet(RD, qdcount, HOST, 1, &[]), via).await;
            assert_eq!(
                reply.metadata.response_code,
                ResponseCode::FormErr,
                "QDCOUNT {qdcount} over {via:?}"
            );
        }
    }
}

/// A message with a readable header but a broken body gets FORMERR; one too
/// short for a header, or a response, is dropped (RFC 1035 §4.1.1).
#[tokio::test]
async fn malformed_messages_get_formerr_or_are_dropped() {
    let server = TestServer::start().await;
    let mut truncated_question = packet(RD, 1, HOST, 1, &[]);
    truncated_question.truncate(20);
    let mut bad_label = packet(RD, 1, HOST, 1, &[]);
    bad_label[12] = 0xC0 | 0x3f; // a compression pointer to nowhere
    let two_opts = packet(
        RD,
        1,
        HOST,
        1,
        &[opt(1232, 0, 0, &[]), opt(1232, 0, 0, &[])],
    );
    for (what, q) in [
        ("cut question", truncated_question),
        ("bad pointer", bad_label),
        ("two OPT", two_opts),
    ] {
        for via in BOTH {
            let reply = ask(&server, &q, via).await;
            assert_eq!(
                reply.metadata.response_code,
                ResponseCode::FormErr,
                "{what} over {via:?}"
            );
            assert_eq!(reply.metadata.id, 0xbeef, "{what}: id echoed");
        }
    }
    for via in BOTH {
        assert!(
            send(server.addr, &[0xbe, 0xef, 1], via).await.is_none(),
            "short message over {via:?}"
        );
        let response = packet([0x81, 0x80], 1, HOST, 1, &[]);
        assert!(
            send(server.addr, &response, via).await.is_none(),
            "a response over {via:?}"
        );
    }
}

/// Classes other than IN and zone transfers are refused.
#[tokio::test]
async fn other_classes_and_transfers_are_refused() {
    let server = TestServer::start().await;
    let mut chaos = packet(RD, 1, "version.bind", 16, &[]);
    let len = chaos.len();
    chaos[len - 1] = 3; // class CH
    for via in BOTH {
        assert_eq!(
            ask(&server, &chaos, via).await.metadata.response_code,
            ResponseCode::Refused
        );
        let axfr = packet(RD, 1, "global", u16::from(RecordType::AXFR), &[]);
        assert_eq!(
            ask(&server, &axfr, via).await.metadata.response_code,
            ResponseCode::Refused
        );
    }
}
