//! One client connection: public-key sign-in (the key names the user, the login names the
//! space), then its channels. Session channels run a shell, a command or SFTP in the space
//! ([`super::process`]); `direct-tcpip` channels (`ssh -L`) reach ports inside it
//! ([`super::forward`]); agent forwarding (`ssh -A`) is offered when the rules allow it
//! ([`crate::services::Services::ssh_agent_refusal`]: the space's owner, while it is shared with
//! nobody) and carried by a relay in the space ([`super::agent`]); remote forwarding (`ssh -R`)
//! and X11 forwarding are refused.
//!
//! The connection task ([`run`]) watches what the connection depends on: the key, the user
//! and their right to the space ([`crate::services::watch`]), the space running, and the
//! server staying up. When one goes, every open session is told why on its stderr and the
//! connection is closed, which ends its channels, forwards included.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::keys::HashAlg;
use russh::server::{Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, ChannelOpenFailure, Disconnect, Pty, Sig};
use tokio::net::TcpStream;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{mpsc, oneshot};

use super::admission::Place;
use super::agent::{self, Forwarding};
use super::process::{self, Command, ProcessRequest, Terminal};
use super::{forward, HANDSHAKE_GRACE, LOGIN_GRACE};
use crate::live::Update;
use crate::services::access::Caller;
use crate::services::ssh::SshEntry;
use crate::services::watch::Need;
use crate::services::Services;
use app::api::autostop::ActivityKind;

/// Channels (sessions and forwards) open at once on one connection.
const MAX_CHANNELS: usize = 64;
/// Environment variables one session may set.
const MAX_ENV: usize = 32;
/// The longest command line accepted (`ssh host <command>`).
const MAX_COMMAND: usize = 256 * 1024;

/// The space a signed-in connection works in.
pub struct Target {
    pub space_id: app::ids::SpaceId,
    /// The login that named it (`api` or `ann.api`).
    pub login: String,
    /// The template's shell.
    pub shell: String,
}

/// What the handler tells the connection task once the client has signed in.
struct SignedIn {
    caller: Caller,
    entry: Option<SshEntry>,
}

/// A session channel, until and while its process runs.
#[derive(Default)]
struct SessionChannel {
    /// Taken by the process when it starts.
    channel: Option<Channel<Msg>>,
    terminal: Option<Terminal>,
    env: Vec<String>,
    /// Resizes and signals for the running process.
    requests: Option<mpsc::Sender<ProcessRequest>>,
    /// The client asked for agent forwarding (`ssh -A`): allowed, or the line saying why not.
    agent: Option<Result<(), String>>,
}

/// Session channels whose process runs, to tell them why the connection closes.
type Running = Arc<Mutex<HashSet<ChannelId>>>;

pub struct Connection {
    services: Services,
    peer: SocketAddr,
    signed_in: Option<oneshot::Sender<SignedIn>>,
    /// Who signed in, once they have.
    caller: Option<Caller>,
    /// The space, or the one line saying why there is none (shown on every session's stderr).
    target: Option<Result<Arc<Target>, String>>,
    sessions: HashMap<ChannelId, SessionChannel>,
    running: Running,
    forwards: Arc<AtomicUsize>,
    /// `ssh -R` was asked for: sessions say why it was refused.
    refused_remote_forward: bool,
    /// Set once the key exchange is done and the client asks to sign in.
    signing_in: Arc<AtomicBool>,
}

/// Shuts a connection's socket down when dropped, unless kept: the session task then reads
/// its end and stops.
struct Cutter(Option<std::net::TcpStream>);

impl Cutter {
    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for Cutter {
    fn drop(&mut self) {
        if let Some(socket) = self.0.take() {
            let _ = socket.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// Serves one TCP connection until it ends; `place` is its place among those waiting to
/// sign in, given back once it has.
pub async fn run(
    services: Services,
    config: Arc<russh::server::Config>,
    socket: TcpStream,
    peer: SocketAddr,
    mut place: Place,
) {
    let (signed_in_tx, mut signed_in) = oneshot::channel();
    let running = Running::default();
    let handler = Connection {
        services: services.clone(),
        peer,
        signed_in: Some(signed_in_tx),
        caller: None,
        target: None,
        sessions: HashMap::new(),
        running: running.clone(),
        forwards: Arc::default(),
        refused_remote_forward: false,
        signing_in: place.signing_in(),
    };
    // A second handle on the socket cuts a connection given up before it signed in: russh runs
    // the session in a task of its own, which reads nothing from its handle during a key
    // exchange and would linger in one the client never finishes.
    let cutter = Cutter(
        socket
            .as_fd()
            .try_clone_to_owned()
            .ok()
            .map(std::net::TcpStream::from),
    );
    let came = tokio::time::Instant::now();
    let (handshake_by, sign_in_by) = (came + HANDSHAKE_GRACE, came + LOGIN_GRACE);
    // The version exchange is covered by the handshake's grace too.
    let session = tokio::select! {
        started = tokio::time::timeout_at(handshake_by, russh::server::run_stream(config, socket, handler)) => {
            match started {
                Ok(Ok(session)) => session,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "SSH connection failed before signing in");
                    return;
                }
                Err(_) => return,
            }
        }
        () = place.evicted() => return,
    };
    let handle = session.handle();
    tokio::pin!(session);
    let signed_in = loop {
        let by = if place.is_signing_in() {
            sign_in_by
        } else {
            handshake_by
        };
        let why = tokio::select! {
            _ = &mut session => return,
            () = tokio::time::sleep_until(by) => {
                // The key exchange may have ended just now: then it has until the sign-in's end.
                if place.is_signing_in() && by < sign_in_by {
                    continue;
                }
                "signing in took too long"
            }
            () = place.evicted() => "too many connections are waiting to sign in from your address: try again",
            signed_in = &mut signed_in => match signed_in {
                Ok(signed_in) => break signed_in,
                // The handler is gone: so is the connection.
                Err(_) => return,
            },
        };
        // A client past its key exchange is told why; one still in it is cut (on return).
        if place.is_signing_in() {
            let _ = handle
                .disconnect(Disconnect::ByApplication, why.into(), String::new())
                .await;
            let _ = tokio::time::timeout(Duration::from_secs(2), &mut session).await;
        }
        return;
    };
    drop(place);
    cutter.keep();
    let SignedIn { caller, entry } = signed_in;
    let Some(entry) = entry else {
        // Refused (no such space, stopped, over the cap): the sessions say why and end; a
        // client that lingers is let go.
        if tokio::time::timeout(LOGIN_GRACE, &mut session)
            .await
            .is_err()
        {
            let _ = handle
                .disconnect(
                    Disconnect::ByApplication,
                    "nothing to do here".into(),
                    String::new(),
                )
                .await;
        }
        return;
    };
    let mut watch = services.watch_access(
        &caller,
        Need::Feature(entry.space.id.clone(), app::api::templates::Feature::Ssh),
    );
    // One future for the connection's life: dropping it halfway through a check would lose
    // the change that started it.
    let lost = watch.lost();
    tokio::pin!(lost);
    let mut changes = services.notifier.subscribe();
    let shutdown = services.shutdown_signal();
    tokio::pin!(shutdown);
    let closed = loop {
        tokio::select! {
            _ = &mut session => break None,
            reason = &mut lost => break Some(reason),
            () = &mut shutdown => break Some("Hangar is restarting: connect again in a moment".to_owned()),
            change = changes.recv() => {
                let concerns = match &change {
                    Ok(Update::Changed(change)) => change.space_id.as_ref() == Some(&entry.space.id),
                    Ok(Update::Resync) | Err(RecvError::Lagged(_)) => true,
                    Err(RecvError::Closed) => break Some("Hangar is restarting: connect again in a moment".to_owned()),
                };
                if concerns && services.ssh_space_running(&entry.space.id).await == Some(false) {
                    break Some(format!("space `{}` is stopping", entry.space.name));
                }
            }
        }
    };
    let why = match closed {
        None => "the client disconnected".to_owned(),
        Some(reason) => {
            close(&handle, &running, &reason).await;
            // A client leaves once its session closed; one that stays (forwards only) is
            // disconnected.
            if tokio::time::timeout(Duration::from_millis(300), &mut session)
                .await
                .is_err()
            {
                let _ = handle
                    .disconnect(
                        Disconnect::ByApplication,
                        format!("hangar: {reason}"),
                        String::new(),
                    )
                    .await;
                let _ = tokio::time::timeout(Duration::from_secs(2), &mut session).await;
            }
            reason
        }
    };
    services.ssh_left(&caller, entry, &why).await;
}

/// Ends every running session with the reason on its stderr and exit status 255 (as `ssh`
/// itself reports a lost connection). A client prints what it was sent before the session
/// closes; a disconnect would cut that short.
async fn close(handle: &russh::server::Handle, running: &Running, reason: &str) {
    let sessions: Vec<ChannelId> = running
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .copied()
        .collect();
    for id in sessions {
        let notice = format!("\r\nhangar: connection closed: {reason}\r\n");
        let _ = handle.extended_data(id, 1, notice.into_bytes()).await;
        let _ = handle.exit_status_request(id, 255).await;
        let _ = handle.eof(id).await;
        let _ = handle.close(id).await;
    }
}

impl Connection {
    fn fingerprint(key: &russh::keys::PublicKey) -> String {
        key.fingerprint(HashAlg::Sha256).to_string()
    }

    fn open_channels(&self) -> usize {
        self.sessions.len() + self.forwards.load(Ordering::Relaxed)
    }

    /// Starts what a session channel asked for (answering the request first).
    fn start(&mut self, id: ChannelId, command: Command, session: &mut Session) {
        let Some(slot) = self.sessions.get_mut(&id) else {
            let _ = session.channel_failure(id);
            return;
        };
        let Some(channel) = slot.channel.take() else {
            // One process per session channel.
            let _ = session.channel_failure(id);
            return;
        };
        let _ = session.channel_success(id);
        let target = match &self.target {
            Some(Ok(target)) => target.clone(),
            Some(Err(reason)) => {
                let reason = reason.clone();
                tokio::spawn(process::refuse(channel, reason));
                return;
            }
            None => {
                tokio::spawn(process::refuse(channel, "not signed in".to_owned()));
                return;
            }
        };
        let (requests, receiver) = mpsc::channel(16);
        slot.requests = Some(requests);
        let mut notice = String::new();
        if self.refused_remote_forward {
            notice.push_str(
                "hangar: remote forwarding (ssh -R) is not offered: a space cannot listen on the \
                 gateway's host\r\n",
            );
        }
        let forwarding = match (slot.agent.take(), &self.caller) {
            (Some(Ok(())), Some(caller)) => Some(Forwarding::new(
                self.services.clone(),
                caller.clone(),
                target.space_id.clone(),
                session.handle(),
                id,
            )),
            (Some(Err(reason)), _) => {
                notice.push_str(&format!("hangar: {reason}\r\n"));
                None
            }
            _ => None,
        };
        let mut request =
            process::exec_request(&target.shell, &command, slot.terminal.as_ref(), &slot.env);
        let runtime = self.services.runtime.clone();
        let running = self.running.clone();
        running.lock().unwrap_or_else(|p| p.into_inner()).insert(id);
        // Bytes either way are activity; a session open but silent is not.
        let activity = self
            .services
            .activity
            .toucher(&target.space_id, ActivityKind::Ssh);
        tokio::spawn(async move {
            // The relay listens before the process starts, so that it finds the agent at once.
            let relay = match forwarding {
                Some(forwarding) => match agent::start(forwarding).await {
                    Ok(relay) => {
                        request.env.push(format!("SSH_AUTH_SOCK={}", relay.socket));
                        Some(relay)
                    }
                    Err(reason) => {
                        notice.push_str(&format!("hangar: {reason}\r\n"));
                        None
                    }
                },
                None => None,
            };
            process::run(
                runtime.as_ref(),
                &target.space_id,
                request,
                channel,
                receiver,
                (!notice.is_empty()).then_some(notice),
                activity,
            )
            .await;
            if let Some(relay) = relay {
                relay.stop().await;
            }
            running
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
        });
    }

    fn request(&mut self, id: ChannelId, request: ProcessRequest) {
        if let Some(requests) = self.sessions.get(&id).and_then(|s| s.requests.as_ref()) {
            // A full queue means the process is busy; a later resize supersedes this one.
            let _ = requests.try_send(request);
        }
    }
}

/// `ssh -L` may reach the space's own loopback only.
fn loopback(host: &str) -> Option<&'static str> {
    match host {
        "localhost" | "127.0.0.1" | "ip6-localhost" => Some("127.0.0.1"),
        "::1" | "[::1]" => Some("::1"),
        _ => None,
    }
}

fn signal_name(signal: &Sig) -> Option<&'static str> {
    Some(match signal {
        Sig::ABRT => "ABRT",
        Sig::ALRM => "ALRM",
        Sig::FPE => "FPE",
        Sig::HUP => "HUP",
        Sig::ILL => "ILL",
        Sig::INT => "INT",
        Sig::KILL => "KILL",
        Sig::PIPE => "PIPE",
        Sig::QUIT => "QUIT",
        Sig::SEGV => "SEGV",
        Sig::TERM => "TERM",
        Sig::USR1 => "USR1",
        Sig::Custom(name) => crate::runtime::SIGNALS
            .iter()
            .find(|known| *known == name)
            .copied()?,
    })
}

/// Environment a client may set (`SendEnv`): the locale and the terminal type.
fn env_allowed(name: &str, value: &str) -> bool {
    let name_ok = name == "LANG" || name == "TERM" || name.starts_with("LC_");
    name_ok
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
        && value.len() <= 256
        && !value.bytes().any(|b| b.is_ascii_control())
}

impl russh::server::Handler for Connection {
    type Error = russh::Error;

    /// Asked once the key exchange is done, as the client asks to sign in: from now on it is
    /// no silent connection.
    async fn authentication_banner(&mut self) -> Result<Option<String>, Self::Error> {
        self.signing_in.store(true, Ordering::Relaxed);
        Ok(None)
    }

    async fn auth_publickey_offered(
        &mut self,
        _user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        // Only keys of active users are worth a signature.
        if self
            .services
            .ssh_key_known(&Self::fingerprint(offer.public_key))
            .await
        {
            Ok(Auth::Accept)
        } else {
            Ok(Auth::reject())
        }
    }

    async fn auth_publickey(
        &mut self,
        login: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let caller = match self
            .services
            .ssh_caller(&Self::fingerprint(key.public_key))
            .await
        {
            Ok(Some(caller)) => caller,
            Ok(None) => return Ok(Auth::reject()),
            Err(e) => {
                tracing::warn!(error = %e, "SSH sign-in could not be checked");
                return Ok(Auth::reject());
            }
        };
        let entered = self
            .services
            .ssh_enter(&caller, login, &self.peer.to_string())
            .await;
        let entry = match entered {
            Ok(entry) => {
                self.target = Some(Ok(Arc::new(Target {
                    space_id: entry.space.id.clone(),
                    login: login.to_owned(),
                    shell: entry.space.shell.clone(),
                })));
                Some(entry)
            }
            Err(reason) => {
                self.target = Some(Err(reason));
                None
            }
        };
        self.caller = Some(caller.clone());
        if let Some(signed_in) = self.signed_in.take() {
            let _ = signed_in.send(SignedIn { caller, entry });
        }
        Ok(Auth::Accept)
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.open_channels() >= MAX_CHANNELS {
            reply.reject(ChannelOpenFailure::ResourceShortage).await;
            return Ok(());
        }
        self.sessions.insert(
            channel.id(),
            SessionChannel {
                channel: Some(channel),
                ..Default::default()
            },
        );
        reply.accept().await;
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.sessions.remove(&channel);
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        term: &str,
        cols: u32,
        rows: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let term_ok = !term.is_empty()
            && term.len() <= 64
            && term
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.+".contains(&b));
        match self.sessions.get_mut(&channel) {
            Some(slot) if term_ok && slot.channel.is_some() => {
                slot.terminal = Some(Terminal::new(term, cols, rows));
                session.channel_success(channel)?;
            }
            _ => session.channel_failure(channel)?,
        }
        Ok(())
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        match self.sessions.get_mut(&channel) {
            Some(slot) if env_allowed(name, value) && slot.env.len() < MAX_ENV => {
                slot.env.push(format!("{name}={value}"));
                session.channel_success(channel)?;
            }
            _ => session.channel_failure(channel)?,
        }
        Ok(())
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.start(channel, Command::Shell, session);
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if data.len() > MAX_COMMAND || data.contains(&0) {
            session.channel_failure(channel)?;
            return Ok(());
        }
        let command = String::from_utf8_lossy(data).into_owned();
        self.start(channel, Command::Exec(command), session);
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if name == "sftp" {
            self.start(channel, Command::Sftp, session);
        } else {
            session.channel_failure(channel)?;
        }
        Ok(())
    }

    /// `ssh -A`: answered before the session's process starts (OpenSSH asks first); the
    /// forwarding itself begins with the process. A refusal is told on the session's stderr.
    async fn agent_request(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        let waiting = self
            .sessions
            .get(&channel)
            .is_some_and(|slot| slot.channel.is_some() && slot.agent.is_none());
        let (Some(caller), Some(Ok(target)), true) = (&self.caller, &self.target, waiting) else {
            return Ok(false);
        };
        let allowed = match self
            .services
            .ssh_agent_refusal(caller, &target.space_id)
            .await
        {
            None => Ok(()),
            Some(reason) => Err(reason),
        };
        let answer = allowed.is_ok();
        if let Some(slot) = self.sessions.get_mut(&channel) {
            slot.agent = Some(allowed);
        }
        Ok(answer)
    }

    async fn window_change_request(
        &mut self,
        channel: ChannelId,
        cols: u32,
        rows: u32,
        _pix_width: u32,
        _pix_height: u32,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let size = Terminal::new("", cols, rows);
        self.request(channel, ProcessRequest::Resize(size.cols, size.rows));
        Ok(())
    }

    async fn signal(
        &mut self,
        channel: ChannelId,
        signal: Sig,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(name) = signal_name(&signal) {
            self.request(channel, ProcessRequest::Signal(name));
        }
        Ok(())
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host: &str,
        port: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let refuse = |reason: String| ChannelOpenFailure::Other {
            code: ChannelOpenFailure::AdministrativelyProhibited.code(),
            reason,
        };
        let target = match &self.target {
            Some(Ok(target)) => target.clone(),
            Some(Err(reason)) => {
                reply.reject(refuse(reason.clone())).await;
                return Ok(());
            }
            None => return Ok(()),
        };
        let (Some(address), Ok(port @ 1..)) = (loopback(host), u16::try_from(port)) else {
            reply
                .reject(refuse(format!(
                    "only ports inside space `{}` can be forwarded: use localhost:<port> \
                     (not {host}:{port})",
                    target.login
                )))
                .await;
            return Ok(());
        };
        if self.open_channels() >= MAX_CHANNELS {
            reply.reject(ChannelOpenFailure::ResourceShortage).await;
            return Ok(());
        }
        let forwards = self.forwards.clone();
        forwards.fetch_add(1, Ordering::Relaxed);
        let runtime = self.services.runtime.clone();
        let activity = self
            .services
            .activity
            .toucher(&target.space_id, ActivityKind::SshForward);
        tokio::spawn(async move {
            forward::relay(
                runtime.as_ref(),
                &target.space_id,
                address,
                port,
                channel,
                reply,
                activity,
            )
            .await;
            forwards.fetch_sub(1, Ordering::Relaxed);
        });
        Ok(())
    }

    async fn channel_open_direct_streamlocal(
        &mut self,
        _channel: Channel<Msg>,
        _socket_path: &str,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        reply
            .reject(ChannelOpenFailure::Other {
                code: ChannelOpenFailure::AdministrativelyProhibited.code(),
                reason: "forwarding to Unix sockets is not offered: forward a TCP port \
                         (ssh -L <port>:localhost:<port>)"
                    .into(),
            })
            .await;
        Ok(())
    }

    async fn tcpip_forward(
        &mut self,
        _address: &str,
        _port: &mut u32,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        self.refused_remote_forward = true;
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_locale_and_the_terminal_type_pass() {
        assert!(env_allowed("LANG", "C.UTF-8"));
        assert!(env_allowed("LC_ALL", "en_US.UTF-8"));
        assert!(env_allowed("TERM", "xterm-256color"));
        for (name, value) in [
            ("PATH", "/tmp"),
            ("LD_PRELOAD", "/tmp/x.so"),
            ("LC_x", "lower case"),
            ("LANG", "with\nnewline"),
            ("HANGAR_EXEC", "forged"),
        ] {
            assert!(!env_allowed(name, value), "{name}={value:?}");
        }
        assert!(!env_allowed("LANG", &"x".repeat(300)));
    }

    #[test]
    fn forwards_reach_the_space_s_loopback_only() {
        assert_eq!(loopback("localhost"), Some("127.0.0.1"));
        assert_eq!(loopback("127.0.0.1"), Some("127.0.0.1"));
        assert_eq!(loopback("::1"), Some("::1"));
        for other in [
            "127.0.0.2",
            "0.0.0.0",
            "10.0.0.1",
            "example.com",
            "",
            "localhost.",
        ] {
            assert_eq!(loopback(other), None, "{other}");
        }
    }

    #[test]
    fn only_known_signals_are_sent() {
        assert_eq!(signal_name(&Sig::INT), Some("INT"));
        assert_eq!(signal_name(&Sig::Custom("USR2".into())), Some("USR2"));
        assert_eq!(signal_name(&Sig::Custom("HUP; rm -rf /".into())), None);
    }
}
