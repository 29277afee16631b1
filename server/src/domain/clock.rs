//! The time the services go by: the system's, or in tests one they can move forward (and set)
//! so that idle stops, schedules and retention are tested in seconds, not hours.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};

/// What time it is.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The system's clock shifted by an offset the test moves: time still flows, and jumps when
/// told.
#[derive(Debug, Default)]
pub struct MovableClock {
    offset_ms: AtomicI64,
}

impl MovableClock {
    /// Moves the clock forward (or back, for a negative duration).
    pub fn advance(&self, by: chrono::Duration) {
        self.offset_ms
            .fetch_add(by.num_milliseconds(), Ordering::SeqCst);
    }

    /// Makes it `at` now (and flowing on from there).
    pub fn set(&self, at: DateTime<Utc>) {
        self.offset_ms
            .store((at - Utc::now()).num_milliseconds(), Ordering::SeqCst);
    }
}

impl Clock for MovableClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }
}
