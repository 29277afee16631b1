//! What the usage sampler (`services::usage`: spaces' CPU, memory, processes, network and disk,
//! users' quota use) costs with many running spaces. One release Hangar runs N busybox spaces,
//! each with a 1 GiB volume; it idles for a window with sampling every hour (no pass in the
//! window), then is restarted on the same database and spaces with a pass every second and
//! measured over the same window. The difference in the server's CPU, divided by the passes it
//! made, is one pass's cost; read at the default pass a minute, the cost per running space per
//! hour; and the database rows the passes wrote, per running space per hour.
//!
//! Goal (issue #30): the figure for the note, with 50 running spaces. Run on demand:
//! `cargo bench -p server --bench usage_sampler` (needs `scripts/images.sh test`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{cpu_seconds, delete_space, wait_running, Hangar, Session, Size, ADMIN_PASSWORD};
use hangar::entities::{quota_sample, usage_sample};
use sea_orm::{ColumnTrait, Database, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::json;

const SPACES: Size<usize> = Size(50, 3);
const WINDOW: Size<Duration> = Size(Duration::from_secs(60), Duration::from_secs(3));
/// What a Hangar does once at start (serving git's helper in every running space…) is over
/// by then.
const SETTLE: Size<Duration> = Size(Duration::from_secs(10), Duration::from_secs(2));

async fn rows(url: &str) -> (u64, u64) {
    let db = Database::connect(url).await.unwrap();
    let spaces = usage_sample::Entity::find()
        .filter(usage_sample::Column::Resolution.eq("minute"))
        .count(&db)
        .await
        .unwrap();
    let quotas = quota_sample::Entity::find()
        .filter(quota_sample::Column::Resolution.eq("minute"))
        .count(&db)
        .await
        .unwrap();
    (spaces, quotas)
}

/// The server's CPU seconds over one window.
async fn cpu_over_window(hangar: &Hangar) -> f64 {
    let before = cpu_seconds(hangar.pid());
    tokio::time::sleep(WINDOW.get()).await;
    cpu_seconds(hangar.pid()) - before
}

async fn start(url: &str, data_dir: &str, interval_secs: &str) -> Hangar {
    let hangar = Hangar::start_with(
        url,
        &[
            ("HANGAR_USAGE_INTERVAL_SECS", interval_secs),
            ("HANGAR_DATA_DIR", data_dir),
        ],
    )
    .await;
    tokio::time::sleep(SETTLE.get()).await;
    hangar
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.db").display()
    );
    let data_dir = dir.path().join("data").display().to_string();
    let spaces = SPACES.get();

    // Idle: no pass in the window.
    let hangar = start(&url, &data_dir, "3600").await;
    let admin = Session::new(&hangar.base, "admin", ADMIN_PASSWORD).await;
    let template: serde_json::Value = admin
        .request(reqwest::Method::POST, "/api/v1/templates")
        .json(
            &json!({"name": "box", "image": "hangar/busybox:test", "compute_units": 0,
            "volumes": [{"name": "data", "mount_path": "/data", "size_gib": 1}]}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut ids = Vec::with_capacity(spaces);
    for i in 0..spaces {
        let made: serde_json::Value = admin
            .request(reqwest::Method::POST, "/api/v1/spaces")
            .json(&json!({"name": format!("box-{i}"), "template_id": template["id"]}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = made["id"]
            .as_str()
            .unwrap_or_else(|| panic!("the space was not made: {made}"))
            .to_owned();
        let started = admin
            .request(reqwest::Method::POST, &format!("/api/v1/spaces/{id}/start"))
            .send()
            .await
            .unwrap();
        assert_eq!(started.status(), 202, "the space did not start");
        ids.push(id);
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    for id in &ids {
        wait_running(&admin, id, deadline).await;
    }
    tokio::time::sleep(SETTLE.get()).await;
    let idle = cpu_over_window(&hangar).await;
    hangar.stop().await;

    // Sampling: a pass a second.
    let hangar = start(&url, &data_dir, "1").await;
    let (space_rows, quota_rows) = rows(&url).await;
    let started = Instant::now();
    let busy = cpu_over_window(&hangar).await;
    let took = started.elapsed().as_secs_f64();
    let (space_rows_after, quota_rows_after) = rows(&url).await;
    let written = space_rows_after - space_rows;
    let quota_written = quota_rows_after - quota_rows;
    // Every pass writes a point for each running space.
    let passes = written as f64 / spaces as f64;
    assert!(
        passes >= 1.0,
        "no pass in the window: {written} rows for {spaces} spaces"
    );
    assert!(
        quota_written >= 1,
        "no quota point in the window ({quota_written} rows)"
    );

    let per_pass = (busy - idle).max(0.0) / passes;
    println!(
        "usage sampler, {spaces} running spaces (busybox, a 1 GiB volume each), {took:.0} s windows"
    );
    println!(
        "  server CPU: idle {idle:.2} s, sampling every second {busy:.2} s ({passes:.0} passes)"
    );
    println!(
        "  one pass: {:.1} ms of CPU ({:.2} ms per running space)",
        per_pass * 1000.0,
        per_pass * 1000.0 / spaces as f64
    );
    println!(
        "  at the default pass a minute: {:.1} ms of CPU per running space per hour ({:.3}% of one core for all {spaces})",
        per_pass * 1000.0 * 60.0 / spaces as f64,
        per_pass / 60.0 * 100.0
    );
    println!(
        "  database rows per pass: {:.0} space points + {:.0} quota points; per running space per hour at a pass a minute: 60 minute points + 1 hour point (and 61 per user with a space)",
        written as f64 / passes,
        quota_written as f64 / passes
    );

    let admin = Session::new(&hangar.base, "admin", ADMIN_PASSWORD).await;
    for id in &ids {
        delete_space(&admin, id).await;
    }
    hangar.stop().await;
}
