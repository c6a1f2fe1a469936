//! What `doctor` reads of a cluster, read once and kept as found: every
//! read that fails is kept as its error (`Err(text)`), so that one missing
//! permission or CRD turns into one finding, not into a doctor that stops.

use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Service};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::commands::stub::{COREDNS, DNS_NAMESPACE, KUBE_DNS};
use crate::mesh::{GROUP, IstioApiVersion};
use crate::registry::Registry;

/// A read: what was found, or why it could not be read.
pub type Read<T> = Result<T, String>;

/// What `doctor` is asked to check (its flags).
#[derive(Clone, Debug)]
pub struct Options {
    /// globaldns' namespace: its Deployment, Service, Lease, ConfigMaps,
    /// registry resources and peer Secrets.
    pub namespace: String,
    /// The name of globaldns' Deployment, Service and Lease.
    pub name: String,
    /// Istio's namespace: the synced objects, istiod, the injector's
    /// ConfigMaps, the network label, the root certificate.
    pub istio_namespace: String,
    pub zones: Vec<String>,
    pub per_cluster_names: bool,
    /// The local cluster's name; `None`: read from the ConfigMap
    /// `globaldns-config` (key `cluster`) as the Deployment does.
    pub cluster: Option<String>,
    /// A registry file; `None`: the registry the cluster's globaldns reads
    /// (the file-mode ConfigMap `globaldns-registry`, else the registry
    /// resources of the namespace and its peers').
    pub registry: Option<PathBuf>,
    pub target: crate::mesh::Target,
    /// How long a read of one cluster (a peer's lists) may take.
    pub timeout: Duration,
}

/// One cluster as `doctor` found it.
#[derive(Clone, Debug)]
pub struct Observed {
    /// The kubeconfig context it was reached through (`current` for the
    /// current one).
    pub context: String,
    pub options: Option<Options>,
    /// The API server's version, or why it could not be reached (then
    /// nothing else was read).
    pub api_server: Read<String>,
    /// The local cluster's name.
    pub cluster: Read<String>,
    pub deployment: Read<Option<Deployment>>,
    pub service: Read<Option<Service>>,
    pub lease: Read<Option<Lease>>,
    pub kube_dns: Read<Option<ConfigMap>>,
    pub coredns: Read<Option<ConfigMap>>,
    /// `networking.istio.io` versions served, the preferred first.
    pub istio_versions: Read<Vec<String>>,
    /// Every Gateway of the cluster.
    pub gateways: Read<Vec<DynamicObject>>,
    /// Pods of every namespace labelled as the east-west gateway's
    /// selector says, and the Services of their namespaces.
    pub gateway_pods: Read<Vec<Pod>>,
    pub gateway_services: Read<Vec<Service>>,
    /// Every ServiceEntry of the cluster.
    pub service_entries: Read<Vec<DynamicObject>>,
    /// Every EnvoyFilter of the cluster.
    pub envoy_filters: Read<Vec<DynamicObject>>,
    /// The injector's ConfigMaps (`istio-sidecar-injector*` in Istio's
    /// namespace).
    pub injector: Read<Vec<ConfigMap>>,
    /// istiod's Deployments: `app=istiod` in Istio's namespace (every
    /// revision), else the one named `istiod`, or `istio-pilot` before 1.5.
    pub istiod: Read<Vec<Deployment>>,
    pub istio_namespace: Read<Option<Namespace>>,
    /// `istio-ca-root-cert` in Istio's namespace.
    pub root_cert: Read<Option<ConfigMap>>,
    /// The registry and where it was read.
    pub registry: Read<(Registry, String)>,
    pub peers: Vec<PeerSeen>,
    /// The MCS API's ServiceExports and ServiceImports of every namespace
    /// (`Ok(None)`: the cluster serves no MCS version).
    pub mcs: Read<Option<McsSeen>>,
}

/// What `doctor` read of the MCS API in one cluster.
#[derive(Clone, Debug)]
pub struct McsSeen {
    /// The version read in (`v1beta1`, `v1alpha1`).
    pub version: String,
    pub exports: Vec<DynamicObject>,
    pub imports: Vec<DynamicObject>,
    /// The cluster's namespaces: a service whose namespace is not among
    /// them gets no ServiceImport here (namespace sameness).
    pub namespaces: std::collections::BTreeSet<String>,
}

/// A peer Secret and what reaching its cluster gave.
#[derive(Clone, Debug)]
pub struct PeerSeen {
    /// `Secret <namespace>/<name>`.
    pub secret: String,
    /// The cluster it names, once the Secret decoded.
    pub cluster: Option<String>,
    /// Whether the peer holds the MeshCluster of its own name; `Err`: the
    /// Secret does not give a peer, or its API server did not answer.
    pub holds_cluster: Read<bool>,
}

/// The name of the ConfigMap the Deployment reads its cluster name from.
pub const CONFIG: &str = "globaldns-config";

pub(super) fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
}

async fn get<K>(api: Api<K>, name: &str) -> Read<Option<K>>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.get_opt(name).await.map_err(text)
}

/// A client for `context` (`None`: the current one) of the kubeconfig,
/// each request bounded by `timeout` (connect and read), so that a
/// blackholed API server costs one timeout, not one per read.
pub async fn client_for(context: Option<&str>, timeout: Duration) -> anyhow::Result<kube::Client> {
    use anyhow::Context as _;
    let options = KubeConfigOptions {
        context: context.map(str::to_string),
        ..Default::default()
    };
    let config = match Kubeconfig::read() {
        Ok(kubeconfig) => kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .with_context(|| format!("kubeconfig context {}", context.unwrap_or("(current)")))?,
        Err(_) if context.is_none() => kube::Config::infer()
            .await
            .context("no kubeconfig and not in a pod")?,
        Err(e) => return Err(e).context("cannot read the kubeconfig"),
    };
    let mut config = config;
    config.connect_timeout = Some(timeout);
    config.read_timeout = Some(timeout);
    kube::Client::try_from(config).context("cannot make a client")
}

fn istio_resource(version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(GROUP, version, kind), plural)
}

pub(super) async fn list_all(
    client: &kube::Client,
    resource: &ApiResource,
) -> Read<Vec<DynamicObject>> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), resource);
    Ok(api.list(&ListParams::default()).await.map_err(text)?.items)
}

impl Observed {
    /// A cluster of which nothing was read yet (every read `Err("not
    /// read")`): what [`Self::read`] fills, and what tests start from.
    pub fn unread(context: &str) -> Self {
        fn no<T>() -> Read<T> {
            Err("not read".to_string())
        }
        Self {
            context: context.to_string(),
            options: None,
            api_server: no(),
            cluster: no(),
            deployment: no(),
            service: no(),
            lease: no(),
            kube_dns: no(),
            coredns: no(),
            istio_versions: no(),
            gateways: no(),
            gateway_pods: no(),
            gateway_services: no(),
            service_entries: no(),
            envoy_filters: no(),
            injector: no(),
            istiod: no(),
            istio_namespace: no(),
            root_cert: no(),
            registry: no(),
            peers: Vec::new(),
            mcs: no(),
        }
    }

    /// Reads cluster `context` (its name as given, for the report) through
    /// `client`; all but the registry
    /// ([`super::registry_read::read_registry`]).
    pub async fn read(client: &kube::Client, context: &str, options: &Options) -> Self {
        let ns = options.namespace.as_str();
        let istio = options.istio_namespace.as_str();
        let mut seen = Observed::unread(context);
        seen.options = Some(options.clone());
        seen.api_server =
            match tokio::time::timeout(options.timeout, client.apiserver_version()).await {
                Ok(Ok(info)) => Ok(info.git_version),
                Ok(Err(e)) => Err(text(e)),
                Err(_) => Err(format!("no answer within {:?}", options.timeout)),
            };
        if seen.api_server.is_err() {
            return seen;
        }
        seen.cluster = match &options.cluster {
            Some(name) => Ok(name.clone()),
            None => cluster_name(client, ns).await,
        };
        if let (Ok(cluster), Some(kept)) = (&seen.cluster, seen.options.as_mut()) {
            kept.target.cluster = cluster.clone();
        }
        seen.deployment = get(Api::namespaced(client.clone(), ns), &options.name).await;
        seen.service = get(Api::namespaced(client.clone(), ns), &options.name).await;
        seen.lease = get(Api::namespaced(client.clone(), ns), &options.name).await;
        let system: Api<ConfigMap> = Api::namespaced(client.clone(), DNS_NAMESPACE);
        seen.kube_dns = get(system.clone(), KUBE_DNS).await;
        seen.coredns = get(system, COREDNS).await;
        seen.istio_versions = crate::discovery::served_versions(client, GROUP)
            .await
            .map_err(text);
        let version = seen.istio_versions.as_ref().ok().and_then(|served| {
            crate::discovery::newest(&IstioApiVersion::NEWEST_FIRST, served, |v| v.version())
        });
        let not_served = || Err(format!("the API server does not serve {GROUP}"));
        match version {
            Some(v) => {
                let v = v.version();
                seen.gateways = list_all(client, &istio_resource(v, "Gateway", "gateways")).await;
                seen.service_entries =
                    list_all(client, &istio_resource(v, "ServiceEntry", "serviceentries")).await;
            }
            None => {
                seen.gateways = not_served();
                seen.service_entries = not_served();
            }
        }
        // EnvoyFilter is served in v1alpha3 only.
        seen.envoy_filters = match &seen.istio_versions {
            Ok(served) if served.iter().any(|v| v == "v1alpha3") => {
                list_all(
                    client,
                    &istio_resource("v1alpha3", "EnvoyFilter", "envoyfilters"),
                )
                .await
            }
            Ok(_) => Ok(Vec::new()),
            Err(e) => Err(e.clone()),
        };
        let selector = options
            .target
            .gateway_selector
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        let pods: Api<Pod> = Api::all(client.clone());
        seen.gateway_pods = pods
            .list(&ListParams::default().labels(&selector))
            .await
            .map(|l| l.items)
            .map_err(text);
        seen.gateway_services = match &seen.gateway_pods {
            Ok(pods) => gateway_services(client, pods).await,
            Err(e) => Err(e.clone()),
        };
        let istio_maps: Api<ConfigMap> = Api::namespaced(client.clone(), istio);
        seen.injector = istio_maps
            .list(&ListParams::default())
            .await
            .map(|l| {
                l.items
                    .into_iter()
                    .filter(|m| {
                        m.metadata
                            .name
                            .as_deref()
                            .is_some_and(|n| n.starts_with("istio-sidecar-injector"))
                    })
                    .collect()
            })
            .map_err(text);
        seen.root_cert = get(istio_maps, "istio-ca-root-cert").await;
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), istio);
        seen.istiod = match deployments
            .list(&ListParams::default().labels("app=istiod"))
            .await
        {
            Ok(list) if list.items.is_empty() => match get(deployments.clone(), "istiod").await {
                Ok(None) => get(deployments, "istio-pilot")
                    .await
                    .map(|d| d.into_iter().collect()),
                other => other.map(|d| d.into_iter().collect()),
            },
            Ok(list) => Ok(list.items),
            Err(e) => Err(text(e)),
        };
        seen.istio_namespace = get(Api::all(client.clone()), istio).await;
        seen
    }
}

/// The Services in the gateway pods' namespaces.
async fn gateway_services(client: &kube::Client, pods: &[Pod]) -> Read<Vec<Service>> {
    let namespaces: std::collections::BTreeSet<&str> = pods
        .iter()
        .filter_map(|p| p.metadata.namespace.as_deref())
        .collect();
    let mut out = Vec::new();
    for ns in namespaces {
        let api: Api<Service> = Api::namespaced(client.clone(), ns);
        out.extend(api.list(&ListParams::default()).await.map_err(text)?.items);
    }
    Ok(out)
}

async fn cluster_name(client: &kube::Client, namespace: &str) -> Read<String> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    match api.get_opt(CONFIG).await {
        Ok(Some(map)) => map
            .data
            .and_then(|d| d.get("cluster").cloned())
            .filter(|c| !c.is_empty())
            .ok_or_else(|| format!("ConfigMap {namespace}/{CONFIG} has no key `cluster`")),
        Ok(None) => Err(format!(
            "ConfigMap {namespace}/{CONFIG} does not exist (give --cluster)"
        )),
        Err(e) => Err(format!("ConfigMap {namespace}/{CONFIG}: {e}")),
    }
}

/// The container `name` of a Deployment, else its first one.
pub(super) fn container<'d>(
    deployment: &'d Deployment,
    name: &str,
) -> Option<&'d k8s_openapi::api::core::v1::Container> {
    let containers = &deployment.spec.as_ref()?.template.spec.as_ref()?.containers;
    containers
        .iter()
        .find(|c| c.name == name)
        .or_else(|| containers.first())
}

/// The value of flag `--<flag>` (or its environment variable `env`, a
/// literal value) of globaldns' container in its Deployment.
pub(super) fn flag(deployment: &Deployment, flag: &str, env: &str) -> Option<String> {
    let container = container(deployment, "globaldns")?;
    let args = container.args.clone().unwrap_or_default();
    let long = format!("--{flag}");
    for (i, arg) in args.iter().enumerate() {
        if let Some(value) = arg.strip_prefix(&format!("{long}=")) {
            return Some(value.to_string());
        }
        if *arg == long {
            return args.get(i + 1).cloned();
        }
    }
    env_of(deployment, "globaldns", env)
}

/// The value of environment variable `name` of container `container` of a
/// Deployment (a literal value; one from a reference is not followed).
pub(super) fn env_of(deployment: &Deployment, container_name: &str, name: &str) -> Option<String> {
    container(deployment, container_name)?
        .env
        .as_ref()?
        .iter()
        .find(|e| e.name == name)
        .and_then(|e| e.value.clone())
}

/// Options as the defaults give them, for cluster `east`: what the checks'
/// tests start from.
#[cfg(test)]
pub fn tests_options() -> Options {
    Options {
        namespace: "globaldns".into(),
        name: "globaldns".into(),
        istio_namespace: "istio-system".into(),
        zones: vec!["global".into()],
        per_cluster_names: true,
        cluster: None,
        registry: None,
        target: crate::mesh::Target::new("east", "istio-system"),
        timeout: Duration::from_secs(1),
    }
}
