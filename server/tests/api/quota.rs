//! Quotas: own + Σ groups, null = unlimited, checks on create and start, lowering below usage.

use serde_json::json;

use crate::support::{admin, both_dbs, Client, TestDb, TestServer};

/// `user_id`'s report in the list of every user's (`GET /users/quotas`).
async fn listed_report(admin: &Client, user_id: &str) -> serde_json::Value {
    let all = admin.get("/api/v1/users/quotas").await;
    assert_eq!(all.status, 200, "{all:?}");
    let entries = all.body.as_array().unwrap();
    assert!(
        entries.iter().any(|e| e["user_id"] != user_id),
        "the admin is listed too: {entries:?}"
    );
    entries
        .iter()
        .find(|e| e["user_id"] == user_id)
        .map(|e| e["report"].clone())
        .unwrap_or_else(|| panic!("{user_id} is not listed: {entries:?}"))
}

both_dbs!(effective_quota_is_own_plus_groups_with_null_unlimited);
async fn effective_quota_is_own_plus_groups_with_null_unlimited(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    let (ann_id, ann) = admin
        .new_member(
            &server,
            "ann",
            json!({"max_spaces": 1, "compute_units": 2, "storage_units": 10}),
        )
        .await;
    let small = admin
        .post(
            "/api/v1/groups",
            json!({"name": "small", "compute_units": 3, "max_spaces": 1}),
        )
        .await;
    let big = admin
        .post(
            "/api/v1/groups",
            json!({"name": "big", "compute_units": 5, "storage_units": null}),
        )
        .await;
    assert_eq!(small.status, 201, "{small:?}");
    assert_eq!(big.body["storage_units"], serde_json::Value::Null);
    assert_eq!(
        big.body["max_spaces"], 0,
        "an absent group value contributes 0"
    );
    for group in [&small, &big] {
        let added = admin
            .put(&format!("/api/v1/groups/{}/members/{ann_id}", group.id()))
            .await;
        assert_eq!(added.status, 200, "{added:?}");
        assert_eq!(added.body["members"][0]["username"], "ann");
    }

    let mine = ann.get("/api/v1/me/quota").await;
    assert_eq!(mine.status, 200);
    assert_eq!(
        without_tunnels(&mine.body["quota"]),
        json!({"max_spaces": 2, "compute_units": 10, "storage_units": null})
    );
    assert_eq!(
        mine.body["usage"],
        json!({"spaces": 0, "compute_units": 0, "storage_units": 0, "tunnels": 0})
    );
    let sources: Vec<&str> = mine.body["breakdown"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["source"].as_str().unwrap())
        .collect();
    assert_eq!(sources, ["own", "group:big", "group:small"]);
    assert_eq!(
        admin
            .get(&format!("/api/v1/users/{ann_id}/quota"))
            .await
            .body,
        mine.body
    );
    assert_eq!(
        ann.get(&format!("/api/v1/users/{ann_id}/quota"))
            .await
            .status,
        403
    );
    // The list admin pages read holds the same report, and is for admins only too.
    assert_eq!(listed_report(&admin, &ann_id).await, mine.body);
    assert_eq!(ann.get("/api/v1/users/quotas").await.status, 403);

    // Leaving a group takes its contribution away.
    admin
        .delete(&format!("/api/v1/groups/{}/members/{ann_id}", big.id()))
        .await;
    let after = ann.get("/api/v1/me/quota").await;
    assert_eq!(
        without_tunnels(&after.body["quota"]),
        json!({"max_spaces": 2, "compute_units": 5, "storage_units": 10})
    );
    server.stop().await;
}

both_dbs!(create_and_start_are_refused_over_quota_with_the_figures);
async fn create_and_start_are_refused_over_quota_with_the_figures(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    let (ann_id, ann) = admin
        .new_member(
            &server,
            "ann",
            json!({"max_spaces": 3, "compute_units": 3, "storage_units": 5}),
        )
        .await;
    let two_cu = admin
        .new_template(
            "two-cu",
            2,
            json!([{"name": "home", "mount_path": "/home/dev", "size_gib": 2}]),
        )
        .await;

    let api = ann
        .post(
            "/api/v1/spaces",
            json!({"name": "api", "template_id": two_cu}),
        )
        .await;
    assert_eq!(api.status, 201, "{api:?}");
    assert_eq!(api.body["state"], "created");
    assert_eq!(api.body["storage_units"], 2);
    let web = ann
        .post(
            "/api/v1/spaces",
            json!({"name": "web", "template_id": two_cu}),
        )
        .await;
    assert_eq!(web.status, 201);
    // A third would need 2 SU more than the 1 left.
    let third = ann
        .post(
            "/api/v1/spaces",
            json!({"name": "third", "template_id": two_cu}),
        )
        .await;
    assert_eq!(third.status, 409, "{third:?}");
    assert_eq!(third.code(), "quota_exceeded");
    assert_eq!(
        third.message(),
        "storage quota exceeded: 4 of 5 SU in use, creating \"third\" needs 2 SU"
    );
    assert_eq!(third.body["error"]["limit"], "storage_units");
    assert_eq!(third.body["error"]["usage"], 4);
    assert_eq!(third.body["error"]["quota"], 5);
    assert_eq!(third.body["error"]["needed"], 2);

    let started = ann
        .post_empty(&format!("/api/v1/spaces/{}/start", api.id()))
        .await;
    assert_eq!(started.status, 202, "{started:?}");
    ann.wait_for_state(&api.id(), "running").await;
    let refused = ann
        .post_empty(&format!("/api/v1/spaces/{}/start", web.id()))
        .await;
    assert_eq!(refused.status, 409);
    assert_eq!(
        refused.message(),
        "compute quota exceeded: 2 of 3 CU in use, starting \"web\" needs 2 CU"
    );
    assert_eq!(
        ann.get(&format!("/api/v1/spaces/{}", web.id())).await.body["state"],
        "created"
    );

    // Lowering the quota below usage stops nothing, refuses new work, shows over quota.
    let lowered = admin
        .patch(
            &format!("/api/v1/users/{ann_id}"),
            json!({"compute_units": 1, "storage_units": 1}),
        )
        .await;
    assert_eq!(lowered.status, 200, "{lowered:?}");
    let quota = ann.get("/api/v1/me/quota").await;
    assert_eq!(quota.body["over_quota"], true);
    assert_eq!(quota.body["usage"]["compute_units"], 2);
    assert_eq!(listed_report(&admin, &ann_id).await, quota.body);
    assert_eq!(
        ann.get(&format!("/api/v1/spaces/{}", api.id())).await.body["state"],
        "running"
    );
    // Stop and delete lower usage: always allowed, also over quota.
    assert_eq!(
        ann.post_empty(&format!("/api/v1/spaces/{}/stop", api.id()))
            .await
            .status,
        202
    );
    ann.wait_for_state(&api.id(), "stopped").await;
    assert_eq!(
        ann.post_empty(&format!("/api/v1/spaces/{}/start", api.id()))
            .await
            .code(),
        "quota_exceeded"
    );
    assert_eq!(
        ann.delete(&format!("/api/v1/spaces/{}", web.id()))
            .await
            .status,
        204
    );
    assert_eq!(
        ann.delete(&format!("/api/v1/spaces/{}", api.id()))
            .await
            .status,
        204
    );
    let empty = ann.get("/api/v1/me/quota").await;
    assert_eq!(
        empty.body["usage"],
        json!({"spaces": 0, "compute_units": 0, "storage_units": 0, "tunnels": 0})
    );
    assert_eq!(empty.body["over_quota"], false);

    // Refusals are audited.
    let refusals = admin.get("/api/v1/audit?outcome=refused").await;
    let actions: Vec<&str> = refusals
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"space.create") && actions.contains(&"space.start"),
        "{refusals:?}"
    );
    server.stop().await;
}

both_dbs!(quota_is_checked_against_the_owner_whoever_acts);
async fn quota_is_checked_against_the_owner_whoever_acts(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    let (ann_id, ann) = admin
        .new_member(&server, "ann", json!({"max_spaces": 1, "compute_units": 0}))
        .await;
    let tpl = admin.new_template("one-cu", 1, json!([])).await;
    // The admin creates a space for ann: it counts against ann.
    let made = admin
        .post(
            "/api/v1/spaces",
            json!({"name": "for-ann", "template_id": tpl, "owner_id": ann_id}),
        )
        .await;
    assert_eq!(made.status, 201, "{made:?}");
    assert_eq!(made.body["owner"]["username"], "ann");
    assert_eq!(ann.get("/api/v1/me/quota").await.body["usage"]["spaces"], 1);
    // An admin starting it is still held to ann's 0 CU.
    let start = admin
        .post_empty(&format!("/api/v1/spaces/{}/start", made.id()))
        .await;
    assert_eq!(start.code(), "quota_exceeded", "{start:?}");
    // Members cannot create for others.
    let (bob_id, _bob) = admin.new_member(&server, "bob", json!({})).await;
    let sneaky = ann
        .post(
            "/api/v1/spaces",
            json!({"name": "x1", "template_id": tpl, "owner_id": bob_id}),
        )
        .await;
    assert_eq!(sneaky.status, 403);
    server.stop().await;
}

both_dbs!(what_a_page_shows_follows_a_change_of_groups_or_rules_at_once);
/// The dashboard's quota and a space's allowed features are reused for a moment between
/// requests; a change that may alter them is seen by the very next request.
async fn what_a_page_shows_follows_a_change_of_groups_or_rules_at_once(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    let (ann_id, ann) = admin
        .new_member(
            &server,
            "ann",
            json!({"max_spaces": 2, "compute_units": 1, "storage_units": 10}),
        )
        .await;
    let compute = |report: &serde_json::Value| report["quota"]["compute_units"].clone();
    let group = admin
        .post(
            "/api/v1/groups",
            json!({"name": "team", "compute_units": 3}),
        )
        .await;
    assert_eq!(group.status, 201, "{group:?}");
    let group = group.id();
    assert_eq!(compute(&ann.get("/api/v1/me/quota").await.body), 1);
    admin
        .put(&format!("/api/v1/groups/{group}/members/{ann_id}"))
        .await;
    assert_eq!(compute(&ann.get("/api/v1/me/quota").await.body), 4);
    let changed = admin
        .patch(
            &format!("/api/v1/groups/{group}"),
            json!({"compute_units": 7}),
        )
        .await;
    assert_eq!(changed.status, 200, "{changed:?}");
    assert_eq!(compute(&ann.get("/api/v1/me/quota").await.body), 8);
    admin
        .delete(&format!("/api/v1/groups/{group}/members/{ann_id}"))
        .await;
    assert_eq!(compute(&ann.get("/api/v1/me/quota").await.body), 1);

    let template = admin.new_template("plain", 1, json!([])).await;
    let space = ann.new_space("web", &template).await;
    let allowed = |space: &serde_json::Value| {
        space["allowed_features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let before = allowed(&ann.get(&format!("/api/v1/spaces/{space}")).await.body);
    assert!(before.iter().any(|f| f == "terminal"), "{before:?}");
    let denied = admin
        .send(
            reqwest::Method::PUT,
            "/api/v1/feature-rules",
            Some(json!({"scope": "user", "subject": "ann", "feature": "terminal", "rule": "deny"})),
        )
        .await;
    assert!(denied.status < 300, "{denied:?}");
    let after = allowed(&ann.get(&format!("/api/v1/spaces/{space}")).await.body);
    assert!(!after.iter().any(|f| f == "terminal"), "{after:?}");
    let listed = ann.get("/api/v1/spaces").await;
    assert!(
        !allowed(&listed.body[0]).iter().any(|f| f == "terminal"),
        "{listed:?}"
    );
    server.stop().await;
}

/// A quota without its tunnel limit (the ports tests check that one).
fn without_tunnels(quota: &serde_json::Value) -> serde_json::Value {
    let mut quota = quota.clone();
    if let Some(fields) = quota.as_object_mut() {
        fields.remove("max_tunnels");
    }
    quota
}
