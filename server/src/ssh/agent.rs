//! `ssh -A`: the client's SSH agent, reachable from a session's process in the space (so that
//! git there signs in to SSH remotes with the developer's own keys, which never leave their
//! machine).
//!
//! When a session that asked for agent forwarding starts its process, [`start`] runs a small
//! relay in the space first (perl, through the runtime's exec, as the space's user): it makes a
//! folder only that user may enter (`/tmp/.hangar-agent-XXXXXX`, 700), listens on a Unix socket
//! in it, says the socket's path on its first line, then carries every connection made to that
//! socket over its stdin and stdout in frames (see [`Frame`]). The process gets
//! `SSH_AUTH_SOCK=<that path>`. For each connection the relay announces, Hangar asks the rules
//! again ([`crate::services::Services::ssh_agent_refusal`]: a space shared meanwhile refuses
//! it), opens an `auth-agent@openssh.com` channel to the client and bridges the two.
//!
//! Limits: [`MAX_CONNECTIONS`] at once per session (the relay refuses more, and so does
//! Hangar), frames of at most [`MAX_FRAME`] bytes, a short queue per connection (a connection
//! whose queue is full is closed, so one stuck agent channel holds up nothing else). The relay
//! ends, removing its folder, when its input ends: when the session's process ends, when the
//! connection closes, or when Hangar drops the [`AgentRelay`].

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use futures_util::StreamExt;
use russh::server::Handle;
use russh::{ChannelId, ChannelMsg};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};

use app::ids::SpaceId;

use super::process::end_process;
use crate::runtime::{Exec, ExecOutput, ExecRequest};
use crate::services::access::Caller;
use crate::services::Services;

/// Connections to the agent open at once from one session (an agent client makes one at a
/// time; a few in parallel is plenty).
pub const MAX_CONNECTIONS: usize = 8;
/// The largest frame either side accepts (agent messages are small: a few KiB).
pub const MAX_FRAME: usize = 256 * 1024;
/// Frames waiting for one connection's agent channel: an agent client waits for each answer
/// before it asks again, so a full queue means a misbehaving client, whose connection closes.
const QUEUE: usize = 16;
/// Most agent connections opened per second by one relay (each asks the client for a channel).
const OPENS_PER_SECOND: usize = 10;
/// How long the relay may take to say where it listens.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the client may take to accept an agent channel.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the relay may take to end once its input is closed, before it is signalled.
const END_GRACE: Duration = Duration::from_secs(2);
/// A frame's header: its kind, the connection's id, the data's length.
const HEADER: usize = 9;
/// The longest first line (the socket's path) read from the relay.
const MAX_PATH: usize = 200;
/// Where the relay makes its folder (the first line must name a socket there).
const FOLDER_PREFIX: &str = "/tmp/.hangar-agent-";

/// Runs the relay with perl (in every Debian image: git needs it); says why not if there is
/// none. Arguments: the perl program, the most connections, the largest frame.
const WRAPPER: &str = "command -v perl >/dev/null 2>&1 || { echo 'agent forwarding (ssh -A) \
     needs perl in the space (perl-base on Debian and Ubuntu): going on without it' >&2; \
     exit 127; }; \
     d=$(mktemp -d /tmp/.hangar-agent-XXXXXX) || exit 1; \
     chmod 700 \"$d\" || { rmdir \"$d\"; exit 1; }; \
     exec perl -e \"$1\" \"$d\" \"$2\" \"$3\"";

/// The relay: listens on DIR/agent.sock, prints that path, then frames (kind `O` open, `D`
/// data, `C` close; a 4-byte connection id; a 4-byte length; the data) both ways. Writes to a
/// connection are buffered up to the largest frame, then the connection is dropped. Its input's
/// end (or TERM, HUP, INT) ends it; the socket and its folder go with it.
const RELAY: &str = r#"
use strict;
use IO::Socket::UNIX; use IO::Select; use Errno qw(EAGAIN EWOULDBLOCK EINTR);
my ($dir, $max_conns, $max_frame) = @ARGV;
my $path = "$dir/agent.sock";
my $listening = 0;
END { unlink $path if $listening; rmdir $dir if defined $dir }
$SIG{PIPE} = 'IGNORE';
$SIG{$_} = sub { exit 0 } for qw(TERM HUP INT);
umask 077;
my $listener = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Local => $path, Listen => $max_conns)
  or die "cannot listen on $path: $!\n";
$listening = 1;
$listener->blocking(0);
my $listener_fd = fileno $listener;
binmode STDIN; binmode STDOUT;
sub put {
  my ($d) = @_; my $off = 0;
  while ($off < length $d) {
    my $w = syswrite STDOUT, $d, length($d) - $off, $off;
    if (!defined $w) { next if $! == EINTR; exit 0 }
    $off += $w;
  }
}
sub frame { my ($kind, $id, $data) = @_; $data = '' unless defined $data; put(pack('a N N', $kind, $id, length $data) . $data) }
put("$path\n");
my (%conns, %ids);
my $next = 0; my $in = '';
my $readers = IO::Select->new($listener, \*STDIN);
sub drop {
  my ($id) = @_; my $c = delete $conns{$id} or return;
  $readers->remove($c->{fh}); delete $ids{$c->{fd}}; close $c->{fh};
}
while (1) {
  my $writers = IO::Select->new(map { $_->{fh} } grep { length $_->{out} } values %conns);
  my ($readable, $writable) = IO::Select->select($readers, $writers->count ? $writers : undef, undef);
  next unless $readable || $writable;
  for my $fh (@{$writable || []}) {
    my $fd = fileno $fh; next unless defined $fd;
    my $id = $ids{$fd}; next unless defined $id;
    my $c = $conns{$id};
    my $w = syswrite $fh, $c->{out};
    if (defined $w) {
      substr($c->{out}, 0, $w) = '';
      drop($id) if $c->{closing} && !length $c->{out};
    } elsif ($! != EAGAIN && $! != EWOULDBLOCK && $! != EINTR) {
      my $closing = $c->{closing};
      drop($id); frame('C', $id) unless $closing;
    }
  }
  for my $fh (@{$readable || []}) {
    my $fd = fileno $fh; next unless defined $fd;
    if ($fd == $listener_fd) {
      my $s = $listener->accept or next;
      if (keys %conns >= $max_conns) { close $s; next }
      $s->blocking(0);
      my $id = ++$next;
      $conns{$id} = { fh => $s, fd => fileno $s, out => '', closing => 0 };
      $ids{fileno $s} = $id;
      $readers->add($s);
      frame('O', $id);
    } elsif ($fd == 0) {
      my $n = sysread STDIN, $in, 65536, length $in;
      if (!defined $n) { next if $! == EINTR || $! == EAGAIN; exit 0 }
      exit 0 if $n == 0;
      while (length $in >= 9) {
        my ($kind, $id, $len) = unpack 'a N N', $in;
        exit 1 if $len > $max_frame;
        last if length $in < 9 + $len;
        my $data = substr $in, 9, $len;
        substr($in, 0, 9 + $len) = '';
        my $c = $conns{$id} or next;
        if ($kind eq 'D') {
          next if $c->{closing};
          $c->{out} .= $data;
          if (length $c->{out} > $max_frame) { drop($id); frame('C', $id) }
        } elsif ($kind eq 'C') {
          if (length $c->{out}) { $c->{closing} = 1; $readers->remove($c->{fh}) } else { drop($id) }
        }
      }
    } else {
      my $id = $ids{$fd}; next unless defined $id;
      my $n = sysread $fh, my $buf, 65536;
      next if !defined $n && ($! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR);
      if (!$n) { drop($id); frame('C', $id); next }
      frame('D', $id, $buf);
    }
  }
}
"#;

/// One frame between Hangar and the relay.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A process in the space connected to the socket.
    Open(u32),
    /// Bytes for (or from) that connection.
    Data(u32, Bytes),
    /// That connection ended (either side).
    Close(u32),
}

impl Frame {
    /// The frame as the relay reads it.
    pub fn encode(&self) -> Vec<u8> {
        let (kind, id, data): (u8, u32, &[u8]) = match self {
            Frame::Open(id) => (b'O', *id, &[][..]),
            Frame::Data(id, data) => (b'D', *id, data.as_ref()),
            Frame::Close(id) => (b'C', *id, &[][..]),
        };
        let length = u32::try_from(data.len()).unwrap_or(u32::MAX);
        let mut bytes = Vec::with_capacity(HEADER + data.len());
        bytes.push(kind);
        bytes.extend_from_slice(&id.to_be_bytes());
        bytes.extend_from_slice(&length.to_be_bytes());
        bytes.extend_from_slice(data);
        bytes
    }
}

/// Frames read from the relay's output, which arrives in chunks of any size. It holds at most
/// one frame's worth (and one chunk) at a time: a longer frame is an error.
#[derive(Default)]
pub struct Frames {
    pending: BytesMut,
}

impl Frames {
    pub fn push(&mut self, chunk: &[u8]) {
        self.pending.extend_from_slice(chunk);
    }

    /// The next whole frame, `None` until one has fully arrived; an error for a frame that is
    /// too long or of no known kind (the relay is then given up).
    pub fn next_frame(&mut self) -> Result<Option<Frame>, String> {
        let Some(header) = self.pending.get(..HEADER) else {
            return Ok(None);
        };
        let kind = header[0];
        let id = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
        let length = u32::from_be_bytes([header[5], header[6], header[7], header[8]]);
        let length = usize::try_from(length).unwrap_or(usize::MAX);
        if length > MAX_FRAME {
            return Err(format!("a frame of {length} bytes (at most {MAX_FRAME})"));
        }
        if !matches!((kind, length), (b'D', _) | (b'O' | b'C', 0)) {
            return Err(format!("a frame of an unknown kind ({kind})"));
        }
        if self.pending.len() < HEADER + length {
            return Ok(None);
        }
        self.pending.advance(HEADER);
        let data = self.pending.split_to(length).freeze();
        Ok(Some(match kind {
            b'O' => Frame::Open(id),
            b'C' => Frame::Close(id),
            _ => Frame::Data(id, data),
        }))
    }
}

/// What a session's agent forwarding needs: who forwards, into which space, and the client
/// connection to open agent channels on (and the session to tell when one is refused).
pub struct Forwarding {
    pub services: Services,
    pub caller: Caller,
    pub space_id: SpaceId,
    pub handle: Handle,
    pub session: ChannelId,
    /// The session was told once already that a connection was refused.
    told: AtomicBool,
}

impl Forwarding {
    pub fn new(
        services: Services,
        caller: Caller,
        space_id: SpaceId,
        handle: Handle,
        session: ChannelId,
    ) -> Self {
        Self {
            services,
            caller,
            space_id,
            handle,
            session,
            told: AtomicBool::new(false),
        }
    }

    /// Says `reason` on the session's stderr, once per session.
    async fn tell(&self, reason: &str) {
        if !self.told.swap(true, Ordering::Relaxed) {
            let line = format!("\r\nhangar: {reason}\r\n");
            let _ = self
                .handle
                .extended_data(self.session, 1, line.into_bytes())
                .await;
        }
    }
}

/// A relay running in the space for one session. Dropping it ends the relay; [`Self::stop`]
/// also waits until it has.
pub struct AgentRelay {
    /// The socket the session's process finds the agent at (`SSH_AUTH_SOCK`).
    pub socket: String,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl AgentRelay {
    /// Ends the relay (its folder is removed) and its agent channels; returns once it has.
    pub async fn stop(self) {
        self.stop.send_replace(true);
        let abort = self.task.abort_handle();
        if tokio::time::timeout(END_GRACE * 4, self.task)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
}

/// Starts the relay in the space and waits until it listens. The error is the one line to show
/// on the session's stderr (the session goes on without forwarding).
pub async fn start(forwarding: Forwarding) -> Result<AgentRelay, String> {
    let request = ExecRequest {
        cmd: vec![
            "/bin/sh".into(),
            "-c".into(),
            WRAPPER.into(),
            "hangar-agent".into(),
            RELAY.into(),
            MAX_CONNECTIONS.to_string(),
            MAX_FRAME.to_string(),
        ],
        ..Default::default()
    };
    let mut exec = forwarding
        .services
        .runtime
        .exec(&forwarding.space_id, request)
        .await
        .map_err(|e| format!("agent forwarding (ssh -A) is off: cannot reach the space: {e}"))?;
    let mut first = Vec::new();
    let listening = tokio::time::timeout(START_TIMEOUT, async {
        loop {
            match exec.output.next().await {
                Some(Ok(ExecOutput::Stdout(bytes))) => {
                    first.extend_from_slice(&bytes);
                    if let Some(end) = first.iter().position(|b| *b == b'\n') {
                        return Ok(end);
                    }
                    if first.len() > MAX_PATH {
                        return Err("the relay in the space said something else".to_owned());
                    }
                }
                Some(Ok(ExecOutput::Stderr(said))) => {
                    return Err(String::from_utf8_lossy(&said).trim().to_owned())
                }
                Some(Err(e)) => return Err(e.to_string()),
                None => return Err("the relay in the space ended at once".to_owned()),
            }
        }
    })
    .await
    .unwrap_or_else(|_| Err("the relay in the space did not start in time".to_owned()));
    let socket = listening.and_then(|end| {
        let path = String::from_utf8_lossy(&first[..end]).into_owned();
        if socket_path_ok(&path) {
            Ok(path)
        } else {
            Err("the relay in the space named an unexpected socket".to_owned())
        }
    });
    let socket = match socket {
        Ok(socket) => socket,
        Err(reason) => {
            end_process(&mut exec.output, exec.control.as_ref(), "TERM").await;
            // The wrapper's own words are whole sentences; anything else is prefixed.
            return Err(if reason.starts_with("agent forwarding") {
                reason
            } else {
                format!("agent forwarding (ssh -A) is off: {reason}")
            });
        }
    };
    let mut frames = Frames::default();
    frames.push(&first[socket.len() + 1..]);
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(serve(exec, frames, Arc::new(forwarding), stopped));
    Ok(AgentRelay { socket, stop, task })
}

/// A path the relay may name: a socket in a folder it made.
fn socket_path_ok(path: &str) -> bool {
    path.strip_prefix(FOLDER_PREFIX)
        .and_then(|rest| rest.strip_suffix("/agent.sock"))
        .is_some_and(|folder| {
            !folder.is_empty()
                && folder.len() <= 32
                && folder.bytes().all(|b| b.is_ascii_alphanumeric())
        })
}

/// Carries the relay's connections until it ends or `stopped` says so (or its sender is
/// dropped), then ends the relay.
async fn serve(
    exec: Exec,
    mut frames: Frames,
    forwarding: Arc<Forwarding>,
    mut stopped: watch::Receiver<bool>,
) {
    let Exec {
        mut output,
        input,
        control,
    } = exec;
    // The right to forward is watched as long as the relay runs: a share added, the account
    // deactivated or the key removed ends it (and every agent connection) within a second.
    let mut right = forwarding.services.watch_access(
        &forwarding.caller,
        crate::services::watch::Need::Agent(forwarding.space_id.clone()),
    );
    let (ending_tx, ending) = watch::channel(false);
    let (to_space, from_connections) = mpsc::channel::<Vec<u8>>(QUEUE);
    let writer = tokio::spawn(write_frames(input, from_connections, ending.clone()));
    let mut bridges = Bridges {
        forwarding: forwarding.clone(),
        opened: VecDeque::new(),
        connections: HashMap::new(),
        running: JoinSet::new(),
        to_space,
        ending,
    };
    // Frames read with the first line come first.
    let mut taken = bridges.take(&mut frames);
    while taken.is_ok() {
        tokio::select! {
            () = until_set(&mut stopped) => break,
            reason = right.lost() => {
                forwarding.tell(&reason).await;
                break;
            }
            Some(_) = bridges.running.join_next(), if !bridges.running.is_empty() => {}
            next = output.next() => match next {
                Some(Ok(ExecOutput::Stdout(bytes))) => {
                    frames.push(&bytes);
                    taken = bridges.take(&mut frames);
                }
                Some(Ok(ExecOutput::Stderr(said))) => {
                    tracing::debug!(said = %String::from_utf8_lossy(&said), "the agent relay in a space said");
                }
                Some(Err(_)) | None => break,
            },
        }
    }
    if let Err(e) = taken {
        tracing::debug!(error = %e, "the agent relay in a space is given up");
    }
    let Bridges {
        connections,
        mut running,
        ..
    } = bridges;
    ending_tx.send_replace(true);
    drop(connections);
    // The bridges close their agent channels; the writer closes the relay's input, so the
    // relay removes its folder and exits.
    if tokio::time::timeout(END_GRACE, async {
        while running.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        running.abort_all();
    }
    let _ = writer.await;
    let ended =
        tokio::time::timeout(END_GRACE, async { while output.next().await.is_some() {} }).await;
    if ended.is_err() {
        end_process(&mut output, control.as_ref(), "TERM").await;
    }
}

/// The relay's connections and the tasks bridging them to agent channels.
struct Bridges {
    forwarding: Arc<Forwarding>,
    /// When the latest connections were opened, for [`OPENS_PER_SECOND`].
    opened: VecDeque<Instant>,
    connections: HashMap<u32, mpsc::Sender<Bytes>>,
    running: JoinSet<()>,
    to_space: mpsc::Sender<Vec<u8>>,
    ending: watch::Receiver<bool>,
}

impl Bridges {
    /// Applies every whole frame read so far; an error gives the relay up.
    fn take(&mut self, frames: &mut Frames) -> Result<(), String> {
        while let Some(frame) = frames.next_frame()? {
            if let Frame::Open(id) = frame {
                // Each opening asks the client for a channel: a loop in the space opening
                // connections must not flood it.
                let now = Instant::now();
                while self
                    .opened
                    .front()
                    .is_some_and(|at| now.duration_since(*at) >= Duration::from_secs(1))
                {
                    self.opened.pop_front();
                }
                if self.opened.len() >= OPENS_PER_SECOND {
                    let _ = self.to_space.try_send(Frame::Close(id).encode());
                    continue;
                }
                self.opened.push_back(now);
            }
            if let Some((id, from_space)) = take_frame(frame, &mut self.connections, &self.to_space)
            {
                self.running.spawn(bridge(
                    self.forwarding.clone(),
                    id,
                    from_space,
                    self.to_space.clone(),
                    self.ending.clone(),
                ));
            }
        }
        Ok(())
    }
}

/// Applies one frame from the relay; for a new connection within the limit, returns its id and
/// the queue its bridge reads.
fn take_frame(
    frame: Frame,
    connections: &mut HashMap<u32, mpsc::Sender<Bytes>>,
    to_space: &mpsc::Sender<Vec<u8>>,
) -> Option<(u32, mpsc::Receiver<Bytes>)> {
    match frame {
        Frame::Open(id) => {
            // Bridges that ended are gone from the count.
            connections.retain(|_, queue| !queue.is_closed());
            if connections.contains_key(&id) {
                return None;
            }
            if connections.len() >= MAX_CONNECTIONS {
                let _ = to_space.try_send(Frame::Close(id).encode());
                return None;
            }
            let (queue, from_space) = mpsc::channel(QUEUE);
            connections.insert(id, queue);
            Some((id, from_space))
        }
        Frame::Data(id, data) => {
            let full = connections
                .get(&id)
                .is_some_and(|queue| queue.try_send(data).is_err());
            if full {
                connections.remove(&id);
                let _ = to_space.try_send(Frame::Close(id).encode());
            }
            None
        }
        Frame::Close(id) => {
            // Its bridge reads the end of its queue and closes the agent channel.
            connections.remove(&id);
            None
        }
    }
}

/// Returns once `flag` is set, or its sender is gone (which ends things too).
async fn until_set(flag: &mut watch::Receiver<bool>) {
    let _ = flag.wait_for(|set| *set).await;
}

/// Writes frames to the relay's input until the relay ends; then closes the input.
async fn write_frames(
    mut input: std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
    mut frames: mpsc::Receiver<Vec<u8>>,
    mut ending: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            () = until_set(&mut ending) => break,
            frame = frames.recv() => match frame {
                Some(frame) => {
                    if input.write_all(&frame).await.is_err() || input.flush().await.is_err() {
                        break;
                    }
                }
                None => break,
            },
        }
    }
    let _ = input.shutdown().await;
}

/// One connection made in the space, bridged to an agent channel of the client's.
async fn bridge(
    forwarding: Arc<Forwarding>,
    id: u32,
    mut from_space: mpsc::Receiver<Bytes>,
    to_space: mpsc::Sender<Vec<u8>>,
    mut ending: watch::Receiver<bool>,
) {
    let close = Frame::Close(id).encode();
    if let Some(reason) = forwarding
        .services
        .ssh_agent_refusal(&forwarding.caller, &forwarding.space_id)
        .await
    {
        forwarding.tell(&reason).await;
        let _ = to_space.send(close).await;
        return;
    }
    let channel =
        match tokio::time::timeout(OPEN_TIMEOUT, forwarding.handle.channel_open_agent()).await {
            Ok(Ok(channel)) => channel,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "the client did not open an agent channel");
                let _ = to_space.send(close).await;
                return;
            }
            Err(_) => {
                let _ = to_space.send(close).await;
                return;
            }
        };
    let (mut reader, writer) = channel.split();
    loop {
        tokio::select! {
            () = until_set(&mut ending) => break,
            data = from_space.recv() => match data {
                Some(data) => {
                    if writer.data_bytes(data).await.is_err() {
                        let _ = to_space.send(close).await;
                        break;
                    }
                }
                // The process in the space closed the connection.
                None => break,
            },
            message = reader.wait() => match message {
                Some(ChannelMsg::Data { data }) => {
                    let mut sent = true;
                    for part in data.chunks(64 * 1024) {
                        let frame = Frame::Data(id, Bytes::copy_from_slice(part)).encode();
                        if to_space.send(frame).await.is_err() {
                            sent = false;
                            break;
                        }
                    }
                    if !sent {
                        break;
                    }
                }
                Some(ChannelMsg::Eof | ChannelMsg::Close) | None => {
                    let _ = to_space.send(close).await;
                    break;
                }
                Some(_) => {}
            },
        }
    }
    let _ = writer.eof().await;
    let _ = writer.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_read_whatever_the_chunks() {
        let mut wire = Vec::new();
        wire.extend(Frame::Open(1).encode());
        wire.extend(Frame::Data(1, Bytes::from_static(b"\x00\x00\x00\x01\x0b")).encode());
        wire.extend(Frame::Close(1).encode());
        for size in [1, 2, 7, 9, 10, wire.len()] {
            let mut frames = Frames::default();
            let mut read = Vec::new();
            for chunk in wire.chunks(size) {
                frames.push(chunk);
                while let Ok(Some(frame)) = frames.next_frame() {
                    read.push(frame);
                }
            }
            assert_eq!(
                read,
                vec![
                    Frame::Open(1),
                    Frame::Data(1, Bytes::from_static(b"\x00\x00\x00\x01\x0b")),
                    Frame::Close(1),
                ],
                "chunks of {size}"
            );
        }
    }

    #[test]
    fn a_frame_too_long_or_of_no_known_kind_is_refused() {
        let mut frames = Frames::default();
        let mut header = vec![b'D', 0, 0, 0, 1];
        header.extend_from_slice(&u32::try_from(MAX_FRAME + 1).unwrap_or(0).to_be_bytes());
        frames.push(&header);
        assert!(frames.next_frame().is_err());
        let mut frames = Frames::default();
        frames.push(&[b'X', 0, 0, 0, 1, 0, 0, 0, 0]);
        assert!(frames.next_frame().is_err());
        let mut frames = Frames::default();
        frames.push(&[b'O', 0, 0, 0, 1, 0, 0, 0, 3, 1, 2, 3]);
        assert!(frames.next_frame().is_err());
    }

    #[test]
    fn only_a_socket_in_a_relay_s_folder_is_taken() {
        assert!(socket_path_ok("/tmp/.hangar-agent-AbC123/agent.sock"));
        for path in [
            "/tmp/.hangar-agent-/agent.sock",
            "/tmp/.hangar-agent-x/../../etc/agent.sock",
            "/tmp/.hangar-agent-x y/agent.sock",
            "/run/agent.sock",
            "/tmp/.hangar-agent-abc/agent.sock\nX=1",
        ] {
            assert!(!socket_path_ok(path), "{path}");
        }
    }

    #[test]
    fn opens_beyond_the_limit_are_closed_and_full_queues_dropped() {
        let (to_space, mut written) = mpsc::channel(64);
        let mut connections = HashMap::new();
        let mut bridges = Vec::new();
        for id in 1..=u32::try_from(MAX_CONNECTIONS).unwrap_or(8) {
            bridges.push(take_frame(Frame::Open(id), &mut connections, &to_space));
        }
        assert!(bridges.iter().all(Option::is_some));
        assert!(take_frame(Frame::Open(99), &mut connections, &to_space).is_none());
        assert_eq!(written.try_recv().ok(), Some(Frame::Close(99).encode()));
        // A bridge that does not read: its queue fills, then the connection is closed.
        for _ in 0..=QUEUE {
            take_frame(
                Frame::Data(1, Bytes::from_static(b"x")),
                &mut connections,
                &to_space,
            );
        }
        assert!(!connections.contains_key(&1));
        assert_eq!(written.try_recv().ok(), Some(Frame::Close(1).encode()));
        // One that ended frees its place.
        drop(bridges);
        assert!(take_frame(Frame::Open(100), &mut connections, &to_space).is_some());
    }
}
