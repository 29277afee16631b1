//! The web terminal against a raw `docker exec` with a TTY into the same container, in one run:
//! keystroke echo round-trip, output throughput, echo under the load of 200 busy sessions, and
//! the server's memory per idle session (fresh, and after the session printed a screenful
//! or more). Details below the table: server CPU per 50 MB, what the terminal emulator alone
//! costs, whether memory comes back, and whether sessions whose viewers left without `exit`
//! really end after the idle time.
//! Run on demand: `cargo bench -p server --bench terminal` (needs the test image:
//! `scripts/images.sh test`).
//!
//! Hangar runs as the real release `hangar` binary (its allocator included), a process of its
//! own, so that its memory can be read from `/proc/<pid>/status` apart from the WebSocket
//! clients', and so that clients and server do not share one Tokio runtime.
//! The raw baseline is what the server does internally: `create_exec` + `start_exec` with a TTY
//! running the same login shell, driven by this process over Docker's socket.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, ResizeExecOptions, StartExecOptions, StartExecResults};
use bytes::Bytes;
use common::{Hangar, Size, ADMIN_PASSWORD};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, Stream, StreamExt};
use serde_json::json;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const IMAGE: &str = "hangar/busybox:test";
/// Seconds a session without viewers lives (the server's `--terminal-idle-secs`).
const IDLE_SECS: u64 = 2;

const ECHO_SAMPLES: Size<usize> = Size(500, 20);
const ECHO_WARMUP: Size<usize> = Size(50, 5);
/// Echo samples are taken in alternating blocks (Hangar, raw, Hangar, ...) so that a noisy
/// neighbour hurts both sides alike.
const ECHO_BLOCK: Size<usize> = Size(50, 10);
const THROUGHPUT_BYTES: Size<usize> = Size(50_000_000, 1_000_000);
/// Rounds alternate Hangar and raw; the ratio is the median of the rounds' ratios.
const THROUGHPUT_ROUNDS: Size<usize> = Size(5, 1);
const LOADED_SESSIONS: Size<usize> = Size(200, 10);
/// Lines of 80 bytes each loaded session prints every 100 ms (~40 KB/s).
const LOAD_LINES: usize = 50;
const IDLE_SESSIONS: Size<usize> = Size(1_000, 30);
const LEAK_SESSIONS: Size<usize> = Size(5, 2);
/// What the server sends first, and again when a viewer fell behind: a full redraw.
const SNAPSHOT_PREFIX: &[u8] = b"\x1b[H\x1b[2J";

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;
type Output = Pin<Box<dyn Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(bench());
}

// ---------------------------------------------------------------------------------------------
// The server process

/// The server process, as seen in `/proc`.
#[derive(Clone, Copy)]
struct Proc(u32);

impl Proc {
    /// A field of `/proc/<pid>/status`, as its first number (kB for the `Vm*` ones).
    fn status(self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.0)).unwrap();
        status
            .lines()
            .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    /// CPU time used so far (user + system, all threads), in seconds.
    fn cpu_seconds(self) -> f64 {
        common::cpu_seconds(Some(self.0))
    }

    fn open_fds(self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.0))
            .map(|dir| dir.count())
            .unwrap_or(0)
    }
}

// ---------------------------------------------------------------------------------------------
// Terminals: a Hangar WebSocket or a raw exec, driven the same way

enum Chunk {
    Data(Bytes),
    Control(String),
    Closed,
}

#[allow(clippy::large_enum_variant)]
enum Term {
    Hangar(Ws),
    Raw {
        input: Pin<Box<dyn AsyncWrite + Send>>,
        output: Output,
    },
}

impl Term {
    async fn send(&mut self, data: &[u8]) {
        match self {
            Term::Hangar(ws) => ws
                .send(Message::Binary(Bytes::copy_from_slice(data)))
                .await
                .unwrap(),
            Term::Raw { input, .. } => {
                input.write_all(data).await.unwrap();
                input.flush().await.unwrap();
            }
        }
    }

    async fn recv(&mut self) -> Chunk {
        match self {
            Term::Hangar(ws) => recv_ws(ws).await,
            Term::Raw { output, .. } => match output.next().await {
                Some(Ok(out)) => Chunk::Data(out.into_bytes()),
                _ => Chunk::Closed,
            },
        }
    }

    async fn recv_within(&mut self, limit: Duration) -> Option<Chunk> {
        tokio::time::timeout(limit, self.recv()).await.ok()
    }

    /// Reads until nothing came for `quiet`.
    async fn drain(&mut self, quiet: Duration) {
        while let Some(Chunk::Data(_) | Chunk::Control(_)) = self.recv_within(quiet).await {}
    }

    /// Reads until `needle` went by; after `limit` or if the terminal closed, says so with
    /// the last output seen (a shell's error names what went wrong).
    async fn wait_for(&mut self, needle: &[u8], limit: Duration) -> Result<(), String> {
        /// Output kept for the message: a few lines.
        const KEPT: usize = 400;
        let deadline = Instant::now() + limit;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ended = match self.recv_within(left).await {
                Some(Chunk::Data(data)) => {
                    seen.extend_from_slice(&data);
                    if find(&seen, needle).is_some() {
                        return Ok(());
                    }
                    seen.drain(..seen.len().saturating_sub(KEPT.max(needle.len())));
                    continue;
                }
                Some(Chunk::Control(_)) => continue,
                Some(Chunk::Closed) => "the terminal closed",
                None => "nothing more came",
            };
            return Err(format!(
                "{} before {:?} was seen; the last output: {:?}",
                ended,
                String::from_utf8_lossy(needle),
                String::from_utf8_lossy(&seen)
            ));
        }
    }

    /// Ends the shell (so that the session ends) and waits for it to go.
    async fn exit(mut self) {
        self.send(b"\x03\nexit\n").await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            match self.recv_within(Duration::from_secs(1)).await {
                Some(Chunk::Closed) => return,
                Some(Chunk::Control(text)) if text.contains("exit") => return,
                _ => {}
            }
        }
    }
}

async fn recv_ws(ws: &mut Ws) -> Chunk {
    loop {
        match ws.next().await {
            Some(Ok(Message::Binary(data))) => return Chunk::Data(data),
            Some(Ok(Message::Text(text))) => return Chunk::Control(text.to_string()),
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return Chunk::Closed,
            Some(Ok(_)) => {}
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

struct Ctx {
    addr: String,
    cookie: String,
    space: String,
    container: String,
    docker: bollard::Docker,
}

impl Ctx {
    /// A WebSocket to a new (or, with the same id, the same) Hangar session, after its first
    /// frame (the screen snapshot) arrived.
    async fn hangar_ws(&self, session: &str) -> Ws {
        let url = format!(
            "ws://{}/api/v1/spaces/{}/terminal?session={session}&cols=80&rows=24",
            self.addr, self.space
        );
        let mut request = url.into_client_request().unwrap();
        request
            .headers_mut()
            .insert("cookie", self.cookie.parse().unwrap());
        // Browsers disable Nagle on WebSockets; so do we.
        let (mut ws, _) = tokio_tungstenite::connect_async_with_config(request, None, true)
            .await
            .unwrap();
        match tokio::time::timeout(Duration::from_secs(60), recv_ws(&mut ws)).await {
            Ok(Chunk::Data(first)) => assert!(first.starts_with(SNAPSHOT_PREFIX)),
            _ => panic!("the terminal sent no screen"),
        }
        ws
    }

    async fn hangar(&self) -> Term {
        Term::Hangar(self.hangar_ws(&uuid::Uuid::new_v4().to_string()).await)
    }

    /// The raw baseline: what `TerminalHub::start` does, without Hangar around it.
    async fn raw(&self) -> Term {
        let script = "if [ -x '/bin/sh' ]; then exec '/bin/sh' -l; else exec /bin/sh -l; fi";
        let exec = self
            .docker
            .create_exec(
                &self.container,
                CreateExecOptions {
                    cmd: Some(vec!["/bin/sh".to_owned(), "-c".to_owned(), script.into()]),
                    env: Some(vec!["TERM=xterm-256color".to_owned()]),
                    attach_stdin: Some(true),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    tty: Some(true),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let started = self
            .docker
            .start_exec(
                &exec.id,
                Some(StartExecOptions {
                    detach: false,
                    tty: true,
                    ..Default::default()
                }),
            )
            .await
            .unwrap();
        let StartExecResults::Attached { output, input } = started else {
            panic!("docker exec did not attach");
        };
        self.docker
            .resize_exec(
                &exec.id,
                ResizeExecOptions {
                    height: 24,
                    width: 80,
                },
            )
            .await
            .unwrap();
        Term::Raw { input, output }
    }

    /// Processes in the space's container running a login shell (one per live session).
    async fn login_shells(&self) -> usize {
        let top = self
            .docker
            .top_processes(&self.container, None)
            .await
            .unwrap();
        let column = top
            .titles
            .unwrap_or_default()
            .iter()
            .position(|t| t == "CMD" || t == "COMMAND")
            .unwrap_or(usize::MAX);
        top.processes
            .unwrap_or_default()
            .iter()
            .filter(|p| p.get(column).is_some_and(|cmd| cmd.ends_with("sh -l")))
            .count()
    }
}

// ---------------------------------------------------------------------------------------------
// Measurements

fn percentile(samples: &[Duration], p: f64) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1e3
}

/// One keystroke: `a` goes in, the shell's echo of it comes back. A backspace (untimed) keeps
/// the line empty between samples; its echo holds no `a`.
async fn keystroke(term: &mut Term) -> Duration {
    let at = Instant::now();
    term.send(b"a").await;
    loop {
        match term.recv_within(Duration::from_secs(10)).await {
            Some(Chunk::Data(data)) if data.contains(&b'a') => break,
            Some(Chunk::Data(_) | Chunk::Control(_)) => {}
            Some(Chunk::Closed) | None => panic!("no echo of a keystroke within 10 s"),
        }
    }
    let took = at.elapsed();
    term.send(b"\x7f").await;
    match term.recv_within(Duration::from_secs(10)).await {
        Some(Chunk::Data(_) | Chunk::Control(_)) => {}
        _ => panic!("no echo of a backspace within 10 s"),
    }
    took
}

async fn prepare_prompt(term: &mut Term) {
    // A short prompt without the letter `a`, then a quiet line.
    term.send(b"PS1='$ '\n").await;
    term.drain(Duration::from_millis(300)).await;
    for _ in 0..ECHO_WARMUP.get() {
        keystroke(term).await;
    }
    term.drain(Duration::from_millis(100)).await;
}

/// Echo samples on both terminals, alternating blocks.
async fn echo_both(hangar: &mut Term, raw: &mut Term) -> (Vec<Duration>, Vec<Duration>) {
    prepare_prompt(hangar).await;
    prepare_prompt(raw).await;
    let (mut h, mut r) = (Vec::new(), Vec::new());
    while h.len() < ECHO_SAMPLES.get() {
        for _ in 0..ECHO_BLOCK.get() {
            h.push(keystroke(hangar).await);
        }
        for _ in 0..ECHO_BLOCK.get() {
            r.push(keystroke(raw).await);
        }
    }
    (h, r)
}

struct Throughput {
    seconds: f64,
    received: usize,
    frames: usize,
    redraws: usize,
    server_cpu: f64,
}

/// Prints THROUGHPUT_BYTES of `a` and times it until the end marker arrives.
async fn throughput(term: &mut Term, server: Proc) -> Throughput {
    term.drain(Duration::from_millis(200)).await;
    // The marker is computed by the shell, so the echoed command line does not contain it.
    let command =
        format!("head -c {THROUGHPUT_BYTES} /dev/zero | tr '\\000' a; echo END-$((6*7))-MARK\n");
    let marker = b"END-42-MARK";
    let (at, cpu) = (Instant::now(), server.cpu_seconds());
    term.send(command.as_bytes()).await;
    let (mut received, mut frames, mut redraws) = (0, 0, 0);
    let mut tail: Vec<u8> = Vec::new();
    loop {
        match term.recv_within(Duration::from_secs(120)).await {
            Some(Chunk::Data(data)) => {
                received += data.len();
                frames += 1;
                if data.starts_with(SNAPSHOT_PREFIX) {
                    redraws += 1;
                }
                // A redraw holds the whole screen; elsewhere the marker ends the output.
                let from = if data.starts_with(SNAPSHOT_PREFIX) {
                    0
                } else {
                    data.len().saturating_sub(256)
                };
                tail.extend_from_slice(&data[from..]);
                if find(&tail, marker).is_some() {
                    break;
                }
                tail.drain(..tail.len().saturating_sub(marker.len()));
            }
            Some(Chunk::Control(_)) => {}
            Some(Chunk::Closed) | None => panic!("the output never ended"),
        }
    }
    let (seconds, server_cpu) = (at.elapsed().as_secs_f64(), server.cpu_seconds() - cpu);
    term.drain(Duration::from_millis(200)).await;
    Throughput {
        seconds,
        received,
        frames,
        redraws,
        server_cpu,
    }
}

/// What the terminal emulator alone costs for the throughput payload, 8 KB chunks (about the
/// frames seen): vt100 parsing every byte, and Hangar's emulator (vt100 plus skipping what
/// scrolls past unseen), in MB/s.
fn emulator_mb_s() -> (f64, f64) {
    let chunk = vec![b'a'; 8192];
    let rounds = THROUGHPUT_BYTES.get() / chunk.len();
    let bytes = (rounds * chunk.len()) as f64;
    let size = |n| std::num::NonZeroU16::new(n).unwrap();
    let mut parser = vt100::Parser::new(size(24), size(80), 0);
    let at = Instant::now();
    for _ in 0..rounds {
        parser.process(&chunk);
    }
    let plain = bytes / at.elapsed().as_secs_f64() / 1e6;
    let mut emulator =
        hangar::terminal::emulator::Emulator::new(24, 80, HISTORY_KIB as usize * 1024);
    let at = Instant::now();
    for _ in 0..rounds {
        emulator.process(&chunk);
    }
    (plain, bytes / at.elapsed().as_secs_f64() / 1e6)
}

#[derive(Default)]
struct LoadCounters {
    bytes: AtomicU64,
    redraws: AtomicU64,
}

/// Opens `n` WebSockets to new sessions, `parallel` at a time.
async fn open_many(ctx: &Arc<Ctx>, n: usize, parallel: usize) -> Vec<Ws> {
    futures_util::stream::iter(0..n)
        .map(|_| {
            let ctx = ctx.clone();
            async move { ctx.hangar_ws(&uuid::Uuid::new_v4().to_string()).await }
        })
        .buffer_unordered(parallel)
        .collect()
        .await
}

/// Sends `exit` to every socket and waits until each closed.
async fn exit_many(sockets: Vec<Ws>) {
    exit_terms(sockets.into_iter().map(Term::Hangar).collect()).await;
}

async fn exit_terms(terms: Vec<Term>) {
    futures_util::stream::iter(terms)
        .map(Term::exit)
        .buffer_unordered(64)
        .collect::<Vec<()>>()
        .await;
}

async fn wait_for_shells(ctx: &Ctx, at_most: usize, limit: Duration) -> usize {
    let deadline = Instant::now() + limit;
    loop {
        let shells = ctx.login_shells().await;
        if shells <= at_most || Instant::now() > deadline {
            return shells;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

struct Memory {
    before_kb: u64,
    idle_kb: u64,
    full_kb: u64,
    closed_kb: u64,
    again_kb: u64,
    fds_before: usize,
    fds_idle: usize,
    threads: u64,
    open_seconds: f64,
}

/// Sessions that filled their scrollback (of the first `FULL_SESSIONS` idle ones).
const FULL_SESSIONS: Size<usize> = Size(100, 10);
const FULL_LINES: usize = 1_100;
/// The server's history per session (`--terminal-scrollback-kib`, its default): the 1,100
/// lines of 81 bytes fill it.
const HISTORY_KIB: u32 = 64;

async fn idle_memory(ctx: &Arc<Ctx>, server: Proc) -> Memory {
    // Warm up: a few sessions opened and ended, so that lazily made things exist already.
    let warm = open_many(ctx, 20, 10).await;
    exit_many(warm).await;
    wait_for_shells(ctx, 0, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (before_kb, fds_before) = (server.status("VmRSS"), server.open_fds());
    let at = Instant::now();
    let sockets = open_many(ctx, IDLE_SESSIONS.get(), 16).await;
    let open_seconds = at.elapsed().as_secs_f64();
    // Let every prompt arrive and settle.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (idle_kb, fds_idle, threads) = (
        server.status("VmRSS"),
        server.open_fds(),
        server.status("Threads"),
    );

    // Some of them print more than a screen, then sit idle again: what the server keeps of
    // a session that was used.
    let line = "c".repeat(79);
    let command = format!("yes {line} | head -n {FULL_LINES}; echo FULL-$((6*7))-MARK\n");
    let mut terms: Vec<Term> = sockets.into_iter().map(Term::Hangar).collect();
    let rest = terms.split_off(FULL_SESSIONS.get());
    let full: Vec<Term> = futures_util::stream::iter(terms)
        .map(|mut term| {
            let command = command.clone();
            async move {
                term.send(command.as_bytes()).await;
                if let Err(failed) = term
                    .wait_for(b"FULL-42-MARK", Duration::from_secs(120))
                    .await
                {
                    panic!("a session printing {FULL_LINES} lines: {failed}");
                }
                term
            }
        })
        .buffer_unordered(20)
        .collect()
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let full_kb = server.status("VmRSS");
    exit_terms(full.into_iter().chain(rest).collect()).await;
    wait_for_shells(ctx, 0, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let closed_kb = server.status("VmRSS");

    // The same again: memory that comes back is reused, memory that was lost grows again.
    let sockets = open_many(ctx, IDLE_SESSIONS.get(), 16).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let again_kb = server.status("VmRSS");
    exit_many(sockets).await;
    wait_for_shells(ctx, 0, Duration::from_secs(60)).await;
    Memory {
        before_kb,
        idle_kb,
        full_kb,
        closed_kb,
        again_kb,
        fds_before,
        fds_idle,
        threads,
        open_seconds,
    }
}

struct Load {
    hangar: Vec<Duration>,
    raw: Vec<Duration>,
    per_session_kb_s: f64,
    total_mb_s: f64,
    redraws: u64,
}

async fn echo_under_load(ctx: &Arc<Ctx>) -> Load {
    let mut hangar = ctx.hangar().await;
    let mut raw = ctx.raw().await;
    let sockets = open_many(ctx, LOADED_SESSIONS.get(), 16).await;
    let counters = Arc::new(LoadCounters::default());
    let line = "b".repeat(79);
    let command = format!(
        "s=$(yes {line} | head -n {LOAD_LINES}); while :; do echo \"$s\"; read -t 0.1 x; done\n"
    );
    let mut sinks: Vec<SplitSink<Ws, Message>> = Vec::new();
    let mut readers = Vec::new();
    for ws in sockets {
        let (mut sink, mut stream) = ws.split();
        sink.send(Message::Binary(Bytes::from(command.clone())))
            .await
            .unwrap();
        sinks.push(sink);
        let counters = counters.clone();
        readers.push(tokio::spawn(async move {
            while let Some(message) = stream.next().await {
                match message {
                    Ok(Message::Binary(data)) => {
                        if data.starts_with(SNAPSHOT_PREFIX) {
                            counters.redraws.fetch_add(1, Ordering::Relaxed);
                        }
                        counters
                            .bytes
                            .fetch_add(data.len() as u64, Ordering::Relaxed);
                    }
                    Ok(Message::Text(text)) if text.contains("exit") => break,
                    Ok(Message::Close(_)) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        }));
    }
    // Let the load reach its pace.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (bytes0, redraws0, at) = (
        counters.bytes.load(Ordering::Relaxed),
        counters.redraws.load(Ordering::Relaxed),
        Instant::now(),
    );
    let (h, r) = echo_both(&mut hangar, &mut raw).await;
    let seconds = at.elapsed().as_secs_f64();
    let bytes = counters.bytes.load(Ordering::Relaxed) - bytes0;
    let redraws = counters.redraws.load(Ordering::Relaxed) - redraws0;

    // Stop the loops (Ctrl-C) and end the shells.
    futures_util::stream::iter(sinks.iter_mut())
        .for_each_concurrent(64, |sink| async move {
            let _ = sink
                .send(Message::Binary(Bytes::from_static(b"\x03")))
                .await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            let _ = sink
                .send(Message::Binary(Bytes::from_static(b"\x03\nexit\n")))
                .await;
        })
        .await;
    for reader in readers {
        let _ = tokio::time::timeout(Duration::from_secs(20), reader).await;
    }
    drop(sinks);
    hangar.exit().await;
    raw.exit().await;
    wait_for_shells(ctx, 0, Duration::from_secs(60)).await;
    Load {
        hangar: h,
        raw: r,
        per_session_kb_s: bytes as f64 / seconds / LOADED_SESSIONS.get() as f64 / 1e3,
        total_mb_s: bytes as f64 / seconds / 1e6,
        redraws,
    }
}

struct IdleEnd {
    other_shells: usize,
    left_running: usize,
    raw_output_ended: bool,
    raw_left_running: bool,
}

/// Viewers that disconnect without `exit`: after the idle time, their shells should be gone.
/// And, for comparison, what closing a raw exec's stdin does to its shell.
async fn idle_end(ctx: &Arc<Ctx>) -> IdleEnd {
    let other_shells = ctx.login_shells().await;
    let sockets = open_many(ctx, LEAK_SESSIONS.get(), LEAK_SESSIONS.get()).await;
    drop(sockets);
    tokio::time::sleep(Duration::from_secs(IDLE_SECS + 5)).await;
    let left_running = ctx.login_shells().await.saturating_sub(other_shells);

    let before = ctx.login_shells().await;
    let mut raw = ctx.raw().await;
    raw.drain(Duration::from_millis(300)).await;
    let Term::Raw { mut input, output } = raw else {
        unreachable!()
    };
    input.shutdown().await.unwrap();
    let mut raw = Term::Raw { input, output };
    let mut raw_output_ended = false;
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if let Some(Chunk::Closed) = raw.recv_within(Duration::from_millis(500)).await {
            raw_output_ended = true;
            break;
        }
    }
    drop(raw);
    tokio::time::sleep(Duration::from_secs(2)).await;
    IdleEnd {
        other_shells,
        left_running,
        raw_output_ended,
        raw_left_running: ctx.login_shells().await > before,
    }
}

// ---------------------------------------------------------------------------------------------
// The run

struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    async fn post(&self, path: &str, body: serde_json::Value) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.base))
            .header("origin", &self.base)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn space(&self, id: &str) -> serde_json::Value {
        self.client
            .get(format!("{}/api/v1/spaces/{id}", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn delete_space(&self, id: &str) -> bool {
        self.client
            .delete(format!("{}/api/v1/spaces/{id}", self.base))
            .header("origin", &self.base)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    }
}

struct Results {
    emulator: (f64, f64),
    echo: (Vec<Duration>, Vec<Duration>),
    throughput: Vec<(Throughput, Throughput)>,
    load: Load,
    memory: Memory,
    leak: IdleEnd,
}

async fn phases(ctx: Arc<Ctx>, server: Proc) -> Results {
    // Memory first, on a fresh server: freed memory of earlier phases would hide the cost.
    eprintln!("[terminal bench] {IDLE_SESSIONS} idle sessions: server memory");
    let memory = idle_memory(&ctx, server).await;
    eprintln!("[terminal bench] keystroke echo and throughput");

    let mut hangar = ctx.hangar().await;
    let mut raw = ctx.raw().await;
    let echo = echo_both(&mut hangar, &mut raw).await;
    let mut throughputs = Vec::new();
    for _ in 0..THROUGHPUT_ROUNDS.get() {
        let h = throughput(&mut hangar, server).await;
        let r = throughput(&mut raw, server).await;
        throughputs.push((h, r));
    }
    hangar.exit().await;
    raw.exit().await;
    wait_for_shells(&ctx, 0, Duration::from_secs(30)).await;
    let emulator = emulator_mb_s();

    eprintln!("[terminal bench] echo under the load of {LOADED_SESSIONS} busy sessions");
    let load = echo_under_load(&ctx).await;
    eprintln!("[terminal bench] sessions left without exit");
    let leak = idle_end(&ctx).await;
    Results {
        emulator,
        echo,
        throughput: throughputs,
        load,
        memory,
        leak,
    }
}

async fn bench() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let idle = IDLE_SECS.to_string();
    let history = HISTORY_KIB.to_string();
    let server = Hangar::start_with(
        &url,
        &[
            ("HANGAR_TERMINAL_IDLE_SECS", &idle),
            ("HANGAR_TERMINAL_SCROLLBACK_KIB", &history),
            // The bench opens 1,000 sessions of one user in one space: caps above that (the
            // product's defaults are 10 per user and 20 per space).
            ("HANGAR_TERMINAL_SESSIONS_PER_USER", "5000"),
            ("HANGAR_TERMINAL_SESSIONS_PER_SPACE", "5000"),
            // Each session is a shell, a process in the space's container, whose pids are
            // capped (1,024 per compute unit by default): 1,000 idle shells left 22 pids, and
            // 20 sessions running `yes | head` at once could not fork ("can't fork").
            ("HANGAR_PIDS_PER_CU", "4096"),
        ],
    )
    .await;
    let base = server.base.clone();
    let api = Api {
        client: reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .unwrap(),
        base: base.clone(),
    };
    let login = api
        .post(
            "/api/v1/auth/login",
            json!({"username": "admin", "password": ADMIN_PASSWORD}),
        )
        .await;
    assert!(login.status().is_success());
    let cookie = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("hangar_session="))
        .and_then(|v| v.split(';').next())
        .expect("login sets the session cookie")
        .to_owned();
    let template: serde_json::Value = api
        .post(
            "/api/v1/templates",
            json!({"name": "bench-terminal", "image": IMAGE, "compute_units": 1, "volumes": []}),
        )
        .await
        .json()
        .await
        .unwrap();
    let space: serde_json::Value = api
        .post(
            "/api/v1/spaces",
            json!({"name": "bench-terminal", "template_id": template["id"]}),
        )
        .await
        .json()
        .await
        .unwrap();
    let id = space["id"]
        .as_str()
        .expect("the space was created")
        .to_owned();
    assert_eq!(
        api.post(&format!("/api/v1/spaces/{id}/start"), json!({}))
            .await
            .status(),
        202
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let space = api.space(&id).await;
        if space["state"] == "running" {
            break;
        }
        if Instant::now() > deadline || space["state"] == "error" {
            api.delete_space(&id).await;
            server.stop().await;
            panic!("the space did not start: {space}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ctx = Arc::new(Ctx {
        addr: server.addr().to_owned(),
        cookie,
        space: id.clone(),
        container: hangar::runtime::container_name(&app::ids::SpaceId::from(id.as_str())),
        docker: bollard::Docker::connect_with_local_defaults().unwrap(),
    });

    // Phases run in a task so that a panic still deletes the space below.
    let proc = Proc(server.pid().expect("the server runs"));
    let outcome = tokio::spawn(phases(ctx.clone(), proc)).await;
    let deleted = api.delete_space(&id).await;
    if deleted {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline
            && ctx
                .docker
                .inspect_container(&ctx.container, None)
                .await
                .is_ok()
        {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    server.stop().await;
    let results = match outcome {
        Ok(results) => results,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    };
    report(&results, started.elapsed());
    if !deleted {
        println!(
            "WARNING: could not delete space {id}; remove container {} by hand",
            ctx.container
        );
    }
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "MISSED"
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn report(results: &Results, took: Duration) {
    let (h, r) = &results.echo;
    let (h50, h99, r50, r99) = (
        percentile(h, 0.5),
        percentile(h, 0.99),
        percentile(r, 0.5),
        percentile(r, 0.99),
    );
    let mb_s = |t: &Throughput| THROUGHPUT_BYTES.get() as f64 / t.seconds / 1e6;
    let th = median(results.throughput.iter().map(|(h, _)| mb_s(h)).collect());
    let tr = median(results.throughput.iter().map(|(_, r)| mb_s(r)).collect());
    let ratio = median(
        results
            .throughput
            .iter()
            .map(|(h, r)| mb_s(h) / mb_s(r))
            .collect(),
    );
    let load = &results.load;
    let (l50, l99, lr50, lr99) = (
        percentile(&load.hangar, 0.5),
        percentile(&load.hangar, 0.99),
        percentile(&load.raw, 0.5),
        percentile(&load.raw, 0.99),
    );
    let m = &results.memory;
    let per_session = (m.idle_kb as f64 - m.before_kb as f64) / IDLE_SESSIONS.get() as f64;
    let per_full = (m.full_kb as f64 - m.idle_kb as f64) / FULL_SESSIONS.get() as f64;

    println!();
    println!("web terminal: Hangar (WebSocket, separate server process) vs raw docker exec -t");
    println!("same container (hangar/busybox:test, 1 CU), `sh -l`, 80x24, one run");
    println!();
    println!(
        "{:<42} {:>12} {:>12} {:>7}   goal",
        "", "hangar", "raw exec", "ratio"
    );
    println!(
        "{:<42} {:>9.3} ms {:>9.3} ms {:>6.2}x   overhead <= 1 ms: {:+.3} ms  {}",
        format!("keystroke echo p50 (n={} each)", h.len()),
        h50,
        r50,
        h50 / r50,
        h50 - r50,
        verdict(h50 - r50 <= 1.0)
    );
    println!(
        "{:<42} {:>9.3} ms {:>9.3} ms {:>6.2}x   (overhead {:+.3} ms)",
        "keystroke echo p99",
        h99,
        r99,
        h99 / r99,
        h99 - r99
    );
    println!(
        "{:<42} {:>7.1} MB/s {:>7.1} MB/s {:>6.2}x   >= 0.80x raw  {}  (ratio: median of the rounds')",
        format!(
            "output throughput (median of {THROUGHPUT_ROUNDS} x {} MB)",
            THROUGHPUT_BYTES.get() / 1_000_000
        ),
        th,
        tr,
        ratio,
        verdict(ratio >= 0.8)
    );
    println!(
        "{:<42} {:>9.3} ms {:>9.3} ms {:>6.2}x",
        format!("echo p50, {LOADED_SESSIONS} sessions x ~40 KB/s running"),
        l50,
        lr50,
        l50 / lr50
    );
    println!(
        "{:<42} {:>9.3} ms {:>9.3} ms {:>6.2}x   (unloaded hangar p99: {:.3} ms)",
        format!("echo p99, {LOADED_SESSIONS} sessions x ~40 KB/s running"),
        l99,
        lr99,
        l99 / lr99,
        h99
    );
    println!(
        "{:<42} {:>9.1} KB {:>12} {:>7}   < 250 KB  {}",
        format!("server RSS per idle session ({IDLE_SESSIONS})"),
        per_session,
        "-",
        "",
        verdict(per_session < 250.0)
    );
    // A used session keeps a full history of lines that scrolled off (its own bytes, by
    // design); the goal is what it costs beyond them.
    let beyond_history = per_session + per_full - HISTORY_KIB as f64;
    println!(
        "{:<42} {:>9.1} KB {:>12} {:>7}   < 250 KB  (history included)",
        format!("  same, after printing {FULL_LINES} lines ({FULL_SESSIONS})"),
        per_session + per_full,
        "-",
        "",
    );
    println!(
        "{:<42} {:>9.1} KB {:>12} {:>7}   < 250 KB  {}",
        format!("  of which beyond its {HISTORY_KIB} KiB of history"),
        beyond_history,
        "-",
        "",
        verdict(beyond_history < 250.0)
    );
    println!();
    println!("details:");
    let max = |v: &[Duration]| v.iter().max().map_or(0.0, |d| d.as_secs_f64() * 1e3);
    println!(
        "  echo max: hangar {:.3} ms, raw {:.3} ms; under load: hangar {:.3} ms, raw {:.3} ms",
        max(h),
        max(r),
        max(&load.hangar),
        max(&load.raw)
    );
    for (i, (h, r)) in results.throughput.iter().enumerate() {
        println!(
            "  throughput round {}: {:.2}x, hangar {:.1} MB/s ({:.2} s, {:.1}% of the bytes, {} frames of {:.0} B avg, {} redraws, server CPU {:.2} s), raw {:.1} MB/s ({:.2} s, {} chunks of {:.0} B avg)",
            i + 1,
            mb_s(h) / mb_s(r),
            mb_s(h),
            h.seconds,
            h.received as f64 * 100.0 / THROUGHPUT_BYTES.get() as f64,
            h.frames,
            h.received as f64 / h.frames as f64,
            h.redraws,
            h.server_cpu,
            mb_s(r),
            r.seconds,
            r.frames,
            r.received as f64 / r.frames as f64,
        );
    }
    println!(
        "  throughput: the emulator alone (8 KB chunks, in this process): vt100 parsing every byte {:.1} MB/s, Hangar's (skipping what scrolls past unseen) {:.1} MB/s",
        results.emulator.0, results.emulator.1
    );
    println!(
        "  load: {:.1} KB/s per session received ({:.2} MB/s in all) while measuring; {} redraws (viewers that lagged and lost output)",
        load.per_session_kb_s, load.total_mb_s, load.redraws
    );
    println!(
        "  memory: server VmRSS {} KB before, {} KB with {IDLE_SESSIONS} idle sessions (fds {} -> {}, {} threads, opened in {:.1} s)",
        m.before_kb, m.idle_kb, m.fds_before, m.fds_idle, m.threads, m.open_seconds
    );
    println!(
        "  memory: {} KB after {FULL_SESSIONS} of them printed {FULL_LINES} lines: {:+.0} KB per used idle session",
        m.full_kb, per_full
    );
    println!(
        "  memory: {} KB after all ended, {} KB with {IDLE_SESSIONS} new idle sessions ({:+.1} KB per session the second time)",
        m.closed_kb,
        m.again_kb,
        (m.again_kb as f64 - m.closed_kb as f64) / IDLE_SESSIONS.get() as f64
    );
    let leak = &results.leak;
    println!(
        "  idle end: {} of {LEAK_SESSIONS} shells still running {} s after their viewers left without exit (idle timeout {IDLE_SECS} s; {} other login shells)",
        leak.left_running,
        IDLE_SECS + 5,
        leak.other_shells
    );
    println!(
        "  raw exec with its stdin closed: output {}, shell {}",
        if leak.raw_output_ended {
            "ended"
        } else {
            "went on"
        },
        if leak.raw_left_running {
            "still running"
        } else {
            "gone"
        }
    );
    println!("  run took {:.1} s", took.as_secs_f64());
}
