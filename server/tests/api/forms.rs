//! What the pages ask before and after acting: the create preview, a space's history, the
//! caller's own password change, and sharing by username.

use serde_json::json;

use crate::support::{admin, both_dbs, Client, TestDb, TestServer};

both_dbs!(the_create_preview_shows_usage_after_and_the_refusal_create_would_give);
async fn the_create_preview_shows_usage_after_and_the_refusal_create_would_give(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    let (_, ann) = admin
        .new_member(
            &server,
            "ann",
            json!({"max_spaces": 1, "compute_units": 1, "storage_units": 10}),
        )
        .await;
    let template = admin
        .new_template(
            "big",
            2,
            json!([{"name": "home", "mount_path": "/home/dev", "size_gib": 4}]),
        )
        .await;

    let preview = ann
        .get(&format!("/api/v1/templates/{template}/preview"))
        .await;
    assert_eq!(preview.status, 200, "{preview:?}");
    assert_eq!(
        preview.body["usage"],
        json!({"spaces": 0, "compute_units": 0, "storage_units": 0, "tunnels": 0})
    );
    assert_eq!(
        preview.body["after_create"],
        json!({"spaces": 1, "compute_units": 0, "storage_units": 4, "tunnels": 0})
    );
    assert_eq!(preview.body["after_start"]["compute_units"], 2);
    assert_eq!(preview.body["refusal"], serde_json::Value::Null);
    // It fits, but 2 CU will not start within a 1 CU quota: said before creating.
    assert!(
        preview.body["start_refusal"]
            .as_str()
            .unwrap()
            .starts_with("compute quota exceeded: 0 of 1 CU in use"),
        "{preview:?}"
    );

    let created = ann
        .post(
            "/api/v1/spaces",
            json!({"name": "one", "template_id": template}),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let preview = ann
        .get(&format!("/api/v1/templates/{template}/preview"))
        .await;
    let refusal = preview.body["refusal"].as_str().unwrap().to_owned();
    assert!(
        refusal.starts_with("space quota exceeded: 1 of 1 spaces in use"),
        "{refusal}"
    );
    // The same words create answers with.
    let refused = ann
        .post(
            "/api/v1/spaces",
            json!({"name": "two", "template_id": template}),
        )
        .await;
    assert_eq!(refused.status, 409);
    assert_eq!(refused.code(), "quota_exceeded");

    // A template the caller may not use is not there.
    let hidden = admin
        .post("/api/v1/groups", json!({"name": "others"}))
        .await
        .id();
    let private = admin.new_template("private", 1, json!([])).await;
    admin
        .patch(
            &format!("/api/v1/templates/{private}"),
            json!({"allowed_groups": [hidden]}),
        )
        .await;
    let answer = ann
        .get(&format!("/api/v1/templates/{private}/preview"))
        .await;
    assert_eq!(answer.status, 404, "{answer:?}");
    server.stop().await;
}

both_dbs!(a_space_history_lists_its_own_events_newest_first_for_who_may_see_it);
async fn a_space_history_lists_its_own_events_newest_first_for_who_may_see_it(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    let (_, ann) = admin.new_member(&server, "ann", json!({})).await;
    let (_, bob) = admin.new_member(&server, "bob", json!({})).await;
    let template = admin.new_template("box", 0, json!([])).await;
    let create = |name: &'static str| {
        let ann = &ann;
        let template = template.clone();
        async move {
            ann.post(
                "/api/v1/spaces",
                json!({"name": name, "template_id": template}),
            )
            .await
        }
    };
    // A space of the same name that was deleted before: not part of the new one's history.
    let old = create("api").await.id();
    assert_eq!(
        ann.delete(&format!("/api/v1/spaces/{old}")).await.status,
        204
    );
    let space = create("api").await.id();
    assert_eq!(
        ann.put(&format!("/api/v1/spaces/{space}/shares/bob"))
            .await
            .status,
        200
    );

    let history = ann.get(&format!("/api/v1/spaces/{space}/history")).await;
    assert_eq!(history.status, 200, "{history:?}");
    let actions: Vec<&str> = history
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["space.share", "space.create"]);
    // The sharee sees it too; someone else gets 404.
    assert_eq!(
        bob.get(&format!("/api/v1/spaces/{space}/history"))
            .await
            .status,
        200
    );
    let (_, eve) = admin.new_member(&server, "eve", json!({})).await;
    assert_eq!(
        eve.get(&format!("/api/v1/spaces/{space}/history"))
            .await
            .status,
        404
    );
    server.stop().await;
}

both_dbs!(people_change_their_own_password_knowing_the_current_one);
async fn people_change_their_own_password_knowing_the_current_one(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    let (_, ann) = admin.new_member(&server, "ann", json!({})).await;

    let wrong = ann
        .post(
            "/api/v1/me/password",
            json!({"current_password": "guess", "new_password": "a-new-password"}),
        )
        .await;
    assert_eq!(wrong.status, 400, "{wrong:?}");
    assert_eq!(wrong.body["error"]["field"], "current_password");
    let weak = ann
        .post(
            "/api/v1/me/password",
            json!({"current_password": "member-password", "new_password": "short"}),
        )
        .await;
    assert_eq!(weak.status, 400);
    assert_eq!(weak.body["error"]["field"], "new_password");
    let changed = ann
        .post(
            "/api/v1/me/password",
            json!({"current_password": "member-password", "new_password": "a-new-password"}),
        )
        .await;
    assert_eq!(changed.status, 204, "{changed:?}");

    assert_eq!(server.login("ann", "member-password").await.status(), 401);
    Client::signed_in(&server, "ann", "a-new-password").await;
    let anonymous = Client::anonymous(&server)
        .post(
            "/api/v1/me/password",
            json!({"current_password": "x", "new_password": "yyyyyyyy"}),
        )
        .await;
    assert_eq!(anonymous.status, 401);
    server.stop().await;
}

both_dbs!(sharing_takes_a_username_and_says_when_there_is_no_such_user);
async fn sharing_takes_a_username_and_says_when_there_is_no_such_user(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    let (_, ann) = admin.new_member(&server, "ann", json!({})).await;
    let (bob_id, bob) = admin.new_member(&server, "bob", json!({})).await;
    let template = admin.new_template("box", 0, json!([])).await;
    let space = ann
        .post(
            "/api/v1/spaces",
            json!({"name": "api", "template_id": template}),
        )
        .await
        .id();

    let missing = ann
        .put(&format!("/api/v1/spaces/{space}/shares/nobody"))
        .await;
    assert_eq!(missing.status, 400, "{missing:?}");
    assert_eq!(missing.body["error"]["field"], "user");
    assert!(missing.message().contains("nobody"));

    let shared = ann.put(&format!("/api/v1/spaces/{space}/shares/bob")).await;
    assert_eq!(shared.status, 200, "{shared:?}");
    assert_eq!(shared.body[0]["user"]["id"], bob_id);
    assert_eq!(
        bob.get(&format!("/api/v1/spaces/{space}")).await.status,
        200
    );
    server.stop().await;
}
