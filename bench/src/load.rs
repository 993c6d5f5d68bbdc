//! The two ways of applying load, and what they measure.
//!
//! - Closed loop ([`closed_loop`]): `connections` clients each send the next request as soon as
//!   the last one is answered. That finds the maximum throughput; its latencies are service
//!   times.
//! - Open loop ([`open_loop`]): requests are due at a fixed rate whatever happens to earlier
//!   ones, and each latency is measured from when the request was due, not from when it was
//!   sent. A stall therefore shows in every request that queued behind it (no coordinated
//!   omission).

use hdrhistogram::Histogram;
use serde::Serialize;
use std::{
    future::Future,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};
use tokio::{sync::Semaphore, time::Instant};

/// How one request ended, as the scenario judges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The answer the scenario wanted (2xx, or a 409 sold out that is a right answer).
    Ok,
    /// A wrong or failed answer.
    Failed,
}

/// Latencies (microseconds) and counts of one measured run.
pub struct Recorder {
    histogram: Mutex<Histogram<u64>>,
    ok: AtomicU64,
    failed: AtomicU64,
}

impl Recorder {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            // 1 µs to 1 minute, 3 significant digits.
            histogram: Mutex::new(
                Histogram::new_with_bounds(1, 60_000_000, 3).expect("constant bounds are valid"),
            ),
            ok: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        })
    }

    pub(crate) fn record(&self, outcome: Outcome, latency: Duration) {
        let counter = match outcome {
            Outcome::Ok => &self.ok,
            Outcome::Failed => &self.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        if let Ok(mut h) = self.histogram.lock() {
            h.saturating_record(micros.max(1));
        }
    }

    pub(crate) fn summary(&self, elapsed: Duration) -> Summary {
        let h = self
            .histogram
            .lock()
            .map(|h| h.clone())
            .unwrap_or_else(|e| e.into_inner().clone());
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        let ok = self.ok.load(Ordering::Relaxed);
        let failed = self.failed.load(Ordering::Relaxed);
        Summary {
            requests: ok + failed,
            ok,
            failed,
            seconds: elapsed.as_secs_f64(),
            throughput: (ok + failed) as f64 / elapsed.as_secs_f64().max(1e-9),
            p50_ms: ms(0.50),
            p99_ms: ms(0.99),
            p999_ms: ms(0.999),
            max_ms: h.max() as f64 / 1000.0,
        }
    }
}

/// What a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub requests: u64,
    pub ok: u64,
    pub failed: u64,
    pub seconds: f64,
    /// Requests answered per second.
    pub throughput: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

/// `connections` clients each run `request(n)` back to back, for `n` from a shared counter,
/// until `duration` has passed or `limit` requests were sent.
pub async fn closed_loop<F, Fut>(
    connections: usize,
    duration: Duration,
    limit: Option<u64>,
    request: F,
) -> Summary
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send,
{
    let recorder = Recorder::new();
    let request = Arc::new(request);
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let (recorder, request, next) = (recorder.clone(), request.clone(), next.clone());
        clients.spawn(async move {
            while Instant::now() < deadline {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if limit.is_some_and(|l| n >= l) {
                    break;
                }
                let sent = Instant::now();
                let outcome = request(n).await;
                recorder.record(outcome, sent.elapsed());
            }
        });
    }
    while clients.join_next().await.is_some() {}
    recorder.summary(started.elapsed())
}

/// `request(n)` is due at `rate` per second for `duration` (or until `limit` requests), each
/// latency measured from when it was due. At most `max_in_flight` requests are outstanding; the
/// rest wait their turn, and the wait counts.
pub async fn open_loop<F, Fut>(
    rate: f64,
    duration: Duration,
    limit: Option<u64>,
    max_in_flight: usize,
    request: F,
) -> Summary
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let recorder = Recorder::new();
    let request = Arc::new(request);
    let slots = Arc::new(Semaphore::new(max_in_flight));
    let interval = Duration::from_secs_f64(1.0 / rate.max(1e-3));
    let started = Instant::now();
    let total = (duration.as_secs_f64() * rate) as u64;
    let total = limit.map_or(total, |l| total.min(l));
    let mut requests = tokio::task::JoinSet::new();
    for n in 0..total {
        let due = started + interval.mul_f64(n as f64);
        tokio::time::sleep_until(due).await;
        let (recorder, request, slots) = (recorder.clone(), request.clone(), slots.clone());
        requests.spawn(async move {
            let Ok(_slot) = slots.acquire_owned().await else {
                return;
            };
            let outcome = request(n).await;
            recorder.record(outcome, due.elapsed());
        });
        // Reap finished tasks as we go, so the set stays small.
        while requests.try_join_next().is_some() {}
    }
    while requests.join_next().await.is_some() {}
    recorder.summary(started.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn closed_loop_stops_at_its_limit_and_counts_outcomes() {
        let summary = closed_loop(4, Duration::from_secs(30), Some(100), |n| async move {
            if n % 10 == 0 {
                Outcome::Failed
            } else {
                Outcome::Ok
            }
        })
        .await;
        assert_eq!(summary.requests, 100);
        assert_eq!(summary.failed, 10);
        assert_eq!(summary.ok, 90);
    }

    #[tokio::test(start_paused = true)]
    async fn open_loop_counts_queueing_behind_a_stall() {
        // One slot: every request is due 10 ms after the last, but takes 100 ms, so the n-th
        // waits about n × 90 ms. Service time alone would say 100 ms throughout.
        let summary = open_loop(100.0, Duration::from_millis(100), None, 1, |_| async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Outcome::Ok
        })
        .await;
        assert_eq!(summary.requests, 10);
        assert!(summary.max_ms >= 900.0, "{summary:?}");
        assert!(summary.p50_ms >= 400.0, "{summary:?}");
    }
}
