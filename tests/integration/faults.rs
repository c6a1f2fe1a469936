//! Fault tests (issue 5): each one breaks something under query load and
//! asserts that known names keep answering and nothing is lost. Loads are
//! bounded in time and count and stop by themselves.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use tokio_util::sync::CancellationToken;

use crate::support::{
    Options, REGISTRY, TestServer, Via, eventually, exchange, query, replace_file,
};

/// Queries `names` in a loop until `done` (at most 100,000 queries),
/// counting those that do not come back NOERROR with one answer.
fn load(addr: SocketAddr, names: &[&'static str], done: CancellationToken) -> Load {
    let asked = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let tasks = names
        .iter()
        .map(|name| {
            let (asked, failed, done) = (asked.clone(), failed.clone(), done.clone());
            let q = query(name, RecordType::A, false).to_vec().unwrap();
            tokio::spawn(async move {
                let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
                let mut buf = vec![0u8; 4096];
                while !done.is_cancelled() && asked.load(Ordering::Relaxed) < 100_000 {
                    socket.send_to(&q, addr).await.unwrap();
                    let ok =
                        match tokio::time::timeout(Duration::from_secs(1), socket.recv(&mut buf))
                            .await
                        {
                            Ok(Ok(n)) => Message::from_vec(&buf[..n]).is_ok_and(|m| {
                                m.metadata.response_code == ResponseCode::NoError
                                    && m.answers.len() == 1
                            }),
                            _ => false,
                        };
                    asked.fetch_add(1, Ordering::Relaxed);
                    if !ok {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    Load {
        asked,
        failed,
        tasks,
    }
}

struct Load {
    asked: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// Waits (at most 10 s) until at least `n` queries have been asked, so
    /// that a loaded machine still gives the fault a load to disturb.
    async fn reach(&self, n: usize) {
        let asked = self.asked.clone();
        let reached = eventually(Duration::from_secs(10), || {
            let asked = asked.clone();
            async move { asked.load(Ordering::Relaxed) >= n }
        })
        .await;
        assert!(reached, "the load reached {n} queries");
    }

    async fn finish(self) -> (usize, usize) {
        for task in self.tasks {
            task.await.unwrap();
        }
        (
            self.asked.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

/// The registry with one more service, so that each swap is a change.
fn plus_one() -> String {
    format!(
        "{REGISTRY}  - name: extra\n    namespace: default\n    exportedFrom: [east]\n    ports:\n      - {{ name: http, number: 80, protocol: HTTP }}\n"
    )
}

/// Hot reload never fails a query for a name that stays: the file is
/// replaced (write aside, rename) 100 times a second for 2 s under load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_replaced_100_times_a_second_never_fails_a_query() {
    // Polled every 2 ms, so that most versions (each stable for 10 ms)
    // settle and are published while the load runs.
    let server = TestServer::with(Options {
        reload_interval: Duration::from_millis(2),
        ..Default::default()
    })
    .await;
    let done = CancellationToken::new();
    let load = load(
        server.addr,
        &["httpbin.bar.global.", "reviews.default.global."],
        done.clone(),
    );
    let path = server.registry_path();
    let bigger = plus_one();
    for round in 0..200 {
        replace_file(&path, if round % 2 == 0 { &bigger } else { REGISTRY });
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    done.cancel();
    let (asked, failed) = load.finish().await;
    assert!(asked > 100, "the load ran ({asked} queries)");
    assert_eq!(failed, 0, "{failed} of {asked} queries failed");
    let reloads = server.running().metrics.render();
    let published: usize = reloads
        .lines()
        .find(|l| l.starts_with("globaldns_registry_reloads_total{result=\"success\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap();
    assert!(
        published > 5,
        "the registry was reloaded under load ({published} times)"
    );
}

/// A registry that cannot be read (a directory where the file was) is
/// reported and the last good one keeps serving; once readable again, it
/// is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_registry_keeps_the_last_good_one() {
    let server = TestServer::start().await;
    let done = CancellationToken::new();
    let load = load(server.addr, &["httpbin.bar.global."], done.clone());
    let path = server.registry_path();
    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::fs::remove_dir(&path).unwrap();
    replace_file(&path, &plus_one());
    let addr = server.addr;
    assert!(
        eventually(Duration::from_secs(5), || async move {
            let reply = exchange(
                addr,
                &query("extra.default.global.", RecordType::A, false),
                Via::Udp,
            )
            .await;
            reply.answers.len() == 1
        })
        .await,
        "the readable registry is served again"
    );
    load.reach(50).await;
    done.cancel();
    let (asked, failed) = load.finish().await;
    assert!(asked > 10);
    assert_eq!(failed, 0, "{failed} of {asked} queries failed");
}

/// A state directory that cannot be used (a file stands at its path) is
/// reported and globaldns serves from memory: DNS matters more than
/// remembering.
#[tokio::test]
async fn an_unusable_state_directory_still_serves() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("registry.yaml"), REGISTRY).unwrap();
    std::fs::write(dir.path().join("state"), "not a directory").unwrap();
    let server = TestServer::in_dir(dir, Options::default()).await;
    let reply = exchange(
        server.addr,
        &query("httpbin.bar.global.", RecordType::A, false),
        Via::Udp,
    )
    .await;
    assert_eq!(reply.answers.len(), 1);
}

/// Garbage and oversized datagrams, thousands of them, are dropped or get
/// FORMERR, and known names keep answering in between.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_oversized_packets_do_not_disturb_answers() {
    let server = TestServer::start().await;
    let done = CancellationToken::new();
    let load = load(server.addr, &["httpbin.bar.global."], done.clone());
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut seed: u32 = 0x9e37_79b9;
    for i in 0..3_000u32 {
        let len = 1 + (i as usize * 7919) % 600;
        let packet: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                seed as u8
            })
            .collect();
        socket.send_to(&packet, server.addr).await.unwrap();
    }
    // A query padded far beyond any real one: cut by the receive buffer,
    // answered FORMERR from its header. (From a socket of its own: the
    // first one's receive buffer may have overflowed with FORMERRs.)
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut huge = query("httpbin.bar.global.", RecordType::A, false)
        .to_vec()
        .unwrap();
    huge[0..2].copy_from_slice(&[0xAB, 0xCD]);
    huge.resize(8000, 0);
    socket.send_to(&huge, server.addr).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let formerr = loop {
        let n = tokio::time::timeout(Duration::from_secs(2), socket.recv(&mut buf))
            .await
            .expect("an answer to the oversized query")
            .unwrap();
        if buf[..2] == [0xAB, 0xCD] {
            break Message::from_vec(&buf[..n]).unwrap();
        }
    };
    assert_eq!(formerr.metadata.response_code, ResponseCode::FormErr);
    load.reach(200).await;
    done.cancel();
    let (asked, failed) = load.finish().await;
    assert!(asked > 10);
    assert_eq!(failed, 0, "{failed} of {asked} queries failed");
}
