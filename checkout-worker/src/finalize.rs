//! Finalising orders whose last line was decided, for the batch's writes and for parked
//! records alike (below both): their lines are counted, each order whose last line this was
//! takes the status [`OrderStatus::settled`] gives it (the one place that rule is applied; the
//! database stores it), and what follows it is written ([`settle::settle`]: the cart's return,
//! release commands and terminal events in the outbox). An order cancelled meanwhile is left as
//! it is.

use shop_domain::{OrderId, OrderStatus};
use shop_infra::orders::{
    lane::{self, Count},
    settle::{self, Settled},
};
use sqlx::PgConnection;
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// Lines decided in one step, by order (in id order): `(decided, short)`.
pub type LineCounts = BTreeMap<Uuid, (i32, i32)>;

/// Counts decided and short lines on their orders, locked first in id order (so that lanes of
/// different partitions lock shared orders in one order and cannot deadlock), and finalises
/// those whose last line this decided: CONFIRMED, or REJECTED when a line was short.
pub async fn count_and_finalize(
    conn: &mut PgConnection,
    counts: &LineCounts,
) -> Result<Vec<Settled>, sqlx::Error> {
    if counts.is_empty() {
        return Ok(Vec::new());
    }
    let orders: Vec<OrderId> = counts.keys().copied().map(OrderId::from_uuid).collect();
    let tallies: HashMap<OrderId, lane::Tally> = lane::lock_orders(conn, &orders)
        .await?
        .into_iter()
        .map(|t| (t.order_id, t))
        .collect();
    let counts: Vec<Count> = counts
        .iter()
        .map(|(&id, &(decided, short))| {
            let order_id = OrderId::from_uuid(id);
            // Its last lines: a PENDING order with no more undecided lines than these.
            let settles_as = tallies
                .get(&order_id)
                .filter(|t| t.status == OrderStatus::Pending && t.pending_lines <= decided)
                .map(|t| {
                    let short_lines = t.short_lines.saturating_add(short);
                    OrderStatus::settled(u32::try_from(short_lines).unwrap_or(u32::MAX))
                });
            Count {
                order_id,
                decided,
                short,
                settles_as,
            }
        })
        .collect();
    let decided: HashMap<OrderId, OrderStatus> = counts
        .iter()
        .filter_map(|c| Some((c.order_id, c.settles_as?)))
        .collect();
    let settled: Vec<Settled> = lane::count_lines(conn, &counts)
        .await?
        .into_iter()
        .filter(|counted| counted.pending_lines == 0)
        .filter_map(|counted| {
            Some(Settled {
                order_id: counted.order_id,
                user_id: counted.user_id,
                status: *decided.get(&counted.order_id)?,
                created_at: counted.created_at,
            })
        })
        .collect();
    settle::settle(conn, &settled).await?;
    Ok(settled)
}
