//! A PENDING order's place in line (issue 24): `GET /orders/{id}` and its SSE stream tell how
//! many commands stand before the order's lines in their lanes (`ahead`) and each line's product
//! stock as its lane last published it (`remaining`), from what the relay and the lanes record in
//! Redis. The lane is held up by a row lock this test takes on the product (the lane locks the
//! products of a batch, waits, and retries), while the relay goes on queueing checkouts behind it.

use crate::{buyer, product};
use reqwest::{Response, StatusCode};
use serde_json::Value;
use shop_domain::OrderId;
use shop_infra::Keys;
use shop_testkit::{eventually, TestApp};
use std::time::Duration;

const SETTLE: Duration = Duration::from_secs(60);

/// The order's `ahead`, once it is known (its reserve relayed, its lane's progress published).
async fn ahead_once_known(app: &TestApp, token: &str, order: &str) -> (i64, Value) {
    eventually(
        SETTLE,
        &format!("order {order}'s place in line"),
        || async move {
            let body = app.order(token, order).await;
            match body["ahead"].as_i64() {
                Some(ahead) => Ok((ahead, body)),
                None => Err(body),
            }
        },
    )
    .await
}

/// The complete events of an SSE text (frames that ended): `(event name, data as JSON)`.
fn sse_events(text: &str) -> Vec<(String, Value)> {
    let Some(end) = text.rfind("\n\n") else {
        return Vec::new();
    };
    text[..end]
        .split("\n\n")
        .filter_map(|frame| {
            let field = |name: &str| {
                frame
                    .lines()
                    .find_map(|line| line.strip_prefix(name))
                    .map(str::trim)
            };
            let data = serde_json::from_str(field("data:")?).expect("event data is JSON");
            Some((field("event:")?.to_owned(), data))
        })
        .collect()
}

/// The data of the events named `name`.
fn named<'a>(events: &'a [(String, Value)], name: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|(event, _)| event == name)
        .map(|(_, data)| data)
        .collect()
}

/// Reads `stream` into `text` until `done` holds for its events or the stream ends; fails after
/// [`SETTLE`].
async fn read_until(
    stream: &mut Response,
    text: &mut String,
    what: &str,
    done: impl Fn(&[(String, Value)]) -> bool,
) {
    let read = async {
        while !done(&sse_events(text)) {
            match stream.chunk().await.expect("stream") {
                Some(chunk) => text.push_str(&String::from_utf8_lossy(&chunk)),
                None => return,
            }
        }
    };
    tokio::time::timeout(SETTLE, read)
        .await
        .unwrap_or_else(|_| panic!("{what} within {SETTLE:?}: {text}"));
}

#[tokio::test]
async fn a_pending_order_shows_its_place_in_line_until_it_is_decided() {
    let app = TestApp::spawn().await;
    let worker = app.spawn_worker().await;
    let seller = app.new_user().await;
    let lamp = product(&app, &seller, 10).await;
    let initial = app.stock().await;
    // One order through the lane first, so that its progress is there to count from.
    let first = buyer(&app, &[(lamp, 1)]).await;
    let order = app.checkout_accepted(&first.token).await;
    let decided = app.wait_for_terminal(&first.token, &order, SETTLE).await;
    assert_eq!(decided["status"], "CONFIRMED", "{decided}");
    let shoppers = [
        buyer(&app, &[(lamp, 1)]).await,
        buyer(&app, &[(lamp, 1)]).await,
        buyer(&app, &[(lamp, 1)]).await,
    ];

    // The lane now waits on the product's row: nothing it reads commits while this is held.
    let mut hold = app.db.begin().await.expect("begin");
    sqlx::query("SELECT 1 FROM products WHERE id = $1 FOR NO KEY UPDATE")
        .bind(lamp)
        .execute(&mut *hold)
        .await
        .expect("the product's row held");
    // One after the other: each is relayed (its place known) before the next checks out.
    let mut orders = Vec::new();
    for shopper in &shoppers {
        let order = app.checkout_accepted(&shopper.token).await;
        ahead_once_known(&app, &shopper.token, &order).await;
        orders.push(order);
    }
    // Read again once all are queued: the lane's progress stands still meanwhile.
    let mut queued = Vec::new();
    for (shopper, order) in shoppers.iter().zip(orders) {
        let (ahead, body) = ahead_once_known(&app, &shopper.token, &order).await;
        assert_eq!(body["status"], "PENDING", "{body}");
        assert_eq!(body["items"][0]["remaining"], 9, "{body}");
        queued.push((shopper, order, ahead));
    }
    let aheads: Vec<i64> = queued.iter().map(|(_, _, ahead)| *ahead).collect();
    assert!(
        aheads.windows(2).all(|w| w[0] < w[1]) && aheads[2] > 0,
        "a later order has more before it: {aheads:?}"
    );

    // The last order's stream sends its place while it waits.
    let (last, last_order, last_ahead) = &queued[2];
    let mut stream = app
        .get(&format!("/orders/{last_order}/events"), Some(&last.token))
        .await;
    assert_eq!(stream.status(), StatusCode::OK);
    let mut text = String::new();
    read_until(&mut stream, &mut text, "a place event", |events| {
        !named(events, "place").is_empty()
    })
    .await;
    let events = sse_events(&text);
    let place = named(&events, "place")[0].clone();
    assert_eq!(place["order_id"], last_order.as_str(), "{place}");
    assert_eq!(place["ahead"], *last_ahead, "{place}");
    assert_eq!(place["lines"][0]["product_id"], lamp, "{place}");
    assert_eq!(place["lines"][0]["remaining"], 9, "{place}");

    // The lane goes on: every order is decided, and has no place in line any more.
    hold.rollback().await.expect("row released");
    read_until(&mut stream, &mut text, "the stream's end", |_| false).await;
    let events = sse_events(&text);
    let statuses: Vec<&Value> = named(&events, "status")
        .iter()
        .map(|data| &data["status"])
        .collect();
    assert_eq!(statuses, ["PENDING", "CONFIRMED"], "{text}");
    let sent: Vec<i64> = named(&events, "place")
        .iter()
        .filter_map(|data| data["ahead"].as_i64())
        .collect();
    assert!(
        sent.windows(2).all(|w| w[0] >= w[1]),
        "a stream's ahead never grows: {sent:?}"
    );
    for (shopper, order, _) in &queued {
        let decided = app.wait_for_terminal(&shopper.token, order, SETTLE).await;
        assert_eq!(decided["status"], "CONFIRMED", "{decided}");
        assert!(decided["ahead"].is_null(), "{decided}");
        assert!(decided["items"][0]["remaining"].is_null(), "{decided}");
    }
    // A decided order's offsets are of no more use: they go with the decision, not a day later
    // (a drop of a million orders would keep a million hashes in Redis for a day).
    let keys = Keys::new(&app.settings.redis_key_prefix);
    for (_, order, _) in &queued {
        let key = keys.order_lanes(OrderId::from_uuid(order.parse().expect("an order id")));
        eventually(SETTLE, &format!("{key} gone"), || {
            let mut redis = app.redis.clone();
            let key = key.clone();
            async move {
                let left: bool = redis::cmd("EXISTS")
                    .arg(&key)
                    .query_async(&mut redis)
                    .await
                    .expect("EXISTS");
                if left {
                    Err(key)
                } else {
                    Ok(())
                }
            }
        })
        .await;
    }
    app.wait_until_settled(SETTLE).await;
    app.assert_invariants(&initial).await;
    worker.stop().await;
}
