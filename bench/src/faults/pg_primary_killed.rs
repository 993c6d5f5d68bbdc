//! The PostgreSQL primary killed (SIGKILL of every process of its node): Patroni promotes the
//! synchronous standby and HAProxy sends clients to it. The shop recovers by itself; the node is
//! then started again and rejoins as the standby.

use super::ha::{self, Node};
use crate::error::BenchError;

pub const NAME: &str = "PostgreSQL primary killed (failover)";

pub async fn inject() -> Result<Node, BenchError> {
    ha::act("kill", "pg-primary").await
}

pub async fn mend(node: &Node) -> Result<(), BenchError> {
    ha::start(node).await
}
