//! Restarts and edits: the VIPs design §3 promises, and the warm start of
//! design §4.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};

use crate::support::{
    Options, REGISTRY, TestServer, Via, eventually, exchange, query, replace_file,
};

fn brake_off() -> Options {
    let mut options = Options::default();
    options.brake.share = 1.0;
    options
}

const HOSTS: [&str; 3] = [
    "httpbin.bar.global.",
    "reviews.default.global.",
    "dual.default.global.",
];

async fn vips(addr: SocketAddr, hosts: &[&str]) -> BTreeMap<String, Option<RData>> {
    let mut out = BTreeMap::new();
    for host in hosts {
        let reply = exchange(addr, &query(host, RecordType::A, false), Via::Udp).await;
        out.insert(
            host.to_string(),
            reply.answers.first().map(|r| r.data.clone()),
        );
    }
    out
}

#[tokio::test]
async fn a_restart_on_the_same_state_keeps_every_vip() {
    let server = TestServer::start().await;
    let before = vips(server.addr, &HOSTS).await;
    assert!(before.values().all(Option::is_some));
    let dir = server.stop().await;
    let again = TestServer::in_dir(dir, Options::default()).await;
    assert_eq!(vips(again.addr, &HOSTS).await, before);
}

/// Adds, removes and renames: every host that stays keeps its VIP, across
/// the edits and across a restart after them. (The edit removes two of the
/// three services, which the shrink brake would hold: it is off here.)
#[tokio::test]
async fn edits_never_move_a_host_that_stays() {
    let server = TestServer::with(brake_off()).await;
    let before = vips(server.addr, &HOSTS).await;
    let mut extra = String::new();
    for i in 0..50 {
        extra.push_str(&format!(
            "  - {{name: svc{i}, namespace: more, exportedFrom: [east], ports: [{{name: p, number: 80, protocol: HTTP}}]}}\n"
        ));
    }
    // Add 50 services, rename reviews, remove dual.
    let edited = format!(
        "{}{extra}",
        REGISTRY.replace("name: reviews", "name: reviews2")
    );
    let dual_at = edited.find("  - name: dual").unwrap();
    let dual_end = edited[dual_at..].find("  - {name: svc0").unwrap() + dual_at;
    let edited = format!(
        "{}{}",
        &edited[..dual_at],
        &edited[dual_at + (dual_end - dual_at)..]
    );
    replace_file(&server.registry_path(), &edited);
    assert!(
        eventually(Duration::from_secs(5), || async {
            exchange(
                server.addr,
                &query("svc49.more.global.", RecordType::A, false),
                Via::Udp,
            )
            .await
            .metadata
            .response_code
                == ResponseCode::NoError
        })
        .await
    );
    let after = vips(
        server.addr,
        &["httpbin.bar.global.", "reviews2.default.global."],
    )
    .await;
    assert_eq!(
        after["httpbin.bar.global."], before["httpbin.bar.global."],
        "httpbin stayed"
    );
    assert_ne!(
        after["reviews2.default.global."], before["reviews.default.global."],
        "a rename is a new host; the old VIP is in quarantine"
    );
    let gone = exchange(
        server.addr,
        &query("dual.default.global.", RecordType::A, false),
        Via::Udp,
    )
    .await;
    assert_eq!(gone.metadata.response_code, ResponseCode::NXDomain);

    let many: Vec<String> = (0..50).map(|i| format!("svc{i}.more.global.")).collect();
    let names: Vec<&str> = many
        .iter()
        .map(String::as_str)
        .chain(["httpbin.bar.global.", "reviews2.default.global."])
        .collect();
    let edited_vips = vips(server.addr, &names).await;
    let dir = server.stop().await;
    let again = TestServer::in_dir(dir, brake_off()).await;
    assert_eq!(
        vips(again.addr, &names).await,
        edited_vips,
        "same VIPs after a restart"
    );
}

/// design §3: without any state, the same registry gives the same VIPs, so
/// a cluster that loses its state directory renumbers nothing.
#[tokio::test]
async fn an_empty_state_dir_on_the_same_registry_gives_the_same_vips() {
    let one = TestServer::start().await;
    let two = TestServer::start().await;
    assert_eq!(vips(one.addr, &HOSTS).await, vips(two.addr, &HOSTS).await);
}

/// design §4: a server that restarts while its registry is unreadable
/// answers from the last-known-good snapshot, with the same VIPs.
#[tokio::test]
async fn warm_start_answers_from_the_last_good_registry() {
    let server = TestServer::start().await;
    let before = vips(server.addr, &HOSTS).await;
    let dir = server.stop().await;
    std::fs::write(dir.path().join("registry.yaml"), "clusters: [oops").unwrap();
    let again = TestServer::in_dir(dir, Options::default()).await;
    assert_eq!(vips(again.addr, &HOSTS).await, before);
}

async fn serial(addr: SocketAddr) -> u32 {
    let reply = exchange(addr, &query("global.", RecordType::SOA, false), Via::Udp).await;
    let RData::SOA(soa) = &reply.answers[0].data else {
        panic!("{reply:?}")
    };
    soa.serial
}

/// design §4 (RFC 1982 serials): the SOA serial moves when what is served
/// changes, and only then: a restart on an unchanged registry keeps it; a
/// restart on a changed one moves it.
#[tokio::test]
async fn the_serial_survives_a_restart_on_an_unchanged_registry() {
    let server = TestServer::start().await;
    let first = serial(server.addr).await;
    // A second later, a serial taken from the clock would differ.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let dir = server.stop().await;
    let again = TestServer::in_dir(dir, Options::default()).await;
    assert_eq!(serial(again.addr).await, first, "unchanged registry");

    let dir = again.stop().await;
    replace_file(
        &dir.path().join("registry.yaml"),
        &REGISTRY.replace("name: httpbin", "name: httpbin2"),
    );
    let changed = TestServer::in_dir(dir, Options::default()).await;
    assert!(serial(changed.addr).await > first, "changed registry");
}
