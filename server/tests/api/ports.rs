//! The port proxy against real spaces: an HTTP server (busybox httpd, with CGI scripts that
//! echo the headers they got and stream) inside a real container, reached by path (with
//! `--path-apps true`) and on an apps domain, by the owner, a sharee, a stranger and nobody;
//! tunnels; feature permissions. The default (apps on origins of their own under
//! `apps.localhost`) is `crate::apps_origin`'s.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::header::{COOKIE, HOST, LOCATION, SET_COOKIE};
use serde_json::{json, Value};

use crate::support::{admin, both_dbs, Client, TestDb, TestServer, TEST_IMAGE};

/// Apps served by path on Hangar's own origin: only when asked for (it is risky, see the
/// docs/ports.md); the tests of that mode ask for it.
pub const PATH_APPS: &[&str] = &["--path-apps", "true"];

/// What the test spaces run: busybox httpd on 8080 (on every address) and on 127.0.0.1:9090,
/// with `/cgi-bin/env` (the headers it got, as CGI variables; it also tries to set Hangar's
/// session cookie) and `/cgi-bin/stream` (a line every 200 ms for two minutes).
pub const HTTP_APP: &str = r#"mkdir -p /www/cgi-bin
printf '#!/bin/sh\necho "Content-Type: text/plain"\necho "Set-Cookie: hangar_session=planted; Path=/"\necho "Set-Cookie: theirs=1; Path=/"\necho\nenv\n' > /www/cgi-bin/env
printf '#!/bin/sh\necho "Content-Type: text/event-stream"\necho\ni=0\nwhile [ $i -lt 600 ]; do echo "data: tick $i"; echo; i=$((i+1)); sleep 0.2; done\n' > /www/cgi-bin/stream
chmod +x /www/cgi-bin/env /www/cgi-bin/stream
echo hello-from-the-space > /www/index.html
[ -n "$BIG_MB" ] && dd if=/dev/zero of=/www/big bs=1048576 count="$BIG_MB" 2>/dev/null
httpd -f -p 8080 -h /www &
httpd -f -p 127.0.0.1:9090 -h /www &
trap 'exit 0' TERM INT
while :; do sleep 3600 & wait $!; done"#;

/// A template of the busybox image running [`HTTP_APP`] with these features.
pub async fn app_template(admin: &Client, name: &str, features: Value, env: Value) -> String {
    let created = admin
        .post(
            "/api/v1/templates",
            json!({
                "name": name, "image": TEST_IMAGE, "compute_units": 0, "features": features,
                "command": ["/bin/sh", "-c", HTTP_APP], "env": env,
            }),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    created.id()
}

/// ann's running space `web` (the busybox app, with some features), shared with bob.
pub struct SharedWeb {
    pub ann_id: String,
    pub ann: Client,
    pub id: String,
    pub ann_cookie: String,
    pub bob_cookie: String,
}

/// Makes the members ann and bob, ann's space `web` with `features`, started and shared
/// with bob; both signed in.
pub async fn shared_web(server: &TestServer, admin: &Client, features: Value) -> SharedWeb {
    let (ann_id, ann) = admin.new_member(server, "ann", json!({})).await;
    admin.new_member(server, "bob", json!({})).await;
    let tpl = app_template(admin, "web", features, json!({})).await;
    let id = running(&ann, "web", &tpl).await;
    let shared = ann.put(&format!("/api/v1/spaces/{id}/shares/bob")).await;
    assert_eq!(shared.status, 200, "{shared:?}");
    SharedWeb {
        ann_id,
        ann,
        id,
        ann_cookie: server.login_cookie("ann", "member-password").await,
        bob_cookie: server.login_cookie("bob", "member-password").await,
    }
}

/// Creates and starts a space, waits until its app answers inside it.
pub async fn running(owner: &Client, name: &str, template: &str) -> String {
    let id = owner
        .post(
            "/api/v1/spaces",
            json!({"name": name, "template_id": template}),
        )
        .await
        .id();
    let started = owner
        .post_empty(&format!("/api/v1/spaces/{id}/start"))
        .await;
    assert_eq!(started.status, 202, "{started:?}");
    owner.wait_for_state(&id, "running").await;
    id
}

/// GETs `path` on the server with the given cookie (and Host), no redirects followed.
async fn get(
    server: &TestServer,
    path: &str,
    cookie: Option<&str>,
    host: Option<&str>,
) -> reqwest::Response {
    let mut request = server.client.get(server.url(path));
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    if let Some(host) = host {
        request = request.header(HOST, host);
    }
    request.send().await.unwrap()
}

/// Waits until the app answers 200 through the proxy (httpd starts with the container) to a
/// GET of `path` with these headers (a cookie, an app's `host`...), no redirects followed.
pub async fn served(
    server: &TestServer,
    path: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut request = server.client.get(server.url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        if response.status() == 200 {
            return response;
        }
        assert!(
            Instant::now() < deadline,
            "never served: {}",
            response.status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// [`served`] on Hangar's own host, with a session cookie.
async fn until_served(server: &TestServer, path: &str, cookie: &str) -> reqwest::Response {
    served(server, path, &[("cookie", cookie)]).await
}

both_dbs!(owner_and_sharee_reach_a_port_others_get_404);
async fn owner_and_sharee_reach_a_port_others_get_404(db: TestDb) {
    let server = TestServer::start(&db, PATH_APPS).await;
    let admin = admin(&server).await;
    let (_, ann) = admin.new_member(&server, "ann", json!({})).await;
    admin.new_member(&server, "bob", json!({})).await;
    admin.new_member(&server, "eve", json!({})).await;
    let tpl = app_template(
        &admin,
        "web",
        json!(["terminal", "port_forwarding"]),
        json!({}),
    )
    .await;
    let id = running(&ann, "web", &tpl).await;
    assert_eq!(
        ann.put(&format!("/api/v1/spaces/{id}/shares/bob"))
            .await
            .status,
        200
    );
    let ann_cookie = server.login_cookie("ann", "member-password").await;
    let bob_cookie = server.login_cookie("bob", "member-password").await;
    let eve_cookie = server.login_cookie("eve", "member-password").await;
    let base = "/spaces/ann/web/ports/8080";

    let page = until_served(&server, &format!("{base}/"), &ann_cookie).await;
    assert_eq!(page.text().await.unwrap().trim(), "hello-from-the-space");
    // The owner is not sandboxed; a sharee is (their page runs on Hangar's origin).
    let owner_page = get(&server, &format!("{base}/"), Some(&ann_cookie), None).await;
    assert!(owner_page
        .headers()
        .get("content-security-policy")
        .is_none());
    let shared = get(&server, &format!("{base}/"), Some(&bob_cookie), None).await;
    assert_eq!(shared.status(), 200);
    assert!(shared.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .starts_with("sandbox"));
    assert_eq!(shared.text().await.unwrap().trim(), "hello-from-the-space");
    // A stranger and an anonymous request learn nothing, as for the space itself.
    assert_eq!(
        get(&server, &format!("{base}/"), Some(&eve_cookie), None)
            .await
            .status(),
        404
    );
    assert_eq!(
        get(&server, &format!("{base}/"), None, None).await.status(),
        404
    );
    assert_eq!(
        get(
            &server,
            "/spaces/ann/nope/ports/8080/",
            Some(&ann_cookie),
            None
        )
        .await
        .status(),
        404
    );
    // Without the trailing slash: sent to it, query kept.
    let bare = get(&server, &format!("{base}?x=1"), Some(&ann_cookie), None).await;
    assert_eq!(bare.status(), 308);
    assert_eq!(bare.headers()[LOCATION], format!("{base}/?x=1"));

    // The app never sees Hangar's cookies or credentials, and cannot set Hangar's cookie.
    let echoed = server
        .client
        .get(server.url(&format!("{base}/cgi-bin/env")))
        .header(COOKIE, format!("{ann_cookie}; theme=dark"))
        .header("authorization", "Basic dXNlcjpzZWNyZXQ=")
        .header("x-forwarded-host", "evil.example")
        .header("x-forwarded-for", "6.6.6.6")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.status(), 200);
    let cookies: Vec<String> = echoed
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(cookies, ["theirs=1; Path=/"]);
    let env = echoed.text().await.unwrap();
    assert!(env.contains("HTTP_COOKIE=theme=dark\n"), "{env}");
    assert!(!env.contains("hangar_session"), "{env}");
    assert!(!env.contains("HTTP_AUTHORIZATION"), "{env}");
    assert!(
        !env.contains("evil.example") && !env.contains("6.6.6.6"),
        "{env}"
    );
    assert!(
        env.contains(&format!("HTTP_X_FORWARDED_HOST={}", server.addr)),
        "{env}"
    );
    assert!(env.contains("HTTP_X_FORWARDED_FOR=127.0.0.1"), "{env}");
    assert!(env.contains("HTTP_X_FORWARDED_PROTO=http"), "{env}");
    assert!(
        env.contains(&format!("HTTP_X_FORWARDED_PREFIX={base}")),
        "{env}"
    );
    assert!(
        env.contains("HTTP_FORWARDED=for=127.0.0.1;proto=http;host="),
        "{env}"
    );
    assert!(env.contains("REQUEST_URI=/cgi-bin/env"), "{env}");

    // Nothing listens on that port (or only on the space's loopback): a clear 502 at once.
    for port in [8081, 9090] {
        let started = Instant::now();
        let refused = get(
            &server,
            &format!("/spaces/ann/web/ports/{port}/"),
            Some(&ann_cookie),
            None,
        )
        .await;
        assert_eq!(refused.status(), 502);
        assert!(started.elapsed() < Duration::from_secs(3));
        let body: Value = refused.json().await.unwrap();
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("nothing listens"),
            "{body}"
        );
    }
    // A browser gets a page that says so and retries by itself.
    let page = server
        .client
        .get(server.url("/spaces/ann/web/ports/8081/"))
        .header(COOKIE, &ann_cookie)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 502);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("nothing listens on port 8081 of ann/web")
            && html.contains("http-equiv=\"refresh\""),
        "{html}"
    );

    // A stopped space: 502 saying so.
    ann.post_empty(&format!("/api/v1/spaces/{id}/stop")).await;
    ann.wait_for_state(&id, "stopped").await;
    let stopped = get(&server, &format!("{base}/"), Some(&ann_cookie), None).await;
    assert_eq!(stopped.status(), 502);
    let body: Value = stopped.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("is stopped"),
        "{body}"
    );
    server.stop().await;
}

both_dbs!(streams_pass_at_once_and_end_when_access_ends);
async fn streams_pass_at_once_and_end_when_access_ends(db: TestDb) {
    let server = TestServer::start(&db, PATH_APPS).await;
    let admin = admin(&server).await;
    let SharedWeb {
        ann,
        id,
        ann_cookie,
        bob_cookie,
        ..
    } = shared_web(&server, &admin, json!(["port_forwarding"])).await;
    until_served(&server, "/spaces/ann/web/ports/8080/", &ann_cookie).await;

    // Server-sent events pass as they come: nothing waits for the end of the body.
    let started = Instant::now();
    let stream = get(
        &server,
        "/spaces/ann/web/ports/8080/cgi-bin/stream",
        Some(&bob_cookie),
        None,
    )
    .await;
    assert_eq!(stream.status(), 200);
    let mut body = stream.bytes_stream();
    let mut seen = String::new();
    while !seen.contains("tick 2") {
        let chunk = tokio::time::timeout(Duration::from_secs(5), body.next())
            .await
            .expect("events arrive as they are written")
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // The share is revoked: the open stream ends within a second.
    assert_eq!(
        ann.delete(&format!("/api/v1/spaces/{id}/shares/bob"))
            .await
            .status,
        200
    );
    let revoked = Instant::now();
    let ended = tokio::time::timeout(Duration::from_secs(3), async {
        while let Some(chunk) = body.next().await {
            if chunk.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the stream went on after the share was revoked"
    );
    assert!(
        revoked.elapsed() < Duration::from_millis(1500),
        "{:?}",
        revoked.elapsed()
    );
    assert_eq!(
        get(
            &server,
            "/spaces/ann/web/ports/8080/",
            Some(&bob_cookie),
            None
        )
        .await
        .status(),
        404
    );
    server.stop().await;
}

/// A server with an apps domain (`apps.test`), knowing its own origin.
async fn apps_server(db: &TestDb) -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public = format!("http://{}", listener.local_addr().unwrap());
    TestServer::start_on(
        listener,
        db,
        &["--apps-domain", "apps.test", "--public-url", &public],
    )
    .await
}

both_dbs!(an_apps_domain_signs_in_through_hangar_with_a_one_time_ticket);
async fn an_apps_domain_signs_in_through_hangar_with_a_one_time_ticket(db: TestDb) {
    let server = apps_server(&db).await;
    let admin = admin(&server).await;
    let (_, ann) = admin.new_member(&server, "ann", json!({})).await;
    admin.new_member(&server, "eve", json!({})).await;
    let tpl = app_template(&admin, "web", json!(["port_forwarding"]), json!({})).await;
    let id = running(&ann, "web", &tpl).await;
    let ann_cookie = server.login_cookie("ann", "member-password").await;
    let eve_cookie = server.login_cookie("eve", "member-password").await;
    let host = "8080--web--ann.apps.test";

    // No app cookie: a browser is sent to Hangar's own origin to sign in there; Hangar's
    // session cookie, even if sent, counts for nothing on the app host.
    let first = server
        .client
        .get(server.url("/cgi-bin/env?a=1"))
        .header(HOST, host)
        .header(COOKIE, &ann_cookie)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 302);
    let authorize = first.headers()[LOCATION].to_str().unwrap().to_owned();
    let prefix = format!("{}/api/v1/apps/authorize?", server.url(""));
    assert!(authorize.starts_with(&prefix), "{authorize}");
    let authorize_path = authorize.strip_prefix(&server.url("")).unwrap();
    // Other clients are told to sign in.
    let api = get(&server, "/", None, Some(host)).await;
    assert_eq!(api.status(), 401);

    // A stranger signed in to Hangar gets 404 there; anonymous goes to sign in.
    assert_eq!(
        get(&server, authorize_path, Some(&eve_cookie), None)
            .await
            .status(),
        404
    );
    let anonymous = get(&server, authorize_path, None, None).await;
    assert_eq!(anonymous.status(), 302);
    assert!(anonymous.headers()[LOCATION]
        .to_str()
        .unwrap()
        .starts_with("/login?next=%2Fapi%2Fv1%2Fapps%2Fauthorize"));

    // The owner gets a ticket for that host, back to the path asked.
    let granted = get(&server, authorize_path, Some(&ann_cookie), None).await;
    assert_eq!(granted.status(), 302);
    let back = granted.headers()[LOCATION].to_str().unwrap().to_owned();
    let exchange_prefix = format!("http://{host}/__hangar/auth?ticket=");
    assert!(back.starts_with(&exchange_prefix), "{back}");
    let exchange_path = back.strip_prefix(&format!("http://{host}")).unwrap();
    // The ticket is for that host only.
    assert_eq!(
        get(
            &server,
            exchange_path,
            None,
            Some("8081--web--ann.apps.test")
        )
        .await
        .status(),
        403
    );
    let exchanged = get(&server, exchange_path, None, Some(host)).await;
    assert_eq!(exchanged.status(), 302);
    assert_eq!(exchanged.headers()[LOCATION], "/cgi-bin/env?a=1");
    let set_cookie = exchanged.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(set_cookie.starts_with("hangar_app="), "{set_cookie}");
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"));
    assert!(
        !set_cookie.to_ascii_lowercase().contains("domain="),
        "host-only: {set_cookie}"
    );
    let app_cookie = set_cookie.split(';').next().unwrap().to_owned();
    // Once only.
    assert_eq!(
        get(&server, exchange_path, None, Some(host)).await.status(),
        403
    );

    // The app host serves the app to that cookie; the app sees none of Hangar's cookies.
    let echoed = get(
        &server,
        "/cgi-bin/env",
        Some(&format!("{app_cookie}; {ann_cookie}; theme=dark")),
        Some(host),
    )
    .await;
    assert_eq!(echoed.status(), 200);
    let env = echoed.text().await.unwrap();
    assert!(env.contains("HTTP_COOKIE=theme=dark\n"), "{env}");
    assert!(!env.contains("hangar_"), "{env}");
    assert!(env.contains(&format!("HTTP_HOST={host}")), "{env}");
    assert!(
        env.contains(&format!("HTTP_X_FORWARDED_HOST={host}")),
        "{env}"
    );
    // The cookie is for its host only.
    assert_eq!(
        get(
            &server,
            "/",
            Some(&app_cookie),
            Some("8080--other--ann.apps.test")
        )
        .await
        .status(),
        401
    );

    // Routing follows the Host the client sent, never X-Forwarded-Host: on Hangar's own host
    // a forged forwarding header gets Hangar's page, not the app.
    let forged = server
        .client
        .get(server.url("/cgi-bin/env"))
        .header(COOKIE, format!("{app_cookie}; {ann_cookie}"))
        .header("x-forwarded-host", host)
        .send()
        .await
        .unwrap();
    assert!(!forged.text().await.unwrap().contains("GATEWAY_INTERFACE"));
    // And Hangar's pages are never served on an app host.
    assert_ne!(
        get(&server, "/api/v1/me", Some(&ann_cookie), Some(host))
            .await
            .status(),
        200
    );

    // Signing out of Hangar ends the app session too.
    let signed_out = server
        .client
        .post(server.url("/api/v1/auth/logout"))
        .header(COOKIE, &ann_cookie)
        .header("origin", server.url(""))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_out.status(), 204);
    assert_eq!(
        get(&server, "/cgi-bin/env", Some(&app_cookie), Some(host))
            .await
            .status(),
        401
    );
    let _ = id;
    server.stop().await;
}

both_dbs!(tunnels_need_no_sign_in_count_against_the_quota_and_end_on_revoke);
async fn tunnels_need_no_sign_in_count_against_the_quota_and_end_on_revoke(db: TestDb) {
    let server = TestServer::start(&db, PATH_APPS).await;
    let admin = admin(&server).await;
    let (ann_id, ann) = admin
        .new_member(&server, "ann", json!({"max_tunnels": 1}))
        .await;
    let (_, bob) = admin.new_member(&server, "bob", json!({})).await;
    let tpl = app_template(
        &admin,
        "web",
        json!(["port_forwarding", "tunnels"]),
        json!({}),
    )
    .await;
    let id = running(&ann, "web", &tpl).await;
    ann.put(&format!("/api/v1/spaces/{id}/shares/bob")).await;
    let ann_cookie = server.login_cookie("ann", "member-password").await;
    until_served(&server, "/spaces/ann/web/ports/8080/", &ann_cookie).await;

    // A sharee cannot publish.
    let refused = bob
        .post(
            &format!("/api/v1/spaces/{id}/tunnels"),
            json!({"port": 8080}),
        )
        .await;
    assert_eq!(refused.status, 403, "{refused:?}");
    let made = ann
        .post(
            &format!("/api/v1/spaces/{id}/tunnels"),
            json!({"port": 8080}),
        )
        .await;
    assert_eq!(made.status, 201, "{made:?}");
    let link = made.body["url"].as_str().unwrap().to_owned();
    let tunnel_id = made.body["tunnel"]["id"].as_str().unwrap().to_owned();
    let secret = link.trim_start_matches("/t/").trim_end_matches('/');
    assert_eq!(secret.len(), 32, "128 random bits: {link}");
    assert!(!made.body.to_string().contains("secret_hash"));

    // Anyone reaches it without signing in; the app sees no credentials; it is sandboxed.
    let page = get(&server, &link, None, None).await;
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .starts_with("sandbox"));
    assert_eq!(page.text().await.unwrap().trim(), "hello-from-the-space");
    let env = get(
        &server,
        &format!("{link}cgi-bin/env"),
        Some(&ann_cookie),
        None,
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(!env.contains("hangar_session"), "{env}");
    // A guessed link does not.
    assert_eq!(
        get(&server, &format!("/t/{}/", "0".repeat(32)), None, None)
            .await
            .status(),
        404
    );

    // Listed on the space and for the owner; counted against the quota (1).
    let listed = bob.get(&format!("/api/v1/spaces/{id}/tunnels")).await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1);
    assert_eq!(listed.body[0]["hint"].as_str().unwrap(), &secret[..6]);
    assert_eq!(
        ann.get("/api/v1/me/tunnels")
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let quota = ann.get("/api/v1/me/quota").await;
    assert_eq!(quota.body["usage"]["tunnels"], 1);
    assert_eq!(quota.body["quota"]["max_tunnels"], 1);
    let over = ann
        .post(
            &format!("/api/v1/spaces/{id}/tunnels"),
            json!({"port": 9090}),
        )
        .await;
    assert_eq!(over.status, 409, "{over:?}");
    assert_eq!(over.code(), "quota_exceeded");
    assert!(
        over.message()
            .contains("tunnel quota exceeded: 1 of 1 tunnels in use"),
        "{over:?}"
    );
    // An admin raises it.
    admin
        .patch(
            &format!("/api/v1/users/{ann_id}"),
            json!({"max_tunnels": 2}),
        )
        .await;
    assert_eq!(
        ann.post(
            &format!("/api/v1/spaces/{id}/tunnels"),
            json!({"port": 9090})
        )
        .await
        .status,
        201
    );

    // An open connection through the link, then the owner revokes it: it closes at once,
    // and the link stops working.
    let stream = get(&server, &format!("{link}cgi-bin/stream"), None, None).await;
    let mut body = stream.bytes_stream();
    body.next().await.unwrap().unwrap();
    let sharee_revoke = bob.delete(&format!("/api/v1/tunnels/{tunnel_id}")).await;
    assert_eq!(sharee_revoke.status, 403);
    assert_eq!(
        ann.delete(&format!("/api/v1/tunnels/{tunnel_id}"))
            .await
            .status,
        204
    );
    let revoked = Instant::now();
    let ended = tokio::time::timeout(Duration::from_secs(3), async {
        while let Some(chunk) = body.next().await {
            if chunk.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(ended.is_ok() && revoked.elapsed() < Duration::from_millis(1500));
    assert_eq!(get(&server, &link, None, None).await.status(), 404);

    // Every step is in the audit log.
    let audit = admin.get("/api/v1/audit?action=tunnel.create").await;
    let outcomes: Vec<&str> = audit
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes.iter().filter(|o| **o == "success").count(), 2);
    assert_eq!(outcomes.iter().filter(|o| **o == "refused").count(), 1);
    assert_eq!(
        admin
            .get("/api/v1/audit?action=tunnel.revoke")
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Deleting the space removes its tunnels (and frees the quota).
    ann.delete(&format!("/api/v1/spaces/{id}")).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while ann.get("/api/v1/me/quota").await.body["usage"]["tunnels"] != 0 {
        assert!(Instant::now() < deadline, "tunnels outlived their space");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.stop().await;
}

both_dbs!(feature_rules_decide_who_uses_what_with_a_403_naming_it);
async fn feature_rules_decide_who_uses_what_with_a_403_naming_it(db: TestDb) {
    let server = TestServer::start(&db, PATH_APPS).await;
    let admin = admin(&server).await;
    let SharedWeb {
        ann_id,
        ann,
        id,
        ann_cookie,
        bob_cookie,
    } = shared_web(
        &server,
        &admin,
        json!(["terminal", "port_forwarding", "tunnels"]),
    )
    .await;
    let group = admin
        .post("/api/v1/groups", json!({"name": "builders"}))
        .await
        .id();
    until_served(&server, "/spaces/ann/web/ports/8080/", &ann_cookie).await;
    let rule = |scope: &str, subject: Option<&str>, feature: &str, rule: &str| json!({"scope": scope, "subject": subject, "feature": feature, "rule": rule});

    // Members may not set rules.
    assert_eq!(
        ann.send(
            reqwest::Method::PUT,
            "/api/v1/feature-rules",
            Some(rule("everyone", None, "tunnels", "deny"))
        )
        .await
        .status,
        403
    );
    // Tunnels only for the builders: everyone is denied, the group allowed.
    let set = admin
        .send(
            reqwest::Method::PUT,
            "/api/v1/feature-rules",
            Some(rule("everyone", None, "tunnels", "deny")),
        )
        .await;
    assert_eq!(set.status, 200, "{set:?}");
    let refused = ann
        .post(
            &format!("/api/v1/spaces/{id}/tunnels"),
            json!({"port": 8080}),
        )
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.body["error"]["permission"], "tunnels");
    assert!(
        refused.message().contains("missing permission `tunnels`"),
        "{refused:?}"
    );
    admin
        .put(&format!("/api/v1/groups/{group}/members/{ann_id}"))
        .await;
    admin
        .send(
            reqwest::Method::PUT,
            "/api/v1/feature-rules",
            Some(rule("group", Some("builders"), "tunnels", "allow")),
        )
        .await;
    assert_eq!(
        ann.post(
            &format!("/api/v1/spaces/{id}/tunnels"),
            json!({"port": 8080})
        )
        .await
        .status,
        201
    );
    let features = ann.get("/api/v1/me/features").await;
    let tunnels = features.body["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["feature"] == "tunnels")
        .unwrap()
        .clone();
    assert_eq!(
        tunnels,
        json!({"feature": "tunnels", "allowed": true, "decided_by": "group:builders"})
    );

    // The space shows what the caller may use: the sharee, at most what the owner may.
    let space = ann.get(&format!("/api/v1/spaces/{id}")).await;
    assert_eq!(
        space.body["allowed_features"],
        json!(["terminal", "port_forwarding", "tunnels"])
    );
    let as_bob = get(
        &server,
        &format!("/api/v1/spaces/{id}"),
        Some(&bob_cookie),
        None,
    )
    .await
    .json::<Value>()
    .await
    .unwrap();
    assert_eq!(
        as_bob["allowed_features"],
        json!(["terminal", "port_forwarding"])
    );

    // Ports denied to the owner: nobody may open them, sharees included, with a 403 naming it;
    // a rule of the user's own wins over the group's.
    admin
        .send(
            reqwest::Method::PUT,
            "/api/v1/feature-rules",
            Some(rule("user", Some("ann"), "port_forwarding", "deny")),
        )
        .await;
    for cookie in [&ann_cookie, &bob_cookie] {
        let denied = get(&server, "/spaces/ann/web/ports/8080/", Some(cookie), None).await;
        assert_eq!(denied.status(), 403);
        let body: Value = denied.json().await.unwrap();
        assert_eq!(body["error"]["permission"], "port_forwarding");
    }
    // The terminal too is gated (its WebSocket answers 403 before upgrading).
    admin
        .send(
            reqwest::Method::PUT,
            "/api/v1/feature-rules",
            Some(rule("user", Some("bob"), "terminal", "deny")),
        )
        .await;
    let session = crate::ws::session_id();
    let terminal = crate::ws::connect(&server, &bob_cookie, &id, &session, None).await;
    assert_eq!(terminal.err(), Some(403));
    assert!(
        crate::ws::connect(&server, &ann_cookie, &id, &session, None)
            .await
            .is_ok()
    );
    // Back to the defaults.
    for (scope, subject, feature) in [
        ("user", Some("ann"), "port_forwarding"),
        ("user", Some("bob"), "terminal"),
    ] {
        admin
            .send(
                reqwest::Method::PUT,
                "/api/v1/feature-rules",
                Some(rule(scope, subject, feature, "inherit")),
            )
            .await;
    }
    assert_eq!(
        get(
            &server,
            "/spaces/ann/web/ports/8080/",
            Some(&bob_cookie),
            None
        )
        .await
        .status(),
        200
    );
    let rules = admin.get("/api/v1/feature-rules").await;
    assert_eq!(rules.body.as_array().unwrap().len(), 2, "{rules:?}");

    // A feature the template lacks is missing whatever the rules say.
    let bare = admin.new_template("bare", 0, json!([])).await;
    let other = running(&ann, "bare", &bare).await;
    let missing = ann
        .post(
            &format!("/api/v1/spaces/{other}/tunnels"),
            json!({"port": 80}),
        )
        .await;
    assert_eq!(missing.status, 403);
    assert!(
        missing
            .message()
            .contains("template `bare` does not offer it"),
        "{missing:?}"
    );
    server.stop().await;
}

both_dbs!(listening_ports_are_discovered_with_where_to_open_them);
async fn listening_ports_are_discovered_with_where_to_open_them(db: TestDb) {
    let server = TestServer::start(&db, PATH_APPS).await;
    let admin = admin(&server).await;
    let (_, ann) = admin.new_member(&server, "ann", json!({})).await;
    let tpl = app_template(&admin, "web", json!(["port_forwarding"]), json!({})).await;
    let id = running(&ann, "web", &tpl).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let ports = loop {
        let ports = ann.get(&format!("/api/v1/spaces/{id}/ports")).await;
        assert_eq!(ports.status, 200, "{ports:?}");
        if ports.body["ports"].as_array().is_some_and(|p| p.len() >= 2) {
            break ports.body;
        }
        assert!(Instant::now() < deadline, "{ports:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let find = |port: u64| {
        ports["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["port"] == port)
            .cloned()
            .unwrap()
    };
    assert_eq!(find(8080)["reachable"], true);
    assert_eq!(find(8080)["url"], "/spaces/ann/web/ports/8080/");
    assert_eq!(find(9090)["reachable"], false);
    assert_eq!(find(9090)["address"], "127.0.0.1");
    assert_eq!(find(9090)["url"], Value::Null);

    // The live list: server-sent events with the same list.
    let cookie = server.login_cookie("ann", "member-password").await;
    let live = get(
        &server,
        &format!("/api/v1/spaces/{id}/ports/live"),
        Some(&cookie),
        None,
    )
    .await;
    assert_eq!(live.status(), 200);
    let mut events = live.bytes_stream();
    let mut text = String::new();
    while !text.contains("\"port\":8080") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.starts_with("event: ports"), "{text}");
    server.stop().await;
}

/// A fake VS Code CLI that prints what the real one prints while it waits for sign-in.
const FAKE_CODE: &str = "#!/bin/sh\necho 'To grant access to the server, please log into https://github.com/login/device and use code 3A1B-7C2D'\nsleep 600\n";

both_dbs!(the_vscode_tunnel_shows_its_device_code);
async fn the_vscode_tunnel_shows_its_device_code(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    let (_, ann) = admin.new_member(&server, "ann", json!({})).await;
    let created = admin
        .post(
            "/api/v1/templates",
            json!({"name": "cli", "image": TEST_IMAGE, "compute_units": 0, "features": ["vscode_tunnel"],
                   "volumes": [{"name": "bin", "mount_path": "/usr/local/bin", "size_gib": 1}]}),
        )
        .await;
    let id = running(&ann, "cli", &created.id()).await;
    // No CLI in the image: said so.
    let status = ann.get(&format!("/api/v1/spaces/{id}/vscode-tunnel")).await;
    assert!(
        status.body["message"]
            .as_str()
            .unwrap()
            .contains("no VS Code CLI"),
        "{status:?}"
    );
    // Put one on the space's volume, start again: Hangar runs it and shows its code.
    let container = format!("hangar-{id}");
    let script = format!("CODE_SCRIPT={FAKE_CODE}");
    let install =
        "printf '%s' \"$CODE_SCRIPT\" > /usr/local/bin/code && chmod +x /usr/local/bin/code";
    let (ok, _) =
        crate::support::docker(&["exec", "-e", &script, &container, "sh", "-c", install]).await;
    assert!(ok);
    ann.post_empty(&format!("/api/v1/spaces/{id}/restart"))
        .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = ann.get(&format!("/api/v1/spaces/{id}/vscode-tunnel")).await;
        if status.body["device_code"] == "3A1B-7C2D" {
            assert_eq!(
                status.body["verification_url"],
                "https://github.com/login/device"
            );
            break;
        }
        assert!(Instant::now() < deadline, "{status:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.stop().await;
}

both_dbs!(feature_rules_gate_file_transfer_too);
async fn feature_rules_gate_file_transfer_too(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    let (_, ann) = admin.new_member(&server, "ann", json!({})).await;
    let tpl = admin
        .post(
            "/api/v1/templates",
            json!({"name": "box", "image": TEST_IMAGE, "compute_units": 0, "features": ["terminal", "file_transfer"]}),
        )
        .await
        .id();
    let id = ann.running_space("box", &tpl).await;
    let list = format!("/api/v1/spaces/{id}/files?path=/tmp&list");
    assert_eq!(ann.get(&list).await.status, 200);
    let set = admin
        .send(
            reqwest::Method::PUT,
            "/api/v1/feature-rules",
            Some(json!({"scope": "user", "subject": "ann", "feature": "file_transfer", "rule": "deny"})),
        )
        .await;
    assert_eq!(set.status, 200, "{set:?}");
    let denied = ann.get(&list).await;
    assert_eq!(denied.status, 403, "{denied:?}");
    assert_eq!(denied.body["error"]["permission"], "file_transfer");
    server.stop().await;
}

// A public link forwards a port: publishing one needs `port_forwarding` as well as
// `tunnels`, for whoever publishes it and for the space's owner, and a link is served only
// while its owner has both.
both_dbs!(tunnels_need_port_forwarding_as_well);
async fn tunnels_need_port_forwarding_as_well(db: TestDb) {
    let server = TestServer::start(&db, &["--path-apps", "true"]).await;
    let admin = admin(&server).await;
    let (_, ann) = admin.new_member(&server, "ann", json!({})).await;
    let tpl = app_template(
        &admin,
        "web",
        json!(["port_forwarding", "tunnels"]),
        json!({}),
    )
    .await;
    let id = running(&ann, "web", &tpl).await;
    let ann_cookie = server.login_cookie("ann", "member-password").await;
    until_served(&server, "/spaces/ann/web/ports/8080/", &ann_cookie).await;
    let rule = |subject: &str, rule: &str| json!({"scope": "user", "subject": subject, "feature": "port_forwarding", "rule": rule});
    let set = |subject: &'static str, effect: &'static str| {
        let admin = admin.clone();
        let body = rule(subject, effect);
        async move {
            let set = admin
                .send(reqwest::Method::PUT, "/api/v1/feature-rules", Some(body))
                .await;
            assert_eq!(set.status, 200, "{set:?}");
        }
    };
    let publish = |client: &Client| {
        let client = client.clone();
        let path = format!("/api/v1/spaces/{id}/tunnels");
        async move { client.post(&path, json!({"port": 8080})).await }
    };

    // The owner without `port_forwarding`: refused, naming it.
    set("ann", "deny").await;
    let refused = publish(&ann).await;
    assert_eq!(refused.status, 403, "{refused:?}");
    assert_eq!(refused.body["error"]["permission"], "port_forwarding");
    assert!(
        refused
            .message()
            .contains("needs `port_forwarding` as well as `tunnels`"),
        "{refused:?}"
    );
    // An admin who may forward ports cannot publish it for her either.
    let for_her = publish(&admin).await;
    assert_eq!(for_her.status, 403, "{for_her:?}");
    assert_eq!(for_her.body["error"]["permission"], "port_forwarding");

    // An admin denied `port_forwarding` cannot publish a port of a space whose owner may.
    set("ann", "inherit").await;
    set("admin", "deny").await;
    let by_admin = publish(&admin).await;
    assert_eq!(by_admin.status, 403, "{by_admin:?}");
    assert_eq!(by_admin.body["error"]["permission"], "port_forwarding");
    set("admin", "inherit").await;

    // Published while the owner had both; served until she loses `port_forwarding`.
    let made = publish(&ann).await;
    assert_eq!(made.status, 201, "{made:?}");
    let link = made.body["url"].as_str().unwrap().to_owned();
    assert_eq!(get(&server, &link, None, None).await.status(), 200);
    set("ann", "deny").await;
    assert_eq!(get(&server, &link, None, None).await.status(), 404);
    set("ann", "inherit").await;
    assert_eq!(get(&server, &link, None, None).await.status(), 200);
    server.stop().await;
}

// The way back from an app's sign-in stays on the app's host, however the path is written
// (a browser strips tabs and newlines and reads `\` as `/`).
both_dbs!(an_app_sign_in_goes_back_only_to_a_path_of_the_app_host);
async fn an_app_sign_in_goes_back_only_to_a_path_of_the_app_host(db: TestDb) {
    let server = apps_server(&db).await;
    let admin = admin(&server).await;
    let (_, ann) = admin.new_member(&server, "ann", json!({})).await;
    let tpl = app_template(&admin, "web", json!(["port_forwarding"]), json!({})).await;
    running(&ann, "web", &tpl).await;
    let ann_cookie = server.login_cookie("ann", "member-password").await;
    let host = "8080--web--ann.apps.test";
    // A ticket for the app host, back to `path` (as the exchange's address on that host).
    let ticket = |path: &'static str| {
        let (server, cookie) = (&server, &ann_cookie);
        async move {
            let granted = get(
                server,
                &format!("/api/v1/apps/authorize?host={host}&path={path}"),
                Some(cookie),
                None,
            )
            .await;
            assert_eq!(granted.status(), 302, "{path}");
            let exchange = granted.headers()[LOCATION].to_str().unwrap().to_owned();
            exchange
                .strip_prefix(&format!("http://{host}"))
                .unwrap()
                .to_owned()
        }
    };
    for (asked, back) in [
        ("%2Fcgi-bin%2Fenv%3Fa%3D1", "/cgi-bin/env?a=1"),
        ("%2F%09%2Fevil.example", "/"),
        ("%2F%0A%2Fevil.example", "/"),
        ("%2F%5Cevil.example", "/"),
        ("%2F.%2F%2Fevil.example", "/"),
        ("https%3A%2F%2Fevil.example", "/"),
    ] {
        // What Hangar sends back, and what a `next` forged on the exchange would do.
        let given = ticket(asked).await;
        let forged = format!(
            "{}&next={asked}",
            ticket("%2F").await.split("&next=").next().unwrap()
        );
        for path in [given, forged] {
            let exchanged = get(&server, &path, None, Some(host)).await;
            assert_eq!(exchanged.status(), 302, "{path}");
            assert_eq!(exchanged.headers()[LOCATION], back, "{path}");
        }
    }
    server.stop().await;
}
