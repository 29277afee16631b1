//! `hangar port-forward`: local ports to ports in a space, each connection over a WebSocket
//! of its own.

use std::net::{IpAddr, SocketAddr};

use clap::Args;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

use super::client::Client;
use super::spaces::find_space;
use super::websocket::{open_websocket, Socket};
use super::CliError;

#[derive(Debug, Args)]
pub struct ForwardArgs {
    /// The space: its name, `owner/name` for one shared with you, or its id.
    pub space: String,
    /// `LOCAL:REMOTE` (or one port for both); 0 as the local port picks a free one.
    #[arg(required = true)]
    pub ports: Vec<String>,
    /// The local address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub address: IpAddr,
}

/// `LOCAL:REMOTE` or `PORT`.
fn port_pair(text: &str) -> Result<(u16, u16), CliError> {
    let bad = || {
        CliError::usage(format!(
            "`{text}` is not a port mapping: give LOCAL:REMOTE (e.g. 8080:80) or one port"
        ))
    };
    let (local, remote) = text.split_once(':').unwrap_or((text, text));
    let local: u16 = local.parse().map_err(|_| bad())?;
    let remote: u16 = remote.parse().map_err(|_| bad())?;
    if remote == 0 {
        return Err(bad());
    }
    Ok((local, remote))
}

/// `hangar port-forward`: listens on local ports and carries each connection to the space's
/// port over its own WebSocket, until interrupted.
pub async fn port_forward(client: &Client, args: ForwardArgs) -> Result<(), CliError> {
    let space = find_space(client, &args.space).await?;
    let pairs = args
        .ports
        .iter()
        .map(|p| port_pair(p))
        .collect::<Result<Vec<_>, _>>()?;
    // One WebSocket first: a refusal (permission, stopped space) is said now, not at the
    // first connection.
    let (_, first_remote) = pairs[0];
    open_websocket(
        client,
        &format!("/api/v1/spaces/{}/ports/{first_remote}/tcp", space.id),
    )
    .await?;
    let mut tasks = tokio::task::JoinSet::new();
    for (local, remote) in pairs {
        let listener = tokio::net::TcpListener::bind(SocketAddr::new(args.address, local))
            .await
            .map_err(|e| {
                CliError::usage(format!(
                    "cannot listen on {}:{local} ({e}): choose another local port",
                    args.address
                ))
            })?;
        let bound = listener
            .local_addr()
            .map_err(|e| CliError::usage(format!("cannot read the local address: {e}")))?;
        outln!("Forwarding {bound} -> {}:{remote}", args.space);
        let client = client.clone();
        let path = format!("/api/v1/spaces/{}/ports/{remote}/tcp", space.id);
        tasks.spawn(async move {
            loop {
                let Ok((connection, _)) = listener.accept().await else {
                    continue;
                };
                let (client, path) = (client.clone(), path.clone());
                tokio::spawn(async move {
                    match open_websocket(&client, &path).await {
                        Ok(socket) => carry(connection, socket).await,
                        Err(e) => eprintln!("hangar: {}", e.message),
                    }
                });
            }
        });
    }
    let _ = tokio::signal::ctrl_c().await;
    tasks.shutdown().await;
    Ok(())
}

/// Copies a local connection to a WebSocket and back until either side ends.
async fn carry(connection: tokio::net::TcpStream, socket: Socket) {
    let _ = connection.set_nodelay(true);
    let (mut from_local, mut to_local) = connection.into_split();
    let (mut to_server, mut from_server) = socket.split();
    let up = async {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            match from_local.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let frame = Message::Binary(bytes::Bytes::copy_from_slice(&buffer[..n]));
                    if to_server.send(frame).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to_server.send(Message::Close(None)).await;
    };
    let down = async {
        while let Some(Ok(message)) = from_server.next().await {
            let data = match message {
                Message::Binary(data) => data,
                Message::Close(_) => break,
                _ => continue,
            };
            if to_local.write_all(&data).await.is_err() {
                break;
            }
        }
        let _ = to_local.shutdown().await;
    };
    tokio::select! {
        () = up => {}
        () = down => {}
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn port_mappings_read_local_then_remote() {
        assert_eq!(port_pair("8080:80").unwrap(), (8080, 80));
        assert_eq!(port_pair("5432").unwrap(), (5432, 5432));
        assert_eq!(port_pair("0:22").unwrap(), (0, 22));
        assert!(port_pair("8080:0").is_err());
        assert!(port_pair("web").is_err());
    }
}
