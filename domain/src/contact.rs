use crate::error::{Result, ValidationError};
use serde::Serialize;
use std::fmt;

/// A syntactically valid email address, normalised to lower case so that uniqueness is
/// case-insensitive (`Ana@Example.com` and `ana@example.com` are one account).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);

const LOCAL_SPECIALS: &str = ".!#$%&'*+/=?^_`{|}~-";

impl Email {
    pub fn parse(raw: &str) -> Result<Self> {
        let err = ValidationError::Email;
        let value = raw.trim().to_ascii_lowercase();
        if value.is_empty() {
            return Err(err("it is empty"));
        }
        if value.len() > 254 {
            return Err(err("it is longer than 254 characters"));
        }
        let (local, domain) = value.rsplit_once('@').ok_or(err("it has no '@'"))?;
        if local.is_empty() || local.len() > 64 {
            return Err(err("the part before '@' must be 1 to 64 characters"));
        }
        if !local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || LOCAL_SPECIALS.contains(c))
        {
            return Err(err(
                "the part before '@' has a character that is not allowed",
            ));
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return Err(err("the part before '@' has a misplaced dot"));
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2 {
            return Err(err("the domain needs a dot, like example.com"));
        }
        for label in &labels {
            let ok = !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            if !ok {
                return Err(err("the domain is not a valid host name"));
            }
        }
        let tld = labels.last().copied().unwrap_or_default();
        if tld.len() < 2 || !tld.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(err("the top-level domain must be letters only"));
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A phone number in E.164 form: `+`, a country code that does not start with 0, and at most
/// 15 digits in all. Spaces, dashes, dots and parentheses are accepted as separators and removed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    pub const MIN_DIGITS: usize = 8;
    pub const MAX_DIGITS: usize = 15;

    pub fn parse(raw: &str) -> Result<Self> {
        let err = ValidationError::Phone;
        let compact: String = raw
            .trim()
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
            .collect();
        let digits = compact
            .strip_prefix('+')
            .ok_or(err("it must start with '+' and the country code"))?;
        if !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(err("only digits may follow '+'"));
        }
        if !(Self::MIN_DIGITS..=Self::MAX_DIGITS).contains(&digits.len()) {
            return Err(err("it must have 8 to 15 digits"));
        }
        if digits.starts_with('0') {
            return Err(err("a country code never starts with 0"));
        }
        Ok(Self(compact))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_and_normalises_ordinary_emails() {
        for (raw, want) in [
            ("ana@example.com", "ana@example.com"),
            (
                "  Ana.Lopez+shop@Mail.Example.CO  ",
                "ana.lopez+shop@mail.example.co",
            ),
            ("o'brien@ex-ample.org", "o'brien@ex-ample.org"),
        ] {
            assert_eq!(
                Email::parse(raw).map(|e| e.to_string()),
                Ok(want.to_owned())
            );
        }
    }

    #[test]
    fn rejects_malformed_emails() {
        for raw in [
            "",
            "ana",
            "ana@",
            "@example.com",
            "ana@example",
            "ana@@example.com",
            "ana..b@example.com",
            ".ana@example.com",
            "ana@-example.com",
            "ana@example.c0m",
            "ana@exa mple.com",
            "an a@example.com",
            "ana@example..com",
        ] {
            assert!(Email::parse(raw).is_err(), "{raw:?} should be refused");
        }
        let long_local = format!("{}@example.com", "a".repeat(65));
        assert!(Email::parse(&long_local).is_err());
    }

    #[test]
    fn accepts_e164_phone_numbers_with_separators() {
        for (raw, want) in [
            ("+14155550100", "+14155550100"),
            (" +1 (415) 555-0100 ", "+14155550100"),
            ("+44.20.7946.0958", "+442079460958"),
        ] {
            assert_eq!(
                PhoneNumber::parse(raw).map(|p| p.to_string()),
                Ok(want.to_owned())
            );
        }
    }

    #[test]
    fn rejects_phone_numbers_outside_e164() {
        for raw in [
            "",
            "4155550100",
            "+",
            "+0155550100",
            "+1415555010a",
            "+1234567",
            "+1234567890123456",
            "++14155550100",
        ] {
            assert!(
                PhoneNumber::parse(raw).is_err(),
                "{raw:?} should be refused"
            );
        }
    }

    proptest! {
        #[test]
        fn email_parse_never_panics_and_is_idempotent(raw in "\\PC{0,80}") {
            if let Ok(email) = Email::parse(&raw) {
                prop_assert_eq!(Email::parse(email.as_str()), Ok(email.clone()));
                prop_assert!(email.as_str().len() <= 254);
            }
        }

        #[test]
        fn phone_parse_never_panics_and_is_idempotent(raw in "[+0-9 ()a.-]{0,24}") {
            if let Ok(phone) = PhoneNumber::parse(&raw) {
                prop_assert_eq!(PhoneNumber::parse(phone.as_str()), Ok(phone.clone()));
                prop_assert!(phone.as_str().len() <= 16);
            }
        }
    }
}
