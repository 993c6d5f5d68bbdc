//! CPU time of the processes that make up the shop, read from `/proc`, so that each scenario can
//! say what share of the machine each part took and how much PostgreSQL work an order cost.
//!
//! Processes are grouped by their command name (`postgres`, `tansu`, `redis-server`,
//! `shop-api`, `checkout-worker`, `shop-bench`, and on the highly available stores of
//! `scripts/ha.sh` also `patroni`, `etcd` and `haproxy`; PostgreSQL counts every server, the
//! standby's too, and Redis its replica and Sentinels); a process that exits between two readings
//! takes its last slice with it (PostgreSQL's pooled backends live for the whole run).

use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Instant;

/// Linux reports process times in clock ticks of `USER_HZ`, 100 on every mainstream
/// architecture (proc(5)).
const TICKS_PER_SECOND: f64 = 100.0;

/// The parts of the shop, by process command name.
pub const PARTS: [(&str, &str); 9] = [
    ("postgres", "PostgreSQL"),
    ("tansu", "broker"),
    ("redis-server", "Redis"),
    ("shop-api", "API"),
    ("checkout-worke", "worker"),
    ("shop-bench", "load generator"),
    ("patroni", "Patroni"),
    ("etcd", "etcd"),
    ("haproxy", "HAProxy"),
];

/// CPU ticks used so far by each part, and when they were read.
#[derive(Debug, Clone)]
pub struct Reading {
    at: Instant,
    ticks: BTreeMap<&'static str, u64>,
}

/// Each part's CPU over an interval, in percent of one core.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Usage {
    pub seconds: f64,
    /// Part → percent of one core (200 % is both cores of a 2-core machine).
    pub percent_of_core: BTreeMap<&'static str, f64>,
    /// CPU milliseconds PostgreSQL spent over the interval.
    pub postgres_cpu_ms: f64,
}

impl Reading {
    pub fn now() -> Self {
        let mut ticks: BTreeMap<&'static str, u64> = BTreeMap::new();
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for entry in entries.flatten() {
                let Some(stat) = std::fs::read_to_string(entry.path().join("stat")).ok() else {
                    continue;
                };
                if let Some((comm, used)) = parse_stat(&stat) {
                    if let Some((_, part)) = PARTS.iter().find(|(name, _)| comm.starts_with(name)) {
                        *ticks.entry(part).or_default() += used;
                    }
                }
            }
        }
        Self {
            at: Instant::now(),
            ticks,
        }
    }

    /// What each part used from `self` until `later`.
    pub fn until(&self, later: &Reading) -> Usage {
        let seconds = later.at.duration_since(self.at).as_secs_f64();
        let mut percent_of_core = BTreeMap::new();
        let mut postgres_cpu_ms = 0.0;
        for (_, part) in PARTS {
            let used = later.ticks.get(part).copied().unwrap_or(0);
            let before = self.ticks.get(part).copied().unwrap_or(0);
            let cpu_seconds = used.saturating_sub(before) as f64 / TICKS_PER_SECOND;
            if part == "PostgreSQL" {
                postgres_cpu_ms = cpu_seconds * 1000.0;
            }
            if seconds > 0.0 {
                percent_of_core.insert(part, 100.0 * cpu_seconds / seconds);
            }
        }
        Usage {
            seconds,
            percent_of_core,
            postgres_cpu_ms,
        }
    }
}

/// The command name and user + system ticks from a `/proc/<pid>/stat` line.
fn parse_stat(stat: &str) -> Option<(&str, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?;
    // After the command: state is field 3; utime and stime are fields 14 and 15.
    let mut fields = stat.get(close + 2..)?.split_whitespace();
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((comm, utime + stime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_and_system_ticks_come_from_fields_14_and_15() {
        let stat = "4242 (checkout-worke) S 1 4242 4242 0 -1 4194560 1234 0 0 0 170 30 0 0 20 0 9 0 100 0 0";
        assert_eq!(parse_stat(stat), Some(("checkout-worke", 200)));
        let odd = "7 (a) b (c)) R 1 1 1 0 -1 0 0 0 0 0 5 6 0 0";
        assert_eq!(parse_stat(odd), Some(("a) b (c)", 11)));
    }

    #[test]
    fn this_process_is_seen_and_shares_are_per_core() {
        let before = Reading::now();
        let mut spin = 0u64;
        let started = Instant::now();
        while started.elapsed().as_millis() < 50 {
            spin = spin.wrapping_add(1);
        }
        let usage = before.until(&Reading::now());
        assert!(spin > 0 && usage.seconds > 0.0);
        assert_eq!(usage.percent_of_core.len(), PARTS.len());
    }
}
