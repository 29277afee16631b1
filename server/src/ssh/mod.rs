//! The SSH gateway inside `hangar serve`: `ssh <space>@host` (or `<owner>.<space>@host` for a
//! shared space) opens a shell, runs a command, serves SFTP (so `sftp`, `scp` and `rsync`
//! work) or forwards a port (`ssh -L`) inside the space, authenticated by the public keys in
//! the user's profile.
//!
//! It is a door like the web terminal: who may do what is decided by the services
//! ([`crate::services::ssh`]), and every process runs through [`crate::runtime::Runtime::exec`],
//! so any runtime serves it. A connection keeps working only while its key, its user and their
//! right to the space last ([`crate::services::watch`]); it is closed within a second once one
//! is gone. The host key is made on first start and kept in the database, so restarts and
//! replicas on one database show clients the same one.
//!
//! - [`host_key`]: the host key in the `settings` table;
//! - [`connection`]: one client connection (authentication, channels, requests);
//! - [`process`]: a session channel bridged to a process in the space;
//! - [`forward`]: `ssh -L` through a small relay started in the space;
//! - [`routes`]: the `~/.ssh/config` entries and live session counts, as JSON.

pub mod connection;
pub mod forward;
pub mod host_key;
pub mod process;
pub mod routes;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use app::ids::{SpaceId, UserId};
use tokio::net::TcpListener;

use crate::error::{ApiError, ApiResult};
use crate::services::Services;

/// A client that has not authenticated by then is disconnected.
const LOGIN_GRACE: Duration = Duration::from_secs(30);
/// Connections that have not authenticated yet, at most, at once (each costs a task and a
/// key exchange).
const MAX_UNAUTHENTICATED: usize = 256;
/// Keepalives sent to a silent client before giving it up (one every 30 s): a dead network is
/// noticed within two minutes, an idle shell is never cut.
const KEEPALIVE: Duration = Duration::from_secs(30);
const KEEPALIVES_UNANSWERED: usize = 4;

/// The gateway's live connections, for the per-user cap and the counts pages show.
#[derive(Default)]
pub struct Registry {
    /// Where the gateway listens, once it does.
    address: OnceLock<SocketAddr>,
    /// Bound by [`bind`], taken by [`serve`].
    listener: Mutex<Option<TcpListener>>,
    live: Mutex<HashMap<u64, (UserId, SpaceId)>>,
    next: AtomicU64,
    unauthenticated: Arc<()>,
}

/// One live connection in the [`Registry`], counted until dropped.
pub struct Ticket {
    registry: Arc<Registry>,
    id: u64,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.registry.live().remove(&self.id);
    }
}

impl Registry {
    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<u64, (UserId, SpaceId)>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The address the gateway listens on, when it does.
    pub fn address(&self) -> Option<SocketAddr> {
        self.address.get().copied()
    }

    /// Counts a connection of `user` into `space`, unless they have `cap` already: then the
    /// number they have.
    pub fn open(
        self: &Arc<Self>,
        user: &UserId,
        space: &SpaceId,
        cap: usize,
    ) -> Result<Ticket, usize> {
        let mut live = self.live();
        let theirs = live.values().filter(|(u, _)| u == user).count();
        if theirs >= cap {
            return Err(theirs);
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        live.insert(id, (user.clone(), space.clone()));
        Ok(Ticket {
            registry: self.clone(),
            id,
        })
    }

    /// Live connections, all spaces together.
    pub fn count(&self) -> usize {
        self.live().len()
    }

    /// Live connections into a space.
    pub fn count_in(&self, space: &SpaceId) -> usize {
        self.live().values().filter(|(_, s)| s == space).count()
    }
}

/// Binds the gateway's address (`--ssh-listen`), if it is on, so that a busy port stops the
/// server at start and the address (port 0 made concrete) is known before serving.
pub async fn bind(services: &Services) -> ApiResult<()> {
    let Some(address) = services.config.ssh_listen.0 else {
        return Ok(());
    };
    let listener = TcpListener::bind(address).await.map_err(|e| {
        ApiError::unavailable(format!(
            "cannot listen for SSH on {address}: {e} (choose another with --ssh-listen, or `none`)"
        ))
    })?;
    if let Ok(bound) = listener.local_addr() {
        let _ = services.ssh.address.set(bound);
    }
    *services
        .ssh
        .listener
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = Some(listener);
    Ok(())
}

/// Starts serving SSH in the background, if [`bind`] bound an address.
pub fn spawn(services: &Services) {
    let listener = services
        .ssh
        .listener
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    if let Some(listener) = listener {
        let services = services.clone();
        tokio::spawn(async move {
            if let Err(e) = serve(services, listener).await {
                tracing::error!(error = %e, "the SSH gateway stopped");
            }
        });
    }
}

/// Serves SSH on `listener` until the server shuts down (open connections are told why and
/// closed).
pub async fn serve(services: Services, listener: TcpListener) -> ApiResult<()> {
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
        let waiting = services.ssh.unauthenticated.clone();
        // The registry holds one itself.
        if Arc::strong_count(&waiting) > MAX_UNAUTHENTICATED + 1 {
            tracing::warn!(%peer, "too many SSH connections waiting to sign in: refused one");
            continue;
        }
        // Keystrokes go out at once.
        let _ = socket.set_nodelay(true);
        tokio::spawn(connection::run(
            services.clone(),
            config.clone(),
            socket,
            peer,
            waiting,
        ));
    }
}
