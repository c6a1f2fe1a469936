//! Watching the registry resources: every MeshCluster and ExportedService
//! in one namespace, each kind through a kube watcher with backoff, kept in
//! a reflector store. After a change (and once both initial lists are in),
//! the registry is rebuilt from the stores and handed to the controller
//! like a re-read registry file.
//!
//! Objects are watched untyped and decoded one by one, so an object that
//! does not decode is skipped with a warning naming it; a typed watch would
//! fail the whole list on it and never get past it.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::resources::{ExportedService, MeshCluster, registry_from};
use super::watching::{Debounce, retrying};
use crate::metrics::Metrics;
use crate::registry::{Registry, RegistryError};

/// Watches `namespace` until `shutdown`, sending each rebuilt registry:
/// after the initial lists of both kinds, and after changes (gathered as
/// [`Debounce`] says: a burst is one rebuild, a stream of changes is rebuilt
/// at least every second).
pub async fn run(
    client: Client,
    namespace: String,
    zones: Vec<String>,
    tx: mpsc::Sender<Result<Registry, RegistryError>>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let (clusters, cluster_events) = watch::<MeshCluster>(&client, &namespace);
    let (services, service_events) = watch::<ExportedService>(&client, &namespace);
    let mut events = futures::stream::select(cluster_events, service_events);
    let mut listed = (false, false);
    let mut debounce = Debounce::default();
    let mut reported = BTreeSet::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            event = events.next() => match event {
                Some(Changed::Listed(Kind::Cluster)) => { listed.0 = true; debounce.touch(); }
                Some(Changed::Listed(Kind::Service)) => { listed.1 = true; debounce.touch(); }
                Some(Changed::Object) => debounce.touch(),
                Some(Changed::Error(kind, e)) => {
                    // The watch retries by itself (k8s::watching).
                    tracing::warn!("watching {} objects in {namespace}: {e}", kind.name());
                }
                None => return,
            },
            _ = debounce.due(), if listed == (true, true) => {
                let registry = build(&clusters, &services, &zones, &mut reported, &metrics);
                if tx.send(Ok(registry)).await.is_err() {
                    return;
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Cluster,
    Service,
}

impl Kind {
    /// The kind as the API server and kubectl name it.
    fn name(self) -> &'static str {
        match self {
            Kind::Cluster => "MeshCluster",
            Kind::Service => "ExportedService",
        }
    }
}

enum Changed {
    /// The initial list (or a relist) is complete.
    Listed(Kind),
    Object,
    Error(Kind, watcher::Error),
}

trait Watched: Resource<DynamicType = ()> + DeserializeOwned {
    const KIND: Kind;
}

impl Watched for MeshCluster {
    const KIND: Kind = Kind::Cluster;
}

impl Watched for ExportedService {
    const KIND: Kind = Kind::Service;
}

/// A store of `K` objects (undecoded) and the stream that fills it.
fn watch<K: Watched>(
    client: &Client,
    namespace: &str,
) -> (
    Store<DynamicObject>,
    futures::stream::BoxStream<'static, Changed>,
) {
    let resource = ApiResource::erase::<K>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    let writer = reflector::store::Writer::new(resource);
    let reader = writer.as_reader();
    let stream = reflector::reflector(writer, retrying(watcher(api, watcher::Config::default())))
        .map(|event| match event {
            Ok(watcher::Event::InitDone) => Changed::Listed(K::KIND),
            Ok(_) => Changed::Object,
            Err(e) => Changed::Error(K::KIND, e),
        })
        .boxed();
    (reader, stream)
}

/// The registry from the stores' current objects. Warnings (objects that
/// do not decode or do not validate, exports from clusters that are not
/// there) are logged when they first appear, not on every rebuild.
fn build(
    clusters: &Store<DynamicObject>,
    services: &Store<DynamicObject>,
    zones: &[String],
    reported: &mut BTreeSet<String>,
    metrics: &Metrics,
) -> Registry {
    let mut warnings = Vec::new();
    let clusters: Vec<MeshCluster> = decode_all(clusters, &mut warnings);
    let services: Vec<ExportedService> = decode_all(services, &mut warnings);
    let undecoded = warnings.len();
    let from = registry_from(&clusters, &services, zones);
    warnings.extend(from.warnings);
    let gauges = [
        (&metrics.registry_objects_skipped, undecoded + from.skipped),
        (&metrics.registry_dangling_exports, from.dangling_exports),
    ];
    for (gauge, value) in gauges {
        gauge.store(value as u64, Ordering::Relaxed);
    }
    let current: BTreeSet<String> = warnings.into_iter().collect();
    for warning in current.difference(reported) {
        tracing::warn!("{warning}");
    }
    *reported = current;
    from.registry
}

fn decode_all<K: Watched>(store: &Store<DynamicObject>, warnings: &mut Vec<String>) -> Vec<K> {
    store
        .state()
        .iter()
        .filter_map(|object| match decode::<K>(object) {
            Ok(decoded) => Some(decoded),
            Err(e) => {
                warnings.push(format!(
                    "skipped {} {}/{}: {e}",
                    K::KIND.name(),
                    object.metadata.namespace.as_deref().unwrap_or("-"),
                    object.metadata.name.as_deref().unwrap_or("-")
                ));
                None
            }
        })
        .collect()
}

/// One object into its typed form; the error names the offending field.
fn decode<K: DeserializeOwned>(object: &DynamicObject) -> Result<K, String> {
    let value = serde_json::to_value(object).map_err(|e| e.to_string())?;
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        format!("{path}: {}", e.into_inner())
    })
}

#[cfg(test)]
mod tests;
