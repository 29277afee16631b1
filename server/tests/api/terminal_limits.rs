//! The web terminal's limits (#15): message size, queued input, sessions per user and per
//! space, viewers that never arrive; and a fuzz of its WebSocket with random and malformed
//! frames, after which nothing is broken and no session is left behind.

use std::time::{Duration, Instant};

use futures_util::SinkExt;
use rand::{Rng, SeedableRng};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{admin, docker, TestDb, TestServer};
use crate::terminal::running_space;
use crate::ws::{connect, session_id};

/// Waits until the server holds no terminal session any more.
async fn no_session_left(server: &TestServer, within: Duration) {
    let terminals = &server.services.as_ref().unwrap().terminals;
    let deadline = Instant::now() + within;
    while terminals.session_count() > 0 {
        assert!(
            Instant::now() < deadline,
            "{} terminal session(s) left behind",
            terminals.session_count()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_message_over_the_limit_closes_the_socket_and_leaves_no_session() {
    let db = TestDb::sqlite();
    let server = TestServer::start(
        &db,
        &[
            "--websocket-max-message-bytes",
            "65536",
            "--terminal-idle-secs",
            "1",
        ],
    )
    .await;
    let (_ann, id, cookie) = running_space(&server).await;
    let mut viewer = connect(&server, &cookie, &id, &session_id(), None)
        .await
        .unwrap();
    viewer.send("echo fits-$((20+1))\n").await;
    viewer.expect("fits-21").await;
    viewer
        .socket
        .send(Message::Binary(vec![b'x'; 100 * 1024].into()))
        .await
        .unwrap();
    let closed = viewer
        .read_until(Duration::from_secs(5), |v| v.closed)
        .await;
    assert!(closed, "a 100 KiB message was taken");
    no_session_left(&server, Duration::from_secs(10)).await;
    server.stop().await;
}

#[tokio::test]
async fn terminal_sessions_are_capped_per_user_and_per_space() {
    let db = TestDb::sqlite();
    let server = TestServer::start(
        &db,
        &[
            "--terminal-sessions-per-user",
            "2",
            "--terminal-sessions-per-space",
            "3",
        ],
    )
    .await;
    let (ann, id, cookie) = running_space(&server).await;
    let first = session_id();
    let _a = connect(&server, &cookie, &id, &first, None).await.unwrap();
    let _b = connect(&server, &cookie, &id, &session_id(), None)
        .await
        .unwrap();
    assert_eq!(
        connect(&server, &cookie, &id, &session_id(), None)
            .await
            .err(),
        Some(409)
    );
    // Another viewer of an open session is no new session.
    let _again = connect(&server, &cookie, &id, &first, None).await.unwrap();

    let admin = admin(&server).await;
    let (bob_id, _) = admin.new_member(&server, "bob", json!({})).await;
    ann.put(&format!("/api/v1/spaces/{id}/shares/{bob_id}"))
        .await;
    let bob = server.login_cookie("bob", "member-password").await;
    let _c = connect(&server, &bob, &id, &session_id(), None)
        .await
        .unwrap();
    // The space has as many as it may, whoever asks.
    assert_eq!(
        connect(&server, &bob, &id, &session_id(), None).await.err(),
        Some(409)
    );
    server.stop().await;
}

/// The upgrade request of a terminal WebSocket, for a client that speaks raw TCP.
fn upgrade_request(server: &TestServer, cookie: &str, space: &str, session: &str) -> String {
    format!(
        "GET /api/v1/spaces/{space}/terminal?session={session}&cols=80&rows=24 HTTP/1.1\r\n\
         Host: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Cookie: {cookie}\r\n\r\n",
        server.addr
    )
}

/// The processes of terminal sessions running in the space's container.
async fn session_processes(space: &str) -> usize {
    let script = "for p in /proc/[0-9]*; do tr '\\000' '\\n' < $p/environ 2>/dev/null \
                  | grep -q '^HANGAR_TERMINAL_SESSION=' && echo $p; done; true";
    let (ran, found) = docker(&["exec", &format!("hangar-{space}"), "sh", "-c", script]).await;
    assert!(ran, "cannot look into the space");
    found.lines().count()
}

/// Clients that ask for a terminal and are gone (reset) before the answer: their viewers
/// never arrive, and the sessions they started end after the idle time all the same, shells
/// included.
#[tokio::test]
async fn a_viewer_that_never_arrives_leaves_no_session() {
    let db = TestDb::sqlite();
    let server = TestServer::start(&db, &["--terminal-idle-secs", "1"]).await;
    let (_ann, id, cookie) = running_space(&server).await;
    for pause in [0, 20, 50, 100, 200] {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream
            .write_all(upgrade_request(&server, &cookie, &id, &session_id()).as_bytes())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(pause)).await;
        // Gone, with a reset rather than a goodbye.
        stream.set_zero_linger().unwrap();
        drop(stream);
    }
    no_session_left(&server, Duration::from_secs(10)).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = session_processes(&id).await;
        if left == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{left} shell process(es) left running"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    server.stop().await;
}

/// A shell that reads nothing holds at most a bounded amount of queued input; the rest waits
/// on the sender's side.
#[tokio::test]
async fn input_for_a_stalled_shell_is_bounded() {
    let db = TestDb::sqlite();
    let server = TestServer::start(&db, &[]).await;
    let (ann, id, cookie) = running_space(&server).await;
    let ann_id = ann.get("/api/v1/me").await.body["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let session = session_id();
    let mut viewer = connect(&server, &cookie, &id, &session, None)
        .await
        .unwrap();
    viewer
        .send("stty -echo; echo stalled-$((3*3)); sleep 600\n")
        .await;
    viewer.expect("stalled-9").await;
    let (mut sink, _stream) = futures_util::StreamExt::split(viewer.socket);
    let flood = tokio::spawn(async move {
        for _ in 0..128 {
            if sink
                .send(Message::Binary(vec![b'y'; 64 * 1024].into()))
                .await
                .is_err()
            {
                break;
            }
        }
        sink
    });
    let terminals = &server.services.as_ref().unwrap().terminals;
    let held = terminals.session(&id, &ann_id, &session).unwrap();
    let mut most = 0;
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        most = most.max(held.queued_input());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(most > 0, "the shell was not stalled: nothing queued");
    assert!(most <= 1 << 20, "{most} bytes of input queued");
    flood.abort();
    server.stop().await;
}

/// A WebSocket frame as a client writes it (`masked`, as clients must, unless testing that).
fn frame(fin: bool, rsv: u8, opcode: u8, masked: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | (rsv << 4) | opcode];
    let mask_bit = if masked { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n < 65536 => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if masked {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        out.extend_from_slice(&key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

/// Opens a terminal WebSocket by hand, writes `bytes` and reports whether the server closed
/// the connection within a few seconds.
async fn raw_session(
    server: &TestServer,
    cookie: &str,
    space: &str,
    session: &str,
    bytes: &[u8],
) -> bool {
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(upgrade_request(server, cookie, space, session).as_bytes())
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    // The server may close before all is written: that is an answer too.
    let _ = stream.write_all(bytes).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

/// Random binary input, malformed control messages and broken frames: the terminal survives
/// them all, answers a viewer afterwards, and leaves no session once everyone is gone.
#[tokio::test]
async fn random_and_malformed_frames_break_nothing() {
    let db = TestDb::sqlite();
    let server = TestServer::start(
        &db,
        &[
            "--terminal-idle-secs",
            "1",
            "--websocket-max-message-bytes",
            "65536",
        ],
    )
    .await;
    let (_ann, id, cookie) = running_space(&server).await;
    let session = session_id();
    let seed = std::env::var("HANGAR_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15_u64);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);

    // Through a well-behaved client: random bytes and control messages of every wrong kind.
    let controls = [
        r#"{"type":"resize","cols":0,"rows":0}"#.to_owned(),
        r#"{"type":"resize","cols":70000,"rows":5}"#.to_owned(),
        r#"{"type":"resize","cols":-1,"rows":5}"#.to_owned(),
        r#"{"type":"resize","cols":1000,"rows":1000,"x":1}"#.to_owned(),
        r#"{"type":"exit","code":1}"#.to_owned(),
        r#"{"type":null}"#.to_owned(),
        "[1,2,3]".to_owned(),
        "null".to_owned(),
        "{".repeat(10_000),
        "\u{0}\u{1b}[31m".to_owned(),
        String::new(),
    ];
    let mut viewer = connect(&server, &cookie, &id, &session, None)
        .await
        .unwrap();
    viewer.tail_only = true;
    for round in 0..300 {
        let message = match rng.gen_range(0..4) {
            0 => {
                let length = rng.gen_range(0..2048);
                // No Ctrl-D (4) or Ctrl-C (3): the shell should stay to be checked after.
                Message::Binary(
                    (0..length)
                        .map(|_| rng.gen_range(5..=255u8))
                        .collect::<Vec<u8>>()
                        .into(),
                )
            }
            1 => Message::Text(controls[rng.gen_range(0..controls.len())].clone().into()),
            2 => Message::Ping(vec![round as u8; rng.gen_range(0..125)].into()),
            _ => {
                let cols = rng.gen_range(1..=1000);
                let rows = rng.gen_range(1..=1000);
                Message::Text(
                    json!({"type": "resize", "cols": cols, "rows": rows})
                        .to_string()
                        .into(),
                )
            }
        };
        if viewer.socket.send(message).await.is_err() {
            break;
        }
    }
    // Drain what came back, then leave.
    viewer.read_until(Duration::from_secs(1), |_| false).await;
    drop(viewer);

    // Through a broken client: frames no WebSocket peer may send.
    let mut broken: Vec<(&str, Vec<u8>)> = vec![
        ("reserved opcode", frame(true, 0, 0x3, true, b"x")),
        ("reserved control opcode", frame(true, 0, 0xB, true, b"x")),
        ("reserved bits", frame(true, 0b111, 0x2, true, b"x")),
        ("unmasked", frame(true, 0, 0x2, false, b"x")),
        ("long ping", frame(true, 0, 0x9, true, &[0; 200])),
        ("fragmented ping", frame(false, 0, 0x9, true, b"x")),
        ("continuation first", frame(true, 0, 0x0, true, b"x")),
        (
            "text not utf-8",
            frame(true, 0, 0x1, true, &[0xff, 0xfe, 0xfd]),
        ),
        (
            "close with a bad code",
            frame(true, 0, 0x8, true, &999u16.to_be_bytes()),
        ),
        ("close of one byte", frame(true, 0, 0x8, true, &[1])),
        ("oversized", frame(true, 0, 0x2, true, &vec![0; 70_000])),
        (
            "a length of 2^63",
            vec![0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        ),
    ];
    for n in 0..8 {
        let garbage: Vec<u8> = (0..rng.gen_range(1..512)).map(|_| rng.gen()).collect();
        let _ = n;
        broken.push(("random bytes", garbage));
    }
    for (what, bytes) in &broken {
        let mut payload = bytes.clone();
        // After a valid frame, so that the broken one is not the first thing read.
        let mut first = frame(true, 0, 0x2, true, b"echo -n\n");
        first.append(&mut payload);
        let closed = raw_session(&server, &cookie, &id, &session, &first).await;
        if !what.starts_with("random") {
            assert!(closed, "the server kept a connection that sent {what}");
        }
    }

    // The terminal still answers, and the server still serves.
    let mut after = connect(&server, &cookie, &id, &session_id(), None)
        .await
        .unwrap();
    after.send("echo survived-$((40+2))\n").await;
    after.expect("survived-42").await;
    drop(after);
    let healthy = server
        .client
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(healthy.status(), 200);
    // Nobody attached any more: every session ends.
    no_session_left(&server, Duration::from_secs(15)).await;
    server.stop().await;
}
