//! Liveness, readiness and the Prometheus scrape endpoint.

use crate::startup::AppState;
use axum::{extract::State, http::StatusCode, response::IntoResponse, routing::get, Json, Router};
use serde_json::json;
use std::time::Duration;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// The process is up and serving.
async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// PostgreSQL and Redis both answer within a second.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let deadline = Duration::from_secs(1);
    let postgres = tokio::time::timeout(deadline, sqlx::query("SELECT 1").execute(&state.db))
        .await
        .is_ok_and(|r| r.is_ok());
    let mut conn = state.redis.clone();
    let ping = redis::cmd("PING");
    let redis = tokio::time::timeout(deadline, ping.query_async::<String>(&mut conn))
        .await
        .is_ok_and(|r| r.is_ok());
    let ready = postgres && redis;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let word = |ok: bool| if ok { "up" } else { "down" };
    let body = json!({
        "status": if ready { "ready" } else { "unready" },
        "checks": { "postgres": word(postgres), "redis": word(redis) },
    });
    (status, Json(body))
}

async fn metrics() -> String {
    shop_infra::metrics::handle().render()
}
