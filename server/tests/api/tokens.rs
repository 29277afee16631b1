//! API tokens (bearer auth, shown once, expiring, revocable), SSH keys and the audit log.

use serde_json::json;

use crate::support::{admin, both_dbs, Client, TestDb, TestServer};

both_dbs!(api_tokens_authenticate_until_revoked);
async fn api_tokens_authenticate_until_revoked(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    let (_, ann) = admin.new_member(&server, "ann", json!({})).await;
    let created = ann
        .post(
            "/api/v1/me/tokens",
            json!({"name": "ci", "expires_in_days": 7}),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let secret = created.body["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("hgr_") && secret.len() > 30);
    let token_id = created.body["token"]["id"].as_str().unwrap().to_owned();

    let listed = ann.get("/api/v1/me/tokens").await;
    assert_eq!(listed.body[0]["name"], "ci");
    assert!(
        !listed.body.to_string().contains(&secret),
        "the secret is shown once only"
    );

    let bearer = Client::with_token(&server, &secret);
    assert_eq!(
        bearer.get("/api/v1/me").await.body["user"]["username"],
        "ann"
    );
    // No cookie, no Origin needed: scripts and the CLI work with the token alone.
    let tpl = admin.new_template("box", 0, json!([])).await;
    let space = server
        .client
        .post(server.url("/api/v1/spaces"))
        .bearer_auth(&secret)
        .json(&json!({"name": "via-token", "template_id": tpl}))
        .send()
        .await
        .unwrap();
    assert_eq!(space.status(), 201);
    assert!(ann.get("/api/v1/me/tokens").await.body[0]["last_used_at"].is_string());

    assert_eq!(
        ann.delete(&format!("/api/v1/me/tokens/{token_id}"))
            .await
            .status,
        204
    );
    let revoked = bearer.get("/api/v1/me").await;
    assert_eq!(revoked.status, 401);
    assert!(revoked.message().contains("revoked"), "{revoked:?}");
    assert_eq!(
        Client::with_token(&server, "hgr_made_up")
            .get("/api/v1/me")
            .await
            .status,
        401
    );
    let bad = ann
        .post(
            "/api/v1/me/tokens",
            json!({"name": "x", "expires_in_days": 0}),
        )
        .await;
    assert_eq!(bad.body["error"]["field"], "expires_in_days");
    // Another user cannot revoke ann's token.
    let other = ann.post("/api/v1/me/tokens", json!({"name": "keep"})).await;
    let other_id = other.body["token"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        admin
            .delete(&format!("/api/v1/me/tokens/{other_id}"))
            .await
            .status,
        404
    );
    server.stop().await;
}

both_dbs!(ssh_keys_are_validated_and_unique);
async fn ssh_keys_are_validated_and_unique(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ann@laptop";
    let added = admin
        .post("/api/v1/me/ssh-keys", json!({"public_key": key}))
        .await;
    assert_eq!(added.status, 201, "{added:?}");
    assert_eq!(added.body["name"], "ann@laptop");
    assert!(added.body["fingerprint"]
        .as_str()
        .unwrap()
        .starts_with("SHA256:"));
    assert_eq!(
        admin
            .post("/api/v1/me/ssh-keys", json!({"public_key": key}))
            .await
            .status,
        409
    );
    let bad = admin
        .post("/api/v1/me/ssh-keys", json!({"public_key": "not a key"}))
        .await;
    assert_eq!(
        (bad.status, bad.body["error"]["field"].as_str()),
        (400, Some("public_key"))
    );
    assert_eq!(
        admin
            .get("/api/v1/me/ssh-keys")
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        admin
            .delete(&format!("/api/v1/me/ssh-keys/{}", added.id()))
            .await
            .status,
        204
    );
    assert_eq!(admin.get("/api/v1/me/ssh-keys").await.body, json!([]));
    server.stop().await;
}

both_dbs!(the_audit_log_records_who_did_what_newest_first);
async fn the_audit_log_records_who_did_what_newest_first(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    let (ann_id, _) = admin.new_member(&server, "ann", json!({})).await;
    let group = admin
        .post(
            "/api/v1/groups",
            json!({"name": "team", "compute_units": 2}),
        )
        .await;
    admin
        .put(&format!("/api/v1/groups/{}/members/{ann_id}", group.id()))
        .await;
    admin
        .patch(
            &format!("/api/v1/groups/{}", group.id()),
            json!({"compute_units": 1}),
        )
        .await;

    let all = admin.get("/api/v1/audit").await;
    let actions: Vec<&str> = all
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "group.update",
            "group.member.add",
            "group.create",
            "user.create"
        ]
    );
    assert_eq!(all.body[0]["actor"], "admin");
    assert_eq!(all.body[0]["target"], "group:team");
    assert_eq!(all.body[0]["outcome"], "success");
    let page = admin
        .get(&format!(
            "/api/v1/audit?limit=2&before={}",
            all.body[1]["id"]
        ))
        .await;
    let paged: Vec<&str> = page
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(paged, ["group.create", "user.create"]);
    assert_eq!(admin.get("/api/v1/audit?limit=0").await.status, 400);
    assert_eq!(admin.get("/api/v1/audit?bogus=1").await.status, 400);
    server.stop().await;
}
