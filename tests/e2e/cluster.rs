//! The cluster the suite runs against, and what it does to it as an admin:
//! install the manifests as shipped (through `kubectl kustomize`), hand out
//! ServiceAccount kubeconfigs, and remove what it created.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig, NamedAuthInfo, NamedContext};
use kube::core::GroupVersionKind;
use kube::discovery::{Scope, pinned_kind};
use kube::{Client, ResourceExt};
use serde_json::Value;

use crate::envtest::Envtest;

/// The field manager of everything the suite applies as an admin.
pub const MANAGER: &str = "globaldns-e2e";

/// Where the suite runs: a cluster from `KUBECONFIG`, or one started from
/// `KUBEBUILDER_ASSETS` for this run.
pub struct Env {
    pub kubeconfig: PathBuf,
    /// The control plane started for this run, when there is one.
    pub envtest: Option<std::sync::Mutex<Envtest>>,
    /// The repository (its `manifests/`).
    pub repo: PathBuf,
    /// Istio's CRDs (`GLOBALDNS_ISTIO_CRDS`).
    pub istio_crds: Option<PathBuf>,
    /// The `helm` binary (`GLOBALDNS_HELM`) the chart tests render with.
    pub helm: Option<PathBuf>,
}

impl Env {
    /// Reads the environment; starts a control plane when asked to.
    pub fn from_environment() -> Result<Self, String> {
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let istio_crds = std::env::var_os("GLOBALDNS_ISTIO_CRDS").map(PathBuf::from);
        let assets = std::env::var_os("KUBEBUILDER_ASSETS").map(PathBuf::from);
        let helm = std::env::var_os("GLOBALDNS_HELM").map(PathBuf::from);
        if let Some(helm) = &helm
            && !helm.is_file()
        {
            return Err(format!(
                "GLOBALDNS_HELM={} is not a file (conformance/helm/build.sh prints the \
                 pinned helm's path)",
                helm.display()
            ));
        }
        if let Some(kubeconfig) = std::env::var_os("KUBECONFIG") {
            return Ok(Self {
                kubeconfig: PathBuf::from(kubeconfig),
                envtest: None,
                repo,
                istio_crds,
                helm,
            });
        }
        let Some(assets) = assets else {
            return Err("the end-to-end suite needs a Kubernetes API server: set \
                 KUBEBUILDER_ASSETS to a directory with kube-apiserver and \
                 kube-controller-manager v1.28+ (`setup-envtest use 1.28 -p path`; \
                 .ci/run unpacks ../shared/envtest), or KUBECONFIG to a scratch cluster"
                .to_string());
        };
        let started = Instant::now();
        let envtest = Envtest::start(&assets)?;
        eprintln!(
            "envtest: API server on 127.0.0.1:{} ready in {:.1} s",
            envtest.api_port,
            started.elapsed().as_secs_f64()
        );
        Ok(Self {
            kubeconfig: envtest.kubeconfig(),
            envtest: Some(std::sync::Mutex::new(envtest)),
            repo,
            istio_crds,
            helm,
        })
    }

    /// A client with the admin's credentials.
    pub async fn admin(&self) -> Client {
        client_from(&self.kubeconfig).await
    }

    /// Runs kubectl against the cluster; returns standard output, or an
    /// error with standard error.
    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
        kubectl(&self.kubeconfig, args, stdin)
    }

    /// Installs Istio's CRDs unless the cluster has them, and waits until
    /// they are served.
    pub async fn ensure_istio_crds(&self) -> Result<(), String> {
        let client = self.admin().await;
        let crds: Api<CustomResourceDefinition> = Api::all(client);
        if crds
            .get_opt("serviceentries.networking.istio.io")
            .await
            .map_err(|e| e.to_string())?
            .is_some()
            && crds
                .get_opt("gateways.networking.istio.io")
                .await
                .map_err(|e| e.to_string())?
                .is_some()
        {
            return Ok(());
        }
        let path = self.istio_crds.as_ref().ok_or(
            "the cluster lacks Istio's CRDs: set GLOBALDNS_ISTIO_CRDS to Istio's crd-all.gen.yaml \
             (.ci/run: ../shared/testdata/istio-crds.yaml)",
        )?;
        let path = path.to_string_lossy();
        self.kubectl(
            &[
                "apply",
                "--server-side",
                "--force-conflicts",
                "--field-manager",
                MANAGER,
                "-f",
                &path,
            ],
            None,
        )?;
        self.kubectl(
            &[
                "wait",
                "--for=condition=Established",
                "--timeout=60s",
                "crd/serviceentries.networking.istio.io",
                "crd/gateways.networking.istio.io",
                "crd/destinationrules.networking.istio.io",
            ],
            None,
        )?;
        Ok(())
    }

    /// `kubectl kustomize manifests/<variant>`, as documents.
    pub fn kustomize(&self, variant: &str) -> Result<Vec<Value>, String> {
        let dir = self.repo.join("manifests").join(variant);
        let text = self.kubectl(&["kustomize", &dir.to_string_lossy()], None)?;
        serde_saphyr::from_multiple(&text).map_err(|e| format!("kustomize output: {e}"))
    }
}

/// A client for `kubeconfig` (its current context).
pub async fn client_from(kubeconfig: &Path) -> Client {
    let config = Kubeconfig::read_from(kubeconfig)
        .unwrap_or_else(|e| panic!("{}: {e}", kubeconfig.display()));
    let config = kube::Config::from_custom_kubeconfig(config, &KubeConfigOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", kubeconfig.display()));
    Client::try_from(config).expect("a client")
}

pub fn kubectl(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    use std::io::Write;
    let mut child = Command::new("kubectl")
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run kubectl (it must be on PATH): {e}"))?;
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(text.as_bytes())
            .map_err(|e| e.to_string())?;
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "kubectl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// One object the suite created, to delete afterwards.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Created {
    pub gvk: (String, String, String),
    pub namespace: Option<String>,
    pub name: String,
}

/// What the suite created in the cluster, removed by [`Installed::remove`]
/// in reverse order (namespaces waited for until gone).
#[derive(Default)]
pub struct Installed {
    pub created: Vec<Created>,
}

/// The typed API of a document's kind, found by discovery.
pub async fn api_for(
    client: &Client,
    object: &DynamicObject,
) -> Result<Api<DynamicObject>, String> {
    let types = object
        .types
        .clone()
        .ok_or_else(|| format!("{} has no apiVersion/kind", object.name_any()))?;
    let gvk = GroupVersionKind::try_from(&types).map_err(|e| e.to_string())?;
    let (resource, caps) = pinned_kind(client, &gvk)
        .await
        .map_err(|e| format!("{}: {e}", types.kind))?;
    Ok(if caps.scope == Scope::Namespaced {
        let ns = object
            .namespace()
            .ok_or_else(|| format!("{} {} has no namespace", types.kind, object.name_any()))?;
        Api::namespaced_with(client.clone(), &ns, &resource)
    } else {
        Api::all_with(client.clone(), &resource)
    })
}

impl Installed {
    /// Applies `docs` as an admin (server-side apply, `force`: a field
    /// someone else changed since is taken back, as `kubectl apply
    /// --server-side --force-conflicts` would), remembering which objects
    /// did not exist before. CRDs are waited for until established.
    pub async fn apply(&mut self, client: &Client, docs: &[Value]) -> Result<(), String> {
        let params = PatchParams::apply(MANAGER).force();
        for doc in docs {
            let object: DynamicObject =
                serde_json::from_value(doc.clone()).map_err(|e| e.to_string())?;
            let api = api_for(client, &object).await?;
            let name = object.name_any();
            let existed = api.get_opt(&name).await.map_err(|e| e.to_string())?;
            api.patch(&name, &params, &Patch::Apply(&object))
                .await
                .map_err(|e| format!("{} {name}: {e}", doc["kind"]))?;
            if existed.is_none() {
                let types = object.types.clone().expect("checked by api_for");
                let gvk = GroupVersionKind::try_from(&types).expect("checked by api_for");
                self.created.push(Created {
                    gvk: (gvk.group, gvk.version, gvk.kind),
                    namespace: object.namespace(),
                    name: name.clone(),
                });
            }
            if doc["kind"] == "CustomResourceDefinition" {
                wait_established(client, &name).await?;
            }
        }
        Ok(())
    }

    /// Deletes what was created, newest first, and waits (up to 90 s) for
    /// deleted namespaces to be gone, so the next run can create them again.
    pub async fn remove(&mut self, client: &Client) -> Result<(), String> {
        let mut problems = Vec::new();
        let mut namespaces = Vec::new();
        while let Some(created) = self.created.pop() {
            let (group, version, kind) = &created.gvk;
            let gvk = GroupVersionKind::gvk(group, version, kind);
            let Ok((resource, caps)) = pinned_kind(client, &gvk).await else {
                continue; // its CRD is gone already: so is the object
            };
            let api: Api<DynamicObject> = match (&created.namespace, caps.scope) {
                (Some(ns), Scope::Namespaced) => {
                    Api::namespaced_with(client.clone(), ns, &resource)
                }
                _ => Api::all_with(client.clone(), &resource),
            };
            match api.delete(&created.name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(e) => problems.push(format!("{kind} {}: {e}", created.name)),
            }
            if kind == "Namespace" {
                namespaces.push(created.name.clone());
            }
        }
        let api: Api<Namespace> = Api::all(client.clone());
        let deadline = Instant::now() + Duration::from_secs(90);
        for ns in namespaces {
            while api.get_opt(&ns).await.map_err(|e| e.to_string())?.is_some() {
                if Instant::now() > deadline {
                    problems.push(format!(
                        "namespace {ns} still there after 90 s (is a namespace controller running?)"
                    ));
                    break;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}

async fn wait_established(client: &Client, name: &str) -> Result<(), String> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let crd = api.get(name).await.map_err(|e| e.to_string())?;
        let established = crd
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True");
        if established {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("CRD {name} not established in 60 s"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until a namespace that is being deleted is gone (a previous run's
/// cleanup may still be finishing).
pub async fn wait_not_terminating(client: &Client, name: &str) -> Result<(), String> {
    let api: Api<Namespace> = Api::all(client.clone());
    let deadline = Instant::now() + Duration::from_secs(90);
    while let Some(ns) = api.get_opt(name).await.map_err(|e| e.to_string())? {
        if ns.metadata.deletion_timestamp.is_none() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("namespace {name} has been terminating for 90 s"));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(())
}

/// A kubeconfig (JSON) for ServiceAccount `namespace/name`: the admin's
/// cluster entry, a token from the TokenRequest API (valid one hour), and
/// `namespace` as the context's namespace, as a pod of that account sees it.
pub async fn service_account_kubeconfig(
    admin_kubeconfig: &Path,
    client: &Client,
    namespace: &str,
    name: &str,
    out: &Path,
) -> Result<PathBuf, String> {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: Vec::new(),
            expiration_seconds: Some(3600),
            ..Default::default()
        },
        ..Default::default()
    };
    let token = api
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .map_err(|e| format!("token for {namespace}/{name}: {e}"))?
        .status
        .ok_or("a TokenRequest without status")?
        .token;
    let admin = Kubeconfig::read_from(admin_kubeconfig).map_err(|e| e.to_string())?;
    let context = admin
        .contexts
        .iter()
        .find(|c| Some(&c.name) == admin.current_context.as_ref())
        .and_then(|c| c.context.clone())
        .ok_or("the admin kubeconfig has no current context")?;
    let cluster = admin
        .clusters
        .iter()
        .find(|c| c.name == context.cluster)
        .cloned()
        .ok_or("the admin kubeconfig's context names no cluster")?;
    let user = format!("system:serviceaccount:{namespace}:{name}");
    let config = Kubeconfig {
        clusters: vec![cluster.clone()],
        auth_infos: vec![NamedAuthInfo {
            name: user.clone(),
            auth_info: Some(kube::config::AuthInfo {
                token: Some(token.into()),
                ..Default::default()
            }),
            other: Default::default(),
        }],
        contexts: vec![NamedContext {
            name: user.clone(),
            context: Some(kube::config::Context {
                cluster: cluster.name.clone(),
                user: Some(user.clone()),
                namespace: Some(namespace.to_string()),
                ..Default::default()
            }),
            other: Default::default(),
        }],
        current_context: Some(user),
        ..Default::default()
    };
    let path = out.join(format!("{namespace}-{name}.kubeconfig"));
    let text = serde_json::to_string(&config).map_err(|e| e.to_string())?;
    std::fs::write(&path, text).map_err(|e| e.to_string())?;
    Ok(path)
}

/// The `data` of the ConfigMap `name` among `docs`.
pub fn config_map_data(docs: &[Value], name: &str) -> BTreeMap<String, String> {
    docs.iter()
        .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == name)
        .and_then(|d| d["data"].as_object())
        .map(|data| {
            data.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}
