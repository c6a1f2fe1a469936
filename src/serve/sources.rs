//! The sources `serve` starts, each feeding the controller's input loop
//! ([`crate::controller::feed`]): the registry file or the registry
//! resources' watch, and, when asked for, drop-in mode's watch of the
//! hand-written ServiceEntries and the VIP record's.

use std::sync::Arc;

use anyhow::Context;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::kubernetes::Cluster;
use super::{ServeConfig, Source};
use crate::controller::Controller;
use crate::controller::feed::Feeds;
use crate::mesh;
use crate::metrics::Metrics;
use crate::registry::file::FileWatcher;
use crate::registry::kube;

/// Starts the sources: the registry file (read once now, so the first
/// answers come from it) or the registry resources' watch (its first
/// registry comes once both lists are in; until then the last-known-good
/// one serves), and, when asked for, drop-in mode's watch and the
/// record's.
pub(super) async fn start(
    config: &ServeConfig,
    controller: &mut Controller,
    cluster: Option<&Cluster>,
    metrics: &Arc<Metrics>,
    tasks: &mut JoinSet<()>,
    shutdown: &CancellationToken,
) -> anyhow::Result<Feeds> {
    let (tx, registry) = mpsc::channel(1);
    let mut first = None;
    match (&config.registry, cluster) {
        (Source::File(path), _) => {
            let mut watcher = FileWatcher::new(
                path.clone(),
                config.settings.zones.clone(),
                config.reload_interval,
                config.in_place_settle,
            );
            // On a blocking thread: DNS may be answering already (a
            // warm start), and its TCP task, spawned on this worker,
            // is first polled once this task lets go of the worker.
            let (watcher, loaded) = tokio::task::spawn_blocking(move || {
                let loaded = watcher.load_now();
                (watcher, loaded)
            })
            .await
            .context("the registry file's first read panicked")?;
            match loaded {
                Ok(registry) => first = Some(registry),
                Err(e) => tracing::error!("{e}"),
            }
            tasks.spawn(watcher.run(tx, shutdown.clone()));
        }
        (Source::Kubernetes { peers, .. }, Some(cluster)) => {
            let watch = kube::source::WatchConfig {
                namespace: cluster.namespace.clone(),
                zones: config.settings.zones.clone(),
                cluster: config.cluster.clone().unwrap_or_default(),
                peer_files: peers.files.clone(),
                peer_secrets: peers.secrets,
                peer_stale_after: peers.stale_after,
                remembered: controller.current().cloned(),
            };
            tasks.spawn(kube::source::run(
                cluster.client.clone(),
                watch,
                tx,
                metrics.clone(),
                shutdown.clone(),
            ));
        }
        (Source::Kubernetes { .. }, None) => {
            anyhow::bail!("the Kubernetes registry source needs a cluster")
        }
    }
    let hand_written = match (config.serve_service_entries, cluster) {
        (true, Some(cluster)) => {
            let (tx, rx) = mpsc::channel(1);
            tasks.spawn(mesh::dropin::run(
                cluster.client.clone(),
                tx,
                shutdown.clone(),
            ));
            Some(rx)
        }
        _ => None,
    };
    let record = match (&config.sync, cluster) {
        (Some(sync), Some(cluster)) => {
            let (tx, rx) = mpsc::channel(1);
            tasks.spawn(mesh::record::run(
                cluster.client.clone(),
                sync.target.namespace.clone(),
                tx,
                shutdown.clone(),
            ));
            Some(rx)
        }
        _ => None,
    };
    let mut feeds = Feeds::new(
        registry,
        hand_written,
        record,
        config.brake,
        metrics.clone(),
    );
    if let Some(first) = first {
        feeds.offer(controller, first);
    }
    Ok(feeds)
}
