//! A WebSocket client of the web terminal, for tests.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::support::TestServer;

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// One viewer: everything it received, in order.
pub struct Viewer {
    pub socket: Socket,
    pub output: Vec<u8>,
    pub controls: Vec<serde_json::Value>,
    pub closed: bool,
    /// Keep only the last bytes of output (for long streams).
    pub tail_only: bool,
}

pub async fn connect(
    server: &TestServer,
    cookie: &str,
    space: &str,
    session: &str,
    origin: Option<&str>,
) -> Result<Viewer, u16> {
    let url = format!(
        "ws://{}/api/v1/spaces/{space}/terminal?session={session}&cols=80&rows=24",
        server.addr
    );
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("cookie", cookie.parse().unwrap());
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(Viewer {
            socket,
            output: Vec::new(),
            controls: Vec::new(),
            closed: false,
            tail_only: false,
        }),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(response.status().as_u16())
        }
        Err(e) => panic!("websocket: {e}"),
    }
}

impl Viewer {
    pub async fn send(&mut self, text: &str) {
        self.socket
            .send(Message::Binary(text.as_bytes().to_vec().into()))
            .await
            .unwrap();
    }

    pub async fn control(&mut self, value: serde_json::Value) {
        self.socket
            .send(Message::Text(value.to_string().into()))
            .await
            .unwrap();
    }

    /// Reads until `done` says so about the output seen, or the time is up.
    pub async fn read_until(&mut self, limit: Duration, done: impl Fn(&Viewer) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        while !done(self) {
            if self.closed {
                return false;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.socket.next()).await {
                Err(_) => return false,
                Ok(None) | Ok(Some(Err(_))) => self.closed = true,
                Ok(Some(Ok(Message::Binary(bytes)))) => {
                    self.output.extend_from_slice(&bytes);
                    if self.tail_only && self.output.len() > 4096 {
                        self.output.drain(..self.output.len() - 4096);
                    }
                }
                Ok(Some(Ok(Message::Text(text)))) => {
                    self.controls.push(serde_json::from_str(&text).unwrap())
                }
                Ok(Some(Ok(Message::Close(_)))) => self.closed = true,
                Ok(Some(Ok(_))) => {}
            }
        }
        true
    }

    pub async fn expect(&mut self, needle: &str) {
        let found = self
            .read_until(Duration::from_secs(10), |v| {
                String::from_utf8_lossy(&v.output).contains(needle)
            })
            .await;
        assert!(
            found,
            "never saw {needle:?}; got {:?}",
            String::from_utf8_lossy(&self.output)
        );
    }
}

pub fn session_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
