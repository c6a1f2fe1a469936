//! The admin endpoint (`--admin ADDR:PORT`): `/metrics` (Prometheus text),
//! `/healthz` (the process answers) and `/readyz` (a registry is published
//! and the process is not draining). It serves nothing secret: counters,
//! and two words of status.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State as Extract;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::dns::server::Published;
use crate::metrics::Metrics;

/// What the endpoint reads.
#[derive(Clone)]
pub struct State {
    pub published: Arc<Published>,
    pub metrics: Arc<Metrics>,
    pub draining: Arc<AtomicBool>,
}

/// Serves the admin endpoint on `listener` until `shutdown`.
pub async fn serve(listener: TcpListener, state: State, shutdown: CancellationToken) {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
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

async fn ready(Extract(state): Extract<State>) -> impl IntoResponse {
    if state.draining.load(Ordering::Relaxed) {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n")
    } else if state.published.load().is_none() {
        (StatusCode::SERVICE_UNAVAILABLE, "no registry loaded yet\n")
    } else {
        (StatusCode::OK, "ready\n")
    }
}
