//! Spaces built from their repository's `devcontainer.json`, against the test's own git server
//! and the real engine: a Dockerfile `FROM` the local default image with a build argument, a
//! local feature, the environment, the lifecycle commands (once, and at every start),
//! `forwardPorts` with its label, ignored keys reported; a plain restart and an unchanged
//! rebuild do not build again; a broken Dockerfile shows the build's error and leaves the
//! space running the template's image; a template that does not allow it builds nothing. Run
//! options (`capAdd`, tmpfs `mounts`, `runArgs`) apply only where the template allows them,
//! the host's files and network never.

use std::time::Duration;

use serde_json::{json, Value};

use crate::events::Events;
use crate::repos::{create, debian_template, git_and_server, start, wait_setup, GitServer};
use crate::support::{both_dbs, in_space, Client, TestDb};

/// A repository with a `devcontainer.json` (comments and a trailing comma included); `nonce`
/// makes its image unlike any other run's, so that the first build is a real one.
fn publish_devbox(git: &GitServer, name: &str, nonce: &str) {
    let config = r#"{
        // built from the local default image
        "name": "devbox",
        "build": { "dockerfile": "Dockerfile", "args": { "GREETING": "hello" } },
        "containerEnv": { "DEVBOX": "yes" },
        "remoteEnv": { "PATH": "${containerEnv:PATH}:/opt/devbox" },
        "features": { "./features/marker": { "word": "feature-ok" } },
        "onCreateCommand": "echo created >> ~/on-create",
        "postCreateCommand": ["sh", "-c", "echo $DEVBOX > ~/post-create"],
        "postStartCommand": { "count": "echo start >> ~/post-start" },
        "forwardPorts": [8000],
        "portsAttributes": { "8000": { "label": "web" } },
        "privileged": true,
    }"#;
    let dockerfile = format!(
        "FROM hangar/default:bookworm\nARG GREETING\nRUN echo \"$GREETING {nonce}\" > /etc/devbox-built\nCOPY . /ctx/\n"
    );
    let feature =
        r#"{"id": "marker", "options": {"word": {"type": "string", "default": "unset"}}}"#;
    git.publish(
        name,
        &[
            ("README.md", "# devbox\n"),
            (".devcontainer/devcontainer.json", config),
            (".devcontainer/Dockerfile", &dockerfile),
            // The build context leaves out what its .dockerignore names.
            (
                ".devcontainer/.dockerignore",
                "# not sent\nsecret.txt\n**/*.log\n",
            ),
            (".devcontainer/secret.txt", "secret\n"),
            (".devcontainer/sub/build.log", "log\n"),
            (".devcontainer/sub/kept.txt", "kept\n"),
            (
                ".devcontainer/features/marker/devcontainer-feature.json",
                feature,
            ),
            (
                ".devcontainer/features/marker/install.sh",
                "#!/bin/sh\necho \"$WORD\" > /etc/feature-marker\n",
            ),
        ],
    );
}

/// Waits for the space's `devcontainer.state` to reach `state`, with `said` in its log, in a
/// live event. (What it is now counts: events of other spaces' waits may have passed it by.)
async fn wait_build(
    client: &Client,
    events: &mut Events,
    id: &str,
    state: &str,
    said: &str,
) -> Value {
    let done = |space: &Value| {
        space["devcontainer"]["state"] == state
            && space["setup_log"]
                .as_str()
                .unwrap_or_default()
                .contains(said)
    };
    let now = space(client, id).await;
    if done(&now) {
        return now;
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(240);
    let mut last = Value::Null;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let Some((name, space)) = events.next(left).await else {
            panic!("the space's devcontainer did not become {state}; last seen: {last}");
        };
        if name == "space" && space["id"] == id {
            if done(&space) {
                return space;
            }
            last = space;
        }
    }
}

/// Runs `script` in the space until it succeeds (the space restarts onto its image and then
/// runs its lifecycle commands, in the background); its output.
async fn until_in_space(id: &str, script: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let (ok, said) = in_space(id, script).await;
        if ok {
            return said;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "`{script}` did not succeed in the space: {said}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn builds(client: &Client, id: &str) -> usize {
    let history = client.get(&format!("/api/v1/spaces/{id}/history")).await;
    history
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "space.build" && e["outcome"] == "success")
        .count()
}

async fn space(client: &Client, id: &str) -> Value {
    let found = client.get(&format!("/api/v1/spaces/{id}")).await;
    assert_eq!(found.status, 200, "{found:?}");
    found.body
}

both_dbs!(a_space_is_built_from_its_devcontainer_json);
async fn a_space_is_built_from_its_devcontainer_json(db: TestDb) {
    let (git, server, admin, cookie) = git_and_server(&db).await;
    let nonce = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    publish_devbox(&git, "devbox.git", &nonce);
    git.publish(
        "broken.git",
        &[
            (
                ".devcontainer.json",
                r#"{"build": {"dockerfile": "Dockerfile"}}"#,
            ),
            (
                "Dockerfile",
                "FROM hangar/default:bookworm\nRUN echo about to fail && exit 3\n",
            ),
        ],
    );
    let allowing = debian_template(&admin, json!({"name": "dev", "devcontainer": true})).await;
    let plain_template = debian_template(&admin, json!({})).await;
    let devbox = create(
        &admin,
        "devbox",
        &allowing,
        json!({"url": git.url("devbox.git")}),
    )
    .await;
    let broken = create(
        &admin,
        "broken",
        &allowing,
        json!({"url": git.url("broken.git")}),
    )
    .await;
    let ignored = create(
        &admin,
        "ignored",
        &plain_template,
        json!({"url": git.url("devbox.git")}),
    )
    .await;
    let ids: Vec<String> = [&devbox, &broken, &ignored]
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    let (devbox, broken, ignored) = (ids[0].as_str(), ids[1].as_str(), ids[2].as_str());

    let mut events = Events::open(&server, &cookie).await;
    let began = std::time::Instant::now();
    for id in [devbox, broken, ignored] {
        start(&admin, id).await;
    }

    // Built: the image from the Dockerfile with its argument, plus the local feature.
    let built = wait_build(&admin, &mut events, devbox, "built", "restarting the space").await;
    let status = &built["devcontainer"];
    assert_eq!(
        status["config"], ".devcontainer/devcontainer.json",
        "{built}"
    );
    assert!(
        status["image"]
            .as_str()
            .unwrap()
            .starts_with("hangar-devcontainer:"),
        "{built}"
    );
    assert_eq!(
        status["ports"],
        json!([{"port": 8000, "label": "web"}]),
        "{built}"
    );
    assert!(
        status["ignored"].to_string().contains("`privileged`"),
        "{built}"
    );
    let log = built["setup_log"].as_str().unwrap();
    assert!(log.contains("building hangar-devcontainer:"), "{log}");
    let to_built = began.elapsed();

    // The space restarted on it, kept its clone, and ran the lifecycle commands.
    let marks = until_in_space(
        devbox,
        "cat /etc/devbox-built /etc/feature-marker ~/post-create ~/post-start && echo \"$PATH\" && ls ~/devbox",
    )
    .await;
    assert!(marks.contains(&format!("hello {nonce}")), "{marks}");
    assert!(marks.contains("feature-ok"), "{marks}");
    assert!(marks.contains("yes"), "{marks}");
    assert!(marks.contains(":/opt/devbox"), "{marks}");
    assert!(marks.contains("README.md"), "{marks}");
    let (ok, context) = in_space(
        devbox,
        "test -f /ctx/sub/kept.txt && ! test -e /ctx/secret.txt && ! test -e /ctx/sub/build.log && echo context-ok",
    )
    .await;
    assert!(ok && context.contains("context-ok"), "{context}");
    // Figures for the record (not goals): three spaces started at once on 2 cores.
    eprintln!(
        "devcontainer: start → built {:.1} s, → restarted with its commands run {:.1} s",
        to_built.as_secs_f64(),
        began.elapsed().as_secs_f64()
    );
    let (_, created) = in_space(devbox, "cat ~/on-create").await;
    assert_eq!(created, "created");

    // The port it forwards shows on the ports panel with its label once something listens.
    let (ok, said) = in_space(
        devbox,
        "setsid perl -MIO::Socket::INET -e 'my $s = IO::Socket::INET->new(LocalAddr => \"0.0.0.0\", LocalPort => 8000, Listen => 5, ReuseAddr => 1) or die; sleep 600' >/dev/null 2>&1 &",
    )
    .await;
    assert!(ok, "{said}");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let ports = admin.get(&format!("/api/v1/spaces/{devbox}/ports")).await;
        let listed = ports.body["ports"].as_array().cloned().unwrap_or_default();
        if let Some(web) = listed.iter().find(|p| p["port"] == 8000) {
            assert_eq!(web["label"], "web", "{ports:?}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "port 8000 never showed: {ports:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(builds(&admin, devbox).await, 1);

    // A broken Dockerfile: the build's error on the page, the space still running the
    // template's image.
    let failed = wait_build(&admin, &mut events, broken, "failed", "not applied").await;
    let error = failed["devcontainer"]["error"].as_str().unwrap();
    assert!(error.contains("the build failed"), "{failed}");
    assert!(error.contains("non-zero code: 3"), "{failed}");
    assert!(
        failed["setup_log"]
            .as_str()
            .unwrap()
            .contains("about to fail"),
        "{failed}"
    );
    assert_eq!(failed["state"], "running", "{failed}");
    let (ok, _) = in_space(
        broken,
        "test -f ~/broken/Dockerfile && ! test -e /etc/devbox-built",
    )
    .await;
    assert!(
        ok,
        "the broken space should run the template's image with its clone"
    );

    // The template that does not allow it builds nothing.
    if space(&admin, ignored).await["repository"]["state"] != "cloned" {
        wait_setup(&mut events, ignored, "repository", "cloned").await;
    }
    let (ok, _) = in_space(ignored, "! test -e /etc/devbox-built").await;
    assert!(ok);
    assert_eq!(space(&admin, ignored).await["devcontainer"], Value::Null);

    // A plain restart builds nothing, runs postStartCommand again and the once-only ones not.
    let restarted = admin
        .post_empty(&format!("/api/v1/spaces/{devbox}/restart"))
        .await;
    assert_eq!(restarted.status, 202, "{restarted:?}");
    until_in_space(devbox, "test \"$(wc -l < ~/post-start)\" -eq 2").await;
    let (_, created) = in_space(devbox, "cat ~/on-create /etc/devbox-built").await;
    assert_eq!(created, format!("created\nhello {nonce}"));
    assert_eq!(builds(&admin, devbox).await, 1);

    // Rebuild of an unchanged repository: the same image, no build, a new container with its
    // once-only commands run again.
    let image = space(&admin, devbox).await["devcontainer"]["image"].clone();
    let rebuilding = std::time::Instant::now();
    let rebuilt = admin
        .post_empty(&format!("/api/v1/spaces/{devbox}/rebuild"))
        .await;
    assert_eq!(rebuilt.status, 202, "{rebuilt:?}");
    let again = wait_build(&admin, &mut events, devbox, "built", "$ rebuild").await;
    eprintln!(
        "devcontainer: an unchanged rebuild → built {:.2} s",
        rebuilding.elapsed().as_secs_f64()
    );
    assert_eq!(again["devcontainer"]["image"], image, "{again}");
    assert!(
        again["setup_log"]
            .as_str()
            .unwrap()
            .contains("unchanged since the last build"),
        "{again}"
    );
    until_in_space(devbox, "test \"$(wc -l < ~/on-create)\" -eq 2").await;

    // Refusals say why.
    let refused = admin
        .post_empty(&format!("/api/v1/spaces/{ignored}/rebuild"))
        .await;
    assert_eq!(refused.status, 409, "{refused:?}");
    assert!(refused.message().contains("template"), "{refused:?}");
    for id in [devbox, broken, ignored] {
        let deleted = admin.delete(&format!("/api/v1/spaces/{id}")).await;
        assert!(
            deleted.status == 202 || deleted.status == 204,
            "{deleted:?}"
        );
    }
    // The images this run built (as docs/devcontainer.md tells operators to prune them),
    // once the deleted space no longer uses them.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let label = format!("label=io.hangar.devcontainer={devbox}");
        let pruned = tokio::process::Command::new("docker")
            .args(["image", "prune", "-a", "-f", "--filter", &label])
            .output()
            .await
            .unwrap();
        // The engine runs one prune at a time: the other database's run of this test may be
        // pruning now.
        let busy = String::from_utf8_lossy(&pruned.stderr).contains("already running");
        assert!(pruned.status.success() || busy, "{pruned:?}");
        let left = tokio::process::Command::new("docker")
            .args(["images", "-q", "--filter", &label])
            .output()
            .await
            .unwrap();
        if left.stdout.is_empty() || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A repository whose `devcontainer.json` asks for run options: a capability, a tmpfs, a bind
/// mount of the host's `/etc`, and `runArgs` with another capability and the host's network.
fn publish_run_options(git: &GitServer, name: &str) {
    let config = r#"{
        "image": "hangar/default:bookworm",
        "containerEnv": { "RUNOPTS": "read" },
        "capAdd": ["SYS_PTRACE"],
        "mounts": ["type=tmpfs,target=/scratch", "source=/etc,target=/host-etc,type=bind"],
        "runArgs": ["--cap-add=NET_ADMIN", "--network=host"],
    }"#;
    git.publish(
        name,
        &[
            ("README.md", "# run options\n"),
            (".devcontainer.json", config),
        ],
    );
}

/// The strings of a JSON array, one a line.
fn lines(list: &Value) -> String {
    let items = list.as_array().map(Vec::as_slice).unwrap_or_default();
    let texts: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
    texts.join("\n")
}

/// Whether the effective capabilities of the space's first process hold `bit`.
async fn has_capability(id: &str, bit: u32) -> Result<bool, String> {
    let (ok, said) = in_space(id, "grep CapEff /proc/1/status").await;
    if !ok {
        return Err(said);
    }
    let hex = said
        .split_whitespace()
        .last()
        .ok_or_else(|| format!("no CapEff in {said}"))?;
    let mask = u64::from_str_radix(hex, 16).map_err(|e| format!("{hex}: {e}"))?;
    Ok(mask & (1 << bit) != 0)
}

/// The engine's view of the space's container: its network mode.
async fn network_mode(id: &str) -> Result<String, String> {
    let out = tokio::process::Command::new("docker")
        .args([
            "inspect",
            "-f",
            "{{.HostConfig.NetworkMode}}",
            &format!("hangar-{id}"),
        ])
        .output()
        .await
        .map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_PTRACE: u32 = 19;

both_dbs!(a_template_may_let_devcontainer_json_set_run_options);
async fn a_template_may_let_devcontainer_json_set_run_options(db: TestDb) {
    let (git, server, admin, cookie) = git_and_server(&db).await;
    publish_run_options(&git, "runopts.git");
    let allowing = debian_template(
        &admin,
        json!({"name": "runopts", "devcontainer": true, "devcontainer_run_options": true}),
    )
    .await;
    let shown = admin.get(&format!("/api/v1/templates/{allowing}")).await;
    assert_eq!(shown.body["devcontainer_run_options"], true, "{shown:?}");
    let refusing = debian_template(&admin, json!({"name": "plain", "devcontainer": true})).await;
    let shown = admin.get(&format!("/api/v1/templates/{refusing}")).await;
    assert_eq!(shown.body["devcontainer_run_options"], false, "{shown:?}");
    let url = json!({"url": git.url("runopts.git")});
    let applied = create(&admin, "applied", &allowing, url.clone()).await;
    let ignored = create(&admin, "ignored", &refusing, url).await;
    assert_eq!(applied["devcontainer_run_options"], true, "{applied}");
    assert_eq!(ignored["devcontainer_run_options"], false, "{ignored}");
    let ids: Vec<String> = [&applied, &ignored]
        .iter()
        .filter_map(|s| s["id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(ids.len(), 2);
    let (applied, ignored) = (ids[0].as_str(), ids[1].as_str());

    let mut events = Events::open(&server, &cookie).await;
    for id in [applied, ignored] {
        start(&admin, id).await;
    }

    // With the template's leave: what Hangar can apply is, the rest is listed with its reason.
    let built = wait_build(
        &admin,
        &mut events,
        applied,
        "built",
        "restarting the space",
    )
    .await;
    let status = &built["devcontainer"];
    let said_applied = lines(&status["applied"]);
    for expected in ["capAdd` SYS_PTRACE", "--cap-add` NET_ADMIN", "/scratch"] {
        assert!(said_applied.contains(expected), "{expected}: {built}");
    }
    let said_ignored = lines(&status["ignored"]);
    for expected in [
        "target=/host-etc,type=bind\": Hangar never mounts the host's files into a space",
        "`runArgs` `--network=host`: a space stays on Hangar's network",
    ] {
        assert!(said_ignored.contains(expected), "{expected}: {built}");
    }
    assert!(!said_ignored.contains("SYS_PTRACE"), "{built}");
    until_in_space(applied, "test \"$RUNOPTS\" = read").await;
    assert!(has_capability(applied, CAP_SYS_PTRACE)
        .await
        .is_ok_and(|has| has));
    assert!(has_capability(applied, CAP_NET_ADMIN)
        .await
        .is_ok_and(|has| has));
    // The tmpfs, at the cap of a space without a memory limit (1 GiB); no bind mount.
    let (ok, mounts) = in_space(applied, "grep ' /scratch ' /proc/mounts").await;
    assert!(ok, "{mounts}");
    assert!(mounts.starts_with("tmpfs /scratch tmpfs"), "{mounts}");
    assert!(mounts.contains("size=1048576k"), "{mounts}");
    let (ok, said) = in_space(applied, "! test -e /host-etc && touch /scratch/x").await;
    assert!(ok, "{said}");
    let mode = network_mode(applied).await;
    assert!(
        mode.as_deref().is_ok_and(|m| !m.is_empty() && m != "host"),
        "{mode:?}"
    );

    // Without it: nothing applied, every run option listed, saying the template does not.
    let built = wait_build(
        &admin,
        &mut events,
        ignored,
        "built",
        "restarting the space",
    )
    .await;
    let status = &built["devcontainer"];
    assert_eq!(status["applied"], json!([]), "{built}");
    let listed = lines(&status["ignored"]);
    for key in ["`capAdd`", "`mounts`", "`runArgs`"] {
        assert!(
            listed.lines().any(|line| line.starts_with(key)
                && line.contains(
                    "ask an admin for a template that lets devcontainer.json set run options"
                )),
            "{key}: {built}"
        );
    }
    until_in_space(ignored, "test \"$RUNOPTS\" = read").await;
    assert!(has_capability(ignored, CAP_SYS_PTRACE)
        .await
        .is_ok_and(|has| !has));
    assert!(has_capability(ignored, CAP_NET_ADMIN)
        .await
        .is_ok_and(|has| !has));
    let (ok, said) = in_space(ignored, "! grep ' /scratch ' /proc/mounts").await;
    assert!(ok, "{said}");

    for id in [applied, ignored] {
        let deleted = admin.delete(&format!("/api/v1/spaces/{id}")).await;
        assert!(
            deleted.status == 202 || deleted.status == 204,
            "{deleted:?}"
        );
    }
}
