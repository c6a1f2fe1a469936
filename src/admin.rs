//! The admin endpoint (`--admin ADDR:PORT`): `/metrics` (Prometheus text),
//! `/healthz` (the process answers), `/readyz` (a registry is published and
//! the process is not draining; `?verbose` lists the checks and the sync's
//! failures) and `/explain?name=NAME`. It serves nothing
//! secret: counters, status, and what the registry already says.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::{Query, State as Extract};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use tokio::sync::watch;

use crate::controller::Allocated;
use crate::dns::server::Published;
use crate::metrics::Metrics;
use crate::registry::brake::HeldBack;

/// What the endpoint reads.
#[derive(Clone)]
pub struct State {
    pub published: Arc<Published>,
    pub metrics: Arc<Metrics>,
    pub draining: Arc<AtomicBool>,
    /// The published registry with its allocations, for explain.
    pub allocated: watch::Receiver<Option<Arc<Allocated>>>,
    /// The VIP ranges, for explain to tell how a VIP was placed.
    pub allocator: crate::vip::Allocator,
    /// The registry version the shrink brake holds, if any.
    pub held: watch::Receiver<Option<HeldBack>>,
}

/// Serves the admin endpoint on `listener` until `shutdown`.
pub async fn serve(listener: TcpListener, state: State, shutdown: CancellationToken) {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/explain", get(explain))
        .with_state(state);
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
    {
        tracing::error!("admin endpoint stopped: {e}");
    }
}

async fn metrics(Extract(state): Extract<State>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

#[derive(serde::Deserialize)]
struct ExplainQuery {
    name: String,
}

async fn explain(
    Extract(state): Extract<State>,
    Query(query): Query<ExplainQuery>,
) -> impl IntoResponse {
    let zones = state.published.load_full();
    let allocated = state.allocated.borrow().clone();
    let held = state.held.borrow().clone();
    let federation = crate::explain::Federation {
        peers: state.metrics.peers.status.lock().unwrap().clone(),
        conflicts: state
            .metrics
            .registry
            .conflict_detail
            .lock()
            .unwrap()
            .clone(),
        warnings: state
            .metrics
            .registry
            .warning_detail
            .lock()
            .unwrap()
            .clone(),
    };
    let mut text = crate::explain::explain(
        &query.name,
        zones.as_deref(),
        allocated.as_deref(),
        &state.allocator,
        held.as_ref(),
    );
    text.push_str(&crate::explain::federation(&query.name, &federation));
    let gateways = state.metrics.gateways.status.lock().unwrap().clone();
    text.push_str(&crate::explain::gateways(
        &query.name,
        allocated.as_deref(),
        &gateways,
    ));
    text
}

#[derive(serde::Deserialize)]
struct ReadyQuery {
    verbose: Option<String>,
}

/// 200 when a registry is published and the process is not draining, 503
/// otherwise. With `?verbose`, one line per check (`[+]` passing, `[-]`
/// failing), and the ServiceEntry sync's state as `[!]` when its last pass
/// had failed writes: reported, but not a readiness check, since DNS
/// answers do not depend on it.
async fn ready(
    Extract(state): Extract<State>,
    Query(query): Query<ReadyQuery>,
) -> impl IntoResponse {
    let draining = state.draining.load(Ordering::Relaxed);
    let loaded = state.published.load().is_some();
    let status = if !draining && loaded {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    if query.verbose.is_none() {
        let text = match (draining, loaded) {
            (true, _) => "draining\n",
            (false, false) => "no registry loaded yet\n",
            (false, true) => "ready\n",
        };
        return (status, text.to_string());
    }
    let mut body = String::new();
    body.push_str(if loaded {
        "[+] registry: published\n"
    } else {
        "[-] registry: no registry loaded yet\n"
    });
    body.push_str(if draining {
        "[-] draining: shutting down\n"
    } else {
        "[+] draining: no\n"
    });
    let sync = state.metrics.sync.detail.lock().unwrap().clone();
    if !sync.is_empty() {
        body.push_str(&format!(
            "[!] sync: {sync} (retried; not a readiness check)\n"
        ));
    }
    body.push_str(if status == StatusCode::OK {
        "ready\n"
    } else {
        "not ready\n"
    });
    (status, body)
}
