//! Spaces made from a repository, against a real git server (`scripts/test-git-server.sh`:
//! `git daemon` in a network namespace of the test's own, which spaces reach through the host's
//! routing as they reach the world) and real containers of the default image: the clone at the
//! first start (default folder, a branch into a chosen folder), the git identity and the
//! dotfiles, a refused URL that creates nothing, a failed clone that leaves the space running
//! with its reason, "Clone again", an image without git, and templates that preset or restrict
//! the repository.

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use serde_json::{json, Value};

use crate::events::Events;
use crate::support::{admin, both_dbs, in_space, Client, TestDb, TestServer, TEST_IMAGE};

const DEFAULT_IMAGE: &str = "hangar/default:bookworm";

/// A git server of the test's own (see the script), removed when dropped.
pub(crate) struct GitServer {
    n: String,
    root: tempfile::TempDir,
    /// `git://10.254.N.2/`
    base: String,
    /// `http://10.254.N.2:8080/`, private repositories behind basic auth.
    private: String,
    /// `root@10.254.N.2:`, the SSH remote (`secret.git`), for authorized keys only.
    ssh: String,
}

/// The one user and token the private server lets in.
const GIT_USER: &str = "hangar-test";
const GIT_TOKEN: &str = "hangar-test-token";

fn script() -> String {
    format!(
        "{}/../scripts/test-git-server.sh",
        env!("CARGO_MANIFEST_DIR")
    )
}

impl GitServer {
    pub(crate) fn start() -> GitServer {
        // Distinct per test of this process, and apart from other test processes.
        static NEXT: AtomicU8 = AtomicU8::new(0);
        let n =
            (std::process::id() % 60) * 4 + u32::from(NEXT.fetch_add(1, Ordering::Relaxed) % 4) + 1;
        let n = n.to_string();
        let root = tempfile::tempdir().unwrap();
        let root_path = root.path().to_str().unwrap().to_owned();
        // What a crashed earlier run of the same number left.
        let _ = std::process::Command::new(script())
            .args(["down", &n, &root_path])
            .status();
        let out = std::process::Command::new(script())
            .args(["up", &n, &root_path])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "the git server did not start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let said = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut lines = said.lines().map(str::to_owned);
        let (base, private, ssh) = (
            lines.next().unwrap(),
            lines.next().unwrap(),
            lines.next().unwrap(),
        );
        GitServer {
            n,
            root,
            base,
            private,
            ssh,
        }
    }

    pub(crate) fn url(&self, repository: &str) -> String {
        format!("{}{repository}", self.base)
    }

    /// Serves the files `files` (path, content; `.sh` files executable) as the repository
    /// `name` from now on.
    pub(crate) fn publish(&self, name: &str, files: &[(&str, &str)]) {
        let work = self.root.path().join("work").join(name);
        let git = |args: &[&str]| {
            let status = std::process::Command::new("git")
                .arg("-C")
                .arg(&work)
                .args(["-c", "user.name=test", "-c", "user.email=test@example.org"])
                .args(args)
                .status()
                .unwrap();
            assert!(status.success(), "git {args:?}");
        };
        std::fs::create_dir_all(&work).unwrap();
        git(&["init", "-q", "-b", "main"]);
        for (path, content) in files {
            let file = work.join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, content).unwrap();
            if path.ends_with(".sh") {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
        }
        git(&["add", "-A"]);
        git(&["commit", "-q", "-m", "files"]);
        let status = std::process::Command::new("git")
            .args(["clone", "-q", "--bare"])
            .arg(&work)
            .arg(self.root.path().join("public").join(name))
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// The SSH remote's URL of `repository` (scp-like: `root@10.254.N.2:secret.git`).
    pub(crate) fn ssh_url(&self, repository: &str) -> String {
        format!("{}{repository}", self.ssh)
    }

    /// Lets the SSH remote in to clients holding the key of `public_key` (an OpenSSH line).
    pub(crate) fn authorize(&self, public_key: &str) -> std::io::Result<()> {
        use std::io::Write;
        let mut keys = std::fs::OpenOptions::new()
            .append(true)
            .open(self.root.path().join("ssh/.ssh/authorized_keys"))?;
        writeln!(keys, "{}", public_key.trim())
    }

    /// Serves a copy of `project.git` as `name` from now on.
    fn publish_project_as(&self, name: &str) {
        let status = std::process::Command::new("git")
            .args(["clone", "-q", "--bare"])
            .arg(self.root.path().join("public/project.git"))
            .arg(self.root.path().join("public").join(name))
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for GitServer {
    fn drop(&mut self) {
        let _ = std::process::Command::new(script())
            .args([
                "down",
                &self.n,
                self.root.path().to_str().unwrap_or_default(),
            ])
            .status();
    }
}

/// A template of the default image (it has git) with the home on a volume, so that work in it
/// outlives a stop.
pub(crate) async fn debian_template(admin: &Client, extra: Value) -> String {
    let mut body = json!({
        "name": "debian", "image": DEFAULT_IMAGE, "compute_units": 0,
        "volumes": [{"name": "home", "mount_path": "/root", "size_gib": 1}],
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let created = admin.post("/api/v1/templates", body).await;
    assert_eq!(created.status, 201, "{created:?}");
    created.id()
}

/// A git server, a Hangar, its admin and the admin's session cookie.
pub(crate) async fn git_and_server(db: &TestDb) -> (GitServer, TestServer, Client, String) {
    let git = GitServer::start();
    let server = TestServer::start(db, &[]).await;
    let admin = admin(&server).await;
    let cookie = server
        .login_cookie("admin", crate::support::ADMIN_PASSWORD)
        .await;
    (git, server, admin, cookie)
}

pub(crate) async fn create(
    client: &Client,
    name: &str,
    template: &str,
    repository: Value,
) -> Value {
    let created = client
        .post(
            "/api/v1/spaces",
            json!({"name": name, "template_id": template, "repository": repository}),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    created.body
}

pub(crate) async fn start(client: &Client, id: &str) {
    let started = client
        .post_empty(&format!("/api/v1/spaces/{id}/start"))
        .await;
    assert_eq!(started.status, 202, "{started:?}");
}

/// Waits for the live event in which the space's `part` (`repository` or `dotfiles`) reaches
/// `state`; returns the space as the event showed it.
pub(crate) async fn wait_setup(events: &mut Events, id: &str, part: &str, state: &str) -> Value {
    events
        .wait_for_within("space", Duration::from_secs(90), |space| {
            space["id"] == id && space[part]["state"] == state
        })
        .await
}

/// Waits until every (space, part, state) was seen in a live event, in any order; returns the
/// spaces as last seen.
async fn wait_all(events: &mut Events, wanted: &[(&str, &str, &str)]) -> Vec<Value> {
    let mut seen: Vec<Option<Value>> = vec![None; wanted.len()];
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while seen.iter().any(Option::is_none) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let Some((name, space)) = events.next(left).await else {
            panic!("not all of {wanted:?} came: {seen:?}");
        };
        if name != "space" {
            continue;
        }
        for (i, (id, part, state)) in wanted.iter().enumerate() {
            if space["id"] == *id && space[*part]["state"] == *state {
                seen[i] = Some(space.clone());
            }
        }
    }
    seen.into_iter().map(Option::unwrap).collect()
}

async fn clone_events(client: &Client, id: &str) -> usize {
    let history = client.get(&format!("/api/v1/spaces/{id}/history")).await;
    history
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "space.clone")
        .count()
}

both_dbs!(a_space_clones_its_repository_and_installs_the_dotfiles_once);
async fn a_space_clones_its_repository_and_installs_the_dotfiles_once(db: TestDb) {
    let (git, server, admin, cookie) = git_and_server(&db).await;
    let me = admin.get("/api/v1/me").await.body["user"].clone();
    let named = admin
        .patch(
            &format!("/api/v1/users/{}", me["id"].as_str().unwrap()),
            json!({"display_name": "Ada Admin", "email": "ada@example.org"}),
        )
        .await;
    assert_eq!(named.status, 200, "{named:?}");
    let dotfiles = admin
        .send(
            reqwest::Method::PUT,
            "/api/v1/me/dotfiles",
            Some(json!({"url": git.url("dotfiles.git")})),
        )
        .await;
    assert_eq!(dotfiles.status, 200, "{dotfiles:?}");
    let template = debian_template(&admin, json!({})).await;

    // Refused: credentials in the URL, a folder outside the home; nothing is created.
    for (repository, field, says) in [
        (
            json!({"url": "https://user:secret@git.example.org/p.git"}),
            "repository.url",
            "must not carry",
        ),
        (
            json!({"url": git.url("project.git"), "folder": "../etc"}),
            "repository.folder",
            "relative to the home",
        ),
        (
            json!({"url": "file:///etc"}),
            "repository.url",
            "not supported",
        ),
    ] {
        let refused = admin
            .post(
                "/api/v1/spaces",
                json!({"name": "bad", "template_id": template, "repository": repository}),
            )
            .await;
        assert_eq!(refused.status, 400, "{refused:?}");
        assert_eq!(refused.body["error"]["field"], field, "{refused:?}");
        assert!(refused.message().contains(says), "{refused:?}");
    }
    assert_eq!(admin.get("/api/v1/spaces").await.body, json!([]));

    let plain = create(
        &admin,
        "plain",
        &template,
        json!({"url": git.url("project.git")}),
    )
    .await;
    assert_eq!(plain["repository"]["folder"], "project");
    assert_eq!(plain["repository"]["state"], "waiting");
    let branch = create(
        &admin,
        "branch",
        &template,
        json!({"url": git.url("project.git"), "branch": "feature", "folder": "~/src/feat"}),
    )
    .await;
    assert_eq!(branch["repository"]["folder"], "src/feat");
    let (plain, branch) = (
        plain["id"].as_str().unwrap(),
        branch["id"].as_str().unwrap(),
    );

    let mut events = Events::open(&server, &cookie).await;
    start(&admin, plain).await;
    start(&admin, branch).await;
    let seen = wait_all(
        &mut events,
        &[
            (plain, "repository", "cloned"),
            (branch, "repository", "cloned"),
            (plain, "dotfiles", "cloned"),
        ],
    )
    .await;
    let done = &seen[2];
    assert!(
        done["setup_log"]
            .as_str()
            .unwrap()
            .contains("Cloning into 'project'"),
        "{done}"
    );
    assert_eq!(done["state"], "running");
    assert!(
        done["setup_log"]
            .as_str()
            .unwrap()
            .contains("installed the dotfiles"),
        "{done}"
    );

    let (ok, head) = in_space(
        plain,
        "cat ~/project/README.md && git -C ~/project rev-parse --abbrev-ref HEAD",
    )
    .await;
    assert!(
        ok && head.ends_with("main") && head.contains("# project"),
        "{head}"
    );
    let (ok, head) = in_space(
        branch,
        "cat ~/src/feat/FEATURE.md && git -C ~/src/feat rev-parse --abbrev-ref HEAD",
    )
    .await;
    assert!(ok && head.ends_with("feature"), "{head}");
    // The identity from the profile, the dotfiles by their install.sh.
    let (ok, identity) = in_space(
        plain,
        "git config --global user.name; git config --global user.email",
    )
    .await;
    assert!(ok, "{identity}");
    assert_eq!(identity, "Ada Admin\nada@example.org");
    let (ok, marker) = in_space(plain, "cat ~/dotfiles-installed").await;
    assert!(
        ok && marker.contains("dotfiles from /root/.dotfiles"),
        "{marker}"
    );

    // A second start clones nothing over the work done meanwhile.
    let (ok, _) = in_space(
        plain,
        "echo mine > ~/project/mine.txt && rm ~/project/README.md",
    )
    .await;
    assert!(ok);
    let log_before = admin.get(&format!("/api/v1/spaces/{plain}")).await.body["setup_log"].clone();
    assert_eq!(
        admin
            .post_empty(&format!("/api/v1/spaces/{plain}/restart"))
            .await
            .status,
        202
    );
    events
        .wait_for_within("space", Duration::from_secs(60), |s| {
            s["id"] == plain && s["state"] == "stopping"
        })
        .await;
    events
        .wait_for_within("space", Duration::from_secs(60), |s| {
            s["id"] == plain && s["state"] == "running"
        })
        .await;
    // What follows the start (the apps, the setup) has a few seconds to show a clone: none comes.
    while let Some((name, space)) = events.next(Duration::from_secs(3)).await {
        if name == "space" && space["id"] == plain {
            assert_eq!(space["repository"]["state"], "cloned", "{space}");
        }
    }
    let (ok, work) = in_space(plain, "cat ~/project/mine.txt; ls ~/project").await;
    assert!(
        ok && work.starts_with("mine") && !work.contains("README.md"),
        "{work}"
    );
    let after = admin.get(&format!("/api/v1/spaces/{plain}")).await.body;
    assert_eq!(after["setup_log"], log_before);
    assert_eq!(clone_events(&admin, plain).await, 1);
    // It cloned: there is nothing to clone again.
    let again = admin
        .post_empty(&format!("/api/v1/spaces/{plain}/clone"))
        .await;
    assert_eq!(again.status, 409, "{again:?}");
    assert!(again.message().contains("cloned already"), "{again:?}");
    server.stop().await;
}

both_dbs!(a_failed_clone_leaves_the_space_running_with_its_reason);
async fn a_failed_clone_leaves_the_space_running_with_its_reason(db: TestDb) {
    let (git, server, admin, cookie) = git_and_server(&db).await;
    let template = debian_template(&admin, json!({})).await;
    let missing = create(
        &admin,
        "missing",
        &template,
        json!({"url": git.url("later.git")}),
    )
    .await;
    let missing = missing["id"].as_str().unwrap();
    // An image without git: the reason says so.
    let bare = admin
        .post(
            "/api/v1/templates",
            json!({"name": "busybox", "image": TEST_IMAGE, "compute_units": 0}),
        )
        .await
        .id();
    let no_git = create(
        &admin,
        "no-git",
        &bare,
        json!({"url": git.url("project.git")}),
    )
    .await;
    let no_git = no_git["id"].as_str().unwrap();

    let mut events = Events::open(&server, &cookie).await;
    start(&admin, missing).await;
    start(&admin, no_git).await;
    let seen = wait_all(
        &mut events,
        &[
            (missing, "repository", "failed"),
            (no_git, "repository", "failed"),
        ],
    )
    .await;
    let failed = &seen[0];
    assert_eq!(failed["state"], "running", "{failed}");
    let reason = failed["repository"]["error"].as_str().unwrap();
    assert!(reason.contains("later.git"), "{reason}");
    let failed = &seen[1];
    assert_eq!(failed["state"], "running", "{failed}");
    assert!(
        failed["repository"]["error"]
            .as_str()
            .unwrap()
            .contains("git is not installed in this image"),
        "{failed}"
    );

    // Once the repository exists, "Clone again" clones it; a sharee may not.
    git.publish_project_as("later.git");
    let (bob_id, bob) = admin.new_member(&server, "bob", json!({})).await;
    let shared = admin
        .put(&format!("/api/v1/spaces/{missing}/shares/{bob_id}"))
        .await;
    assert_eq!(shared.status, 200, "{shared:?}");
    assert_eq!(
        bob.post_empty(&format!("/api/v1/spaces/{missing}/clone"))
            .await
            .status,
        403
    );
    let again = admin
        .post_empty(&format!("/api/v1/spaces/{missing}/clone"))
        .await;
    assert_eq!(again.status, 202, "{again:?}");
    wait_setup(&mut events, missing, "repository", "cloned").await;
    let (ok, readme) = in_space(missing, "cat ~/later/README.md").await;
    assert!(ok && readme.contains("# project"), "{readme}");
    assert_eq!(clone_events(&admin, missing).await, 2);
    server.stop().await;
}

both_dbs!(templates_preset_and_restrict_the_repository);
async fn templates_preset_and_restrict_the_repository(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    let team = "https://git.example.org/team/";
    // A preset outside the template's own prefixes is refused.
    let refused = admin
        .post(
            "/api/v1/templates",
            json!({"name": "team", "image": TEST_IMAGE, "compute_units": 0,
                   "repository": {"url": "https://github.com/other/x"},
                   "repository_prefixes": [team]}),
        )
        .await;
    assert_eq!(refused.status, 400, "{refused:?}");
    assert_eq!(refused.body["error"]["field"], "repository.url");
    let created = admin
        .post(
            "/api/v1/templates",
            json!({"name": "team", "image": TEST_IMAGE, "compute_units": 0,
                   "repository": {"url": format!("{team}app.git"), "branch": "dev"},
                   "repository_prefixes": [team]}),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(created.body["repository"]["branch"], "dev");
    assert_eq!(created.body["repository_prefixes"], json!([team]));
    let template = created.id();
    // Without a repository of its own, a space gets the template's.
    let preset = create(&admin, "preset", &template, Value::Null).await;
    assert_eq!(preset["repository"]["url"], format!("{team}app.git"));
    assert_eq!(preset["repository"]["folder"], "app");
    assert_eq!(preset["repository"]["branch"], "dev");
    // Another of the team's is fine; one elsewhere is refused, naming the prefixes.
    let other = create(
        &admin,
        "other",
        &template,
        json!({"url": format!("{team}lib")}),
    )
    .await;
    assert_eq!(other["repository"]["folder"], "lib");
    let refused = admin
        .post(
            "/api/v1/spaces",
            json!({"name": "elsewhere", "template_id": template,
                   "repository": {"url": "https://github.com/someone/thing"}}),
        )
        .await;
    assert_eq!(refused.status, 400, "{refused:?}");
    assert!(refused.message().contains(team), "{refused:?}");
    // The preset goes; the restriction stays.
    let updated = admin
        .patch(
            &format!("/api/v1/templates/{template}"),
            json!({"repository": null}),
        )
        .await;
    assert_eq!(updated.status, 200, "{updated:?}");
    assert_eq!(updated.body["repository"], Value::Null);
    let bare = create(&admin, "bare", &template, Value::Null).await;
    assert_eq!(bare["repository"], Value::Null);
    // The dotfiles URL is checked like a repository's.
    let dotfiles = admin
        .send(
            reqwest::Method::PUT,
            "/api/v1/me/dotfiles",
            Some(json!({"url": "https://me:token@github.com/me/dotfiles"})),
        )
        .await;
    assert_eq!(dotfiles.status, 400, "{dotfiles:?}");
    server.stop().await;
}

both_dbs!(git_in_a_space_gets_its_owners_token_only_while_unshared);
async fn git_in_a_space_gets_its_owners_token_only_while_unshared(db: TestDb) {
    let (git, server, admin, cookie) = git_and_server(&db).await;
    let template = debian_template(&admin, json!({})).await;
    let quota = json!({"compute_units": 4, "storage_units": 4, "max_spaces": 4});
    let (_, ann) = admin.new_member(&server, "ann", quota.clone()).await;
    let (bob_id, bob) = admin.new_member(&server, "bob", quota).await;
    let host = git
        .private
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let saved = ann
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/me/git-credentials/{host}"),
            Some(json!({"username": GIT_USER, "token": GIT_TOKEN})),
        )
        .await;
    assert_eq!(saved.status, 200, "{saved:?}");
    assert_eq!(saved.body["host"], host.as_str());
    // Never shown again, never kept in the clear.
    let listed = ann.get("/api/v1/me/git-credentials").await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1, "{listed:?}");
    assert_eq!(listed.body[0]["last_used_at"], Value::Null);
    for answer in [&saved, &listed] {
        assert!(!answer.body.to_string().contains(GIT_TOKEN), "{answer:?}");
    }
    if let TestDb::Sqlite(file) = &db {
        let bytes = std::fs::read(&file.path).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(GIT_TOKEN),
            "the token is in the database file in the clear"
        );
    }
    let key = db.data_dir().join("git-credentials.key");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{}", key.display());
    assert!(bob
        .get("/api/v1/me/git-credentials")
        .await
        .body
        .as_array()
        .unwrap()
        .is_empty());

    // Ann's space clones the private repository with her token; Bob's has none.
    let secret = format!("{}secret.git", git.private);
    let mine = create(&ann, "mine", &template, json!({"url": secret})).await;
    let theirs = create(&bob, "theirs", &template, json!({"url": secret})).await;
    let (mine, theirs) = (mine["id"].as_str().unwrap(), theirs["id"].as_str().unwrap());
    let mut events = Events::open(&server, &cookie).await;
    start(&ann, mine).await;
    start(&bob, theirs).await;
    let seen = wait_all(
        &mut events,
        &[
            (mine, "repository", "cloned"),
            (theirs, "repository", "failed"),
        ],
    )
    .await;
    let reason = seen[1]["repository"]["error"].as_str().unwrap();
    assert!(reason.contains("Username"), "{reason}");
    let (ok, readme) = in_space(mine, "cat ~/secret/README.md").await;
    assert!(ok && readme.contains("# project"), "{readme}");
    let used = ann.get("/api/v1/me/git-credentials").await;
    assert!(used.body[0]["last_used_at"].is_string(), "{used:?}");
    // Nothing in the space keeps it.
    let (found, _) = in_space(mine, "grep -rqs hangar-test-token /root /tmp").await;
    assert!(!found, "the token was left in the space");

    // Shared, the space's git gets no token (a sharee's shell asks as the owner's would).
    let ls_remote = format!("git ls-remote {secret} >/dev/null 2>&1 && echo given || echo refused");
    let shared = ann
        .put(&format!("/api/v1/spaces/{mine}/shares/{bob_id}"))
        .await;
    assert_eq!(shared.status, 200, "{shared:?}");
    assert_eq!(in_space(mine, &ls_remote).await.1, "refused");
    let unshared = ann
        .delete(&format!("/api/v1/spaces/{mine}/shares/{bob_id}"))
        .await;
    assert!(unshared.status < 300, "{unshared:?}");
    assert_eq!(in_space(mine, &ls_remote).await.1, "given");
    // Removed, it is no longer given.
    let removed = ann
        .delete(&format!("/api/v1/me/git-credentials/{host}"))
        .await;
    assert_eq!(removed.status, 204, "{removed:?}");
    assert_eq!(in_space(mine, &ls_remote).await.1, "refused");

    // Saved again, it is given again, also once another server took over the running space
    // (the first one's broker ended with it).
    let again = ann
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/me/git-credentials/{host}"),
            Some(json!({"username": GIT_USER, "token": GIT_TOKEN})),
        )
        .await;
    assert_eq!(again.status, 200, "{again:?}");
    // Git keeps asking all through hand-overs, as developers' would (three at once): every ask
    // is given, also while no server runs, or while the next one installs its helper again.
    for asker in 1..=3 {
        let asking = format!(
            "end=$(($(date +%s) + 8)); while [ $(date +%s) -lt $end ]; do \
             git ls-remote {secret} >/dev/null 2>/tmp/why-{asker} && echo given || \
             {{ echo refused; cat /tmp/why-{asker}; }}; done \
             >/tmp/handover-{asker}.log 2>&1; echo done >>/tmp/handover-{asker}.log"
        );
        let (ok, out) = in_space(
            mine,
            &format!("nohup sh -c '{asking}' </dev/null >/dev/null 2>&1 &"),
        )
        .await;
        assert!(ok, "{out}");
    }
    let mut server = server;
    for _ in 0..3 {
        tokio::time::sleep(std::time::Duration::from_millis(700)).await;
        server.shutdown().await;
        server = TestServer::start(&db, &[]).await;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let logs = loop {
        let (_, logs) = in_space(mine, "cat /tmp/handover-*.log").await;
        if logs.matches("done").count() == 3 || std::time::Instant::now() > deadline {
            break logs;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    let answers: Vec<&str> = logs.lines().collect();
    let given = answers.iter().filter(|a| **a == "given").count();
    if given + 3 != answers.len() || given < 6 {
        // What the helper and its broker looked like, for the failure's message.
        let (_, seen) = in_space(mine, "ls -la /tmp/.hangar-git-0; ps -eo pid,etime,args").await;
        panic!("git was refused during the hand-overs: {logs}\n{seen}");
    }
    assert_eq!(in_space(mine, &ls_remote).await.1, "given");
    server.stop().await;
}
