//! Order status announcements: the checkout worker (and this API's cancel) publish each status an
//! order reaches on Redis pub/sub; [`forward`] hands them to this process's SSE streams.

use futures_util::StreamExt;
use shop_domain::messages::OrderStatusChanged;
use std::time::Duration;
use tokio::sync::broadcast;

/// Forwards order status announcements from Redis pub/sub to this process's SSE streams,
/// reconnecting whenever Redis goes away. Streams also re-read PostgreSQL, so an announcement
/// lost during a reconnect delays a push by at most their recheck interval.
pub async fn forward(
    redis_url: String,
    channel: String,
    sender: broadcast::Sender<OrderStatusChanged>,
) {
    loop {
        if let Err(error) = forward_until_disconnected(&redis_url, &channel, &sender).await {
            tracing::warn!(%error, "order status subscription lost; reconnecting");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn forward_until_disconnected(
    redis_url: &str,
    channel: &str,
    sender: &broadcast::Sender<OrderStatusChanged>,
) -> redis::RedisResult<()> {
    let mut pubsub = redis::Client::open(redis_url)?.get_async_pubsub().await?;
    pubsub.subscribe(channel).await?;
    let mut messages = pubsub.on_message();
    while let Some(message) = messages.next().await {
        let payload: String = message.get_payload()?;
        match serde_json::from_str(&payload) {
            // No receivers is fine: nobody is watching right now.
            Ok(update) => drop(sender.send(update)),
            Err(error) => tracing::warn!(%error, "ignoring a malformed order status announcement"),
        }
    }
    Ok(())
}
