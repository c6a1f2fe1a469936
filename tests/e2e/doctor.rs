//! The operator's tools against a real API server: `serve --explain-txt`
//! answering from the cluster's registry and synced entries, and
//! `globaldns doctor`: an install made healthy
//! step by step (the DNS wiring through `stub-config`, the east-west
//! gateway's pod and Service, the network label) passes; then each failure
//! is staged as a broken install would leave it, and `doctor` must name the
//! check and the object.
//!
//! envtest runs no scheduler, kubelet or Deployment controller, so the
//! pods' and the Deployment's status are written by the test, as those
//! would write them; against a real cluster they would be overwritten,
//! which is why this test runs against the suite's own API server only.

use std::process::Command;
use std::time::Duration;

use futures::FutureExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

use crate::suite::{MADE_BY_TEST, NAMESPACE, SE_NAMESPACE, Suite};

pub const TESTS: [(&str, crate::Test); 3] = [
    (
        "doctor::across_two_clusters_one_root_of_trust_and_one_vip_per_host",
        |s| across(s).boxed(),
    ),
    (
        "doctor::a_healthy_install_passes_and_each_staged_failure_is_named",
        |s| staged(s).boxed(),
    ),
    (
        "doctor::txt_explain_answers_what_the_cluster_s_registry_and_entries_say",
        |s| txt_explain(s).boxed(),
    ),
];

/// `serve --explain-txt` as the Deployment runs it: the line names the
/// exporter the registry resources give and the VIP the synced
/// ServiceEntry records (issue 28, item 5).
async fn txt_explain(suite: &Suite) {
    suite.mesh_cluster("east", "192.0.2.10").await;
    suite.mesh_cluster("west", "198.51.100.20").await;
    suite.exported_service("httpbin", "bar", &["west"]).await;
    let docs = suite.docs.clone();
    let globaldns = suite
        .start(&docs, "globaldns-0", "state", &["--explain-txt"])
        .await;
    let entries = suite
        .wait_for_entries(&["httpbin-bar-global", "west-httpbin-bar-global"], 30)
        .await;
    let vip = entries["httpbin-bar-global"]["addresses"][0]
        .as_str()
        .expect("a VIP")
        .to_string();
    let line = crate::process::eventually(Duration::from_secs(10), "a TXT answer", || {
        globaldns.txt("_explain.httpbin.bar.global.").pop()
    });
    assert!(
        line.starts_with("httpbin.bar.global exported-by=west ")
            && line.contains(&format!(" vip={vip} first-choice=yes"))
            && line.contains(" registry=current "),
        "{line}"
    );
    let line = globaldns.txt("_explain.west.httpbin.bar.global.").pop();
    assert!(
        line.as_deref()
            .is_some_and(|l| l.contains(" per-cluster-of=west")),
        "{line:?}"
    );
}

const PART_OF: (&str, &str) = ("app.kubernetes.io/part-of", "globaldns-e2e");
const GATEWAY_POD: &str = "e2e-eastwestgateway";

/// `doctor -o json` as an administrator: its findings and exit status.
pub fn doctor(suite: &Suite) -> (Vec<Value>, bool) {
    let output = Command::new(env!("CARGO_BIN_EXE_globaldns"))
        .args(["doctor", "-o", "json", "--timeout", "5s"])
        .env("KUBECONFIG", &suite.env.kubeconfig)
        .output()
        .expect("globaldns runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let findings: Vec<Value> = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "doctor printed no JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (findings, output.status.success())
}

fn shown(findings: &[Value]) -> String {
    findings
        .iter()
        .map(|f| {
            format!(
                "{} {} {}: {}",
                f["status"], f["check"], f["object"], f["message"]
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Asserts that `doctor` reports `status` for `check` on an object whose
/// name contains `object`, and exits 1 when that is a failure (a warning
/// alone exits 0: the healthy install checks that).
fn names(suite: &Suite, check: &str, status: &str, object: &str) {
    let (findings, ok) = doctor(suite);
    let found = findings.iter().any(|f| {
        f["check"] == check
            && f["status"] == status
            && f["object"].as_str().is_some_and(|o| o.contains(object))
    });
    assert!(
        found,
        "doctor does not report {status} {check} on {object}:\n{}",
        shown(&findings)
    );
    if status == "fail" {
        assert!(!ok, "exit status 0 with {check} failing");
    }
}

fn kubectl(suite: &Suite, args: &[&str], stdin: Option<&str>) {
    suite
        .env
        .kubectl(args, stdin)
        .unwrap_or_else(|e| panic!("kubectl {args:?}: {e}"));
}

fn apply(suite: &Suite, object: Value) {
    kubectl(suite, &["apply", "-f", "-"], Some(&object.to_string()));
}

fn labels() -> Value {
    json!({ PART_OF.0: PART_OF.1 })
}

/// The Corefile a cluster starts with, and the same with the zone
/// forwarded to `ip`.
fn coredns(forward: Option<&str>) -> Value {
    let mut corefile = ".:53 {\n    errors\n    forward . /etc/resolv.conf\n}\n".to_string();
    if let Some(ip) = forward {
        corefile.push_str(&format!("global:53 {{\n    forward . {ip}\n}}\n"));
    }
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "coredns", "namespace": "kube-system", "labels": labels()},
        "data": {"Corefile": corefile}
    })
}

async fn ready(suite: &Suite, pod: &str, ready: bool) {
    let pods: Api<Pod> = Api::namespaced(suite.admin().await, SE_NAMESPACE);
    let status = if ready { "True" } else { "False" };
    let patch = json!({"status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": status, "lastTransitionTime": "2026-01-01T00:00:00Z"}
    ]}});
    pods.patch_status(pod, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap_or_else(|e| panic!("Pod {pod} status: {e}"));
}

async fn replicas_ready(suite: &Suite, count: i32) {
    let api: Api<Deployment> = Api::namespaced(suite.admin().await, NAMESPACE);
    let patch = json!({"status": {"replicas": 2, "readyReplicas": count}});
    api.patch_status("globaldns", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("the Deployment's status");
}

/// Removes what the test made beside the suite's own objects.
fn clean(suite: &Suite) {
    // The suite's label for what a test makes (PART_OF).
    let selector = MADE_BY_TEST;
    for kinds in [
        "pods,services,configmaps,deployments",
        "envoyfilters.networking.istio.io,serviceentries.networking.istio.io",
    ] {
        kubectl(
            suite,
            &[
                "delete",
                kinds,
                "-A",
                "-l",
                selector,
                "--ignore-not-found",
                "--wait=false",
            ],
            None,
        );
    }
    // stub-config's ConfigMap, applied over the test's, has no label.
    kubectl(
        suite,
        &[
            "-n",
            "kube-system",
            "delete",
            "configmap",
            "coredns",
            "--ignore-not-found",
        ],
        None,
    );
    kubectl(
        suite,
        &[
            "label",
            "namespace",
            SE_NAMESPACE,
            "topology.istio.io/network-",
        ],
        None,
    );
}

async fn staged(suite: &Suite) {
    clean(suite);
    // The Deployment as manifests/ ships it (other tests apply other
    // variants over it): doctor reads where the registry comes from there.
    suite.install("").await;
    suite.mesh_cluster("east", "192.0.2.10").await;
    suite.mesh_cluster("west", "198.51.100.20").await;
    suite.exported_service("httpbin", "bar", &["west"]).await;
    suite.exported_service("sleep", "foo", &["east"]).await;
    let docs = suite.docs.clone();
    let globaldns = suite.start(&docs, "globaldns-0", "state", &[]).await;
    let entries = [
        "httpbin-bar-global",
        "west-httpbin-bar-global",
        "sleep-foo-global",
        "east-sleep-foo-global",
    ];
    suite.wait_for_entries(&entries, 30).await;

    // As installed: no replica ready, the cluster DNS not wired, no
    // east-west gateway pod.
    names(
        suite,
        "globaldns.deployment",
        "fail",
        "Deployment globaldns/globaldns",
    );
    apply(suite, coredns(None));
    names(suite, "dns.wiring", "fail", "coredns");

    // Made healthy the way the README says.
    replicas_ready(suite, 2).await;
    let wiring = Command::new(env!("CARGO_BIN_EXE_globaldns"))
        .args(["stub-config", "--for", "coredns"])
        .env("KUBECONFIG", &suite.env.kubeconfig)
        .output()
        .expect("stub-config runs");
    assert!(
        wiring.status.success(),
        "{}",
        String::from_utf8_lossy(&wiring.stderr)
    );
    kubectl(
        suite,
        &["apply", "-f", "-"],
        Some(&String::from_utf8_lossy(&wiring.stdout)),
    );
    kubectl(
        suite,
        &[
            "label",
            "namespace",
            SE_NAMESPACE,
            "topology.istio.io/network=network-east",
            "--overwrite",
        ],
        None,
    );
    let gateway_labels = json!({"istio": "eastwestgateway", PART_OF.0: PART_OF.1});
    apply(
        suite,
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": GATEWAY_POD, "namespace": SE_NAMESPACE, "labels": gateway_labels},
            "spec": {"containers": [{"name": "istio-proxy", "image": "istio/proxyv2"}]}
        }),
    );
    ready(suite, GATEWAY_POD, true).await;
    names(suite, "istio.gateway", "fail", "Gateway");
    apply(
        suite,
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": GATEWAY_POD, "namespace": SE_NAMESPACE, "labels": labels()},
            "spec": {"selector": {"istio": "eastwestgateway"},
                     "ports": [{"name": "tls", "port": 15443}]}
        }),
    );
    let (findings, ok) = doctor(suite);
    let bad: Vec<Value> = findings
        .iter()
        .filter(|f| f["status"] != "pass")
        .cloned()
        .collect();
    assert!(bad.is_empty() && ok, "a healthy install:\n{}", shown(&bad));
    for check in [
        "globaldns.deployment",
        "globaldns.service",
        "globaldns.lease",
        "globaldns.registry",
        "dns.wiring",
        "istio.versions",
        "istio.gateway",
        "istio.service-entries",
        "leftover.envoy-filter",
        "leftover.dns-search",
        "leftover.hand-written",
        "leftover.vip-range",
        "mesh.network",
    ] {
        assert!(
            findings.iter().any(|f| f["check"] == check),
            "no {check} in:\n{}",
            shown(&findings)
        );
    }

    // Each failure, staged and undone.
    replicas_ready(suite, 0).await;
    names(suite, "globaldns.deployment", "fail", "globaldns/globaldns");
    replicas_ready(suite, 2).await;

    apply(suite, coredns(Some("10.0.0.1")));
    names(suite, "dns.wiring", "fail", "ConfigMap kube-system/coredns");
    kubectl(
        suite,
        &["apply", "-f", "-"],
        Some(&String::from_utf8_lossy(&wiring.stdout)),
    );

    ready(suite, GATEWAY_POD, false).await;
    names(suite, "istio.gateway", "fail", "Gateway istio-system/");
    ready(suite, GATEWAY_POD, true).await;

    kubectl(
        suite,
        &[
            "label",
            "namespace",
            SE_NAMESPACE,
            "topology.istio.io/network=network-west",
            "--overwrite",
        ],
        None,
    );
    names(suite, "mesh.network", "fail", "Namespace istio-system");
    kubectl(
        suite,
        &[
            "label",
            "namespace",
            SE_NAMESPACE,
            "topology.istio.io/network=network-east",
            "--overwrite",
        ],
        None,
    );

    apply(
        suite,
        json!({
            "apiVersion": "networking.istio.io/v1alpha3", "kind": "EnvoyFilter",
            "metadata": {"name": "istio-multicluster-ingressgateway", "namespace": SE_NAMESPACE, "labels": labels()},
            "spec": {"workloadSelector": {"labels": {"istio": "eastwestgateway"}},
                     "configPatches": [{"applyTo": "NETWORK_FILTER", "match": {"context": "GATEWAY",
                        "listener": {"portNumber": 15443, "filterChain": {"filter": {"name": "envoy.filters.network.sni_cluster"}}}},
                        "patch": {"operation": "INSERT_AFTER", "value": {"name": "envoy.filters.network.tcp_cluster_rewrite",
                            "config": {"cluster_pattern": "\\.global$", "cluster_replacement": ".svc.cluster.local"}}}}]}
        }),
    );
    names(
        suite,
        "leftover.envoy-filter",
        "fail",
        "EnvoyFilter istio-system/istio-multicluster-ingressgateway",
    );
    kubectl(
        suite,
        &[
            "-n",
            SE_NAMESPACE,
            "delete",
            "envoyfilter",
            "istio-multicluster-ingressgateway",
        ],
        None,
    );

    apply(
        suite,
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "istio-sidecar-injector", "namespace": SE_NAMESPACE, "labels": labels()},
            "data": {"values": json!({"global": {"podDNSSearchNamespaces": [
                "global", "{{ valueOrDefault .DeploymentMeta.Namespace \"default\" }}.global"]}}).to_string()}
        }),
    );
    names(
        suite,
        "leftover.dns-search",
        "warn",
        "ConfigMap istio-system/istio-sidecar-injector",
    );
    kubectl(
        suite,
        &[
            "-n",
            SE_NAMESPACE,
            "delete",
            "configmap",
            "istio-sidecar-injector",
        ],
        None,
    );

    apply(
        suite,
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "istiod", "namespace": SE_NAMESPACE,
                         "labels": {"app": "istiod", PART_OF.0: PART_OF.1}},
            "spec": {"selector": {"matchLabels": {"app": "istiod"}},
                     "template": {"metadata": {"labels": {"app": "istiod"}},
                                  "spec": {"containers": [{"name": "discovery", "image": "istio/pilot",
                                     "env": [{"name": "PILOT_IP_AUTOALLOCATE_IPV4_PREFIX", "value": "240.1.0.0/16"}]}]}}}
        }),
    );
    names(
        suite,
        "leftover.vip-range",
        "fail",
        "IPv4 range 240.0.0.0/12",
    );
    kubectl(
        suite,
        &["-n", SE_NAMESPACE, "delete", "deployment", "istiod"],
        None,
    );

    // A hand-written entry for a host, older than the one globaldns then
    // writes for it when the host is exported.
    apply(
        suite,
        json!({
            "apiVersion": "networking.istio.io/v1beta1", "kind": "ServiceEntry",
            "metadata": {"name": "e2e-hand-written", "namespace": SE_NAMESPACE, "labels": labels()},
            "spec": {"hosts": ["echo.baz.global"], "addresses": ["240.0.0.99"], "location": "MESH_INTERNAL",
                     "resolution": "STATIC", "ports": [{"name": "http", "number": 8000, "protocol": "HTTP"}],
                     "endpoints": [{"address": "198.51.100.20"}]}
        }),
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    suite.exported_service("echo", "baz", &["west"]).await;
    let mut more = entries.to_vec();
    more.extend(["echo-baz-global", "west-echo-baz-global"]);
    suite.wait_for_entries(&more, 30).await;
    names(
        suite,
        "leftover.hand-written",
        "fail",
        "ServiceEntry istio-system/e2e-hand-written",
    );
    kubectl(
        suite,
        &[
            "-n",
            SE_NAMESPACE,
            "delete",
            "serviceentry",
            "e2e-hand-written",
        ],
        None,
    );

    // With globaldns stopped: the Lease runs out, and objects edited by
    // hand stay edited.
    drop(globaldns);
    let leases: Api<Lease> = Api::namespaced(suite.admin().await, NAMESPACE);
    let old = MicroTime(k8s_openapi::jiff::Timestamp::now() - Duration::from_secs(120));
    leases
        .patch(
            "globaldns",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"renewTime": old}})),
        )
        .await
        .expect("the Lease");
    names(
        suite,
        "globaldns.lease",
        "fail",
        "Lease globaldns/globaldns",
    );

    let api = suite.service_entries().await;
    let mut sleep = api.get("sleep-foo-global").await.expect("sleep's entry");
    sleep.data["spec"]["ports"] = json!([{"name": "http", "number": 8001, "protocol": "HTTP"}]);
    sleep.metadata.managed_fields = None;
    api.replace("sleep-foo-global", &Default::default(), &sleep)
        .await
        .expect("an edited entry");
    names(
        suite,
        "istio.service-entries",
        "fail",
        "ServiceEntry istio-system/sleep-foo-global",
    );
    let mut httpbin = api
        .get("httpbin-bar-global")
        .await
        .expect("httpbin's entry");
    httpbin.data["spec"]["endpoints"][0]["address"] = json!("203.0.113.9");
    api.replace("httpbin-bar-global", &Default::default(), &httpbin)
        .await
        .expect("an edited entry");
    let (findings, _) = doctor(suite);
    assert!(
        findings
            .iter()
            .any(|f| f["check"] == "istio.service-entries"
                && f["status"] == "fail"
                && f["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("203.0.113.9"))),
        "an unknown gateway is not named:\n{}",
        shown(&findings)
    );

    // A peer whose API server does not answer.
    let kubeconfig = "apiVersion: v1\nkind: Config\nclusters:\n- name: south\n  cluster:\n    server: https://127.0.0.1:1\ncontexts:\n- name: south\n  context:\n    cluster: south\n    user: south\ncurrent-context: south\nusers:\n- name: south\n  user:\n    token: nothing\n";
    apply(
        suite,
        json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "peer-south", "namespace": NAMESPACE,
                         "labels": {"globaldns.io/peer": "true"},
                         "annotations": {"globaldns.io/cluster": "south"}},
            "stringData": {"kubeconfig": kubeconfig}
        }),
    );
    // Not reached from here: a warning (globaldns reaches peers from
    // inside the cluster, where the address may differ).
    names(suite, "peers", "warn", "Secret globaldns/peer-south");

    clean(suite);
}

/// One kubeconfig with a context per cluster, named as given (the
/// envtest kubeconfigs all name theirs alike).
fn merged_kubeconfig(clusters: &[(&str, &Suite)], into: &std::path::Path) -> std::path::PathBuf {
    use kube::config::Kubeconfig;
    let mut merged: Option<Kubeconfig> = None;
    for (name, suite) in clusters {
        let mut config = Kubeconfig::read_from(&suite.env.kubeconfig).expect("a kubeconfig");
        let current = config.current_context.clone().expect("a current context");
        config.contexts.retain(|c| c.name == current);
        let context = config.contexts[0].context.as_mut().expect("a context");
        let (cluster, user) = (context.cluster.clone(), context.user.clone());
        context.cluster = name.to_string();
        context.user = Some(name.to_string());
        config.contexts[0].name = name.to_string();
        config.clusters.retain(|c| c.name == cluster);
        config.clusters[0].name = name.to_string();
        config.auth_infos.retain(|a| Some(&a.name) == user.as_ref());
        config.auth_infos[0].name = name.to_string();
        config.current_context = Some(name.to_string());
        merged = Some(match merged {
            None => config,
            Some(before) => before.merge(config).expect("kubeconfigs merge"),
        });
    }
    let path = into.join("two-clusters.kubeconfig");
    std::fs::write(&path, serde_json::to_string(&merged).unwrap()).unwrap();
    path
}

fn root_cert(suite: &Suite, pem: &str) {
    let object = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "istio-ca-root-cert", "namespace": SE_NAMESPACE, "labels": labels()},
        "data": {"root-cert.pem": pem}
    });
    kubectl(suite, &["apply", "-f", "-"], Some(&object.to_string()));
}

/// `doctor --context east --context west` over two API servers, each with
/// its globaldns: the checks across clusters pass, then a second root of
/// trust and a VIP edited in one cluster are named.
async fn across(suite: &Suite) {
    suite.install("").await;
    let west = suite.second_cluster("west", None).await;
    west.env
        .kubectl(
            &[
                "-n",
                NAMESPACE,
                "patch",
                "configmap",
                "globaldns-config",
                "--type=merge",
                "-p",
                r#"{"data":{"cluster":"west"}}"#,
            ],
            None,
        )
        .expect("west's ConfigMap");
    for cluster in [suite, &west] {
        cluster.mesh_cluster("east", "192.0.2.10").await;
        cluster.mesh_cluster("west", "198.51.100.20").await;
        cluster.exported_service("httpbin", "bar", &["west"]).await;
        cluster.exported_service("sleep", "foo", &["east"]).await;
    }
    let entries = [
        "httpbin-bar-global",
        "west-httpbin-bar-global",
        "sleep-foo-global",
        "east-sleep-foo-global",
    ];
    let east_dns = suite.start(&suite.docs, "globaldns-0", "state", &[]).await;
    let west_dns = west
        .start(&west.docs, "globaldns-0", "state", &["--cluster=west"])
        .await;
    suite.wait_for_entries(&entries, 30).await;
    west.wait_for_entries(&entries, 30).await;
    root_cert(suite, "ROOT-A");
    root_cert(&west, "ROOT-A");
    let kubeconfig = merged_kubeconfig(&[("east", suite), ("west", &west)], &suite.dir());
    let run = || -> Vec<Value> {
        let output = Command::new(env!("CARGO_BIN_EXE_globaldns"))
            .args([
                "doctor",
                "--context",
                "east",
                "--context",
                "west",
                "-o",
                "json",
                "--timeout",
                "5s",
            ])
            .env("KUBECONFIG", &kubeconfig)
            .output()
            .expect("globaldns runs");
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!("no JSON ({e}): {}", String::from_utf8_lossy(&output.stderr))
        })
    };
    let status = |findings: &[Value], check: &str| -> Vec<(String, String)> {
        findings
            .iter()
            .filter(|f| f["check"] == check)
            .map(|f| {
                (
                    f["status"].as_str().unwrap().to_string(),
                    f["object"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let findings = run();
    let contexts: std::collections::BTreeSet<&str> = findings
        .iter()
        .filter_map(|f| f["context"].as_str())
        .collect();
    assert_eq!(
        contexts,
        ["", "east", "west"].into(),
        "{}",
        shown(&findings)
    );
    assert_eq!(
        status(&findings, "mesh.root-of-trust")[0].0,
        "pass",
        "{}",
        shown(&findings)
    );
    assert_eq!(
        status(&findings, "mesh.vip-agreement")[0].0,
        "pass",
        "{}",
        shown(&findings)
    );
    // Each cluster's entries were read under its own name.
    let entries_checked: Vec<_> = findings
        .iter()
        .filter(|f| f["check"] == "istio.service-entries" && f["status"] == "pass")
        .map(|f| f["context"].as_str().unwrap())
        .collect();
    assert_eq!(entries_checked, ["east", "west"], "{}", shown(&findings));

    // A context that does not exist is one finding; the others are read.
    let output = Command::new(env!("CARGO_BIN_EXE_globaldns"))
        .args([
            "doctor",
            "--context",
            "east",
            "--context",
            "nowhere",
            "-o",
            "json",
        ])
        .env("KUBECONFIG", &kubeconfig)
        .output()
        .expect("globaldns runs");
    let partial: Vec<Value> = serde_json::from_slice(&output.stdout).expect("JSON");
    let nowhere: Vec<&Value> = partial
        .iter()
        .filter(|f| f["context"] == "nowhere")
        .collect();
    assert!(
        nowhere.len() == 1
            && nowhere[0]["check"] == "cluster.api-server"
            && nowhere[0]["status"] == "fail",
        "{}",
        shown(&partial)
    );
    assert!(
        partial
            .iter()
            .any(|f| f["context"] == "east" && f["check"] == "istio.service-entries")
    );

    root_cert(&west, "ROOT-B");
    let findings = run();
    assert_eq!(
        status(&findings, "mesh.root-of-trust")[0].0,
        "fail",
        "{}",
        shown(&findings)
    );

    drop(west_dns);
    let api = west.service_entries().await;
    let mut entry = api.get("httpbin-bar-global").await.expect("west's entry");
    entry.data["spec"]["addresses"] = json!(["240.0.0.77"]);
    api.replace("httpbin-bar-global", &Default::default(), &entry)
        .await
        .expect("an edited entry");
    let findings = run();
    assert_eq!(
        status(&findings, "mesh.vip-agreement"),
        [("warn".to_string(), "httpbin.bar.global".to_string())],
        "{}",
        shown(&findings)
    );
    drop(east_dns);
    kubectl(
        suite,
        &[
            "-n",
            SE_NAMESPACE,
            "delete",
            "configmap",
            "istio-ca-root-cert",
        ],
        None,
    );
}
