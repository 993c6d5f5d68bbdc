//! Catalog search (schema 0010), in two steps:
//! 1. every word of the query as a prefix over the full-text document (name weighted above
//!    description), ranked by `ts_rank`: the GIN index answers it in milliseconds;
//! 2. only when no product has every word: names that hold the query as a word with a typo or
//!    two (pg_trgm's `<%`), ranked by similarity.
//!
//! Measured on 100,000 products (BENCHMARKS.md): one statement with `OR` of both made the
//! planner scan the table (140 ms a query); the trigram step alone, left to the planner, also
//! scans (260 ms) where its index takes 34 ms, so that step runs with sequential scans off.
//!
//! Whatever `q` and the cursor hold, the work is bounded: each step ranks at most
//! [`RANKED_CANDIDATES`] matches, so results end after that many, and a cursor past them (only a
//! forged one) gets an empty page without a statement. A query without a letter or digit gets
//! one too: neither step can match it (pg_trgm, like the prefix query, keeps only letters and
//! digits), and a trigram index asked for a query with no trigram reads all of itself and then
//! every row (`GIN_SEARCH_MODE_ALL`). The typo step also checks for trigrams itself, as the
//! database's locale may count fewer characters as letters than Rust does.

use crate::error::ApiError;
use crate::products::store::{Product, COLUMNS};
use sqlx::PgPool;

/// Matches that are ranked, in either step: the first this many the index yields. A query that
/// matches more is vague; ranking them all cost 12.5 ms a query on 100,000 products, ranking
/// these 4.9 ms (full text), and its pages end after them.
const RANKED_CANDIDATES: i64 = 2000;
/// Most words of a query that count.
const MAX_WORDS: usize = 8;
const MAX_QUERY_CHARS: usize = 100;

/// The query's words as a prefix `tsquery` text (`kett:* & iron:*`); `None` when it has no word.
pub fn prefix_query(q: &str) -> Option<String> {
    let words: Vec<String> = q
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(MAX_WORDS)
        .map(|w| format!("{}:*", w.to_lowercase()))
        .collect();
    (!words.is_empty()).then(|| words.join(" & "))
}

/// One page of matches for `q`, best first, optionally in one category.
pub async fn run(
    db: &PgPool,
    q: &str,
    category: Option<&str>,
    skip: i64,
    limit: i64,
) -> Result<Vec<Product>, ApiError> {
    // The length is the query's as sent (what the OpenAPI document states); blanks around it do
    // not count for matching, and a query of blanks alone matches nothing.
    if q.is_empty() || q.chars().count() > MAX_QUERY_CHARS {
        return Err(ApiError::unprocessable(
            "invalid_search",
            format!("q must have 1 to {MAX_QUERY_CHARS} characters"),
        ));
    }
    let q = q.trim();
    // Blanks and punctuation alone match nothing, in either step: no statement runs.
    let Some(words) = prefix_query(q) else {
        return Ok(Vec::new());
    };
    // Pages end after the ranked matches; only a forged cursor points past them.
    if skip >= RANKED_CANDIDATES {
        return Ok(Vec::new());
    }
    let take = skip.saturating_add(limit).min(RANKED_CANDIDATES);
    let mut found: Vec<Product> = sqlx::query_as(&format!(
        "WITH candidates AS MATERIALIZED (
             SELECT {COLUMNS}, search FROM products
             WHERE search @@ to_tsquery('english', $1) AND ($2::TEXT IS NULL OR category = $2)
             LIMIT $3)
         SELECT {COLUMNS} FROM candidates
         ORDER BY ts_rank(search, to_tsquery('english', $1)) DESC, id
         LIMIT $4"
    ))
    .bind(&words)
    .bind(category)
    .bind(RANKED_CANDIDATES)
    .bind(take)
    .fetch_all(db)
    .await?;
    // No product has every word: the query may hold a typo.
    if found.is_empty() {
        let mut tx = db.begin().await?;
        // The planner underestimates the trigram index and scans the table instead.
        sqlx::query("SET LOCAL enable_seqscan = off")
            .execute(&mut *tx)
            .await?;
        // Ranked like the full-text step: at most RANKED_CANDIDATES, cut to the pages asked.
        // The trigram test refers to no column, so it is checked once, before the scan: a query
        // without trigrams scans nothing.
        let typos: Vec<Product> = sqlx::query_as(&format!(
            "WITH candidates AS MATERIALIZED (
                 SELECT {COLUMNS} FROM products
                 WHERE cardinality(show_trgm($1)) > 0
                   AND $1 <% name AND ($2::TEXT IS NULL OR category = $2)
                 LIMIT $3)
             SELECT {COLUMNS} FROM candidates
             ORDER BY word_similarity($1, name) DESC, id
             LIMIT $4"
        ))
        .bind(q)
        .bind(category)
        .bind(RANKED_CANDIDATES)
        .bind(take)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        found.extend(typos);
    }
    Ok(found
        .into_iter()
        .skip(usize::try_from(skip).unwrap_or(usize::MAX))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_become_prefixes_and_punctuation_is_dropped() {
        assert_eq!(
            prefix_query("Cast-iron KETTLE"),
            Some("cast:* & iron:* & kettle:*".into())
        );
        assert_eq!(prefix_query("  l'été "), Some("l:* & été:*".into()));
        assert_eq!(prefix_query("'):*|!&"), None);
        let many = "a b c d e f g h i j";
        assert_eq!(
            prefix_query(many).map(|q| q.matches(":*").count()),
            Some(MAX_WORDS)
        );
    }
}
