//! Web terminal sessions: one process with a TTY in the space (through the runtime) per session id, shared by every viewer
//! that attaches with that id, reattachable after a drop (the screen and a bounded history of
//! the lines that scrolled off are kept in a server-side terminal emulator and replayed on
//! attach), ended after a while without viewers.
//!
//! A session belongs to the user who started it: it is found by (space, user, id), so another
//! user (a sharee, an admin) who names the same id gets a shell of their own and never sees or
//! types into someone else's. A live session is not shared with anyone.
//!
//! Output goes to viewers first and to the emulator second, on its own task, so parsing never
//! slows the stream down; sequence numbers let a joining viewer line the emulator's screen up
//! with the stream exactly.

pub mod emulator;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::sync::{broadcast, mpsc};

use app::ids::SpaceId;

use crate::error::{ApiError, ApiResult};
use crate::runtime::{ExecControl, ExecOutput, ExecRequest, Runtime};
use emulator::Emulator;

/// Output chunks kept for viewers that lag; one that falls further behind gets a fresh
/// screen instead, so a stalled viewer costs at most this many chunks of memory.
const VIEWER_BACKLOG: usize = 256;
/// Input messages waiting for the shell.
const INPUT_BACKLOG: usize = 256;
/// Bytes of input waiting for the shell, at most (a stalled shell holds no more; its
/// viewers' sockets then wait, and TCP holds the rest back on the senders' side).
const INPUT_QUEUE_BYTES: usize = 1 << 20;
/// Output chunks waiting for the emulator; when it is this far behind the reader waits, so
/// the emulator's queue stays bounded too.
const EMULATOR_BACKLOG: usize = 64;

/// What viewers of a session receive.
#[derive(Debug, Clone)]
pub enum Event {
    /// Output, numbered from 1 in the order the shell wrote it.
    Output(u64, bytes::Bytes),
    /// The shell exited with this code.
    Exit(i64),
    /// The session was closed for everyone (space stopped or deleted).
    Closed(String),
    /// This user must leave (their share was revoked).
    Kick(String),
    /// A line for every viewer that is no output of the shell (a coming automatic stop).
    Notice(String),
}

/// Where a session runs, how big it starts, and who opens it.
pub struct SessionSpec {
    pub space_id: String,
    pub shell: String,
    pub cols: u16,
    pub rows: u16,
    /// The user opening it (their sessions count against `per_user`).
    pub user_id: String,
    /// Where the shell starts, relative to the home (the space's cloned repository).
    pub folder: Option<String>,
}

/// How many sessions may be open at once.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    pub per_user: usize,
    pub per_space: usize,
}

/// The emulator's screen and the last output it has taken in.
struct Screen {
    /// The screen, and the lines that left it as compact text (vt100's own scrollback rows
    /// would cost about 2.9 MB per 1,000 lines).
    parser: Emulator,
    through: u64,
}

/// What the emulator task takes in, in stream order.
enum ScreenInput {
    Output(u64, bytes::Bytes),
    Resize { cols: u16, rows: u16 },
}

/// A viewer's start: the screen to draw, then every event after it.
pub struct Joined {
    pub events: broadcast::Receiver<Event>,
    pub screen: Vec<u8>,
    /// Output numbered up to this is already on `screen`: skip it.
    pub through: u64,
}

/// Viewers attached now, and a count of every join and leave (an idle timer ends the
/// session only if nobody came and went since it was set).
#[derive(Debug, Default)]
struct Viewers {
    attached: usize,
    changes: u64,
}

pub struct Session {
    pub id: String,
    pub space_id: String,
    /// Who opened it.
    pub user_id: String,
    control: Arc<dyn ExecControl>,
    input: mpsc::Sender<(bytes::Bytes, tokio::sync::OwnedSemaphorePermit)>,
    /// Bytes of input that may still be queued.
    input_room: Arc<tokio::sync::Semaphore>,
    events: broadcast::Sender<Event>,
    /// The number of the last output chunk handed to viewers.
    numbered: AtomicU64,
    to_screen: mpsc::Sender<ScreenInput>,
    /// The number of the last output chunk on the screen.
    on_screen: tokio::sync::watch::Receiver<u64>,
    screen: Mutex<Screen>,
    viewers: Mutex<Viewers>,
}

impl Session {
    /// Subscribes to what follows and takes the current screen, after the history of lines
    /// that scrolled off when `history_rows` gives the viewer's height (a fresh terminal of
    /// that height ends up with them in its scrollback). Whatever was numbered before
    /// subscribing is on the screen once the emulator has caught up with it; whatever the
    /// screen holds beyond that the viewer skips by number, so nothing is lost or doubled.
    pub async fn join(&self, history_rows: Option<u16>) -> Joined {
        let events = self.events.subscribe();
        let needed = self.numbered.load(Ordering::SeqCst);
        let mut on_screen = self.on_screen.clone();
        // Fails only when the emulator has ended, and then the screen is final anyway.
        let _ = on_screen.wait_for(|through| *through >= needed).await;
        let screen = self.screen.lock().unwrap_or_else(|p| p.into_inner());
        let mut redraw = history_rows
            .map(|rows| screen.parser.history(rows))
            .unwrap_or_default();
        redraw.extend_from_slice(b"\x1b[H\x1b[2J");
        redraw.extend(screen.parser.redraw());
        Joined {
            events,
            screen: redraw,
            through: screen.through,
        }
    }

    /// Queues input for the shell, waiting while the queue holds [`INPUT_QUEUE_BYTES`].
    pub async fn send_input(&self, data: bytes::Bytes) -> ApiResult<()> {
        let ended = || ApiError::conflict("the terminal session has ended");
        let bytes = u32::try_from(data.len().min(INPUT_QUEUE_BYTES)).map_err(|_| ended())?;
        let room = self
            .input_room
            .clone()
            .acquire_many_owned(bytes)
            .await
            .map_err(|_| ended())?;
        self.input.send((data, room)).await.map_err(|_| ended())
    }

    /// Bytes of input queued for the shell now.
    pub fn queued_input(&self) -> usize {
        INPUT_QUEUE_BYTES - self.input_room.available_permits()
    }

    fn viewers(&self) -> std::sync::MutexGuard<'_, Viewers> {
        self.viewers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A viewer is attached (counted only once its WebSocket is open).
    pub fn viewer_joined(&self) {
        let mut viewers = self.viewers();
        viewers.attached += 1;
        viewers.changes += 1;
    }

    /// Resizes the TTY (the latest viewer's size wins) and the emulator.
    pub async fn resize(&self, cols: u16, rows: u16) -> ApiResult<()> {
        if cols == 0 || rows == 0 || cols > emulator::MAX_ROWS || rows > emulator::MAX_ROWS {
            return Err(ApiError::bad_request(
                "terminal size must be 1 to 1000 columns and rows",
            ));
        }
        // In stream order, so output written before the resize is parsed at the old size.
        let _ = self
            .to_screen
            .send(ScreenInput::Resize { cols, rows })
            .await;
        self.control
            .resize(cols, rows)
            .await
            .map_err(|e| ApiError::unavailable(e.to_string()))
    }
}

/// All live sessions of this server.
pub struct TerminalHub {
    runtime: Arc<dyn Runtime>,
    idle: Duration,
    /// Bytes of history each session keeps.
    history_bytes: usize,
    limits: SessionLimits,
    sessions: Mutex<HashMap<Key, Arc<Session>>>,
}

/// What a session is found by: its space, the user who started it, and the id their client
/// chose.
type Key = (String, String, String);

fn key_of(session: &Session) -> Key {
    (
        session.space_id.clone(),
        session.user_id.clone(),
        session.id.clone(),
    )
}

impl TerminalHub {
    pub fn new(
        runtime: Arc<dyn Runtime>,
        idle: Duration,
        history_bytes: usize,
        limits: SessionLimits,
    ) -> Self {
        Self {
            runtime,
            idle,
            history_bytes,
            limits,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Arc<Session>>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn session_count(&self) -> usize {
        self.sessions().len()
    }

    /// Live sessions in one space.
    pub fn sessions_in(&self, space_id: &str) -> usize {
        self.sessions()
            .keys()
            .filter(|(space, _, _)| space == space_id)
            .count()
    }

    /// The open session with this id that this user started in this space, if any.
    pub fn session(&self, space_id: &str, user_id: &str, session_id: &str) -> Option<Arc<Session>> {
        self.sessions()
            .get(&(
                space_id.to_owned(),
                user_id.to_owned(),
                session_id.to_owned(),
            ))
            .cloned()
    }

    /// Why a new session of `user_id` in `space_id` may not start now, if so.
    fn refusal(
        sessions: &HashMap<Key, Arc<Session>>,
        limits: SessionLimits,
        space_id: &str,
        user_id: &str,
    ) -> Option<ApiError> {
        let of_space = sessions.values().filter(|s| s.space_id == space_id).count();
        let of_user = sessions.values().filter(|s| s.user_id == user_id).count();
        let limit = |count: usize, max: usize, whose: &str| {
            ApiError::conflict(format!(
                "{whose} {count} terminal sessions open, the most allowed: close one (a session \
                 nobody is attached to ends after a few idle minutes)"
            ))
            .with_detail("limit", max)
        };
        if of_user >= limits.per_user {
            return Some(limit(of_user, limits.per_user, "you have"));
        }
        if of_space >= limits.per_space {
            return Some(limit(of_space, limits.per_space, "this space has"));
        }
        None
    }

    /// The session with this id that `spec`'s user started in this space, started now if it
    /// does not exist (within the limits on sessions per user and per space): never another
    /// user's. Its viewer counts once it is attached ([`Session::viewer_joined`]); a session
    /// nobody attaches to ends after the idle time.
    pub async fn attach(
        self: &Arc<Self>,
        session_id: &str,
        spec: SessionSpec,
    ) -> ApiResult<Arc<Session>> {
        let key = (
            spec.space_id.clone(),
            spec.user_id.clone(),
            session_id.to_owned(),
        );
        {
            let sessions = self.sessions();
            if let Some(session) = sessions.get(&key) {
                return Ok(session.clone());
            }
            if let Some(refused) =
                Self::refusal(&sessions, self.limits, &spec.space_id, &spec.user_id)
            {
                return Err(refused);
            }
        }
        let started = self.start(session_id, spec).await?;
        let outcome = {
            let mut sessions = self.sessions();
            if let Some(theirs) = sessions.get(&key) {
                // Another viewer of the same user started it meanwhile: join that one.
                Err(Ok(theirs.clone()))
            } else if let Some(refused) =
                Self::refusal(&sessions, self.limits, &started.space_id, &started.user_id)
            {
                Err(Err(refused))
            } else {
                sessions.insert(key, started.clone());
                Ok(())
            }
        };
        match outcome {
            Ok(()) => {
                self.end_when_idle(&started);
                Ok(started)
            }
            Err(other) => {
                self.discard(&started);
                other
            }
        }
    }

    /// A viewer left; the session ends after the idle time if nobody else is attached.
    pub fn detach(self: &Arc<Self>, session: &Arc<Session>) {
        let left = {
            let mut viewers = session.viewers();
            viewers.attached = viewers.attached.saturating_sub(1);
            viewers.changes += 1;
            viewers.attached
        };
        if left == 0 {
            self.end_when_idle(session);
        }
    }

    /// Ends the session after the idle time, unless a viewer comes (or comes and goes) first.
    fn end_when_idle(self: &Arc<Self>, session: &Arc<Session>) {
        let set_at = session.viewers().changes;
        let hub = self.clone();
        let session = session.clone();
        tokio::spawn(async move {
            tokio::time::sleep(hub.idle).await;
            let viewers = session.viewers();
            let idle = viewers.attached == 0 && viewers.changes == set_at;
            drop(viewers);
            if idle {
                hub.end(&session, "the terminal session ended after being idle");
            }
        });
    }

    /// Takes the session out of the hub, if it is still the one under its key (a later
    /// session may have taken the id since).
    fn remove(&self, session: &Arc<Session>) -> bool {
        let key = key_of(session);
        let mut sessions = self.sessions();
        if sessions.get(&key).is_some_and(|s| Arc::ptr_eq(s, session)) {
            sessions.remove(&key);
            true
        } else {
            false
        }
    }

    fn end(&self, session: &Arc<Session>, reason: &str) {
        if self.remove(session) {
            let _ = session.events.send(Event::Closed(reason.to_owned()));
            self.discard(session);
        }
    }

    /// Hangs up the session's shell and what it started, as closing a terminal does (closing
    /// a TTY exec's input does not end its shell).
    fn discard(&self, session: &Session) {
        let control = session.control.clone();
        tokio::spawn(async move {
            if let Err(e) = control.signal("HUP").await {
                tracing::debug!(error = %e, "could not hang up a terminal session");
            }
        });
    }

    /// Closes every session of a space, telling viewers why.
    pub fn close_space(&self, space_id: &str, reason: &str) {
        let sessions: Vec<Arc<Session>> = self
            .sessions()
            .values()
            .filter(|s| s.space_id == space_id)
            .cloned()
            .collect();
        for session in sessions {
            self.end(&session, reason);
        }
    }

    /// Closes every session (the server is shutting down).
    pub fn close_all(&self, reason: &str) {
        let sessions: Vec<Arc<Session>> = self.sessions().values().cloned().collect();
        for session in sessions {
            self.end(&session, reason);
        }
    }

    /// Tells every viewer of a space's sessions `message` (beside the output, not in it).
    pub fn notice_space(&self, space_id: &str, message: &str) {
        for session in self.sessions().values().filter(|s| s.space_id == space_id) {
            let _ = session.events.send(Event::Notice(message.to_owned()));
        }
    }

    /// Disconnects one user's viewers from a space's sessions at once.
    pub fn kick(&self, space_id: &str, user_id: &str) {
        for session in self.sessions().values().filter(|s| s.space_id == space_id) {
            let _ = session.events.send(Event::Kick(user_id.to_owned()));
        }
    }

    async fn start(
        self: &Arc<Self>,
        session_id: &str,
        spec: SessionSpec,
    ) -> ApiResult<Arc<Session>> {
        // A login shell of the template's shell, falling back to /bin/sh where it is absent.
        let script = format!(
            "if [ -n \"$HANGAR_FOLDER\" ]; then cd \"$HOME/$HANGAR_FOLDER\" 2>/dev/null; fi; \
             if [ -x '{0}' ]; then exec '{0}' -l; else exec /bin/sh -l; fi",
            spec.shell.replace('\'', "")
        );
        let mut env = vec!["TERM=xterm-256color".to_owned()];
        if let Some(folder) = &spec.folder {
            env.push(format!("HANGAR_FOLDER={folder}"));
        }
        let exec = self
            .runtime
            .exec(
                &SpaceId::from(spec.space_id.as_str()),
                ExecRequest {
                    cmd: vec!["/bin/sh".to_owned(), "-c".to_owned(), script],
                    env,
                    tty: true,
                    size: Some((spec.cols, spec.rows)),
                },
            )
            .await
            .map_err(|e| ApiError::unavailable(format!("cannot open a shell in the space: {e}")))?;
        let (mut output, mut input) = (exec.output, exec.input);

        let (input_tx, mut input_rx) = mpsc::channel(INPUT_BACKLOG);
        let (events, _) = broadcast::channel(VIEWER_BACKLOG);
        let (to_screen, mut screen_inputs) = mpsc::channel(EMULATOR_BACKLOG);
        let (screen_done, on_screen) = tokio::sync::watch::channel(0u64);
        let session = Arc::new(Session {
            id: session_id.to_owned(),
            space_id: spec.space_id.clone(),
            user_id: spec.user_id.clone(),
            control: exec.control,
            input: input_tx,
            input_room: Arc::new(tokio::sync::Semaphore::new(INPUT_QUEUE_BYTES)),
            events: events.clone(),
            numbered: AtomicU64::new(0),
            to_screen,
            on_screen,
            screen: Mutex::new(Screen {
                parser: Emulator::new(spec.rows, spec.cols, self.history_bytes),
                through: 0,
            }),
            viewers: Mutex::new(Viewers::default()),
        });

        tokio::spawn(async move {
            // Each message's room in the queue is given back once it is written.
            while let Some((data, _room)) = input_rx.recv().await {
                if input.write_all(&data).await.is_err() || input.flush().await.is_err() {
                    break;
                }
            }
            let _ = input.shutdown().await;
        });

        let emulator = Arc::downgrade(&session);
        tokio::spawn(async move {
            while let Some(input) = screen_inputs.recv().await {
                let Some(session) = emulator.upgrade() else {
                    break;
                };
                let mut screen = session.screen.lock().unwrap_or_else(|p| p.into_inner());
                match input {
                    ScreenInput::Output(number, bytes) => {
                        screen.parser.process(&bytes);
                        screen.through = number;
                        drop(screen);
                        screen_done.send_replace(number);
                    }
                    ScreenInput::Resize { cols, rows } => screen.parser.set_size(rows, cols),
                }
            }
        });

        let hub = self.clone();
        let reader = session.clone();
        tokio::spawn(async move {
            while let Some(chunk) = output.next().await {
                let Ok(ExecOutput::Stdout(bytes) | ExecOutput::Stderr(bytes)) = chunk else {
                    break;
                };
                let number = reader.numbered.fetch_add(1, Ordering::SeqCst) + 1;
                // No receiver is fine: the screen keeps it for the next viewer.
                let _ = reader.events.send(Event::Output(number, bytes.clone()));
                if reader
                    .to_screen
                    .send(ScreenInput::Output(number, bytes))
                    .await
                    .is_err()
                {
                    break;
                }
            }
            let code = reader
                .control
                .exit_code()
                .await
                .ok()
                .flatten()
                .unwrap_or(-1);
            let _ = reader.events.send(Event::Exit(code));
            hub.remove(&reader);
        });
        Ok(session)
    }
}
