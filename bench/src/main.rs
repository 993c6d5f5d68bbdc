//! `shop-bench`: the benchmark suite.
//!
//! ```text
//! shop-bench suite [--smoke] [--strategies queue,optimistic,redis-lock,row-lock]
//!                  [--notifier] [--bin-dir target/release] [--out results]
//! ```
//!
//! ```text
//! shop-bench scale [--users 10000000] [--baseline 10000] [--bin-dir target/release] [--out results]
//! ```
//!
//! `suite`: for each strategy it starts a fresh system (API + checkout worker on an empty database),
//! runs every scenario, checks stock against PostgreSQL, stops it; then prints one table and
//! writes the figures, with the machine's description, as JSON (see `suite.rs`). It exits
//! non-zero when a unit was oversold, stock was not conserved, or requests failed; never because
//! of timing.
//!
//! ```text
//! shop-bench faults [--quick] [--ha] [--runs 1] [--bin-dir target/release] [--out results]
//! ```
//!
//! `faults`: checkout traffic while faults are injected one at a time and then together; after
//! each, an invariant check (see `faults/`). Prints the faults × outcomes table, writes it as
//! JSON (`faults-<time>.json`) and exits non-zero on any violation. `--ha`: the failover faults
//! instead (`Fault::HA`), for stores run by `scripts/ha.sh` (`DATABASE_URL` and `REDIS_URL` are
//! its HAProxy ports; `scripts/bench.sh faults --ha` sets them); a failover must recover within
//! 20 s of the injection; written as `faults-ha-<time>.json`. `--runs N`: the whole list N times
//! over on one system; with `--ha` or N > 1 a second table gives each fault's time to recover
//! (and a failover's time until orders were accepted again) as the median and the worst run.
//!
//! ```text
//! shop-bench idle [--seconds 60] [--bin-dir target/release] [--out results]
//! ```
//!
//! ```text
//! shop-bench drop [--smoke] [--shoppers 20000] [--watchers 500] [--units 1000] [--limit 2]
//!                 [--strategies queue,row-lock] [--bin-dir target/release] [--out results]
//! ```
//!
//! `drop`: a flash-sale drop per strategy on a fresh system: thousands of shoppers check out
//! one limited product within a second of its sale's start (see `drop/`). Prints the tables,
//! writes `drop-<time>.json`, and exits non-zero when a unit was oversold, a shopper holds more
//! than the limit, or an answer was 5xx; never because of timing. `--smoke`: 400 shoppers, 20
//! watchers, 50 units.
//!
//! `idle`: a fresh system with no traffic for the given time: each part's CPU, and how fast the
//! first order after the quiet is decided (see `idle.rs`).
//!
//! `scale`: bulk-loads the given number of users with live sessions, reports the memory each
//! store needs per million users, and probes latencies next to a small shop (see `scale.rs`).
//!
//! This file parses the command line and calls down; the modules below it do the work.

mod cpu;
mod drop;
mod env;
mod error;
mod faults;
mod idle;
mod load;
mod pipeline;
mod poll;
mod profile;
mod proxy;
mod report;
mod scale;
mod scenarios;
mod shop;
mod suite;
mod system;

use anyhow::{bail, Context};
use env::Environment;
use report::{write_figures, Machine};
use scenarios::Sizes;
use shop_infra::{env::var, settings};
use std::{path::PathBuf, time::Duration};

const USAGE: &str = "usage: shop-bench suite [--smoke] [--strategies a,b,…] [--scenarios a,b,…] [--notifier] [--bin-dir DIR] [--out DIR]
       shop-bench scale [--users N] [--baseline N] [--smoke] [--bin-dir DIR] [--out DIR]
       shop-bench faults [--quick] [--ha] [--runs N] [--bin-dir DIR] [--out DIR]
       shop-bench idle [--seconds 60] [--bin-dir DIR] [--out DIR]
       shop-bench drop [--smoke] [--shoppers N] [--watchers N] [--units N] [--limit N] [--strategies a,b] [--bin-dir DIR] [--out DIR]";

const SCENARIOS: [&str; 7] = [
    "catalog",
    "cart",
    "registration",
    "checkout-cold",
    "checkout-hot",
    "checkout-mix",
    "search",
];

struct Options {
    smoke: bool,
    strategies: Vec<String>,
    scenarios: Vec<String>,
    out: PathBuf,
    env: Environment,
}

fn options(mut args: impl Iterator<Item = String>) -> anyhow::Result<Options> {
    let mut options = Options {
        smoke: false,
        strategies: ["queue", "optimistic", "redis-lock", "row-lock"]
            .map(str::to_owned)
            .to_vec(),
        scenarios: SCENARIOS.map(str::to_owned).to_vec(),
        out: PathBuf::from("results"),
        env: Environment {
            bin_dir: PathBuf::from("target/release"),
            database_url: var("DATABASE_URL", settings::DEFAULT_DATABASE_URL)?,
            redis_url: var("REDIS_URL", settings::DEFAULT_REDIS_URL)?,
            kafka_brokers: var("KAFKA_BROKERS", inventory_partitioner::DEFAULT_BROKERS)?,
            mailbox: var("MAILSINK_HTTP", "127.0.0.1:8025")?,
            notifier: false,
            log_dir: std::env::temp_dir().join("shop-bench"),
        },
    };
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .with_context(|| format!("{arg} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--smoke" => options.smoke = true,
            "--strategies" => {
                options.strategies = value()?.split(',').map(str::to_owned).collect();
            }
            "--scenarios" => {
                options.scenarios = value()?.split(',').map(str::to_owned).collect();
                if let Some(unknown) = options
                    .scenarios
                    .iter()
                    .find(|s| !SCENARIOS.contains(&s.as_str()))
                {
                    bail!(
                        "unknown scenario {unknown:?}; known: {}",
                        SCENARIOS.join(",")
                    );
                }
            }
            "--bin-dir" => options.env.bin_dir = value()?.into(),
            "--notifier" => options.env.notifier = true,
            "--out" => options.out = value()?.into(),
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("suite") => suite_command(options(args)?).await,
        Some("scale") => scale_command(args).await,
        Some("faults") => faults_command(args).await,
        Some("idle") => idle_command(args).await,
        Some("drop") => drop_command(args).await,
        _ => bail!("{USAGE}"),
    }
}

async fn suite_command(options: Options) -> anyhow::Result<()> {
    let sizes = if options.smoke {
        Sizes::smoke()
    } else {
        Sizes::full()
    };
    suite::run(
        &options.env,
        &options.strategies,
        &options.scenarios,
        sizes,
        &options.out,
    )
    .await
}

async fn scale_command(mut args: impl Iterator<Item = String>) -> anyhow::Result<()> {
    let mut sizes = vec![10_000u64, 10_000_000];
    let mut rest = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--users" => sizes[1] = args.next().context("--users needs a number")?.parse()?,
            "--baseline" => sizes[0] = args.next().context("--baseline needs a number")?.parse()?,
            _ => rest.push(arg),
        }
    }
    let options = options(rest.into_iter())?;
    let duration = Duration::from_secs(if options.smoke { 1 } else { 10 });
    let mut reports = Vec::new();
    for users in sizes {
        reports.push(scale::measure(&options.env, users, duration).await?);
    }
    let machine = Machine::describe();
    println!(
        "{} cores, {:.1} GiB, {}\n\n{}",
        machine.cores,
        machine.memory_gib,
        machine.cpu,
        scale::table(&reports)
    );
    let json = serde_json::json!({ "machine": machine, "sizes": reports });
    write_figures(&options.out, "scale", &json)
}

async fn idle_command(mut args: impl Iterator<Item = String>) -> anyhow::Result<()> {
    let mut seconds = 60u64;
    let mut rest = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => seconds = args.next().context("--seconds needs a number")?.parse()?,
            _ => rest.push(arg),
        }
    }
    let options = options(rest.into_iter())?;
    let report = idle::measure(&options.env, Duration::from_secs(seconds)).await?;
    println!("{}", idle::table(&report));
    let json = serde_json::json!({ "machine": Machine::describe(), "idle": report });
    write_figures(&options.out, "idle", &json)
}

async fn drop_command(mut args: impl Iterator<Item = String>) -> anyhow::Result<()> {
    let (mut shoppers, mut watchers, mut units, mut limit) = (None, None, None, None);
    let mut strategies = vec!["queue".to_owned(), "row-lock".to_owned()];
    let mut rest = Vec::new();
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .with_context(|| format!("{arg} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--shoppers" => shoppers = Some(value()?.parse()?),
            "--watchers" => watchers = Some(value()?.parse()?),
            "--units" => units = Some(value()?.parse()?),
            "--limit" => limit = Some(value()?.parse()?),
            "--strategies" => strategies = value()?.split(',').map(str::to_owned).collect(),
            _ => rest.push(arg),
        }
    }
    let options = options(rest.into_iter())?;
    let base = if options.smoke {
        drop::Plan::smoke()
    } else {
        drop::Plan::full()
    };
    let plan = drop::Plan {
        shoppers: shoppers.unwrap_or(base.shoppers),
        watchers: watchers.unwrap_or(base.watchers),
        units: units.unwrap_or(base.units),
        limit: limit.unwrap_or(base.limit),
    };
    drop::run(&options.env, &strategies, plan, &options.out).await
}

async fn faults_command(mut args: impl Iterator<Item = String>) -> anyhow::Result<()> {
    let (mut quick, mut ha, mut runs) = (false, false, 1usize);
    let mut rest = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--ha" => ha = true,
            "--runs" => runs = args.next().context("--runs needs a number")?.parse()?,
            _ => rest.push(arg),
        }
    }
    if runs == 0 {
        bail!("--runs needs at least 1\n{USAGE}");
    }
    let options = options(rest.into_iter())?;
    let timing = if quick {
        faults::Timing::quick()
    } else {
        faults::Timing::full()
    };
    let (list, kind): (&[faults::Fault], _) = if ha {
        (&faults::Fault::HA, "faults-ha")
    } else {
        (&faults::Fault::ALL, "faults")
    };
    let outcomes = faults::run(&options.env, timing, &list.repeat(runs)).await?;
    let machine = Machine::describe();
    println!("{}", faults::table(&outcomes));
    let over_runs = faults::over_runs(&outcomes);
    if ha || runs > 1 {
        println!("{}", faults::over_runs_table(&over_runs));
    }
    let json = serde_json::json!({
        "machine": machine,
        "timing": timing,
        "runs": runs,
        "faults": outcomes,
        "over_runs": over_runs,
    });
    write_figures(&options.out, kind, &json)?;
    let violations: u64 = outcomes.iter().map(faults::Outcome::violations).sum();
    if violations > 0 {
        bail!("{violations} invariant violations (lost, duplicated, oversold, over the limit, stale, never recovered, or a failover slower than its bound)");
    }
    Ok(())
}
