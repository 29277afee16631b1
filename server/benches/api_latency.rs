//! Latency of `POST /api/v1/spaces` and `GET /api/v1/spaces` on a SQLite database seeded with
//! 1,000 users and 10,000 spaces. Run on demand: `cargo bench -p server --bench api_latency`.
//! Prints p50/p99 per route and, as the raw baseline, `GET /healthz` measured in the same run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use chrono::Utc;
use clap::Parser;
use hangar::config::{Cli, Command};
use hangar::entities::{space, template, user};
use sea_orm::{Database, EntityTrait, Set};

const USERS: usize = 1_000;
const SPACES_PER_USER: usize = 10;
const SAMPLES: usize = 1_000;
const PASSWORD: &str = "bench-password";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank]
}

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

async fn seed(url: &str) -> (String, String) {
    let db = Database::connect(url).await.unwrap();
    let hash = hangar::auth::password::hash_password(PASSWORD.into())
        .await
        .unwrap();
    let now = Utc::now();
    let template_id = uuid::Uuid::new_v4().to_string();
    template::Entity::insert(template::ActiveModel {
        id: Set(template_id.clone()),
        name: Set("bench".into()),
        description: Set(String::new()),
        image: Set("hangar/busybox:test".into()),
        command: Set(None),
        shell: Set("/bin/sh".into()),
        env: Set("{}".into()),
        compute_units: Set(1),
        storage_units: Set(0),
        volumes: Set("[]".into()),
        features: Set("[\"terminal\"]".into()),
        ports: Set("[]".into()),
        allowed_groups: Set("[]".into()),
        archived: Set(false),
        version: Set(1),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec(&db)
    .await
    .unwrap();
    let users: Vec<user::ActiveModel> = (0..USERS)
        .map(|i| user::ActiveModel {
            id: Set(uuid::Uuid::new_v4().to_string()),
            username: Set(format!("user{i}")),
            display_name: Set(format!("User {i}")),
            email: Set(String::new()),
            password_hash: Set(hash.clone()),
            role: Set("member".into()),
            active: Set(true),
            max_spaces: Set(None),
            compute_units: Set(None),
            storage_units: Set(None),
            created_at: Set(now),
        })
        .collect();
    let ids: Vec<String> = users.iter().map(|u| u.id.clone().unwrap()).collect();
    for chunk in users.chunks(200) {
        user::Entity::insert_many(chunk.to_vec())
            .exec(&db)
            .await
            .unwrap();
    }
    let spaces: Vec<space::ActiveModel> = ids
        .iter()
        .flat_map(|owner| (0..SPACES_PER_USER).map(move |n| (owner.clone(), n)))
        .map(|(owner, n)| space::ActiveModel {
            id: Set(uuid::Uuid::new_v4().to_string()),
            owner_id: Set(owner),
            name: Set(format!("space{n}")),
            template_id: Set(Some(template_id.clone())),
            template_name: Set("bench".into()),
            compute_units: Set(1),
            storage_units: Set(0),
            image: Set("hangar/busybox:test".into()),
            command: Set(None),
            shell: Set("/bin/sh".into()),
            env: Set("{}".into()),
            volumes: Set("[]".into()),
            features: Set("[\"terminal\"]".into()),
            state: Set("stopped".into()),
            after_stop: Set(None),
            container_id: Set(None),
            last_error: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            started_at: Set(None),
            stopped_at: Set(None),
            deleted_at: Set(None),
        })
        .collect();
    for chunk in spaces.chunks(100) {
        space::Entity::insert_many(chunk.to_vec())
            .exec(&db)
            .await
            .unwrap();
    }
    (ids[USERS / 2].clone(), template_id)
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let Command::Serve(config) = Cli::parse_from([
        "hangar",
        "--database-url",
        &url,
        "--admin-password",
        "bench-admin-password",
        "--log-format",
        "text",
    ])
    .into_command();
    // Migrations first (build_state applies them), then the seed, then the server.
    let state = hangar::build_state(config).await.unwrap();
    let started = Instant::now();
    let (_user_id, template_id) = seed(&format!("{url}?mode=rwc")).await;
    println!(
        "seeded {USERS} users and {} spaces in {:.1} s",
        USERS * SPACES_PER_USER,
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
        .json(&serde_json::json!({"username": format!("user{}", USERS / 2), "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert!(login.status().is_success());

    let mut health = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let at = Instant::now();
        let r = client.get(format!("{base}/healthz")).send().await.unwrap();
        r.bytes().await.unwrap();
        health.push(at.elapsed());
    }
    let mut list = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
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
    let mut create = Vec::with_capacity(SAMPLES);
    for i in 0..SAMPLES {
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
        USERS * SPACES_PER_USER
    );
    let base_p50 = report("GET /healthz (baseline)", health, None);
    report("GET /api/v1/spaces (10 own)", list, Some(base_p50));
    report("POST /api/v1/spaces", create, Some(base_p50));
}
