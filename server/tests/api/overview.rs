//! The admins' overview against real spaces: running spaces and compute units, who runs them,
//! a user at their quotas, spaces idle for an hour (by a clock the test moves), a failed
//! start among the latest failures, the machine; members get 403.

use std::sync::Arc;
use std::time::Duration;

use hangar::domain::clock::MovableClock;
use serde_json::json;

use crate::support::{admin, both_dbs, TestDb, TestServer, TEST_IMAGE};

both_dbs!(the_overview_shows_what_runs_who_is_near_a_quota_and_what_failed);
async fn the_overview_shows_what_runs_who_is_near_a_quota_and_what_failed(db: TestDb) {
    let clock = Arc::new(MovableClock::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = TestServer::start_with_clock(listener, &db, &[], clock.clone()).await;
    let admin = admin(&server).await;
    let template = admin
        .post(
            "/api/v1/templates",
            json!({"name": "one", "image": TEST_IMAGE, "compute_units": 1}),
        )
        .await;
    assert_eq!(template.status, 201, "{template:?}");
    let broken = admin
        .post(
            "/api/v1/templates",
            json!({"name": "broken", "image": "hangar/no-such-image:never", "compute_units": 0}),
        )
        .await;
    assert_eq!(broken.status, 201, "{broken:?}");
    let (_, ann) = admin
        .new_member(
            &server,
            "ann",
            json!({"max_spaces": 3, "compute_units": 2, "storage_units": null}),
        )
        .await;
    let mut ids = Vec::new();
    for name in ["aa", "bb"] {
        ids.push(ann.new_space(name, &template.id()).await);
    }
    let failing = ann.new_space("cc", &broken.id()).await;
    for id in ids.iter().chain([&failing]) {
        let started = ann.post_empty(&format!("/api/v1/spaces/{id}/start")).await;
        assert_eq!(started.status, 202, "{started:?}");
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let mut states = Vec::new();
        for id in ids.iter().chain([&failing]) {
            states.push(ann.get(&format!("/api/v1/spaces/{id}")).await.body["state"].clone());
        }
        if states == [json!("running"), json!("running"), json!("stopped")] {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{states:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    let overview = admin.get("/api/v1/admin/overview").await;
    assert_eq!(overview.status, 200, "{overview:?}");
    let o = &overview.body;
    assert_eq!(o["running_spaces"], 2, "{o}");
    assert_eq!(o["running_compute_units"], 2, "{o}");
    assert_eq!(o["by_owner"][0]["user"]["username"], "ann", "{o}");
    assert_eq!(o["by_owner"][0]["compute_units"], 2, "{o}");
    let near: Vec<(String, String)> = o["near_quota"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["user"]["username"].as_str().unwrap().to_owned(),
                n["dimension"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        near.contains(&("ann".into(), "compute_units".into())),
        "{o}"
    );
    assert!(near.contains(&("ann".into(), "spaces".into())), "{o}");
    assert!(o["idle"].as_array().unwrap().is_empty(), "{o}");
    let failures = o["failures"].as_array().unwrap();
    assert!(
        failures
            .iter()
            .any(|f| f["action"] == "space.start" && f["target"] == "space:ann/cc"),
        "{o}"
    );
    assert!(!o["nodes"].as_array().unwrap().is_empty(), "{o}");
    assert!(o["health"]["version"]
        .as_str()
        .is_some_and(|v| !v.is_empty()));

    // An hour and more later, with no use seen, both running spaces are idle.
    clock.advance(chrono::Duration::minutes(61));
    let later = admin.get("/api/v1/admin/overview").await.body;
    let idle: Vec<&str> = later["idle"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(idle.len(), 2, "{later}");
    assert!(idle.contains(&"aa") && idle.contains(&"bb"), "{later}");

    assert_eq!(ann.get("/api/v1/admin/overview").await.status, 403);
    for id in ids.iter().chain([&failing]) {
        ann.delete(&format!("/api/v1/spaces/{id}")).await;
    }
    server.stop().await;
}
