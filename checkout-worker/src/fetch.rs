//! Fetching: which partitions the consumer fetches, and from where. A take-over claims the owned
//! partitions (fencing earlier owners) and assigns the consumer exactly those from their
//! positions in PostgreSQL, stopping, loudly, any whose position lies outside its log; afterwards
//! the receive loop fetches only the partitions neither paused (idle) nor held (their lane takes
//! nothing), each from the offset after the last command received. Records fetched become
//! envelopes for their lanes, with their queue positions. The idle safety net's look at paused
//! partitions asks the broker for the end of their logs.

use crate::{
    error::Error, idle::Idle, lane::Envelope, lanes::Lanes, membership::Claim, metrics,
    received::Received, wake::Announced,
};
use inventory_partitioner::partition_for;
use rdkafka::{
    consumer::Consumer,
    message::{BorrowedMessage, Message},
    Offset, TopicPartitionList,
};
use shop_infra::dead_letters::{Record, Source};
use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::Arc,
    time::Duration,
};
use tokio::sync::mpsc;

impl Lanes {
    /// Claims `owned` (fencing earlier owners) and assigns the consumer exactly those, each from
    /// its saved position.
    pub async fn take_over(&self, owned: &[i32]) -> Result<Vec<Claim>, Error> {
        let claims = if owned.is_empty() {
            Vec::new()
        } else {
            tokio::time::timeout(self.batch_timeout, self.membership.claim(owned))
                .await
                .map_err(|_| Error::TimedOut("claiming partitions"))??
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
    ///
    /// Changes the consumer's assignment incrementally: only the partitions that stop or start
    /// being fetched are removed or added. A whole new assignment stops every partition and
    /// starts it again, and librdkafka 2.12 aborts the process (`rd_kafka_assignment_partition_
    /// stopped: Assertion rktp->rktp_started failed`, librdkafka issue 5573, fixed after 2.15)
    /// when a partition is stopped twice before its first stop is confirmed, which two whole
    /// assignments a few milliseconds apart did (seen once in the test suite, as a hold followed
    /// the parking of records). Falls back to a whole assignment if librdkafka refuses.
    pub fn fetch_active(&self, next: &HashMap<i32, i64>, idle: &Idle, held: &HashMap<i32, i64>) {
        let want: BTreeMap<i32, i64> = next
            .iter()
            .filter(|(p, _)| !idle.is_paused(**p) && !held.contains_key(*p))
            .map(|(&p, &o)| (p, o))
            .collect();
        let now: BTreeSet<i32> = match self.consumer.assignment() {
            Ok(list) => list.elements().iter().map(|e| e.partition()).collect(),
            Err(error) => {
                tracing::warn!(%error, "cannot read the partitions fetched");
                return self.assign_all(&want);
            }
        };
        let stop: Vec<(i32, Option<i64>)> = now
            .iter()
            .filter(|p| !want.contains_key(p))
            .map(|&p| (p, None))
            .collect();
        let start: Vec<(i32, Option<i64>)> = want
            .iter()
            .filter(|(p, _)| !now.contains(p))
            .map(|(&p, &o)| (p, Some(o)))
            .collect();
        let mut changed = Ok(());
        if !stop.is_empty() {
            changed = self
                .partition_list(&stop)
                .and_then(|list| self.consumer.incremental_unassign(&list));
        }
        if changed.is_ok() && !start.is_empty() {
            changed = self
                .partition_list(&start)
                .and_then(|list| self.consumer.incremental_assign(&list));
        }
        if let Err(error) = changed {
            tracing::warn!(%error, "cannot change the partitions fetched one by one; assigning them all");
            self.assign_all(&want);
        }
    }

    /// Assigns the consumer exactly `want`, each partition from its offset.
    fn assign_all(&self, want: &BTreeMap<i32, i64>) {
        let all: Vec<(i32, Option<i64>)> = want.iter().map(|(&p, &o)| (p, Some(o))).collect();
        let assigned = self
            .partition_list(&all)
            .and_then(|list| self.consumer.assign(&list));
        if let Err(error) = assigned {
            tracing::warn!(%error, "cannot change the partitions fetched");
        }
    }

    /// The consumer's topic's `partitions`, each from its offset if it has one.
    fn partition_list(
        &self,
        partitions: &[(i32, Option<i64>)],
    ) -> rdkafka::error::KafkaResult<TopicPartitionList> {
        let mut list = TopicPartitionList::new();
        for &(partition, offset) in partitions {
            match offset {
                Some(offset) => list.add_partition_offset(
                    &self.membership.topic,
                    partition,
                    Offset::Offset(offset),
                )?,
                None => {
                    list.add_partition(&self.membership.topic, partition);
                }
            }
        }
        Ok(list)
    }

    /// The first and the next offset of `partition`'s log.
    async fn watermarks(&self, partition: i32) -> Result<(i64, i64), Error> {
        let (consumer, topic) = (self.consumer.clone(), self.membership.topic.clone());
        tokio::task::spawn_blocking(move || {
            consumer.fetch_watermarks(&topic, partition, Duration::from_secs(10))
        })
        .await
        .map_err(|_| Error::TimedOut("reading the log's watermarks"))?
        .map_err(Error::Kafka)
    }

    /// The envelope of a fetched record, for its partition's lane, with its queue position.
    pub fn envelope(&self, message: &BorrowedMessage<'_>) -> Envelope {
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

/// The safety net's look at paused partitions (`(partition, next offset)`): those whose log grew
/// past the next offset are announced, as a relay would have.
pub async fn look(lanes: Arc<Lanes>, due: Vec<(i32, i64)>, announce: mpsc::Sender<Announced>) {
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

#[cfg(test)]
mod tests {
    use super::position_in_log;

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
