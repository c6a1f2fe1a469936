//! DNS over TCP (RFC 7766): several queries per connection, an idle
//! timeout, and a cap on connections.

use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use globaldns::dns::server::TcpLimits;

use crate::support::{Options, TestServer, Via, exchange, query, read_framed, write_framed};

/// RFC 7766 §6.2.1.1: pipelined queries, all sent before any answer is
/// read, are all answered on the one connection.
#[tokio::test]
async fn pipelined_queries_on_one_connection() {
    let server = TestServer::start().await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let names = [
        "httpbin.bar.global.",
        "reviews.default.global.",
        "nope.global.",
        "example.com.",
    ];
    let mut batch = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let mut q = query(name, RecordType::A, i % 2 == 0);
        q.metadata.id = 100 + i as u16;
        let bytes = q.to_vec().unwrap();
        batch.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
        batch.extend_from_slice(&bytes);
    }
    stream.write_all(&batch).await.unwrap();
    let mut rcodes = Vec::new();
    for i in 0..names.len() {
        let reply = Message::from_vec(&read_framed(&mut stream).await.expect("reply")).unwrap();
        assert_eq!(reply.metadata.id, 100 + i as u16);
        rcodes.push(reply.metadata.response_code);
    }
    assert_eq!(
        rcodes,
        [
            ResponseCode::NoError,
            ResponseCode::NoError,
            ResponseCode::NXDomain,
            ResponseCode::Refused
        ]
    );
    // And the connection is still usable afterwards.
    write_framed(
        &mut stream,
        &query("httpbin.bar.global.", RecordType::A, false)
            .to_vec()
            .unwrap(),
    )
    .await;
    assert!(read_framed(&mut stream).await.is_some());
}

/// RFC 1035 §4.2.2: the length prefix and the message may arrive in any
/// pieces; a message split across reads, and a read holding the end of one
/// message and the start of the next, are answered like whole ones.
#[tokio::test]
async fn messages_split_across_reads_are_answered() {
    let server = TestServer::start().await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let mut bytes = Vec::new();
    for (i, name) in ["httpbin.bar.global.", "nope.global."].iter().enumerate() {
        let mut q = query(name, RecordType::A, true);
        q.metadata.id = 7 + i as u16;
        let q = q.to_vec().unwrap();
        bytes.extend_from_slice(&(q.len() as u16).to_be_bytes());
        bytes.extend_from_slice(&q);
    }
    // Cut inside the first prefix, inside the first message, and across
    // the boundary between the two.
    let first_len = usize::from(u16::from_be_bytes([bytes[0], bytes[1]])) + 2;
    for piece in [
        &bytes[..1],
        &bytes[1..9],
        &bytes[9..first_len + 5],
        &bytes[first_len + 5..],
    ] {
        stream.write_all(piece).await.unwrap();
        stream.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let one = Message::from_vec(&read_framed(&mut stream).await.expect("first")).unwrap();
    let two = Message::from_vec(&read_framed(&mut stream).await.expect("second")).unwrap();
    assert_eq!((one.metadata.id, one.answers.len()), (7, 1));
    assert_eq!(
        (two.metadata.id, two.metadata.response_code),
        (8, ResponseCode::NXDomain)
    );
}

/// RFC 7766 §6.2.3 and §10: a client that keeps a connection busy by
/// trickling a message a byte at a time gets no longer than an idle one.
#[tokio::test]
async fn trickling_clients_are_cut_at_the_idle_timeout() {
    let server = TestServer::with(limits(8, 300)).await;
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    let q = query("httpbin.bar.global.", RecordType::A, false)
        .to_vec()
        .unwrap();
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&q);
    let started = std::time::Instant::now();
    for byte in &framed {
        if slow.write_all(&[*byte]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(framed.len() * 50 > 600, "the trickle outlasts the timeout");
    assert!(
        read_framed(&mut slow).await.is_none(),
        "cut off, not answered"
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
}

fn limits(max_connections: usize, idle_ms: u64) -> Options {
    Options {
        tcp: TcpLimits {
            max_connections,
            idle_timeout: Duration::from_millis(idle_ms),
        },
        ..Default::default()
    }
}

/// RFC 7766 §6.2.3: an idle connection is closed by the server.
#[tokio::test]
async fn idle_connections_are_closed() {
    let server = TestServer::with(limits(8, 200)).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    write_framed(
        &mut stream,
        &query("httpbin.bar.global.", RecordType::A, false)
            .to_vec()
            .unwrap(),
    )
    .await;
    assert!(
        read_framed(&mut stream).await.is_some(),
        "answered while active"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        read_framed(&mut stream).await.is_none(),
        "closed after the idle timeout"
    );

    // A client that stops half-way through a message is cut off too.
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(&[0, 40, 0xbe]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(read_framed(&mut slow).await.is_none(), "slow client closed");
}

/// design §4: a cap on connections; beyond it new connections are closed
/// at once, and a slot freed is a slot usable again. UDP is unaffected.
#[tokio::test]
async fn connections_beyond_the_cap_are_closed() {
    let server = TestServer::with(limits(2, 5_000)).await;
    let q = query("httpbin.bar.global.", RecordType::A, false)
        .to_vec()
        .unwrap();
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        write_framed(&mut s, &q).await;
        assert!(read_framed(&mut s).await.is_some());
        held.push(s);
    }
    let mut extra = TcpStream::connect(server.addr).await.unwrap();
    let _ = extra.write_all(&q).await;
    assert!(
        read_framed(&mut extra).await.is_none(),
        "third connection refused"
    );
    // Counted, so that an operator sees the cap is too low (NodeLocal
    // DNSCache forwards over TCP only).
    assert!(
        server
            .running()
            .metrics
            .render()
            .contains("globaldns_dns_connections_refused_total{transport=\"tcp\"} 1"),
        "{}",
        server.running().metrics.render()
    );
    assert_eq!(
        exchange(
            server.addr,
            &query("httpbin.bar.global.", RecordType::A, false),
            Via::Udp
        )
        .await
        .answers
        .len(),
        1,
        "UDP still answers"
    );

    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut again = TcpStream::connect(server.addr).await.unwrap();
    write_framed(&mut again, &q).await;
    assert!(
        read_framed(&mut again).await.is_some(),
        "a freed slot is reused"
    );
}

/// Issue 5, graceful lifecycle: on shutdown the server stops reading, and
/// open connections (here one with a 30 s idle timeout) are closed within
/// the drain deadline rather than held until they time out.
#[tokio::test]
async fn shutdown_closes_tcp_connections_within_the_drain_deadline() {
    let server = TestServer::with(limits(8, 30_000)).await;
    let mut open = TcpStream::connect(server.addr).await.unwrap();
    let q = query("httpbin.bar.global.", RecordType::A, false)
        .to_vec()
        .unwrap();
    write_framed(&mut open, &q).await;
    assert!(
        read_framed(&mut open).await.is_some(),
        "served before shutdown"
    );
    let started = std::time::Instant::now();
    let _dir = server.stop().await;
    assert!(
        started.elapsed() < globaldns::dns::server::TCP_DRAIN_DEADLINE + Duration::from_secs(1),
        "stopped in {:?}",
        started.elapsed()
    );
    assert!(
        read_framed(&mut open).await.is_none(),
        "the connection was closed"
    );
}
