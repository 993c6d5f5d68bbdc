//! Opaque keyset cursors: base64url of `v1:<last id>`. Clients pass them back unchanged.

use crate::error::ApiError;
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    after_id: i64,
}

impl Cursor {
    pub fn after(id: i64) -> Self {
        Self { after_id: id }
    }

    pub fn after_id(self) -> i64 {
        self.after_id
    }

    pub fn encode(self) -> String {
        URL_SAFE_NO_PAD.encode(format!("v1:{}", self.after_id))
    }

    pub fn decode(raw: &str) -> Result<Self, ApiError> {
        let invalid =
            || ApiError::bad_request("invalid_cursor", "cursor is not one this API issued");
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
        let text = std::str::from_utf8(&bytes).map_err(|_| invalid())?;
        let id = text
            .strip_prefix("v1:")
            .and_then(|n| n.parse::<i64>().ok())
            .filter(|n| *n >= 0)
            .ok_or_else(invalid)?;
        Ok(Self::after(id))
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
            &URL_SAFE_NO_PAD.encode("v1:-3"),
        ] {
            assert!(Cursor::decode(raw).is_err(), "{raw:?} should be refused");
        }
    }

    proptest! {
        #[test]
        fn round_trips(id in 0i64..) {
            prop_assert_eq!(Cursor::decode(&Cursor::after(id).encode()).ok(), Some(Cursor::after(id)));
        }

        #[test]
        fn decoding_arbitrary_text_never_panics(raw in "\\PC{0,64}") {
            let _ = Cursor::decode(&raw);
        }
    }
}
