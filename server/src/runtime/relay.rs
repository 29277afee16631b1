//! A TCP connection made from inside a space by a small relay process started there through
//! the runtime's exec: how `ssh -L` reaches a space's own ports (its loopback included, and
//! nothing else), and how the port proxy reaches a space on a Swarm node that Hangar has no
//! network path to. The relay is perl (Debian images, with proper half-closes) or else `nc`
//! (busybox).

use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use app::ids::SpaceId;

use super::{Exec, ExecOutput, ExecRequest, Runtime};

/// How long the relay may take to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// What [`stream`] buffers between the relay and its reader.
const BUFFER: usize = 64 * 1024;

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
    echo 'reaching a port needs perl or nc in the space' >&2; exit 127";

/// Starts the relay to `host`:`port` as seen from inside the space and waits until it is
/// connected; the error says why it is not (in words for the person who asked).
pub async fn open(
    runtime: &dyn Runtime,
    space_id: &SpaceId,
    host: &str,
    port: u16,
) -> Result<Exec, String> {
    let request = ExecRequest {
        cmd: vec![
            "/bin/sh".into(),
            "-c".into(),
            RELAY.into(),
            "hangar-relay".into(),
            host.into(),
            port.to_string(),
            PERL_RELAY.into(),
        ],
        ..Default::default()
    };
    let mut exec = runtime
        .exec(space_id, request)
        .await
        .map_err(|e| format!("cannot reach the space: {e}"))?;
    let connected = tokio::time::timeout(CONNECT_TIMEOUT, async {
        loop {
            match exec.output.next().await {
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
            "port {port} inside the space did not answer within {} s",
            CONNECT_TIMEOUT.as_secs()
        ))
    });
    match connected {
        Ok(()) => Ok(exec),
        Err(reason) => {
            let _ = exec.control.signal("KILL").await;
            Err(reason)
        }
    }
}

/// The relay as one byte stream, for code that wants a socket: what is written goes to the
/// port, what the port answers is read. Dropping the stream ends the relay.
pub fn stream(exec: Exec) -> DuplexStream {
    let (ours, theirs) = tokio::io::duplex(BUFFER);
    let Exec {
        mut output,
        mut input,
        control,
    } = exec;
    let (mut from_user, mut to_user) = tokio::io::split(theirs);
    tokio::spawn(async move {
        let up = async {
            let mut buffer = vec![0u8; BUFFER];
            loop {
                match from_user.read(&mut buffer).await {
                    Ok(0) | Err(_) => {
                        let _ = input.shutdown().await;
                        break;
                    }
                    Ok(n) => {
                        if input.write_all(&buffer[..n]).await.is_err()
                            || input.flush().await.is_err()
                        {
                            break;
                        }
                    }
                }
            }
        };
        let down = async {
            while let Some(Ok(chunk)) = output.next().await {
                if let ExecOutput::Stdout(data) = chunk {
                    if to_user.write_all(&data).await.is_err() {
                        return;
                    }
                }
            }
            let _ = to_user.shutdown().await;
        };
        // The port's end of data ends the stream; the user's end of data is passed on as a
        // half-close and the answer still read.
        tokio::pin!(down);
        tokio::select! {
            () = &mut down => {}
            () = up => down.await,
        }
        let _ = control.signal("KILL").await;
    });
    ours
}
