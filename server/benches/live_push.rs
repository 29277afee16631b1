//! Live push latency: from an admin's quota edit (`PATCH /api/v1/users/{id}`) to the matching
//! `quota` event on the edited user's `GET /api/v1/events` streams, with 1 and 50 subscribed
//! streams (all of that user: the most work per change for the server). Timed from just
//! before the request is sent and from when its response has come back (an event can arrive
//! before the response: that difference is then negative). With 50 streams, "all" is when the
//! last of them got it. On SQLite (one server), and on PostgreSQL with two servers on one
//! database (the change made through A, the streams served by B), when a PostgreSQL URL is
//! given: `cargo bench -p server --bench live_push -- postgres://…/postgres`, or
//! `HANGAR_TEST_POSTGRES_URL` (`scripts/postgres-up.sh` prints one).
//!
//! Hangar runs as the real release binary, a process of its own per server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use common::{ms, percentile, Hangar, Session, Size, ADMIN_PASSWORD, PASSWORD};
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::json;
use tokio::sync::mpsc;

const SAMPLES: Size<usize> = Size(300, 10);
const WARMUP: Size<usize> = Size(20, 3);
/// The same in a quick run: 50 streams of one user are what the caps must let through.
const SUBSCRIBERS: [usize; 2] = [1, 50];
/// One user's 50 streams: above the product's cap of live streams per user (20, one per open
/// page), which the hardening added after this bench.
const STREAM_CAP: (&str, &str) = ("HANGAR_LIVE_STREAMS_PER_USER", "100");
/// An event that takes longer than this counts as missed.
const EVENT_TIMEOUT: Duration = Duration::from_secs(5);
const GOAL: Duration = Duration::from_millis(200);

/// Each edit sets a value never used before, so that its event is told apart.
static NEXT_VALUE: AtomicI64 = AtomicI64::new(1000);

/// A `quota` event as one subscriber received it.
struct Arrival {
    subscriber: usize,
    compute_units: Option<i64>,
    at: Instant,
}

/// Opens one event stream and forwards its `quota` events, time-stamped on arrival.
async fn subscribe(
    session: &Session,
    subscriber: usize,
    arrivals: mpsc::UnboundedSender<Arrival>,
) -> tokio::task::JoinHandle<()> {
    let response = session
        .request(Method::GET, "/api/v1/events")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    tokio::spawn(async move {
        let mut stream = response.bytes_stream();
        let mut buffer = Vec::new();
        while let Some(Ok(chunk)) = stream.next().await {
            let at = Instant::now();
            buffer.extend_from_slice(&chunk);
            while let Some(end) = buffer.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = buffer.drain(..end + 2).collect();
                let block = String::from_utf8_lossy(&block);
                let mut name = "";
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim());
                    }
                }
                if name != "quota" {
                    continue;
                }
                let value: serde_json::Value = serde_json::from_str(&data).unwrap();
                let _ = arrivals.send(Arrival {
                    subscriber,
                    compute_units: value["quota"]["compute_units"].as_i64(),
                    at,
                });
            }
        }
    })
}

/// Signed milliseconds from `from` to `to`.
fn signed_ms(from: Instant, to: Instant) -> f64 {
    if to >= from {
        ms(to - from)
    } else {
        -ms(from - to)
    }
}

struct Row {
    setup: String,
    subscribers: usize,
    patch: Vec<f64>,
    send_first: Vec<f64>,
    response_first: Vec<f64>,
    send_all: Vec<f64>,
    response_all: Vec<f64>,
    missed: usize,
}

/// Takes the samples: `admin` edits `target`'s quota, `streams` sessions of `target` listen.
async fn run(
    setup: &str,
    admin: &Session,
    target_id: &str,
    target: &Session,
    streams: usize,
) -> Row {
    let (sender, mut arrivals) = mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for i in 0..streams {
        tasks.push(subscribe(target, i, sender.clone()).await);
    }
    // Every stream starts with the current quota.
    let mut opened = vec![false; streams];
    while opened.iter().any(|o| !o) {
        let arrival = tokio::time::timeout(EVENT_TIMEOUT, arrivals.recv())
            .await
            .expect("a stream sent no first quota event")
            .unwrap();
        opened[arrival.subscriber] = true;
    }

    let mut row = Row {
        setup: setup.to_owned(),
        subscribers: streams,
        patch: Vec::new(),
        send_first: Vec::new(),
        response_first: Vec::new(),
        send_all: Vec::new(),
        response_all: Vec::new(),
        missed: 0,
    };
    for k in 0..WARMUP.get() + SAMPLES.get() {
        let value = NEXT_VALUE.fetch_add(1, Ordering::Relaxed);
        let sent = Instant::now();
        let response = admin
            .request(Method::PATCH, &format!("/api/v1/users/{target_id}"))
            .json(&json!({ "compute_units": value }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
        let answered = Instant::now();
        let deadline = tokio::time::Instant::from_std(answered + EVENT_TIMEOUT);
        let mut seen: Vec<Option<Instant>> = vec![None; streams];
        let mut count = 0;
        while count < streams {
            match tokio::time::timeout_at(deadline, arrivals.recv()).await {
                Ok(Some(a)) if a.compute_units == Some(value) => {
                    if seen[a.subscriber].is_none() {
                        seen[a.subscriber] = Some(a.at);
                        count += 1;
                    }
                }
                Ok(Some(_)) => {}
                _ => break,
            }
        }
        if k < WARMUP.get() {
            continue;
        }
        if count < streams {
            row.missed += 1;
            continue;
        }
        let first = seen.iter().flatten().min().copied().unwrap();
        let last = seen.iter().flatten().max().copied().unwrap();
        row.patch.push(ms(answered - sent));
        row.send_first.push(ms(first - sent));
        row.response_first.push(signed_ms(answered, first));
        row.send_all.push(ms(last - sent));
        row.response_all.push(signed_ms(answered, last));
    }
    for task in tasks {
        task.abort();
    }
    row
}

/// Makes the user `ann` through `change_base` and signs in as admin there and as ann on
/// `listen_base`.
async fn setup(change_base: &str, listen_base: &str) -> (Session, String, Session) {
    let admin = Session::new(change_base, "admin", ADMIN_PASSWORD).await;
    let created = admin
        .request(Method::POST, "/api/v1/users")
        .json(&json!({"username": "ann", "password": PASSWORD, "compute_units": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let body: serde_json::Value = created.json().await.unwrap();
    let id = body["id"].as_str().unwrap().to_owned();
    let ann = Session::new(listen_base, "ann", PASSWORD).await;
    (admin, id, ann)
}

fn stats(samples: &[f64]) -> String {
    if samples.is_empty() {
        return format!("{:>25}", "-");
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    format!(
        "{:>7.2} {:>7.2} {:>8.2}",
        percentile(&sorted, 0.50),
        percentile(&sorted, 0.99),
        sorted[sorted.len() - 1]
    )
}

fn print(rows: &[Row]) {
    println!(
        "\nLive push latency: admin PATCH of a user's quota -> that user's `quota` SSE event \
         ({SAMPLES} samples after {WARMUP} warm-up, sequential; milliseconds, p50 / p99 / max)"
    );
    println!(
        "{:<34} {:>4} {:>17} | {:>25} | {:>25} | {:>25} | {:>25} | {:>6}",
        "setup",
        "subs",
        "PATCH p50 / p99",
        "send -> first event",
        "response -> first event",
        "send -> all streams",
        "response -> all streams",
        "missed"
    );
    for row in rows {
        let mut patch = row.patch.clone();
        patch.sort_by(f64::total_cmp);
        let patch = if patch.is_empty() {
            "-".to_owned()
        } else {
            format!(
                "{:.2} / {:.2}",
                percentile(&patch, 0.5),
                percentile(&patch, 0.99)
            )
        };
        println!(
            "{:<34} {:>4} {:>17} | {} | {} | {} | {} | {:>6}",
            row.setup,
            row.subscribers,
            patch,
            stats(&row.send_first),
            stats(&row.response_first),
            stats(&row.send_all),
            stats(&row.response_all),
            row.missed
        );
    }
    println!(
        "\nGoal: p99 < {} ms, send -> all streams:",
        GOAL.as_millis()
    );
    for row in rows {
        let mut all = row.send_all.clone();
        all.sort_by(f64::total_cmp);
        let verdict = match all.is_empty() {
            true => "no samples".to_owned(),
            false => {
                let p99 = percentile(&all, 0.99);
                let met = p99 < ms(GOAL) && row.missed == 0;
                format!(
                    "p99 {p99:.2} ms, {} missed: {}",
                    row.missed,
                    if met { "met" } else { "MISSED" }
                )
            }
        };
        println!(
            "  {:<34} {:>3} streams  {verdict}",
            row.setup, row.subscribers
        );
    }
}

async fn bench(postgres: Option<String>) {
    let mut rows = Vec::new();

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("live.db").display());
    let server = Hangar::start_with(&url, &[STREAM_CAP]).await;
    let (admin, ann_id, ann) = setup(&server.base, &server.base).await;
    for streams in SUBSCRIBERS {
        rows.push(run("SQLite, one server", &admin, &ann_id, &ann, streams).await);
    }
    server.stop().await;

    match postgres {
        Some(base_url) => {
            let url = common::fresh_postgres_database(&base_url).await;
            // One after the other: the first applies the migrations.
            let a = Hangar::start_with(&url, &[STREAM_CAP]).await;
            let b = Hangar::start_with(&url, &[STREAM_CAP]).await;
            let (admin, ann_id, ann_on_b) = setup(&a.base, &b.base).await;
            let ann_on_a = Session::new(&a.base, "ann", PASSWORD).await;
            for streams in SUBSCRIBERS {
                rows.push(
                    run(
                        "PostgreSQL, same server",
                        &admin,
                        &ann_id,
                        &ann_on_a,
                        streams,
                    )
                    .await,
                );
                rows.push(
                    run(
                        "PostgreSQL, edit on A, streams B",
                        &admin,
                        &ann_id,
                        &ann_on_b,
                        streams,
                    )
                    .await,
                );
            }
            a.stop().await;
            b.stop().await;
            common::drop_postgres_database(&base_url, &url).await;
        }
        None => println!(
            "PostgreSQL: skipped (pass a postgres:// URL after `--`, or set HANGAR_TEST_POSTGRES_URL; \
             scripts/postgres-up.sh starts one)"
        ),
    }
    print(&rows);
}

fn main() {
    // `cargo bench` passes `--bench`; a PostgreSQL URL may follow `--`.
    let postgres = std::env::args()
        .skip(1)
        .find(|a| a.starts_with("postgres"))
        .or_else(|| std::env::var("HANGAR_TEST_POSTGRES_URL").ok());
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(bench(postgres));
}
