//! `ssh -L` (a `direct-tcpip` channel) to a port inside the space. The connection is made
//! from inside the space itself, by [`relay`] started there through the runtime, so that
//! servers listening on the space's loopback (as editors' remote servers do) are reachable
//! and nothing else is: not the gateway's host, not other spaces.

use russh::server::{ChannelOpenHandle, Msg};
use russh::{Channel, ChannelMsg, ChannelOpenFailure};
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

use app::ids::SpaceId;

use super::process::{end_process, pump_output, Pumped};
use crate::runtime::{relay, Runtime};
use crate::services::activity::Touch;

fn failed(reason: String) -> ChannelOpenFailure {
    ChannelOpenFailure::Other {
        code: ChannelOpenFailure::ConnectFailed.code(),
        reason,
    }
}

/// Opens the forwarded connection to `address`:`port` in the space and carries it until
/// either side ends; answers the channel's opening with the outcome.
pub async fn relay(
    runtime: &dyn Runtime,
    space_id: &SpaceId,
    address: &str,
    port: u16,
    channel: Channel<Msg>,
    reply: ChannelOpenHandle,
    mut activity: Touch,
) {
    let exec = match relay::open(runtime, space_id, address, port).await {
        Ok(exec) => exec,
        Err(reason) => {
            reply.reject(failed(reason)).await;
            return;
        }
    };
    let (mut output, mut input, control) = (exec.output, exec.input, exec.control);
    reply.accept().await;
    let (mut reader, writer) = channel.split();
    let (gone_tx, mut gone) = watch::channel(false);
    let mut sent = activity.clone();
    let inbound = tokio::spawn(async move {
        while let Some(message) = reader.wait().await {
            if matches!(message, ChannelMsg::Data { .. }) {
                sent.touch();
            }
            // Data is written in the guard: when that works, nothing else is to be done.
            match message {
                ChannelMsg::Data { data }
                    if input.write_all(&data).await.is_err() || input.flush().await.is_err() =>
                {
                    break;
                }
                ChannelMsg::Eof => {
                    let _ = input.shutdown().await;
                }
                ChannelMsg::Close => break,
                _ => {}
            }
        }
        gone_tx.send_replace(true);
    });
    match pump_output(&mut output, &writer, &mut gone, false, &mut activity).await {
        Pumped::Ended => {
            let _ = writer.eof().await;
            let _ = writer.close().await;
            inbound.abort();
        }
        Pumped::Gone => end_process(&mut output, control.as_ref(), "TERM").await,
    }
}
