//! Fault drills that disturb the whole Docker host or kill Hangar itself, so they run one at
//! a time, in a test binary of their own (cargo runs test binaries one after another):
//! kill -9 of Hangar during starting and during stopping, the Docker daemon going away and
//! coming back, and orphan removal (which looks at every Hangar object on the host).

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
    let _serial = ONE_AT_A_TIME.lock().await;
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

/// Stops the local dockerd the way an operator would, and starts it again.
async fn restart_dockerd() {
    let pid = std::fs::read_to_string("/var/run/docker.pid").unwrap_or_default();
    let pid = pid.trim().to_owned();
    assert!(
        !pid.is_empty(),
        "this drill needs the local dockerd that scripts/docker-up.sh starts"
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
}

async fn start_dockerd() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/docker-up.sh");
    let status = tokio::process::Command::new("bash")
        .arg(script)
        .status()
        .await
        .unwrap();
    assert!(status.success(), "dockerd did not come back");
}

#[tokio::test]
async fn docker_going_away_is_waited_out_and_spaces_recover() {
    let _serial = ONE_AT_A_TIME.lock().await;
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

    restart_dockerd().await;
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

    start_dockerd().await;
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

#[tokio::test]
async fn orphans_are_listed_and_removed_only_by_an_admin() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let db = TempDb::new();
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    let (_, ann) = admin.new_member(&server, "ann", json!({})).await;
    let ghost = format!("ghost-{}", uuid::Uuid::new_v4().simple());
    let volume = format!("hangar-{ghost}-data");
    assert!(
        docker(&[
            "volume",
            "create",
            "--label",
            "io.hangar.managed=true",
            "--label",
            &format!("io.hangar.space={ghost}"),
            &volume
        ])
        .await
        .0
    );
    // A live space's volume is not an orphan.
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

    assert_eq!(ann.get("/api/v1/admin/orphans").await.status, 403);
    assert_eq!(ann.delete("/api/v1/admin/orphans").await.status, 403);
    let listed = admin.get("/api/v1/admin/orphans").await;
    assert_eq!(listed.status, 200, "{listed:?}");
    let names: Vec<&str> = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&volume.as_str()), "{names:?}");
    assert!(!names.iter().any(|n| n.contains(&live)), "{names:?}");
    // Listing removes nothing.
    assert!(docker(&["volume", "inspect", &volume]).await.0);

    let removed = admin.delete("/api/v1/admin/orphans").await;
    assert_eq!(removed.status, 200);
    assert!(!docker(&["volume", "inspect", &volume]).await.0);
    assert!(
        docker(&["volume", "inspect", &format!("hangar-{live}-keep")])
            .await
            .0
    );
    server.stop().await;
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
    let _serial = ONE_AT_A_TIME.lock().await;
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
