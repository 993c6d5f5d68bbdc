//! The Kafka message envelopes, as the checkout worker (`InventoryCommand`) and the notifier
//! (`OrderEvent`) read them from a topic: any bytes are decoded or refused, and whatever decodes
//! re-encodes to JSON that decodes to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shop_domain::{
    messages::{CommandKind, InventoryCommand, OrderEvent},
    MAX_LINE_QUANTITY, MAX_RESTOCK, MAX_STOCK,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(command) = serde_json::from_slice::<InventoryCommand>(data) {
        assert!(command.product_id.get() > 0, "{command:?}");
        // A set's quantity is a whole stock (0 included); every other kind's, units moved.
        let quantity = i64::from(command.quantity.get());
        let range = match command.kind {
            CommandKind::Set => 0..=MAX_STOCK,
            _ => 1..=i64::from(MAX_RESTOCK),
        };
        assert!(range.contains(&quantity), "{command:?}");
        let json = serde_json::to_vec(&command).expect("a command encodes");
        let again = serde_json::from_slice::<InventoryCommand>(&json);
        assert_eq!(
            again.ok(),
            Some(command),
            "{}",
            String::from_utf8_lossy(&json)
        );
    }

    if let Ok(event) = serde_json::from_slice::<OrderEvent>(data) {
        if let OrderEvent::OrderCreated { lines, .. } = &event {
            for line in lines {
                assert!(line.product_id.get() > 0, "{event:?}");
                assert!(
                    (1..=MAX_LINE_QUANTITY).contains(&line.quantity.get()),
                    "{event:?}"
                );
            }
        }
        let json = serde_json::to_vec(&event).expect("an event encodes");
        let again = serde_json::from_slice::<OrderEvent>(&json);
        assert_eq!(
            again.ok().as_ref(),
            Some(&event),
            "{}",
            String::from_utf8_lossy(&json)
        );
    }
});
