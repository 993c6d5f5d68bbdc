//! Search does bounded work whatever `q` and `cursor` hold: pages end after the first 2,000
//! ranked matches in both steps (full text and typos), and searches that can match nothing run
//! no statement at all.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use reqwest::StatusCode;
use serde_json::{json, Value};
use shop_testkit::{expect_json, TestApp};
use std::time::Duration;

/// A search cursor as the API encodes one (`s1:<results seen>`), here forged.
fn seen(n: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("s1:{n}"))
}

async fn page(app: &TestApp, query: &str) -> Value {
    expect_json(
        app.get(&format!("/products?{query}"), None).await,
        StatusCode::OK,
    )
    .await
}

#[tokio::test]
async fn a_search_that_can_match_nothing_reads_no_product() {
    // A request that waits for the lock below is cut off soon (408) rather than hanging.
    let app = TestApp::spawn_configured(|s| s.request_timeout = Duration::from_secs(3)).await;
    // Every statement on products waits while this is held: an answer proves none ran.
    let mut lock = app.db.begin().await.expect("transaction");
    sqlx::query("LOCK TABLE products IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .expect("lock");
    for query in [
        // No letter or digit: neither step could match it.
        "q=%21%21%21".to_owned(),
        "q=!!!".to_owned(),
        // Cursors past the ranked matches, which only a forger has.
        format!("q=kettle&cursor={}", seen(2000)),
        format!("q=ketle&cursor={}", seen(1_000_000)),
        format!("q=kettle&limit=100&cursor={}", seen(i64::MAX)),
    ] {
        assert_eq!(
            page(&app, &query).await,
            json!({"items": [], "next_cursor": null}),
            "{query}"
        );
    }
    lock.rollback().await.expect("rollback");
}

#[tokio::test]
async fn typo_matches_end_after_the_first_2000_as_full_text_matches_do() {
    let app = TestApp::spawn().await;
    let seller = app.new_user().await;
    sqlx::query(
        "INSERT INTO products (name, price_cents, available_quantity, category, seller_id)
         SELECT 'Kettle ' || g, 1000, 1, 'home', $1 FROM generate_series(1, 2100) g",
    )
    .bind(seller.id)
    .execute(&app.db)
    .await
    .expect("2,100 kettles");
    // `kettle` has every word in 2,100 names (full text); `ketle` none, so it is a typo.
    for q in ["kettle", "ketle"] {
        let first = page(&app, &format!("q={q}&limit=20")).await;
        assert_eq!(first["items"].as_array().map(Vec::len), Some(20), "{q}");
        assert!(first["next_cursor"].is_string(), "{q}: {first}");
        // The page that starts at 1,990 holds the last 10 of the 2,000 ranked, and is the last.
        let last = page(&app, &format!("q={q}&limit=20&cursor={}", seen(1990))).await;
        assert_eq!(last["items"].as_array().map(Vec::len), Some(10), "{q}");
        assert_eq!(last["next_cursor"], Value::Null, "{q}");
    }
}
