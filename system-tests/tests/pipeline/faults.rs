//! Faults: a worker process killed mid-stream, workers joining and leaving the group.

use crate::{checkout_all, shop_with_buyers, status_counts};
use shop_domain::{messages::CommandKind, OrderStatus};
use shop_testkit::{eventually, TestApp, TestUser, WorkerProcess};
use std::time::Duration;

const SETTLE: Duration = Duration::from_secs(90);

fn start_worker_process(app: &TestApp) -> WorkerProcess {
    app.spawn_worker_process(env!("CARGO_BIN_EXE_checkout-worker-under-test"))
}

async fn decided(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM orders WHERE status <> $1")
        .bind(OrderStatus::Pending.as_str())
        .fetch_one(&app.db)
        .await
        .expect("count")
}

/// A shop with a few products and `n` buyers with one- to three-line carts.
async fn shop(app: &TestApp, n: usize) -> Vec<TestUser> {
    let (_, buyers) = shop_with_buyers(app, [40; 6], n, |i, products| {
        (0..1 + i % 3)
            .map(|j| (products[(i + j * 2) % products.len()], 1 + (i % 2) as i64))
            .collect()
    })
    .await;
    buyers
}

#[tokio::test]
async fn a_worker_killed_mid_stream_and_restarted_loses_and_repeats_nothing() {
    let app = TestApp::spawn().await;
    let buyers = shop(&app, 90).await;
    let initial = app.stock().await;
    let mut worker = start_worker_process(&app);
    let (early, late) = buyers.split_at(60);
    let accepted_early = checkout_all(&app, early).await;
    // Kill it with work under way: some orders decided, not all.
    let app_ref = &app;
    eventually(SETTLE, "an order decided", || async move {
        match decided(app_ref).await {
            0 => Err(0),
            _ => Ok(()),
        }
    })
    .await;
    worker.kill();
    let accepted = accepted_early.iter().filter(|o| o.is_some()).count() as i64;
    let checked = decided(&app).await;
    eprintln!("killed the worker with {checked} of {accepted} orders decided");
    // Checkouts keep being accepted while no worker runs.
    checkout_all(&app, late).await;
    let mut restarted = start_worker_process(&app);
    app.wait_until_settled(SETTLE).await;
    restarted.kill();
    app.assert_invariants(&initial).await;
    let lines: i64 = sqlx::query_scalar("SELECT count(*) FROM order_items")
        .fetch_one(&app.db)
        .await
        .expect("lines");
    let reserves: i64 = sqlx::query_scalar("SELECT count(*) FROM inventory_ledger WHERE kind = $1")
        .bind(CommandKind::Reserve.as_str())
        .fetch_one(&app.db)
        .await
        .expect("ledger");
    assert_eq!(reserves, lines, "each line reserved exactly once");
}

#[tokio::test]
async fn two_workers_split_the_partitions_and_a_rebalance_keeps_the_invariants() {
    let app = TestApp::spawn().await;
    let buyers = shop(&app, 90).await;
    let initial = app.stock().await;
    let (first, rest) = buyers.split_at(30);
    let (second, third) = rest.split_at(30);
    let a = app.spawn_worker().await;
    checkout_all(&app, first).await;
    // A second worker joins: the partitions are split between the two while orders flow.
    let b = app.spawn_worker().await;
    let group = app.worker_settings().consumer_group;
    // The split itself: each of the two live members has claimed half of the partitions.
    let (db, group) = (&app.db, &group);
    eventually(SETTLE, "the partitions split two and two", || async move {
        let owned: Vec<i64> = sqlx::query_scalar(
            "SELECT count(*) FROM consumer_positions p
             JOIN consumer_members m ON m.consumer_group = p.consumer_group AND m.member = p.owner
             WHERE p.consumer_group = $1 GROUP BY p.owner ORDER BY 1",
        )
        .bind(group)
        .fetch_all(db)
        .await
        .expect("owners");
        if owned == [2, 2] {
            Ok(())
        } else {
            Err(owned)
        }
    })
    .await;
    checkout_all(&app, second).await;
    // The first leaves (SIGTERM): its partitions move to the second.
    a.stop().await;
    checkout_all(&app, third).await;
    app.wait_until_settled(SETTLE).await;
    app.assert_invariants(&initial).await;
    let counts = status_counts(&app).await;
    assert_eq!(
        counts.get(OrderStatus::Pending.as_str()),
        None,
        "{counts:?}"
    );
    b.stop().await;
}
