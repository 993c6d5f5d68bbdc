//! `shop-bench faults`: steady checkout traffic while faults are injected one at a time and then
//! together, each followed by an invariant check of PostgreSQL, Redis and the order events topic.
//! This file is the run: the faults in order, one phase each, and the faults × outcomes table.
//!
//! A phase: traffic (`traffic.rs`) warms up, the fault is injected and lasts its outage, then is
//! repaired (one file per fault, listed in `fault.rs`; processes started, stopped and stalled by
//! `harness.rs`). A probe then places an order and times how long until it is decided (time to
//! recover, `probe.rs`); then traffic stops, the system is given the bound to settle, and the
//! invariants are checked over everything the run has done so far (`inspect.rs` reads,
//! `check.rs` judges).
//!
//! Two faults stall a worker beside a live one, with a batch's transaction open (proved from
//! `pg_stat_activity`, not assumed): a SIGSTOP, and a network cut between it and PostgreSQL that
//! leaves its connections half-open. There every order of the phase must be decided within
//! `MEMBER_LEASE_MS` + 5 s, on every partition, and when the stale worker comes back the fence
//! must refuse its batch (its `checkout_worker_fenced_batches_total` rises).

mod api_killed;
mod broker_restart;
mod check;
mod combined;
mod events;
mod fault;
mod harness;
mod inspect;
mod postgres_restart;
mod probe;
mod redis_lost;
mod seen;
mod timing;
mod traffic;
mod worker_cut_off;
mod worker_joins;
mod worker_killed;
mod worker_paused;

pub use fault::Fault;
pub use timing::Timing;

use crate::{env::Environment, error::BenchError, proxy::Proxy, system::System};
use check::{judge, Checked};
use harness::{reports_unhealthy, stall_bound};
use inspect::{decision_times, observe, settle};
use probe::{probe, Probed};
use seen::Seen;
use serde::Serialize;
use std::{sync::Arc, time::Instant};
use traffic::{restock, Fixture, Shoppers};

/// One row of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub fault: String,
    /// Checkouts answered 202 during the phase.
    pub accepted: u64,
    /// Accepted orders missing, or not decided within the bound.
    pub lost: u64,
    /// Two orders for one key, a command applied twice, or two different terminal events.
    pub duplicated: u64,
    /// Units sold beyond stock, or stock not conserved.
    pub oversold: i64,
    /// Terminal events delivered more than once with the same id (harmless to a deduping consumer).
    pub redelivered_events: u64,
    /// Hot-stock entries in Redis that disagree with PostgreSQL at the same version.
    pub stale_cache: u64,
    /// From the repair until a new order was decided.
    pub recover_seconds: Option<f64>,
    /// The probe's cart did not hold what it should once its order was decided (1) or did (0).
    pub cart_mismatch: u64,
    /// From stopping traffic until nothing was PENDING and the outbox was empty.
    pub settle_seconds: f64,
    /// The slowest order of the phase, accepted → decided.
    pub slowest_decision_seconds: f64,
    /// Where one of two workers stalled: orders of the phase not decided within
    /// `MEMBER_LEASE_MS` + 5 s.
    pub stalled: u64,
    /// Where a worker stalled: its batches refused by the fence once it came back (0 is a
    /// violation: the fence never fired).
    pub fenced: Option<u64>,
    /// Where a worker was cut off: whether its `/healthz` said so.
    pub reported_unhealthy: Option<bool>,
    pub confirmed: i64,
    pub rejected: i64,
    /// Orders cancelled by their shoppers (some before, some after their decision).
    pub cancelled: i64,
}

impl Outcome {
    pub fn violations(&self) -> u64 {
        self.lost
            + self.duplicated
            + u64::try_from(self.oversold).unwrap_or(u64::MAX)
            + self.stale_cache
            + self.stalled
            + self.cart_mismatch
            + u64::from(self.fenced == Some(0))
            + u64::from(self.reported_unhealthy == Some(false))
            + u64::from(self.recover_seconds.is_none())
    }
}

/// Runs every fault in turn on one system and returns a row for each.
pub async fn run(
    env: &Environment,
    timing: Timing,
    faults: &[Fault],
) -> Result<Vec<Outcome>, BenchError> {
    let mut system = System::start_notifying(env, "queue").await?;
    let result = run_on(&mut system, env, timing, faults).await;
    let stopped = system.stop().await;
    let outcomes = result?;
    stopped?;
    Ok(outcomes)
}

async fn run_on(
    system: &mut System,
    env: &Environment,
    timing: Timing,
    faults: &[Fault],
) -> Result<Vec<Outcome>, BenchError> {
    let fixture = Arc::new(Fixture::prepare(system, &env.mailbox, timing).await?);
    let mut initial = fixture.initial.clone();
    let seen = Arc::new(Seen::default());
    let mut checked = Checked::default();
    let mut outcomes = Vec::new();
    let mut cut = None;
    for &fault in faults {
        eprintln!("==> fault: {}", fault.name());
        restock(&fixture, &mut initial).await?;
        let phase_start: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("SELECT now()")
            .fetch_one(&system.db)
            .await?;
        let accepted_before = seen.accepted();
        let endured = endure(system, &fixture, &seen, timing, fault, &mut cut).await?;
        let stopped = Instant::now();
        let settled = settle(system, timing.bound).await?;
        let settle_seconds = stopped.elapsed().as_secs_f64();
        let report = judge(&observe(system, env, &initial, &seen, settled).await?);
        let (slowest_decision_seconds, over_bound) =
            decision_times(system, phase_start, stall_bound()).await?;
        let phase = report.since(&checked);
        let probed = endured.probed.as_ref();
        let outcome = Outcome {
            fault: fault.name().to_owned(),
            accepted: seen.accepted().saturating_sub(accepted_before),
            lost: phase.lost,
            duplicated: phase.duplicated,
            oversold: phase.oversold,
            redelivered_events: phase.redelivered,
            stale_cache: report.stale_cache,
            recover_seconds: probed.map(|p| p.recover_seconds),
            cart_mismatch: u64::from(probed.is_some_and(|p| !p.cart_ok)),
            settle_seconds,
            slowest_decision_seconds,
            stalled: if fault.bounded() { over_bound } else { 0 },
            fenced: endured.fenced,
            reported_unhealthy: endured.reported_unhealthy,
            confirmed: phase.confirmed,
            rejected: phase.rejected,
            cancelled: phase.cancelled,
        };
        eprintln!("    {outcome:?}");
        checked = report;
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// What a phase saw while its fault was in place and after it was repaired.
struct Endured {
    fenced: Option<u64>,
    reported_unhealthy: Option<bool>,
    probed: Option<Probed>,
}

/// One phase's traffic: shoppers warm up, `fault` is injected, lasts its outage and is repaired;
/// the probe times the recovery; traffic goes on for `timing.after` and stops.
async fn endure(
    system: &mut System,
    fixture: &Arc<Fixture>,
    seen: &Arc<Seen>,
    timing: Timing,
    fault: Fault,
    cut: &mut Option<Proxy>,
) -> Result<Endured, BenchError> {
    let shoppers = Shoppers::start(fixture, seen);
    tokio::time::sleep(timing.warmup).await;
    fault.inject(system, cut).await?;
    let outage_ends = Instant::now() + fault.outage(timing);
    let reported_unhealthy = match fault {
        Fault::WorkerCutOff => Some(reports_unhealthy(system, outage_ends).await),
        _ => None,
    };
    tokio::time::sleep_until(outage_ends.into()).await;
    let fenced = fault.repair(system, cut).await?;
    let repaired = Instant::now();
    let probed = probe(fixture, repaired, timing.bound).await;
    let remaining = timing.after.saturating_sub(repaired.elapsed());
    tokio::time::sleep(remaining).await;
    shoppers.stop().await;
    Ok(Endured {
        fenced,
        reported_unhealthy,
        probed,
    })
}

/// The faults × outcomes table, in Markdown.
pub fn table(outcomes: &[Outcome]) -> String {
    let mut out = String::from(
        "| fault | accepted | confirmed | rejected | cancelled | lost | duplicated | oversold | stale cache | redelivered events | slowest decision | stalled | fenced | probe's cart | time to recover | settled in |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|\n",
    );
    for o in outcomes {
        let recover = o
            .recover_seconds
            .map_or_else(|| "**never**".to_owned(), |s| format!("{s:.1} s"));
        let fenced = match (o.fenced, o.reported_unhealthy) {
            (None, _) => "–".to_owned(),
            (Some(n), Some(false)) => format!("{n} (**healthz said healthy**)"),
            (Some(n), _) => n.to_string(),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} s | {} | {} | {} | {} | {:.1} s |\n",
            o.fault,
            o.accepted,
            o.confirmed,
            o.rejected,
            o.cancelled,
            o.lost,
            o.duplicated,
            o.oversold,
            o.stale_cache,
            o.redelivered_events,
            o.slowest_decision_seconds,
            o.stalled,
            fenced,
            if o.cart_mismatch == 0 { "ok" } else { "**wrong**" },
            recover,
            o.settle_seconds
        ));
    }
    out
}
