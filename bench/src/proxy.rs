//! A TCP relay that can cut the network without closing anything, for the fault suite: while cut,
//! no byte crosses in either direction and no socket is closed or reset, so both ends see a
//! half-open connection, as with a pulled cable or a partition that drops packets. New
//! connections are accepted but get nowhere until the cut is mended.

use std::net::SocketAddr;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
};

pub struct Proxy {
    pub addr: SocketAddr,
    cut: watch::Sender<bool>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free loopback port and relays every connection to `upstream`.
    pub async fn start(upstream: String) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (cut, connected) = watch::channel(false);
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, upstream.clone(), connected.clone()));
            }
        });
        Ok(Self { addr, cut, accept })
    }

    /// Stops every byte (`true`) or lets them flow again (`false`).
    pub fn set_cut(&self, cut: bool) {
        self.cut.send_replace(cut);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Waits while the network is cut. Ends (false) when the proxy is gone.
async fn passable(cut: &mut watch::Receiver<bool>) -> bool {
    cut.wait_for(|cut| !cut).await.is_ok()
}

async fn relay(client: TcpStream, upstream: String, mut cut: watch::Receiver<bool>) {
    if !passable(&mut cut).await {
        return;
    }
    let Ok(server) = TcpStream::connect(&upstream).await else {
        return;
    };
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::join!(
        pump(client_read, server_write, cut.clone()),
        pump(server_read, client_write, cut)
    );
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut cut: watch::Receiver<bool>,
) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        if !passable(&mut cut).await {
            return;
        }
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // Bytes read just before a cut are held until it is mended.
        if !passable(&mut cut).await || to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buffer = [0u8; 1024];
                    while let Ok(n) = socket.read(&mut buffer).await {
                        if n == 0 || socket.write_all(&buffer[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_cut_holds_bytes_without_closing_and_mending_delivers_them() {
        let proxy = Proxy::start(echo_server().await.to_string())
            .await
            .expect("proxy");
        let mut socket = TcpStream::connect(proxy.addr).await.expect("connect");
        let mut answer = [0u8; 5];
        socket.write_all(b"hello").await.expect("write");
        socket.read_exact(&mut answer).await.expect("echo");
        assert_eq!(&answer, b"hello");

        proxy.set_cut(true);
        socket.write_all(b"again").await.expect("write while cut");
        let during =
            tokio::time::timeout(Duration::from_millis(300), socket.read(&mut answer)).await;
        assert!(during.is_err(), "nothing arrives, and nothing is closed");

        proxy.set_cut(false);
        socket
            .read_exact(&mut answer)
            .await
            .expect("echo after mending");
        assert_eq!(&answer, b"again");
    }
}
