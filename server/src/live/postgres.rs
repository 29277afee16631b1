//! Live updates across servers sharing one PostgreSQL database: every change a server notifies
//! is published with `pg_notify('hangar_changes', …)`, and every server LISTENs on that channel
//! (on a connection of its own) and hands what the others published to its own subscribers.
//! A server skips its own messages by the origin id in each payload. When the listening
//! connection drops, it is made again with backoff and the subscribers are told to resync,
//! since changes may have passed meanwhile. A connection can also hang without dropping (a
//! network that loses packets): every server sends a heartbeat on the channel, and one that
//! hears nothing, not even its own, for three heartbeats treats its connection as dropped.
//! SQLite has one server: nothing of this runs.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{Change, Notifier, Update};
use app::ids::{SpaceId, UserId};

/// The channel every Hangar server on the database publishes to and listens on.
pub const CHANNEL: &str = "hangar_changes";

/// PostgreSQL refuses payloads of 8000 bytes or more; stay under with room to spare.
const MAX_PAYLOAD: usize = 7900;
/// Changes sent in one statement at most.
const MAX_BATCH: usize = 256;
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Heartbeats missed before the listening connection is taken for stuck.
const SILENT_HEARTBEATS: u32 = 3;
/// How long stopping waits for the last changes to go out.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// One NOTIFY payload: short keys, as it must stay under 8000 bytes.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
struct Message {
    /// The server that sent it.
    o: String,
    /// Users concerned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    u: Vec<UserId>,
    /// The space that changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    s: Option<SpaceId>,
    /// Only who is connected changed ([`Change::presence`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    p: bool,
    /// Only notifications changed ([`Change::notification`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    n: bool,
    /// The sender could not publish some changes: resync.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    r: bool,
    /// Only a sign of life.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    h: bool,
}

fn to_text(message: &Message) -> String {
    // A struct of strings always serialises.
    serde_json::to_string(message).unwrap_or_default()
}

/// The payloads that carry `change`: one, or several when its users do not fit in one.
fn payloads(origin: &str, change: &Change) -> Vec<String> {
    let mut message = Message {
        o: origin.to_owned(),
        s: change.space_id.clone(),
        p: change.presence,
        n: change.notification,
        ..Message::default()
    };
    // `,"u":[]` is added once the first user is in.
    let empty = to_text(&message).len() + r#","u":[]"#.len();
    let mut out = Vec::new();
    let mut size = empty;
    for user in &change.users {
        // The quoted id and a comma.
        let cost = serde_json::to_string(user).map_or(0, |u| u.len()) + 1;
        if !message.u.is_empty() && size + cost > MAX_PAYLOAD {
            out.push(to_text(&message));
            message.u.clear();
            size = empty;
        }
        message.u.push(user.clone());
        size += cost;
    }
    out.push(to_text(&message));
    out
}

fn resync_payload(origin: &str) -> String {
    to_text(&Message {
        o: origin.to_owned(),
        r: true,
        ..Message::default()
    })
}

fn heartbeat_payload(origin: &str) -> String {
    to_text(&Message {
        o: origin.to_owned(),
        h: true,
        ..Message::default()
    })
}

/// What a payload from another server means here; None for this server's own messages and
/// for anything unreadable.
fn received(origin: &str, payload: &str) -> Option<Update> {
    let message: Message = match serde_json::from_str(payload) {
        Ok(message) => message,
        Err(e) => {
            tracing::warn!(error = %e, "live updates: unreadable message from another server");
            return None;
        }
    };
    if message.o == origin || message.h {
        return None;
    }
    Some(if message.r {
        Update::Resync
    } else {
        Update::Changed(Change {
            users: message.u,
            space_id: message.s,
            presence: message.p,
            notification: message.n,
        })
    })
}

/// The publisher, listener and heartbeat tasks of one server.
pub struct Fanout {
    stop: oneshot::Sender<()>,
    publisher: JoinHandle<()>,
    listener: JoinHandle<()>,
    heartbeat: JoinHandle<()>,
}

/// On PostgreSQL, starts listening (before it returns, when the database answers, so that no
/// change of another server made after this is missed) and publishing; None on SQLite.
pub async fn start(
    db: &DatabaseConnection,
    notifier: Arc<Notifier>,
    heartbeat_every: Duration,
) -> Option<Fanout> {
    if db.get_database_backend() != DatabaseBackend::Postgres {
        return None;
    }
    let pool = db.get_postgres_connection_pool().clone();
    let receiver = notifier.publish_to()?;
    let connect_options = (*pool.connect_options()).clone();
    let first = match listen(&connect_options).await {
        Ok(listener) => Some(listener),
        Err(e) => {
            tracing::warn!(error = %e, "live updates: cannot listen for other servers' changes yet, retrying");
            None
        }
    };
    let (stop, stopped) = oneshot::channel();
    // A connection of its own: a main pool busy with requests must not keep the heartbeats
    // back and make every server think its listener stuck.
    let heartbeat = tokio::spawn(heartbeat_loop(
        one_connection_pool(&connect_options, heartbeat_every),
        heartbeat_payload(notifier.origin()),
        heartbeat_every,
    ));
    let publisher = tokio::spawn(publish_loop(pool, notifier.clone(), receiver, stopped));
    let listener = tokio::spawn(listen_loop(
        connect_options,
        notifier,
        first,
        heartbeat_every.saturating_mul(SILENT_HEARTBEATS),
    ));
    Some(Fanout {
        stop,
        publisher,
        listener,
        heartbeat,
    })
}

impl Fanout {
    /// Sends what is still queued (waiting a little at most) and stops listening.
    pub async fn stop(self) {
        self.heartbeat.abort();
        self.listener.abort();
        let _ = self.stop.send(());
        let mut publisher = self.publisher;
        if tokio::time::timeout(FLUSH_TIMEOUT, &mut publisher)
            .await
            .is_err()
        {
            tracing::warn!(
                "live updates: the last changes did not reach the other servers in time"
            );
            publisher.abort();
        }
    }
}

/// A pool of one connection apart from the main pool's, opened when first used and kept.
fn one_connection_pool(options: &PgConnectOptions, acquire_timeout: Duration) -> PgPool {
    PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .idle_timeout(None)
        .max_lifetime(None)
        .acquire_timeout(acquire_timeout)
        .connect_lazy_with(options.clone())
}

/// Listens on a connection apart from the pool's, in a pool of its own each time: a listener
/// given up as stuck still holds its connection until the network lets go, and must not
/// keep the next one waiting.
async fn listen(options: &PgConnectOptions) -> Result<PgListener, sea_orm::sqlx::Error> {
    let pool = one_connection_pool(options, Duration::from_secs(10));
    let mut listener = PgListener::connect_with(&pool).await?;
    // A lost connection is made again here, with backoff and a resync.
    listener.eager_reconnect(false);
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Sends this server's sign of life on the channel, for every server's listener (its own too).
async fn heartbeat_loop(pool: PgPool, payload: String, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let sent = tokio::time::timeout(
            every,
            sea_orm::sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(&payload)
                .execute(&pool),
        )
        .await;
        match sent {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "live updates: heartbeat not sent"),
            Err(_) => tracing::debug!("live updates: heartbeat not sent in time"),
        }
    }
}

async fn listen_loop(
    options: PgConnectOptions,
    notifier: Arc<Notifier>,
    mut listener: Option<PgListener>,
    silence_limit: Duration,
) {
    let mut backoff = MIN_BACKOFF;
    loop {
        let mut current = match listener.take() {
            Some(current) => current,
            None => match listen(&options).await {
                Ok(current) => {
                    tracing::info!("live updates: listening for other servers' changes again");
                    backoff = MIN_BACKOFF;
                    // What passed while not listening is unknown.
                    notifier.deliver(Update::Resync);
                    current
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "live updates: cannot listen for other servers' changes");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            },
        };
        loop {
            // Cancelling the wait is safe: a connection that timed out is not used again.
            let Ok(next) = tokio::time::timeout(silence_limit, current.try_recv()).await else {
                tracing::warn!(
                    silent_for = ?silence_limit,
                    "live updates: no message from the database, not even a heartbeat; \
                     listening again on a new connection"
                );
                break;
            };
            match next {
                Ok(Some(notification)) => {
                    if let Some(update) = received(notifier.origin(), notification.payload()) {
                        notifier.deliver(update);
                    }
                }
                Ok(None) => {
                    tracing::warn!(
                        "live updates: lost the connection listening for other servers' changes"
                    );
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "live updates: listening for other servers' changes failed");
                    break;
                }
            }
        }
        drop(current);
    }
}

/// Publishes queued changes in batches, in order. A batch that cannot be sent is replaced by
/// a resync for the other servers, retried with backoff until the database answers again.
async fn publish_loop(
    pool: PgPool,
    notifier: Arc<Notifier>,
    mut queue: mpsc::Receiver<Change>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut retry_in: Option<Duration> = None;
    let mut stopping = false;
    loop {
        if stopping {
            // Whatever is still queued, then done.
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(change) => batch.push(change),
                    Err(_) => break,
                }
            }
            if batch.is_empty() && retry_in.is_none() {
                return;
            }
        } else {
            let delay = retry_in.unwrap_or(Duration::MAX);
            tokio::select! {
                n = queue.recv_many(&mut batch, MAX_BATCH) => if n == 0 { return },
                () = tokio::time::sleep(delay), if retry_in.is_some() => {}
                _ = &mut stop => { stopping = true; continue; }
            }
        }
        let mut texts = Vec::new();
        if retry_in.is_some() || notifier.take_overflowed() {
            texts.push(resync_payload(notifier.origin()));
        }
        for change in batch.drain(..) {
            texts.extend(payloads(notifier.origin(), &change));
        }
        let sent = sea_orm::sqlx::query(
            "SELECT pg_notify($1, payload) FROM unnest($2::text[]) AS payload",
        )
        .bind(CHANNEL)
        .bind(&texts)
        .execute(&pool)
        .await;
        match sent {
            Ok(_) => retry_in = None,
            Err(e) => {
                let delay = retry_in.map_or(MIN_BACKOFF, |d| (d * 2).min(MAX_BACKOFF));
                tracing::warn!(error = %e, retry_in = ?delay, "live updates: cannot publish changes to the other servers");
                if stopping {
                    return;
                }
                retry_in = Some(delay);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn change(users: usize, space: Option<&str>) -> Change {
        Change {
            users: (0..users)
                .map(|_| UserId(uuid::Uuid::new_v4().to_string()))
                .collect(),
            space_id: space.map(SpaceId::from),
            presence: false,
            ..Default::default()
        }
    }

    #[test]
    fn a_change_round_trips_and_own_messages_are_skipped() {
        let c = change(2, Some("space-1"));
        let texts = payloads("me", &c);
        assert_eq!(texts.len(), 1);
        assert_eq!(received("other", &texts[0]), Some(Update::Changed(c)));
        assert_eq!(received("me", &texts[0]), None);
        assert_eq!(received("other", "not json"), None);
        assert_eq!(
            received("other", &resync_payload("me")),
            Some(Update::Resync)
        );
        // A heartbeat only keeps the listener from thinking its connection stuck.
        assert_eq!(received("other", &heartbeat_payload("me")), None);
    }

    #[test]
    fn a_change_without_users_still_goes_out() {
        let c = change(0, None);
        let texts = payloads("me", &c);
        assert_eq!(texts.len(), 1);
        assert_eq!(received("other", &texts[0]), Some(Update::Changed(c)));
    }

    #[test]
    fn many_users_are_split_under_the_payload_limit() {
        let origin = uuid::Uuid::new_v4().simple().to_string();
        let c = change(1000, Some(&uuid::Uuid::new_v4().to_string()));
        let texts = payloads(&origin, &c);
        assert!(texts.len() > 1);
        let mut users = Vec::new();
        for text in &texts {
            assert!(text.len() <= MAX_PAYLOAD, "{} bytes", text.len());
            match received("other", text) {
                Some(Update::Changed(part)) => {
                    assert_eq!(part.space_id, c.space_id);
                    users.extend(part.users);
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(users, c.users);
        // Full payloads, not one user each.
        assert!(texts.len() <= 1000 * 39 / MAX_PAYLOAD + 1);
    }
}
