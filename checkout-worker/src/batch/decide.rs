//! The decision at the heart of a batch, pure: which commands may be applied at all
//! ([`refusal`]), what each one does to the stock, to its order line and to its shopper's count of
//! a limited product ([`decide`]), and what that writes on the line ([`line_decision`]). The
//! products' stock, limits and set positions, what the ledger saw, the shoppers' counts and the
//! stock changes a seller's set builds on ([`Sets`]) are read beforehand; nothing here touches the
//! database.
//!
//! A seller's set (`PATCH /products/{id}` with `available_quantity`) is ordered by its queue
//! position, not by when its record arrives: records reach a lane out of queue order (several
//! relays claim outbox rows at once, and the producer retries with requests in flight). A set at
//! position S makes the stock its count plus the stock changes of the commands queued after S that
//! the lane applied before it (they happened after the count), and becomes the product's set
//! position; a set queued before the product's set position changes nothing (a newer count came
//! first). A release or restock queued before the product's set position changes no stock: the
//! seller's count already holds its units (it is absorbed; the line is released all the same). A
//! reserve is never absorbed: it always takes its units from the stock it finds, so a checkout
//! queued before the count that had not taken its units yet takes them from the count (safety
//! first: the count cannot have held units nobody had taken); its release then gives them back
//! even if queued before the count (each reserve records the set position it was applied under). Commands without a position
//! (relayed before positions were carried) are never absorbed and never counted after a set.

use shop_domain::{
    messages::{CommandKind, InventoryCommand},
    LineReason, LineStatus, ProductId, MAX_STOCK,
};
use shop_infra::orders::lane::{Line, LineDecision, LineKey, Seen};
use std::collections::HashMap;

mod shoppers;
pub use shoppers::Shoppers;

/// What a command did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The units were taken from stock.
    Reserved,
    /// Too little stock: nothing was taken.
    Short { available: i64 },
    /// The shopper would hold more units of the product than its per-shopper limit, counting
    /// their earlier orders: nothing was taken. `allowed` is what the limit still allowed them.
    OverLimit { allowed: i64 },
    /// A reserve whose line was released before it came (its order was cancelled while the
    /// reserve was on its way): nothing was taken.
    Withdrawn,
    /// The line's reserved units went back to stock.
    Released,
    /// A release of a line that holds nothing (short, or not reserved yet): nothing changed, and
    /// the line's reserve, if it comes later, is withdrawn.
    NothingHeld,
    /// A restock added its units.
    Restocked,
    /// A restock that would take the stock past [`MAX_STOCK`]: nothing was added.
    Overfull { available: i64 },
    /// A release or restock queued before the product's last set, which came first: the line is
    /// released (the restock recorded), and the stock stays (the seller's count holds the units).
    Absorbed,
    /// A set made the stock `available`: its count plus what was queued after it and applied
    /// before (within 0 ..= [`MAX_STOCK`]).
    Set { available: i64 },
    /// A set queued before the product's last set, which came first: nothing changed.
    Superseded,
    /// Seen before (redelivery): nothing changed.
    Duplicate,
}

impl Outcome {
    /// Whether the command was applied (the ledger's `applied`): it changed the stock, or was
    /// absorbed by a set (its release or restock is in the seller's count), or set it.
    pub fn applied(self) -> bool {
        matches!(
            self,
            Self::Reserved | Self::Released | Self::Restocked | Self::Absorbed | Self::Set { .. }
        )
    }

    /// Whether it refused its line (SHORT), which rejects the line's order: too little stock, or
    /// over the shopper's limit.
    pub fn refused_line(self) -> bool {
        matches!(self, Self::Short { .. } | Self::OverLimit { .. })
    }
}

/// A command as its lane received it, with its queue position: the id of the outbox row it was
/// written in, `None` for a record relayed without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Queued {
    pub command: InventoryCommand,
    pub queued: Option<i64>,
}

impl From<InventoryCommand> for Queued {
    /// A command without a queue position.
    fn from(command: InventoryCommand) -> Self {
        Self {
            command,
            queued: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub command: InventoryCommand,
    pub queued: Option<i64>,
    pub outcome: Outcome,
    /// Whether it changed its shopper's count of the product (the ledger's `counted`): a reserve
    /// applied while the product has a limit, or the release of such a reserve.
    pub counted: bool,
    /// What it did to the product's stock (the ledger's `stock_delta`).
    pub stock_delta: i64,
    /// For a reserve, the product's set position when it was applied (the ledger's
    /// `reserved_under`): its release is absorbed only by a later set.
    pub reserved_under: Option<i64>,
}

/// What the ledger holds for a line: its reserve (and whether it took units, and whether those
/// were counted against the shopper's limit), its release, or a restock or set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recorded {
    pub reserve: Option<bool>,
    pub counted: bool,
    /// For a reserve: the product's set position when it was applied (`None`: before any set).
    pub reserved_under: Option<i64>,
    pub release: bool,
    pub restock: bool,
    pub set: bool,
}

/// The ledger's rows, by line.
pub fn recorded(seen: Vec<Seen>) -> HashMap<LineKey, Recorded> {
    let mut recorded: HashMap<LineKey, Recorded> = HashMap::new();
    for seen in seen {
        let line = recorded.entry(seen.line).or_default();
        match seen.kind {
            CommandKind::Reserve => {
                line.reserve = Some(seen.applied);
                line.counted = seen.counted;
                line.reserved_under = seen.reserved_under;
            }
            CommandKind::Release => line.release = true,
            CommandKind::Restock => line.restock = true,
            CommandKind::Set => line.set = true,
        }
    }
    recorded
}

/// What sellers' sets need besides the stock: each product's set position (the queue position of
/// the last set applied), and the stock changes `(queue position, delta)` the lane applied that a
/// set of the batch may build on: the ledger's, read before the batch for the positions
/// [`Sets::after`] names, and the batch's own, which [`decide`] adds as it goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sets {
    pub at: HashMap<ProductId, i64>,
    pub applied: HashMap<ProductId, Vec<(i64, i64)>>,
}

impl Sets {
    /// The products `commands` set, each with the position after which the ledger's stock
    /// changes are to be read before [`decide`]: the lowest position of its sets, or its set
    /// position if that is higher (a set below it changes nothing).
    pub fn after(&self, commands: &[Queued]) -> Vec<(ProductId, i64)> {
        let mut after: HashMap<ProductId, i64> = HashMap::new();
        for c in commands
            .iter()
            .filter(|c| c.command.kind == CommandKind::Set)
        {
            if let Some(queued) = c.queued {
                let product = c.command.product_id;
                let floor = self.at.get(&product).copied().unwrap_or(i64::MIN);
                let bound = queued.max(floor);
                after
                    .entry(product)
                    .and_modify(|lowest| *lowest = (*lowest).min(bound))
                    .or_insert(bound);
            }
        }
        let mut after: Vec<(ProductId, i64)> = after.into_iter().collect();
        after.sort_unstable();
        after
    }

    /// Whether a command of `product` queued at `queued` was queued before its last set.
    fn before_last_set(&self, product: ProductId, queued: Option<i64>) -> bool {
        match (queued, self.at.get(&product)) {
            (Some(queued), Some(&at)) => queued < at,
            _ => false,
        }
    }

    /// Whether the last set of `product` holds what a release or restock of `line` queued at
    /// `queued` gives: it was queued before that set and, for a release, its reserve was applied
    /// before it too (a reserve applied after the set took its units from the count).
    fn absorbs(&self, product: ProductId, queued: Option<i64>, line: &Recorded) -> bool {
        self.before_last_set(product, queued)
            && line.reserved_under != self.at.get(&product).copied()
    }

    /// The stock changes of `product` queued after `position` that were applied.
    fn after_position(&self, product: ProductId, position: i64) -> i64 {
        self.applied.get(&product).map_or(0, |applied| {
            applied
                .iter()
                .filter(|&&(queued, _)| queued > position)
                .map(|&(_, delta)| delta)
                .sum()
        })
    }
}

/// Decides each command in order of arrival against `stock`, the shoppers' counts and the sets'
/// positions, which it updates (see the module's documentation for sets). `lines` starts with
/// what the ledger saw before, and takes in each command as it is decided; a command recorded
/// there is a duplicate. A product missing from `stock` has none.
pub fn decide(
    commands: &[Queued],
    stock: &mut HashMap<ProductId, i64>,
    mut lines: HashMap<LineKey, Recorded>,
    shoppers: &mut Shoppers,
    sets: &mut Sets,
) -> Vec<Decision> {
    commands
        .iter()
        .map(|&Queued { command, queued }| {
            let line = lines
                .entry((command.order_id, command.product_id))
                .or_default();
            let available = stock.entry(command.product_id).or_insert(0);
            let before = *available;
            let absorbed = sets.absorbs(command.product_id, queued, line);
            let (outcome, counted) = match command.kind {
                CommandKind::Reserve if line.reserve.is_some() => (Outcome::Duplicate, false),
                CommandKind::Release if line.release => (Outcome::Duplicate, false),
                CommandKind::Restock if line.restock => (Outcome::Duplicate, false),
                CommandKind::Set if line.set => (Outcome::Duplicate, false),
                CommandKind::Reserve => {
                    line.reserved_under = sets.at.get(&command.product_id).copied();
                    reserve(&command, line, available, shoppers)
                }
                CommandKind::Release => release(&command, line, available, shoppers, absorbed),
                CommandKind::Restock => (restock(&command, line, available, absorbed), false),
                CommandKind::Set => (set(&command, queued, line, available, sets), false),
            };
            let stock_delta = *available - before;
            if let Some(queued) = queued.filter(|_| stock_delta != 0) {
                sets.applied
                    .entry(command.product_id)
                    .or_default()
                    .push((queued, stock_delta));
            }
            let fresh_reserve =
                command.kind == CommandKind::Reserve && outcome != Outcome::Duplicate;
            let reserved_under = line.reserved_under.filter(|_| fresh_reserve);
            Decision {
                command,
                queued,
                outcome,
                counted,
                stock_delta,
                reserved_under,
            }
        })
        .collect()
}

/// A reserve seen for the first time: withdrawn after its line's release; else refused over the
/// shopper's limit or short of stock; else it takes the units, and counts them for the shopper
/// if the product has a limit. Returns the outcome and whether it was counted.
fn reserve(
    command: &InventoryCommand,
    line: &mut Recorded,
    available: &mut i64,
    shoppers: &mut Shoppers,
) -> (Outcome, bool) {
    let quantity = i64::from(command.quantity.get());
    let outcome = if line.release {
        Outcome::Withdrawn
    } else if let Some(allowed) = shoppers.allowance(command).filter(|&a| a < quantity) {
        Outcome::OverLimit { allowed }
    } else if *available >= quantity {
        *available -= quantity;
        Outcome::Reserved
    } else {
        Outcome::Short {
            available: *available,
        }
    };
    let counted = outcome == Outcome::Reserved && shoppers.count(command, quantity);
    line.reserve = Some(outcome == Outcome::Reserved);
    line.counted = counted;
    (outcome, counted)
}

/// A release seen for the first time: it gives back what its reserve took (unless `absorbed`: the
/// seller's last count holds those units already), and takes those units off the shopper's count
/// if they were counted. Returns the outcome and whether it was counted.
fn release(
    command: &InventoryCommand,
    line: &mut Recorded,
    available: &mut i64,
    shoppers: &mut Shoppers,
    absorbed: bool,
) -> (Outcome, bool) {
    line.release = true;
    if line.reserve != Some(true) {
        return (Outcome::NothingHeld, false);
    }
    let quantity = i64::from(command.quantity.get());
    if line.counted {
        shoppers.uncount(command, quantity);
    }
    if absorbed {
        return (Outcome::Absorbed, line.counted);
    }
    *available += quantity;
    (Outcome::Released, line.counted)
}

/// A restock seen for the first time: it adds its units up to [`MAX_STOCK`], unless `absorbed`
/// (the seller's last count holds them already).
fn restock(
    command: &InventoryCommand,
    line: &mut Recorded,
    available: &mut i64,
    absorbed: bool,
) -> Outcome {
    let quantity = i64::from(command.quantity.get());
    line.restock = true;
    if absorbed {
        Outcome::Absorbed
    } else if *available + quantity <= MAX_STOCK {
        *available += quantity;
        Outcome::Restocked
    } else {
        Outcome::Overfull {
            available: *available,
        }
    }
}

/// A set seen for the first time, queued at `queued`: superseded if queued before the product's
/// last set; else the stock becomes its count plus the stock changes queued after it and applied
/// before it (kept within 0 ..= [`MAX_STOCK`]: a reserve queued after the count that came first
/// keeps its units even if the count leaves fewer), and the product's set position moves to it.
/// A set without a position applies its count as it comes and leaves the position.
fn set(
    command: &InventoryCommand,
    queued: Option<i64>,
    line: &mut Recorded,
    available: &mut i64,
    sets: &mut Sets,
) -> Outcome {
    line.set = true;
    if sets.before_last_set(command.product_id, queued) {
        return Outcome::Superseded;
    }
    let count = i64::from(command.quantity.get());
    let later = queued.map_or(0, |q| sets.after_position(command.product_id, q));
    *available = (count + later).clamp(0, MAX_STOCK);
    if let Some(queued) = queued {
        sets.at.insert(command.product_id, queued);
    }
    Outcome::Set {
        available: *available,
    }
}

/// What a decision writes on its order line: the status, and for a short line its reason (code
/// and text) and what the lane saw (the stock, or what the shopper's limit still allowed). `None`
/// for decisions that leave the line as it is: a release that held nothing, restocks, sets and
/// duplicates. A release absorbed by a set releases its line all the same.
pub fn line_decision(d: &Decision) -> Option<LineDecision> {
    let line = (d.command.order_id, d.command.product_id);
    let requested = d.command.quantity.get();
    let plain = |status| {
        Some(LineDecision {
            line,
            status,
            reason_code: None,
            reason: None,
            available: None,
        })
    };
    let short = |code, reason, seen: i64| {
        Some(LineDecision {
            line,
            status: LineStatus::Short,
            reason_code: Some(code),
            reason: Some(reason),
            available: Some(i32::try_from(seen).unwrap_or(i32::MAX)),
        })
    };
    match d.outcome {
        Outcome::Reserved => plain(LineStatus::Reserved),
        Outcome::Released => plain(LineStatus::Released),
        Outcome::Absorbed if d.command.kind == CommandKind::Release => plain(LineStatus::Released),
        Outcome::Withdrawn => plain(LineStatus::Cancelled),
        Outcome::Short { available } => short(
            LineReason::InsufficientStock,
            format!("insufficient stock: {requested} requested, {available} available"),
            available,
        ),
        Outcome::OverLimit { allowed } => short(
            LineReason::LimitExceeded,
            format!(
                "limit per shopper exceeded: {requested} requested, {allowed} more allowed to you"
            ),
            allowed,
        ),
        Outcome::NothingHeld
        | Outcome::Restocked
        | Outcome::Overfull { .. }
        | Outcome::Absorbed
        | Outcome::Set { .. }
        | Outcome::Superseded
        | Outcome::Duplicate => None,
    }
}

/// Why a command that reads well may still not be applied: `None` when it may.
pub fn refusal(
    command: &InventoryCommand,
    product_known: bool,
    line: Option<Line>,
) -> Option<String> {
    if !product_known {
        return Some(format!("unknown product {}", command.product_id));
    }
    if !command.kind.names_a_line() {
        return None;
    }
    let quantity = i32::from(command.quantity);
    let (order, product) = (command.order_id, command.product_id);
    match line {
        None => Some(format!("order {order} has no line for product {product}")),
        Some(line) if line.quantity != quantity => Some(format!(
            "order {order} has {} units of product {product}, not {quantity}",
            line.quantity
        )),
        Some(line) if command.kind == CommandKind::Release && !line.releasable => Some(format!(
            "order {order} is neither rejected nor cancelled: its units stay taken"
        )),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests;
