//! One change notifier that every space transition, quota edit and membership change goes
//! through, feeding the live updates of `GET /api/v1/events` (server-sent events). On
//! PostgreSQL, [`postgres`] carries the changes to every other server on the same database.

pub mod postgres;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;

use app::ids::{SpaceId, UserId};
use tokio::sync::{broadcast, mpsc};

/// Something changed that these users (and admins) may be showing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Change {
    /// Users whose quota usage or space list may have changed.
    pub users: Vec<UserId>,
    /// The space that changed, if one did.
    pub space_id: Option<SpaceId>,
    /// Only who is connected changed (an SSH session opened or closed): pages that show it
    /// follow, but nobody's rights changed, so access watches need not look again (each of a
    /// space's N open sessions re-reading its rights on every one of N openings and closings
    /// was N² database reads: 200 SSH sessions closing held SQLite's pool past its timeout).
    pub presence: bool,
    /// Only the users' notifications changed (a new one, or some read): their bells follow,
    /// nothing else is read again and nobody's rights changed.
    pub notification: bool,
}

/// What subscribers hear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    Changed(Change),
    /// Changes may have been missed (this server lost its link to the other servers for a
    /// while): whoever shows something should read it afresh.
    Resync,
}

/// Changes waiting to go out to the other servers; beyond this many, the oldest are not
/// queued and the other servers are told to resync instead.
const PUBLISH_QUEUE: usize = 4096;

/// Fan-out inside this server (and, once [`Notifier::publish_to`] is set up, out to the other
/// servers). A subscriber that falls behind is told to resync rather than holding memory.
pub struct Notifier {
    sender: broadcast::Sender<Update>,
    /// Tells this server's own messages apart when they come back from the database.
    origin: String,
    publisher: OnceLock<mpsc::Sender<Change>>,
    /// A change could not be queued for the other servers.
    publish_overflowed: AtomicBool,
    /// Counts the updates that may have taken someone's right away (see
    /// [`Notifier::rights_generation`]).
    rights_generation: AtomicU64,
}

impl Default for Notifier {
    fn default() -> Self {
        Self {
            sender: broadcast::channel(1024).0,
            origin: uuid::Uuid::new_v4().simple().to_string(),
            publisher: OnceLock::new(),
            publish_overflowed: AtomicBool::new(false),
            rights_generation: AtomicU64::new(0),
        }
    }
}

impl Notifier {
    /// Tells this server's subscribers, and the other servers, of a change.
    pub fn notify(&self, change: Change) {
        if let Some(publisher) = self.publisher.get() {
            if publisher.try_send(change.clone()).is_err() {
                self.publish_overflowed.store(true, Ordering::Relaxed);
            }
        }
        self.deliver(Update::Changed(change));
    }

    /// Tells this server's subscribers only (what came from another server, or a resync).
    pub fn deliver(&self, update: Update) {
        let may_take_rights = match &update {
            Update::Changed(change) => !change.presence && !change.notification,
            Update::Resync => true,
        };
        if may_take_rights {
            self.rights_generation.fetch_add(1, Ordering::AcqRel);
        }
        // Nobody listening is fine.
        let _ = self.sender.send(update);
    }

    /// Grows with every update, from this server or another, that may have taken someone's
    /// right away. A decision on rights read before the database and stored with this number
    /// holds only while it is unchanged (changes are announced after they are written).
    pub fn rights_generation(&self) -> u64 {
        self.rights_generation.load(Ordering::Acquire)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Update> {
        self.sender.subscribe()
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// From now on, every change is also queued for the other servers. Returns the queue's
    /// receiving end, or None when a publisher was set up already.
    fn publish_to(&self) -> Option<mpsc::Receiver<Change>> {
        let (sender, receiver) = mpsc::channel(PUBLISH_QUEUE);
        self.publisher.set(sender).ok().map(|()| receiver)
    }

    /// Whether changes were dropped from the queue since the last call.
    fn take_overflowed(&self) -> bool {
        self.publish_overflowed.swap(false, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_may_take_a_right_away_moves_the_rights_generation() {
        let notifier = Notifier::default();
        let start = notifier.rights_generation();
        notifier.notify(Change {
            presence: true,
            ..Default::default()
        });
        notifier.notify(Change {
            notification: true,
            ..Default::default()
        });
        assert_eq!(notifier.rights_generation(), start);
        notifier.notify(Change {
            space_id: Some(SpaceId::from("s")),
            ..Default::default()
        });
        assert_eq!(notifier.rights_generation(), start + 1);
        notifier.deliver(Update::Resync);
        assert_eq!(notifier.rights_generation(), start + 2);
    }
}
