//! The admin endpoint (`--admin ADDR:PORT`): `/metrics` (Prometheus text),
//! `/healthz` (the process answers), `/readyz` (a registry is published and
//! the process is not draining) and `/explain?name=NAME`. It serves nothing
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
    crate::explain::explain(
        &query.name,
        zones.as_deref(),
        allocated.as_deref(),
        &state.allocator,
        held.as_ref(),
    )
}

async fn ready(Extract(state): Extract<State>) -> impl IntoResponse {
    if state.draining.load(Ordering::Relaxed) {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n")
    } else if state.published.load().is_none() {
        (StatusCode::SERVICE_UNAVAILABLE, "no registry loaded yet\n")
    } else {
        (StatusCode::OK, "ready\n")
    }
}
