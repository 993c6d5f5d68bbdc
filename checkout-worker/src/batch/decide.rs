//! The decision at the heart of a batch, pure: which commands may be applied at all
//! ([`refusal`]), what each one does to the stock, to its order line and to its shopper's count of
//! a limited product ([`decide`]), and what that writes on the line ([`line_decision`]). The
//! products' stock and limits, what the ledger saw and the shoppers' counts are read beforehand;
//! nothing here touches the database.

use shop_domain::{
    messages::{CommandKind, InventoryCommand},
    LineReason, LineStatus, ProductId, ShopperLimit, UserId, MAX_STOCK,
};
use shop_infra::orders::{
    lane::{Line, LineDecision, LineKey, Seen},
    shoppers::ShopperKey,
};
use std::collections::HashMap;

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
    /// Seen before (redelivery): nothing changed.
    Duplicate,
}

impl Outcome {
    /// Whether the command changed the stock (the ledger's `applied`).
    pub fn applied(self) -> bool {
        matches!(self, Self::Reserved | Self::Released | Self::Restocked)
    }

    /// Whether it refused its line (SHORT), which rejects the line's order: too little stock, or
    /// over the shopper's limit.
    pub fn refused_line(self) -> bool {
        matches!(self, Self::Short { .. } | Self::OverLimit { .. })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub command: InventoryCommand,
    pub outcome: Outcome,
    /// Whether it changed its shopper's count of the product (the ledger's `counted`): a reserve
    /// applied while the product has a limit, or the release of such a reserve.
    pub counted: bool,
}

/// What the ledger holds for a line: its reserve (and whether it took units, and whether those
/// were counted against the shopper's limit), its release, or a restock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recorded {
    pub reserve: Option<bool>,
    pub counted: bool,
    pub release: bool,
    pub restock: bool,
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
            }
            CommandKind::Release => line.release = true,
            CommandKind::Restock => line.restock = true,
        }
    }
    recorded
}

/// What the per-shopper limits need to decide a batch: the limits of its products that have one,
/// the shopper of each order line it names, and what each shopper holds of a product (the counts
/// read before the batch; [`decide`] keeps them up to date).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shoppers {
    pub limits: HashMap<ProductId, ShopperLimit>,
    pub of_line: HashMap<LineKey, UserId>,
    pub held: HashMap<ShopperKey, i64>,
}

impl Shoppers {
    /// The batch's limits and the shoppers of the order lines named (`lines`), with no counts
    /// read yet.
    pub fn new(limits: HashMap<ProductId, ShopperLimit>, lines: &HashMap<LineKey, Line>) -> Self {
        Self {
            limits,
            of_line: lines
                .iter()
                .map(|(&key, line)| (key, line.shopper))
                .collect(),
            held: HashMap::new(),
        }
    }

    /// The counts `commands` may read or move, to be read before [`decide`]: each reserve's of a
    /// product with a limit, and each release's (its reserve may have been counted under a limit
    /// since lifted).
    pub fn keys(&self, commands: &[InventoryCommand]) -> Vec<ShopperKey> {
        let mut keys: Vec<ShopperKey> = commands
            .iter()
            .filter(|c| match c.kind {
                CommandKind::Reserve => self.limits.contains_key(&c.product_id),
                CommandKind::Release => true,
                CommandKind::Restock => false,
            })
            .filter_map(|c| Some((c.product_id, self.shopper(c)?)))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    fn shopper(&self, command: &InventoryCommand) -> Option<UserId> {
        self.of_line
            .get(&(command.order_id, command.product_id))
            .copied()
    }

    /// The count a command's line moves and its limit, if its product has one.
    fn limited(&self, command: &InventoryCommand) -> Option<(ShopperKey, ShopperLimit)> {
        let limit = *self.limits.get(&command.product_id)?;
        Some(((command.product_id, self.shopper(command)?), limit))
    }

    /// What the shopper may still take of the command's product, if it has a limit.
    fn allowance(&self, command: &InventoryCommand) -> Option<i64> {
        let (key, limit) = self.limited(command)?;
        Some(limit.allowance(self.held.get(&key).copied().unwrap_or(0)))
    }

    /// Adds `units` to the shopper's count if the product has a limit; whether it did.
    fn count(&mut self, command: &InventoryCommand, units: i64) -> bool {
        let Some((key, _)) = self.limited(command) else {
            return false;
        };
        *self.held.entry(key).or_insert(0) += units;
        true
    }

    /// Takes `units` off the shopper's count (the release of a counted reserve), whether or not
    /// the product still has a limit.
    fn uncount(&mut self, command: &InventoryCommand, units: i64) {
        if let Some(shopper) = self.shopper(command) {
            *self.held.entry((command.product_id, shopper)).or_insert(0) -= units;
        }
    }
}

/// Decides each command in order against `stock` and the shoppers' counts, which it updates.
/// `lines` starts with what the ledger saw before, and takes in each command as it is decided; a
/// command recorded there is a duplicate. A product missing from `stock` has none.
pub fn decide(
    commands: &[InventoryCommand],
    stock: &mut HashMap<ProductId, i64>,
    mut lines: HashMap<LineKey, Recorded>,
    shoppers: &mut Shoppers,
) -> Vec<Decision> {
    commands
        .iter()
        .map(|&command| {
            let line = lines
                .entry((command.order_id, command.product_id))
                .or_default();
            let available = stock.entry(command.product_id).or_insert(0);
            let (outcome, counted) = match command.kind {
                CommandKind::Reserve if line.reserve.is_some() => (Outcome::Duplicate, false),
                CommandKind::Release if line.release => (Outcome::Duplicate, false),
                CommandKind::Restock if line.restock => (Outcome::Duplicate, false),
                CommandKind::Reserve => reserve(&command, line, available, shoppers),
                CommandKind::Release => release(&command, line, available, shoppers),
                CommandKind::Restock => (restock(&command, line, available), false),
            };
            Decision {
                command,
                outcome,
                counted,
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

/// A release seen for the first time: it gives back what its reserve took, and takes those units
/// off the shopper's count if they were counted. Returns the outcome and whether it was counted.
fn release(
    command: &InventoryCommand,
    line: &mut Recorded,
    available: &mut i64,
    shoppers: &mut Shoppers,
) -> (Outcome, bool) {
    line.release = true;
    if line.reserve != Some(true) {
        return (Outcome::NothingHeld, false);
    }
    let quantity = i64::from(command.quantity.get());
    *available += quantity;
    if line.counted {
        shoppers.uncount(command, quantity);
    }
    (Outcome::Released, line.counted)
}

/// A restock seen for the first time: it adds its units up to [`MAX_STOCK`].
fn restock(command: &InventoryCommand, line: &mut Recorded, available: &mut i64) -> Outcome {
    let quantity = i64::from(command.quantity.get());
    line.restock = true;
    if *available + quantity <= MAX_STOCK {
        *available += quantity;
        Outcome::Restocked
    } else {
        Outcome::Overfull {
            available: *available,
        }
    }
}

/// What a decision writes on its order line: the status, and for a short line its reason (code
/// and text) and what the lane saw (the stock, or what the shopper's limit still allowed). `None`
/// for decisions that leave the line as it is: a release that held nothing, restocks and
/// duplicates.
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
    if command.kind == CommandKind::Restock {
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
