//! Starting, stopping and stalling the processes the faults act on, and watching a stalled
//! worker: the shared services through `scripts/service.sh` (any script of `scripts/`, `ha.sh`
//! too, is run by [`script`] or [`script_output`]), a worker paused by signal or cut off by its
//! [`Proxy`], proof that it was caught inside a batch, and what it reports afterwards.

use crate::{
    error::BenchError,
    poll,
    proxy::Proxy,
    system::{System, MEMBER_LEASE},
};
use rand::Rng;
use reqwest::StatusCode;
use std::{
    path::Path,
    process::{ExitStatus, Stdio},
    time::{Duration, Instant},
};

/// Runs `scripts/service.sh action` (`broker-stop`, `redis-start`, …).
pub async fn service(action: &str) -> Result<(), BenchError> {
    script("service.sh", &[action]).await
}

/// Runs `scripts/<name> args…`, its stdout discarded: a daemon it starts may keep its stdout,
/// so nothing waits for that to close.
pub async fn script(name: &str, args: &[&str]) -> Result<(), BenchError> {
    let status = script_command(name, args)
        .stdout(Stdio::null())
        .status()
        .await?;
    script_succeeded(name, args, status)
}

/// Runs `scripts/<name> args…` and returns what it printed on stdout (read to its end: only for
/// commands that start no daemon).
pub async fn script_output(name: &str, args: &[&str]) -> Result<String, BenchError> {
    let output = script_command(name, args)
        .stderr(Stdio::inherit())
        .output()
        .await?;
    script_succeeded(name, args, output.status)?;
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn script_command(name: &str, args: &[&str]) -> tokio::process::Command {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scripts")
        .join(name);
    let mut command = tokio::process::Command::new(path);
    command.args(args);
    command
}

fn script_succeeded(name: &str, args: &[&str], status: ExitStatus) -> Result<(), BenchError> {
    if status.success() {
        Ok(())
    } else {
        Err(BenchError::Setup(format!(
            "scripts/{name} {} failed ({status})",
            args.join(" ")
        )))
    }
}

/// Until the suite's own Redis connection answers again: after a Redis failover its first
/// commands fail while it reconnects (through HAProxy, to the new master).
pub async fn redis_answers(system: &System) -> Result<(), BenchError> {
    let answered = poll::until(
        Duration::from_secs(10),
        Duration::from_millis(200),
        || async move {
            let mut redis = system.redis.clone();
            let pong = redis::cmd("PING").query_async::<()>(&mut redis).await;
            Ok::<_, BenchError>(pong.map_err(drop))
        },
    )
    .await?;
    answered.map_err(|()| BenchError::Setup("the suite's Redis connection never came back".into()))
}

/// The bound on deciding any order while one of two workers is stalled.
pub fn stall_bound() -> Duration {
    MEMBER_LEASE + Duration::from_secs(5)
}

/// Waits until two live workers own partitions (each has claimed some, and both are members).
pub async fn wait_for_split(system: &System) -> Result<(), BenchError> {
    let split = poll::until(
        Duration::from_secs(30),
        Duration::from_millis(50),
        || async move {
            let owners: i64 = sqlx::query_scalar(
                "SELECT count(DISTINCT p.owner) FROM consumer_positions p
                 JOIN consumer_members m ON m.consumer_group = p.consumer_group AND m.member = p.owner
                 WHERE p.consumer_group = $1 AND m.expires_at > now()",
            )
            .bind(&system.name)
            .fetch_one(&system.db)
            .await?;
            Ok::<_, BenchError>(if owners == 2 { Ok(()) } else { Err(owners) })
        },
    )
    .await?;
    split.map_err(|owners| {
        BenchError::Setup(format!(
            "the partitions were not split between two workers within 30 s ({owners} owners)"
        ))
    })
}

/// Pauses (SIGSTOP) or cuts off (through `proxy`) the newest worker, or lets it go on.
pub async fn set_stalled(
    system: &System,
    proxy: Option<&Proxy>,
    stalled: bool,
) -> Result<(), BenchError> {
    match proxy {
        Some(proxy) => {
            proxy.set_cut(stalled);
            Ok(())
        }
        None => {
            system
                .signal_newest_worker(if stalled { "STOP" } else { "CONT" })
                .await
        }
    }
}

/// Sessions of the worker `pid` sitting inside a batch's transaction: idle in a transaction whose
/// last statement was not a membership heartbeat's (every other statement of the worker outside
/// a batch commits on its own).
async fn open_batches(system: &System, pid: u32) -> Result<i64, BenchError> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity
         WHERE application_name = $1 AND state = 'idle in transaction'
           AND query NOT LIKE '%consumer_members%'",
    )
    .bind(format!("checkout-worker/{pid}"))
    .fetch_one(&system.db)
    .await?)
}

/// Stalls the newest worker at a moment when it has a batch's transaction open, and proves it:
/// after the stall one of its sessions sits idle inside a batch. A stall that caught no batch is
/// undone and tried again.
pub async fn stall_mid_batch(system: &System, proxy: Option<&Proxy>) -> Result<(), BenchError> {
    let (pid, _) = system
        .newest_worker()
        .ok_or_else(|| BenchError::Setup("no worker to stall".into()))?;
    for attempt in 1..=300 {
        set_stalled(system, proxy, true).await?;
        // The server finishes the statement in hand, then waits on the stalled worker.
        let caught = poll::until(
            Duration::from_millis(300),
            Duration::from_millis(20),
            || async move {
                let open = open_batches(system, pid).await?;
                Ok::<_, BenchError>(if open > 0 { Ok(()) } else { Err(()) })
            },
        )
        .await?;
        if caught.is_ok() {
            eprintln!("    stalled worker {pid} inside a batch (attempt {attempt})");
            return Ok(());
        }
        set_stalled(system, proxy, false).await?;
        // Let it run between attempts: back-to-back 300 ms stalls with a few ms between them add
        // up to one long stall before the measured one (seen once: 24 attempts, then decisions
        // of 13.4 s against the 11 s bound).
        tokio::time::sleep(Duration::from_millis(
            rand::thread_rng().gen_range(300..800),
        ))
        .await;
    }
    Err(BenchError::Setup(format!(
        "worker {pid} was never caught inside a batch"
    )))
}

/// Whether the newest worker's `/healthz` answers 503 before `until`.
pub async fn reports_unhealthy(system: &System, until: Instant) -> bool {
    let Some((_, port)) = system.newest_worker() else {
        return false;
    };
    let url = format!("http://127.0.0.1:{port}/healthz");
    let client = reqwest::Client::new();
    let (url, client) = (&url, &client);
    let within = until.saturating_duration_since(Instant::now());
    let said = poll::until(within, Duration::from_millis(100), || async move {
        let answer = client.get(url).timeout(Duration::from_secs(1)).send().await;
        let unhealthy = answer.is_ok_and(|r| r.status() == StatusCode::SERVICE_UNAVAILABLE);
        Ok::<_, BenchError>(if unhealthy { Ok(()) } else { Err(()) })
    })
    .await;
    matches!(said, Ok(Ok(())))
}

/// The newest worker's count of batches refused by the fence, once it rises above zero or 30 s
/// have passed since it came back.
pub async fn fenced_batches(system: &System) -> Result<u64, BenchError> {
    let (_, port) = system
        .newest_worker()
        .ok_or_else(|| BenchError::Setup("no worker".into()))?;
    let url = format!("http://127.0.0.1:{port}/metrics");
    let client = reqwest::Client::new();
    let (url, client) = (&url, &client);
    let (Ok(fenced) | Err(fenced)) = poll::until(
        Duration::from_secs(30),
        Duration::from_millis(100),
        || async move {
            let text = match client.get(url).send().await {
                Ok(response) => response.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            let fenced = metric_value(&text, "checkout_worker_fenced_batches_total");
            Ok::<_, BenchError>(if fenced > 0 { Ok(fenced) } else { Err(fenced) })
        },
    )
    .await?;
    Ok(fenced)
}

/// A counter's value in Prometheus text (0 when absent).
fn metric_value(text: &str, name: &str) -> u64 {
    text.lines()
        .filter_map(|line| line.strip_prefix(name))
        .filter_map(|rest| rest.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_read_from_prometheus_text() {
        let text = "# TYPE checkout_worker_fenced_batches_total counter\ncheckout_worker_fenced_batches_total 3\nother 9\n";
        assert_eq!(
            metric_value(text, "checkout_worker_fenced_batches_total"),
            3
        );
        assert_eq!(metric_value("", "checkout_worker_fenced_batches_total"), 0);
    }
}
