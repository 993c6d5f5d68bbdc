//! Sellers' sets against the commands that overtake them or that they overtake.

use super::*;

/// A seller's set of product 1's stock to `count`, queued at `at`.
fn set_at(at: i64, count: i64) -> Queued {
    let id = OrderId::generate();
    let stock = shop_domain::Stock::new(count).expect("stock");
    Queued {
        command: InventoryCommand::set(id, pid(1), stock),
        queued: Some(at),
    }
}

/// `command` queued at `at`.
fn at(at: i64, command: InventoryCommand) -> Queued {
    Queued {
        command,
        queued: Some(at),
    }
}

/// The ledger of a line of product 1 whose reserve took its units.
fn reserved(order: OrderId) -> HashMap<LineKey, Recorded> {
    HashMap::from([(
        (order, pid(1)),
        Recorded {
            reserve: Some(true),
            ..Recorded::default()
        },
    )])
}

/// Decides `commands` on product 1 from `stock` with `sets`: the outcomes, and the stock left.
fn with_sets(
    commands: &[Queued],
    stock: i64,
    recorded: HashMap<LineKey, Recorded>,
    sets: &mut Sets,
) -> (Vec<Outcome>, i64) {
    let mut stock = HashMap::from([(pid(1), stock)]);
    let decisions = decide(
        commands,
        &mut stock,
        recorded,
        &mut Shoppers::default(),
        sets,
    );
    (
        decisions.iter().map(|d| d.outcome).collect(),
        stock[&pid(1)],
    )
}

#[test]
fn a_count_after_a_cancel_is_the_count_whichever_arrives_first() {
    // Issue 24: 5 sold out, the buyer cancels (release queued at 10), the seller counts 5 on
    // the shelf (set queued at 11).
    let order = OrderId::generate();
    let release = at(10, cmd(CommandKind::Release, order, 1, 5));
    let count = set_at(11, 5);
    let (outcomes, stock) = with_sets(&[release, count], 0, reserved(order), &mut Sets::default());
    assert_eq!(outcomes, [Outcome::Released, Outcome::Set { available: 5 }]);
    assert_eq!(stock, 5, "release first");

    let mut sets = Sets::default();
    let (outcomes, stock) = with_sets(&[count, release], 0, reserved(order), &mut sets);
    assert_eq!(outcomes, [Outcome::Set { available: 5 }, Outcome::Absorbed]);
    assert_eq!(
        stock, 5,
        "set first: the release is in the count, not on top of it"
    );
    assert_eq!(sets.at[&pid(1)], 11);

    // Across batches: the set's position was stored with the product.
    let mut stored = Sets {
        at: HashMap::from([(pid(1), 11)]),
        ..Sets::default()
    };
    let mut stock = HashMap::from([(pid(1), 5)]);
    let decisions = decide(
        &[release],
        &mut stock,
        reserved(order),
        &mut Shoppers::default(),
        &mut stored,
    );
    assert_eq!(
        (
            decisions[0].outcome,
            decisions[0].stock_delta,
            stock[&pid(1)]
        ),
        (Outcome::Absorbed, 0, 5)
    );
    assert!(
        decisions[0].outcome.applied(),
        "the line was released all the same"
    );
    let line = line_decision(&decisions[0]).expect("the line is decided");
    assert_eq!(line.status, LineStatus::Released);
}

#[test]
fn commands_queued_after_a_count_that_arrive_first_keep_their_effect() {
    let (restocked, buyer) = (OrderId::generate(), OrderId::generate());
    // A restock of 3 queued after the count of 5, applied before it: 8.
    let (outcomes, stock) = with_sets(
        &[at(12, restock(restocked, 1, 3)), set_at(11, 5)],
        0,
        HashMap::new(),
        &mut Sets::default(),
    );
    assert_eq!(
        outcomes,
        [Outcome::Restocked, Outcome::Set { available: 8 }]
    );
    assert_eq!(stock, 8);
    // The same with the restock applied in an earlier batch (read from the ledger).
    let mut sets = Sets {
        applied: HashMap::from([(pid(1), vec![(12, 3), (9, 40)])]),
        ..Sets::default()
    };
    let (_, stock) = with_sets(&[set_at(11, 5)], 3, HashMap::new(), &mut sets);
    assert_eq!(stock, 8, "only what was queued after the count counts");
    // A checkout queued after the count took 2 of the old stock first: 5 - 2.
    let (outcomes, stock) = with_sets(
        &[
            at(12, cmd(CommandKind::Reserve, buyer, 1, 2)),
            set_at(11, 5),
        ],
        10,
        HashMap::new(),
        &mut Sets::default(),
    );
    assert_eq!(outcomes, [Outcome::Reserved, Outcome::Set { available: 3 }]);
    assert_eq!(stock, 3);
}

#[test]
fn a_reserve_queued_before_a_count_still_takes_its_units() {
    // Never absorbed: the count cannot hold units a checkout had not taken yet.
    let buyer = OrderId::generate();
    let (outcomes, stock) = with_sets(
        &[
            set_at(11, 5),
            at(10, cmd(CommandKind::Reserve, buyer, 1, 2)),
        ],
        0,
        HashMap::new(),
        &mut Sets::default(),
    );
    assert_eq!(outcomes, [Outcome::Set { available: 5 }, Outcome::Reserved]);
    assert_eq!(stock, 3);
}

#[test]
fn the_release_of_a_reserve_that_took_its_units_from_a_count_gives_them_back() {
    // The checkout (reserve queued at 9) is cancelled (release at 10) before the seller counts 5
    // on the shelf (set at 11); the reserve reaches the lane only after the count, and takes 2
    // from it. Its release is queued before the count, but the count never held those 2 as
    // taken: absorbing the release would lose them.
    let buyer = OrderId::generate();
    let commands = [
        set_at(11, 5),
        at(9, cmd(CommandKind::Reserve, buyer, 1, 2)),
        at(10, cmd(CommandKind::Release, buyer, 1, 2)),
    ];
    let (outcomes, stock) = with_sets(&commands, 0, HashMap::new(), &mut Sets::default());
    assert_eq!(
        outcomes,
        [
            Outcome::Set { available: 5 },
            Outcome::Reserved,
            Outcome::Released
        ]
    );
    assert_eq!(stock, 5, "the shelf's 5, none lost");

    // Across batches: the reserve's ledger row says which count it took its units from.
    let mut stored = Sets {
        at: HashMap::from([(pid(1), 11)]),
        ..Sets::default()
    };
    let (first, stock) = with_sets(&commands[1..2], 5, HashMap::new(), &mut stored);
    assert_eq!((first, stock), (vec![Outcome::Reserved], 3));
    let late = recorded(vec![Seen {
        line: (buyer, pid(1)),
        kind: CommandKind::Reserve,
        applied: true,
        counted: false,
        reserved_under: Some(11),
    }]);
    let (second, stock) = with_sets(&commands[2..], 3, late, &mut stored);
    assert_eq!((second, stock), (vec![Outcome::Released], 5));

    // A reserve applied before the count (under no count, or an older one) is in it: absorbed.
    for under in [None, Some(4)] {
        let early = HashMap::from([(
            (buyer, pid(1)),
            Recorded {
                reserve: Some(true),
                reserved_under: under,
                ..Recorded::default()
            },
        )]);
        let (outcome, stock) = with_sets(&commands[2..], 5, early, &mut stored);
        assert_eq!((outcome, stock), (vec![Outcome::Absorbed], 5), "{under:?}");
    }
}

#[test]
fn a_restock_queued_before_a_count_is_in_it() {
    let (outcomes, stock) = with_sets(
        &[set_at(11, 5), at(10, restock(OrderId::generate(), 1, 3))],
        0,
        HashMap::new(),
        &mut Sets::default(),
    );
    assert_eq!(outcomes, [Outcome::Set { available: 5 }, Outcome::Absorbed]);
    assert_eq!(stock, 5);
}

#[test]
fn an_older_count_after_a_newer_one_changes_nothing() {
    let mut sets = Sets::default();
    let (outcomes, stock) = with_sets(
        &[set_at(12, 7), set_at(11, 3)],
        0,
        HashMap::new(),
        &mut sets,
    );
    assert_eq!(
        outcomes,
        [Outcome::Set { available: 7 }, Outcome::Superseded]
    );
    assert!(!Outcome::Superseded.applied());
    assert_eq!((stock, sets.at[&pid(1)]), (7, 12));
    // In queue order, the newer count wins as well.
    let mut sets = Sets::default();
    let (_, stock) = with_sets(
        &[set_at(11, 3), set_at(12, 7)],
        0,
        HashMap::new(),
        &mut sets,
    );
    assert_eq!((stock, sets.at[&pid(1)]), (7, 12));
}

#[test]
fn a_count_of_zero_empties_the_stock_and_never_goes_below() {
    let mut stock = HashMap::from([(pid(1), 4)]);
    let decisions = decide(
        &[set_at(11, 0)],
        &mut stock,
        HashMap::new(),
        &mut Shoppers::default(),
        &mut Sets::default(),
    );
    assert_eq!(
        (
            decisions[0].outcome,
            decisions[0].stock_delta,
            stock[&pid(1)]
        ),
        (Outcome::Set { available: 0 }, -4, 0)
    );
    assert_eq!(line_decision(&decisions[0]), None, "a set names no line");
    // A checkout queued after the count took 2 first: it keeps them, the stock stays at 0.
    let (_, stock) = with_sets(
        &[
            at(12, cmd(CommandKind::Reserve, OrderId::generate(), 1, 2)),
            set_at(11, 0),
        ],
        4,
        HashMap::new(),
        &mut Sets::default(),
    );
    assert_eq!(stock, 0);
}

#[test]
fn a_repeated_count_is_a_duplicate() {
    let count = set_at(11, 5);
    let (outcomes, stock) = with_sets(&[count, count], 2, HashMap::new(), &mut Sets::default());
    assert_eq!(
        outcomes,
        [Outcome::Set { available: 5 }, Outcome::Duplicate]
    );
    assert_eq!(stock, 5);
    let recorded = recorded(vec![Seen {
        line: (count.command.order_id, pid(1)),
        kind: CommandKind::Set,
        applied: true,
        counted: false,
        reserved_under: None,
    }]);
    let (outcomes, stock) = with_sets(&[count], 2, recorded, &mut Sets::default());
    assert_eq!((outcomes, stock), (vec![Outcome::Duplicate], 2));
}

#[test]
fn commands_without_a_position_are_never_absorbed() {
    let order = OrderId::generate();
    let mut sets = Sets {
        at: HashMap::from([(pid(1), 11)]),
        ..Sets::default()
    };
    let release = cmd(CommandKind::Release, order, 1, 5);
    let (outcomes, stock) = with_sets(&[release.into()], 5, reserved(order), &mut sets);
    assert_eq!((outcomes, stock), (vec![Outcome::Released], 10));
}

#[test]
fn the_ledger_is_read_after_the_lowest_count_that_may_apply() {
    let sets = Sets {
        at: HashMap::from([(pid(1), 11)]),
        ..Sets::default()
    };
    let commands = [
        set_at(15, 1),
        set_at(13, 1),
        set_at(9, 1),
        at(20, restock(OrderId::generate(), 2, 1)),
        Queued {
            command: InventoryCommand::set(
                OrderId::generate(),
                pid(3),
                shop_domain::Stock::new(1).expect("stock"),
            ),
            queued: Some(4),
        },
    ];
    assert_eq!(sets.after(&commands), [(pid(1), 11), (pid(3), 4)]);
}
