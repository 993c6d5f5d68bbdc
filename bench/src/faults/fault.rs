//! [`Fault`]: the faults the suite knows, in the order it runs them, and what each one's
//! injection and repair are (each in a file of its own). [`Fault::ALL`] acts on the single
//! PostgreSQL, Redis and broker of `scripts/service.sh`; [`Fault::HA`] on the highly available
//! stores of `scripts/ha.sh` (and the broker, which stays one node), where the shop recovers from
//! a failover by itself: the repair only brings the node back for the next phase.

use super::{
    api_killed, broker_killed, broker_restart, combined, ha::Node, pg_primary_cut_off,
    pg_primary_killed, pg_standby_killed, postgres_restart, redis_lost, redis_master_killed,
    timing::Timing, worker_cut_off, worker_joins, worker_killed, worker_paused,
};
use crate::{error::BenchError, proxy::Proxy, system::System};
use std::{future::Future, time::Duration};

/// What is broken, and how it is mended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL of the worker while it applies batches, then a restart.
    WorkerKilled,
    /// The broker stopped and started again on its durable storage.
    BrokerRestart,
    /// PostgreSQL stopped (fast) and started again.
    PostgresRestart,
    /// Redis stopped, then started with none of the shop's keys (flushed).
    RedisLost,
    /// The relay stopped (worker killed), orders accepted into the outbox, then the API killed:
    /// orders accepted and not yet handed to Kafka, with no process left that accepted them.
    ApiKilledBeforeHandOff,
    /// A second worker joins (partitions rebalance), then leaves with SIGTERM.
    WorkerJoinsAndLeaves,
    /// A second worker joins, is paused (SIGSTOP) with a batch's transaction open, resumed after
    /// the stall, then leaves.
    WorkerPaused,
    /// A second worker, reaching PostgreSQL through a [`Proxy`], joins and is cut off from it
    /// (half-open) with a batch's transaction open; the cut is mended after the stall, then the
    /// worker leaves.
    WorkerCutOff,
    /// The worker and the API killed, the broker and Redis stopped, all at once.
    Combined,
    /// HA: the PostgreSQL primary's node killed (SIGKILL); Patroni fails over. Then started
    /// again.
    PgPrimaryKilled,
    /// HA: the PostgreSQL primary cut off (half-open); Patroni fails over. Then healed.
    PgPrimaryCutOff,
    /// HA: the synchronous standby killed; the primary must go on. Then started again.
    PgStandbyKilled,
    /// HA: the Redis master killed; the Sentinels fail over. Then started again.
    RedisMasterKilled,
    /// The broker killed (SIGKILL), then started again on its durable storage.
    BrokerKilled,
}

/// What a fault leaves in place until [`Fault::repair`]: the proxy of a worker cut off, the node
/// of the HA topology a failover acted on.
#[derive(Default)]
pub struct Broken {
    pub proxy: Option<Proxy>,
    pub node: Option<Node>,
}

impl Broken {
    /// Keeps the node a failover's injection acted on.
    async fn hold(
        &mut self,
        injected: impl Future<Output = Result<Node, BenchError>>,
    ) -> Result<(), BenchError> {
        self.node = Some(injected.await?);
        Ok(())
    }

    /// The node kept, for its repair.
    fn take_node(&mut self) -> Result<Node, BenchError> {
        self.node
            .take()
            .ok_or_else(|| BenchError::Setup("no node to bring back".into()))
    }
}

impl Fault {
    pub const ALL: [Fault; 9] = [
        Fault::WorkerKilled,
        Fault::BrokerRestart,
        Fault::PostgresRestart,
        Fault::RedisLost,
        Fault::ApiKilledBeforeHandOff,
        Fault::WorkerJoinsAndLeaves,
        Fault::WorkerPaused,
        Fault::WorkerCutOff,
        Fault::Combined,
    ];

    /// The faults of the highly available topology (`shop-bench faults --ha`).
    pub const HA: [Fault; 5] = [
        Fault::PgPrimaryKilled,
        Fault::PgPrimaryCutOff,
        Fault::PgStandbyKilled,
        Fault::RedisMasterKilled,
        Fault::BrokerKilled,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::WorkerKilled => worker_killed::NAME,
            Self::BrokerRestart => broker_restart::NAME,
            Self::PostgresRestart => postgres_restart::NAME,
            Self::RedisLost => redis_lost::NAME,
            Self::ApiKilledBeforeHandOff => api_killed::NAME,
            Self::WorkerJoinsAndLeaves => worker_joins::NAME,
            Self::WorkerPaused => worker_paused::NAME,
            Self::WorkerCutOff => worker_cut_off::NAME,
            Self::Combined => combined::NAME,
            Self::PgPrimaryKilled => pg_primary_killed::NAME,
            Self::PgPrimaryCutOff => pg_primary_cut_off::NAME,
            Self::PgStandbyKilled => pg_standby_killed::NAME,
            Self::RedisMasterKilled => redis_master_killed::NAME,
            Self::BrokerKilled => broker_killed::NAME,
        }
    }

    /// Whether every order of the phase must be decided within the stall bound: the system as a
    /// whole stays up, only one of two workers stalls.
    pub fn bounded(self) -> bool {
        matches!(self, Self::WorkerPaused | Self::WorkerCutOff)
    }

    /// Whether the shop recovers by itself (a store fails over): its time to recover is measured
    /// from the injection, held to `Timing::failover_bound`, and the repair waits until then.
    pub fn fails_over(self) -> bool {
        matches!(
            self,
            Self::PgPrimaryKilled
                | Self::PgPrimaryCutOff
                | Self::PgStandbyKilled
                | Self::RedisMasterKilled
        )
    }

    /// Whether sessions issued just before it may be lost (Redis replicates asynchronously):
    /// the phase counts them.
    pub fn puts_sessions_at_risk(self) -> bool {
        self == Self::RedisMasterKilled
    }

    /// How long a fault the suite mends lasts (a failover lasts until the shop recovers).
    pub fn outage(self, timing: Timing) -> Duration {
        if self.bounded() {
            timing.stall
        } else {
            timing.outage
        }
    }

    /// Breaks it. A worker cut off keeps its proxy in `broken` until [`Fault::repair`], a
    /// failover the node it acted on.
    pub async fn inject(self, system: &mut System, broken: &mut Broken) -> Result<(), BenchError> {
        match self {
            Self::WorkerKilled => worker_killed::inject(system).await,
            Self::BrokerRestart => broker_restart::inject().await,
            Self::PostgresRestart => postgres_restart::inject().await,
            Self::RedisLost => redis_lost::inject().await,
            Self::ApiKilledBeforeHandOff => api_killed::inject(system).await,
            Self::WorkerJoinsAndLeaves => worker_joins::inject(system).await,
            Self::WorkerPaused => worker_paused::inject(system).await,
            Self::WorkerCutOff => worker_cut_off::inject(system, &mut broken.proxy).await,
            Self::Combined => combined::inject(system).await,
            Self::BrokerKilled => broker_killed::inject().await,
            Self::PgPrimaryKilled => broken.hold(pg_primary_killed::inject()).await,
            Self::PgPrimaryCutOff => broken.hold(pg_primary_cut_off::inject()).await,
            Self::PgStandbyKilled => broken.hold(pg_standby_killed::inject()).await,
            Self::RedisMasterKilled => broken.hold(redis_master_killed::inject()).await,
        }
    }

    /// Mends it. For a stalled worker: how many of its batches the fence refused once it came
    /// back. For a failover: its node back, and the topology whole again.
    pub async fn repair(
        self,
        system: &mut System,
        broken: &mut Broken,
    ) -> Result<Option<u64>, BenchError> {
        match self {
            Self::WorkerPaused => return worker_paused::repair(system).await.map(Some),
            Self::WorkerCutOff => {
                return worker_cut_off::repair(system, &mut broken.proxy)
                    .await
                    .map(Some)
            }
            Self::WorkerKilled => worker_killed::mend(system).await?,
            Self::BrokerRestart | Self::BrokerKilled => broker_restart::mend().await?,
            Self::PostgresRestart => postgres_restart::mend().await?,
            Self::RedisLost => redis_lost::mend(system).await?,
            Self::ApiKilledBeforeHandOff => api_killed::mend(system).await?,
            Self::WorkerJoinsAndLeaves => worker_joins::mend(system).await?,
            Self::Combined => combined::mend(system).await?,
            Self::PgPrimaryKilled => pg_primary_killed::mend(&broken.take_node()?).await?,
            Self::PgPrimaryCutOff => pg_primary_cut_off::mend(&broken.take_node()?).await?,
            Self::PgStandbyKilled => pg_standby_killed::mend(&broken.take_node()?).await?,
            Self::RedisMasterKilled => redis_master_killed::mend(&broken.take_node()?).await?,
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn the_ha_list_is_failovers_and_the_broker_kill_and_the_single_node_list_has_none() {
        let failovers: Vec<Fault> = Fault::HA.into_iter().filter(|f| f.fails_over()).collect();
        assert_eq!(failovers.len(), 4);
        assert!(!Fault::BrokerKilled.fails_over());
        assert!(Fault::ALL.iter().all(|f| !f.fails_over()));
        let sessions: Vec<Fault> = Fault::ALL
            .into_iter()
            .chain(Fault::HA)
            .filter(|f| f.puts_sessions_at_risk())
            .collect();
        assert_eq!(sessions, [Fault::RedisMasterKilled]);
        let names: HashSet<&str> = Fault::ALL
            .into_iter()
            .chain(Fault::HA)
            .map(Fault::name)
            .collect();
        assert_eq!(
            names.len(),
            Fault::ALL.len() + Fault::HA.len(),
            "names are unique"
        );
    }
}
