//! Starting and stopping a real Hangar server for the tests.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use hangar::config::Config;
use reqwest::header::{HeaderMap, HeaderValue, COOKIE, ORIGIN, SET_COOKIE};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, Statement,
};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";

/// The Docker engine this test binary's Hangars and docker CLI calls use, when not the
/// machine's own (the drills run on an engine of their own).
static DOCKER_HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Points every Hangar and docker CLI call of this test binary at `host` from now on (the
/// drills do; the API tests use the machine's engine).
#[allow(dead_code)]
pub fn use_docker_host(host: String) {
    let _ = DOCKER_HOST.set(host);
}

/// A temporary SQLite database file that lives as long as this value. Hangar keeps its
/// files (volumes' disk images) beside it, in `hangar-data`.
pub struct TempDb {
    dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl Drop for TempDb {
    fn drop(&mut self) {
        release_host_objects(&self.dir.path().join("hangar-data"));
    }
}

/// Where the Hangars of a test on `database_url` keep their files: beside a SQLite file (the
/// default, `None` here), or a folder of the test's own for a PostgreSQL database (whose
/// default, /var/lib/hangar, is the machine's).
pub fn data_dir_for(database_url: &str) -> Option<PathBuf> {
    if database_url.starts_with("sqlite:") {
        return None;
    }
    let name = database_url.rsplit('/').next().unwrap_or("db");
    let name = name.split('?').next().unwrap_or(name);
    Some(std::env::temp_dir().join("hangar-test-data").join(name))
}

/// Removes what the Hangars of a finished test left on the Docker host from their data dir:
/// the containers and volumes of their installations (named by the folders under
/// `volumes/`; a passing test removed its spaces already) and the loop devices of their
/// disk images, then the folder. Only the test's own: nothing outside `data_dir` is
/// touched.
pub fn release_host_objects(data_dir: &std::path::Path) {
    let Ok(data_dir) = data_dir.canonicalize() else {
        return;
    };
    let installations: Vec<String> = std::fs::read_dir(data_dir.join("volumes"))
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().into_string().ok())
        .collect();
    let docker = |args: &[&str]| {
        let mut command = std::process::Command::new("docker");
        if let Some(host) = DOCKER_HOST.get() {
            command.env("DOCKER_HOST", host);
        }
        command
            .args(args)
            .stderr(Stdio::null())
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
            .unwrap_or_default()
    };
    for installation in &installations {
        let label = format!("label=io.hangar.installation={installation}");
        for container in docker(&["ps", "-aq", "--filter", &label]).split_whitespace() {
            docker(&["rm", "-f", container]);
        }
        for volume in docker(&["volume", "ls", "-q", "--filter", &label]).split_whitespace() {
            docker(&["volume", "rm", "-f", volume]);
        }
    }
    for device in loops_under(&data_dir) {
        let _ = std::process::Command::new("losetup")
            .args(["--detach", &format!("/dev/{device}")])
            .status();
    }
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// The loop devices (`loopN`) whose backing file is under `dir`.
pub fn loops_under(dir: &std::path::Path) -> Vec<String> {
    let prefix = format!("{}/", dir.display());
    std::fs::read_dir("/sys/block")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| name.starts_with("loop"))
        .filter(|name| {
            std::fs::read_to_string(format!("/sys/block/{name}/loop/backing_file"))
                .is_ok_and(|file| file.starts_with(&prefix))
        })
        .collect()
}

impl TempDb {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hangar.db");
        TempDb { dir, path }
    }

    pub fn url(&self) -> String {
        format!("sqlite://{}", self.path.display())
    }
}

/// The database a test's server runs on: a temporary SQLite file, or a database of its own
/// on the test PostgreSQL. The tests written with [`both_dbs!`] run once on each.
pub enum TestDb {
    Sqlite(TempDb),
    Postgres(PostgresDb),
}

impl TestDb {
    pub fn sqlite() -> Self {
        TestDb::Sqlite(TempDb::new())
    }

    /// A new database on the test PostgreSQL, dropped with this value.
    pub async fn postgres() -> Self {
        TestDb::Postgres(PostgresDb::new().await)
    }

    pub fn url(&self) -> String {
        match self {
            TestDb::Sqlite(file) => file.url(),
            TestDb::Postgres(db) => db.url.clone(),
        }
    }

    /// Where its Hangars keep their files (see [`data_dir_for`]).
    pub fn data_dir(&self) -> PathBuf {
        match self {
            TestDb::Sqlite(file) => file.path.with_file_name("hangar-data"),
            TestDb::Postgres(db) => data_dir_for(&db.url).unwrap(),
        }
    }
}

/// What a test server can start on: a [`TestDb`], or a [`TempDb`] where a test needs the
/// SQLite file itself.
pub trait DatabaseUrl {
    fn url(&self) -> String;
}

impl DatabaseUrl for TempDb {
    fn url(&self) -> String {
        TempDb::url(self)
    }
}

impl DatabaseUrl for TestDb {
    fn url(&self) -> String {
        TestDb::url(self)
    }
}

/// A database of its own on the test PostgreSQL (`scripts/postgres-up.sh`, run by
/// `make test`). Dropped when this value is, whoever is still connected to it; kept when the
/// test failed, for a look, until a run [`LEFTOVER_DATABASE_HOURS`] later sweeps it.
pub struct PostgresDb {
    pub url: String,
    name: String,
}

/// Age after which a test database that was not dropped (its test failed, or its run was
/// killed) is dropped by the next run. Longer than any run, so no run loses its own.
const LEFTOVER_DATABASE_HOURS: u32 = 2;

impl PostgresDb {
    pub async fn new() -> Self {
        let base = postgres_base_url();
        let admin = postgres_admin(&base).await;
        static SWEPT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
        SWEPT.get_or_init(|| sweep_leftovers(&admin)).await;
        let name = format!("hangar_test_{}", uuid::Uuid::new_v4().simple());
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let _ = admin.close().await;
        let (prefix, _) = base.rsplit_once('/').unwrap();
        PostgresDb {
            url: format!("{prefix}/{name}"),
            name,
        }
    }
}

impl Drop for PostgresDb {
    fn drop(&mut self) {
        if let Some(data_dir) = data_dir_for(&self.url) {
            release_host_objects(&data_dir);
        }
        if std::thread::panicking() {
            eprintln!(
                "kept the failed test's database {} for a look (swept {LEFTOVER_DATABASE_HOURS} h from now)",
                self.name
            );
            return;
        }
        // Drop cannot await: the statement runs on a thread and runtime of its own (the
        // test's runtime may be this very thread).
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let admin = postgres_admin(&postgres_base_url()).await;
                let dropped = admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await;
                let _ = admin.close().await;
                dropped.map(|_| ())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!(
                "could not drop the test database {}: {dropped:?}",
                self.name
            );
        }
    }
}

fn postgres_base_url() -> String {
    std::env::var("HANGAR_TEST_POSTGRES_URL").expect(
        "HANGAR_TEST_POSTGRES_URL is not set: run the tests with `make test`, which starts \
         PostgreSQL, or start it yourself: export HANGAR_TEST_POSTGRES_URL=$(scripts/postgres-up.sh)",
    )
}

/// One connection to the maintenance database of the test PostgreSQL.
async fn postgres_admin(base: &str) -> DatabaseConnection {
    let mut options = ConnectOptions::new(base);
    options.max_connections(1).sqlx_logging(false);
    Database::connect(options).await.unwrap()
}

/// Drops the test databases made more than [`LEFTOVER_DATABASE_HOURS`] ago, whoever made
/// them (failed or killed runs leave theirs), so that they cannot pile up.
async fn sweep_leftovers(admin: &DatabaseConnection) {
    // A database's PG_VERSION file is written as it is made: its age is the database's.
    let sql = format!(
        "SELECT datname FROM pg_database WHERE datname LIKE 'hangar\\_test\\_%' \
         AND (pg_stat_file('base/' || oid || '/PG_VERSION')).modification \
         < now() - interval '{LEFTOVER_DATABASE_HOURS} hours'"
    );
    let old = match admin
        .query_all(Statement::from_string(DatabaseBackend::Postgres, sql))
        .await
    {
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("could not list the leftover test databases: {e}");
            return;
        }
    };
    for row in old {
        let name: String = row.try_get("", "datname").unwrap();
        let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        if let Err(e) = admin.execute_unprepared(&drop).await {
            eprintln!("could not drop the leftover test database {name}: {e}");
        }
    }
}

/// Runs a test on each database, as two tests. Written above the test's function, which
/// takes the database:
///
/// ```ignore
/// both_dbs!(name);
/// async fn name(db: TestDb) { .. }
/// ```
///
/// makes a module `name` beside the function, holding the tests `name::sqlite` and
/// `name::postgres`; each calls the function with a new [`TestDb`] of its kind. `cargo test
/// name` runs both, and a failure names its database. (The function stays an ordinary item,
/// so rustfmt keeps formatting it; one with no `both_dbs!` is flagged as dead code.)
#[allow(unused_macros)] // unused by the drills, which include this file too
macro_rules! both_dbs {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name($crate::support::TestDb::sqlite()).await;
            }

            #[tokio::test]
            async fn postgres() {
                super::$name($crate::support::TestDb::postgres().await).await;
            }
        }
    };
}
#[allow(unused_imports)]
pub(crate) use both_dbs;

pub struct TestServer {
    pub addr: SocketAddr,
    /// Where its SSH gateway listens, when started with `--ssh-listen`.
    #[allow(dead_code)] // read by the SSH tests, not by the drills
    pub ssh: Option<SocketAddr>,
    pub client: reqwest::Client,
    /// The server's services, to look inside (None for a server run by another process).
    pub services: Option<hangar::services::Services>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server on `db` with the test admin password and any extra flags.
    pub async fn start(db: &impl DatabaseUrl, extra: &[&str]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::start_on(listener, db, extra).await
    }

    /// Starts one on a listener the test made (to know its address before it starts, e.g.
    /// for `--public-url`).
    pub async fn start_on(
        listener: tokio::net::TcpListener,
        db: &impl DatabaseUrl,
        extra: &[&str],
    ) -> Self {
        Self::start_with_clock(
            listener,
            db,
            extra,
            std::sync::Arc::new(hangar::domain::clock::SystemClock),
        )
        .await
    }

    /// Starts one whose rules go by `clock` (a test moves it instead of waiting).
    pub async fn start_with_clock(
        listener: tokio::net::TcpListener,
        db: &impl DatabaseUrl,
        extra: &[&str],
        clock: std::sync::Arc<dyn hangar::domain::clock::Clock>,
    ) -> Self {
        // The address really listened on: app addresses and Hangar's own origin name it.
        let listen = listener.local_addr().unwrap().to_string();
        let url = db.url();
        let mut args = vec![
            "hangar",
            "--listen",
            &listen,
            "--database-url",
            &url,
            "--admin-password",
            ADMIN_PASSWORD,
        ];
        let data_dir = data_dir_for(&url).map(|d| d.to_string_lossy().into_owned());
        if let Some(dir) = data_dir
            .as_deref()
            .filter(|_| !extra.contains(&"--data-dir"))
        {
            args.extend_from_slice(&["--data-dir", dir]);
        }
        // Tests make their own templates, unless they ask for the default one.
        if !extra.contains(&"--default-template") {
            args.extend_from_slice(&["--default-template", "false"]);
        }
        // No SSH gateway unless asked for (tests run side by side).
        if !extra.contains(&"--ssh-listen") {
            args.extend_from_slice(&["--ssh-listen", "none"]);
        }
        args.extend_from_slice(extra);
        if let Some(host) = DOCKER_HOST.get() {
            args.extend_from_slice(&["--docker-host", host]);
        }
        let config = Config::from_args(args);
        let state = hangar::build_state_with(config, clock).await.unwrap();
        let ssh = state.services.ssh.address();
        let services = state.services.clone();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(async move {
            hangar::serve(state, listener, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        TestServer {
            addr,
            ssh,
            client,
            services: Some(services),
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The Origin header a page served by this server would send.
    pub fn origin(&self) -> HeaderValue {
        HeaderValue::from_str(&format!("http://{}", self.addr)).unwrap()
    }

    /// A server run by someone else (another process) at `addr`.
    pub fn remote(addr: SocketAddr) -> Self {
        TestServer {
            addr,
            ssh: None,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            services: None,
            shutdown: None,
            task: None,
        }
    }

    /// Deletes every space through the API (so the Docker host keeps no container or volume
    /// of a test), then stops the server.
    pub async fn stop(self) {
        self.cleanup().await;
        self.shutdown().await;
    }

    /// Deletes every space through the API and waits until they are gone.
    pub async fn cleanup(&self) {
        let admin = admin(self).await;
        let spaces = admin.get("/api/v1/spaces?all=true").await;
        for space in spaces.body.as_array().into_iter().flatten() {
            let id = space["id"].as_str().unwrap_or_default().to_owned();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            loop {
                let current = admin.get(&format!("/api/v1/spaces/{id}")).await;
                match current.body["state"].as_str() {
                    None => break,
                    Some("running") | Some("created") | Some("stopped") => {
                        admin.delete(&format!("/api/v1/spaces/{id}")).await;
                    }
                    Some(_) => {}
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "cleanup of {id} stuck: {current:?}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }

    /// Stops accepting connections and waits for the server to finish (spaces keep running).
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }

    pub async fn login(&self, username: &str, password: &str) -> reqwest::Response {
        self.client
            .post(self.url("/api/v1/auth/login"))
            .header(ORIGIN, self.origin())
            .json(&serde_json::json!({ "username": username, "password": password }))
            .send()
            .await
            .unwrap()
    }

    /// Signs in and returns the session cookie (`name=value`).
    pub async fn login_cookie(&self, username: &str, password: &str) -> String {
        let response = self.login(username, password).await;
        assert_eq!(response.status(), 200, "login of {username} failed");
        session_cookie(response.headers()).expect("login sets the session cookie")
    }

    pub async fn get_with_cookie(&self, path: &str, cookie: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .header(COOKIE, cookie)
            .send()
            .await
            .unwrap()
    }
}

/// The `hangar_session=...` pair of a response's Set-Cookie, if any.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    set_cookie_line(headers).map(|line| line.split(';').next().unwrap().trim().to_owned())
}

/// The whole Set-Cookie line of the session cookie, with its attributes.
pub fn set_cookie_line(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("hangar_session="))
        .map(str::to_owned)
}

pub async fn json(response: reqwest::Response) -> serde_json::Value {
    response.json().await.unwrap()
}

/// A signed-in client of one test server: sends its credentials (and the Origin a page of
/// Hangar would send) with every request.
#[derive(Clone)]
pub struct Client {
    base: String,
    client: reqwest::Client,
    cookie: Option<String>,
    bearer: Option<String>,
}

/// A response's status and JSON body (`null` when there is none).
pub struct Answer {
    pub status: u16,
    pub body: serde_json::Value,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.body)
    }
}

impl Answer {
    pub fn id(&self) -> String {
        self.body["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no id in {self:?}"))
            .to_owned()
    }

    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    pub fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or("")
    }
}

impl Client {
    pub fn anonymous(server: &TestServer) -> Self {
        Client {
            base: format!("http://{}", server.addr),
            client: server.client.clone(),
            cookie: None,
            bearer: None,
        }
    }

    pub async fn signed_in(server: &TestServer, username: &str, password: &str) -> Self {
        let cookie = server.login_cookie(username, password).await;
        Client {
            cookie: Some(cookie),
            ..Client::anonymous(server)
        }
    }

    pub fn with_token(server: &TestServer, token: &str) -> Self {
        Client {
            bearer: Some(token.to_owned()),
            ..Client::anonymous(server)
        }
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Answer {
        let mut request = self.request(method, path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
        };
        Answer { status, body }
    }

    /// A request of any kind with this client's credentials (and Origin), to finish and send
    /// yourself: streamed bodies, raw answers.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut request = self
            .client
            .request(method, format!("{}{}", self.base, path))
            .header(ORIGIN, self.base.as_str());
        if let Some(cookie) = &self.cookie {
            request = request.header(COOKIE, cookie);
        }
        if let Some(token) = &self.bearer {
            request = request.bearer_auth(token);
        }
        request
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(reqwest::Method::GET, path, None).await
    }

    /// The status of `GET path`, asked again until it is `expected` or `limit` passed: what is
    /// not announced (an expiry written behind the server's back) may be served for a moment.
    pub async fn status_within(&self, path: &str, expected: u16, limit: Duration) -> u16 {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let status = self.get(path).await.status;
            if status == expected || std::time::Instant::now() >= deadline {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The caller's notifications of `kind`, newest first, waiting up to `limit` for at least
    /// one (a notice is sent just after what it tells of is written).
    pub async fn told(&self, kind: &str, limit: Duration) -> Vec<serde_json::Value> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let list = self.get("/api/v1/me/notifications").await;
            assert_eq!(list.status, 200, "{list:?}");
            let found: Vec<serde_json::Value> = list
                .body
                .as_array()
                .into_iter()
                .flatten()
                .filter(|n| n["kind"] == kind)
                .cloned()
                .collect();
            if !found.is_empty() || std::time::Instant::now() >= deadline {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn post(&self, path: &str, body: serde_json::Value) -> Answer {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn post_empty(&self, path: &str) -> Answer {
        self.send(reqwest::Method::POST, path, None).await
    }

    pub async fn patch(&self, path: &str, body: serde_json::Value) -> Answer {
        self.send(reqwest::Method::PATCH, path, Some(body)).await
    }

    pub async fn put(&self, path: &str) -> Answer {
        self.send(reqwest::Method::PUT, path, None).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.send(reqwest::Method::DELETE, path, None).await
    }

    /// Creates a member with the given own quota and returns (id, signed-in client).
    pub async fn new_member(
        &self,
        server: &TestServer,
        username: &str,
        quota: serde_json::Value,
    ) -> (String, Client) {
        let mut body = serde_json::json!({"username": username, "password": "member-password"});
        for (k, v) in quota.as_object().unwrap() {
            body[k] = v.clone();
        }
        let created = self.post("/api/v1/users", body).await;
        assert_eq!(created.status, 201, "{created:?}");
        (
            created.id(),
            Client::signed_in(server, username, "member-password").await,
        )
    }

    /// Creates a template of the busybox test image and returns its id.
    pub async fn new_template(
        &self,
        name: &str,
        compute_units: i64,
        volumes: serde_json::Value,
    ) -> String {
        let created = self
            .post(
                "/api/v1/templates",
                serde_json::json!({
                    "name": name, "image": TEST_IMAGE, "compute_units": compute_units, "volumes": volumes,
                }),
            )
            .await;
        assert_eq!(created.status, 201, "{created:?}");
        created.id()
    }

    /// Creates a space from `template` and returns its id.
    pub async fn new_space(&self, name: &str, template: &str) -> String {
        let created = self
            .post(
                "/api/v1/spaces",
                serde_json::json!({"name": name, "template_id": template}),
            )
            .await;
        assert_eq!(created.status, 201, "{created:?}");
        created.id()
    }

    /// Creates a space from `template`, starts it and waits until it runs; returns its id.
    pub async fn running_space(&self, name: &str, template: &str) -> String {
        let id = self.new_space(name, template).await;
        let started = self.post_empty(&format!("/api/v1/spaces/{id}/start")).await;
        assert_eq!(started.status, 202, "{started:?}");
        self.wait_for_state(&id, "running").await;
        id
    }

    /// Waits until the space reaches `state` (30 s at most) and returns it.
    pub async fn wait_for_state(&self, space_id: &str, state: &str) -> serde_json::Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let space = self.get(&format!("/api/v1/spaces/{space_id}")).await;
            if space.body["state"] == state {
                return space.body;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "space never reached {state}: {space:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

/// One 1 GiB volume `data` at `/data`, as a template's `volumes`.
pub fn data_volume() -> serde_json::Value {
    serde_json::json!([{"name": "data", "mount_path": "/data", "size_gib": 1}])
}

/// The tiny image `scripts/images.sh test` builds.
pub const TEST_IMAGE: &str = "hangar/busybox:test";

pub async fn admin(server: &TestServer) -> Client {
    Client::signed_in(server, "admin", ADMIN_PASSWORD).await
}

/// Runs the docker CLI; returns whether it succeeded and its trimmed output.
pub async fn docker(args: &[&str]) -> (bool, String) {
    let mut command = tokio::process::Command::new("docker");
    if let Some(host) = DOCKER_HOST.get() {
        command.env("DOCKER_HOST", host);
    }
    let out = command.args(args).output().await.unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
    )
}

/// Runs a shell script in a running space's container; returns whether it succeeded and its
/// trimmed output (stderr too, after stdout).
pub async fn in_space(space_id: &str, script: &str) -> (bool, String) {
    let mut command = tokio::process::Command::new("docker");
    if let Some(host) = DOCKER_HOST.get() {
        command.env("DOCKER_HOST", host);
    }
    let container = format!("hangar-{space_id}");
    let out = command
        .args(["exec", &container, "sh", "-c", script])
        .output()
        .await
        .unwrap();
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text.trim().to_owned())
}

/// What a plain HTTP GET of `http://host:port/path` from inside a space answers (empty when
/// nothing answered within `secs` seconds), through busybox's `nc`: the test image's
/// `wget` crashes.
pub async fn http_from_space(
    space_id: &str,
    host: &str,
    port: u16,
    path: &str,
    secs: u32,
) -> String {
    let request =
        format!("GET {path} HTTP/1.1\\r\\nHost: {host}\\r\\nConnection: close\\r\\n\\r\\n");
    in_space(
        space_id,
        // The request's side stays open: some servers drop a client that half-closes.
        &format!("(printf '{request}'; sleep {secs}) | timeout {secs} nc -w {secs} {host} {port}"),
    )
    .await
    .1
}

/// The address of the host on a running space's network (its gateway).
pub async fn space_gateway(space_id: &str) -> String {
    let (found, gateway) = docker(&[
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.Gateway}}{{end}}",
        &format!("hangar-{space_id}"),
    ])
    .await;
    assert!(found && !gateway.is_empty(), "no gateway for {space_id}");
    gateway
}

/// A plain HTTP server on every address of the host (0.0.0.0), on a port the system picks,
/// answering `body` to anything: something a space must not reach.
pub async fn host_http_server(body: &'static str) -> (u16, JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = [0u8; 1024];
                let _ = stream.read(&mut request).await;
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(body.as_bytes()).await;
            });
        }
    });
    (port, task)
}

/// Unmounts and detaches the loop devices of a test's own disk images (under `data_dir`),
/// as a reboot does; returns how many there were.
pub fn unmount_and_detach_loops(data_dir: &std::path::Path) -> usize {
    let devices = loops_under(&data_dir.canonicalize().unwrap());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    for device in &devices {
        let number = std::fs::read_to_string(format!("/sys/block/{device}/dev")).unwrap();
        for line in mounts.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            if fields[2] == number.trim() {
                let unmounted = std::process::Command::new("umount")
                    .arg(fields[4])
                    .status()
                    .unwrap();
                assert!(unmounted.success(), "cannot unmount {}", fields[4]);
            }
        }
        let detached = std::process::Command::new("losetup")
            .args(["--detach", &format!("/dev/{device}")])
            .status()
            .unwrap();
        assert!(detached.success(), "cannot detach /dev/{device}");
    }
    devices.len()
}

/// A `hangar` process of its own (the real binary), for the multi-process tests and the
/// crash drills; killed without warning when dropped.
pub struct Process {
    pub child: tokio::process::Child,
    pub server: TestServer,
}

pub async fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

impl Process {
    pub async fn start(database_url: &str) -> Process {
        Process::start_with(database_url, &[]).await
    }

    /// Starts one with extra environment (`HANGAR_*` settings).
    pub async fn start_with(database_url: &str, env: &[(&str, &str)]) -> Process {
        Process::spawn(database_url, env, Stdio::null(), free_port().await).await
    }

    /// Starts one whose log (its standard output; set `HANGAR_LOG` in `env`) goes to `log`.
    /// `{port}` in a value of `env` is the port it will listen on.
    pub async fn start_logged(
        database_url: &str,
        env: &[(&str, &str)],
        log: &std::path::Path,
    ) -> Process {
        let port = free_port().await;
        let env: Vec<(&str, String)> = env
            .iter()
            .map(|(k, v)| (*k, v.replace("{port}", &port.to_string())))
            .collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let file = std::fs::File::create(log).unwrap();
        Process::spawn(database_url, &env, Stdio::from(file), port).await
    }

    async fn spawn(database_url: &str, env: &[(&str, &str)], stdout: Stdio, port: u16) -> Process {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_hangar"));
        if let Some(host) = DOCKER_HOST.get() {
            command.env("DOCKER_HOST", host);
        }
        if let Some(dir) = data_dir_for(database_url) {
            command.env("HANGAR_DATA_DIR", dir);
        }
        let child = command
            // No SSH gateway unless asked for (tests run side by side).
            .env("HANGAR_SSH_LISTEN", "none")
            .envs(env.iter().copied())
            .arg("serve")
            .env("HANGAR_LISTEN", format!("127.0.0.1:{port}"))
            .env("HANGAR_DATABASE_URL", database_url)
            .env("HANGAR_ADMIN_PASSWORD", ADMIN_PASSWORD)
            // Tests make their own templates.
            .env("HANGAR_DEFAULT_TEMPLATE", "false")
            .env(
                "HANGAR_LOG",
                env.iter()
                    .find(|(k, _)| *k == "HANGAR_LOG")
                    .map_or("warn", |(_, v)| *v),
            )
            .stdout(stdout)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let server = TestServer::remote(format!("127.0.0.1:{port}").parse().unwrap());
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while server
            .client
            .get(server.url("/healthz"))
            .send()
            .await
            .is_err()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "hangar process did not come up"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Process { child, server }
    }

    /// SIGKILL: no shutdown, no cleanup, like a crash.
    pub async fn kill_9(mut self) {
        self.child.kill().await.unwrap();
    }
}

/// A WebSocket opened through Hangar with a session cookie, retried while the app starts.
pub async fn open_websocket(
    server: &TestServer,
    path: &str,
    cookie: &str,
    protocol: Option<&str>,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let mut request =
            tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
                format!("ws://{}{path}", server.addr),
            )
            .unwrap();
        request
            .headers_mut()
            .insert("cookie", cookie.parse().unwrap());
        request
            .headers_mut()
            .insert("origin", server.url("").parse().unwrap());
        if let Some(protocol) = protocol {
            request
                .headers_mut()
                .insert("sec-websocket-protocol", protocol.parse().unwrap());
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((socket, _)) => return socket,
            Err(e) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "never opened {path}: {e}"
                );
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    }
}

/// What a space's `port` answers to an HTTP `GET /` through Hangar's TCP forward (what
/// `hangar port-forward` uses): everything it sent until it closed, or what came within 20 s.
pub async fn forwarded_get(server: &TestServer, space_id: &str, port: u16, cookie: &str) -> String {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let path = format!("/api/v1/spaces/{space_id}/ports/{port}/tcp");
    let mut socket = open_websocket(server, &path, cookie, None).await;
    let request = b"GET / HTTP/1.0\r\nHost: x\r\n\r\n".to_vec();
    socket.send(Message::Binary(request.into())).await.unwrap();
    let mut answer = Vec::new();
    let reading = async {
        while let Some(Ok(message)) = socket.next().await {
            match message {
                Message::Binary(data) => answer.extend_from_slice(&data),
                Message::Close(_) => break,
                _ => {}
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(20), reading).await;
    String::from_utf8_lossy(&answer).into_owned()
}
