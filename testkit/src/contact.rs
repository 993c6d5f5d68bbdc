//! Who a test's users are and where they come from: contacts and client addresses no other user
//! of the process has.

use std::{
    net::{IpAddr, Ipv4Addr},
    sync::atomic::{AtomicU64, Ordering},
};

static NEXT: AtomicU64 = AtomicU64::new(1);
static NEXT_CLIENT: AtomicU64 = AtomicU64::new(0);

/// A number no other caller in this process gets: names users and products.
pub(crate) fn next_number() -> u64 {
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A contact no other user of this test has.
pub fn unique_contact() -> (String, String) {
    let n = next_number();
    (format!("user{n}@example.com"), format!("+1555{n:07}"))
}

/// A client that connects from a loopback address no other client of this process uses
/// (127.1.0.1 and up; any of 127/8 is this machine), as a new shopper comes from an address of
/// her own: what she spends of the per-address budgets is not the test's (127.0.0.1).
pub fn client_of_its_own() -> reqwest::Client {
    let n = NEXT_CLIENT.fetch_add(1, Ordering::Relaxed);
    let octet = |value: u64| u8::try_from(value).expect("below 256");
    let ip = Ipv4Addr::new(
        127,
        1 + octet((n / 62_500) % 250),
        octet((n / 250) % 250),
        1 + octet(n % 250),
    );
    reqwest::Client::builder()
        .local_address(IpAddr::V4(ip))
        .build()
        .expect("client")
}
