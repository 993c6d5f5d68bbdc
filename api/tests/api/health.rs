use reqwest::StatusCode;
use shop_testkit::{eventually, expect_error, expect_json, TestApp};
use std::time::Duration;

#[tokio::test]
async fn liveness_and_readiness_report_up() {
    let app = TestApp::spawn().await;
    let body = expect_json(app.get("/healthz", None).await, StatusCode::OK).await;
    assert_eq!(body["status"], "ok");
    let body = expect_json(app.get("/readyz", None).await, StatusCode::OK).await;
    assert_eq!(body["checks"]["postgres"], "up");
    assert_eq!(body["checks"]["redis"], "up");
}

/// A primary demoted in a failover, before HAProxy has moved the clients to the new one, refuses
/// every write with SQLSTATE 25006 (read-only transaction): the store is unavailable for a moment,
/// a 503 the client retries, not a fault of ours (500). Here the test's database is made
/// read-only for new sessions and the API's connections are ended, so it reconnects to it.
#[tokio::test]
async fn a_read_only_database_answers_503_not_500() {
    let app = TestApp::spawn().await;
    let seller = app.new_user().await;
    let product = app.new_product(&seller, "home", 500, 5).await["id"]
        .as_i64()
        .expect("id");
    let shopper = app.new_user().await;
    let database: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&app.db)
        .await
        .expect("database");
    sqlx::query(&format!(
        "ALTER DATABASE \"{database}\" SET default_transaction_read_only = on"
    ))
    .execute(&app.db)
    .await
    .expect("read-only");
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .execute(&app.db)
    .await
    .expect("connections ended");
    // Reads work on a standby: the API is ready again once it has reconnected.
    eventually(
        Duration::from_secs(10),
        "ready on the read-only database",
        || async {
            match app.get("/readyz", None).await.status() {
                StatusCode::OK => Ok(()),
                other => Err(other),
            }
        },
    )
    .await;
    for _ in 0..3 {
        expect_error(
            app.cart_add(&shopper.token, product, 1).await,
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
        )
        .await;
    }
}

#[tokio::test]
async fn startup_refuses_to_run_without_redis() {
    let app = TestApp::spawn().await;
    let mut settings = app.settings.clone();
    // A port where nothing listens.
    settings.redis_url = "redis://127.0.0.1:1".into();
    assert!(
        shop_api::state::AppState::connect(settings).await.is_err(),
        "startup must fail loudly without Redis"
    );
}

#[tokio::test]
async fn metrics_are_exported_by_matched_route() {
    let app = TestApp::spawn().await;
    app.get("/products/12345", None).await;
    let text = app.metrics().await;
    assert!(text.contains("shop_api_http_requests_total"), "{text}");
    assert!(text.contains(r#"route="/products/{id}""#), "{text}");
    assert!(
        !text.contains(r#"route="/products/12345""#),
        "raw paths must not become labels"
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let app = TestApp::spawn().await;
    expect_error(
        app.get("/nope", None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let response = app
        .client
        .delete(app.url("/products"))
        .send()
        .await
        .expect("sent");
    expect_error(
        response,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
}

#[tokio::test]
async fn the_storefront_is_served_without_a_cdn() {
    let app = TestApp::spawn().await;
    let page = app.get("/", None).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("html");
    assert!(
        html.contains("/storefront/app.js") && !html.contains("https://"),
        "{html}"
    );
    for (path, kind) in [
        ("/storefront/app.js", "text/javascript"),
        ("/storefront/core.js", "text/javascript"),
        ("/storefront/drops.js", "text/javascript"),
        ("/storefront/style.css", "text/css"),
    ] {
        let asset = app.get(path, None).await;
        assert_eq!(asset.status(), StatusCode::OK);
        let content_type = asset.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .to_owned();
        assert!(content_type.starts_with(kind), "{path}: {content_type}");
    }
}

#[tokio::test]
async fn the_openapi_document_and_its_docs_page_are_served_without_a_cdn() {
    let app = TestApp::spawn().await;
    let doc = expect_json(app.get("/openapi.json", None).await, StatusCode::OK).await;
    assert!(doc["openapi"]
        .as_str()
        .is_some_and(|v| v.starts_with("3.1")));
    assert!(doc["paths"]["/orders/checkout"]["post"].is_object());

    let page = app.get("/docs", None).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("html");
    let assets: Vec<&str> = html
        .split(['"', '\''])
        .filter(|s| s.ends_with(".js") || s.ends_with(".css"))
        .collect();
    assert_eq!(assets.len(), 2, "{html}");
    for asset in assets {
        assert!(asset.starts_with('/'), "{asset} must come from this server");
        let response = app.get(asset, None).await;
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
        assert!(
            response.bytes().await.expect("body").len() > 10_000,
            "{asset}"
        );
    }
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );
}

#[tokio::test]
async fn sigterm_turns_readiness_off_first_then_ends_streams_and_exits() {
    let app = TestApp::spawn().await;
    let seller = app.new_user().await;
    let product = app.new_product(&seller, "tools", 500, 5).await;
    let shopper = app.new_user().await;
    app.cart_add(&shopper.token, product["id"].as_i64().expect("id"), 1)
        .await;
    // No worker runs: the order stays PENDING and its event stream stays open.
    let order = app.checkout_accepted(&shopper.token).await;
    let mut stream = app
        .get(&format!("/orders/{order}/events"), Some(&shopper.token))
        .await;
    let first = stream.chunk().await.expect("stream").expect("first event");
    assert!(String::from_utf8_lossy(&first).contains("PENDING"));

    app.terminate();
    // Draining: still serving, but unready, so load balancers stop sending traffic.
    let app = &app;
    let unready = eventually(Duration::from_secs(2), "/readyz unready", || async move {
        let response = app.get("/readyz", None).await;
        match response.status() {
            StatusCode::SERVICE_UNAVAILABLE => Ok(response),
            ready => Err(ready),
        }
    })
    .await;
    let body = expect_json(unready, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(body["status"], "shutting_down");
    // The open stream ends rather than holding the shutdown up.
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while stream.chunk().await.expect("stream").is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "the SSE stream must end on shutdown");
    eventually(
        Duration::from_secs(10),
        "the API exited after its drain",
        || async move {
            if app.has_exited() {
                Ok(())
            } else {
                Err("still running")
            }
        },
    )
    .await;
}
