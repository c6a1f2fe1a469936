//! End-to-end against a real Kubernetes API server, read from `KUBECONFIG`.
//! Ignored by default; run with
//!
//! ```sh
//! KUBECONFIG=~/.kube/config cargo test --test e2e -- --ignored --test-threads=1
//! ```
//!
//! Written to pass unattended on a fresh cluster: they install what they
//! need (globaldns' CRDs, and Istio's ServiceEntry CRD from
//! `../shared/testdata` if the cluster lacks it), work in a namespace of
//! their own, and remove what they installed, also when they fail. DNS
//! queries go to the in-process server on 127.0.0.1 only.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::time::{Duration, Instant};

use futures::FutureExt;
use globaldns::controller::Settings;
use globaldns::dns::server::TcpLimits;
use globaldns::k8s::resources::{
    ExportedService, ExportedServiceSpec, MeshCluster, MeshClusterSpec,
};
use globaldns::k8s::sync::{SyncConfig, service_entries};
use globaldns::registry::{Gateway, Port};
use globaldns::serve::{self, ServeConfig, Source};
use globaldns::vip::{Allocator, DEFAULT_V4_RANGE, Family, VipRange};
use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::discovery::pinned_kind;
use kube::{Client, CustomResourceExt, ResourceExt};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

const MANAGER: &str = "globaldns-e2e";
const ISTIO_CRD: &str = "serviceentries.networking.istio.io";

async fn client() -> Client {
    Client::try_default()
        .await
        .expect("KUBECONFIG points at a reachable API server")
}

/// Applies a CRD and waits until the API server serves it.
async fn install_crd(client: &Client, crd: &CustomResourceDefinition) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = crd.name_any();
    api.patch(
        &name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(crd),
    )
    .await
    .unwrap_or_else(|e| panic!("CRD {name}: {e}"));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let current = api.get(&name).await.unwrap();
        let established = current
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True");
        if established {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "CRD {name} not established in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// What a test installed, to remove afterwards.
struct Installed {
    namespaces: Vec<String>,
    crds: Vec<String>,
}

impl Installed {
    async fn remove(self, client: &Client) {
        let namespaces: Api<Namespace> = Api::all(client.clone());
        for ns in &self.namespaces {
            let _ = namespaces.delete(ns, &DeleteParams::default()).await;
        }
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        for crd in &self.crds {
            let _ = crds.delete(crd, &DeleteParams::default()).await;
        }
    }
}

/// Installs globaldns' CRDs and, if missing, Istio's ServiceEntry CRD.
async fn install_crds(client: &Client, installed: &mut Installed) {
    for crd in [MeshCluster::crd(), ExportedService::crd()] {
        let existed = Api::<CustomResourceDefinition>::all(client.clone())
            .get_opt(&crd.name_any())
            .await
            .unwrap()
            .is_some();
        install_crd(client, &crd).await;
        if !existed {
            installed.crds.push(crd.name_any());
        }
    }
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    if crds.get_opt(ISTIO_CRD).await.unwrap().is_none() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/testdata/istio-serviceentry-crd.yaml");
        let text = std::fs::read_to_string(&path).unwrap();
        let crd: CustomResourceDefinition = serde_saphyr::from_str(&text).unwrap();
        install_crd(client, &crd).await;
        installed.crds.push(ISTIO_CRD.to_string());
    }
}

async fn create_namespace(client: &Client, prefix: &str, installed: &mut Installed) -> String {
    let name = format!("{prefix}-{}", std::process::id());
    let ns = Namespace {
        metadata: kube::api::ObjectMeta {
            name: Some(name.clone()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap_or_else(|e| panic!("namespace {name}: {e}"));
    installed.namespaces.push(name.clone());
    name
}

fn cluster(name: &str, address: &str) -> MeshCluster {
    MeshCluster::new(
        name,
        MeshClusterSpec {
            network: Some(format!("network-{name}")),
            locality: None,
            gateways: vec![Gateway {
                address: address.to_string(),
                port: 15443,
            }],
        },
    )
}

fn service(name: &str, namespace: &str, from: &str) -> ExportedService {
    ExportedService::new(
        &format!("{name}-{namespace}"),
        ExportedServiceSpec {
            name: name.to_string(),
            namespace: namespace.to_string(),
            exported_from: vec![from.to_string()],
            ports: vec![Port {
                name: "http".into(),
                number: 8000,
                protocol: "HTTP".into(),
            }],
            addresses: Vec::new(),
        },
    )
}

fn config(ns: &str, state_dir: &Path) -> ServeConfig {
    ServeConfig {
        registry: Source::Kubernetes {
            namespace: Some(ns.to_string()),
        },
        listen: "127.0.0.1:0".parse().unwrap(),
        state_dir: state_dir.to_path_buf(),
        settings: Settings {
            zones: vec!["global".to_string()],
            ttl: 30,
            allocator: Allocator {
                v4: VipRange::new(DEFAULT_V4_RANGE.parse().unwrap(), Family::V4).unwrap(),
                v6: None,
                quarantine: 600,
            },
            ns_addresses: Vec::new(),
        },
        reload_interval: Duration::from_millis(100),
        tcp: TcpLimits {
            max_connections: 16,
            idle_timeout: Duration::from_secs(5),
        },
        udp_workers: 1,
        grpc: None,
        serve_service_entries: false,
        admin: None,
        drain_delay: Duration::ZERO,
        brake: globaldns::registry::brake::BrakeConfig {
            share: 0.5,
            hold: Duration::from_secs(30),
        },
        sync: Some(SyncConfig {
            cluster: "east".to_string(),
            namespace: ns.to_string(),
            brake: 0.5,
            lease_name: "globaldns".to_string(),
            identity: format!("e2e-{}", std::process::id()),
            resync: Duration::from_secs(300),
        }),
    }
}

/// The A answer of the server at `addr` for `host`.
async fn resolve(addr: std::net::SocketAddr, host: &str) -> Option<IpAddr> {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut query = Message::query();
    query.add_query(Query::query(Name::from_ascii(host).unwrap(), RecordType::A));
    socket
        .send_to(&query.to_vec().unwrap(), addr)
        .await
        .unwrap();
    let mut buf = [0u8; 1500];
    let (len, _) = tokio::time::timeout(Duration::from_secs(2), socket.recv_from(&mut buf))
        .await
        .ok()?
        .ok()?;
    let reply = Message::from_vec(&buf[..len]).ok()?;
    reply.answers.iter().find_map(|r| match &r.data {
        RData::A(a) => Some(IpAddr::V4(a.0)),
        _ => None,
    })
}

/// Waits until the owned ServiceEntries are exactly `names`; returns each
/// one's first address.
async fn wait_for_entries(api: &Api<DynamicObject>, names: &[&str]) -> BTreeMap<String, IpAddr> {
    let deadline = Instant::now() + Duration::from_secs(90);
    let selector = "app.kubernetes.io/managed-by=globaldns";
    loop {
        let listed = api
            .list(&ListParams::default().labels(selector))
            .await
            .unwrap();
        let found: BTreeMap<String, IpAddr> = listed
            .items
            .iter()
            .filter_map(|o| {
                let address = o.data["spec"]["addresses"][0].as_str()?.parse().ok()?;
                Some((o.name_any(), address))
            })
            .collect();
        let mut keys: Vec<&str> = found.keys().map(String::as_str).collect();
        keys.sort();
        let mut wanted = names.to_vec();
        wanted.sort();
        if keys == wanted {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "ServiceEntries {keys:?}, wanted {wanted:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn sync_scenario(client: &Client, installed: &mut Installed) {
    install_crds(client, installed).await;
    let ns = create_namespace(client, "globaldns-e2e", installed).await;
    let post = PostParams::default();
    let clusters: Api<MeshCluster> = Api::namespaced(client.clone(), &ns);
    clusters
        .create(&post, &cluster("east", "192.0.2.10"))
        .await
        .unwrap();
    clusters
        .create(&post, &cluster("west", "198.51.100.20"))
        .await
        .unwrap();
    let services: Api<ExportedService> = Api::namespaced(client.clone(), &ns);
    services
        .create(&post, &service("httpbin", "bar", "west"))
        .await
        .unwrap();
    services
        .create(&post, &service("sleep", "foo", "east"))
        .await
        .unwrap();

    // 1. Sync: one ServiceEntry per service, and DNS answers with its VIP.
    let state = tempfile::tempdir().unwrap();
    let shutdown = CancellationToken::new();
    let running = serve::start(config(&ns, state.path()), shutdown.clone())
        .await
        .expect("serve starts");
    let entries = service_entries(client.clone(), &ns);
    let found = wait_for_entries(&entries, &["httpbin-bar-global", "sleep-foo-global"]).await;
    for (name, vip) in &found {
        let host = name.strip_suffix("-global").unwrap().replace('-', ".") + ".global";
        let deadline = Instant::now() + Duration::from_secs(30);
        while resolve(running.addr, &host).await != Some(*vip) {
            assert!(Instant::now() < deadline, "{host} does not answer {vip}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let httpbin = &entries.get("httpbin-bar-global").await.unwrap();
    assert_eq!(
        httpbin.data["spec"]["endpoints"][0]["address"],
        "198.51.100.20"
    );
    assert_eq!(httpbin.data["spec"]["resolution"], "STATIC");

    // 2. A removed service's ServiceEntry is pruned.
    services
        .delete("sleep-foo", &DeleteParams::default())
        .await
        .unwrap();
    wait_for_entries(&entries, &["httpbin-bar-global"]).await;

    // 3. A restart with an empty state directory keeps the VIP.
    shutdown.cancel();
    running.wait().await;
    let fresh = tempfile::tempdir().unwrap();
    let shutdown = CancellationToken::new();
    let running = serve::start(config(&ns, fresh.path()), shutdown.clone())
        .await
        .unwrap();
    let vip = found["httpbin-bar-global"];
    let deadline = Instant::now() + Duration::from_secs(60);
    while resolve(running.addr, "httpbin.bar.global").await != Some(vip) {
        assert!(
            Instant::now() < deadline,
            "the VIP changed across the restart"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    shutdown.cancel();
    running.wait().await;
}

/// Issue 3: registry resources → synced ServiceEntries that agree with the
/// DNS answers; a deleted service is pruned; a restart keeps the VIPs.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a Kubernetes API server (KUBECONFIG)"]
async fn registry_resources_sync_and_dns_agree() {
    let client = client().await;
    let mut installed = Installed {
        namespaces: Vec::new(),
        crds: Vec::new(),
    };
    let outcome = AssertUnwindSafe(sync_scenario(&client, &mut installed))
        .catch_unwind()
        .await;
    installed.remove(&client).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn dry_run_scenario(client: &Client, installed: &mut Installed) {
    install_crds(client, installed).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for ns in ["globaldns", "istio-system"] {
        if namespaces.get_opt(ns).await.unwrap().is_none() {
            let object = Namespace {
                metadata: kube::api::ObjectMeta {
                    name: Some(ns.to_string()),
                    ..Default::default()
                },
                ..Default::default()
            };
            namespaces
                .create(&PostParams::default(), &object)
                .await
                .unwrap();
            installed.namespaces.push(ns.to_string());
        }
    }
    let params = PatchParams::apply(MANAGER).dry_run();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests");
    let mut files = vec![];
    for sub in ["", "file-mode", "sidecar", "drop-in"] {
        for entry in std::fs::read_dir(dir.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if name.ends_with(".yaml")
                && !name.ends_with("-patch.yaml")
                && name != "kustomization.yaml"
            {
                files.push(path);
            }
        }
    }
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
        for doc in docs {
            let object: DynamicObject = serde_json::from_value(doc).unwrap();
            let types = object.types.clone().unwrap();
            let gvk = kube::core::GroupVersionKind::try_from(&types).unwrap();
            let (resource, caps) = pinned_kind(client, &gvk).await.unwrap();
            let api: Api<DynamicObject> = if caps.scope == kube::discovery::Scope::Namespaced {
                Api::namespaced_with(
                    client.clone(),
                    object.namespace().as_deref().unwrap(),
                    &resource,
                )
            } else {
                Api::all_with(client.clone(), &resource)
            };
            api.patch(&object.name_any(), &params, &Patch::Apply(&object))
                .await
                .unwrap_or_else(|e| {
                    panic!(
                        "{} {} ({}): {e}",
                        types.kind,
                        object.name_any(),
                        path.display()
                    )
                });
        }
    }
}

/// Issue 3: every manifest passes `kubectl apply --dry-run=server`.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a Kubernetes API server (KUBECONFIG)"]
async fn manifests_pass_a_server_side_dry_run() {
    let client = client().await;
    let mut installed = Installed {
        namespaces: Vec::new(),
        crds: Vec::new(),
    };
    let outcome = AssertUnwindSafe(dry_run_scenario(&client, &mut installed))
        .catch_unwind()
        .await;
    installed.remove(&client).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// The offline half of the tests above, run in CI: Istio's CRD from
/// `../shared/testdata` decodes as the CRD type the install step sends, and
/// every manifest decodes into the object and kind the dry run applies.
#[test]
fn what_the_end_to_end_tests_send_decodes() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/testdata/istio-serviceentry-crd.yaml");
    let crd: CustomResourceDefinition =
        serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(crd.name_any(), ISTIO_CRD);
    for crd in [MeshCluster::crd(), ExportedService::crd()] {
        assert!(crd.name_any().ends_with(".globaldns.io"));
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests");
    let mut count = 0;
    for sub in ["", "file-mode", "sidecar", "drop-in"] {
        for entry in std::fs::read_dir(dir.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if !name.ends_with(".yaml")
                || name.ends_with("-patch.yaml")
                || name == "kustomization.yaml"
            {
                continue;
            }
            let docs: Vec<Value> =
                serde_saphyr::from_multiple(&std::fs::read_to_string(&path).unwrap()).unwrap();
            for doc in docs {
                let object: DynamicObject = serde_json::from_value(doc).unwrap();
                let types = object.types.clone().unwrap();
                kube::core::GroupVersionKind::try_from(&types).unwrap();
                assert!(!object.name_any().is_empty(), "{}", path.display());
                count += 1;
            }
        }
    }
    assert!(count >= 15, "{count} objects");
}
