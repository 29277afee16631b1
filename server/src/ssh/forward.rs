//! `ssh -L` (a `direct-tcpip` channel) to a port inside the space. The connection is made
//! from inside the space itself, by a small relay started there through the runtime, so that
//! servers listening on the space's loopback (as editors' remote servers do) are reachable
//! and nothing else is: not the gateway's host, not other spaces. The relay is perl (in Debian
//! images, with proper half-closes) or else `nc` (busybox).

use std::time::Duration;

use futures_util::StreamExt;
use russh::server::{ChannelOpenHandle, Msg};
use russh::{Channel, ChannelMsg, ChannelOpenFailure};
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

use app::ids::SpaceId;

use super::process::{end_process, pump_output, Pumped};
use crate::runtime::{ExecOutput, ExecRequest, Runtime};

/// How long the relay may take to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to HOST PORT, says `+` on stderr once connected (or why not, and exits), then
/// copies both ways, passing each side's end of data on to the other.
const PERL_RELAY: &str = r#"
use strict; use IO::Socket; use IO::Select;
my ($h, $p) = @ARGV;
my $class = $h =~ /:/ ? "IO::Socket::IP" : "IO::Socket::INET";
eval "require $class; 1" or die "perl in the space lacks $class\n";
my $s = $class->new(PeerAddr => $h, PeerPort => $p, Proto => "tcp")
  or die "nothing answers on port $p inside the space ($!)\n";
binmode STDIN; binmode STDOUT; binmode $s;
syswrite STDERR, "+\n";
my $sel = IO::Select->new(\*STDIN, $s);
while ($sel->count) {
  for my $fh ($sel->can_read) {
    my $n = sysread $fh, my $buf, 65536;
    my $from_server = fileno($fh) == fileno($s);
    if (!$n) {
      exit 0 if $from_server;
      $sel->remove($fh); shutdown $s, 1; next;
    }
    my $out = $from_server ? \*STDOUT : $s;
    my $off = 0;
    while ($off < $n) { my $w = syswrite $out, $buf, $n - $off, $off; exit 0 unless defined $w; $off += $w }
  }
}
"#;

const RELAY: &str =
    "if command -v perl >/dev/null 2>&1; then exec perl -e \"$3\" \"$1\" \"$2\"; fi; \
    if command -v nc >/dev/null 2>&1; then echo + >&2; exec nc \"$1\" \"$2\"; fi; \
    echo 'ssh -L needs perl or nc in the space' >&2; exit 127";

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
) {
    let request = ExecRequest {
        cmd: vec![
            "/bin/sh".into(),
            "-c".into(),
            RELAY.into(),
            "hangar-forward".into(),
            address.into(),
            port.to_string(),
            PERL_RELAY.into(),
        ],
        ..Default::default()
    };
    let exec = match runtime.exec(space_id, request).await {
        Ok(exec) => exec,
        Err(e) => {
            reply
                .reject(failed(format!("cannot reach the space: {e}")))
                .await;
            return;
        }
    };
    let (mut output, mut input, control) = (exec.output, exec.input, exec.control);
    let connected = tokio::time::timeout(CONNECT_TIMEOUT, async {
        loop {
            match output.next().await {
                Some(Ok(ExecOutput::Stderr(said))) if said.starts_with(b"+") => return Ok(()),
                Some(Ok(ExecOutput::Stderr(said))) => {
                    return Err(String::from_utf8_lossy(&said).trim().to_owned())
                }
                Some(Ok(ExecOutput::Stdout(_))) => {}
                Some(Err(e)) => return Err(e.to_string()),
                None => return Err(format!("nothing answers on port {port} inside the space")),
            }
        }
    })
    .await
    .unwrap_or_else(|_| {
        Err(format!(
            "port {port} inside the space did not answer in time"
        ))
    });
    if let Err(reason) = connected {
        let _ = control.signal("KILL").await;
        reply.reject(failed(reason)).await;
        return;
    }
    reply.accept().await;
    let (mut reader, writer) = channel.split();
    let (gone_tx, mut gone) = watch::channel(false);
    let inbound = tokio::spawn(async move {
        while let Some(message) = reader.wait().await {
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
    match pump_output(&mut output, &writer, &mut gone, false).await {
        Pumped::Ended => {
            let _ = writer.eof().await;
            let _ = writer.close().await;
            inbound.abort();
        }
        Pumped::Gone => end_process(&mut output, control.as_ref(), "TERM").await,
    }
}
