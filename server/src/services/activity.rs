//! Activity: what Hangar sees of a space being used at its own doors (terminal and SSH bytes,
//! proxied requests and frames, transfers, keepalives; never page views), kept in memory and
//! written to the database every few seconds, so that the hot paths never wait for it.
//!
//! Each space has one entry: the latest time (unix milliseconds, from the services' clock) and
//! kind. A door that carries a stream holds a [`Touch`]: it goes to the entry at most once a
//! second, so the cost per byte is one clock read and one comparison.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, Ordering};
use std::sync::{Arc, RwLock};

use app::api::autostop::ActivityKind;
use app::ids::SpaceId;
use chrono::{DateTime, Utc};

use crate::domain::clock::Clock;

/// One space's latest activity.
#[derive(Debug, Default)]
pub struct Entry {
    /// Unix milliseconds of the latest activity.
    at: AtomicI64,
    /// Its kind, as an index into [`ActivityKind::ALL`].
    kind: AtomicU8,
    /// The latest activity written to the database.
    flushed: AtomicI64,
}

impl Entry {
    fn record(&self, at_ms: i64, kind: ActivityKind) {
        if self.at.fetch_max(at_ms, Ordering::Relaxed) < at_ms {
            self.kind.store(kind_index(kind), Ordering::Relaxed);
        }
    }
}

fn kind_index(kind: ActivityKind) -> u8 {
    ActivityKind::ALL
        .iter()
        .position(|k| *k == kind)
        .and_then(|i| u8::try_from(i).ok())
        .unwrap_or(0)
}

/// Activity seen on this server since it last wrote it down.
pub struct Activity {
    clock: Arc<dyn Clock>,
    entries: RwLock<HashMap<SpaceId, Arc<Entry>>>,
    /// Turned off to measure what tracking costs (`HANGAR_ACTIVITY_TRACKING=off`, read by the
    /// benches): touches then do nothing.
    enabled: AtomicBool,
}

/// What a flush writes for one space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub space_id: SpaceId,
    pub at: DateTime<Utc>,
    pub kind: ActivityKind,
}

impl Activity {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        let enabled = !std::env::var("HANGAR_ACTIVITY_TRACKING").is_ok_and(|v| v == "off");
        Activity {
            clock,
            entries: RwLock::default(),
            enabled: AtomicBool::new(enabled),
        }
    }

    /// The services' clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    fn entry(&self, space_id: &SpaceId) -> Arc<Entry> {
        if let Some(entry) = self
            .entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(space_id)
        {
            return entry.clone();
        }
        self.entries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(space_id.clone())
            .or_default()
            .clone()
    }

    /// The space is in use now (one request, one transfer).
    pub fn touch(&self, space_id: &SpaceId, kind: ActivityKind) {
        if !self.enabled.load(Ordering::Relaxed) {
            return;
        }
        let now = self.clock.now().timestamp_millis();
        self.entry(space_id).record(now, kind);
    }

    /// A door's handle for a stream of activity (a terminal, an SSH channel, a proxied
    /// connection): touches the entry at most once a second.
    pub fn toucher(self: &Arc<Self>, space_id: &SpaceId, kind: ActivityKind) -> Touch {
        Touch {
            entry: self.entry(space_id),
            clock: self.clock.clone(),
            kind,
            next_ms: 0,
            enabled: self.enabled.load(Ordering::Relaxed),
        }
    }

    /// What was seen since the last flush, marked as written (the caller writes it).
    pub fn take_unflushed(&self) -> Vec<Seen> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        for (space_id, entry) in entries.iter() {
            let at = entry.at.load(Ordering::Relaxed);
            if at > entry.flushed.swap(at, Ordering::Relaxed) {
                let kind = ActivityKind::ALL
                    .get(usize::from(entry.kind.load(Ordering::Relaxed)))
                    .copied()
                    .unwrap_or(ActivityKind::Terminal);
                if let Some(at) = DateTime::from_timestamp_millis(at) {
                    out.push(Seen {
                        space_id: space_id.clone(),
                        at,
                        kind,
                    });
                }
            }
        }
        out
    }

    /// Forgets entries nobody holds whose activity is written down and older than `before`
    /// (spaces that stopped being used), so the map does not grow with every space ever used.
    pub fn forget_older_than(&self, before: DateTime<Utc>) {
        let before = before.timestamp_millis();
        self.entries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, entry| {
                Arc::strong_count(entry) > 1
                    || entry.at.load(Ordering::Relaxed) > entry.flushed.load(Ordering::Relaxed)
                    || entry.at.load(Ordering::Relaxed) >= before
            });
    }

    /// The latest activity seen on this server, written down or not.
    pub fn latest(&self, space_id: &SpaceId) -> Option<DateTime<Utc>> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        let at = entries.get(space_id)?.at.load(Ordering::Relaxed);
        (at > 0)
            .then(|| DateTime::from_timestamp_millis(at))
            .flatten()
    }
}

/// A door's throttled handle on one space's activity (see [`Activity::toucher`]).
pub struct Touch {
    entry: Arc<Entry>,
    clock: Arc<dyn Clock>,
    kind: ActivityKind,
    /// No write before this time (unix milliseconds).
    next_ms: i64,
    enabled: bool,
}

impl Touch {
    /// Bytes went through: records it, at most once a second.
    #[inline]
    pub fn touch(&mut self) {
        if !self.enabled {
            return;
        }
        let now = self.clock.now().timestamp_millis();
        if now >= self.next_ms {
            self.next_ms = now + 1000;
            self.entry.record(now, self.kind);
        }
    }
}

impl Clone for Touch {
    fn clone(&self) -> Self {
        Touch {
            entry: self.entry.clone(),
            clock: self.clock.clone(),
            kind: self.kind,
            next_ms: 0,
            enabled: self.enabled,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::domain::clock::MovableClock;

    #[test]
    fn a_door_writes_at_most_once_a_second_and_a_flush_takes_each_once() {
        let clock = Arc::new(MovableClock::default());
        let activity = Arc::new(Activity::new(clock.clone()));
        let space = SpaceId::from("s1");
        let mut touch = activity.toucher(&space, ActivityKind::Ssh);
        touch.touch();
        let first = activity.latest(&space).unwrap();
        touch.touch();
        assert_eq!(activity.latest(&space), Some(first), "throttled");
        clock.advance(chrono::Duration::seconds(2));
        touch.touch();
        assert!(activity.latest(&space).unwrap() > first);
        let taken = activity.take_unflushed();
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].kind, ActivityKind::Ssh);
        assert!(activity.take_unflushed().is_empty(), "written once");
        clock.advance(chrono::Duration::seconds(1));
        activity.touch(&space, ActivityKind::Files);
        assert_eq!(activity.take_unflushed()[0].kind, ActivityKind::Files);
    }
}
