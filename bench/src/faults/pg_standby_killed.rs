//! The synchronous standby killed: commits wait on it until Patroni drops synchronous replication
//! (the primary must not stall for longer); the node is then started again and becomes the
//! synchronous standby once more.

use super::ha::{self, Node};
use crate::error::BenchError;

pub const NAME: &str = "PostgreSQL synchronous standby killed";

pub async fn inject() -> Result<Node, BenchError> {
    ha::act("kill", "pg-standby").await
}

pub async fn mend(node: &Node) -> Result<(), BenchError> {
    ha::start(node).await
}
