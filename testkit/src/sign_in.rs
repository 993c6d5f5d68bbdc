//! [`TestApp`]'s methods for registration and sign-in: the endpoints, and the codes stored
//! exactly as the notifier stores them, so that the API's tests need no mail.

use crate::{
    app::{TestApp, TestUser},
    contact::{client_of_its_own, unique_contact},
    expect::{expect_error, expect_json},
    poll::eventually,
};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use shop_infra::{notifications::Kind, sign_in::Holder};
use std::time::Duration;

impl TestApp {
    /// `POST /users/register`: 202 whatever the addresses; the code is queued after the answer.
    pub async fn register(&self, email: &str, phone: &str) -> Response {
        self.post(
            "/users/register",
            None,
            &json!({ "email": email, "phone_number": phone }),
        )
        .await
    }

    /// The phone number of each registration queued for `email` (normalised), oldest first,
    /// once at least `count` are: the API queues them after answering.
    pub async fn queued_registrations(&self, email: &str, count: usize) -> Vec<String> {
        let what = format!("registrations queued for {email} (wanted {count})");
        eventually(Duration::from_secs(10), &what, || async move {
            let phones: Vec<String> = sqlx::query_scalar(
                "SELECT phone_number FROM notifications WHERE kind = $1 AND email = $2 ORDER BY id",
            )
            .bind(Kind::RegistrationCode.as_str())
            .bind(email)
            .fetch_all(&self.db)
            .await
            .expect("queued registrations");
            if phones.len() >= count {
                Ok(phones)
            } else {
                Err(phones.len())
            }
        })
        .await
    }

    /// Makes and stores the code of a registration of `email` claiming `phone`, exactly as the
    /// notifier does when it sends one, and returns it: a code that signs in to the active
    /// account the address has, if it has one, else one that makes the account and carries the
    /// phone number.
    pub async fn issue_registration_code(&self, email: &str, phone: &str) -> String {
        let account: Option<i64> =
            sqlx::query_scalar("SELECT id FROM users WHERE email = $1 AND status = 'active'")
                .bind(email)
                .fetch_optional(&self.db)
                .await
                .expect("account lookup");
        let (holder, carries) = match account {
            Some(user) => (Holder::Account(user), &b""[..]),
            None => (
                Holder::Registration(shop_infra::sign_in::email_digest(email)),
                phone.as_bytes(),
            ),
        };
        self.issue(&holder, carries).await
    }

    /// The code the newest registration queued for `email` mails (see
    /// [`TestApp::issue_registration_code`]), once the API has queued it.
    pub async fn registration_code(&self, email: &str) -> String {
        let phones = self.queued_registrations(email, 1).await;
        let phone = phones.last().expect("a registration");
        self.issue_registration_code(email, phone).await
    }

    /// Stores a fresh code proving that `user_id` holds `number`, exactly as the notifier does
    /// before texting it, and returns it.
    pub async fn issue_phone_code(&self, user_id: i64, number: &str) -> String {
        let holder = Holder::Phone {
            user: user_id,
            number: number.to_owned(),
        };
        self.issue(&holder, &[]).await
    }

    /// `POST /users/me/phone/verify` with `code` and `token`.
    pub async fn verify_phone_code(&self, token: &str, code: &str) -> Response {
        self.post(
            "/users/me/phone/verify",
            Some(token),
            &json!({ "code": code }),
        )
        .await
    }

    /// Proves `user`'s phone number with the code texted to it (see
    /// [`TestApp::issue_phone_code`]) and returns the account: the number then signs in.
    pub async fn verify_phone(&self, user: &TestUser) -> Value {
        let code = self.issue_phone_code(user.id, &user.phone_number).await;
        let body = expect_json(
            self.verify_phone_code(&user.token, &code).await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(body["phone_verified"], true, "{body}");
        body
    }

    async fn issue(&self, holder: &Holder, carries: &[u8]) -> String {
        shop_infra::sign_in::issue(
            &self.redis,
            &shop_infra::Keys::new(&self.settings.redis_key_prefix),
            &self.settings.sign_in_code_key,
            holder,
            carries,
            self.settings.sign_in_code_ttl,
        )
        .await
        .expect("code stored")
    }

    /// `POST /sessions`: asks for a sign-in code; `address` is `{"email": …}` or
    /// `{"phone_number": …}`.
    pub async fn request_code(&self, address: &Value) -> Response {
        self.post("/sessions", None, address).await
    }

    /// `POST /sessions/verify` with `address` and `code`.
    pub async fn verify_code(&self, address: &Value, code: &str) -> Response {
        let mut body = address.clone();
        body["code"] = json!(code);
        self.post("/sessions/verify", None, &body).await
    }

    /// Stores a fresh sign-in code for `user_id` exactly as the notifier does before sending it,
    /// and returns it: for tests of the API alone. The system tests read codes from a real mail
    /// sink instead.
    pub async fn issue_code(&self, user_id: i64) -> String {
        self.issue(&Holder::Account(user_id), &[]).await
    }

    /// [`TestApp::issue_code`] for a code texted to the account's proven phone number.
    pub async fn issue_text_code(&self, user_id: i64) -> String {
        self.issue(&Holder::AccountByText(user_id), &[]).await
    }

    /// Signs `user` in by a code (see [`TestApp::issue_code`]) and returns the new token.
    pub async fn sign_in_by_code(&self, user: &TestUser) -> String {
        let code = self.issue_code(user.id).await;
        let body = expect_json(
            self.verify_code(&json!({ "email": user.email }), &code)
                .await,
            StatusCode::CREATED,
        )
        .await;
        body["session_token"].as_str().expect("token").to_owned()
    }

    /// `DELETE /sessions/current` with `token`.
    pub async fn sign_out(&self, token: &str) -> Response {
        self.client
            .delete(self.url("/sessions/current"))
            .bearer_auth(token)
            .send()
            .await
            .expect("request sent")
    }

    /// Registers a new user as a shopper does, from a client address of its own
    /// ([`client_of_its_own`]): `POST /users/register`, the code the registration mails (see
    /// [`TestApp::issue_registration_code`]), `POST /sessions/verify`. Returns it with its
    /// session token; its email is proven, its phone number claimed but not
    /// ([`TestApp::verify_phone`] proves it).
    pub async fn new_user(&self) -> TestUser {
        let (email, phone_number) = unique_contact();
        let client = client_of_its_own();
        let registered = client
            .post(self.url("/users/register"))
            .json(&json!({ "email": email, "phone_number": phone_number }))
            .send()
            .await
            .expect("request sent");
        expect_json(registered, StatusCode::ACCEPTED).await;
        self.queued_registrations(&email, 1).await;
        // Off the queue: a notifier running beside the API (the system tests') would send a
        // code of its own, replacing this test's.
        sqlx::query("DELETE FROM notifications WHERE kind = $1 AND email = $2")
            .bind(Kind::RegistrationCode.as_str())
            .bind(&email)
            .execute(&self.db)
            .await
            .expect("registration dequeued");
        for _ in 0..5 {
            let code = self.issue_registration_code(&email, &phone_number).await;
            let verified = client
                .post(self.url("/sessions/verify"))
                .json(&json!({ "email": email, "code": code }))
                .send()
                .await
                .expect("request sent");
            if verified.status() == StatusCode::CREATED {
                let body: Value = verified.json().await.expect("JSON body");
                return TestUser {
                    id: body["user"]["id"].as_i64().expect("user id"),
                    email,
                    phone_number,
                    token: body["session_token"].as_str().expect("token").to_owned(),
                };
            }
            // A notifier took the message before it left the queue, and stored its own code
            // since: store this one again.
            expect_error(verified, StatusCode::UNAUTHORIZED, "invalid_code").await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the registration of {email} was never verified");
    }
}
