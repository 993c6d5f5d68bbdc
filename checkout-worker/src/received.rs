//! A record a lane read from the inventory topic: the command in it, or why it cannot be
//! applied (then it is parked, see [`crate::dead_letter`]).

use shop_domain::messages::{InventoryCommand, SCHEMA_VERSION};
use shop_infra::dead_letters::{Record, Source};

/// A record a lane read: the command in it, or why it cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub record: Record,
    pub read: Result<InventoryCommand, String>,
}

impl Received {
    /// Reads `record`: it must decode as a command, and its version must not be newer than this
    /// worker's.
    pub fn read(record: Record) -> Self {
        let read = match serde_json::from_slice::<InventoryCommand>(&record.payload) {
            Ok(command) if command.v <= SCHEMA_VERSION => Ok(command),
            Ok(command) => Err(format!(
                "message version {} is newer than this worker's ({SCHEMA_VERSION})",
                command.v
            )),
            Err(error) => Err(format!("not an inventory command: {error}")),
        };
        Self { record, read }
    }

    /// A command handed to a batch directly rather than read from the topic (tests drive the
    /// step this way): its record is its JSON at position `local/<n>`.
    pub fn local(n: usize, command: InventoryCommand) -> Self {
        Self {
            record: Record {
                source: Source::InventoryTopic,
                position: format!("local/{n}"),
                topic: None,
                partition: None,
                offset: None,
                key: Some(command.product_id.to_string().into_bytes()),
                payload: serde_json::to_vec(&command).unwrap_or_default(),
            },
            read: Ok(command),
        }
    }

    /// [`Received::local`] for each of `commands`.
    pub fn all_local(commands: &[InventoryCommand]) -> Vec<Self> {
        commands
            .iter()
            .enumerate()
            .map(|(n, &c)| Self::local(n, c))
            .collect()
    }
}
