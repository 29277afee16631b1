//! Starting and stopping a real Hangar server for the tests.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use hangar::config::{Cli, Command};
use reqwest::header::{HeaderMap, HeaderValue, COOKIE, ORIGIN, SET_COOKIE};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";

/// A temporary SQLite database file that lives as long as this value.
pub struct TempDb {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl TempDb {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hangar.db");
        TempDb { _dir: dir, path }
    }

    pub fn url(&self) -> String {
        format!("sqlite://{}", self.path.display())
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server on `db` with the test admin password and any extra flags.
    pub async fn start(db: &TempDb, extra: &[&str]) -> Self {
        let mut args = vec![
            "hangar",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            "",
            "--admin-password",
            ADMIN_PASSWORD,
        ];
        let url = db.url();
        args[4] = &url;
        args.extend_from_slice(extra);
        let Command::Serve(config) = Cli::parse_from(args).into_command();
        let state = hangar::build_state(config).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
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
            client,
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

    /// Stops accepting connections and waits for the server to finish.
    pub async fn stop(mut self) {
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
