//! The HTTP edge: connections that never send a request, connections per client address, and
//! metric labels that clients cannot multiply. Raw sockets, so that nothing is sent but what
//! the test says.

use reqwest::{Method, StatusCode};
use shop_testkit::{eventually, TestApp};
use std::time::{Duration, Instant};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// How much later than its timeout a connection may be closed on a busy test machine.
const SLACK: Duration = Duration::from_secs(4);
/// The 24 bytes an HTTP/2 client starts with (RFC 9113, 3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty SETTINGS frame: length 0, type 4, no flags, stream 0.
const H2_SETTINGS: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 0, 0];
const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: shop\r\n\r\n";

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .expect("connect")
}

/// Whether the server closes `socket` (end of stream or reset) within `within`; what it sends
/// before (an HTTP/2 server's SETTINGS) is read and dropped.
async fn closed_within(socket: &mut TcpStream, within: Duration) -> bool {
    let mut sink = Vec::new();
    tokio::time::timeout(within, socket.read_to_end(&mut sink))
        .await
        .is_ok()
}

/// Reads one HTTP/1.1 response whose body has a `Content-Length`; `None` if the connection
/// closes first or `within` passes.
async fn read_response(socket: &mut TcpStream, within: Duration) -> Option<String> {
    let read = async {
        let mut received = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&received[..end]).into_owned();
                let length: usize = head
                    .lines()
                    .filter_map(|line| line.split_once(':'))
                    .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, value)| value.trim().parse().ok())
                    .unwrap_or(0);
                if received.len() >= end + 4 + length {
                    return Some(
                        String::from_utf8_lossy(&received[..end + 4 + length]).into_owned(),
                    );
                }
            }
            let n = socket.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            received.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(within, read).await.ok().flatten()
}

/// Sends `GET /healthz` on `socket`: whether it is answered 200.
async fn served(socket: &mut TcpStream) -> bool {
    // A connection the server closed at once may refuse the write, or take it and then close.
    if socket.write_all(HEALTHZ).await.is_err() {
        return false;
    }
    read_response(socket, SLACK)
        .await
        .is_some_and(|answer| answer.starts_with("HTTP/1.1 200"))
}

#[tokio::test]
async fn connections_without_a_request_are_closed_whatever_protocol_they_claim() {
    let timeout = Duration::from_secs(1);
    let app = TestApp::spawn_configured(|s| s.header_read_timeout = timeout).await;
    let preface_and_settings = [H2_PREFACE, H2_SETTINGS].concat();
    let cases: [(&str, &[u8]); 6] = [
        ("nothing", b""),
        (
            "the first line of the HTTP/2 preface",
            b"PRI * HTTP/2.0\r\n",
        ),
        ("the whole HTTP/2 preface", H2_PREFACE),
        (
            "the HTTP/2 preface and SETTINGS, but no HEADERS",
            preface_and_settings.as_slice(),
        ),
        // Could begin POST, PUT, PATCH or the HTTP/2 preface: the protocol is not told yet.
        ("one byte, P", b"P"),
        (
            "a partial HTTP/1 head",
            b"GET /healthz HTTP/1.1\r\nHost: shop\r\nX-Slow: ",
        ),
    ];
    let started = Instant::now();
    let mut silent = Vec::new();
    for (what, bytes) in cases {
        let mut socket = connect(&app).await;
        socket.write_all(bytes).await.expect(what);
        silent.push((what, socket));
    }
    // A whole request on a connection of its own is answered meanwhile.
    assert!(
        served(&mut connect(&app).await).await,
        "a request went unanswered"
    );
    for (what, mut socket) in silent {
        let left = (timeout + SLACK).saturating_sub(started.elapsed());
        assert!(
            closed_within(&mut socket, left).await,
            "a connection that sent {what} was still open {:?} after it was opened",
            timeout + SLACK
        );
    }
}

#[tokio::test]
async fn a_connection_is_kept_while_requests_come_and_closed_once_idle_for_the_timeout() {
    let timeout = Duration::from_secs(1);
    let app = TestApp::spawn_configured(|s| s.header_read_timeout = timeout).await;
    let mut socket = connect(&app).await;
    let opened = Instant::now();
    // Requests well within the timeout of each other, until the connection is twice as old as
    // it: only the wait for the first request is timed from the connection's start.
    while opened.elapsed() < timeout * 2 {
        assert!(
            served(&mut socket).await,
            "unanswered after {:?}",
            opened.elapsed()
        );
        // A client's pause between requests, not a wait for the server.
        tokio::time::sleep(timeout / 4).await;
    }
    // Idle after a request, the next head must come within the timeout too (hyper's timer).
    assert!(
        closed_within(&mut socket, timeout + SLACK).await,
        "an idle keep-alive connection was kept open"
    );
}

#[tokio::test]
async fn one_address_holds_at_most_its_cap_of_connections() {
    let app = TestApp::spawn_configured(|s| {
        s.max_connections_per_ip = 4;
        // Longer than the test: the held connections stay open on their own account.
        s.header_read_timeout = Duration::from_secs(60);
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(connect(&app).await);
    }
    // The kernel accepts a fifth; the server closes it at once.
    let mut over = connect(&app).await;
    assert!(
        closed_within(&mut over, Duration::from_secs(2)).await,
        "a fifth connection from one address was kept open"
    );
    // The four are served.
    assert!(
        served(&mut held[0]).await,
        "a held connection went unanswered"
    );
    // One closes; once the server has seen it, a new connection is served.
    drop(held.pop());
    let app = &app;
    eventually(
        Duration::from_secs(5),
        "a connection served after one closed",
        || async move {
            if served(&mut connect(app).await).await {
                Ok(())
            } else {
                Err("a new connection unanswered")
            }
        },
    )
    .await;
    // Refusals are counted (all connections dropped, so /metrics itself gets through).
    drop(held);
    eventually(
        Duration::from_secs(5),
        "a refusal in /metrics",
        || async move {
            match app.client.get(app.url("/metrics")).send().await {
                Ok(response) => {
                    let text = response.text().await.unwrap_or_default();
                    if text.contains(r#"shop_api_connections_refused_total{reason="per_ip_cap"}"#) {
                        Ok(())
                    } else {
                        Err("no per_ip_cap refusal counted".to_owned())
                    }
                }
                Err(error) => Err(format!("/metrics unanswered: {error}")),
            }
        },
    )
    .await;
}

#[tokio::test]
async fn invented_methods_and_unknown_paths_add_no_metric_series() {
    let app = TestApp::spawn().await;
    let invented = Method::from_bytes(b"FOOBAR").expect("a valid method token");
    let response = app
        .client
        .request(invented.clone(), app.url("/healthz"))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    app.client
        .request(invented, app.url("/no/such/page-zq81"))
        .send()
        .await
        .expect("sent");
    let text = app.metrics().await;
    assert!(
        text.lines()
            .any(|line| line.starts_with("shop_api_http_requests_total{")
                && line.contains(r#"method="other""#)
                && line.contains(r#"route="/healthz""#)),
        "{text}"
    );
    assert!(
        !text.contains("FOOBAR"),
        "invented methods must not become labels: {text}"
    );
    assert!(
        !text.contains("page-zq81"),
        "raw paths must not become labels: {text}"
    );
}
