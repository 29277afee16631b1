//! Latency of `POST /api/v1/spaces` and `GET /api/v1/spaces` on a SQLite database seeded with
//! 1,000 users and 10,000 spaces. Run on demand: `cargo bench -p server --bench api_latency`.
//! Prints p50/p99 per route and, as the raw baseline, `GET /healthz` measured in the same run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{percentile, Size, PASSWORD};
use hangar::config::Config;

const USERS: Size<usize> = Size(1_000, 50);
const SPACES_PER_USER: usize = 10;
const SAMPLES: Size<usize> = Size(1_000, 20);

fn report(name: &str, mut samples: Vec<Duration>, baseline_p50: Option<Duration>) -> Duration {
    samples.sort();
    let (p50, p99) = (percentile(&samples, 0.50), percentile(&samples, 0.99));
    let ratio = baseline_p50.map_or(String::new(), |b| {
        format!(
            "  ({:.1}x the /healthz p50)",
            p50.as_secs_f64() / b.as_secs_f64()
        )
    });
    println!(
        "{name:<28} n={:<5} p50 {:>8.3} ms   p99 {:>8.3} ms{ratio}",
        samples.len(),
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
    p50
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let config = Config::from_args([
        "hangar",
        "--database-url",
        &url,
        "--admin-password",
        "bench-admin-password",
        "--log-format",
        "text",
    ]);
    // Migrations first (build_state applies them), then the seed, then the server.
    let state = hangar::build_state(config).await.unwrap();
    let started = Instant::now();
    let template_id = common::seed(&format!("{url}?mode=rwc"), USERS.get(), SPACES_PER_USER)
        .await
        .template_id;
    println!(
        "seeded {USERS} users and {} spaces in {:.1} s",
        USERS.get() * SPACES_PER_USER,
        started.elapsed().as_secs_f64()
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(hangar::serve(state, listener, std::future::pending()));
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let login = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({"username": format!("user{}", USERS.get() / 2), "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert!(login.status().is_success());

    let mut health = Vec::with_capacity(SAMPLES.get());
    for _ in 0..SAMPLES.get() {
        let at = Instant::now();
        let r = client.get(format!("{base}/healthz")).send().await.unwrap();
        r.bytes().await.unwrap();
        health.push(at.elapsed());
    }
    let mut list = Vec::with_capacity(SAMPLES.get());
    for _ in 0..SAMPLES.get() {
        let at = Instant::now();
        let r = client
            .get(format!("{base}/api/v1/spaces"))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        r.bytes().await.unwrap();
        list.push(at.elapsed());
    }
    let mut create = Vec::with_capacity(SAMPLES.get());
    for i in 0..SAMPLES.get() {
        let at = Instant::now();
        let r = client
            .post(format!("{base}/api/v1/spaces"))
            .header("origin", &base)
            .json(&serde_json::json!({"name": format!("new{i}"), "template_id": template_id}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        r.bytes().await.unwrap();
        create.push(at.elapsed());
    }
    println!(
        "\nAPI latency, one client, sequential requests, SQLite, {USERS} users / {} spaces:",
        USERS.get() * SPACES_PER_USER
    );
    let base_p50 = report("GET /healthz (baseline)", health, None);
    report("GET /api/v1/spaces (10 own)", list, Some(base_p50));
    report("POST /api/v1/spaces", create, Some(base_p50));
}
