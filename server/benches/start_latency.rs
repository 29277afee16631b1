//! Start latency: Hangar (API call → state `running`) against `docker run -d` of the same
//! image with the same mount, limits and network, measured in one run on the same engine.
//! Run on demand: `cargo bench -p server --bench start_latency` (needs the test image:
//! `scripts/images.sh test`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command as Process;
use std::time::{Duration, Instant};

use common::Size;
use hangar::config::Config;
use serde_json::json;

const ROUNDS: Size<usize> = Size(20, 2);
const IMAGE: &str = "hangar/busybox:test";

fn stats(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let at =
        |p: f64| samples[((samples.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1e3;
    (at(0.5), at(0.95))
}

fn docker(args: &[&str]) -> bool {
    Process::new("docker")
        .args(args)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let config = Config::from_args([
        "hangar",
        "--database-url",
        &url,
        "--admin-password",
        common::ADMIN_PASSWORD,
        "--default-template",
        "false",
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
    assert!(post(
        "/api/v1/auth/login",
        json!({"username": "admin", "password": common::ADMIN_PASSWORD})
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
    let space: serde_json::Value = post(
        "/api/v1/spaces",
        json!({"name": "bench", "template_id": template["id"]}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let id = space["id"].as_str().unwrap().to_owned();
    let state_of = |id: String| {
        let client = client.clone();
        let base = base.clone();
        async move {
            let space: serde_json::Value = client
                .get(format!("{base}/api/v1/spaces/{id}"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            space["state"].as_str().unwrap_or_default().to_owned()
        }
    };

    let mut hangar_times = Vec::new();
    let mut docker_times = Vec::new();
    let baseline_volume = format!("hangar-bench-baseline-{}", std::process::id());
    assert!(docker(&["volume", "create", &baseline_volume]));
    let idle = "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done";
    for round in 0..ROUNDS.get() {
        // Hangar: the API call until the space is running.
        let at = Instant::now();
        assert_eq!(
            post(&format!("/api/v1/spaces/{id}/start"), json!({}))
                .await
                .unwrap()
                .status(),
            202
        );
        while state_of(id.clone()).await != "running" {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        hangar_times.push(at.elapsed());
        post(&format!("/api/v1/spaces/{id}/stop"), json!({}))
            .await
            .unwrap();
        while state_of(id.clone()).await != "stopped" {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        // Raw: docker run -d with the same image, mount, limits and rights (Hangar's volume is
        // an ext4 image on a loop device, mounted at each start; the baseline's a folder).
        let name = format!("hangar-bench-baseline-{round}");
        let mount = format!("{baseline_volume}:/data");
        // The same isolated network Hangar puts spaces on (user-defined bridges cost more to
        // join than the default one).
        let network = Process::new("docker")
            .args([
                "network",
                "ls",
                "--filter",
                "label=io.hangar.network=spaces",
                "--format",
                "{{.Name}}",
            ])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .next()
                    .unwrap_or("bridge")
                    .to_owned()
            })
            .unwrap_or_else(|_| "bridge".to_owned());
        let mut args = vec![
            "run",
            "-d",
            "--name",
            &name,
            "--cpus",
            "1",
            "--memory",
            "1g",
            "--pids-limit",
            "1024",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges:true",
            "-v",
            &mount,
            "--network",
            &network,
            "--hostname",
            "bench",
        ];
        for capability in hangar::runtime::SPACE_CAPABILITIES {
            args.extend(["--cap-add", capability]);
        }
        args.extend([IMAGE, "sh", "-c", idle]);
        let at = Instant::now();
        assert!(docker(&args));
        docker_times.push(at.elapsed());
        assert!(docker(&["rm", "-f", &name]));
    }
    docker(&["volume", "rm", &baseline_volume]);
    // The server runs in this process: until the space is gone, so that its container and
    // volume do not outlive the bench.
    let admin = common::Session::new(&base, "admin", common::ADMIN_PASSWORD).await;
    common::delete_space(&admin, &id).await;

    let (h50, h95) = stats(hangar_times);
    let (d50, d95) = stats(docker_times);
    println!("start latency over {ROUNDS} rounds (busybox image, 1 CU, one volume):");
    println!("  hangar start → running   median {h50:7.1} ms   p95 {h95:7.1} ms");
    println!("  docker run -d            median {d50:7.1} ms   p95 {d95:7.1} ms");
    println!(
        "  ratio hangar / docker    median {:.2}x        p95 {:.2}x",
        h50 / d50,
        h95 / d95
    );
}
