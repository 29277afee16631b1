//! The proxy with the apps it is for: a WebSocket echo server and the desktop (TigerVNC,
//! started by Hangar) in spaces of the full image (`scripts/images.sh full`), and a 100 MB
//! download through a real `hangar` process whose memory is watched.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use reqwest::header::COOKIE;
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::ports::{app_template, running, PATH_APPS};
use crate::support::{
    admin, both_dbs, open_websocket as open, Process, TempDb, TestDb, TestServer,
};

/// The image with python3, code-server and the desktop.
pub const FULL_IMAGE: &str = "hangar/full:bookworm";
/// A WebSocket echo server in Python's standard library.
pub const WS_ECHO: &str = include_str!("../fixtures/ws_echo.py");

both_dbs!(websockets_pass_through_the_proxy);
async fn websockets_pass_through_the_proxy(db: TestDb) {
    let server = TestServer::start(&db, PATH_APPS).await;
    let admin = admin(&server).await;
    let (_, ann) = admin.new_member(&server, "ann", json!({})).await;
    admin.new_member(&server, "bob", json!({})).await;
    let created = admin
        .post(
            "/api/v1/templates",
            json!({"name": "echo", "image": FULL_IMAGE, "compute_units": 0,
                   "features": ["port_forwarding"], "command": ["python3", "-c", WS_ECHO, "8765"]}),
        )
        .await;
    let id = running(&ann, "echo", &created.id()).await;
    ann.put(&format!("/api/v1/spaces/{id}/shares/bob")).await;
    let bob_cookie = server.login_cookie("bob", "member-password").await;

    let mut socket = open(&server, "/spaces/ann/echo/ports/8765/", &bob_cookie, None).await;
    socket
        .send(Message::Text("hello through hangar".into()))
        .await
        .unwrap();
    let reply = socket.next().await.unwrap().unwrap();
    assert_eq!(reply, Message::Text("hello through hangar".into()));
    let bytes: Vec<u8> = (0..=255u8).cycle().take(200_000).collect();
    socket
        .send(Message::Binary(bytes.clone().into()))
        .await
        .unwrap();
    let reply = socket.next().await.unwrap().unwrap();
    assert_eq!(reply.into_data().as_ref(), bytes.as_slice());

    // The share is revoked: the connection closes within a second.
    ann.delete(&format!("/api/v1/spaces/{id}/shares/bob")).await;
    let revoked = Instant::now();
    let closed = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match socket.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok() && revoked.elapsed() < Duration::from_millis(1500));
    server.stop().await;
}

both_dbs!(the_desktop_is_bridged_to_vnc_for_those_allowed);
async fn the_desktop_is_bridged_to_vnc_for_those_allowed(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    let (_, ann) = admin.new_member(&server, "ann", json!({})).await;
    let created = admin
        .post(
            "/api/v1/templates",
            json!({"name": "desk", "image": FULL_IMAGE, "compute_units": 0, "features": ["vnc"]}),
        )
        .await;
    let id = running(&ann, "desk", &created.id()).await;
    let cookie = server.login_cookie("ann", "member-password").await;

    // The space's desktop speaks RFB through Hangar's WebSocket; no port of it is exposed.
    let mut socket = open(
        &server,
        &format!("/api/v1/spaces/{id}/vnc"),
        &cookie,
        Some("binary"),
    )
    .await;
    let greeting = tokio::time::timeout(Duration::from_secs(10), socket.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(greeting.into_data().starts_with(b"RFB 003.008"));
    let (_, ports) = crate::support::docker(&["port", &format!("hangar-{id}")]).await;
    assert_eq!(ports, "", "no port of the space is published");
    // Its start is in the space's history (written once the launch returns, which may be
    // after the desktop already answers).
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let history = ann.get(&format!("/api/v1/spaces/{id}/history")).await;
        if history.body.to_string().contains("space.app") {
            break;
        }
        assert!(Instant::now() < deadline, "{history:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // From another site: refused before upgrading.
    let mut foreign = format!("ws://{}/api/v1/spaces/{id}/vnc", server.addr)
        .into_client_request()
        .unwrap();
    foreign
        .headers_mut()
        .insert("cookie", cookie.parse().unwrap());
    foreign
        .headers_mut()
        .insert("origin", "http://evil.example".parse().unwrap());
    match tokio_tungstenite::connect_async(foreign).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403)
        }
        other => panic!("a foreign origin got {other:?}"),
    }
    // Without the `vnc` permission: 403, and the open desktop closes.
    let denied = admin
        .send(
            reqwest::Method::PUT,
            "/api/v1/feature-rules",
            Some(json!({"scope": "user", "subject": "ann", "feature": "vnc", "rule": "deny"})),
        )
        .await;
    assert_eq!(denied.status, 200);
    let closed = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match socket.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the desktop stayed open without the permission"
    );
    let mut again = format!("ws://{}/api/v1/spaces/{id}/vnc", server.addr)
        .into_client_request()
        .unwrap();
    again
        .headers_mut()
        .insert("cookie", cookie.parse().unwrap());
    match tokio_tungstenite::connect_async(again).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403)
        }
        other => panic!("the desktop opened without the permission: {other:?}"),
    }
    server.stop().await;
}

/// The resident memory of a process, in bytes.
fn rss_of(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb * 1024
}

#[tokio::test]
async fn a_100_mb_download_streams_with_flat_server_memory() {
    let db = TempDb::new();
    let process = Process::start_with(&db.url(), &[("HANGAR_PATH_APPS", "true")]).await;
    let pid = process.child.id().unwrap();
    let server = &process.server;
    let admin = admin(server).await;
    let (_, ann) = admin.new_member(server, "ann", json!({})).await;
    let tpl = app_template(
        &admin,
        "big",
        json!(["port_forwarding"]),
        json!({"BIG_MB": "100"}),
    )
    .await;
    running(&ann, "big", &tpl).await;
    let cookie = server.login_cookie("ann", "member-password").await;
    // Warm up: the first proxied request sets up the client.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let small = server
            .get_with_cookie("/spaces/ann/big/ports/8080/", &cookie)
            .await;
        if small.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "{}", small.text().await.unwrap());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // dd writes the file as the space starts: wait until all of it is there.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let head = server
            .client
            .head(server.url("/spaces/ann/big/ports/8080/big"))
            .header(COOKIE, &cookie)
            .send()
            .await
            .unwrap();
        let length = head
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok());
        if length == Some("104857600") {
            break;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let before = rss_of(pid);
    let response = server
        .get_with_cookie("/spaces/ann/big/ports/8080/big", &cookie)
        .await;
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let (mut total, mut peak) = (0u64, before);
    while let Some(chunk) = body.next().await {
        total += chunk.unwrap().len() as u64;
        peak = peak.max(rss_of(pid));
    }
    assert_eq!(total, 100 << 20);
    let grew = peak.saturating_sub(before);
    assert!(
        grew < 24 << 20,
        "server memory grew by {} MB over a 100 MB download",
        grew >> 20
    );
    server.cleanup().await;
}
