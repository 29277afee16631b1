//! Web terminal sessions: one process with a TTY in the space (through the runtime) per session id, shared by every viewer
//! that attaches with that id, reattachable after a drop (the screen and a bounded history of
//! the lines that scrolled off are kept in a server-side terminal emulator and replayed on
//! attach), ended after a while without viewers.
//!
//! Output goes to viewers first and to the emulator second, on its own task, so parsing never
//! slows the stream down; sequence numbers let a joining viewer line the emulator's screen up
//! with the stream exactly.

pub mod emulator;
pub mod ws;

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
/// Input chunks waiting for the shell.
const INPUT_BACKLOG: usize = 256;
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
}

/// Where a session runs and how big it starts.
pub struct SessionSpec {
    pub space_id: String,
    pub shell: String,
    pub cols: u16,
    pub rows: u16,
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

pub struct Session {
    pub id: String,
    pub space_id: String,
    control: Arc<dyn ExecControl>,
    input: mpsc::Sender<bytes::Bytes>,
    events: broadcast::Sender<Event>,
    /// The number of the last output chunk handed to viewers.
    numbered: AtomicU64,
    to_screen: mpsc::Sender<ScreenInput>,
    /// The number of the last output chunk on the screen.
    on_screen: tokio::sync::watch::Receiver<u64>,
    screen: Mutex<Screen>,
    viewers: Mutex<usize>,
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

    pub async fn send_input(&self, data: bytes::Bytes) -> ApiResult<()> {
        self.input
            .send(data)
            .await
            .map_err(|_| ApiError::conflict("the terminal session has ended"))
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
    sessions: Mutex<HashMap<(String, String), Arc<Session>>>,
}

impl TerminalHub {
    pub fn new(runtime: Arc<dyn Runtime>, idle: Duration, history_bytes: usize) -> Self {
        Self {
            runtime,
            idle,
            history_bytes,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Arc<Session>>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn session_count(&self) -> usize {
        self.sessions().len()
    }

    /// Live sessions in one space.
    pub fn sessions_in(&self, space_id: &str) -> usize {
        self.sessions()
            .keys()
            .filter(|(space, _)| space == space_id)
            .count()
    }

    /// The session with this id in this space, started now if it does not exist.
    pub async fn attach(
        self: &Arc<Self>,
        session_id: &str,
        spec: SessionSpec,
    ) -> ApiResult<Arc<Session>> {
        let key = (spec.space_id.clone(), session_id.to_owned());
        if let Some(session) = self.sessions().get(&key).cloned() {
            *session.viewers.lock().unwrap_or_else(|p| p.into_inner()) += 1;
            return Ok(session);
        }
        let session = self.start(session_id, spec).await?;
        let mut sessions = self.sessions();
        // Another viewer may have started it meanwhile: join theirs.
        let session = sessions.entry(key).or_insert(session).clone();
        *session.viewers.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        Ok(session)
    }

    /// A viewer left; the session ends after the idle time if nobody else is attached.
    pub fn detach(self: &Arc<Self>, session: &Arc<Session>) {
        let left = {
            let mut viewers = session.viewers.lock().unwrap_or_else(|p| p.into_inner());
            *viewers = viewers.saturating_sub(1);
            *viewers
        };
        if left > 0 {
            return;
        }
        let hub = self.clone();
        let session = session.clone();
        tokio::spawn(async move {
            tokio::time::sleep(hub.idle).await;
            if *session.viewers.lock().unwrap_or_else(|p| p.into_inner()) == 0 {
                hub.end(&session, "the terminal session ended after being idle");
            }
        });
    }

    fn end(&self, session: &Arc<Session>, reason: &str) {
        let removed = self
            .sessions()
            .remove(&(session.space_id.clone(), session.id.clone()));
        if removed.is_some() {
            let _ = session.events.send(Event::Closed(reason.to_owned()));
            // As closing a terminal does: the shell and whatever it started get SIGHUP.
            let control = session.control.clone();
            tokio::spawn(async move {
                if let Err(e) = control.signal("HUP").await {
                    tracing::debug!(error = %e, "could not hang up a terminal session");
                }
            });
        }
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
            "if [ -x '{0}' ]; then exec '{0}' -l; else exec /bin/sh -l; fi",
            spec.shell.replace('\'', "")
        );
        let exec = self
            .runtime
            .exec(
                &SpaceId::from(spec.space_id.as_str()),
                ExecRequest {
                    cmd: vec!["/bin/sh".to_owned(), "-c".to_owned(), script],
                    env: vec!["TERM=xterm-256color".to_owned()],
                    tty: true,
                    size: Some((spec.cols, spec.rows)),
                },
            )
            .await
            .map_err(|e| ApiError::unavailable(format!("cannot open a shell in the space: {e}")))?;
        let (mut output, mut input) = (exec.output, exec.input);

        let (input_tx, mut input_rx) = mpsc::channel::<bytes::Bytes>(INPUT_BACKLOG);
        let (events, _) = broadcast::channel(VIEWER_BACKLOG);
        let (to_screen, mut screen_inputs) = mpsc::channel(EMULATOR_BACKLOG);
        let (screen_done, on_screen) = tokio::sync::watch::channel(0u64);
        let session = Arc::new(Session {
            id: session_id.to_owned(),
            space_id: spec.space_id.clone(),
            control: exec.control,
            input: input_tx,
            events: events.clone(),
            numbered: AtomicU64::new(0),
            to_screen,
            on_screen,
            screen: Mutex::new(Screen {
                parser: Emulator::new(spec.rows, spec.cols, self.history_bytes),
                through: 0,
            }),
            viewers: Mutex::new(0),
        });

        tokio::spawn(async move {
            while let Some(data) = input_rx.recv().await {
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
            hub.sessions()
                .remove(&(reader.space_id.clone(), reader.id.clone()));
        });
        Ok(session)
    }
}
