//! The SSH gateway against raw Docker, in one run, with the real clients on both sides:
//! keystroke echo over `ssh -tt` vs `docker exec -it` (each on a pseudo-terminal of the
//! bench's own), `scp` of 200 MB up and down vs `docker cp`, and the server's memory per idle
//! SSH session (a shell with a terminal, nothing typed).
//! Run on demand: `cargo bench -p server --bench ssh` (needs the default image:
//! `scripts/images.sh default`, and the OpenSSH client).
//!
//! Hangar runs as the real release `hangar` binary, a process of its own, so that its memory
//! can be read from `/proc/<pid>/status`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Hangar, Session, Size, ADMIN_PASSWORD};
use serde_json::json;

const IMAGE: &str = "hangar/default:bookworm";
const ECHO_SAMPLES: Size<usize> = Size(400, 20);
const ECHO_WARMUP: Size<usize> = Size(30, 5);
/// Echo samples alternate in blocks (SSH, raw, SSH, ...) so a noisy neighbour hurts both.
const ECHO_BLOCK: Size<usize> = Size(50, 10);
const COPY_BYTES: Size<usize> = Size(200 * 1000 * 1000, 4_000_000);
/// Rounds alternate SSH and raw; ratios are the medians of the rounds'.
const COPY_ROUNDS: Size<usize> = Size(3, 1);
const IDLE_SESSIONS: Size<usize> = Size(200, 5);

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(bench());
}

/// A client program on a pseudo-terminal: bytes typed in, bytes shown out.
struct Tty {
    child: std::process::Child,
    master: std::fs::File,
    shown: mpsc::Receiver<Vec<u8>>,
}

impl Tty {
    /// Runs `program args` as the leader of a session whose terminal is a new one, 24×80.
    fn spawn(program: &str, args: &[String]) -> Tty {
        use rustix::fs::{Mode, OFlags};
        use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
        grantpt(&master).unwrap();
        unlockpt(&master).unwrap();
        let name = ptsname(&master, Vec::new()).unwrap();
        rustix::termios::tcsetwinsize(
            &master,
            rustix::termios::Winsize {
                ws_row: 24,
                ws_col: 80,
                ws_xpixel: 0,
                ws_ypixel: 0,
            },
        )
        .unwrap();
        let terminal = rustix::fs::open(
            name.as_c_str(),
            OFlags::RDWR | OFlags::NOCTTY,
            Mode::empty(),
        )
        .unwrap();
        let child = std::process::Command::new("setsid")
            .arg("-c")
            .arg(program)
            .args(args)
            .env("TERM", "xterm")
            .stdin(Stdio::from(terminal.try_clone().unwrap()))
            .stdout(Stdio::from(terminal.try_clone().unwrap()))
            .stderr(Stdio::from(terminal))
            .spawn()
            .unwrap();
        let master = std::fs::File::from(master);
        let mut reader = master.try_clone().unwrap();
        let (sender, shown) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n @ 1..) = reader.read(&mut buffer) {
                if sender.send(buffer[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Tty {
            child,
            master,
            shown,
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.master.write_all(bytes).unwrap();
    }

    /// Reads until `needle` shows (10 s at most).
    fn wait_for(&mut self, needle: &[u8]) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = Vec::new();
        while !seen.windows(needle.len()).any(|w| w == needle) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.shown.recv_timeout(left) {
                Ok(bytes) => seen.extend_from_slice(&bytes),
                Err(_) => panic!(
                    "never saw {:?}; saw {:?}",
                    String::from_utf8_lossy(needle),
                    String::from_utf8_lossy(&seen)
                ),
            }
        }
    }

    fn drain(&mut self, quiet: Duration) {
        while self.shown.recv_timeout(quiet).is_ok() {}
    }

    /// One keystroke: `a` typed, its echo seen; a backspace (untimed) empties the line again.
    fn keystroke(&mut self) -> Duration {
        let at = Instant::now();
        self.send(b"a");
        loop {
            match self.shown.recv_timeout(Duration::from_secs(10)) {
                Ok(bytes) if bytes.contains(&b'a') => break,
                Ok(_) => {}
                Err(_) => panic!("no echo of a keystroke within 10 s"),
            }
        }
        let took = at.elapsed();
        self.send(b"\x7f");
        let _ = self.shown.recv_timeout(Duration::from_secs(10));
        took
    }

    fn prepare(&mut self) {
        self.send(b"PS1='$ '\r");
        self.drain(Duration::from_millis(500));
        for _ in 0..ECHO_WARMUP.get() {
            self.keystroke();
        }
        self.drain(Duration::from_millis(100));
    }

    fn end(mut self) {
        self.send(b"exit\r");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
    }
}

/// The gateway's address, the key, and how to reach the space both ways.
struct Ctx {
    dir: tempfile::TempDir,
    port: u16,
    key: PathBuf,
    login: String,
    container: String,
}

impl Ctx {
    fn ssh_options(&self) -> Vec<String> {
        let mut options = vec!["-F".to_owned(), "/dev/null".to_owned(), "-i".to_owned()];
        options.push(self.key.display().to_string());
        for option in [
            "IdentitiesOnly=yes".to_owned(),
            "BatchMode=yes".to_owned(),
            format!(
                "UserKnownHostsFile={}",
                self.dir.path().join("known_hosts").display()
            ),
            "StrictHostKeyChecking=accept-new".to_owned(),
            "LogLevel=ERROR".to_owned(),
        ] {
            options.push("-o".to_owned());
            options.push(option);
        }
        options
    }

    fn ssh_tty(&self) -> Tty {
        let mut args = self.ssh_options();
        args.extend([
            "-tt".to_owned(),
            "-p".to_owned(),
            self.port.to_string(),
            format!("{}@127.0.0.1", self.login),
        ]);
        Tty::spawn("ssh", &args)
    }

    fn raw_tty(&self) -> Tty {
        let args = [
            "exec",
            "-it",
            "-e",
            "TERM=xterm",
            &self.container,
            "/bin/bash",
            "-l",
        ]
        .map(str::to_owned);
        Tty::spawn("docker", &args)
    }

    fn scp(&self, from: &str, to: &str) -> Duration {
        let at = Instant::now();
        let status = std::process::Command::new("scp")
            .args(self.ssh_options())
            .args(["-P", &self.port.to_string(), from, to])
            .status()
            .unwrap();
        assert!(status.success(), "scp {from} {to}");
        at.elapsed()
    }

    fn docker_cp(&self, from: &str, to: &str) -> Duration {
        let at = Instant::now();
        let status = std::process::Command::new("docker")
            .args(["cp", from, to])
            .status()
            .unwrap();
        assert!(status.success(), "docker cp {from} {to}");
        at.elapsed()
    }
}

fn percentile_ms(samples: &[Duration], q: f64) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort();
    common::ms(common::percentile(&sorted, q))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn echo(ctx: &Ctx) -> (Vec<Duration>, Vec<Duration>) {
    let mut ssh = ctx.ssh_tty();
    let mut raw = ctx.raw_tty();
    ssh.prepare();
    raw.prepare();
    let (mut s, mut r) = (Vec::new(), Vec::new());
    while s.len() < ECHO_SAMPLES.get() {
        for _ in 0..ECHO_BLOCK.get() {
            s.push(ssh.keystroke());
        }
        for _ in 0..ECHO_BLOCK.get() {
            r.push(raw.keystroke());
        }
    }
    ssh.end();
    raw.end();
    (s, r)
}

/// Seconds for each copy: (scp up, docker cp up, scp down, docker cp down), per round.
fn copies(ctx: &Ctx, file: &Path) -> Vec<[Duration; 4]> {
    let local = file.display().to_string();
    let back = ctx.dir.path().join("back.bin").display().to_string();
    let remote_ssh = format!("{}@127.0.0.1:/tmp/bench-scp.bin", ctx.login);
    let remote_raw = format!("{}:/tmp/bench-cp.bin", ctx.container);
    (0..COPY_ROUNDS.get())
        .map(|_| {
            let scp_up = ctx.scp(&local, &remote_ssh);
            let cp_up = ctx.docker_cp(&local, &remote_raw);
            let scp_down = ctx.scp(&remote_ssh, &back);
            let cp_down = ctx.docker_cp(&remote_raw, &back);
            [scp_up, cp_up, scp_down, cp_down]
        })
        .collect()
}

struct Memory {
    before_kb: u64,
    idle_kb: u64,
    after_kb: u64,
    open_seconds: f64,
}

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn idle_memory(ctx: &Ctx, pid: u32) -> Memory {
    // Warm up: a few sessions opened and ended, so that lazily made things exist already.
    for _ in 0..5 {
        let mut tty = ctx.ssh_tty();
        tty.wait_for(b"# ");
        tty.end();
    }
    std::thread::sleep(Duration::from_secs(1));
    let before_kb = rss_kb(pid);
    let at = Instant::now();
    let mut sessions = Vec::new();
    for _ in 0..IDLE_SESSIONS.get() {
        let mut tty = ctx.ssh_tty();
        tty.wait_for(b"# ");
        sessions.push(tty);
    }
    let open_seconds = at.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(3));
    let idle_kb = rss_kb(pid);
    for tty in sessions {
        tty.end();
    }
    std::thread::sleep(Duration::from_secs(3));
    Memory {
        before_kb,
        idle_kb,
        after_kb: rss_kb(pid),
        open_seconds,
    }
}

async fn bench() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    // As many connections as the idle phase opens, and more.
    let server = Hangar::start_with(
        &url,
        &[
            ("HANGAR_SSH_LISTEN", &listen),
            ("HANGAR_SSH_MAX_SESSIONS_PER_USER", "1000"),
        ],
    )
    .await;
    let admin = Session::new(&server.base, "admin", ADMIN_PASSWORD).await;
    let key = dir.path().join("key");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(made.success());
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let added = admin
        .request(reqwest::Method::POST, "/api/v1/me/ssh-keys")
        .json(&json!({"public_key": public}))
        .send()
        .await
        .unwrap();
    assert!(added.status().is_success());
    let id = common::running_space(
        &admin,
        json!({"name": "bench-ssh", "image": IMAGE, "shell": "/bin/bash", "compute_units": 0,
               "volumes": [], "features": ["terminal", "ssh"]}),
        "bench-ssh",
    )
    .await;
    let ctx = Ctx {
        dir,
        port,
        key,
        login: "bench-ssh".into(),
        container: hangar::runtime::container_name(&app::ids::SpaceId::from(id.as_str())),
    };
    let file = ctx.dir.path().join("payload.bin");
    {
        // Incompressible bytes, made quickly.
        let mut out = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut block = vec![0u8; 1 << 20];
        // Exactly COPY_BYTES (whole blocks alone made 190 MiB of the "200 MB").
        let mut left = COPY_BYTES.get();
        while left > 0 {
            for word in block.chunks_mut(8) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                word.copy_from_slice(&state.to_le_bytes()[..word.len()]);
            }
            let n = left.min(block.len());
            out.write_all(&block[..n]).unwrap();
            left -= n;
        }
    }
    let pid = server.pid().expect("the server runs");

    // The phases run on a thread of their own (they block on the clients).
    let outcome = tokio::task::spawn_blocking(move || {
        eprintln!("[ssh bench] {IDLE_SESSIONS} idle SSH sessions: server memory");
        let memory = idle_memory(&ctx, pid);
        eprintln!("[ssh bench] keystroke echo");
        let echo = echo(&ctx);
        eprintln!(
            "[ssh bench] {COPY_ROUNDS} rounds of {} MB up and down",
            COPY_BYTES.get() / 1_000_000
        );
        let copies = copies(&ctx, &file);
        (memory, echo, copies, ctx)
    })
    .await;
    let deleted = admin
        .request(reqwest::Method::DELETE, &format!("/api/v1/spaces/{id}"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success());
    tokio::time::sleep(Duration::from_secs(3)).await;
    server.stop().await;
    let (memory, echo, copies, _ctx) = match outcome {
        Ok(results) => results,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    };
    report(&memory, &echo, &copies, started.elapsed());
    if !deleted {
        println!("WARNING: could not delete space {id}; remove its container by hand");
    }
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "MISSED"
    }
}

fn report(
    memory: &Memory,
    (ssh, raw): &(Vec<Duration>, Vec<Duration>),
    copies: &[[Duration; 4]],
    took: Duration,
) {
    let (s50, s99, r50, r99) = (
        percentile_ms(ssh, 0.5),
        percentile_ms(ssh, 0.99),
        percentile_ms(raw, 0.5),
        percentile_ms(raw, 0.99),
    );
    let mb_s = |d: Duration| COPY_BYTES.get() as f64 / d.as_secs_f64() / 1e6;
    let up_ratio = median(copies.iter().map(|c| mb_s(c[0]) / mb_s(c[1])).collect());
    let down_ratio = median(copies.iter().map(|c| mb_s(c[2]) / mb_s(c[3])).collect());
    let column = |i: usize| median(copies.iter().map(|c| mb_s(c[i])).collect());
    let per_session =
        (memory.idle_kb as f64 - memory.before_kb as f64) / IDLE_SESSIONS.get() as f64;

    println!();
    println!(
        "SSH gateway: OpenSSH client -> Hangar (release binary) vs the docker CLI, same container"
    );
    println!("(hangar/default:bookworm, bash -l, 80x24), one run");
    println!();
    println!(
        "{:<42} {:>12} {:>12} {:>7}   goal",
        "", "ssh", "docker", "ratio"
    );
    println!(
        "{:<42} {:>9.3} ms {:>9.3} ms {:>6.2}x   (ssh -tt vs docker exec -it)",
        format!("keystroke echo p50 (n={} each)", ssh.len()),
        s50,
        r50,
        s50 / r50
    );
    println!(
        "{:<42} {:>9.3} ms {:>9.3} ms {:>6.2}x",
        "keystroke echo p99",
        s99,
        r99,
        s99 / r99
    );
    println!(
        "{:<42} {:>7.1} MB/s {:>7.1} MB/s {:>6.2}x   >= 0.80x  {}",
        format!(
            "{} MB up (scp vs docker cp, median of {COPY_ROUNDS})",
            COPY_BYTES.get() / 1_000_000
        ),
        column(0),
        column(1),
        up_ratio,
        verdict(up_ratio >= 0.8)
    );
    println!(
        "{:<42} {:>7.1} MB/s {:>7.1} MB/s {:>6.2}x   >= 0.80x  {}",
        format!(
            "{} MB down (scp vs docker cp)",
            COPY_BYTES.get() / 1_000_000
        ),
        column(2),
        column(3),
        down_ratio,
        verdict(down_ratio >= 0.8)
    );
    println!(
        "{:<42} {:>9.1} KB {:>12} {:>7}   < 250 KB  {}",
        format!("server RSS per idle SSH session ({IDLE_SESSIONS})"),
        per_session,
        "-",
        "",
        verdict(per_session < 250.0)
    );
    println!();
    println!("details:");
    let max = |v: &[Duration]| v.iter().max().map_or(0.0, |d| common::ms(*d));
    println!(
        "  echo max: ssh {:.3} ms, docker {:.3} ms",
        max(ssh),
        max(raw)
    );
    for (i, c) in copies.iter().enumerate() {
        println!(
            "  round {}: up scp {:.2} s, docker cp {:.2} s; down scp {:.2} s, docker cp {:.2} s",
            i + 1,
            c[0].as_secs_f64(),
            c[1].as_secs_f64(),
            c[2].as_secs_f64(),
            c[3].as_secs_f64()
        );
    }
    println!(
        "  memory: server VmRSS {} KB before, {} KB with {IDLE_SESSIONS} idle sessions (opened in {:.1} s), {} KB after they ended",
        memory.before_kb, memory.idle_kb, memory.open_seconds, memory.after_kb
    );
    println!("  run took {:.1} s", took.as_secs_f64());
}
