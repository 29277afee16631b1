//! Fault drills that disturb the whole Docker engine or kill Hangar itself, so they run one at
//! a time, in a test binary of their own (cargo runs test binaries one after another), on a
//! Docker engine of their own (`scripts/drill-engine.sh`), since one of them stops and
//! restarts the engine: kill -9 of Hangar during starting and during stopping, the Docker
//! daemon going away and coming back, orphan removal, and two installations on one engine.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "api/support.rs"]
#[allow(dead_code)]
mod support;
#[path = "api/ws.rs"]
#[allow(dead_code)]
mod ws;

use std::time::{Duration, Instant};

use serde_json::json;
use support::{admin, docker, Client, Process, TempDb, TestServer, ADMIN_PASSWORD};
use tokio::sync::Mutex;

static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

/// Takes the drills' turn, on the drills' own Docker engine (started when it does not answer).
async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    let turn = ONE_AT_A_TIME.lock().await;
    support::use_docker_host(drill_engine().await);
    turn
}

/// Starts the drills' Docker engine if it does not answer; returns its DOCKER_HOST.
async fn drill_engine() -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/drill-engine.sh");
    let out = tokio::process::Command::new("bash")
        .arg(script)
        .stderr(std::process::Stdio::inherit())
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "the drills' Docker engine did not start"
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

async fn containers_of(space_id: &str) -> Vec<String> {
    let (_, out) = docker(&[
        "ps",
        "-a",
        "--filter",
        &format!("label=io.hangar.space={space_id}"),
        "--format",
        "{{.Names}} {{.State}}",
    ])
    .await;
    out.lines().map(str::to_owned).collect()
}

#[tokio::test]
async fn kill_9_during_starting_and_stopping_then_restart_is_consistent() {
    let _serial = one_at_a_time().await;
    let db = TempDb::new();
    let hangar = Process::start(&db.url()).await;
    let admin = admin(&hangar.server).await;
    let tpl = admin
        .new_template(
            "box",
            1,
            json!([{"name": "data", "mount_path": "/data", "size_gib": 1}]),
        )
        .await;
    let id = admin
        .post(
            "/api/v1/spaces",
            json!({"name": "crashy", "template_id": tpl}),
        )
        .await
        .id();

    // Crash right after the start was recorded.
    assert_eq!(
        admin
            .post_empty(&format!("/api/v1/spaces/{id}/start"))
            .await
            .body["state"],
        "starting"
    );
    hangar.kill_9().await;
    let hangar = Process::start(&db.url()).await;
    let admin = Client::signed_in(&hangar.server, "admin", ADMIN_PASSWORD).await;
    admin.wait_for_state(&id, "running").await;
    assert_eq!(containers_of(&id).await, [format!("hangar-{id} running")]);

    // Crash right after the stop was recorded.
    assert_eq!(
        admin
            .post_empty(&format!("/api/v1/spaces/{id}/stop"))
            .await
            .body["state"],
        "stopping"
    );
    hangar.kill_9().await;
    let hangar = Process::start(&db.url()).await;
    let admin = Client::signed_in(&hangar.server, "admin", ADMIN_PASSWORD).await;
    admin.wait_for_state(&id, "stopped").await;
    assert_eq!(containers_of(&id).await, Vec::<String>::new());
    assert!(
        docker(&["volume", "inspect", &format!("hangar-{id}-data")])
            .await
            .0,
        "the volume survives"
    );
    let orphans = admin.get("/api/v1/admin/orphans").await;
    assert!(!orphans.body.to_string().contains(&id), "{orphans:?}");

    hangar.server.cleanup().await;
    hangar.kill_9().await;
}

/// Stops the drills' dockerd the way an operator would.
async fn stop_dockerd() {
    let pid = std::fs::read_to_string("/var/run/hangar-drill-docker.pid").unwrap_or_default();
    let pid = pid.trim().to_owned();
    assert!(
        !pid.is_empty(),
        "this drill needs the engine that scripts/drill-engine.sh starts"
    );
    tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while docker(&["info"]).await.0 {
        assert!(Instant::now() < deadline, "dockerd did not stop");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // It stops answering before it has finished: the drill engine's script would find it
    // still alive and not start another.
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(Instant::now() < deadline, "dockerd did not exit");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn docker_going_away_is_waited_out_and_spaces_recover() {
    let _serial = one_at_a_time().await;
    let db = TempDb::new();
    let hangar = Process::start(&db.url()).await;
    let admin = admin(&hangar.server).await;
    let tpl = admin.new_template("box", 1, json!([])).await;
    let id = admin
        .post(
            "/api/v1/spaces",
            json!({"name": "steady", "template_id": tpl}),
        )
        .await
        .id();
    admin
        .post_empty(&format!("/api/v1/spaces/{id}/start"))
        .await;
    admin.wait_for_state(&id, "running").await;

    stop_dockerd().await;
    let ready = admin.get("/readyz").await;
    assert_eq!(ready.status, 503, "{ready:?}");
    assert!(
        ready.body["docker"]
            .as_str()
            .unwrap()
            .contains("unreachable"),
        "{ready:?}"
    );
    // Several reconciler passes while Docker is away: nothing is concluded from not seeing it.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        admin.get(&format!("/api/v1/spaces/{id}")).await.body["state"],
        "running"
    );

    drill_engine().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while admin.get("/readyz").await.status != 200 {
        assert!(Instant::now() < deadline, "never ready again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The daemon's restart stopped the container: the space says so, and starts again.
    let stopped = admin.wait_for_state(&id, "stopped").await;
    assert!(
        stopped["last_error"]
            .as_str()
            .unwrap()
            .contains("stopped on its own"),
        "{stopped}"
    );
    admin
        .post_empty(&format!("/api/v1/spaces/{id}/start"))
        .await;
    admin.wait_for_state(&id, "running").await;

    hangar.server.cleanup().await;
    hangar.kill_9().await;
}

/// Creates a volume with these labels; returns its name.
async fn labelled_volume(labels: &[String]) -> String {
    let name = format!("hangar-drill-{}", uuid::Uuid::new_v4().simple());
    let mut args = vec!["volume".to_owned(), "create".to_owned()];
    for label in labels {
        args.extend(["--label".to_owned(), label.clone()]);
    }
    args.push(name.clone());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert!(docker(&args).await.0);
    name
}

async fn exists(kind: &str, name: &str) -> bool {
    docker(&[kind, "inspect", name]).await.0
}

fn names(objects: &serde_json::Value) -> Vec<String> {
    objects
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn orphans_are_listed_and_removed_only_by_an_admin() {
    let _serial = one_at_a_time().await;
    let db = TempDb::new();
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    let (_, ann) = admin.new_member(&server, "ann", json!({})).await;
    let tpl = admin
        .new_template(
            "box",
            0,
            json!([{"name": "keep", "mount_path": "/keep", "size_gib": 1}]),
        )
        .await;
    let live = admin
        .post(
            "/api/v1/spaces",
            json!({"name": "live", "template_id": tpl}),
        )
        .await
        .id();
    let installation = docker(&[
        "volume",
        "inspect",
        "-f",
        "{{index .Labels \"io.hangar.installation\"}}",
        &format!("hangar-{live}-keep"),
    ])
    .await
    .1;
    assert_eq!(installation.len(), 32, "volumes carry the installation id");
    let ghost = |space: &str| {
        vec![
            "io.hangar.managed=true".to_owned(),
            format!("io.hangar.space={space}"),
        ]
    };
    // Ours, of a space nobody knows: an orphan.
    let mut mine = ghost("ghost-space");
    mine.push(format!("io.hangar.installation={installation}"));
    let orphan = labelled_volume(&mine).await;
    // Another installation's: never seen, never removed.
    let mut theirs = ghost("their-space");
    theirs.push("io.hangar.installation=another-installation".to_owned());
    let foreign = labelled_volume(&theirs).await;
    // No installation label (made before installations had ids): adopted when its space is
    // known here, else listed apart and removed only by name.
    let adopted = labelled_volume(&ghost(&live)).await;
    let unlabelled = labelled_volume(&ghost("old-space")).await;

    assert_eq!(ann.get("/api/v1/admin/orphans").await.status, 403);
    assert_eq!(ann.delete("/api/v1/admin/orphans").await.status, 403);
    assert_eq!(
        ann.delete(&format!("/api/v1/admin/unlabelled/{unlabelled}"))
            .await
            .status,
        403
    );
    let listed = admin.get("/api/v1/admin/orphans").await;
    assert_eq!(listed.status, 200, "{listed:?}");
    let orphans = names(&listed.body["orphans"]);
    let apart = names(&listed.body["unlabelled"]);
    assert!(orphans.contains(&orphan), "{listed:?}");
    assert!(apart.contains(&unlabelled), "{listed:?}");
    for name in [&foreign, &adopted] {
        assert!(
            !orphans.contains(name) && !apart.contains(name),
            "{name}: {listed:?}"
        );
    }
    assert!(
        !orphans.iter().chain(&apart).any(|n| n.contains(&live)),
        "{listed:?}"
    );
    assert!(
        !orphans
            .iter()
            .chain(&apart)
            .any(|n| n.starts_with("hangar-spaces")),
        "the shared spaces network is nobody's orphan: {listed:?}"
    );
    // Listing removes nothing.
    assert!(exists("volume", &orphan).await);

    let removed = admin.delete("/api/v1/admin/orphans").await;
    assert_eq!(removed.status, 200, "{removed:?}");
    assert_eq!(names(&removed.body), vec![orphan.clone()]);
    assert!(!exists("volume", &orphan).await);
    for kept in [&foreign, &adopted, &unlabelled] {
        assert!(exists("volume", kept).await, "{kept} was removed");
    }
    assert!(exists("volume", &format!("hangar-{live}-keep")).await);

    // The admin names an unlabelled object: that one goes, and only that one.
    let gone = admin
        .delete(&format!("/api/v1/admin/unlabelled/{unlabelled}"))
        .await;
    assert_eq!(gone.status, 200, "{gone:?}");
    assert!(!exists("volume", &unlabelled).await);
    assert_eq!(
        admin
            .delete(&format!("/api/v1/admin/unlabelled/{foreign}"))
            .await
            .status,
        404,
        "another installation's object cannot be named"
    );
    assert_eq!(
        admin
            .delete(&format!("/api/v1/admin/unlabelled/{adopted}"))
            .await
            .status,
        404,
        "an adopted object belongs to its space"
    );
    assert!(exists("volume", &foreign).await && exists("volume", &adopted).await);
    docker(&["volume", "rm", &foreign, &adopted]).await;
    server.stop().await;
}

/// A running space with a file in its volume, on `hangar`.
async fn space_with_file(hangar: &Process, name: &str, content: &str) -> String {
    let admin = admin(&hangar.server).await;
    let tpl = admin
        .new_template(
            &format!("tpl-{name}"),
            0,
            json!([{"name": "data", "mount_path": "/data", "size_gib": 1}]),
        )
        .await;
    let id = admin
        .post("/api/v1/spaces", json!({"name": name, "template_id": tpl}))
        .await
        .id();
    admin
        .post_empty(&format!("/api/v1/spaces/{id}/start"))
        .await;
    admin.wait_for_state(&id, "running").await;
    let container = format!("hangar-{id}");
    assert!(
        docker(&[
            "exec",
            &container,
            "sh",
            "-c",
            &format!("echo {content} > /data/file")
        ])
        .await
        .0
    );
    id
}

async fn running_with_file(id: &str, content: &str) -> bool {
    let container = format!("hangar-{id}");
    let state = docker(&["inspect", "-f", "{{.State.Running}}", &container]).await;
    let file = docker(&["exec", &container, "cat", "/data/file"]).await;
    state == (true, "true".into()) && file == (true, content.into())
}

#[tokio::test]
async fn two_installations_on_one_engine_never_touch_each_others_spaces() {
    let _serial = one_at_a_time().await;
    let (db_a, db_b) = (TempDb::new(), TempDb::new());
    let a = Process::start(&db_a.url()).await;
    let b = Process::start(&db_b.url()).await;
    let in_a = space_with_file(&a, "alpha", "kept-by-a").await;
    let in_b = space_with_file(&b, "beta", "kept-by-b").await;

    for (hangar, other_space) in [(&a, &in_b), (&b, &in_a)] {
        let admin = admin(&hangar.server).await;
        let listed = admin.get("/api/v1/admin/orphans").await;
        assert_eq!(listed.status, 200, "{listed:?}");
        assert!(
            !listed.body.to_string().contains(other_space.as_str()),
            "the other installation's objects are listed: {listed:?}"
        );
        assert_eq!(admin.delete("/api/v1/admin/orphans").await.status, 200);
    }
    // Several reconciler passes on both.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(running_with_file(&in_a, "kept-by-a").await);
    assert!(running_with_file(&in_b, "kept-by-b").await);

    // Restarting either one (a crash, then start-up recovery) leaves the other alone.
    a.kill_9().await;
    let a = Process::start(&db_a.url()).await;
    b.kill_9().await;
    let b = Process::start(&db_b.url()).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    for (hangar, own, other) in [(&a, &in_a, &in_b), (&b, &in_b, &in_a)] {
        let admin = admin(&hangar.server).await;
        assert_eq!(
            admin.get(&format!("/api/v1/spaces/{own}")).await.body["state"],
            "running"
        );
        assert_eq!(
            admin.get(&format!("/api/v1/spaces/{other}")).await.status,
            404
        );
        assert_eq!(admin.delete("/api/v1/admin/orphans").await.status, 200);
    }
    assert!(running_with_file(&in_a, "kept-by-a").await);
    assert!(running_with_file(&in_b, "kept-by-b").await);

    a.server.cleanup().await;
    assert!(running_with_file(&in_b, "kept-by-b").await);
    b.server.cleanup().await;
    a.kill_9().await;
    b.kill_9().await;
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// Runs alone, against a Hangar process of its own, so that its memory is all the server's.
#[tokio::test]
async fn a_stalled_viewer_does_not_grow_server_memory_while_another_streams() {
    let _serial = one_at_a_time().await;
    let db = TempDb::new();
    let hangar = Process::start(&db.url()).await;
    let pid = hangar.child.id().unwrap();
    let admin = admin(&hangar.server).await;
    let tpl = admin.new_template("box", 0, json!([])).await;
    let id = admin
        .post(
            "/api/v1/spaces",
            json!({"name": "stream", "template_id": tpl}),
        )
        .await
        .id();
    admin
        .post_empty(&format!("/api/v1/spaces/{id}/start"))
        .await;
    admin.wait_for_state(&id, "running").await;
    let cookie = hangar.server.login_cookie("admin", ADMIN_PASSWORD).await;
    let session = ws::session_id();
    let mut active = ws::connect(&hangar.server, &cookie, &id, &session, None)
        .await
        .unwrap();
    active.tail_only = true;
    // Attached, then never read again.
    let _stalled = ws::connect(&hangar.server, &cookie, &id, &session, None)
        .await
        .unwrap();
    active.send("echo warm-up\n").await;
    active.expect("warm-up").await;
    let before = rss_kib(pid);
    active
        .send("head -c 64000000 /dev/zero | tr '\\000' a; echo; echo streamed-$((7*6))\n")
        .await;
    let done = active
        .read_until(Duration::from_secs(120), |v| {
            String::from_utf8_lossy(&v.output).contains("streamed-42")
        })
        .await;
    assert!(done, "the active viewer did not receive everything");
    let grown_mib = rss_kib(pid).saturating_sub(before) / 1024;
    println!("server RSS grew by {grown_mib} MiB while streaming 64 MB past a stalled viewer");
    assert!(
        grown_mib < 32,
        "server memory grew by {grown_mib} MiB while a viewer was stalled"
    );
    hangar.server.cleanup().await;
    hangar.kill_9().await;
}

/// A reboot, as far as one machine can play it: Hangar dies, the Docker engine stops (and
/// with it the space), the loop devices are gone. Once both are back, the space starts on its
/// own sized volume, with its data and its size.
#[tokio::test]
async fn after_a_reboot_a_space_starts_again_on_its_sized_volume_with_its_data() {
    let _serial = one_at_a_time().await;
    let db = TempDb::new();
    let hangar = Process::start(&db.url()).await;
    let id = space_with_file(&hangar, "rebooted", "kept-over-a-reboot").await;
    hangar.kill_9().await;
    stop_dockerd().await;
    let data_dir = db.path.with_file_name("hangar-data");
    let detached = support::unmount_and_detach_loops(&data_dir);
    let gone = support::loops_under(&data_dir.canonicalize().unwrap()).is_empty();
    // The engine comes back whatever happened, for the drills after this one.
    drill_engine().await;
    assert_eq!(detached, 1);
    assert!(gone, "the loop device outlived the reboot");
    let hangar = Process::start(&db.url()).await;
    assert_eq!(
        support::loops_under(&data_dir.canonicalize().unwrap()).len(),
        1,
        "start-up attaches the disk images again"
    );
    let admin = Client::signed_in(&hangar.server, "admin", ADMIN_PASSWORD).await;
    admin.wait_for_state(&id, "stopped").await;
    admin
        .post_empty(&format!("/api/v1/spaces/{id}/start"))
        .await;
    admin.wait_for_state(&id, "running").await;
    assert!(running_with_file(&id, "kept-over-a-reboot").await);
    let (_, size) = docker(&[
        "exec",
        &format!("hangar-{id}"),
        "sh",
        "-c",
        "df -kP /data | tail -1",
    ])
    .await;
    let kib: u64 = size.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(
        (900 * 1024..=1024 * 1024).contains(&kib),
        "/data is {kib} KiB"
    );
    hangar.server.cleanup().await;
    hangar.kill_9().await;
    assert!(support::loops_under(&data_dir.canonicalize().unwrap()).is_empty());
}

/// `--allow-host-access` leaves spaces able to reach the host; without it, Hangar installs
/// the rules on the spaces network's bridge (here the drills' engine's own) at start-up and
/// a running space loses the host at once.
#[tokio::test]
async fn spaces_reach_the_host_only_when_the_operator_allows_it() {
    let _serial = one_at_a_time().await;
    let (port, server_task) = support::host_http_server("hello-at-home").await;
    let db = TempDb::new();
    let hangar = Process::start_with(&db.url(), &[("HANGAR_ALLOW_HOST_ACCESS", "true")]).await;
    let admin = admin(&hangar.server).await;
    let network = admin.get("/readyz").await.body["network"].clone();
    assert_eq!(
        network,
        "not enforced: spaces may reach the host and 169.254.0.0/16 (--allow-host-access)"
    );
    let tpl = admin.new_template("box", 0, json!([])).await;
    let id = admin.running_space("homebound", &tpl).await;
    let gateway = support::space_gateway(&id).await;
    let home = || support::http_from_space(&id, &gateway, port, "/", 3);
    assert!(
        home().await.contains("hello-at-home"),
        "allowed, yet unreachable"
    );

    hangar.kill_9().await;
    let hangar = Process::start(&db.url()).await;
    let admin = Client::signed_in(&hangar.server, "admin", ADMIN_PASSWORD).await;
    let network = admin.get("/readyz").await.body["network"].clone();
    assert!(
        network.as_str().unwrap().starts_with("enforced"),
        "{network}"
    );
    let answer = home().await;
    assert!(!answer.contains("hello-at-home"), "{answer}");
    hangar.server.cleanup().await;
    hangar.kill_9().await;
    server_task.abort();
}
