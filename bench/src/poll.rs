//! Waiting for something the system does on its own (a process ready, the pipeline settled, a
//! mail arrived): [`until`] asks again at an interval until the answer is there or a deadline
//! passes. The load generators' loops (`load.rs`, the fault suite's shoppers) are not waits and
//! do not use it.

use std::{future::Future, time::Duration};
use tokio::time::Instant;

/// Asks `probe` every `every` until it answers `Ok(Ok(value))`, and returns that. After `within`
/// it returns `Ok(Err(state))` with the last state `probe` found still wrong (`Ok(Err(..))`); an
/// error (`Err(..)`) ends the wait at once. `probe` is asked at least once.
pub async fn until<T, S, E, Fut>(
    within: Duration,
    every: Duration,
    mut probe: impl FnMut() -> Fut,
) -> Result<Result<T, S>, E>
where
    Fut: Future<Output = Result<Result<T, S>, E>>,
{
    let deadline = Instant::now() + within;
    loop {
        match probe().await? {
            Ok(done) => return Ok(Ok(done)),
            Err(last) if Instant::now() >= deadline => return Ok(Err(last)),
            Err(_) => tokio::time::sleep(every).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn returns_the_first_answer_that_is_there() {
        let mut asked = 0;
        let found = until(Duration::from_secs(5), Duration::ZERO, || {
            asked += 1;
            let n = asked;
            async move { Ok::<_, ()>(if n >= 3 { Ok(n) } else { Err(n) }) }
        })
        .await;
        assert_eq!(found, Ok(Ok(3)));
    }

    #[tokio::test(start_paused = true)]
    async fn gives_the_last_state_after_the_deadline_and_errors_at_once() {
        let late = until(
            Duration::from_secs(1),
            Duration::from_millis(300),
            || async { Ok::<Result<(), _>, ()>(Err("still")) },
        )
        .await;
        assert_eq!(late, Ok(Err("still")));
        let failed = until(
            Duration::from_secs(1),
            Duration::from_millis(300),
            || async { Err::<Result<(), ()>, _>("broken") },
        )
        .await;
        assert_eq!(failed, Err("broken"));
    }
}
