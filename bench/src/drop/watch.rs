//! Following an accepted order as a shopper's page does: `GET /orders/{id}/events`
//! (Server-Sent Events, with the shopper's session) until a `status` event says it is decided.
//! While it is PENDING the stream sends `event: place` with
//! `{"order_id":…,"ahead":12,"lines":[{"product_id":42,"remaining":300}]}`; each one whose
//! `ahead` is a number is an update, and one greater than the update before is a rise (the
//! place in line must never go back). A synchronous strategy's order is decided when it is
//! answered: its stream sends one `status` event and no place.

use crate::shop::Shop;
use serde::{Deserialize, Serialize};
use shop_domain::OrderStatus;
use tokio::time::Instant;
use uuid::Uuid;

/// What one watcher saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Watched {
    /// `place` events with a number for `ahead`.
    pub updates: u64,
    /// Updates whose `ahead` was greater than the update before.
    pub rises: u64,
    /// A `status` event said the order was decided before the watch's deadline.
    pub decided: bool,
    last_ahead: Option<i64>,
}

/// One Server-Sent Event: its `event:` name and its `data:` lines joined.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Event {
    name: String,
    data: String,
}

#[derive(Deserialize)]
struct PlaceData {
    ahead: Option<i64>,
}

#[derive(Deserialize)]
struct StatusData {
    status: String,
}

/// Follows order `order` with `token`'s session until it is decided, the stream ends, or
/// `until`; a request that failed is a watch that saw nothing and was not decided.
pub async fn follow(shop: Shop, token: String, order: Uuid, until: Instant) -> Watched {
    let mut watched = Watched::default();
    let request = shop
        .client()
        .get(shop.url(&format!("/orders/{order}/events")))
        .bearer_auth(token)
        .send();
    let Ok(Ok(mut response)) = tokio::time::timeout_at(until, request).await else {
        return watched;
    };
    if !response.status().is_success() {
        return watched;
    }
    let mut stream = EventStream::default();
    while !watched.decided {
        let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(until, response.chunk()).await else {
            break;
        };
        for event in stream.push(&chunk) {
            watched.see(&event);
        }
    }
    watched
}

impl Watched {
    fn see(&mut self, event: &Event) {
        match event.name.as_str() {
            "place" => {
                let Some(ahead) = serde_json::from_str::<PlaceData>(&event.data)
                    .ok()
                    .and_then(|p| p.ahead)
                else {
                    return;
                };
                self.updates += 1;
                self.rises += u64::from(self.last_ahead.is_some_and(|last| ahead > last));
                self.last_ahead = Some(ahead);
            }
            "status" => {
                let status = serde_json::from_str::<StatusData>(&event.data)
                    .ok()
                    .and_then(|s| OrderStatus::parse(&s.status));
                self.decided |= status.is_some_and(OrderStatus::is_decided);
            }
            _ => {}
        }
    }
}

/// Bytes of a stream cut into events: an event ends at a blank line; `event:` names it (the
/// default is `message`), `data:` lines are its data; comments (`:`) and other fields are
/// skipped.
#[derive(Debug, Default)]
struct EventStream {
    pending: Vec<u8>,
}

impl EventStream {
    fn push(&mut self, bytes: &[u8]) -> Vec<Event> {
        self.pending
            .extend(bytes.iter().copied().filter(|&b| b != b'\r'));
        let mut events = Vec::new();
        while let Some(end) = self.pending.windows(2).position(|w| w == b"\n\n") {
            let block: Vec<u8> = self.pending.drain(..end + 2).collect();
            if let Some(event) = parse_block(&String::from_utf8_lossy(&block)) {
                events.push(event);
            }
        }
        events
    }
}

fn parse_block(block: &str) -> Option<Event> {
    let mut name = None;
    let mut data: Vec<&str> = Vec::new();
    for line in block.lines() {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => name = Some(value.to_owned()),
            "data" => data.push(value),
            _ => {}
        }
    }
    (name.is_some() || !data.is_empty()).then(|| Event {
        name: name.unwrap_or_else(|| "message".to_owned()),
        data: data.join("\n"),
    })
}

/// What the watchers saw, together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct WatchFigures {
    pub watched: usize,
    /// Watched orders seen decided before the deadline.
    pub decided: usize,
    pub updates_mean: f64,
    pub updates_max: u64,
    /// Times `ahead` went up for one order, over every watched order (must be 0).
    pub ahead_rises: u64,
}

impl WatchFigures {
    pub fn of(watched: &[Watched]) -> Self {
        let total: u64 = watched.iter().map(|w| w.updates).sum();
        Self {
            watched: watched.len(),
            decided: watched.iter().filter(|w| w.decided).count(),
            updates_mean: total as f64 / watched.len().max(1) as f64,
            updates_max: watched.iter().map(|w| w.updates).max().unwrap_or(0),
            ahead_rises: watched.iter().map(|w| w.rises).sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORDER: &str = "0192f0c4-0000-7000-8000-000000000001";

    fn place(ahead: &str) -> String {
        format!(
            "event: place\ndata: {{\"order_id\":\"{ORDER}\",\"ahead\":{ahead},\"lines\":[{{\"product_id\":1,\"remaining\":300}}]}}\n\n"
        )
    }

    #[test]
    fn events_are_cut_at_blank_lines_across_chunks() {
        let mut stream = EventStream::default();
        let text = format!(
            ": keep-alive\n\n{}event: status\r\ndata: {{\"status\":\"PENDING\"}}\r\n\r\n",
            place("12")
        );
        let (first, second) = text.as_bytes().split_at(text.len() / 2);
        let mut events = stream.push(first);
        events.extend(stream.push(second));
        let names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["place", "status"]);
        assert_eq!(events[1].data, r#"{"status":"PENDING"}"#);
        assert!(stream.push(b"data: half").is_empty());
        assert_eq!(stream.push(b"\n\n")[0].name, "message");
    }

    #[test]
    fn updates_and_rises_of_ahead_are_counted_until_a_decided_status() {
        let mut watched = Watched::default();
        let mut stream = EventStream::default();
        let text = [
            "event: status\ndata: {\"status\":\"PENDING\"}\n\n".to_owned(),
            place("12"),
            place("null"),
            place("7"),
            place("9"),
            place("0"),
        ]
        .concat();
        for event in stream.push(text.as_bytes()) {
            watched.see(&event);
        }
        assert_eq!(
            (watched.updates, watched.rises, watched.decided),
            (4, 1, false)
        );
        for event in stream.push(b"event: status\ndata: {\"status\":\"REJECTED\"}\n\n") {
            watched.see(&event);
        }
        assert!(watched.decided);
        let figures = WatchFigures::of(&[watched, Watched::default()]);
        assert_eq!((figures.watched, figures.decided), (2, 1));
        assert_eq!((figures.updates_mean, figures.updates_max), (2.0, 4));
        assert_eq!(figures.ahead_rises, 1);
    }
}
