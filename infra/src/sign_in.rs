//! One-time sign-in codes, shared by the notifier (which makes, stores and sends them) and the
//! API (which checks them).
//!
//! A code is [`CODE_DIGITS`] decimal digits from the operating system's CSPRNG. Redis keeps only
//! its keyed hash, HMAC-SHA256 over `"<user id>:<code>"` with `SIGN_IN_CODE_KEY`, under
//! [`Keys::sign_in_code`] with the code's TTL; storing a new code for a user replaces the old one
//! and, in the same transaction, forgets the old one's tries ([`Keys::sign_in_tries`]). Whoever
//! reads Redis therefore learns nothing that signs anybody in.

use crate::Keys;
use hmac::{Hmac, Mac};
use rand::Rng;
use redis::aio::ConnectionManager;
use sha2::Sha256;
use std::{sync::Arc, time::Duration};

pub const CODE_DIGITS: usize = 6;

/// The `SIGN_IN_CODE_KEY` of a machine that sets none: the published default is fine on
/// loopback only (whoever knows it and reads Redis can test codes offline), so the services
/// warn when they run with it.
pub const DEVELOPMENT_KEY: &str = "development-only-sign-in-code-key";

/// The secret that keys the codes' hashes. The API and the notifier must share it.
#[derive(Clone)]
pub struct CodeKey(Arc<[u8]>);

impl std::fmt::Debug for CodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeKey(…)")
    }
}

impl std::str::FromStr for CodeKey {
    type Err = &'static str;

    fn from_str(secret: &str) -> Result<Self, Self::Err> {
        if secret.len() < 16 {
            return Err("the sign-in code key must be at least 16 characters");
        }
        Ok(Self(secret.as_bytes().into()))
    }
}

impl CodeKey {
    fn mac(&self, user: i64, code: &str) -> Hmac<Sha256> {
        // HMAC takes a key of any length.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of every length"));
        mac.update(format!("{user}:{code}").as_bytes());
        mac
    }

    /// Whether this is [`DEVELOPMENT_KEY`], which production must not use.
    pub fn is_development(&self) -> bool {
        *self.0 == *DEVELOPMENT_KEY.as_bytes()
    }

    /// The keyed hash stored for `code`.
    pub fn digest(&self, user: i64, code: &str) -> Vec<u8> {
        self.mac(user, code).finalize().into_bytes().to_vec()
    }

    /// Whether `stored` is the hash of `code`, compared in constant time.
    pub fn matches(&self, user: i64, code: &str, stored: &[u8]) -> bool {
        self.mac(user, code).verify_slice(stored).is_ok()
    }
}

/// A fresh code: uniform over all `CODE_DIGITS`-digit strings.
pub fn new_code() -> String {
    let n: u32 = rand::rngs::OsRng.gen_range(0..10u32.pow(CODE_DIGITS as u32));
    format!("{n:0width$}", width = CODE_DIGITS)
}

/// Whether `code` has the shape of one: exactly `CODE_DIGITS` ASCII digits.
pub fn well_formed(code: &str) -> bool {
    code.len() == CODE_DIGITS && code.bytes().all(|b| b.is_ascii_digit())
}

/// Makes a new code for `user`, stores its hash for `ttl` (replacing any earlier code, whose
/// count of tries goes with it) and returns it, to be sent.
pub async fn issue(
    redis: &ConnectionManager,
    keys: &Keys,
    key: &CodeKey,
    user: i64,
    ttl: Duration,
) -> redis::RedisResult<String> {
    let code = new_code();
    let mut conn = redis.clone();
    let () = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg(keys.sign_in_code(user))
        .arg(key.digest(user, &code))
        .arg("EX")
        .arg(ttl.as_secs().max(1))
        .ignore()
        .cmd("DEL")
        .arg(keys.sign_in_tries(user))
        .ignore()
        .query_async(&mut conn)
        .await?;
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> CodeKey {
        "a key of sixteen bytes or more".parse().expect("key")
    }

    #[test]
    fn codes_are_six_digits_and_vary() {
        let codes: std::collections::HashSet<String> = (0..200).map(|_| new_code()).collect();
        assert!(codes.iter().all(|c| well_formed(c)));
        assert!(
            codes.len() > 190,
            "200 draws from a million collided too often"
        );
    }

    #[test]
    fn only_the_code_of_that_user_matches() {
        let stored = key().digest(7, "123456");
        assert!(key().matches(7, "123456", &stored));
        assert!(!key().matches(7, "123457", &stored));
        assert!(!key().matches(8, "123456", &stored));
        let other: CodeKey = "another key of sixteen bytes".parse().expect("key");
        assert!(!other.matches(7, "123456", &stored));
    }

    #[test]
    fn shapes_and_keys_are_checked() {
        assert!(well_formed("000000"));
        assert!(!well_formed("12345"));
        assert!(!well_formed("12345a"));
        assert!(!well_formed("１２３４５６"));
        assert!("short".parse::<CodeKey>().is_err());
    }
}
