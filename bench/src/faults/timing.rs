//! How long each part of a phase of the fault suite lasts: `--quick` or the full run.

use serde::Serialize;
use std::time::Duration;

/// The bound on a failover's time to recover, quick or not.
const FAILOVER_BOUND: Duration = Duration::from_secs(20);

/// How long each part of a phase lasts.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Timing {
    /// Shoppers in the closed loop.
    pub shoppers: u64,
    /// Traffic before the fault.
    pub warmup: Duration,
    /// How long a fault the suite mends lasts (but see `stall`); a failover lasts until the shop
    /// has recovered by itself.
    pub outage: Duration,
    /// Traffic after the repair (a failover's: after its node is back and the topology whole).
    pub after: Duration,
    /// Every accepted order must be decided within this, once the fault is repaired (and the
    /// pipeline must settle within it).
    pub bound: Duration,
    /// A failover's time to recover, from the injection, must be within this (issue 23: 20 s).
    pub failover_bound: Duration,
    /// How long a worker stays paused or cut off beside a live one: longer than the lease, so
    /// that only a take-over decides its orders in time.
    pub stall: Duration,
}

impl Timing {
    pub fn quick() -> Self {
        Self {
            shoppers: 8,
            warmup: Duration::from_secs(2),
            outage: Duration::from_secs(2),
            after: Duration::from_secs(2),
            bound: Duration::from_secs(60),
            failover_bound: FAILOVER_BOUND,
            stall: Duration::from_secs(15),
        }
    }

    pub fn full() -> Self {
        Self {
            shoppers: 24,
            warmup: Duration::from_secs(5),
            outage: Duration::from_secs(8),
            after: Duration::from_secs(8),
            bound: Duration::from_secs(60),
            failover_bound: FAILOVER_BOUND,
            stall: Duration::from_secs(30),
        }
    }
}
