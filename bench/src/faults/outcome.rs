//! [`Outcome`]: one phase's row, what counts as a violation in it, and the faults × outcomes
//! table.

use super::sessions::SessionsLost;
use serde::Serialize;

/// One row of the table.
#[derive(Debug, Clone, Default, Serialize)]
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
    /// Shoppers holding more of a product than its limit (the drop's), by their CONFIRMED orders
    /// or by the lanes' counts.
    pub over_limit: u64,
    /// Terminal events delivered more than once with the same id (harmless to a deduping consumer).
    pub redelivered_events: u64,
    /// Hot-stock entries in Redis that disagree with PostgreSQL at the same version.
    pub stale_cache: u64,
    /// Until a new order was decided: from the repair, or for a failover from the injection.
    pub recover_seconds: Option<f64>,
    /// A failover's: from the injection until the probe's checkout was first answered 202
    /// (`None`: not a failover, or never within the bound).
    pub accepted_again_seconds: Option<f64>,
    /// A failover's bound on `recover_seconds` (`Timing::failover_bound`); `None` for the other
    /// faults, held only to recovering at all.
    pub failover_bound_seconds: Option<f64>,
    /// A Redis failover's: of the sessions issued just before the kill, how many were no longer
    /// accepted after it (a measurement, not a violation).
    pub sessions_lost: Option<SessionsLost>,
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
            + self.over_limit
            + self.stale_cache
            + self.stalled
            + self.cart_mismatch
            + u64::from(self.fenced == Some(0))
            + u64::from(self.reported_unhealthy == Some(false))
            + u64::from(!recovered_in_time(
                self.recover_seconds,
                self.failover_bound_seconds,
            ))
    }
}

/// Whether the probe's order was decided at all and, where a bound applies (a failover's), within
/// it.
fn recovered_in_time(recover_seconds: Option<f64>, bound_seconds: Option<f64>) -> bool {
    recover_seconds.is_some_and(|s| !bound_seconds.is_some_and(|bound| s > bound))
}

/// Seconds as the tables show them: `None` is never.
pub fn seconds(s: Option<f64>) -> String {
    s.map_or_else(|| "**never**".to_owned(), |s| format!("{s:.1} s"))
}

/// A failover's seconds over its bound, marked.
fn bounded_seconds(s: Option<f64>, bound: Option<f64>) -> String {
    if recovered_in_time(s, bound) {
        seconds(s)
    } else {
        format!("**{}**", seconds(s).trim_matches('*'))
    }
}

/// Lost sessions as the tables show them: `–` where none were issued.
pub fn sessions(lost: Option<SessionsLost>) -> String {
    lost.map_or_else(|| "–".to_owned(), |s| format!("{} of {}", s.lost, s.issued))
}

/// The faults × outcomes table, in Markdown.
pub fn table(outcomes: &[Outcome]) -> String {
    let mut out = String::from(
        "| fault | accepted | confirmed | rejected | cancelled | lost | duplicated | oversold | over limit | stale cache | redelivered events | slowest decision | stalled | fenced | probe's cart | time to recover | accepted again | sessions lost | settled in |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|\n",
    );
    for o in outcomes {
        let fenced = match (o.fenced, o.reported_unhealthy) {
            (None, _) => "–".to_owned(),
            (Some(n), Some(false)) => format!("{n} (**healthz said healthy**)"),
            (Some(n), _) => n.to_string(),
        };
        let accepted_again = match o.failover_bound_seconds {
            Some(_) => seconds(o.accepted_again_seconds),
            None => "–".to_owned(),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} s | {} | {} | {} | {} | {} | {} | {:.1} s |\n",
            o.fault,
            o.accepted,
            o.confirmed,
            o.rejected,
            o.cancelled,
            o.lost,
            o.duplicated,
            o.oversold,
            o.over_limit,
            o.stale_cache,
            o.redelivered_events,
            o.slowest_decision_seconds,
            o.stalled,
            fenced,
            if o.cart_mismatch == 0 { "ok" } else { "**wrong**" },
            bounded_seconds(o.recover_seconds, o.failover_bound_seconds),
            accepted_again,
            sessions(o.sessions_lost),
            o.settle_seconds
        ));
    }
    if let Some(bound) = outcomes.iter().find_map(|o| o.failover_bound_seconds) {
        out.push_str(&format!(
            "\nFailovers (the rows with an *accepted again*) are timed from the injection, their \
             time to recover bounded by {bound:.0} s; the other rows from the repair.\n"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failover_slower_than_its_bound_is_a_violation_other_faults_only_must_recover() {
        assert!(recovered_in_time(Some(10.6), Some(20.0)));
        assert!(recovered_in_time(Some(20.0), Some(20.0)));
        assert!(!recovered_in_time(Some(20.1), Some(20.0)));
        assert!(!recovered_in_time(None, Some(20.0)));
        assert!(recovered_in_time(Some(45.0), None));
        assert!(!recovered_in_time(None, None));
        assert_eq!(bounded_seconds(Some(25.0), Some(20.0)), "**25.0 s**");
        assert_eq!(bounded_seconds(None, Some(20.0)), "**never**");
        assert_eq!(bounded_seconds(Some(12.94), Some(20.0)), "12.9 s");
    }

    #[test]
    fn lost_sessions_read_as_a_share_of_those_issued() {
        assert_eq!(sessions(None), "–");
        let lost = SessionsLost {
            lost: 2,
            issued: 20,
        };
        assert_eq!(sessions(Some(lost)), "2 of 20");
    }
}
