//! How the proxy opens a connection to a port of a space: straight to the container's
//! address when Hangar has a network path to it, else through a relay started inside the
//! space by the runtime (a Swarm node's overlay that Hangar is not attached to). One
//! connector for the HTTP client, one function for the WebSocket bridges.

use std::error::Error as StdError;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use app::ids::SpaceId;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};
use tokio::net::TcpStream;

use crate::error::{ApiError, ApiResult};
use crate::runtime::{relay, Reach, Runtime};

/// How long a space gets to accept a connection (one that is refused fails at once).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The host part of the addresses that mean "through a relay into this space".
const RELAY_HOST_SUFFIX: &str = ".relay.hangar.invalid";

/// Where one port of a space is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    Tcp(SocketAddr),
    Relay(SpaceId, u16),
}

impl Upstream {
    pub fn new(space_id: &SpaceId, reach: Reach, port: u16) -> Self {
        match reach {
            Reach::Address(ip) => Self::Tcp(SocketAddr::new(ip, port)),
            Reach::Relay => Self::Relay(space_id.clone(), port),
        }
    }

    /// The authority the HTTP client is given: the connector reads it back, and its pool
    /// keeps connections apart by it.
    pub fn authority(&self) -> String {
        match self {
            Self::Tcp(address) => address.to_string(),
            Self::Relay(space_id, port) => format!("{space_id}{RELAY_HOST_SUFFIX}:{port}"),
        }
    }
}

/// A connection to a port of a space.
pub enum SpaceStream {
    Tcp(TcpStream),
    Relay(DuplexStream),
}

/// Opens a connection to `upstream`, or 503 saying why not (`what` names it).
pub async fn dial(
    runtime: &dyn Runtime,
    upstream: &Upstream,
    what: &str,
) -> ApiResult<SpaceStream> {
    match upstream {
        Upstream::Tcp(address) => {
            match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address)).await {
                Ok(Ok(stream)) => {
                    let _ = stream.set_nodelay(true);
                    Ok(SpaceStream::Tcp(stream))
                }
                Ok(Err(e)) => Err(ApiError::unavailable(format!(
                    "{what} does not answer ({e}): it may still be starting; try again in a moment"
                ))),
                Err(_) => Err(ApiError::unavailable(format!(
                    "{what} did not answer within {} s",
                    CONNECT_TIMEOUT.as_secs()
                ))),
            }
        }
        Upstream::Relay(space_id, port) => relay::open(runtime, space_id, "127.0.0.1", *port)
            .await
            .map(|exec| SpaceStream::Relay(relay::stream(exec)))
            .map_err(|reason| ApiError::unavailable(format!("{what} does not answer: {reason}"))),
    }
}

/// The HTTP client's connector: dials the address, or reads the relay authority written by
/// [`Upstream::authority`] back into a space and a port.
#[derive(Clone)]
pub struct SpaceConnector {
    http: HttpConnector,
    runtime: Arc<dyn Runtime>,
}

impl SpaceConnector {
    pub fn new(runtime: Arc<dyn Runtime>) -> Self {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        Self { http, runtime }
    }
}

fn relay_target(uri: &http::Uri) -> Option<(SpaceId, u16)> {
    let space = uri.host()?.strip_suffix(RELAY_HOST_SUFFIX)?;
    Some((space.parse().ok()?, uri.port_u16()?))
}

type BoxError = Box<dyn StdError + Send + Sync>;

impl tower::Service<http::Uri> for SpaceConnector {
    type Response = TokioIo<SpaceStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        tower::Service::<http::Uri>::poll_ready(&mut self.http, context).map_err(Into::into)
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        match relay_target(&uri) {
            Some((space_id, port)) => {
                let runtime = self.runtime.clone();
                Box::pin(async move {
                    let exec = relay::open(runtime.as_ref(), &space_id, "127.0.0.1", port)
                        .await
                        .map_err(std::io::Error::other)?;
                    Ok(TokioIo::new(SpaceStream::Relay(relay::stream(exec))))
                })
            }
            None => {
                let connecting = self.http.call(uri);
                Box::pin(async move {
                    let stream = connecting.await?.into_inner();
                    Ok(TokioIo::new(SpaceStream::Tcp(stream)))
                })
            }
        }
    }
}

impl Connection for SpaceStream {
    fn connected(&self) -> Connected {
        match self {
            Self::Tcp(stream) => stream.connected(),
            Self::Relay(_) => Connected::new(),
        }
    }
}

impl AsyncRead for SpaceStream {
    fn poll_read(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(stream) => Pin::new(stream).poll_read(context, buffer),
            Self::Relay(stream) => Pin::new(stream).poll_read(context, buffer),
        }
    }
}

impl AsyncWrite for SpaceStream {
    fn poll_write(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(stream) => Pin::new(stream).poll_write(context, data),
            Self::Relay(stream) => Pin::new(stream).poll_write(context, data),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(stream) => Pin::new(stream).poll_flush(context),
            Self::Relay(stream) => Pin::new(stream).poll_flush(context),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(stream) => Pin::new(stream).poll_shutdown(context),
            Self::Relay(stream) => Pin::new(stream).poll_shutdown(context),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relay_authority_reads_back_as_its_space_and_port() -> Result<(), http::uri::InvalidUri> {
        let space = SpaceId::from("0190b7a0-0000-7000-8000-000000000001");
        let upstream = Upstream::Relay(space.clone(), 8080);
        let uri: http::Uri = format!("http://{}/x", upstream.authority()).parse()?;
        assert_eq!(relay_target(&uri), Some((space, 8080)));
        let direct: http::Uri = "http://10.0.0.2:80/".parse()?;
        assert_eq!(relay_target(&direct), None);
        Ok(())
    }
}
