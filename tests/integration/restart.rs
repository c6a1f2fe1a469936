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

/// The SOA serial a server answers for `zone`.
async fn served_serial(addr: SocketAddr, zone: &str) -> u32 {
    let reply = exchange(addr, &query(zone, RecordType::SOA, false), Via::Udp).await;
    match reply.answers.first().map(|r| &r.data) {
        Some(RData::SOA(soa)) => soa.serial,
        other => panic!("no SOA for {zone}: {other:?}"),
    }
}

/// `globaldns zonefile` of the server's registry with `extra` flags: its
/// output.
fn zonefile(server: &TestServer, extra: &[&str]) -> String {
    let out = crate::support::globaldns()
        .args(["zonefile", "--registry"])
        .arg(server.registry_path())
        .args(["--ns-address", "192.0.2.53"])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn serial_of(master: &str) -> u32 {
    let soa = master.lines().find(|l| l.contains(" IN SOA ")).unwrap();
    soa.split_whitespace().nth(6).unwrap().parse().unwrap()
}

/// Issue 25: `zonefile`'s SOA serial was the current second: two different
/// registries printed within one second got the same one (a secondary of
/// the printed zone kept the old zone), and it was not the serial the
/// server serves for the same data. With the server's state directory it
/// now prints the served serial; with `--previous` it follows the content.
#[tokio::test]
async fn zonefile_serials_follow_the_content_and_the_server() {
    let server = TestServer::start().await;
    let state = server.dir.path().join("state");
    assert!(
        eventually(Duration::from_secs(10), || {
            let state = state.clone();
            async move { state.join("last-good.json").exists() }
        })
        .await,
        "the server wrote its last-known-good registry"
    );
    let served = served_serial(server.addr, "global.").await;
    // A second later, so that the clock's serial is not the served one.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let state_flag = state.to_string_lossy().to_string();
    let printed = zonefile(&server, &["--state-dir", &state_flag]);
    assert_eq!(serial_of(&printed), served, "{printed}");

    // Printed again with nothing changed: the same serial, whatever the
    // clock says; then a change in the same second gets a greater one.
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first.zone");
    std::fs::write(&first, &printed).unwrap();
    let first_flag = first.to_string_lossy().to_string();
    let again = zonefile(
        &server,
        &["--state-dir", &state_flag, "--previous", &first_flag],
    );
    assert_eq!(serial_of(&again), served);
    replace_file(
        &server.registry_path(),
        &REGISTRY.replace("name: reviews", "name: ratings"),
    );
    let changed = zonefile(&server, &["--previous", &first_flag]);
    assert!(serial_of(&changed) > served, "{changed}");
    assert!(changed.contains("ratings.default.global."));
    let bad = crate::support::globaldns()
        .args(["zonefile", "--registry"])
        .arg(server.registry_path())
        .args(["--previous", "/dev/null"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr)
            .contains("--previous /dev/null: no `; globaldns zonefile"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}
