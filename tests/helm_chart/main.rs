//! The Helm chart (`charts/globaldns`) installs what the kustomizations
//! install: for each variant, the real `helm template` with that variant's
//! values file (`charts/globaldns/ci/`) and `kubectl kustomize` on the
//! matching kustomization give the same set of objects (apiVersion, kind,
//! namespace, name, and every field), and `helm lint --strict` passes with
//! every values file.
//!
//! The chart adds none of Helm's conventional labels (`helm.sh/chart`,
//! `app.kubernetes.io/managed-by`, `app.kubernetes.io/instance`, ...): the
//! objects are the kustomize ones, so the comparison ignores nothing. The
//! differences there are, each asserted by name below: the Namespace object
//! only with `createNamespace` (Helm makes its release namespace), and
//! drop-in mode's `--serve-service-entries`, which the chart adds and the
//! kustomize user adds by hand. The PrometheusRule, off by default, is
//! compared with manifests/monitoring/prometheusrule.yaml. Numbers compare
//! by value (`0` and `0.0` are one JSON number).
//!
//! `cargo test` leaves this suite out (it needs Helm, which is not in the
//! repository, and kubectl); `.ci/run` builds the pinned Helm
//! (`conformance/helm/build.sh`) and runs it:
//! `GLOBALDNS_HELM=$(conformance/helm/build.sh) cargo test --test helm_chart`.
//! Without `GLOBALDNS_HELM`, every test fails: it is never skipped.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

mod compare;

use compare::assert_same_objects;

/// The release namespace, the kustomizations' namespace.
const NAMESPACE: &str = "globaldns";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn chart() -> PathBuf {
    repo().join("charts/globaldns")
}

/// The `helm` binary `GLOBALDNS_HELM` names; a test without it fails.
fn helm() -> PathBuf {
    let path = std::env::var_os("GLOBALDNS_HELM")
        .map(PathBuf::from)
        .expect(
            "GLOBALDNS_HELM must name a helm binary (.ci/run builds the pinned one: \
         conformance/helm/build.sh prints its path)",
        );
    assert!(
        path.is_file(),
        "GLOBALDNS_HELM={} is not a file",
        path.display()
    );
    path
}

/// Runs `program args`; its standard output, or a panic with its standard
/// error.
fn run(program: &Path, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    assert!(
        out.status.success(),
        "{} {}: {}",
        program.display(),
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn documents(text: &str, what: &str) -> Vec<Value> {
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(text).unwrap_or_else(|e| panic!("{what}: {e}"));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

/// `helm template globaldns charts/globaldns -n globaldns` with the values
/// files (relative to the chart) and `--set` arguments given.
fn helm_template(values: &[&str], set: &[&str]) -> Vec<Value> {
    let chart = chart();
    let mut args = vec![
        "template".to_string(),
        "globaldns".to_string(),
        chart.display().to_string(),
        "--namespace".to_string(),
        NAMESPACE.to_string(),
    ];
    for file in values {
        args.push("--values".to_string());
        args.push(chart.join(file).display().to_string());
    }
    for s in set {
        args.push("--set".to_string());
        args.push(s.to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    documents(
        &run(&helm(), &args),
        &format!("helm template {values:?} {set:?}"),
    )
}

/// `kubectl kustomize manifests/<dir>`.
fn kustomize(dir: &str) -> Vec<Value> {
    let path = repo().join("manifests").join(dir);
    let text = run(
        Path::new("kubectl"),
        &["kustomize", &path.to_string_lossy()],
    );
    documents(&text, &format!("kubectl kustomize manifests/{dir}"))
}

fn is_namespace(doc: &Value) -> bool {
    doc["kind"] == "Namespace"
}

#[test]
fn the_defaults_render_manifests_but_the_namespace() {
    let mut kustomized = kustomize("");
    let before = kustomized.len();
    kustomized.retain(|d| !is_namespace(d));
    assert_eq!(before - 1, kustomized.len(), "manifests/ has one Namespace");
    assert_same_objects("defaults", kustomized, helm_template(&[], &[]));
}

#[test]
fn the_kubernetes_values_render_manifests() {
    assert_same_objects(
        "ci/kubernetes-values.yaml",
        kustomize(""),
        helm_template(&["ci/kubernetes-values.yaml"], &[]),
    );
}

#[test]
fn the_file_mode_values_render_manifests_file_mode() {
    assert_same_objects(
        "ci/file-mode-values.yaml",
        kustomize("file-mode"),
        helm_template(&["ci/file-mode-values.yaml"], &[]),
    );
}

/// manifests/ and manifests/drop-in together, with the one flag the
/// kustomize user adds by hand.
#[test]
fn the_drop_in_values_render_manifests_and_drop_in_with_the_flag() {
    let mut kustomized = kustomize("");
    kustomized.extend(kustomize("drop-in"));
    let deployment = kustomized
        .iter_mut()
        .find(|d| d["kind"] == "Deployment")
        .expect("manifests/ has the Deployment");
    deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array_mut()
        .expect("the container's args")
        .push("--serve-service-entries".into());
    assert_same_objects(
        "ci/drop-in-values.yaml",
        kustomized,
        helm_template(&["ci/drop-in-values.yaml"], &[]),
    );
}

/// The alerting rules: `manifests/monitoring/prometheusrule.yaml` (a file,
/// not a kustomization) beside manifests/; more labels for a Prometheus'
/// ruleSelector are added to the chart's.
#[test]
fn the_prometheus_rule_values_render_manifests_and_the_rule() {
    let mut kustomized = kustomize("");
    kustomized.retain(|d| !is_namespace(d));
    let path = repo().join("manifests/monitoring/prometheusrule.yaml");
    let rule = std::fs::read_to_string(&path).unwrap();
    kustomized.extend(documents(&rule, "manifests/monitoring/prometheusrule.yaml"));
    assert_same_objects(
        "prometheusRule.enabled=true",
        kustomized,
        helm_template(&[], &["prometheusRule.enabled=true"]),
    );
    let labelled = helm_template(
        &[],
        &[
            "prometheusRule.enabled=true",
            "prometheusRule.labels.release=prom",
        ],
    );
    let rule = labelled
        .iter()
        .find(|d| d["kind"] == "PrometheusRule")
        .expect("the rule");
    assert_eq!(
        rule["metadata"]["labels"],
        serde_json::json!({"app.kubernetes.io/name": "globaldns", "release": "prom"})
    );
}

/// Without the peer reader: its ServiceAccount, Role and RoleBinding are
/// gone, and so is its subject in globaldns-mcs; the rest is untouched.
#[test]
fn without_the_peer_reader_its_account_and_grants_are_gone() {
    let mut kustomized: Vec<Value> = kustomize("")
        .into_iter()
        .filter(|d| !is_namespace(d) && d["metadata"]["name"] != "globaldns-reader")
        .collect();
    let binding = kustomized
        .iter_mut()
        .find(|d| d["kind"] == "ClusterRoleBinding" && d["metadata"]["name"] == "globaldns-mcs")
        .expect("manifests/ binds globaldns-mcs");
    binding["subjects"]
        .as_array_mut()
        .unwrap()
        .retain(|s| s["name"] != "globaldns-reader");
    assert_same_objects(
        "peerReader.enabled=false",
        kustomized,
        helm_template(&[], &["peerReader.enabled=false"]),
    );
}

/// The container of the one Deployment in `docs`.
fn container(docs: &[Value]) -> &Value {
    let deployment = docs
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("a Deployment");
    &deployment["spec"]["template"]["spec"]["containers"][0]
}

fn args(docs: &[Value]) -> Vec<&str> {
    container(docs)["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect()
}

/// The values Istio's charts name the same way reach the objects they
/// name: hub and tag the image, istioNamespace the Istio objects' Role and
/// the flag, clusterName the ConfigMap; zones and extraArgs become flags.
#[test]
fn the_istio_style_values_reach_their_objects() {
    let docs = helm_template(
        &[],
        &[
            "global.hub=registry.example.com/mesh",
            "global.tag=0.2.0",
            "global.istioNamespace=istio-config",
            "global.multiCluster.clusterName=west",
            "zones={global,region}",
            "extraArgs={--destination-rules}",
            "replicaCount=3",
        ],
    );
    assert_eq!(
        container(&docs)["image"],
        "registry.example.com/mesh/globaldns:0.2.0"
    );
    let tail = args(&docs)[7..].to_vec();
    assert_eq!(
        tail,
        [
            "--service-entry-namespace=istio-config",
            "--zone=global",
            "--zone=region",
            "--destination-rules"
        ]
    );
    let istio_roles: Vec<&str> = docs
        .iter()
        .filter(|d| d["metadata"]["namespace"] == "istio-config")
        .map(|d| d["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        istio_roles,
        ["globaldns-serviceentries", "globaldns-serviceentries"],
        "the Role and RoleBinding for the Istio objects"
    );
    let config = docs
        .iter()
        .find(|d| d["metadata"]["name"] == "globaldns-config")
        .unwrap();
    assert_eq!(config["data"]["cluster"], "west");
    let deployment = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    assert_eq!(deployment["spec"]["replicas"], 3);
    // The component's own tag wins over the global one; a full reference
    // is taken whole.
    let own = helm_template(&[], &["global.tag=0.2.0", "tag=0.3.0"]);
    assert_eq!(container(&own)["image"], "globaldns:0.3.0");
    let whole = helm_template(&[], &["image=registry.example.com/dns@sha256:00"]);
    assert_eq!(
        container(&whole)["image"],
        "registry.example.com/dns@sha256:00"
    );
}

/// `helm template` with `set`; its standard error when it fails, else a
/// panic.
fn template_error(set: &[&str]) -> String {
    let chart = chart();
    let mut args = vec!["template", "globaldns", chart.to_str().unwrap()];
    for s in set {
        args.extend(["--set", s]);
    }
    let out = Command::new(helm()).args(&args).output().unwrap();
    assert!(!out.status.success(), "helm template {set:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// values.schema.json refuses a misspelt value, and the chart an unknown
/// registry source or file mode without a file, each naming what is wrong.
#[test]
fn wrong_values_are_refused_with_their_name() {
    let cases = [
        (&["peerReader.enable=false"][..], "enable"),
        (&["registry.source=etcd"][..], "source"),
        (&["registry.source=file"][..], "registry.file"),
        (&["extraArgs={serve}"][..], "extraArgs"),
    ];
    for (set, named) in cases {
        let error = template_error(set);
        assert!(error.contains(named), "{set:?}: {error}");
    }
}

/// `helm lint --strict` with the defaults, with each values file in `ci/`
/// (all of them: a new file is linted without being listed here), and
/// with the PrometheusRule (in no values file: the end-to-end suite
/// dry-runs each, and its API server has no Prometheus Operator CRDs).
#[test]
fn the_chart_lints_strict_with_every_values_file() {
    let chart = chart();
    let mut files: Vec<PathBuf> = std::fs::read_dir(chart.join("ci"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 4, "ci/ holds the variants: {files:?}");
    let chart = chart.to_string_lossy();
    let mut runs = vec![vec!["lint", "--strict", "--namespace", NAMESPACE, &chart]];
    for file in &files {
        let mut args = runs[0].clone();
        args.extend(["--values", file.to_str().unwrap()]);
        runs.push(args);
    }
    let mut args = runs[0].clone();
    args.extend(["--set", "prometheusRule.enabled=true"]);
    runs.push(args);
    for args in runs {
        let out = run(&helm(), &args);
        assert!(
            out.contains("1 chart(s) linted, 0 chart(s) failed"),
            "{out}"
        );
    }
}
