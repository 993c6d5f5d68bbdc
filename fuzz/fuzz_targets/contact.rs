//! Email addresses and phone numbers (registration and sign-in bodies): whatever text is
//! sent is parsed or refused; a parsed value is in its normal form, and parsing that form again
//! gives the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shop_domain::{Email, PhoneNumber};

fuzz_target!(|data: &[u8]| {
    // JSON bodies reach the parsers as text.
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };

    if let Ok(email) = Email::parse(raw) {
        let text = email.as_str();
        assert!(text.is_ascii() && text.len() <= 254, "{raw:?} -> {text:?}");
        assert!(!text.bytes().any(|b| b.is_ascii_uppercase()), "{text:?}");
        assert_eq!(text.matches('@').count(), 1, "{text:?}");
        assert_eq!(email.to_string(), text);
        assert_eq!(Email::parse(text), Ok(email.clone()), "{raw:?}");
        // Case-insensitive: the same address in capitals is the same account.
        assert_eq!(Email::parse(&text.to_ascii_uppercase()), Ok(email.clone()));
        assert_eq!(
            serde_json::to_string(&email).ok(),
            serde_json::to_string(text).ok()
        );
    }

    if let Ok(phone) = PhoneNumber::parse(raw) {
        let text = phone.as_str();
        let digits = text.strip_prefix('+').unwrap_or_default();
        assert!(
            (PhoneNumber::MIN_DIGITS..=PhoneNumber::MAX_DIGITS).contains(&digits.len()),
            "{raw:?} -> {text:?}"
        );
        assert!(digits.bytes().all(|b| b.is_ascii_digit()), "{text:?}");
        assert!(!digits.starts_with('0'), "{text:?}");
        assert_eq!(phone.to_string(), text);
        assert_eq!(PhoneNumber::parse(text), Ok(phone.clone()), "{raw:?}");
    }
});
