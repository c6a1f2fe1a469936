//! The shrink brake and the file watcher's maximum wait (design §2): a
//! writer that stalls half-way never gets its prefix published; a large
//! removal that stays is published after the hold window; a file that keeps
//! changing is still read.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use globaldns::registry::brake::BrakeConfig;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::admin::get;
use crate::support::{Options, TestServer, Via, eventually, exchange, query, replace_file};

const CLUSTERS: &str =
    "clusters:\n  - name: west\n    gateways: [{address: 192.0.2.1}]\nservices:\n";

/// One service a line, `s<i>.ns.global`, for `i` in `range`.
fn services(range: std::ops::Range<usize>) -> String {
    range
        .map(|i| format!("  - {{name: s{i}, namespace: ns, exportedFrom: [west], ports: [{{name: http, number: 80, protocol: HTTP}}]}}\n"))
        .collect()
}

async fn rcode(addr: SocketAddr, name: &str) -> ResponseCode {
    let q = query(name, RecordType::A, false);
    exchange(addr, &q, Via::Udp).await.metadata.response_code
}

async fn server(hold: Duration) -> TestServer {
    TestServer::with(Options {
        registry: Some(format!("{CLUSTERS}{}", services(0..20))),
        admin: Some("127.0.0.1:0".parse().unwrap()),
        brake: BrakeConfig { share: 0.5, hold },
        // An in-place rewrite that stalls longer than this goes on to the
        // brake, which these tests are about.
        in_place_settle: Duration::from_millis(100),
        ..Default::default()
    })
    .await
}

/// design §2: a writer that rewrites the file in place and stalls after
/// the first 4 of 20 services, for far longer than the settle window, gets
/// that valid prefix held, not published: every query for a service in the
/// second half is answered NOERROR throughout, the hold is visible in the
/// metric and in explain, and the completed file ends the hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_writer_never_gets_its_prefix_published() {
    let server = server(Duration::from_secs(30)).await;
    let addr = server.addr;
    let admin = server.running().admin.unwrap();
    let done = tokio_util::sync::CancellationToken::new();
    let failed = Arc::new(AtomicUsize::new(0));
    let asked = Arc::new(AtomicUsize::new(0));
    let load = {
        let (done, failed, asked) = (done.clone(), failed.clone(), asked.clone());
        tokio::spawn(async move {
            while !done.is_cancelled() {
                if rcode(addr, "s19.ns.global.").await != ResponseCode::NoError {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                asked.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };

    let mut file = std::fs::File::create(server.registry_path()).unwrap();
    file.write_all(format!("{CLUSTERS}{}", services(0..4)).as_bytes())
        .unwrap();
    file.flush().unwrap();
    // Stalled: the prefix settles (20 ms polls) and is read, then held.
    assert!(
        eventually(Duration::from_secs(3), || async {
            get(admin, "/metrics")
                .await
                .1
                .contains("globaldns_registry_held_back 16")
        })
        .await,
        "the prefix is held: it would remove 16 of 20 services"
    );
    let (_, explained) = get(admin, "/explain?name=s19.ns.global").await;
    assert!(
        explained.contains("registry reload held back")
            && explained.contains("remove 16 of the 20"),
        "{explained}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    file.write_all(services(4..20).as_bytes()).unwrap();
    drop(file);
    assert!(
        eventually(Duration::from_secs(3), || async {
            get(admin, "/metrics")
                .await
                .1
                .contains("globaldns_registry_held_back 0")
        })
        .await,
        "the whole file ends the hold"
    );
    done.cancel();
    load.await.unwrap();
    let (asked, failed) = (
        asked.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
    );
    assert!(asked > 20, "the queries ran ({asked})");
    assert_eq!(failed, 0, "{failed} of {asked} queries for s19 failed");
    assert_eq!(rcode(addr, "s19.ns.global.").await, ResponseCode::NoError);
}

/// design §2: a large removal is not refused, only delayed: once the same
/// version has stayed for the hold window it is published. A small edit
/// meanwhile passes at once.
#[tokio::test]
async fn a_large_removal_that_stays_is_published_after_the_hold() {
    let server = server(Duration::from_millis(600)).await;
    let addr = server.addr;
    replace_file(
        &server.registry_path(),
        &format!("{CLUSTERS}{}", services(0..2)),
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(
        rcode(addr, "s19.ns.global.").await,
        ResponseCode::NoError,
        "held"
    );
    assert!(
        eventually(Duration::from_secs(5), || async {
            rcode(addr, "s19.ns.global.").await == ResponseCode::NXDomain
        })
        .await,
        "published after the hold window"
    );
    assert_eq!(rcode(addr, "s1.ns.global.").await, ResponseCode::NoError);
    // An addition to the now small registry is an edit like any other.
    replace_file(
        &server.registry_path(),
        &format!("{CLUSTERS}{}", services(0..3)),
    );
    assert!(
        eventually(Duration::from_secs(2), || async {
            rcode(addr, "s2.ns.global.").await == ResponseCode::NoError
        })
        .await,
        "an addition passes the brake"
    );
}

/// The settle window has a maximum: a file replaced every 30 ms, more
/// often than the 100 ms poll, is still read while it keeps changing (the
/// watcher would otherwise wait for it to settle for ever).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_keeps_changing_is_still_read() {
    let server = TestServer::with(Options {
        registry: Some(format!("{CLUSTERS}{}", services(0..20))),
        reload_interval: Duration::from_millis(100),
        ..Default::default()
    })
    .await;
    let addr = server.addr;
    let path = server.registry_path();
    let done = tokio_util::sync::CancellationToken::new();
    let writer = {
        let done = done.clone();
        tokio::spawn(async move {
            for i in 20.. {
                if done.is_cancelled() {
                    return;
                }
                replace_file(&path, &format!("{CLUSTERS}{}", services(0..i)));
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        })
    };
    let read_while_changing = eventually(Duration::from_secs(3), || async {
        rcode(addr, "s21.ns.global.").await == ResponseCode::NoError
    })
    .await;
    let still_writing = !writer.is_finished();
    done.cancel();
    writer.await.unwrap();
    assert!(
        read_while_changing && still_writing,
        "read within 3 s of changes"
    );
}
