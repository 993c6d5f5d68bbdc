//! The accept loop. axum's own `serve` sets no timer, so a client that sends its headers a byte
//! at a time would hold a connection forever. Here:
//! - every connection must deliver its first request's headers within `HEADER_READ_TIMEOUT_SECS`
//!   whatever protocol it claims, or it is closed: a silent socket, a partial HTTP/1 head, an
//!   HTTP/2 preface (whole or not) with no HEADERS frame after it. hyper's own HTTP/1 timer starts
//!   only once the protocol is told apart (the first 24 bytes, which could be an HTTP/2 preface)
//!   and HTTP/2 has none, so the wait for the first request is timed here;
//! - on HTTP/1, hyper times every later request's headers too, idle keep-alive included (it
//!   restarts that timer whenever the connection goes idle); slow bodies are bounded by the
//!   request timeout;
//! - HTTP/2 connections are pinged every 30 s, so a peer that vanished is noticed, and carry
//!   at most 100 requests at once;
//! - one client address may hold at most `MAX_CONNECTIONS_PER_IP` connections; one more is closed
//!   as soon as it is accepted.
//!
//! Each request carries its peer address (`ConnectInfo`) for per-IP rate limits.

use crate::config::Settings;
use axum::{
    extract::{ConnectInfo, Request},
    Router,
};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto::Builder, graceful::GracefulShutdown},
    service::TowerToHyperService,
};
use std::{
    collections::HashMap,
    future::Future,
    net::{IpAddr, Ipv6Addr, SocketAddr},
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// How often an HTTP/2 connection is pinged, idle or not.
const H2_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// How long a ping may go unanswered before the connection is closed.
const H2_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests one HTTP/2 connection may have in flight (`SETTINGS_MAX_CONCURRENT_STREAMS`).
const H2_MAX_STREAMS: u32 = 100;

/// What one connection may hold, from [`Settings`].
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// `HEADER_READ_TIMEOUT_SECS`.
    pub header_read_timeout: Duration,
    /// `MAX_CONNECTIONS_PER_IP` (0: no cap).
    pub max_per_ip: u32,
}

impl From<&Settings> for ConnectionLimits {
    fn from(settings: &Settings) -> Self {
        Self {
            header_read_timeout: settings.header_read_timeout,
            max_per_ip: settings.max_connections_per_ip,
        }
    }
}

/// Serves `router` on `listener` until `stop` resolves; then stops accepting and waits for the
/// open connections to finish their requests.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    stop: impl Future<Output = ()>,
) {
    let builder = builder(limits);
    let graceful = GracefulShutdown::new();
    let open = OpenConnections::default();
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, say: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(slot) = open.admit(peer.ip(), limits.max_per_ip) else {
            crate::metrics::connection_refused("per_ip_cap");
            tracing::debug!(%peer, "too many connections from this address; closing");
            drop(stream);
            continue;
        };
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        // Cancelled when the connection's first request reaches the router.
        let first_request = CancellationToken::new();
        let arrived = first_request.clone();
        let service = router
            .clone()
            .map_request(move |mut request: Request<Incoming>| {
                arrived.cancel();
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service))
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // Counts the connection until this task ends, however it ends.
            let _slot = slot;
            run_connection(connection, first_request, limits.header_read_timeout, peer).await;
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// How connections are served: hyper's HTTP/1 header timer, HTTP/2 pings and stream cap.
fn builder(limits: ConnectionLimits) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(H2_KEEP_ALIVE_INTERVAL)
        .keep_alive_timeout(H2_KEEP_ALIVE_TIMEOUT)
        .max_concurrent_streams(H2_MAX_STREAMS);
    builder
}

/// Drives one connection to its end, closing it if its first request has not reached the router
/// (`first_request` cancelled) within `header_read_timeout`.
async fn run_connection<E: std::fmt::Display>(
    connection: impl Future<Output = Result<(), E>>,
    first_request: CancellationToken,
    header_read_timeout: Duration,
    peer: SocketAddr,
) {
    tokio::pin!(connection);
    let first = tokio::select! {
        biased;
        ended = connection.as_mut() => Some(ended),
        () = first_request.cancelled() => None,
        () = tokio::time::sleep(header_read_timeout) => {
            // Dropping the connection closes the socket.
            crate::metrics::connection_timed_out();
            tracing::debug!(%peer, "no request within the header read timeout; closing");
            return;
        }
    };
    let ended = match first {
        Some(ended) => ended,
        None => connection.await,
    };
    if let Err(error) = ended {
        tracing::debug!(%error, %peer, "connection ended with an error");
    }
}

/// Open connections per client ([`client_key`]), shared by the accept loop and the connections.
#[derive(Debug, Clone, Default)]
struct OpenConnections(Arc<Mutex<HashMap<IpAddr, u32>>>);

impl OpenConnections {
    /// Counts one more connection from `ip`, unless `cap` of its are open already (0: no cap).
    fn admit(&self, ip: IpAddr, cap: u32) -> Option<Slot> {
        let key = client_key(ip);
        {
            let mut open = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            let count = open.entry(key).or_insert(0);
            // A refused client has `cap` > 0 connections open: no empty entry is left behind.
            if cap > 0 && *count >= cap {
                return None;
            }
            *count += 1;
        }
        crate::metrics::connection_opened();
        Some(Slot {
            open: self.clone(),
            key,
        })
    }

    /// How many connections `ip`'s client holds.
    #[cfg(test)]
    fn of(&self, ip: IpAddr) -> u32 {
        let open = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        open.get(&client_key(ip)).copied().unwrap_or(0)
    }
}

/// One open connection, counted until dropped.
#[derive(Debug)]
struct Slot {
    open: OpenConnections,
    key: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        {
            let mut open = self.open.0.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(count) = open.get_mut(&self.key) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    open.remove(&self.key);
                }
            }
        }
        crate::metrics::connection_closed();
    }
}

/// What the per-client cap counts by: an IPv4 address (also one mapped into IPv6), or the /64
/// network of an IPv6 address, since one client is usually given a whole /64.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn a_client_gets_its_cap_and_a_slot_back_when_a_connection_ends() {
        let open = OpenConnections::default();
        let client = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let other = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
        let mut slots: Vec<Slot> = (0..3).filter_map(|_| open.admit(client, 3)).collect();
        assert_eq!(slots.len(), 3);
        assert!(open.admit(client, 3).is_none(), "a fourth connection");
        assert!(
            open.admit(other, 3).is_some(),
            "another client is not capped"
        );
        slots.pop();
        assert_eq!(open.of(client), 2);
        slots.push(open.admit(client, 3).expect("a slot freed"));
        drop(slots);
        // No entry is kept for a client without connections.
        assert!(open.0.lock().expect("not poisoned").is_empty());
    }

    #[test]
    fn no_cap_is_zero() {
        let open = OpenConnections::default();
        let client = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let slots: Vec<Slot> = (0..1000).filter_map(|_| open.admit(client, 0)).collect();
        assert_eq!((slots.len(), open.of(client)), (1000, 1000));
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("address");
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().expect("address");
        let elsewhere: IpAddr = "2001:db8:1:3::1".parse().expect("address");
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(elsewhere));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().expect("address");
        assert_eq!(client_key(mapped), IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
    }
}
