//! [`OverRuns`]: each fault's figures over the runs of `--runs N` (the whole list repeated):
//! its time to recover, and a failover's time until orders were accepted again, as the median
//! and the worst run; the sessions lost in all its runs; its violations.

use super::{
    outcome::{seconds, sessions, Outcome},
    sessions::SessionsLost,
};
use serde::Serialize;

/// A figure over runs: the median (nearest rank: the lower of the two middle runs when there is
/// an even number) and the worst. `None` is never (a run that never recovered counts as the
/// slowest).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    pub p50: Option<f64>,
    pub worst: Option<f64>,
}

/// One fault's figures over its runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OverRuns {
    pub fault: String,
    pub runs: usize,
    /// Time to recover (from the injection for a failover, else from the repair).
    pub recover_seconds: Spread,
    /// A failover's: from the injection until a checkout was accepted again.
    pub accepted_again_seconds: Option<Spread>,
    /// Sessions lost over all its runs, where it puts them at risk.
    pub sessions_lost: Option<SessionsLost>,
    pub violations: u64,
}

/// The median and the worst of `values` (`None` ranks above every number); both `None` if there
/// are none.
fn spread(values: &[Option<f64>]) -> Spread {
    let mut ranked: Vec<f64> = values.iter().map(|v| v.unwrap_or(f64::INFINITY)).collect();
    ranked.sort_by(f64::total_cmp);
    let finite = |v: &f64| v.is_finite().then_some(*v);
    Spread {
        p50: ranked
            .get(ranked.len().saturating_sub(1) / 2)
            .and_then(finite),
        worst: ranked.last().and_then(finite),
    }
}

/// Each fault's figures over its runs, in the order the faults first ran.
pub fn over_runs(outcomes: &[Outcome]) -> Vec<OverRuns> {
    let mut faults: Vec<&str> = Vec::new();
    for o in outcomes {
        if !faults.contains(&o.fault.as_str()) {
            faults.push(&o.fault);
        }
    }
    faults
        .into_iter()
        .map(|fault| {
            let runs: Vec<&Outcome> = outcomes.iter().filter(|o| o.fault == fault).collect();
            let failover = runs.iter().any(|o| o.failover_bound_seconds.is_some());
            let accepted: Vec<Option<f64>> =
                runs.iter().map(|o| o.accepted_again_seconds).collect();
            OverRuns {
                fault: fault.to_owned(),
                runs: runs.len(),
                recover_seconds: spread(
                    &runs.iter().map(|o| o.recover_seconds).collect::<Vec<_>>(),
                ),
                accepted_again_seconds: failover.then(|| spread(&accepted)),
                sessions_lost: runs
                    .iter()
                    .filter_map(|o| o.sessions_lost)
                    .reduce(|a, b| a + b),
                violations: runs.iter().map(|o| o.violations()).sum(),
            }
        })
        .collect()
}

/// The figures over runs, in Markdown.
pub fn over_runs_table(rows: &[OverRuns]) -> String {
    let mut out = String::from(
        "| fault | runs | time to recover p50 | worst | accepted again p50 | worst | sessions lost | violations |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let (accepted_p50, accepted_worst) = match r.accepted_again_seconds {
            Some(s) => (seconds(s.p50), seconds(s.worst)),
            None => ("–".to_owned(), "–".to_owned()),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.fault,
            r.runs,
            seconds(r.recover_seconds.p50),
            seconds(r.recover_seconds.worst),
            accepted_p50,
            accepted_worst,
            sessions(r.sessions_lost),
            r.violations
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_is_the_middle_run_and_never_is_the_worst() {
        let five = [Some(12.0), Some(10.5), Some(11.0), Some(19.0), Some(10.0)];
        assert_eq!(
            spread(&five),
            Spread {
                p50: Some(11.0),
                worst: Some(19.0)
            }
        );
        let one_never = [Some(12.0), None, Some(10.0)];
        assert_eq!(
            spread(&one_never),
            Spread {
                p50: Some(12.0),
                worst: None
            }
        );
        let even = [Some(4.0), Some(1.0), Some(3.0), Some(2.0)];
        assert_eq!(spread(&even).p50, Some(2.0), "the lower middle");
        assert_eq!(spread(&[None, None, Some(1.0)]).p50, None);
        assert_eq!(spread(&[Some(7.5)]).p50, Some(7.5));
        assert_eq!(
            spread(&[]),
            Spread {
                p50: None,
                worst: None
            }
        );
    }

    fn run(fault: &str, recover: f64, failover: bool, lost: Option<u64>) -> Outcome {
        Outcome {
            fault: fault.to_owned(),
            recover_seconds: Some(recover),
            accepted_again_seconds: failover.then_some(recover - 1.0),
            failover_bound_seconds: failover.then_some(20.0),
            sessions_lost: lost.map(|lost| SessionsLost { lost, issued: 20 }),
            ..Outcome::default()
        }
    }

    #[test]
    fn each_fault_is_summed_up_over_its_runs_in_the_order_the_faults_ran() {
        let outcomes = [
            run("redis", 3.0, true, Some(1)),
            run("broker", 30.0, false, None),
            run("redis", 25.0, true, Some(0)),
            run("broker", 31.0, false, None),
            run("redis", 4.0, true, Some(2)),
        ];
        let rows = over_runs(&outcomes);
        assert_eq!(rows.len(), 2);
        let (redis, broker) = (&rows[0], &rows[1]);
        assert_eq!((redis.fault.as_str(), redis.runs), ("redis", 3));
        assert_eq!(redis.recover_seconds.p50, Some(4.0));
        assert_eq!(redis.recover_seconds.worst, Some(25.0));
        assert_eq!(
            redis.accepted_again_seconds.and_then(|s| s.worst),
            Some(24.0)
        );
        assert_eq!(
            redis.sessions_lost,
            Some(SessionsLost {
                lost: 3,
                issued: 60
            })
        );
        assert_eq!(redis.violations, 1, "one run over the 20 s bound");
        assert_eq!((broker.runs, broker.violations), (2, 0));
        assert_eq!(broker.accepted_again_seconds, None);
        assert_eq!(broker.sessions_lost, None);
        assert!(over_runs_table(&rows)
            .contains("| redis | 3 | 4.0 s | 25.0 s | 3.0 s | 24.0 s | 3 of 60 | 1 |"));
    }
}
