//! Registry changes while serving: new versions are picked up, bad ones are
//! refused and the last good registry keeps answering (design §2).

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};

use crate::support::{
    Options, REGISTRY, TestServer, Via, eventually, exchange, query, replace_file,
};

async fn rcode(addr: SocketAddr, name: &str) -> ResponseCode {
    exchange(addr, &query(name, RecordType::A, false), Via::Udp)
        .await
        .metadata
        .response_code
}

async fn serial(addr: SocketAddr) -> u32 {
    let reply = exchange(addr, &query("global.", RecordType::SOA, false), Via::Udp).await;
    let RData::SOA(soa) = &reply.answers[0].data else {
        panic!()
    };
    soa.serial
}

#[tokio::test]
async fn a_changed_registry_is_served_and_the_serial_moves() {
    let server = TestServer::start().await;
    let before = serial(server.addr).await;
    replace_file(
        &server.registry_path(),
        &REGISTRY.replace("name: httpbin", "name: httpbin2"),
    );
    assert!(
        eventually(Duration::from_secs(5), || async {
            rcode(server.addr, "httpbin2.bar.global.").await == ResponseCode::NoError
        })
        .await,
        "the new host is served"
    );
    assert_eq!(
        rcode(server.addr, "httpbin.bar.global.").await,
        ResponseCode::NXDomain
    );
    assert!(
        serial(server.addr).await > before,
        "SOA serial moved (RFC 1982)"
    );
}

#[tokio::test]
async fn an_invalid_registry_leaves_the_last_good_one_serving() {
    let server = TestServer::start().await;
    let path = server.registry_path();
    let good_serial = serial(server.addr).await;
    for bad in [
        "clusters: [\n".to_string(), // broken YAML
        "".to_string(),              // empty
        REGISTRY.replace("exportedFrom: [west]", "exportedFrom: [north]"), // unknown cluster
        REGISTRY.replace("number: 8000", "number: 0"), // bad port
    ] {
        replace_file(&path, &bad);
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(
            rcode(server.addr, "httpbin.bar.global.").await,
            ResponseCode::NoError,
            "after {bad:?}"
        );
        assert_eq!(
            serial(server.addr).await,
            good_serial,
            "nothing was published"
        );
    }
    std::fs::remove_file(&path).unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        rcode(server.addr, "httpbin.bar.global.").await,
        ResponseCode::NoError,
        "after deletion"
    );
}

/// The acceptance test: under query load, the registry file is
/// rewritten in place (a reader may catch it half-written), filled with
/// garbage, emptied, deleted, and restored; no query for a name that stays
/// in the registry ever fails. Bounded: 40 rounds of writes, queries stop
/// when the writer does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_writes_under_load_never_fail_a_known_name() {
    let server = TestServer::with(Options {
        reload_interval: Duration::from_millis(20),
        ..Default::default()
    })
    .await;
    let addr = server.addr;
    let vip = exchange(
        addr,
        &query("httpbin.bar.global.", RecordType::A, false),
        Via::Udp,
    )
    .await
    .answers[0]
        .data
        .clone();

    let done = Arc::new(tokio_util::sync::CancellationToken::new());
    let (asked, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut load = Vec::new();
    for name in ["httpbin.bar.global.", "reviews.default.global."] {
        let (done, asked, failed) = (done.clone(), asked.clone(), failed.clone());
        let vip = vip.clone();
        load.push(tokio::spawn(async move {
            let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let q = query(name, RecordType::A, false).to_vec().unwrap();
            let mut buf = vec![0u8; 4096];
            while !done.is_cancelled() && asked.load(Ordering::Relaxed) < 200_000 {
                socket.send_to(&q, addr).await.unwrap();
                let ok = match tokio::time::timeout(Duration::from_secs(1), socket.recv(&mut buf))
                    .await
                {
                    Ok(Ok(n)) => {
                        let reply = hickory_proto::op::Message::from_vec(&buf[..n]).unwrap();
                        reply.metadata.response_code == ResponseCode::NoError
                            && reply.answers.len() == 1
                            && (name != "httpbin.bar.global." || reply.answers[0].data == vip)
                    }
                    _ => false,
                };
                asked.fetch_add(1, Ordering::Relaxed);
                if !ok {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }

    let path = server.registry_path();
    let cut = REGISTRY.find("  - name: reviews").unwrap() + 20; // inside a service: invalid
    for round in 0..40 {
        // An in-place rewrite: truncate, write the first part, then the rest.
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(&REGISTRY.as_bytes()[..cut]).unwrap();
        f.flush().unwrap();
        f.write_all(&REGISTRY.as_bytes()[cut..]).unwrap();
        drop(f);
        tokio::time::sleep(Duration::from_millis(10)).await;
        match round % 4 {
            0 => std::fs::write(&path, &REGISTRY.as_bytes()[..cut]).unwrap(), // left truncated
            1 => std::fs::write(&path, b"\x00\xff garbage: [").unwrap(),
            2 => std::fs::write(&path, b"").unwrap(),
            _ => std::fs::remove_file(&path).unwrap(),
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    replace_file(&path, REGISTRY);
    tokio::time::sleep(Duration::from_millis(100)).await;
    done.cancel();
    for task in load {
        task.await.unwrap();
    }
    let (asked, failed) = (
        asked.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
    );
    assert!(asked > 100, "the load ran ({asked} queries)");
    assert_eq!(failed, 0, "{failed} of {asked} queries failed");
}

/// A registry of `n` services `s0`..`s{n-1}` in namespace `bar`, each with
/// two ports on lines of their own, so that a cut at any line is valid.
fn blocks(n: usize) -> String {
    let mut text = String::from(
        "clusters:\n  - name: west\n    gateways: [{address: 192.0.2.1}]\nservices:\n",
    );
    for i in 0..n {
        text.push_str(&format!(
            "  - name: s{i}\n    namespace: bar\n    exportedFrom: [west]\n    ports:\n      - {{name: http, number: 80, protocol: HTTP}}\n      - {{name: grpc, number: 90, protocol: GRPC}}\n"
        ));
    }
    text
}

/// How a probe of the last service went: its A record, and the SRV record
/// of its last port.
async fn last_service_whole(addr: SocketAddr, last: usize) -> bool {
    let a = exchange(
        addr,
        &query(&format!("s{last}.bar.global."), RecordType::A, false),
        Via::Udp,
    )
    .await;
    let srv = exchange(
        addr,
        &query(
            &format!("_grpc._tcp.s{last}.bar.global."),
            RecordType::SRV,
            false,
        ),
        Via::Udp,
    )
    .await;
    a.metadata.response_code == ResponseCode::NoError
        && a.answers.len() == 1
        && srv.metadata.response_code == ResponseCode::NoError
        && srv.answers.len() == 1
}

/// Issue 25: an in-place writer (curl, scp, a pipeline) that stalls at a
/// line boundary leaves a valid, shorter registry; cut after 5, 6 or 8 of
/// 10 services, the brake (which holds only removals of more than half)
/// let it through and a cut name answered NXDOMAIN for as long as the
/// stall lasted, cached downstream. Removed ports were not counted at all.
/// Now the file is cut after every service and after every first port, in
/// place, and stalls there longer than the poll and settle-to-read waits:
/// the last service and its last port answer all the while, and the
/// complete file (here with one more service) is served once written.
#[tokio::test]
async fn a_stalled_in_place_writer_never_publishes_its_prefix() {
    const N: usize = 6;
    let full = blocks(N);
    let server = TestServer::with(Options {
        registry: Some(full.clone()),
        ..Options::default()
    })
    .await;
    let path = server.registry_path();
    assert!(last_service_whole(server.addr, N - 1).await);
    // Every line boundary that ends a service or its first port.
    let cuts: Vec<usize> = full
        .match_indices("\n")
        .map(|(i, _)| i + 1)
        .filter(|&i| {
            let rest = &full[i..];
            rest.starts_with("  - name: s") || rest.starts_with("      - {name: grpc")
        })
        .collect();
    assert_eq!(cuts.len(), 2 * N);
    for (round, &cut) in cuts.iter().enumerate() {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        file.write_all(&full.as_bytes()[..cut]).unwrap();
        file.flush().unwrap();
        // The writer stalls: the server polls every 20 ms and reads a
        // version unchanged for one poll, so this is 15 chances to publish.
        let stalled = tokio::time::Instant::now();
        while stalled.elapsed() < Duration::from_millis(300) {
            assert!(
                last_service_whole(server.addr, N - 1).await,
                "cut {round} at byte {cut}: a cut name or port went missing"
            );
        }
        file.write_all(&full.as_bytes()[cut..]).unwrap();
        drop(file);
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    // The complete file, one more service in it, written in place: served
    // at once (it removes nothing), not after the settle window.
    std::fs::write(&path, blocks(N + 1)).unwrap();
    assert!(
        eventually(Duration::from_secs(2), || async {
            rcode(server.addr, &format!("s{N}.bar.global.")).await == ResponseCode::NoError
        })
        .await,
        "the complete file is served once written"
    );
}
