//! The manifests under `manifests/`, read back: every document parses,
//! the Deployment runs non-root on a read-only root with no capabilities,
//! its arguments are accepted by our own command line, the Service maps
//! port 53 to the unprivileged container port, and RBAC grants exactly the
//! verbs the code uses. (`kubectl apply --dry-run=server` against a real API
//! server is in the #[ignore] end-to-end tests' remit.)

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Parser;
use globaldns::cli::{Cli, Command};
use serde_json::Value;

fn manifests() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests")
}

fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn all_documents() -> Vec<(PathBuf, Value)> {
    let mut out = Vec::new();
    let mut dirs = vec![manifests()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                for doc in documents(&path) {
                    out.push((path.clone(), doc));
                }
            }
        }
    }
    out
}

fn find<'a>(docs: &'a [(PathBuf, Value)], file: &str, kind: &str) -> &'a Value {
    docs.iter()
        .find(|(p, d)| p.ends_with(file) && d["kind"] == kind)
        .map(|(_, d)| d)
        .unwrap_or_else(|| panic!("no {kind} in {file}"))
}

#[test]
fn every_manifest_parses_and_names_its_kind() {
    let docs = all_documents();
    assert!(docs.len() >= 12, "{} documents", docs.len());
    for (path, doc) in &docs {
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .ends_with("-patch.yaml")
        {
            continue; // patches are partial objects by design
        }
        assert!(
            doc["apiVersion"].is_string() && doc["kind"].is_string(),
            "{}",
            path.display()
        );
    }
    // Every file a kustomization lists exists.
    for (path, doc) in docs.iter().filter(|(_, d)| d["kind"] == "Kustomization") {
        for resource in doc["resources"].as_array().unwrap() {
            let target = path.parent().unwrap().join(resource.as_str().unwrap());
            assert!(
                target.exists(),
                "{} lists {}",
                path.display(),
                target.display()
            );
        }
    }
}

#[test]
fn the_deployment_is_locked_down_and_its_arguments_parse() {
    let docs = all_documents();
    let deployment = find(&docs, "manifests/base/deployment.yaml", "Deployment");
    assert!(deployment["spec"]["replicas"].as_u64().unwrap() >= 2);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert!(pod["affinity"]["podAntiAffinity"].is_object());
    let container = &pod["containers"][0];
    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["capabilities"]["drop"][0], "ALL");
    assert!(security["capabilities"]["add"].is_null());
    for port in container["ports"].as_array().unwrap() {
        assert!(
            port["containerPort"].as_u64().unwrap() >= 1024,
            "unprivileged port"
        );
    }
    assert!(container["readinessProbe"].is_object() && container["livenessProbe"].is_object());

    // The arguments are ours: the command line takes them (the cluster
    // name comes from the environment in the pod).
    let mut args = vec!["globaldns".to_string()];
    args.extend(
        container["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string()),
    );
    args.push("--cluster=east".to_string());
    let cli = Cli::try_parse_from(&args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
    let Command::Serve(serve) = cli.command else {
        panic!("serve")
    };
    let config = serve.config().unwrap();
    assert_eq!(config.listen.port(), 5353);
    assert!(config.sync.is_some());

    let service = find(&docs, "manifests/base/service.yaml", "Service");
    // design §4: ns.<zone> answers with the Service's ClusterIP, taken from
    // the service-link variable Kubernetes derives from the Service's name.
    let link = format!(
        "$({}_SERVICE_HOST)",
        service["metadata"]["name"]
            .as_str()
            .unwrap()
            .to_uppercase()
            .replace('-', "_")
    );
    let ns_address = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "GLOBALDNS_NS_ADDRESS")
        .expect("GLOBALDNS_NS_ADDRESS in the Deployment");
    assert_eq!(ns_address["value"], link.as_str());
    for port in service["spec"]["ports"].as_array().unwrap() {
        assert_eq!(port["port"], 53);
        assert!(port["targetPort"].as_str().unwrap().starts_with("dns-"));
    }
    find(&docs, "manifests/base/service.yaml", "PodDisruptionBudget");
}

/// RBAC lists exactly what the code calls: list+watch of the registry
/// resources and the peer Secrets (the watch), get/create/update of the
/// Lease (mesh::lease), and
/// list+watch (mesh::record), create+patch (server-side apply) and delete
/// of ServiceEntries (mesh::sync). The end-to-end suite derives the same from the API
/// server's audit log.
#[test]
fn rbac_grants_only_the_verbs_used() {
    let docs = all_documents();
    let mut rules = Vec::new();
    for (path, doc) in &docs {
        let shipped = path.ends_with("manifests/base/rbac.yaml")
            || path.ends_with("manifests/registry-rbac.yaml");
        if shipped && doc["kind"] == "Role" {
            for rule in doc["rules"].as_array().unwrap() {
                let strings = |v: &Value| -> Vec<String> {
                    v.as_array()
                        .unwrap()
                        .iter()
                        .map(|s| s.as_str().unwrap().to_string())
                        .collect()
                };
                rules.push((
                    doc["metadata"]["namespace"].as_str().unwrap().to_string(),
                    strings(&rule["resources"]),
                    strings(&rule["verbs"]),
                ));
            }
        }
    }
    rules.sort();
    let expected = [
        ("globaldns", vec!["leases"], vec!["get", "create", "update"]),
        (
            "globaldns",
            vec!["meshclusters", "exportedservices"],
            vec!["list", "watch"],
        ),
        ("globaldns", vec!["secrets"], vec!["list", "watch"]),
        (
            "istio-system",
            vec!["gateways", "destinationrules"],
            vec!["list", "create", "patch", "delete"],
        ),
        (
            "istio-system",
            vec!["serviceentries"],
            vec!["list", "watch", "create", "patch", "delete"],
        ),
    ];
    let expected: Vec<(String, Vec<String>, Vec<String>)> = expected
        .iter()
        .map(|(ns, r, v)| {
            (
                ns.to_string(),
                r.iter().map(|s| s.to_string()).collect(),
                v.iter().map(|s| s.to_string()).collect(),
            )
        })
        .collect();
    assert_eq!(rules, expected);
    // Cluster-wide: reads of MCS exports (ServiceExports and their
    // Services), and drop-in mode's ServiceEntries, in a file of its own
    // applied only where drop-in mode is used; the one write is the MCS
    // ServiceImports, which live in each service's own namespace.
    let cluster_roles: BTreeMap<String, (&PathBuf, &Value)> = docs
        .iter()
        .filter(|(_, d)| d["kind"] == "ClusterRole")
        .map(|(p, d)| (d["metadata"]["name"].as_str().unwrap().to_string(), (p, d)))
        .collect();
    assert_eq!(
        cluster_roles.keys().collect::<Vec<_>>(),
        [
            "globaldns-drop-in",
            "globaldns-mcs",
            "globaldns-mcs-status",
            "globaldns-service-imports"
        ]
    );
    let (path, role) = cluster_roles["globaldns-mcs-status"];
    assert!(path.ends_with("manifests/registry-rbac.yaml"));
    assert_eq!(
        role["rules"],
        serde_json::json!([
            {"apiGroups": ["multicluster.x-k8s.io"], "resources": ["serviceexports/status"], "verbs": ["patch"]}
        ])
    );
    let (path, role) = cluster_roles["globaldns-service-imports"];
    assert!(path.ends_with("manifests/base/rbac.yaml"));
    assert_eq!(
        role["rules"],
        serde_json::json!([
            {"apiGroups": ["multicluster.x-k8s.io"], "resources": ["serviceimports"], "verbs": ["list", "create", "patch", "delete"]},
            {"apiGroups": ["multicluster.x-k8s.io"], "resources": ["serviceimports/status"], "verbs": ["patch"]}
        ])
    );
    let (path, role) = cluster_roles["globaldns-drop-in"];
    assert!(path.ends_with("manifests/drop-in/rbac.yaml"));
    assert_eq!(
        role["rules"],
        serde_json::json!([{"apiGroups": ["networking.istio.io"], "resources": ["serviceentries"], "verbs": ["list", "watch"]}])
    );
    let (_, mcs) = cluster_roles["globaldns-mcs"];
    assert_eq!(
        mcs["rules"],
        serde_json::json!([
            {"apiGroups": ["multicluster.x-k8s.io"], "resources": ["serviceexports"], "verbs": ["list", "watch"]},
            {"apiGroups": [""], "resources": ["services"], "verbs": ["list", "watch"]}
        ])
    );
}

/// Nothing publishes an image: every manifest names the one the README
/// tells users to build (`globaldns:<version of Cargo.toml>`), and the
/// base kustomization's `images:` entry, where users put the reference they
/// pushed, names that image and tag.
#[test]
fn every_manifest_runs_the_image_the_readme_builds() {
    let image = format!("globaldns:{}", env!("CARGO_PKG_VERSION"));
    let mut found = 0;
    for (path, doc) in &all_documents() {
        let containers = &doc["spec"]["template"]["spec"]["containers"];
        for container in containers.as_array().into_iter().flatten() {
            if let Some(name) = container["image"].as_str() {
                assert_eq!(name, image, "{}", path.display());
                found += 1;
            }
        }
    }
    assert_eq!(found, 2, "the Deployment and the sidecar patch");
    let docs = all_documents();
    let kustomization = find(&docs, "manifests/base/kustomization.yaml", "Kustomization");
    let (name, tag) = image.split_once(':').unwrap();
    assert_eq!(
        kustomization["images"],
        serde_json::json!([{"name": name, "newName": name, "newTag": tag}])
    );
    let readme = std::fs::read_to_string(manifests().join("../README.md")).unwrap();
    assert!(readme.contains(&format!("docker build -t {image} .")));
    let dockerfile = std::fs::read_to_string(manifests().join("../Dockerfile")).unwrap();
    assert!(dockerfile.contains(&format!("docker build -t {image} .")));
}
