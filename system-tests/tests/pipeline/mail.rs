//! Sign-in codes and order mails through the notifier, against a real SMTP server (the mail
//! sink, a process of each test's own) and a stub text-message gateway.

use crate::{buyer, product};
use axum::{extract::State, http::HeaderMap, routing::post, Json, Router};
use checkout_worker::config::WorkerSettings;
use rdkafka::{
    producer::{FutureProducer, FutureRecord},
    util::Timeout,
};
use reqwest::StatusCode;
use serde_json::{json, Value};
use shop_domain::{messages::OrderEvent, OrderId, UserId};
use shop_infra::notifications::{Kind, Status};
use shop_testkit::{
    code_in, eventually, expect_error, expect_json, MailSink, RunningWorker, TestApp,
};
use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

const WITHIN: Duration = Duration::from_secs(60);

/// Notifier settings for tests: this sink, and retries in milliseconds, not minutes.
pub fn mail_to(sink: &MailSink) -> impl FnOnce(&mut WorkerSettings) + '_ {
    move |settings| {
        settings.notifier_enabled = true;
        settings.notifier.smtp_url = sink.smtp_url();
        settings.notifier.retry_base = Duration::from_millis(100);
        settings.notifier.retry_max = Duration::from_millis(400);
        settings.notifier.idle_poll = Duration::from_millis(200);
        settings.notifier.fetch_wait = Duration::from_millis(200);
        settings.notifier.events_look = Duration::from_millis(500);
        settings.notifier.send_timeout = Duration::from_secs(3);
        settings.notifier.max_attempts = 1000;
    }
}

async fn signed_in_by(app: &TestApp, address: &Value, code: &str) -> String {
    let body = expect_json(app.verify_code(address, code).await, StatusCode::CREATED).await;
    body["session_token"].as_str().expect("token").to_owned()
}

/// Where the development setup mails a text message for `phone` (no gateway configured).
fn texted(phone: &str) -> String {
    format!("{}@sms.shop.localhost", phone.trim_start_matches('+'))
}

/// A shopper registers with the code mailed to her, proves her phone number with the code texted
/// to it, then signs in by mail or by text message.
#[tokio::test]
async fn a_shopper_registers_and_signs_in_with_the_codes_from_the_mail_and_the_text() {
    // Six codes asked for from this one client address: more than a stranger may ask for.
    let app = TestApp::spawn_configured(|s| s.sign_in_sends_per_ip = 20).await;
    let sink = MailSink::start();
    let worker = app.spawn_worker_with(mail_to(&sink)).await;
    let (email, phone) = shop_testkit::unique_contact();

    // Registration: no account until the mailed code is entered.
    expect_json(app.register(&email, &phone).await, StatusCode::ACCEPTED).await;
    let mails = sink.wait_for(&email, 1, WITHIN).await;
    let subject = mails[0]["subject"].as_str().expect("subject");
    let code = code_in(&mails[0]);
    assert!(
        subject.contains("registration code") && !subject.contains(&code),
        "{subject}"
    );
    let by_mail = json!({ "email": email });
    let body = expect_json(app.verify_code(&by_mail, &code).await, StatusCode::CREATED).await;
    assert_eq!(body["user"]["email_verified"], true);
    assert_eq!(body["user"]["phone_verified"], false);
    let token = body["session_token"].as_str().expect("token").to_owned();

    // Sign-in by mail.
    expect_json(app.request_code(&by_mail).await, StatusCode::ACCEPTED).await;
    let mails = sink.wait_for_about(&email, "sign-in code", 1, WITHIN).await;
    let code = code_in(&mails[0]);
    // The code is in the body only: subjects show on lock screens and in mail logs.
    let subject = mails[0]["subject"].as_str().expect("subject");
    assert!(!subject.contains(&code), "{subject}");
    let signed_in = signed_in_by(&app, &by_mail, &code).await;
    expect_json(app.get("/cart", Some(&signed_in)).await, StatusCode::OK).await;
    expect_error(
        app.verify_code(&by_mail, &code).await,
        StatusCode::UNAUTHORIZED,
        "invalid_code",
    )
    .await;

    // The phone proven by the code texted to it (without a gateway, texts land in the same
    // sink); then it signs in.
    expect_json(
        app.post("/users/me/phone", Some(&token), &json!({})).await,
        StatusCode::ACCEPTED,
    )
    .await;
    let texts = sink.wait_for(&texted(&phone), 1, WITHIN).await;
    let proven = expect_json(
        app.verify_phone_code(&token, &code_in(&texts[0])).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(proven["phone_verified"], true);
    let by_text = json!({ "phone_number": phone });
    expect_json(app.request_code(&by_text).await, StatusCode::ACCEPTED).await;
    let texts = sink.wait_for(&texted(&phone), 2, WITHIN).await;
    // A texted code is bound to its channel: entered with the email, it proves nothing.
    expect_error(
        app.verify_code(&by_mail, &code_in(&texts[1])).await,
        StatusCode::UNAUTHORIZED,
        "invalid_code",
    )
    .await;
    signed_in_by(&app, &by_text, &code_in(&texts[1])).await;
    // The addresses a registration or a phone code named are not kept once it is sent.
    let db = &app.db;
    eventually(WITHIN, "no row keeping addresses", || async move {
        let kept: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM notifications WHERE email IS NOT NULL OR phone_number IS NOT NULL",
        )
        .fetch_one(db)
        .await
        .expect("count");
        if kept == 0 {
            Ok(())
        } else {
            Err(kept)
        }
    })
    .await;

    // Nothing is sent for an address no account has.
    let (nobody, _) = shop_testkit::unique_contact();
    expect_json(
        app.request_code(&json!({ "email": nobody })).await,
        StatusCode::ACCEPTED,
    )
    .await;
    // A known address asked after it is mailed; by then the unknown one would have been too.
    expect_json(app.request_code(&by_mail).await, StatusCode::ACCEPTED).await;
    sink.wait_for_about(&email, "sign-in code", 2, WITHIN).await;
    assert!(sink.messages(&nobody).await.is_empty());
    worker.stop().await;
}

/// Issue 21's squatter, against the real notifier: he registers the victim's email with his own
/// phone number, then she registers it. Both codes go to her mailbox and nothing to his phone;
/// hers (the newer) makes her account, with her phone claimed and unproven; his number, asked
/// for a sign-in code, is sent nothing.
#[tokio::test]
async fn a_squatters_registration_mails_the_owner_and_texts_the_squatter_nothing() {
    // The squatter and the owner ask from one client address here.
    let app = TestApp::spawn_configured(|s| s.sign_in_sends_per_ip = 20).await;
    let sink = MailSink::start();
    let worker = app.spawn_worker_with(mail_to(&sink)).await;
    let (victim, owner_phone) = shop_testkit::unique_contact();
    let (_, squatter_phone) = shop_testkit::unique_contact();
    expect_json(
        app.register(&victim, &squatter_phone).await,
        StatusCode::ACCEPTED,
    )
    .await;
    sink.wait_for(&victim, 1, WITHIN).await;
    expect_json(
        app.register(&victim, &owner_phone).await,
        StatusCode::ACCEPTED,
    )
    .await;
    let mails = sink.wait_for(&victim, 2, WITHIN).await;
    let (older, newer) = (code_in(&mails[0]), code_in(&mails[1]));
    let by_mail = json!({ "email": victim });
    if older != newer {
        expect_error(
            app.verify_code(&by_mail, &older).await,
            StatusCode::UNAUTHORIZED,
            "invalid_code",
        )
        .await;
    }
    let body = expect_json(app.verify_code(&by_mail, &newer).await, StatusCode::CREATED).await;
    assert_eq!(body["user"]["phone_number"], owner_phone.as_str());
    assert_eq!(body["user"]["phone_verified"], false);

    for phone in [&squatter_phone, &owner_phone] {
        expect_json(
            app.request_code(&json!({ "phone_number": phone })).await,
            StatusCode::ACCEPTED,
        )
        .await;
    }
    // Asked after the phones, the owner's sign-in code arrives after theirs would have.
    expect_json(app.request_code(&by_mail).await, StatusCode::ACCEPTED).await;
    sink.wait_for_about(&victim, "sign-in code", 1, WITHIN)
        .await;
    for phone in [&squatter_phone, &owner_phone] {
        assert!(
            sink.messages(&texted(phone)).await.is_empty(),
            "a code was texted to {phone}"
        );
    }
    worker.stop().await;
}

type Received = Arc<Mutex<Vec<(Option<String>, Value)>>>;

async fn gateway(
    State(received): State<Received>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> StatusCode {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    received.lock().expect("lock").push((auth, body));
    StatusCode::ACCEPTED
}

#[tokio::test]
async fn texts_go_through_the_http_gateway_with_its_credential() {
    let app = TestApp::spawn().await;
    let received: Received = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://{}/messages",
        listener.local_addr().expect("address")
    );
    let stub = Router::new()
        .route("/messages", post(gateway))
        .with_state(received.clone());
    tokio::spawn(async move { axum::serve(listener, stub).await });
    let sink = MailSink::start();
    // Registered before a notifier runs: its registration is mailed nothing.
    let user = app.new_user().await;
    let worker = app
        .spawn_worker_with(|settings| {
            mail_to(&sink)(settings);
            settings.notifier.sms_gateway_url = url;
            settings.notifier.sms_gateway_token = "gateway-secret".to_owned();
        })
        .await;
    // The n-th text the gateway got.
    let nth = |n: usize| {
        let received = received.clone();
        async move {
            let what = format!("text {n} at the gateway");
            eventually(WITHIN, &what, || {
                let text = received.lock().expect("lock").get(n).cloned();
                async move { text.ok_or("not there") }
            })
            .await
        }
    };
    // The code that proves the number, then a sign-in code: both by the gateway.
    expect_json(
        app.post("/users/me/phone", Some(&user.token), &json!({}))
            .await,
        StatusCode::ACCEPTED,
    )
    .await;
    let (auth, body) = nth(0).await;
    assert_eq!(auth.as_deref(), Some("Bearer gateway-secret"));
    assert_eq!(body["to"], user.phone_number);
    let code = code_in(&json!({ "text": body["body"] }));
    expect_json(
        app.verify_phone_code(&user.token, &code).await,
        StatusCode::OK,
    )
    .await;
    let by_text = json!({ "phone_number": user.phone_number });
    expect_json(app.request_code(&by_text).await, StatusCode::ACCEPTED).await;
    let (auth, body) = nth(1).await;
    assert_eq!(auth.as_deref(), Some("Bearer gateway-secret"));
    assert_eq!(body["to"], user.phone_number);
    let token = signed_in_by(&app, &by_text, &code_in(&json!({ "text": body["body"] }))).await;
    expect_json(app.get("/cart", Some(&token)).await, StatusCode::OK).await;
    assert!(sink.messages("").await.is_empty(), "a text went by mail");
    worker.stop().await;
}

/// Checks out one order for a new buyer and waits until it is decided; returns the buyer's
/// email, the order id and the buyer's id.
async fn decided_order(app: &TestApp, product: i64) -> (String, String, i64) {
    let shopper = buyer(app, &[(product, 1)]).await;
    let order = app.checkout_accepted(&shopper.token).await;
    app.wait_for_terminal(&shopper.token, &order, WITHIN).await;
    (shopper.email, order, shopper.id)
}

/// Waits until the notifier has read the order events up to their end.
async fn wait_until_read(app: &TestApp) {
    let topic = app.worker_settings().kafka.order_events_topic;
    let consumer: rdkafka::consumer::BaseConsumer = app
        .worker_settings()
        .kafka
        .client_config()
        .create()
        .expect("consumer");
    let (topic, consumer) = (&topic, &consumer);
    eventually(WITHIN, "the notifier caught up", || async move {
        let mut behind = Vec::new();
        for partition in 0..app.worker_settings().kafka.order_events_partitions {
            let (_, high) = rdkafka::consumer::Consumer::fetch_watermarks(
                consumer,
                topic,
                partition,
                Duration::from_secs(5),
            )
            .expect("watermarks");
            let next: Option<i64> = sqlx::query_scalar(
                "SELECT next_offset FROM notifier_positions WHERE topic = $1 AND partition = $2",
            )
            .bind(topic)
            .bind(partition)
            .fetch_optional(&app.db)
            .await
            .expect("position");
            if next.unwrap_or(0) < high {
                behind.push(partition);
            }
        }
        if behind.is_empty() {
            Ok(())
        } else {
            Err(behind)
        }
    })
    .await;
}

#[tokio::test]
async fn an_order_mail_is_sent_once_under_redelivery_and_after_a_notifier_restart() {
    let app = TestApp::spawn().await;
    let sink = MailSink::start();
    let seller = app.new_user().await;
    let id = product(&app, &seller, 10).await;
    let binary = env!("CARGO_BIN_EXE_checkout-worker-under-test");
    let env = [
        ("WORKER_NOTIFIER", "true".to_owned()),
        ("SMTP_URL", sink.smtp_url()),
        ("NOTIFY_IDLE_POLL_MS", "200".to_owned()),
        ("NOTIFY_FETCH_WAIT_MS", "200".to_owned()),
        // The redelivered event below is produced unannounced: the notifier finds it by looking.
        ("NOTIFY_EVENTS_LOOK_MS", "500".to_owned()),
    ];
    let mut worker = app.spawn_worker_process_with(binary, &env);
    let (email, order, user) = decided_order(&app, id).await;
    // (A buyer registered beside a running notifier may also be mailed her registration's code.)
    let mails = sink.wait_for_about(&email, "Order ", 1, WITHIN).await;
    assert!(mails[0]["subject"]
        .as_str()
        .is_some_and(|s| s.contains(&order) && s.contains("confirmed")));

    // Kafka delivers the event again (as a relay that crashed after producing would).
    let producer: FutureProducer = app
        .worker_settings()
        .kafka
        .client_config()
        .create()
        .expect("producer");
    let event = OrderEvent::confirmed(
        OrderId::from_uuid(order.parse().expect("uuid")),
        UserId::new(user).expect("user id"),
        0,
    );
    producer
        .send(
            FutureRecord::to(&app.worker_settings().kafka.order_events_topic)
                .key(&order)
                .payload(&serde_json::to_vec(&event).expect("json")),
            Timeout::After(Duration::from_secs(10)),
        )
        .await
        .expect("produced");
    wait_until_read(&app).await;

    // Killed, and restarted with no record of how far it had read: it reads everything again.
    worker.kill();
    sqlx::query("DELETE FROM notifier_positions")
        .execute(&app.db)
        .await
        .expect("positions forgotten");
    let worker = app.spawn_worker_process_with(binary, &env);
    let (second_email, _, _) = decided_order(&app, id).await;
    sink.wait_for_about(&second_email, "Order ", 1, WITHIN)
        .await;
    wait_until_read(&app).await;
    assert_eq!(
        sink.messages_about(&email, "Order ").await.len(),
        1,
        "the first order's mail was sent again"
    );
    drop(worker);
}

#[tokio::test]
async fn a_message_held_by_a_notifier_that_died_is_sent_when_its_claim_lapses() {
    let app = TestApp::spawn().await;
    let sink = MailSink::start();
    let user = app.new_user().await;
    // What a notifier killed between taking a sign-in message and sending it leaves behind.
    let held_until: chrono::DateTime<chrono::Utc> = sqlx::query_scalar(
        "INSERT INTO notifications (event_id, kind, channel, user_id, attempts, next_attempt_at)
         VALUES ('sign-in/held', 'sign_in_code', 'email', $1, 1, now() + interval '2 seconds')
         RETURNING next_attempt_at",
    )
    .bind(user.id)
    .fetch_one(&app.db)
    .await
    .expect("held row");
    let worker = app.spawn_worker_with(mail_to(&sink)).await;
    let mails = sink.wait_for(&user.email, 1, WITHIN).await;
    let db = &app.db;
    let sent_at = eventually(WITHIN, "the message marked sent", || async move {
        let sent_at: Option<chrono::DateTime<chrono::Utc>> =
            sqlx::query_scalar("SELECT sent_at FROM notifications")
                .fetch_one(db)
                .await
                .expect("row");
        sent_at.ok_or("not sent")
    })
    .await;
    assert!(sent_at >= held_until, "sent while another notifier held it");
    signed_in_by(&app, &json!({ "email": user.email }), &code_in(&mails[0])).await;
    worker.stop().await;
}

async fn statuses(app: &TestApp) -> Vec<(String, i32)> {
    sqlx::query_as("SELECT status, attempts FROM notifications ORDER BY id")
        .fetch_all(&app.db)
        .await
        .expect("rows")
}

#[tokio::test]
async fn with_the_mail_server_down_mail_waits_and_then_arrives_once() {
    let app = TestApp::spawn().await;
    let mut sink = MailSink::start();
    let seller = app.new_user().await;
    let id = product(&app, &seller, 10).await;
    let worker: RunningWorker = app.spawn_worker_with(mail_to(&sink)).await;
    sink.stop();
    let mut orders = Vec::new();
    for _ in 0..3 {
        orders.push(decided_order(&app, id).await);
    }
    // Every mail failed at least once and none was given up.
    let app_ref = &app;
    let rows = eventually(WITHIN, "every mail failed twice", || async move {
        let rows = statuses(app_ref).await;
        if rows.len() == 3 && rows.iter().all(|(_, attempts)| *attempts >= 2) {
            Ok(rows)
        } else {
            Err(rows)
        }
    })
    .await;
    assert!(
        rows.iter()
            .all(|(status, _)| status == Status::Pending.as_str()),
        "{rows:?}"
    );
    sink.restart();
    for (email, order, _) in &orders {
        let mails = sink.wait_for(email, 1, WITHIN).await;
        assert!(mails[0]["subject"]
            .as_str()
            .is_some_and(|s| s.contains(order.as_str())));
    }
    eventually(WITHIN, "every row marked sent", || async move {
        let rows = statuses(app_ref).await;
        if rows
            .iter()
            .all(|(status, _)| status == Status::Sent.as_str())
        {
            Ok(())
        } else {
            Err(rows)
        }
    })
    .await;
    for (email, _, _) in &orders {
        assert_eq!(sink.messages(email).await.len(), 1, "{email} mailed twice");
    }
    worker.stop().await;
}

#[tokio::test]
async fn a_message_that_keeps_failing_is_parked() {
    let app = TestApp::spawn().await;
    let mut sink = MailSink::start();
    sink.stop();
    let worker = app
        .spawn_worker_with(|settings| {
            mail_to(&sink)(settings);
            settings.notifier.max_attempts = 2;
        })
        .await;
    let user = app.new_user().await;
    expect_json(
        app.request_code(&json!({ "email": user.email })).await,
        StatusCode::ACCEPTED,
    )
    .await;
    let app_ref = &app;
    eventually(
        WITHIN,
        "the message parked after two attempts",
        || async move {
            let rows = statuses(app_ref).await;
            if rows == [(Status::Parked.as_str().to_owned(), 2)] {
                Ok(())
            } else {
                Err(rows)
            }
        },
    )
    .await;
    let error: Option<String> = sqlx::query_scalar("SELECT last_error FROM notifications")
        .fetch_one(&app.db)
        .await
        .expect("row");
    assert!(error.is_some_and(|e| e.contains("mail server")));
    worker.stop().await;
}

#[tokio::test]
async fn a_cancelled_order_is_mailed_once() {
    let app = TestApp::spawn().await;
    let sink = MailSink::start();
    let worker = app.spawn_worker_with(mail_to(&sink)).await;
    let seller = app.new_user().await;
    let id = product(&app, &seller, 10).await;
    let shopper = buyer(&app, &[(id, 1)]).await;
    let order = app.checkout_accepted(&shopper.token).await;
    app.wait_for_terminal(&shopper.token, &order, WITHIN).await;
    // (The buyer, registered beside a running notifier, may also be mailed her registration's
    // code: only the order's mails are counted.)
    sink.wait_for_about(&shopper.email, "Order ", 1, WITHIN)
        .await;
    for _ in 0..2 {
        expect_json(app.cancel(&shopper.token, &order).await, StatusCode::OK).await;
    }
    let mails = sink
        .wait_for_about(&shopper.email, "Order ", 2, WITHIN)
        .await;
    wait_until_read(&app).await;
    assert!(
        mails.iter().any(|m| m["subject"]
            .as_str()
            .is_some_and(|s| s.contains(&order) && s.contains("cancelled"))),
        "{mails:?}"
    );
    assert_eq!(
        sink.messages_about(&shopper.email, "Order ").await.len(),
        2,
        "one mail per event: confirmed, then cancelled once"
    );
    worker.stop().await;
}

/// The mails of one order go out in the order of its events, also when the notifier takes them
/// in one batch: a shopper never reads "cancelled" before "confirmed".
#[tokio::test]
async fn an_orders_mails_go_out_in_the_order_of_its_events() {
    let app = TestApp::spawn().await;
    let sink = MailSink::start();
    let user = app.new_user().await;
    let orders: Vec<OrderId> = (0..10).map(|_| OrderId::generate()).collect();
    // Queued before any notifier runs, as one ingested batch leaves them: each order's
    // confirmation, then its cancellation.
    for order in &orders {
        for (kind, event) in [
            ("order_confirmed", "terminal"),
            ("order_cancelled", "cancelled"),
        ] {
            sqlx::query(
                "INSERT INTO notifications (event_id, kind, channel, user_id, order_id)
                 VALUES ($1, $2, 'email', $3, $4)",
            )
            .bind(format!("order-event/{order}/{event}"))
            .bind(kind)
            .bind(user.id)
            .bind(order.as_uuid())
            .execute(&app.db)
            .await
            .expect("queued");
        }
    }
    let worker = app.spawn_worker_with(mail_to(&sink)).await;
    let mails = sink.wait_for(&user.email, 20, WITHIN).await;
    for order in &orders {
        let position = |word: &str| {
            mails.iter().position(|m| {
                m["subject"]
                    .as_str()
                    .is_some_and(|s| s.contains(&order.to_string()) && s.contains(word))
            })
        };
        let (confirmed, cancelled) = (position("confirmed"), position("cancelled"));
        assert!(
            confirmed.is_some() && cancelled.is_some() && confirmed < cancelled,
            "order {order}: confirmed at {confirmed:?}, cancelled at {cancelled:?}"
        );
    }
    worker.stop().await;
}

/// A sign-in code does not wait behind order mails: with hundreds of them queued first (a busy
/// hour's confirmations), the code goes out in the sender's first batch.
#[tokio::test]
async fn a_sign_in_code_goes_out_before_a_backlog_of_order_mails() {
    let app = TestApp::spawn().await;
    let sink = MailSink::start();
    let user = app.new_user().await;
    sqlx::query(
        "INSERT INTO notifications (event_id, kind, channel, user_id, order_id)
         SELECT 'order-event/backlog-' || g || '/terminal', 'order_confirmed', 'email', $1,
                gen_random_uuid()
         FROM generate_series(1, 400) g",
    )
    .bind(user.id)
    .execute(&app.db)
    .await
    .expect("backlog");
    expect_json(
        app.request_code(&json!({ "email": user.email })).await,
        StatusCode::ACCEPTED,
    )
    .await;
    // The API queues the code after answering.
    let db = &app.db;
    eventually(WITHIN, "the code queued", || async move {
        let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM notifications WHERE kind = $1")
            .bind(Kind::SignInCode.as_str())
            .fetch_one(db)
            .await
            .expect("count");
        if queued == 0 {
            Err(queued)
        } else {
            Ok(())
        }
    })
    .await;
    let worker = app.spawn_worker_with(mail_to(&sink)).await;
    let (sink, email) = (&sink, &user.email);
    let position = eventually(WITHIN, "a sign-in code mailed", || async move {
        let mails = sink.messages(email).await;
        mails
            .iter()
            .position(|m| {
                m["subject"]
                    .as_str()
                    .is_some_and(|s| s.contains("sign-in code"))
            })
            .ok_or(mails.len())
    })
    .await;
    let batch = usize::try_from(app.worker_settings().notifier.batch).expect("batch");
    assert!(
        position < batch,
        "the code was mail {position}, behind the order mails queued before it"
    );
    worker.stop().await;
}
