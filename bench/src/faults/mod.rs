//! `shop-bench faults`: steady checkout traffic while faults are injected one at a time and then
//! together, each followed by an invariant check of PostgreSQL, Redis and the order events topic.
//! This file is the run: the faults in order, one phase each (the list `--runs` times over);
//! the rows are `outcome.rs`'s, the figures over runs `runs.rs`'s.
//!
//! A phase: traffic (`traffic.rs`) warms up, the fault is injected and lasts its outage, then is
//! repaired (one file per fault, listed in `fault.rs`; processes started, stopped and stalled by
//! `harness.rs`). A probe then places an order and times how long until it is decided (time to
//! recover, `probe.rs`); then traffic stops, the system is given the bound to settle, and the
//! invariants are checked over everything the run has done so far (`inspect.rs` reads,
//! `check.rs` judges).
//!
//! A failover (`--ha`: the stores of `scripts/ha.sh`, acted on through `ha.rs`) is not repaired
//! by the suite: the shop recovers by itself. There the probe starts at the injection, and the
//! time to recover (until its order is decided) must be within `Timing::failover_bound` (20 s);
//! the time until its checkout was first accepted again is kept beside it. Before the Redis
//! master is killed, fresh sessions are issued and afterwards counted (`sessions.rs`: how many
//! were lost, a measurement). Only then is the node brought back and the topology waited on
//! until whole, so that every phase starts with a primary, a synchronous standby and a Redis
//! replica. The broker, one node, is killed and started again like the faults above.
//!
//! Two faults stall a worker beside a live one, with a batch's transaction open (proved from
//! `pg_stat_activity`, not assumed): a SIGSTOP, and a network cut between it and PostgreSQL that
//! leaves its connections half-open. There every order of the phase must be decided within
//! `MEMBER_LEASE_MS` + 5 s, on every partition, and when the stale worker comes back the fence
//! must refuse its batch (its `checkout_worker_fenced_batches_total` rises).

mod api_killed;
mod broker_killed;
mod broker_restart;
mod check;
mod combined;
mod events;
mod fault;
mod ha;
mod harness;
mod inspect;
mod outcome;
mod pg_primary_cut_off;
mod pg_primary_killed;
mod pg_standby_killed;
mod postgres_restart;
mod probe;
mod redis_lost;
mod redis_master_killed;
mod runs;
mod seen;
mod sessions;
mod timing;
mod traffic;
mod worker_cut_off;
mod worker_joins;
mod worker_killed;
mod worker_paused;

pub use fault::Fault;
pub use outcome::{table, Outcome};
pub use runs::{over_runs, over_runs_table};
pub use timing::Timing;

use crate::{env::Environment, error::BenchError, system::System};
use check::{judge, Checked};
use fault::Broken;
use harness::{redis_answers, reports_unhealthy, stall_bound};
use inspect::{decision_times, drop_figures, observe, settle};
use probe::{probe, Probed};
use seen::Seen;
use sessions::SessionsLost;
use std::{sync::Arc, time::Instant};
use traffic::{restock, Fixture, Shoppers};

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
    let mut broken = Broken::default();
    for (phase, &fault) in (0..).zip(faults) {
        eprintln!("==> fault: {}", fault.name());
        restock(&fixture, &mut initial).await?;
        let phase_start: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("SELECT now()")
            .fetch_one(&system.db)
            .await?;
        let accepted_before = seen.accepted();
        let endured = endure(system, &fixture, &seen, timing, fault, &mut broken, phase).await?;
        let stopped = Instant::now();
        let settled = settle(system, timing.bound).await?;
        let settle_seconds = stopped.elapsed().as_secs_f64();
        let report = judge(&observe(system, env, &initial, &seen, settled).await?);
        let drop = drop_figures(system, fixture.drop).await?;
        eprintln!(
            "    drop: {} of {} units sold, {} lines refused over the limit",
            drop.sold,
            initial.get(&fixture.drop).copied().unwrap_or(0),
            drop.over_limit_refused
        );
        let (slowest_decision_seconds, over_bound) =
            decision_times(system, phase_start, stall_bound()).await?;
        let phase = report.since(&checked);
        let failover = fault.fails_over();
        let probed = &endured.probed;
        let outcome = Outcome {
            fault: fault.name().to_owned(),
            accepted: seen.accepted().saturating_sub(accepted_before),
            lost: phase.lost,
            duplicated: phase.duplicated,
            oversold: phase.oversold,
            over_limit: phase.over_limit,
            redelivered_events: phase.redelivered,
            stale_cache: report.stale_cache,
            recover_seconds: probed.recover_seconds,
            accepted_again_seconds: probed.accepted_seconds.filter(|_| failover),
            failover_bound_seconds: failover.then_some(timing.failover_bound.as_secs_f64()),
            sessions_lost: endured.sessions_lost,
            cart_mismatch: u64::from(probed.cart_ok == Some(false)),
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

/// What a phase saw while its fault was in place and after it was mended.
#[derive(Default)]
struct Endured {
    fenced: Option<u64>,
    reported_unhealthy: Option<bool>,
    probed: Probed,
    sessions_lost: Option<SessionsLost>,
}

/// One phase's traffic: shoppers warm up, `fault` is injected and ends (mended by the suite, or
/// a failover); traffic goes on for `timing.after` once it is mended, and stops. `phase` numbers
/// the phase in the run.
async fn endure(
    system: &mut System,
    fixture: &Arc<Fixture>,
    seen: &Arc<Seen>,
    timing: Timing,
    fault: Fault,
    broken: &mut Broken,
    phase: u64,
) -> Result<Endured, BenchError> {
    let shoppers = Shoppers::start(fixture, seen);
    tokio::time::sleep(timing.warmup).await;
    let drop_starts = (fixture.drop_starts_at - chrono::Utc::now()).as_seconds_f64();
    eprintln!("    the drop's sale starts {drop_starts:+.1} s from the injection");
    let (endured, mended) = if fault.fails_over() {
        fail_over(system, fixture, timing, fault, broken, phase).await?
    } else {
        break_and_mend(system, fixture, timing, fault, broken).await?
    };
    tokio::time::sleep(timing.after.saturating_sub(mended.elapsed())).await;
    shoppers.stop().await;
    Ok(endured)
}

/// A fault the suite mends: it lasts its outage and is repaired; the probe times the recovery
/// from the repair (traffic's `after` counts from there too).
async fn break_and_mend(
    system: &mut System,
    fixture: &Fixture,
    timing: Timing,
    fault: Fault,
    broken: &mut Broken,
) -> Result<(Endured, Instant), BenchError> {
    fault.inject(system, broken).await?;
    let outage_ends = Instant::now() + fault.outage(timing);
    let reported_unhealthy = match fault {
        Fault::WorkerCutOff => Some(reports_unhealthy(system, outage_ends).await),
        _ => None,
    };
    tokio::time::sleep_until(outage_ends.into()).await;
    let fenced = fault.repair(system, broken).await?;
    let repaired = Instant::now();
    let probed = probe(fixture, repaired, timing.bound).await;
    let endured = Endured {
        fenced,
        reported_unhealthy,
        probed,
        sessions_lost: None,
    };
    Ok((endured, repaired))
}

/// A failover: the shop recovers by itself, so the probe times it from the injection (and, where
/// sessions are at risk, counts how many of those issued just before were lost); only then is the
/// node brought back, so that the next phase again has a primary with a synchronous standby and
/// a Redis master with a replica (and the suite's own Redis connection has found the master).
async fn fail_over(
    system: &mut System,
    fixture: &Fixture,
    timing: Timing,
    fault: Fault,
    broken: &mut Broken,
    phase: u64,
) -> Result<(Endured, Instant), BenchError> {
    let injected = Instant::now();
    let (issued, injection) = if fault.puts_sessions_at_risk() {
        tokio::join!(
            sessions::issue(&fixture.shop, phase),
            fault.inject(system, broken)
        )
    } else {
        (Vec::new(), fault.inject(system, broken).await)
    };
    injection?;
    let probed = probe(fixture, injected, timing.bound).await;
    let sessions_lost = if issued.is_empty() {
        None
    } else {
        Some(sessions::lost(&fixture.shop, &issued).await)
    };
    fault.repair(system, broken).await?;
    redis_answers(system).await?;
    let endured = Endured {
        probed,
        sessions_lost,
        ..Endured::default()
    };
    Ok((endured, Instant::now()))
}
