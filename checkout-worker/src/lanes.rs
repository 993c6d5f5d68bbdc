//! What the parts of the inventory consumer share: the receive loop ([`crate::consumer`]), the
//! fetching ([`crate::fetch`]), the membership task and the lanes ([`crate::lane`]).

use crate::{
    announce::Announcer, health::Health, kafka::InventoryConsumer, membership::Membership, relay,
};
use std::{
    sync::{atomic::AtomicBool, Arc},
    time::Duration,
};
use tokio_util::sync::CancellationToken;

pub struct Lanes {
    /// Also names the pool, topic and partition count the lanes use.
    pub membership: Membership,
    pub consumer: Arc<InventoryConsumer>,
    pub announcer: Announcer,
    pub health: Arc<Health>,
    pub max_batch: usize,
    /// Longest a batch's transaction may take before it is abandoned and retried.
    pub batch_timeout: Duration,
    /// `WORKER_BATCH_ATTEMPTS` (at least 1).
    pub batch_attempts: u32,
    pub stop: CancellationToken,
    /// Set when a lane ended or a take-over failed: the next heartbeat claims everything again.
    pub reclaim: AtomicBool,
    /// `CONSUMER_IDLE_PAUSE_MS`: idle partitions stop being fetched after this
    /// ([`crate::idle::Idle`]).
    pub idle_pause: Duration,
    /// Wakes this process's relay: a batch here wrote outbox rows, another process announced
    /// some (`outbox_written`), or the LISTEN connection was made again (`crate::wake`).
    pub relay_wake: Arc<relay::Wake>,
}
