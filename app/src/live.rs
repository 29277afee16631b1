//! Live updates in the browser: one `EventSource` on `/api/v1/events` per page, whose events
//! pages read as signals (the quota as it is now, and a counter per kind of change that their
//! resources refetch on). No polling: without events nothing is fetched.

use leptos::prelude::*;

use crate::api::quota::QuotaReport;

/// What the server pushed, as signals every page can read.
#[derive(Clone, Copy)]
pub struct Live {
    /// The signed-in user's quota and usage, as last pushed.
    pub quota: RwSignal<Option<QuotaReport>>,
    /// Counts space changes (and resyncs): lists of spaces refetch when it moves.
    pub spaces: RwSignal<u64>,
    /// Counts quota changes (and resyncs): admin pages showing others' usage refetch on it.
    pub usage: RwSignal<u64>,
    /// The stream is open.
    pub connected: RwSignal<bool>,
    /// Spaces the stream said will soon stop by themselves (their users are warned), as
    /// last pushed.
    pub stop_warnings: RwSignal<Vec<crate::api::spaces::SpaceDto>>,
    /// The signed-in user's unread notifications, as last pushed (None: not pushed since the
    /// last resync; the bell asks).
    pub unread: RwSignal<Option<u64>>,
    /// Counts notification changes (and resyncs): notification lists refetch when it moves.
    pub notifications: RwSignal<u64>,
}

impl Live {
    pub fn provide() -> Self {
        let live = Live {
            quota: RwSignal::new(None),
            spaces: RwSignal::new(0),
            usage: RwSignal::new(0),
            connected: RwSignal::new(false),
            stop_warnings: RwSignal::new(Vec::new()),
            unread: RwSignal::new(None),
            notifications: RwSignal::new(0),
        };
        provide_context(live);
        #[cfg(feature = "hydrate")]
        {
            client::PAGE.set(Some(live));
            crate::error::on_transport_failure(client::request_failed);
        }
        live
    }

    pub fn get() -> Self {
        expect_context::<Live>()
    }

    /// Everything may have changed (the stream fell behind or reconnected, or a request was
    /// lost on the way).
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    fn resync(&self) {
        self.spaces.update(|n| *n += 1);
        self.usage.update(|n| *n += 1);
        self.unread.set(None);
        self.notifications.update(|n| *n += 1);
    }

    /// Opens the stream (in the browser only; the server renders without it).
    pub fn connect(&self) {
        #[cfg(feature = "hydrate")]
        client::connect(*self);
    }
}

#[cfg(feature = "hydrate")]
mod client {
    use leptos::prelude::*;
    use std::cell::Cell;
    use std::rc::Rc;
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::JsCast;

    use web_sys::{EventSource, MessageEvent};

    use super::Live;
    use crate::protocol::LiveEvent;

    thread_local! {
        /// The page's signals, for [`request_failed`], which is called where no context is
        /// (from the conversion of a server function's transport error).
        pub(super) static PAGE: Cell<Option<Live>> = const { Cell::new(None) };
        static REFETCH: Cell<Refetch> = const { Cell::new(Refetch { due: false, in_a_row: 0, last_ms: 0.0 }) };
    }

    /// How long views wait to fetch again after a failed request: doubled while requests
    /// keep failing (Hangar is down: no page should hammer it), up to half a minute, and
    /// back to the start after a calm minute.
    const REFETCH_AFTER_MS: u64 = 1_000;
    const REFETCH_AFTER_MAX_MS: u64 = 30_000;
    const CALM_MS: f64 = 60_000.0;

    #[derive(Clone, Copy)]
    struct Refetch {
        /// One is scheduled: it serves every view that failed meanwhile.
        due: bool,
        in_a_row: u32,
        last_ms: f64,
    }

    /// A request of this page never reached the server, or its answer never came back (the
    /// network dropped it: Wi-Fi changed, say, or the machine added a network interface).
    /// The views that asked show an error, and no event would ever ask again: every view
    /// that follows the stream fetches afresh a moment later.
    pub fn request_failed() {
        let Some(live) = PAGE.get() else {
            return;
        };
        let refetch = REFETCH.get();
        if refetch.due {
            return;
        }
        let now = js_sys::Date::now();
        let in_a_row = if now - refetch.last_ms > CALM_MS {
            0
        } else {
            refetch.in_a_row
        };
        let delay = backoff(REFETCH_AFTER_MS, in_a_row, REFETCH_AFTER_MAX_MS);
        REFETCH.set(Refetch {
            due: true,
            in_a_row: in_a_row.saturating_add(1),
            last_ms: now,
        });
        leptos::prelude::set_timeout(
            move || {
                REFETCH.set(Refetch {
                    due: false,
                    ..REFETCH.get()
                });
                live.resync();
            },
            delay,
        );
    }

    /// Keeps `warned` to the spaces whose coming stop their users are warned of.
    fn note_warning(
        warned: &mut Vec<crate::api::spaces::SpaceDto>,
        update: crate::protocol::SpaceUpdate,
    ) {
        use crate::protocol::SpaceUpdate;
        let id = match &update {
            SpaceUpdate::Visible(space) => space.id.clone(),
            SpaceUpdate::Gone { id, .. } => id.clone(),
        };
        warned.retain(|s| s.id != id);
        if let SpaceUpdate::Visible(space) = update {
            if space.autostop.as_ref().is_some_and(|stop| stop.warned) {
                warned.push(*space);
            }
        }
    }

    /// `first_ms` doubled for each failure in a row, up to `max_ms`.
    fn backoff(first_ms: u64, failures: u32, max_ms: u64) -> std::time::Duration {
        std::time::Duration::from_millis(first_ms.saturating_mul(1 << failures.min(5)).min(max_ms))
    }

    /// Opens the stream once the whole page is hydrated. Its first open refetches every
    /// resource that follows it; a page whose code loads on demand makes its resources only
    /// when that code is in, and one made after the refetch would keep the server-rendered
    /// data (a space that turned `running` meanwhile would stay `starting`).
    pub fn connect(live: Live) {
        crate::when_hydrated(move || open(live, Rc::new(Cell::new(0))));
    }

    /// How long a stream the browser gave up on waits before it is opened again: doubled at
    /// each failure in a row, up to a minute (a page whose session ended asks rarely).
    const REOPEN_AFTER_MS: u64 = 2_000;
    const REOPEN_AFTER_MAX_MS: u64 = 60_000;

    /// `failures`: how many streams in a row the browser gave up on before this one opened.
    fn open(live: Live, failures: Rc<Cell<u32>>) {
        let Ok(source) = EventSource::new("/api/v1/events") else {
            return;
        };
        let on_event = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            let data = event.data().as_string().unwrap_or_default();
            match LiveEvent::parse(&event.type_(), &data) {
                Ok(LiveEvent::Quota(report)) => {
                    live.quota.set(Some(report));
                    live.usage.update(|n| *n += 1);
                }
                Ok(LiveEvent::Space(update)) => {
                    live.stop_warnings
                        .update(|warned| note_warning(warned, update));
                    live.spaces.update(|n| *n += 1);
                    // A space's state moves someone's usage (an admin may be showing it).
                    live.usage.update(|n| *n += 1);
                }
                Ok(LiveEvent::Notifications(count)) => {
                    live.unread.set(Some(count.unread));
                    live.notifications.update(|n| *n += 1);
                }
                // An event this page cannot read: read everything afresh instead.
                Ok(LiveEvent::Resync) | Err(_) => live.resync(),
            }
        });
        // What changed while the stream was closed is fetched afresh: after a reconnect, and
        // at the first open too, since the page was rendered before the stream existed (a
        // space that turned `running` in between would stay `starting` on the page).
        let opened = failures.clone();
        let on_open = Closure::<dyn FnMut(web_sys::Event)>::new(move |_: web_sys::Event| {
            opened.set(0);
            live.connected.set(true);
            live.resync();
        });
        let watched = source.clone();
        let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |_: web_sys::Event| {
            live.connected.set(false);
            // The browser reconnects by itself after most failures, but gives up for good
            // on some (an answer that is not an event stream, e.g. a proxy's error page):
            // then open a new stream a little later, so that a page never stops following.
            if watched.ready_state() == EventSource::CLOSED {
                watched.set_onerror(None);
                let delay = backoff(REOPEN_AFTER_MS, failures.get(), REOPEN_AFTER_MAX_MS);
                failures.set(failures.get().saturating_add(1));
                let failures = failures.clone();
                leptos::prelude::set_timeout(move || open(live, failures), delay);
            }
        });
        for name in LiveEvent::NAMES {
            let _ =
                source.add_event_listener_with_callback(name, on_event.as_ref().unchecked_ref());
        }
        source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        // The stream lives as long as the page.
        on_event.forget();
        on_open.forget();
        on_error.forget();
        std::mem::forget(source);
    }
}
