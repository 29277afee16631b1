//! Liveness and readiness.

use crate::support::{both_dbs, json, TestDb, TestServer};

both_dbs!(ready_when_database_and_docker_answer);
async fn ready_when_database_and_docker_answer(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    assert_eq!(
        server
            .client
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let ready = server
        .client
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap();
    let status = ready.status();
    let body = json(ready).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["database"], "ok");
    assert_eq!(body["docker"], "ok");
    server.stop().await;
}

both_dbs!(not_ready_when_the_docker_socket_is_unreachable);
async fn not_ready_when_the_docker_socket_is_unreachable(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-docker.sock");
    let host = format!("unix://{}", missing.display());
    let server = TestServer::start(&db, &["--docker-host", &host]).await;
    let ready = server
        .client
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let body = json(ready).await;
    assert_eq!(body["ready"], false);
    assert_eq!(body["database"], "ok");
    // The reason is for admins (hardening::readiness_tells_the_reason_to_admins_only).
    assert_eq!(body["docker"], "unavailable", "{body}");
    // Liveness does not depend on Docker.
    assert_eq!(
        server
            .client
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    server.stop().await;
}
