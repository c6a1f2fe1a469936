//! One cluster's registry objects, watched: its MeshClusters and
//! ExportedServices in one namespace, and, when the cluster serves the MCS
//! API (`multicluster.x-k8s.io`), its ServiceExports and the Services they
//! export. [`ClusterWatch::input`] reads the stores for
//! [`crate::registry::kube::assemble`], which merges the clusters' inputs.
//!
//! Objects are watched untyped and decoded one by one, so an object that
//! does not decode is skipped with a warning naming it; a typed watch would
//! fail the whole list on it and never get past it.

use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::api::core::v1::Service as KubeService;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::core::GroupVersionKind;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use super::assemble::ViewInput;
use super::merge::McsExport;
use super::resources::{ExportedService, MeshCluster};
use crate::registry::Port;
use crate::watch::{RETRY_MAX, RETRY_MIN, retrying};

/// The kinds a cluster watch follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Cluster,
    Service,
    ServiceExport,
    KubeService,
}

impl Kind {
    /// The kind as the API server and kubectl name it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Cluster => "MeshCluster",
            Kind::Service => "ExportedService",
            Kind::ServiceExport => "ServiceExport",
            Kind::KubeService => "Service",
        }
    }
}

/// What a watch stream says.
pub enum Changed {
    /// The initial list (or a relist) of a kind is complete.
    Listed(Kind),
    /// A list of a kind is about to be requested.
    Relisting,
    Object,
    /// The cluster's discovery answered whether it serves the MCS API; if
    /// it does, its ServiceExports and Services are watched from now on.
    Mcs(bool),
    /// A request failed; the watch (or discovery) retries by itself.
    Error(Kind, String),
}

/// The stores of one cluster, filled by the stream [`ClusterWatch::start`]
/// returns.
pub struct ClusterWatch {
    clusters: Store<DynamicObject>,
    services: Store<DynamicObject>,
    /// ServiceExports and Services: filled only when the cluster serves
    /// the MCS API, empty otherwise.
    exports: Store<DynamicObject>,
    kube_services: Store<KubeService>,
}

/// The Multi-Cluster Services API's group (KEP-1645, `sigs.k8s.io/mcs-api`).
pub const MCS_GROUP: &str = "multicluster.x-k8s.io";

/// The MCS API versions ServiceExports are read in, the newest first:
/// `v1beta1` (mcs-api v0.5.0, April 2026, its storage version since) and
/// `v1alpha1`. What globaldns reads of a ServiceExport (its name and
/// namespace) is the same in both.
pub const MCS_VERSIONS: [&str; 2] = ["v1beta1", "v1alpha1"];

/// The MCS `ServiceExport` in `multicluster.x-k8s.io/<version>`.
pub fn service_exports_resource(version: &str) -> ApiResource {
    let gvk = GroupVersionKind::gvk(MCS_GROUP, version, "ServiceExport");
    ApiResource::from_gvk_with_plural(&gvk, "serviceexports")
}

/// Why a cluster's discovery could not tell whether it serves the MCS API.
#[derive(Debug, thiserror::Error)]
pub enum McsError {
    /// The API server could not be asked which versions of [`MCS_GROUP`]
    /// it serves (`source`: kube's error): retried, as an unreachable
    /// cluster is not a cluster without MCS.
    #[error("discovering the MCS API: {source}")]
    Discovery {
        #[source]
        source: kube::Error,
    },
}

/// Why a watched object does not decode into its typed form.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// The object could not be turned into JSON to decode (serde_json's
    /// error, as it says it).
    #[error(transparent)]
    Json(serde_json::Error),
    /// The field at `path` (`spec.ports[0].number`, `.` for the object
    /// itself) does not decode: `source` says why.
    #[error("{path}: {source}")]
    Field {
        path: String,
        #[source]
        source: serde_json::Error,
    },
}

/// Why a Service exported with MCS gives no ports to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PortsError {
    /// The Service object has no `spec`.
    #[error("the Service has no spec")]
    NoSpec,
    /// The Service has no TCP port (UDP and SCTP ports are left out: a
    /// ServiceEntry port carries neither).
    #[error("the Service has no TCP port")]
    NoTcpPort,
}

/// The newest MCS version the cluster serves ([`MCS_VERSIONS`]), `None`
/// when it serves neither (the MCS CRD is not installed, or is of a
/// version globaldns does not know). Any failure to ask is an error
/// ([`McsError::Discovery`]), to be retried: an unreachable cluster is not
/// a cluster without MCS.
async fn mcs_version(client: &Client) -> Result<Option<&'static str>, McsError> {
    let served = crate::discovery::served_versions(client, MCS_GROUP)
        .await
        .map_err(|source| McsError::Discovery { source })?;
    Ok(crate::discovery::newest(&MCS_VERSIONS, &served, |v| v))
}

/// Discovery of the MCS API, retried as the watches are (from
/// [`RETRY_MIN`], at most [`RETRY_MAX`] apart) until it answers: each
/// failure is an item, the answer the last one.
fn discover_mcs(client: Client) -> BoxStream<'static, Result<Option<&'static str>, McsError>> {
    futures::stream::unfold(
        (client, Some(Duration::ZERO)),
        |(client, wait)| async move {
            let wait = wait?;
            tokio::time::sleep(wait).await;
            match mcs_version(&client).await {
                Ok(version) => Some((Ok(version), (client, None))),
                Err(e) => {
                    let next = (wait * 2).clamp(RETRY_MIN, RETRY_MAX);
                    Some((Err(e), (client, Some(next))))
                }
            }
        },
    )
    .boxed()
}

impl ClusterWatch {
    /// Starts watching `namespace` of the cluster `client` reaches, and,
    /// once discovery says it serves the MCS API, its ServiceExports and
    /// Services in every namespace. Nothing is awaited here: the stream
    /// says what happens (lists done, discovery's answer, errors).
    pub fn start(client: &Client, namespace: &str) -> (Self, BoxStream<'static, Changed>) {
        let (clusters, cluster_events) =
            watch_untyped::<MeshCluster>(client, namespace, Kind::Cluster);
        let (services, service_events) =
            watch_untyped::<ExportedService>(client, namespace, Kind::Service);
        // The store is made before discovery says which version the
        // cluster serves; it keys objects by name and namespace, which do
        // not depend on the version they are read in.
        let export_writer =
            reflector::store::Writer::new(service_exports_resource(MCS_VERSIONS[0]));
        let exports = export_writer.as_reader();
        let service_writer = reflector::store::Writer::<KubeService>::default();
        let kube_services = service_writer.as_reader();
        let mut writers = Some((client.clone(), export_writer, service_writer));
        let mcs_events = discover_mcs(client.clone()).flat_map(move |answer| match answer {
            Err(e) => {
                let message = e.to_string();
                futures::stream::once(async move { Changed::Error(Kind::ServiceExport, message) })
                    .boxed()
            }
            Ok(version) => {
                let serves = version.is_some();
                let announce = futures::stream::once(async move { Changed::Mcs(serves) });
                match (writers.take(), version) {
                    (Some((client, export_writer, service_writer)), Some(version)) => {
                        let resource = service_exports_resource(version);
                        let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
                        let exports = tagged(
                            reflector::reflector(export_writer, lean(api)),
                            Kind::ServiceExport,
                        );
                        let api: Api<KubeService> = Api::all(client);
                        let services = tagged(
                            reflector::reflector(service_writer, lean(api)),
                            Kind::KubeService,
                        );
                        announce
                            .chain(futures::stream::select(exports, services))
                            .boxed()
                    }
                    _ => announce.boxed(),
                }
            }
        });
        let events =
            futures::stream::select_all([cluster_events, service_events, mcs_events.boxed()]);
        (
            Self {
                clusters,
                services,
                exports,
                kube_services,
            },
            events.boxed(),
        )
    }

    /// Whether the cluster holds a MeshCluster object named `name`.
    pub fn holds_cluster(&self, name: &str) -> bool {
        self.clusters
            .state()
            .iter()
            .any(|o| o.metadata.name.as_deref() == Some(name))
    }

    /// What the stores say, as cluster `cluster`'s input to the registry
    /// ([`crate::registry::kube::assemble`]): its MeshClusters decoded (one that does not
    /// decode is left out, with a warning in `warnings`), its MCS exports,
    /// and its ExportedService objects as the store holds them.
    pub fn input(&self, cluster: &str, local: bool, warnings: &mut Vec<String>) -> ViewInput {
        ViewInput {
            cluster: cluster.to_string(),
            local,
            clusters: decode_all::<MeshCluster>(&self.clusters, Kind::Cluster, warnings)
                .into_iter()
                .map(Into::into)
                .collect(),
            exports: mcs_exports(&self.exports, &self.kube_services, warnings),
            services: self.services.state(),
        }
    }
}

fn tagged<K, S>(stream: S, kind: Kind) -> BoxStream<'static, Changed>
where
    S: futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
{
    stream
        .map(move |event| match event {
            Ok(watcher::Event::InitDone) => Changed::Listed(kind),
            // A (re)list begins: said before its request is sent, so it
            // says nothing of whether the cluster answers.
            Ok(watcher::Event::Init) => Changed::Relisting,
            Ok(_) => Changed::Object,
            Err(e) => Changed::Error(kind, e.to_string()),
        })
        .boxed()
}

/// The annotation `kubectl apply` (client-side, the way the README applies
/// `export-resources`) writes: the whole object again, as one JSON string.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The watch of `api`, retried, with each object's
/// `metadata.managedFields` and [`LAST_APPLIED`] annotation dropped before
/// the store keeps it: nothing here reads them, and they are most of an
/// applied object's metadata (the first, server-side; the second,
/// client-side).
fn lean<K>(
    api: Api<K>,
) -> impl futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    retrying(watcher(api, watcher::Config::default())).modify(|object| {
        object.managed_fields_mut().clear();
        if let Some(annotations) = object.meta_mut().annotations.as_mut() {
            annotations.remove(LAST_APPLIED);
        }
    })
}

/// A store of `K` objects of `namespace` (undecoded) and the stream that
/// fills it.
fn watch_untyped<K: Resource<DynamicType = ()> + DeserializeOwned>(
    client: &Client,
    namespace: &str,
    kind: Kind,
) -> (Store<DynamicObject>, BoxStream<'static, Changed>) {
    let resource = ApiResource::erase::<K>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    let writer = reflector::store::Writer::new(resource);
    let reader = writer.as_reader();
    let stream = reflector::reflector(writer, lean(api));
    (reader, tagged(stream, kind))
}

fn decode_all<K: DeserializeOwned>(
    store: &Store<DynamicObject>,
    kind: Kind,
    warnings: &mut Vec<String>,
) -> Vec<K> {
    store
        .state()
        .iter()
        .filter_map(|object| match decode::<K>(object) {
            Ok(decoded) => Some(decoded),
            Err(e) => {
                warnings.push(format!(
                    "skipped {} {}/{}: {e}",
                    kind.name(),
                    object.metadata.namespace.as_deref().unwrap_or("-"),
                    object.metadata.name.as_deref().unwrap_or("-")
                ));
                None
            }
        })
        .collect()
}

/// One object into its typed form. Errors: [`ObjectError::Field`] names
/// the offending field; [`ObjectError::Json`] when the object is not JSON.
pub fn decode<K: DeserializeOwned>(object: &DynamicObject) -> Result<K, ObjectError> {
    let value = serde_json::to_value(object).map_err(ObjectError::Json)?;
    serde_path_to_error::deserialize(value).map_err(|e| ObjectError::Field {
        path: e.path().to_string(),
        source: e.into_inner(),
    })
}

/// The MCS exports: each ServiceExport whose Service exists, with that
/// Service's ports (a ServiceExport is named after the Service it exports,
/// in its namespace). One without its Service, or whose Service is of type
/// ExternalName, is reported and left out.
fn mcs_exports(
    exports: &Store<DynamicObject>,
    services: &Store<KubeService>,
    warnings: &mut Vec<String>,
) -> Vec<McsExport> {
    let mut out = Vec::new();
    for export in exports.state() {
        let name = export.metadata.name.clone().unwrap_or_default();
        let namespace = export.metadata.namespace.clone().unwrap_or_default();
        let key = reflector::ObjectRef::<KubeService>::new(&name).within(&namespace);
        let Some(service) = services.get(&key) else {
            warnings.push(format!(
                "ServiceExport {namespace}/{name}: no Service {namespace}/{name} to export"
            ));
            continue;
        };
        if service.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("ExternalName") {
            // KEP-1645: an ExternalName Service cannot be exported.
            warnings.push(format!(
                "ServiceExport {namespace}/{name}: Service {namespace}/{name} is of type ExternalName, which cannot be exported"
            ));
            continue;
        }
        match ports_of(&service) {
            Ok(ports) => out.push(McsExport {
                name,
                namespace,
                ports,
            }),
            Err(e) => warnings.push(format!("ServiceExport {namespace}/{name}: {e}")),
        }
    }
    out
}

/// A Service's ports as the registry's: the port's name (or `port-<n>` for
/// a Service's one unnamed port), its number, and the Istio protocol its
/// `appProtocol` or its name says (Istio's protocol selection: a name
/// `<protocol>[-<suffix>]`), TCP otherwise. UDP and SCTP ports are left
/// out: a ServiceEntry port carries neither. Errors: the Service has no
/// spec, or no TCP port ([`PortsError`]).
pub fn ports_of(service: &KubeService) -> Result<Vec<Port>, PortsError> {
    let spec = service.spec.as_ref().ok_or(PortsError::NoSpec)?;
    let ports: Vec<Port> = spec
        .ports
        .iter()
        .flatten()
        .filter(|p| p.protocol.as_deref().is_none_or(|proto| proto == "TCP"))
        .map(|p| {
            let name = p
                .name
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| format!("port-{}", p.port));
            let hint = p.app_protocol.clone().unwrap_or_else(|| name.clone());
            Port::new(
                &name,
                u32::try_from(p.port).unwrap_or(0),
                istio_protocol(&hint),
            )
        })
        .collect();
    if ports.is_empty() {
        return Err(PortsError::NoTcpPort);
    }
    Ok(ports)
}

/// The Istio protocol a port name or `appProtocol` selects.
fn istio_protocol(hint: &str) -> &'static str {
    let hint = hint.to_ascii_lowercase();
    let prefix = hint
        .trim_start_matches("kubernetes.io/")
        .split(['-', '_'])
        .next()
        .unwrap_or_default()
        .to_string();
    match prefix.as_str() {
        "http" => "HTTP",
        "http2" | "h2c" => "HTTP2",
        "https" => "HTTPS",
        "grpc" if hint.starts_with("grpc-web") => "GRPC-WEB",
        "grpc" => "GRPC",
        "tls" => "TLS",
        "mongo" => "MONGO",
        "mysql" => "MYSQL",
        "redis" => "REDIS",
        _ => "TCP",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ServicePort, ServiceSpec};

    /// The stores keep the watched objects without
    /// `metadata.managedFields`: at 10,000 server-side-applied
    /// ExportedServices that halved the resident memory (143 → 74 MiB,
    /// bench/k8s_answer.py); nor kubectl's last-applied annotation, and
    /// other annotations are kept.
    #[tokio::test]
    async fn watched_objects_are_kept_without_managed_fields_or_last_applied() {
        use http::{Request, Response};
        use kube::client::Body;
        let (mock, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let api: Api<DynamicObject> = Api::namespaced_with(
            Client::new(mock, "default"),
            "mesh",
            &ApiResource::erase::<ExportedService>(&()),
        );
        tokio::spawn(async move {
            let (request, send) = handle.next_request().await.expect("the list");
            assert_eq!(
                request.uri().path(),
                "/apis/globaldns.io/v1alpha1/namespaces/mesh/exportedservices"
            );
            let list = serde_json::json!({
                "apiVersion": "globaldns.io/v1alpha1",
                "kind": "ExportedServiceList",
                "metadata": {"resourceVersion": "1"},
                "items": [{
                    "apiVersion": "globaldns.io/v1alpha1",
                    "kind": "ExportedService",
                    "metadata": {
                        "name": "httpbin", "namespace": "mesh", "resourceVersion": "1",
                        "annotations": {LAST_APPLIED: "{\"kind\":\"ExportedService\"}",
                                        "team": "payments"},
                        "managedFields": [{"manager": "kubectl", "operation": "Apply",
                                           "apiVersion": "globaldns.io/v1alpha1",
                                           "fieldsType": "FieldsV1",
                                           "fieldsV1": {"f:spec": {"f:name": {}}}}],
                    },
                    "spec": {"name": "httpbin", "namespace": "bar", "ports": []},
                }],
            });
            let body = Body::from(serde_json::to_vec(&list).unwrap());
            send.send_response(Response::builder().body(body).unwrap());
            if let Some((_, send)) = handle.next_request().await {
                crate::mock_api::hold_open(send);
            }
        });
        let mut events = lean(api).boxed();
        let object = loop {
            match events.next().await.expect("the watch goes on") {
                Ok(watcher::Event::InitApply(object)) => break object,
                Ok(_) => continue,
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!(object.name_any(), "httpbin");
        assert!(object.managed_fields().is_empty(), "{:?}", object.metadata);
        let annotations: Vec<_> = object.annotations().keys().collect();
        assert_eq!(
            annotations,
            ["team"],
            "only kubectl's last-applied is dropped"
        );
        assert_eq!(object.data["spec"]["name"], "httpbin", "the rest is kept");
    }

    fn port(name: Option<&str>, number: i32, app: Option<&str>, proto: &str) -> ServicePort {
        ServicePort {
            name: name.map(String::from),
            port: number,
            app_protocol: app.map(String::from),
            protocol: Some(proto.to_string()),
            ..Default::default()
        }
    }

    /// Issue 15: a Service exported with MCS is exported with its ports;
    /// the protocol follows Istio's rules (appProtocol, then the name).
    #[test]
    fn a_service_s_ports_become_registry_ports() {
        let service = KubeService {
            spec: Some(ServiceSpec {
                ports: Some(vec![
                    port(Some("http-web"), 80, None, "TCP"),
                    port(Some("api"), 9090, Some("grpc"), "TCP"),
                    port(Some("dns"), 53, None, "UDP"),
                    port(Some("redis"), 6379, None, "TCP"),
                    port(Some("data"), 5000, Some("kubernetes.io/h2c"), "TCP"),
                ]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let ports = ports_of(&service).unwrap();
        let got: Vec<(&str, u32, &str)> = ports
            .iter()
            .map(|p| (p.name(), p.number, p.protocol()))
            .collect();
        assert_eq!(
            got,
            [
                ("http-web", 80, "HTTP"),
                ("api", 9090, "GRPC"),
                ("redis", 6379, "REDIS"),
                ("data", 5000, "HTTP2")
            ]
        );
        let unnamed = KubeService {
            spec: Some(ServiceSpec {
                ports: Some(vec![port(None, 8080, None, "TCP")]),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(ports_of(&unnamed).unwrap()[0].name(), "port-8080");
        let udp_only = KubeService {
            spec: Some(ServiceSpec {
                ports: Some(vec![port(Some("dns"), 53, None, "UDP")]),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(ports_of(&udp_only).is_err());
    }
}
