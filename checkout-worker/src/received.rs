//! A record a lane read from the inventory topic: the command in it, or why it cannot be
//! applied (then it is parked, see [`crate::dead_letter`]), and its queue position (the field
//! `shop_domain::messages::QUEUED_FIELD` of its JSON, which the relay adds).

use shop_domain::messages::{InventoryCommand, QUEUED_FIELD, SCHEMA_VERSION};
use shop_infra::dead_letters::{Record, Source};

/// A record a lane read: the command in it, or why it cannot be applied, and its queue position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub record: Record,
    pub read: Result<InventoryCommand, String>,
    /// The id of the outbox row the command was written in; `None` for a record relayed without
    /// it (before positions were carried), or with one that is not a number.
    pub queued: Option<i64>,
}

/// The queue position a record's payload carries, if it is a JSON object whose [`QUEUED_FIELD`]
/// is an integer.
fn queued(payload: &[u8]) -> Option<i64> {
    serde_json::from_slice::<serde_json::Value>(payload)
        .ok()?
        .get(QUEUED_FIELD)?
        .as_i64()
}

impl Received {
    /// Reads `record`: it must decode as a command, and its version must not be newer than this
    /// worker's; its queue position is read beside it.
    pub fn read(record: Record) -> Self {
        let read = match serde_json::from_slice::<InventoryCommand>(&record.payload) {
            Ok(command) if command.v <= SCHEMA_VERSION => Ok(command),
            Ok(command) => Err(format!(
                "message version {} is newer than this worker's ({SCHEMA_VERSION})",
                command.v
            )),
            Err(error) => Err(format!("not an inventory command: {error}")),
        };
        let queued = queued(&record.payload);
        Self {
            record,
            read,
            queued,
        }
    }

    /// A command handed to a batch directly rather than read from the topic (tests drive the
    /// step this way): its record is its JSON at position `local/<n>`, with no queue position.
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
            queued: None,
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

#[cfg(test)]
mod tests {
    use super::queued;

    #[test]
    fn a_queue_position_is_an_integer_field_of_the_json() {
        assert_eq!(queued(br#"{"v":1,"queued":42}"#), Some(42));
        assert_eq!(queued(br#"{"v":1}"#), None, "relayed before positions");
        for odd in [
            &b""[..],
            b"x",
            b"42",
            b"\xff",
            br#"{"queued":"42"}"#,
            br#"{"queued":1.5}"#,
            br#"{"queued":null}"#,
            br#"[{"queued":1}]"#,
        ] {
            assert_eq!(queued(odd), None);
        }
    }
}
