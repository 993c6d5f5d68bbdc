//! Catalog search (schema 0010), in two steps:
//! 1. every word of the query as a prefix over the full-text document (name weighted above
//!    description), ranked by `ts_rank`: the GIN index answers it in milliseconds;
//! 2. only when no product has every word: names that hold the query as a word with a typo or
//!    two (pg_trgm's `<%`), ranked by similarity.
//!
//! Measured on 100,000 products (BENCHMARKS.md): one statement with `OR` of both made the
//! planner scan the table (140 ms a query); the trigram step alone, left to the planner, also
//! scans (260 ms) where its index takes 34 ms, so that step runs with sequential scans off.

use super::{Product, COLUMNS};
use crate::error::ApiError;
use sqlx::PgPool;

/// Full-text matches that are ranked: the first this many the index yields. A query that
/// matches more is vague; ranking them all cost 12.5 ms a query on 100,000 products, ranking
/// these 4.9 ms, and its pages end after them.
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
    if q.is_empty() {
        return Ok(Vec::new());
    }
    // Without a word (only punctuation) the prefix query matches nothing; the name may still.
    let words = prefix_query(q).unwrap_or_default();
    let wanted = skip.saturating_add(limit);
    let take = wanted.min(RANKED_CANDIDATES);
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
        let typos: Vec<Product> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM products
             WHERE $1 <% name AND ($2::TEXT IS NULL OR category = $2)
             ORDER BY word_similarity($1, name) DESC, id
             LIMIT $3"
        ))
        .bind(q)
        .bind(category)
        .bind(wanted)
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
