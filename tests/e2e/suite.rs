//! One round of the suite: the install it works on, the helpers every test
//! uses (registry objects, globaldns processes as the ServiceAccount), and
//! the clean-up after each test, which deletes what the test made.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use globaldns::mesh::{IstioApiVersion, Kind};
use globaldns::registry::kube::resources::{
    ExportedService, ExportedServiceSpec, MeshCluster, MeshClusterSpec,
};
use globaldns::registry::{Gateway, Port};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::{Client, Resource, ResourceExt};
use serde_json::Value;

use crate::Test;
use crate::cluster::{Env, Installed, MANAGER, service_account_kubeconfig, wait_not_terminating};
use crate::process::{Globaldns, container};

/// Where globaldns runs and keeps its registry resources (manifests/).
pub const NAMESPACE: &str = "globaldns";
/// Where the synced ServiceEntries go (manifests/ RBAC).
pub const SE_NAMESPACE: &str = "istio-system";
pub const MANAGED: &str = "app.kubernetes.io/managed-by=globaldns";
/// The label on the Services the tests make (removed after each test).
pub const MADE_BY_TEST: &str = "app.kubernetes.io/part-of=globaldns-e2e";
/// The label of peer Secrets.
pub const PEER: &str = "globaldns.io/peer=true";
/// The Secret `globaldns peer-secret` makes for the reader's token.
const READER_TOKEN: &str = "globaldns-reader-token";
/// The MCS API's ServiceExport CRD (`GLOBALDNS_MCS_CRDS`, or
/// tests/e2e/data/mcs-crds.yaml).
pub const SERVICE_EXPORT_CRD: &str = "serviceexports.multicluster.x-k8s.io";

pub struct Suite {
    pub env: Arc<Env>,
    installed: Mutex<Installed>,
    /// `kubectl kustomize manifests/`.
    pub docs: Vec<Value>,
    pub work: tempfile::TempDir,
    /// The directory of the test running now (state directories, mounted
    /// files): fresh for each test, so no test starts from another's
    /// last-known-good registry.
    test_dir: Mutex<PathBuf>,
    /// The `networking.istio.io` version the cluster serves newest, asked
    /// as globaldns asks it: the suite reads Istio objects in it.
    pub istio_version: IstioApiVersion,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

impl Suite {
    /// Istio's CRDs if missing, then the manifests as shipped.
    pub fn set_up(env: &Arc<Env>) -> Result<Self, String> {
        runtime().block_on(async {
            env.ensure_istio_crds().await?;
            let client = env.admin().await;
            let istio_version = globaldns::mesh::api_version::istio_api_version(&client)
                .await
                .map_err(|e| e.to_string())?;
            for ns in [NAMESPACE, SE_NAMESPACE] {
                wait_not_terminating(&client, ns).await?;
            }
            let mut installed = Installed::default();
            // istio-system is not in the manifests (Istio's install makes
            // it); a bare API server lacks it.
            let ns = serde_json::json!({
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": SE_NAMESPACE}
            });
            installed.apply(&client, &[ns]).await?;
            // The MCS CRDs, unless the cluster has them (then they are left
            // as they are): as the pinned mcs-api release publishes them
            // (`GLOBALDNS_MCS_CRDS`, from conformance/mcs/crds.sh; .ci/run
            // sets it), else the suite's own minimal ServiceExport and ServiceImport.
            let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
            if crds
                .get_opt(SERVICE_EXPORT_CRD)
                .await
                .map_err(|e| e.to_string())?
                .is_none()
            {
                let docs: Vec<Value> = match std::env::var_os("GLOBALDNS_MCS_CRDS") {
                    Some(path) => {
                        let text = std::fs::read_to_string(&path)
                            .map_err(|e| format!("GLOBALDNS_MCS_CRDS {path:?}: {e}"))?;
                        serde_saphyr::from_multiple(&text)
                            .map_err(|e| format!("GLOBALDNS_MCS_CRDS {path:?}: {e}"))?
                    }
                    None => serde_saphyr::from_multiple(include_str!("data/mcs-crds.yaml"))
                        .map_err(|e| format!("data/mcs-crds.yaml: {e}"))?,
                };
                installed.apply(&client, &docs).await?;
            }
            let docs = env.kustomize("")?;
            installed.apply(&client, &docs).await?;
            Ok(Self {
                env: env.clone(),
                installed: Mutex::new(installed),
                docs,
                work: tempfile::tempdir().map_err(|e| e.to_string())?,
                test_dir: Mutex::new(PathBuf::new()),
                istio_version,
            })
        })
    }

    /// A second cluster beside this one: a control plane of its own from
    /// `KUBEBUILDER_ASSETS`, set up as [`Suite::set_up`] does (Istio's CRDs
    /// from `istio_crds`, else the suite's own; the manifests as shipped),
    /// working in `<this test's directory>/<name>`. It is stopped when
    /// dropped.
    pub async fn second_cluster(&self, name: &str, istio_crds: Option<PathBuf>) -> Suite {
        let assets = std::env::var_os("KUBEBUILDER_ASSETS").expect(
            "a second cluster is started from KUBEBUILDER_ASSETS: run with it, not KUBECONFIG",
        );
        let repo = self.env.repo.clone();
        let istio_crds = istio_crds.or_else(|| self.env.istio_crds.clone());
        let helm = self.env.helm.clone();
        let dir = self.dir().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let started = std::time::Instant::now();
        // Suite::set_up runs a runtime of its own: on a thread of its own.
        let suite = tokio::task::block_in_place(|| {
            std::thread::spawn(move || -> Result<Suite, String> {
                let envtest = crate::envtest::Envtest::start(std::path::Path::new(&assets))?;
                let env = Arc::new(Env {
                    kubeconfig: envtest.kubeconfig(),
                    envtest: Some(Mutex::new(envtest)),
                    repo,
                    istio_crds,
                    helm,
                });
                Suite::set_up(&env)
            })
            .join()
            .expect("the set-up thread")
        })
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        suite.use_dir(dir);
        eprintln!(
            "{name}: a control plane and the manifests ready in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        suite
    }

    /// Applies `kubectl kustomize manifests/<variant>` as an admin; what it
    /// creates is removed with the round's install. Returns the documents.
    pub async fn install(&self, variant: &str) -> Vec<Value> {
        let docs = self.env.kustomize(variant).expect("the variant builds");
        self.install_docs(&format!("manifests/{variant}"), docs)
            .await
    }

    /// Applies `docs` (`what` names them in a failure) as an admin; what
    /// they create is removed with the round's install.
    pub async fn install_docs(&self, what: &str, docs: Vec<Value>) -> Vec<Value> {
        let client = self.admin().await;
        let mut installed = std::mem::take(&mut *self.installed.lock().unwrap());
        let result = installed.apply(&client, &docs).await;
        *self.installed.lock().unwrap() = installed;
        result.unwrap_or_else(|e| panic!("{what}: {e}"));
        docs
    }

    /// Deletes everything the round created.
    pub fn tear_down(&self) -> Result<(), String> {
        let mut installed = std::mem::take(&mut *self.installed.lock().unwrap());
        runtime().block_on(async {
            let client = self.env.admin().await;
            installed.remove(&client).await
        })
    }

    /// Runs one test on a runtime of its own, then removes the registry
    /// objects, owned ServiceEntries and Lease it left (also when it failed).
    pub fn run(&self, test: Test) {
        let dir = tempfile::tempdir_in(self.work.path()).expect("a test directory");
        *self.test_dir.lock().unwrap() = dir.path().to_path_buf();
        let rt = runtime();
        let before = rt.block_on(self.leftovers());
        let outcome = rt.block_on(AssertUnwindSafe(test(self)).catch_unwind());
        rt.block_on(self.clean_after(&before));
        drop(dir);
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    }

    /// What a test may leave: (kind, name) of the registry objects, owned
    /// ServiceEntries and Leases present now.
    async fn leftovers(&self) -> BTreeSet<(&'static str, String)> {
        let client = self.admin().await;
        let mut found = BTreeSet::new();
        let names =
            |list: Vec<String>, kind: &'static str| list.into_iter().map(move |n| (kind, n));
        let clusters: Api<MeshCluster> = Api::namespaced(client.clone(), NAMESPACE);
        let services: Api<ExportedService> = Api::namespaced(client.clone(), NAMESPACE);
        let leases: Api<Lease> = Api::namespaced(client.clone(), NAMESPACE);
        let entries = self.service_entries().await;
        let lp = ListParams::default();
        found.extend(names(list_names(&clusters, &lp).await, "MeshCluster"));
        found.extend(names(list_names(&services, &lp).await, "ExportedService"));
        found.extend(names(list_names(&leases, &lp).await, "Lease"));
        let secrets: Api<Secret> = Api::namespaced(client.clone(), NAMESPACE);
        let peers = ListParams::default().labels(PEER);
        found.extend(names(list_names(&secrets, &peers).await, "Secret"));
        // The reader's token Secret, which `globaldns peer-secret` makes in
        // the cluster it reads. Left behind, it outlived its ServiceAccount
        // when the round's install was removed, and in the next round the
        // token controller filled the new one in only after its back-off
        // for that name (once more than peer-secret's 30 s).
        if let Ok(Some(token)) = secrets.get_opt(READER_TOKEN).await {
            found.insert(("Secret", token.name_any()));
        }
        let services: Api<Service> = Api::namespaced(client.clone(), NAMESPACE);
        let made = ListParams::default().labels(MADE_BY_TEST);
        found.extend(names(list_names(&services, &made).await, "Service"));
        let exports = self.service_exports().await;
        found.extend(names(list_names(&exports, &lp).await, "ServiceExport"));
        found.extend(names(
            list_names(&entries, &ListParams::default().labels(MANAGED)).await,
            "ServiceEntry",
        ));
        // Owned MCS ServiceImports, in any namespace, as `namespace/name`.
        let owned = ListParams::default().labels(MANAGED);
        if let Ok(list) = self.service_imports().await.list(&owned).await {
            found.extend(list.items.iter().map(|o| {
                let namespace = o.metadata.namespace.clone().unwrap_or_default();
                ("ServiceImport", format!("{namespace}/{}", o.name_any()))
            }));
        }
        for kind in [Kind::Gateway, Kind::DestinationRule] {
            let api = self.istio(kind).await;
            found.extend(names(
                list_names(&api, &ListParams::default().labels(MANAGED)).await,
                kind.name(),
            ));
        }
        found
    }

    async fn clean_after(&self, before: &BTreeSet<(&'static str, String)>) {
        let client = self.admin().await;
        let now = self.leftovers().await;
        let dp = DeleteParams::default();
        for (kind, name) in now.difference(before) {
            let result = match *kind {
                "MeshCluster" => Api::<MeshCluster>::namespaced(client.clone(), NAMESPACE)
                    .delete(name, &dp)
                    .await
                    .map(|_| ()),
                "ExportedService" => Api::<ExportedService>::namespaced(client.clone(), NAMESPACE)
                    .delete(name, &dp)
                    .await
                    .map(|_| ()),
                "Lease" => Api::<Lease>::namespaced(client.clone(), NAMESPACE)
                    .delete(name, &dp)
                    .await
                    .map(|_| ()),
                "Secret" => Api::<Secret>::namespaced(client.clone(), NAMESPACE)
                    .delete(name, &dp)
                    .await
                    .map(|_| ()),
                "Service" => Api::<Service>::namespaced(client.clone(), NAMESPACE)
                    .delete(name, &dp)
                    .await
                    .map(|_| ()),
                "ServiceExport" => self
                    .service_exports()
                    .await
                    .delete(name, &dp)
                    .await
                    .map(|_| ()),
                "ServiceImport" => {
                    let (namespace, name) = name.split_once('/').unwrap_or_default();
                    let resource = self.service_imports_resource();
                    Api::<DynamicObject>::namespaced_with(client.clone(), namespace, &resource)
                        .delete(name, &dp)
                        .await
                        .map(|_| ())
                }
                "Gateway" => self
                    .istio(Kind::Gateway)
                    .await
                    .delete(name, &dp)
                    .await
                    .map(|_| ()),
                "DestinationRule" => self
                    .istio(Kind::DestinationRule)
                    .await
                    .delete(name, &dp)
                    .await
                    .map(|_| ()),
                _ => self
                    .service_entries()
                    .await
                    .delete(name, &dp)
                    .await
                    .map(|_| ()),
            };
            if let Err(e) = result {
                eprintln!("clean-up: {kind} {name}: {e}");
            }
        }
    }

    /// This test's own directory.
    pub fn dir(&self) -> PathBuf {
        self.test_dir.lock().unwrap().clone()
    }

    /// Makes `dir` this suite's test directory (a second cluster's suite,
    /// whose tests [`Suite::run`] does not run).
    pub fn use_dir(&self, dir: PathBuf) {
        *self.test_dir.lock().unwrap() = dir;
    }

    /// The MCS ServiceImports, in v1beta1 (the pinned mcs-api release's
    /// storage version).
    pub fn service_imports_resource(&self) -> ApiResource {
        let gvk = GroupVersionKind::gvk("multicluster.x-k8s.io", "v1beta1", "ServiceImport");
        ApiResource::from_gvk_with_plural(&gvk, "serviceimports")
    }

    /// The MCS ServiceImports of every namespace, untyped.
    pub async fn service_imports(&self) -> Api<DynamicObject> {
        Api::all_with(self.admin().await, &self.service_imports_resource())
    }

    /// The ServiceExports of `globaldns` (the MCS API), untyped, in
    /// v1alpha1: as a client of the older API writes them, while the
    /// suite's CRD stores v1beta1 and globaldns reads that.
    pub async fn service_exports(&self) -> Api<DynamicObject> {
        Api::namespaced_with(
            self.admin().await,
            NAMESPACE,
            &globaldns::registry::kube::cluster_watch::service_exports_resource("v1alpha1"),
        )
    }

    /// A Service `name` in `globaldns` with `ports` (name, number), and an
    /// MCS ServiceExport of it: exported with no registry object at all.
    pub async fn mcs_export(&self, name: &str, ports: &[(&str, i32)]) {
        let (label, value) = MADE_BY_TEST.split_once('=').unwrap();
        let service: Service = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": {label: value}},
            "spec": {"ports": ports.iter().map(|(port, number)| serde_json::json!(
                {"name": port, "port": number, "protocol": "TCP"})).collect::<Vec<_>>()},
        }))
        .unwrap();
        self.apply(service).await;
        self.service_export(name).await;
    }

    /// An MCS ServiceExport of `name` in `globaldns` (v1alpha1, as
    /// [`Suite::service_exports`] writes them), whether or not a Service
    /// of that name exists.
    pub async fn service_export(&self, name: &str) {
        let export: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceExport",
            "metadata": {"name": name, "namespace": NAMESPACE},
        }))
        .unwrap();
        self.service_exports()
            .await
            .patch(
                name,
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&export),
            )
            .await
            .unwrap_or_else(|e| panic!("ServiceExport {name}: {e}"));
    }

    pub async fn admin(&self) -> Client {
        self.env.admin().await
    }

    /// A kubeconfig of the `globaldns` ServiceAccount (a fresh token).
    pub async fn service_account(&self) -> PathBuf {
        service_account_kubeconfig(
            &self.env.kubeconfig,
            &self.admin().await,
            NAMESPACE,
            "globaldns",
            self.work.path(),
        )
        .await
        .expect("a ServiceAccount token")
    }

    /// The Service environment variables a pod in `globaldns` gets for the
    /// globaldns Service (`GLOBALDNS_SERVICE_HOST`, `_PORT`).
    pub async fn service_links(&self) -> BTreeMap<String, String> {
        let api: Api<Service> = Api::namespaced(self.admin().await, NAMESPACE);
        let mut links = BTreeMap::new();
        if let Some(service) = api.get_opt("globaldns").await.unwrap() {
            let spec = service.spec.unwrap_or_default();
            if let Some(ip) = spec.cluster_ip {
                links.insert("GLOBALDNS_SERVICE_HOST".to_string(), ip);
            }
            if let Some(port) = spec.ports.unwrap_or_default().first() {
                links.insert("GLOBALDNS_SERVICE_PORT".to_string(), port.port.to_string());
            }
        }
        links
    }

    /// globaldns as the Deployment of `docs` runs it, as pod `pod`, with
    /// `extra` arguments (each replacing the container's argument of the
    /// same flag), on state directory `state`.
    pub async fn start(&self, docs: &[Value], pod: &str, state: &str, extra: &[&str]) -> Globaldns {
        let (mut args, env) = container(docs, pod, &self.service_links().await);
        // The tests' registries name documentation addresses (192.0.2.0/24,
        // 198.51.100.0/24) as gateways, and a test sends nothing beyond
        // loopback: no gateway probes, unless the test sets them up (a
        // `--gateway-probe-*` flag) for gateways that are loopback listeners
        // of its own (mesh::a_gateway_that_stops_listening_...).
        if !extra.iter().any(|a| a.starts_with("--gateway-probe-")) {
            args.push("--no-gateway-probes".to_string());
        }
        for arg in extra {
            // `--flag=value` replaces the container's own `--flag`.
            let flag = arg.split('=').next().unwrap_or(arg);
            args.retain(|a| a.split('=').next() != Some(flag));
            args.push(arg.to_string());
        }
        let kubeconfig = self.service_account().await;
        let state = self.dir().join(state);
        tokio::task::block_in_place(|| Globaldns::start(&args, &env, &kubeconfig, &state))
    }

    /// The objects of `kind` in istio-system, untyped.
    pub async fn istio(&self, kind: Kind) -> Api<DynamicObject> {
        Api::namespaced_with(
            self.admin().await,
            SE_NAMESPACE,
            &globaldns::mesh::sync::resource(kind, self.istio_version),
        )
    }

    /// The ServiceEntries of istio-system, untyped.
    pub async fn service_entries(&self) -> Api<DynamicObject> {
        globaldns::mesh::sync::service_entries(self.admin().await, SE_NAMESPACE, self.istio_version)
    }

    /// Applies a MeshCluster `name` with one gateway, as the registry's
    /// owners would.
    pub async fn mesh_cluster(&self, name: &str, gateway: &str) {
        let object = MeshCluster::new(
            name,
            MeshClusterSpec {
                network: Some(format!("network-{name}")),
                locality: None,
                gateways: vec![Gateway {
                    address: gateway.to_string(),
                    port: 15443,
                    readiness_url: None,
                }],
            },
        );
        self.apply(object).await;
    }

    /// Applies an ExportedService `<name>-<namespace>` with one HTTP port.
    pub async fn exported_service(&self, name: &str, namespace: &str, from: &[&str]) {
        self.exported_service_with_ports(name, namespace, from, &[("http", 8000)])
            .await;
    }

    pub async fn exported_service_with_ports(
        &self,
        name: &str,
        namespace: &str,
        from: &[&str],
        ports: &[(&str, u32)],
    ) {
        let object = ExportedService::new(
            &format!("{name}-{namespace}"),
            ExportedServiceSpec {
                name: name.to_string(),
                namespace: namespace.to_string(),
                exported_from: from.iter().map(|c| c.to_string()).collect(),
                ports: ports
                    .iter()
                    .map(|(name, number)| Port::new(name, *number, "HTTP"))
                    .collect(),
                addresses: Vec::new(),
                endpoints: Vec::new(),
                ..ExportedServiceSpec::default()
            },
        );
        self.apply(object).await;
    }

    /// Applies a registry file's clusters and services as MeshCluster and
    /// ExportedService objects (`<name>-<namespace>` for services).
    pub async fn registry_file(&self, path: &std::path::Path) {
        let text = std::fs::read_to_string(path).unwrap();
        let registry = globaldns::registry::load_str(
            &text,
            &path.display().to_string(),
            &["global".to_string()],
        )
        .unwrap();
        // The objects `globaldns export-resources` prints for the file.
        let (clusters, services) = globaldns::commands::export::resources(&registry, NAMESPACE);
        for cluster in clusters {
            self.apply(cluster).await;
        }
        for service in services {
            self.apply(service).await;
        }
    }

    async fn apply<K>(&self, object: K)
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + std::fmt::Debug
            + serde::Serialize
            + serde::de::DeserializeOwned,
    {
        let api: Api<K> = Api::namespaced(self.admin().await, NAMESPACE);
        let name = object.name_any();
        api.patch(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&object),
        )
        .await
        .unwrap_or_else(|e| panic!("{} {name}: {e}", K::kind(&())));
    }

    /// Deletes registry object `kind`/`name`.
    pub async fn delete_registry_object(&self, kind: &str, name: &str) {
        let client = self.admin().await;
        let dp = DeleteParams::default();
        match kind {
            "MeshCluster" => {
                Api::<MeshCluster>::namespaced(client, NAMESPACE)
                    .delete(name, &dp)
                    .await
                    .unwrap();
            }
            _ => {
                Api::<ExportedService>::namespaced(client, NAMESPACE)
                    .delete(name, &dp)
                    .await
                    .unwrap();
            }
        }
    }

    /// The owned ServiceEntries now: name → spec.
    pub async fn owned_entries(&self) -> BTreeMap<String, Value> {
        let api = self.service_entries().await;
        api.list(&ListParams::default().labels(MANAGED))
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|o| (o.name_any(), o.data["spec"].clone()))
            .collect()
    }

    /// Waits (up to `secs`) until the owned ServiceEntries are exactly
    /// `names`; returns their specs.
    pub async fn wait_for_entries(&self, names: &[&str], secs: u64) -> BTreeMap<String, Value> {
        let want: BTreeSet<&str> = names.iter().copied().collect();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            let found = self.owned_entries().await;
            let have: BTreeSet<&str> = found.keys().map(String::as_str).collect();
            if have == want {
                return found;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "owned ServiceEntries {have:?}, want {want:?} (within {secs} s)"
            );
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    }
}

async fn list_names<K>(api: &Api<K>, lp: &ListParams) -> Vec<String>
where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
{
    api.list(lp)
        .await
        .map(|l| l.items.iter().map(|o| o.name_any()).collect())
        .unwrap_or_default()
}
