//! Spaces as real Docker objects: labelled volumes, limits, mounts, networks, persistence,
//! the reconciler noticing dead containers, and orphans.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{
    admin, both_dbs, docker, http_from_space, in_space as exec, TestDb, TestServer, ADMIN_PASSWORD,
};

both_dbs!(containers_get_limits_mounts_labels_and_volumes_persist);
async fn containers_get_limits_mounts_labels_and_volumes_persist(db: TestDb) {
    let server =
        TestServer::start(&db, &["--cpus-per-cu", "0.5", "--memory-mib-per-cu", "256"]).await;
    let admin = admin(&server).await;
    let (_, ann) = admin.new_member(&server, "ann", json!({})).await;
    let tpl = admin
        .post(
            "/api/v1/templates",
            json!({"name": "work", "image": "hangar/busybox:test", "compute_units": 2,
            "env": {"GREETING": "hello"},
            "volumes": [{"name": "home", "mount_path": "/home/dev", "size_gib": 1}]}),
        )
        .await
        .id();
    let id = ann
        .post(
            "/api/v1/spaces",
            json!({"name": "work", "template_id": tpl}),
        )
        .await
        .id();
    let (_, labels) = docker(&[
        "volume",
        "inspect",
        "-f",
        "{{index .Labels \"io.hangar.space\"}} {{index .Labels \"io.hangar.owner\"}}",
        &format!("hangar-{id}-home"),
    ])
    .await;
    assert_eq!(labels, format!("{id} ann"));

    ann.post_empty(&format!("/api/v1/spaces/{id}/start")).await;
    ann.wait_for_state(&id, "running").await;
    let (_, config) = docker(&["inspect", "-f", "{{.HostConfig.NanoCpus}} {{.HostConfig.Memory}} {{.Config.Hostname}} {{index .Config.Labels \"io.hangar.owner\"}} {{range $name, $_ := .NetworkSettings.Networks}}{{$name}}{{end}}", &format!("hangar-{id}")]).await;
    assert!(
        config.starts_with("1000000000 536870912 work ann hangar-spaces-"),
        "{config}"
    );
    assert_eq!(exec(&id, "echo $GREETING").await.1, "hello");
    assert!(
        exec(&id, "echo kept > /home/dev/note && echo lost > /tmp/note")
            .await
            .0
    );

    ann.post_empty(&format!("/api/v1/spaces/{id}/stop")).await;
    ann.wait_for_state(&id, "stopped").await;
    assert!(
        !docker(&["inspect", &format!("hangar-{id}")]).await.0,
        "stopping removes the container"
    );
    ann.post_empty(&format!("/api/v1/spaces/{id}/start")).await;
    ann.wait_for_state(&id, "running").await;
    assert_eq!(exec(&id, "cat /home/dev/note").await.1, "kept");
    assert!(
        !exec(&id, "cat /tmp/note").await.0,
        "memory and the container's own files are lost"
    );
    server.stop().await;
    assert!(
        !docker(&["volume", "inspect", &format!("hangar-{id}-home")])
            .await
            .0,
        "deleting removes the volumes"
    );
}

both_dbs!(spaces_of_two_users_cannot_reach_each_other);
async fn spaces_of_two_users_cannot_reach_each_other(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    let (_, ann) = admin.new_member(&server, "ann", json!({})).await;
    let (_, bob) = admin.new_member(&server, "bob", json!({})).await;
    let tpl = admin.new_template("box", 1, json!([])).await;
    let a = ann
        .post("/api/v1/spaces", json!({"name": "a1", "template_id": tpl}))
        .await
        .id();
    let b = bob
        .post("/api/v1/spaces", json!({"name": "b1", "template_id": tpl}))
        .await
        .id();
    for (client, id) in [(&ann, &a), (&bob, &b)] {
        client
            .post_empty(&format!("/api/v1/spaces/{id}/start"))
            .await;
        client.wait_for_state(id, "running").await;
    }
    let (_, b_ip) = docker(&[
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        &format!("hangar-{b}"),
    ])
    .await;
    assert!(!b_ip.is_empty());
    // The space reaches the outside (it has a network: the Debian mirror, which the
    // machine's image builds use too) but not the other space.
    assert!(
        http_from_space(&a, "deb.debian.org", 80, "/debian/", 5)
            .await
            .starts_with("HTTP/1.1"),
        "no network at all?"
    );
    assert!(
        !exec(&a, &format!("ping -c 1 -W 1 {b_ip}")).await.0,
        "ann's space reached bob's at {b_ip}"
    );
    server.stop().await;
}

both_dbs!(a_killed_container_turns_its_space_stopped_within_5_seconds);
async fn a_killed_container_turns_its_space_stopped_within_5_seconds(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    let tpl = admin.new_template("box", 1, json!([])).await;
    let id = admin
        .post(
            "/api/v1/spaces",
            json!({"name": "victim", "template_id": tpl}),
        )
        .await
        .id();
    admin
        .post_empty(&format!("/api/v1/spaces/{id}/start"))
        .await;
    admin.wait_for_state(&id, "running").await;

    assert!(docker(&["kill", &format!("hangar-{id}")]).await.0);
    let killed_at = Instant::now();
    let stopped = admin.wait_for_state(&id, "stopped").await;
    assert!(
        killed_at.elapsed() < Duration::from_secs(5),
        "took {:?}",
        killed_at.elapsed()
    );
    let error = stopped["last_error"].as_str().unwrap();
    assert!(
        error.contains("stopped on its own") && error.contains("exited with code 137"),
        "{error}"
    );
    // Its owner is told, with the reason: nothing else would tell them their work stopped.
    let told = admin.told("space_stopped", Duration::from_secs(5)).await;
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(
        told[0]["title"] == "victim stopped on its own"
            && told[0]["body"]
                .as_str()
                .unwrap()
                .contains("exited with code 137"),
        "{told:?}"
    );
    assert_eq!(
        admin.get("/api/v1/me/quota").await.body["usage"]["compute_units"],
        0
    );
    // It starts again cleanly.
    admin
        .post_empty(&format!("/api/v1/spaces/{id}/start"))
        .await;
    admin.wait_for_state(&id, "running").await;
    let died = admin.get("/api/v1/audit?action=space.died").await;
    assert_eq!(died.body[0]["outcome"], "failed");
    server.stop().await;
}

both_dbs!(first_run_creates_a_ready_default_template);
async fn first_run_creates_a_ready_default_template(db: TestDb) {
    let server = TestServer::start(&db, &["--default-template", "true"]).await;
    let admin = admin(&server).await;
    let templates = admin.get("/api/v1/templates").await;
    assert_eq!(templates.body[0]["name"], "default");
    assert_eq!(templates.body[0]["image"], "hangar/default:bookworm");
    assert_eq!(templates.body[0]["shell"], "/bin/bash");
    assert_eq!(templates.body[0]["storage_units"], 10);
    // And a full one, with VS Code in the browser and a desktop.
    assert_eq!(templates.body[1]["name"], "full");
    assert_eq!(templates.body[1]["image"], "hangar/full:bookworm");
    assert_eq!(
        templates.body[1]["features"],
        serde_json::json!([
            "terminal",
            "ssh",
            "code_server",
            "vnc",
            "port_forwarding",
            "tunnels",
            "file_transfer"
        ])
    );
    server.shutdown().await;
    // A restart does not add another.
    let again = TestServer::start(&db, &["--default-template", "true"]).await;
    let admin = crate::support::Client::signed_in(&again, "admin", ADMIN_PASSWORD).await;
    assert_eq!(
        admin
            .get("/api/v1/templates")
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        2
    );
    again.stop().await;
}
