//! The process-wide Prometheus recorder, and the loop that refreshes gauges read from
//! PostgreSQL ([`report_every`]). Each service declares its own metric names.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sqlx::PgPool;
use std::{future::Future, sync::OnceLock, time::Duration};

/// PostgreSQL pool connections of this process. Label `state`: `in_use`, `idle` or `max`.
pub const DB_POOL_CONNECTIONS: &str = "shop_db_pool_connections";
/// Failed calls to Redis or Kafka. Labels `client` (`redis`, `kafka`) and `operation`.
pub const CLIENT_ERRORS: &str = "shop_client_errors_total";

pub fn client_error(client: &'static str, operation: &'static str) {
    metrics::counter!(CLIENT_ERRORS, "client" => client, "operation" => operation).increment(1);
}

/// How often the gauges read from PostgreSQL (the worker's outbox and order backlog, the
/// notifier's queue) are read again.
pub const REPORT_EVERY: Duration = Duration::from_secs(5);

/// Runs `report` at once and then every [`REPORT_EVERY`] until `stop` completes (pass
/// `CancellationToken::cancelled_owned`). `report` reads its numbers, sets its gauges and logs
/// its own failures; one that fails is simply tried again at the next round.
pub async fn report_every<F, R>(stop: impl Future<Output = ()>, mut report: F)
where
    F: FnMut() -> R,
    R: Future<Output = ()>,
{
    let mut stop = std::pin::pin!(stop);
    loop {
        report().await;
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(REPORT_EVERY) => {}
        }
    }
}

/// The scrape body, with the pool's gauges read at this moment.
pub fn render(pool: &PgPool) -> String {
    let size = f64::from(pool.size());
    let idle = pool.num_idle() as f64;
    let max = f64::from(pool.options().get_max_connections());
    for (state, value) in [("in_use", size - idle), ("idle", idle), ("max", max)] {
        metrics::gauge!(DB_POOL_CONNECTIONS, "state" => state).set(value);
    }
    handle().render()
}

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const SIZE_BUCKETS: &[f64] = &[1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0];

/// Installs the recorder on first use (histograms ending in `_seconds` get latency buckets,
/// `_size` ones size buckets) and keeps histogram memory bounded with an upkeep task.
/// Several services in one process (tests) share it. Call from within a tokio runtime.
pub fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Suffix("_size".into()), SIZE_BUCKETS)
                })
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let handle = match builder.install_recorder() {
                Ok(handle) => handle,
                // Another recorder is installed already: render ours without recording into it.
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            };
            let upkeep = handle.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
                loop {
                    tick.tick().await;
                    upkeep.run_upkeep();
                }
            });
            handle
        })
        .clone()
}
