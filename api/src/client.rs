//! The client of a request as handlers see it: its address (the peer, or behind a trusted proxy
//! the address it forwarded) and its user agent.

use crate::state::AppState;
use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::{header, request::Parts, HeaderMap},
};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

/// The client of a request as handlers see it: its address ([`client_ip`]) and user agent.
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub address: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl Client {
    /// What the sign-in limits count this client as: its IPv4 address, or the /64 network of its
    /// IPv6 address (one subscriber's: the addresses inside it cost nothing to change).
    pub fn counted_as(&self) -> String {
        match self.address.map(|address| address.to_canonical()) {
            Some(IpAddr::V4(v4)) => v4.to_string(),
            Some(IpAddr::V6(v6)) => {
                let s = v6.segments();
                format!("{}/64", Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
            None => "unknown".to_owned(),
        }
    }
}

impl FromRequestParts<AppState> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| *peer);
        Ok(Self {
            address: client_ip(&parts.headers, peer, state.settings.trust_forwarded_for),
            user_agent: parts
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|ua| ua.chars().take(200).collect()),
        })
    }
}

/// The client's address: the peer, or behind a trusted proxy the last `X-Forwarded-For` entry
/// (the one that proxy appended; earlier ones are the client's to forge).
pub(crate) fn client_ip(
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    trust_forwarded_for: bool,
) -> Option<IpAddr> {
    if trust_forwarded_for {
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .last()
            .and_then(|last| last.trim().parse().ok());
        if forwarded.is_some() {
            return forwarded;
        }
    }
    peer.map(|peer| peer.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", value.parse().expect("header value"));
        }
        headers
    }

    #[test]
    fn the_client_is_the_peer_unless_a_trusted_proxy_says_otherwise() {
        let peer = "10.0.0.7:5000".parse().ok();
        let plain = forwarded(&["203.0.113.9"]);
        assert_eq!(client_ip(&plain, peer, false), "10.0.0.7".parse().ok());
        let proxied = forwarded(&["1.1.1.1, 203.0.113.9", "198.51.100.4"]);
        assert_eq!(client_ip(&proxied, peer, true), "198.51.100.4".parse().ok());
        let garbage = forwarded(&["not an address"]);
        assert_eq!(client_ip(&garbage, peer, true), "10.0.0.7".parse().ok());
    }

    #[test]
    fn an_ipv6_client_counts_as_its_64_network() {
        let counted = |address: &str| {
            Client {
                address: address.parse().ok(),
                user_agent: None,
            }
            .counted_as()
        };
        assert_eq!(counted("203.0.113.9"), "203.0.113.9");
        assert_eq!(counted("::ffff:203.0.113.9"), "203.0.113.9");
        assert_eq!(counted("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(
            counted("2001:db8:1:2:ffff:ffff:ffff:ffff"),
            counted("2001:db8:1:2::7")
        );
        assert_ne!(counted("2001:db8:1:3::1"), counted("2001:db8:1:2::1"));
        assert_eq!(counted("not an address"), "unknown");
    }
}
