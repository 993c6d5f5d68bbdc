//! How long each part of a phase of the fault suite lasts: `--quick` or the full run.

use serde::Serialize;
use std::time::Duration;

/// How long each part of a phase lasts.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Timing {
    /// Shoppers in the closed loop.
    pub shoppers: u64,
    /// Traffic before the fault.
    pub warmup: Duration,
    /// How long the fault lasts (but see `stall`).
    pub outage: Duration,
    /// Traffic after the repair.
    pub after: Duration,
    /// Every accepted order must be decided within this, once the fault is repaired.
    pub bound: Duration,
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
            stall: Duration::from_secs(30),
        }
    }
}
