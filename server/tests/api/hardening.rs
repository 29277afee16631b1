//! Hardening (#15): what a flood, a hostile member, a leaked token or bad input must not do.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{COOKIE, ORIGIN, RETRY_AFTER};
use serde_json::{json, Value};

use crate::events::Events;
use crate::support::{
    admin, both_dbs, json, set_cookie_line, Client, Process, TempDb, TestDb, TestServer,
    ADMIN_PASSWORD,
};

const FORWARDED_FOR: &str = "x-forwarded-for";

/// Resident memory of a process, in MiB.
fn rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib / 1024
}

async fn login_from(
    server: &TestServer,
    client: &str,
    username: &str,
    password: &str,
) -> reqwest::Response {
    server
        .client
        .post(server.url("/api/v1/auth/login"))
        .header(ORIGIN, server.origin())
        .header(FORWARDED_FOR, client)
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap()
}

/// 200 wrong passwords for one account at once, through a trusted proxy: they are answered
/// within seconds, only the few the limit allows are checked (so memory stays bounded), and
/// the account's owner still signs in from elsewhere.
#[tokio::test]
async fn a_login_flood_is_answered_at_once_in_bounded_memory_and_the_owner_still_signs_in() {
    let db = TempDb::new();
    let process = Process::start_with(&db.url(), &[("HANGAR_TRUSTED_PROXIES", "127.0.0.1")]).await;
    let pid = process.child.id().unwrap();
    let server = &process.server;
    let before = rss_mib(pid);
    let peak = Arc::new(AtomicU64::new(before));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_mib(pid), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    let started = Instant::now();
    let flood = (0..200).map(|_| login_from(server, "203.0.113.7", "admin", "a-wrong-guess"));
    let answers = futures_util::future::join_all(flood).await;
    let elapsed = started.elapsed();
    sampler.abort();
    let statuses: Vec<u16> = answers.iter().map(|a| a.status().as_u16()).collect();
    // Whoever is held back is told when to come back.
    assert!(answers
        .iter()
        .filter(|a| a.status() != 401)
        .all(|a| a.headers().contains_key(RETRY_AFTER)));
    assert!(
        elapsed < Duration::from_secs(20),
        "200 sign-ins took {elapsed:?}"
    );
    assert!(
        statuses.iter().all(|s| [401, 429, 503].contains(s)),
        "{statuses:?}"
    );
    let checked = statuses.iter().filter(|s| **s == 401).count();
    assert!(
        checked <= 5,
        "{checked} of 200 guesses were checked: the limit let them through"
    );
    let grown = peak.load(Ordering::Relaxed).saturating_sub(before);
    assert!(grown < 200, "resident memory grew by {grown} MiB");

    // The owner, from another client, is not held back.
    let owner = login_from(server, "203.0.113.8", "admin", ADMIN_PASSWORD).await;
    assert_eq!(owner.status(), 200);
    process.kill_9().await;
}

both_dbs!(forwarded_addresses_count_only_from_trusted_proxies);
async fn forwarded_addresses_count_only_from_trusted_proxies(db: TestDb) {
    for (flags, second_client_limited) in [
        (vec!["--login-failures-per-account", "2"], true),
        (
            vec![
                "--login-failures-per-account",
                "2",
                "--trusted-proxies",
                "127.0.0.0/8",
            ],
            false,
        ),
    ] {
        let server = TestServer::start(&db, &flags).await;
        for _ in 0..2 {
            let wrong = login_from(&server, "198.51.100.1", "admin", "wrong").await;
            assert_eq!(wrong.status(), 401);
        }
        let other = login_from(&server, "198.51.100.2", "admin", "wrong").await;
        // Unless the proxy is trusted, its header is the client's own say: ignored.
        let expected = if second_client_limited { 429 } else { 401 };
        assert_eq!(other.status(), expected, "{flags:?}");
        server.shutdown().await;
    }
}

both_dbs!(behind_a_trusted_tls_proxy_the_cookie_is_secure);
async fn behind_a_trusted_tls_proxy_the_cookie_is_secure(db: TestDb) {
    let login = |server: &TestServer, proto: Option<&'static str>| {
        let mut request = server
            .client
            .post(server.url("/api/v1/auth/login"))
            .header(ORIGIN, server.origin())
            .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}));
        if let Some(proto) = proto {
            request = request.header("x-forwarded-proto", proto);
        }
        request.send()
    };
    let proxied = TestServer::start(&db, &["--trusted-proxies", "127.0.0.1"]).await;
    let line = set_cookie_line(login(&proxied, Some("https")).await.unwrap().headers()).unwrap();
    assert!(
        line.contains("; Secure") && line.contains("HttpOnly"),
        "{line}"
    );
    let line = set_cookie_line(login(&proxied, None).await.unwrap().headers()).unwrap();
    assert!(!line.contains("Secure"), "{line}");
    proxied.shutdown().await;

    // Anyone else's word on the scheme is ignored.
    let direct = TestServer::start(&db, &[]).await;
    let line = set_cookie_line(login(&direct, Some("https")).await.unwrap().headers()).unwrap();
    assert!(!line.contains("Secure"), "{line}");
    direct.shutdown().await;
}

both_dbs!(wrong_current_passwords_count_like_failed_sign_ins);
async fn wrong_current_passwords_count_like_failed_sign_ins(db: TestDb) {
    let server = TestServer::start(&db, &["--login-failures-per-account", "3"]).await;
    let admin = admin(&server).await;
    let (_, ann) = admin.new_member(&server, "ann", json!({})).await;
    let change = |current: &str| {
        ann.post(
            "/api/v1/me/password",
            json!({"current_password": current, "new_password": "another-password"}),
        )
    };
    for _ in 0..3 {
        assert_eq!(change("a-guess").await.status, 400);
    }
    let limited = change("member-password").await;
    assert_eq!((limited.status, limited.code()), (429, "rate_limited"));
    // The same guesses from the same client at the sign-in page are held back too.
    assert_eq!(server.login("ann", "member-password").await.status(), 429);
    server.stop().await;
}

/// A new API token of `owner`: a client using it, and the token as listed.
async fn new_token(server: &TestServer, owner: &Client, body: Value) -> (Client, Value) {
    let created = owner.post("/api/v1/me/tokens", body).await;
    assert_eq!(created.status, 201, "{created:?}");
    (
        Client::with_token(server, created.body["secret"].as_str().unwrap()),
        created.body["token"].clone(),
    )
}

// A token's scopes: created as `read` + `write` unless asked, only `credentials` may mint
// tokens (never beyond its own scopes or life), `read` changes nothing.
both_dbs!(token_scopes_limit_what_a_token_may_do);
async fn token_scopes_limit_what_a_token_may_do(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    let (_, ann) = admin.new_member(&server, "ann", json!({})).await;
    let template = admin.new_template("box", 0, json!([])).await;
    let token = |body: Value| new_token(&server, &ann, body);

    let (plain, plain_dto) = token(json!({"name": "plain"})).await;
    assert_eq!(plain_dto["scopes"], json!(["read", "write"]));
    assert_eq!(
        plain
            .post("/api/v1/me/tokens", json!({"name": "child"}))
            .await
            .status,
        403
    );
    // Another token of the same user is out of its reach (ending itself is not: see below).
    let (_, other_dto) = token(json!({"name": "other"})).await;
    let other_id = other_dto["id"].as_str().unwrap();
    assert_eq!(
        plain
            .delete(&format!("/api/v1/me/tokens/{other_id}"))
            .await
            .status,
        403
    );
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
    assert_eq!(
        plain
            .post("/api/v1/me/ssh-keys", json!({"public_key": key}))
            .await
            .status,
        403
    );
    let space = plain
        .post(
            "/api/v1/spaces",
            json!({"name": "via-token", "template_id": template}),
        )
        .await;
    assert_eq!(space.status, 201, "{space:?}");

    let (reader, reader_dto) = token(json!({"name": "reader", "scopes": ["read"]})).await;
    assert_eq!(reader_dto["scopes"], json!(["read"]));
    assert_eq!(reader.get("/api/v1/me").await.status, 200);
    let refused = reader
        .post(
            "/api/v1/spaces",
            json!({"name": "nope", "template_id": template}),
        )
        .await;
    assert_eq!((refused.status, refused.code()), (403, "forbidden"));
    assert!(refused.message().contains("write"), "{refused:?}");
    // A terminal is a way to change things too.
    let terminal = reader
        .get(&format!(
            "/api/v1/spaces/{}/terminal?session={}",
            space.id(),
            uuid::Uuid::new_v4()
        ))
        .await;
    assert_eq!(terminal.status, 403, "{terminal:?}");

    let (keeper, _) =
        token(json!({"name": "keeper", "scopes": ["credentials"], "expires_in_days": 7})).await;
    let child = keeper
        .post(
            "/api/v1/me/tokens",
            json!({"name": "child", "expires_in_days": 3, "scopes": ["read"]}),
        )
        .await;
    assert_eq!(child.status, 201, "{child:?}");
    let outliving = keeper
        .post(
            "/api/v1/me/tokens",
            json!({"name": "longer", "expires_in_days": 30}),
        )
        .await;
    assert_eq!(
        (outliving.status, outliving.body["error"]["field"].as_str()),
        (400, Some("expires_in_days"))
    );
    let reader_child = reader
        .post(
            "/api/v1/me/tokens",
            json!({"name": "x", "scopes": ["read"]}),
        )
        .await;
    assert_eq!(reader_child.status, 403);
    // Any token may end itself (`hangar logout` does): that gives no power.
    let own_id = plain_dto["id"].as_str().unwrap();
    assert_eq!(
        plain
            .delete(&format!("/api/v1/me/tokens/{own_id}"))
            .await
            .status,
        204
    );
    assert_eq!(plain.get("/api/v1/me").await.status, 401);
    server.stop().await;
}

both_dbs!(token_lifetimes_are_capped_by_the_admin_setting);
async fn token_lifetimes_are_capped_by_the_admin_setting(db: TestDb) {
    use hangar::entities::api_token;
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

    let server = TestServer::start(&db, &["--token-max-days", "30"]).await;
    let admin = admin(&server).await;
    let too_long = admin
        .post(
            "/api/v1/me/tokens",
            json!({"name": "long", "expires_in_days": 31}),
        )
        .await;
    assert_eq!(too_long.body["error"]["field"], "expires_in_days");
    assert!(too_long.message().contains("30"), "{too_long:?}");
    let doc = admin.get("/api/v1/openapi.json").await;
    assert_eq!(
        doc.body["components"]["schemas"]["CreateToken"]["properties"]["expires_in_days"]
            ["maximum"],
        30
    );
    let created = admin
        .post(
            "/api/v1/me/tokens",
            json!({"name": "month", "expires_in_days": 30}),
        )
        .await;
    assert_eq!(created.status, 201);
    let bearer = Client::with_token(&server, created.body["secret"].as_str().unwrap());
    assert_eq!(bearer.get("/api/v1/me").await.status, 200);

    // A token made before the limit was lowered stops once it is older than the limit.
    let conn = sea_orm::Database::connect(db.url()).await.unwrap();
    api_token::Entity::update_many()
        .col_expr(
            api_token::Column::CreatedAt,
            Expr::value(chrono::Utc::now() - chrono::Duration::days(31)),
        )
        .col_expr(
            api_token::Column::ExpiresAt,
            Expr::value(chrono::Utc::now() + chrono::Duration::days(3000)),
        )
        .filter(api_token::Column::Name.eq("month"))
        .exec(&conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    // Written behind the server's back, as time passing would: stops within a second.
    assert_eq!(
        bearer
            .status_within("/api/v1/me", 401, Duration::from_secs(1))
            .await,
        401
    );
    server.stop().await;
}

// A changed password ends the user's other sessions (and what they have open), optionally
// their tokens; an admin's reset ends all of them; an admin changes their own password only
// with their current one.
both_dbs!(a_password_change_ends_the_other_sessions_and_their_channels);
async fn a_password_change_ends_the_other_sessions_and_their_channels(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    let (ann_id, _) = admin.new_member(&server, "ann", json!({})).await;
    let here = Client::signed_in(&server, "ann", "member-password").await;
    let elsewhere = server.login_cookie("ann", "member-password").await;
    let mut stream = Events::open(&server, &elsewhere).await;
    let created = here.post("/api/v1/me/tokens", json!({"name": "ci"})).await;
    let token = Client::with_token(&server, created.body["secret"].as_str().unwrap());

    let changed = here
        .post(
            "/api/v1/me/password",
            json!({"current_password": "member-password", "new_password": "second-password"}),
        )
        .await;
    assert_eq!(changed.status, 204, "{changed:?}");
    assert_eq!(here.get("/api/v1/me").await.status, 200);
    assert_eq!(
        server
            .get_with_cookie("/api/v1/me", &elsewhere)
            .await
            .status(),
        401
    );
    assert!(
        stream.ended(Duration::from_secs(2)).await,
        "the other session's live stream stayed open"
    );
    assert_eq!(token.get("/api/v1/me").await.status, 200);

    let again = here
        .post(
            "/api/v1/me/password",
            json!({"current_password": "second-password", "new_password": "third-password", "revoke_tokens": true}),
        )
        .await;
    assert_eq!(again.status, 204, "{again:?}");
    assert_eq!(token.get("/api/v1/me").await.status, 401);

    let reset = admin
        .patch(
            &format!("/api/v1/users/{ann_id}"),
            json!({"password": "set-by-admin"}),
        )
        .await;
    assert_eq!(reset.status, 200, "{reset:?}");
    assert_eq!(here.get("/api/v1/me").await.status, 401);

    let me = admin.get("/api/v1/me").await;
    let own = admin
        .patch(
            &format!("/api/v1/users/{}", me.body["user"]["id"].as_str().unwrap()),
            json!({"password": "without-the-old-one"}),
        )
        .await;
    assert_eq!(own.status, 403, "{own:?}");
    server.stop().await;
}

/// Every page of a list, read with `after`.
async fn every_page(client: &Client, path: &str, limit: usize) -> Vec<Value> {
    let mut all = Vec::new();
    let separator = if path.contains('?') { '&' } else { '?' };
    let mut after: Option<String> = None;
    loop {
        let mut url = format!("{path}{separator}limit={limit}");
        if let Some(after) = &after {
            url.push_str(&format!("&after={after}"));
        }
        let page = client.get(&url).await;
        assert_eq!(page.status, 200, "{url}: {page:?}");
        let items = page.body.as_array().unwrap().clone();
        assert!(items.len() <= limit);
        after = items.last().map(|i| {
            i.get("id")
                .or_else(|| i.get("user_id"))
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        });
        let last = items.len() < limit;
        all.extend(items);
        if last {
            return all;
        }
    }
}

both_dbs!(lists_come_a_page_at_a_time);
async fn lists_come_a_page_at_a_time(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    let (_, ann) = admin.new_member(&server, "ann", json!({})).await;
    for name in ["u-c", "u-a", "u-b"] {
        admin.new_member(&server, name, json!({})).await;
    }
    let users = every_page(&admin, "/api/v1/users", 2).await;
    let names: Vec<&str> = users
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "ann", "u-a", "u-b", "u-c"]);
    assert_eq!(every_page(&admin, "/api/v1/users/quotas", 2).await.len(), 5);

    for name in ["g-b", "g-a", "g-c"] {
        admin.post("/api/v1/groups", json!({"name": name})).await;
    }
    let groups = every_page(&admin, "/api/v1/groups", 2).await;
    let names: Vec<&str> = groups.iter().map(|g| g["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["g-a", "g-b", "g-c"]);

    // A member pages through the templates they may use only.
    let hidden_group = groups[0]["id"].as_str().unwrap();
    for name in ["t-b", "t-a", "t-d"] {
        admin.new_template(name, 0, json!([])).await;
    }
    admin
        .post(
            "/api/v1/templates",
            json!({"name": "t-c", "image": "x", "compute_units": 0, "allowed_groups": [hidden_group]}),
        )
        .await;
    let mine = every_page(&ann, "/api/v1/templates", 1).await;
    let names: Vec<&str> = mine.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["t-a", "t-b", "t-d"]);
    assert_eq!(every_page(&admin, "/api/v1/templates", 3).await.len(), 4);

    let template = mine[0]["id"].as_str().unwrap();
    let mut made = Vec::new();
    for name in ["first", "second", "third"] {
        made.push(
            ann.post(
                "/api/v1/spaces",
                json!({"name": name, "template_id": template}),
            )
            .await
            .id(),
        );
    }
    let spaces = every_page(&ann, "/api/v1/spaces", 2).await;
    let ids: Vec<String> = spaces
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, made);
    assert_eq!(
        every_page(&admin, "/api/v1/spaces?all=true", 1).await.len(),
        3
    );

    for name in ["one", "two", "three"] {
        ann.post("/api/v1/me/tokens", json!({"name": name})).await;
    }
    let tokens = every_page(&ann, "/api/v1/me/tokens", 2).await;
    let names: Vec<&str> = tokens.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["one", "two", "three"]);

    let bad_limit = admin.get("/api/v1/users?limit=0").await;
    assert_eq!(
        (bad_limit.status, bad_limit.body["error"]["field"].as_str()),
        (400, Some("limit"))
    );
    assert_eq!(admin.get("/api/v1/users?limit=501").await.status, 400);
    assert_eq!(admin.get("/api/v1/users?after=nobody").await.status, 404);
    // Another's space is no cursor of a member's list.
    let admins_space = admin
        .post(
            "/api/v1/spaces",
            json!({"name": "admins", "template_id": template}),
        )
        .await
        .id();
    assert_eq!(
        ann.get(&format!("/api/v1/spaces?after={admins_space}"))
            .await
            .status,
        404
    );
    server.stop().await;
}

/// An OpenSSH ed25519 public key line of 32 given bytes.
fn ed25519_key(seed: u8) -> String {
    use base64::Engine;
    let mut blob = Vec::new();
    blob.extend_from_slice(&11u32.to_be_bytes());
    blob.extend_from_slice(b"ssh-ed25519");
    blob.extend_from_slice(&32u32.to_be_bytes());
    blob.extend_from_slice(&[seed; 32]);
    format!(
        "ssh-ed25519 {}",
        base64::engine::general_purpose::STANDARD.encode(blob)
    )
}

both_dbs!(counts_and_lengths_have_limits);
async fn counts_and_lengths_have_limits(db: TestDb) {
    let server = TestServer::start(&db, &["--live-streams-per-user", "3"]).await;
    let admin = admin(&server).await;
    let (_, ann) = admin.new_member(&server, "ann", json!({})).await;
    for n in 0..50 {
        let made = ann
            .post("/api/v1/me/tokens", json!({"name": format!("t{n}")}))
            .await;
        assert_eq!(made.status, 201, "{made:?}");
        let key = ann
            .post("/api/v1/me/ssh-keys", json!({"public_key": ed25519_key(n)}))
            .await;
        assert_eq!(key.status, 201, "{key:?}");
    }
    let token = ann
        .post("/api/v1/me/tokens", json!({"name": "one-more"}))
        .await;
    assert_eq!((token.status, token.code()), (409, "conflict"));
    assert!(token.message().contains("50"), "{token:?}");
    let key = ann
        .post(
            "/api/v1/me/ssh-keys",
            json!({"public_key": ed25519_key(200)}),
        )
        .await;
    assert_eq!((key.status, key.code()), (409, "conflict"));

    let long = admin
        .post(
            "/api/v1/groups",
            json!({"name": "g", "description": "d".repeat(1001)}),
        )
        .await;
    assert_eq!(
        (long.status, long.body["error"]["field"].as_str()),
        (400, Some("description"))
    );
    let long = admin
        .post(
            "/api/v1/templates",
            json!({"name": "t", "image": "x", "compute_units": 0, "description": "d".repeat(1001)}),
        )
        .await;
    assert_eq!(long.body["error"]["field"], "description");

    // Live-update streams: a few per user; a closed one frees its place.
    let cookie = server.login_cookie("ann", "member-password").await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(Events::open(&server, &cookie).await);
    }
    let refused = server.get_with_cookie("/api/v1/events", &cookie).await;
    assert_eq!(refused.status(), 409);
    assert_eq!(json(refused).await["error"]["code"], "conflict");
    // Others are not held back by ann's streams.
    let admin_cookie = server.login_cookie("admin", ADMIN_PASSWORD).await;
    Events::open(&server, &admin_cookie).await;
    drop(open.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let again = server.get_with_cookie("/api/v1/events", &cookie).await;
        if again.status() == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the closed stream's place was never freed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.stop().await;
}

// A key belongs to one account: the second account to register it is refused (409 naming
// the reason and what to do, never whose it is), and the refusal is audited.
both_dbs!(an_ssh_key_belongs_to_one_account);
async fn an_ssh_key_belongs_to_one_account(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    let (_, ann) = admin.new_member(&server, "ann", json!({})).await;
    let (_, bob) = admin.new_member(&server, "bob", json!({})).await;
    let key = ed25519_key(7);
    assert_eq!(
        ann.post("/api/v1/me/ssh-keys", json!({"public_key": key}))
            .await
            .status,
        201
    );
    let taken = bob
        .post("/api/v1/me/ssh-keys", json!({"public_key": key}))
        .await;
    assert_eq!((taken.status, taken.code()), (409, "conflict"), "{taken:?}");
    assert_eq!(
        taken.body["error"]["reason"],
        "registered_to_another_account"
    );
    assert!(
        taken.message().contains("registered to another account")
            && taken.message().contains("generate a new key"),
        "{taken:?}"
    );
    assert!(!taken.body.to_string().contains("ann"), "{taken:?}");
    assert_eq!(bob.get("/api/v1/me/ssh-keys").await.body, json!([]));
    // The same key with another comment is the same key.
    let renamed = bob
        .post(
            "/api/v1/me/ssh-keys",
            json!({"public_key": format!("{key} bob@laptop"), "name": "mine"}),
        )
        .await;
    assert_eq!(renamed.status, 409, "{renamed:?}");
    let twice = ann
        .post("/api/v1/me/ssh-keys", json!({"public_key": key}))
        .await;
    assert_eq!(twice.status, 409);
    assert!(twice.message().contains("already"), "{twice:?}");
    let refused = admin
        .get("/api/v1/audit?action=ssh_key.add&outcome=refused")
        .await;
    assert_eq!(refused.body[0]["actor"], "bob", "{refused:?}");
    // A key of his own is fine.
    assert_eq!(
        bob.post("/api/v1/me/ssh-keys", json!({"public_key": ed25519_key(8)}))
            .await
            .status,
        201
    );
    server.stop().await;
}

// The move to one account per key: a key that several accounts held is removed from all of
// them (the audit log says so, for each), keys of one account stay, and no key can be held
// twice afterwards.
both_dbs!(keys_held_by_two_accounts_are_removed_by_the_move_to_one_account_per_key);
async fn keys_held_by_two_accounts_are_removed_by_the_move_to_one_account_per_key(db: TestDb) {
    use migrations::{Migrator, MigratorTrait};
    use sea_orm::{ConnectionTrait, Statement};

    let conn = hangar::db::connect(&db.url()).await.unwrap();
    // Back to just before the migration, wherever it stands in the list.
    let all = Migrator::migrations();
    let at = all
        .iter()
        .position(|m| m.name() == "m20261221_000001_one_account_per_key")
        .unwrap();
    Migrator::down(&conn, Some((all.len() - at) as u32))
        .await
        .unwrap();
    let backend = conn.get_database_backend();
    let run = |sql: String| {
        let conn = conn.clone();
        async move { conn.execute(Statement::from_string(backend, sql)).await }
    };
    for user in ["u1", "u2", "u3"] {
        run(format!(
            "INSERT INTO users (id, username, display_name, email, password_hash, role, active, \
             created_at) VALUES ('{user}', '{user}', '{user}', '', 'x', 'member', true, \
             '2026-12-01 10:00:00+00:00')"
        ))
        .await
        .unwrap();
    }
    let key = |id: &str, user: &str, fingerprint: &str, at: &str| {
        format!(
            "INSERT INTO ssh_keys (id, user_id, name, public_key, fingerprint, created_at) \
             VALUES ('{id}', '{user}', 'laptop \"{id}\"', 'ssh-ed25519 AAAA', '{fingerprint}', \
             '2026-12-0{at} 10:00:00+00:00')"
        )
    };
    // u1 registered it first, u2 later: nobody can tell whose it is.
    run(key("k1", "u1", "SHA256:shared", "1")).await.unwrap();
    run(key("k2", "u2", "SHA256:shared", "2")).await.unwrap();
    run(key("k3", "u3", "SHA256:own", "3")).await.unwrap();
    run(key("k4", "u1", "SHA256:also-own", "4")).await.unwrap();
    Migrator::up(&conn, None).await.unwrap();

    let left: Vec<String> = conn
        .query_all(Statement::from_string(
            backend,
            "SELECT id FROM ssh_keys ORDER BY id",
        ))
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get("", "id").unwrap())
        .collect();
    assert_eq!(left, ["k3", "k4"]);
    assert!(run(key("k5", "u1", "SHA256:own", "5")).await.is_err());

    // The audit log, as Hangar reads it, says whose key went and why.
    use hangar::entities::audit_event;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let removed = audit_event::Entity::find()
        .filter(audit_event::Column::Action.eq("ssh_key.remove"))
        .all(&conn)
        .await
        .unwrap();
    let mut users: Vec<String> = removed
        .iter()
        .map(|e| {
            assert_eq!((e.actor.as_str(), e.actor_id.as_ref()), ("hangar", None));
            assert_eq!(e.target, "ssh_key:SHA256:shared");
            assert!(
                chrono::Utc::now() - e.at < chrono::Duration::minutes(1),
                "{e:?}"
            );
            let details: Value = serde_json::from_str(&e.details).unwrap();
            assert!(
                details["reason"]
                    .as_str()
                    .unwrap()
                    .contains("more than one account"),
                "{details}"
            );
            assert!(
                details["key"].as_str().unwrap().starts_with("laptop \"k"),
                "{details}"
            );
            details["user"].as_str().unwrap().to_owned()
        })
        .collect();
    users.sort_unstable();
    assert_eq!(users, ["u1", "u2"]);
    conn.close().await.unwrap();
}

// A sharee's view of the history leaves out whom else the space is shared with.
both_dbs!(sharees_do_not_see_other_sharees_in_the_history);
async fn sharees_do_not_see_other_sharees_in_the_history(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    let (_, ann) = admin.new_member(&server, "ann", json!({})).await;
    let (_, bob) = admin.new_member(&server, "bob", json!({})).await;
    admin.new_member(&server, "carol", json!({})).await;
    let template = admin.new_template("box", 0, json!([])).await;
    let space = ann
        .post(
            "/api/v1/spaces",
            json!({"name": "api", "template_id": template}),
        )
        .await
        .id();
    for who in ["bob", "carol"] {
        ann.put(&format!("/api/v1/spaces/{space}/shares/{who}"))
            .await;
    }
    let history = |client: Client| {
        let space = space.clone();
        async move {
            let answer = client.get(&format!("/api/v1/spaces/{space}/history")).await;
            assert_eq!(answer.status, 200);
            answer.body.to_string()
        }
    };
    let seen_by_bob = history(bob).await;
    assert!(seen_by_bob.contains("\"user\":\"bob\""), "{seen_by_bob}");
    assert!(!seen_by_bob.contains("carol"), "{seen_by_bob}");
    assert!(seen_by_bob.contains("space.create"), "{seen_by_bob}");
    let seen_by_owner = history(ann).await;
    assert!(
        seen_by_owner.contains("bob") && seen_by_owner.contains("carol"),
        "{seen_by_owner}"
    );
    server.stop().await;
}

/// A failed sign-in is logged without what was typed as the username (people type their
/// password there by mistake).
#[tokio::test]
async fn a_failed_sign_in_does_not_log_the_typed_username() {
    let db = TempDb::new();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("hangar.log");
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_hangar"))
        .env("HANGAR_LISTEN", format!("127.0.0.1:{port}"))
        .env("HANGAR_DATABASE_URL", db.url())
        .env("HANGAR_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("HANGAR_DEFAULT_TEMPLATE", "false")
        .env("HANGAR_LOG", "info")
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let server = TestServer::remote(format!("127.0.0.1:{port}").parse().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    while server
        .client
        .get(server.url("/healthz"))
        .send()
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "hangar did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let typed = "my-s3cret-passw0rd-typed-as-a-name";
    assert_eq!(server.login(typed, "whatever").await.status(), 401);
    let deadline = Instant::now() + Duration::from_secs(5);
    let written = loop {
        let written = std::fs::read_to_string(&log).unwrap();
        if written.contains("failed sign-in") || Instant::now() > deadline {
            break written;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    child.kill().await.unwrap();
    assert!(written.contains("failed sign-in"), "{written}");
    assert!(
        !written.contains(typed),
        "the typed name was logged: {written}"
    );
}

both_dbs!(bodies_of_another_shape_than_documented_are_refused);
async fn bodies_of_another_shape_than_documented_are_refused(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    let template = admin.new_template("box", 0, json!([])).await;
    let path = format!("/api/v1/templates/{template}");
    let array = admin.patch(&path, json!([null, null])).await;
    assert_eq!(array.status, 400, "{array:?}");
    assert!(array.message().contains("object"), "{array:?}");
    let nested = admin
        .patch(&path, json!({"volumes": [["home", "/home", 1]]}))
        .await;
    assert_eq!(
        (nested.status, nested.body["error"]["field"].as_str()),
        (400, Some("volumes"))
    );
    let fraction = admin
        .post("/api/v1/groups", json!({"name": "g", "max_spaces": 2.5}))
        .await;
    assert_eq!(fraction.body["error"]["field"], "max_spaces");
    // A whole number written as a float is the same whole number.
    let whole = admin
        .post("/api/v1/groups", json!({"name": "g", "max_spaces": 2.0}))
        .await;
    assert_eq!(
        (whole.status, whole.body["max_spaces"].as_i64()),
        (201, Some(2))
    );
    let long = admin.patch(&path, json!({"name": "n".repeat(65)})).await;
    assert_eq!(long.body["error"]["field"], "name");
    assert!(long.message().contains("64"), "{long:?}");
    let unchanged = admin.get(&path).await;
    assert_eq!(unchanged.body["name"], "box");
    server.stop().await;
}

both_dbs!(an_archived_template_has_no_preview);
async fn an_archived_template_has_no_preview(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    let (_, ann) = admin.new_member(&server, "ann", json!({})).await;
    let template = admin.new_template("box", 0, json!([])).await;
    let preview = format!("/api/v1/templates/{template}/preview");
    assert_eq!(ann.get(&preview).await.status, 200);
    let archived = admin
        .patch(
            &format!("/api/v1/templates/{template}"),
            json!({"archived": true}),
        )
        .await;
    assert_eq!(archived.status, 200);
    let for_admin = admin.get(&preview).await;
    assert_eq!((for_admin.status, for_admin.code()), (409, "conflict"));
    assert_eq!(ann.get(&preview).await.status, 404);
    server.stop().await;
}

both_dbs!(the_document_names_every_answer_and_limit);
async fn the_document_names_every_answer_and_limit(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let doc = Client::anonymous(&server).get("/api/v1/openapi.json").await;
    let mut missing = Vec::new();
    for (path, item) in doc.body["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let responses = &operation["responses"];
            let mut wanted = Vec::new();
            // Signing in, and asking how, need nobody signed in and never answer 401.
            if !["/api/v1/auth/login", "/api/v1/auth/methods"].contains(&path.as_str()) {
                wanted.push("401");
            }
            if path.contains('{') {
                wanted.push("404");
            }
            if method != "get" {
                wanted.push("403");
            }
            if operation.get("requestBody").is_some() {
                wanted.push("400");
            }
            for status in wanted {
                let answer = &responses[status];
                if answer["content"]["application/json"]["schema"]["$ref"]
                    != "#/components/schemas/ErrorBody"
                {
                    missing.push(format!("{method} {path} {status}"));
                }
            }
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                let place = parameter["in"].as_str().unwrap();
                let name = parameter["name"].as_str().unwrap();
                let in_path = path.contains(&format!("{{{name}}}"));
                assert_eq!(place == "path", in_path, "{method} {path}: {parameter}");
            }
        }
    }
    assert!(missing.is_empty(), "undocumented answers: {missing:?}");
    let login = &doc.body["paths"]["/api/v1/auth/login"]["post"]["responses"];
    assert!(login["429"].is_object() && login["503"].is_object());
    let name = &doc.body["components"]["schemas"]["CreateTemplate"]["properties"]["name"];
    assert_eq!(
        (name["minLength"].as_u64(), name["maxLength"].as_u64()),
        (Some(1), Some(64))
    );
    server.stop().await;
}

both_dbs!(readiness_tells_the_reason_to_admins_only);
async fn readiness_tells_the_reason_to_admins_only(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-docker.sock");
    let host = format!("unix://{}", missing.display());
    let server = TestServer::start(&db, &["--docker-host", &host]).await;
    let anonymous = Client::anonymous(&server).get("/readyz").await;
    assert_eq!(anonymous.status, 503);
    assert_eq!(anonymous.body["docker"], "unavailable");
    assert!(
        !anonymous.body.to_string().contains("no-such-docker"),
        "{anonymous:?}"
    );
    let cookie = server.login_cookie("admin", ADMIN_PASSWORD).await;
    let detailed = server
        .client
        .get(server.url("/readyz"))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(detailed.status(), 503);
    let body = json(detailed).await;
    assert!(
        body["docker"].as_str().unwrap().contains("no-such-docker"),
        "{body}"
    );
    server.shutdown().await;
}
