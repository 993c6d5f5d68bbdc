use std::fmt;

/// A client's idempotency key (the `Idempotency-Key` header): 1 to 255 visible ASCII characters,
/// `!` to `~`, taken as they are (no trimming, case kept).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

/// Bytes that are not 1 to 255 visible ASCII characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Idempotency-Key must be 1 to 255 visible ASCII characters")]
pub struct InvalidIdempotencyKey;

impl IdempotencyKey {
    pub const MAX_LEN: usize = 255;

    /// Reads a key from the raw bytes of its header value.
    pub fn parse(raw: &[u8]) -> Result<Self, InvalidIdempotencyKey> {
        if raw.is_empty() || raw.len() > Self::MAX_LEN || !raw.iter().all(u8::is_ascii_graphic) {
            return Err(InvalidIdempotencyKey);
        }
        // Every byte is ASCII, so each is one char.
        Ok(Self(raw.iter().copied().map(char::from).collect()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_visible_ascii_only() {
        for raw in ["a", "order-2024-06-01/7", "!~", &"k".repeat(255)] {
            assert_eq!(
                IdempotencyKey::parse(raw.as_bytes()).map(IdempotencyKey::into_string),
                Ok(raw.to_owned())
            );
        }
        let too_long = "k".repeat(256);
        let refused: [&[u8]; 9] = [
            b"",
            b" ",
            b"a b",
            b"tab\there",
            b"nul\0",
            b"del\x7f",
            b"caf\xc3\xa9",
            b"\xff",
            too_long.as_bytes(),
        ];
        for raw in refused {
            assert_eq!(
                IdempotencyKey::parse(raw),
                Err(InvalidIdempotencyKey),
                "{raw:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn keys_are_1_to_255_visible_ascii_bytes(raw in proptest::collection::vec(any::<u8>(), 0..300)) {
            let valid = (1..=255).contains(&raw.len()) && raw.iter().all(|b| (b'!'..=b'~').contains(b));
            match IdempotencyKey::parse(&raw) {
                Ok(key) => {
                    prop_assert!(valid);
                    prop_assert_eq!(key.as_str().as_bytes(), &raw[..]);
                }
                Err(_) => prop_assert!(!valid),
            }
        }

        #[test]
        fn printable_keys_are_accepted_by_length(raw in "[!-~]{0,300}") {
            prop_assert_eq!(IdempotencyKey::parse(raw.as_bytes()).is_ok(), (1..=255).contains(&raw.len()));
        }
    }
}
