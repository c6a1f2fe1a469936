//! `globaldns serve`: binds the sockets, starts the controller (warm start
//! from the state directory), the UDP and TCP servers, the registry source,
//! the Kubernetes tasks and the admin endpoint, and runs them until
//! shutdown. [`start`] reads as the list of those parts; each has a short
//! function of its own here or in [`feed`] (what reaches the controller)
//! and [`cluster`] (the API server's side).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwapOption;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::controller::{Controller, Settings};
use crate::dns::server::{self, Published, Sockets, TcpLimits};
use crate::dns::udp;
use crate::mesh::sync::SyncConfig;
use crate::metrics::Metrics;
use crate::registry::brake::BrakeConfig;

mod kubernetes;
mod sources;

use kubernetes::Cluster;

/// Everything `serve` needs, typed and checked.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub registry: Source,
    pub listen: SocketAddr,
    pub state_dir: PathBuf,
    pub settings: Settings,
    pub reload_interval: Duration,
    /// How long a registry file rewritten in place that removes a service
    /// or a port must stay unchanged before it is used
    /// ([`crate::registry::file`]).
    pub in_place_settle: Duration,
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
    /// `admin` is the default address, not one the user gave: when it is
    /// taken (another globaldns on the machine), serve without it and say
    /// so, rather than fail to start.
    pub admin_is_default: bool,
    /// Answer `TXT _explain.<host>` (`--explain-txt`).
    pub explain_txt: bool,
    /// On SIGTERM, how long to keep answering with readiness false before
    /// stopping, so that load balancers take the pod out first.
    pub drain_delay: Duration,
    /// The shrink brake on registry versions, from either source.
    pub brake: BrakeConfig,
    /// The cluster this server runs in (`--cluster`), when given.
    pub cluster: Option<String>,
}

/// Where the registry comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A YAML or JSON file, re-read when it changes.
    File(PathBuf),
    /// MeshCluster and ExportedService objects (and MCS ServiceExports),
    /// watched in `namespace` (default: the client's namespace: the pod's
    /// own, or the kubeconfig context's), and the peer clusters'.
    Kubernetes {
        namespace: Option<String>,
        /// The peers beside the local cluster: files and Secrets.
        peers: PeerOptions,
    },
}

/// The peer clusters whose registry resources are read too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerOptions {
    /// Peers given as kubeconfig files (`--peer-kubeconfig NAME=FILE`).
    pub files: Vec<crate::registry::kube::peers::Peer>,
    /// Watch the peer Secrets of the namespace (`--peer-secrets`).
    pub secrets: bool,
    /// A peer unreachable this long has its exports dropped
    /// (`--peer-stale-after`).
    pub stale_after: Duration,
}

impl Default for PeerOptions {
    fn default() -> Self {
        Self {
            files: Vec::new(),
            secrets: true,
            stale_after: Duration::from_secs(600),
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::File(path) => write!(f, "{}", path.display()),
            Source::Kubernetes {
                namespace: Some(ns),
                ..
            } => write!(f, "kubernetes (namespace {ns})"),
            Source::Kubernetes {
                namespace: None, ..
            } => write!(f, "kubernetes"),
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
    let listeners = Listeners::bind(&config).await?;
    let addr = listeners.dns.local_addr()?;
    let published: Arc<Published> = Arc::new(ArcSwapOption::empty());
    let metrics = Arc::new(Metrics::default());
    let draining = Arc::new(AtomicBool::new(false));
    let cluster = Cluster::connect(&config).await?;
    let record = match &cluster {
        Some(cluster) => cluster.read_record(&config).await,
        None => Vec::new(),
    };
    let mut controller = Controller::start(
        config.settings.clone(),
        &config.state_dir,
        published.clone(),
        metrics.clone(),
        record,
    );
    let mut tasks = JoinSet::new();
    let mut dns = Some((listeners.dns, listeners.grpc));
    let mut spawn_dns_once = |tasks: &mut JoinSet<()>| match dns.take() {
        Some((sockets, grpc)) => spawn_dns(
            tasks, sockets, grpc, &published, &metrics, &config, &shutdown,
        ),
        None => Ok(()),
    };
    // With a last-known-good registry, DNS answers from it while the
    // registry file's first read runs (at 100,000 YAML services, a restart
    // answered after 1.2 s, now 0.45 s). Without one, queries wait in the
    // sockets for that read: SERVFAIL now (design §4) would only bring
    // clients' retries, which took a sixth of the read's two cores in a
    // first start of 100,000 YAML services (1.03 s to 1.23 s).
    if published.load().is_some() {
        spawn_dns_once(&mut tasks)?;
    }
    let feeds = sources::start(
        &config,
        &mut controller,
        cluster.as_ref(),
        &metrics,
        &mut tasks,
        &shutdown,
    )
    .await?;
    if published.load().is_none() {
        tracing::warn!("no registry loaded yet: answering SERVFAIL until one is");
    }
    spawn_dns_once(&mut tasks)?;
    if let Some(cluster) = &cluster {
        cluster.spawn_sync(&mut tasks, &config, &mut controller, &metrics, &shutdown);
    }
    let admin = match listeners.admin {
        Some(listener) => Some(spawn_admin(
            &mut tasks,
            listener,
            crate::admin::State {
                published: published.clone(),
                metrics: metrics.clone(),
                draining: draining.clone(),
                allocated: controller.subscribe(),
                held: feeds.held(),
                allocator: config.settings.allocator.clone(),
            },
            &shutdown,
        )?),
        None => None,
    };
    if config.explain_txt {
        let explainer = crate::explain::txt_line::TxtExplainer::new(
            controller.subscribe(),
            feeds.held(),
            metrics.clone(),
            config.settings.allocator.clone(),
        );
        let _ = controller.explain_slot().set(Arc::new(explainer));
        tracing::info!("answering TXT _explain.<host> (--explain-txt)");
    }
    tasks.spawn(feeds.run(controller));
    tracing::info!(%addr, registry = %config.registry, "serving DNS on UDP and TCP");
    Ok(Running {
        addr,
        admin,
        published,
        metrics,
        draining,
        tasks,
    })
}

/// Every socket `serve` listens on, bound before anything starts, so that
/// a port in use fails the start with its address in the message.
struct Listeners {
    dns: Sockets,
    grpc: Option<TcpListener>,
    admin: Option<TcpListener>,
}

impl Listeners {
    async fn bind(config: &ServeConfig) -> anyhow::Result<Self> {
        let dns = server::bind(config.listen, config.udp_workers)
            .await
            .with_context(|| format!("cannot listen on {} (UDP and TCP)", config.listen))?;
        let grpc = match config.grpc {
            Some(at) => Some(
                TcpListener::bind(at)
                    .await
                    .with_context(|| format!("cannot listen for gRPC on {at}"))?,
            ),
            None => None,
        };
        let admin = match config.admin {
            Some(at) => match TcpListener::bind(at).await {
                Ok(listener) => Some(listener),
                Err(e) if config.admin_is_default && e.kind() == std::io::ErrorKind::AddrInUse => {
                    tracing::warn!(
                        addr = %at,
                        error = %e,
                        "no admin endpoint: its default address is taken (another globaldns?); \
                         give --admin ADDR:PORT, or --admin off"
                    );
                    None
                }
                Err(e) => {
                    return Err(anyhow::Error::new(e)
                        .context(format!("cannot listen for the admin endpoint on {at}")));
                }
            },
            None => None,
        };
        Ok(Self { dns, grpc, admin })
    }
}

/// The DNS servers: a blocking thread per UDP socket, the TCP server, and
/// the CoreDNS gRPC endpoint when asked for.
fn spawn_dns(
    tasks: &mut JoinSet<()>,
    sockets: Sockets,
    grpc: Option<TcpListener>,
    published: &Arc<Published>,
    metrics: &Arc<Metrics>,
    config: &ServeConfig,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
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
    Ok(())
}

/// The admin endpoint; returns its address.
fn spawn_admin(
    tasks: &mut JoinSet<()>,
    listener: TcpListener,
    state: crate::admin::State,
    shutdown: &CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let local = listener.local_addr()?;
    tracing::info!(addr = %local, "admin endpoint: /metrics, /healthz, /readyz, /explain");
    tasks.spawn(crate::admin::serve(listener, state, shutdown.clone()));
    Ok(local)
}
