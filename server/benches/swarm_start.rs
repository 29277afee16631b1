//! The Swarm runtime's figures (issue #18), on the three-node test swarm of
//! `scripts/swarm-up.sh 3`: start latency (API call → `running`) against `docker service
//! create` of the same spec (reservations, limits, restart policy, overlay, volume) polled
//! until its task runs, in the same run; then how many 1-CU spaces the swarm accepts before
//! refusing, against its reservable capacity (Σ node CPUs / CPUs per CU).
//! Run on demand: `cargo bench -p server --bench swarm_start`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command as Process;
use std::time::{Duration, Instant};

use common::Size;
use hangar::config::Config;
use serde_json::json;

const ROUNDS: Size<usize> = Size(20, 2);
const IMAGE: &str = "hangar/busybox:test";
const IDLE: &str = "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done";

fn stats(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let at =
        |p: f64| samples[((samples.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1e3;
    (at(0.5), at(0.95))
}

/// The docker CLI against the swarm's manager: success and trimmed output.
fn docker(host: &str, args: &[&str]) -> (bool, String) {
    let out = Process::new("docker")
        .env("DOCKER_HOST", host)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
    )
}

fn running(host: &str, service: &str) -> bool {
    let (_, states) = docker(
        host,
        &[
            "service",
            "ps",
            "--filter",
            "desired-state=running",
            "--format",
            "{{.CurrentState}}",
            service,
        ],
    );
    states.starts_with("Running")
}

#[tokio::main]
async fn main() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/swarm-up.sh");
    let up = Process::new("bash").args([script, "3"]).output().unwrap();
    assert!(up.status.success(), "the test swarm did not start");
    let host = String::from_utf8_lossy(&up.stdout).trim().to_owned();
    let (_, leftovers) = docker(&host, &["service", "ls", "-q"]);
    for service in leftovers.split_whitespace() {
        docker(&host, &["service", "rm", service]);
    }

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let config = Config::from_args([
        "hangar",
        "--database-url",
        &url,
        "--admin-password",
        "bench-admin-password",
        "--default-template",
        "false",
        "--ssh-listen",
        "none",
        "--runtime",
        "swarm",
        "--docker-host",
        &host,
    ]);
    let state = hangar::build_state(config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(hangar::serve(state, listener, std::future::pending()));
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let post = |path: &str, body: serde_json::Value| {
        client
            .post(format!("{base}{path}"))
            .header("origin", &base)
            .json(&body)
            .send()
    };
    let get = |path: String| {
        let client = client.clone();
        let base = base.clone();
        async move {
            client
                .get(format!("{base}{path}"))
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    assert!(post(
        "/api/v1/auth/login",
        json!({"username": "admin", "password": "bench-admin-password"})
    )
    .await
    .unwrap()
    .status()
    .is_success());
    let template: serde_json::Value = post(
        "/api/v1/templates",
        json!({"name": "bench", "image": IMAGE, "compute_units": 1,
        "volumes": [{"name": "data", "mount_path": "/data", "size_gib": 1}]}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    // A member with room for the capacity count below; the rest runs as them.
    let created = post(
        "/api/v1/users",
        json!({"username": "bench", "password": "bench-member-password", "max_spaces": 20,
        "compute_units": 20, "storage_units": null}),
    )
    .await
    .unwrap();
    assert_eq!(created.status(), 201);
    assert!(post(
        "/api/v1/auth/login",
        json!({"username": "bench", "password": "bench-member-password"})
    )
    .await
    .unwrap()
    .status()
    .is_success());
    let new_space = |name: String| {
        let post = &post;
        let template = template["id"].clone();
        async move {
            let space: serde_json::Value = post(
                "/api/v1/spaces",
                json!({"name": name, "template_id": template}),
            )
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
            space["id"].as_str().expect("space created").to_owned()
        }
    };
    let settle = |id: String| {
        let get = &get;
        async move {
            loop {
                let space = get(format!("/api/v1/spaces/{id}")).await;
                match space["state"].as_str() {
                    Some("running" | "stopped") => return space,
                    _ => tokio::time::sleep(Duration::from_millis(5)).await,
                }
            }
        }
    };

    // Latency: Hangar's start against `docker service create` of the same spec.
    let id = new_space("bench".into()).await;
    // Each space has an overlay of its own, kept across its stops: so does the baseline.
    let network = "hangar-bench-baseline-net".to_owned();
    docker(&host, &["network", "rm", &network]);
    let (made, out) = docker(
        &host,
        &[
            "network",
            "create",
            "--driver",
            "overlay",
            "--attachable",
            &network,
        ],
    );
    assert!(made, "cannot make the baseline's network: {out}");
    let mut hangar_times = Vec::new();
    let mut docker_times = Vec::new();
    for round in 0..ROUNDS.get() {
        let at = Instant::now();
        assert_eq!(
            post(&format!("/api/v1/spaces/{id}/start"), json!({}))
                .await
                .unwrap()
                .status(),
            202
        );
        let space = settle(id.clone()).await;
        assert_eq!(space["state"], "running", "{space}");
        hangar_times.push(at.elapsed());
        post(&format!("/api/v1/spaces/{id}/stop"), json!({}))
            .await
            .unwrap();
        while settle(id.clone()).await["state"] != "stopped" {}

        let name = format!("hangar-bench-baseline-{round}");
        let mount = "type=volume,src=hangar-bench-baseline,dst=/data".to_owned();
        let mut args = vec![
            "service",
            "create",
            "--detach",
            "--quiet",
            "--name",
            &name,
            "--reserve-cpu",
            "1",
            "--limit-cpu",
            "1",
            "--reserve-memory",
            "1g",
            "--limit-memory",
            "1g",
            "--limit-pids",
            "1024",
            "--restart-condition",
            "none",
            "--network",
            &network,
            "--mount",
            &mount,
            "--cap-drop",
            "ALL",
            "--hostname",
            "bench",
        ];
        for capability in hangar::runtime::SPACE_CAPABILITIES {
            args.extend(["--cap-add", capability]);
        }
        args.extend([IMAGE, "sh", "-c", IDLE]);
        let at = Instant::now();
        let (ok, out) = docker(&host, &args);
        assert!(ok, "docker service create failed: {out}");
        while !running(&host, &name) {
            std::thread::sleep(Duration::from_millis(5));
        }
        docker_times.push(at.elapsed());
        docker(&host, &["service", "rm", &name]);
    }
    std::thread::sleep(Duration::from_secs(2));
    docker(&host, &["network", "rm", &network]);
    client
        .delete(format!("{base}/api/v1/spaces/{id}"))
        .header("origin", &base)
        .send()
        .await
        .unwrap();
    let (h50, h95) = stats(hangar_times);
    let (d50, d95) = stats(docker_times);
    println!("swarm start latency over {ROUNDS} rounds (3 nodes, busybox, 1 CU, one volume):");
    println!("  hangar start → running        median {h50:7.1} ms   p95 {h95:7.1} ms");
    println!("  docker service create → Running median {d50:7.1} ms   p95 {d95:7.1} ms");
    println!(
        "  ratio hangar / docker          median {:.2}x        p95 {:.2}x",
        h50 / d50,
        h95 / d95
    );

    // Capacity: 1-CU spaces started all at once until the swarm refuses.
    let (_, nodes) = docker(&host, &["node", "ls", "-q"]);
    let mut reservable = 0;
    for node in nodes.split_whitespace() {
        let (_, cpus) = docker(
            &host,
            &[
                "node",
                "inspect",
                "--format",
                "{{.Description.Resources.NanoCPUs}}",
                node,
            ],
        );
        reservable += cpus.parse::<u64>().unwrap_or(0) / 1_000_000_000;
    }
    let asked = reservable as usize + 3;
    let mut ids = Vec::new();
    for i in 0..asked {
        ids.push(new_space(format!("cap{i}")).await);
    }
    let at = Instant::now();
    let starts = ids
        .iter()
        .map(|id| post(&format!("/api/v1/spaces/{id}/start"), json!({})));
    futures_util::future::join_all(starts).await;
    let mut accepted = 0;
    let mut refusal = String::new();
    for id in &ids {
        let space = settle(id.clone()).await;
        if space["state"] == "running" {
            accepted += 1;
        } else {
            refusal = space["last_error"].as_str().unwrap_or_default().to_owned();
        }
    }
    println!(
        "capacity: {accepted} of {asked} 1-CU spaces started at once ran (reservable: \
         {reservable} CPUs at 1 CPU a CU), settled in {:.1} s",
        at.elapsed().as_secs_f64()
    );
    println!("  a refusal reads: {refusal}");
    for id in &ids {
        client
            .delete(format!("{base}/api/v1/spaces/{id}"))
            .header("origin", &base)
            .send()
            .await
            .unwrap();
    }
    // Bounded: a swarm whose manager is gone (its engine crashed) ends the bench with a reason
    // instead of holding the run forever.
    let deadline = Instant::now() + Duration::from_secs(180);
    for id in &ids {
        loop {
            let response = client
                .get(format!("{base}/api/v1/spaces/{id}"))
                .send()
                .await
                .unwrap();
            if response.status() == 404 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "space {id} was not deleted within 180 s: is the swarm's manager up? \
                 (scripts/swarm-up.sh starts it again)"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    for node in nodes.split_whitespace() {
        let (_, engine) = docker(
            &host,
            &[
                "node",
                "inspect",
                "--format",
                "{{index .Spec.Labels \"io.hangar.engine\"}}",
                node,
            ],
        );
        docker(&engine, &["volume", "rm", "-f", "hangar-bench-baseline"]);
    }
}
