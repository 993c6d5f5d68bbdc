//! The worker's step, fed batches directly: no Kafka involved.

use crate::{buyer, product};
use checkout_worker::batch::{apply_batch, Outcome};
use shop_domain::messages::{InventoryCommand, OrderStatus};
use shop_testkit::TestApp;
use std::collections::HashMap;

async fn take_commands(app: &TestApp) -> Vec<InventoryCommand> {
    let rows: Vec<(i64, String)> =
        sqlx::query_as("SELECT id, payload FROM outbox WHERE stream = 'inventory' ORDER BY id")
            .fetch_all(&app.db)
            .await
            .expect("outbox");
    sqlx::query("DELETE FROM outbox WHERE id = ANY($1)")
        .bind(rows.iter().map(|r| r.0).collect::<Vec<_>>())
        .execute(&app.db)
        .await
        .expect("delete");
    rows.iter()
        .map(|(_, p)| serde_json::from_str(p).expect("a command"))
        .collect()
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

    let result = apply_batch(&app.db, &commands, None)
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
    let again = apply_batch(&app.db, &commands, None)
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
    apply_batch(&app.db, &releases, None)
        .await
        .expect("release");
    apply_batch(&app.db, &releases, None)
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
