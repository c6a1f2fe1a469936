//! The manifests against the real API server: every kustomization builds
//! and passes a server-side dry run, the sidecar patch applies to an
//! istiocoredns Deployment of the shape Istio 1.7 shipped, and installing
//! again over objects someone edited succeeds.

use std::path::{Path, PathBuf};

use futures::FutureExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};

use crate::cluster::{Installed, MANAGER};
use crate::suite::{NAMESPACE, SE_NAMESPACE, Suite};

pub const TESTS: [(&str, crate::Test); 3] = [
    (
        "manifests::every_kustomization_builds_and_passes_a_server_side_dry_run",
        |s| every_kustomization_passes_a_dry_run(s).boxed(),
    ),
    (
        "manifests::the_sidecar_patch_applies_to_an_istiocoredns_deployment",
        |s| the_sidecar_patch_applies(s).boxed(),
    ),
    (
        "manifests::installing_over_edited_objects_takes_them_back",
        |s| installing_over_edited_objects(s).boxed(),
    ),
];

/// Every directory under `manifests/` with a kustomization.yaml.
fn kustomizations(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(kustomizations(&path));
        } else if path.file_name().is_some_and(|n| n == "kustomization.yaml") {
            found.push(dir.to_path_buf());
        }
    }
    found.sort();
    found
}

/// `kubectl kustomize DIR | kubectl apply --server-side --dry-run=server`
/// for each kustomization (the base included), and the sidecar variant's
/// plain files: a manifest the API server would refuse fails the test.
async fn every_kustomization_passes_a_dry_run(suite: &Suite) {
    let manifests = suite.env.repo.join("manifests");
    let dirs = kustomizations(&manifests);
    let names: Vec<String> = dirs
        .iter()
        .map(|d| d.strip_prefix(&manifests).unwrap().display().to_string())
        .collect();
    for expected in ["", "base", "file-mode", "drop-in"] {
        assert!(
            names.iter().any(|n| n == expected),
            "no kustomization {expected:?} in {names:?}"
        );
    }
    for dir in &dirs {
        let built = suite
            .env
            .kubectl(&["kustomize", &dir.to_string_lossy()], None)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        dry_run(suite, &dir.display().to_string(), &built);
    }
    for file in ["registry.yaml", "corefile.yaml"] {
        let text = std::fs::read_to_string(manifests.join("sidecar").join(file)).unwrap();
        dry_run(suite, &format!("sidecar/{file}"), &text);
    }
}

/// `kubectl apply --server-side --dry-run=server` of `text` as an admin
/// (the chart's tests share it); a refusal fails the test, naming `what`.
pub fn dry_run(suite: &Suite, what: &str, text: &str) {
    let apply = [
        "apply",
        "--server-side",
        "--dry-run=server",
        "--force-conflicts",
        "--field-manager",
        MANAGER,
        "-f",
        "-",
    ];
    suite
        .env
        .kubectl(&apply, Some(text))
        .unwrap_or_else(|e| panic!("{what}: {e}"));
}

/// The istiocoredns Deployment as Istio 1.1–1.7 installed it (CoreDNS and
/// the plugin in one pod); the sidecar README's `kubectl patch` must take.
const ISTIOCOREDNS: &str = r#"{
  "apiVersion": "apps/v1", "kind": "Deployment",
  "metadata": {"name": "istiocoredns", "namespace": "istio-system"},
  "spec": {
    "selector": {"matchLabels": {"app": "istiocoredns"}},
    "template": {
      "metadata": {"labels": {"app": "istiocoredns"}},
      "spec": {
        "containers": [
          {"name": "coredns", "image": "coredns/coredns:1.6.2",
           "args": ["-conf", "/etc/coredns/Corefile"]},
          {"name": "istio-coredns-plugin", "image": "istio/coredns-plugin:0.2-istio-1.1",
           "command": ["/usr/local/bin/plugin"]}
        ]
      }
    }
  }
}"#;

async fn the_sidecar_patch_applies(suite: &Suite) {
    let client = suite.admin().await;
    let deployment: serde_json::Value = serde_json::from_str(ISTIOCOREDNS).unwrap();
    let mut installed = Installed::default();
    installed
        .apply(&client, std::slice::from_ref(&deployment))
        .await
        .unwrap();
    let patch = suite
        .env
        .repo
        .join("manifests/sidecar/istiocoredns-patch.yaml");
    let result = suite.env.kubectl(
        &[
            "-n",
            SE_NAMESPACE,
            "patch",
            "deployment",
            "istiocoredns",
            "--dry-run=server",
            "-o",
            "json",
            "--patch-file",
            &patch.to_string_lossy(),
        ],
        None,
    );
    installed.remove(&client).await.unwrap();
    let patched: serde_json::Value = serde_json::from_str(&result.unwrap()).unwrap();
    let mut containers: Vec<&str> = patched["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    containers.sort();
    assert_eq!(
        containers,
        ["coredns", "globaldns"],
        "the plugin gives way to globaldns"
    );
}

/// Someone edits an installed object (here the cluster name in the
/// ConfigMap, with kubectl's own field manager); installing again applies
/// with `force` and takes the field back instead of failing with a 409.
async fn installing_over_edited_objects(suite: &Suite) {
    let client = suite.admin().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), NAMESPACE);
    let edit = serde_json::json!({"data": {"cluster": "edited-by-hand"}});
    api.patch(
        "globaldns-config",
        &PatchParams::default(),
        &Patch::Merge(&edit),
    )
    .await
    .unwrap();
    let shipped = crate::cluster::config_map_data(&suite.docs, "globaldns-config");
    // The same call the suite's set-up makes.
    let mut again = Installed::default();
    again.apply(&client, &suite.docs).await.unwrap();
    assert!(
        again.created.is_empty(),
        "created anew: {:?}",
        again.created
    );
    let now = api.get("globaldns-config").await.unwrap();
    assert_eq!(
        now.data.unwrap()["cluster"],
        shipped["cluster"],
        "the edit was not taken back"
    );
}
