//! Registration, which proves the email before the account exists, and proven phone numbers
//! (issue 21). Codes are stored the way the notifier stores them
//! (`TestApp::issue_registration_code`, `TestApp::issue_phone_code`); the system tests mail them.

use crate::helpers::{
    answer, client_at, expect_invalid_code, expect_too_many_code_requests, expect_unauthorized,
    post_from, verify_from, with_send_budgets,
};
use reqwest::StatusCode;
use serde_json::{json, Value};
use shop_testkit::{
    eventually, expect_error, expect_json, other_than, unique_contact, TestApp, TestUser,
};
use std::time::Duration;

async fn accounts_with(app: &TestApp, email: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM users WHERE email = $1")
        .bind(email)
        .fetch_one(&app.db)
        .await
        .expect("count")
}

/// `POST /users/register` from `client`.
async fn register_from(
    app: &TestApp,
    client: &reqwest::Client,
    email: &str,
    phone: &str,
) -> reqwest::Response {
    let body = json!({ "email": email, "phone_number": phone });
    post_from(app, client, "/users/register", &body).await
}

async fn me(app: &TestApp, token: &str) -> Value {
    expect_json(app.get("/users/me", Some(token)).await, StatusCode::OK).await
}

/// The account of `token` claims `number`, and a code is texted to it to prove it (202).
async fn claim_phone(app: &TestApp, token: &str, number: &str) {
    expect_json(
        app.post(
            "/users/me/phone",
            Some(token),
            &json!({ "phone_number": number }),
        )
        .await,
        StatusCode::ACCEPTED,
    )
    .await;
}

#[tokio::test]
async fn registration_answers_202_and_its_code_makes_the_normalised_account() {
    let app = TestApp::spawn().await;
    let body = expect_json(
        app.register("  Ana.Lopez@Example.COM ", "+1 (415) 555-0100")
            .await,
        StatusCode::ACCEPTED,
    )
    .await;
    assert_eq!(
        body,
        json!({ "expires_in_secs": app.settings.sign_in_code_ttl.as_secs() })
    );
    assert_eq!(
        accounts_with(&app, "ana.lopez@example.com").await,
        0,
        "no account before the code"
    );
    let code = app.registration_code("ana.lopez@example.com").await;
    let address = json!({ "email": "Ana.Lopez@example.com" });
    let body = expect_json(app.verify_code(&address, &code).await, StatusCode::CREATED).await;
    let user = &body["user"];
    assert_eq!(user["email"], "ana.lopez@example.com");
    assert_eq!(user["phone_number"], "+14155550100");
    assert_eq!(user["email_verified"], true);
    assert_eq!(user["phone_verified"], false, "the phone is only claimed");
    assert_eq!(user["status"], "active");
    assert!(user["last_login_at"].is_string());
    let token = body["session_token"].as_str().expect("token");
    assert_eq!(token.len(), 43, "256 random bits, base64url");
    expect_json(app.get("/cart", Some(token)).await, StatusCode::OK).await;
    assert_eq!(&me(&app, token).await, user);
    // Used once.
    expect_invalid_code(app.verify_code(&address, &code).await).await;
    assert_eq!(accounts_with(&app, "ana.lopez@example.com").await, 1);
}

/// Registration is no oracle: an address (or phone number) with an account is answered exactly
/// as one without, and the answer comes before anything is looked up. (Before: 409
/// `email_taken` / `phone_number_taken`, as often as anyone asked.)
#[tokio::test]
async fn registering_addresses_that_have_an_account_is_answered_as_new_ones() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let (new_email, new_phone) = unique_contact();
    let (other_email, other_phone) = unique_contact();
    let fresh = answer(app.register(&new_email, &new_phone).await).await;
    assert_eq!(fresh.0, StatusCode::ACCEPTED, "{:?}", fresh.1);
    for (email, phone) in [
        (user.email.to_uppercase(), other_phone.as_str()),
        (other_email, user.phone_number.as_str()),
        (user.email.clone(), user.phone_number.as_str()),
    ] {
        assert_eq!(
            answer(app.register(&email, phone).await).await,
            fresh,
            "{email} {phone}"
        );
    }
}

/// A registration's code for an address that has an account signs in to that account, and
/// changes nothing else: the same answer as a new account's, and no second account.
#[tokio::test]
async fn a_registration_code_for_an_address_with_an_account_signs_in_to_it() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let (_, other_phone) = unique_contact();
    expect_json(
        app.register(&user.email, &other_phone).await,
        StatusCode::ACCEPTED,
    )
    .await;
    let code = app.registration_code(&user.email).await;
    let body = expect_json(
        app.verify_code(&json!({ "email": user.email }), &code)
            .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(body["user"]["id"], user.id);
    assert_eq!(body["user"]["phone_number"], user.phone_number.as_str());
    assert_eq!(accounts_with(&app, &user.email).await, 1);
    // Its email was proven already: the sessions it had go on.
    expect_json(app.get("/cart", Some(&user.token)).await, StatusCode::OK).await;
}

/// The account pre-hijacking of issue 21: a squatter registered the victim's email with his own
/// phone number, the owner's registration was refused (409), she signed in by mail into the
/// squatter's account, and he signed in to it by text message whenever he liked.
#[tokio::test]
async fn a_squatter_who_registers_someone_elses_email_gets_no_account_and_no_way_in() {
    let app = TestApp::spawn().await;
    let (victim, owner_phone) = unique_contact();
    let (_, squatter_phone) = unique_contact();
    let squatter = client_at([127, 0, 0, 2]);
    let squatted = answer(register_from(&app, &squatter, &victim, &squatter_phone).await).await;
    assert_eq!(squatted.0, StatusCode::ACCEPTED, "{:?}", squatted.1);
    assert_eq!(
        accounts_with(&app, &victim).await,
        0,
        "registering made no account"
    );
    let owned = answer(app.register(&victim, &owner_phone).await).await;
    assert_eq!(owned, squatted, "the owner is told nothing of the squatter");

    // Both registrations mail a code to the victim's address, the owner's last: the newer
    // replaces the older (and the squatter reads neither).
    let phones = app.queued_registrations(&victim, 2).await;
    assert_eq!(phones, [squatter_phone.as_str(), owner_phone.as_str()]);
    let squatters = app.issue_registration_code(&victim, &phones[0]).await;
    let owners = app.issue_registration_code(&victim, &phones[1]).await;
    let by_mail = json!({ "email": victim });
    if squatters != owners {
        expect_invalid_code(verify_from(&app, &squatter, &by_mail, &squatters).await).await;
    }
    let body = expect_json(
        app.verify_code(&by_mail, &owners).await,
        StatusCode::CREATED,
    )
    .await;
    let owner = &body["user"];
    assert_eq!(owner["email"], victim.as_str());
    assert_eq!(owner["email_verified"], true);
    assert_eq!(owner["phone_number"], owner_phone.as_str());
    assert_eq!(owner["phone_verified"], false);
    let owner_id = owner["id"].as_i64().expect("id");

    // The squatter cannot sign in by text message: his number is nobody's, and the owner's
    // unproven one signs nobody in. Each is answered as an unknown number, and a code does not
    // work with it even when the account has a live one.
    for phone in [&squatter_phone, &owner_phone] {
        let by_phone = json!({ "phone_number": phone });
        expect_json(app.request_code(&by_phone).await, StatusCode::ACCEPTED).await;
        let live = app.issue_code(owner_id).await;
        expect_invalid_code(app.verify_code(&by_phone, &live).await).await;
    }
    // Nor by mail: the code goes to the owner. Asked after the phones, the owner's code is
    // queued after theirs would have been; none was.
    expect_json(app.request_code(&by_mail).await, StatusCode::ACCEPTED).await;
    let db = &app.db;
    let channels = eventually(
        Duration::from_secs(10),
        "the owner's code queued",
        || async move {
            let channels: Vec<String> = sqlx::query_scalar(
                "SELECT channel FROM notifications WHERE kind = 'sign_in_code' ORDER BY id",
            )
            .fetch_all(db)
            .await
            .expect("rows");
            if channels.is_empty() {
                Err(channels)
            } else {
                Ok(channels)
            }
        },
    )
    .await;
    assert_eq!(
        channels,
        ["email"],
        "a code was texted to a number nobody proved"
    );
    expect_invalid_code(verify_from(&app, &squatter, &by_mail, "123456").await).await;
}

/// A squatter and the owner register one address at the same moment: two codes are mailed to
/// it (the newer replaces the older), and only the live one makes an account, once, however
/// many try it at once; later codes for the address sign in to that account.
#[tokio::test]
async fn racing_registrations_of_one_address_make_one_account_for_the_holder_of_its_code() {
    let app = TestApp::spawn().await;
    let (email, owner_phone) = unique_contact();
    let (_, squatter_phone) = unique_contact();
    let squatter = client_at([127, 0, 0, 2]);
    let (owned, squatted) = tokio::join!(
        app.register(&email, &owner_phone),
        register_from(&app, &squatter, &email, &squatter_phone)
    );
    let (owned, squatted) = (answer(owned).await, answer(squatted).await);
    assert_eq!(owned.0, StatusCode::ACCEPTED, "{:?}", owned.1);
    assert_eq!(owned, squatted);

    // The notifier mails both, in the order they were queued.
    let phones = app.queued_registrations(&email, 2).await;
    let older = app.issue_registration_code(&email, &phones[0]).await;
    let newer = app.issue_registration_code(&email, &phones[1]).await;
    let address = json!({ "email": email });
    let (a, b, c) = tokio::join!(
        verify_from(&app, &squatter, &address, &older),
        app.verify_code(&address, &newer),
        verify_from(&app, &squatter, &address, &newer),
    );
    let mut made = Vec::new();
    for response in [a, b, c] {
        match response.status() {
            StatusCode::CREATED => made.push(response.json::<Value>().await.expect("JSON")),
            _ => {
                expect_invalid_code(response).await;
            }
        }
    }
    assert_eq!(made.len(), 1, "{made:?}");
    assert_eq!(made[0]["user"]["phone_number"], phones[1].as_str());
    assert_eq!(accounts_with(&app, &email).await, 1);
    for code in [&older, &newer] {
        expect_invalid_code(app.verify_code(&address, code).await).await;
    }
    // A registration now mails a code that signs in to that account: never a second one.
    expect_json(
        register_from(&app, &squatter, &email, &squatter_phone).await,
        StatusCode::ACCEPTED,
    )
    .await;
    let phones = app.queued_registrations(&email, 3).await;
    let again = app.issue_registration_code(&email, &phones[2]).await;
    let body = expect_json(app.verify_code(&address, &again).await, StatusCode::CREATED).await;
    assert_eq!(body["user"]["id"], made[0]["user"]["id"]);
    assert_eq!(body["user"]["phone_number"], phones[1].as_str());
    assert_eq!(accounts_with(&app, &email).await, 1);
}

/// An account as the registration before this change made it, for the address `email` and the
/// number `phone`: the row, with both unproven (as migration 0014 leaves such rows), and the
/// session registration opened, which whoever registered holds. (The session is opened by a
/// sign-in while the row says its email is proven, since no proof-less way in is left.)
async fn legacy_account(app: &TestApp, email: &str, phone: &str) -> TestUser {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO users (email, phone_number, email_verified_at, last_login_at)
         VALUES ($1, $2, now(), now()) RETURNING id",
    )
    .bind(email)
    .bind(phone)
    .fetch_one(&app.db)
    .await
    .expect("user row");
    let mut user = TestUser {
        id,
        email: email.to_owned(),
        phone_number: phone.to_owned(),
        token: String::new(),
    };
    user.token = app.sign_in_by_code(&user).await;
    sqlx::query("UPDATE users SET email_verified_at = NULL WHERE id = $1")
        .bind(id)
        .execute(&app.db)
        .await
        .expect("unproven");
    user
}

/// Accounts made before registration asked for proof may be squatters'. The first proof of the
/// email, by a sign-in code or a registration's, ends every session issued before it and
/// detaches the unproven phone number: the squatter loses every way in, the owner gets the
/// account.
#[tokio::test]
async fn the_first_proof_of_a_legacy_accounts_email_ends_its_sessions_and_detaches_its_phone() {
    let app = TestApp::spawn().await;
    for by_registration in [false, true] {
        let (victim, squatter_phone) = unique_contact();
        let squatter = legacy_account(&app, &victim, &squatter_phone).await;
        let account = me(&app, &squatter.token).await;
        assert_eq!(
            (&account["email_verified"], &account["phone_verified"]),
            (&json!(false), &json!(false))
        );
        // Until then, the squatter's session works, but adds no way in: the phone cannot be
        // proven on an account whose email is not, and an unproven one signs nobody in.
        expect_json(
            app.get("/cart", Some(&squatter.token)).await,
            StatusCode::OK,
        )
        .await;
        expect_error(
            app.post("/users/me/phone", Some(&squatter.token), &json!({}))
                .await,
            StatusCode::FORBIDDEN,
            "email_unverified",
        )
        .await;
        let by_phone = json!({ "phone_number": squatter_phone });
        let live = app.issue_code(squatter.id).await;
        expect_invalid_code(app.verify_code(&by_phone, &live).await).await;

        // The owner proves the address: she signs in with a mailed code, or registers it.
        let code = if by_registration {
            let (_, owner_phone) = unique_contact();
            expect_json(
                app.register(&victim, &owner_phone).await,
                StatusCode::ACCEPTED,
            )
            .await;
            app.registration_code(&victim).await
        } else {
            expect_json(
                app.request_code(&json!({ "email": victim })).await,
                StatusCode::ACCEPTED,
            )
            .await;
            app.issue_code(squatter.id).await
        };
        let body = expect_json(
            app.verify_code(&json!({ "email": victim }), &code).await,
            StatusCode::CREATED,
        )
        .await;
        let owner = body["session_token"].as_str().expect("token").to_owned();
        assert_eq!(
            body["user"]["id"], squatter.id,
            "the owner gets the account"
        );
        assert_eq!(body["user"]["email_verified"], true);
        assert_eq!(body["user"]["phone_number"], Value::Null, "detached");
        assert_eq!(body["user"]["phone_verified"], false);
        let phone: Option<String> =
            sqlx::query_scalar("SELECT phone_number FROM users WHERE id = $1")
                .bind(squatter.id)
                .fetch_one(&app.db)
                .await
                .expect("row");
        assert_eq!(phone, None);

        // The session issued before the proof is dead; the owner's works.
        expect_unauthorized(app.get("/cart", Some(&squatter.token)).await).await;
        expect_json(app.get("/cart", Some(&owner)).await, StatusCode::OK).await;
        let live = app.issue_code(squatter.id).await;
        expect_invalid_code(app.verify_code(&by_phone, &live).await).await;
        // Only the first proof does this: signing in again ends nothing.
        let again = app
            .sign_in_by_code(&TestUser {
                token: owner.clone(),
                ..squatter
            })
            .await;
        for token in [&owner, &again] {
            expect_json(app.get("/cart", Some(token)).await, StatusCode::OK).await;
        }
    }
}

/// Only a proven number signs in. It is proven with a code texted to it; proving it on another
/// account (numbers are recycled) takes it from the first, and an unproven claim blocks nobody.
#[tokio::test]
async fn only_a_proven_phone_signs_in_and_the_latest_proof_takes_the_number() {
    let app = TestApp::spawn().await;
    let ana = app.new_user().await;
    let by_phone = json!({ "phone_number": ana.phone_number });
    // Unproven: answered as an unknown number, even with the account's live code.
    expect_json(app.request_code(&by_phone).await, StatusCode::ACCEPTED).await;
    let live = app.issue_code(ana.id).await;
    expect_invalid_code(app.verify_code(&by_phone, &live).await).await;

    // Ana asks for a code by text message for the number she claims.
    let body = expect_json(
        app.post("/users/me/phone", Some(&ana.token), &json!({}))
            .await,
        StatusCode::ACCEPTED,
    )
    .await;
    assert_eq!(
        body["expires_in_secs"],
        app.settings.sign_in_code_ttl.as_secs()
    );
    let queued: Vec<(String, String, Option<i64>, Option<String>)> = sqlx::query_as(
        "SELECT kind, channel, user_id, phone_number FROM notifications WHERE kind = 'phone_code'",
    )
    .fetch_all(&app.db)
    .await
    .expect("rows");
    assert_eq!(
        queued,
        [(
            "phone_code".to_owned(),
            "sms".to_owned(),
            Some(ana.id),
            Some(ana.phone_number.clone())
        )]
    );
    // Neither a wrong code nor her sign-in code proves it.
    let code = app.issue_phone_code(ana.id, &ana.phone_number).await;
    for wrong in [other_than(&code), live] {
        expect_invalid_code(app.verify_phone_code(&ana.token, &wrong).await).await;
    }
    let proven = expect_json(
        app.verify_phone_code(&ana.token, &code).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(proven["id"], ana.id);
    assert_eq!(proven["phone_verified"], true);
    let signed_in = |user: i64| {
        let app = &app;
        let by_phone = by_phone.clone();
        async move {
            let code = app.issue_text_code(user).await;
            app.verify_code(&by_phone, &code).await
        }
    };
    let body = expect_json(signed_in(ana.id).await, StatusCode::CREATED).await;
    assert_eq!(body["user"]["id"], ana.id);

    // Ben claims the number: an unproven claim takes nothing, and blocks nobody.
    let ben = app.new_user().await;
    claim_phone(&app, &ben.token, &ana.phone_number).await;
    let claimed = me(&app, &ben.token).await;
    assert_eq!(claimed["phone_number"], ana.phone_number.as_str());
    assert_eq!(claimed["phone_verified"], false);
    let body = expect_json(signed_in(ana.id).await, StatusCode::CREATED).await;
    assert_eq!(body["user"]["id"], ana.id, "still Ana's");

    // Ben proves it: it is his now, and Ana's claim is gone.
    let code = app.issue_phone_code(ben.id, &ana.phone_number).await;
    let proven = expect_json(
        app.verify_phone_code(&ben.token, &code).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(proven["phone_verified"], true);
    let anas = me(&app, &ana.token).await;
    assert_eq!(
        (&anas["phone_number"], &anas["phone_verified"]),
        (&Value::Null, &json!(false))
    );
    let body = expect_json(signed_in(ben.id).await, StatusCode::CREATED).await;
    assert_eq!(body["user"]["id"], ben.id);
    expect_invalid_code(signed_in(ana.id).await).await;
    expect_error(
        app.post(
            "/users/me/phone/verify",
            Some(&ana.token),
            &json!({ "code": "123456" }),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "phone_number_required",
    )
    .await;

    // A code texted to a number the account no longer claims proves nothing.
    let stale = app.issue_phone_code(ben.id, &ana.phone_number).await;
    let (_, other) = unique_contact();
    claim_phone(&app, &ben.token, &other).await;
    expect_invalid_code(app.verify_phone_code(&ben.token, &stale).await).await;
}

/// Two accounts prove one number at the same moment: one of them holds it.
#[tokio::test]
async fn two_accounts_proving_one_number_at_once_leave_it_with_one() {
    let app = TestApp::spawn().await;
    let (carl, dana) = (app.new_user().await, app.new_user().await);
    let (_, number) = unique_contact();
    for user in [&carl, &dana] {
        claim_phone(&app, &user.token, &number).await;
    }
    let (carls, danas) = (
        app.issue_phone_code(carl.id, &number).await,
        app.issue_phone_code(dana.id, &number).await,
    );
    let (a, b) = tokio::join!(
        app.verify_phone_code(&carl.token, &carls),
        app.verify_phone_code(&dana.token, &danas)
    );
    // The other's claim was dropped by the first proof: its code proves nothing (401), or, read
    // after that proof, it claims no number (422).
    let mut statuses = [a.status(), b.status()];
    statuses.sort();
    assert_eq!(statuses[0], StatusCode::OK, "{statuses:?}");
    assert!(
        [StatusCode::UNAUTHORIZED, StatusCode::UNPROCESSABLE_ENTITY].contains(&statuses[1]),
        "{statuses:?}"
    );
    let holders: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM users WHERE phone_number = $1 AND phone_verified_at IS NOT NULL",
    )
    .bind(&number)
    .fetch_one(&app.db)
    .await
    .expect("count");
    assert_eq!(holders, 1);
}

#[tokio::test]
async fn registrations_spend_the_code_budgets_of_sign_in() {
    let app = with_send_budgets(2, 3).await;
    let (email, phone) = unique_contact();
    for _ in 0..2 {
        expect_json(app.register(&email, &phone).await, StatusCode::ACCEPTED).await;
    }
    // The address's budget is shared with sign-in codes.
    for response in [
        app.register(&email, &phone).await,
        app.request_code(&json!({ "email": email })).await,
    ] {
        expect_too_many_code_requests(response).await;
    }
    // The refused requests spent nothing: this client's third is accepted, its fourth not.
    let (other, other_phone) = unique_contact();
    expect_json(
        app.register(&other, &other_phone).await,
        StatusCode::ACCEPTED,
    )
    .await;
    let (status, body, _) = answer(app.register(&other, &other_phone).await).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
}

#[tokio::test]
async fn session_tokens_are_stored_hashed_with_a_ttl() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let mut conn = app.redis.clone();
    let keys: Vec<Vec<u8>> = redis::cmd("KEYS")
        .arg(format!("{}s:*", app.settings.redis_key_prefix))
        .query_async(&mut conn)
        .await
        .expect("keys");
    assert_eq!(keys.len(), 1);
    let key = &keys[0];
    assert!(
        !key.windows(user.token.len())
            .any(|w| w == user.token.as_bytes()),
        "the raw token must not be a Redis key"
    );
    let ttl: i64 = redis::cmd("TTL")
        .arg(key)
        .query_async(&mut conn)
        .await
        .expect("ttl");
    assert!(
        ttl > 0 && ttl <= app.settings.session_ttl.as_secs() as i64,
        "ttl {ttl}"
    );
}

#[tokio::test]
async fn invalid_contacts_are_unprocessable() {
    let app = TestApp::spawn().await;
    expect_error(
        app.register("not-an-email", "+14155550100").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_email",
    )
    .await;
    expect_error(
        app.register("a@example.com", "4155550100").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_phone_number",
    )
    .await;
}

#[tokio::test]
async fn malformed_bodies_get_precise_json_errors() {
    let app = TestApp::spawn().await;
    let send = |body: String, content_type: &'static str| {
        app.client
            .post(app.url("/users/register"))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let response = send("{\"email\":".into(), "application/json")
        .await
        .expect("sent");
    expect_error(response, StatusCode::BAD_REQUEST, "malformed_json").await;
    let response = send("{\"email\":\"a@example.com\"}".into(), "application/json")
        .await
        .expect("sent");
    expect_error(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body").await;
    let response = send(
        "{\"email\":3,\"phone_number\":[]}".into(),
        "application/json",
    )
    .await
    .expect("sent");
    expect_error(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body").await;
    let response = send("email=a".into(), "text/plain").await.expect("sent");
    expect_error(
        response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let huge = format!(
        "{{\"email\":\"{}\"}}",
        "a".repeat(app.settings.max_body_bytes + 1)
    );
    let response = send(huge, "application/json").await.expect("sent");
    expect_error(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
}

#[tokio::test]
async fn sign_out_revokes_the_token() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let response = app.sign_out(&user.token).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    expect_unauthorized(app.get("/cart", Some(&user.token)).await).await;
}

#[tokio::test]
async fn missing_malformed_or_unknown_tokens_are_unauthorized() {
    let app = TestApp::spawn().await;
    let response = app.get("/cart", None).await;
    assert_eq!(
        response
            .headers()
            .get("www-authenticate")
            .map(|v| v.as_bytes()),
        Some(&b"Bearer"[..])
    );
    expect_unauthorized(response).await;
    expect_unauthorized(app.get("/cart", Some("short")).await).await;
    let unknown = "A".repeat(43);
    expect_unauthorized(app.get("/cart", Some(&unknown)).await).await;
    let body = json!({"product_id": 1, "quantity": 1});
    expect_error(
        app.post("/cart/add", Some(&unknown), &body).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    for path in ["/users/me", "/users/me/phone", "/users/me/phone/verify"] {
        let response = if path == "/users/me" {
            app.get(path, Some(&unknown)).await
        } else {
            app.post(path, Some(&unknown), &json!({ "code": "123456" }))
                .await
        };
        expect_unauthorized(response).await;
    }
}

#[tokio::test]
async fn wrong_codes_for_a_number_count_against_the_number_whoever_claims_it() {
    // Counted per claiming account, each account a stranger holds got five fresh guesses at
    // someone else's proven number, and could take it over.
    let app = TestApp::spawn().await;
    let owner = app.new_user().await;
    app.verify_phone(&owner).await;
    let first = app.new_user().await;
    claim_phone(&app, &first.token, &owner.phone_number).await;
    for _ in 0..5 {
        expect_invalid_code(app.verify_phone_code(&first.token, "000000").await).await;
    }
    let second = app.new_user().await;
    claim_phone(&app, &second.token, &owner.phone_number).await;
    expect_error(
        app.verify_phone_code(&second.token, "000000").await,
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_attempts",
    )
    .await;
}
