//! A space's use over time, sampled from the real engine: a space running `yes` shows its CPU
//! near its limit and its memory against its limit; points past their retention are dropped
//! and a deleted space's with it; a stranger gets 404.

use std::time::Duration;

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::{json, Value};

use crate::support::{admin, both_dbs, in_space, Client, TestDb, TestServer, TEST_IMAGE};

both_dbs!(a_busy_space_shows_its_cpu_near_its_limit_and_old_points_go);
async fn a_busy_space_shows_its_cpu_near_its_limit_and_old_points_go(db: TestDb) {
    use hangar::entities::usage_sample;

    let server = TestServer::start(&db, &["--usage-interval-secs", "1"]).await;
    let admin = admin(&server).await;
    let template = admin
        .post(
            "/api/v1/templates",
            json!({"name": "one", "image": TEST_IMAGE, "compute_units": 1,
                "volumes": [{"name": "data", "mount_path": "/data", "size_gib": 1}]}),
        )
        .await;
    assert_eq!(template.status, 201, "{template:?}");
    let id = admin.new_space("busy", &template.id()).await;
    let started = admin
        .post_empty(&format!("/api/v1/spaces/{id}/start"))
        .await;
    assert_eq!(started.status, 202, "{started:?}");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while admin.get(&format!("/api/v1/spaces/{id}")).await.body["state"] != "running" {
        assert!(
            std::time::Instant::now() < deadline,
            "the space did not start"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (ok, said) = in_space(&id, "setsid sh -c 'yes > /dev/null' >/dev/null 2>&1 &").await;
    assert!(ok, "{said}");

    // A busy point comes within seconds: on a quiet machine `yes` reads 0.98 to 1.0 of the
    // 1-CPU limit; beside the rest of the suite on 2 cores (this very test runs twice at once)
    // it gets less (0.24 to 0.8 seen with builds beside it), but far above an idle space's
    // ~0.00: 0.3 is asked.
    let usage = |client: &Client| {
        let path = format!("/api/v1/spaces/{id}/usage?range=hour");
        let client = client.clone();
        async move { client.get(&path).await }
    };
    // Disk: 64 MiB written on its 1 GiB volume shows against the volume's size.
    let (ok, said) = in_space(
        &id,
        "dd if=/dev/urandom of=/data/fill bs=1M count=64 2>&1 && sync",
    )
    .await;
    assert!(ok, "{said}");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let answer = usage(&admin).await;
        let filled = answer.body["points"].as_array().and_then(|points| {
            points
                .iter()
                .rev()
                .find_map(|p| p["disk_bytes"].as_i64().filter(|b| *b >= 64 << 20))
        });
        if let Some(bytes) = filled {
            assert_eq!(
                answer.body["disk_limit_bytes"].as_i64(),
                Some(1 << 30),
                "{answer:?}"
            );
            assert!(bytes < 1 << 30, "{answer:?}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the disk's use did not show: {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let busy: Value = loop {
        let answer = usage(&admin).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        let points = answer.body["points"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if let Some(point) = points
            .iter()
            .find(|p| p["cpus"].as_f64().unwrap_or(0.0) >= 0.3)
        {
            assert_eq!(answer.body["cpu_limit"], 1.0, "{answer:?}");
            assert_eq!(
                answer.body["memory_limit_bytes"].as_i64(),
                Some(1024 * 1024 * 1024),
                "{answer:?}"
            );
            break point.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no busy point came: {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(busy["cpus"].as_f64().unwrap() <= 1.1, "{busy}");
    assert!(busy["memory_bytes"].as_i64().unwrap() > 0, "{busy}");
    assert!(busy["pids"].as_i64().unwrap() >= 2, "{busy}");

    // Another user sees nothing of it.
    let (_, bob) = admin.new_member(&server, "bob", json!({})).await;
    assert_eq!(usage(&bob).await.status, 404);

    // Points past their retention are dropped by the next pass: a minute point of two days
    // ago and an hour point of 100 days ago go, an hour point of yesterday stays.
    let conn = sea_orm::Database::connect(db.url()).await.unwrap();
    let old = |resolution: &str, days: i64| usage_sample::ActiveModel {
        space_id: Set(app::ids::SpaceId::from(id.clone())),
        resolution: Set(resolution.to_owned()),
        at: Set(chrono::Utc::now() - chrono::TimeDelta::days(days)),
        cpu_millis: Set(1),
        memory_bytes: Set(1),
        memory_limit_bytes: Set(None),
        pids: Set(1),
        net_rx_bytes: Set(0),
        net_tx_bytes: Set(0),
        disk_bytes: Set(None),
    };
    old("minute", 2).insert(&conn).await.unwrap();
    old("hour", 100).insert(&conn).await.unwrap();
    old("hour", 1).insert(&conn).await.unwrap();
    let count = |resolution: &'static str, older_than: chrono::TimeDelta| {
        let conn = conn.clone();
        let id = id.clone();
        async move {
            usage_sample::Entity::find()
                .filter(usage_sample::Column::SpaceId.eq(id))
                .filter(usage_sample::Column::Resolution.eq(resolution))
                .filter(usage_sample::Column::At.lt(chrono::Utc::now() - older_than))
                .all(&conn)
                .await
                .unwrap()
                .len()
        }
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let days = chrono::TimeDelta::days;
    while count("minute", days(1)).await + count("hour", days(90)).await > 0 {
        assert!(std::time::Instant::now() < deadline, "old points stayed");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Older than half a day: the sampler's own hour point, rolled up when the run crosses the
    // top of an hour, is not yesterday's.
    assert_eq!(
        count("hour", chrono::TimeDelta::hours(12)).await,
        1,
        "yesterday's hour point stays"
    );
    let quarter = admin
        .get(&format!("/api/v1/spaces/{id}/usage?range=quarter"))
        .await;
    assert_eq!(
        quarter.body["points"].as_array().unwrap().len(),
        1,
        "{quarter:?}"
    );

    // A deleted space's points go with it.
    let deleted = admin.delete(&format!("/api/v1/spaces/{id}")).await;
    assert!(
        deleted.status == 202 || deleted.status == 204,
        "{deleted:?}"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !usage_sample::Entity::find()
        .filter(usage_sample::Column::SpaceId.eq(id.clone()))
        .all(&conn)
        .await
        .unwrap()
        .is_empty()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the deleted space's points stayed"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    server.stop().await;
}

/// A Hangar sampling every second, its admin, and a busybox template of `compute_units` with
/// one volume of `size_gib` at `/data`.
async fn sampling_server(
    db: &TestDb,
    compute_units: i64,
    size_gib: i64,
) -> (TestServer, Client, String) {
    let server = TestServer::start(db, &["--usage-interval-secs", "1"]).await;
    let admin = admin(&server).await;
    let template = admin
        .post(
            "/api/v1/templates",
            json!({"name": "one", "image": TEST_IMAGE, "compute_units": compute_units,
                "volumes": [{"name": "data", "mount_path": "/data", "size_gib": size_gib}]}),
        )
        .await;
    assert_eq!(template.status, 201, "{template:?}");
    (server, admin, template.id())
}

both_dbs!(quota_use_over_time_per_user_and_group);
async fn quota_use_over_time_per_user_and_group(db: TestDb) {
    let (server, admin, template) = sampling_server(&db, 1, 2).await;
    let quota = json!({"compute_units": 3, "storage_units": 8, "max_spaces": 4});
    let (ann_id, ann) = admin.new_member(&server, "ann", quota.clone()).await;
    let (bob_id, bob) = admin.new_member(&server, "bob", quota).await;
    let group = admin
        .post(
            "/api/v1/groups",
            json!({"name": "team", "description": "", "compute_units": 5}),
        )
        .await;
    assert_eq!(group.status, 201, "{group:?}");
    let group = group.id();
    for member in [&ann_id, &bob_id] {
        let added = admin
            .put(&format!("/api/v1/groups/{group}/members/{member}"))
            .await;
        assert!(added.status < 300, "{added:?}");
    }
    // Ann runs one space (1 CU, 2 SU); Bob keeps one stopped (0 CU, 2 SU).
    let running = ann.new_space("running", &template).await;
    let started = ann
        .post_empty(&format!("/api/v1/spaces/{running}/start"))
        .await;
    assert_eq!(started.status, 202, "{started:?}");
    bob.new_space("kept", &template).await;

    let highest = |answer: &Value, key: &str| {
        answer["points"]
            .as_array()
            .map(|points| points.iter().filter_map(|p| p[key].as_i64()).max())
            .unwrap_or_default()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let (mine, team) = loop {
        let mine = ann.get("/api/v1/me/quota-usage?range=hour").await;
        assert_eq!(mine.status, 200, "{mine:?}");
        let team = admin
            .get(&format!("/api/v1/groups/{group}/quota-usage?range=hour"))
            .await;
        assert_eq!(team.status, 200, "{team:?}");
        if highest(&mine.body, "compute_units") == Some(1)
            && highest(&team.body, "storage_units") == Some(4)
        {
            break (mine, team);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no quota points came: {mine:?} {team:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    // Ann's against her effective quota (own 3 CU + the group's 5), the group's against its
    // contribution; the group sums its members' points.
    assert_eq!(mine.body["quota"]["compute_units"], 8, "{mine:?}");
    assert_eq!(highest(&mine.body, "storage_units"), Some(2), "{mine:?}");
    assert_eq!(highest(&mine.body, "spaces"), Some(1), "{mine:?}");
    assert_eq!(team.body["quota"]["compute_units"], 5, "{team:?}");
    assert_eq!(highest(&team.body, "spaces"), Some(2), "{team:?}");
    assert_eq!(highest(&team.body, "compute_units"), Some(1), "{team:?}");
    let hers = admin
        .get(&format!("/api/v1/users/{ann_id}/quota-usage?range=day"))
        .await;
    assert_eq!(hers.status, 200, "{hers:?}");
    assert_eq!(highest(&hers.body, "compute_units"), Some(1), "{hers:?}");
    // Members see their own only.
    for path in [
        format!("/api/v1/users/{ann_id}/quota-usage"),
        format!("/api/v1/groups/{group}/quota-usage"),
    ] {
        assert_eq!(bob.get(&path).await.status, 403, "{path}");
    }
    assert_eq!(
        ann.get("/api/v1/me/quota-usage?range=week").await.status,
        400
    );
    server.stop().await;
}

both_dbs!(volumes_over_90_percent_tell_their_owner_once);
async fn volumes_over_90_percent_tell_their_owner_once(db: TestDb) {
    let (server, admin, template) = sampling_server(&db, 0, 1).await;
    let quota = json!({"compute_units": 2, "storage_units": 2, "max_spaces": 2});
    let (_, ann) = admin.new_member(&server, "ann", quota.clone()).await;
    let (_, bob) = admin.new_member(&server, "bob", quota).await;
    let id = ann.new_space("filled", &template).await;
    let started = ann.post_empty(&format!("/api/v1/spaces/{id}/start")).await;
    assert_eq!(started.status, 202, "{started:?}");
    let volume_full = |client: &Client| {
        let client = client.clone();
        async move {
            let listed = client.get("/api/v1/me/notifications").await;
            assert_eq!(listed.status, 200, "{listed:?}");
            listed
                .body
                .as_array()
                .map(|all| {
                    all.iter()
                        .filter(|n| n["kind"] == "volume_full")
                        .cloned()
                        .collect::<Vec<Value>>()
                })
                .unwrap_or_default()
        }
    };
    // Running and sampled, below the line: nothing told.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !in_space(&id, "test -d /data").await.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the space did not start"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(volume_full(&ann).await.is_empty());

    let (ok, said) = in_space(
        &id,
        "dd if=/dev/zero of=/data/fill bs=1M count=930 2>&1 && sync",
    )
    .await;
    assert!(ok, "{said}");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let told = loop {
        let told = volume_full(&ann).await;
        if !told.is_empty() {
            break told;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no notification of a full volume came"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(told[0]["link"], format!("/spaces/{id}"), "{told:?}");
    assert!(
        told[0]["title"]
            .as_str()
            .unwrap_or_default()
            .contains("% full"),
        "{told:?}"
    );
    // Still above the line some passes later: told once; nobody else is told.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(volume_full(&ann).await.len(), 1);
    assert!(volume_full(&bob).await.is_empty());
    server.stop().await;
}
