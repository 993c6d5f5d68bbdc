//! [`super::decide`]'s unit tests: stock, the ledger's duplicates, releases, restocks, refusals
//! and the per-shopper limits; sellers' sets in [`sets`].

use super::*;
use shop_domain::{OrderId, Quantity, ShopperLimit, UserId};

fn cmd(kind: CommandKind, order: OrderId, product: i64, quantity: i64) -> InventoryCommand {
    InventoryCommand::new(
        kind,
        order,
        ProductId::new(product).expect("id"),
        Quantity::new(quantity).expect("quantity"),
    )
}

/// Commands without queue positions (relayed before positions were carried).
fn unqueued(commands: &[InventoryCommand]) -> Vec<Queued> {
    commands.iter().map(|&c| c.into()).collect()
}

fn pid(id: i64) -> ProductId {
    ProductId::new(id).expect("id")
}

fn outcomes(
    commands: &[InventoryCommand],
    stock: &mut HashMap<ProductId, i64>,
    recorded: HashMap<LineKey, Recorded>,
) -> Vec<Outcome> {
    decide(
        &unqueued(commands),
        stock,
        recorded,
        &mut Shoppers::default(),
        &mut Sets::default(),
    )
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
            shopper: user(1),
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

fn user(id: i64) -> UserId {
    UserId::new(id).expect("user")
}

/// A batch's shoppers: product 1 limited to `limit`, each order's line of product 1 (and 2)
/// bought by its shopper, and what each shopper already holds of product 1.
fn shoppers(limit: i64, orders: &[(OrderId, i64)], held: &[(i64, i64)]) -> Shoppers {
    let limit = ShopperLimit::new(limit).expect("limit");
    Shoppers {
        limits: HashMap::from([(pid(1), limit)]),
        of_line: orders
            .iter()
            .flat_map(|&(o, u)| [((o, pid(1)), user(u)), ((o, pid(2)), user(u))])
            .collect(),
        held: held.iter().map(|&(u, n)| ((pid(1), user(u)), n)).collect(),
    }
}

/// Each decision's outcome and whether it was counted, and the shoppers after the batch.
fn decided(
    commands: &[InventoryCommand],
    stock: &mut HashMap<ProductId, i64>,
    recorded: HashMap<LineKey, Recorded>,
    shoppers: &mut Shoppers,
) -> Vec<(Outcome, bool)> {
    decide(
        &unqueued(commands),
        stock,
        recorded,
        shoppers,
        &mut Sets::default(),
    )
    .iter()
    .map(|d| (d.outcome, d.counted))
    .collect()
}

#[test]
fn a_shopper_reaches_the_limit_exactly_and_no_further() {
    let (a, b) = (OrderId::generate(), OrderId::generate());
    let mut shoppers = shoppers(2, &[(a, 7), (b, 7)], &[]);
    let mut stock = HashMap::from([(pid(1), 10)]);
    let commands = [
        cmd(CommandKind::Reserve, a, 1, 2),
        cmd(CommandKind::Reserve, b, 1, 1),
    ];
    let outcomes = decided(&commands, &mut stock, HashMap::new(), &mut shoppers);
    assert_eq!(
        outcomes,
        [
            (Outcome::Reserved, true),
            (Outcome::OverLimit { allowed: 0 }, false)
        ]
    );
    assert_eq!(shoppers.held[&(pid(1), user(7))], 2, "exactly the limit");
    assert_eq!(stock[&pid(1)], 8, "the refused line took nothing");
}

#[test]
fn one_unit_over_the_limit_refuses_the_whole_line() {
    let order = OrderId::generate();
    let mut shoppers = shoppers(3, &[(order, 7)], &[(7, 1)]);
    let mut stock = HashMap::from([(pid(1), 10), (pid(2), 10)]);
    let commands = [
        cmd(CommandKind::Reserve, order, 1, 3),
        cmd(CommandKind::Reserve, order, 2, 5),
    ];
    let outcomes = decided(&commands, &mut stock, HashMap::new(), &mut shoppers);
    assert_eq!(
        outcomes,
        [
            (Outcome::OverLimit { allowed: 2 }, false),
            (Outcome::Reserved, false)
        ],
        "product 2 has no limit: taken, and not counted (the order is rejected for the other)"
    );
    assert!(outcomes[0].0.refused_line());
    assert_eq!(shoppers.held[&(pid(1), user(7))], 1, "unchanged");
    let first = decide(
        &unqueued(&commands[..1]),
        &mut stock,
        HashMap::new(),
        &mut shoppers,
        &mut Sets::default(),
    );
    let line = line_decision(&first[0]).expect("the line is decided");
    assert_eq!(
        (line.status, line.reason_code, line.available),
        (LineStatus::Short, Some(LineReason::LimitExceeded), Some(2))
    );
}

#[test]
fn a_release_gives_counted_units_back_to_the_shopper() {
    let (old, earlier, later) = (
        OrderId::generate(),
        OrderId::generate(),
        OrderId::generate(),
    );
    let counted = |counted| Recorded {
        reserve: Some(true),
        counted,
        ..Recorded::default()
    };
    // `earlier` was counted; `old` was bought before the product had a limit.
    let recorded = HashMap::from([
        ((earlier, pid(1)), counted(true)),
        ((old, pid(1)), counted(false)),
    ]);
    let mut shoppers = shoppers(2, &[(old, 7), (earlier, 7), (later, 7)], &[(7, 2)]);
    let mut stock = HashMap::from([(pid(1), 0)]);
    let commands = [
        cmd(CommandKind::Reserve, later, 1, 2),
        cmd(CommandKind::Release, old, 1, 4),
        cmd(CommandKind::Release, earlier, 1, 2),
        cmd(CommandKind::Release, earlier, 1, 2),
    ];
    let mut outcomes = decided(&commands, &mut stock, recorded, &mut shoppers);
    assert_eq!(
        outcomes,
        [
            (Outcome::OverLimit { allowed: 0 }, false),
            (Outcome::Released, false),
            (Outcome::Released, true),
            (Outcome::Duplicate, false),
        ]
    );
    assert_eq!(shoppers.held[&(pid(1), user(7))], 0, "given back once");
    // Once the release is applied, a later order of the shopper may take them.
    let retry = OrderId::generate();
    shoppers.of_line.insert((retry, pid(1)), user(7));
    outcomes = decided(
        &[cmd(CommandKind::Reserve, retry, 1, 2)],
        &mut stock,
        HashMap::new(),
        &mut shoppers,
    );
    assert_eq!(outcomes, [(Outcome::Reserved, true)]);
    assert_eq!((shoppers.held[&(pid(1), user(7))], stock[&pid(1)]), (2, 4));
}

#[test]
fn two_orders_of_one_shopper_in_one_batch_share_the_limit() {
    let (a, b, c) = (
        OrderId::generate(),
        OrderId::generate(),
        OrderId::generate(),
    );
    let mut shoppers = shoppers(3, &[(a, 7), (b, 7), (c, 8)], &[]);
    let mut stock = HashMap::from([(pid(1), 100)]);
    let commands = [
        cmd(CommandKind::Reserve, a, 1, 2),
        cmd(CommandKind::Reserve, b, 1, 2),
        cmd(CommandKind::Reserve, c, 1, 3),
    ];
    let outcomes = decided(&commands, &mut stock, HashMap::new(), &mut shoppers);
    assert_eq!(
        outcomes,
        [
            (Outcome::Reserved, true),
            (Outcome::OverLimit { allowed: 1 }, false),
            (Outcome::Reserved, true),
        ],
        "another shopper has a limit of their own"
    );
    assert_eq!(
        (
            shoppers.held[&(pid(1), user(7))],
            shoppers.held[&(pid(1), user(8))]
        ),
        (2, 3)
    );
}

#[test]
fn the_counts_read_are_those_of_limited_reserves_and_of_releases() {
    let (a, b) = (OrderId::generate(), OrderId::generate());
    let shoppers = shoppers(2, &[(a, 7), (b, 8)], &[]);
    let keys = shoppers.keys(&[
        cmd(CommandKind::Reserve, a, 1, 1),
        cmd(CommandKind::Reserve, a, 2, 1),
        cmd(CommandKind::Release, b, 2, 1),
        restock(OrderId::generate(), 1, 5),
    ]);
    assert_eq!(keys, [(pid(1), user(7)), (pid(2), user(8))]);
}

mod sets;
