//! A real `helm install` of the chart into the suite's API server, beside
//! the kustomize install: file mode, in a release namespace Helm creates,
//! with the Istio objects going to a namespace of the test's, so that it
//! shares no object (namespaced or cluster-wide) with the suite's install.
//! globaldns runs as the release's Deployment runs it, as the release's
//! ServiceAccount, until it syncs and answers; `helm uninstall` then
//! deletes every object of the release. `GLOBALDNS_HELM`, as `chart`.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use k8s_openapi::api::core::v1::Service;
use kube::ResourceExt;
use kube::api::{Api, DynamicObject};
use serde_json::Value;

use crate::chart::{chart_dir, documents, helm};
use crate::cluster::{Created, Installed, api_for, service_account_kubeconfig};
use crate::suite::Suite;

pub const TESTS: [(&str, crate::Test); 1] = [(
    "chart_install::helm_install_serves_as_its_service_account_and_uninstall_leaves_nothing",
    |s| helm_install(s).boxed(),
)];

/// Where the release goes, and where its globaldns writes the Istio
/// objects.
const RELEASE_NAMESPACE: &str = "globaldns-helm";
const ISTIO_NAMESPACE: &str = "istio-helm";

/// A real `helm install` of file mode, in a release namespace Helm creates
/// and with the Istio objects going to a namespace of the test's (so it
/// shares no object, namespaced or cluster-wide, with the suite's
/// install); globaldns, run as the release's Deployment runs it and as its
/// ServiceAccount, syncs and answers the release's registry; `helm
/// uninstall` then deletes every object of the release. The namespaces go
/// afterwards, whatever happened.
async fn helm_install(suite: &Suite) {
    let client = suite.admin().await;
    let mut namespaces = Installed::default();
    let istio_ns = serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ISTIO_NAMESPACE}
    });
    namespaces.apply(&client, &[istio_ns]).await.unwrap();
    // Helm makes the release namespace (--create-namespace); removed here.
    namespaces.created.push(Created {
        gvk: (String::new(), "v1".into(), "Namespace".into()),
        namespace: None,
        name: RELEASE_NAMESPACE.into(),
    });
    let outcome = AssertUnwindSafe(install_serve_uninstall(suite, &client))
        .catch_unwind()
        .await;
    let removed = namespaces.remove(&client).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    removed.unwrap();
}

async fn install_serve_uninstall(suite: &Suite, client: &kube::Client) {
    let chart = chart_dir(suite);
    let values = format!("{chart}/ci/file-mode-values.yaml");
    let istio = format!("global.istioNamespace={ISTIO_NAMESPACE}");
    helm(
        suite,
        &[
            "install",
            "globaldns",
            &chart,
            "--namespace",
            RELEASE_NAMESPACE,
            "--create-namespace",
            "--values",
            &values,
            "--set",
            "createNamespace=false",
            // The MCS grants are cluster-wide: the suite's install holds them.
            "--set",
            "mcs.serviceImports=false",
            "--set",
            &istio,
        ],
    );
    let status: Value = serde_json::from_str(&helm(
        suite,
        &[
            "status",
            "globaldns",
            "--namespace",
            RELEASE_NAMESPACE,
            "-o",
            "json",
        ],
    ))
    .unwrap();
    assert_eq!(status["info"]["status"], "deployed", "{status}");
    let manifest = helm(
        suite,
        &[
            "get",
            "manifest",
            "globaldns",
            "--namespace",
            RELEASE_NAMESPACE,
        ],
    );
    let docs = documents(&manifest, "helm get manifest");

    // The release's objects, as Helm made them: each one there, and Helm's.
    let mut apis = Vec::new();
    for doc in &docs {
        let object: DynamicObject = serde_json::from_value(doc.clone()).unwrap();
        let api = api_for(client, &object).await.unwrap();
        let name = object.name_any();
        let installed = api
            .get_opt(&name)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{} {name}: not installed", doc["kind"]));
        assert_eq!(
            installed.annotations().get("meta.helm.sh/release-name"),
            Some(&"globaldns".to_string()),
            "{} {name}",
            doc["kind"]
        );
        apis.push((format!("{} {name}", doc["kind"]), api, name));
    }

    let links = release_service_links(client).await;
    let (mut args, env) = crate::process::container(&docs, "globaldns-0", &links);
    let registry = crate::cluster::config_map_data(&docs, "globaldns-registry");
    let file = suite.dir().join("helm-registry.yaml");
    std::fs::write(&file, &registry["registry.yaml"]).unwrap();
    args.retain(|a| !a.starts_with("--registry="));
    args.push(format!("--registry={}", file.display()));
    args.push("--no-gateway-probes".into());
    assert!(
        args.contains(&format!("--service-entry-namespace={ISTIO_NAMESPACE}")),
        "{args:?}"
    );
    let kubeconfig = service_account_kubeconfig(
        &suite.env.kubeconfig,
        client,
        RELEASE_NAMESPACE,
        "globaldns",
        &suite.dir(),
    )
    .await
    .unwrap();
    let state = suite.dir().join("helm-state");
    let globaldns = tokio::task::block_in_place(|| {
        crate::process::Globaldns::start(&args, &env, &kubeconfig, &state)
    });
    let entries = globaldns::mesh::sync::service_entries(
        client.clone(),
        ISTIO_NAMESPACE,
        suite.istio_version,
    );
    let mut vip = None;
    for _ in 0..60 {
        let list = entries.list(&Default::default()).await.unwrap();
        if let Some(entry) = list
            .items
            .iter()
            .find(|e| e.name_any() == "httpbin-bar-global")
        {
            vip = entry.data["spec"]["addresses"][0]
                .as_str()
                .map(String::from);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let vip: std::net::IpAddr = vip
        .expect("httpbin-bar-global synced into the test's Istio namespace within 30 s")
        .parse()
        .unwrap();
    tokio::task::block_in_place(|| {
        crate::process::eventually(
            std::time::Duration::from_secs(10),
            "httpbin answers its VIP",
            || (globaldns.resolve("httpbin.bar.global") == Ok(Some(vip))).then_some(()),
        )
    });
    drop(globaldns);

    helm(
        suite,
        &["uninstall", "globaldns", "--namespace", RELEASE_NAMESPACE],
    );
    let mut left = Vec::new();
    for (what, api, name) in &apis {
        if api.get_opt(name).await.unwrap().is_some() {
            left.push(what.clone());
        }
    }
    assert!(left.is_empty(), "helm uninstall left {left:?}");
}

/// The service-link variables of the release's Service, as a pod in its
/// namespace gets them.
async fn release_service_links(client: &kube::Client) -> BTreeMap<String, String> {
    let api: Api<Service> = Api::namespaced(client.clone(), RELEASE_NAMESPACE);
    let service = api.get("globaldns").await.unwrap();
    let spec = service.spec.unwrap_or_default();
    let mut links = BTreeMap::new();
    links.insert(
        "GLOBALDNS_SERVICE_HOST".to_string(),
        spec.cluster_ip.expect("a ClusterIP"),
    );
    links
}
