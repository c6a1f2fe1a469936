//! DNS at the edges (issue 12): header flags of non-QUERY opcodes, TSIG
//! placement, what a FORMERR carries, the zone's own name server, and the
//! "Stale Answer" of a warm start; each over UDP and TCP.

use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};

use crate::edns::{HOST, RD, ask, opt, packet, tsig};
use crate::support::{
    BOTH, Options, REGISTRY, TestServer, Via, eventually, exchange, free_addr, query, send,
};

/// Every request flag we may be sent in byte 2 (AA, TC, RD) and byte 3
/// (RA, Z, AD, CD).
const ALL_FLAGS: [u8; 2] = [0x07, 0xF0];

/// RFC 1035 §4.1.1 and RFC 4035 §3.2.2: RD and CD are defined for QUERY
/// only, so a NOTIMP to another opcode copies neither (nor AA, TC, RA, AD
/// or Z), whether its body reads or not (RFC 8906 §3.1.5). genreport's
/// `opcodeflg` test.
#[tokio::test]
async fn other_opcodes_copy_no_flags() {
    let server = TestServer::start().await;
    for opcode in [1u8, 2, 4, 5, 15] {
        let flags = [opcode << 3 | ALL_FLAGS[0], ALL_FLAGS[1]];
        let with_question = packet(flags, 1, HOST, 1, &[]);
        let header_only = packet(flags, 0, HOST, 1, &[]);
        let mut unreadable = packet(flags, 1, HOST, 1, &[]);
        unreadable.truncate(20);
        for (what, q) in [
            ("question", with_question),
            ("header only", header_only),
            ("unreadable body", unreadable),
        ] {
            for via in BOTH {
                let raw = send(server.addr, &q, via).await.expect("a reply");
                assert_eq!(
                    raw[2],
                    0x80 | opcode << 3,
                    "opcode {opcode}, {what}, {via:?}"
                );
                assert_eq!(
                    raw[3], 4,
                    "opcode {opcode}, {what}, {via:?}: NOTIMP, no flags"
                );
            }
        }
    }
}

/// RFC 1035 §4.1.1 and RFC 4035 §3.2.2: for QUERY, RD and CD are copied and
/// nothing else is (AA is ours; TC, RA, AD and Z are not echoed).
#[tokio::test]
async fn query_copies_rd_and_cd_only() {
    let server = TestServer::start().await;
    let q = packet(ALL_FLAGS, 1, HOST, 1, &[]);
    for via in BOTH {
        let raw = send(server.addr, &q, via).await.expect("a reply");
        assert_eq!(raw[2], 0x80 | 0x04 | 0x01, "{via:?}: QR AA RD");
        assert_eq!(raw[3], 0x10, "{via:?}: CD, NOERROR");
    }
}

/// RFC 8945 §5.2: a TSIG that is not the last record (here before the OPT
/// record), or a second TSIG, is a format error: FORMERR, not NOTAUTH, and
/// no TSIG in the response; the OPT is still echoed (RFC 6891 §7).
#[tokio::test]
async fn a_misplaced_tsig_gets_formerr() {
    let server = TestServer::start().await;
    let edns = opt(1232, 0, 0, &[]);
    for (what, additional, has_opt) in [
        ("TSIG before OPT", vec![tsig(), edns.clone()], true),
        ("two TSIGs", vec![tsig(), tsig()], false),
    ] {
        for via in BOTH {
            let reply = ask(&server, &packet(RD, 1, HOST, 1, &additional), via).await;
            assert_eq!(
                reply.metadata.response_code,
                ResponseCode::FormErr,
                "{what} over {via:?}"
            );
            assert!(reply.additionals.is_empty(), "{what}: no TSIG echoed");
            assert_eq!(reply.edns.is_some(), has_opt, "{what}: OPT");
            assert_eq!(reply.queries.len(), 1, "{what}: question echoed");
        }
    }
    // The TSIG last, after the OPT, is still NOTAUTH/BADKEY (RFC 8945 §5.2.2).
    let reply = ask(&server, &packet(RD, 1, HOST, 1, &[edns, tsig()]), Via::Udp).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NotAuth);
}

/// RFC 6891 §7: a FORMERR to a message whose OPT is malformed carries an
/// OPT, so the requestor can tell it from a server without EDNS; and the
/// question, which could be read (RFC 1035 §4.1.1).
#[tokio::test]
async fn formerr_to_a_malformed_opt_carries_question_and_opt() {
    let server = TestServer::start().await;
    // An option whose length runs past the OPT's RDATA.
    let mut bad_option = opt(1232, 0, 0x8000, &[(10, &[1, 2, 3, 4, 5, 6, 7, 8])]);
    let len = bad_option.len();
    bad_option[len - 9] = 200;
    let two_opts = [opt(1232, 0, 0, &[]), opt(1232, 0, 0, &[])];
    for (what, additional, dnssec_ok) in [
        ("option overrunning the OPT", vec![bad_option], true),
        ("two OPT records", two_opts.to_vec(), false),
    ] {
        for via in BOTH {
            let raw = send(server.addr, &packet(RD, 1, HOST, 1, &additional), via)
                .await
                .expect("a reply");
            assert!(raw.len() > 12, "{what}: more than a bare header");
            let reply = Message::from_vec(&raw).unwrap();
            assert_eq!(
                reply.metadata.response_code,
                ResponseCode::FormErr,
                "{what}"
            );
            assert_eq!(reply.queries.len(), 1, "{what} over {via:?}: question");
            assert_eq!(reply.queries[0].name().to_ascii(), "httpbin.bar.global.");
            let edns = reply.edns.expect("OPT in the FORMERR");
            assert_eq!((edns.version(), edns.max_payload()), (0, 1232), "{what}");
            assert_eq!(edns.flags().dnssec_ok, dnssec_ok, "{what}: DO echoed");
            assert!(
                reply.metadata.recursion_desired,
                "{what}: RD copied (QUERY)"
            );
        }
    }
}

/// design §4, RFC 1035 §3.3.11: the zone's NS target `ns.<zone>` has the
/// server's addresses, and an NS answer carries them as additional data.
#[tokio::test]
async fn the_name_server_resolves() {
    let server = TestServer::with(Options {
        ns_addresses: vec![
            "192.0.2.53".parse().unwrap(),
            "2001:db8::53".parse().unwrap(),
        ],
        ..Default::default()
    })
    .await;
    for via in BOTH {
        let a = exchange(server.addr, &query("ns.global.", RecordType::A, false), via).await;
        assert_eq!(a.metadata.response_code, ResponseCode::NoError, "{via:?}");
        assert!(a.metadata.authoritative);
        assert_eq!(a.answers[0].data, RData::A("192.0.2.53".parse().unwrap()));
        let aaaa = exchange(
            server.addr,
            &query("NS.global.", RecordType::AAAA, true),
            via,
        )
        .await;
        assert_eq!(
            aaaa.answers[0].data,
            RData::AAAA("2001:db8::53".parse().unwrap())
        );

        let ns = exchange(server.addr, &query("global.", RecordType::NS, true), via).await;
        assert_eq!(ns.answers[0].data.to_string(), "ns.global.");
        let glue: Vec<String> = ns.additionals.iter().map(|r| r.data.to_string()).collect();
        assert_eq!(glue, ["192.0.2.53", "2001:db8::53"], "{via:?}");
    }
}

/// The RFC 8914 option codes of a reply's OPT.
fn ede(reply: &Message) -> Vec<Vec<u8>> {
    use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
    let Some(edns) = &reply.edns else {
        return Vec::new();
    };
    edns.options()
        .get_all(EdnsCode::Unknown(15))
        .into_iter()
        .map(|o| match o {
            EdnsOption::Unknown(_, data) => data.clone(),
            other => panic!("{other:?}"),
        })
        .collect()
}

/// design §4, RFC 8914 §4.4: answers from the last-known-good snapshot,
/// before the registry source has delivered, carry Extended DNS Error 3
/// "Stale Answer" where EDNS allows (never without EDNS); once the source
/// delivers, they no longer do.
#[tokio::test]
async fn warm_start_answers_are_marked_stale_until_the_source_delivers() {
    let dir = TestServer::start().await.stop().await;
    std::fs::write(dir.path().join("registry.yaml"), "clusters: [oops").unwrap();
    let server = TestServer::in_dir(dir, Options::default()).await;
    for via in BOTH {
        for name in ["httpbin.bar.global.", "nope.bar.global."] {
            let reply = exchange(server.addr, &query(name, RecordType::A, true), via).await;
            assert_eq!(ede(&reply), [vec![0, 3]], "{name} over {via:?}");
        }
        let plain = exchange(server.addr, &query(HOST, RecordType::A, false), via).await;
        assert!(plain.edns.is_none(), "no OPT without EDNS ({via:?})");
        assert_eq!(plain.answers.len(), 1);
    }
    crate::support::replace_file(&server.registry_path(), REGISTRY);
    assert!(
        eventually(Duration::from_secs(5), || async {
            let q = query(HOST, RecordType::A, true);
            ede(&exchange(server.addr, &q, Via::Udp).await).is_empty()
        })
        .await,
        "the source confirmed the snapshot"
    );
    let reply = exchange(server.addr, &query(HOST, RecordType::A, true), Via::Tcp).await;
    assert!(ede(&reply).is_empty(), "TCP too");
}

/// A restart answers from the last-known-good snapshot while the registry
/// file's first read is still running (design §4): a large file's read
/// (a second at 100,000 YAML services) no longer holds every query back.
/// The file is a FIFO here, which gives its text only once the test has
/// had its stale answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_answers_while_the_registry_file_is_read() {
    use nix::sys::stat::Mode;

    let dir = TestServer::start().await.stop().await;
    let registry = dir.path().join("registry.yaml");
    std::fs::remove_file(&registry).unwrap();
    nix::unistd::mkfifo(&registry, Mode::S_IRUSR | Mode::S_IWUSR).unwrap();
    let addr = free_addr();
    let options = Options {
        listen: addr,
        ..Options::default()
    };
    let starting = tokio::spawn(TestServer::in_dir(dir, options));
    for via in BOTH {
        let answered = eventually(Duration::from_secs(10), || async {
            let reply = send(
                addr,
                &query(HOST, RecordType::A, true).to_vec().unwrap(),
                via,
            )
            .await;
            reply.is_some_and(|r| {
                let reply = Message::from_vec(&r).unwrap();
                reply.answers.len() == 1 && ede(&reply) == [vec![0, 3]]
            })
        })
        .await;
        assert!(
            answered,
            "a stale answer over {via:?} while the file is read"
        );
    }
    assert!(!starting.is_finished(), "the file has not been read yet");
    let writer = std::thread::spawn(move || std::fs::write(registry, REGISTRY).unwrap());
    let server = starting.await.unwrap();
    writer.join().unwrap();
    let reply = exchange(server.addr, &query(HOST, RecordType::A, true), Via::Udp).await;
    assert!(ede(&reply).is_empty(), "the read confirms the snapshot");
}
