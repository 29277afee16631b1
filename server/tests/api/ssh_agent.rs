//! Agent forwarding through the SSH gateway (`ssh -A`), with real parts: the host's
//! `ssh-agent` holding a fresh key, the OpenSSH client, a running space of the default image,
//! and the tests' git server's SSH remote (dropbear), which lets that key in. git in the space
//! lists the remote's refs with the forwarded agent; without `-A`, or once the space is shared,
//! or for an admin in someone else's space, it cannot; the relay's folder goes with the session.

use std::error::Error;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::repos::GitServer;
use crate::ssh::{add_key, running_space, ssh_template, Ssh};
use crate::support::{admin, both_dbs, in_space, TestDb, TestServer};

type TestResult = Result<(), Box<dyn Error>>;

const DEFAULT_IMAGE: &str = "hangar/default:bookworm";

/// The host's agent (`ssh-agent -D`, ended when dropped) and its socket.
struct HostAgent {
    _process: tokio::process::Child,
    socket: std::path::PathBuf,
}

impl HostAgent {
    async fn start(dir: &Path) -> Result<HostAgent, Box<dyn Error>> {
        let socket = dir.join("agent.sock");
        let process = tokio::process::Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let by = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            if Instant::now() > by {
                return Err("ssh-agent did not listen".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(HostAgent {
            _process: process,
            socket,
        })
    }

    async fn add(&self, key: &Path) -> TestResult {
        let added = tokio::process::Command::new("ssh-add")
            .arg("-q")
            .arg(key)
            .env("SSH_AUTH_SOCK", &self.socket)
            .output()
            .await?;
        if !added.status.success() {
            return Err(format!("ssh-add: {}", String::from_utf8_lossy(&added.stderr)).into());
        }
        Ok(())
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// What git in the space runs: the remote's refs, through the space's `ssh`, never a prompt.
fn ls_remote(url: &str) -> String {
    format!(
        "echo \"sock=$SSH_AUTH_SOCK\"; GIT_SSH_COMMAND='ssh -o BatchMode=yes -o \
         StrictHostKeyChecking=accept-new' git ls-remote {url}"
    )
}

/// Waits until no relay's folder is left in the space.
async fn no_relay_folder_left(space: &str) -> bool {
    let by = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, left) = in_space(space, "ls -d /tmp/.hangar-agent-* 2>/dev/null | wc -l").await;
        if left == "0" {
            return true;
        }
        if Instant::now() > by {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

both_dbs!(git_in_a_space_uses_the_forwarded_agent_of_its_owner_only_while_unshared);
async fn git_in_a_space_uses_the_forwarded_agent_of_its_owner_only_while_unshared(db: TestDb) {
    let result = forwarded_agent(db).await;
    assert!(result.is_ok(), "{result:?}");
}

async fn forwarded_agent(db: TestDb) -> TestResult {
    let git = GitServer::start();
    let server = TestServer::start(&db, &["--ssh-listen", "127.0.0.1:0"]).await;
    let admin = admin(&server).await;
    let (_, ann) = admin.new_member(&server, "ann", json!({})).await;
    let (bob_id, _) = admin.new_member(&server, "bob", json!({})).await;
    let template = ssh_template(&admin, "debian", DEFAULT_IMAGE, "/bin/bash").await;
    let space = running_space(&ann, &template, "dev").await;
    let ssh = Ssh::of(&server);
    let ann_key = ssh.key("ann").await;
    add_key(&ann, &ann_key).await;
    let admin_key = ssh.key("admin").await;
    add_key(&admin, &admin_key).await;

    // The key the git remote knows lives in the host's agent only.
    let host = tempfile::tempdir()?;
    let agent = HostAgent::start(host.path()).await?;
    let git_key = ssh.key("git").await;
    git.authorize(&git_key.public)?;
    agent.add(&git_key.path).await?;
    let url = git.ssh_url("secret.git");
    let run = |key: &crate::ssh::Key, login: &str, extra: &[&str], command: &str| {
        let mut command = ssh.command(key, login, extra, command);
        command.env("SSH_AUTH_SOCK", &agent.socket);
        command
    };

    // With -A: git lists the remote's refs with the forwarded key.
    let first = format!(
        "stat -c 'mode=%a' \"$(dirname \"$SSH_AUTH_SOCK\")\"; {}",
        ls_remote(&url)
    );
    let out: Output = run(&ann_key, "dev", &["-A"], &first).output().await?;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        out.status.success() && stdout.contains("refs/heads/main"),
        "{stdout}\n{stderr}"
    );
    let socket = stdout
        .lines()
        .find_map(|line| line.strip_prefix("sock="))
        .unwrap_or_default()
        .to_owned();
    assert!(socket.starts_with("/tmp/.hangar-agent-"), "{stdout}");
    assert!(stdout.contains("mode=700\n"), "{stdout}");
    // The folder is the space user's alone, and goes with the session.
    assert!(no_relay_folder_left(&space).await, "{socket} is left");
    // git's own ssh command in the space (Hangar's wrapper) prefers the forwarded agent.
    let out = run(&ann_key, "dev", &["-A"], &format!("git ls-remote {url}"))
        .output()
        .await?;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        out.status.success() && stdout.contains("refs/heads/main"),
        "{stdout}\n{stderr}"
    );

    // Without -A: no agent, no refs.
    let out = run(&ann_key, "dev", &[], &ls_remote(&url)).output().await?;
    assert!(!out.status.success(), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("sock=\n"),
        "{}",
        text(&out.stdout)
    );

    // An admin's agent is not forwarded into another's space: its owner could use it.
    let out = run(&admin_key, "ann.dev", &["-A"], &ls_remote(&url))
        .output()
        .await?;
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("owner only"), "{stderr}");

    // Shared while a session forwards: the relay ends within a second or so (its socket goes,
    // with every connection to the agent), and git finds no agent.
    let mut session = run(
        &ann_key,
        "dev",
        &["-A"],
        &format!(
            "ssh-add -l >/dev/null && echo listed; read _; \
             for i in $(seq 1 30); do [ -S \"$SSH_AUTH_SOCK\" ] || {{ echo gone; break; }}; sleep 0.1; done; \
             {}",
            ls_remote(&url)
        ),
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()?;
    let stdout = session.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await??;
    assert_eq!(first.as_deref(), Some("listed"));
    let shared = ann
        .put(&format!("/api/v1/spaces/{space}/shares/{bob_id}"))
        .await;
    assert_eq!(shared.status, 200, "{shared:?}");
    // Goes on: the command reads one line, then asks git.
    drop(session.stdin.take());
    let mut rest = String::new();
    while let Some(line) = lines.next_line().await? {
        rest.push_str(&line);
        rest.push('\n');
    }
    let ended = tokio::time::timeout(Duration::from_secs(30), session.wait_with_output()).await??;
    let stderr = text(&ended.stderr);
    assert!(!ended.status.success(), "{rest}\n{stderr}");
    assert!(!rest.contains("refs/heads/main"), "{rest}");
    assert!(
        rest.contains("gone"),
        "the relay outlived the share: {rest}"
    );
    assert!(stderr.contains("shared"), "{stderr}");

    // Shared from the start: refused at once, saying why.
    let out = run(&ann_key, "dev", &["-A"], &ls_remote(&url))
        .output()
        .await?;
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("agent forwarding (ssh -A) is off while the space is shared"),
        "{stderr}"
    );
    assert!(no_relay_folder_left(&space).await);
    server.stop().await;
    Ok(())
}
