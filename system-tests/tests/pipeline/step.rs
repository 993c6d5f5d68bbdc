//! The worker's step, fed batches directly: no Kafka involved.

use crate::{buyer, product, take_queued};
use checkout_worker::{
    batch::{apply_batch, BatchError, Outcome},
    dead_letter::Received,
    membership::{Claim, Membership, Position},
};
use shop_domain::messages::{InventoryCommand, OrderStatus};
use shop_testkit::TestApp;
use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

/// The inventory commands in the outbox, in order, without their queue positions; the rows that
/// held them are deleted (so no relay sends them).
async fn take_commands(app: &TestApp) -> Vec<InventoryCommand> {
    take_queued(app).await.into_iter().map(|(_, c)| c).collect()
}

#[tokio::test]
async fn a_batch_decides_orders_and_redelivery_changes_nothing() {
    let app = TestApp::spawn().await;
    let seller = app.new_user().await;
    let (plenty, scarce) = (
        product(&app, &seller, 5).await,
        product(&app, &seller, 1).await,
    );
    let initial = app.stock().await;
    let first = buyer(&app, &[(plenty, 2), (scarce, 1)]).await;
    let second = buyer(&app, &[(plenty, 1), (scarce, 1)]).await;
    let first_order = app.checkout_accepted(&first.token).await;
    let second_order = app.checkout_accepted(&second.token).await;
    let commands = take_commands(&app).await;
    assert_eq!(commands.len(), 4);

    let result = apply_batch(&app.db, &Received::all_local(&commands), None)
        .await
        .expect("batch applies");
    let statuses: HashMap<String, OrderStatus> = result
        .finalized
        .iter()
        .map(|f| (f.order_id.to_string(), f.status))
        .collect();
    let expected = HashMap::from([
        (first_order.clone(), OrderStatus::Confirmed),
        (second_order.clone(), OrderStatus::Rejected),
    ]);
    assert_eq!(statuses, expected);
    assert_eq!(app.stock().await[&plenty], 2);
    assert_eq!(app.stock().await[&scarce], 0);
    assert_eq!(
        app.order(&first.token, &first_order).await["status"],
        "CONFIRMED"
    );
    let rejected = app.order(&second.token, &second_order).await;
    assert_eq!(rejected["status"], "REJECTED");
    assert_eq!(
        app.cart(&first.token).await["items"]
            .as_array()
            .map(Vec::len),
        Some(0),
        "confirmed: cart emptied"
    );
    assert_eq!(
        app.cart(&second.token).await["items"]
            .as_array()
            .map(Vec::len),
        Some(2),
        "rejected: cart kept"
    );

    // The same commands again, as after a crash before the offset commit: no effect.
    let again = apply_batch(&app.db, &Received::all_local(&commands), None)
        .await
        .expect("redelivery applies");
    assert!(again
        .decisions
        .iter()
        .all(|d| d.outcome == Outcome::Duplicate));
    assert!(again.finalized.is_empty());
    assert_eq!(app.stock().await[&plenty], 2);

    // The rejection queued a release of the reserved line; applying it twice returns stock once.
    let releases = take_commands(&app).await;
    assert_eq!(releases.len(), 1);
    apply_batch(&app.db, &Received::all_local(&releases), None)
        .await
        .expect("release");
    apply_batch(&app.db, &Received::all_local(&releases), None)
        .await
        .expect("release again");
    assert_eq!(app.stock().await[&plenty], 3);
    let lines = app.order(&second.token, &second_order).await["items"].clone();
    let line_statuses: Vec<_> = lines
        .as_array()
        .expect("items")
        .iter()
        .map(|l| l["status"].clone())
        .collect();
    assert!(
        line_statuses.contains(&"RELEASED".into()) && line_statuses.contains(&"SHORT".into()),
        "{lines}"
    );
    sqlx::query("DELETE FROM outbox")
        .execute(&app.db)
        .await
        .expect("drain events");
    app.assert_invariants(&initial).await;
}

fn position(membership: &Membership, claim: Claim, next_offset: i64) -> Position<'_> {
    Position {
        group: &membership.group,
        topic: &membership.topic,
        partition: claim.partition,
        epoch: claim.epoch,
        next_offset,
    }
}

#[tokio::test]
async fn a_stale_owner_neither_blocks_its_successor_nor_commits_after_it() {
    let app = TestApp::spawn().await;
    let mut settings = app.worker_settings();
    settings.idle_tx_timeout = Duration::from_millis(500);
    let pool = checkout_worker::connect(&settings)
        .await
        .expect("worker pool");
    let member = || Membership {
        pool: pool.clone(),
        group: settings.consumer_group.clone(),
        topic: settings.kafka.inventory_topic.clone(),
        partitions: 4,
        member: uuid::Uuid::new_v4(),
        lease: settings.member_lease,
    };
    let (old, new) = (member(), member());
    let old_claim = old.claim(&[2]).await.expect("claim")[0];
    assert_eq!((old_claim.epoch, old_claim.next_offset), (1, 0));

    // The old owner begins a batch and stalls inside its transaction, holding the partition's
    // row, as a paused or cut-off worker would.
    let mut stalled = pool.begin().await.expect("begin");
    position(&old, old_claim, 10)
        .save(&mut stalled)
        .await
        .expect("statement")
        .expect("the claim holds");

    // The successor waits for it only until PostgreSQL ends the idle transaction.
    let started = Instant::now();
    let new_claim = new.claim(&[2]).await.expect("claim")[0];
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(4), "waited {waited:?}");
    assert_eq!((new_claim.epoch, new_claim.next_offset), (2, 0));
    assert!(
        stalled.commit().await.is_err(),
        "the stalled transaction was ended"
    );

    // The stale owner comes back with a batch: refused, nothing written; the successor's applies.
    let seller = app.new_user().await;
    let kettle = product(&app, &seller, 5).await;
    let shopper = buyer(&app, &[(kettle, 2)]).await;
    app.checkout_accepted(&shopper.token).await;
    let commands = take_commands(&app).await;
    let refused = apply_batch(
        &pool,
        &Received::all_local(&commands),
        Some(&position(&old, old_claim, 1)),
    )
    .await;
    assert!(matches!(refused, Err(BatchError::Fenced(_))), "{refused:?}");
    assert_eq!(app.stock().await[&kettle], 5, "nothing applied");
    apply_batch(
        &pool,
        &Received::all_local(&commands),
        Some(&position(&new, new_claim, 1)),
    )
    .await
    .expect("the new owner applies");
    assert_eq!(app.stock().await[&kettle], 3);
    let saved: (i64, i64) = sqlx::query_as(
        "SELECT next_offset, epoch FROM consumer_positions WHERE consumer_group = $1 AND partition = 2",
    )
    .bind(&settings.consumer_group)
    .fetch_one(&app.db)
    .await
    .expect("position");
    assert_eq!(saved, (1, 2));
}

#[tokio::test]
async fn confirmation_keeps_the_lines_added_after_checkout() {
    let app = TestApp::spawn().await;
    let seller = app.new_user().await;
    let kettle = product(&app, &seller, 10).await;
    let shopper = buyer(&app, &[(kettle, 2)]).await;
    app.checkout_accepted(&shopper.token).await;
    let items = app.cart(&shopper.token).await["items"].clone();
    assert_eq!(
        items.as_array().map(Vec::len),
        Some(0),
        "checkout took the line"
    );
    // The shopper puts the same line in the cart again before the order is decided.
    app.cart_add(&shopper.token, kettle, 2).await;
    let commands = take_commands(&app).await;
    let result = apply_batch(&app.db, &Received::all_local(&commands), None)
        .await
        .expect("batch applies");
    assert_eq!(result.finalized[0].status, OrderStatus::Confirmed);
    let items = app.cart(&shopper.token).await["items"].clone();
    assert_eq!(items[0]["product_id"], kettle, "{items}");
    assert_eq!(items[0]["quantity"], 2, "{items}");
    sqlx::query("DELETE FROM outbox")
        .execute(&app.db)
        .await
        .expect("drain events");
}

#[tokio::test]
async fn rejected_orders_of_one_shopper_and_product_return_their_lines_once_each() {
    let app = TestApp::spawn().await;
    let seller = app.new_user().await;
    let gone = product(&app, &seller, 3).await;
    let shopper = app.new_user().await;
    for quantity in [1, 2] {
        app.cart_add(&shopper.token, gone, quantity).await;
        app.checkout_accepted(&shopper.token).await;
    }
    // It sells out before the lane comes to them (the API saw 3 with each cart).
    sqlx::query("UPDATE products SET available_quantity = 0 WHERE id = $1")
        .bind(gone)
        .execute(&app.db)
        .await
        .expect("sold out");
    let commands = take_commands(&app).await;
    let result = apply_batch(&app.db, &Received::all_local(&commands), None)
        .await
        .expect("one batch rejects both");
    assert_eq!(result.finalized.len(), 2);
    assert!(result
        .finalized
        .iter()
        .all(|f| f.status == OrderStatus::Rejected));
    let items = app.cart(&shopper.token).await["items"].clone();
    assert_eq!(items[0]["product_id"], gone, "{items}");
    assert_eq!(
        items[0]["quantity"], 3,
        "both orders' lines are back: {items}"
    );
    sqlx::query("DELETE FROM outbox")
        .execute(&app.db)
        .await
        .expect("drain events");
}
