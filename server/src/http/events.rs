//! `GET /api/v1/events`: server-sent events with the caller's quota usage and the spaces they
//! can see, pushed as they change (admins: everyone's changes).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream, StreamExt};
use tokio::sync::broadcast::error::RecvError;

use crate::error::ApiError;
use crate::live::Update;
use crate::services::access::Caller;
use crate::services::watch::Need;
use crate::services::Services;
use app::protocol::LiveEvent;

fn sse(event: &LiveEvent) -> Option<Event> {
    event
        .data()
        .ok()
        .map(|data| Event::default().event(event.name()).data(data))
}

fn sse_batch(events: Vec<LiveEvent>) -> Vec<Event> {
    events.iter().filter_map(sse).collect()
}

/// The caller's quota usage and the spaces they can see, as server-sent events (`quota`,
/// `space`, `resync`), pushed as they change; admins hear of everyone's spaces.
#[utoipa::path(get, path = "/api/v1/events", tag = "live", responses((status = 200, description = "text/event-stream of `quota` (a QuotaReport), `space` (a SpaceDto, or `{id, state: deleted}` once gone) and `resync` events", content_type = "text/event-stream"), (status = 409, description = "the caller has as many streams open as allowed (`--live-streams-per-user`)", body = app::error::ErrorBody)))]
pub async fn events(
    State(services): State<Services>,
    mut caller: Caller,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    // Held for as long as the stream lives.
    let slot = services.open_live_stream(&caller)?;
    let receiver = services.notifier.subscribe();
    let services_for_shutdown = services.clone();
    let mut watch = services.watch_access(&caller, Need::SignedIn);
    // First the current quota, then one batch per change.
    let first = sse_batch(
        services
            .live_events(&mut caller, None)
            .await
            .unwrap_or_default(),
    );
    let updates = stream::unfold(
        (receiver, services, caller),
        |(mut receiver, services, mut caller)| async move {
            let batch = loop {
                match receiver.recv().await {
                    Ok(Update::Changed(change)) => {
                        let batch =
                            sse_batch(services.live_events(&mut caller, Some(change)).await?);
                        if !batch.is_empty() {
                            break batch;
                        }
                    }
                    // Fell behind, or changes of other servers may have been missed: tell the
                    // page to fetch afresh instead of replaying.
                    Ok(Update::Resync) | Err(RecvError::Lagged(_)) => {
                        break sse(&LiveEvent::Resync).into_iter().collect()
                    }
                    Err(RecvError::Closed) => return None,
                }
            };
            Some((
                stream::iter(batch.into_iter().map(Ok)),
                (receiver, services, caller),
            ))
        },
    );
    let shutdown = services_for_shutdown.shutdown_signal();
    let ended = async move {
        tokio::select! {
            () = shutdown => {}
            _ = watch.lost() => {}
        }
    };
    let stream = stream::iter(first.into_iter().map(Ok))
        .chain(updates.flatten())
        .take_until(ended)
        .map(move |event| {
            let _held = &slot;
            event
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
