//! How many of something each user holds at once (live-update streams): a slot is taken
//! while it is in use and given back when dropped, so a stream that ends however it ends
//! frees its place.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use app::ids::UserId;

/// Slots in use, per user.
#[derive(Debug, Default)]
pub struct Slots {
    held: Mutex<HashMap<UserId, usize>>,
}

/// One slot in use; given back when dropped.
#[derive(Debug)]
pub struct Slot {
    slots: Arc<Slots>,
    user: UserId,
}

impl Slots {
    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, usize>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A slot for `user`, unless they hold `max` already.
    pub fn take(self: &Arc<Self>, user: &UserId, max: usize) -> Option<Slot> {
        let mut held = self.held();
        let count = held.entry(user.clone()).or_default();
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(Slot {
            slots: self.clone(),
            user: user.clone(),
        })
    }

    /// How many `user` holds now.
    pub fn count(&self, user: &UserId) -> usize {
        self.held().get(user).copied().unwrap_or(0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self.slots.held();
        if let Some(count) = held.get_mut(&self.user) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                held.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_counted_per_user_and_given_back() {
        let slots = Arc::new(Slots::default());
        let (ann, bob) = (UserId::from("ann"), UserId::from("bob"));
        let first = slots.take(&ann, 2).unwrap();
        let _second = slots.take(&ann, 2).unwrap();
        assert!(slots.take(&ann, 2).is_none());
        assert!(slots.take(&bob, 2).is_some());
        drop(first);
        assert_eq!(slots.count(&ann), 1);
        assert!(slots.take(&ann, 2).is_some());
    }
}
