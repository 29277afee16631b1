//! The space lifecycle over HTTP against the real Docker engine, sharing, and bad input.

use serde_json::json;

use crate::support::{admin, both_dbs, docker, Client, TestDb, TestServer};

both_dbs!(every_transition_legal_and_illegal);
async fn every_transition_legal_and_illegal(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    let (_, ann) = admin
        .new_member(&server, "ann", json!({"compute_units": 4}))
        .await;
    let tpl = admin
        .new_template(
            "box",
            1,
            json!([{"name": "data", "mount_path": "/data", "size_gib": 1}]),
        )
        .await;
    let space = ann
        .post(
            "/api/v1/spaces",
            json!({"name": "life", "template_id": tpl}),
        )
        .await;
    let id = space.id();
    let path = |action: &str| format!("/api/v1/spaces/{id}/{action}");

    // created: stop and restart are illegal, naming the state.
    for action in ["stop", "restart"] {
        let refused = ann.post_empty(&path(action)).await;
        assert_eq!(refused.status, 409, "{refused:?}");
        assert_eq!(refused.code(), "invalid_state");
        assert_eq!(refused.body["error"]["state"], "created");
        assert!(refused.message().contains("created"), "{refused:?}");
    }
    let (exists, _) = docker(&["volume", "inspect", &format!("hangar-{id}-data")]).await;
    assert!(exists, "the volume is made at creation");

    // created → starting → running
    let starting = ann.post_empty(&path("start")).await;
    assert_eq!(starting.status, 202);
    assert_eq!(starting.body["state"], "starting");
    let running = ann.wait_for_state(&id, "running").await;
    assert!(running["started_at"].is_string());
    let (_, limits) = docker(&["inspect", "-f", "{{.HostConfig.NanoCpus}} {{.HostConfig.Memory}} {{index .Config.Labels \"io.hangar.space\"}}", &format!("hangar-{id}")]).await;
    assert_eq!(limits, format!("1000000000 1073741824 {id}"));
    assert_eq!(
        ann.post_empty(&path("start")).await.body["error"]["state"],
        "running"
    );

    // running → restart → running (the container is replaced)
    let (_, first_container) = docker(&["inspect", "-f", "{{.Id}}", &format!("hangar-{id}")]).await;
    assert_eq!(ann.post_empty(&path("restart")).await.status, 202);
    ann.wait_for_state(&id, "running").await;
    let (_, second_container) =
        docker(&["inspect", "-f", "{{.Id}}", &format!("hangar-{id}")]).await;
    assert_ne!(first_container, second_container);

    // running → stopping → stopped: the container goes, the volume stays.
    assert_eq!(ann.post_empty(&path("stop")).await.status, 202);
    let stopped = ann.wait_for_state(&id, "stopped").await;
    assert!(stopped["stopped_at"].is_string());
    assert!(!docker(&["inspect", &format!("hangar-{id}")]).await.0);
    assert!(
        docker(&["volume", "inspect", &format!("hangar-{id}-data")])
            .await
            .0
    );

    // stopped → start → running → delete (stops first, 202) → gone everywhere.
    ann.post_empty(&path("start")).await;
    ann.wait_for_state(&id, "running").await;
    let deleting = ann.delete(&format!("/api/v1/spaces/{id}")).await;
    assert_eq!(deleting.status, 202, "{deleting:?}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while ann.get(&format!("/api/v1/spaces/{id}")).await.status != 404 {
        assert!(std::time::Instant::now() < deadline, "never deleted");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(!docker(&["inspect", &format!("hangar-{id}")]).await.0);
    assert!(
        !docker(&["volume", "inspect", &format!("hangar-{id}-data")])
            .await
            .0
    );
    // A deleted space is gone for every action, and its name is free again.
    assert_eq!(ann.post_empty(&path("start")).await.status, 404);
    assert_eq!(ann.get("/api/v1/spaces").await.body, json!([]));
    let again = ann
        .post(
            "/api/v1/spaces",
            json!({"name": "life", "template_id": tpl}),
        )
        .await;
    assert_eq!(again.status, 201);
    // created → delete at once (204).
    assert_eq!(
        ann.delete(&format!("/api/v1/spaces/{}", again.id()))
            .await
            .status,
        204
    );
    server.stop().await;
}

both_dbs!(a_stop_during_starting_cancels_the_start);
async fn a_stop_during_starting_cancels_the_start(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    let tpl = admin.new_template("box", 1, json!([])).await;
    let space = admin
        .post(
            "/api/v1/spaces",
            json!({"name": "quick", "template_id": tpl}),
        )
        .await;
    let id = space.id();
    assert_eq!(
        admin
            .post_empty(&format!("/api/v1/spaces/{id}/start"))
            .await
            .body["state"],
        "starting"
    );
    let stop = admin.post_empty(&format!("/api/v1/spaces/{id}/stop")).await;
    assert_eq!(stop.status, 202, "{stop:?}");
    admin.wait_for_state(&id, "stopped").await;
    // Whatever the start had made is gone, and compute is released.
    assert!(!docker(&["inspect", &format!("hangar-{id}")]).await.0);
    assert_eq!(
        admin.get("/api/v1/me/quota").await.body["usage"]["compute_units"],
        0
    );
    server.stop().await;
}

both_dbs!(a_bad_image_lands_in_stopped_with_a_clear_error_and_quota_released);
async fn a_bad_image_lands_in_stopped_with_a_clear_error_and_quota_released(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    let made = admin
        .post(
            "/api/v1/templates",
            json!({"name": "broken", "image": "hangar/no-such-image:1", "compute_units": 1}),
        )
        .await;
    let space = admin
        .post(
            "/api/v1/spaces",
            json!({"name": "broken", "template_id": made.id()}),
        )
        .await;
    admin
        .post_empty(&format!("/api/v1/spaces/{}/start", space.id()))
        .await;
    let stopped = admin.wait_for_state(&space.id(), "stopped").await;
    let error = stopped["last_error"].as_str().unwrap();
    assert!(
        error.contains("hangar/no-such-image:1") && error.contains("not on the Docker host"),
        "{error}"
    );
    assert_eq!(
        admin.get("/api/v1/me/quota").await.body["usage"]["compute_units"],
        0
    );
    server.stop().await;
}

both_dbs!(sharing_lets_a_user_see_but_not_change_and_revoking_hides_again);
async fn sharing_lets_a_user_see_but_not_change_and_revoking_hides_again(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    let (_, ann) = admin.new_member(&server, "ann", json!({})).await;
    let (bob_id, bob) = admin.new_member(&server, "bob", json!({})).await;
    let tpl = admin.new_template("box", 1, json!([])).await;
    let space = ann
        .post(
            "/api/v1/spaces",
            json!({"name": "shared", "template_id": tpl}),
        )
        .await;
    let id = space.id();
    assert_eq!(bob.get(&format!("/api/v1/spaces/{id}")).await.status, 404);

    let shares = ann
        .put(&format!("/api/v1/spaces/{id}/shares/{bob_id}"))
        .await;
    assert_eq!(shares.status, 200, "{shares:?}");
    assert_eq!(shares.body[0]["user"]["username"], "bob");
    assert_eq!(shares.body[0]["granted_by"], "ann");

    let seen = bob.get("/api/v1/spaces").await;
    assert_eq!(seen.body[0]["name"], "shared");
    assert_eq!(seen.body[0]["shared_with_me"], true);
    assert_eq!(seen.body[0]["can_manage"], false);
    assert_eq!(seen.body[0]["owner"]["username"], "ann");
    assert_eq!(
        seen.body[0]["shared_with"],
        json!([]),
        "sharees do not see the share list"
    );
    for (method, path) in [
        ("POST", format!("/api/v1/spaces/{id}/start")),
        ("DELETE", format!("/api/v1/spaces/{id}")),
        ("PUT", format!("/api/v1/spaces/{id}/shares/{bob_id}")),
        ("GET", format!("/api/v1/spaces/{id}/shares")),
    ] {
        let answer = bob.send(method.parse().unwrap(), &path, None).await;
        assert_eq!(answer.status, 403, "{method} {path}: {answer:?}");
    }
    // Usage counts for the owner only.
    assert_eq!(bob.get("/api/v1/me/quota").await.body["usage"]["spaces"], 0);

    assert_eq!(
        ann.delete(&format!("/api/v1/spaces/{id}/shares/{bob_id}"))
            .await
            .body,
        json!([])
    );
    assert_eq!(bob.get(&format!("/api/v1/spaces/{id}")).await.status, 404);
    assert_eq!(
        ann.delete(&format!("/api/v1/spaces/{id}/shares/{bob_id}"))
            .await
            .status,
        404
    );
    let audit = admin.get("/api/v1/audit?action=space.share").await;
    assert_eq!(audit.body[0]["details"]["user"], "bob");
    assert_eq!(
        admin
            .get("/api/v1/audit?action=space.unshare")
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
    server.stop().await;
}

both_dbs!(bad_input_is_refused_with_the_field_named);
async fn bad_input_is_refused_with_the_field_named(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    let tpl = admin.new_template("box", 1, json!([])).await;
    let cases = [
        (json!({"name": "Bad Name", "template_id": tpl}), 400, "name"),
        (json!({"name": "a", "template_id": tpl}), 400, "name"),
        (
            json!({"name": "x".repeat(40), "template_id": tpl}),
            400,
            "name",
        ),
        (
            json!({"name": "ok-name", "template_id": "nope"}),
            400,
            "template_id",
        ),
    ];
    for (body, status, field) in cases {
        let answer = admin.post("/api/v1/spaces", body.clone()).await;
        assert_eq!(answer.status, status, "{body}: {answer:?}");
        assert_eq!(answer.body["error"]["field"], field, "{body}: {answer:?}");
    }
    let unknown = admin
        .post(
            "/api/v1/spaces",
            json!({"name": "ok", "template_id": tpl, "size": 3}),
        )
        .await;
    assert_eq!(unknown.status, 400);
    assert!(unknown.message().contains("size"), "{unknown:?}");
    let wrong_type = admin
        .post("/api/v1/spaces", json!({"name": 5, "template_id": tpl}))
        .await;
    assert_eq!(wrong_type.status, 400);

    let negative = admin
        .post(
            "/api/v1/templates",
            json!({"name": "neg", "image": "x", "compute_units": -1}),
        )
        .await;
    assert_eq!(
        (negative.status, negative.body["error"]["field"].as_str()),
        (400, Some("compute_units"))
    );
    let bad_volume = admin
        .post("/api/v1/templates", json!({"name": "vol", "image": "x", "compute_units": 1, "volumes": [{"name": "v1", "mount_path": "relative", "size_gib": 1}]}))
        .await;
    assert_eq!(bad_volume.body["error"]["field"], "volumes");
    let negative_quota = admin
        .post(
            "/api/v1/users",
            json!({"username": "neg", "password": "long-enough", "compute_units": -2}),
        )
        .await;
    assert_eq!(negative_quota.body["error"]["field"], "compute_units");
    let bad_user = admin
        .post(
            "/api/v1/users",
            json!({"username": "UPPER", "password": "long-enough"}),
        )
        .await;
    assert_eq!(bad_user.body["error"]["field"], "username");
    let short_password = admin
        .post(
            "/api/v1/users",
            json!({"username": "shorty", "password": "x"}),
        )
        .await;
    assert_eq!(short_password.body["error"]["field"], "password");
    let dup = admin
        .post(
            "/api/v1/users",
            json!({"username": "admin", "password": "long-enough"}),
        )
        .await;
    assert_eq!((dup.status, dup.code()), (409, "conflict"));
    for path in [
        "/api/v1/spaces/nope",
        "/api/v1/users/nope",
        "/api/v1/groups/nope",
        "/api/v1/templates/nope",
    ] {
        assert_eq!(admin.get(path).await.status, 404, "{path}");
    }
    let space = admin
        .post(
            "/api/v1/spaces",
            json!({"name": "twin", "template_id": tpl}),
        )
        .await;
    assert_eq!(space.status, 201);
    let twin = admin
        .post(
            "/api/v1/spaces",
            json!({"name": "twin", "template_id": tpl}),
        )
        .await;
    assert_eq!((twin.status, twin.code()), (409, "conflict"));
    let bad_query = admin.get("/api/v1/spaces?all=maybe").await;
    assert_eq!(bad_query.status, 400);
    server.stop().await;
}

both_dbs!(templates_are_archived_when_spaces_use_them_and_limited_to_their_groups);
async fn templates_are_archived_when_spaces_use_them_and_limited_to_their_groups(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    let (ann_id, ann) = admin.new_member(&server, "ann", json!({})).await;
    let (_, bob) = admin.new_member(&server, "bob", json!({})).await;
    let team = admin
        .post("/api/v1/groups", json!({"name": "team"}))
        .await
        .id();
    admin
        .put(&format!("/api/v1/groups/{team}/members/{ann_id}"))
        .await;
    let restricted = admin
        .post("/api/v1/templates", json!({"name": "team-only", "image": "hangar/busybox:test", "compute_units": 0,
            "volumes": [{"name": "a1", "mount_path": "/a", "size_gib": 2}, {"name": "b1", "mount_path": "/b", "size_gib": 3}],
            "allowed_groups": [team]}))
        .await;
    assert_eq!(
        restricted.body["storage_units"], 5,
        "derived from the volumes"
    );
    let tid = restricted.id();
    assert_eq!(
        ann.get("/api/v1/templates")
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(bob.get("/api/v1/templates").await.body, json!([]));
    assert_eq!(
        bob.get(&format!("/api/v1/templates/{tid}")).await.status,
        404
    );
    let refused = bob
        .post(
            "/api/v1/spaces",
            json!({"name": "nope", "template_id": tid}),
        )
        .await;
    assert_eq!(refused.status, 400);
    assert_eq!(
        ann.post(
            "/api/v1/templates",
            json!({"name": "x", "image": "x", "compute_units": 1})
        )
        .await
        .status,
        403
    );

    let space = ann
        .post(
            "/api/v1/spaces",
            json!({"name": "keep", "template_id": tid}),
        )
        .await;
    assert_eq!(space.status, 201);
    // Editing the template never changes an existing space's accounting.
    let edited = admin
        .patch(
            &format!("/api/v1/templates/{tid}"),
            json!({"compute_units": 8, "volumes": []}),
        )
        .await;
    assert_eq!(
        (
            edited.body["version"].as_i64(),
            edited.body["storage_units"].as_i64()
        ),
        (Some(2), Some(0))
    );
    let kept = ann.get(&format!("/api/v1/spaces/{}", space.id())).await;
    assert_eq!(
        (
            kept.body["compute_units"].as_i64(),
            kept.body["storage_units"].as_i64()
        ),
        (Some(0), Some(5))
    );

    let archived = admin.delete(&format!("/api/v1/templates/{tid}")).await;
    assert_eq!(archived.status, 200, "{archived:?}");
    assert_eq!(archived.body["archived"], true);
    assert_eq!(ann.get("/api/v1/templates").await.body, json!([]));
    ann.delete(&format!("/api/v1/spaces/{}", space.id())).await;
    assert_eq!(
        admin
            .delete(&format!("/api/v1/templates/{tid}"))
            .await
            .status,
        204
    );
    assert_eq!(
        admin.get(&format!("/api/v1/templates/{tid}")).await.status,
        404
    );
    let _ = Client::anonymous(&server);
    server.stop().await;
}
