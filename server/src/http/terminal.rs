//! `GET /api/v1/spaces/{id}/terminal`: the web terminal's WebSocket. Binary frames carry raw
//! terminal bytes both ways; text frames carry JSON control messages.

use std::sync::Arc;

use app::error::ErrorBody;
use app::ids::SpaceId;
use app::protocol::{TerminalControl, TerminalNotice, TerminalQuery};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use super::extract::{websocket, ValidQuery};
use super::middleware::csrf::origin_allowed;
use super::AppState;
use crate::error::{ApiError, ApiResult};
use crate::services::access::Caller;
use crate::services::activity::Touch;
use crate::services::watch::{AccessWatch, Need};
use crate::terminal::emulator::MAX_ROWS;
use crate::terminal::{Event, Joined, Session, SessionSpec, TerminalHub};
use app::api::autostop::ActivityKind;

/// Opens (or reattaches to) one of the caller's own terminal sessions in a running space (the
/// same session id from another user opens a shell of theirs): a WebSocket whose binary
/// frames carry raw terminal bytes both ways and whose text frames carry JSON control
/// messages (`{"type":"resize","cols":..,"rows":..}` up; `{"type":"exit","code":..}` or
/// `{"type":"error","message":..}` down).
#[utoipa::path(get, path = "/api/v1/spaces/{id}/terminal", tag = "spaces", params(("id" = String, Path, description = "the space id"), TerminalQuery), responses((status = 101, description = "switched to the terminal's WebSocket"), (status = 400, description = "invalid parameters, or not a WebSocket upgrade", body = ErrorBody), (status = 403, description = "a cross-origin upgrade, or an API token without the `write` scope", body = ErrorBody), (status = 409, description = "the space is not running, or too many terminal sessions are open (per user or per space)", body = ErrorBody), (status = 503, description = "no shell could be started in the space", body = ErrorBody)))]
pub async fn terminal(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<SpaceId>,
    ValidQuery(query): ValidQuery<TerminalQuery>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    if !origin_allowed(state.config.public_url.as_deref(), &headers) {
        return Err(ApiError::forbidden(
            "cross-origin WebSocket refused: open the terminal from Hangar's own pages",
        ));
    }
    let session_id = terminal_session_id(&query.session)?;
    let (cols, rows) = (query.cols.unwrap_or(80), query.rows.unwrap_or(24));
    if !(1..=MAX_ROWS).contains(&cols) || !(1..=MAX_ROWS).contains(&rows) {
        return Err(ApiError::bad_request("cols and rows must be 1 to 1000"));
    }
    let (space, _role) = state
        .services
        .usable_space_with_feature(&caller, &id, app::api::templates::Feature::Terminal)
        .await?;
    let upgrade = websocket(upgrade, &state.config)?;
    let hub = state.services.terminals.clone();
    let spec = SessionSpec {
        space_id: space.id.to_string(),
        shell: space.shell.clone(),
        cols,
        rows,
        user_id: caller.id().to_string(),
        folder: crate::services::spaces::setup::workspace_folder(&space),
    };
    // On a task of its own: a client that goes away meanwhile must not cut a shell's start
    // short (it would run on, in no session). A session nobody attaches to ends when idle.
    let attaching = {
        let hub = hub.clone();
        tokio::spawn(async move { hub.attach(&session_id, spec).await })
    };
    let session = attaching.await.map_err(ApiError::internal)??;
    let user_id = caller.id().to_string();
    let watch = state.services.watch_access(
        &caller,
        Need::Feature(space.id.clone(), app::api::templates::Feature::Terminal),
    );
    // Bytes both ways count as activity; an open but silent terminal does not.
    let activity = state
        .services
        .activity
        .toucher(&space.id, ActivityKind::Terminal);
    Ok(upgrade.on_upgrade(move |socket| {
        serve_viewer(socket, hub, session, user_id, watch, rows, activity)
    }))
}

/// The client's session id: a hyphenated UUID (as the API document's pattern says).
fn terminal_session_id(text: &str) -> ApiResult<String> {
    match uuid::Uuid::parse_str(text) {
        Ok(id) if text.len() == 36 => Ok(id.to_string()),
        _ => Err(ApiError::invalid(
            "session",
            "session must be a hyphenated UUID chosen by the client",
        )),
    }
}

async fn send_control(
    sink: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    control: &TerminalNotice,
) -> bool {
    match serde_json::to_string(control) {
        Ok(text) => sink.send(Message::Text(text.into())).await.is_ok(),
        Err(_) => false,
    }
}

/// What became of an event for one viewer.
enum Delivered {
    /// Queued on the socket; flush when nothing else is waiting.
    Queued,
    /// The viewer is done (exit, close, kick, or a dead socket).
    End,
}

/// Most output frames written to a viewer before one flush.
const FRAMES_PER_FLUSH: usize = 64;

async fn serve_viewer(
    socket: WebSocket,
    hub: Arc<TerminalHub>,
    session: Arc<Session>,
    user_id: String,
    mut watch: AccessWatch,
    rows: u16,
    mut activity: Touch,
) {
    session.viewer_joined();
    let (mut sink, mut stream) = socket.split();
    // A fresh viewer gets the history before the screen; one that fell behind gets the
    // screen only (its terminal has the history already).
    let Joined {
        mut events,
        screen,
        mut through,
    } = session.join(Some(rows)).await;
    if sink.send(Message::Binary(screen.into())).await.is_err() {
        hub.detach(&session);
        return;
    }
    'serve: loop {
        tokio::select! {
            reason = watch.lost() => {
                send_control(&mut sink, &TerminalNotice::Error { message: format!("the terminal was closed: {reason}") }).await;
                break;
            }
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Binary(data))) => {
                    activity.touch();
                    // A stalled shell holds this back, but not the loss of the right to it.
                    tokio::select! {
                        sent = session.send_input(data) => if sent.is_err() {
                            break;
                        },
                        reason = watch.lost() => {
                            send_control(&mut sink, &TerminalNotice::Error { message: format!("the terminal was closed: {reason}") }).await;
                            break;
                        }
                    }
                }
                Some(Ok(Message::Text(text))) => match serde_json::from_str::<TerminalControl>(&text) {
                    Ok(TerminalControl::Resize { cols, rows }) => {
                        if let Err(e) = session.resize(cols, rows).await {
                            send_control(&mut sink, &TerminalNotice::Error { message: e.to_string() }).await;
                        }
                    }
                    _ => {
                        send_control(&mut sink, &TerminalNotice::Error {
                            message: r#"unknown control message: send {"type":"resize","cols":N,"rows":N}"#.into(),
                        }).await;
                    }
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            event = events.recv() => {
                // The shell's output is activity (a build printing); notices are not.
                if matches!(event, Ok(Event::Output(..))) {
                    activity.touch();
                }
                let mut next = Some(event);
                let mut queued = 0;
                // Writes what is already waiting in one go: one flush per burst, not per chunk.
                while let Some(event) = next.take() {
                    match deliver(&mut sink, event, &mut through, &session, &mut events, &user_id).await {
                        Delivered::Queued => queued += 1,
                        Delivered::End => break 'serve,
                    }
                    if queued < FRAMES_PER_FLUSH {
                        next = match events.try_recv() {
                            Ok(event) => Some(Ok(event)),
                            Err(TryRecvError::Lagged(n)) => Some(Err(RecvError::Lagged(n))),
                            Err(TryRecvError::Closed) => Some(Err(RecvError::Closed)),
                            Err(TryRecvError::Empty) => None,
                        };
                    }
                }
                if sink.flush().await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = sink.send(Message::Close(None)).await;
    hub.detach(&session);
}

async fn deliver(
    sink: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    event: Result<Event, RecvError>,
    through: &mut u64,
    session: &Session,
    events: &mut tokio::sync::broadcast::Receiver<Event>,
    user_id: &str,
) -> Delivered {
    let queued = match event {
        // Already on the screen this viewer was sent.
        Ok(Event::Output(number, _)) if number <= *through => return Delivered::Queued,
        Ok(Event::Output(_, bytes)) => sink.feed(Message::Binary(bytes)).await.is_ok(),
        Ok(Event::Exit(code)) => {
            send_control(sink, &TerminalNotice::Exit { code }).await;
            return Delivered::End;
        }
        Ok(Event::Closed(reason)) => {
            send_control(sink, &TerminalNotice::Error { message: reason }).await;
            return Delivered::End;
        }
        Ok(Event::Kick(kicked)) if kicked == user_id => {
            send_control(
                sink,
                &TerminalNotice::Error {
                    message: "your access to this space was revoked".into(),
                },
            )
            .await;
            return Delivered::End;
        }
        Ok(Event::Kick(_)) => true,
        Ok(Event::Notice(message)) => send_control(sink, &TerminalNotice::Notice { message }).await,
        // Fell behind: skip what was missed and redraw the screen as it is now.
        Err(RecvError::Lagged(_)) => {
            let joined = session.join(None).await;
            *events = joined.events;
            *through = joined.through;
            sink.feed(Message::Binary(joined.screen.into()))
                .await
                .is_ok()
        }
        Err(RecvError::Closed) => false,
    };
    if queued {
        Delivered::Queued
    } else {
        Delivered::End
    }
}
