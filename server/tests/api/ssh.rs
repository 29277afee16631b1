//! The SSH gateway, driven by the system's OpenSSH client (`ssh`, `scp`, `sftp`, `rsync`,
//! `ssh-keygen`) against a real server and real containers of the default image (which has
//! bash, perl, rsync and sftp-server) or of the busybox test image.

use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::{admin, both_dbs, docker, free_port, Client, Process, TestDb, TestServer};

const DEFAULT_IMAGE: &str = "hangar/default:bookworm";
const BUSYBOX_IMAGE: &str = crate::support::TEST_IMAGE;

/// The client side: keys, a known_hosts file, and where the gateway listens.
pub(crate) struct Ssh {
    dir: tempfile::TempDir,
    port: u16,
}

/// A key pair made by `ssh-keygen`.
pub(crate) struct Key {
    pub(crate) path: PathBuf,
    pub(crate) public: String,
}

impl Ssh {
    fn new(port: u16) -> Self {
        Ssh {
            dir: tempfile::tempdir().unwrap(),
            port,
        }
    }

    pub(crate) fn of(server: &TestServer) -> Self {
        Ssh::new(server.ssh.expect("started with --ssh-listen").port())
    }

    pub(crate) async fn key(&self, name: &str) -> Key {
        let path = self.dir.path().join(name);
        let made = tokio::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(&path)
            .status()
            .await
            .expect("ssh-keygen runs (scripts/setup.sh installs openssh-client)");
        assert!(made.success());
        let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
        Key { path, public }
    }

    fn known_hosts(&self) -> PathBuf {
        self.dir.path().join("known_hosts")
    }

    /// Options every tool takes: no user config, this key only, no prompts.
    fn options(&self, key: &Key, strict: &str) -> Vec<String> {
        let mut options: Vec<String> = vec!["-F".into(), "/dev/null".into(), "-i".into()];
        options.push(key.path.display().to_string());
        for option in [
            "IdentitiesOnly=yes".to_owned(),
            "BatchMode=yes".to_owned(),
            format!("UserKnownHostsFile={}", self.known_hosts().display()),
            format!("StrictHostKeyChecking={strict}"),
            "LogLevel=ERROR".to_owned(),
            "ConnectTimeout=10".to_owned(),
        ] {
            options.push("-o".into());
            options.push(option);
        }
        options
    }

    /// `ssh` with extra arguments (before the destination), to `login`, running `command`.
    pub(crate) fn command(
        &self,
        key: &Key,
        login: &str,
        extra: &[&str],
        command: &str,
    ) -> tokio::process::Command {
        let mut ssh = tokio::process::Command::new("ssh");
        ssh.args(self.options(key, "accept-new"))
            .args(["-p", &self.port.to_string()])
            .args(extra)
            .arg(format!("{login}@127.0.0.1"));
        if !command.is_empty() {
            ssh.arg(command);
        }
        ssh.stdin(Stdio::null()).kill_on_drop(true);
        ssh
    }

    async fn run(&self, key: &Key, login: &str, command: &str) -> Output {
        self.command(key, login, &[], command)
            .output()
            .await
            .unwrap()
    }

    /// `rsync -e` takes the ssh command as one string.
    fn rsync_shell(&self, key: &Key) -> String {
        let mut shell = vec!["ssh".to_owned()];
        shell.extend(self.options(key, "accept-new"));
        shell.extend(["-p".to_owned(), self.port.to_string()]);
        shell.join(" ")
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn sha256_of(path: &std::path::Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A template that offers SSH, of `image` (with `shell`).
pub(crate) async fn ssh_template(admin: &Client, name: &str, image: &str, shell: &str) -> String {
    let made = admin
        .post(
            "/api/v1/templates",
            json!({
                "name": name, "image": image, "shell": shell, "compute_units": 0,
                "volumes": [], "features": ["terminal", "ssh"],
            }),
        )
        .await;
    assert_eq!(made.status, 201, "{made:?}");
    made.id()
}

/// A running space of `owner`, from `template`.
pub(crate) async fn running_space(owner: &Client, template: &str, name: &str) -> String {
    let id = owner
        .post(
            "/api/v1/spaces",
            json!({"name": name, "template_id": template}),
        )
        .await
        .id();
    owner
        .post_empty(&format!("/api/v1/spaces/{id}/start"))
        .await;
    owner.wait_for_state(&id, "running").await;
    id
}

pub(crate) async fn add_key(user: &Client, key: &Key) -> String {
    let added = user
        .post("/api/v1/me/ssh-keys", json!({"public_key": key.public}))
        .await;
    assert_eq!(added.status, 201, "{added:?}");
    added.id()
}

/// A server with the gateway on, a member `ann` with a key, and her running space `dev` of
/// the default image.
struct Setup {
    server: TestServer,
    admin: Client,
    ann: Client,
    ann_id: String,
    space: String,
    ssh: Ssh,
    key: Key,
}

async fn setup(db: &impl crate::support::DatabaseUrl, extra: &[&str]) -> Setup {
    let mut flags = vec!["--ssh-listen", "127.0.0.1:0"];
    flags.extend_from_slice(extra);
    let server = TestServer::start(db, &flags).await;
    let admin = admin(&server).await;
    let (ann_id, ann) = admin.new_member(&server, "ann", json!({})).await;
    let template = ssh_template(&admin, "debian", DEFAULT_IMAGE, "/bin/bash").await;
    let space = running_space(&ann, &template, "dev").await;
    let ssh = Ssh::of(&server);
    let key = ssh.key("ann").await;
    add_key(&ann, &key).await;
    Setup {
        server,
        admin,
        ann,
        ann_id,
        space,
        ssh,
        key,
    }
}

both_dbs!(a_command_gets_its_exit_status_and_stderr_apart);
async fn a_command_gets_its_exit_status_and_stderr_apart(db: TestDb) {
    let s = setup(&db, &[]).await;
    let out = s
        .ssh
        .run(
            &s.key,
            "dev",
            "echo out-$((6*7)); echo err-$((2+3)) >&2; echo \"LC_X=$LC_X EVIL=$EVIL_X dir=$PWD\"; exit 3",
        )
        .await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(3), "{stdout} {stderr}");
    assert!(
        stdout.contains("out-42") && !stdout.contains("err-5"),
        "{stdout}"
    );
    assert!(
        stderr.contains("err-5") && !stderr.contains("out-42"),
        "{stderr}"
    );
    assert!(
        stdout.contains("dir=/root"),
        "commands start in the home directory: {stdout}"
    );

    // Only the locale and TERM pass from the client's environment.
    let out = s
        .ssh
        .command(
            &s.key,
            "dev",
            &["-o", "SetEnv=LC_X=kept EVIL_X=dropped"],
            "echo \"[$LC_X][$EVIL_X]\"",
        )
        .output()
        .await
        .unwrap();
    assert!(text(&out.stdout).contains("[kept][]"), "{out:?}");

    // Audited, and counted while open.
    let audit = s.admin.get("/api/v1/audit?action=ssh.open").await;
    assert!(
        audit
            .body
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["outcome"] == "success"
                && e["target"] == "space:ann/dev"
                && e["actor"] == "ann"),
        "{audit:?}"
    );
    let closes = s.admin.get("/api/v1/audit?action=ssh.close").await;
    assert!(!closes.body.as_array().unwrap().is_empty(), "{closes:?}");
    s.server.stop().await;
}

/// The OpenSSH client on a pseudo-terminal of the test's own, as a person would run it: the
/// test types into the terminal, reads the screen's bytes, and resizes it.
struct Tty {
    child: tokio::process::Child,
    master: std::fs::File,
    output: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl Tty {
    fn spawn(ssh: &Ssh, key: &Key, login: &str) -> Tty {
        use rustix::fs::{Mode, OFlags};
        use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
        grantpt(&master).unwrap();
        unlockpt(&master).unwrap();
        let name = ptsname(&master, Vec::new()).unwrap();
        Tty::set_size(&master, 24, 80);
        let terminal = rustix::fs::open(
            name.as_c_str(),
            OFlags::RDWR | OFlags::NOCTTY,
            Mode::empty(),
        )
        .unwrap();
        // setsid -c: ssh leads a session whose controlling terminal is this one, so that
        // resizing it sends ssh SIGWINCH as a real terminal does.
        let mut command = tokio::process::Command::new("setsid");
        command
            .arg("-c")
            .arg("ssh")
            .args(ssh.options(key, "accept-new"))
            .args(["-tt", "-p", &ssh.port.to_string()])
            .arg(format!("{login}@127.0.0.1"))
            .env("TERM", "xterm-256color")
            .stdin(Stdio::from(terminal.try_clone().unwrap()))
            .stdout(Stdio::from(terminal.try_clone().unwrap()))
            .stderr(Stdio::from(terminal))
            .kill_on_drop(true);
        let child = command.spawn().unwrap();
        let master = std::fs::File::from(master);
        let output = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut reader = master.try_clone().unwrap();
        let sink = output.clone();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut buffer = [0u8; 4096];
            // Ends with EIO once ssh has closed the terminal.
            while let Ok(n @ 1..) = reader.read(&mut buffer) {
                sink.lock().unwrap().extend_from_slice(&buffer[..n]);
            }
        });
        Tty {
            child,
            master,
            output,
        }
    }

    fn set_size(fd: impl rustix::fd::AsFd, rows: u16, cols: u16) {
        rustix::termios::tcsetwinsize(
            fd,
            rustix::termios::Winsize {
                ws_row: rows,
                ws_col: cols,
                ws_xpixel: 0,
                ws_ypixel: 0,
            },
        )
        .unwrap();
    }

    fn resize(&self, rows: u16, cols: u16) {
        Tty::set_size(&self.master, rows, cols);
    }

    fn send(&mut self, bytes: &[u8]) {
        use std::io::Write;
        self.master.write_all(bytes).unwrap();
    }

    /// Waits (10 s at most) until the screen's bytes since the last call contain `needle`.
    async fn expect(&mut self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            {
                let mut output = self.output.lock().unwrap();
                let found = output
                    .windows(needle.len())
                    .position(|w| w == needle.as_bytes());
                if let Some(at) = found {
                    output.drain(..at + needle.len());
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "never saw {needle:?} in {:?}",
                    String::from_utf8_lossy(&output)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test]
async fn a_shell_has_a_terminal_that_follows_resizes_and_passes_ctrl_p() {
    let db = TestDb::sqlite();
    let s = setup(&db, &[]).await;
    let mut tty = Tty::spawn(&s.ssh, &s.key, "dev");
    tty.send(b"echo TERM=$TERM; stty size; tty\r");
    tty.expect("TERM=xterm-256color").await;
    tty.expect("24 80").await;
    tty.expect("/dev/pts/").await;

    // The client's window changes, as dragging a terminal's corner does.
    tty.resize(40, 100);
    tokio::time::sleep(Duration::from_millis(300)).await;
    tty.send(b"stty size\r");
    tty.expect("40 100").await;

    // Ctrl-P (Docker's default detach key) and Ctrl-Q reach the shell's side untouched.
    tty.send(b"stty raw -echo; head -c 4 | od -An -tx1; stty sane\r");
    tokio::time::sleep(Duration::from_millis(500)).await;
    tty.send(b"\x10\x10\x11x");
    tty.expect("10 10 11 78").await;

    tty.send(b"exit 7\r");
    let status = tokio::time::timeout(Duration::from_secs(10), tty.child.wait())
        .await
        .expect("ssh ends with the shell")
        .unwrap();
    assert_eq!(status.code(), Some(7));
    s.server.stop().await;
}

#[tokio::test]
async fn fifty_megabytes_up_and_down_with_scp_and_sftp_and_a_directory_with_rsync() {
    let db = TestDb::sqlite();
    let s = setup(&db, &[]).await;
    let local = tempfile::tempdir().unwrap();
    let up = local.path().join("up.bin");
    let mut bytes = vec![0u8; 50 * 1000 * 1000];
    // Not compressible, not repetitive: a counter through SHA-256.
    for (i, chunk) in bytes.chunks_mut(32).enumerate() {
        let digest = Sha256::digest(i.to_le_bytes());
        chunk.copy_from_slice(&digest[..chunk.len()]);
    }
    std::fs::write(&up, &bytes).unwrap();
    let want = sha256_of(&up);
    let port = s.ssh.port.to_string();
    let options = s.ssh.options(&s.key, "accept-new");

    // scp (which speaks SFTP) up and down.
    let scp = |from: String, to: String| {
        let mut scp = tokio::process::Command::new("scp");
        scp.args(&options).args(["-P", &port, &from, &to]);
        scp
    };
    let sent = scp(
        up.display().to_string(),
        "dev@127.0.0.1:/tmp/by-scp.bin".into(),
    )
    .output()
    .await
    .unwrap();
    assert!(sent.status.success(), "{sent:?}");
    let back = local.path().join("back-scp.bin");
    let got = scp(
        "dev@127.0.0.1:/tmp/by-scp.bin".into(),
        back.display().to_string(),
    )
    .output()
    .await
    .unwrap();
    assert!(got.status.success(), "{got:?}");
    assert_eq!(sha256_of(&back), want, "scp changed the bytes");
    let inside = s.ssh.run(&s.key, "dev", "sha256sum /tmp/by-scp.bin").await;
    assert!(text(&inside.stdout).starts_with(&want), "{inside:?}");

    // sftp, in batch mode.
    let back = local.path().join("back-sftp.bin");
    let batch = format!(
        "put {} /tmp/by-sftp.bin\nget /tmp/by-sftp.bin {}\n",
        up.display(),
        back.display()
    );
    let mut sftp = tokio::process::Command::new("sftp")
        .args(&options)
        .args(["-P", &port, "-b", "-", "dev@127.0.0.1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use tokio::io::AsyncWriteExt;
    let mut stdin = sftp.stdin.take().unwrap();
    stdin.write_all(batch.as_bytes()).await.unwrap();
    drop(stdin);
    let done = sftp.wait_with_output().await.unwrap();
    assert!(done.status.success(), "{done:?}");
    assert_eq!(sha256_of(&back), want, "sftp changed the bytes");

    // rsync over ssh: a directory tree, then only what changed.
    let tree = local.path().join("tree");
    std::fs::create_dir_all(tree.join("sub/deeper")).unwrap();
    std::fs::write(tree.join("a.txt"), "alpha\n").unwrap();
    std::fs::write(tree.join("sub/b.txt"), "beta\n").unwrap();
    std::fs::write(tree.join("sub/deeper/c.bin"), &bytes[..1_000_000]).unwrap();
    let rsync = |from: String, to: String| {
        let mut rsync = tokio::process::Command::new("rsync");
        rsync
            .args(["-a", "--stats", "-e", &s.ssh.rsync_shell(&s.key)])
            .args([from, to]);
        rsync
    };
    let synced = rsync(
        format!("{}/", tree.display()),
        "dev@127.0.0.1:/tmp/tree/".into(),
    )
    .output()
    .await
    .unwrap();
    assert!(synced.status.success(), "{synced:?}");
    let listing = s
        .ssh
        .run(
            &s.key,
            "dev",
            "cd /tmp/tree && find . -type f | sort && sha256sum sub/deeper/c.bin",
        )
        .await;
    let listing = text(&listing.stdout);
    assert!(
        listing.contains("./a.txt\n./sub/b.txt\n./sub/deeper/c.bin\n"),
        "{listing}"
    );
    assert!(listing.contains(&sha256_of(&tree.join("sub/deeper/c.bin"))));
    std::fs::write(tree.join("a.txt"), "alpha, changed\n").unwrap();
    let again = rsync(
        format!("{}/", tree.display()),
        "dev@127.0.0.1:/tmp/tree/".into(),
    )
    .output()
    .await
    .unwrap();
    assert!(
        text(&again.stdout).contains("Number of regular files transferred: 1"),
        "{again:?}"
    );
    let copy = local.path().join("copy");
    let down = rsync(
        "dev@127.0.0.1:/tmp/tree/".into(),
        format!("{}/", copy.display()),
    )
    .output()
    .await
    .unwrap();
    assert!(down.status.success(), "{down:?}");
    assert_eq!(
        std::fs::read_to_string(copy.join("a.txt")).unwrap(),
        "alpha, changed\n"
    );
    s.server.stop().await;
}

/// `ssh -N -L <port>:<host>:<port>` running until dropped; the local port answers once the
/// forward is up.
async fn forward(ssh: &Ssh, key: &Key, login: &str, target: &str) -> (tokio::process::Child, u16) {
    let local = free_port().await;
    let spec = format!("{local}:{target}");
    let child = ssh
        .command(
            key,
            login,
            &["-N", "-o", "ExitOnForwardFailure=yes", "-L", &spec],
            "",
        )
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", local))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "ssh -L never listened");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (child, local)
}

/// An HTTP GET through a forward: the body, or None when the connection failed.
async fn fetch(port: u16, path: &str) -> Option<String> {
    let answer = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}{path}"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()?;
    answer.text().await.ok()
}

#[tokio::test]
async fn ssh_l_reaches_servers_inside_the_space_and_nothing_else() {
    let db = TestDb::sqlite();
    let s = setup(&db, &[]).await;
    // A server on the space's loopback only, as editors' remote servers listen.
    let server = r#"nohup perl -MIO::Socket::INET -e 'my $l = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 8123, Listen => 5, ReuseAddr => 1) or die; while (my $c = $l->accept) { my $r = <$c>; print $c "HTTP/1.0 200 OK\r\n\r\ninside the space: $r"; close $c }' >/dev/null 2>&1 &"#;
    let started = s.ssh.run(&s.key, "dev", server).await;
    assert!(started.status.success(), "{started:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;

    let (mut ssh_l, port) = forward(&s.ssh, &s.key, "dev", "localhost:8123").await;
    for path in ["/one", "/two"] {
        let body = fetch(port, path).await.expect("the forward answers");
        assert!(
            body.contains(&format!("inside the space: GET {path}")),
            "{body}"
        );
    }
    // The live count shows the connection.
    let live = s
        .ann
        .get(&format!("/api/v1/spaces/{}/sessions", s.space))
        .await;
    assert_eq!(live.body["ssh"], 1, "{live:?}");
    ssh_l.kill().await.unwrap();

    // Nothing listens there: the connection is refused, saying why.
    let (mut ssh_l, port) = forward(&s.ssh, &s.key, "dev", "localhost:9").await;
    assert_eq!(fetch(port, "/").await, None);
    ssh_l.kill().await.unwrap();
    // Not the gateway's host, not another address.
    for target in ["10.1.2.3:80", "host.docker.internal:80", "172.17.0.1:2375"] {
        let (mut ssh_l, port) = forward(&s.ssh, &s.key, "dev", target).await;
        assert_eq!(fetch(port, "/").await, None, "{target} was reached");
        ssh_l.kill().await.unwrap();
    }

    // ssh -R is refused, and the session says why.
    let out = s
        .ssh
        .command(&s.key, "dev", &["-R", "18080:localhost:80"], "echo ran")
        .output()
        .await
        .unwrap();
    assert!(text(&out.stdout).contains("ran"));
    assert!(
        text(&out.stderr).contains("ssh -R) is not offered"),
        "{out:?}"
    );
    s.server.stop().await;
}

/// A server with the gateway on, and a member `ann` with a key and her running space `box` of
/// the busybox test image.
async fn busybox_setup(db: &TestDb) -> (TestServer, Ssh, Key) {
    let server = TestServer::start(db, &["--ssh-listen", "127.0.0.1:0"]).await;
    let admin = admin(&server).await;
    let (_, ann) = admin.new_member(&server, "ann", json!({})).await;
    let template = ssh_template(&admin, "box", BUSYBOX_IMAGE, "/bin/sh").await;
    running_space(&ann, &template, "box").await;
    let ssh = Ssh::of(&server);
    let key = ssh.key("ann").await;
    add_key(&ann, &key).await;
    (server, ssh, key)
}

#[tokio::test]
async fn busybox_spaces_forward_through_nc_and_say_they_have_no_sftp_server() {
    let db = TestDb::sqlite();
    let (server, ssh, key) = busybox_setup(&db).await;
    let started = ssh
        .run(&key, "box", "mkdir -p /tmp/www && echo hello-from-busybox > /tmp/www/index.html && httpd -p 127.0.0.1:8080 -h /tmp/www")
        .await;
    assert!(started.status.success(), "{started:?}");
    let (mut ssh_l, port) = forward(&ssh, &key, "box", "127.0.0.1:8080").await;
    let body = fetch(port, "/index.html")
        .await
        .expect("the forward answers");
    assert!(body.contains("hello-from-busybox"), "{body}");
    ssh_l.kill().await.unwrap();

    let sftp = tokio::process::Command::new("sftp")
        .args(ssh.options(&key, "accept-new"))
        .args([
            "-P",
            &ssh.port.to_string(),
            "-b",
            "/dev/null",
            "box@127.0.0.1",
        ])
        .output()
        .await
        .unwrap();
    assert!(!sftp.status.success());
    assert!(text(&sftp.stderr).contains("no SFTP server"), "{sftp:?}");
    server.stop().await;
}

/// One host that opens 300 connections and then says nothing (or only its version) keeps no
/// one from signing in, not even a user at the same address (issue #26): each connection past
/// an address's share pushes out that address's silent connection waiting longest, and what
/// the gateway holds is let go once its key exchange is overdue (10 s).
#[tokio::test]
async fn three_hundred_silent_connections_from_one_address_keep_no_one_from_signing_in() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let db = TestDb::sqlite();
    let (server, ssh, key) = busybox_setup(&db).await;

    let opened = Instant::now();
    let mut silent = Vec::new();
    for i in 0..300 {
        let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", ssh.port))
            .await
            .unwrap();
        if i % 2 == 1 {
            // Only the version line, then nothing.
            let _ = socket.write_all(b"SSH-2.0-Silent_1.0\r\n").await;
        }
        silent.push(socket);
    }
    let out = ssh.run(&key, "box", "echo signed-in-$((6 * 7))").await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(&out.stdout).trim(), "signed-in-42");

    // Every silent connection ends: most at once, the last held ones by the handshake's grace.
    let ends = silent.into_iter().map(|mut socket| async move {
        let mut seen = Vec::new();
        tokio::time::timeout(Duration::from_secs(20), socket.read_to_end(&mut seen))
            .await
            .is_ok()
    });
    let ended = futures_util::future::join_all(ends).await;
    let waited = opened.elapsed();
    assert_eq!(ended.iter().filter(|e| **e).count(), 300);
    assert!(waited < Duration::from_secs(18), "held for {waited:?}");
    server.stop().await;
}

both_dbs!(sharees_use_owner_dot_space_and_strangers_and_unknown_keys_are_refused);
async fn sharees_use_owner_dot_space_and_strangers_and_unknown_keys_are_refused(db: TestDb) {
    let s = setup(&db, &[]).await;
    let (bob_id, bob) = s.admin.new_member(&s.server, "bob", json!({})).await;
    let (_, eve) = s.admin.new_member(&s.server, "eve", json!({})).await;
    let bob_key = s.ssh.key("bob").await;
    let eve_key = s.ssh.key("eve").await;
    add_key(&bob, &bob_key).await;
    add_key(&eve, &eve_key).await;
    s.ann
        .put(&format!("/api/v1/spaces/{}/shares/{bob_id}", s.space))
        .await;

    let out = s
        .ssh
        .run(&bob_key, "ann.dev", "echo as-$(whoami)-in-$((40+2))")
        .await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(text(&out.stdout).contains("as-root-in-42"));
    // His config lists it under the owner's name.
    let config = bob.get("/api/v1/me/ssh-config").await;
    assert_eq!(config.status, 200, "{config:?}");
    let config_text = config.body["text"].as_str().unwrap();
    assert!(
        config_text.contains("Host hangar-ann.dev\n"),
        "{config_text}"
    );
    assert!(config_text.contains("  User ann.dev\n"), "{config_text}");
    assert!(
        config_text.contains(&format!("  Port {}\n", s.ssh.port)),
        "{config_text}"
    );
    assert!(
        config_text.contains("  HostName 127.0.0.1\n"),
        "{config_text}"
    );

    // `dev` alone would be his own space: he has none.
    let out = s.ssh.run(&bob_key, "dev", "true").await;
    assert_ne!(out.status.code(), Some(0));
    assert!(text(&out.stderr).contains("no space `dev`"), "{out:?}");

    // A stranger is told there is no such space (as for one that does not exist), and runs
    // nothing.
    for login in ["ann.dev", "ann.nothing", "nobody.dev"] {
        let out = s.ssh.run(&eve_key, login, "touch /tmp/eve-was-here").await;
        assert_eq!(out.status.code(), Some(1), "{login}: {out:?}");
        assert!(
            text(&out.stderr).contains(&format!("there is no space `{login}`")),
            "{login}: {out:?}"
        );
    }
    let (_, listing) = docker(&["exec", &format!("hangar-{}", s.space), "ls", "/tmp"]).await;
    assert!(!listing.contains("eve-was-here"));

    // A key nobody registered is refused before anything.
    let stranger_key = s.ssh.key("unknown").await;
    let out = s.ssh.run(&stranger_key, "dev", "true").await;
    assert_eq!(out.status.code(), Some(255), "{out:?}");
    assert!(
        text(&out.stderr).contains("Permission denied (publickey)"),
        "{out:?}"
    );
    let refused = s
        .admin
        .get("/api/v1/audit?action=ssh.open&outcome=refused")
        .await;
    assert!(
        refused
            .body
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["actor"] == "eve"),
        "{refused:?}"
    );
    s.server.stop().await;
}

/// A live `ssh <login> 'echo ready; sleep 100'`, once it said ready.
async fn live_session(ssh: &Ssh, key: &Key, login: &str) -> tokio::process::Child {
    let mut child = ssh
        .command(key, login, &[], "echo ready; exec sleep 100")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(15), stdout.next_line())
        .await
        .expect("the session starts");
    assert_eq!(line.unwrap().as_deref(), Some("ready"));
    child
}

/// Waits for the session to end, which must be within a second of `since` (when the request
/// that took the right away was answered), with exit status 255 and `why` on its stderr.
async fn ended_within_a_second(mut child: tokio::process::Child, since: Instant, why: &str) {
    let status = tokio::time::timeout(Duration::from_secs(3), child.wait())
        .await
        .unwrap_or_else(|_| panic!("the session went on after {why}"))
        .unwrap();
    let took = since.elapsed();
    assert!(took < Duration::from_secs(1), "closed {took:?} after {why}");
    assert_eq!(status.code(), Some(255));
    let mut stderr = String::new();
    use tokio::io::AsyncReadExt;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    assert!(stderr.contains(why), "{stderr:?} does not say {why:?}");
}

both_dbs!(
    removing_the_key_revoking_the_share_or_deactivating_the_user_closes_sessions_within_a_second
);
async fn removing_the_key_revoking_the_share_or_deactivating_the_user_closes_sessions_within_a_second(
    db: TestDb,
) {
    let s = setup(&db, &[]).await;

    // The key is removed.
    let spare = s.ssh.key("ann-spare").await;
    let spare_id = add_key(&s.ann, &spare).await;
    let session = live_session(&s.ssh, &spare, "dev").await;
    s.ann
        .delete(&format!("/api/v1/me/ssh-keys/{spare_id}"))
        .await;
    let since = Instant::now();
    ended_within_a_second(session, since, "the SSH key was removed").await;
    // Its processes in the space are gone too.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, ps) = docker(&["exec", &format!("hangar-{}", s.space), "ps", "ax"]).await;
        if !ps.contains("sleep 100") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the session's process lives on: {ps}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The share is revoked.
    let (bob_id, bob) = s.admin.new_member(&s.server, "bob", json!({})).await;
    let bob_key = s.ssh.key("bob").await;
    add_key(&bob, &bob_key).await;
    s.ann
        .put(&format!("/api/v1/spaces/{}/shares/{bob_id}", s.space))
        .await;
    let session = live_session(&s.ssh, &bob_key, "ann.dev").await;
    // The owner's own session stays.
    let owner_session = live_session(&s.ssh, &s.key, "dev").await;
    s.ann
        .delete(&format!("/api/v1/spaces/{}/shares/{bob_id}", s.space))
        .await;
    let since = Instant::now();
    ended_within_a_second(session, since, "you no longer have access to this space").await;

    // The user is deactivated.
    let off = s
        .admin
        .patch(
            &format!("/api/v1/users/{}", s.ann_id),
            json!({"active": false}),
        )
        .await;
    assert_eq!(off.status, 200, "{off:?}");
    let since = Instant::now();
    ended_within_a_second(owner_session, since, "your account was deactivated").await;
    // And cannot come back.
    let out = s.ssh.run(&s.key, "dev", "true").await;
    assert_eq!(out.status.code(), Some(255), "{out:?}");
    s.server.stop().await;
}

both_dbs!(a_stopped_space_says_so_and_the_cap_refuses_one_connection_too_many);
async fn a_stopped_space_says_so_and_the_cap_refuses_one_connection_too_many(db: TestDb) {
    let s = setup(&db, &["--ssh-max-sessions-per-user", "1"]).await;
    let first = live_session(&s.ssh, &s.key, "dev").await;
    let out = s.ssh.run(&s.key, "dev", "echo second").await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(!text(&out.stdout).contains("second"));
    assert!(
        text(&out.stderr).contains("you already have 1 SSH connection open, the most allowed"),
        "{out:?}"
    );

    // Stopping the space ends the session with the reason.
    let since = Instant::now();
    s.ann
        .post_empty(&format!("/api/v1/spaces/{}/stop", s.space))
        .await;
    let status = tokio::time::timeout(Duration::from_secs(10), {
        async move { first.wait_with_output().await }
    })
    .await
    .expect("the session ends with its space")
    .unwrap();
    assert_ne!(status.status.code(), Some(0), "{status:?}");
    assert!(since.elapsed() < Duration::from_secs(10));
    s.ann.wait_for_state(&s.space, "stopped").await;

    // A stopped space is not started by connecting: one line says what to do.
    let out = s.ssh.run(&s.key, "dev", "echo ran").await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(!text(&out.stdout).contains("ran"));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("space `dev` is stopped; start it from the dashboard"),
        "{stderr}"
    );
    let state = s.ann.get(&format!("/api/v1/spaces/{}", s.space)).await;
    assert_eq!(state.body["state"], "stopped");
    s.server.stop().await;
}

both_dbs!(a_restarted_server_shows_the_same_host_key);
async fn a_restarted_server_shows_the_same_host_key(db: TestDb) {
    let url = db.url();
    let port = free_port().await;
    let listen = format!("127.0.0.1:{port}");
    let env = [("HANGAR_SSH_LISTEN", listen.as_str())];
    let first = Process::start_with(&url, &env).await;
    let admin = admin(&first.server).await;
    let (_, ann) = admin.new_member(&first.server, "ann", json!({})).await;
    let ssh = Ssh::new(port);
    let key = ssh.key("ann").await;
    add_key(&ann, &key).await;
    // The first connection learns the host key; there is no space, which the gateway says
    // after the key exchange and sign-in.
    let learn = ssh.run(&key, "dev", "true").await;
    assert_eq!(learn.status.code(), Some(1), "{learn:?}");
    assert!(std::fs::read_to_string(ssh.known_hosts())
        .unwrap()
        .contains("ssh-ed25519"));
    first.kill_9().await;

    let second = Process::start_with(&url, &env).await;
    let mut strict = tokio::process::Command::new("ssh");
    strict
        .args(ssh.options(&key, "yes"))
        .args(["-p", &port.to_string(), "dev@127.0.0.1", "true"]);
    let out = strict.output().await.unwrap();
    assert_eq!(out.status.code(), Some(1), "the host key changed: {out:?}");
    assert!(
        text(&out.stderr).contains("there is no space `dev`"),
        "{out:?}"
    );
    second.kill_9().await;
}

// One public key, two accounts: bob cannot register ann's public key (public keys are
// public), so her logins keep landing in her own space, never in his; a key of his own signs
// him in to his.
both_dbs!(a_key_signs_in_one_account_only);
async fn a_key_signs_in_one_account_only(db: TestDb) {
    let s = setup(&db, &[]).await;
    let (_, bob) = s.admin.new_member(&s.server, "bob", json!({})).await;
    let small = ssh_template(&s.admin, "small", BUSYBOX_IMAGE, "/bin/sh").await;
    let bob_space = running_space(&bob, &small, "dev").await;
    for (space, whose) in [(&s.space, "ann"), (&bob_space, "bob")] {
        let (wrote, out) =
            crate::support::in_space(space, &format!("echo {whose}-space > /tmp/whose")).await;
        assert!(wrote, "{out}");
    }

    let taken = bob
        .post("/api/v1/me/ssh-keys", json!({"public_key": s.key.public}))
        .await;
    assert_eq!(taken.status, 409, "{taken:?}");
    assert!(
        taken.message().contains("registered to another account")
            && taken.message().contains("generate a new key"),
        "{taken:?}"
    );
    let out = s.ssh.run(&s.key, "dev", "cat /tmp/whose").await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(text(&out.stdout).trim(), "ann-space");

    // What the README tells him: a new key of his own.
    let bob_key = s.ssh.key("bob").await;
    add_key(&bob, &bob_key).await;
    let out = s.ssh.run(&bob_key, "dev", "cat /tmp/whose").await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(text(&out.stdout).trim(), "bob-space");
    s.server.stop().await;
}
