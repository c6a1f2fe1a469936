//! The other ways globaldns is installed, run as shipped: file mode (the
//! registry in a ConfigMap, `manifests/file-mode/`) and drop-in mode
//! (hand-written ServiceEntries answered too, `manifests/drop-in/`).

use std::time::Duration;

use futures::FutureExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams};

use crate::cluster::MANAGER;
use crate::process::eventually;
use crate::suite::{NAMESPACE, Suite};

pub const TESTS: [(&str, crate::Test); 2] = [
    (
        "modes::file_mode_serves_and_syncs_the_mounted_registry",
        |s| file_mode(s).boxed(),
    ),
    (
        "modes::drop_in_mode_answers_hand_written_entries_as_the_service_account",
        |s| drop_in(s).boxed(),
    ),
];

/// `kubectl apply -k manifests/file-mode/` (it could never build before:
/// the overlay listed its own parent), then globaldns with the patched
/// Deployment's arguments, its registry file being the ConfigMap's key as
/// the kubelet would mount it.
async fn file_mode(suite: &Suite) {
    let docs = suite.install("file-mode").await;
    serves_the_mounted_registry(suite, &docs).await;
}

/// globaldns as the Deployment of the installed file-mode `docs` runs it
/// (the chart's tests share it): the ConfigMap's registry, mounted, is
/// answered and synced.
pub async fn serves_the_mounted_registry(suite: &Suite, docs: &[serde_json::Value]) {
    let configs: Api<ConfigMap> = Api::namespaced(suite.admin().await, NAMESPACE);
    let mounted = configs.get("globaldns-registry").await.unwrap();
    let registry = &mounted.data.unwrap()["registry.yaml"];
    let dir = suite.dir().join("file-mode-volume");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("registry.yaml");
    std::fs::write(&file, registry).unwrap();
    let (args, _) = crate::process::container(docs, "x", &Default::default());
    let registry_arg = args
        .iter()
        .find(|a| a.starts_with("--registry="))
        .expect("the file-mode Deployment names its registry");
    assert_eq!(registry_arg, "--registry=/etc/globaldns/registry.yaml");
    let remount = format!("--registry={}", file.display());
    let globaldns = suite
        .start(docs, "globaldns-0", "file-mode-state", &[remount.as_str()])
        .await;
    let entries = suite
        .wait_for_entries(&["httpbin-bar-global", "west-httpbin-bar-global"], 30)
        .await;
    let vip = entries["httpbin-bar-global"]["addresses"][0]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    tokio::task::block_in_place(|| {
        eventually(Duration::from_secs(10), "httpbin answers its VIP", || {
            (globaldns.resolve("httpbin.bar.global") == Ok(Some(vip))).then_some(())
        })
    });
}

/// Drop-in mode under `manifests/drop-in/`'s ClusterRole: a ServiceEntry
/// written by hand in another namespace is answered with its address.
async fn drop_in(suite: &Suite) {
    suite.install("drop-in").await;
    answers_hand_written_entries(suite, &suite.docs, &["--serve-service-entries"]).await;
}

/// globaldns as the Deployment of `docs` runs it, with `extra` arguments
/// (the chart's tests share it): a hand-written ServiceEntry in another
/// namespace is answered.
pub async fn answers_hand_written_entries(
    suite: &Suite,
    docs: &[serde_json::Value],
    extra: &[&str],
) {
    suite.mesh_cluster("west", "198.51.100.20").await;
    suite.mesh_cluster("east", "192.0.2.10").await;
    let client = suite.admin().await;
    let hand_written = serde_json::json!({
        "apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
        "metadata": {"name": "legacy-db", "namespace": "default"},
        "spec": {"hosts": ["legacy.db.global"], "addresses": ["240.1.0.1"],
                 "location": "MESH_INTERNAL", "resolution": "STATIC",
                 "ports": [{"name": "tcp", "number": 5432, "protocol": "TCP"}],
                 "endpoints": [{"address": "192.0.2.77"}]},
    });
    let entries =
        globaldns::mesh::sync::service_entries(client.clone(), "default", suite.istio_version);
    entries
        .patch(
            "legacy-db",
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&hand_written),
        )
        .await
        .unwrap();
    let globaldns = suite
        .start(docs, "globaldns-0", "drop-in-state", extra)
        .await;
    let answered = tokio::task::block_in_place(|| {
        eventually(
            Duration::from_secs(20),
            "the hand-written host answers",
            || globaldns.resolve("legacy.db.global").ok().flatten(),
        )
    });
    entries
        .delete("legacy-db", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(answered, "240.1.0.1".parse::<std::net::IpAddr>().unwrap());
}
