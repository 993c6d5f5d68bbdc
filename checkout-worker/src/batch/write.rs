//! A batch's writes, inside its transaction (statements in `shop_infra::orders::lane` and
//! `shoppers`): lock the batch's products in id order, refuse the commands that name nothing they
//! may change, read which commands the ledger has seen, the shoppers' counts of limited products
//! and the stock changes the batch's sets build on, [`decide`] the rest in memory, then write the
//! ledger (with each command's queue position and stock change), the stock and set positions, the
//! shoppers' counts, the order lines and (through [`crate::finalize`]) the orders' counters in a
//! few set-based statements, finalising the orders whose last line this decided.

use super::decide::{self, Decision, Outcome, Queued, Sets, Shoppers};
use crate::finalize::{self, LineCounts};
use shop_domain::{
    messages::{CommandKind, InventoryCommand},
    ProductId,
};
use shop_infra::orders::{
    lane::{self, Entry, Line, LineDecision, LineKey, StockWrite},
    settle::Settled,
    shoppers::{self, ShopperKey},
};
use sqlx::PgConnection;
use std::{collections::HashMap, hash::Hash};

/// What a batch's commands changed.
#[derive(Debug, Default)]
pub struct Written {
    pub decisions: Vec<Decision>,
    /// `(product id, available quantity, version)` after the batch.
    pub stock: Vec<(i64, i32, i64)>,
    pub finalized: Vec<Settled>,
}

/// What the decisions move besides the lines: the products' stock and set positions, and the
/// shoppers' counts.
#[derive(Debug, Clone)]
struct Tallies {
    stock: HashMap<ProductId, i64>,
    set_at: HashMap<ProductId, i64>,
    held: HashMap<ShopperKey, i64>,
}

/// The commands' part of a batch, inside its transaction. Returns, beside what it did, the
/// commands it refused (by their place in `all`, with the reason): those of unknown products,
/// and reserves or releases of order lines that do not exist as they say.
pub async fn apply_commands(
    conn: &mut PgConnection,
    all: &[Queued],
) -> Result<(Written, Vec<(usize, String)>), sqlx::Error> {
    if all.is_empty() {
        return Ok((Written::default(), Vec::new()));
    }
    let products: Vec<ProductId> = all.iter().map(|c| c.command.product_id).collect();
    let locked = lane::lock_stock(conn, &products).await?;
    let plain: Vec<InventoryCommand> = all.iter().map(|c| c.command).collect();
    let lines = lane::order_lines(conn, &plain).await?;
    let (commands, refused) = sort_out(all, &locked.stock, &lines);
    if commands.is_empty() {
        return Ok((Written::default(), refused));
    }
    let plain: Vec<InventoryCommand> = commands.iter().map(|c| c.command).collect();
    let recorded = decide::recorded(lane::seen(conn, &plain).await?);
    let mut shoppers = Shoppers::new(locked.limits, &lines);
    shoppers.held = shoppers::held(conn, &shoppers.keys(&plain)).await?;
    let mut sets = Sets {
        at: locked.set_at,
        applied: HashMap::new(),
    };
    sets.applied = lane::queued_after(conn, &sets.after(&commands)).await?;
    let before = Tallies {
        stock: locked.stock,
        set_at: sets.at.clone(),
        held: shoppers.held.clone(),
    };
    let mut stock = before.stock.clone();
    let decisions = decide::decide(&commands, &mut stock, recorded, &mut shoppers, &mut sets);
    let fresh: Vec<&Decision> = decisions
        .iter()
        .filter(|d| d.outcome != Outcome::Duplicate)
        .collect();
    if fresh.is_empty() {
        return Ok((
            Written {
                decisions,
                ..Written::default()
            },
            refused,
        ));
    }
    let after = Tallies {
        stock,
        set_at: sets.at,
        held: shoppers.held,
    };
    let (stock, finalized) = write(conn, &fresh, &before, &after).await?;
    Ok((
        Written {
            decisions,
            stock,
            finalized,
        },
        refused,
    ))
}

/// The commands that may be applied, and the others (by their place in `all`) with the reason.
fn sort_out(
    all: &[Queued],
    stock: &HashMap<ProductId, i64>,
    lines: &HashMap<LineKey, Line>,
) -> (Vec<Queued>, Vec<(usize, String)>) {
    let mut refused = Vec::new();
    let mut commands = Vec::with_capacity(all.len());
    for (i, queued) in all.iter().enumerate() {
        let command = &queued.command;
        let line = lines.get(&(command.order_id, command.product_id)).copied();
        match decide::refusal(command, stock.contains_key(&command.product_id), line) {
            Some(reason) => refused.push((i, reason)),
            None => commands.push(*queued),
        }
    }
    (commands, refused)
}

/// The entries of `after` whose value differs from `before`'s.
fn changed<K: Copy + Eq + Hash>(
    before: &HashMap<K, i64>,
    after: &HashMap<K, i64>,
) -> Vec<(K, i64)> {
    after
        .iter()
        .filter(|(key, after)| before.get(key).copied().unwrap_or(0) != **after)
        .map(|(key, after)| (*key, *after))
        .collect()
}

/// Writes the `fresh` decisions (no duplicates): the ledger, the stock, set positions and the
/// shoppers' counts that changed from `before` to `after`, the order lines, and the orders'
/// counters. Returns the stock written and the orders finalised.
async fn write(
    conn: &mut PgConnection,
    fresh: &[&Decision],
    before: &Tallies,
    after: &Tallies,
) -> Result<(Vec<(i64, i32, i64)>, Vec<Settled>), sqlx::Error> {
    // The ledger first: a concurrent worker applying the same command fails here and retries.
    let decided: Vec<Entry> = fresh
        .iter()
        .map(|d| Entry {
            command: d.command,
            applied: d.outcome.applied(),
            counted: d.counted,
            queued: d.queued,
            reserved_under: d.reserved_under,
            // Lossless: a stock stays within 0 ..= MAX_STOCK.
            stock_delta: i32::try_from(d.stock_delta).unwrap_or(i32::MAX),
        })
        .collect();
    lane::record(conn, &decided).await?;

    // A set may leave the stock as it was and still move the product's set position.
    let moved: HashMap<ProductId, i64> =
        changed(&before.set_at, &after.set_at).into_iter().collect();
    let mut touched: Vec<ProductId> = changed(&before.stock, &after.stock)
        .into_iter()
        .map(|(id, _)| id)
        .chain(moved.keys().copied())
        .collect();
    touched.sort_unstable();
    touched.dedup();
    let writes: Vec<StockWrite> = touched
        .into_iter()
        .map(|product| StockWrite {
            product,
            available: i32::try_from(after.stock.get(&product).copied().unwrap_or(0))
                .unwrap_or(i32::MAX),
            set_at: moved.get(&product).copied(),
        })
        .collect();
    let stock = lane::write_stock(conn, &writes).await?;
    shoppers::write(conn, &changed(&before.held, &after.held)).await?;

    // Order lines: what reserves and releases did to them (restocks and sets have none; a release
    // that held nothing leaves its line as it is). A line reserved and released in one batch gets its
    // last status: an UPDATE … FROM applies only one of several rows that match a line.
    let mut last: HashMap<LineKey, LineDecision> = HashMap::new();
    for d in fresh {
        if let Some(decision) = decide::line_decision(d) {
            last.insert(decision.line, decision);
        }
    }
    let lines: Vec<LineDecision> = last.into_values().collect();
    lane::decide_lines(conn, &lines).await?;

    // Orders: count decided and refused lines (a withdrawn reserve belongs to a cancelled order,
    // which the count leaves alone).
    let mut counts = LineCounts::new();
    for d in fresh
        .iter()
        .filter(|d| d.command.kind == CommandKind::Reserve)
    {
        let entry = counts.entry(d.command.order_id.as_uuid()).or_default();
        entry.0 += 1;
        entry.1 += i32::from(d.outcome.refused_line());
    }
    let finalized = finalize::count_and_finalize(conn, &counts).await?;
    Ok((stock, finalized))
}
