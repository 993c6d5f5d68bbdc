//! Page cursors (`?cursor=` on every paged endpoint): whatever text a client sends is decoded or
//! refused, a decoded cursor re-encodes to query-safe text that decodes to the same cursor, and
//! every cursor the API can issue decodes back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shop_domain::Cursor;

fn number(cursor: Cursor) -> i64 {
    match cursor {
        Cursor::After(n) | Cursor::Seen(n) | Cursor::Before(n) => n,
    }
}

fuzz_target!(|data: &[u8]| {
    // A query string reaches the decoder as text.
    if let Ok(raw) = std::str::from_utf8(data) {
        match Cursor::decode(raw) {
            Ok(cursor) => {
                assert!(number(cursor) >= 0, "{raw:?} decoded to {cursor:?}");
                let encoded = cursor.encode();
                assert!(
                    encoded
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                    "{cursor:?} encoded to {encoded:?}"
                );
                assert_eq!(Cursor::decode(&encoded), Ok(cursor), "{raw:?}");
                // Exactly one kind of page takes it.
                let taken = [
                    Cursor::after_id(Some(raw)),
                    Cursor::seen(Some(raw)),
                    Cursor::before_id(Some(raw)),
                ];
                assert_eq!(taken.iter().filter(|t| t.is_ok()).count(), 1, "{raw:?}");
                assert!(taken.contains(&Ok(number(cursor))), "{raw:?}");
            }
            Err(_) => {
                assert!(Cursor::after_id(Some(raw)).is_err(), "{raw:?}");
                assert!(Cursor::seen(Some(raw)).is_err(), "{raw:?}");
                assert!(Cursor::before_id(Some(raw)).is_err(), "{raw:?}");
            }
        }
    }
    // The first eight bytes as a number: the cursors the API issues for it decode back to it.
    if let Some(bytes) = data.first_chunk::<8>() {
        let n = i64::from_le_bytes(*bytes);
        for cursor in [Cursor::After(n), Cursor::Seen(n), Cursor::Before(n)] {
            let decoded = Cursor::decode(&cursor.encode());
            if n >= 0 {
                assert_eq!(decoded, Ok(cursor));
            } else {
                assert!(decoded.is_err(), "{cursor:?} is never issued");
            }
        }
    }
});
