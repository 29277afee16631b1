//! File transfer through Hangar's API against `docker cp` into and out of the same container,
//! in one run: MB/s up (`PUT` of a file vs `docker cp FILE c:PATH`) and down (`GET` of the
//! file vs `docker cp c:PATH -`, a tar to stdout), and the server's memory during the 1 GB
//! transfers. Goal: Hangar at ≥ 0.8× `docker cp` both ways, and memory that does not grow
//! with the file.
//! Run on demand: `cargo bench -p server --bench files` (needs the test image:
//! `scripts/images.sh test`, and ~2 GB free under `/var/tmp` and Docker's data root).
//!
//! Hangar runs as the real release `hangar` binary, a process of its own, so that its memory
//! can be read apart from this client's. Rounds alternate Hangar and `docker cp`, so that a
//! noisy neighbour hurts both alike; each figure is the median of the rounds.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Hangar, Session, Size, ADMIN_PASSWORD};
use futures_util::StreamExt;
use reqwest::header::CONTENT_LENGTH;
use reqwest::Method;
use serde_json::json;

const SIZE: Size<u64> = Size(1 << 30, 4 << 20);
const ROUNDS: Size<usize> = Size(3, 1);

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The server's highest RSS while `work` runs.
async fn peak_rss_during<T>(pid: u32, work: impl std::future::Future<Output = T>) -> (T, u64) {
    let peak = Arc::new(AtomicU64::new(rss_kib(pid)));
    let running = Arc::new(AtomicBool::new(true));
    let sampler = tokio::spawn({
        let (peak, running) = (peak.clone(), running.clone());
        async move {
            while running.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    });
    let out = work.await;
    running.store(false, Ordering::Relaxed);
    sampler.await.unwrap();
    (out, peak.load(Ordering::Relaxed))
}

fn mb_per_s(bytes: u64, took: Duration) -> f64 {
    bytes as f64 / 1e6 / took.as_secs_f64()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

/// A file of `SIZE` pseudo-random bytes (incompressible, as most uploads are).
fn make_source(path: &std::path::Path) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..SIZE.get() / block.len() as u64 {
        for word in block.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        file.write_all(&block).unwrap();
    }
    file.flush().unwrap();
}

fn docker(args: &[&str]) -> Duration {
    let started = Instant::now();
    let status = std::process::Command::new("docker")
        .args(args)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "docker {args:?}");
    started.elapsed()
}

/// The file at `source` as a body read 1 MiB at a time. `reqwest::Body::from(File)` reads 4 KiB
/// at a time, each read a trip to tokio's blocking pool: that client, not the server, capped
/// the upload near 90 MB/s, where `docker cp` reads with large buffers.
fn file_body(file: tokio::fs::File) -> reqwest::Body {
    use tokio::io::AsyncReadExt;
    let pieces = futures_util::stream::try_unfold(file, |mut file| async move {
        let mut piece = Vec::with_capacity(1 << 20);
        while piece.len() < piece.capacity() {
            if file.read_buf(&mut piece).await? == 0 {
                break;
            }
        }
        Ok::<_, std::io::Error>((!piece.is_empty()).then(|| (bytes::Bytes::from(piece), file)))
    });
    reqwest::Body::wrap_stream(pieces)
}

async fn hangar_up(admin: &Session, id: &str, source: &std::path::Path) -> Duration {
    let started = Instant::now();
    let file = tokio::fs::File::open(source).await.unwrap();
    let response = admin
        .request(
            Method::PUT,
            &format!("/api/v1/spaces/{id}/files?path=/home/dev/api.bin"),
        )
        .header(CONTENT_LENGTH, SIZE.get())
        .body(file_body(file))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
    started.elapsed()
}

async fn hangar_down(admin: &Session, id: &str) -> Duration {
    let started = Instant::now();
    let response = admin
        .request(
            Method::GET,
            &format!("/api/v1/spaces/{id}/files?path=/home/dev/api.bin"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut received = 0u64;
    while let Some(piece) = body.next().await {
        received += piece.unwrap().len() as u64;
    }
    assert_eq!(received, SIZE.get());
    started.elapsed()
}

/// An API call's JSON answer (`null` when there is none).
async fn call(
    admin: &Session,
    method: Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> serde_json::Value {
    let mut request = admin.request(method, path);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let text = request.send().await.unwrap().text().await.unwrap();
    serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(bench());
}

async fn bench() {
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let hangar = Hangar::start(&url).await;
    let pid = hangar.pid().unwrap();
    let admin = Session::new(&hangar.base, "admin", ADMIN_PASSWORD).await;
    let template = call(
        &admin,
        Method::POST,
        "/api/v1/templates",
        Some(json!({
            "name": "bench", "image": "hangar/busybox:test", "compute_units": 0,
            "features": ["file_transfer"],
            "volumes": [{"name": "home", "mount_path": "/home/dev", "size_gib": 4}],
        })),
    )
    .await;
    let space = call(
        &admin,
        Method::POST,
        "/api/v1/spaces",
        Some(json!({"name": "files", "template_id": template["id"]})),
    )
    .await;
    let id = space["id"].as_str().unwrap().to_owned();
    call(
        &admin,
        Method::POST,
        &format!("/api/v1/spaces/{id}/start"),
        None,
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while call(&admin, Method::GET, &format!("/api/v1/spaces/{id}"), None).await["state"]
        != "running"
    {
        assert!(Instant::now() < deadline, "the space did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let container = format!("hangar-{id}");
    let source = dir.path().join("source.bin");
    make_source(&source);
    let source_arg = source.to_str().unwrap().to_owned();

    let baseline_kib = rss_kib(pid);
    let (mut api_up, mut api_down, mut cp_up, mut cp_down) = (vec![], vec![], vec![], vec![]);
    let mut peak_kib = baseline_kib;
    for round in 0..ROUNDS.get() {
        let hangar_first = round % 2 == 0;
        for hangar_turn in [hangar_first, !hangar_first] {
            if hangar_turn {
                let (took, peak) = peak_rss_during(pid, hangar_up(&admin, &id, &source)).await;
                api_up.push(mb_per_s(SIZE.get(), took));
                peak_kib = peak_kib.max(peak);
                let (took, peak) = peak_rss_during(pid, hangar_down(&admin, &id)).await;
                api_down.push(mb_per_s(SIZE.get(), took));
                peak_kib = peak_kib.max(peak);
            } else {
                let took = docker(&["cp", &source_arg, &format!("{container}:/home/dev/cp.bin")]);
                cp_up.push(mb_per_s(SIZE.get(), took));
                let took = docker(&["cp", &format!("{container}:/home/dev/cp.bin"), "-"]);
                cp_down.push(mb_per_s(SIZE.get(), took));
            }
        }
    }
    let (api_up, api_down, cp_up, cp_down) = (
        median(api_up),
        median(api_down),
        median(cp_up),
        median(cp_down),
    );
    println!(
        "file transfer, {} MiB, median of {ROUNDS} rounds (release hangar, same container):",
        SIZE.get() >> 20
    );
    println!(
        "  {:<28} {:>10} {:>12} {:>8}",
        "", "Hangar", "docker cp", "ratio"
    );
    println!(
        "  {:<28} {:>7.0} MB/s {:>7.0} MB/s {:>7.2}x",
        "up (PUT vs docker cp in)",
        api_up,
        cp_up,
        api_up / cp_up
    );
    println!(
        "  {:<28} {:>7.0} MB/s {:>7.0} MB/s {:>7.2}x",
        "down (GET vs docker cp out)",
        api_down,
        cp_down,
        api_down / cp_down
    );
    println!(
        "  server RSS: {} MiB before, {} MiB at most during the transfers (+{} MiB)",
        baseline_kib / 1024,
        peak_kib / 1024,
        peak_kib.saturating_sub(baseline_kib) / 1024
    );
    println!("  goal: ratio ≥ 0.80 both ways");

    call(
        &admin,
        Method::DELETE,
        &format!("/api/v1/spaces/{id}"),
        None,
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !call(&admin, Method::GET, &format!("/api/v1/spaces/{id}"), None).await["error"]
        .is_object()
    {
        assert!(Instant::now() < deadline, "the space was not deleted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    hangar.stop().await;
}
