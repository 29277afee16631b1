//! Quota checks are atomic: many simultaneous creates and starts of one user never exceed
//! the quota, through one server on each database, and on PostgreSQL through two server
//! processes sharing the database.

use futures_util::future::join_all;
use serde_json::json;

use crate::support::{admin, both_dbs, Client, PostgresDb, Process, TestDb, TestServer};

const CREATES: usize = 50;
const STARTS: usize = 50;
const MAX_SPACES: i64 = 10;
const COMPUTE_UNITS: i64 = 5;

/// Fires the creates and starts through `clients` in turn and checks the outcome.
async fn race(admin: &Client, clients: &[Client], ann_id: &str) {
    let template = admin.new_template("one-cu", 1, json!([])).await;
    let creates = (0..CREATES).map(|i| {
        let client = clients[i % clients.len()].clone();
        let template = template.clone();
        async move {
            client
                .post(
                    "/api/v1/spaces",
                    json!({"name": format!("s{i}"), "template_id": template}),
                )
                .await
        }
    });
    let answers = join_all(creates).await;
    let created: Vec<String> = answers
        .iter()
        .filter(|a| a.status == 201)
        .map(|a| a.id())
        .collect();
    assert_eq!(created.len(), MAX_SPACES as usize, "{answers:?}");
    for refused in answers.iter().filter(|a| a.status != 201) {
        assert_eq!(refused.code(), "quota_exceeded", "{refused:?}");
    }

    // Five start requests for each of the ten spaces, all at once.
    let starts = (0..STARTS).map(|i| {
        let client = clients[i % clients.len()].clone();
        let id = created[i % created.len()].clone();
        async move {
            (
                id.clone(),
                client
                    .post_empty(&format!("/api/v1/spaces/{id}/start"))
                    .await,
            )
        }
    });
    let answers = join_all(starts).await;
    let started: Vec<&String> = answers
        .iter()
        .filter(|(_, a)| a.status == 202)
        .map(|(id, _)| id)
        .collect();
    assert_eq!(started.len(), COMPUTE_UNITS as usize, "{answers:?}");
    let mut distinct = started.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), started.len(), "a space was started twice");
    for (_, refused) in answers.iter().filter(|(_, a)| a.status != 202) {
        assert!(
            matches!(refused.code(), "quota_exceeded" | "invalid_state"),
            "{refused:?}"
        );
    }
    let quota = admin.get(&format!("/api/v1/users/{ann_id}/quota")).await;
    assert_eq!(
        quota.body["usage"],
        json!({"spaces": MAX_SPACES, "compute_units": COMPUTE_UNITS, "storage_units": 0, "tunnels": 0})
    );
    for id in started {
        admin.wait_for_state(id, "running").await;
    }
}

async fn new_ann(admin: &Client, server_for_login: &TestServer) -> (String, Client) {
    admin
        .new_member(server_for_login, "ann", json!({"max_spaces": MAX_SPACES, "compute_units": COMPUTE_UNITS, "storage_units": null}))
        .await
}

both_dbs!(simultaneous_creates_and_starts_never_exceed_the_quota);
async fn simultaneous_creates_and_starts_never_exceed_the_quota(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    let (ann_id, ann) = new_ann(&admin, &server).await;
    race(&admin, &[ann], &ann_id).await;
    server.stop().await;
}

#[tokio::test]
async fn simultaneous_creates_and_starts_never_exceed_the_quota_on_postgres_with_two_processes() {
    let db = PostgresDb::new().await;
    // One after the other: the first applies the migrations.
    let first = Process::start(&db.url).await;
    let second = Process::start(&db.url).await;
    let admin = admin(&first.server).await;
    let (ann_id, ann_first) = new_ann(&admin, &first.server).await;
    let ann_second = Client::signed_in(&second.server, "ann", "member-password").await;
    race(&admin, &[ann_first, ann_second], &ann_id).await;

    first.server.cleanup().await;
    first.kill_9().await;
    second.kill_9().await;
}
