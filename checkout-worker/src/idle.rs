//! Which partitions to stop fetching while they are idle, and when to fetch them again.
//!
//! A consumer that fetches every partition every few milliseconds keeps the broker busy while
//! nobody shops (tansu answers each fetch only after its whole wait, so waits cannot be long
//! without delaying every order). So a partition with no command for `pause_after` is paused
//! (left out of the consumer's assignment: librdkafka's own pause took about 800 ms to fetch
//! again after a resume, measured with `shop-bench idle`);
//! it is resumed at once when a relay announces commands for it (or when the announcements'
//! connection comes back, since some may have been missed). As a safety net for commands
//! produced by anything else, every twenty times `pause_after` the worker asks the broker for
//! the end of each paused partition's log (one small request, no fetching) and resumes those
//! that grew.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

/// How many `pause_after`s a partition stays paused without an announcement.
const SAFETY_FACTOR: u32 = 20;

#[derive(Debug)]
pub struct Idle {
    pause_after: Duration,
    last_seen: HashMap<i32, Instant>,
    /// Partition → when it was paused.
    paused: HashMap<i32, Instant>,
}

impl Idle {
    pub fn new(pause_after: Duration) -> Self {
        Self {
            pause_after,
            last_seen: HashMap::new(),
            paused: HashMap::new(),
        }
    }

    /// Whether partitions are ever paused (`CONSUMER_IDLE_PAUSE_MS` is not 0).
    pub fn enabled(&self) -> bool {
        !self.pause_after.is_zero()
    }

    /// A new set of owned partitions, none paused (the consumer's assignment is made afresh).
    pub fn reset(&mut self, owned: &[i32], now: Instant) {
        self.paused.clear();
        self.last_seen = owned.iter().map(|&p| (p, now)).collect();
    }

    /// Whether `partition` is paused.
    pub fn is_paused(&self, partition: i32) -> bool {
        self.paused.contains_key(&partition)
    }

    /// A command arrived on `partition` (ignored unless it is one of the owned set).
    pub fn saw(&mut self, partition: i32, now: Instant) {
        if let Some(seen) = self.last_seen.get_mut(&partition) {
            *seen = now;
        }
    }

    /// Owned partitions idle for `pause_after` that are still fetched: to pause now.
    pub fn to_pause(&mut self, now: Instant) -> Vec<i32> {
        if !self.enabled() {
            return Vec::new();
        }
        let idle: Vec<i32> = self
            .last_seen
            .iter()
            .filter(|(p, seen)| {
                !self.paused.contains_key(p) && now.duration_since(**seen) >= self.pause_after
            })
            .map(|(p, _)| *p)
            .collect();
        for &p in &idle {
            self.paused.insert(p, now);
        }
        idle
    }

    /// Paused partitions to fetch again: those `announced` (all of them for `None`: the
    /// announcements may have missed some).
    pub fn to_resume(&mut self, announced: Option<&[i32]>, now: Instant) -> Vec<i32> {
        let resumed: Vec<i32> = self
            .paused
            .keys()
            .copied()
            .filter(|p| announced.is_none_or(|a| a.contains(p)))
            .collect();
        for p in &resumed {
            self.paused.remove(p);
            self.last_seen.insert(*p, now);
        }
        resumed
    }

    /// Paused partitions that went the safety net's time (twenty times `pause_after`) without an
    /// announcement: the caller looks whether their logs grew (and resumes those that did). Each
    /// is due again after another such time.
    pub fn due_for_look(&mut self, now: Instant) -> Vec<i32> {
        let safety = self.pause_after * SAFETY_FACTOR;
        let due: Vec<i32> = self
            .paused
            .iter()
            .filter(|(_, since)| now.duration_since(**since) >= safety)
            .map(|(p, _)| *p)
            .collect();
        for p in &due {
            self.paused.insert(*p, now);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_partitions_pause_and_announced_ones_resume() {
        let start = Instant::now();
        let second = Duration::from_secs(1);
        let mut idle = Idle::new(second);
        idle.reset(&[0, 1, 2], start);
        idle.saw(1, start + second / 2);
        idle.saw(9, start + second / 2);
        assert_eq!(sorted(idle.to_pause(start + second)), [0, 2]);
        assert!(idle.to_pause(start + second).is_empty(), "paused once");
        assert_eq!(idle.to_pause(start + second * 2), [1]);
        assert_eq!(idle.to_resume(Some(&[2, 7]), start + second * 3), [2]);
        assert!(idle.to_resume(Some(&[2]), start + second * 3).is_empty());
        assert_eq!(sorted(idle.to_resume(None, start + second * 3)), [0, 1]);
    }

    #[test]
    fn a_partition_paused_too_long_is_due_for_a_look_and_a_new_owner_set_resumes_all() {
        let start = Instant::now();
        let second = Duration::from_secs(1);
        let mut idle = Idle::new(second);
        idle.reset(&[4], start);
        assert_eq!(idle.to_pause(start + second), [4]);
        assert!(idle.to_resume(Some(&[]), start + second * 2).is_empty());
        assert!(idle.due_for_look(start + second * 20).is_empty());
        assert_eq!(idle.due_for_look(start + second * 21), [4]);
        assert!(idle.is_paused(4), "a look does not resume");
        assert!(
            idle.due_for_look(start + second * 22).is_empty(),
            "due once"
        );
        assert_eq!(idle.due_for_look(start + second * 41), [4]);
        idle.reset(&[5], start + second * 43);
        assert!(!idle.is_paused(4), "a new owner set is fetched whole");
        assert!(idle.to_pause(start + second * 43).is_empty());
        assert_eq!(idle.to_pause(start + second * 44), [5]);
        let mut never = Idle::new(Duration::ZERO);
        never.reset(&[1], start);
        assert!(never.to_pause(start + second * 100).is_empty());
    }

    fn sorted(mut v: Vec<i32>) -> Vec<i32> {
        v.sort_unstable();
        v
    }
}
