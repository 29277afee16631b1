//! The port proxy against going straight to the space's container address and against nginx
//! (Debian's package, started by the bench as a plain reverse proxy to the same container), in
//! one run on the same space: requests/s and p50/p99 of a small GET with 1 and 50 concurrent
//! clients (keep-alive connections), WebSocket echo p50, and a 1 GiB download's MB/s. Goals
//! (issue #32): at 1 client p50 ≤ direct + 0.15 ms and ≤ nginx + 0.05 ms; at 50 clients ≥
//! nginx's rate and ≥ 0.4× direct; the download ≥ 0.9× direct; WebSocket echo ≤ +0.05 ms.
//! Run on demand: `cargo bench -p server --bench proxy` (needs `scripts/images.sh full`: the
//! space runs Node's HTTP server and a Python WebSocket echo server; and nginx: `make setup`).
//!
//! Hangar is the real release binary, a process of its own; the proxied requests are
//! authenticated by a session cookie, by path (`/spaces/{owner}/{space}/ports/{port}/…`), each
//! checked in full (session, space, feature permissions) as any request is.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{free_port, ms, percentile, wait_running, Hangar, Session, Size, ADMIN_PASSWORD};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const IMAGE: &str = "hangar/full:bookworm";
/// A small GET on `/`, and N MiB on `/big/N` (a 1 MiB buffer written N times).
const HTTP_APP: &str = r#"
const http = require('http');
const chunk = Buffer.alloc(1 << 20, 120);
http.createServer((req, res) => {
  if (req.url.startsWith('/big/')) {
    let left = Number(req.url.slice(5));
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(left * (1 << 20)) });
    const pump = () => {
      while (left > 0) { left--; if (!res.write(chunk)) { res.once('drain', pump); return; } }
      res.end();
    };
    pump();
  } else {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '5' });
    res.end('hello');
  }
}).listen(8080, '0.0.0.0');
"#;
const WS_ECHO: &str = include_str!("../tests/fixtures/ws_echo.py");
const PHASE: Size<Duration> = Size(Duration::from_secs(8), Duration::from_millis(500));
const WARMUP: Size<Duration> = Size(Duration::from_secs(2), Duration::from_millis(200));
const WS_SAMPLES: Size<usize> = Size(2_000, 50);

/// Requests/s and latencies of small GETs on `url` from `clients` concurrent clients.
async fn load(url: &str, cookie: Option<&str>, clients: usize) -> (f64, Duration, Duration) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .unwrap();
    let run = |until: Instant| {
        let tasks: Vec<_> = (0..clients)
            .map(|_| {
                let (client, url, cookie) =
                    (client.clone(), url.to_owned(), cookie.map(str::to_owned));
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    while Instant::now() < until {
                        let started = Instant::now();
                        let mut request = client.get(&url);
                        if let Some(cookie) = &cookie {
                            request = request.header("cookie", cookie);
                        }
                        let response = request.send().await.unwrap();
                        assert_eq!(response.status(), 200);
                        response.bytes().await.unwrap();
                        latencies.push(started.elapsed());
                    }
                    latencies
                })
            })
            .collect();
        async move {
            let mut all = Vec::new();
            for task in tasks {
                all.extend(task.await.unwrap());
            }
            all
        }
    };
    run(Instant::now() + WARMUP.get()).await;
    let started = Instant::now();
    let mut latencies = run(started + PHASE.get()).await;
    let rate = latencies.len() as f64 / started.elapsed().as_secs_f64();
    latencies.sort();
    (
        rate,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
    )
}

/// Median round trip of a small WebSocket message.
async fn echo(url: &str, cookie: Option<&str>) -> Duration {
    let mut request = url.into_client_request().unwrap();
    if let Some(cookie) = cookie {
        request
            .headers_mut()
            .insert("cookie", cookie.parse().unwrap());
    }
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let mut samples = Vec::with_capacity(WS_SAMPLES.get());
    for i in 0..WS_SAMPLES.get() + 100 {
        let started = Instant::now();
        socket
            .send(Message::Text(format!("ping {i}").into()))
            .await
            .unwrap();
        socket.next().await.unwrap().unwrap();
        if i >= 100 {
            samples.push(started.elapsed());
        }
    }
    samples.sort();
    percentile(&samples, 0.5)
}

/// The download's size in MiB.
const DOWNLOAD_MIB: Size<usize> = Size(1024, 8);
/// Downloads alternate direct and proxied; the figure is the median.
const DOWNLOAD_ROUNDS: Size<usize> = Size(3, 1);

/// MB/s of downloading [`DOWNLOAD_MIB`] from `base`.
async fn download(base: &str, cookie: Option<&str>) -> f64 {
    let mut request = reqwest::Client::new().get(format!("{base}/big/{DOWNLOAD_MIB}"));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let started = Instant::now();
    let mut body = request.send().await.unwrap().bytes_stream();
    let mut total = 0usize;
    while let Some(chunk) = body.next().await {
        total += chunk.unwrap().len();
    }
    assert_eq!(total, DOWNLOAD_MIB.get() << 20);
    total as f64 / 1e6 / started.elapsed().as_secs_f64()
}

/// nginx as a plain reverse proxy to the app at `upstream` (`ip:port`), with kept-alive
/// connections to it (as Hangar pools its own), on a loopback port; stopped when dropped.
struct Nginx {
    child: std::process::Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Nginx {
    fn start(upstream: &str) -> Nginx {
        let binary = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .find(|path| std::path::Path::new(path).exists())
            .expect("no nginx: install Debian's nginx package (`make setup` does)");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let root = dir.path().display();
        let config = format!(
            "daemon off; user root; worker_processes auto; pid {root}/nginx.pid; \
             error_log {root}/error.log; events {{ worker_connections 1024; }} \
             http {{ access_log off; client_body_temp_path {root}/body; proxy_temp_path {root}/proxy; \
             fastcgi_temp_path {root}/fastcgi; uwsgi_temp_path {root}/uwsgi; scgi_temp_path {root}/scgi; \
             upstream app {{ server {upstream}; keepalive 64; }} \
             server {{ listen 127.0.0.1:{port}; location / {{ proxy_pass http://app; \
             proxy_http_version 1.1; proxy_set_header Connection \"\"; }} }} }}"
        );
        let file = dir.path().join("nginx.conf");
        std::fs::write(&file, config).unwrap();
        let child = std::process::Command::new(binary)
            .args(["-p", &root.to_string(), "-c", file.to_str().unwrap()])
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nginx did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Nginx {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        }
    }
}

impl Drop for Nginx {
    /// SIGTERM, so that the master stops its workers too (killed, it would leave them).
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    // Apps by path on Hangar's origin are off unless asked for (since #26, apps get origins
    // of their own by default); the engine behind both ways in is the same.
    let hangar = Hangar::start_with(&url, &[("HANGAR_PATH_APPS", "true")]).await;
    let admin = Session::new(&hangar.base, "admin", ADMIN_PASSWORD).await;
    let post = |path: &str, body: serde_json::Value| {
        admin
            .request(reqwest::Method::POST, path)
            .json(&body)
            .send()
    };
    let command = "node -e \"$HTTP_APP\" & python3 -c \"$WS_ECHO\" 8765 & trap 'exit 0' TERM; wait"
        .to_string();
    let template: serde_json::Value = post(
        "/api/v1/templates",
        json!({"name": "bench", "image": IMAGE, "compute_units": 0, "features": ["port_forwarding"],
               "command": ["/bin/sh", "-c", command], "env": {"HTTP_APP": HTTP_APP, "WS_ECHO": WS_ECHO}}),
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
    post(&format!("/api/v1/spaces/{id}/start"), json!({}))
        .await
        .unwrap();
    wait_running(&admin, &id, Instant::now() + Duration::from_secs(60)).await;
    let inspect = std::process::Command::new("docker")
        .args([
            "inspect",
            "-f",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
            &format!("hangar-{id}"),
        ])
        .output()
        .unwrap();
    let ip = String::from_utf8(inspect.stdout).unwrap().trim().to_owned();
    let direct = format!("http://{ip}:8080");
    let proxied = format!("{}/spaces/admin/bench/ports/8080", hangar.base);
    let cookie = Some(admin.cookie.as_str());
    let probe = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while probe.get(format!("{direct}/")).send().await.is_err() {
        assert!(
            Instant::now() < deadline,
            "the apps in the space did not start"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // And through Hangar, before anything is measured.
    loop {
        let answer = admin
            .request(reqwest::Method::GET, "/spaces/admin/bench/ports/8080/")
            .send()
            .await
            .unwrap()
            .status();
        if answer == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the proxy did not reach the app: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    let nginx = Nginx::start(&format!("{ip}:8080"));
    println!(
        "proxy bench: Hangar (release) proxying by path vs straight to the container ({ip}) and \
         vs nginx in front of it, same space, same run"
    );
    println!(
        "{:<34} {:>14} {:>14} {:>14} {:>8}  goal",
        "", "direct", "nginx", "through Hangar", "vs direct"
    );
    let mut all_met = true;
    for clients in [1, 50] {
        let (d_rate, d_p50, d_p99) = load(&format!("{direct}/"), None, clients).await;
        let (n_rate, n_p50, n_p99) = load(&format!("{}/", nginx.base), None, clients).await;
        let (p_rate, p_p50, p_p99) = load(&format!("{proxied}/"), cookie, clients).await;
        let ratio = p_rate / d_rate;
        let extra = ms(p_p50) - ms(d_p50);
        let over_nginx = ms(p_p50) - ms(n_p50);
        let rate_goal = if clients == 1 {
            "".to_owned()
        } else {
            let met = p_rate >= n_rate && ratio >= 0.4;
            all_met &= met;
            format!("≥ nginx and ≥ 0.4x: {}", verdict(met))
        };
        println!(
            "{:<34} {:>12.0}/s {:>12.0}/s {:>12.0}/s {:>8.2}x  {rate_goal}",
            format!("small GET, {clients} client(s): rate"),
            d_rate,
            n_rate,
            p_rate,
            ratio,
        );
        let latency_goal = if clients == 1 {
            let met = extra <= 0.15 && over_nginx <= 0.05;
            all_met &= met;
            format!(
                "≤ direct +0.15 ms and ≤ nginx +0.05 ms ({over_nginx:+.3}): {}",
                verdict(met)
            )
        } else {
            "".to_owned()
        };
        println!(
            "{:<34} {:>11.3} ms {:>11.3} ms {:>11.3} ms {:>+8.3}  {latency_goal}",
            "  p50",
            ms(d_p50),
            ms(n_p50),
            ms(p_p50),
            extra,
        );
        println!(
            "{:<34} {:>11.3} ms {:>11.3} ms {:>11.3} ms",
            "  p99",
            ms(d_p99),
            ms(n_p99),
            ms(p_p99)
        );
    }
    let d_ws = echo(&format!("ws://{ip}:8765/"), None).await;
    let p_ws = echo(
        &format!("ws://{}/spaces/admin/bench/ports/8765/", hangar.addr()),
        cookie,
    )
    .await;
    let ws_extra = ms(p_ws) - ms(d_ws);
    all_met &= ws_extra <= 0.05;
    println!(
        "{:<34} {:>11.3} ms {:>14} {:>11.3} ms {:>+8.3}  ≤ +0.05 ms: {}",
        "WebSocket echo p50",
        ms(d_ws),
        "",
        ms(p_ws),
        ws_extra,
        verdict(ws_extra <= 0.05)
    );
    let mut rates = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..DOWNLOAD_ROUNDS.get() {
        rates.0.push(download(&direct, None).await);
        rates.1.push(download(&nginx.base, None).await);
        rates.2.push(download(&proxied, cookie).await);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let (d_mb, n_mb, p_mb) = (
        median(&mut rates.0),
        median(&mut rates.1),
        median(&mut rates.2),
    );
    all_met &= p_mb / d_mb >= 0.9;
    println!(
        "{:<34} {:>9.0} MB/s {:>9.0} MB/s {:>9.0} MB/s {:>8.2}x  ≥ 0.9x: {}",
        format!("{DOWNLOAD_MIB} MiB download (median of {DOWNLOAD_ROUNDS})"),
        d_mb,
        n_mb,
        p_mb,
        p_mb / d_mb,
        verdict(p_mb / d_mb >= 0.9)
    );
    println!("all goals {}", if all_met { "met" } else { "NOT met" });

    drop(nginx);
    common::delete_space(&admin, &id).await;
    hangar.stop().await;
}
