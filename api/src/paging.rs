//! Pages at the HTTP edge: their sizes (`limit`) and cursors. [`Cursor`] (in `shop-domain`, where
//! `fuzz/` exercises it) encodes and reads them; a cursor of the other kind, or one this API did
//! not issue, is 400 `invalid_cursor`.

use crate::error::ApiError;
pub use shop_domain::Cursor;
use shop_domain::InvalidCursor;

pub const DEFAULT_PAGE: i64 = 20;
pub const MAX_PAGE: i64 = 100;

/// A page size from a query: `DEFAULT_PAGE` when absent, 422 outside 1..=`MAX_PAGE`.
pub fn page_limit(requested: Option<i64>) -> Result<i64, ApiError> {
    let limit = requested.unwrap_or(DEFAULT_PAGE);
    if (1..=MAX_PAGE).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::unprocessable(
            "invalid_limit",
            format!("limit must be between 1 and {MAX_PAGE}"),
        ))
    }
}

impl From<InvalidCursor> for ApiError {
    fn from(error: InvalidCursor) -> Self {
        ApiError::bad_request("invalid_cursor", error.to_string())
    }
}

/// Cuts `items`, fetched with one more than `limit` to tell whether more follow, to the page, and
/// returns the next page's cursor, made from the last item kept; `None` on the last page.
pub fn next_page<T>(
    items: &mut Vec<T>,
    limit: i64,
    cursor: impl FnOnce(&T) -> Cursor,
) -> Option<String> {
    let limit = usize::try_from(limit).unwrap_or(0);
    if items.len() <= limit {
        return None;
    }
    items.truncate(limit);
    items.last().map(cursor).map(Cursor::encode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::{http::StatusCode, response::IntoResponse};

    #[test]
    fn a_foreign_cursor_is_400_invalid_cursor() {
        let refused = |result: Result<i64, InvalidCursor>| {
            let response = ApiError::from(result.expect_err("refused")).into_response();
            assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        };
        refused(Cursor::after_id(Some("!!!")));
        refused(Cursor::seen(Some(&Cursor::After(3).encode())));
        refused(Cursor::before_id(Some(&Cursor::Seen(3).encode())));
        match ApiError::from(InvalidCursor) {
            ApiError::Client { code, message, .. } => {
                assert_eq!(code, "invalid_cursor");
                assert_eq!(message, "cursor is not one this API issued");
            }
            other => panic!("expected a client error, got {other:?}"),
        }
    }

    #[test]
    fn a_page_is_cut_to_its_limit_and_points_past_its_last_item() {
        let mut items = vec![1, 2, 3];
        let next = next_page(&mut items, 2, |last| Cursor::After(*last));
        assert_eq!((items, next), (vec![1, 2], Some(Cursor::After(2).encode())));
        let mut last_page = vec![1, 2];
        assert_eq!(next_page(&mut last_page, 2, |l| Cursor::After(*l)), None);
        assert_eq!(last_page, vec![1, 2]);
    }
}
