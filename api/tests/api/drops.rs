//! Flash-sale drops against the API alone (no worker): a product's scheduled start
//! (`sale_starts_at`) and per-shopper limit (`max_per_shopper`), set and cleared by its seller
//! only, validated, shown in its JSON and in the OpenAPI document; a checkout before the start
//! refused on the database's clock by every replica; the synchronous strategies counting the
//! limit in the order's transaction; and the limits' invariant checker firing on a state that
//! breaks it. (The pipeline's side: `system-tests/tests/pipeline/drops.rs`.)

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use shop_api::checkout::Strategy;
use shop_testkit::{eventually, expect_error, expect_json, TestApp, TestUser};
use std::time::Duration;

fn instant(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| panic!("an RFC 3339 time: {value}"))
}

fn product_path(product: &Value) -> String {
    format!("/products/{}", product["id"].as_i64().expect("id"))
}

/// A shopper whose cart holds `quantity` of `product`.
async fn shopper_with(app: &TestApp, product: &Value, quantity: i64) -> TestUser {
    let shopper = app.new_user().await;
    let id = product["id"].as_i64().expect("id");
    expect_json(
        app.cart_add(&shopper.token, id, quantity).await,
        StatusCode::OK,
    )
    .await;
    shopper
}

#[tokio::test]
async fn a_seller_schedules_and_limits_a_drop_then_clears_both() {
    let app = TestApp::spawn().await;
    let seller = app.new_user().await;
    let fields = json!({"sale_starts_at": "2031-05-01T12:00:00+02:00", "max_per_shopper": 2});
    let created = app.new_product_with(&seller, 10, fields).await;
    assert_eq!(
        instant(&created["sale_starts_at"]),
        instant(&json!("2031-05-01T10:00:00Z"))
    );
    assert_eq!(created["max_per_shopper"], 2);
    let path = product_path(&created);
    assert_eq!(
        expect_json(app.get(&path, None).await, StatusCode::OK).await,
        created
    );

    let limit = json!({"max_per_shopper": 5});
    let raised = expect_json(
        app.patch(&path, Some(&seller.token), &limit).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(raised["max_per_shopper"], 5);
    assert_eq!(
        raised["sale_starts_at"], created["sale_starts_at"],
        "absent: unchanged"
    );

    let clear = json!({"sale_starts_at": null, "max_per_shopper": null});
    let cleared = expect_json(
        app.patch(&path, Some(&seller.token), &clear).await,
        StatusCode::OK,
    )
    .await;
    assert!(cleared["sale_starts_at"].is_null() && cleared["max_per_shopper"].is_null());
    let fetched = expect_json(app.get(&path, None).await, StatusCode::OK).await;
    let fields = fetched.as_object().expect("a product");
    assert!(
        fields.contains_key("sale_starts_at") && fields.contains_key("max_per_shopper"),
        "shown as null, not left out: {fetched}"
    );

    let doc = expect_json(app.get("/openapi.json", None).await, StatusCode::OK).await;
    for schema in ["Product", "CreateProduct", "UpdateProduct"] {
        let properties = &doc["components"]["schemas"][schema]["properties"];
        for field in ["sale_starts_at", "max_per_shopper"] {
            assert!(
                properties[field].is_object(),
                "{schema}.{field}: {properties}"
            );
        }
    }
    assert_eq!(
        doc["components"]["schemas"]["Product"]["properties"]["max_per_shopper"]["minimum"],
        1
    );
}

/// A raw JSON body, as a client that cannot write JSON sends it.
async fn send_raw(app: &TestApp, method: reqwest::Method, path: &str, token: &str) -> StatusCode {
    let response = app
        .client
        .request(method, app.url(path))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(r#"{"name": "X", "max_per_shopper": "#)
        .send()
        .await
        .expect("sent");
    let status = response.status();
    let body: Value = response.json().await.expect("a JSON error body");
    assert_eq!(body["error"]["code"], "malformed_json", "{body}");
    status
}

#[tokio::test]
async fn bad_drop_values_are_refused_with_json_errors() {
    let app = TestApp::spawn().await;
    let seller = app.new_user().await;
    let base = json!({"name": "Drop", "price_cents": 100, "category": "drops"});
    // (field, value, code): values of the right type but outside the domain are `invalid_field`
    // naming the field; values of another type are `invalid_body`.
    let cases = [
        ("max_per_shopper", json!(0), "invalid_field"),
        ("max_per_shopper", json!(-3), "invalid_field"),
        ("max_per_shopper", json!(1_000_000_001_i64), "invalid_field"),
        ("max_per_shopper", json!(1.5), "invalid_body"),
        ("max_per_shopper", json!("two"), "invalid_body"),
        ("sale_starts_at", json!("next friday"), "invalid_field"),
        (
            "sale_starts_at",
            json!("2031-13-01T00:00:00Z"),
            "invalid_field",
        ),
        ("sale_starts_at", json!("2031-05-01 12:00"), "invalid_field"),
        ("sale_starts_at", json!(1_900_000_000), "invalid_body"),
    ];
    let listed = app.new_product_with(&seller, 5, json!({})).await;
    let path = product_path(&listed);
    for (field, value, code) in cases {
        let mut body = base.clone();
        body[field] = value.clone();
        let refused = expect_error(
            app.create_product(&seller.token, &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            code,
        )
        .await;
        let patched = expect_error(
            app.patch(&path, Some(&seller.token), &json!({ field: value }))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            code,
        )
        .await;
        if code == "invalid_field" {
            for answer in [&refused, &patched] {
                let message = answer["error"]["message"].as_str().unwrap_or_default();
                assert!(message.contains(field), "{answer}");
            }
        }
    }
    for method in [reqwest::Method::POST, reqwest::Method::PATCH] {
        let path = if method == reqwest::Method::POST {
            "/products"
        } else {
            &path
        };
        assert_eq!(
            send_raw(&app, method, path, &seller.token).await,
            StatusCode::BAD_REQUEST
        );
    }
    let unchanged = expect_json(app.get(&path, None).await, StatusCode::OK).await;
    assert_eq!(unchanged, listed, "nothing refused changed the product");
}

#[tokio::test]
async fn only_the_seller_may_schedule_or_limit_a_product() {
    let app = TestApp::spawn().await;
    let seller = app.new_user().await;
    let stranger = app.new_user().await;
    let fields = json!({"sale_starts_at": "2031-05-01T10:00:00Z", "max_per_shopper": 2});
    let listed = app.new_product_with(&seller, 5, fields).await;
    let path = product_path(&listed);
    for change in [
        json!({"sale_starts_at": "2001-01-01T00:00:00Z"}),
        json!({"sale_starts_at": null}),
        json!({"max_per_shopper": 100}),
        json!({"max_per_shopper": null}),
    ] {
        expect_error(
            app.patch(&path, Some(&stranger.token), &change).await,
            StatusCode::FORBIDDEN,
            "not_seller",
        )
        .await;
        expect_error(
            app.patch(&path, None, &change).await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        )
        .await;
    }
    let unchanged = expect_json(app.get(&path, None).await, StatusCode::OK).await;
    assert_eq!(unchanged, listed);
}

/// The start is decided by PostgreSQL's `now()` in the statement that would accept the order, on
/// every replica alike: the API holds no clock of its own for it. A start ahead of the
/// database's clock is refused by both replicas (with the start in the body), nothing is written
/// and the cart keeps the line; moved to two seconds ahead of the database's clock, the same
/// checkout is accepted once that clock has passed it. A start in the past, by whatever clock,
/// is on sale at once.
#[tokio::test]
async fn checkout_waits_for_the_database_clock_on_every_replica() {
    let app = TestApp::spawn().await;
    let replica = TestApp::start(app.settings.clone(), app.id.clone()).await;
    let seller = app.new_user().await;
    let starts_at = app.database_time_in(Duration::from_secs(3600)).await;
    let drop = app
        .new_product_with(&seller, 10, json!({ "sale_starts_at": starts_at }))
        .await;
    let shopper = shopper_with(&app, &drop, 1).await;
    for api in [&app, &replica] {
        let refused = expect_error(
            api.checkout(&shopper.token, None).await,
            StatusCode::CONFLICT,
            "not_on_sale_yet",
        )
        .await;
        assert_eq!(refused["error"]["product_id"], drop["id"], "{refused}");
        assert_eq!(
            instant(&refused["error"]["sale_starts_at"]),
            instant(&json!(starts_at))
        );
    }
    let orders: i64 = sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(&app.db)
        .await
        .expect("orders");
    assert_eq!(orders, 0, "a refused checkout writes nothing");
    assert_eq!(app.cart(&shopper.token).await["items"][0]["quantity"], 1);

    let starts_at = app.database_time_in(Duration::from_secs(2)).await;
    let soon = json!({ "sale_starts_at": starts_at });
    expect_json(
        app.patch(&product_path(&drop), Some(&seller.token), &soon)
            .await,
        StatusCode::OK,
    )
    .await;
    let (replica, token) = (&replica, shopper.token.as_str());
    eventually(Duration::from_secs(15), "the sale opened", || async move {
        let response = replica.checkout(token, None).await;
        match response.status() {
            StatusCode::ACCEPTED => Ok(()),
            StatusCode::CONFLICT => Err(response.text().await.unwrap_or_default()),
            other => panic!("a checkout is accepted or not on sale yet, not {other}"),
        }
    })
    .await;
    let opened: bool = sqlx::query_scalar("SELECT now() >= $1::TIMESTAMPTZ")
        .bind(&starts_at)
        .fetch_one(&app.db)
        .await
        .expect("the database's clock");
    assert!(
        opened,
        "accepted only once the database's clock passed the start"
    );

    let past = json!({"sale_starts_at": "2001-01-01T00:00:00Z"});
    let on_sale = app.new_product_with(&seller, 10, past).await;
    let early_bird = shopper_with(&app, &on_sale, 1).await;
    expect_json(
        app.checkout(&early_bird.token, None).await,
        StatusCode::ACCEPTED,
    )
    .await;
}

/// What a synchronous strategy answers and keeps for a shopper buying a product limited to 2.
async fn a_limit_holds_in_the_order_transaction(strategy: Strategy) {
    let app = TestApp::spawn_with(strategy).await;
    let seller = app.new_user().await;
    let drop = app
        .new_product_with(&seller, 10, json!({"max_per_shopper": 2}))
        .await;
    let id = drop["id"].as_i64().expect("id");
    let shopper = shopper_with(&app, &drop, 2).await;
    expect_json(
        app.checkout(&shopper.token, None).await,
        StatusCode::CREATED,
    )
    .await;
    expect_json(app.cart_add(&shopper.token, id, 1).await, StatusCode::OK).await;
    let refused = expect_error(
        app.checkout(&shopper.token, None).await,
        StatusCode::CONFLICT,
        "limit_exceeded",
    )
    .await;
    assert_eq!(
        refused["error"]["short_lines"],
        json!([{"product_id": id, "requested": 1, "available": 0}]),
        "{strategy}"
    );
    assert_eq!(
        app.stock().await[&id],
        8,
        "{strategy}: the refusal took nothing"
    );
    assert_eq!(app.cart(&shopper.token).await["items"][0]["quantity"], 1);
    // Another shopper has a limit of their own.
    let other = shopper_with(&app, &drop, 2).await;
    expect_json(app.checkout(&other.token, None).await, StatusCode::CREATED).await;
    let counts: Vec<(i64, i32)> = sqlx::query_as(
        "SELECT user_id, units FROM shopper_units WHERE product_id = $1 ORDER BY user_id",
    )
    .bind(id)
    .fetch_all(&app.db)
    .await
    .expect("counts");
    assert_eq!(counts, [(shopper.id, 2), (other.id, 2)], "{strategy}");
    assert!(app.broken_shopper_counts().await.is_empty(), "{strategy}");

    let later = app.database_time_in(Duration::from_secs(3600)).await;
    let scheduled = app
        .new_product_with(&seller, 10, json!({ "sale_starts_at": later }))
        .await;
    let early = shopper_with(&app, &scheduled, 1).await;
    expect_error(
        app.checkout(&early.token, None).await,
        StatusCode::CONFLICT,
        "not_on_sale_yet",
    )
    .await;
}

#[tokio::test]
async fn every_synchronous_strategy_counts_the_limit_in_the_order_transaction() {
    for strategy in [Strategy::Optimistic, Strategy::RedisLock, Strategy::RowLock] {
        a_limit_holds_in_the_order_transaction(strategy).await;
    }
}

/// The invariant checker (`TestApp::broken_shopper_counts`, part of `assert_invariants`) is shown
/// to fire: on a count over its product's limit that the ledger agrees with, and on a count the
/// ledger does not add up to.
#[tokio::test]
async fn the_limits_checker_fires_on_states_that_break_them() {
    let app = TestApp::spawn().await;
    let seller = app.new_user().await;
    let shopper = app.new_user().await;
    let drop = app
        .new_product_with(&seller, 10, json!({"max_per_shopper": 2}))
        .await;
    let product = drop["id"].as_i64().expect("id");
    assert!(app.broken_shopper_counts().await.is_empty());

    // A confirmed order of 3 units, counted in the ledger and in the shopper's count: over 2.
    let order = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO orders (id, user_id, total_cents, status, completed_at)
         VALUES ($1, $2, 3000, 'CONFIRMED', now())",
    )
    .bind(order)
    .bind(shopper.id)
    .execute(&app.db)
    .await
    .expect("order");
    sqlx::query(
        "INSERT INTO inventory_ledger (order_id, product_id, kind, quantity, applied, counted)
         VALUES ($1, $2, 'reserve', 3, true, true)",
    )
    .bind(order)
    .bind(product)
    .execute(&app.db)
    .await
    .expect("ledger");
    let set_count = |units: i32| {
        let db = app.db.clone();
        async move {
            sqlx::query(
                "INSERT INTO shopper_units (product_id, user_id, units) VALUES ($1, $2, $3)
                 ON CONFLICT (product_id, user_id) DO UPDATE SET units = EXCLUDED.units",
            )
            .bind(product)
            .bind(shopper.id)
            .bind(units)
            .execute(&db)
            .await
            .expect("count");
        }
    };
    set_count(3).await;
    let over = app.broken_shopper_counts().await;
    assert_eq!(over.len(), 1, "{over:?}");
    assert_eq!(
        (over[0].units, over[0].ledger, over[0].limit),
        (3, 3, Some(2)),
        "over the limit, though the ledger agrees"
    );
    set_count(2).await;
    let apart = app.broken_shopper_counts().await;
    assert_eq!(apart.len(), 1, "{apart:?}");
    assert_eq!(
        (apart[0].units, apart[0].ledger),
        (2, 3),
        "within the limit, but not what the ledger adds up to"
    );
}
