//! What a space can no longer do to its host (#15): fork without end, gain privileges,
//! write past its volumes' sizes, reach the host or link-local addresses; and what the
//! host tells an operator it enforces.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{
    admin, both_dbs, data_volume, docker, forwarded_get, host_http_server, http_from_space,
    in_space, loops_under, space_gateway, unmount_and_detach_loops, TestDb, TestServer, TEST_IMAGE,
};

async fn inspect(space_id: &str, format: &str) -> String {
    let (found, out) = docker(&["inspect", "-f", format, &format!("hangar-{space_id}")]).await;
    assert!(found, "no container for {space_id}");
    out
}

/// Linux capability numbers (linux/capability.h) of the names used here.
fn capability_mask(names: &[&str]) -> u64 {
    names
        .iter()
        .map(|name| match *name {
            "CHOWN" => 0,
            "DAC_OVERRIDE" => 1,
            "FOWNER" => 3,
            "FSETID" => 4,
            "KILL" => 5,
            "SETGID" => 6,
            "SETUID" => 7,
            "SETPCAP" => 8,
            "NET_BIND_SERVICE" => 10,
            "NET_ADMIN" => 12,
            "NET_RAW" => 13,
            "SYS_CHROOT" => 18,
            "SYS_PTRACE" => 19,
            "SYS_ADMIN" => 21,
            "MKNOD" => 27,
            "AUDIT_WRITE" => 29,
            "SETFCAP" => 31,
            other => panic!("no number for {other}"),
        })
        .fold(0, |mask, bit| mask | (1 << bit))
}

/// The effective capabilities and the no-new-privileges flag of a process in the space.
async fn rights(space_id: &str) -> (u64, bool) {
    let status = in_space(space_id, "cat /proc/self/status").await.1;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap()
            .trim()
            .to_owned()
    };
    (
        u64::from_str_radix(&field("CapEff:"), 16).unwrap(),
        field("NoNewPrivs:") == "1",
    )
}

both_dbs!(a_space_has_a_process_limit_no_new_privileges_and_fewer_capabilities);
async fn a_space_has_a_process_limit_no_new_privileges_and_fewer_capabilities(db: TestDb) {
    let server = TestServer::start(&db, &["--pids-per-cu", "64"]).await;
    let admin = admin(&server).await;
    let (_, ann) = admin.new_member(&server, "ann", json!({})).await;
    let two_cu = admin.new_template("two", 2, json!([])).await;
    let zero_cu = admin.new_template("zero", 0, json!([])).await;
    let id = ann.running_space("box", &two_cu).await;
    assert_eq!(
        inspect(
            &id,
            "{{.HostConfig.PidsLimit}} {{json .HostConfig.SecurityOpt}} {{json .HostConfig.CapDrop}}"
        )
        .await,
        r#"128 ["no-new-privileges:true"] ["ALL"]"#
    );
    let (capabilities, no_new_privileges) = rights(&id).await;
    assert!(no_new_privileges);
    assert_eq!(
        capabilities,
        capability_mask(&hangar::runtime::SPACE_CAPABILITIES),
        "{capabilities:x}"
    );
    for dropped in [
        "MKNOD",
        "SETPCAP",
        "SETFCAP",
        "SYS_ADMIN",
        "NET_ADMIN",
        "NET_RAW",
    ] {
        assert_eq!(capabilities & capability_mask(&[dropped]), 0, "{dropped}");
    }
    // No raw sockets (busybox's ping needs one)...
    let (raw, out) = in_space(&id, "ping -c 1 -W 2 127.0.0.1").await;
    assert!(!raw, "a raw socket opened without NET_RAW: {out}");
    // ...what a dev box does still works: chown, ports below 1024 (ping: see below).
    assert!(in_space(&id, "touch /tmp/f && chown nobody /tmp/f").await.0);
    let (listened, out) = in_space(&id, "timeout 1 nc -l -p 80; [ $? -ne 1 ]").await;
    assert!(listened, "binding port 80: {out}");
    // What it does not need fails.
    let (made, out) = in_space(&id, "mknod /tmp/null c 1 3").await;
    assert!(!made, "mknod worked: {out}");
    let (mounted, _) = in_space(&id, "mkdir -p /tmp/m && mount -t tmpfs none /tmp/m").await;
    assert!(!mounted, "a plain space mounted a filesystem");

    // A fork bomb stops at the space's limit (2 CU x 64), and the space lives on.
    let (_, bomb) = in_space(
        &id,
        "i=0; while [ $i -lt 200 ]; do sleep 2 & i=$((i+1)); done; wait",
    )
    .await;
    assert!(bomb.contains("can't fork"), "{bomb}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(in_space(&id, "echo alive").await.1, "alive");

    // A space of 0 CU (no CPU or memory limit) still has one unit's process limit.
    let zero = ann.running_space("zero", &zero_cu).await;
    assert_eq!(inspect(&zero, "{{.HostConfig.PidsLimit}}").await, "64");
    server.stop().await;
}

/// Runtime and templates only: this runs on SQLite alone.
#[tokio::test]
async fn ping_works_without_raw_sockets_and_a_template_can_give_them() {
    let db = TestDb::sqlite();
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    // The default image's ping, as root and as another user, uses ICMP datagram sockets.
    let debian = admin
        .post(
            "/api/v1/templates",
            json!({"name": "debian", "image": "hangar/default:bookworm", "compute_units": 0}),
        )
        .await;
    assert_eq!(debian.status, 201, "{debian:?}");
    assert_eq!(debian.body["raw_sockets"], false);
    let id = admin.running_space("debian", &debian.id()).await;
    assert_eq!(
        rights(&id).await.0 & capability_mask(&["NET_RAW"]),
        0,
        "no raw sockets by default"
    );
    for as_whom in ["sh -c ", "su -s /bin/sh nobody -c "] {
        let (pinged, out) = in_space(&id, &format!("{as_whom}'ping -c 1 -W 2 127.0.0.1'")).await;
        assert!(pinged && out.contains("1 received"), "{as_whom}: {out}");
    }
    // A template that asks for raw sockets gives them to its (new) spaces.
    let tpl = admin.new_template("raw", 0, json!([])).await;
    let changed = admin
        .patch(
            &format!("/api/v1/templates/{tpl}"),
            json!({"raw_sockets": true}),
        )
        .await;
    assert_eq!(changed.body["raw_sockets"], true, "{changed:?}");
    let raw = admin.running_space("raw", &tpl).await;
    assert_eq!(
        admin.get(&format!("/api/v1/spaces/{raw}")).await.body["raw_sockets"],
        true
    );
    let capabilities = rights(&raw).await.0;
    assert_eq!(
        capabilities,
        capability_mask(&hangar::runtime::SPACE_CAPABILITIES) | capability_mask(&["NET_RAW"]),
        "{capabilities:x}"
    );
    let (pinged, out) = in_space(&raw, "ping -c 1 -W 2 127.0.0.1").await;
    assert!(pinged, "busybox's ping with a raw socket: {out}");
    server.stop().await;
}

/// Serves `page` on port 8080 with busybox's httpd, then idles.
fn serving(page: &str) -> serde_json::Value {
    json!([
        "/bin/sh",
        "-c",
        format!(
            "mkdir -p /www && echo {page} > /www/index.html && httpd -p 8080 -h /www && \
         trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"
        )
    ])
}

/// Runtime only: this runs on SQLite alone. A space with raw sockets and NET_ADMIN (a
/// privileged template: the strongest neighbour) tries every way to take the traffic Hangar
/// sends to a neighbour on the shared bridge; Hangar's forward still reaches the neighbour.
#[tokio::test]
async fn a_space_with_raw_sockets_cannot_take_a_neighbours_traffic() {
    let db = TestDb::sqlite();
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    let (_, ann) = admin.new_member(&server, "ann", json!({})).await;
    let (_, mallory) = admin.new_member(&server, "mallory", json!({})).await;
    let victim_tpl = admin
        .post(
            "/api/v1/templates",
            json!({"name": "web", "image": TEST_IMAGE, "compute_units": 0,
                   "features": ["port_forwarding"], "command": serving("victim-page")}),
        )
        .await
        .id();
    let spoofer_tpl = admin
        .post(
            "/api/v1/templates",
            json!({"name": "spoof", "image": TEST_IMAGE, "compute_units": 0,
                   "privileged": true, "raw_sockets": true, "command": serving("spoofer-page")}),
        )
        .await
        .id();
    let victim = ann.running_space("web", &victim_tpl).await;
    let spoofer = mallory.running_space("spoof", &spoofer_tpl).await;
    let cookie = server.login_cookie("ann", "member-password").await;
    let (_, endpoint) = docker(&[
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{.MacAddress}}{{end}}",
        &format!("hangar-{victim}"),
    ])
    .await;
    let (address, mac) = endpoint.split_once(' ').unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !forwarded_get(&server, &victim, 8080, &cookie)
        .await
        .contains("victim-page")
    {
        assert!(
            Instant::now() < deadline,
            "the victim's page never answered"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Each step is an attack (or a probe) by the spoofer, what its own output shows, and why
    // Hangar's forward still reaches the victim afterwards.
    let steps = [
        (
            // The host's neighbour entry for the victim is pinned: no ARP changes it.
            "it takes the victim's address and announces it (gratuitous ARP)",
            format!("ip addr add {address}/32 dev eth0 && arping -U -c 2 -I eth0 -s {address} {address}"),
            "Sent 2 probe",
        ),
        (
            // The bridge's entry for the victim's MAC is sticky on the victim's port: frames
            // from the spoofer with that MAC do not move it.
            "it takes the victim's MAC too",
            format!("ip link set eth0 address {mac} && arping -U -c 2 -I eth0 -s {address} {address}"),
            "Sent 2 probe",
        ),
        (
            // Spaces' ports exchange no frames: the victim never hears the spoofer, so it
            // cannot be told the gateway is the spoofer (and send its replies there). Probed
            // with a plain ARP request: a broadcast claim of the gateway would also reach
            // other containers on this engine's bridge.
            "it asks the victim's MAC by ARP",
            format!("ip link set eth0 address 02:00:00:00:00:99 && ip addr del {address}/32 dev eth0 && arping -c 2 -w 3 -I eth0 {address}"),
            "Received 0 response",
        ),
    ];
    for (what, script, shown) in steps {
        let (_, said) = in_space(&spoofer, &format!("{script}; true")).await;
        assert!(said.contains(shown), "{what}: {said}");
        let page = forwarded_get(&server, &victim, 8080, &cookie).await;
        assert!(page.contains("victim-page"), "after {what}: {page}");
    }
    server.stop().await;
}

both_dbs!(only_an_admin_makes_a_privileged_template_whose_spaces_get_docker_in_docker_rights);
async fn only_an_admin_makes_a_privileged_template_whose_spaces_get_docker_in_docker_rights(
    db: TestDb,
) {
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    let (_, ann) = admin.new_member(&server, "ann", json!({})).await;
    let template = json!({"name": "dind", "image": crate::support::TEST_IMAGE,
        "compute_units": 1, "privileged": true});
    let refused = ann.post("/api/v1/templates", template.clone()).await;
    assert_eq!(refused.status, 403, "{refused:?}");
    let created = admin.post("/api/v1/templates", template).await;
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(created.body["privileged"], true);
    let dind = created.id();
    let changed = ann
        .patch(
            &format!("/api/v1/templates/{dind}"),
            json!({"privileged": false}),
        )
        .await;
    assert_eq!(changed.status, 403, "{changed:?}");

    let id = ann.running_space("dind", &dind).await;
    assert_eq!(
        ann.get(&format!("/api/v1/spaces/{id}")).await.body["privileged"],
        true
    );
    let security = inspect(&id, "{{json .HostConfig.SecurityOpt}}").await;
    assert!(security.contains("seccomp=unconfined"), "{security}");
    let (capabilities, no_new_privileges) = rights(&id).await;
    assert!(
        !no_new_privileges,
        "setuid works in a Docker-in-Docker space"
    );
    let needed = capability_mask(&hangar::runtime::DOCKER_IN_DOCKER_CAPABILITIES);
    assert_eq!(capabilities & needed, needed, "{capabilities:x}");
    let (mounted, out) = in_space(&id, "mkdir -p /tmp/m && mount -t tmpfs none /tmp/m").await;
    assert!(mounted, "{out}");
    assert_ne!(
        inspect(&id, "{{.HostConfig.PidsLimit}}").await,
        "0",
        "still a process limit"
    );

    // The flag is a snapshot: turning it off changes new spaces only.
    let off = admin
        .patch(
            &format!("/api/v1/templates/{dind}"),
            json!({"privileged": false}),
        )
        .await;
    assert_eq!(off.body["privileged"], false, "{off:?}");
    assert_eq!(
        ann.get(&format!("/api/v1/spaces/{id}")).await.body["privileged"],
        true
    );
    let plain = ann.running_space("plain", &dind).await;
    assert!(
        rights(&plain).await.1,
        "a new space has no-new-privileges again"
    );
    server.stop().await;
}

/// `df`'s size of a mounted folder in a space, in KiB.
async fn size_kib(space_id: &str, path: &str) -> u64 {
    let out = in_space(space_id, &format!("df -kP {path} | tail -1"))
        .await
        .1;
    out.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn used_bytes(storage: &serde_json::Value) -> i64 {
    storage[0]["used_bytes"].as_i64().unwrap()
}

/// Runtime only: the database plays no part, so this (1 GiB written) runs on SQLite alone.
#[tokio::test]
async fn a_write_past_a_volumes_size_fails_with_enospc_in_the_space_and_loses_nothing_else() {
    let db = TestDb::sqlite();
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    let (_, ann) = admin.new_member(&server, "ann", json!({})).await;
    let tpl = admin.new_template("small", 0, data_volume()).await;
    let full = ann.running_space("full", &tpl).await;
    let other = ann.running_space("other", &tpl).await;
    // The space sees its volume's own size, not the host's disk.
    let size = size_kib(&full, "/data").await;
    assert!(
        (900 * 1024..=1024 * 1024).contains(&size),
        "/data is {size} KiB"
    );
    assert!(in_space(&full, "echo precious > /data/keep").await.0);

    let (wrote, out) = in_space(&full, "dd if=/dev/zero of=/data/fill bs=1M count=1100").await;
    assert!(!wrote, "1100 MiB fit in a 1 GiB volume: {out}");
    assert!(out.contains("No space left on device"), "{out}");
    // Nothing else is lost: the earlier file, the space, another space's volume.
    assert_eq!(in_space(&full, "cat /data/keep").await.1, "precious");
    assert_eq!(
        in_space(&other, "echo fine > /data/x && cat /data/x")
            .await
            .1,
        "fine"
    );
    assert_eq!(
        ann.get(&format!("/api/v1/spaces/{full}")).await.body["state"],
        "running"
    );

    // Used / size, on the space page's endpoint (measured now) and in the quota report.
    let storage = ann.get(&format!("/api/v1/spaces/{full}/storage")).await;
    assert_eq!(storage.status, 200, "{storage:?}");
    assert_eq!(storage.body[0]["name"], "data");
    assert_eq!(storage.body[0]["size_gib"], 1);
    assert_eq!(storage.body[0]["enforced"], true);
    let used = used_bytes(&storage.body);
    assert!(used > 900 << 20 && used <= 1 << 30, "{storage:?}");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let quota = ann.get("/api/v1/me/quota").await;
        let reported = quota.body["storage_used_bytes"].as_i64().unwrap_or(0);
        if reported >= used {
            assert_eq!(quota.body["usage"]["storage_units"], 2);
            break;
        }
        assert!(Instant::now() < deadline, "{quota:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let everyone = admin.get("/api/v1/users/quotas").await;
    let ann_report = everyone
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["report"]["usage"]["storage_units"] == 2)
        .unwrap();
    assert!(ann_report["report"]["storage_used_bytes"].as_i64().unwrap() >= used);

    assert!(in_space(&full, "rm /data/fill").await.0);
    let after = ann.get(&format!("/api/v1/spaces/{full}/storage")).await;
    assert!(used_bytes(&after.body) < 16 << 20, "{after:?}");

    // Deleting the spaces removes their disk images and loop devices.
    let data_dir = db.data_dir();
    assert_eq!(loops_under(&data_dir.canonicalize().unwrap()).len(), 2);
    server.stop().await;
    assert_eq!(
        loops_under(&data_dir.canonicalize().unwrap()),
        Vec::<String>::new()
    );
    assert_eq!(images_under(&data_dir), Vec::<String>::new());
}

/// The disk images under a data dir.
fn images_under(data_dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut folders = vec![data_dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(folder).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "img") {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

both_dbs!(a_sized_volume_comes_back_after_its_loop_device_is_gone_as_after_a_reboot);
async fn a_sized_volume_comes_back_after_its_loop_device_is_gone_as_after_a_reboot(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    let tpl = admin.new_template("box", 0, data_volume()).await;
    let id = admin.running_space("keeper", &tpl).await;
    assert!(in_space(&id, "echo survived > /data/note").await.0);
    admin.post_empty(&format!("/api/v1/spaces/{id}/stop")).await;
    admin.wait_for_state(&id, "stopped").await;

    // Gone while Hangar runs: the next start attaches it again.
    assert_eq!(unmount_and_detach_loops(&db.data_dir()), 1);
    admin
        .post_empty(&format!("/api/v1/spaces/{id}/start"))
        .await;
    admin.wait_for_state(&id, "running").await;
    assert_eq!(in_space(&id, "cat /data/note").await.1, "survived");
    admin.post_empty(&format!("/api/v1/spaces/{id}/stop")).await;
    admin.wait_for_state(&id, "stopped").await;

    // Gone while Hangar was down (a reboot): start-up attaches it again.
    server.shutdown().await;
    assert_eq!(unmount_and_detach_loops(&db.data_dir()), 1);
    let server = TestServer::start(&db, &[]).await;
    assert_eq!(
        loops_under(&db.data_dir().canonicalize().unwrap()).len(),
        1,
        "start-up attaches every disk image"
    );
    let admin = crate::support::admin(&server).await;
    admin
        .post_empty(&format!("/api/v1/spaces/{id}/start"))
        .await;
    admin.wait_for_state(&id, "running").await;
    assert_eq!(in_space(&id, "cat /data/note").await.1, "survived");
    server.stop().await;
}

both_dbs!(readyz_says_what_the_host_enforces_and_sizes_can_be_turned_off);
async fn readyz_says_what_the_host_enforces_and_sizes_can_be_turned_off(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    let ready = admin.get("/readyz").await;
    assert_eq!(ready.status, 200, "{ready:?}");
    for part in ["storage", "network", "privileges"] {
        assert!(
            ready.body[part].as_str().unwrap().starts_with("enforced"),
            "{ready:?}"
        );
    }
    server.shutdown().await;

    let server = TestServer::start(&db, &["--volume-sizes", "off"]).await;
    let admin = crate::support::admin(&server).await;
    let ready = admin.get("/readyz").await;
    assert_eq!(
        ready.status, 200,
        "not enforcing is no reason to be unready"
    );
    assert_eq!(
        ready.body["storage"],
        "not enforced: turned off (--volume-sizes off)"
    );
    let tpl = admin.new_template("box", 0, data_volume()).await;
    let id = admin.new_space("plain", &tpl).await;
    let (_, options) = docker(&[
        "volume",
        "inspect",
        "-f",
        "{{json .Options}}",
        &format!("hangar-{id}-data"),
    ])
    .await;
    assert!(!options.contains("device"), "{options}");
    let storage = admin.get(&format!("/api/v1/spaces/{id}/storage")).await;
    assert_eq!(storage.body[0]["enforced"], false, "{storage:?}");
    assert_eq!(storage.body[0]["used_bytes"], serde_json::Value::Null);
    assert_eq!(
        admin.get("/api/v1/me/quota").await.body["storage_used_bytes"],
        serde_json::Value::Null
    );
    server.stop().await;
}

/// A network namespace of the test's own standing in for a link-local service (a cloud
/// metadata server): a veth pair with 169.254.X.1 on the host's side and 169.254.X.2 inside,
/// where busybox's httpd serves `hello-link-local`. Removed when dropped.
struct LinkLocalService {
    namespace: String,
    host_side: String,
    server: std::process::Child,
    _root: tempfile::TempDir,
    address: String,
    port: u16,
}

fn ip(args: &[&str]) {
    let status = std::process::Command::new("ip")
        .args(args)
        .status()
        .unwrap();
    assert!(status.success(), "ip {}", args.join(" "));
}

impl LinkLocalService {
    fn start(subnet: u8) -> Self {
        let tag = format!("{}{subnet}", std::process::id() % 10_000);
        let namespace = format!("hgt-ll{tag}");
        let (host_side, inside) = (format!("hgtl{tag}"), format!("hgtr{tag}"));
        ip(&["netns", "add", &namespace]);
        ip(&[
            "link", "add", &host_side, "type", "veth", "peer", "name", &inside,
        ]);
        ip(&["link", "set", &inside, "netns", &namespace]);
        ip(&[
            "addr",
            "add",
            &format!("169.254.{subnet}.1/30"),
            "dev",
            &host_side,
        ]);
        ip(&["link", "set", &host_side, "up"]);
        let address = format!("169.254.{subnet}.2");
        let with_address = format!("{address}/30");
        for args in [
            ["addr", "add", with_address.as_str(), "dev", inside.as_str()].as_slice(),
            &["link", "set", inside.as_str(), "up"],
            &["link", "set", "lo", "up"],
        ] {
            let mut all = vec!["netns", "exec", namespace.as_str(), "ip"];
            all.extend_from_slice(args);
            ip(&all);
        }
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("index.html"), "hello-link-local").unwrap();
        let port = 8000 + u16::from(subnet);
        let server = std::process::Command::new("ip")
            .args(["netns", "exec", &namespace, "busybox", "httpd", "-f"])
            .arg("-p")
            .arg(format!("{address}:{port}"))
            .arg("-h")
            .arg(root.path())
            .spawn()
            .unwrap();
        LinkLocalService {
            namespace,
            host_side,
            server,
            _root: root,
            address,
            port,
        }
    }
}

impl Drop for LinkLocalService {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.host_side])
            .status();
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.namespace])
            .status();
    }
}

/// The host's IPv4 addresses other than loopback (`ip -4 -o addr`).
fn host_addresses() -> Vec<String> {
    let out = std::process::Command::new("ip")
        .args(["-4", "-o", "addr", "show"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().nth(3))
        .filter_map(|cidr| cidr.split('/').next())
        .filter(|address| !address.starts_with("127.") && !address.starts_with("169.254."))
        .map(str::to_owned)
        .collect()
}

/// Runtime only: the database plays no part, so this runs on SQLite alone.
#[tokio::test]
async fn a_space_reaches_neither_the_host_nor_link_local_addresses_but_reaches_outside() {
    let (port, host_task) = host_http_server("hello-from-the-host").await;
    let link_local = LinkLocalService::start(231);
    // Both answer from the host itself: what the space cannot reach is really there.
    let direct = reqwest::get(format!("http://127.0.0.1:{port}/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(direct, "hello-from-the-host");
    let deadline = Instant::now() + Duration::from_secs(10);
    let service = format!("http://{}:{}/", link_local.address, link_local.port);
    while reqwest::get(&service).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "the link-local service did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let db = TestDb::sqlite();
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    let tpl = admin.new_template("box", 0, json!([])).await;
    let id = admin.running_space("probe", &tpl).await;
    let mut host = host_addresses();
    host.push(space_gateway(&id).await);
    for address in &host {
        let answer = http_from_space(&id, address, port, "/", 3).await;
        assert!(
            !answer.contains("hello-from-the-host"),
            "the space reached the host at {address}:{port}: {answer}"
        );
    }
    let answer = http_from_space(&id, &link_local.address, link_local.port, "/", 3).await;
    assert!(
        !answer.contains("hello-link-local"),
        "the space reached {}: {answer}",
        link_local.address
    );
    // Outside the host (the Debian mirror) is still reachable.
    let outside = http_from_space(&id, "deb.debian.org", 80, "/debian/", 5).await;
    assert!(outside.starts_with("HTTP/1.1"), "{outside}");
    server.stop().await;
    host_task.abort();
}
