//! The SSH gateway inside `hangar serve`: `ssh <space>@host` (or `<owner>.<space>@host` for a
//! shared space) opens a shell, runs a command, serves SFTP (so `sftp`, `scp` and `rsync`
//! work) or forwards a port (`ssh -L`) inside the space, authenticated by the public keys in
//! the user's profile. With `ssh -A`, the session's process in the space reaches the client's
//! SSH agent (git signs in to SSH remotes with the developer's own keys), unless the space is
//! shared or the caller is not its owner.
//!
//! It is a door like the web terminal: who may do what is decided by the services
//! ([`crate::services::ssh`]), and every process runs through [`crate::runtime::Runtime::exec`],
//! so any runtime serves it. A connection keeps working only while its key, its user and their
//! right to the space last ([`crate::services::watch`]); it is closed within a second once one
//! is gone. The host key is made on first start and kept in the database, so restarts and
//! replicas on one database show clients the same one.
//!
//! - [`admission`]: who may wait to sign in (per client address and in all);
//! - [`host_key`]: the host key in the `settings` table;
//! - [`connection`]: one client connection (authentication, channels, requests);
//! - [`process`]: a session channel bridged to a process in the space;
//! - [`forward`]: `ssh -L` through a small relay started in the space;
//! - [`agent`]: `ssh -A` through a relay in the space listening on a Unix socket.
//!
//! The `~/.ssh/config` entries and live session counts are the HTTP door's
//! (`crate::http::ssh`), the live connections' registry the services'
//! (`crate::services::ssh::SshSessions`).

pub mod admission;
pub mod agent;
pub mod connection;
pub mod forward;
pub mod host_key;
pub mod process;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;

use self::admission::Admission;
use crate::error::{ApiError, ApiResult};
use crate::services::Services;

/// A client that has not finished its key exchange by then is disconnected (a real one takes
/// well under a second; a silent one holds a place until then).
const HANDSHAKE_GRACE: Duration = Duration::from_secs(10);
/// A client that has not signed in by then is disconnected (time to type a key's passphrase).
const LOGIN_GRACE: Duration = Duration::from_secs(30);
/// Keepalives sent to a silent client before giving it up (one every 30 s): a dead network is
/// noticed within two minutes, an idle shell is never cut.
const KEEPALIVE: Duration = Duration::from_secs(30);
const KEEPALIVES_UNANSWERED: usize = 4;

/// The gateway's listener, bound at start-up (so that a busy port stops the server at once)
/// and taken when serving begins.
#[derive(Default)]
pub struct Gateway {
    listener: Mutex<Option<TcpListener>>,
    /// Connections that have not signed in yet.
    admission: Arc<Admission>,
}

/// Binds the gateway's address (`--ssh-listen`), if it is on, so that a busy port stops the
/// server at start and the address (port 0 made concrete) is known before serving.
pub async fn bind(services: &Services) -> ApiResult<Gateway> {
    let gateway = Gateway::default();
    let Some(address) = services.config.ssh_listen.0 else {
        return Ok(gateway);
    };
    let listener = TcpListener::bind(address).await.map_err(|e| {
        ApiError::unavailable(format!(
            "cannot listen for SSH on {address}: {e} (choose another with --ssh-listen, or `none`)"
        ))
    })?;
    if let Ok(bound) = listener.local_addr() {
        services.ssh.listening_on(bound);
    }
    *gateway.listener.lock().unwrap_or_else(|p| p.into_inner()) = Some(listener);
    Ok(gateway)
}

/// Starts serving SSH in the background, if [`bind`] bound an address.
pub fn spawn(services: &Services, gateway: &Gateway) {
    let listener = gateway
        .listener
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    if let Some(listener) = listener {
        let services = services.clone();
        let admission = gateway.admission.clone();
        tokio::spawn(async move {
            if let Err(e) = serve(services, listener, admission).await {
                tracing::error!(error = %e, "the SSH gateway stopped");
            }
        });
    }
}

/// Serves SSH on `listener` until the server shuts down (open connections are told why and
/// closed).
pub async fn serve(
    services: Services,
    listener: TcpListener,
    admission: Arc<Admission>,
) -> ApiResult<()> {
    let key = host_key::load_or_create(&services.db).await?;
    let config = Arc::new(russh::server::Config {
        server_id: russh::SshId::Standard("SSH-2.0-Hangar".into()),
        methods: russh::MethodSet::from(&[russh::MethodKind::PublicKey][..]),
        keys: vec![key],
        // Idle shells are normal; dead networks are found by keepalives instead.
        inactivity_timeout: None,
        keepalive_interval: Some(KEEPALIVE),
        keepalive_max: KEEPALIVES_UNANSWERED,
        max_auth_attempts: 6,
        // OpenSSH probes with "none" first: answering it at once saves every connection a
        // second. Refusing a key takes a moment (a little brake on guessing; whether a public
        // key is registered is no secret: the protocol answers that to any client).
        auth_rejection_time_initial: Some(Duration::ZERO),
        auth_rejection_time: Duration::from_millis(200),
        ..Default::default()
    });
    if let Some(address) = services.ssh.address() {
        tracing::info!("SSH gateway listening on {address}");
    }
    let shutdown = services.shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let (socket, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: wait instead of spinning.
                    tracing::warn!(error = %e, "SSH gateway cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => return Ok(()),
        };
        // Never refused for want of a place: it takes one from its own address's or the
        // busiest address's waiting connections.
        let place = admission.admit(peer.ip());
        // Keystrokes go out at once.
        let _ = socket.set_nodelay(true);
        tokio::spawn(connection::run(
            services.clone(),
            config.clone(),
            socket,
            peer,
            place,
        ));
    }
}
