//! Opaque page cursors: base64url (no padding) of `v1:<last id>` for pages in id order (keyset),
//! `b1:<last id>` for pages newest first, or `s1:<results seen>` for ranked search pages. Clients
//! pass them back unchanged; a cursor of another kind, or one that was never issued, is refused.
//!
//! The service builds a cursor from its own rows, so the variants are public; only
//! [`Cursor::decode`] reads one from outside, and it never yields a negative number.

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

/// A cursor that is not one this service issued, or not of the kind the page needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cursor is not one this API issued")]
pub struct InvalidCursor;

impl Cursor {
    /// The cursor's text for clients: only `A-Z a-z 0-9 - _`, safe in a query string as it is.
    pub fn encode(self) -> String {
        let text = match self {
            Self::After(id) => format!("v1:{id}"),
            Self::Seen(n) => format!("s1:{n}"),
            Self::Before(id) => format!("b1:{id}"),
        };
        URL_SAFE_NO_PAD.encode(text)
    }

    /// Reads a cursor a client sent back. Its number is never negative.
    pub fn decode(raw: &str) -> Result<Self, InvalidCursor> {
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| InvalidCursor)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| InvalidCursor)?;
        let (kind, n) = text.split_once(':').ok_or(InvalidCursor)?;
        let n = n
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or(InvalidCursor)?;
        match kind {
            "v1" => Ok(Self::After(n)),
            "s1" => Ok(Self::Seen(n)),
            "b1" => Ok(Self::Before(n)),
            _ => Err(InvalidCursor),
        }
    }

    /// The id a page in id order starts after: 0 without a cursor.
    pub fn after_id(raw: Option<&str>) -> Result<i64, InvalidCursor> {
        match raw.map(Self::decode).transpose()? {
            None => Ok(0),
            Some(Self::After(id)) => Ok(id),
            Some(_) => Err(InvalidCursor),
        }
    }

    /// How many ranked results a search page skips: 0 without a cursor.
    pub fn seen(raw: Option<&str>) -> Result<i64, InvalidCursor> {
        match raw.map(Self::decode).transpose()? {
            None => Ok(0),
            Some(Self::Seen(n)) => Ok(n),
            Some(_) => Err(InvalidCursor),
        }
    }

    /// The id a newest-first page starts before: `i64::MAX` without a cursor.
    pub fn before_id(raw: Option<&str>) -> Result<i64, InvalidCursor> {
        match raw.map(Self::decode).transpose()? {
            None => Ok(i64::MAX),
            Some(Self::Before(id)) => Ok(id),
            Some(_) => Err(InvalidCursor),
        }
    }
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
            "djE6NQ==",
            &URL_SAFE_NO_PAD.encode("v1:-3"),
            &URL_SAFE_NO_PAD.encode("x1:3"),
            &URL_SAFE_NO_PAD.encode("v1:"),
            &URL_SAFE_NO_PAD.encode("v1:9223372036854775808"),
            &URL_SAFE_NO_PAD.encode(b"v1:\xff"),
        ] {
            assert_eq!(Cursor::decode(raw), Err(InvalidCursor), "{raw:?}");
            assert_eq!(Cursor::after_id(Some(raw)), Err(InvalidCursor), "{raw:?}");
            assert_eq!(Cursor::seen(Some(raw)), Err(InvalidCursor), "{raw:?}");
            assert_eq!(Cursor::before_id(Some(raw)), Err(InvalidCursor), "{raw:?}");
        }
    }

    #[test]
    fn each_page_takes_only_its_own_kind() {
        assert_eq!(Cursor::decode("djE6NQ"), Ok(Cursor::After(5)));
        assert!(Cursor::seen(Some(&Cursor::After(3).encode())).is_err());
        assert!(Cursor::after_id(Some(&Cursor::Seen(3).encode())).is_err());
        assert!(Cursor::before_id(Some(&Cursor::After(3).encode())).is_err());
        assert_eq!(Cursor::before_id(None), Ok(i64::MAX));
        assert_eq!(Cursor::after_id(None), Ok(0));
        assert_eq!(Cursor::seen(None), Ok(0));
    }

    proptest! {
        #[test]
        fn round_trips(n in 0i64..) {
            prop_assert_eq!(Cursor::after_id(Some(&Cursor::After(n).encode())), Ok(n));
            prop_assert_eq!(Cursor::seen(Some(&Cursor::Seen(n).encode())), Ok(n));
            prop_assert_eq!(Cursor::before_id(Some(&Cursor::Before(n).encode())), Ok(n));
        }

        #[test]
        fn whatever_decodes_re_encodes_to_itself(raw in "\\PC{0,64}|[A-Za-z0-9_-]{0,24}") {
            if let Ok(cursor) = Cursor::decode(&raw) {
                prop_assert_eq!(Cursor::decode(&cursor.encode()), Ok(cursor));
            }
        }
    }
}
