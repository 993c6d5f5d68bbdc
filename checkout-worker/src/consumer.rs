//! The inventory consumer's receive loop: it runs one sequential lane ([`crate::lane`]) per
//! owned partition and hands each lane the records fetched for it.
//!
//! A membership task ([`Membership::keep`](crate::membership::Membership::keep)) heartbeats on its
//! own schedule, so a slow lane or a full channel never delays it, and publishes which partitions
//! this worker owns. Whenever that changes, or the lease lapsed, or a lane ended, the receive loop
//! claims the owned partitions afresh (new epochs, [`Lanes::take_over`]), assigns the consumer
//! exactly those from their positions in PostgreSQL, and starts a new lane for each; the old
//! lanes finish the batch in hand, which the fence refuses if the partition is no longer theirs.
//! Partitions idle for a while stop being fetched ([`Idle`]) until a relay announces commands
//! for them ([`crate::wake`]) or the safety net's look finds their log grew; a partition whose
//! lane takes nothing for `HOLD_AFTER` is held (not fetched) so that the others go on.

use crate::{
    error::Error,
    fetch::look,
    idle::Idle,
    lane::{lane, Envelope, LaneEnd},
    lanes::Lanes,
    membership::Ownership,
    metrics, wake,
    wake::Announced,
};
use rdkafka::message::{BorrowedMessage, Message};
use std::{
    collections::HashMap,
    ops::ControlFlow,
    sync::{atomic::Ordering, Arc},
    time::{Duration, Instant},
};
use tokio::{
    sync::{mpsc, watch},
    task::JoinSet,
};

/// How long the receive loop waits on a full lane before it holds the lane's partition.
const HOLD_AFTER: Duration = Duration::from_secs(2);

/// Receives until `stop` is cancelled, then lets every lane finish what it holds and leaves the
/// group.
pub async fn run(lanes: Arc<Lanes>) -> Result<(), Error> {
    let (publish, ownership) = watch::channel(Ownership::default());
    let keeper = lanes.clone();
    let membership = tokio::spawn(async move {
        let lanes = keeper;
        lanes
            .membership
            .keep(&lanes.health, &lanes.reclaim, &lanes.stop, publish)
            .await;
    });
    let (announce, announced) = mpsc::channel::<Announced>(64);
    let listener = tokio::spawn(wake::listen(
        lanes.membership.pool.clone(),
        lanes.relay_wake.clone(),
        announce.clone(),
    ));
    let mut receiver = Receiver {
        lanes: lanes.clone(),
        ownership,
        announce,
        idle: Idle::new(lanes.idle_pause),
        senders: HashMap::new(),
        next_offsets: HashMap::new(),
        held: HashMap::new(),
        tasks: JoinSet::new(),
        generation: 0,
    };
    receiver.receive(announced).await;
    let Receiver {
        senders, mut tasks, ..
    } = receiver;
    drop(senders);
    while tasks.join_next().await.is_some() {}
    listener.abort();
    if membership.await.is_err() {
        tracing::warn!("membership task ended abnormally");
    }
    if let Err(error) = lanes.membership.leave().await {
        tracing::warn!(%error, "cannot leave the group; the lease will expire");
    }
    Ok(())
}

/// The receive loop's state.
struct Receiver {
    lanes: Arc<Lanes>,
    ownership: watch::Receiver<Ownership>,
    /// For the safety net's looks, which announce as a relay would.
    announce: mpsc::Sender<Announced>,
    idle: Idle,
    senders: HashMap<i32, mpsc::Sender<Envelope>>,
    /// Per running partition, the offset after the last command received: where fetching
    /// resumes when an idle partition is fetched again.
    next_offsets: HashMap<i32, i64>,
    /// Partitions whose lane took no record for [`HOLD_AFTER`] (stopped on a record it cannot
    /// apply, or far behind): not fetched, so they hold up no other partition, until their lane
    /// has room again; then fetched from the offset kept here.
    held: HashMap<i32, i64>,
    tasks: JoinSet<(u64, LaneEnd)>,
    generation: u64,
}

impl Receiver {
    async fn receive(&mut self, mut announced: mpsc::Receiver<Announced>) {
        let lanes = self.lanes.clone();
        let mut idle_tick =
            tokio::time::interval((lanes.idle_pause / 4).max(Duration::from_millis(50)));
        idle_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut held_tick = tokio::time::interval(Duration::from_millis(100));
        held_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let received = tokio::select! {
                () = lanes.stop.cancelled() => break,
                _ = idle_tick.tick(), if self.idle.enabled() => {
                    self.pause_idle();
                    continue;
                }
                _ = held_tick.tick(), if !self.held.is_empty() => {
                    self.release_held();
                    continue;
                }
                Some(partitions) = announced.recv() => {
                    if !self.idle.to_resume(partitions.as_deref(), Instant::now()).is_empty() {
                        self.fetch_active();
                    }
                    continue;
                }
                changed = self.ownership.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    self.take_over().await;
                    continue;
                }
                Some(ended) = self.tasks.join_next() => {
                    self.lane_ended(ended);
                    continue;
                }
                received = lanes.consumer.recv() => received,
            };
            let message = match received {
                Ok(message) => message,
                Err(error) => {
                    shop_infra::metrics::client_error("kafka", "consume");
                    tracing::warn!(%error, "consumer error");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            if self.pass_on(&message).await.is_break() {
                break;
            }
        }
    }

    fn fetch_active(&self) {
        self.lanes
            .fetch_active(&self.next_offsets, &self.idle, &self.held);
    }

    /// Stops fetching partitions idle for a while, and looks at those paused long enough.
    fn pause_idle(&mut self) {
        let now = Instant::now();
        let paused = self.idle.to_pause(now);
        // No command for a while: nothing waits. librdkafka reports lag only for the
        // partitions it fetches, so a paused one's lag is said here.
        for &partition in &paused {
            metrics::consumer_lag(partition, 0);
        }
        let due: Vec<(i32, i64)> = self
            .idle
            .due_for_look(now)
            .into_iter()
            .filter_map(|p| Some((p, *self.next_offsets.get(&p)?)))
            .collect();
        if !due.is_empty() {
            tokio::spawn(look(self.lanes.clone(), due, self.announce.clone()));
        }
        if !paused.is_empty() {
            self.fetch_active();
        }
    }

    /// Fetches again the held partitions whose lane has room again.
    fn release_held(&mut self) {
        let mut released = Vec::new();
        let (senders, next_offsets) = (&self.senders, &mut self.next_offsets);
        self.held.retain(|partition, from| {
            let room = senders
                .get(partition)
                .is_some_and(|s| s.capacity() >= s.max_capacity() / 2);
            if room {
                next_offsets.insert(*partition, *from);
                released.push(*partition);
            }
            !room
        });
        if !released.is_empty() {
            // Not fetched while held, it may have been paused as idle meanwhile.
            let now = Instant::now();
            self.idle.to_resume(Some(&released), now);
            for &partition in &released {
                self.idle.saw(partition, now);
            }
            self.fetch_active();
        }
    }

    /// Takes over the partitions the membership now says are this worker's, with a lane each.
    async fn take_over(&mut self) {
        let wanted = self.ownership.borrow_and_update().clone();
        // Old lanes see their channel close after the batch in hand.
        self.senders.clear();
        self.generation = wanted.generation;
        self.next_offsets.clear();
        self.held.clear();
        let taken = self.lanes.take_over(&wanted.partitions).await;
        let running: Vec<i32> = taken
            .as_ref()
            .map(|claims| claims.iter().map(|c| c.partition).collect())
            .unwrap_or_default();
        self.idle.reset(&running, Instant::now());
        match taken {
            Ok(claims) => {
                for claim in claims {
                    self.next_offsets.insert(claim.partition, claim.next_offset);
                    let (sender, receiver) = mpsc::channel(self.lanes.max_batch * 2);
                    self.tasks
                        .spawn(lane(claim, receiver, self.lanes.clone(), self.generation));
                    self.senders.insert(claim.partition, sender);
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot take the partitions over; retrying at the next heartbeat");
                self.lanes.reclaim.store(true, Ordering::SeqCst);
            }
        }
    }

    fn lane_ended(&mut self, ended: Result<(u64, LaneEnd), tokio::task::JoinError>) {
        match ended {
            Ok((of, LaneEnd::Fenced)) if of == self.generation => {
                // Claimed away under it: claim again if it is still ours.
                self.lanes.reclaim.store(true, Ordering::SeqCst);
            }
            Ok(_) => {}
            Err(error) => {
                tracing::error!(%error, "a partition lane died; restarting the lanes");
                self.senders.clear();
                self.lanes.reclaim.store(true, Ordering::SeqCst);
            }
        }
    }

    /// Hands a fetched record to its partition's lane; `Break` when the worker is stopping.
    async fn pass_on(&mut self, message: &BorrowedMessage<'_>) -> ControlFlow<()> {
        let partition = message.partition();
        let Some(sender) = self.senders.get(&partition) else {
            return ControlFlow::Continue(()); // fetched before a reassignment; the new owner reads it.
        };
        if self.held.contains_key(&partition) {
            return ControlFlow::Continue(()); // fetched before the hold; fetched again when it ends.
        }
        self.idle.saw(partition, Instant::now());
        if let Some(next) = self.next_offsets.get_mut(&partition) {
            *next = (*next).max(message.offset() + 1);
        }
        let envelope = self.lanes.envelope(message);
        let offset = envelope.offset;
        // A full lane holds up this loop for a moment, never the heartbeat; a new generation or
        // a stop ends the wait (the envelope is read again from the claimed position), and past
        // [`HOLD_AFTER`] the partition is held so that the others go on.
        let mut peek = self.ownership.clone();
        tokio::select! {
            sent = sender.send(envelope) => if sent.is_err() {
                self.senders.remove(&partition);
                self.lanes.reclaim.store(true, Ordering::SeqCst);
            },
            _ = peek.changed() => {
                // The envelope is dropped: nothing after it may reach the old lane, which could
                // commit past it before the new generation takes over.
                self.senders.remove(&partition);
            }
            () = self.lanes.stop.cancelled() => return ControlFlow::Break(()),
            () = tokio::time::sleep(HOLD_AFTER) => {
                tracing::warn!(partition, offset, "the partition's lane takes nothing; holding the partition");
                self.held.insert(partition, offset);
                self.fetch_active();
            }
        }
        ControlFlow::Continue(())
    }
}
