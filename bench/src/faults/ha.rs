//! The highly available stores of `scripts/ha.sh`, as the failover faults act on them: a node
//! killed or cut off by its role (the PostgreSQL primary, its synchronous standby, the Redis
//! master), named as the script prints it, and brought back until the topology is whole again.

use super::harness::{script, script_output};
use crate::error::BenchError;
use std::fmt;

/// A node of the topology (`pg1`, `pg2`, `redis1`, `redis2`), as `scripts/ha.sh` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node(String);

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `scripts/ha.sh action role` (`kill pg-primary`, `cut pg-primary`, `kill redis-master`, …):
/// the node it acted on.
pub async fn act(action: &str, role: &str) -> Result<Node, BenchError> {
    let printed = script_output("ha.sh", &[action, role]).await?;
    let node = node(&printed).ok_or_else(|| {
        BenchError::Unexpected(format!(
            "scripts/ha.sh {action} {role} named no node: {printed:?}"
        ))
    })?;
    eprintln!("    {action} {role}: {node}");
    Ok(node)
}

/// `scripts/ha.sh start NODE` after a kill: it rejoins (`pg_rewind`, `replicaof`); then until
/// the topology is whole again.
pub async fn start(node: &Node) -> Result<(), BenchError> {
    bring_back("start", node).await
}

/// `scripts/ha.sh heal NODE` after a cut; then until the topology is whole again.
pub async fn heal(node: &Node) -> Result<(), BenchError> {
    bring_back("heal", node).await
}

/// `scripts/ha.sh action NODE`, then `wait-healthy`: PostgreSQL has a primary and a synchronous
/// standby, Redis a master and a replica in sync (the script gives up after 60 s).
async fn bring_back(action: &str, node: &Node) -> Result<(), BenchError> {
    script("ha.sh", &[action, &node.0]).await?;
    script("ha.sh", &["wait-healthy"]).await
}

/// The node named on the last line printed: `pg` or `redis` followed by its number.
fn node(printed: &str) -> Option<Node> {
    let name = printed
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())?;
    let number = name
        .strip_prefix("pg")
        .or_else(|| name.strip_prefix("redis"))?;
    let numbered = !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit());
    numbered.then(|| Node(name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_is_read_from_the_last_line_printed() {
        assert_eq!(node("pg2\n"), Some(Node("pg2".into())));
        assert_eq!(node("  redis1  \n\n"), Some(Node("redis1".into())));
        assert_eq!(node("switching over\npg1\n"), Some(Node("pg1".into())));
        for wrong in [
            "",
            "\n",
            "pg\n",
            "pg-primary\n",
            "redis1x\n",
            "etcd1\n",
            "pg2 down\n",
        ] {
            assert_eq!(node(wrong), None, "{wrong:?}");
        }
    }
}
