//! Catalog search (schema 0010): every word of the query as a prefix over the full-text document
//! (name weighted above description), or the whole query as a word of the name with a typo or two
//! (pg_trgm's `<%`), ranked by text rank plus name similarity.

use super::{Product, COLUMNS};
use crate::error::ApiError;
use sqlx::PgPool;

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
    let q = q.trim();
    if q.is_empty() || q.chars().count() > MAX_QUERY_CHARS {
        return Err(ApiError::unprocessable(
            "invalid_search",
            format!("q must have 1 to {MAX_QUERY_CHARS} characters"),
        ));
    }
    // Without a word (only punctuation) the prefix query matches nothing; the name may still.
    let words = prefix_query(q).unwrap_or_default();
    Ok(sqlx::query_as(&format!(
        "WITH query AS (SELECT to_tsquery('english', $1) AS tsq)
         SELECT {COLUMNS} FROM products, query
         WHERE (search @@ tsq OR $2 <% name) AND ($3::TEXT IS NULL OR category = $3)
         ORDER BY ts_rank(search, tsq) + word_similarity($2, name) DESC, id
         OFFSET $4 LIMIT $5"
    ))
    .bind(words)
    .bind(q)
    .bind(category)
    .bind(skip)
    .bind(limit)
    .fetch_all(db)
    .await?)
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
