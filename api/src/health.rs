//! Liveness, readiness and the Prometheus scrape endpoint.

use crate::state::AppState;
use axum::{extract::State, http::StatusCode, routing::get, Json, Router};
use serde::Serialize;
use std::time::Duration;
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    status: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready`, `unready` (a dependency is down) or `shutting_down`.
    status: &'static str,
    #[schema(inline)]
    checks: Checks,
}

#[derive(Debug, Serialize, ToSchema)]
struct Checks {
    /// `up` or `down`.
    postgres: &'static str,
    /// `up` or `down`.
    redis: &'static str,
}

/// The process is up and serving.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is up", body = Health)))]
pub(crate) async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Ready when PostgreSQL and Redis both answer within a second and shutdown has not begun.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses(
    (status = 200, description = "Ready for traffic", body = Readiness),
    (status = 503, description = "A dependency is down, or the process is shutting down: take it out of rotation", body = Readiness),
))]
pub(crate) async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let deadline = Duration::from_secs(1);
    let postgres = tokio::time::timeout(deadline, sqlx::query("SELECT 1").execute(&state.db))
        .await
        .is_ok_and(|r| r.is_ok());
    let mut conn = state.redis.clone();
    let ping = redis::cmd("PING");
    let redis = tokio::time::timeout(deadline, ping.query_async::<String>(&mut conn))
        .await
        .is_ok_and(|r| r.is_ok());
    let stopping = state.shutting_down.is_cancelled();
    let ready = postgres && redis && !stopping;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let word = |ok: bool| if ok { "up" } else { "down" };
    let body = Readiness {
        status: match (ready, stopping) {
            (true, _) => "ready",
            (false, true) => "shutting_down",
            (false, false) => "unready",
        },
        checks: Checks {
            postgres: word(postgres),
            redis: word(redis),
        },
    };
    (status, Json(body))
}

/// Prometheus text exposition of every metric this process records.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub(crate) async fn metrics(State(state): State<AppState>) -> String {
    shop_infra::metrics::render(&state.db)
}
