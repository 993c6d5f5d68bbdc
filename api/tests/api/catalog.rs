//! Search, categories and drawn product images, against real PostgreSQL.

use reqwest::{header, StatusCode};
use serde_json::{json, Value};
use shop_testkit::{expect_error, expect_json, TestApp, TestUser};

async fn list(
    app: &TestApp,
    seller: &TestUser,
    name: &str,
    description: &str,
    category: &str,
    stock: i64,
) -> i64 {
    let body = json!({
        "name": name, "description": description, "price_cents": 1000,
        "available_quantity": stock, "category": category,
    });
    expect_json(
        app.create_product(&seller.token, &body).await,
        StatusCode::CREATED,
    )
    .await["id"]
        .as_i64()
        .expect("id")
}

async fn search(app: &TestApp, query: &str) -> (Vec<i64>, Option<String>) {
    let page = expect_json(
        app.get(&format!("/products?{query}"), None).await,
        StatusCode::OK,
    )
    .await;
    let ids = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| p["id"].as_i64().expect("id"))
        .collect();
    (ids, page["next_cursor"].as_str().map(str::to_owned))
}

#[tokio::test]
async fn search_finds_prefixes_and_typos_ranked_by_name_then_description() {
    let app = TestApp::spawn().await;
    let seller = app.new_user().await;
    let hose = list(
        &app,
        &seller,
        "Garden Hose",
        "Fills a kettle from the tap",
        "garden",
        5,
    )
    .await;
    let iron = list(
        &app,
        &seller,
        "Cast Iron Kettle",
        "Whistles when the water boils",
        "home",
        5,
    )
    .await;
    let electric = list(
        &app,
        &seller,
        "Electric Kettle",
        "Boils water fast",
        "home",
        0,
    )
    .await;
    list(&app, &seller, "Teapot", "Porcelain", "home", 5).await;

    let (found, _) = search(&app, "q=kett").await;
    assert_eq!(found.len(), 3, "{found:?}");
    assert_eq!(
        found[2], hose,
        "a match in the description ranks below matches in the name"
    );
    assert!(found[..2].contains(&iron) && found[..2].contains(&electric));
    // Every word counts, as a prefix; stemming folds plurals.
    assert_eq!(search(&app, "q=cast%20kettles").await.0, vec![iron]);
    // A typo in the name still finds it: a letter dropped, or two swapped.
    assert!(search(&app, "q=ketle").await.0.contains(&iron));
    assert!(search(&app, "q=electirc").await.0.contains(&electric));
    // With a category.
    assert_eq!(search(&app, "q=kettle&category=garden").await.0, vec![hose]);
    // Nothing matches: an empty page.
    assert_eq!(search(&app, "q=zebra").await, (vec![], None));

    // Ranked pages, one result each, cover the matches once.
    let (first, cursor) = search(&app, "q=kett&limit=2").await;
    let cursor = cursor.expect("a second page");
    let (second, last) = search(&app, &format!("q=kett&limit=2&cursor={cursor}")).await;
    assert_eq!((first.len(), second.len(), last), (2, 1, None));
    assert!(!first.contains(&second[0]));

    // A product is found the moment it is listed.
    let bell = list(&app, &seller, "Kettlebell 16 kg", "Cast iron", "sports", 3).await;
    assert!(search(&app, "q=kettlebell").await.0.contains(&bell));
}

#[tokio::test]
async fn bad_searches_are_clear_4xx() {
    let app = TestApp::spawn().await;
    for query in ["q=", &format!("q={}", "a".repeat(101))] {
        expect_error(
            app.get(&format!("/products?{query}"), None).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_search",
        )
        .await;
    }
    // A cursor of the id listing is not a search cursor, and the other way round.
    let seller = app.new_user().await;
    for n in 0..3 {
        list(&app, &seller, &format!("Mug {n}"), "", "home", 1).await;
    }
    let (_, by_id) = search(&app, "limit=1").await;
    let (_, ranked) = search(&app, "q=mug&limit=1").await;
    for query in [
        format!("q=mug&cursor={}", by_id.expect("cursor")),
        format!("cursor={}", ranked.expect("cursor")),
    ] {
        expect_error(
            app.get(&format!("/products?{query}"), None).await,
            StatusCode::BAD_REQUEST,
            "invalid_cursor",
        )
        .await;
    }
    // Punctuation or blanks alone are a search for nothing, not an error.
    assert_eq!(search(&app, "q=%27%29%3A*%7C").await, (vec![], None));
    assert_eq!(search(&app, "q=%0D").await, (vec![], None));
    assert_eq!(search(&app, "q=%20%20").await, (vec![], None));
}

#[tokio::test]
async fn categories_count_their_products_in_stock() {
    // Long enough that the cached answer below cannot expire between two requests.
    let app = TestApp::spawn_configured(|s| {
        s.product_local_cache_ttl = std::time::Duration::from_secs(60);
    })
    .await;
    let seller = app.new_user().await;
    list(&app, &seller, "Kettle", "", "home", 3).await;
    list(&app, &seller, "Pot", "", "home", 0).await;
    list(&app, &seller, "Hose", "", "garden", 1).await;
    let categories = expect_json(app.get("/categories", None).await, StatusCode::OK).await;
    assert_eq!(
        categories,
        json!([
            {"category": "garden", "in_stock": 1, "products": 1},
            {"category": "home", "in_stock": 1, "products": 2},
        ])
    );
    // Kept by this process a while: a change made elsewhere (here, by SQL) shows within
    // PRODUCT_LOCAL_CACHE_MS, one listed through this process at once.
    sqlx::query("UPDATE products SET available_quantity = 0 WHERE category = 'garden'")
        .execute(&app.db)
        .await
        .expect("sold out");
    let cached = expect_json(app.get("/categories", None).await, StatusCode::OK).await;
    assert_eq!(cached, categories, "answered from memory");
    list(&app, &seller, "Lamp", "", "lighting", 2).await;
    let fresh = expect_json(app.get("/categories", None).await, StatusCode::OK).await;
    assert_eq!(
        fresh,
        json!([
            {"category": "garden", "in_stock": 0, "products": 1},
            {"category": "home", "in_stock": 1, "products": 2},
            {"category": "lighting", "in_stock": 1, "products": 1},
        ])
    );
}

#[tokio::test]
async fn every_product_has_a_drawn_image_that_caches() {
    let app = TestApp::spawn().await;
    let seller = app.new_user().await;
    let id = list(&app, &seller, "Cast Iron Kettle", "", "home", 3).await;
    let path = format!("/products/{id}/image.svg");
    let response = app.get(&path, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers[header::CONTENT_TYPE], "image/svg+xml");
    assert!(headers[header::CACHE_CONTROL]
        .to_str()
        .expect("ascii")
        .contains("max-age"));
    let etag = headers[header::ETAG].clone();
    let body = response.text().await.expect("svg");
    assert!(body.starts_with("<svg") && body.contains(">CI<"));

    let again = app
        .client
        .get(app.url(&path))
        .header(header::IF_NONE_MATCH, etag.clone())
        .send()
        .await
        .expect("sent");
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    // A new name is a new image.
    expect_json(
        app.patch(
            &format!("/products/{id}"),
            Some(&seller.token),
            &json!({"name": "Teapot"}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let changed = app.get(&path, None).await;
    assert_ne!(changed.headers()[header::ETAG], etag);
    assert!(changed.text().await.expect("svg").contains(">T<"));

    expect_error(
        app.get("/products/999999/image.svg", None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn sellers_images_must_be_https() {
    let app = TestApp::spawn().await;
    let seller = app.new_user().await;
    let body = |url: &str| json!({"name": "Lamp", "price_cents": 100, "available_quantity": 1, "category": "home", "image_url": url});
    let made: Value = expect_json(
        app.create_product(&seller.token, &body("https://images.example.com/lamp.png"))
            .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(made["image_url"], "https://images.example.com/lamp.png");
    for url in [
        "http://images.example.com/lamp.png",
        "javascript:alert(1)",
        "https://",
    ] {
        expect_error(
            app.create_product(&seller.token, &body(url)).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        )
        .await;
    }
}
