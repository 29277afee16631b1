//! The server-rendered dashboard under open-loop load: `GET /` as a signed-in user (10 own
//! spaces) of a SQLite database seeded with 1,000 users and 10,000 spaces, sent at a fixed
//! 500 requests a second for 20 s after a 5 s warm-up, with `GET /healthz` driven the same way
//! as the raw baseline. Run on demand: `cargo bench -p server --bench ssr_load`.
//!
//! Open loop: a thread sends each request at its slot of a fixed timetable whether or not the
//! earlier ones have been answered, and latency counts from the slot, not from the actual
//! send, so a server (or client) that falls behind shows in the figures instead of slowing
//! the load (no coordinated omission). Hangar runs as the real release binary, a process of
//! its own; this process is the load generator (on the same machine: both share its cores).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{cpu_seconds, ms, percentile, Hangar, Size, PASSWORD};
use reqwest::header::{ACCEPT, COOKIE};

const USERS: Size<usize> = Size(1_000, 50);
const SPACES_PER_USER: usize = 10;
/// The signed-in user: `user500`, "User 500", spaces `user500-space0`… .
const BENCH_USER: Size<usize> = Size(500, 25);
const RATE: Size<u32> = Size(500, 50);
const WARMUP: Size<Duration> = Size(Duration::from_secs(5), Duration::from_secs(1));
const MEASURE: Size<Duration> = Size(Duration::from_secs(20), Duration::from_secs(1));
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Rates the dashboard is also driven at when it misses the goal at [`RATE`].
const LOWER_RATES: Size<&[u32]> = Size(&[250, 100, 50], &[25]);
/// Rates it is also driven at when it meets the goal, to show the room left.
const HIGHER_RATES: Size<&[u32]> = Size(&[650, 800], &[80]);
/// Requests of the sequential (closed-loop) measurement before the load.
const SEQUENTIAL: Size<usize> = Size(300, 10);
const GOAL_P99: Duration = Duration::from_millis(20);

struct Sample {
    /// Slot in the timetable.
    slot: u64,
    done: Instant,
    /// From the slot's time to the whole body read.
    latency: Duration,
    /// None when answered as expected, else what went wrong.
    error: Option<String>,
}

type Check = Arc<dyn Fn(&[u8]) -> bool + Send + Sync>;

struct Outcome {
    name: String,
    rate: u32,
    sent: usize,
    answered: Vec<Duration>,
    errors: usize,
    error_kinds: Vec<(String, usize)>,
    achieved_rps: f64,
    server_cpu: f64,
}

fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        format!("timeout ({} s)", REQUEST_TIMEOUT.as_secs())
    } else if error.is_connect() {
        "cannot connect".to_owned()
    } else {
        format!("transport: {error}")
    }
}

/// Waits (a minute at most) until the server is idle: requests whose client gave up may still
/// be in the works after an overloaded run, and would weigh on the next one.
fn settle(pid: Option<u32>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let before = cpu_seconds(pid);
        std::thread::sleep(Duration::from_secs(1));
        if cpu_seconds(pid) - before < 0.05 {
            return;
        }
    }
}

/// Drives `request` open-loop at `rate` requests a second for the warm-up and the measured
/// time; blocks.
fn open_loop(
    name: &str,
    rate: u32,
    runtime: &tokio::runtime::Handle,
    request: impl Fn() -> reqwest::RequestBuilder,
    check: Check,
    server_pid: Option<u32>,
) -> Outcome {
    settle(server_pid);
    let interval = Duration::from_secs(1) / rate;
    let warmup_slots = u64::from(rate) * WARMUP.get().as_secs();
    let slots = warmup_slots + u64::from(rate) * MEASURE.get().as_secs();
    let (results, samples) = mpsc::channel::<Sample>();
    let start = Instant::now() + Duration::from_millis(50);
    let mut cpu_at_measure = None;
    for slot in 0..slots {
        let at = start + interval * u32::try_from(slot).unwrap();
        let now = Instant::now();
        if at > now {
            std::thread::sleep(at - now);
        }
        if slot == warmup_slots {
            cpu_at_measure = Some(cpu_seconds(server_pid));
        }
        let builder = request();
        let check = check.clone();
        let results = results.clone();
        runtime.spawn(async move {
            let error = match builder.send().await {
                Ok(response) => {
                    let status = response.status();
                    match response.bytes().await {
                        Ok(_) if status != 200 => Some(format!("status {status}")),
                        Ok(body) if !check(&body) => Some("not the expected page".to_owned()),
                        Ok(_) => None,
                        Err(e) => Some(describe(&e)),
                    }
                }
                Err(e) => Some(describe(&e)),
            };
            let done = Instant::now();
            let _ = results.send(Sample {
                slot,
                done,
                latency: done - at,
                error,
            });
        });
    }
    drop(results);
    let mut measured = Vec::new();
    let mut received = 0;
    while let Ok(sample) = samples.recv_timeout(REQUEST_TIMEOUT + Duration::from_secs(5)) {
        received += 1;
        if sample.slot >= warmup_slots {
            measured.push(sample);
        }
        if received == slots {
            break;
        }
    }
    let cpu = cpu_seconds(server_pid) - cpu_at_measure.unwrap_or_default();
    let measure_start = start + interval * u32::try_from(warmup_slots).unwrap();
    let last_done = measured
        .iter()
        .map(|s| s.done)
        .max()
        .unwrap_or(measure_start);
    let span = (last_done - measure_start).as_secs_f64();
    let sent = usize::try_from(slots - warmup_slots).unwrap();
    let answered: Vec<Duration> = measured
        .iter()
        .filter(|s| s.error.is_none())
        .map(|s| s.latency)
        .collect();
    let errors = sent - answered.len();
    let mut kinds = std::collections::BTreeMap::<String, usize>::new();
    for sample in &measured {
        if let Some(error) = &sample.error {
            *kinds.entry(error.clone()).or_default() += 1;
        }
    }
    let unanswered = sent - measured.len();
    if unanswered > 0 {
        kinds.insert("no answer at all".to_owned(), unanswered);
    }
    Outcome {
        name: name.to_owned(),
        rate,
        sent,
        achieved_rps: answered.len() as f64 / span,
        answered,
        errors,
        error_kinds: kinds.into_iter().collect(),
        server_cpu: cpu / span,
    }
}

fn row(outcome: &Outcome) -> Option<(Duration, Duration)> {
    let mut sorted = outcome.answered.clone();
    sorted.sort();
    if sorted.is_empty() {
        println!(
            "{:<26} {:>6} {:>6} {:>9} {:>7} {:>8} {:>8} {:>8} {:>9} {:>9.2}",
            outcome.name,
            outcome.rate,
            outcome.sent,
            0,
            outcome.errors,
            "-",
            "-",
            "-",
            "-",
            outcome.server_cpu
        );
        return None;
    }
    let (p50, p90, p99) = (
        percentile(&sorted, 0.50),
        percentile(&sorted, 0.90),
        percentile(&sorted, 0.99),
    );
    println!(
        "{:<26} {:>6} {:>6} {:>9.1} {:>7} {:>8.2} {:>8.2} {:>8.2} {:>9.2} {:>9.2}",
        outcome.name,
        outcome.rate,
        outcome.sent,
        outcome.achieved_rps,
        outcome.errors,
        ms(p50),
        ms(p90),
        ms(p99),
        ms(sorted[sorted.len() - 1]),
        outcome.server_cpu,
    );
    Some((p50, p99))
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ssr.db").display());
    let (server, cookie, page_size) = runtime.block_on(async {
        // Migrations first, then the seed, then the server.
        drop(hangar::db::connect(&url).await.unwrap());
        let seeding = Instant::now();
        common::seed(&url, USERS.get(), SPACES_PER_USER).await;
        println!(
            "seeded {USERS} users and {} spaces in {:.1} s",
            USERS.get() * SPACES_PER_USER,
            seeding.elapsed().as_secs_f64()
        );
        let server = Hangar::start(&url).await;
        let cookie = common::sign_in(&server.base, &format!("user{BENCH_USER}"), PASSWORD).await;
        // The page must be the signed-in dashboard, not a redirect to the sign-in page.
        let page = reqwest::Client::new()
            .get(format!("{}/", server.base))
            .header(ACCEPT, "text/html")
            .header(COOKIE, &cookie)
            .send()
            .await
            .unwrap();
        let status = page.status();
        let html = page.text().await.unwrap();
        assert_eq!(status, 200, "GET / answered {status}: {html:.500}");
        let shows_spaces = html.contains(&format!("user{BENCH_USER}-space0"));
        let shows_name = html.contains(&format!("User {BENCH_USER}"));
        assert!(
            shows_spaces || shows_name,
            "GET / is not the dashboard of user{BENCH_USER}: {html:.2000}"
        );
        println!(
            "GET / as user{BENCH_USER}: 200, {} bytes, shows the user's name: {shows_name}, \
             their spaces: {shows_spaces}",
            html.len()
        );
        (server, cookie, html.len())
    });

    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(REQUEST_TIMEOUT)
        .build()
        .unwrap();
    let base = server.base.clone();
    let pid = server.pid();

    let health_url = format!("{base}/healthz");
    let page_url = format!("{base}/");
    // What one request costs when nothing queues: one client, one request at a time.
    let sequential = |request: &dyn Fn() -> reqwest::RequestBuilder| {
        runtime.block_on(async {
            let mut samples = Vec::with_capacity(SEQUENTIAL.get());
            for _ in 0..SEQUENTIAL.get() {
                let at = Instant::now();
                let response = request().send().await.unwrap();
                assert_eq!(response.status(), 200);
                response.bytes().await.unwrap();
                samples.push(at.elapsed());
            }
            samples.sort();
            samples
        })
    };
    let health_alone = sequential(&|| client.get(&health_url));
    let page_alone = sequential(&|| {
        client
            .get(&page_url)
            .header(ACCEPT, "text/html")
            .header(COOKIE, &cookie)
    });

    let dashboard_request = || {
        client
            .get(&page_url)
            .header(ACCEPT, "text/html")
            .header(COOKIE, &cookie)
    };
    let markers = Arc::new([
        format!("user{BENCH_USER}-space0"),
        format!("User {BENCH_USER}"),
    ]);
    let is_dashboard: Check = Arc::new(move |body: &[u8]| {
        markers
            .iter()
            .any(|m| body.windows(m.len()).any(|window| window == m.as_bytes()))
    });
    let health = open_loop(
        "GET /healthz (baseline)",
        RATE.get(),
        runtime.handle(),
        || client.get(&health_url),
        Arc::new(|_| true),
        pid,
    );
    let dashboard = open_loop(
        "GET / (dashboard, SSR)",
        RATE.get(),
        runtime.handle(),
        dashboard_request,
        is_dashboard.clone(),
        pid,
    );
    let goal_met = |outcome: &Outcome| {
        let mut sorted = outcome.answered.clone();
        sorted.sort();
        outcome.errors == 0 && !sorted.is_empty() && percentile(&sorted, 0.99) < GOAL_P99
    };
    // Where it stands when it cannot take the full rate, or how much room is left when it can.
    let mut more = Vec::new();
    let others: &[u32] = if goal_met(&dashboard) {
        HIGHER_RATES.get()
    } else {
        LOWER_RATES.get()
    };
    for &rate in others {
        more.push(open_loop(
            "GET / (dashboard, SSR)",
            rate,
            runtime.handle(),
            dashboard_request,
            is_dashboard.clone(),
            pid,
        ));
    }

    println!(
        "\nOne client, one request at a time ({SEQUENTIAL} each), milliseconds p50 / p99: \
         GET /healthz {:.2} / {:.2}, GET / {:.2} / {:.2}",
        ms(percentile(&health_alone, 0.5)),
        ms(percentile(&health_alone, 0.99)),
        ms(percentile(&page_alone, 0.5)),
        ms(percentile(&page_alone, 0.99)),
    );
    println!(
        "\nOpen loop for {} s per row (after {} s warm-up), latency from each request's \
         scheduled send time to its whole body; SQLite, {USERS} users / {} spaces, signed in as \
         a user with {SPACES_PER_USER} spaces (page {page_size} bytes); milliseconds; server \
         CPU in cores:",
        MEASURE.get().as_secs(),
        WARMUP.get().as_secs(),
        USERS.get() * SPACES_PER_USER
    );
    println!(
        "{:<26} {:>6} {:>6} {:>9} {:>7} {:>8} {:>8} {:>8} {:>9} {:>9}",
        "route", "rate", "sent", "rps", "errors", "p50", "p90", "p99", "max", "srv CPU"
    );
    let baseline = row(&health);
    let page = row(&dashboard);
    for outcome in &more {
        row(outcome);
    }
    for outcome in [&health, &dashboard].into_iter().chain(&more) {
        for (kind, count) in &outcome.error_kinds {
            println!("  {} at {}/s: {count} x {kind}", outcome.name, outcome.rate);
        }
    }
    if let (Some((base_p50, base_p99)), Some((p50, p99))) = (baseline, page) {
        println!(
            "dashboard / healthz at {RATE}/s: p50 {:.1}x, p99 {:.1}x",
            p50.as_secs_f64() / base_p50.as_secs_f64(),
            p99.as_secs_f64() / base_p99.as_secs_f64()
        );
    }
    println!(
        "goal: dashboard p99 < {} ms at {RATE} requests/s with no error: {}",
        GOAL_P99.as_millis(),
        if goal_met(&dashboard) {
            "met"
        } else {
            "MISSED"
        },
    );
    runtime.block_on(server.stop());
}
