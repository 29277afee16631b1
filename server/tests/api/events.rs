//! Live updates over server-sent events: what each user hears, and how fast.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use sea_orm::{ConnectionTrait, Database, DatabaseBackend, Statement};

use crate::support::{admin, both_dbs, PostgresDb, Process, TestDb, TestServer};

/// A subscriber to `GET /api/v1/events`.
pub struct Events {
    stream: futures_util::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
}

impl Events {
    pub async fn open(server: &TestServer, cookie: &str) -> Events {
        let response = server.get_with_cookie("/api/v1/events", cookie).await;
        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        Events {
            stream: response.bytes_stream().boxed(),
            buffer: String::new(),
        }
    }

    /// The next event (name, data), or None when nothing comes within `limit`.
    pub async fn next(&mut self, limit: Duration) -> Option<(String, Value)> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut name = String::from("message");
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim());
                    }
                }
                if data.is_empty() {
                    continue; // keep-alive comment
                }
                return Some((name, serde_json::from_str(&data).unwrap()));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.stream.next()).await {
                Ok(Some(Ok(chunk))) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                _ => return None,
            }
        }
    }

    /// Waits for an event of this name whose data satisfies `want`.
    /// Whether the server ends the stream within `limit` (events before the end are skipped).
    pub async fn ended(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.stream.next()).await {
                Ok(Some(Ok(_))) => continue,
                Ok(None | Some(Err(_))) => return true,
                Err(_) => return false,
            }
        }
    }

    async fn wait_for(&mut self, name: &str, want: impl Fn(&Value) -> bool) -> Value {
        self.wait_for_within(name, Duration::from_secs(10), want)
            .await
    }

    /// Waits up to `limit` for an event of this name whose data satisfies `want`.
    pub async fn wait_for_within(
        &mut self,
        name: &str,
        limit: Duration,
        want: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left).await {
                Some((n, data)) if n == name && want(&data) => return data,
                Some((n, d)) => {
                    eprintln!("skip {n} {d}");
                    continue;
                }
                None => panic!("no {name} event came"),
            }
        }
    }
}

both_dbs!(each_user_hears_of_their_own_changes_live);
async fn each_user_hears_of_their_own_changes_live(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    let (ann_id, ann) = admin
        .new_member(&server, "ann", json!({"compute_units": 4}))
        .await;
    let (bob_id, _bob) = admin.new_member(&server, "bob", json!({})).await;
    let tpl = admin.new_template("box", 1, json!([])).await;
    let mut ann_events = Events::open(
        &server,
        &server.login_cookie("ann", "member-password").await,
    )
    .await;
    let mut bob_events = Events::open(
        &server,
        &server.login_cookie("bob", "member-password").await,
    )
    .await;
    assert_eq!(
        ann_events.next(Duration::from_secs(5)).await.unwrap().0,
        "quota"
    );
    assert_eq!(
        bob_events.next(Duration::from_secs(5)).await.unwrap().0,
        "quota"
    );

    // Ann's space goes through its states; ann hears each, bob nothing.
    let id = ann
        .post(
            "/api/v1/spaces",
            json!({"name": "live", "template_id": tpl}),
        )
        .await
        .id();
    ann_events
        .wait_for("space", |s| {
            s["id"] == id.as_str() && s["state"] == "created"
        })
        .await;
    ann.post_empty(&format!("/api/v1/spaces/{id}/start")).await;
    // The compute units are taken as it starts, then it runs.
    let quota = ann_events
        .wait_for("quota", |q| q["usage"]["compute_units"] == 1)
        .await;
    assert_eq!(quota["quota"]["compute_units"], 4);
    ann_events
        .wait_for("space", |s| s["state"] == "running")
        .await;
    assert!(
        bob_events.next(Duration::from_millis(500)).await.is_none(),
        "bob heard of ann's space"
    );

    // An admin lowering the quota reaches ann within a second.
    let patched = admin
        .patch(
            &format!("/api/v1/users/{ann_id}"),
            json!({"compute_units": 0}),
        )
        .await;
    assert_eq!(patched.status, 200, "{patched:?}");
    let at = Instant::now();
    let lowered = ann_events
        .wait_for("quota", |q| q["quota"]["compute_units"] == 0)
        .await;
    assert!(at.elapsed() < Duration::from_secs(1));
    assert_eq!(lowered["over_quota"], true);

    // Sharing shows the space to bob, revoking takes it away, live.
    ann.put(&format!("/api/v1/spaces/{id}/shares/{bob_id}"))
        .await;
    let shared = bob_events
        .wait_for("space", |s| s["id"] == id.as_str())
        .await;
    assert_eq!(shared["shared_with_me"], true);
    ann.delete(&format!("/api/v1/spaces/{id}/shares/{bob_id}"))
        .await;
    bob_events
        .wait_for("space", |s| {
            s["id"] == id.as_str() && s["state"] == "deleted"
        })
        .await;

    // A container dying is pushed too (found by the reconciler).
    let out = tokio::process::Command::new("docker")
        .args(["kill", &format!("hangar-{id}")])
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    let died = ann_events
        .wait_for("space", |s| s["state"] == "stopped")
        .await;
    assert!(died["last_error"]
        .as_str()
        .unwrap()
        .contains("stopped on its own"));
    server.stop().await;
}

both_dbs!(a_stream_follows_its_subscribers_role_and_ends_when_they_are_deactivated);
async fn a_stream_follows_its_subscribers_role_and_ends_when_they_are_deactivated(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    let (ann_id, ann) = admin
        .new_member(&server, "ann", json!({"compute_units": 4, "max_spaces": 5}))
        .await;
    let (bob_id, _) = admin
        .new_member(&server, "bob", json!({"role": "admin"}))
        .await;
    let tpl = admin.new_template("box", 1, json!([])).await;
    let mut bob_events = Events::open(
        &server,
        &server.login_cookie("bob", "member-password").await,
    )
    .await;
    assert_eq!(
        bob_events.next(Duration::from_secs(5)).await.unwrap().0,
        "quota"
    );

    // As an admin, bob hears of everyone's spaces.
    let first = ann
        .post("/api/v1/spaces", json!({"name": "one", "template_id": tpl}))
        .await
        .id();
    bob_events
        .wait_for("space", |s| s["id"] == first.as_str())
        .await;
    // Made a member, on the same stream, he no longer does.
    let demoted = admin
        .patch(
            &format!("/api/v1/users/{bob_id}"),
            json!({"role": "member"}),
        )
        .await;
    assert_eq!(demoted.status, 200, "{demoted:?}");
    let second = ann
        .post("/api/v1/spaces", json!({"name": "two", "template_id": tpl}))
        .await
        .id();
    while let Some((name, data)) = bob_events.next(Duration::from_millis(1500)).await {
        assert!(
            !(name == "space" && data["id"] == second.as_str()),
            "a member heard of another user's space: {data}"
        );
    }

    // Deactivated, ann's open stream ends.
    let mut ann_events = Events::open(
        &server,
        &server.login_cookie("ann", "member-password").await,
    )
    .await;
    assert_eq!(
        ann_events.next(Duration::from_secs(5)).await.unwrap().0,
        "quota"
    );
    let deactivated = admin
        .patch(&format!("/api/v1/users/{ann_id}"), json!({"active": false}))
        .await;
    assert_eq!(deactivated.status, 200, "{deactivated:?}");
    assert!(ann_events.ended(Duration::from_secs(5)).await);
    server.stop().await;
}

#[tokio::test]
async fn changes_made_through_one_server_reach_subscribers_of_another_on_postgres() {
    let pg = PostgresDb::new().await;
    let url = pg.url.clone();
    // One after the other: the first applies the migrations.
    let a = Process::start(&url).await;
    let b = Process::start(&url).await;
    let admin = admin(&a.server).await;
    let (ann_id, ann) = admin
        .new_member(&a.server, "ann", json!({"compute_units": 4}))
        .await;
    let tpl = admin.new_template("box", 1, json!([])).await;
    let mut on_b = Events::open(
        &b.server,
        &b.server.login_cookie("ann", "member-password").await,
    )
    .await;
    let mut on_a = Events::open(
        &a.server,
        &a.server.login_cookie("ann", "member-password").await,
    )
    .await;
    for events in [&mut on_a, &mut on_b] {
        assert_eq!(
            events.next(Duration::from_secs(5)).await.unwrap().0,
            "quota"
        );
    }

    // An admin's quota edit through A reaches ann's page served by B within a second.
    let patched = admin
        .patch(
            &format!("/api/v1/users/{ann_id}"),
            json!({"compute_units": 7}),
        )
        .await;
    assert_eq!(patched.status, 200, "{patched:?}");
    let at = Instant::now();
    on_b.wait_for("quota", |q| q["quota"]["compute_units"] == 7)
        .await;
    assert!(at.elapsed() < Duration::from_secs(1), "{:?}", at.elapsed());
    // A's own subscriber hears it once: not a second time back from the database.
    on_a.wait_for("quota", |q| q["quota"]["compute_units"] == 7)
        .await;
    let again = on_a.next(Duration::from_millis(700)).await;
    assert!(again.is_none(), "heard twice: {again:?}");

    // A space created through A shows on B.
    let id = ann
        .post(
            "/api/v1/spaces",
            json!({"name": "across", "template_id": tpl}),
        )
        .await
        .id();
    on_b.wait_for("space", |s| {
        s["id"] == id.as_str() && s["state"] == "created"
    })
    .await;

    // The listening connections are cut: B's page is told to resync (it may have missed
    // something), and B hears the changes made through A again.
    let db = Database::connect(&url).await.unwrap();
    let cut = db
        .query_all(Statement::from_string(
            DatabaseBackend::Postgres,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid() \
             AND query = 'LISTEN \"hangar_changes\"'",
        ))
        .await
        .unwrap();
    assert_eq!(cut.len(), 2, "one listening connection per server");
    on_b.wait_for("resync", |_| true).await;
    let patched = admin
        .patch(
            &format!("/api/v1/users/{ann_id}"),
            json!({"compute_units": 2}),
        )
        .await;
    assert_eq!(patched.status, 200, "{patched:?}");
    on_b.wait_for("quota", |q| q["quota"]["compute_units"] == 2)
        .await;

    a.server.cleanup().await;
    a.kill_9().await;
    b.kill_9().await;
}

/// A TCP relay to `target` whose connections can be frozen one by one: bytes stop flowing
/// both ways and nothing is closed, as on a network that drops packets. New connections are
/// relayed as usual.
struct Relay {
    addr: SocketAddr,
    /// The freeze switch of each relayed connection, by the local port of its upstream side
    /// (what PostgreSQL reports as the client's port).
    switches: Arc<Mutex<HashMap<u16, watch::Sender<bool>>>>,
}

impl Relay {
    async fn start(target: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let switches: Arc<Mutex<HashMap<u16, watch::Sender<bool>>>> = Arc::default();
        let registry = switches.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(upstream) = TcpStream::connect(target).await else {
                    continue;
                };
                let port = upstream.local_addr().unwrap().port();
                let (switch, frozen) = watch::channel(false);
                registry.lock().unwrap().insert(port, switch);
                let (client_read, client_write) = client.into_split();
                let (upstream_read, upstream_write) = upstream.into_split();
                tokio::spawn(pipe(client_read, upstream_write, frozen.clone()));
                tokio::spawn(pipe(upstream_read, client_write, frozen));
            }
        });
        Relay { addr, switches }
    }

    fn upstream_ports(&self) -> Vec<u16> {
        self.switches.lock().unwrap().keys().copied().collect()
    }

    fn freeze(&self, upstream_port: u16) {
        let switches = self.switches.lock().unwrap();
        switches[&upstream_port].send_replace(true);
    }
}

/// Copies `from` to `to` until either closes; once frozen, holds both open and copies nothing.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut frozen: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let read = tokio::select! {
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => Some(n),
            },
            _ = frozen.wait_for(|f| *f) => None,
        };
        let is_frozen = *frozen.borrow();
        let Some(n) = read.filter(|_| !is_frozen) else {
            std::future::pending::<()>().await;
            return;
        };
        if to.write_all(&buf[..n]).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[tokio::test]
async fn a_listening_connection_that_hangs_without_dropping_is_replaced_on_postgres() {
    let pg = PostgresDb::new().await;
    let url = pg.url.clone();
    let (before_host, after_host) = url.split_once('@').unwrap();
    let (host, database) = after_host.split_once('/').unwrap();
    let relay = Relay::start(host.parse().unwrap()).await;
    let relayed_url = format!("{before_host}@{}/{database}", relay.addr);
    // A reaches the database directly, B through the relay; B expects a heartbeat each second.
    let a = Process::start(&url).await;
    let b = Process::start_with(&relayed_url, &[("HANGAR_LIVE_HEARTBEAT_SECS", "1")]).await;
    let admin = admin(&a.server).await;
    let (ann_id, _) = admin
        .new_member(&a.server, "ann", json!({"compute_units": 4}))
        .await;
    let mut on_b = Events::open(
        &b.server,
        &b.server.login_cookie("ann", "member-password").await,
    )
    .await;
    assert_eq!(on_b.next(Duration::from_secs(5)).await.unwrap().0, "quota");
    // While nothing is wrong the heartbeats keep the quiet connection: no resync.
    let quiet = on_b.next(Duration::from_secs(4)).await;
    assert!(quiet.is_none(), "{quiet:?}");

    // B's listening connection stops passing anything, without closing.
    let db = Database::connect(&url).await.unwrap();
    let listening = db
        .query_all(Statement::from_string(
            DatabaseBackend::Postgres,
            "SELECT client_port FROM pg_stat_activity \
             WHERE datname = current_database() AND query = 'LISTEN \"hangar_changes\"'",
        ))
        .await
        .unwrap();
    let relayed = relay.upstream_ports();
    let ports: Vec<u16> = listening
        .iter()
        .map(|row| u16::try_from(row.try_get::<i32>("", "client_port").unwrap()).unwrap())
        .filter(|port| relayed.contains(port))
        .collect();
    assert_eq!(
        ports.len(),
        1,
        "B listens on one relayed connection: {ports:?}"
    );
    relay.freeze(ports[0]);

    // Within three missed heartbeats B listens on a new connection and has its pages resync;
    // then changes made through A reach B again.
    let at = Instant::now();
    on_b.wait_for("resync", |_| true).await;
    let detected = at.elapsed();
    assert!(detected < Duration::from_secs(6), "{detected:?}");
    let patched = admin
        .patch(
            &format!("/api/v1/users/{ann_id}"),
            json!({"compute_units": 3}),
        )
        .await;
    assert_eq!(patched.status, 200, "{patched:?}");
    on_b.wait_for("quota", |q| q["quota"]["compute_units"] == 3)
        .await;

    a.server.cleanup().await;
    a.kill_9().await;
    b.kill_9().await;
}
