//! API tokens (bearer auth, shown once, expiring, revocable), SSH keys and the audit log.

use serde_json::{json, Value};

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

// A token that creates a token with the default lifetime gets one that ends with it (the
// answer says so); a lifetime asked beyond its own is still refused.
both_dbs!(a_token_made_by_a_token_with_the_default_lifetime_ends_with_it);
async fn a_token_made_by_a_token_with_the_default_lifetime_ends_with_it(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    let (_, ann) = admin.new_member(&server, "ann", json!({})).await;
    // Both with the default lifetime (90 days): the new one would end seconds later.
    let keeper = ann
        .post(
            "/api/v1/me/tokens",
            json!({"name": "keeper", "scopes": ["credentials"]}),
        )
        .await;
    assert_eq!(keeper.status, 201, "{keeper:?}");
    assert!(keeper.body.get("note").is_none(), "{keeper:?}");
    let keeper_ends = keeper.body["token"]["expires_at"]
        .as_str()
        .unwrap()
        .to_owned();
    let by_token = Client::with_token(&server, keeper.body["secret"].as_str().unwrap());

    let child = by_token
        .post("/api/v1/me/tokens", json!({"name": "child"}))
        .await;
    assert_eq!(child.status, 201, "{child:?}");
    assert_eq!(child.body["token"]["expires_at"], keeper_ends.as_str());
    let note = child.body["note"].as_str().unwrap();
    assert!(
        note.contains("cannot outlive the token that creates it") && note.contains(&keeper_ends),
        "{note}"
    );
    let works = Client::with_token(&server, child.body["secret"].as_str().unwrap());
    assert_eq!(works.get("/api/v1/me").await.status, 200);

    // Asked for in so many words, a longer life is refused as before.
    let longer = by_token
        .post(
            "/api/v1/me/tokens",
            json!({"name": "longer", "expires_in_days": 90}),
        )
        .await;
    assert_eq!(
        (longer.status, longer.body["error"]["field"].as_str()),
        (400, Some("expires_in_days")),
        "{longer:?}"
    );
    assert!(longer.message().contains("cannot outlive"), "{longer:?}");
    // A shorter one it may ask for carries no note.
    let shorter = by_token
        .post(
            "/api/v1/me/tokens",
            json!({"name": "shorter", "expires_in_days": 3}),
        )
        .await;
    assert_eq!(shorter.status, 201, "{shorter:?}");
    assert!(shorter.body.get("note").is_none(), "{shorter:?}");

    // The document says what the note is.
    let doc = ann.get("/api/v1/openapi.json").await;
    let documented = doc.body["components"]["schemas"]["TokenCreated"]["properties"]["note"]
        ["description"]
        .as_str()
        .unwrap_or_default();
    assert!(documented.contains("cannot outlive"), "{documented}");
    server.stop().await;
}

/// What the read-only walk saw: how many operations of the document, WebSockets and proxied
/// requests it tried, by what they are.
#[derive(Debug, Default)]
struct Walked {
    reads: Vec<String>,
    changes: Vec<String>,
    websockets: Vec<String>,
    open: Vec<String>,
    /// Requests to an app through the proxy.
    proxied: Vec<String>,
}

/// The GETs of the document that open a way into the space without being a WebSocket: the
/// VS Code tunnel's sign-in code lets whoever enters it in.
const CHANGING_GETS: [&str; 1] = ["/api/v1/spaces/{id}/vscode-tunnel"];

/// Whether an answer is the 403 of a token that lacks the `write` scope, naming it.
fn refused_for_write(status: u16, body: &Value) -> bool {
    status == 403
        && body["error"]["scope"] == "write"
        && body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("`write` scope"))
}

/// Opens a WebSocket at `path` with `token`; its HTTP status (101 once open) and the body of a
/// refusal.
async fn websocket_status(server: &TestServer, path: &str, token: &str) -> (u16, Value) {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{}{path}", server.addr)
        .into_client_request()
        .unwrap();
    let headers = request.headers_mut();
    headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
    headers.insert("origin", server.url("").parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Ok((mut socket, response)) => {
            let _ = socket.close(None).await;
            (response.status().as_u16(), Value::Null)
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let body = response
                .body()
                .as_deref()
                .and_then(|b| serde_json::from_slice(b).ok())
                .unwrap_or(Value::Null);
            (response.status().as_u16(), body)
        }
        Err(e) => panic!("websocket {path}: {e}"),
    }
}

// A `read` token of a user who owns a running space with every feature changes nothing
// through any door: every operation of the live OpenAPI document that may change something
// (any method but GET/HEAD, every WebSocket, the VS Code tunnel's code) answers 403 naming
// the `write` scope, every read answers it as it answers a `read`+`write` token; and through
// the proxy, GET passes while POST and a WebSocket upgrade are refused. The document is read
// at run time, so a route added later is walked too (and one whose ids the walk cannot fill
// in fails it, to be taught here).
both_dbs!(a_read_only_token_opens_no_door_that_changes_anything);
async fn a_read_only_token_opens_no_door_that_changes_anything(db: TestDb) {
    use crate::ports::{app_template, running};

    // Apps by path are asked for: the proxy is walked too.
    let server = TestServer::start(&db, &["--path-apps", "true"]).await;
    let admin = admin(&server).await;
    let (ann_id, ann) = admin.new_member(&server, "ann", json!({})).await;
    let (bob_id, _) = admin.new_member(&server, "bob", json!({})).await;
    let features = json!([
        "terminal",
        "ssh",
        "code_server",
        "vnc",
        "port_forwarding",
        "tunnels",
        "file_transfer",
        "vscode_tunnel"
    ]);
    let template = app_template(&admin, "all", features, json!({})).await;
    let space = running(&ann, "web", &template).await;
    assert_eq!(
        ann.put(&format!("/api/v1/spaces/{space}/shares/bob"))
            .await
            .status,
        200
    );
    let tunnel = ann
        .post(
            &format!("/api/v1/spaces/{space}/tunnels"),
            json!({"port": 8080}),
        )
        .await;
    assert_eq!(tunnel.status, 201, "{tunnel:?}");
    let key = ann
        .post(
            "/api/v1/me/ssh-keys",
            json!({"public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"}),
        )
        .await;
    assert_eq!(key.status, 201, "{key:?}");
    let group = admin.post("/api/v1/groups", json!({"name": "team"})).await;
    assert_eq!(group.status, 201, "{group:?}");

    let reader = ann
        .post(
            "/api/v1/me/tokens",
            json!({"name": "reader", "scopes": ["read"]}),
        )
        .await;
    let full = ann
        .post(
            "/api/v1/me/tokens",
            json!({"name": "full", "scopes": ["read", "write"]}),
        )
        .await;
    let reader_secret = reader.body["secret"].as_str().unwrap().to_owned();
    let full_secret = full.body["secret"].as_str().unwrap().to_owned();
    let (reading, writing) = (
        Client::with_token(&server, &reader_secret),
        Client::with_token(&server, &full_secret),
    );

    // The ids each `{id}` stands for, by the collection it follows.
    let ids: std::collections::HashMap<&str, String> = [
        ("spaces", space.clone()),
        (
            "tokens",
            reader.body["token"]["id"].as_str().unwrap().to_owned(),
        ),
        ("ssh-keys", key.id()),
        ("users", ann_id.clone()),
        ("groups", group.id()),
        ("templates", template.clone()),
        (
            "tunnels",
            tunnel.body["tunnel"]["id"].as_str().unwrap().to_owned(),
        ),
    ]
    .into_iter()
    .collect();
    let fill = |path: &str| -> String {
        let mut filled = Vec::new();
        let segments: Vec<&str> = path.split('/').collect();
        for (i, segment) in segments.iter().enumerate() {
            filled.push(match *segment {
                "{id}" => ids
                    .get(segments[i - 1])
                    .unwrap_or_else(|| panic!("the walk does not know what {{id}} is in {path}"))
                    .clone(),
                "{user_id}" => bob_id.clone(),
                "{port}" => "8080".to_owned(),
                "{name}" => "nothing-of-hangar".to_owned(),
                "{host}" => "github.com".to_owned(),
                other if other.starts_with('{') => {
                    panic!("the walk does not know the parameter {other} of {path}")
                }
                other => other.to_owned(),
            });
        }
        filled.join("/")
    };
    let query = |path: &str, operation: &Value| -> String {
        let mut pairs = Vec::new();
        for parameter in operation["parameters"].as_array().into_iter().flatten() {
            if parameter["in"] != "query" || parameter["required"] != true {
                continue;
            }
            let name = parameter["name"].as_str().unwrap();
            let value = match name {
                "session" => uuid::Uuid::new_v4().to_string(),
                "path" => "/".to_owned(),
                "host" => "8080--web--ann.apps.invalid".to_owned(),
                other => panic!("the walk does not know the query parameter {other} of {path}"),
            };
            pairs.push(format!("{name}={value}"));
        }
        if pairs.is_empty() {
            String::new()
        } else {
            format!("?{}", pairs.join("&"))
        }
    };

    let doc = reading.get("/api/v1/openapi.json").await;
    assert_eq!(doc.status, 200);
    let mut walked = Walked::default();
    let mut wrong = Vec::new();
    for (path, item) in doc.body["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let what = format!("{} {path}", method.to_uppercase());
            // Signing in takes a password, not a token: the token plays no part in it.
            if operation["security"] == json!([{}]) {
                walked.open.push(what);
                continue;
            }
            let target = format!("{}{}", fill(path), query(path, operation));
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let websocket = operation["responses"]["101"].is_object();
            let is_read = matches!(method, reqwest::Method::GET | reqwest::Method::HEAD);
            if websocket {
                assert!(is_read, "{what}: a WebSocket is a GET");
                let (status, body) = websocket_status(&server, &target, &reader_secret).await;
                if !refused_for_write(status, &body) {
                    wrong.push(format!("{what} (WebSocket): {status} {body}"));
                }
                // The same upgrade with `write` is not refused for its scope.
                let (status, body) = websocket_status(&server, &target, &full_secret).await;
                if status == 403 {
                    wrong.push(format!("{what} (WebSocket) with `write`: {status} {body}"));
                }
                walked.websockets.push(what);
            } else if is_read && !CHANGING_GETS.contains(&path.as_str()) {
                // Streams (server-sent events) are compared by their status only.
                let status_of = |client: &Client| {
                    let request = client.request(method.clone(), &target);
                    async move { request.send().await.unwrap().status().as_u16() }
                };
                let (as_reader, as_writer) = (status_of(&reading).await, status_of(&writing).await);
                if as_reader != as_writer {
                    let answer = reading.send(method.clone(), &target, None).await;
                    wrong.push(format!(
                        "{what} (a read): {as_reader} with `read`, {as_writer} with `write`: {answer:?}"
                    ));
                }
                walked.reads.push(what);
            } else {
                let body = (!is_read).then(|| json!({}));
                let answer = reading.send(method, &target, body).await;
                if !refused_for_write(answer.status, &answer.body) {
                    wrong.push(format!("{what} (a change): {answer:?}"));
                }
                // The document says so.
                if is_read {
                    let documented = operation["responses"]["403"]["description"]
                        .as_str()
                        .unwrap_or_default();
                    if !documented.contains("`write` scope") {
                        wrong.push(format!("{what}: the document's 403 says {documented:?}"));
                    }
                }
                walked.changes.push(what);
            }
        }
    }

    // The proxy, by path: reading passes, anything else is refused naming the scope.
    let app = "/spaces/ann/web/ports/8080";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let page = reading
            .request(reqwest::Method::GET, &format!("{app}/"))
            .send()
            .await
            .unwrap();
        if page.status() == 200 {
            assert_eq!(page.text().await.unwrap().trim(), "hello-from-the-space");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never served: {}",
            page.status()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    walked.proxied.push(format!("GET {app}/"));
    let posted = reading
        .send(
            reqwest::Method::POST,
            &format!("{app}/cgi-bin/env"),
            Some(json!({})),
        )
        .await;
    if !refused_for_write(posted.status, &posted.body) {
        wrong.push(format!("POST {app}/cgi-bin/env (proxy): {posted:?}"));
    }
    let posted = writing
        .send(
            reqwest::Method::POST,
            &format!("{app}/cgi-bin/env"),
            Some(json!({})),
        )
        .await;
    assert_eq!(posted.status, 200, "with `write`: {posted:?}");
    walked.proxied.push(format!("POST {app}/cgi-bin/env"));
    let (status, body) = websocket_status(&server, &format!("{app}/"), &reader_secret).await;
    if !refused_for_write(status, &body) {
        wrong.push(format!("WebSocket {app}/ (proxy): {status} {body}"));
    }
    let (status, _) = websocket_status(&server, &format!("{app}/"), &full_secret).await;
    assert_ne!(status, 403, "with `write`, the upgrade reaches the app");
    walked
        .proxied
        .push(format!("GET {app}/ (WebSocket upgrade)"));

    let routes: std::collections::BTreeSet<&str> = [
        &walked.reads,
        &walked.changes,
        &walked.websockets,
        &walked.open,
    ]
    .into_iter()
    .flatten()
    .map(|what| what.split_once(' ').unwrap().1)
    .collect();
    eprintln!(
        "read-only walk: {} routes, {} operations of the document ({} reads, {} changes, {} \
         WebSockets, {} open to anyone), and {} requests through the proxy (WebSockets in all: {})",
        routes.len(),
        walked.reads.len() + walked.changes.len() + walked.websockets.len() + walked.open.len(),
        walked.reads.len(),
        walked.changes.len(),
        walked.websockets.len(),
        walked.open.len(),
        walked.proxied.len(),
        walked.websockets.len() + 1,
    );
    assert!(
        wrong.is_empty(),
        "doors a read-only token opened wrongly:\n{}",
        wrong.join("\n")
    );
    // The walk saw what it must: the WebSockets of the document, and every operation.
    for door in ["terminal", "vnc", "tcp"] {
        assert!(
            walked.websockets.iter().any(|w| w.ends_with(door)),
            "{door}: {walked:?}"
        );
    }
    assert!(walked.reads.len() + walked.changes.len() > 60, "{walked:?}");
    server.stop().await;
}
