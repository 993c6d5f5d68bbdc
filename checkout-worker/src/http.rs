//! The worker's HTTP endpoints, on `WORKER_METRICS_ADDR`: `/healthz` (200 while the worker
//! renews its lease and its lanes move), `/livez` (200 while it renews its lease: a restart would
//! not help a partition stopped on a record), both 503 with the reason otherwise, and `/metrics`.

use crate::health::Health;
use axum::{http::StatusCode, routing::get, Json, Router};
use sqlx::PgPool;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Serves the endpoints on `listener`, on a task of their own, until `stop` is cancelled.
pub fn spawn(listener: TcpListener, health: Arc<Health>, pool: PgPool, stop: CancellationToken) {
    let (checked, lively) = (health.clone(), health);
    let router = Router::new()
        .route(
            "/healthz",
            get(move || async move { answer(checked.check()) }),
        )
        .route("/livez", get(move || async move { answer(lively.alive()) }))
        .route(
            "/metrics",
            get(|| async move { shop_infra::metrics::render(&pool) }),
        );
    tokio::spawn(async move {
        let serve = axum::serve(listener, router)
            .with_graceful_shutdown(async move { stop.cancelled().await });
        if let Err(error) = serve.await {
            tracing::warn!(%error, "metrics server stopped");
        }
    });
}

/// 200, or 503 with the reason.
fn answer(health: Result<(), String>) -> (StatusCode, Json<serde_json::Value>) {
    match health {
        Ok(()) => (StatusCode::OK, Json(serde_json::json!({ "status": "ok" }))),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "error": { "code": "unhealthy", "message": reason } })),
        ),
    }
}
