//! The Helm chart (`charts/globaldns`) against the real API server, as the
//! kustomize install is checked: every values file's render passes a
//! server-side dry run; applied over the suite's install (which is
//! `kubectl kustomize manifests/`) the chart changes no object, so the two
//! installs never fight; and globaldns runs as the chart's Deployment
//! runs it, as the `globaldns` ServiceAccount under the chart's RBAC, in
//! Kubernetes mode, file mode and drop-in mode. (A real `helm install`:
//! `chart_install`.)
//!
//! The chart is rendered with the real `helm template` (`GLOBALDNS_HELM`;
//! .ci/run builds the pinned one with conformance/helm/build.sh). Without
//! it these tests are ignored, and the suite says so; with it naming no
//! file, the suite does not start.

use futures::FutureExt;
use kube::ResourceExt;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::Value;

use crate::cluster::{Installed, MANAGER, api_for};
use crate::suite::{NAMESPACE, Suite};

pub const TESTS: [(&str, crate::Test); 5] = [
    (
        "chart::every_values_file_renders_and_passes_a_server_side_dry_run",
        |s| every_values_file_passes_a_dry_run(s).boxed(),
    ),
    (
        "chart::the_chart_applied_over_the_kustomize_install_changes_nothing",
        |s| applied_over_the_kustomize_install(s).boxed(),
    ),
    (
        "chart::kubernetes_mode_from_the_chart_syncs_as_the_service_account",
        |s| kubernetes_mode(s).boxed(),
    ),
    (
        "chart::file_mode_from_the_chart_serves_and_syncs_as_the_service_account",
        |s| file_mode(s).boxed(),
    ),
    (
        "chart::drop_in_from_the_chart_answers_hand_written_entries_as_the_service_account",
        |s| drop_in(s).boxed(),
    ),
];

/// Runs `helm args` against the suite's cluster as the admin, its
/// configuration and cache in the test's directory (never under $HOME);
/// standard output, or a panic with standard error.
pub fn helm(suite: &Suite, args: &[&str]) -> String {
    let helm = suite
        .env
        .helm
        .as_ref()
        .expect("the chart tests run with GLOBALDNS_HELM");
    let home = suite.dir().join("helm-home");
    let out = std::process::Command::new(helm)
        .arg("--kubeconfig")
        .arg(&suite.env.kubeconfig)
        .args(args)
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_DATA_HOME", home.join("data"))
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", helm.display()));
    assert!(
        out.status.success(),
        "helm {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn chart_dir(suite: &Suite) -> String {
    suite
        .env
        .repo
        .join("charts/globaldns")
        .display()
        .to_string()
}

/// `helm template globaldns charts/globaldns -n globaldns`, with
/// `charts/globaldns/<values>` when given, as text.
fn render_text(suite: &Suite, values: Option<&str>) -> String {
    let chart = chart_dir(suite);
    let mut args = vec!["template", "globaldns", &chart, "--namespace", NAMESPACE];
    let file = values.map(|v| format!("{chart}/{v}"));
    if let Some(file) = &file {
        args.extend(["--values", file]);
    }
    helm(suite, &args)
}

/// The render as documents.
fn render(suite: &Suite, values: Option<&str>) -> Vec<Value> {
    documents(
        &render_text(suite, values),
        &format!("helm template {values:?}"),
    )
}

pub fn documents(text: &str, what: &str) -> Vec<Value> {
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(text).unwrap_or_else(|e| panic!("{what}: {e}"));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

/// The defaults and each file in `charts/globaldns/ci/`.
async fn every_values_file_passes_a_dry_run(suite: &Suite) {
    let ci = suite.env.repo.join("charts/globaldns/ci");
    let mut files: Vec<String> = std::fs::read_dir(&ci)
        .unwrap()
        .map(|e| format!("ci/{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "the variants' values files: {files:?}");
    crate::manifests::dry_run(suite, "chart defaults", &render_text(suite, None));
    for file in &files {
        crate::manifests::dry_run(suite, file, &render_text(suite, Some(file)));
    }
}

/// The suite installed `kubectl kustomize manifests/` with its field
/// manager; the chart's render of the same install, applied the same way,
/// must leave every object's resourceVersion as it was (a server-side
/// apply that changes nothing writes nothing) and create nothing.
async fn applied_over_the_kustomize_install(suite: &Suite) {
    let client = suite.admin().await;
    // The install as the suite made it, whatever tests before this one
    // installed over it (file mode patches the Deployment).
    let mut again = Installed::default();
    again.apply(&client, &suite.docs).await.unwrap();
    assert!(again.created.is_empty(), "{:?}", again.created);

    let docs = render(suite, Some("ci/kubernetes-values.yaml"));
    assert_eq!(docs.len(), suite.docs.len(), "the same number of objects");
    let params = PatchParams::apply(MANAGER).force();
    let mut changed = Vec::new();
    for doc in &docs {
        let object: DynamicObject = serde_json::from_value(doc.clone()).unwrap();
        let api: Api<DynamicObject> = api_for(&client, &object).await.unwrap();
        let name = object.name_any();
        let what = format!("{} {name}", doc["kind"].as_str().unwrap());
        let before = api
            .get_opt(&name)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{what}: not installed by the suite"));
        let after = api
            .patch(&name, &params, &Patch::Apply(&object))
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        if before.resource_version() != after.resource_version() {
            changed.push(what);
        }
    }
    assert!(
        changed.is_empty(),
        "the chart changed objects of the kustomize install: {changed:?}"
    );
}

/// The chart's Deployment, as its ServiceAccount, syncs the registry
/// resources into ServiceEntries and answers them.
async fn kubernetes_mode(suite: &Suite) {
    let docs = render(suite, None);
    suite.mesh_cluster("east", "192.0.2.10").await;
    suite.mesh_cluster("west", "198.51.100.20").await;
    suite.exported_service("httpbin", "bar", &["west"]).await;
    let globaldns = suite.start(&docs, "globaldns-0", "chart-state", &[]).await;
    let entries = suite
        .wait_for_entries(&["httpbin-bar-global", "west-httpbin-bar-global"], 30)
        .await;
    let vip = entries["httpbin-bar-global"]["addresses"][0]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    tokio::task::block_in_place(|| {
        crate::process::eventually(
            std::time::Duration::from_secs(10),
            "httpbin answers its VIP",
            || (globaldns.resolve("httpbin.bar.global") == Ok(Some(vip))).then_some(()),
        )
    });
}

/// The chart's file-mode render installed (its registry ConfigMap and
/// Deployment), then the checks of `modes::file_mode`; the Kubernetes-mode
/// Deployment is put back afterwards.
async fn file_mode(suite: &Suite) {
    let docs = render(suite, Some("ci/file-mode-values.yaml"));
    let docs = suite.install_docs("the chart's file mode", docs).await;
    crate::modes::serves_the_mounted_registry(suite, &docs).await;
    let mut back = Installed::default();
    back.apply(&suite.admin().await, &suite.docs).await.unwrap();
}

/// The chart's drop-in render installed (its ClusterRole and binding), then
/// the checks of `modes::drop_in`, with the chart's own arguments (which
/// carry `--serve-service-entries`).
async fn drop_in(suite: &Suite) {
    let docs = render(suite, Some("ci/drop-in-values.yaml"));
    let docs = suite.install_docs("the chart's drop-in mode", docs).await;
    let (args, _) = crate::process::container(&docs, "x", &Default::default());
    assert!(
        args.iter().any(|a| a == "--serve-service-entries"),
        "{args:?}"
    );
    crate::modes::answers_hand_written_entries(suite, &docs, &[]).await;
    let mut back = Installed::default();
    back.apply(&suite.admin().await, &suite.docs).await.unwrap();
}
