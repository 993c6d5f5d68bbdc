//! The decision at the heart of a batch, pure: which commands may be applied at all
//! ([`refusal`]), what each one does to the stock and to its order line ([`decide`]), and what
//! that writes on the line ([`line_decision`]). The products' stock and what the ledger saw are
//! read beforehand; nothing here touches the database.

use shop_domain::{
    messages::{CommandKind, InventoryCommand},
    LineStatus, ProductId, MAX_STOCK,
};
use shop_infra::orders::lane::{Line, LineDecision, LineKey, Seen};
use std::collections::HashMap;

/// What a command did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The units were taken from stock.
    Reserved,
    /// Too little stock: nothing was taken.
    Short { available: i64 },
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub command: InventoryCommand,
    pub outcome: Outcome,
}

/// What the ledger holds for a line: its reserve (and whether it took units), its release, or a
/// restock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recorded {
    pub reserve: Option<bool>,
    pub release: bool,
    pub restock: bool,
}

/// The ledger's rows, by line.
pub fn recorded(seen: Vec<Seen>) -> HashMap<LineKey, Recorded> {
    let mut recorded: HashMap<LineKey, Recorded> = HashMap::new();
    for seen in seen {
        let line = recorded.entry(seen.line).or_default();
        match seen.kind {
            CommandKind::Reserve => line.reserve = Some(seen.applied),
            CommandKind::Release => line.release = true,
            CommandKind::Restock => line.restock = true,
        }
    }
    recorded
}

/// Decides each command in order against `stock`, which it updates. `lines` starts with what
/// the ledger saw before, and takes in each command as it is decided; a command recorded there
/// is a duplicate. A product missing from `stock` has none.
pub fn decide(
    commands: &[InventoryCommand],
    stock: &mut HashMap<ProductId, i64>,
    mut lines: HashMap<LineKey, Recorded>,
) -> Vec<Decision> {
    commands
        .iter()
        .map(|&command| {
            let line = lines
                .entry((command.order_id, command.product_id))
                .or_default();
            let quantity = i64::from(command.quantity.get());
            let available = stock.entry(command.product_id).or_insert(0);
            let outcome = match command.kind {
                CommandKind::Reserve if line.reserve.is_some() => Outcome::Duplicate,
                CommandKind::Release if line.release => Outcome::Duplicate,
                CommandKind::Restock if line.restock => Outcome::Duplicate,
                CommandKind::Reserve => {
                    let outcome = if line.release {
                        Outcome::Withdrawn
                    } else if *available >= quantity {
                        *available -= quantity;
                        Outcome::Reserved
                    } else {
                        Outcome::Short {
                            available: *available,
                        }
                    };
                    line.reserve = Some(outcome == Outcome::Reserved);
                    outcome
                }
                CommandKind::Release => {
                    line.release = true;
                    if line.reserve == Some(true) {
                        *available += quantity;
                        Outcome::Released
                    } else {
                        Outcome::NothingHeld
                    }
                }
                CommandKind::Restock => {
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
            };
            Decision { command, outcome }
        })
        .collect()
}

/// What a decision writes on its order line: the status, and for a short line the reason its
/// order shows and the stock the lane saw. `None` for decisions that leave the line as it is: a
/// release that held nothing, restocks and duplicates.
pub fn line_decision(d: &Decision) -> Option<LineDecision> {
    let line = (d.command.order_id, d.command.product_id);
    let plain = |status| {
        Some(LineDecision {
            line,
            status,
            reason: None,
            available: None,
        })
    };
    match d.outcome {
        Outcome::Reserved => plain(LineStatus::Reserved),
        Outcome::Released => plain(LineStatus::Released),
        Outcome::Withdrawn => plain(LineStatus::Cancelled),
        Outcome::Short { available } => Some(LineDecision {
            line,
            status: LineStatus::Short,
            reason: Some(format!(
                "insufficient stock: {} requested, {available} available",
                d.command.quantity.get()
            )),
            available: Some(i32::try_from(available).unwrap_or(i32::MAX)),
        }),
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
mod tests {
    use super::*;
    use shop_domain::{OrderId, Quantity};

    fn cmd(kind: CommandKind, order: OrderId, product: i64, quantity: i64) -> InventoryCommand {
        InventoryCommand::new(
            kind,
            order,
            ProductId::new(product).expect("id"),
            Quantity::new(quantity).expect("quantity"),
        )
    }

    fn pid(id: i64) -> ProductId {
        ProductId::new(id).expect("id")
    }

    fn outcomes(
        commands: &[InventoryCommand],
        stock: &mut HashMap<ProductId, i64>,
        recorded: HashMap<LineKey, Recorded>,
    ) -> Vec<Outcome> {
        decide(commands, stock, recorded)
            .iter()
            .map(|d| d.outcome)
            .collect()
    }

    fn restock(id: OrderId, product: i64, quantity: i64) -> InventoryCommand {
        InventoryCommand::restock(
            id,
            pid(product),
            shop_domain::Units::new(quantity).expect("units"),
        )
    }

    #[test]
    fn reserves_in_order_until_stock_runs_out() {
        let orders: Vec<_> = (0..4).map(|_| OrderId::generate()).collect();
        let commands: Vec<_> = orders
            .iter()
            .map(|&o| cmd(CommandKind::Reserve, o, 1, 2))
            .collect();
        let mut stock = HashMap::from([(pid(1), 5)]);
        let outcomes = outcomes(&commands, &mut stock, HashMap::new());
        assert_eq!(
            outcomes,
            [
                Outcome::Reserved,
                Outcome::Reserved,
                Outcome::Short { available: 1 },
                Outcome::Short { available: 1 }
            ]
        );
        assert_eq!(stock[&pid(1)], 1, "never below zero");
    }

    #[test]
    fn repeats_are_duplicates_within_a_batch_and_across_batches() {
        let (a, b, r) = (
            OrderId::generate(),
            OrderId::generate(),
            OrderId::generate(),
        );
        let reserve_a = cmd(CommandKind::Reserve, a, 1, 1);
        let recorded = HashMap::from([
            (
                (b, pid(1)),
                Recorded {
                    reserve: Some(false),
                    ..Recorded::default()
                },
            ),
            (
                (r, pid(1)),
                Recorded {
                    restock: true,
                    ..Recorded::default()
                },
            ),
        ]);
        let commands = [
            reserve_a,
            reserve_a,
            cmd(CommandKind::Reserve, b, 1, 1),
            restock(r, 1, 50),
        ];
        let mut stock = HashMap::from([(pid(1), 10)]);
        let outcomes = outcomes(&commands, &mut stock, recorded);
        assert_eq!(
            outcomes,
            [
                Outcome::Reserved,
                Outcome::Duplicate,
                Outcome::Duplicate,
                Outcome::Duplicate
            ]
        );
        assert_eq!(stock[&pid(1)], 9);
    }

    #[test]
    fn a_release_returns_what_its_reserve_took_and_nothing_else() {
        let (a, b, c) = (
            OrderId::generate(),
            OrderId::generate(),
            OrderId::generate(),
        );
        let recorded = HashMap::from([(
            (a, pid(1)),
            Recorded {
                reserve: Some(true),
                ..Recorded::default()
            },
        )]);
        let commands = [
            // Reserved in an earlier batch: its units come back, once.
            cmd(CommandKind::Release, a, 1, 3),
            cmd(CommandKind::Release, a, 1, 3),
            // Short: nothing comes back.
            cmd(CommandKind::Reserve, b, 1, 9),
            cmd(CommandKind::Release, b, 1, 9),
            // Released before its reserve came: the reserve takes nothing.
            cmd(CommandKind::Release, c, 1, 2),
            cmd(CommandKind::Reserve, c, 1, 2),
            cmd(CommandKind::Reserve, c, 2, 1),
        ];
        let mut stock = HashMap::from([(pid(1), 0)]);
        let outcomes = outcomes(&commands, &mut stock, recorded);
        assert_eq!(
            outcomes,
            [
                Outcome::Released,
                Outcome::Duplicate,
                Outcome::Short { available: 3 },
                Outcome::NothingHeld,
                Outcome::NothingHeld,
                Outcome::Withdrawn,
                Outcome::Short { available: 0 },
            ]
        );
        assert_eq!(stock[&pid(1)], 3);
    }

    #[test]
    fn a_reserve_and_its_release_are_distinct_commands() {
        let order = OrderId::generate();
        let commands = [
            cmd(CommandKind::Reserve, order, 1, 4),
            cmd(CommandKind::Release, order, 1, 4),
        ];
        let mut stock = HashMap::from([(pid(1), 4)]);
        let outcomes = outcomes(&commands, &mut stock, HashMap::new());
        assert_eq!(outcomes, [Outcome::Reserved, Outcome::Released]);
        assert_eq!(stock[&pid(1)], 4, "conservation");
    }

    #[test]
    fn restocks_add_units_up_to_the_ceiling() {
        let order = OrderId::generate();
        let commands = [
            cmd(CommandKind::Reserve, order, 1, 5),
            restock(OrderId::generate(), 1, 5),
            cmd(CommandKind::Reserve, order, 2, 1),
            restock(OrderId::generate(), 2, 1_000_000),
        ];
        let mut stock = HashMap::from([(pid(1), 0), (pid(2), MAX_STOCK - 10)]);
        let outcomes = outcomes(&commands, &mut stock, HashMap::new());
        assert_eq!(
            outcomes,
            [
                Outcome::Short { available: 0 },
                Outcome::Restocked,
                Outcome::Reserved,
                Outcome::Overfull {
                    available: MAX_STOCK - 11
                },
            ]
        );
        assert_eq!(stock[&pid(1)], 5);
        assert_eq!(stock[&pid(2)], MAX_STOCK - 11);
    }

    #[test]
    fn commands_naming_nothing_they_may_change_are_refused() {
        let order = OrderId::generate();
        let held = |quantity, releasable| {
            Some(Line {
                quantity,
                releasable,
            })
        };
        let reserve = cmd(CommandKind::Reserve, order, 1, 2);
        assert_eq!(refusal(&reserve, true, held(2, false)), None);
        let unknown = refusal(&reserve, false, held(2, false)).expect("refused");
        assert!(unknown.contains("unknown product"), "{unknown}");
        let no_line = refusal(&reserve, true, None).expect("refused");
        assert!(no_line.contains("no line"), "{no_line}");
        let other = refusal(&reserve, true, held(3, false)).expect("refused");
        assert!(other.contains("3 units"), "{other}");
        let release = cmd(CommandKind::Release, order, 1, 2);
        assert!(refusal(&release, true, None).is_some());
        assert_eq!(refusal(&release, true, held(2, true)), None);
        let kept = refusal(&release, true, held(2, false)).expect("a confirmed order's units");
        assert!(kept.contains("stay taken"), "{kept}");
        // A restock names no order line: only its product must exist.
        assert_eq!(refusal(&restock(order, 1, 5), true, None), None);
        assert!(refusal(&restock(order, 1, 5), false, None).is_some());
    }
}
