//! [`Fault`]: the faults the suite knows, in the order it runs them, and what each one's
//! injection and repair are (each in a file of its own).

use super::{
    api_killed, broker_restart, combined, postgres_restart, redis_lost, timing::Timing,
    worker_cut_off, worker_joins, worker_killed, worker_paused,
};
use crate::{error::BenchError, proxy::Proxy, system::System};
use std::time::Duration;

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
        }
    }

    /// Whether every order of the phase must be decided within the stall bound: the system as a
    /// whole stays up, only one of two workers stalls.
    pub fn bounded(self) -> bool {
        matches!(self, Self::WorkerPaused | Self::WorkerCutOff)
    }

    /// How long the fault lasts.
    pub fn outage(self, timing: Timing) -> Duration {
        if self.bounded() {
            timing.stall
        } else {
            timing.outage
        }
    }

    /// Breaks it. A worker cut off keeps its proxy in `cut` until [`Fault::repair`].
    pub async fn inject(
        self,
        system: &mut System,
        cut: &mut Option<Proxy>,
    ) -> Result<(), BenchError> {
        match self {
            Self::WorkerKilled => worker_killed::inject(system).await,
            Self::BrokerRestart => broker_restart::inject().await,
            Self::PostgresRestart => postgres_restart::inject().await,
            Self::RedisLost => redis_lost::inject().await,
            Self::ApiKilledBeforeHandOff => api_killed::inject(system).await,
            Self::WorkerJoinsAndLeaves => worker_joins::inject(system).await,
            Self::WorkerPaused => worker_paused::inject(system).await,
            Self::WorkerCutOff => worker_cut_off::inject(system, cut).await,
            Self::Combined => combined::inject(system).await,
        }
    }

    /// Mends it. For a stalled worker: how many of its batches the fence refused once it came
    /// back.
    pub async fn repair(
        self,
        system: &mut System,
        cut: &mut Option<Proxy>,
    ) -> Result<Option<u64>, BenchError> {
        match self {
            Self::WorkerPaused => return worker_paused::repair(system).await.map(Some),
            Self::WorkerCutOff => return worker_cut_off::repair(system, cut).await.map(Some),
            Self::WorkerKilled => worker_killed::mend(system).await?,
            Self::BrokerRestart => broker_restart::mend().await?,
            Self::PostgresRestart => postgres_restart::mend().await?,
            Self::RedisLost => redis_lost::mend(system).await?,
            Self::ApiKilledBeforeHandOff => api_killed::mend(system).await?,
            Self::WorkerJoinsAndLeaves => worker_joins::mend(system).await?,
            Self::Combined => combined::mend(system).await?,
        }
        Ok(None)
    }
}
