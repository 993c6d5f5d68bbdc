//! Opaque cursors: base64url of `v1:<last id>` for pages in id order (keyset), `b1:<last id>` for
//! pages newest first, or `s1:<results seen>` for ranked search pages. Clients pass them back unchanged; a cursor of the other kind,
//! or one this API did not issue, is 400 `invalid_cursor`.

use crate::error::ApiError;
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    /// The next page starts after this id.
    After(i64),
    /// The next page skips this many ranked results.
    Seen(i64),
    /// The next page (newest first) starts before this id.
    Before(i64),
}

fn invalid() -> ApiError {
    ApiError::bad_request("invalid_cursor", "cursor is not one this API issued")
}

impl Cursor {
    pub fn encode(self) -> String {
        let text = match self {
            Self::After(id) => format!("v1:{id}"),
            Self::Seen(n) => format!("s1:{n}"),
            Self::Before(id) => format!("b1:{id}"),
        };
        URL_SAFE_NO_PAD.encode(text)
    }

    fn decode(raw: &str) -> Result<Self, ApiError> {
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
        let text = std::str::from_utf8(&bytes).map_err(|_| invalid())?;
        let (kind, n) = text.split_once(':').ok_or_else(invalid)?;
        let n = n
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(invalid)?;
        match kind {
            "v1" => Ok(Self::After(n)),
            "s1" => Ok(Self::Seen(n)),
            "b1" => Ok(Self::Before(n)),
            _ => Err(invalid()),
        }
    }

    /// The id a page in id order starts after: 0 without a cursor.
    pub fn after_id(raw: Option<&str>) -> Result<i64, ApiError> {
        match raw.map(Self::decode).transpose()? {
            None => Ok(0),
            Some(Self::After(id)) => Ok(id),
            Some(_) => Err(invalid()),
        }
    }

    /// How many ranked results a search page skips: 0 without a cursor.
    pub fn seen(raw: Option<&str>) -> Result<i64, ApiError> {
        match raw.map(Self::decode).transpose()? {
            None => Ok(0),
            Some(Self::Seen(n)) => Ok(n),
            Some(_) => Err(invalid()),
        }
    }

    /// The id a newest-first page starts before: `i64::MAX` without a cursor.
    pub fn before_id(raw: Option<&str>) -> Result<i64, ApiError> {
        match raw.map(Self::decode).transpose()? {
            None => Ok(i64::MAX),
            Some(Self::Before(id)) => Ok(id),
            Some(_) => Err(invalid()),
        }
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
    use proptest::prelude::*;

    #[test]
    fn rejects_foreign_cursors() {
        for raw in [
            "",
            "!!!",
            "djI6MQ",
            "v1:5",
            &URL_SAFE_NO_PAD.encode("v1:-3"),
            &URL_SAFE_NO_PAD.encode("x1:3"),
        ] {
            assert!(
                Cursor::after_id(Some(raw)).is_err(),
                "{raw:?} should be refused"
            );
            assert!(
                Cursor::seen(Some(raw)).is_err(),
                "{raw:?} should be refused"
            );
        }
        assert!(Cursor::seen(Some(&Cursor::After(3).encode())).is_err());
        assert!(Cursor::after_id(Some(&Cursor::Seen(3).encode())).is_err());
        assert!(Cursor::before_id(Some(&Cursor::After(3).encode())).is_err());
        assert_eq!(Cursor::before_id(None).ok(), Some(i64::MAX));
        assert_eq!(Cursor::after_id(None).ok(), Some(0));
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

    proptest! {
        #[test]
        fn round_trips(n in 0i64..) {
            prop_assert_eq!(Cursor::after_id(Some(&Cursor::After(n).encode())).ok(), Some(n));
            prop_assert_eq!(Cursor::seen(Some(&Cursor::Seen(n).encode())).ok(), Some(n));
            prop_assert_eq!(Cursor::before_id(Some(&Cursor::Before(n).encode())).ok(), Some(n));
        }

        #[test]
        fn decoding_arbitrary_text_never_panics(raw in "\\PC{0,64}") {
            let _ = Cursor::after_id(Some(&raw));
            let _ = Cursor::seen(Some(&raw));
        }
    }
}
