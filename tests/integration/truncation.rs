//! Answers too large for UDP: TC set, a well-formed message that still
//! carries the OPT, and the whole answer over TCP (RFC 1035 §4.2.1,
//! RFC 2181 §9, RFC 6891 §7, RFC 7766 §5).

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::support::{Options, TestServer, Via, exchange, query, send};

/// A registry with `many` (200 addresses: 3.2 kB of A records) and `some`
/// (50 addresses: fits 1232 bytes, not 512).
fn registry() -> String {
    let list = |n: usize| {
        (1..=n)
            .map(|i| format!("'198.51.{}.{}'", 100 + i / 200, i % 200 + 1))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "clusters:\n  - name: west\n    gateways: [{{address: 192.0.2.1}}]\nservices:\n  - {{name: many, namespace: ns, exportedFrom: [west], ports: [{{name: tcp, number: 1, protocol: TCP}}], addresses: [{}]}}\n  - {{name: some, namespace: ns, exportedFrom: [west], ports: [{{name: tcp, number: 1, protocol: TCP}}], addresses: [{}]}}\n  - {{name: mixed, namespace: ns, exportedFrom: [west], ports: [{{name: tcp, number: 1, protocol: TCP}}], addresses: [{}]}}\n",
        list(200),
        // Offset so the two lists do not overlap.
        (1..=50)
            .map(|i| format!("'203.0.113.{i}'"))
            .collect::<Vec<_>>()
            .join(", "),
        (1..=30)
            .map(|i| format!("'2001:db8::{i:x}'"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

async fn server() -> TestServer {
    TestServer::with(Options {
        registry: Some(registry()),
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn too_large_for_udp_is_truncated_with_opt_and_complete_over_tcp() {
    let server = server().await;
    for edns in [false, true] {
        let q = query("many.ns.global.", RecordType::A, edns);
        let raw = send(server.addr, &q.to_vec().unwrap(), Via::Udp)
            .await
            .expect("UDP reply");
        let limit = if edns { 1232 } else { 512 };
        assert!(
            raw.len() <= limit,
            "{} bytes over UDP (limit {limit})",
            raw.len()
        );
        let reply = hickory_proto::op::Message::from_vec(&raw).unwrap();
        assert!(reply.metadata.truncation, "TC set (edns {edns})");
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert_eq!(reply.queries.len(), 1, "question echoed");
        assert_eq!(
            reply.edns.is_some(),
            edns,
            "OPT kept in a truncated reply (RFC 6891 §7)"
        );
        // No trailing garbage: the message re-encodes to exactly its length.
        assert_eq!(
            reply.to_vec().unwrap().len(),
            raw.len(),
            "well-formed, no extra bytes"
        );

        let full = exchange(server.addr, &q, Via::Tcp).await;
        assert!(!full.metadata.truncation);
        assert_eq!(full.answers.len(), 200, "the whole RRset over TCP");
    }
}

#[tokio::test]
async fn edns_payload_decides_what_fits() {
    let server = server().await;
    let plain = exchange(
        server.addr,
        &query("some.ns.global.", RecordType::A, false),
        Via::Udp,
    )
    .await;
    assert!(
        plain.metadata.truncation,
        "50 A records do not fit 512 bytes"
    );
    let edns = exchange(
        server.addr,
        &query("some.ns.global.", RecordType::A, true),
        Via::Udp,
    )
    .await;
    assert!(!edns.metadata.truncation, "but fit 1232");
    assert_eq!(edns.answers.len(), 50);

    // A requestor advertising less than 512 still gets 512 (RFC 6891 §6.2.5).
    let mut tiny = query("httpbin.bar.global.", RecordType::A, true);
    tiny.edns.as_mut().unwrap().set_max_payload(100);
    let reply = exchange(server.addr, &tiny, Via::Udp).await;
    assert!(!reply.metadata.truncation);
}

/// RFC 2181 §9: additional data that does not fit is dropped, and TC is
/// not set; the SRV answer itself fits and is given. The SRV of `many`
/// carries its 200 addresses as additional data (3.2 kB), the SRV of
/// `some` its 50 (fits 1232, not 512).
#[tokio::test]
async fn additional_data_is_dropped_before_the_answer_is_truncated() {
    let server = server().await;
    for (name, edns, fits) in [
        ("_tcp._tcp.many.ns.global.", false, 0),
        ("_tcp._tcp.many.ns.global.", true, 0),
        ("_tcp._tcp.some.ns.global.", false, 0),
        ("_tcp._tcp.some.ns.global.", true, 50),
    ] {
        let q = query(name, RecordType::SRV, edns);
        let raw = send(server.addr, &q.to_vec().unwrap(), Via::Udp)
            .await
            .expect("UDP reply");
        let reply = hickory_proto::op::Message::from_vec(&raw).unwrap();
        assert!(!reply.metadata.truncation, "{name} (edns {edns}): no TC");
        assert_eq!(reply.answers.len(), 1, "{name} (edns {edns}): the SRV");
        assert_eq!(reply.additionals.len(), fits, "{name} (edns {edns})");
        assert_eq!(reply.edns.is_some(), edns, "OPT kept");

        let full = exchange(server.addr, &q, Via::Tcp).await;
        assert!(full.additionals.len() >= 50, "all of it over TCP");
    }
}

/// RFC 2181 §9: additional data is dropped by whole RRsets, from the end,
/// until the rest fits: in 512 bytes the SRV target's AAAA RRset (840
/// bytes) goes, its A record stays; no TC. The same for ANY, whose SRV answer (RFC 8482 §4.2)
/// carries the same additional data (RFC 2782).
#[tokio::test]
async fn additional_data_is_dropped_by_whole_rrsets() {
    let server = server().await;
    for (qtype, edns) in [
        (RecordType::SRV, false),
        (RecordType::SRV, true),
        (RecordType::ANY, false),
    ] {
        let q = query("_tcp._tcp.mixed.ns.global.", qtype, edns);
        let udp = exchange(server.addr, &q, Via::Udp).await;
        assert!(!udp.metadata.truncation, "{qtype} (edns {edns}): no TC");
        assert_eq!(udp.answers.len(), 1, "{qtype}: the SRV");
        let kinds: Vec<RecordType> = udp.additionals.iter().map(|r| r.record_type()).collect();
        if edns {
            assert_eq!(kinds.len(), 31, "{qtype}: all of it fits 1232 bytes");
        } else {
            assert_eq!(kinds, [RecordType::A], "{qtype}: the A stays in 512 bytes");
        }
        let tcp = exchange(server.addr, &q, Via::Tcp).await;
        assert_eq!(tcp.additionals.len(), 31, "{qtype}: all of it over TCP");
    }
}
