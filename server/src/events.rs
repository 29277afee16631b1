//! One change notifier that every space transition, quota edit and membership change goes
//! through, feeding the live updates of `GET /api/v1/events` (server-sent events).

use tokio::sync::broadcast;

/// Something changed that these users (and admins) may be showing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Users whose quota usage or space list may have changed.
    pub users: Vec<String>,
    /// The space that changed, if one did.
    pub space_id: Option<String>,
}

/// Fan-out inside this server. A subscriber that falls behind is told to resync rather than
/// holding memory.
pub struct Notifier {
    sender: broadcast::Sender<Change>,
}

impl Default for Notifier {
    fn default() -> Self {
        Self {
            sender: broadcast::channel(1024).0,
        }
    }
}

impl Notifier {
    pub fn notify(&self, change: Change) {
        // Nobody listening is fine.
        let _ = self.sender.send(change);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.sender.subscribe()
    }
}
