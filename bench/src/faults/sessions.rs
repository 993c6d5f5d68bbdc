//! Sessions across a Redis failover. Sessions live only in Redis, whose replication is
//! asynchronous: one issued just before the master dies may be gone from the replica promoted in
//! its place. Fresh sessions are issued while the kill happens; once the shop takes orders again,
//! each is asked whether it still holds. A measurement, not a violation.

use crate::{poll, shop::Shop};
use futures_util::{stream, StreamExt};
use reqwest::StatusCode;
use serde::Serialize;
use std::time::Duration;

/// Sessions issued before each Redis failover.
pub const ISSUED: u64 = 20;
/// The users the sessions belong to are registered from this number up, `ISSUED` per phase, far
/// above the fixture's shoppers.
const FIRST_USER: u64 = 1_000_000;
/// How long a session may go without a decisive answer (200 or 401) before it counts as lost.
const ASK_WITHIN: Duration = Duration::from_secs(10);

/// Of the sessions issued just before a failover, how many the shop no longer accepted after it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SessionsLost {
    pub lost: u64,
    pub issued: u64,
}

/// Both counts added up (over runs).
impl std::ops::Add for SessionsLost {
    type Output = Self;

    fn add(self, other: Self) -> Self {
        Self {
            lost: self.lost + other.lost,
            issued: self.issued + other.issued,
        }
    }
}

/// Up to `ISSUED` fresh sessions, all at once, run beside the kill so that they are written in
/// the master's last moments: new users registered as [`Fixture::prepare`] registers its
/// shoppers (`Shop::register`, each ending in a session; the code is stored, not read from the
/// mail sink, so no mail is waited for). A registration the dying master refused issued nothing
/// and is not counted. `phase` numbers the users apart from other phases'.
///
/// [`Fixture::prepare`]: super::traffic::Fixture::prepare
pub async fn issue(shop: &Shop, phase: u64) -> Vec<String> {
    let first = FIRST_USER + phase * ISSUED;
    stream::iter(first..first + ISSUED)
        .map(|n| async move { shop.register(n).await.ok().map(|(_, token)| token) })
        .buffer_unordered(ISSUED as usize)
        .filter_map(std::future::ready)
        .collect()
        .await
}

/// How many of `tokens` the shop no longer accepts: `GET /cart` answered 401, or no decisive
/// answer within `ASK_WITHIN`.
pub async fn lost(shop: &Shop, tokens: &[String]) -> SessionsLost {
    let held = stream::iter(tokens)
        .map(|token| holds(shop, token))
        .buffer_unordered(tokens.len().max(1))
        .filter(|held| std::future::ready(*held))
        .count()
        .await;
    SessionsLost {
        lost: (tokens.len() - held) as u64,
        issued: tokens.len() as u64,
    }
}

/// Whether `GET /cart` with `token` is answered 200 (401: the session is gone), asked again
/// through failures until `ASK_WITHIN`.
async fn holds(shop: &Shop, token: &str) -> bool {
    let answered = poll::until(ASK_WITHIN, Duration::from_millis(100), || async move {
        let asked = tokio::time::timeout(Duration::from_secs(2), shop.get_authed("/cart", token));
        Ok::<_, ()>(match asked.await {
            Ok(Ok(StatusCode::OK)) => Ok(true),
            Ok(Ok(StatusCode::UNAUTHORIZED)) => Ok(false),
            _ => Err(()),
        })
    })
    .await;
    matches!(answered, Ok(Ok(true)))
}
