//! The PostgreSQL primary cut off (every packet to and from its node dropped, connections left
//! half-open): its leader key expires, Patroni promotes the synchronous standby, HAProxy's checks
//! of the old primary fail. The shop recovers by itself; the cut is then healed and the old
//! primary rejoins as the standby.

use super::ha::{self, Node};
use crate::error::BenchError;

pub const NAME: &str = "PostgreSQL primary cut off (half-open)";

pub async fn inject() -> Result<Node, BenchError> {
    ha::act("cut", "pg-primary").await
}

pub async fn mend(node: &Node) -> Result<(), BenchError> {
    ha::heal(node).await
}
