//! The Multi-Cluster Services face (issue 29), against real API servers
//! with the MCS CRDs of the pinned mcs-api release (`GLOBALDNS_MCS_CRDS`):
//! two clusters federated as the README joins them, exports of both kinds
//! (an ExportedService in west, a ServiceExport in east), and in each
//! cluster one ServiceImport per export with the same ClusterSetIP.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::FutureExt;
use kube::api::ListParams;
use serde_json::{Value, json};

use crate::federation::{West, join_peer, wait_peer_up};
use crate::process::eventually;
use crate::suite::{NAMESPACE, Suite};

pub const TESTS: [(&str, crate::Test); 1] = [(
    "mcs::every_cluster_imports_each_export_with_one_cluster_set_ip_and_says_why_not",
    |s| one_cluster_set_ip(s).boxed(),
)];

/// Waits until the ServiceExport `name` of `suite`'s cluster has the
/// conditions `want` as (type, status, reason); returns their messages.
async fn wait_for_conditions(
    suite: &Suite,
    name: &str,
    want: [(&str, &str, &str); 3],
) -> Vec<String> {
    let api = suite.service_exports().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let export = api.get(name).await.unwrap();
        let conditions = export.data["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let said: Vec<(String, String, String)> = conditions
            .iter()
            .map(|c| {
                let text = |k: &str| c[k].as_str().unwrap_or_default().to_string();
                (text("type"), text("status"), text("reason"))
            })
            .collect();
        let wanted: Vec<(String, String, String)> = want
            .iter()
            .map(|(t, s, r)| (t.to_string(), s.to_string(), r.to_string()))
            .collect();
        if said == wanted {
            return conditions
                .iter()
                .map(|c| c["message"].as_str().unwrap_or_default().to_string())
                .collect();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "ServiceExport {name}: conditions {said:?}, wanted {wanted:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The owned ServiceImports of `suite`'s cluster, by `namespace/name`, as
/// the API server serves them in its storage version.
async fn imports(suite: &Suite) -> BTreeMap<String, Value> {
    let api = suite.service_imports().await;
    let owned = ListParams::default().labels("app.kubernetes.io/managed-by=globaldns");
    let list = api
        .list(&owned)
        .await
        .expect("ServiceImports are served: run with GLOBALDNS_MCS_CRDS (.ci/run sets it)");
    list.items
        .into_iter()
        .map(|o| {
            let key = format!(
                "{}/{}",
                o.metadata.namespace.clone().unwrap_or_default(),
                o.metadata.name.clone().unwrap_or_default()
            );
            (key, serde_json::to_value(&o).unwrap())
        })
        .collect()
}

/// Waits until `suite`'s cluster holds exactly the owned imports `keys`.
async fn wait_for_imports(suite: &Suite, keys: &[&str]) -> BTreeMap<String, Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let found = imports(suite).await;
        if found.keys().map(String::as_str).eq(keys.iter().copied()) {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "ServiceImports {:?}, wanted {keys:?}",
            found.keys().collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Issue 29, item 1 / design §5: west exports three services (an
/// ExportedService each, in `default`), east one (a ServiceExport in
/// `globaldns`), and one more service lives in a namespace neither cluster
/// has. Each cluster holds a ServiceImport per export in the service's own
/// namespace, type ClusterSetIP, `ips` the VIP both clusters answer for
/// `<name>.<namespace>.svc.clusterset.local` (`--clusterset-zone`), the
/// ports, the exporting cluster in the status; the one without a namespace
/// is skipped, not failed. An export withdrawn takes its ServiceImport with
/// it in both clusters.
async fn one_cluster_set_ip(suite: &Suite) {
    let west = West::start(suite).await;
    suite.mesh_cluster("east", "192.0.2.10").await;
    west.suite.mesh_cluster("west", "198.51.100.20").await;
    tokio::task::block_in_place(|| {
        join_peer(west.kubeconfig(), "west", &suite.env.kubeconfig);
        join_peer(&suite.env.kubeconfig, "east", west.kubeconfig());
    });
    // Both serve the MCS zone too: the ClusterSetIP is the address of
    // `<name>.<namespace>.svc.clusterset.local`.
    let zone = ["--clusterset-zone", "clusterset.local"];
    let east_dns = suite
        .start(&suite.docs, "globaldns-0", "state-e", &zone)
        .await;
    let west_dns = west
        .suite
        .start(&west.docs, "globaldns-0", "state-w", &zone)
        .await;
    tokio::task::block_in_place(|| {
        wait_peer_up(&east_dns, "west");
        wait_peer_up(&west_dns, "east");
    });
    for name in ["ratings", "reviews", "details"] {
        west.suite.exported_service(name, "default", &[]).await;
    }
    west.suite.exported_service("lonely", "nowhere", &[]).await;
    suite.mcs_export("productpage", &[("http-web", 9080)]).await;

    let keys = [
        "default/details",
        "default/ratings",
        "default/reviews",
        "globaldns/productpage",
    ];
    let in_east = wait_for_imports(suite, &keys).await;
    let in_west = wait_for_imports(&west.suite, &keys).await;
    for key in keys {
        let (e, w) = (&in_east[key], &in_west[key]);
        assert_eq!(e["spec"], w["spec"], "{key}: the same in both clusters");
        assert_eq!(e["status"], w["status"], "{key}: the same exporters");
        assert_eq!(e["spec"]["type"], "ClusterSetIP", "{key}");
        let (namespace, name) = key.split_once('/').unwrap();
        let host = format!("{name}.{namespace}.svc.clusterset.local");
        for globaldns in [&east_dns, &west_dns] {
            let vip = tokio::task::block_in_place(|| globaldns.resolve(&host))
                .unwrap_or_else(|rcode| panic!("{host}: {rcode:?}"))
                .unwrap_or_else(|| panic!("{host}: no address"));
            assert_eq!(e["spec"]["ips"], json!([vip.to_string()]), "{key}: the VIP");
        }
    }
    assert_eq!(
        in_east["default/ratings"]["spec"]["ports"],
        json!([{"name": "http", "port": 8000, "protocol": "TCP", "appProtocol": "http"}])
    );
    assert_eq!(
        in_east["default/ratings"]["status"]["clusters"],
        json!([{"cluster": "west"}])
    );
    assert_eq!(
        in_west[&format!("{NAMESPACE}/productpage")]["status"]["clusters"],
        json!([{"cluster": "east"}])
    );
    assert_eq!(
        in_west[&format!("{NAMESPACE}/productpage")]["spec"]["ports"][0]["port"],
        9080
    );
    // No namespace `nowhere`: no ServiceImport, and not a failing sync.
    tokio::task::block_in_place(|| {
        for globaldns in [&east_dns, &west_dns] {
            assert_eq!(globaldns.metric("globaldns_sync_failing"), 0.0);
        }
    });

    // Issue 29 (2): the ServiceExports say how they fare. East's is
    // exported; one without a Service is not valid; west exporting the same
    // Service with other ports loses to east's own definition (merge rule
    // 3) and says so.
    wait_for_conditions(
        suite,
        "productpage",
        [
            ("Valid", "True", "Valid"),
            ("Ready", "True", "Exported"),
            ("Conflict", "False", "NoConflicts"),
        ],
    )
    .await;
    suite.service_export("orphan").await;
    let messages = wait_for_conditions(
        suite,
        "orphan",
        [
            ("Valid", "False", "NoService"),
            ("Ready", "False", "Failed"),
            ("Conflict", "False", "NoConflicts"),
        ],
    )
    .await;
    assert!(
        messages[0].contains("no Service globaldns/orphan"),
        "{messages:?}"
    );
    // explain says the same.
    let (_, explained) =
        tokio::task::block_in_place(|| east_dns.admin_get("/explain?name=orphan.globaldns.global"));
    assert!(
        explained.contains("export left out: ServiceExport globaldns/orphan: no Service"),
        "{explained}"
    );
    // And doctor names it, while the imports pass.
    let (findings, _) = tokio::task::block_in_place(|| crate::doctor::doctor(suite));
    let of = |check: &str| -> Vec<(String, String, String)> {
        findings
            .iter()
            .filter(|f| f["check"] == check)
            .map(|f| {
                let text = |k: &str| f[k].as_str().unwrap_or_default().to_string();
                (text("status"), text("object"), text("message"))
            })
            .collect()
    };
    let exports = of("mcs.service-exports");
    assert_eq!(exports.len(), 1, "{exports:?}");
    assert_eq!(
        (exports[0].0.as_str(), exports[0].1.as_str()),
        ("warn", "ServiceExport globaldns/orphan"),
        "{exports:?}"
    );
    assert!(exports[0].2.contains("NoService"), "{exports:?}");
    let imports = of("mcs.service-imports");
    assert_eq!(imports.len(), 1, "{imports:?}");
    assert_eq!(imports[0].0, "pass", "{imports:?}");
    west.suite
        .mcs_export("productpage", &[("http-web", 9999)])
        .await;
    let messages = wait_for_conditions(
        &west.suite,
        "productpage",
        [
            ("Valid", "True", "Valid"),
            ("Ready", "False", "Failed"),
            ("Conflict", "True", "PortConflict"),
        ],
    )
    .await;
    assert!(
        messages[2].contains("http-web/9080, exported by east"),
        "{messages:?}"
    );

    // Withdrawn in west: gone from both clusters.
    west.suite
        .delete_registry_object("ExportedService", "ratings-default")
        .await;
    let keys = [
        "default/details",
        "default/reviews",
        "globaldns/productpage",
    ];
    wait_for_imports(suite, &keys).await;
    wait_for_imports(&west.suite, &keys).await;
    tokio::task::block_in_place(|| {
        eventually(Duration::from_secs(10), "both syncs settle", || {
            [&east_dns, &west_dns]
                .iter()
                .all(|g| g.metric("globaldns_sync_failing") == 0.0)
                .then_some(())
        });
    });
}
