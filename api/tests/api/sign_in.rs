//! Sign-in by one-time code and the session list, against real PostgreSQL and Redis. Codes are
//! stored the way the notifier stores them (`TestApp::issue_code`); the system tests send them
//! through a real SMTP server.

use crate::helpers::{
    answer, client_at, expect_invalid_code, expect_too_many_code_requests, expect_unauthorized,
    post_from, verify_from, with_send_budgets,
};
use reqwest::{header, StatusCode};
use serde_json::{json, Value};
use shop_testkit::{
    eventually, expect_error, expect_json, other_than, unique_contact, TestApp, TestUser,
};
use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Mutex,
    },
    time::{Duration, Instant},
};

async fn last_login(app: &TestApp, user: i64) -> chrono::DateTime<chrono::Utc> {
    sqlx::query_scalar("SELECT last_login_at FROM users WHERE id = $1")
        .bind(user)
        .fetch_one(&app.db)
        .await
        .expect("user row")
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
    expect_invalid_code(app.verify_code(&address, &code).await).await;
    // A new code replaces the old one. (By a phone number once it is proven.)
    app.verify_phone(&user).await;
    let first = app.issue_text_code(user.id).await;
    let second = app.issue_text_code(user.id).await;
    let by_phone = json!({ "phone_number": user.phone_number });
    if first != second {
        expect_invalid_code(app.verify_code(&by_phone, &first).await).await;
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

/// `POST /sessions` from `client`.
async fn request_from(
    app: &TestApp,
    client: &reqwest::Client,
    address: &Value,
) -> reqwest::Response {
    post_from(app, client, "/sessions", address).await
}

/// Five wrong codes for `address` (none of them `code`), each refused: enough to kill a code.
async fn five_wrong_codes(app: &TestApp, address: &Value, code: &str) {
    for _ in 0..5 {
        expect_invalid_code(app.verify_code(address, &other_than(code)).await).await;
    }
}

/// The seconds of a 429's `Retry-After`, after checking its error code.
async fn retry_after(response: reqwest::Response, code: &str) -> u64 {
    let seconds = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    expect_error(response, StatusCode::TOO_MANY_REQUESTS, code).await;
    seconds
}

fn whole_seconds(duration: Duration) -> u64 {
    duration
        .as_millis()
        .div_ceil(1000)
        .try_into()
        .expect("seconds")
}

#[tokio::test]
async fn a_code_dies_after_five_wrong_tries_and_a_new_one_works() {
    // No waits for the account: the code's own limit alone.
    let app = TestApp::spawn_configured(|s| s.sign_in_delay_base = Duration::ZERO).await;
    let user = app.new_user().await;
    let code = app.issue_code(user.id).await;
    let address = json!({ "email": user.email });
    five_wrong_codes(&app, &address, &code).await;
    // The code is dead, right or not; the shopper asks for a new one, and it works at once.
    expect_invalid_code(app.verify_code(&address, &code).await).await;
    let fresh = app.issue_code(user.id).await;
    expect_json(app.verify_code(&address, &fresh).await, StatusCode::CREATED).await;
}

/// Wrong codes make the account wait, longer after each, up to the cap: never a lockout. Past
/// the wait, an address that typed no wrong code goes first, and signs in.
#[tokio::test]
async fn wrong_codes_make_the_account_wait_a_growing_delay_up_to_a_cap() {
    let (base, cap) = (Duration::from_secs(1), Duration::from_secs(2));
    let app = TestApp::spawn_configured(|s| {
        s.sign_in_delay_base = base;
        s.sign_in_delay_max = cap;
    })
    .await;
    let user = app.new_user().await;
    let address = json!({ "email": user.email });
    let code = app.issue_code(user.id).await;
    five_wrong_codes(&app, &address, &code).await;
    // The fifth wrong code killed the code and started the wait: even a new, right code waits,
    // the base delay and a tenth of it for each of this address's five wrong codes.
    let code = app.issue_code(user.id).await;
    let mut wait = retry_after(app.verify_code(&address, &code).await, "too_many_attempts").await;
    assert!((1..=whole_seconds(base * 3 / 2)).contains(&wait), "{wait}");
    // Each further wrong code doubles the wait, up to the cap (and this address's tenths): the
    // second of these would be four seconds uncapped.
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_secs(wait)).await;
        expect_invalid_code(app.verify_code(&address, &other_than(&code)).await).await;
        wait = retry_after(app.verify_code(&address, &code).await, "too_many_attempts").await;
        assert!((1..=whole_seconds(cap + base)).contains(&wait), "{wait}");
    }
    // The owner, from an address that typed no wrong code, waits the cap at most, then signs in.
    let owner = client_at([127, 0, 0, 2]);
    let response = verify_from(&app, &owner, &address, &code).await;
    let response = if response.status() == StatusCode::TOO_MANY_REQUESTS {
        let wait = retry_after(response, "too_many_attempts").await;
        assert!((1..=whole_seconds(cap)).contains(&wait), "{wait}");
        tokio::time::sleep(Duration::from_secs(wait)).await;
        verify_from(&app, &owner, &address, &code).await
    } else {
        response
    };
    expect_json(response, StatusCode::CREATED).await;
    // Signing in forgot the wrong codes: the first address is judged at once again.
    expect_invalid_code(app.verify_code(&address, "123456").await).await;
}

/// The lockout of issue 21: a stranger at another address sends wrong codes and code requests
/// for the owner's address, without pause. The owner still asks for a code and signs in within
/// the bound the settings give: a send window (the stranger's own budget, as by default, is no
/// more than the address's), then the longest wait and a second of rounding (she retries when
/// `Retry-After` says; the stranger, with five wrong codes of his own, only two seconds after
/// the wait), with a window and seconds to spare for a busy machine.
#[tokio::test]
async fn a_stranger_at_another_address_cannot_keep_the_owner_out() {
    let (base, cap, send_window) = (
        Duration::from_secs(4),
        Duration::from_secs(4),
        Duration::from_secs(1),
    );
    let app = TestApp::spawn_configured(|s| {
        s.sign_in_delay_base = base;
        s.sign_in_delay_max = cap;
        s.sign_in_sends_per_account = 2;
        s.sign_in_send_window = send_window;
        s.sign_in_sends_per_ip = 2;
        s.sign_in_send_ip_window = Duration::from_secs(3600);
    })
    .await;
    let owner = app.new_user().await;
    let address = json!({ "email": owner.email });
    let stop = AtomicBool::new(false);
    let stranger = client_at([127, 0, 0, 2]);
    let attack = async {
        while !stop.load(Ordering::Relaxed) {
            request_from(&app, &stranger, &address).await;
            verify_from(&app, &stranger, &address, "000000").await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let bound = send_window * 2 + cap + Duration::from_secs(1 + 4);
    let sign_in = async {
        // The stranger has a head start.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let started = Instant::now();
        signed_in_despite(&app, &owner, &address, started + bound).await;
        stop.store(true, Ordering::Relaxed);
        started.elapsed()
    };
    let ((), took) = tokio::join!(attack, sign_in);
    assert!(took < bound, "the owner took {took:?}");
}

/// The owner's side of the attack above: she asks for a code, types it, and asks again if the
/// stranger's tries killed it, waiting whenever an answer says so; fails as soon as a wait would
/// end past `deadline`.
async fn signed_in_despite(app: &TestApp, owner: &TestUser, address: &Value, deadline: Instant) {
    let wait_until_told = |wait: u64| {
        let wait = Duration::from_secs(wait);
        assert!(
            Instant::now() + wait < deadline,
            "told to wait {wait:?}, past the bound"
        );
        tokio::time::sleep(wait)
    };
    loop {
        loop {
            let response = app.request_code(address).await;
            if response.status() == StatusCode::ACCEPTED {
                break;
            }
            wait_until_told(retry_after(response, "too_many_code_requests").await).await;
        }
        // The mail arrives.
        let code = app.issue_code(owner.id).await;
        loop {
            let response = app.verify_code(address, &code).await;
            match response.status() {
                StatusCode::CREATED => return,
                StatusCode::TOO_MANY_REQUESTS => {
                    wait_until_told(retry_after(response, "too_many_attempts").await).await;
                }
                // The stranger's tries killed this code: she asks for another.
                _ => {
                    expect_invalid_code(response).await;
                    break;
                }
            }
        }
        assert!(Instant::now() < deadline, "not signed in in time");
    }
}

#[tokio::test]
async fn codes_tried_are_limited_per_client_address_across_accounts() {
    let app = TestApp::spawn_configured(|s| {
        s.sign_in_verifies_per_ip = 3;
        s.sign_in_verify_window = Duration::from_secs(3600);
    })
    .await;
    let mut users = Vec::new();
    for _ in 0..4 {
        users.push(app.new_user().await);
    }
    for user in &users[..3] {
        expect_invalid_code(
            app.verify_code(&json!({ "email": user.email }), "123456")
                .await,
        )
        .await;
    }
    let fourth = json!({ "email": users[3].email });
    let wait = retry_after(
        app.verify_code(&fourth, "123456").await,
        "too_many_attempts",
    )
    .await;
    assert!((1..=3600).contains(&wait), "{wait}");
    // Another client address has its own budget, and the fourth account was not charged.
    let other = client_at([127, 0, 0, 2]);
    let code = app.issue_code(users[3].id).await;
    expect_json(
        verify_from(&app, &other, &fourth, &code).await,
        StatusCode::CREATED,
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
    app.verify_phone(&user).await;
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
    let db = &app.db;
    let rows = eventually(
        Duration::from_secs(10),
        "two sign-in codes queued",
        || async move {
            let rows: Vec<(String, String, i64)> = sqlx::query_as(
                "SELECT kind, channel, user_id FROM notifications
             WHERE kind = 'sign_in_code' ORDER BY channel",
            )
            .fetch_all(db)
            .await
            .expect("rows");
            if rows.len() >= 2 {
                Ok(rows)
            } else {
                Err(rows)
            }
        },
    )
    .await;
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
    let (db, user_id) = (&app.db, user.id);
    eventually(
        Duration::from_secs(20),
        "the accepted request queued once, not dropped after a failed write",
        || async move {
            let queued: i64 =
                sqlx::query_scalar("SELECT count(*) FROM notifications WHERE user_id = $1")
                    .bind(user_id)
                    .fetch_one(db)
                    .await
                    .expect("count");
            if queued == 1 {
                Ok(())
            } else {
                Err(queued)
            }
        },
    )
    .await;
}

#[tokio::test]
async fn code_requests_are_limited_per_address_and_per_client() {
    let app = with_send_budgets(2, 3).await;
    let (email, _) = unique_contact();
    let address = json!({ "email": email });
    for _ in 0..2 {
        expect_json(app.request_code(&address).await, StatusCode::ACCEPTED).await;
    }
    expect_too_many_code_requests(app.request_code(&address).await).await;
    // Another address from the same client: the refused request above spent nothing, so this
    // is the client's third, and its fourth is refused.
    let (other, _) = unique_contact();
    let other = json!({ "email": other });
    expect_json(app.request_code(&other).await, StatusCode::ACCEPTED).await;
    let (status, body, _) = answer(app.request_code(&other).await).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
}

/// A stranger asking for codes for the owner's address spends the address's budget only as far
/// as his own lets him: his refused requests count for nothing.
#[tokio::test]
async fn code_requests_refused_to_a_stranger_do_not_spend_the_owners() {
    // The owner's registration mailed the address one code of the four.
    let app = with_send_budgets(4, 2).await;
    let owner = app.new_user().await;
    let address = json!({ "email": owner.email });
    let stranger = client_at([127, 0, 0, 2]);
    let mut accepted = 0;
    for _ in 0..10 {
        if request_from(&app, &stranger, &address).await.status() == StatusCode::ACCEPTED {
            accepted += 1;
        }
    }
    assert_eq!(accepted, 2);
    expect_json(app.request_code(&address).await, StatusCode::ACCEPTED).await;
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
    expect_unauthorized(app.get("/cart", Some(&user.token)).await).await;
    let listed = expect_json(app.get("/sessions", Some(&second)).await, StatusCode::OK).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1));

    let third = app.sign_in_by_code(&user).await;
    let everywhere = delete(&app, "/sessions", &third).await;
    assert_eq!(everywhere.status(), StatusCode::NO_CONTENT);
    for token in [&second, &third] {
        expect_unauthorized(app.get("/cart", Some(token)).await).await;
    }
    expect_json(
        app.get("/cart", Some(&stranger.token)).await,
        StatusCode::OK,
    )
    .await;
}

/// Lists `n` sessions of `list` that expired (a list keeps them until it is read): a long list
/// makes signing out everywhere read and decode more.
async fn list_expired_sessions(app: &TestApp, list: &str, n: usize) {
    let mut hset = redis::cmd("HSET");
    hset.arg(list);
    for i in 0..n {
        let stored = json!({
            "created_at": "2026-01-01T00:00:00Z",
            "digest": format!("{i:0>43}"),
            "address": null,
            "user_agent": null,
        });
        hset.arg(format!("m:expired{i}")).arg(stored.to_string());
    }
    let () = redis::pipe()
        .add_command(hset)
        .ignore()
        .cmd("EXPIRE")
        .arg(list)
        .arg(600)
        .ignore()
        .query_async(&mut app.redis.clone())
        .await
        .expect("listed");
}

/// Sign-ins racing "sign out everywhere". The sign-out read the session list, then deleted what
/// it had read: a session written between the two lost its entry in the list but lived on,
/// renewed by every use, and no later sign-out could find it. So: one shopper signs in again
/// and again while she signs out everywhere, round after round (with a long list, which made
/// that gap wider); then, with the sign-ins over, one more sign-out everywhere must end every
/// session she ever had.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_everywhere_leaves_no_session_behind_during_sign_ins() {
    const ROUNDS: usize = 40;
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let list = shop_infra::Keys::new(&app.settings.redis_key_prefix).user_sessions(user.id);
    let tokens = Mutex::new(vec![user.token.clone()]);
    let stop = AtomicBool::new(false);
    let signing_in = async {
        while !stop.load(Ordering::Relaxed) {
            let token = app.sign_in_by_code(&user).await;
            tokens.lock().expect("tokens").push(token);
        }
    };
    let signing_out = async {
        let mut used = 0;
        for _ in 0..ROUNDS {
            list_expired_sessions(&app, &list, 2000).await;
            loop {
                let newest = {
                    let tokens = tokens.lock().expect("tokens");
                    tokens
                        .last()
                        .filter(|_| tokens.len() > used)
                        .map(|token| (tokens.len(), token.clone()))
                };
                let Some((count, token)) = newest else {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    continue;
                };
                used = count;
                match delete(&app, "/sessions", &token).await.status() {
                    StatusCode::NO_CONTENT => break,
                    // A sign-out before ended it: take a newer one.
                    StatusCode::UNAUTHORIZED => {}
                    other => panic!("signing out everywhere answered {other}"),
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
    };
    tokio::join!(signing_in, signing_out);

    let tokens = tokens.into_inner().expect("tokens");
    let mut live = None;
    for token in &tokens {
        if app.get("/sessions", Some(token)).await.status() == StatusCode::OK {
            live = Some(token);
            break;
        }
    }
    if let Some(token) = live {
        let everywhere = delete(&app, "/sessions", token).await;
        assert_eq!(everywhere.status(), StatusCode::NO_CONTENT);
    }
    let mut survivors = 0;
    for token in &tokens {
        if app.get("/cart", Some(token)).await.status() != StatusCode::UNAUTHORIZED {
            survivors += 1;
        }
    }
    assert_eq!(
        survivors,
        0,
        "sessions that outlived signing out everywhere, of {}",
        tokens.len()
    );
}

#[tokio::test]
async fn wrong_codes_for_an_email_do_not_make_the_same_accounts_phone_wait() {
    // Counted per account, the email's wrong codes made the phone wait too: a stranger could
    // tell from one 429 that a leaked email and phone number belong to one shopper.
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    app.verify_phone(&user).await;
    let email = json!({ "email": user.email });
    let code = app.issue_code(user.id).await;
    five_wrong_codes(&app, &email, &code).await;
    retry_after(app.verify_code(&email, &code).await, "too_many_attempts").await;
    let phone = json!({ "phone_number": user.phone_number });
    expect_invalid_code(app.verify_code(&phone, "000000").await).await;
}

#[tokio::test]
async fn a_texted_code_does_not_sign_in_by_mail_nor_a_mailed_one_by_text() {
    // Unbound, a code texted to a phone proved the email when entered with it: a squatter's
    // number on an old account could prove the owner's address.
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    app.verify_phone(&user).await;
    let (email, phone) = (
        json!({ "email": user.email }),
        json!({ "phone_number": user.phone_number }),
    );
    let texted = app.issue_text_code(user.id).await;
    expect_invalid_code(app.verify_code(&email, &texted).await).await;
    expect_json(app.verify_code(&phone, &texted).await, StatusCode::CREATED).await;
    let mailed = app.issue_code(user.id).await;
    expect_invalid_code(app.verify_code(&phone, &mailed).await).await;
    expect_json(app.verify_code(&email, &mailed).await, StatusCode::CREATED).await;
}
