//! The inventory consumer: one sequential lane (task) per owned partition.
//!
//! A membership task ([`keep_membership`]) heartbeats on its own schedule, so a slow lane or a
//! full channel never delays it, and publishes which partitions this worker owns. Whenever that
//! changes, or the lease lapsed, or a lane ended, the receive loop claims the owned partitions
//! afresh (new epochs, [`Membership::claim`]), assigns the consumer exactly those from their
//! positions in PostgreSQL, and starts a new lane for each; the old lanes finish the batch in
//! hand, which the fence refuses if the partition is no longer theirs. A lane takes what has
//! queued up (up to `WORKER_MAX_BATCH`) as one batch and applies it in one transaction that also
//! moves the partition's position, under its claim. A crash before the commit means the batch is
//! read again; the ledger turns what was already applied into no-ops.

use crate::{
    announce::Announcer,
    batch::{self, BatchError},
    dead_letter::Received,
    health::Health,
    idle::Idle,
    membership::{Claim, Membership, Position},
    metrics, relay,
};
use inventory_partitioner::partition_for;
use rdkafka::{
    consumer::{Consumer, ConsumerContext, StreamConsumer},
    message::{BorrowedMessage, Message},
    ClientContext, Offset, Statistics, TopicPartitionList,
};
use shop_infra::{
    dead_letters::{Record, Source},
    outbox,
};
use sqlx::postgres::PgListener;
use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};
use tokio::{
    sync::{mpsc, watch, Notify},
    task::JoinSet,
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Turns librdkafka's periodic statistics into the consumer lag gauge: messages on the broker
/// that this worker has not yet taken in.
pub struct WorkerContext;

impl ClientContext for WorkerContext {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        shop_infra::metrics::client_error("kafka", "client");
        tracing::warn!(%error, reason, "Kafka client error");
    }

    fn stats(&self, statistics: Statistics) {
        for topic in statistics.topics.values() {
            for (partition, stats) in &topic.partitions {
                if *partition >= 0 && stats.hi_offset >= 0 && stats.app_offset >= 0 {
                    metrics::consumer_lag(*partition, stats.hi_offset - stats.app_offset);
                }
            }
        }
    }
}

impl ConsumerContext for WorkerContext {}

pub type InventoryConsumer = StreamConsumer<WorkerContext>;

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
    /// `CONSUMER_IDLE_PAUSE_MS`: idle partitions stop being fetched after this ([`Idle`]).
    pub idle_pause: Duration,
    /// Wakes this process's relay: outbox rows were written (by a batch here, or announced by
    /// another process).
    pub outbox_written: Arc<Notify>,
}

/// What a relay said it produced (`None`: the announcements' connection was (re)made, and some
/// may have been missed).
type Announced = Option<Vec<i32>>;

struct Envelope {
    offset: i64,
    /// A command to apply, or a record to park (its offset counts either way).
    received: Received,
}

/// The partitions the receive loop should have lanes for; a new generation means "claim them
/// again", even when the set is the same.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Ownership {
    generation: u64,
    partitions: Vec<i32>,
}

/// Why a lane stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LaneEnd {
    /// Its channel closed: a new generation replaced it, or the worker is stopping.
    Closed,
    /// The worker is stopping and its batch had not committed.
    Stopped,
    /// A newer owner claimed the partition; its batch did not commit.
    Fenced,
}

impl Lanes {
    /// Claims `owned` (fencing earlier owners) and assigns the consumer exactly those, each from
    /// its saved position.
    async fn take_over(&self, owned: &[i32]) -> Result<Vec<Claim>, crate::Error> {
        let claims = if owned.is_empty() {
            Vec::new()
        } else {
            tokio::time::timeout(self.batch_timeout, self.membership.claim(owned))
                .await
                .map_err(|_| crate::Error::TimedOut("claiming partitions"))??
        };
        let mut list = TopicPartitionList::new();
        let mut stopped = BTreeMap::new();
        let mut running = Vec::with_capacity(claims.len());
        for claim in claims {
            let (low, high) = self.watermarks(claim.partition).await?;
            if let Err(why) = position_in_log(claim.next_offset, low, high) {
                tracing::error!(partition = claim.partition, %why, "partition stopped: its commands would be skipped");
                metrics::partition_stopped(claim.partition, true);
                stopped.insert(claim.partition, why);
                continue;
            }
            metrics::partition_stopped(claim.partition, false);
            list.add_partition_offset(
                &self.membership.topic,
                claim.partition,
                Offset::Offset(claim.next_offset),
            )?;
            running.push(claim);
        }
        self.health.set_stopped(stopped);
        self.consumer.assign(&list)?;
        tracing::info!(group = %self.membership.group, partitions = ?owned, "partitions assigned");
        Ok(running)
    }

    /// Fetches exactly the owned partitions that are neither paused nor held, each from the
    /// offset after the last command received (so nothing is skipped or received twice).
    fn fetch_active(&self, next: &HashMap<i32, i64>, idle: &Idle, held: &HashMap<i32, i64>) {
        let mut list = TopicPartitionList::new();
        for (&partition, &offset) in next {
            if idle.is_paused(partition) || held.contains_key(&partition) {
                continue;
            }
            if let Err(error) =
                list.add_partition_offset(&self.membership.topic, partition, Offset::Offset(offset))
            {
                tracing::warn!(%error, partition, "cannot list a partition to fetch");
            }
        }
        if let Err(error) = self.consumer.assign(&list) {
            tracing::warn!(%error, "cannot change the partitions fetched");
        }
    }

    /// The first and the next offset of `partition`'s log.
    async fn watermarks(&self, partition: i32) -> Result<(i64, i64), crate::Error> {
        let (consumer, topic) = (self.consumer.clone(), self.membership.topic.clone());
        tokio::task::spawn_blocking(move || {
            consumer.fetch_watermarks(&topic, partition, Duration::from_secs(10))
        })
        .await
        .map_err(|_| crate::Error::TimedOut("reading the log's watermarks"))?
        .map_err(crate::Error::Kafka)
    }

    fn envelope(&self, message: &BorrowedMessage<'_>) -> Envelope {
        let (partition, offset) = (message.partition(), message.offset());
        let received = Received::read(Record::on_topic(
            Source::InventoryTopic,
            &self.membership.topic,
            partition,
            offset,
            message.key(),
            message.payload(),
        ));
        match &received.read {
            Ok(command) => {
                if partition_for(command.product_id, self.membership.partitions) != partition {
                    metrics::misrouted();
                    tracing::warn!(partition, product_id = %command.product_id, "command on the wrong partition; applying it anyway");
                }
            }
            Err(reason) => {
                tracing::error!(partition, offset, reason = %shop_infra::dead_letters::printable(reason), "parking a record this worker cannot read");
            }
        }
        Envelope { offset, received }
    }
}

/// Whether processing may resume at `next` in a log holding offsets `low..high`. Below `low`,
/// retention (or a truncation) deleted commands that were never applied; above `high`, the log
/// was replaced. Either way resuming would skip commands silently, which is never done: the
/// partition stops, loudly, for an operator to decide.
pub fn position_in_log(next: i64, low: i64, high: i64) -> Result<(), String> {
    if next < low {
        Err(format!(
            "saved position {next} is below the start of the log ({low}): commands were deleted before they were applied"
        ))
    } else if next > high {
        Err(format!(
            "saved position {next} is past the end of the log ({high}): the topic was replaced"
        ))
    } else {
        Ok(())
    }
}

/// Renews the membership every third of a lease, on its own task, and publishes what this worker
/// owns. When the lease has run out (no heartbeat got through for a whole lease, or the member
/// was forgotten meanwhile), others may have claimed its partitions: it owns nothing until a
/// heartbeat gets through, then claims afresh.
async fn keep_membership(lanes: Arc<Lanes>, ownership: watch::Sender<Ownership>) {
    let lease = lanes.membership.lease;
    let mut tick = tokio::time::interval(lease / 3);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_ok: Option<Instant> = None;
    loop {
        tokio::select! {
            () = lanes.stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let beat = tokio::time::timeout(lease / 3, lanes.membership.heartbeat()).await;
        let lapsed = last_ok.is_none_or(|at| at.elapsed() >= lease);
        match beat {
            Ok(Ok(beat)) => {
                last_ok = Some(Instant::now());
                lanes.health.beat();
                let again = lapsed || beat.rejoined || lanes.reclaim.swap(false, Ordering::SeqCst);
                ownership.send_if_modified(|current| {
                    if !again && current.partitions == beat.owned {
                        return false;
                    }
                    current.generation += 1;
                    current.partitions = beat.owned;
                    true
                });
            }
            failed => {
                let error = match failed {
                    Ok(Err(error)) => error.to_string(),
                    _ => "timed out".to_owned(),
                };
                tracing::warn!(%error, lease_lapsed = lapsed, "membership heartbeat failed");
                if lapsed {
                    ownership.send_if_modified(|current| {
                        if current.partitions.is_empty() {
                            return false;
                        }
                        current.generation += 1;
                        current.partitions.clear();
                        true
                    });
                }
            }
        }
    }
}

/// Passes on what relays announce on [`relay::COMMANDS_PRODUCED`], and wakes this process's
/// relay when outbox rows were written (`outbox::WRITTEN_CHANNEL`), reconnecting when the
/// connection is lost (and then saying that some announcements may have been missed).
async fn listen(lanes: Arc<Lanes>, announce: mpsc::Sender<Announced>) {
    loop {
        let listened = async {
            let mut listener = PgListener::connect_with(&lanes.membership.pool).await?;
            listener
                .listen_all([relay::COMMANDS_PRODUCED, outbox::WRITTEN_CHANNEL])
                .await?;
            lanes.outbox_written.notify_one();
            if announce.send(None).await.is_err() {
                return Ok(());
            }
            loop {
                let notification = listener.recv().await?;
                if notification.channel() == outbox::WRITTEN_CHANNEL {
                    lanes.outbox_written.notify_one();
                    continue;
                }
                let partitions = notification
                    .payload()
                    .split(',')
                    .filter_map(|p| p.parse().ok())
                    .collect();
                if announce.send(Some(partitions)).await.is_err() {
                    return Ok::<(), sqlx::Error>(());
                }
            }
        };
        match listened.await {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(%error, "listening for relayed commands failed; reconnecting");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Receives until `stop` is cancelled, then lets every lane finish what it holds and leaves the
/// group.
pub async fn run(lanes: Arc<Lanes>) -> Result<(), crate::Error> {
    let (publish, mut ownership) = watch::channel(Ownership::default());
    let membership = tokio::spawn(keep_membership(lanes.clone(), publish));
    let (announce, mut announced) = mpsc::channel::<Announced>(64);
    let listener = tokio::spawn(listen(lanes.clone(), announce.clone()));
    let mut idle = Idle::new(lanes.idle_pause);
    let mut idle_tick =
        tokio::time::interval((lanes.idle_pause / 4).max(Duration::from_millis(50)));
    idle_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut senders: HashMap<i32, mpsc::Sender<Envelope>> = HashMap::new();
    // Per running partition, the offset after the last command received: where fetching
    // resumes when an idle partition is fetched again.
    let mut next_offsets: HashMap<i32, i64> = HashMap::new();
    // Partitions whose lane took no record for [`HOLD_AFTER`] (stopped on a record it cannot
    // apply, or far behind): not fetched, so they hold up no other partition, until their lane
    // has room again; then fetched from the offset kept here.
    let mut held: HashMap<i32, i64> = HashMap::new();
    let mut held_tick = tokio::time::interval(Duration::from_millis(100));
    held_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut tasks: JoinSet<(u64, LaneEnd)> = JoinSet::new();
    let mut generation = 0u64;
    loop {
        let received = tokio::select! {
            () = lanes.stop.cancelled() => break,
            _ = idle_tick.tick(), if idle.enabled() => {
                let now = Instant::now();
                let paused = idle.to_pause(now);
                // No command for a while: nothing waits. librdkafka reports lag only for the
                // partitions it fetches, so a paused one's lag is said here.
                for &partition in &paused {
                    metrics::consumer_lag(partition, 0);
                }
                let due: Vec<(i32, i64)> = idle
                    .due_for_look(now)
                    .into_iter()
                    .filter_map(|p| Some((p, *next_offsets.get(&p)?)))
                    .collect();
                if !due.is_empty() {
                    tokio::spawn(look(lanes.clone(), due, announce.clone()));
                }
                if !paused.is_empty() {
                    lanes.fetch_active(&next_offsets, &idle, &held);
                }
                continue;
            }
            _ = held_tick.tick(), if !held.is_empty() => {
                let mut released = Vec::new();
                held.retain(|partition, from| {
                    let room = senders.get(partition).is_some_and(|s| s.capacity() >= s.max_capacity() / 2);
                    if room {
                        next_offsets.insert(*partition, *from);
                        released.push(*partition);
                    }
                    !room
                });
                if !released.is_empty() {
                    // Not fetched while held, it may have been paused as idle meanwhile.
                    let now = Instant::now();
                    idle.to_resume(Some(&released), now);
                    for &partition in &released {
                        idle.saw(partition, now);
                    }
                    lanes.fetch_active(&next_offsets, &idle, &held);
                }
                continue;
            }
            Some(partitions) = announced.recv() => {
                if !idle.to_resume(partitions.as_deref(), Instant::now()).is_empty() {
                    lanes.fetch_active(&next_offsets, &idle, &held);
                }
                continue;
            }
            changed = ownership.changed() => {
                if changed.is_err() {
                    break;
                }
                let wanted = ownership.borrow_and_update().clone();
                // Old lanes see their channel close after the batch in hand.
                senders.clear();
                generation = wanted.generation;
                next_offsets.clear();
                held.clear();
                let taken = lanes.take_over(&wanted.partitions).await;
                let running: Vec<i32> = taken
                    .as_ref()
                    .map(|claims| claims.iter().map(|c| c.partition).collect())
                    .unwrap_or_default();
                idle.reset(&running, Instant::now());
                match taken {
                    Ok(claims) => {
                        for claim in claims {
                            next_offsets.insert(claim.partition, claim.next_offset);
                            let (sender, receiver) = mpsc::channel(lanes.max_batch * 2);
                            tasks.spawn(lane(claim, receiver, lanes.clone(), generation));
                            senders.insert(claim.partition, sender);
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "cannot take the partitions over; retrying at the next heartbeat");
                        lanes.reclaim.store(true, Ordering::SeqCst);
                    }
                }
                continue;
            }
            Some(ended) = tasks.join_next() => {
                match ended {
                    Ok((of, LaneEnd::Fenced)) if of == generation => {
                        // Claimed away under it: claim again if it is still ours.
                        lanes.reclaim.store(true, Ordering::SeqCst);
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::error!(%error, "a partition lane died; restarting the lanes");
                        senders.clear();
                        lanes.reclaim.store(true, Ordering::SeqCst);
                    }
                }
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
        let partition = message.partition();
        let Some(sender) = senders.get(&partition) else {
            continue; // fetched before a reassignment; the new owner reads it.
        };
        if held.contains_key(&partition) {
            continue; // fetched before the hold; fetched again when it ends.
        }
        idle.saw(partition, Instant::now());
        if let Some(next) = next_offsets.get_mut(&partition) {
            *next = (*next).max(message.offset() + 1);
        }
        let envelope = lanes.envelope(&message);
        let offset = envelope.offset;
        // A full lane holds up this loop for a moment, never the heartbeat; a new generation or
        // a stop ends the wait (the envelope is read again from the claimed position), and past
        // [`HOLD_AFTER`] the partition is held so that the others go on.
        let mut peek = ownership.clone();
        tokio::select! {
            sent = sender.send(envelope) => if sent.is_err() {
                senders.remove(&partition);
                lanes.reclaim.store(true, Ordering::SeqCst);
            },
            _ = peek.changed() => {
                // The envelope is dropped: nothing after it may reach the old lane, which could
                // commit past it before the new generation takes over.
                senders.remove(&partition);
            }
            () = lanes.stop.cancelled() => break,
            () = tokio::time::sleep(HOLD_AFTER) => {
                tracing::warn!(partition, offset, "the partition's lane takes nothing; holding the partition");
                held.insert(partition, offset);
                lanes.fetch_active(&next_offsets, &idle, &held);
            }
        }
    }
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

/// The safety net's look at paused partitions (`(partition, next offset)`): those whose log grew
/// past the next offset are announced, as a relay would have.
async fn look(lanes: Arc<Lanes>, due: Vec<(i32, i64)>, announce: mpsc::Sender<Announced>) {
    let mut grown = Vec::new();
    for (partition, next) in due {
        match lanes.watermarks(partition).await {
            Ok((_, high)) if high > next => grown.push(partition),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, partition, "cannot look at a paused partition"),
        }
    }
    if !grown.is_empty() {
        tracing::info!(partitions = ?grown, "commands arrived unannounced; fetching again");
        // The receive loop may be gone (stopping): nothing left to resume then.
        let _ = announce.send(Some(grown)).await;
    }
}

async fn lane(
    claim: Claim,
    mut receiver: mpsc::Receiver<Envelope>,
    lanes: Arc<Lanes>,
    generation: u64,
) -> (u64, LaneEnd) {
    let partition = claim.partition;
    let mut next = claim.next_offset;
    let mut batch: Vec<Envelope> = Vec::with_capacity(lanes.max_batch);
    while let Some(first) = receiver.recv().await {
        batch.push(first);
        while batch.len() < lanes.max_batch {
            match receiver.try_recv() {
                Ok(envelope) => batch.push(envelope),
                Err(_) => break,
            }
        }
        // Below the claimed position: applied already.
        batch.retain(|e| e.offset >= next);
        let (Some(first_offset), Some(last_offset)) = (
            batch.first().map(|e| e.offset),
            batch.last().map(|e| e.offset),
        ) else {
            continue;
        };
        let span = tracing::info_span!(
            "batch",
            partition,
            epoch = claim.epoch,
            first_offset,
            last_offset,
            size = batch.len()
        );
        let position = Position {
            group: &lanes.membership.group,
            topic: &lanes.membership.topic,
            partition,
            epoch: claim.epoch,
            next_offset: last_offset + 1,
        };
        let applied = match apply(&batch, &position, &lanes).instrument(span).await {
            Applied::Committed => Ok(()),
            Applied::End(end) => Err(end),
            Applied::Exhausted(error) => {
                tracing::error!(partition, first_offset, last_offset, %error, "a batch keeps failing; applying its records one at a time");
                one_at_a_time(&batch, &position, &lanes).await
            }
        };
        if let Err(end) = applied {
            return (generation, end);
        }
        next = last_offset + 1;
        batch.clear();
    }
    (generation, LaneEnd::Closed)
}

/// How applying a batch ended.
enum Applied {
    Committed,
    /// The lane must end.
    End(LaneEnd),
    /// It failed `WORKER_BATCH_ATTEMPTS` times for a reason retrying cannot cure.
    Exhausted(String),
}

/// Applies `batch` record by record, after the batch as a whole kept failing: the records before
/// the culprit commit, and a record that keeps failing alone stops the partition (loudly, in
/// `/healthz` and `checkout_worker_partition_stopped`) and is tried again every
/// [`STOPPED_RETRY`] until it applies or an operator parks it, which fences this lane.
async fn one_at_a_time(
    batch: &[Envelope],
    position: &Position<'_>,
    lanes: &Lanes,
) -> Result<(), LaneEnd> {
    for envelope in batch {
        let position = Position {
            next_offset: envelope.offset + 1,
            ..position.clone()
        };
        let single = std::slice::from_ref(envelope);
        loop {
            match apply(single, &position, lanes).await {
                Applied::Committed => break,
                Applied::End(end) => {
                    if lanes.health.resume(position.partition) {
                        metrics::partition_stopped(position.partition, false);
                    }
                    return Err(end);
                }
                Applied::Exhausted(error) => {
                    let why = format!(
                        "the record at offset {} cannot be applied ({error}); it is tried again every {} s, or park it with `checkout-worker park-record {} {}`",
                        envelope.offset,
                        STOPPED_RETRY.as_secs(),
                        position.partition,
                        envelope.offset
                    );
                    tracing::error!(partition = position.partition, offset = envelope.offset, %why, "partition stopped");
                    lanes.health.stop(position.partition, why);
                    metrics::partition_stopped(position.partition, true);
                    tokio::select! {
                        () = lanes.stop.cancelled() => return Err(LaneEnd::Stopped),
                        () = tokio::time::sleep(STOPPED_RETRY) => {}
                    }
                }
            }
        }
        if lanes.health.resume(position.partition) {
            metrics::partition_stopped(position.partition, false);
        }
    }
    Ok(())
}

/// How often a stopped partition's record is tried again.
const STOPPED_RETRY: Duration = Duration::from_secs(5);

/// How long the receive loop waits on a full lane before it holds the lane's partition.
const HOLD_AFTER: Duration = Duration::from_secs(2);

/// Whether a failed batch may succeed if simply tried again: the database was unreachable or
/// restarting, a lock wait or a statement timed out, a deadlock or serialization failure, or a
/// concurrent worker applied the same command (a duplicate on the ledger's key). Anything else
/// (another constraint, a bad value, an unexpected row) fails the same way every time.
fn transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(e) => e.code().is_some_and(|code| {
            ["08", "40", "53", "57", "58"]
                .iter()
                .any(|class| code.starts_with(class))
                || ["55P03", "25P03"].contains(&code.as_ref())
                || (code == "23505" && e.constraint() == Some("inventory_ledger_pkey"))
        }),
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        _ => false,
    }
}

/// Applies a batch, retrying while it fails; gives up after `WORKER_BATCH_ATTEMPTS` failures that
/// retrying cannot cure.
async fn apply(batch: &[Envelope], position: &Position<'_>, lanes: &Lanes) -> Applied {
    let received: Vec<Received> = batch.iter().map(|e| e.received.clone()).collect();
    let _busy = lanes.health.start_batch(position.partition);
    let (mut attempt, mut incurable) = (0u32, 0u32);
    loop {
        let started = Instant::now();
        let applied = tokio::time::timeout(
            lanes.batch_timeout,
            batch::apply_batch(&lanes.membership.pool, &received, Some(position)),
        )
        .await;
        let (reason, error) = match applied {
            Ok(Ok(result)) => {
                if !result.finalized.is_empty() || result.parked > 0 {
                    lanes.outbox_written.notify_one();
                }
                metrics::record_batch(&result, started.elapsed());
                lanes.announcer.after_commit(&result).await;
                return Applied::Committed;
            }
            Ok(Err(BatchError::Fenced(fenced))) => {
                metrics::fenced();
                tracing::warn!(%fenced, "batch refused: the partition has a newer owner");
                return Applied::End(LaneEnd::Fenced);
            }
            Ok(Err(BatchError::Database(error))) => {
                let curable = transient(&error);
                let reason = match error.as_database_error().and_then(|e| e.code()).as_deref() {
                    _ if !curable => "incurable",
                    Some("23505") => "concurrent_duplicate",
                    Some("40P01") => "deadlock",
                    Some("55P03") => "lock_timeout",
                    _ => "database",
                };
                incurable += u32::from(!curable);
                (reason, error.to_string())
            }
            Err(_) => ("timeout", "no answer within the batch timeout".to_owned()),
        };
        attempt = attempt.saturating_add(1);
        metrics::batch_failed(reason);
        tracing::warn!(%error, reason, attempt, "batch failed; retrying");
        if incurable >= lanes.batch_attempts {
            return Applied::Exhausted(error);
        }
        let pause = Duration::from_millis(20u64.saturating_mul(1 << attempt.min(7)));
        tokio::select! {
            () = lanes.stop.cancelled() => return Applied::End(LaneEnd::Stopped),
            () = tokio::time::sleep(pause) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{position_in_log, transient};

    #[test]
    fn outages_and_contention_are_retried_and_other_failures_are_counted() {
        assert!(transient(&sqlx::Error::PoolTimedOut));
        assert!(transient(&sqlx::Error::Io(std::io::Error::other("reset"))));
        assert!(!transient(&sqlx::Error::RowNotFound));
        assert!(!transient(&sqlx::Error::ColumnNotFound("x".into())));
    }

    #[test]
    fn a_position_outside_the_log_stops_the_partition() {
        assert_eq!(position_in_log(0, 0, 0), Ok(()), "a new topic");
        assert_eq!(position_in_log(5, 3, 9), Ok(()));
        assert_eq!(position_in_log(9, 3, 9), Ok(()), "caught up");
        assert!(position_in_log(2, 3, 9)
            .expect_err("deleted")
            .contains("below"));
        assert!(position_in_log(10, 3, 9)
            .expect_err("replaced")
            .contains("past"));
    }
}
