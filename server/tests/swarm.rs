//! The Swarm runtime (`--runtime swarm`, issue #18) on a real three-node Docker Swarm of
//! Docker-in-Docker nodes on this machine (`scripts/swarm-up.sh 3`): a space starts as a
//! one-replica service with its reservations, a terminal-like exec and a file round trip
//! reach a space on a worker through its node's engine, stop/start keeps a space on its node
//! with its data, a drained node refuses its space's start clearly, and racing starts never
//! exceed a node's capacity (refused ones say it is the cluster's capacity, not the quota),
//! and a node that dies turns its spaces `stopped` with the reason within 10 s; a space on a
//! worker is sampled and its OOM kills are told, from its node's engine. The containment tests
//! of one engine run here too: a write past a volume's size fails with ENOSPC (and its use is
//! measured on its node), the process limit, no-new-privileges, no node's engine and no
//! link-local address reachable; and the doors: terminal, files, SSH, the port proxy and a
//! port forward reach a space on a worker.
//! The tests take turns: they share the swarm's capacity.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "api/support.rs"]
#[allow(dead_code)]
mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use app::ids::SpaceId;
use futures_util::StreamExt;
use hangar::runtime::{ExecOutput, ExecRequest};
use serde_json::json;
use support::{admin, docker, Client, TempDb, TestServer, TEST_IMAGE};
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

/// CPUs each node of the test swarm has (`scripts/swarm-up.sh` starts them with `--cpus 2`).
const CPUS_PER_NODE: usize = 2;
const NODES: usize = 3;

/// Takes the turn, with the swarm up and no service left by an earlier test (the swarm is
/// the tests' own: `scripts/swarm-up.sh` made it).
async fn on_the_swarm() -> tokio::sync::MutexGuard<'static, ()> {
    let turn = ONE_AT_A_TIME.lock().await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/swarm-up.sh");
    let out = tokio::process::Command::new("bash")
        .args([script, &NODES.to_string()])
        .stderr(std::process::Stdio::inherit())
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "the test swarm did not start");
    support::use_docker_host(String::from_utf8(out.stdout).unwrap().trim().to_owned());
    let (_, leftovers) = docker(&["service", "ls", "-q"]).await;
    for service in leftovers.split_whitespace() {
        docker(&["service", "rm", service]).await;
    }
    // Earlier tests' spaces' networks (best effort: one still in use goes next time).
    let (_, networks) = docker(&[
        "network",
        "ls",
        "-q",
        "--filter",
        "label=io.hangar.managed=true",
    ])
    .await;
    for network in networks.split_whitespace() {
        docker(&["network", "rm", network]).await;
    }
    let (_, nodes) = docker(&["node", "ls", "-q"]).await;
    for node in nodes.split_whitespace() {
        docker(&["node", "update", "--availability", "active", node]).await;
    }
    // A node restarted by an earlier test takes a few seconds to be ready again.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, states) = docker(&["node", "ls", "--format", "{{.Status}}"]).await;
        if states.lines().count() == NODES && states.lines().all(|s| s == "Ready") {
            break;
        }
        assert!(Instant::now() < deadline, "swarm nodes not ready: {states}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    turn
}

/// The docker CLI on this machine's own engine (where the swarm's node containers run).
async fn host_docker(args: &[&str]) -> (bool, String) {
    let out = tokio::process::Command::new("docker")
        .env_remove("DOCKER_HOST")
        .args(args)
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
    )
}

async fn swarm_server(db: &TempDb) -> TestServer {
    TestServer::start(db, &["--runtime", "swarm", "--path-apps", "true"]).await
}

/// A template of `cu` compute units with a volume at /data, terminal and file transfer on.
async fn template(admin: &Client, name: &str, cu: i64) -> String {
    let created = admin
        .post(
            "/api/v1/templates",
            json!({
                "name": name, "image": TEST_IMAGE, "compute_units": cu,
                "features": ["terminal", "file_transfer"],
                "volumes": [{"name": "data", "mount_path": "/data", "size_gib": 1}],
            }),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    created.id()
}

async fn start(owner: &Client, id: &str) {
    let started = owner
        .post_empty(&format!("/api/v1/spaces/{id}/start"))
        .await;
    assert_eq!(started.status, 202, "{started:?}");
}

/// Waits until the space is `running` or `stopped` (60 s at most) and returns it.
async fn settled(owner: &Client, id: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let space = owner.get(&format!("/api/v1/spaces/{id}")).await;
        if matches!(space.body["state"].as_str(), Some("running" | "stopped")) {
            return space.body;
        }
        assert!(Instant::now() < deadline, "space never settled: {space:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Starts a space of `template` for each name (Swarm spreads them, one a node) and returns one
/// that runs on a worker.
async fn a_space_on_a_worker(admin: &Client, template: &str, names: [&str; 3]) -> String {
    let mut ids = Vec::new();
    for name in names {
        let id = admin.new_space(name, template).await;
        start(admin, &id).await;
        ids.push(id);
    }
    let mut on_worker = None;
    for id in &ids {
        assert_eq!(settled(admin, id).await["state"], "running");
        if node_of(id).await != "hangar-swarm-node1" {
            on_worker = Some(id.clone());
        }
    }
    on_worker.expect("no space landed on a worker")
}

/// The node the space's running task is on.
async fn node_of(space_id: &str) -> String {
    let (ok, out) = docker(&[
        "service",
        "ps",
        "--filter",
        "desired-state=running",
        "--format",
        "{{.Node}}",
        &format!("hangar-{space_id}"),
    ])
    .await;
    assert!(ok, "{out}");
    out.lines().next().unwrap_or_default().to_owned()
}

/// Runs `script` in the space through the runtime's exec (as the terminal and SSH do) with a
/// terminal: types it, then `exit`; returns what the terminal showed.
async fn through_a_terminal(server: &TestServer, space_id: &str, script: &str) -> String {
    let runtime = server.services.as_ref().unwrap().runtime.clone();
    let id: SpaceId = space_id.parse().unwrap();
    let mut exec = runtime
        .exec(
            &id,
            ExecRequest {
                cmd: vec!["/bin/sh".into()],
                tty: true,
                size: Some((120, 40)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    exec.input
        .write_all(format!("{script}\nexit\n").as_bytes())
        .await
        .unwrap();
    let mut shown = Vec::new();
    let reading = async {
        while let Some(piece) = exec.output.next().await {
            match piece.unwrap() {
                ExecOutput::Stdout(b) | ExecOutput::Stderr(b) => shown.extend_from_slice(&b),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), reading)
        .await
        .expect("the shell did not exit");
    String::from_utf8_lossy(&shown).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_space_is_a_one_replica_service_with_its_reservations_and_labels() {
    let _turn = on_the_swarm().await;
    let db = TempDb::new();
    let server = swarm_server(&db).await;
    let admin = admin(&server).await;
    let template = template(&admin, "two", 2).await;
    let id = admin.new_space("first", &template).await;
    start(&admin, &id).await;
    let space = settled(&admin, &id).await;
    assert_eq!(space["state"], "running", "{space}");

    let (ok, spec) = docker(&[
        "service",
        "inspect",
        "--format",
        "{{json .Spec}}",
        &format!("hangar-{id}"),
    ])
    .await;
    assert!(ok, "{spec}");
    let spec: serde_json::Value = serde_json::from_str(&spec).unwrap();
    assert_eq!(spec["Mode"]["Replicated"]["Replicas"], 1);
    let resources = &spec["TaskTemplate"]["Resources"];
    assert_eq!(resources["Reservations"]["NanoCPUs"], 2_000_000_000u64);
    assert_eq!(resources["Limits"]["NanoCPUs"], 2_000_000_000u64);
    assert_eq!(resources["Limits"]["MemoryBytes"], 2u64 << 30);
    assert_eq!(spec["TaskTemplate"]["RestartPolicy"]["Condition"], "none");
    assert_eq!(spec["Labels"]["io.hangar.space"], id.as_str());
    assert!(spec["Labels"]["io.hangar.installation"].is_string());
    // Its volumes were made on its node: the service is pinned there now.
    let node = node_of(&id).await;
    let (_, node_id) = docker(&["node", "inspect", "--format", "{{.ID}}", &node]).await;
    assert_eq!(spec["Labels"]["io.hangar.node"], node_id.as_str());
    // Pinning it (a label of the service) did not restart its task.
    let (_, tasks) = docker(&["service", "ps", "-q", &format!("hangar-{id}")]).await;
    assert_eq!(tasks.lines().count(), 1, "one task ever: {tasks}");
    // The space has an attachable overlay of its own.
    let (_, network) = docker(&[
        "network",
        "ls",
        "--filter",
        &format!("label=io.hangar.space={id}"),
        "--format",
        "{{.Name}} {{.Driver}}",
    ])
    .await;
    assert_eq!(network, format!("hangar-{id}-net overlay"));
    let (_, attachable) = docker(&[
        "network",
        "inspect",
        "-f",
        "{{.Attachable}}",
        &format!("hangar-{id}-net"),
    ])
    .await;
    assert_eq!(attachable, "true");
    server.stop().await;
    let (_, left) = docker(&["service", "ls", "-q"]).await;
    assert_eq!(left, "", "deleting the space removes its service");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_terminal_and_a_file_round_trip_reach_a_space_on_a_worker() {
    let _turn = on_the_swarm().await;
    let db = TempDb::new();
    let server = swarm_server(&db).await;
    let admin = admin(&server).await;
    let template = template(&admin, "one", 1).await;
    let id = a_space_on_a_worker(&admin, &template, ["sa", "sb", "sc"]).await;

    let shown = through_a_terminal(&server, &id, "echo answer-$((6*7)) $(hostname)").await;
    assert!(shown.contains("answer-42"), "{shown}");

    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let up = admin
        .request(
            reqwest::Method::PUT,
            &format!("/api/v1/spaces/{id}/files?path=/data/blob.bin"),
        )
        .body(payload.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(up.status(), 201, "{:?}", up.text().await);
    let down = admin
        .request(
            reqwest::Method::GET,
            &format!("/api/v1/spaces/{id}/files?path=/data/blob.bin"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(down.status(), 200);
    assert_eq!(down.bytes().await.unwrap().to_vec(), payload);
    // And the file really is in the container on that worker.
    let shown = through_a_terminal(&server, &id, "wc -c < /data/blob.bin").await;
    assert!(shown.contains("200000"), "{shown}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_space_on_a_worker_is_sampled_and_its_oom_kills_reach_its_owner() {
    let _turn = on_the_swarm().await;
    let db = TempDb::new();
    // One compute unit is 64 MiB here: a few hundred MiB of buffered input is over it.
    let server = TestServer::start(
        &db,
        &[
            "--runtime",
            "swarm",
            "--path-apps",
            "true",
            "--memory-mib-per-cu",
            "64",
            "--usage-interval-secs",
            "1",
        ],
    )
    .await;
    let admin = admin(&server).await;
    let template = template(&admin, "small", 1).await;
    let id = a_space_on_a_worker(&admin, &template, ["ua", "ub", "uc"]).await;

    // Its use is read from its node's engine.
    let deadline = Instant::now() + Duration::from_secs(30);
    let usage = loop {
        let usage = admin
            .get(&format!("/api/v1/spaces/{id}/usage?range=hour"))
            .await;
        assert_eq!(usage.status, 200, "{usage:?}");
        if usage.body["points"]
            .as_array()
            .is_some_and(|p| !p.is_empty())
        {
            break usage.body;
        }
        assert!(Instant::now() < deadline, "never sampled: {usage:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let point = &usage["points"][0];
    assert!(point["memory_bytes"].as_i64().unwrap_or(0) > 0, "{usage}");
    assert!(point["pids"].as_i64().unwrap_or(0) > 0, "{usage}");
    assert_eq!(usage["memory_limit_bytes"], 64 * 1024 * 1024, "{usage}");

    // A memory hog there is killed by its limit, and its owner is told.
    let said = through_a_terminal(&server, &id, "head -c 300m /dev/zero | tail | wc -c").await;
    let oom = admin.told("oom_kill", Duration::from_secs(30)).await;
    assert_eq!(oom.len(), 1, "{oom:?} ({said})");
    assert_eq!(oom[0]["link"], format!("/spaces/{id}"), "{oom:?}");
    server.stop().await;
}

/// What the proxy test's spaces run: busybox httpd on 8080 (every address) and on
/// 127.0.0.1:9090 (the space's loopback only).
const HTTP_APP: &str = "mkdir -p /www && echo hello-from-$(hostname) > /www/index.html \
    && httpd -p 8080 -h /www && httpd -p 127.0.0.1:9090 -h /www \
    && trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done";

/// What an engine's `/_ping` at `address` answers a space (through its terminal), followed
/// by `tried` once the attempt is over.
async fn engine_from(server: &TestServer, space_id: &str, address: &str) -> String {
    through_a_terminal(
        server,
        space_id,
        &format!(
            "printf 'GET /_ping HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {address} 2375; echo tr\"\"ied"
        ),
    )
    .await
}

/// Starts spaces of a 1-CU template running [`HTTP_APP`] (port forwarding on), waits until
/// they run, and returns their (name, id).
async fn web_spaces(admin: &Client, names: &[&'static str]) -> Vec<(&'static str, String)> {
    let created = admin
        .post(
            "/api/v1/templates",
            json!({
                "name": "web", "image": TEST_IMAGE, "compute_units": 1,
                "features": ["port_forwarding", "terminal"], "command": ["/bin/sh", "-c", HTTP_APP],
            }),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let template = created.id();
    let mut spaces = Vec::new();
    for name in names {
        let id = admin.new_space(name, &template).await;
        start(admin, &id).await;
        spaces.push((*name, id));
    }
    for (_, id) in &spaces {
        let space = settled(admin, id).await;
        assert_eq!(space["state"], "running", "{space}");
    }
    spaces
}

#[tokio::test(flavor = "multi_thread")]
async fn spaces_never_reach_each_other_on_one_node_or_across_nodes() {
    let _turn = on_the_swarm().await;
    let db = TempDb::new();
    let server = swarm_server(&db).await;
    let admin = admin(&server).await;
    // Four 1-CU spaces on three 2-CPU nodes: two share a node, the others are apart.
    let spaces = web_spaces(&admin, &["ia", "ib", "ic", "id"]).await;
    let mut addresses = Vec::new();
    let mut nodes = Vec::new();
    for (name, id) in &spaces {
        let shown = through_a_terminal(&server, id, "echo \"addr=$(hostname -i)=\"").await;
        let address = shown
            .split("addr=")
            .skip(1)
            .filter_map(|rest| rest.split('=').next())
            .find(|a| a.trim().parse::<std::net::IpAddr>().is_ok())
            .unwrap_or_else(|| panic!("no address for {name}: {shown}"))
            .trim()
            .to_owned();
        // Its own app answers on that address: the address is right.
        let own = through_a_terminal(
            &server,
            id,
            &format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {address} 8080"),
        )
        .await;
        assert!(
            own.contains(&format!("hello-from-{name}")),
            "{name} on {address}: {own}"
        );
        addresses.push(address);
        nodes.push(node_of(id).await);
    }
    let same_node = (1..spaces.len()).find(|&i| nodes[i] == nodes[0]);
    let other_node = (1..spaces.len()).find(|&i| nodes[i] != nodes[0]);
    for other in [same_node, other_node].into_iter().flatten() {
        let shown = through_a_terminal(
            &server,
            &spaces[0].1,
            &format!(
                "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {} 8080; echo tr\"\"ied",
                addresses[other]
            ),
        )
        .await;
        assert!(
            shown.contains("tried") && !shown.contains(&format!("hello-from-{}", spaces[other].0)),
            "{} ({}) reached {} ({}): {shown}",
            spaces[0].0,
            nodes[0],
            spaces[other].0,
            nodes[other]
        );
    }
    assert!(other_node.is_some(), "all spaces on one node: {nodes:?}");
    // Nor the nodes: neither its own node's engine (by the node's address or by the
    // gateway's) nor another node's.
    let mut node_addresses = Vec::new();
    for node in [&nodes[0], &nodes[other_node.unwrap()]] {
        let (ok, addr) = docker(&["node", "inspect", "-f", "{{.Status.Addr}}", node]).await;
        assert!(ok, "{addr}");
        node_addresses.push(addr);
    }
    node_addresses.push("$(ip route | awk '/default/ {print $3}')".to_owned());
    for address in &node_addresses {
        let shown = engine_from(&server, &spaces[0].1, address).await;
        assert!(
            shown.contains("tried") && !shown.contains("200 OK"),
            "a space reached the engine at {address}: {shown}"
        );
    }
    // Deleting a space removes its network too.
    let label = format!("label=io.hangar.space={}", spaces[0].1);
    let list = ["network", "ls", "-q", "--filter", label.as_str()];
    let networks = || docker(&list);
    let (_, before) = networks().await;
    assert_eq!(before.lines().count(), 1, "{before}");
    let deleted = admin
        .delete(&format!("/api/v1/spaces/{}", spaces[0].1))
        .await;
    assert!(
        deleted.status == 202 || deleted.status == 204,
        "{deleted:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, left) = networks().await;
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the deleted space's network stays: {left}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_port_proxy_and_a_port_forward_reach_a_space_on_a_worker() {
    let _turn = on_the_swarm().await;
    let db = TempDb::new();
    let server = swarm_server(&db).await;
    let admin = admin(&server).await;
    let spaces = web_spaces(&admin, &["wa", "wb", "wc"]).await;
    let mut on_worker = None;
    for (name, id) in &spaces {
        if node_of(id).await != "hangar-swarm-node1" {
            on_worker = Some((*name, id.clone()));
        }
    }
    let (name, id) = on_worker.expect("no space landed on a worker");
    let cookie = server.login_cookie("admin", support::ADMIN_PASSWORD).await;

    // HTTP by path, on both ports: Hangar (on the host, not on the overlay) relays through the
    // worker's engine.
    for port in [8080, 9090] {
        let path = format!("/spaces/admin/{name}/ports/{port}/");
        let deadline = Instant::now() + Duration::from_secs(30);
        let body = loop {
            let response = server.get_with_cookie(&path, &cookie).await;
            let status = response.status();
            let body = response.text().await.unwrap();
            if status == 200 {
                break body;
            }
            assert!(Instant::now() < deadline, "port {port}: {status} {body}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(body.trim(), format!("hello-from-{name}"), "port {port}");
    }
    // Nothing listens on 7000: a clear 502, not a hang.
    let refused = server
        .get_with_cookie(&format!("/spaces/admin/{name}/ports/7000/"), &cookie)
        .await;
    assert_eq!(refused.status(), 502);
    assert!(
        refused.text().await.unwrap().contains("7000"),
        "the refusal names the port"
    );

    // A raw TCP port forward (what `hangar port-forward` uses) over the WebSocket bridge.
    let answer = support::forwarded_get(&server, &id, 8080, &cookie).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(answer.contains(&format!("hello-from-{name}")), "{answer}");
    server.stop().await;
}

/// The nodes as `GET /api/v1/admin/nodes` shows them, by name.
async fn nodes(admin: &Client) -> HashMap<String, serde_json::Value> {
    let listed = admin.get("/api/v1/admin/nodes").await;
    assert_eq!(listed.status, 200, "{listed:?}");
    listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["name"].as_str().unwrap().to_owned(), n.clone()))
        .collect()
}

/// The names of the space's spaces listed on a node, with (running there, kept there).
fn listed_on(node: &serde_json::Value, space_id: &str) -> Option<(bool, bool)> {
    node["spaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == space_id)
        .map(|s| (s["running_here"] == true, s["kept_here"] == true))
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_sees_the_nodes_and_moves_a_stopped_space_with_its_data() {
    let _turn = on_the_swarm().await;
    let db = TempDb::new();
    let server = swarm_server(&db).await;
    let admin = admin(&server).await;
    let (_, member) = admin.new_member(&server, "mia", json!({})).await;
    assert_eq!(member.get("/api/v1/admin/nodes").await.status, 403);

    let before = nodes(&admin).await;
    assert_eq!(before.len(), NODES, "{before:?}");
    for node in before.values() {
        // Two CPUs a node, one CPU a unit.
        assert_eq!(node["capacity_cu"], 2, "{node}");
        assert_eq!(node["reserved_cu"], 0, "{node}");
        assert!(node["problem"].is_null(), "{node}");
    }

    let template = template(&admin, "mover", 1).await;
    let id = admin.new_space("mv", &template).await;
    start(&admin, &id).await;
    assert_eq!(settled(&admin, &id).await["state"], "running");
    let from = node_of(&id).await;
    let shown = through_a_terminal(
        &server,
        &id,
        "echo keep-me > /data/f && chown 1234:1234 /data/f && mkdir -p /data/d && echo inner > /data/d/g \
         && head -c 3000000 /dev/urandom > /data/r && echo written S$((1+1))UM=$(md5sum < /data/r)",
    )
    .await;
    assert!(shown.contains("written"), "{shown}");
    let sum = |shown: &str| {
        shown
            .split("S2UM=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no sum in {shown}"))
    };
    let written = sum(&shown);
    let during = nodes(&admin).await;
    assert_eq!(during[&from]["reserved_cu"], 1);
    assert_eq!(during[&from]["free_cu"], 1);
    assert_eq!(listed_on(&during[&from], &id), Some((true, true)));

    let to = before.keys().find(|name| **name != from).unwrap().clone();
    let move_to = |node: &str| {
        let admin = &admin;
        let path = format!("/api/v1/admin/spaces/{id}/move");
        let body = json!({ "node": node });
        async move { admin.post(&path, body).await }
    };
    let running = move_to(&to).await;
    assert_eq!(running.status, 409, "{running:?}");
    assert!(running.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("stop it first"));

    let stopped = admin.post_empty(&format!("/api/v1/spaces/{id}/stop")).await;
    assert_eq!(stopped.status, 202, "{stopped:?}");
    assert_eq!(settled(&admin, &id).await["state"], "stopped");

    let unknown = move_to("no-such-node").await;
    assert_eq!(unknown.status, 400, "{unknown:?}");
    assert!(
        unknown.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&to),
        "{unknown:?}"
    );
    let same = move_to(&from).await;
    assert_eq!(same.status, 409, "{same:?}");
    let (ok, out) = docker(&["node", "update", "--availability", "drain", &to]).await;
    assert!(ok, "{out}");
    let drained = move_to(&to).await;
    assert_eq!(drained.status, 409, "{drained:?}");
    assert!(
        drained.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("drained"),
        "{drained:?}"
    );
    docker(&["node", "update", "--availability", "active", &to]).await;

    let moved = move_to(&to).await;
    assert_eq!(moved.status, 200, "{moved:?}");
    assert_eq!(moved.body["from"], from.as_str());
    assert_eq!(moved.body["to"], to.as_str());
    assert!(moved.body["bytes"].as_u64().unwrap() > 0, "{moved:?}");
    // The old node keeps no copy; the new one has the volume.
    let volume = format!("hangar-{id}-data");
    let (_, left) = host_docker(&["exec", &from, "docker", "volume", "ls", "-q"]).await;
    assert!(!left.contains(&volume), "{left}");
    let (_, there) = host_docker(&["exec", &to, "docker", "volume", "ls", "-q"]).await;
    assert!(there.contains(&volume), "{there}");
    let after = nodes(&admin).await;
    assert_eq!(listed_on(&after[&to], &id), Some((false, true)));
    assert_eq!(listed_on(&after[&from], &id), None);

    start(&admin, &id).await;
    assert_eq!(settled(&admin, &id).await["state"], "running");
    assert_eq!(node_of(&id).await, to);
    let shown = through_a_terminal(
        &server,
        &id,
        "echo \"$(cat /data/f) $(stat -c %u:%g /data/f) $(cat /data/d/g)\" S$((1+1))UM=$(md5sum < /data/r)",
    )
    .await;
    assert!(shown.contains("keep-me 1234:1234 inner"), "{shown}");
    assert_eq!(
        sum(&shown),
        written,
        "the 3 MB file came over byte for byte"
    );
    // Sized on its new node too; its old node keeps no image.
    let image = format!("ls /var/lib/hangar/volumes/*/{id}/data.img 2>/dev/null | wc -l");
    assert_eq!(in_node(&to, &image).await, "1");
    assert_eq!(in_node(&from, &image).await, "0");
    let shown = through_a_terminal(
        &server,
        &id,
        "df -kP /data | tail -1 | awk '{ print \"size=\" $2 }'",
    )
    .await;
    assert!(
        shown.contains("size=9") || shown.contains("size=10"),
        "/data is sized: {shown}"
    );
    let history = admin.get("/api/v1/audit?action=space.move").await;
    assert_eq!(history.status, 200);
    assert!(
        history.body.to_string().contains(&to),
        "the move is audited: {history:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_and_start_keep_a_space_on_its_node_with_its_data() {
    let _turn = on_the_swarm().await;
    let db = TempDb::new();
    let server = swarm_server(&db).await;
    let admin = admin(&server).await;
    let template = template(&admin, "one", 1).await;
    let id = admin.new_space("keep", &template).await;
    start(&admin, &id).await;
    assert_eq!(settled(&admin, &id).await["state"], "running");
    let node = node_of(&id).await;
    through_a_terminal(&server, &id, "echo kept-$((1+1)) > /data/note").await;

    for round in 0..2 {
        // Other spaces started meanwhile would draw Swarm elsewhere: the pin holds it.
        let stopped = admin.post_empty(&format!("/api/v1/spaces/{id}/stop")).await;
        assert_eq!(stopped.status, 202, "{stopped:?}");
        admin.wait_for_state(&id, "stopped").await;
        if round == 1 {
            // As after the node rebooted: the loop device of the volume's image is gone.
            let out = in_node(
                &node,
                &format!(
                    "link=$(ls /var/lib/hangar/volumes/*/{id}/data.dev) && dev=$(readlink $link) \
                     && losetup -d $dev && rm $dev && echo gone"
                ),
            )
            .await;
            assert_eq!(out, "gone");
        }
        let (_, running) = docker(&[
            "service",
            "ps",
            "--filter",
            "desired-state=running",
            "-q",
            &format!("hangar-{id}"),
        ])
        .await;
        assert_eq!(running, "", "a stopped space has no running task");
        start(&admin, &id).await;
        let space = settled(&admin, &id).await;
        assert_eq!(space["state"], "running", "round {round}: {space}");
        assert_eq!(node_of(&id).await, node, "round {round}: it moved");
        let shown = through_a_terminal(&server, &id, "cat /data/note").await;
        assert!(shown.contains("kept-2"), "round {round}: {shown}");
    }
    server.stop().await;
}

/// Runs a shell script in a node's container (as root on that node); its output, trimmed.
async fn in_node(node: &str, script: &str) -> String {
    let (ok, out) = host_docker(&["exec", node, "sh", "-c", script]).await;
    assert!(ok, "{node}: {script}: {out}");
    out.trim().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_write_past_a_volumes_size_fails_with_enospc_on_a_worker_and_its_use_is_shown() {
    let _turn = on_the_swarm().await;
    let db = TempDb::new();
    let server = swarm_server(&db).await;
    let admin = admin(&server).await;
    let ready = admin.get("/readyz").await;
    assert!(
        ready.body["storage"]
            .as_str()
            .unwrap()
            .starts_with("enforced"),
        "{ready:?}"
    );
    let template = template(&admin, "one", 1).await;
    let id = a_space_on_a_worker(&admin, &template, ["za", "zb", "zc"]).await;
    let node = node_of(&id).await;
    // The space sees its volume's own size, not its node's disk.
    let shown = through_a_terminal(
        &server,
        &id,
        "df -kP /data | tail -1 | awk '{ print \"size=\" $2 }'",
    )
    .await;
    let size: u64 = shown
        .split("size=")
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .next()
        .unwrap_or_else(|| panic!("no size in {shown}"));
    assert!(
        (900 * 1024..=1024 * 1024).contains(&size),
        "/data is {size} KiB"
    );
    let shown = through_a_terminal(
        &server,
        &id,
        "echo precious > /data/keep; dd if=/dev/zero of=/data/fill bs=1M count=1100; \
         echo dd-exit=$?; cat /data/keep",
    )
    .await;
    assert!(shown.contains("No space left on device"), "{shown}");
    assert!(shown.contains("dd-exit=1"), "{shown}");
    assert!(shown.contains("precious"), "{shown}");
    // The process limit of one compute unit, as on one engine, on the container there.
    let limit = in_node(
        &node,
        &format!(
            "docker inspect -f '{{{{.HostConfig.PidsLimit}}}}' \
             $(docker ps -q --filter label=com.docker.swarm.service.name=hangar-{id})"
        ),
    )
    .await;
    assert_eq!(limit, "1024");
    let space = admin.get(&format!("/api/v1/spaces/{id}")).await.body;
    assert_eq!(space["state"], "running", "{space}");

    // Used / size, measured on the space's node.
    let storage = admin.get(&format!("/api/v1/spaces/{id}/storage")).await;
    assert_eq!(storage.status, 200, "{storage:?}");
    assert_eq!(storage.body[0]["enforced"], true, "{storage:?}");
    let used = storage.body[0]["used_bytes"].as_i64().unwrap();
    assert!(used > 900 << 20 && used <= 1 << 30, "{storage:?}");
    let quota = admin.get("/api/v1/me/quota").await;
    assert!(
        quota.body["storage_used_bytes"].as_i64().unwrap_or(0) >= used,
        "{quota:?}"
    );

    // The image is on that node, on a loop device; deleting the space removes both.
    let image = format!("ls /var/lib/hangar/volumes/*/{id}/data.img");
    assert!(in_node(&node, &image).await.ends_with("data.img"));
    let (_, others) = host_docker(&["exec", "hangar-swarm-node1", "sh", "-c", &image]).await;
    if node != "hangar-swarm-node1" {
        assert!(
            !others.contains("data.img"),
            "an image on another node: {others}"
        );
    }
    let loops = format!("losetup -j $(ls /var/lib/hangar/volumes/*/{id}/data.img) | wc -l");
    assert_eq!(in_node(&node, &loops).await, "1");
    let deleted = admin.delete(&format!("/api/v1/spaces/{id}")).await;
    assert!((200..300).contains(&deleted.status), "{deleted:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = in_node(
            &node,
            &format!("ls -d /var/lib/hangar/volumes/*/{id} 2>/dev/null | wc -l"),
        )
        .await;
        if left == "0" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the image stays after the delete"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_drained_node_refuses_its_spaces_start_with_the_reason() {
    let _turn = on_the_swarm().await;
    let db = TempDb::new();
    let server = swarm_server(&db).await;
    let admin = admin(&server).await;
    let template = template(&admin, "one", 1).await;
    let id = admin.new_space("pinned", &template).await;
    start(&admin, &id).await;
    assert_eq!(settled(&admin, &id).await["state"], "running");
    let node = node_of(&id).await;

    // Drained under it: Swarm stops it (never moves it off its volumes), and the space says so.
    let (ok, out) = docker(&["node", "update", "--availability", "drain", &node]).await;
    assert!(ok, "{out}");
    let drained = Instant::now();
    let space = loop {
        let space = admin.get(&format!("/api/v1/spaces/{id}")).await.body;
        if space["state"] == "stopped" {
            break space;
        }
        assert!(
            drained.elapsed() < Duration::from_secs(30),
            "still {} 30 s after its node was drained",
            space["state"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let reason = space["last_error"].as_str().unwrap_or_default();
    assert!(
        reason.contains(&node) && reason.contains("drained"),
        "the space says its node was drained: {reason}"
    );
    let told = admin.told("space_stopped", Duration::from_secs(5)).await;
    assert!(
        told.len() == 1
            && told[0]["body"]
                .as_str()
                .is_some_and(|body| body.contains(&node) && body.contains("drained")),
        "its owner is told that its node was drained: {told:?}"
    );
    let (_, moved) = docker(&[
        "service",
        "ps",
        "--filter",
        "desired-state=running",
        "-q",
        &format!("hangar-{id}"),
    ])
    .await;
    assert_eq!(moved, "", "Swarm started no replacement elsewhere");

    // A start while it is drained is refused with the node and the reason.
    let asked = Instant::now();
    start(&admin, &id).await;
    let space = settled(&admin, &id).await;
    let refused_in = asked.elapsed();
    docker(&["node", "update", "--availability", "active", &node]).await;
    assert_eq!(space["state"], "stopped", "{space}");
    let reason = space["last_error"].as_str().unwrap_or_default();
    assert!(
        reason.contains(&node) && reason.contains("drained") && reason.contains("cannot start"),
        "the refusal names the node and why: {reason}"
    );
    assert!(
        refused_in < Duration::from_secs(10),
        "not a hang: {refused_in:?}"
    );

    // Active again: it starts there, with its volume.
    start(&admin, &id).await;
    assert_eq!(settled(&admin, &id).await["state"], "running");
    assert_eq!(node_of(&id).await, node);
    server.stop().await;
}

/// Removes Hangar's network rules from every node, as on a swarm Hangar never used: the
/// first starts then race to install them.
async fn unguard_nodes() {
    for n in 1..=NODES {
        let node = format!("hangar-swarm-node{n}");
        let (ok, said) = host_docker(&[
            "exec",
            &node,
            "sh",
            "-c",
            "for ipt in iptables-legacy iptables-nft; do \
               $ipt -t mangle -D PREROUTING -j HANGAR-SWARM 2>/dev/null; \
               $ipt -t mangle -F HANGAR-SWARM 2>/dev/null; \
               $ipt -t mangle -X HANGAR-SWARM 2>/dev/null; \
             done; ! iptables-legacy -t mangle -S HANGAR-SWARM 2>/dev/null && ! iptables-nft -t mangle -S HANGAR-SWARM 2>/dev/null",
        ])
        .await;
        assert!(ok, "the rules of {node} are still there: {said}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn racing_starts_never_exceed_a_nodes_capacity_and_say_it_is_the_clusters() {
    let _turn = on_the_swarm().await;
    // On unguarded nodes, racing starts also race to guard them: none may fail for it.
    unguard_nodes().await;
    let db = TempDb::new();
    let server = swarm_server(&db).await;
    let admin = admin(&server).await;
    let template = template(&admin, "one", 1).await;
    let capacity = NODES * CPUS_PER_NODE;
    let count = capacity + 3;
    let (_, ann) = admin
        .new_member(
            &server,
            "ann",
            json!({"max_spaces": count, "compute_units": count, "storage_units": null}),
        )
        .await;
    let mut ids = Vec::new();
    for i in 0..count {
        ids.push(ann.new_space(&format!("s{i}"), &template).await);
    }
    // All at once.
    let starts = ids.iter().map(|id| start(&ann, id));
    futures_util::future::join_all(starts).await;
    let mut running = 0;
    let mut per_node: HashMap<String, usize> = HashMap::new();
    for id in &ids {
        let space = settled(&ann, id).await;
        match space["state"].as_str() {
            Some("running") => {
                running += 1;
                *per_node.entry(node_of(id).await).or_default() += 1;
            }
            _ => {
                let reason = space["last_error"].as_str().unwrap_or_default();
                assert!(
                    reason.contains("cluster capacity") && reason.contains("not your quota"),
                    "{reason}"
                );
                assert!(reason.contains("largest free slot"), "{reason}");
            }
        }
    }
    assert_eq!(
        running, capacity,
        "the swarm accepts exactly its reservable capacity: {per_node:?}"
    );
    for (node, spaces) in &per_node {
        assert!(
            *spaces <= CPUS_PER_NODE,
            "{node} runs {spaces} 1-CPU spaces"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_that_dies_turns_its_spaces_stopped_within_ten_seconds() {
    let _turn = on_the_swarm().await;
    let db = TempDb::new();
    let server = swarm_server(&db).await;
    let admin = admin(&server).await;
    let template = template(&admin, "one", 1).await;
    // One space a node: one of them is on the last node, which is killed.
    let victim = format!("hangar-swarm-node{NODES}");
    let mut on_victim = None;
    let mut others = Vec::new();
    for name in ["da", "db", "dc"] {
        let id = admin.new_space(name, &template).await;
        start(&admin, &id).await;
        assert_eq!(settled(&admin, &id).await["state"], "running");
        if node_of(&id).await == victim {
            on_victim = Some(id);
        } else {
            others.push(id);
        }
    }
    let id = on_victim.expect("no space landed on the last node");

    let (ok, out) = host_docker(&["kill", &victim]).await;
    assert!(ok, "{out}");
    let killed = Instant::now();
    let space = loop {
        let space = admin.get(&format!("/api/v1/spaces/{id}")).await.body;
        if space["state"] == "stopped" {
            break space;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "still {} 10 s after its node died",
            space["state"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let reason = space["last_error"].as_str().unwrap_or_default();
    assert!(
        reason.contains(&victim),
        "the reason names the node: {reason}"
    );
    for other in &others {
        let space = admin.get(&format!("/api/v1/spaces/{other}")).await.body;
        assert_eq!(space["state"], "running", "spaces on live nodes run on");
    }
    // The node comes back (its engine's state is on its volume), so the space can be deleted.
    let (ok, out) = host_docker(&["start", &victim]).await;
    assert!(ok, "{out}");
    drop(_turn);
    let _turn = on_the_swarm().await;
    server.stop().await;
}

/// A metadata-like service at a link-local address (169.254.77.1, on this machine's side of
/// the test swarm's network, where the nodes' default route leads), answering any request
/// with `hello-metadata`; removed on drop.
struct LinkLocalOnTheSwarm {
    bridge: String,
    task: tokio::task::JoinHandle<()>,
}

const LINK_LOCAL: &str = "169.254.77.1";
const LINK_LOCAL_PORT: u16 = 8077;

impl LinkLocalOnTheSwarm {
    async fn start() -> Self {
        let (ok, id) = host_docker(&["network", "inspect", "-f", "{{.Id}}", "hangar-swarm"]).await;
        assert!(ok, "{id}");
        let bridge = format!("br-{}", &id[..12]);
        let added = std::process::Command::new("ip")
            .args([
                "addr",
                "replace",
                &format!("{LINK_LOCAL}/32"),
                "dev",
                &bridge,
            ])
            .status()
            .unwrap();
        assert!(added.success(), "ip addr add on {bridge}");
        let listener = tokio::net::TcpListener::bind((LINK_LOCAL, LINK_LOCAL_PORT))
            .await
            .unwrap();
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                // The request is read first: closing on unread bytes would reset the answer.
                let mut request = [0u8; 1024];
                let _ = tokio::io::AsyncReadExt::read(&mut stream, &mut request).await;
                let _ = stream
                    .write_all(b"HTTP/1.0 200 OK\r\n\r\nhello-metadata\n")
                    .await;
            }
        });
        LinkLocalOnTheSwarm { bridge, task }
    }
}

impl Drop for LinkLocalOnTheSwarm {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::process::Command::new("ip")
            .args([
                "addr",
                "del",
                &format!("{LINK_LOCAL}/32"),
                "dev",
                &self.bridge,
            ])
            .status();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_space_on_a_worker_reaches_no_link_local_address_that_its_node_reaches() {
    let _turn = on_the_swarm().await;
    let metadata = LinkLocalOnTheSwarm::start().await;
    let db = TempDb::new();
    let server = swarm_server(&db).await;
    let admin = admin(&server).await;
    let template = template(&admin, "one", 1).await;
    let id = a_space_on_a_worker(&admin, &template, ["la", "lb", "lc"]).await;
    let node = node_of(&id).await;
    // The node itself reaches it: what the space cannot reach is really there.
    let url = format!("http://{LINK_LOCAL}:{LINK_LOCAL_PORT}/");
    let (ok, direct) = host_docker(&["exec", &node, "curl", "-s", "-m", "3", &url]).await;
    assert!(ok && direct.contains("hello-metadata"), "{node}: {direct}");
    let shown = through_a_terminal(
        &server,
        &id,
        &format!(
            "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {LINK_LOCAL} {LINK_LOCAL_PORT}; echo tr\"\"ied"
        ),
    )
    .await;
    assert!(shown.contains("tried"), "{shown}");
    assert!(
        !shown.contains("hello-metadata"),
        "a space on {node} reached {LINK_LOCAL}: {shown}"
    );
    drop(metadata);
    server.stop().await;
}

/// Runs `script` in the space through Hangar's SSH gateway with the system's OpenSSH client,
/// signed in with `key`; its output and whether it succeeded.
async fn over_ssh(
    port: u16,
    key: &std::path::Path,
    login: &str,
    script: &str,
    input: Vec<u8>,
) -> (bool, String) {
    let mut ssh = tokio::process::Command::new("ssh")
        .args(["-F", "/dev/null", "-i"])
        .arg(key)
        .args([
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "ConnectTimeout=10",
            "-p",
            &port.to_string(),
        ])
        .arg(format!("{login}@127.0.0.1"))
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("ssh runs (scripts/setup.sh installs openssh-client)");
    let mut stdin = ssh.stdin.take().unwrap();
    let writing = tokio::spawn(async move {
        stdin.write_all(&input).await.unwrap();
    });
    let out = tokio::time::timeout(Duration::from_secs(60), ssh.wait_with_output())
        .await
        .expect("ssh did not end")
        .unwrap();
    writing.await.unwrap();
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread")]
async fn ssh_reaches_a_space_on_a_worker_with_its_exit_status_and_a_megabyte_through_stdin() {
    let _turn = on_the_swarm().await;
    let db = TempDb::new();
    let server =
        TestServer::start(&db, &["--runtime", "swarm", "--ssh-listen", "127.0.0.1:0"]).await;
    let admin = admin(&server).await;
    let created = admin
        .post(
            "/api/v1/templates",
            json!({
                "name": "ssh", "image": TEST_IMAGE, "shell": "/bin/sh", "compute_units": 1,
                "features": ["terminal", "ssh"],
                "volumes": [{"name": "data", "mount_path": "/data", "size_gib": 1}],
            }),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let id = a_space_on_a_worker(&admin, &created.id(), ["sa", "sb", "sc"]).await;
    let name = admin.get(&format!("/api/v1/spaces/{id}")).await.body["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("admin");
    let made = tokio::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "admin", "-f"])
        .arg(&key)
        .status()
        .await
        .unwrap();
    assert!(made.success());
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let added = admin
        .post("/api/v1/me/ssh-keys", json!({"public_key": public}))
        .await;
    assert_eq!(added.status, 201, "{added:?}");
    let port = server.ssh.expect("started with --ssh-listen").port();

    let (ok, out) = over_ssh(
        port,
        &key,
        &name,
        "echo answer-$((6*7)); hostname; exit 3",
        Vec::new(),
    )
    .await;
    assert!(!ok, "exit 3 is a failure: {out}");
    assert!(out.contains("answer-42") && out.contains(&name), "{out}");
    let payload: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let (ok, out) = over_ssh(
        port,
        &key,
        &name,
        "cat > /data/blob && wc -c < /data/blob",
        payload,
    )
    .await;
    assert!(ok, "{out}");
    assert_eq!(out.trim(), "1000000");
    server.stop().await;
}

/// The address of a node's container on the test swarm's network.
async fn node_ip(node: &str) -> String {
    let (ok, ip) = host_docker(&[
        "inspect",
        "-f",
        "{{(index .NetworkSettings.Networks \"hangar-swarm\").IPAddress}}",
        node,
    ])
    .await;
    assert!(ok && !ip.is_empty(), "no address for {node}: {ip}");
    ip
}

/// Gives every node a second address (10.213.0.N, outside the swarm's network, where its
/// engine answers too: it listens on every address) that the other nodes route to; `undo`
/// takes them away again.
async fn second_addresses(undo: bool) -> Vec<String> {
    let mut ips = Vec::new();
    for n in 1..=NODES {
        ips.push(node_ip(&format!("hangar-swarm-node{n}")).await);
    }
    let seconds: Vec<String> = (1..=NODES).map(|n| format!("10.213.0.{n}")).collect();
    for n in 1..=NODES {
        let node = format!("hangar-swarm-node{n}");
        let verb = if undo { "del" } else { "replace" };
        let own = format!("{}/32", seconds[n - 1]);
        let (ok, out) =
            host_docker(&["exec", &node, "ip", "addr", verb, &own, "dev", "eth0"]).await;
        assert!(ok || undo, "{out}");
        for m in (1..=NODES).filter(|m| *m != n) {
            let other = format!("{}/32", seconds[m - 1]);
            let mut args = vec!["exec", &node, "ip", "route", verb, &other];
            if !undo {
                args.extend(["via", ips[m - 1].as_str()]);
            }
            let (ok, out) = host_docker(&args).await;
            assert!(ok || undo, "{out}");
        }
    }
    seconds
}

#[tokio::test(flavor = "multi_thread")]
async fn a_space_reaches_no_engine_on_any_address_of_any_node_and_the_guard_is_hangars_image() {
    let _turn = on_the_swarm().await;
    let seconds = second_addresses(false).await;
    // The second addresses really lead to the engines (from a node, not from a space).
    for second in &seconds[1..] {
        let (ok, out) = host_docker(&[
            "exec",
            "hangar-swarm-node1",
            "curl",
            "-s",
            "-m",
            "3",
            &format!("http://{second}:2375/_ping"),
        ])
        .await;
        assert!(ok && out == "OK", "{second}: {out}");
    }
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let db = TempDb::new();
    let server = swarm_server(&db).await;
    let admin = admin(&server).await;
    let spaces = web_spaces(&admin, &["ea"]).await;
    let id = &spaces[0].1;
    let node = node_of(id).await;
    for second in &seconds {
        let shown = engine_from(&server, id, second).await;
        assert!(
            shown.contains("tried") && !shown.contains("200 OK"),
            "a space on {node} reached the engine at {second}: {shown}"
        );
    }
    // Every helper Hangar ran on the nodes (to ask each for its addresses, to install the
    // rules on the space's) was of Hangar's own image, never the template's.
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    let now = until.to_string();
    let mut helpers = 0;
    for n in 1..=NODES {
        let (ok, created) = host_docker(&[
            "exec",
            &format!("hangar-swarm-node{n}"),
            "docker",
            "events",
            "--since",
            &since,
            "--until",
            &now,
            "--filter",
            "type=container",
            "--filter",
            "event=create",
            "--format",
            "{{.Actor.Attributes.name}} {{.Actor.Attributes.image}}",
        ])
        .await;
        assert!(ok, "{created}");
        for line in created.lines().filter(|l| l.starts_with("hangar-helper-")) {
            helpers += 1;
            assert!(
                line.ends_with(&format!(" {}", hangar::runtime::swarm::GUARD_IMAGE)),
                "node {n}: {line}"
            );
        }
    }
    assert!(helpers >= NODES, "a helper ran on each node: {helpers}");
    second_addresses(true).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn swarm_spaces_run_with_no_new_privileges_and_readyz_says_how() {
    let _turn = on_the_swarm().await;
    let db = TempDb::new();
    let server = swarm_server(&db).await;
    let admin = admin(&server).await;
    let before = admin.get("/readyz").await;
    assert!(
        before.body["privileges"]
            .as_str()
            .unwrap()
            .starts_with("not enforced: not checked yet"),
        "{before:?}"
    );
    let spaces = web_spaces(&admin, &["na"]).await;
    let shown =
        through_a_terminal(&server, &spaces[0].1, "grep NoNewPrivs /proc/self/status").await;
    assert!(shown.contains("NoNewPrivs:\t1"), "{shown}");
    // The test swarm's engines are Debian's 20.10 (API 1.41, which ignores the spec's field)
    // started with --no-new-privileges (scripts/swarm-up.sh): readyz says so, node by node.
    let ready = admin.get("/readyz").await;
    let privileges = ready.body["privileges"].as_str().unwrap();
    assert!(privileges.starts_with("enforced"), "{ready:?}");
    for n in 1..=NODES {
        assert!(
            privileges.contains(&format!("hangar-swarm-node{n}")),
            "every node was asked: {privileges}"
        );
    }
    assert!(privileges.contains("--no-new-privileges"), "{privileges}");
    server.stop().await;
}
