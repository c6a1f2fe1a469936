//! `globaldns serve`: binds the sockets, starts the controller (warm start
//! from the state directory), the UDP and TCP servers, and the registry
//! file watcher, and runs them until shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use arc_swap::ArcSwapOption;
use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::controller::{Controller, Settings};
use crate::dns::server::{self, Published, TcpLimits};
use crate::dns::udp;
use crate::k8s;
use crate::k8s::sync::SyncConfig;
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::registry::brake::{Brake, BrakeConfig, Decision, HeldBack};
use crate::registry::file::FileWatcher;

/// Everything `serve` needs, typed and checked.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub registry: Source,
    pub listen: SocketAddr,
    pub state_dir: PathBuf,
    pub settings: Settings,
    pub reload_interval: Duration,
    pub tcp: TcpLimits,
    /// UDP sockets and threads; more than one share the port with
    /// `SO_REUSEPORT`.
    pub udp_workers: usize,
    /// Keep the cluster's ServiceEntries in step, when set.
    pub sync: Option<SyncConfig>,
    /// Where to answer the CoreDNS gRPC protocol, when set.
    pub grpc: Option<SocketAddr>,
    /// Also answer the hosts of hand-written ServiceEntries (drop-in mode).
    pub serve_service_entries: bool,
    /// Where to serve /metrics, /healthz and /readyz, when set.
    pub admin: Option<SocketAddr>,
    /// On SIGTERM, how long to keep answering with readiness false before
    /// stopping, so that load balancers take the pod out first.
    pub drain_delay: Duration,
    /// The shrink brake on registry versions, from either source.
    pub brake: BrakeConfig,
}

/// Where the registry comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A YAML or JSON file, re-read when it changes.
    File(PathBuf),
    /// MeshCluster and ExportedService objects, watched in `namespace`
    /// (default: the client's namespace: the pod's own, or the kubeconfig
    /// context's).
    Kubernetes { namespace: Option<String> },
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::File(path) => write!(f, "{}", path.display()),
            Source::Kubernetes {
                namespace: Some(ns),
            } => write!(f, "kubernetes (namespace {ns})"),
            Source::Kubernetes { namespace: None } => write!(f, "kubernetes"),
        }
    }
}

/// A running server: where it listens, and its tasks.
pub struct Running {
    /// The address UDP and TCP are bound to (the real port when 0 was asked).
    pub addr: SocketAddr,
    /// The admin endpoint's address, when one was asked for.
    pub admin: Option<SocketAddr>,
    pub published: Arc<Published>,
    pub metrics: Arc<Metrics>,
    /// Set when shutdown begins: readiness turns false before anything stops.
    pub draining: Arc<AtomicBool>,
    tasks: JoinSet<()>,
}

impl Running {
    /// Waits until every task has stopped (after shutdown).
    pub async fn wait(mut self) {
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Starts serving; returns once the sockets are bound and the first
/// registry read has been tried.
pub async fn start(config: ServeConfig, shutdown: CancellationToken) -> anyhow::Result<Running> {
    let sockets = server::bind(config.listen, config.udp_workers)
        .await
        .with_context(|| format!("cannot listen on {} (UDP and TCP)", config.listen))?;
    let addr = sockets.local_addr()?;
    let grpc = match config.grpc {
        Some(grpc) => Some(
            tokio::net::TcpListener::bind(grpc)
                .await
                .with_context(|| format!("cannot listen for gRPC on {grpc}"))?,
        ),
        None => None,
    };

    let admin = match config.admin {
        Some(admin) => Some(
            tokio::net::TcpListener::bind(admin)
                .await
                .with_context(|| format!("cannot listen for the admin endpoint on {admin}"))?,
        ),
        None => None,
    };

    let published: Arc<Published> = Arc::new(ArcSwapOption::empty());
    let metrics = Arc::new(Metrics::default());
    let draining = Arc::new(AtomicBool::new(false));

    let needs_client = matches!(config.registry, Source::Kubernetes { .. })
        || config.sync.is_some()
        || config.serve_service_entries;
    let client = if needs_client {
        Some(kube::Client::try_default().await.context(
            "cannot reach the Kubernetes API (in-cluster service account, or KUBECONFIG)",
        )?)
    } else {
        None
    };
    // Where the registry resources and the Lease live.
    let namespace = match (&config.registry, &client) {
        (
            Source::Kubernetes {
                namespace: Some(ns),
            },
            _,
        ) => ns.clone(),
        (_, Some(client)) => client.default_namespace().to_string(),
        (_, None) => String::new(),
    };
    // In Kubernetes the owned ServiceEntries are the VIP record: read
    // before anything is allocated (a new pod with an empty state directory
    // takes its VIPs from them), then watched, so every replica answers what
    // the Lease holder wrote.
    let record = match (&config.sync, &client) {
        (Some(sync), Some(client)) => {
            let api = k8s::sync::service_entries(client.clone(), &sync.target.namespace);
            k8s::record::owned_addresses(&api).await.unwrap_or_else(|e| {
                tracing::warn!("owned ServiceEntries not read yet, VIPs come from the state directory and the hash until they are: {e}");
                Vec::new()
            })
        }
        _ => Vec::new(),
    };
    let mut controller = Controller::start(
        config.settings.clone(),
        &config.state_dir,
        published.clone(),
        metrics.clone(),
        record,
    );
    // Subscribed only when syncing: each published registry is then cloned
    // for the sync, which costs nothing to a server that does not sync.
    let changes = config.sync.as_ref().map(|_| controller.subscribe());
    let explained = admin.as_ref().map(|_| controller.subscribe());

    // The file is read before serving starts, so that the first answers
    // come from it; the Kubernetes watch delivers its first registry once
    // both lists are in (until then, the last-known-good registry serves).
    let (tx, mut rx) = mpsc::channel(1);
    // Every version from the source passes the shrink brake on its way to
    // the controller; the held one, if any, is shown to explain.
    let mut brake = Braked {
        brake: Brake::new(config.brake),
        held: tokio::sync::watch::Sender::new(None),
        metrics: metrics.clone(),
    };
    let held = brake.held.subscribe();
    let source: BoxFuture<'static, ()> = match &config.registry {
        Source::File(path) => {
            let mut watcher = FileWatcher::new(
                path.clone(),
                config.settings.zones.clone(),
                config.reload_interval,
            );
            match watcher.load_now() {
                Ok(registry) => brake.offer(&mut controller, registry),
                Err(e) => tracing::error!("{e}"),
            }
            watcher.run(tx, shutdown.clone()).boxed()
        }
        Source::Kubernetes { .. } => {
            let client = client.clone().expect("made for the Kubernetes source");
            k8s::watch::run(
                client,
                namespace.clone(),
                config.settings.zones.clone(),
                tx,
                metrics.clone(),
                shutdown.clone(),
            )
            .boxed()
        }
    };
    if published.load().is_none() {
        tracing::warn!("no registry loaded yet: answering SERVFAIL until one is");
    }

    let mut tasks = JoinSet::new();
    for socket in sockets.udp {
        let (published, metrics, shutdown) = (published.clone(), metrics.clone(), shutdown.clone());
        tasks.spawn_blocking(move || udp::serve(socket, published, metrics, shutdown));
    }
    tasks.spawn(server::serve_tcp(
        sockets.tcp,
        published.clone(),
        metrics.clone(),
        config.tcp,
        shutdown.clone(),
    ));
    tasks.spawn(source);
    if let Some(listener) = grpc {
        tracing::info!(addr = %listener.local_addr()?, "answering the CoreDNS gRPC protocol");
        tasks.spawn(crate::dns::grpc::serve(
            listener,
            published.clone(),
            metrics.clone(),
            config.tcp,
            shutdown.clone(),
        ));
    }
    if let (Some(sync), Some(client), Some(changes)) =
        (config.sync.clone(), client.clone(), changes)
    {
        tasks.spawn(k8s::sync::run(
            client,
            namespace.clone(),
            sync,
            config.settings.clone(),
            changes,
            metrics.clone(),
            shutdown.clone(),
        ));
    }
    // Drop-in mode: hosts of hand-written ServiceEntries join the snapshot.
    let (hand_tx, mut hand_rx) = mpsc::channel(1);
    match (config.serve_service_entries, &client) {
        (true, Some(client)) => {
            tasks.spawn(k8s::dropin::run(client.clone(), hand_tx, shutdown.clone()));
        }
        _ => drop(hand_tx),
    }
    let (record_tx, mut record_rx) = mpsc::channel(1);
    match (&config.sync, &client) {
        (Some(sync), Some(client)) => {
            tasks.spawn(k8s::record::run(
                client.clone(),
                sync.target.namespace.clone(),
                record_tx,
                shutdown.clone(),
            ));
        }
        _ => drop(record_tx),
    }
    let task_metrics = metrics.clone();
    tasks.spawn(async move {
        let mut hand_open = true;
        let mut record_open = true;
        loop {
            let release = brake.brake.held().map(HeldBack::release_at);
            let far = std::time::Instant::now() + Duration::from_secs(3600);
            let release_timer = tokio::time::sleep_until(release.unwrap_or(far).into());
            tokio::select! {
                result = rx.recv() => match result {
                    Some(Ok(registry)) => brake.offer(&mut controller, registry),
                    Some(Err(e)) => {
                        // The held version, if any, is no longer what the
                        // source says: it was not stable.
                        brake.brake.discard();
                        brake.report();
                        task_metrics.reloads_failed.fetch_add(1, Ordering::Relaxed);
                        tracing::error!("registry not reloaded, still serving the last good one: {e}")
                    }
                    None => return,
                },
                _ = release_timer, if release.is_some() => brake.release(&mut controller),
                hosts = hand_rx.recv(), if hand_open => match hosts {
                    Some(hosts) => {
                        controller.set_hand_written(hosts, SystemTime::now());
                    }
                    None => hand_open = false,
                },
                record = record_rx.recv(), if record_open => match record {
                    Some(record) => {
                        controller.set_record(record, SystemTime::now());
                    }
                    None => record_open = false,
                },
            }
        }
    });
    let admin_addr = match admin {
        Some(listener) => {
            let local = listener.local_addr()?;
            tracing::info!(addr = %local, "admin endpoint: /metrics, /healthz, /readyz");
            tasks.spawn(crate::admin::serve(
                listener,
                crate::admin::State {
                    published: published.clone(),
                    metrics: metrics.clone(),
                    draining: draining.clone(),
                    allocated: explained.expect("subscribed with the admin endpoint"),
                    held,
                    allocator: config.settings.allocator.clone(),
                },
                shutdown.clone(),
            ));
            Some(local)
        }
        None => None,
    };
    tracing::info!(%addr, registry = %config.registry, "serving DNS on UDP and TCP");
    Ok(Running {
        addr,
        admin: admin_addr,
        published,
        metrics,
        draining,
        tasks,
    })
}

/// The shrink brake with what it reports to: the metric, and the held
/// version for explain.
struct Braked {
    brake: Brake,
    held: tokio::sync::watch::Sender<Option<HeldBack>>,
    metrics: Arc<Metrics>,
}

impl Braked {
    /// Passes a version from the source to the controller, or holds it.
    fn offer(&mut self, controller: &mut Controller, registry: Registry) {
        let before = self.brake.held().map(|h| h.since);
        match self
            .brake
            .offer(controller.current(), registry, std::time::Instant::now())
        {
            Decision::Publish(registry) => {
                controller.apply(registry, SystemTime::now());
            }
            Decision::Hold(held) if before != Some(held.since) => {
                tracing::warn!("registry version held back: {held}");
            }
            Decision::Hold(_) => {}
        }
        self.report();
    }

    /// Publishes the held version if it has been stable for the window.
    fn release(&mut self, controller: &mut Controller) {
        if let Some(registry) = self.brake.release(std::time::Instant::now()) {
            tracing::warn!(
                services = registry.services.len(),
                "held registry version unchanged for the hold window: publishing it"
            );
            controller.apply(registry, SystemTime::now());
        }
        self.report();
    }

    fn report(&self) {
        let held = self.brake.held().cloned();
        let removed = held.as_ref().map_or(0, |h| h.removed as u64);
        self.metrics
            .registry_held_back
            .store(removed, Ordering::Relaxed);
        self.held.send_replace(held);
    }
}
