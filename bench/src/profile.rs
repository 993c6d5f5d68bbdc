//! Where PostgreSQL's time went during a scenario: the statements with the most execution time,
//! read from `pg_stat_statements` before and after, when the server loads it (`scripts/lib.sh`
//! sets it up; without it the bench prints no profile and loses nothing else).
//!
//! The view is read through the admin database (where the extension is created) for the
//! system's own database, so statements of the bench's bookkeeping (setting up buyers, waiting
//! for the pipeline to settle) appear too, under their own text.

use serde::Serialize;
use sqlx::{Connection, PgConnection};
use std::collections::HashMap;

/// How many statements a profile lists.
const TOP: usize = 6;

/// Cumulative figures per statement, at one moment.
#[derive(Debug, Clone, Default)]
pub struct Statements(HashMap<i64, (String, i64, f64)>);

/// One statement's share of a scenario.
#[derive(Debug, Clone, Serialize)]
pub struct StatementCost {
    /// The statement's text, whitespace collapsed, cut at 90 characters.
    pub query: String,
    pub calls: i64,
    pub exec_ms: f64,
}

impl Statements {
    /// The statements of `database` so far; `None` when the server does not track them.
    pub async fn read(admin_url: &str, database: &str) -> Option<Self> {
        let mut admin = PgConnection::connect(admin_url).await.ok()?;
        let rows: Vec<(Option<i64>, String, i64, f64)> = sqlx::query_as(
            "SELECT queryid, query, calls, total_exec_time FROM pg_stat_statements
             WHERE dbid = (SELECT oid FROM pg_database WHERE datname = $1)",
        )
        .bind(database)
        .fetch_all(&mut admin)
        .await
        .ok()?;
        // Best effort: a connection that fails to close is dropped.
        let _ = admin.close().await;
        Some(Self(
            rows.into_iter()
                .filter_map(|(id, query, calls, ms)| Some((id?, (query, calls, ms))))
                .collect(),
        ))
    }

    /// The statements that took the most execution time from `self` until `later`.
    pub fn until(&self, later: &Statements) -> Vec<StatementCost> {
        let mut costs: Vec<StatementCost> = later
            .0
            .iter()
            .map(|(id, (query, calls, ms))| {
                let (calls_before, ms_before) =
                    self.0.get(id).map_or((0, 0.0), |(_, c, m)| (*c, *m));
                StatementCost {
                    query: shorten(query),
                    calls: calls - calls_before,
                    exec_ms: ms - ms_before,
                }
            })
            .filter(|c| c.calls > 0)
            .collect();
        costs.sort_by(|a, b| b.exec_ms.total_cmp(&a.exec_ms));
        costs.truncate(TOP);
        costs
    }
}

fn shorten(query: &str) -> String {
    let flat = query.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(90) {
        Some((at, _)) => format!("{}…", &flat[..at]),
        None => flat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_difference_is_ranked_by_time_and_idle_statements_are_left_out() {
        let before = Statements(HashMap::from([
            (1, ("SELECT 1".to_owned(), 10, 5.0)),
            (2, ("UPDATE   orders\n SET x".to_owned(), 3, 1.0)),
        ]));
        let after = Statements(HashMap::from([
            (1, ("SELECT 1".to_owned(), 12, 6.0)),
            (2, ("UPDATE   orders\n SET x".to_owned(), 5, 9.0)),
            (3, ("INSERT".to_owned(), 1, 2.0)),
            (4, ("x".repeat(200), 0, 0.0)),
        ]));
        let costs = before.until(&after);
        let ranked: Vec<(&str, i64)> = costs.iter().map(|c| (c.query.as_str(), c.calls)).collect();
        assert_eq!(
            ranked,
            [("UPDATE orders SET x", 2), ("INSERT", 1), ("SELECT 1", 2)]
        );
        assert!((costs[0].exec_ms - 8.0).abs() < 1e-9);
        assert_eq!(shorten(&"y".repeat(200)).chars().count(), 91);
    }
}
