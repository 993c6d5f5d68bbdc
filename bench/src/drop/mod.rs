//! `shop-bench drop`: a flash-sale drop, per strategy on a fresh system (as the suite starts
//! one: `System::start` with `CHECKOUT_STRATEGY` set).
//!
//! A seller lists one product with `units` in stock, `max_per_shopper` = `limit`; `shoppers`
//! shoppers put 1 or 2 of it in their carts; the sale starts a few seconds after they are ready
//! (`shoppers`). Every shopper checks out in its slot of the second after the start, one in
//! ten a second time right after, a few a second before it too; `watchers` accepted orders are
//! followed over Server-Sent Events (`watch`). Once every order is decided (`pipeline::settle`)
//! the stores say what was sold and to whom (`store`), and the orders' served order is held to
//! their accepted order (`fairness`). Each strategy's figures are a [`DropRun`] (`report`).
//!
//! | module      | what                                                           |
//! |-------------|----------------------------------------------------------------|
//! | `plan`      | the sizes, each shopper's part, the demand                     |
//! | `shoppers`  | the drop listed, the shoppers registered, the checkouts on the clock |
//! | `watch`     | one order followed over SSE: place updates, rises of `ahead`   |
//! | `store`     | PostgreSQL and the inventory topic after the sale              |
//! | `fairness`  | served order against accepted order: inversions, displacement  |
//! | `report`    | the figures, what fails the run, the tables                    |

mod fairness;
mod plan;
mod report;
mod shoppers;
mod store;
mod watch;

pub use plan::Plan;

use crate::{
    cpu::Reading,
    env::Environment,
    error::BenchError,
    load::{Outcome, Recorder},
    pipeline::settle,
    report::{write_figures, Machine},
    scenarios::{Bench, Sizes},
    system::System,
};
use anyhow::{bail, Context};
use fairness::{Fairness, ServedBy};
use report::{Answers, DropRun};
use reqwest::StatusCode;
use shoppers::{Answer, Fire, Fired};
use std::{path::Path, time::Duration};
use tokio::time::Instant;
use watch::WatchFigures;

/// How long before the sale starts its start is set (the early checkouts go out a second
/// before it).
const LEAD: Duration = Duration::from_secs(3);
/// How long after the start a watcher waits for its order's decision.
const WATCH_WITHIN: Duration = Duration::from_secs(120);

/// Runs the drop for each of `strategies`, prints the tables and writes the JSON to `out`
/// (`drop-<time>.json`); fails when a unit was oversold, a shopper holds more than the limit,
/// or an answer was 5xx.
pub async fn run(
    env: &Environment,
    strategies: &[String],
    plan: Plan,
    out: &Path,
) -> anyhow::Result<()> {
    plan.check()?;
    let mut runs = Vec::new();
    for strategy in strategies {
        eprintln!("==> {strategy}: starting a fresh system");
        let system = System::start(env, strategy).await?;
        let run = drop_on(&system, env, strategy, plan).await;
        let stopped = system.stop().await;
        runs.push(run.with_context(|| format!("strategy {strategy}"))?);
        stopped?;
    }
    let machine = Machine::describe();
    println!(
        "{} cores, {:.1} GiB, {}; {} shoppers, {} watchers, {} units, limit {}\n\n{}",
        machine.cores,
        machine.memory_gib,
        machine.cpu,
        plan.shoppers,
        plan.watchers,
        plan.units,
        plan.limit,
        report::table(&runs)
    );
    let json = serde_json::json!({ "machine": machine, "plan": plan, "runs": runs });
    write_figures(out, "drop", &json)?;
    let violations: Vec<String> = runs.iter().flat_map(DropRun::violations).collect();
    if !violations.is_empty() {
        bail!("{}", violations.join("; "));
    }
    Ok(())
}

/// One drop on `system`, which runs `strategy`.
async fn drop_on(
    system: &System,
    env: &Environment,
    strategy: &str,
    plan: Plan,
) -> Result<DropRun, BenchError> {
    // The suite's set-up (a seller, the shoppers' registration) without its catalog.
    let sizes = Sizes {
        catalog_products: 0,
        ..Sizes::smoke()
    };
    let bench = Bench::prepare(system, &sizes).await?;
    eprintln!("==> {strategy}: registering {} shoppers", plan.shoppers);
    let (drop, shoppers) = shoppers::prepare(&bench, &plan).await?;
    let users: Vec<i64> = shoppers.iter().map(|s| s.user).collect();
    let (start_at, start) = (chrono::Utc::now() + LEAD, Instant::now() + LEAD);
    shoppers::start_sale_at(&bench.shop, &bench.seller, drop, start_at).await?;
    let firing = tokio::spawn(shoppers::fire(
        bench.shop.clone(),
        plan,
        drop,
        shoppers,
        start,
        start + WATCH_WITHIN,
    ));
    tokio::time::sleep_until(start.checked_sub(plan::EARLY_BY).unwrap_or(start)).await;
    let before = Reading::now();
    eprintln!("==> {strategy}: the sale starts");
    let fired = firing
        .await
        .map_err(|e| BenchError::Unexpected(format!("the shoppers' run failed: {e}")))??;
    settle(&system.db, &users).await?;
    let cpu = before.until(&Reading::now());
    let stock = store::stock(&system.db, drop, plan.units).await?;
    let last_decision = store::last_decision(&system.db, drop).await?;
    let fairness = if strategy == "queue" {
        let topic = format!("{}.inventory", system.name);
        let served = store::reserve_order(&env.kafka_brokers, &topic, drop).await?;
        fairness::compare(ServedBy::PartitionOffsets, &accepted(&fired), &served)
    } else {
        synchronous_fairness(&fired.answers)
    };
    Ok(DropRun {
        strategy: strategy.to_owned(),
        units: plan.units,
        demand: plan::demand(&plan.roles(), plan.limit),
        sold: stock.sold,
        oversold: stock.oversold,
        over_limit: store::over_limit(&system.db, drop, plan.limit).await?,
        answers: Answers::tally(&fired.answers),
        accept: latencies(&fired.answers, start),
        last_answer_s: last_answer(&fired.answers, start),
        last_decision_s: last_decision.map(|at| (at - start_at).num_milliseconds() as f64 / 1000.0),
        place: WatchFigures::of(&fired.watched),
        fairness,
        cpu,
    })
}

/// The orders answered 202, in the order the answers arrived.
fn accepted(fired: &Fired) -> Vec<uuid::Uuid> {
    in_order_of(&fired.answers, StatusCode::ACCEPTED, |a| a.answered)
}

/// A synchronous strategy's winners (201): the order their answers arrived in against the order
/// their requests were sent in.
fn synchronous_fairness(answers: &[Answer]) -> Fairness {
    let sent = in_order_of(answers, StatusCode::CREATED, |a| a.sent);
    let answered = in_order_of(answers, StatusCode::CREATED, |a| a.answered);
    fairness::compare(ServedBy::AnswerArrival, &sent, &answered)
}

/// The orders of the answers with `status`, by `when`.
fn in_order_of(
    answers: &[Answer],
    status: StatusCode,
    when: impl Fn(&Answer) -> Instant,
) -> Vec<uuid::Uuid> {
    let mut placed: Vec<(Instant, uuid::Uuid)> = answers
        .iter()
        .filter(|a| a.status == Some(status))
        .filter_map(|a| Some((when(a), a.order?)))
        .collect();
    placed.sort_unstable();
    placed.into_iter().map(|(_, order)| order).collect()
}

/// Due → answered of every checkout that got an HTTP answer: a 2xx or 409 is a right answer.
fn latencies(answers: &[Answer], start: Instant) -> crate::load::Summary {
    let recorder = Recorder::new();
    for answer in answers {
        let Some(status) = answer.status else {
            continue;
        };
        let outcome = if status.is_success() || status == StatusCode::CONFLICT {
            Outcome::Ok
        } else {
            Outcome::Failed
        };
        recorder.record(outcome, answer.answered.duration_since(answer.due));
    }
    let elapsed = answers
        .iter()
        .map(|a| a.answered.saturating_duration_since(start))
        .max()
        .unwrap_or_default();
    recorder.summary(elapsed)
}

/// Seconds from the start to the last answer of a checkout sent after it.
fn last_answer(answers: &[Answer], start: Instant) -> f64 {
    answers
        .iter()
        .filter(|a| a.fire != Fire::Early)
        .map(|a| a.answered.saturating_duration_since(start).as_secs_f64())
        .fold(0.0, f64::max)
}
