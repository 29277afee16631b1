//! Notifications against real parts: a memory hog killed by its space's limit (real Docker)
//! tells the space's owner and nobody else; a share tells the sharee, whose bell counts it
//! (list, unread count, the live stream's `notifications` event) and clears once read; each
//! user's choice per kind is followed; admins' defaults are admins' only.

use std::time::Duration;

use serde_json::{json, Value};

use crate::events::Events;
use crate::support::{admin, both_dbs, in_space, Client, TestDb, TestServer};

const QUOTA: fn() -> Value = || json!({"compute_units": 4, "storage_units": 4, "max_spaces": 4});

async fn kinds(client: &Client) -> Vec<String> {
    let list = client.get("/api/v1/me/notifications").await;
    assert_eq!(list.status, 200, "{list:?}");
    list.body
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|n| n["kind"].as_str().map(str::to_owned))
        .collect()
}

both_dbs!(a_memory_hog_killed_by_its_limit_tells_its_owner_only);
async fn a_memory_hog_killed_by_its_limit_tells_its_owner_only(db: TestDb) {
    // One compute unit is 64 MiB here: a few hundred MiB of buffered input is over it.
    let server = TestServer::start(&db, &["--memory-mib-per-cu", "64"]).await;
    let admin = admin(&server).await;
    let template = admin.new_template("small", 1, json!([])).await;
    let (_, ann) = admin.new_member(&server, "ann", QUOTA()).await;
    let (_, bob) = admin.new_member(&server, "bob", QUOTA()).await;
    let id = ann.running_space("hog", &template).await;
    let (_, said) = in_space(&id, "head -c 300m /dev/zero | tail | wc -c").await;

    let oom = ann.told("oom_kill", Duration::from_secs(30)).await;
    assert_eq!(
        oom.len(),
        1,
        "one notification per kill, not one per event: {oom:?} ({said})"
    );
    let first = oom.first().cloned().unwrap_or_default();
    assert_eq!(first["link"], format!("/spaces/{id}"), "{first}");
    assert!(
        first["title"].as_str().unwrap_or_default().contains("hog"),
        "{first}"
    );
    assert!(first["read_at"].is_null(), "{first}");
    assert_eq!(kinds(&bob).await, Vec::<String>::new());
    // The space itself goes on: only the hog was killed.
    let space = ann.get(&format!("/api/v1/spaces/{id}")).await;
    assert_eq!(space.body["state"], "running", "{space:?}");
    // The admins' overview lists it among the latest failures.
    let overview = admin.get("/api/v1/admin/overview").await;
    assert_eq!(overview.status, 200, "{overview:?}");
    let failures = overview.body["failures"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        failures
            .iter()
            .any(|f| f["action"] == "space.oom" && f["target"] == "space:ann/hog"),
        "{overview:?}"
    );
    server.stop().await;
}

both_dbs!(a_share_rings_the_sharees_bell_until_read);
async fn a_share_rings_the_sharees_bell_until_read(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    let template = admin.new_template("plain", 1, json!([])).await;
    let (_, ann) = admin.new_member(&server, "ann", QUOTA()).await;
    let (bob_id, bob) = admin.new_member(&server, "bob", QUOTA()).await;
    let first = ann.new_space("first", &template).await;
    let second = ann.new_space("second", &template).await;
    let bob_cookie = server.login_cookie("bob", "member-password").await;
    let mut events = Events::open(&server, &bob_cookie).await;

    let unread = bob.get("/api/v1/me/notifications/unread").await;
    assert_eq!(unread.body, json!({"unread": 0}), "{unread:?}");
    let shared = ann
        .put(&format!("/api/v1/spaces/{first}/shares/{bob_id}"))
        .await;
    assert_eq!(shared.status, 200, "{shared:?}");
    events
        .wait_for_within("notifications", Duration::from_secs(10), |d| {
            d["unread"] == 1
        })
        .await;
    let got = bob.told("share_received", Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1, "{got:?}");
    let note = got.first().cloned().unwrap_or_default();
    assert_eq!(note["link"], format!("/spaces/{first}"));
    assert!(
        note["title"].as_str().unwrap_or_default().contains("ann"),
        "{note}"
    );
    assert_eq!(
        kinds(&ann).await,
        Vec::<String>::new(),
        "the sharer is not told"
    );
    // Sharing again what is shared already tells nobody again.
    ann.put(&format!("/api/v1/spaces/{first}/shares/{bob_id}"))
        .await;
    assert_eq!(kinds(&bob).await.len(), 1);
    // Nor does unsharing and sharing again at once (which could flood Bob's inbox).
    for _ in 0..3 {
        let unshared = ann
            .delete(&format!("/api/v1/spaces/{first}/shares/{bob_id}"))
            .await;
        assert_eq!(unshared.status, 200, "{unshared:?}");
        let shared = ann
            .put(&format!("/api/v1/spaces/{first}/shares/{bob_id}"))
            .await;
        assert_eq!(shared.status, 200, "{shared:?}");
    }
    assert_eq!(kinds(&bob).await.len(), 1);

    // A second share: two unread; reading up to the first leaves one; all read, none.
    ann.put(&format!("/api/v1/spaces/{second}/shares/{bob_id}"))
        .await;
    let unread = bob.get("/api/v1/me/notifications/unread").await;
    assert_eq!(unread.body["unread"], 2, "{unread:?}");
    let up_to = note["id"].as_i64().unwrap_or_default();
    let read = bob
        .post("/api/v1/me/notifications/read", json!({"up_to": up_to}))
        .await;
    assert_eq!(read.status, 200, "{read:?}");
    assert_eq!(read.body["unread"], 1, "{read:?}");
    let read = bob.post("/api/v1/me/notifications/read", json!({})).await;
    assert_eq!(read.body["unread"], 0, "{read:?}");
    events
        .wait_for_within("notifications", Duration::from_secs(10), |d| {
            d["unread"] == 0
        })
        .await;
    let list = bob.get("/api/v1/me/notifications?limit=1").await;
    let items = list.body.as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 1, "{list:?}");
    assert!(items.iter().all(|n| n["read_at"].is_string()), "{list:?}");
    // Paged newest first: the page after the newest holds the older one.
    let newest = items.first().map(|n| n["id"].clone()).unwrap_or_default();
    let older = bob
        .get(&format!("/api/v1/me/notifications?limit=1&after={newest}"))
        .await;
    assert_eq!(older.body[0]["id"], up_to, "{older:?}");

    // Bob turns the bell off for shares: a third share leaves it quiet.
    let settings = bob
        .send(
            reqwest::Method::PUT,
            "/api/v1/me/notification-settings",
            Some(json!({"choices": [{"kind": "share_received", "in_app": false, "email": false, "webhook": false}]})),
        )
        .await;
    assert_eq!(settings.status, 200, "{settings:?}");
    let current = bob.get("/api/v1/me/notification-settings").await;
    assert_eq!(
        current.body["chosen"],
        json!(["share_received"]),
        "{current:?}"
    );
    let third = ann.new_space("third", &template).await;
    ann.put(&format!("/api/v1/spaces/{third}/shares/{bob_id}"))
        .await;
    assert_eq!(kinds(&bob).await.len(), 2, "a kind turned off still rang");

    // Admins' defaults: admins only.
    assert_eq!(
        bob.get("/api/v1/admin/notification-defaults").await.status,
        403
    );
    let defaults = admin.get("/api/v1/admin/notification-defaults").await;
    assert_eq!(defaults.status, 200, "{defaults:?}");
    assert_eq!(
        defaults.body.as_array().map(Vec::len),
        Some(8),
        "{defaults:?}"
    );
    server.stop().await;
}

/// What a webhook receiver got: each request's signature header and body.
type Received = std::sync::Arc<std::sync::Mutex<Vec<(String, Vec<u8>)>>>;

/// A webhook receiver on loopback that answers 500 to the first request and 200 after.
async fn flaky_receiver() -> Result<(u16, Received, tokio::task::JoinHandle<()>), std::io::Error> {
    use axum::http::{HeaderMap, StatusCode};
    let received: Received = Received::default();
    let seen = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let seen = seen.clone();
            async move {
                let signature = headers
                    .get("x-hangar-signature")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                let mut all = seen.lock().unwrap_or_else(|p| p.into_inner());
                all.push((signature, body.to_vec()));
                if all.len() == 1 {
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "receiver down for a moment",
                    )
                } else {
                    (StatusCode::OK, "ok")
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((port, received, task))
}

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    use hmac::Mac;
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

both_dbs!(a_webhook_is_signed_retried_after_a_500_and_shown_to_admins);
async fn a_webhook_is_signed_retried_after_a_500_and_shown_to_admins(db: TestDb) {
    let Ok((port, received, receiver)) = flaky_receiver().await else {
        panic!("cannot start the webhook receiver");
    };
    // Loopback is refused without the flag (below); this server allows it for the receiver.
    let server = TestServer::start(
        &db,
        &[
            "--notify-retry-secs",
            "1",
            "--webhook-allow-private",
            "true",
        ],
    )
    .await;
    let admin = admin(&server).await;
    let template = admin.new_template("plain", 1, json!([])).await;
    let (_, ann) = admin.new_member(&server, "ann", QUOTA()).await;
    let (bob_id, bob) = admin.new_member(&server, "bob", QUOTA()).await;
    let secret = "a-secret-of-bobs-32-characters!!";
    let hook = format!("http://127.0.0.1:{port}/hook");
    let settings = bob
        .send(
            reqwest::Method::PUT,
            "/api/v1/me/notification-settings",
            Some(json!({
                "webhook_url": hook,
                "webhook_secret": secret,
                "choices": [{"kind": "share_received", "in_app": true, "email": false, "webhook": true}],
            })),
        )
        .await;
    assert_eq!(settings.status, 200, "{settings:?}");
    assert_eq!(settings.body["webhook_url"], hook.as_str());
    assert_eq!(settings.body["webhook_secret_set"], true);
    assert!(
        !settings.body.to_string().contains(secret),
        "the secret was answered: {settings:?}"
    );
    let short = bob
        .send(
            reqwest::Method::PUT,
            "/api/v1/me/notification-settings",
            Some(json!({"webhook_secret": "short"})),
        )
        .await;
    assert_eq!(short.status, 400, "{short:?}");
    let ftp = bob
        .send(
            reqwest::Method::PUT,
            "/api/v1/me/notification-settings",
            Some(json!({"webhook_url": "ftp://example.com/"})),
        )
        .await;
    assert_eq!(ftp.status, 400, "{ftp:?}");

    let space = ann.new_space("shared", &template).await;
    ann.put(&format!("/api/v1/spaces/{space}/shares/{bob_id}"))
        .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let got = loop {
        let got = received.lock().map(|r| r.clone()).unwrap_or_default();
        if got.len() >= 2 || std::time::Instant::now() >= deadline {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(got.len(), 2, "a 500 then a retry: {got:?}");
    for (signature, body) in &got {
        assert_eq!(signature, &hmac_hex(secret, body), "a bad signature");
    }
    assert_eq!(
        got.first().map(|g| &g.1),
        got.get(1).map(|g| &g.1),
        "the retry differs"
    );
    let body: Value = serde_json::from_slice(&got.first().map(|g| g.1.clone()).unwrap_or_default())
        .unwrap_or_default();
    assert_eq!(body["kind"], "share_received", "{body}");
    assert_eq!(body["user"], "bob", "{body}");
    assert!(
        body["link"]
            .as_str()
            .unwrap_or_default()
            .ends_with(&format!("/spaces/{space}")),
        "{body}"
    );

    // Admins see the delivery: delivered at the second attempt, the receiver's 200.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let delivery = loop {
        let list = admin.get("/api/v1/admin/webhook-deliveries").await;
        assert_eq!(list.status, 200, "{list:?}");
        let first = list.body[0].clone();
        if first["status"] == "delivered" || std::time::Instant::now() >= deadline {
            break first;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(delivery["status"], "delivered", "{delivery}");
    assert_eq!(delivery["attempts"], 2, "{delivery}");
    assert_eq!(delivery["last_code"], 200, "{delivery}");
    assert_eq!(delivery["username"], "bob", "{delivery}");
    assert_eq!(delivery["channel"], "webhook", "{delivery}");
    // The path of a webhook may be its secret: admins see where it goes, not the path.
    assert_eq!(
        delivery["target"],
        format!("http://127.0.0.1:{port}"),
        "{delivery}"
    );
    assert_eq!(
        bob.get("/api/v1/admin/webhook-deliveries").await.status,
        403
    );
    server.stop().await;

    // Without --webhook-allow-private, a loopback webhook is refused.
    let strict = TestServer::start(&db, &[]).await;
    let bob = Client::signed_in(&strict, "bob", "member-password").await;
    let refused = bob
        .send(
            reqwest::Method::PUT,
            "/api/v1/me/notification-settings",
            Some(json!({"webhook_url": hook})),
        )
        .await;
    // A policy of this server, not a malformed URL: 403, naming the field and the way out.
    assert_eq!(refused.status, 403, "{refused:?}");
    assert_eq!(refused.body["error"]["field"], "webhook_url", "{refused:?}");
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("--webhook-allow-private"),
        "{refused:?}"
    );
    strict.stop().await;
    receiver.abort();
}

/// PyPI's aiosmtpd on loopback, keeping what it receives in a Maildir.
struct SmtpServer {
    port: u16,
    maildir: tempfile::TempDir,
    child: tokio::process::Child,
}

impl SmtpServer {
    async fn start() -> Result<SmtpServer, String> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let python = root.join(".tools/venv/bin/python");
        if !python.exists() {
            return Err(format!(
                "{} is missing: run scripts/setup.sh test (it installs aiosmtpd)",
                python.display()
            ));
        }
        let maildir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = crate::support::free_port().await;
        let child = tokio::process::Command::new(python)
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir.path().join("mail"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| e.to_string())?;
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if std::time::Instant::now() >= deadline {
                return Err("aiosmtpd did not listen within 30 s".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(SmtpServer {
            port,
            maildir,
            child,
        })
    }

    /// The messages received so far, as text.
    fn received(&self) -> Vec<String> {
        std::fs::read_dir(self.maildir.path().join("mail/new"))
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

both_dbs!(a_notification_is_emailed_through_the_smtp_server);
async fn a_notification_is_emailed_through_the_smtp_server(db: TestDb) {
    let smtp = match SmtpServer::start().await {
        Ok(smtp) => smtp,
        Err(e) => panic!("{e}"),
    };
    let port = smtp.port.to_string();
    let server = TestServer::start(
        &db,
        &[
            "--smtp-host",
            "127.0.0.1",
            "--smtp-port",
            &port,
            "--smtp-tls",
            "none",
            "--smtp-from",
            "Hangar <hangar@example.com>",
        ],
    )
    .await;
    let admin = admin(&server).await;
    let template = admin.new_template("plain", 1, json!([])).await;
    let (_, ann) = admin.new_member(&server, "ann", QUOTA()).await;
    let mut with_email = QUOTA();
    with_email["email"] = json!("bob@example.com");
    let (bob_id, bob) = admin.new_member(&server, "bob", with_email).await;
    let settings = bob
        .send(
            reqwest::Method::PUT,
            "/api/v1/me/notification-settings",
            Some(json!({"choices": [{"kind": "share_received", "in_app": false, "email": true, "webhook": false}]})),
        )
        .await;
    assert_eq!(settings.status, 200, "{settings:?}");
    assert_eq!(settings.body["email_to"], "bob@example.com", "{settings:?}");

    let space = ann.new_space("mailed", &template).await;
    ann.put(&format!("/api/v1/spaces/{space}/shares/{bob_id}"))
        .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mail = loop {
        let received = smtp.received();
        if !received.is_empty() || std::time::Instant::now() >= deadline {
            break received;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(mail.len(), 1, "{mail:?}");
    let message = mail.first().cloned().unwrap_or_default();
    assert!(message.contains("To: bob@example.com"), "{message}");
    assert!(
        message.contains("From: Hangar <hangar@example.com>"),
        "{message}"
    );
    assert!(
        message.contains("Subject: ann shared mailed with you"),
        "{message}"
    );
    assert!(message.contains(&format!("/spaces/{space}")), "{message}");
    // In the app it was not asked for.
    assert_eq!(kinds(&bob).await, Vec::<String>::new());

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let delivery = loop {
        let list = admin.get("/api/v1/admin/webhook-deliveries").await;
        let first = list.body[0].clone();
        if first["status"] == "delivered" || std::time::Instant::now() >= deadline {
            break first;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(delivery["channel"], "email", "{delivery}");
    assert_eq!(delivery["status"], "delivered", "{delivery}");
    assert_eq!(delivery["last_code"], 250, "{delivery}");
    assert_eq!(delivery["target"], "bob@example.com", "{delivery}");
    server.stop().await;
    let mut child = smtp.child;
    let _ = child.kill().await;
}
