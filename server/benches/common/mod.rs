//! What the benches that drive the real `hangar` binary share: starting it as a process of
//! its own, seeding a database directly, signing in, and percentiles.

#![allow(dead_code)]

use std::process::Stdio;
use std::time::{Duration, Instant};

use chrono::Utc;
use hangar::entities::{space, template, user};
use reqwest::header::{COOKIE, ORIGIN, SET_COOKIE};
use sea_orm::{ConnectionTrait, Database, EntityTrait, Set};

pub const ADMIN_PASSWORD: &str = "bench-admin-password";

/// A quick run (`HANGAR_BENCH_QUICK=1`): a few iterations and small payloads, so that
/// `make test` runs every bench once and a bench that breaks fails there; its figures mean
/// nothing. Its checks and panics are those of a measured run.
pub fn quick() -> bool {
    std::env::var("HANGAR_BENCH_QUICK").is_ok_and(|v| v == "1")
}

/// `full` in a measured run, `small` in a [`quick`] one.
pub fn sized<T>(full: T, small: T) -> T {
    if quick() {
        small
    } else {
        full
    }
}

/// A count, size or time of a bench: the first in a measured run, the second in a [`quick`]
/// one. Shown as the one in force.
#[derive(Clone, Copy)]
pub struct Size<T>(pub T, pub T);

impl<T: Copy> Size<T> {
    pub fn get(&self) -> T {
        sized(self.0, self.1)
    }
}

impl<T: Copy + std::fmt::Display> std::fmt::Display for Size<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}
pub const PASSWORD: &str = "bench-password";

/// The release `hangar` binary (or `HANGAR_BENCH_BIN`), serving on a free port of its own.
pub struct Hangar {
    child: tokio::process::Child,
    pub base: String,
}

pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

impl Hangar {
    /// Starts `hangar serve` on `database_url` and waits until it answers `/healthz`.
    pub async fn start(database_url: &str) -> Hangar {
        Hangar::start_with(database_url, &[]).await
    }

    /// The same, with extra environment (`HANGAR_*` settings).
    pub async fn start_with(database_url: &str, env: &[(&str, &str)]) -> Hangar {
        let port = free_port();
        let site_root = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/site");
        // Another build of hangar to measure (the same code built otherwise), if asked.
        let binary = std::env::var_os("HANGAR_BENCH_BIN")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_hangar").into());
        // The server's log (at `info`) appended to this file, if asked: what it did when a
        // bench failed.
        let log = std::env::var_os("HANGAR_BENCH_SERVER_LOG").map(|path| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .unwrap()
        });
        let child = tokio::process::Command::new(binary)
            // No SSH gateway unless a bench asks for one (benches run beside other Hangars).
            .env("HANGAR_SSH_LISTEN", "none")
            .envs(env.iter().copied())
            .arg("serve")
            .env("HANGAR_LISTEN", format!("127.0.0.1:{port}"))
            .env("HANGAR_DATABASE_URL", database_url)
            .env("HANGAR_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("HANGAR_DEFAULT_TEMPLATE", "false")
            .env("HANGAR_LOG", if log.is_some() { "info" } else { "warn" })
            .env("LEPTOS_SITE_ROOT", site_root)
            .stdout(log.map_or_else(Stdio::null, Stdio::from))
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let probe = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while probe.get(format!("{base}/healthz")).send().await.is_err() {
            assert!(Instant::now() < deadline, "hangar did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Hangar { child, base }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// `host:port`, for addresses other than `http://`.
    pub fn addr(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    pub async fn stop(mut self) {
        self.child.kill().await.unwrap();
    }
}

/// Deletes a space a bench made and waits (up to a minute) until it is gone, so that no
/// container or volume outlives the bench.
pub async fn delete_space(admin: &Session, id: &str) {
    admin
        .request(reqwest::Method::DELETE, &format!("/api/v1/spaces/{id}"))
        .send()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while admin
        .request(reqwest::Method::GET, &format!("/api/v1/spaces/{id}"))
        .send()
        .await
        .unwrap()
        .status()
        != 404
    {
        assert!(
            Instant::now() < deadline,
            "space {id} was not deleted within a minute"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Seconds of CPU the process has used (user + system, all threads); 0 when unknown.
pub fn cpu_seconds(pid: Option<u32>) -> f64 {
    let Some(pid) = pid else { return 0.0 };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name; utime and stime are the 12th and 13th of them.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // In clock ticks, 100 a second on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

/// Signs in and returns the session cookie (`name=value`).
pub async fn sign_in(base: &str, username: &str, password: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/login"))
        .header(ORIGIN, base)
        .json(&serde_json::json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "sign-in of {username}: {}",
        response.status()
    );
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("hangar_session="))
        .and_then(|v| v.split(';').next())
        .expect("sign-in sets the session cookie")
        .to_owned()
}

/// A client that sends a session cookie and the Origin a page of Hangar would send.
pub struct Session {
    pub base: String,
    pub cookie: String,
    pub client: reqwest::Client,
}

impl Session {
    pub async fn new(base: &str, username: &str, password: &str) -> Session {
        Session {
            base: base.to_owned(),
            cookie: sign_in(base, username, password).await,
            client: reqwest::Client::new(),
        }
    }

    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .header(ORIGIN, &self.base)
            .header(COOKIE, &self.cookie)
    }
}

/// Makes a template (`template`, the JSON body) and a space `name` of it, starts it and waits
/// (60 s at most) until it runs; returns the space's id.
pub async fn running_space(admin: &Session, template: serde_json::Value, name: &str) -> String {
    let post = |path: &str, body: serde_json::Value| {
        admin
            .request(reqwest::Method::POST, path)
            .json(&body)
            .send()
    };
    let template: serde_json::Value = post("/api/v1/templates", template)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let space: serde_json::Value = post(
        "/api/v1/spaces",
        serde_json::json!({"name": name, "template_id": template["id"]}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let id = space["id"]
        .as_str()
        .unwrap_or_else(|| panic!("the space was not made: {space}"))
        .to_owned();
    post(&format!("/api/v1/spaces/{id}/start"), serde_json::json!({}))
        .await
        .unwrap();
    wait_running(admin, &id, Instant::now() + Duration::from_secs(60)).await;
    id
}

/// Waits until space `id` runs; panics, saying its state, past `deadline`.
pub async fn wait_running(admin: &Session, id: &str, deadline: Instant) {
    loop {
        let now: serde_json::Value = admin
            .request(reqwest::Method::GET, &format!("/api/v1/spaces/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if now["state"] == "running" {
            return;
        }
        assert!(Instant::now() < deadline, "the space did not start: {now}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A fresh database on the PostgreSQL server of `base_url` (any database URL on it); returns
/// its URL. [`drop_postgres_database`] removes it.
pub async fn fresh_postgres_database(base_url: &str) -> String {
    let name = format!("hangar_bench_{}", uuid::Uuid::new_v4().simple());
    let admin = Database::connect(base_url).await.unwrap();
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let (prefix, _) = base_url.rsplit_once('/').unwrap();
    format!("{prefix}/{name}")
}

pub async fn drop_postgres_database(base_url: &str, url: &str) {
    let (_, name) = url.rsplit_once('/').unwrap();
    let admin = Database::connect(base_url).await.unwrap();
    let _ = admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await;
}

/// Inserts `users` members `user0`… (password [`PASSWORD`], display name `User <i>`) with
/// `spaces_per_user` stopped spaces each, named `user<i>-space<n>`, of one template `bench`,
/// straight into the database (migrated already).
pub async fn seed(url: &str, users: usize, spaces_per_user: usize) -> Seeded {
    let db = Database::connect(url).await.unwrap();
    let hash = hangar::auth::password::hash_password(PASSWORD.into())
        .await
        .unwrap();
    let now = Utc::now();
    let template_id: app::ids::TemplateId = hangar::services::new_id();
    template::Entity::insert(template::ActiveModel {
        id: Set(template_id.clone()),
        name: Set("bench".into()),
        description: Set(String::new()),
        image: Set("hangar/busybox:test".into()),
        command: Set(None),
        shell: Set("/bin/sh".into()),
        env: Set("{}".into()),
        compute_units: Set(1),
        storage_units: Set(0),
        volumes: Set("[]".into()),
        features: Set("[\"terminal\"]".into()),
        ports: Set("[]".into()),
        allowed_groups: Set("[]".into()),
        archived: Set(false),
        privileged: Set(false),
        raw_sockets: Set(false),
        version: Set(1),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec(&db)
    .await
    .unwrap();
    let rows: Vec<user::ActiveModel> = (0..users)
        .map(|i| user::ActiveModel {
            id: Set(hangar::services::new_id()),
            username: Set(format!("user{i}")),
            display_name: Set(format!("User {i}")),
            email: Set(String::new()),
            password_hash: Set(hash.clone()),
            role: Set(app::api::auth::Role::Member),
            active: Set(true),
            max_spaces: Set(None),
            compute_units: Set(None),
            storage_units: Set(None),
            max_tunnels: Set(None),
            created_at: Set(now),
            time_zone: Set(None),
            dotfiles_url: Set(None),
        })
        .collect();
    let ids: Vec<app::ids::UserId> = rows.iter().map(|u| u.id.clone().unwrap()).collect();
    for chunk in rows.chunks(200) {
        user::Entity::insert_many(chunk.to_vec())
            .exec(&db)
            .await
            .unwrap();
    }
    let spaces: Vec<space::ActiveModel> = ids
        .iter()
        .enumerate()
        .flat_map(|(i, owner)| (0..spaces_per_user).map(move |n| (i, owner.clone(), n)))
        .map(|(i, owner, n)| space::ActiveModel {
            id: Set(hangar::services::new_id()),
            owner_id: Set(owner),
            name: Set(format!("user{i}-space{n}")),
            template_id: Set(Some(template_id.clone())),
            template_name: Set("bench".into()),
            compute_units: Set(1),
            storage_units: Set(0),
            image: Set("hangar/busybox:test".into()),
            command: Set(None),
            shell: Set("/bin/sh".into()),
            env: Set("{}".into()),
            volumes: Set("[]".into()),
            features: Set("[\"terminal\"]".into()),
            privileged: Set(false),
            raw_sockets: Set(false),
            state: Set(app::lifecycle::SpaceState::Stopped),
            after_stop: Set(None),
            container_id: Set(None),
            last_error: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            started_at: Set(None),
            stopped_at: Set(None),
            deleted_at: Set(None),
            ..Default::default()
        })
        .collect();
    for chunk in spaces.chunks(100) {
        space::Entity::insert_many(chunk.to_vec())
            .exec(&db)
            .await
            .unwrap();
    }
    Seeded {
        user_ids: ids.into_iter().map(|id| id.to_string()).collect(),
        template_id: template_id.to_string(),
    }
}

/// What [`seed`] made.
pub struct Seeded {
    pub user_ids: Vec<String>,
    pub template_id: String,
}

/// The value at quantile `q` (0..=1) of sorted samples.
pub fn percentile<T: Copy>(sorted: &[T], q: f64) -> T {
    let rank = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[rank]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
