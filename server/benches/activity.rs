//! What activity tracking (idle stops' input: `services::activity`) costs on the hot paths, in
//! one run: three release Hangars side by side, two tracking and one with it turned off
//! (`HANGAR_ACTIVITY_TRACKING=off`), each with the same busybox space; measured in turns so
//! that the machine's noise falls on all alike, and the two tracking ones' spread printed as
//! the noise a difference must beat.
//! - terminal echo: one keystroke through the web terminal's WebSocket to its echo, p50;
//! - proxy: small GETs through the port proxy (by path) from 50 concurrent clients, requests/s.
//!
//! Goal (issue #27): under 2% either way. Run on demand:
//! `cargo bench -p server --bench activity` (needs `scripts/images.sh test`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{ms, percentile, running_space, Hangar, Session, Size, ADMIN_PASSWORD};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const ROUNDS: Size<usize> = Size(6, 1);
const KEYSTROKES: Size<usize> = Size(400, 10);
const CLIENTS: Size<usize> = Size(50, 5);
const PHASE: Size<Duration> = Size(Duration::from_secs(4), Duration::from_millis(500));
/// busybox httpd answering `hello` on 8080.
const APP: &str = "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 8080 -h /www";

/// One Hangar of the pair, its admin's session and its running space.
struct Side {
    hangar: Hangar,
    admin: Session,
    space: String,
    echo: Vec<Duration>,
    rates: Vec<f64>,
}

async fn side(name: &'static str, tracking: &str, dir: &std::path::Path) -> Side {
    let url = format!("sqlite://{}", dir.join(format!("{name}.db")).display());
    let hangar = Hangar::start_with(
        &url,
        &[
            ("HANGAR_ACTIVITY_TRACKING", tracking),
            ("HANGAR_PATH_APPS", "true"),
            ("HANGAR_DATA_DIR", &dir.join(name).display().to_string()),
        ],
    )
    .await;
    let admin = Session::new(&hangar.base, "admin", ADMIN_PASSWORD).await;
    let space = running_space(
        &admin,
        json!({"name": "box", "image": "hangar/busybox:test", "compute_units": 0,
               "features": ["terminal", "port_forwarding"], "command": ["/bin/sh", "-c", APP]}),
        "box",
    )
    .await;
    Side {
        hangar,
        admin,
        space,
        echo: Vec::new(),
        rates: Vec::new(),
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn terminal(side: &Side) -> Socket {
    let url = format!(
        "ws://{}/api/v1/spaces/{}/terminal?session={}&cols=200&rows=50",
        side.hangar.addr(),
        side.space,
        uuid::Uuid::new_v4()
    );
    let mut request = url.into_client_request().unwrap();
    let headers = request.headers_mut();
    headers.insert("cookie", side.admin.cookie.parse().unwrap());
    headers.insert("origin", side.hangar.base.parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    // The first screen, then a quiet prompt.
    socket.next().await.unwrap().unwrap();
    while tokio::time::timeout(Duration::from_millis(500), socket.next())
        .await
        .is_ok()
    {}
    socket
}

/// Keystrokes one by one, each timed to its echo; the line is cleared now and then.
async fn keystrokes(socket: &mut Socket, n: usize) -> Vec<Duration> {
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        if i % 50 == 49 {
            socket
                .send(Message::Binary(b"\x15".to_vec().into()))
                .await
                .unwrap();
            while tokio::time::timeout(Duration::from_millis(100), socket.next())
                .await
                .is_ok()
            {}
        }
        let started = Instant::now();
        socket
            .send(Message::Binary(b"x".to_vec().into()))
            .await
            .unwrap();
        loop {
            match socket.next().await.unwrap().unwrap() {
                Message::Binary(bytes) if bytes.contains(&b'x') => break,
                _ => {}
            }
        }
        times.push(started.elapsed());
    }
    times
}

/// Requests/s of small GETs through the proxy from [`CLIENTS`] clients for [`PHASE`].
async fn proxied_rate(side: &Side) -> f64 {
    let url = format!("{}/spaces/admin/box/ports/8080/", side.hangar.base);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS.get())
        .build()
        .unwrap();
    let until = Instant::now() + PHASE.get();
    let started = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS.get())
        .map(|_| {
            let (client, url, cookie) = (client.clone(), url.clone(), side.admin.cookie.clone());
            tokio::spawn(async move {
                let mut done = 0usize;
                while Instant::now() < until {
                    let response = client
                        .get(&url)
                        .header("cookie", &cookie)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status(), 200);
                    response.bytes().await.unwrap();
                    done += 1;
                }
                done
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    total as f64 / started.elapsed().as_secs_f64()
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

/// What one touch costs, alone: what a door adds to every read it passes on (a clock read and
/// a compare; a write to the shared entry at most once a second).
fn touch_cost() -> f64 {
    use hangar::domain::clock::SystemClock;
    use hangar::services::activity::Activity;
    const TOUCHES: Size<u32> = Size(20_000_000, 100_000);
    let activity = std::sync::Arc::new(Activity::new(std::sync::Arc::new(SystemClock)));
    let mut touch = activity.toucher(
        &"bench-space".into(),
        app::api::autostop::ActivityKind::Terminal,
    );
    let started = Instant::now();
    for _ in 0..TOUCHES.get() {
        touch.touch();
        std::hint::black_box(&touch);
    }
    started.elapsed().as_nanos() as f64 / f64::from(TOUCHES.get())
}

#[tokio::main]
async fn main() {
    let per_touch = touch_cost();
    let dir = tempfile::tempdir().unwrap();
    // Two tracking Hangars and one without: the two alike show what the machine's noise alone
    // makes of a difference, beside what tracking costs.
    let mut sides = [
        side("tracking", "on", dir.path()).await,
        side("off", "off", dir.path()).await,
        side("tracking-2", "on", dir.path()).await,
    ];
    // The app answers, and connections are warm.
    for side in &sides {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let answer = side
                .admin
                .request(reqwest::Method::GET, "/spaces/admin/box/ports/8080/")
                .send()
                .await
                .unwrap();
            if answer.status() == 200 {
                break;
            }
            assert!(Instant::now() < deadline, "the app did not answer");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let mut sockets = Vec::new();
    for side in &sides {
        sockets.push(terminal(side).await);
    }
    for (side, socket) in sides.iter().zip(sockets.iter_mut()) {
        keystrokes(socket, 50).await;
        proxied_rate(side).await;
    }
    // In turns: each round measures all three, in a rotating order.
    for round in 0..ROUNDS.get() {
        for step in 0..sides.len() {
            let i = (round + step) % sides.len();
            let echo = keystrokes(&mut sockets[i], KEYSTROKES.get()).await;
            sides[i].echo.extend(echo);
            let rate = proxied_rate(&sides[i]).await;
            sides[i].rates.push(rate);
        }
        eprintln!("[activity bench] round {} of {ROUNDS}", round + 1);
    }
    println!("activity tracking: its cost on the hot paths (release Hangars side by side, {ROUNDS} rounds in turns)");
    println!(
        "{:<36} {:>14} {:>14} {:>14} {:>9} {:>9}",
        "", "tracking", "turned off", "tracking (2)", "cost", "noise"
    );
    let echo: Vec<f64> = sides
        .iter_mut()
        .map(|side| {
            side.echo.sort();
            ms(percentile(&side.echo, 0.5))
        })
        .collect();
    let rate: Vec<f64> = sides
        .iter_mut()
        .map(|side| median(&mut side.rates))
        .collect();
    // Cost: the tracking pair's mean against the one without; noise: the pair's own spread.
    let echo_cost = ((echo[0] + echo[2]) / 2.0 - echo[1]) / echo[1] * 100.0;
    let echo_noise = (echo[0] - echo[2]).abs() / echo[1] * 100.0;
    println!(
        "{:<36} {:>11.3} ms {:>11.3} ms {:>11.3} ms {:>+8.2}% {:>8.2}%",
        format!(
            "terminal echo p50 ({} keystrokes)",
            KEYSTROKES.get() * ROUNDS.get()
        ),
        echo[0],
        echo[1],
        echo[2],
        echo_cost,
        echo_noise
    );
    let rate_cost = (rate[1] - (rate[0] + rate[2]) / 2.0) / rate[1] * 100.0;
    let rate_noise = (rate[0] - rate[2]).abs() / rate[1] * 100.0;
    println!(
        "{:<36} {:>12.0}/s {:>12.0}/s {:>12.0}/s {:>+8.2}% {:>8.2}%",
        format!("proxy small GET, {CLIENTS} clients (median)"),
        rate[0],
        rate[1],
        rate[2],
        rate_cost,
        rate_noise
    );
    println!(
        "{:<36} {:>11.1} ns   (one clock read and a compare per read a door passes on)",
        "one touch, alone", per_touch
    );
    println!(
        "goal < 2%: {} (a cost within the noise column is no measurable change)",
        if echo_cost < 2.0 && rate_cost < 2.0 {
            "met"
        } else if echo_cost <= echo_noise && rate_cost <= rate_noise {
            "not met, but within this run's noise"
        } else {
            "NOT met"
        }
    );
    // Nothing outlives the bench: each Hangar deletes its space, then stops.
    for side in sides {
        common::delete_space(&side.admin, &side.space).await;
        side.hangar.stop().await;
    }
}
