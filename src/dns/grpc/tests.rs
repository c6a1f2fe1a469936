use std::net::IpAddr;

use arc_swap::ArcSwapOption;
use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RData, RecordType};

use super::*;
use crate::dns::zone::{HostData, ZoneSetBuilder};

#[test]
fn dns_packets_round_trip_through_protobuf() {
    for len in [0usize, 1, 127, 128, 300, 65535] {
        let msg: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let packet = encode_packet(&msg);
        assert_eq!(decode_packet(&packet), Some(&msg[..]), "{len} bytes");
    }
    // 300 bytes: tag 0x0A, varint 0xAC 0x02.
    assert_eq!(&encode_packet(&[0; 300])[..3], &[0x0A, 0xAC, 0x02]);
    // Unknown fields of every wire type are skipped.
    let mut with_unknown = vec![0x10, 0x96, 0x01]; // field 2, varint 150
    with_unknown.extend_from_slice(&[0x19, 1, 2, 3, 4, 5, 6, 7, 8]); // field 3, fixed64
    with_unknown.extend_from_slice(&encode_packet(b"dns"));
    with_unknown.extend_from_slice(&[0x25, 1, 2, 3, 4]); // field 4, fixed32
    assert_eq!(decode_packet(&with_unknown), Some(&b"dns"[..]));
    // Malformed: a length past the end, an unknown wire type.
    assert_eq!(decode_packet(&[0x0A, 5, 1]), None);
    assert_eq!(decode_packet(&[0x0B]), None);
}

#[test]
fn grpc_frames_must_be_one_uncompressed_message() {
    assert_eq!(unframe(&frame(b"abc")), Some(&b"abc"[..]));
    assert_eq!(unframe(&[1, 0, 0, 0, 1, 7]), None, "compressed");
    assert_eq!(unframe(&[0, 0, 0, 0, 1, 7, 8]), None, "trailing bytes");
    assert_eq!(unframe(&[0, 0, 0, 0, 2, 7]), None, "short");
}

fn published() -> Arc<Published> {
    let mut set = ZoneSetBuilder::new(1, 30, 4);
    set.zone("global").unwrap();
    set.add_host(&HostData {
        host: "httpbin.bar.global",
        addresses: &["240.0.195.86".parse::<IpAddr>().unwrap()],
        ports: &[],
    })
    .unwrap();
    Arc::new(ArcSwapOption::from_pointee(set.build()))
}

/// A gRPC call as CoreDNS's `grpc` plugin makes it: returns the gRPC status
/// and the DNS message in the response, if any.
async fn call(addr: std::net::SocketAddr, path: &str, body: Bytes) -> (String, Option<Message>) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    let request = Request::builder()
        .method("POST")
        .uri(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap();
    let (response, mut send) = client.send_request(request, false).unwrap();
    send.send_data(body, true).unwrap();
    let response = response.await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/grpc");
    let mut body = response.into_body();
    let mut data = BytesMut::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap();
        let _ = body.flow_control().release_capacity(chunk.len());
        data.extend_from_slice(&chunk);
    }
    let trailers = body.trailers().await.unwrap().unwrap();
    let status = trailers["grpc-status"].to_str().unwrap().to_string();
    let message = (!data.is_empty()).then(|| {
        let packet = unframe(&data).unwrap();
        Message::from_vec(decode_packet(packet).unwrap()).unwrap()
    });
    (status, message)
}

/// Issue 3: the `istiocoredns` Corefile's `grpc global 127.0.0.1:8053`
/// gets the same answers as DNS over TCP.
#[tokio::test]
async fn coredns_grpc_queries_are_answered() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let limits = TcpLimits {
        max_connections: 4,
        idle_timeout: Duration::from_secs(5),
    };
    let metrics = Arc::new(crate::metrics::Metrics::default());
    tokio::spawn(serve(
        listener,
        published(),
        metrics.clone(),
        limits,
        shutdown.clone(),
    ));

    let mut query = Message::query();
    query.metadata.id = 4242;
    query.add_query(Query::query(
        Name::from_ascii("HttpBin.bar.global.").unwrap(),
        RecordType::A,
    ));
    let bytes = query.to_vec().unwrap();
    let (status, answer) = call(addr, PATH, frame(&encode_packet(&bytes))).await;
    assert_eq!(status, "0");
    let answer = answer.expect("a DNS message");
    assert_eq!(answer.metadata.id, 4242);
    assert_eq!(
        Some(answer.to_vec().unwrap()),
        respond(
            Some(published().load().as_deref().unwrap()),
            &bytes,
            Transport::Tcp
        ),
        "the same bytes as DNS over TCP"
    );
    assert!(matches!(&answer.answers[0].data, RData::A(a) if a.0.to_string() == "240.0.195.86"));

    let (status, answer) = call(addr, "/coredns.dns.DnsService/Other", Bytes::new()).await;
    assert_eq!(
        (status.as_str(), answer.is_none()),
        ("12", true),
        "UNIMPLEMENTED"
    );
    let (status, _) = call(addr, PATH, Bytes::from_static(b"junk")).await;
    assert_eq!(status, "3", "INVALID_ARGUMENT");
    assert!(
        metrics.render().contains(
            "globaldns_dns_queries_total{qtype=\"A\",rcode=\"NOERROR\",transport=\"grpc\"} 1"
        ),
        "gRPC answers are counted"
    );
    shutdown.cancel();
}
