//! `shop-bench suite`: for each strategy a fresh system, every chosen scenario against it, and
//! one report over all of them.

use crate::{
    env::Environment,
    error::BenchError,
    report::{Machine, Report, StrategyRun},
    scenarios::{Bench, Sizes},
    system::System,
};
use anyhow::{bail, Context};
use std::path::Path;

/// Runs `scenarios` for each of `strategies`, prints the table and writes the JSON to `out`;
/// fails when a unit was oversold, stock was not conserved, or requests failed.
pub async fn run(
    env: &Environment,
    strategies: &[String],
    scenarios: &[String],
    sizes: Sizes,
    out: &Path,
) -> anyhow::Result<()> {
    let mut report = Report {
        started_at: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        machine: Machine::describe(),
        sizes,
        runs: Vec::new(),
    };
    for strategy in strategies {
        let run = run_strategy(env, strategy, scenarios, &report.sizes).await?;
        report.runs.push(run);
    }
    println!("{}", report.table());
    let path = report.write_json(out)?;
    eprintln!("==> figures written to {}", path.display());
    let (violations, failures) = (report.violations(), report.failures());
    if violations > 0 || failures > 0 {
        bail!("{violations} oversold units or conservation violations, {failures} failed requests");
    }
    Ok(())
}

async fn run_strategy(
    env: &Environment,
    strategy: &str,
    scenarios: &[String],
    sizes: &Sizes,
) -> anyhow::Result<StrategyRun> {
    eprintln!("==> {strategy}: starting a fresh system");
    let system = System::start(env, strategy).await?;
    let results = async {
        let mut bench = Bench::prepare(&system, sizes).await?;
        let mut results = Vec::new();
        for scenario in scenarios {
            eprintln!("==> {strategy}: {scenario}");
            match scenario.as_str() {
                "catalog" => results.extend(bench.catalog().await?),
                "cart" => results.push(bench.cart().await?),
                "registration" => results.push(bench.registration().await?),
                "checkout-cold" => results.extend(bench.checkout_cold().await?),
                "checkout-hot" => results.push(bench.checkout_hot().await?),
                "checkout-mix" => results.push(bench.checkout_mix().await?),
                _ => results.extend(bench.search().await?),
            }
        }
        Ok::<_, BenchError>(results)
    }
    .await;
    let stopped = system.stop().await;
    let results = results.with_context(|| format!("strategy {strategy}"))?;
    stopped?;
    Ok(StrategyRun {
        strategy: strategy.to_owned(),
        results,
    })
}
