//! The RBAC as shipped is exactly what globaldns uses: every verb the
//! `globaldns` ServiceAccount (and `globaldns-reader`, which peers read the
//! cluster with) was seen to use in the API server's audit log
//! (over the whole round, every test before this one) is granted, and every
//! verb granted was used. A server-side apply is a PATCH that may create:
//! it needs `create` beside `patch` (the defect that refused every new
//! ServiceEntry), so a patch counts as both.
//!
//! Run last, and only with an API server the suite started (the audit log
//! is its file).

use std::collections::BTreeSet;

use futures::FutureExt;
use serde_json::Value;

use crate::suite::Suite;

pub const TESTS: [(&str, crate::Test); 1] = [(
    "rbac::the_shipped_rbac_is_exactly_the_verbs_the_audit_log_shows",
    |s| audit(s).boxed(),
)];

/// (namespace or "" for cluster-wide, API group, resource, verb).
type Grant = (String, String, String, String);

/// The ServiceAccounts of `globaldns` checked: globaldns' own, and the one
/// peer clusters read this one with (the federation tests use it).
const ACCOUNTS: [&str; 2] = ["globaldns", "globaldns-reader"];

/// What `account` asked for, from the audit log's JSON lines.
fn used(log: &str, account: &str) -> BTreeSet<Grant> {
    let username = format!("system:serviceaccount:globaldns:{account}");
    let mut used = BTreeSet::new();
    for line in log.lines() {
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if event["user"]["username"] != username.as_str() {
            continue;
        }
        let object = &event["objectRef"];
        if object["resource"].is_null() {
            // A non-resource URL: the discovery of the MCS API and of
            // Istio's (`/apis/multicluster.x-k8s.io`,
            // `/apis/networking.istio.io`), which every
            // authenticated user may read (the default ClusterRole
            // system:discovery). Nothing of ours grants or needs it.
            let uri = event["requestURI"].as_str().unwrap_or_default();
            assert!(uri.starts_with("/api"), "{username} asked for {uri}");
            continue;
        }
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let verb = text(&event["verb"]);
        // A subresource is granted as `<resource>/<subresource>`.
        let resource = match object["subresource"].as_str() {
            Some(sub) => format!("{}/{sub}", text(&object["resource"])),
            None => text(&object["resource"]),
        };
        let key = |verb: &str| {
            (
                text(&object["namespace"]),
                text(&object["apiGroup"]),
                resource.clone(),
                verb.to_string(),
            )
        };
        used.insert(key(&verb));
        if verb == "patch" && object["subresource"].is_null() {
            // Every PATCH globaldns sends is a server-side apply (the mock
            // tests assert the content type), which creates when missing;
            // not of a subresource (a status), which never creates.
            used.insert(key("create"));
        }
    }
    used
}

/// What the Roles and ClusterRoles in `docs` that name `account` grant.
fn granted(docs: &[Value], account: &str) -> BTreeSet<Grant> {
    let bound: BTreeSet<(String, String)> = docs
        .iter()
        .filter(|d| d["kind"] == "RoleBinding" || d["kind"] == "ClusterRoleBinding")
        .filter(|d| {
            d["subjects"].as_array().into_iter().flatten().any(|s| {
                s["kind"] == "ServiceAccount"
                    && s["name"] == account
                    && s["namespace"] == "globaldns"
            })
        })
        .map(|d| {
            (
                d["roleRef"]["kind"].as_str().unwrap().to_string(),
                d["roleRef"]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut grants = BTreeSet::new();
    for role in docs
        .iter()
        .filter(|d| d["kind"] == "Role" || d["kind"] == "ClusterRole")
    {
        let kind = role["kind"].as_str().unwrap().to_string();
        let name = role["metadata"]["name"].as_str().unwrap().to_string();
        if !bound.contains(&(kind.clone(), name)) {
            continue;
        }
        let namespace = if kind == "Role" {
            role["metadata"]["namespace"].as_str().unwrap().to_string()
        } else {
            String::new()
        };
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .into_iter()
                .flatten()
                .map(|s| s.as_str().unwrap().to_string())
                .collect()
        };
        for rule in role["rules"].as_array().unwrap() {
            for group in strings(&rule["apiGroups"]) {
                for resource in strings(&rule["resources"]) {
                    for verb in strings(&rule["verbs"]) {
                        grants.insert((namespace.clone(), group.clone(), resource.clone(), verb));
                    }
                }
            }
        }
    }
    grants
}

async fn audit(suite: &Suite) {
    let envtest = suite.env.envtest.as_ref().expect(
        "the audit log is the API server's file: run with KUBEBUILDER_ASSETS, not KUBECONFIG",
    );
    let path = envtest.lock().unwrap().audit_log();
    let log = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut docs = suite.docs.clone();
    docs.extend(suite.env.kustomize("drop-in").unwrap());
    for account in ACCOUNTS {
        let granted = granted(&docs, account);
        // A use in a namespace no Role grants but a ClusterRole grants
        // everywhere (the ServiceImports, in each service's namespace)
        // counts as the cluster-wide grant's.
        let used: BTreeSet<Grant> = used(&log, account)
            .into_iter()
            .map(|grant| {
                let everywhere = (
                    String::new(),
                    grant.1.clone(),
                    grant.2.clone(),
                    grant.3.clone(),
                );
                if !granted.contains(&grant) && granted.contains(&everywhere) {
                    everywhere
                } else {
                    grant
                }
            })
            .collect();
        let unused: Vec<&Grant> = granted.difference(&used).collect();
        let refused: Vec<&Grant> = used.difference(&granted).collect();
        assert!(
            refused.is_empty(),
            "{account}: used but not granted by the shipped RBAC: {refused:?}"
        );
        assert!(
            unused.is_empty(),
            "{account}: granted but never used in the whole suite (run it whole, not filtered): {unused:?}"
        );
    }
}
