//! The comparison table, and the JSON record with the machine it was measured on.

use crate::{
    cpu::PARTS,
    scenarios::{ScenarioResult, Sizes},
};
use serde::Serialize;
use std::{fmt::Write as _, path::Path};

#[derive(Debug, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub memory_gib: f64,
    pub cpu: String,
    pub kernel: String,
}

impl Machine {
    pub fn describe() -> Self {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let meminfo = read("/proc/meminfo");
        let memory_kib: f64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        let cpu = read("/proc/cpuinfo")
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            .unwrap_or_default();
        Self {
            cores: std::thread::available_parallelism().map_or(0, usize::from),
            memory_gib: memory_kib / 1024.0 / 1024.0,
            cpu,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct StrategyRun {
    pub strategy: String,
    pub results: Vec<ScenarioResult>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub started_at: String,
    pub machine: Machine,
    pub sizes: Sizes,
    pub runs: Vec<StrategyRun>,
}

impl Report {
    /// Units oversold and stock conservation violations, over every checkout run.
    pub fn violations(&self) -> i64 {
        self.checkouts()
            .map(|(_, r)| {
                r.checkout
                    .as_ref()
                    .map_or(0, |c| c.oversold_units + c.conservation_violations)
            })
            .sum()
    }

    /// Requests that failed for a reason other than a sold-out or contended product.
    pub fn failures(&self) -> u64 {
        self.runs
            .iter()
            .flat_map(|run| &run.results)
            .map(|r| match &r.checkout {
                Some(c) => c.failed,
                None => r.summary.failed,
            })
            .sum()
    }

    fn checkouts(&self) -> impl Iterator<Item = (&str, &ScenarioResult)> {
        self.runs.iter().flat_map(|run| {
            run.results
                .iter()
                .filter(|r| r.checkout.is_some())
                .map(move |r| (run.strategy.as_str(), r))
        })
    }

    pub fn table(&self) -> String {
        let m = &self.machine;
        let mut out = format!(
            "{} cores, {:.1} GiB, {}; app, PostgreSQL, Redis, broker and load generator share them\n\n",
            m.cores, m.memory_gib, m.cpu
        );
        out.push_str("| strategy | scenario | load | requests | req/s | p50 ms | p99 ms | p99.9 ms | failed |\n");
        out.push_str("|---|---|---|---:|---:|---:|---:|---:|---:|\n");
        for run in &self.runs {
            for r in &run.results {
                let s = &r.summary;
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} |",
                    run.strategy,
                    r.scenario,
                    r.mode,
                    s.requests,
                    s.throughput,
                    s.p50_ms,
                    s.p99_ms,
                    s.p999_ms,
                    s.failed
                );
            }
        }
        out.push_str("\n| strategy | checkout scenario | load | placed | sold out | contended | confirmed | rejected | confirmed/s | to terminal p50 ms | p99 ms | oversold | conservation |\n");
        out.push_str("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
        for (strategy, r) in self.checkouts() {
            let Some(c) = &r.checkout else { continue };
            let _ = writeln!(
                out,
                "| {strategy} | {} | {} | {} | {} | {} | {} | {} | {:.0} | {:.1} | {:.1} | {} | {} |",
                r.scenario,
                r.mode,
                c.placed,
                c.out_of_stock,
                c.contention,
                c.confirmed,
                c.rejected,
                c.confirmed_per_sec,
                c.terminal_p50_ms,
                c.terminal_p99_ms,
                c.oversold_units,
                if c.conservation_violations == 0 {
                    "ok".to_owned()
                } else {
                    format!("{} products off", c.conservation_violations)
                }
            );
        }
        out.push_str(
            "\n| strategy | checkout scenario | load | seconds | PostgreSQL CPU ms per order |",
        );
        for (_, part) in PARTS {
            let _ = write!(out, " {part} % of a core |");
        }
        out.push_str("\n|---|---|---|---:|---:|");
        out.push_str(&"---:|".repeat(PARTS.len()));
        out.push('\n');
        for (strategy, r) in self.checkouts() {
            let Some(c) = &r.checkout else { continue };
            let _ = write!(
                out,
                "| {strategy} | {} | {} | {:.1} | {:.3} |",
                r.scenario, r.mode, c.cpu.seconds, c.postgres_ms_per_order
            );
            for (_, part) in PARTS {
                let share = c.cpu.percent_of_core.get(part).copied().unwrap_or(0.0);
                let _ = write!(out, " {share:.0} |");
            }
            out.push('\n');
        }
        self.profile(&mut out);
        out
    }

    /// The statements that took most of PostgreSQL's execution time, per checkout scenario.
    fn profile(&self, out: &mut String) {
        let profiled: Vec<_> = self
            .checkouts()
            .filter_map(|(strategy, r)| {
                let c = r.checkout.as_ref()?;
                (!c.statements.is_empty()).then_some((strategy, r, c))
            })
            .collect();
        if profiled.is_empty() {
            return;
        }
        out.push_str("\n| strategy | checkout scenario | load | statement (pg_stat_statements) | calls per order | exec ms per order |\n");
        out.push_str("|---|---|---|---|---:|---:|\n");
        for (strategy, r, c) in profiled {
            let orders = c.placed.max(1) as f64;
            for s in &c.statements {
                let _ = writeln!(
                    out,
                    "| {strategy} | {} | {} | `{}` | {:.3} | {:.3} |",
                    r.scenario,
                    r.mode,
                    s.query.replace('|', "\\|"),
                    s.calls as f64 / orders,
                    s.exec_ms / orders
                );
            }
        }
    }

    /// Writes `<dir>/bench-<time>.json` and returns its path.
    pub fn write_json(&self, dir: &Path) -> std::io::Result<std::path::PathBuf> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("bench-{}.json", self.started_at.replace(':', "")));
        let json = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(&path, json + "\n")?;
        Ok(path)
    }
}

/// Writes `json` to `<dir>/<kind>-<now>.json` and says where on stderr.
pub fn write_figures(dir: &Path, kind: &str, json: &serde_json::Value) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!(
        "{kind}-{}.json",
        chrono::Utc::now().format("%Y-%m-%dT%H%M%SZ")
    ));
    std::fs::write(&path, serde_json::to_string_pretty(json)? + "\n")?;
    eprintln!("==> figures written to {}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{load::Summary, pipeline::CheckoutFigures};

    fn summary(failed: u64) -> Summary {
        Summary {
            requests: 10,
            ok: 10 - failed,
            failed,
            seconds: 1.0,
            throughput: 10.0,
            p50_ms: 1.0,
            p99_ms: 2.0,
            p999_ms: 3.0,
            max_ms: 4.0,
        }
    }

    fn report(results: Vec<ScenarioResult>) -> Report {
        Report {
            started_at: "2026-11-26T00:00:00Z".into(),
            machine: Machine::describe(),
            sizes: Sizes::smoke(),
            runs: vec![StrategyRun {
                strategy: "queue".into(),
                results,
            }],
        }
    }

    #[test]
    fn oversold_units_and_real_failures_fail_the_run_but_contention_does_not() {
        let contended = CheckoutFigures {
            contention: 5,
            ..CheckoutFigures::default()
        };
        let clean = report(vec![ScenarioResult {
            scenario: "checkout",
            mode: "closed 8".into(),
            // Contended requests count as failed requests in the summary, not as failures.
            summary: summary(5),
            checkout: Some(contended.clone()),
        }]);
        assert_eq!((clean.violations(), clean.failures()), (0, 0));
        assert!(clean.table().contains("| queue | checkout | closed 8 |"));

        let oversold = report(vec![ScenarioResult {
            scenario: "checkout",
            mode: "closed 8".into(),
            summary: summary(0),
            checkout: Some(CheckoutFigures {
                oversold_units: 2,
                conservation_violations: 1,
                failed: 1,
                ..contended
            }),
        }]);
        assert_eq!((oversold.violations(), oversold.failures()), (3, 1));

        let catalog = report(vec![ScenarioResult {
            scenario: "catalog",
            mode: "closed 8".into(),
            summary: summary(4),
            checkout: None,
        }]);
        assert_eq!(catalog.failures(), 4);
    }
}
