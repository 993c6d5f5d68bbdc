//! Whether this worker is doing its job, for `/healthz`: its membership lease is being renewed,
//! none of its partitions is stopped, and no lane has been stuck on one batch for longer than a
//! lease. A worker that says healthy
//! therefore owns its partitions and moves them forward.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

pub struct Health {
    lease: Duration,
    last_beat: Mutex<Option<Instant>>,
    /// Partition → when its lane took up the batch it is still applying.
    busy: Mutex<HashMap<i32, Instant>>,
    /// Partitions this worker owns but will not process, and why.
    stopped: Mutex<BTreeMap<i32, String>>,
}

/// Marks a lane busy with a batch until dropped.
pub struct Busy {
    health: Arc<Health>,
    partition: i32,
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.health.busy().remove(&self.partition);
    }
}

impl Health {
    pub fn new(lease: Duration) -> Arc<Self> {
        Arc::new(Self {
            lease,
            last_beat: Mutex::new(None),
            busy: Mutex::new(HashMap::new()),
            stopped: Mutex::new(BTreeMap::new()),
        })
    }

    fn busy(&self) -> std::sync::MutexGuard<'_, HashMap<i32, Instant>> {
        self.busy.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The owned partitions that are stopped, and why (replacing the previous set).
    pub fn set_stopped(&self, stopped: BTreeMap<i32, String>) {
        *self.stopped.lock().unwrap_or_else(PoisonError::into_inner) = stopped;
    }

    /// `partition` is stopped, and why (its lane cannot apply a record).
    pub fn stop(&self, partition: i32, why: String) {
        self.stopped
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(partition, why);
    }

    /// `partition` goes on; whether it was stopped.
    pub fn resume(&self, partition: i32) -> bool {
        self.stopped
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&partition)
            .is_some()
    }

    /// A heartbeat renewed the lease.
    pub fn beat(&self) {
        *self
            .last_beat
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
    }

    /// The lane of `partition` is applying a batch until the guard is dropped.
    pub fn start_batch(self: &Arc<Self>, partition: i32) -> Busy {
        self.busy().insert(partition, Instant::now());
        Busy {
            health: self.clone(),
            partition,
        }
    }

    /// `Err` with the reason when the worker's membership lease is not being renewed: then a
    /// restart may help (`/livez`). A stopped partition does not count here: restarting would
    /// stop it again, and stall every other partition of the worker on the way.
    pub fn alive(&self) -> Result<(), String> {
        let last_beat = *self
            .last_beat
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match last_beat {
            None => return Err("no membership heartbeat yet".to_owned()),
            Some(at) if at.elapsed() > self.lease => {
                return Err(format!(
                    "membership lease not renewed for {:.1} s",
                    at.elapsed().as_secs_f64()
                ))
            }
            Some(_) => {}
        }
        Ok(())
    }

    /// `Err` with the reason when the worker is not doing its job: not [`Health::alive`], a
    /// partition stopped, or a lane stuck on one batch (`/healthz`).
    pub fn check(&self) -> Result<(), String> {
        self.alive()?;
        if let Some((partition, why)) = self
            .stopped
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .first_key_value()
        {
            return Err(format!("partition {partition} is stopped: {why}"));
        }
        let stuck: Vec<i32> = self
            .busy()
            .iter()
            .filter(|(_, since)| since.elapsed() > self.lease)
            .map(|(partition, _)| *partition)
            .collect();
        if stuck.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "partitions {stuck:?} stuck on one batch for over {:?}",
                self.lease
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unhealthy_without_a_recent_heartbeat_or_with_a_stuck_lane() {
        let health = Health::new(Duration::from_millis(30));
        assert!(health.check().is_err(), "no heartbeat yet");
        health.beat();
        assert_eq!(health.check(), Ok(()));
        let busy = health.start_batch(3);
        assert_eq!(health.check(), Ok(()), "a batch under way is fine");
        std::thread::sleep(Duration::from_millis(40));
        health.beat();
        let reason = health.check().expect_err("stuck lane");
        assert!(reason.contains("[3]"), "{reason}");
        drop(busy);
        assert_eq!(health.check(), Ok(()));
        health.set_stopped(BTreeMap::from([(5, "position lost".to_owned())]));
        let reason = health.check().expect_err("stopped partition");
        assert!(reason.contains("partition 5"), "{reason}");
        assert_eq!(health.alive(), Ok(()), "alive: a restart would not help");
        health.set_stopped(BTreeMap::new());
        assert_eq!(health.check(), Ok(()));
        health.stop(6, "a record cannot be applied".to_owned());
        assert!(health.check().is_err() && health.alive().is_ok());
        assert!(health.resume(6), "it was stopped");
        assert!(!health.resume(6), "once");
        assert_eq!(health.check(), Ok(()));
        std::thread::sleep(Duration::from_millis(40));
        assert!(health.check().is_err(), "lease not renewed");
        assert!(health.alive().is_err(), "not alive without a heartbeat");
    }
}
