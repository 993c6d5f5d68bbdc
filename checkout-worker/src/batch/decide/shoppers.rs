//! The per-shopper limits' side of a batch: [`Shoppers`].

use shop_domain::{
    messages::{CommandKind, InventoryCommand},
    ProductId, ShopperLimit, UserId,
};
use shop_infra::orders::{
    lane::{Line, LineKey},
    shoppers::ShopperKey,
};
use std::collections::HashMap;

/// What the per-shopper limits need to decide a batch: the limits of its products that have one,
/// the shopper of each order line it names, and what each shopper holds of a product (the counts
/// read before the batch; [`super::decide`] keeps them up to date).
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

    /// The counts `commands` may read or move, to be read before [`super::decide`]: each reserve's of a
    /// product with a limit, and each release's (its reserve may have been counted under a limit
    /// since lifted).
    pub fn keys(&self, commands: &[InventoryCommand]) -> Vec<ShopperKey> {
        let mut keys: Vec<ShopperKey> = commands
            .iter()
            .filter(|c| match c.kind {
                CommandKind::Reserve => self.limits.contains_key(&c.product_id),
                CommandKind::Release => true,
                CommandKind::Restock | CommandKind::Set => false,
            })
            .filter_map(|c| Some((c.product_id, self.shopper(c)?)))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    pub(super) fn shopper(&self, command: &InventoryCommand) -> Option<UserId> {
        self.of_line
            .get(&(command.order_id, command.product_id))
            .copied()
    }

    /// The count a command's line moves and its limit, if its product has one.
    pub(super) fn limited(&self, command: &InventoryCommand) -> Option<(ShopperKey, ShopperLimit)> {
        let limit = *self.limits.get(&command.product_id)?;
        Some(((command.product_id, self.shopper(command)?), limit))
    }

    /// What the shopper may still take of the command's product, if it has a limit.
    pub(super) fn allowance(&self, command: &InventoryCommand) -> Option<i64> {
        let (key, limit) = self.limited(command)?;
        Some(limit.allowance(self.held.get(&key).copied().unwrap_or(0)))
    }

    /// Adds `units` to the shopper's count if the product has a limit; whether it did.
    pub(super) fn count(&mut self, command: &InventoryCommand, units: i64) -> bool {
        let Some((key, _)) = self.limited(command) else {
            return false;
        };
        *self.held.entry(key).or_insert(0) += units;
        true
    }

    /// Takes `units` off the shopper's count (the release of a counted reserve), whether or not
    /// the product still has a limit.
    pub(super) fn uncount(&mut self, command: &InventoryCommand, units: i64) {
        if let Some(shopper) = self.shopper(command) {
            *self.held.entry((command.product_id, shopper)).or_insert(0) -= units;
        }
    }
}
