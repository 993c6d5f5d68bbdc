//! One-time codes, shared by the notifier (which makes, stores and sends them) and the API (which
//! checks them).
//!
//! A code is [`CODE_DIGITS`] decimal digits from the operating system's CSPRNG, made for a
//! [`Holder`]: an account signing in, a registration of an email address (no account has it yet),
//! or an account proving a phone number. Redis keeps only its keyed hash, HMAC-SHA256 over
//! `"<holder>:<code>"` with `SIGN_IN_CODE_KEY`, followed by what the code carries (a
//! registration's phone number), under [`Keys::code`] with the code's TTL; storing a new code for
//! a holder replaces the old one and, in the same transaction, forgets the old one's tries
//! ([`Keys::code_tries`]). Whoever reads Redis therefore learns nothing that signs anybody in.

use crate::Keys;
use hmac::{Hmac, Mac};
use rand::Rng;
use redis::aio::ConnectionManager;
use sha2::{Digest, Sha256};
use std::{sync::Arc, time::Duration};

pub const CODE_DIGITS: usize = 6;

/// Bytes of a stored code's keyed hash; what the code carries follows them.
pub const HASH_LEN: usize = 32;

/// Whom a code is for: what its hash binds it to, and where it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// Signs in to the account with this id; mailed to its email address, so it also proves it.
    Account(i64),
    /// Signs in to the account with this id; texted to its proven phone number. Bound to that
    /// channel: entered with the email address, it is a wrong code and proves nothing.
    AccountByText(i64),
    /// Makes the account of the email address with this digest ([`email_digest`]): sent to an
    /// address no account has, it carries the phone number the registration named.
    Registration(String),
    /// Proves that account `user` holds phone number `number`: sent to that number, and bound to
    /// it, so a code for a number the account no longer claims proves nothing.
    Phone { user: i64, number: String },
}

impl Holder {
    /// What names its code and tries in Redis: `<user id>` (one sign-in code an account, by
    /// either channel), `r<email digest>` or `p<user id>` (an account proves one number at a
    /// time).
    pub fn id(&self) -> String {
        match self {
            Self::Account(user) | Self::AccountByText(user) => user.to_string(),
            Self::Registration(digest) => format!("r{digest}"),
            Self::Phone { user, .. } => format!("p{user}"),
        }
    }

    /// What the keyed hash binds the code to: the id with a sign-in code's channel (`e`, `s`),
    /// and a phone code's number. (Codes issued before the channel was bound, as `<user id>`,
    /// match nothing.)
    fn label(&self) -> String {
        match self {
            Self::Account(user) => format!("e{user}"),
            Self::AccountByText(user) => format!("s{user}"),
            Self::Phone { user, number } => format!("p{user}:{number}"),
            Self::Registration(_) => self.id(),
        }
    }
}

fn hex_sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A digest of a normalised email address, in hex: names what Redis stores or counts for the
/// address without putting the address there.
pub fn email_digest(email: &str) -> String {
    hex_sha256(&format!("email:{email}"))
}

/// [`email_digest`] for a phone number in E.164.
pub fn phone_digest(phone: &str) -> String {
    hex_sha256(&format!("phone:{phone}"))
}

/// A stored code's keyed hash, and what the code carries.
pub fn split(stored: &[u8]) -> (&[u8], &[u8]) {
    stored.split_at(stored.len().min(HASH_LEN))
}

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
    fn mac(&self, holder: &Holder, code: &str) -> Hmac<Sha256> {
        // HMAC takes a key of any length.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of every length"));
        mac.update(format!("{}:{code}", holder.label()).as_bytes());
        mac
    }

    /// Whether this is [`DEVELOPMENT_KEY`], which production must not use.
    pub fn is_development(&self) -> bool {
        *self.0 == *DEVELOPMENT_KEY.as_bytes()
    }

    /// The keyed hash stored for `holder`'s `code`.
    pub fn digest(&self, holder: &Holder, code: &str) -> Vec<u8> {
        self.mac(holder, code).finalize().into_bytes().to_vec()
    }

    /// Whether `hash` is the keyed hash of `holder`'s `code`, compared in constant time.
    pub fn matches(&self, holder: &Holder, code: &str, hash: &[u8]) -> bool {
        self.mac(holder, code).verify_slice(hash).is_ok()
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

/// Makes a new code for `holder`, stores its hash and what it `carries` for `ttl` (replacing any
/// earlier code, whose count of tries goes with it) and returns it, to be sent.
pub async fn issue(
    redis: &ConnectionManager,
    keys: &Keys,
    key: &CodeKey,
    holder: &Holder,
    carries: &[u8],
    ttl: Duration,
) -> redis::RedisResult<String> {
    let code = new_code();
    let mut stored = key.digest(holder, &code);
    stored.extend_from_slice(carries);
    let id = holder.id();
    let mut conn = redis.clone();
    let () = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg(keys.code(&id))
        .arg(stored)
        .arg("EX")
        .arg(ttl.as_secs().max(1))
        .ignore()
        .cmd("DEL")
        .arg(keys.code_tries(&id))
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
    fn only_the_code_of_that_holder_matches() {
        let seven = Holder::Account(7);
        let stored = key().digest(&seven, "123456");
        assert!(key().matches(&seven, "123456", &stored));
        assert!(!key().matches(&seven, "123457", &stored));
        assert!(!key().matches(&Holder::Account(8), "123456", &stored));
        assert!(
            !key().matches(&Holder::AccountByText(7), "123456", &stored),
            "a mailed code is no texted one"
        );
        let other: CodeKey = "another key of sixteen bytes".parse().expect("key");
        assert!(!other.matches(&seven, "123456", &stored));
        // The account's sign-in code proves no phone number, nor makes an account.
        let phone = Holder::Phone {
            user: 7,
            number: "+14155550100".to_owned(),
        };
        assert!(!key().matches(&phone, "123456", &stored));
        let registration = Holder::Registration(email_digest("a@example.com"));
        assert!(!key().matches(&registration, "123456", &stored));
    }

    #[test]
    fn a_phone_code_is_bound_to_its_number() {
        let holder = |number: &str| Holder::Phone {
            user: 7,
            number: number.to_owned(),
        };
        let stored = key().digest(&holder("+14155550100"), "123456");
        assert!(key().matches(&holder("+14155550100"), "123456", &stored));
        assert!(!key().matches(&holder("+14155550101"), "123456", &stored));
        assert_eq!(holder("+14155550100").id(), holder("+14155550101").id());
    }

    #[test]
    fn holders_have_keys_of_their_own_and_stored_codes_split_after_the_hash() {
        let digest = email_digest("a@example.com");
        assert_eq!(digest.len(), 64);
        assert_ne!(digest, phone_digest("a@example.com"));
        assert_eq!(Holder::Account(7).id(), "7");
        assert_eq!(
            Holder::Registration(digest.clone()).id(),
            format!("r{digest}")
        );
        let mut stored = key().digest(&Holder::Account(7), "123456");
        assert_eq!(split(&stored), (&stored[..], &b""[..]));
        stored.extend_from_slice(b"+14155550100");
        let (hash, carried) = split(&stored);
        assert_eq!((hash.len(), carried), (HASH_LEN, &b"+14155550100"[..]));
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
