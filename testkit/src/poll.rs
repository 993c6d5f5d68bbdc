//! Waiting for work done elsewhere (a worker, a relay, a mail sender) without sleeping a guess:
//! [`eventually`] asks again until the answer is there or a deadline passes.

use std::{fmt::Debug, future::Future, time::Duration};
use tokio::time::Instant;

/// How long [`eventually`] waits between two asks.
pub const POLL_EVERY: Duration = Duration::from_millis(25);

/// Asks `probe` until it answers `Ok`, and returns that; panics after `within` with `what` and
/// the last `Err` it answered (the state that was still wrong).
pub async fn eventually<T, E, Fut>(
    within: Duration,
    what: &str,
    mut probe: impl FnMut() -> Fut,
) -> T
where
    E: Debug,
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = Instant::now() + within;
    loop {
        match probe().await {
            Ok(done) => return done,
            Err(last) => assert!(
                Instant::now() < deadline,
                "{what}: still {last:?} after {within:?}"
            ),
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn returns_the_first_answer_that_is_there() {
        let mut asked = 0;
        let found = eventually(Duration::from_secs(5), "the third ask", || {
            asked += 1;
            let n = asked;
            async move {
                if n >= 3 {
                    Ok(n)
                } else {
                    Err(n)
                }
            }
        })
        .await;
        assert_eq!(found, 3);
    }

    #[tokio::test]
    #[should_panic(expected = "never: still \"no\" after")]
    async fn panics_with_the_last_state_after_the_deadline() {
        eventually(Duration::from_millis(60), "never", || async {
            Err::<(), _>("no")
        })
        .await;
    }
}
