//! The `hangar` command line as a person uses it: the built binary run against a real server,
//! its output and exit codes; `/metrics`; backup and restore; the password reset.

use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{admin, both_dbs, Process, TempDb, TestDb, TestServer, ADMIN_PASSWORD};

/// A user's shell: the `hangar` binary with a config file of its own.
struct Shell {
    config: tempfile::TempDir,
}

impl Shell {
    fn new() -> Self {
        Shell {
            config: tempfile::tempdir().unwrap(),
        }
    }

    async fn run(&self, args: &[&str], stdin: &str) -> Output {
        use tokio::io::AsyncWriteExt;
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_hangar"))
            .args(args)
            .env("HANGAR_CONFIG", self.config.path().join("config.toml"))
            .env_remove("HANGAR_TOKEN")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.as_bytes()).await.unwrap();
        drop(input);
        tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
            .await
            .expect("the command did not finish within 2 minutes")
            .unwrap()
    }

    /// Runs and asserts the exit code; returns stdout.
    async fn expect(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args, "").await;
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        );
        assert_eq!(
            out.status.code(),
            Some(code),
            "hangar {args:?}\nstdout: {stdout}\nstderr: {stderr}"
        );
        if code == 0 {
            stdout
        } else {
            stderr
        }
    }
}

both_dbs!(a_developer_drives_spaces_from_the_command_line);
async fn a_developer_drives_spaces_from_the_command_line(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    admin
        .new_member(&server, "ann", json!({"max_spaces": 1, "compute_units": 2}))
        .await;
    admin.new_template("box", 1, json!([])).await;
    let url = format!("http://{}", server.addr);
    let ann = Shell::new();

    // Signed out, every command says how to sign in, with exit code 3.
    let refused = ann.expect(&["spaces"], 3).await;
    assert!(refused.contains("hangar login"), "{refused}");
    let wrong = ann
        .run(
            &["login", &url, "--username", "ann", "--password-stdin"],
            "nope\n",
        )
        .await;
    assert_eq!(wrong.status.code(), Some(3), "{wrong:?}");
    let signed = ann
        .run(
            &["login", &url, "--username", "ann", "--password-stdin"],
            "member-password\n",
        )
        .await;
    assert!(signed.status.success(), "{signed:?}");
    let config = ann.config.path().join("config.toml");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&config).unwrap().permissions().mode() & 0o777,
        0o600,
        "the token file is readable by others"
    );

    assert!(ann.expect(&["templates"], 0).await.contains("box"));
    // A repository goes with the space: one with credentials in its URL is the server's
    // refusal (nothing is made), a branch without one is a usage error.
    let refused = ann
        .expect(
            &[
                "create",
                "api",
                "-t",
                "box",
                "--repo",
                "https://ann:secret@git.example.org/api.git",
            ],
            1,
        )
        .await;
    assert!(refused.contains("must not carry"), "{refused}");
    ann.expect(&["create", "api", "-t", "box", "--branch", "main"], 2)
        .await;
    let created = ann.expect(&["create", "api", "--template", "box"], 0).await;
    assert!(created.contains("Created space api"), "{created}");
    // Over quota: the server's refusal, exit code 1.
    let over = ann.expect(&["create", "web", "--template", "box"], 1).await;
    assert!(over.contains("quota exceeded"), "{over}");
    assert!(ann
        .expect(&["create", "x", "--template", "nosuch"], 4)
        .await
        .contains("hangar templates"));

    let table = ann.expect(&["spaces"], 0).await;
    assert!(table.starts_with("NAME"), "{table}");
    assert!(
        table.contains("api") && table.contains("created"),
        "{table}"
    );
    let started = ann.expect(&["start", "api"], 0).await;
    assert!(started.contains("api is running"), "{started}");
    let listed: serde_json::Value =
        serde_json::from_str(&ann.expect(&["spaces", "--json"], 0).await).unwrap();
    assert_eq!(listed[0]["state"], "running");
    let quota = ann.expect(&["quota"], 0).await;
    assert!(
        quota.contains("1 of 2") && quota.contains("compute"),
        "{quota}"
    );
    assert!(ann
        .expect(&["stop", "nosuch"], 4)
        .await
        .contains("hangar spaces"));
    assert!(ann
        .expect(&["stop", "api"], 0)
        .await
        .contains("api is stopped"));
    assert!(ann
        .expect(&["delete", "api"], 0)
        .await
        .contains("Deleted api"));
    assert!(ann.expect(&["spaces"], 0).await.contains("No space yet"));

    // Signing out revokes the token: it no longer works, even if someone kept a copy.
    let token = std::fs::read_to_string(&config).unwrap();
    let token = token
        .lines()
        .find_map(|l| l.strip_prefix("token = "))
        .unwrap()
        .trim_matches('"')
        .to_owned();
    ann.expect(&["logout"], 0).await;
    assert!(!config.exists());
    let answer = server
        .client
        .get(server.url("/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 401);

    // A server that does not answer: exit code 5.
    let gone = Shell::new();
    let out = gone
        .run(
            &[
                "login",
                "http://127.0.0.1:9",
                "--username",
                "ann",
                "--password-stdin",
            ],
            "member-password\n",
        )
        .await;
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    let completion = ann.expect(&["completion", "bash"], 0).await;
    assert!(completion.contains("_hangar"), "{completion}");
    server.stop().await;
}

/// The metric samples of a scrape, by name and labels.
fn sample(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

async fn scrape(port: u16) -> prometheus_parse::Scrape {
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap()
}

#[tokio::test]
async fn metrics_are_prometheus_text_and_move_with_what_happens() {
    let db = TempDb::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let hangar = Process::start_with(&db.url(), &[("HANGAR_METRICS_LISTEN", &listen)]).await;
    let admin = admin(&hangar.server).await;
    let tpl = admin.new_template("box", 0, json!([])).await;
    let id = admin
        .post(
            "/api/v1/spaces",
            json!({"name": "metered", "template_id": tpl}),
        )
        .await
        .id();
    let before = scrape(port).await;
    assert_eq!(
        sample(&before, "hangar_spaces", &[("state", "created")]),
        1.0
    );
    let starts = |s: &prometheus_parse::Scrape| {
        sample(
            s,
            "hangar_space_transitions_total",
            &[("transition", "start"), ("outcome", "success")],
        )
    };
    let requests = |s: &prometheus_parse::Scrape| {
        sample(
            s,
            "hangar_http_requests_total",
            &[("route", "/api/v1/spaces/:id/start"), ("status", "202")],
        )
    };
    admin
        .post_empty(&format!("/api/v1/spaces/{id}/start"))
        .await;
    admin.wait_for_state(&id, "running").await;
    let after = scrape(port).await;
    assert_eq!(starts(&after), starts(&before) + 1.0);
    assert_eq!(requests(&after), requests(&before) + 1.0);
    assert_eq!(
        sample(&after, "hangar_spaces", &[("state", "running")]),
        1.0
    );
    assert!(sample(&after, "hangar_db_connections", &[("state", "open")]) >= 1.0);
    // Not on the public listener.
    let public = hangar
        .server
        .client
        .get(hangar.server.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_ne!(public.status(), 200);
    hangar.server.cleanup().await;
    hangar.kill_9().await;
}

#[tokio::test]
async fn a_backup_taken_under_write_load_restores_every_committed_row() {
    let db = TempDb::new();
    let hangar = Process::start(&db.url()).await;
    let admin = admin(&hangar.server).await;
    // Writers: groups created one after another; each created one is committed.
    let writer = {
        let admin = admin.clone();
        tokio::spawn(async move {
            let mut committed = Vec::new();
            let until = Instant::now() + Duration::from_secs(4);
            let mut n = 0;
            while Instant::now() < until {
                let name = format!("group-{n}");
                let created = admin.post("/api/v1/groups", json!({"name": name})).await;
                if created.status == 201 {
                    committed.push((Instant::now(), name));
                }
                n += 1;
            }
            committed
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let backup_dir = tempfile::tempdir().unwrap();
    let backup = backup_dir.path().join("backup.db");
    let shell = Shell::new();
    let backup_started = Instant::now();
    let out = shell
        .expect(
            &[
                "backup",
                backup.to_str().unwrap(),
                "--database-url",
                &db.url(),
            ],
            0,
        )
        .await;
    assert!(out.contains("integrity check"), "{out}");
    let committed = writer.await.unwrap();
    let before_backup: Vec<&String> = committed
        .iter()
        .filter(|(at, _)| *at < backup_started)
        .map(|(_, name)| name)
        .collect();
    assert!(
        before_backup.len() > 3,
        "the writer made too little: {committed:?}"
    );
    // Refuses to overwrite.
    shell
        .expect(
            &[
                "backup",
                backup.to_str().unwrap(),
                "--database-url",
                &db.url(),
            ],
            1,
        )
        .await;

    // Restored into a fresh place, a server on it has every row committed before the backup.
    let restored = TempDb::new();
    std::fs::write(&restored.path, b"an old database").unwrap();
    let out = shell
        .expect(
            &[
                "restore",
                backup.to_str().unwrap(),
                "--database-url",
                &restored.url(),
            ],
            0,
        )
        .await;
    assert!(
        out.contains("kept as"),
        "the replaced database is kept: {out}"
    );
    let again = Process::start(&restored.url()).await;
    let admin = crate::support::admin(&again.server).await;
    // Every page of groups.
    let mut names: Vec<String> = Vec::new();
    let mut after = String::new();
    loop {
        let page = admin.get(&format!("/api/v1/groups?limit=500{after}")).await;
        let groups = page.body.as_array().unwrap();
        names.extend(
            groups
                .iter()
                .map(|g| g["name"].as_str().unwrap().to_owned()),
        );
        match groups.last() {
            Some(last) if groups.len() == 500 => {
                after = format!("&after={}", last["id"].as_str().unwrap());
            }
            _ => break,
        }
    }
    for name in before_backup {
        assert!(names.contains(name), "{name} is missing from the backup");
    }
    hangar.kill_9().await;
    again.kill_9().await;
}

#[tokio::test]
async fn an_admin_resets_a_password_from_the_command_line() {
    let db = TempDb::new();
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    let (ann_id, _ann) = admin.new_member(&server, "ann", json!({})).await;
    let cookie = server.login_cookie("ann", "member-password").await;
    admin
        .patch(&format!("/api/v1/users/{ann_id}"), json!({"active": false}))
        .await;
    let shell = Shell::new();
    let out = shell
        .run(
            &[
                "admin",
                "reset-password",
                "ann",
                "--password-stdin",
                "--database-url",
                &db.url(),
            ],
            "a-brand-new-password\n",
        )
        .await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        server.login("ann", "a-brand-new-password").await.status(),
        200
    );
    assert_eq!(server.login("ann", "member-password").await.status(), 401);
    // The sessions from before the reset are over.
    assert_eq!(
        server.get_with_cookie("/api/v1/me", &cookie).await.status(),
        401
    );
    let missing = shell
        .run(
            &[
                "admin",
                "reset-password",
                "nobody",
                "--database-url",
                &db.url(),
            ],
            "",
        )
        .await;
    assert_eq!(missing.status.code(), Some(1));
    // The admin's own password is untouched.
    assert_eq!(server.login("admin", ADMIN_PASSWORD).await.status(), 200);
    server.stop().await;
}

#[tokio::test]
async fn doctor_says_what_is_missing() {
    let db = TempDb::new();
    let server = TestServer::start(&db, &[]).await;
    let shell = Shell::new();
    let site = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/site");
    let healthy = shell
        .run(
            &[
                "doctor",
                "--database-url",
                &db.url(),
                "--listen",
                "127.0.0.1:0",
                "--site-root",
                site,
            ],
            "",
        )
        .await;
    let text = String::from_utf8_lossy(&healthy.stdout).to_string();
    assert!(
        text.contains("ok    database") && text.contains("ok    Docker engine"),
        "{text}"
    );
    for enforced in ["ok    volume sizes: enforced", "ok    network isolation"] {
        assert!(text.contains(enforced), "{enforced}: {text}");
    }
    let broken = shell
        .run(
            &[
                "doctor",
                "--database-url",
                &db.url(),
                "--docker-host",
                "unix:///nonexistent/docker.sock",
                "--site-root",
                "/nonexistent",
                "--listen",
                &server.addr.to_string(),
            ],
            "",
        )
        .await;
    assert_eq!(broken.status.code(), Some(1));
    let text = String::from_utf8_lossy(&broken.stdout).to_string();
    for problem in ["FAIL  Docker engine", "FAIL  site", "FAIL  listen address"] {
        assert!(text.contains(problem), "{problem} not reported: {text}");
    }
    assert!(text.contains("fix:"), "{text}");
    server.stop().await;
}

#[tokio::test]
async fn the_container_image_serves_and_signs_in() {
    let tag = format!("hangar/server:test-{}", uuid::Uuid::new_v4().simple());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/image.sh");
    let built = tokio::process::Command::new("bash")
        .args([
            script,
            "--tag",
            &tag,
            "--binary",
            env!("CARGO_BIN_EXE_hangar"),
        ])
        .output()
        .await
        .unwrap();
    assert!(built.status.success(), "make image failed: {built:?}");
    let name = format!("hangar-image-test-{}", uuid::Uuid::new_v4().simple());
    let (ran, id) = crate::support::docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "-p",
        "127.0.0.1::3000",
        "-e",
        &format!("HANGAR_ADMIN_PASSWORD={ADMIN_PASSWORD}"),
        "-e",
        "HANGAR_DEFAULT_TEMPLATE=false",
        &tag,
    ])
    .await;
    if !ran {
        // A container that could not start is left "Created": take it and the image away.
        crate::support::docker(&["rm", "-f", "-v", &name]).await;
        crate::support::docker(&["rmi", &tag]).await;
    }
    assert!(ran, "the image did not run: {id}");
    let (_, port) = crate::support::docker(&["port", &name, "3000/tcp"]).await;
    let addr: std::net::SocketAddr = port.lines().next().unwrap().trim().parse().unwrap();
    let server = TestServer::remote(addr);
    let deadline = Instant::now() + Duration::from_secs(60);
    let signed_in = loop {
        if let Ok(answer) = server
            .client
            .post(server.url("/api/v1/auth/login"))
            .header(reqwest::header::ORIGIN, server.origin())
            .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
            .send()
            .await
        {
            break answer.status();
        }
        assert!(Instant::now() < deadline, "the container never answered");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let page = server
        .client
        .get(server.url("/login"))
        .send()
        .await
        .unwrap();
    let (_, logs) = crate::support::docker(&["logs", &name]).await;
    crate::support::docker(&["rm", "-f", "-v", &name]).await;
    crate::support::docker(&["rmi", &tag]).await;
    assert_eq!(signed_in, 200, "sign-in in the container failed: {logs}");
    assert_eq!(page.status(), 200, "the container serves no pages");
}

/// A server, its admin, and `ann` signed in on the command line, with her running space `api`
/// of the busybox test image (terminal, file transfer, port forwarding).
async fn ann_with_a_running_space(db: &TestDb) -> (TestServer, crate::support::Client, Shell) {
    ann_with_a_running_space_on(TestServer::start(db, &[]).await).await
}

/// As [`ann_with_a_running_space`], on a server the test started.
async fn ann_with_a_running_space_on(
    server: TestServer,
) -> (TestServer, crate::support::Client, Shell) {
    let admin = admin(&server).await;
    admin.new_member(&server, "ann", json!({})).await;
    let made = admin
        .post(
            "/api/v1/templates",
            json!({
                "name": "box", "image": crate::support::TEST_IMAGE, "compute_units": 0,
                "features": ["terminal", "file_transfer", "port_forwarding"],
            }),
        )
        .await;
    assert_eq!(made.status, 201, "{made:?}");
    let url = format!("http://{}", server.addr);
    let ann = Shell::new();
    let signed = ann
        .run(
            &["login", &url, "--username", "ann", "--password-stdin"],
            "member-password\n",
        )
        .await;
    assert!(signed.status.success(), "{signed:?}");
    ann.expect(&["create", "api", "--template", "box"], 0).await;
    ann.expect(&["start", "api"], 0).await;
    (server, admin, ann)
}

/// `hangar ssh` (over the web terminal when there is no gateway), `hangar ssh-config`,
/// `hangar cp` both ways for a file and a directory tree, and `hangar port-forward` to a port
/// the space serves, all through the built binary.
#[tokio::test]
async fn the_command_line_reaches_into_a_space() {
    use tokio::io::AsyncBufReadExt;

    let db = TestDb::sqlite();
    let (server, admin, ann) = ann_with_a_running_space(&db).await;

    // No gateway on this server: ssh-config says so, and `hangar ssh` runs the web terminal's
    // shell, whose exit code becomes its own.
    let config = ann.expect(&["ssh-config"], 0).await;
    assert!(config.contains("turned off"), "{config}");
    let shell = ann
        .run(&["ssh", "api"], "echo hello-$((6 * 7))\nexit 3\n")
        .await;
    let said = String::from_utf8_lossy(&shell.stdout).to_string();
    assert!(said.contains("hello-42"), "{said}");
    assert_eq!(shell.status.code(), Some(3), "{shell:?}");
    let refused = ann.expect(&["ssh", "api", "--", "ls"], 1).await;
    assert!(refused.contains("no SSH gateway"), "{refused}");
    assert!(ann
        .expect(&["ssh", "nosuch"], 4)
        .await
        .contains("hangar spaces"));

    // A file there and back, into a directory (keeping its name) and to a new name.
    let local = tempfile::tempdir().unwrap();
    let notes = local.path().join("notes.txt");
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&notes, &content).unwrap();
    ann.expect(&["cp", notes.to_str().unwrap(), "api:/tmp/"], 0)
        .await;
    let back = local.path().join("back.txt");
    ann.expect(&["cp", "api:/tmp/notes.txt", back.to_str().unwrap()], 0)
        .await;
    assert_eq!(std::fs::read(&back).unwrap(), content);

    // A tree with a nested file and a link, there and back.
    let tree = local.path().join("tree");
    std::fs::create_dir_all(tree.join("src/deep")).unwrap();
    std::fs::write(tree.join("src/deep/main.rs"), "fn main() {}\n").unwrap();
    std::fs::write(tree.join("README"), "read me\n").unwrap();
    std::os::unix::fs::symlink("README", tree.join("LINK")).unwrap();
    ann.expect(&["cp", tree.to_str().unwrap(), "api:/tmp/"], 0)
        .await;
    let (_, listed) = crate::support::in_space(
        &listed_space_id(&admin).await,
        "cat /tmp/tree/src/deep/main.rs; readlink /tmp/tree/LINK",
    )
    .await;
    assert!(
        listed.contains("fn main() {}") && listed.contains("README"),
        "{listed}"
    );
    let copy = local.path().join("copy");
    ann.expect(&["cp", "api:/tmp/tree", copy.to_str().unwrap()], 0)
        .await;
    assert_eq!(
        std::fs::read_to_string(copy.join("src/deep/main.rs")).unwrap(),
        "fn main() {}\n"
    );
    assert_eq!(
        std::fs::read_link(copy.join("LINK")).unwrap().to_str(),
        Some("README")
    );
    // Nothing there: exit 4; neither side in a space: exit 2.
    ann.expect(&["cp", "api:/tmp/none", local.path().to_str().unwrap()], 4)
        .await;
    ann.expect(&["cp", "a", "b"], 2).await;

    // A web server in the space, reached through a forwarded local port.
    let id = listed_space_id(&admin).await;
    let (served, out) = crate::support::in_space(
        &id,
        "mkdir -p /tmp/www && echo forwarded-ok > /tmp/www/index.html && httpd -p 8080 -h /tmp/www",
    )
    .await;
    assert!(served, "{out}");
    let mut forward = tokio::process::Command::new(env!("CARGO_BIN_EXE_hangar"))
        .args(["port-forward", "api", "0:8080"])
        .env("HANGAR_CONFIG", ann.config.path().join("config.toml"))
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(forward.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("port-forward said nothing within 30 s")
        .unwrap()
        .unwrap();
    let local_address = line
        .strip_prefix("Forwarding ")
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("{line}"))
        .to_owned();
    for _ in 0..3 {
        let page = reqwest::get(format!("http://{local_address}/"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(page.trim(), "forwarded-ok");
    }
    forward.kill().await.unwrap();
    server.stop().await;
}

/// Whoever can write in a space (its owner, or a sharee with a shell) cannot make another
/// user's `hangar cp SPACE:/dir DEST` write outside DEST (issue #26): a link `a -> .` makes
/// `a/a/..` climb out though it reads as staying inside, and a second copy used to write
/// through the link the first one left. Both copies refuse those links by name and copy the
/// rest; nothing beside DEST changes.
#[tokio::test]
async fn hangar_cp_from_a_space_writes_nothing_outside_its_destination() {
    let db = TestDb::sqlite();
    let (server, admin, ann) = ann_with_a_running_space(&db).await;
    let (planted, out) = crate::support::in_space(
        &listed_space_id(&admin).await,
        "mkdir -p /tmp/dir/sub && cd /tmp/dir && ln -s . a && ln -s a/a/.. dir && \
         ln -s a/a/../../sentinel up && echo owned > sentinel && echo fine > sub/ok",
    )
    .await;
    assert!(planted, "{out}");

    let local = tempfile::tempdir().unwrap();
    let sentinel = local.path().join("sentinel");
    std::fs::write(&sentinel, "mine").unwrap();
    let dest = local.path().join("dest");
    let dest_arg = dest.to_str().unwrap();
    // The first copy makes `dest`; the second, `dest` being there, goes into `dest/dir`.
    let mut runs = Vec::new();
    for _ in 0..2 {
        runs.push(ann.run(&["cp", "api:/tmp/dir", dest_arg], "").await);
    }
    let mut beside: Vec<String> = std::fs::read_dir(local.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    beside.sort();
    assert_eq!(beside, ["dest", "sentinel"], "{runs:?}");
    assert_eq!(std::fs::read_to_string(&sentinel).unwrap(), "mine");
    for run in runs {
        let refused = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(1), "{run:?}");
        assert!(
            refused.contains("not copied: `dir` links to `a/a/..`, which leads out"),
            "{refused}"
        );
        assert!(
            refused.contains("not copied: `up` links to `a/a/../../sentinel`"),
            "{refused}"
        );
        assert!(refused.contains("2 entries were not copied"), "{refused}");
    }
    // The rest came down, twice.
    assert_eq!(
        std::fs::read_to_string(dest.join("sub/ok")).unwrap(),
        "fine\n"
    );
    assert_eq!(
        std::fs::read_to_string(dest.join("dir/sub/ok")).unwrap(),
        "fine\n"
    );
    assert_eq!(
        std::fs::read_link(dest.join("a")).unwrap().to_str(),
        Some(".")
    );
    server.stop().await;
}

/// The id of the only space (the test's `api`).
async fn listed_space_id(admin: &crate::support::Client) -> String {
    let spaces = admin.get("/api/v1/spaces?all=true").await;
    spaces.body[0]["id"].as_str().unwrap().to_owned()
}

/// `hangar schedule` sets a space's schedule (in the time zone it sets), its own shorter idle
/// stop and its retention pin; `hangar keepalive --for` moves its stop; refusals say why.
#[tokio::test]
async fn schedules_and_keepalives_from_the_command_line() {
    let db = TestDb::sqlite();
    // A Monday at 09:00 in Berlin, whatever the time of the run: the keepalive's idle stop
    // below then comes before the schedule's 18:00 (run on a weekday afternoon with the
    // system's clock, the schedule's stop came first and the test failed).
    let clock = std::sync::Arc::new(hangar::domain::clock::MovableClock::default());
    clock.set("2027-01-04T08:00:00Z".parse().unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = TestServer::start_with_clock(listener, &db, &[], clock).await;
    let (server, admin, ann) = ann_with_a_running_space_on(server).await;
    let templates = admin.get("/api/v1/templates").await;
    let box_id = templates.body[0]["id"].as_str().unwrap().to_owned();
    let patched = admin
        .patch(
            &format!("/api/v1/templates/{box_id}"),
            json!({"autostop": {"idle_stop_minutes": 30, "owners_may_change": true}}),
        )
        .await;
    assert_eq!(patched.status, 200, "{patched:?}");

    let shown = ann
        .expect(
            &[
                "schedule",
                "api",
                "--set",
                "mon-fri 08:00-18:00",
                "--time-zone",
                "Europe/Berlin",
                "--idle-stop",
                "10m",
                "--keep",
                "true",
            ],
            0,
        )
        .await;
    assert!(
        shown.contains("schedule:    mon,tue,wed,thu,fri 08:00-18:00 (Europe/Berlin)"),
        "{shown}"
    );
    assert!(shown.contains("idle stop:   10 min"), "{shown}");
    assert!(shown.contains("kept:        yes"), "{shown}");
    let longer = ann
        .expect(&["schedule", "api", "--idle-stop", "1h"], 1)
        .await;
    assert!(
        longer.contains("at most the template's 30 minutes"),
        "{longer}"
    );
    let typo = ann
        .expect(&["schedule", "api", "--set", "mon-xyz 08:00-"], 2)
        .await;
    assert!(typo.contains("is not a day"), "{typo}");

    let kept = ann.expect(&["keepalive", "api", "--for", "2h"], 0).await;
    assert!(kept.starts_with("api: stops at "), "{kept}");
    assert!(kept.contains("(idle 10 min)"), "{kept}");
    let space = &ann_space(&admin).await;
    assert!(space["autostop"]["at"].as_str().is_some(), "{space}");
    assert_eq!(space["last_activity"]["kind"], "keepalive");
    server.stop().await;
}

/// ann's space `api` as the admin sees it.
async fn ann_space(admin: &crate::support::Client) -> serde_json::Value {
    let all = admin.get("/api/v1/spaces?all=true").await;
    all.body
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "api")
        .cloned()
        .unwrap()
}
