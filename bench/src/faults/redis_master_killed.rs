//! The Redis master killed (SIGKILL): the Sentinels promote the replica and HAProxy sends clients
//! to it. Replication is asynchronous, so what the master had not yet passed on is gone (the
//! phase counts the sessions issued just before, `sessions.rs`); the node is then started again
//! and rejoins as the replica.

use super::ha::{self, Node};
use crate::error::BenchError;

pub const NAME: &str = "Redis master killed (Sentinel failover)";

pub async fn inject() -> Result<Node, BenchError> {
    ha::act("kill", "redis-master").await
}

pub async fn mend(node: &Node) -> Result<(), BenchError> {
    ha::start(node).await
}
