//! The API server's side of `serve`: the client and the namespace globaldns
//! runs in, the VIP record read at start, and the sync.

use std::sync::Arc;

use anyhow::Context;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{ServeConfig, Source};
use crate::controller::Controller;
use crate::mesh;
use crate::mesh::record::Recorded;
use crate::metrics::Metrics;

/// A reachable API server, and where the registry resources and the Lease
/// live: `--kube-namespace`, else the client's namespace (the pod's own,
/// or the kubeconfig context's).
pub(super) struct Cluster {
    pub(super) client: kube::Client,
    pub(super) namespace: String,
}

impl Cluster {
    /// The cluster, when anything asked for needs one; an error when it
    /// cannot be reached.
    pub(super) async fn connect(config: &ServeConfig) -> anyhow::Result<Option<Self>> {
        let needed = matches!(config.registry, Source::Kubernetes { .. })
            || config.sync.is_some()
            || config.serve_service_entries;
        if !needed {
            return Ok(None);
        }
        let client = kube::Client::try_default().await.context(
            "cannot reach the Kubernetes API (in-cluster service account, or KUBECONFIG)",
        )?;
        let namespace = match &config.registry {
            Source::Kubernetes {
                namespace: Some(ns),
                ..
            } => ns.clone(),
            _ => client.default_namespace().to_string(),
        };
        Ok(Some(Self { client, namespace }))
    }

    /// In Kubernetes the owned ServiceEntries are the VIP record: read
    /// before anything is allocated (a new pod with an empty state
    /// directory takes its VIPs from them), then watched by the feed, so
    /// every replica answers what the Lease holder wrote.
    pub(super) async fn read_record(&self, config: &ServeConfig) -> Vec<Recorded> {
        let Some(sync) = &config.sync else {
            return Vec::new();
        };
        let read = async {
            let version = mesh::api_version::istio_api_version(&self.client).await?;
            let api =
                mesh::sync::service_entries(self.client.clone(), &sync.target.namespace, version);
            anyhow::Ok(mesh::record::owned_addresses(&api).await?)
        };
        read.await.unwrap_or_else(|e| {
            tracing::warn!(
                "owned ServiceEntries not read yet, VIPs come from the state directory and the hash until they are: {e}"
            );
            Vec::new()
        })
    }

    /// The sync, when asked for: it renders from every published registry
    /// (a subscription, cloned per publish only while it exists).
    pub(super) fn spawn_sync(
        &self,
        tasks: &mut JoinSet<()>,
        config: &ServeConfig,
        controller: &mut Controller,
        metrics: &Arc<Metrics>,
        shutdown: &CancellationToken,
    ) {
        let Some(sync) = config.sync.clone() else {
            return;
        };
        tasks.spawn(mesh::sync::run(
            self.client.clone(),
            self.namespace.clone(),
            sync,
            config.settings.clone(),
            controller.subscribe(),
            metrics.clone(),
            shutdown.clone(),
        ));
    }
}
