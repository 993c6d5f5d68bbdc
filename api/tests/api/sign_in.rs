//! Sign-in by one-time code and the session list, against real PostgreSQL and Redis. Codes are
//! stored the way the notifier stores them (`TestApp::issue_code`); the system tests send them
//! through a real SMTP server.

use reqwest::{header, StatusCode};
use serde_json::{json, Value};
use shop_testkit::{expect_error, expect_json, unique_contact, TestApp};
use std::time::{Duration, Instant};

async fn last_login(app: &TestApp, user: i64) -> chrono::DateTime<chrono::Utc> {
    sqlx::query_scalar("SELECT last_login_at FROM users WHERE id = $1")
        .bind(user)
        .fetch_one(&app.db)
        .await
        .expect("user row")
}

/// A code that is not `code`.
fn other_than(code: &str) -> String {
    let n: u32 = code.parse().expect("digits");
    format!("{:06}", (n + 1) % 1_000_000)
}

#[tokio::test]
async fn a_code_signs_in_once_and_records_the_login() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let before = last_login(&app, user.id).await;
    let code = app.issue_code(user.id).await;
    // By either address of the account, whatever the case.
    let address = json!({ "email": user.email.to_uppercase() });
    let body = expect_json(app.verify_code(&address, &code).await, StatusCode::CREATED).await;
    assert_eq!(body["user"]["id"], user.id);
    let token = body["session_token"].as_str().expect("token");
    assert_ne!(token, user.token);
    assert!(last_login(&app, user.id).await > before);
    expect_json(app.get("/cart", Some(token)).await, StatusCode::OK).await;
    expect_json(app.get("/cart", Some(&user.token)).await, StatusCode::OK).await;
    // Used once: the same code again is refused.
    expect_error(
        app.verify_code(&address, &code).await,
        StatusCode::UNAUTHORIZED,
        "invalid_code",
    )
    .await;
    // A new code replaces the old one.
    let first = app.issue_code(user.id).await;
    let second = app.issue_code(user.id).await;
    let by_phone = json!({ "phone_number": user.phone_number });
    if first != second {
        expect_error(
            app.verify_code(&by_phone, &first).await,
            StatusCode::UNAUTHORIZED,
            "invalid_code",
        )
        .await;
    }
    expect_json(
        app.verify_code(&by_phone, &second).await,
        StatusCode::CREATED,
    )
    .await;
}

#[tokio::test]
async fn a_code_used_twice_at_once_signs_in_once() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let code = app.issue_code(user.id).await;
    let address = json!({ "email": user.email });
    let (a, b) = tokio::join!(
        app.verify_code(&address, &code),
        app.verify_code(&address, &code)
    );
    let mut statuses = [a.status(), b.status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::CREATED, StatusCode::UNAUTHORIZED]);
}

#[tokio::test]
async fn guessing_is_cut_off_after_five_wrong_codes() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let code = app.issue_code(user.id).await;
    let address = json!({ "email": user.email });
    for _ in 0..5 {
        expect_error(
            app.verify_code(&address, &other_than(&code)).await,
            StatusCode::UNAUTHORIZED,
            "invalid_code",
        )
        .await;
    }
    // The code is dead: even the right one is refused now, with a time to come back.
    let response = app.verify_code(&address, &code).await;
    let retry_after: u64 = response.headers()[header::RETRY_AFTER]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(retry_after >= 1 && retry_after <= app.settings.sign_in_lockout.as_secs());
    expect_error(response, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    // A new code does not reopen the guessing window.
    let fresh = app.issue_code(user.id).await;
    expect_error(
        app.verify_code(&address, &fresh).await,
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_attempts",
    )
    .await;
}

#[tokio::test]
async fn concurrent_guesses_get_five_tries_in_all() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let code = app.issue_code(user.id).await;
    let address = json!({ "email": user.email });
    let wrong = other_than(&code);
    let answers =
        futures_util::future::join_all((0..20).map(|_| app.verify_code(&address, &wrong))).await;
    let judged = answers
        .iter()
        .filter(|r| r.status() == StatusCode::UNAUTHORIZED)
        .count();
    let refused = answers
        .iter()
        .filter(|r| r.status() == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((judged, refused), (5, 15));
}

/// Status, body and `Retry-After` of an answer.
async fn answer(response: reqwest::Response) -> (StatusCode, Value, Option<String>) {
    let retry = response
        .headers()
        .get(header::RETRY_AFTER)
        .map(|v| v.to_str().expect("ascii").to_owned());
    (
        response.status(),
        response.json().await.expect("JSON"),
        retry,
    )
}

#[tokio::test]
async fn known_and_unknown_addresses_get_the_same_answers() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let (nobody, _) = unique_contact();
    let known = json!({ "email": user.email });
    let unknown = json!({ "email": nobody });
    assert_eq!(
        answer(app.request_code(&known).await).await,
        answer(app.request_code(&unknown).await).await
    );
    for _ in 0..5 {
        assert_eq!(
            answer(app.verify_code(&known, "123456").await).await.0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            answer(app.verify_code(&unknown, "123456").await).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let (known_status, known_body, _) = answer(app.verify_code(&known, "123456").await).await;
    let (unknown_status, unknown_body, _) = answer(app.verify_code(&unknown, "123456").await).await;
    assert_eq!(known_status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!((known_status, known_body), (unknown_status, unknown_body));
}

#[tokio::test]
async fn a_code_request_queues_one_message_for_an_active_account_only() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let (nobody, _) = unique_contact();
    for address in [
        json!({ "email": nobody }),
        json!({ "email": user.email }),
        json!({ "phone_number": user.phone_number }),
    ] {
        let body = expect_json(app.request_code(&address).await, StatusCode::ACCEPTED).await;
        assert_eq!(
            body["expires_in_secs"],
            app.settings.sign_in_code_ttl.as_secs()
        );
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let rows: Vec<(String, String, i64)> = loop {
        let rows =
            sqlx::query_as("SELECT kind, channel, user_id FROM notifications ORDER BY channel")
                .fetch_all(&app.db)
                .await
                .expect("rows");
        if rows.len() >= 2 || Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        rows,
        vec![
            ("sign_in_code".to_owned(), "email".to_owned(), user.id),
            ("sign_in_code".to_owned(), "sms".to_owned(), user.id),
        ]
    );
}

#[tokio::test]
async fn an_accepted_code_request_is_queued_through_database_failures() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    // The first two writes of the queue fail, as during a PostgreSQL failover (a sequence counts
    // them: its values survive the failed transactions).
    sqlx::raw_sql(
        "CREATE SEQUENCE queue_faults;
         CREATE FUNCTION refuse_twice() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN IF nextval('queue_faults') <= 2 THEN RAISE EXCEPTION 'boom'; END IF; RETURN NEW; END $$;
         CREATE TRIGGER refuse_twice BEFORE INSERT ON notifications FOR EACH ROW
         EXECUTE FUNCTION refuse_twice();",
    )
    .execute(&app.db)
    .await
    .expect("trigger");
    expect_json(
        app.request_code(&json!({ "email": user.email })).await,
        StatusCode::ACCEPTED,
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let queued: i64 =
            sqlx::query_scalar("SELECT count(*) FROM notifications WHERE user_id = $1")
                .bind(user.id)
                .fetch_one(&app.db)
                .await
                .expect("count");
        if queued == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the accepted request was dropped after a failed write"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn code_requests_are_limited_per_address_and_per_client() {
    let app = TestApp::spawn_configured(|s| {
        s.sign_in_sends_per_account = 2;
        s.sign_in_sends_per_ip = 3;
    })
    .await;
    let (email, _) = unique_contact();
    let address = json!({ "email": email });
    for _ in 0..2 {
        expect_json(app.request_code(&address).await, StatusCode::ACCEPTED).await;
    }
    let (status, body, retry) = answer(app.request_code(&address).await).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["code"], "too_many_code_requests");
    assert!(retry.is_some_and(|s| s.parse::<u64>().is_ok_and(|s| s >= 1)));
    // Another address from the same client: its third request of the window was the refused
    // one above, so this is its fourth.
    let (other, _) = unique_contact();
    let (status, body, _) = answer(app.request_code(&json!({ "email": other })).await).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
}

#[tokio::test]
async fn bad_sign_in_input_is_a_clear_422() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    for body in [
        json!({}),
        json!({ "email": user.email, "phone_number": user.phone_number }),
    ] {
        expect_error(
            app.request_code(&body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "one_address_required",
        )
        .await;
    }
    expect_error(
        app.request_code(&json!({ "email": "not an email" })).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_email",
    )
    .await;
    for code in ["12345", "1234567", "12345a", ""] {
        expect_error(
            app.verify_code(&json!({ "email": user.email }), code).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_code_format",
        )
        .await;
    }
}

async fn delete(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    app.client
        .delete(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("sent")
}

#[tokio::test]
async fn sessions_are_listed_and_ended_one_by_one_or_all_at_once() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let second = app.sign_in_by_code(&user).await;
    let listed = expect_json(app.get("/sessions", Some(&second)).await, StatusCode::OK).await;
    let listed = listed.as_array().expect("a list");
    assert_eq!(listed.len(), 2);
    let current: Vec<&Value> = listed.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert!(listed
        .iter()
        .all(|s| s["created_at"].is_string() && s["last_seen_at"].is_string()));
    assert_eq!(listed[0]["address"], "127.0.0.1");
    let first_id = listed
        .iter()
        .find(|s| s["current"] == false)
        .and_then(|s| s["id"].as_str())
        .expect("the registration's session");

    // Another shopper cannot end it.
    let stranger = app.new_user().await;
    expect_error(
        delete(&app, &format!("/sessions/{first_id}"), &stranger.token).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    expect_json(app.get("/cart", Some(&user.token)).await, StatusCode::OK).await;

    let ended = delete(&app, &format!("/sessions/{first_id}"), &second).await;
    assert_eq!(ended.status(), StatusCode::NO_CONTENT);
    expect_error(
        app.get("/cart", Some(&user.token)).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    let listed = expect_json(app.get("/sessions", Some(&second)).await, StatusCode::OK).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1));

    let third = app.sign_in_by_code(&user).await;
    let everywhere = delete(&app, "/sessions", &third).await;
    assert_eq!(everywhere.status(), StatusCode::NO_CONTENT);
    for token in [&second, &third] {
        expect_error(
            app.get("/cart", Some(token)).await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        )
        .await;
    }
    expect_json(
        app.get("/cart", Some(&stranger.token)).await,
        StatusCode::OK,
    )
    .await;
}
