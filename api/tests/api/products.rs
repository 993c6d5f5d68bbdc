use reqwest::StatusCode;
use serde_json::{json, Value};
use shop_testkit::{eventually, expect_error, expect_json, TestApp, TestUser};
use std::{collections::HashSet, time::Duration};

#[tokio::test]
async fn a_seller_lists_a_product_and_anyone_reads_it() {
    let app = TestApp::spawn().await;
    let seller = app.new_user().await;
    let body = json!({
        "name": "Cast Iron Kettle",
        "description": "Boils water.",
        "price_cents": 4599,
        "available_quantity": 12,
        "image_url": "https://img.example.com/kettle.png",
        "category": "Home",
    });
    let response = app.create_product(&seller.token, &body).await;
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let created = expect_json(response, StatusCode::CREATED).await;
    let id = created["id"].as_i64().expect("id");
    assert_eq!(
        location.as_deref(),
        Some(format!("/products/{id}").as_str())
    );
    assert_eq!(created["category"], "home");
    assert_eq!(created["seller_id"], seller.id);
    assert_eq!(created["version"], 1);
    let fetched = expect_json(
        app.get(&format!("/products/{id}"), None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(fetched, created);
}

#[tokio::test]
async fn writing_products_needs_a_session_and_valid_fields() {
    let app = TestApp::spawn().await;
    let body = json!({"name": "X", "price_cents": 100, "category": "toys"});
    expect_error(
        app.post("/products", None, &body).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    let seller = app.new_user().await;
    for bad in [
        json!({"name": "X", "price_cents": -1, "category": "toys"}),
        json!({"name": "", "price_cents": 100, "category": "toys"}),
        json!({"name": "X", "price_cents": 100, "category": "no spaces"}),
        json!({"name": "X", "price_cents": 100, "category": "toys", "available_quantity": -3}),
        json!({"name": "X", "price_cents": 100, "category": "toys", "image_url": "ftp://x"}),
    ] {
        let response = app.create_product(&seller.token, &bad).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
    let wrong_type = json!({"name": "X", "price_cents": "cheap", "category": "toys"});
    expect_error(
        app.create_product(&seller.token, &wrong_type).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    )
    .await;
}

#[tokio::test]
async fn anything_but_an_existing_product_id_is_404() {
    let app = TestApp::spawn().await;
    let paths = [
        "/products/999999",
        "/products/0",
        "/products/-4",
        "/products/abc",
        "/products/2.0",
        "/products/99999999999999999999",
    ];
    for path in paths {
        expect_error(
            app.get(path, None).await,
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
    }
}

async fn page(app: &TestApp, query: &str) -> (Vec<i64>, Option<String>) {
    let body = expect_json(
        app.get(&format!("/products?{query}"), None).await,
        StatusCode::OK,
    )
    .await;
    let ids = body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| p["id"].as_i64().expect("id"))
        .collect();
    (ids, body["next_cursor"].as_str().map(str::to_owned))
}

#[tokio::test]
async fn keyset_pages_are_stable_under_inserts() {
    let app = TestApp::spawn().await;
    let seller = app.new_user().await;
    let mut original = Vec::new();
    for _ in 0..7 {
        original.push(
            app.new_product(&seller, "books", 999, 5).await["id"]
                .as_i64()
                .expect("id"),
        );
    }
    let (first, cursor) = page(&app, "limit=3").await;
    assert_eq!(first, original[..3]);
    // New products arrive while the client pages.
    let added = app.new_product(&seller, "books", 999, 5).await["id"]
        .as_i64()
        .expect("id");
    let mut seen = first.clone();
    let mut cursor = cursor;
    while let Some(c) = cursor {
        let (ids, next) = page(&app, &format!("limit=3&cursor={c}")).await;
        seen.extend(ids);
        cursor = next;
    }
    let mut expected = original.clone();
    expected.push(added);
    assert_eq!(seen, expected, "every product exactly once, in id order");
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), seen.len());
}

#[tokio::test]
async fn listing_filters_by_category_and_validates_its_query() {
    let app = TestApp::spawn().await;
    let seller = app.new_user().await;
    let toy = app.new_product(&seller, "toys", 500, 1).await["id"]
        .as_i64()
        .expect("id");
    app.new_product(&seller, "garden", 500, 1).await;
    let (ids, next) = page(&app, "category=TOYS").await;
    assert_eq!((ids, next), (vec![toy], None));
    let (ids, _) = page(&app, "category=fashion").await;
    assert!(ids.is_empty());
    expect_error(
        app.get("/products?cursor=garbage", None).await,
        StatusCode::BAD_REQUEST,
        "invalid_cursor",
    )
    .await;
    expect_error(
        app.get("/products?limit=0", None).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_limit",
    )
    .await;
    expect_error(
        app.get("/products?limit=101", None).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_limit",
    )
    .await;
    expect_error(
        app.get("/products?limit=x", None).await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    )
    .await;
    expect_error(
        app.get("/products?category=a%20b", None).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    )
    .await;
}

async fn product(app: &TestApp, id: i64) -> Value {
    expect_json(
        app.get(&format!("/products/{id}"), None).await,
        StatusCode::OK,
    )
    .await
}

#[tokio::test]
async fn reads_are_cached_and_every_write_refreshes_the_cache() {
    let app = TestApp::spawn().await;
    let seller = app.new_user().await;
    let id = app.new_product(&seller, "home", 1000, 3).await["id"]
        .as_i64()
        .expect("id");
    assert_eq!(product(&app, id).await["price_cents"], 1000);
    // Change the row behind the API's back: a cached read must not see it.
    sqlx::query("UPDATE products SET name = 'sneaky' WHERE id = $1")
        .bind(id)
        .execute(&app.db)
        .await
        .expect("update");
    assert_ne!(
        product(&app, id).await["name"],
        "sneaky",
        "served from the cache"
    );
    // A write through the API replaces the cached copy at once. (A new stock goes through the
    // product's lane: `a_new_stock_is_the_lanes_answer`.)
    let patched = expect_json(
        app.patch(
            &format!("/products/{id}"),
            Some(&seller.token),
            &json!({"price_cents": 1250, "expected_version": 1}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(patched["version"], 2);
    let after = product(&app, id).await;
    assert_eq!(
        (
            after["price_cents"].as_i64(),
            after["available_quantity"].as_i64()
        ),
        (Some(1250), Some(3))
    );
    assert_eq!(after["version"], 2);
    // With Redis emptied, reads fall back to PostgreSQL once this process's copy has expired
    // (PRODUCT_LOCAL_CACHE_MS).
    app.flush_redis().await;
    let app = &app;
    eventually(
        Duration::from_secs(10),
        "read from PostgreSQL (the name changed there)",
        || async move {
            let name = product(app, id).await["name"].clone();
            if name == "sneaky" {
                Ok(())
            } else {
                Err(name)
            }
        },
    )
    .await;
}

/// A seller's product with 3 units, another account, and the product's id and path.
async fn product_and_stranger(app: &TestApp) -> (TestUser, TestUser, i64, String) {
    let seller = app.new_user().await;
    let stranger = app.new_user().await;
    let id = app.new_product(&seller, "home", 1000, 3).await["id"]
        .as_i64()
        .expect("id");
    (seller, stranger, id, format!("/products/{id}"))
}

#[tokio::test]
async fn only_the_seller_may_patch_and_versions_guard_concurrent_edits() {
    let app = TestApp::spawn().await;
    let (seller, stranger, id, path) = product_and_stranger(&app).await;
    expect_error(
        app.patch(&path, Some(&stranger.token), &json!({"price_cents": 1}))
            .await,
        StatusCode::FORBIDDEN,
        "not_seller",
    )
    .await;
    expect_error(
        app.patch(&path, None, &json!({"price_cents": 1})).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    expect_error(
        app.patch(&path, Some(&seller.token), &json!({})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "empty_update",
    )
    .await;
    expect_error(
        app.patch(
            "/products/999999",
            Some(&seller.token),
            &json!({"name": "n"}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    expect_json(
        app.patch(
            &path,
            Some(&seller.token),
            &json!({"name": "v2", "expected_version": 1}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    expect_error(
        app.patch(
            &path,
            Some(&seller.token),
            &json!({"name": "stale", "expected_version": 1}),
        )
        .await,
        StatusCode::CONFLICT,
        "version_conflict",
    )
    .await;
    assert_eq!(product(&app, id).await["name"], "v2");
    // A stale version refuses the whole change, a new stock included: nothing is queued.
    expect_error(
        app.patch(
            &path,
            Some(&seller.token),
            &json!({"available_quantity": 9, "expected_version": 1}),
        )
        .await,
        StatusCode::CONFLICT,
        "version_conflict",
    )
    .await;
    assert!(queued_sets(&app, id).await.is_empty());
    // A new stock needs no version: it is queued on the product's lane, with the version raised
    // at once. No worker runs here, so after its wait the request answers 202, the stock as it
    // was.
    let set = expect_json(
        app.patch(
            &path,
            Some(&seller.token),
            &json!({"available_quantity": 9}),
        )
        .await,
        StatusCode::ACCEPTED,
    )
    .await;
    assert_eq!(
        (
            set["available_quantity"].as_i64(),
            set["version"].as_i64(),
            set["stock_update"].as_str()
        ),
        (Some(3), Some(3), Some("PENDING"))
    );
    assert_eq!(set["name"], "v2", "the product's JSON, as always");
    assert_eq!(queued_sets(&app, id).await.len(), 1);
}

/// The set commands queued for product `id` in the outbox, as their JSON.
async fn queued_sets(app: &TestApp, id: i64) -> Vec<Value> {
    let payloads: Vec<String> = sqlx::query_scalar(
        "SELECT payload FROM outbox WHERE stream = 'inventory' AND message_key = $1 ORDER BY id",
    )
    .bind(id.to_string())
    .fetch_all(&app.db)
    .await
    .expect("outbox");
    payloads
        .iter()
        .map(|p| serde_json::from_str::<Value>(p).expect("a command"))
        .filter(|c| c["kind"] == "set")
        .collect()
}

/// Plays product `id`'s lane for the one set queued: records it in the ledger, `applied` or
/// not (superseded by a newer count), and makes the stock `stock` (what a lane leaves: the count,
/// or more with what was queued after it, or the newer count).
async fn apply_the_set(app: &TestApp, id: i64, stock: i32, applied: bool) -> Value {
    let set = eventually(Duration::from_secs(5), "the set queued", || async move {
        match queued_sets(app, id).await.as_slice() {
            [one] => Ok(one.clone()),
            other => Err(other.len()),
        }
    })
    .await;
    let set_id: uuid::Uuid = set["order_id"].as_str().expect("id").parse().expect("uuid");
    let mut tx = app.db.begin().await.expect("begin");
    sqlx::query(
        "INSERT INTO inventory_ledger (order_id, product_id, kind, quantity, applied, stock_delta)
         VALUES ($1, $2, 'set', $3, $4, 0)",
    )
    .bind(set_id)
    .bind(id)
    .bind(i32::try_from(set["quantity"].as_i64().expect("count")).expect("i32"))
    .bind(applied)
    .execute(&mut *tx)
    .await
    .expect("ledger");
    sqlx::query("UPDATE products SET available_quantity = $2, version = version + 1 WHERE id = $1")
        .bind(id)
        .bind(stock)
        .execute(&mut *tx)
        .await
        .expect("stock");
    tx.commit().await.expect("commit");
    set
}

#[tokio::test]
async fn a_new_stock_is_the_lanes_answer() {
    let app = TestApp::spawn().await;
    let (seller, stranger, id, path) = product_and_stranger(&app).await;
    expect_error(
        app.patch(
            &path,
            Some(&stranger.token),
            &json!({"available_quantity": 0}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "not_seller",
    )
    .await;
    expect_error(
        app.patch(
            "/products/999999",
            Some(&seller.token),
            &json!({"available_quantity": 0}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert!(queued_sets(&app, id).await.is_empty(), "nothing queued");
    // The seller counts 0 on the shelf with a new price; the lane leaves 2 (say a restock of 2
    // was queued after the count and reached the lane first): the answer is the lane's.
    let count = json!({"available_quantity": 0, "price_cents": 900});
    let (answer, set) = tokio::join!(
        app.patch(&path, Some(&seller.token), &count),
        apply_the_set(&app, id, 2, true),
    );
    assert_eq!(
        (
            set["kind"].as_str(),
            set["quantity"].as_i64(),
            set["product_id"].as_i64()
        ),
        (Some("set"), Some(0), Some(id))
    );
    let answer = expect_json(answer, StatusCode::OK).await;
    assert_eq!(
        (
            answer["available_quantity"].as_i64(),
            answer["price_cents"].as_i64(),
            answer["version"].as_i64()
        ),
        (Some(2), Some(900), Some(3)),
        "the field change and the lane's write each raised the version"
    );
    assert!(answer.get("stock_update").is_none(), "{answer}");
    assert_eq!(
        product(&app, id).await["available_quantity"],
        2,
        "cached as the lane left it"
    );
}

#[tokio::test]
async fn a_count_the_lane_found_superseded_says_so() {
    let app = TestApp::spawn().await;
    let (seller, _, id, path) = product_and_stranger(&app).await;
    // The seller counts 4; a newer count of 7 (another tab) reached the lane first, so the lane
    // records this one as not applied and the stock stays 7. The answer must not pass 7 off as
    // the result of this count.
    let count = json!({"available_quantity": 4});
    let (answer, _) = tokio::join!(
        app.patch(&path, Some(&seller.token), &count),
        apply_the_set(&app, id, 7, false),
    );
    let answer = expect_json(answer, StatusCode::OK).await;
    assert_eq!(
        (
            answer["available_quantity"].as_i64(),
            answer["stock_update"].as_str()
        ),
        (Some(7), Some("SUPERSEDED")),
        "{answer}"
    );
}
