//! The ServiceEntry sync and the registry watch, run as the Deployment
//! runs them: the `globaldns` ServiceAccount, the shipped RBAC, the
//! container's arguments.

use std::net::IpAddr;
use std::time::Duration;

use futures::FutureExt;
use serde_json::Value;

use crate::process::{Globaldns, eventually};
use crate::suite::Suite;

pub const TESTS: [(&str, crate::Test); 1] = [(
    "sync::service_entries_are_created_updated_and_pruned_as_the_service_account",
    |s| created_updated_and_pruned(s).boxed(),
)];

/// The first address of a ServiceEntry spec.
fn vip(spec: &Value) -> IpAddr {
    spec["addresses"][0]
        .as_str()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {spec}"))
}

/// Waits until `globaldns` answers `host` with `want`.
fn answers(globaldns: &Globaldns, host: &str, want: IpAddr) {
    eventually(
        Duration::from_secs(30),
        &format!("{host} answers {want}"),
        || (globaldns.resolve(host) == Ok(Some(want))).then_some(()),
    );
}

/// The shipped RBAC lets the sync *create* ServiceEntries (server-side
/// apply of a new object is a create), update them and prune them; the DNS
/// answers and the ServiceEntries carry the same VIPs; nothing failed.
async fn created_updated_and_pruned(suite: &Suite) {
    suite.mesh_cluster("east", "192.0.2.10").await;
    suite.mesh_cluster("west", "198.51.100.20").await;
    suite.exported_service("httpbin", "bar", &["west"]).await;
    suite.exported_service("sleep", "foo", &["east"]).await;
    let globaldns = suite
        .start(&suite.docs, "globaldns-0", "state-0", &[])
        .await;

    let entries = suite
        .wait_for_entries(&["httpbin-bar-global", "sleep-foo-global"], 30)
        .await;
    let httpbin = &entries["httpbin-bar-global"];
    assert_eq!(
        httpbin["endpoints"][0]["address"], "198.51.100.20",
        "{httpbin}"
    );
    tokio::task::block_in_place(|| {
        answers(&globaldns, "httpbin.bar.global", vip(httpbin));
        answers(
            &globaldns,
            "sleep.foo.global",
            vip(&entries["sleep-foo-global"]),
        );
    });

    // An update: a second port reaches the ServiceEntry.
    suite
        .exported_service_with_ports(
            "httpbin",
            "bar",
            &["west"],
            &[("http", 8000), ("grpc", 9000)],
        )
        .await;
    let mut tries = 0;
    loop {
        let now = suite.owned_entries().await;
        if now["httpbin-bar-global"]["ports"].as_array().map(Vec::len) == Some(2) {
            assert_eq!(
                vip(&now["httpbin-bar-global"]),
                vip(httpbin),
                "the VIP moved"
            );
            break;
        }
        tries += 1;
        assert!(tries < 120, "the new port never reached the ServiceEntry");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // A prune: the removed service's ServiceEntry goes.
    suite
        .delete_registry_object("ExportedService", "sleep-foo")
        .await;
    suite.wait_for_entries(&["httpbin-bar-global"], 30).await;

    let failures =
        tokio::task::block_in_place(|| globaldns.metric("globaldns_sync_failures_total"));
    assert_eq!(failures, 0.0, "failed writes:\n{}", globaldns.log());
}
