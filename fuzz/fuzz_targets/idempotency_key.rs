//! The `Idempotency-Key` header (checkout, restock), from the raw bytes of the header value: it is
//! accepted exactly when it is 1 to 255 bytes from `!` to `~`, and then kept byte for byte.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shop_domain::IdempotencyKey;

fuzz_target!(|data: &[u8]| {
    let valid = (1..=255).contains(&data.len()) && data.iter().all(|b| (b'!'..=b'~').contains(b));
    match IdempotencyKey::parse(data) {
        Ok(key) => {
            assert!(valid, "accepted {data:?}");
            assert_eq!(key.as_str().as_bytes(), data);
            assert_eq!(key.to_string(), key.as_str());
            assert_eq!(IdempotencyKey::parse(key.as_str().as_bytes()), Ok(key));
        }
        Err(_) => assert!(!valid, "refused {data:?}"),
    }
});
