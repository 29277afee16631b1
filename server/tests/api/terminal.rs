//! The web terminal over a real WebSocket into a real container.

use std::time::{Duration, Instant};

use futures_util::SinkExt;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio_tungstenite::tungstenite::Message;

use crate::support::{admin, both_dbs, Client, TestDb, TestServer};
use crate::ws::{connect, session_id};

/// A running space of the busybox image, and its owner's session cookie.
pub async fn running_space(server: &TestServer) -> (Client, String, String) {
    let admin = admin(server).await;
    let (_, ann) = admin.new_member(server, "ann", json!({})).await;
    let tpl = admin.new_template("box", 0, json!([])).await;
    let id = ann
        .post(
            "/api/v1/spaces",
            json!({"name": "term", "template_id": tpl}),
        )
        .await
        .id();
    ann.post_empty(&format!("/api/v1/spaces/{id}/start")).await;
    ann.wait_for_state(&id, "running").await;
    let cookie = server.login_cookie("ann", "member-password").await;
    (ann, id, cookie)
}

both_dbs!(echo_resize_shared_viewers_reconnect_and_exit);
async fn echo_resize_shared_viewers_reconnect_and_exit(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let (_ann, id, cookie) = running_space(&server).await;
    let session = session_id();
    let origin = format!("http://{}", server.addr);

    let mut first = connect(&server, &cookie, &id, &session, Some(&origin))
        .await
        .unwrap();
    first.send("echo hello-$((6*7))\n").await;
    first.expect("hello-42").await;

    first
        .control(json!({"type": "resize", "cols": 100, "rows": 40}))
        .await;
    first.send("stty size\n").await;
    first.expect("40 100").await;

    // A second viewer of the same session sees the same shell.
    let mut second = connect(&server, &cookie, &id, &session, None)
        .await
        .unwrap();
    first.send("echo both-$((2+3))\n").await;
    first.expect("both-5").await;
    second.expect("both-5").await;

    // Dropping and reattaching shows the earlier output again (the screen is kept).
    drop(first);
    drop(second);
    let mut again = connect(&server, &cookie, &id, &session, None)
        .await
        .unwrap();
    again.expect("hello-42").await;
    // A new session id is a new shell.
    let mut fresh = connect(&server, &cookie, &id, &session_id(), None)
        .await
        .unwrap();
    fresh.send("echo $$\n").await;
    fresh.read_until(Duration::from_secs(2), |_| false).await;
    assert!(!String::from_utf8_lossy(&fresh.output).contains("hello-42"));

    again.send("exit 3\n").await;
    let exited = again
        .read_until(Duration::from_secs(10), |v| !v.controls.is_empty())
        .await;
    assert!(exited);
    assert_eq!(again.controls[0], json!({"type": "exit", "code": 3}));
    server.stop().await;
}

both_dbs!(large_pastes_and_binary_bytes_arrive_intact);
async fn large_pastes_and_binary_bytes_arrive_intact(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let (_ann, id, cookie) = running_space(&server).await;
    let mut viewer = connect(&server, &cookie, &id, &session_id(), None)
        .await
        .unwrap();

    // 1 MiB in lines (a TTY's line discipline caps a line at 4 KiB), without echo.
    let mut paste = String::new();
    let mut n = 0;
    while paste.len() < 1 << 20 {
        paste.push_str(&format!("{n:08} {}\n", "x".repeat(90)));
        n += 1;
    }
    let digest: String = Sha256::digest(paste.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    viewer
        .send("stty -echo; cat > /tmp/paste; stty echo; sha256sum /tmp/paste; echo done-$((1+1))\n")
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // In pieces well below the message limit, as the page sends a paste.
    for piece in paste.as_bytes().chunks(64 * 1024) {
        viewer
            .socket
            .send(Message::Binary(piece.to_vec().into()))
            .await
            .unwrap();
    }
    viewer
        .socket
        .send(Message::Binary(vec![4u8].into()))
        .await
        .unwrap(); // Ctrl-D ends cat
    viewer.expect("done-2").await;
    let text = String::from_utf8_lossy(&viewer.output).to_string();
    assert!(
        text.contains(&digest),
        "sha256 of the paste differs: {text}"
    );

    // Raw bytes, NUL included, both ways.
    viewer.send("stty raw -echo; head -c 5 | od -An -tx1; stty sane; printf 'A\\000\\377\\303\\251Z'; echo\n").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    viewer
        .socket
        .send(Message::Binary(vec![0x00, 0xff, 0xc3, 0xa9, 0x01].into()))
        .await
        .unwrap();
    viewer.expect("00 ff c3 a9 01").await;
    let found = viewer
        .read_until(Duration::from_secs(10), |v| {
            v.output.windows(6).any(|w| w == b"A\x00\xff\xc3\xa9Z")
        })
        .await;
    assert!(
        found,
        "binary output altered: {:?}",
        viewer.output.iter().rev().take(64).collect::<Vec<_>>()
    );
    server.stop().await;
}

both_dbs!(revocation_stop_and_strangers);
async fn revocation_stop_and_strangers(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let (ann, id, ann_cookie) = running_space(&server).await;
    let admin = admin(&server).await;
    let (bob_id, _bob) = admin.new_member(&server, "bob", json!({})).await;
    let (_, _eve) = admin.new_member(&server, "eve", json!({})).await;
    let bob_cookie = server.login_cookie("bob", "member-password").await;
    let eve_cookie = server.login_cookie("eve", "member-password").await;

    assert_eq!(
        connect(&server, &eve_cookie, &id, &session_id(), None)
            .await
            .err(),
        Some(404)
    );
    assert_eq!(
        connect(&server, "", &id, &session_id(), None).await.err(),
        Some(401)
    );
    assert_eq!(
        connect(
            &server,
            &ann_cookie,
            &id,
            &session_id(),
            Some("http://evil.example")
        )
        .await
        .err(),
        Some(403)
    );
    assert_eq!(
        connect(&server, &ann_cookie, &id, "not-a-uuid", None)
            .await
            .err(),
        Some(400)
    );

    ann.put(&format!("/api/v1/spaces/{id}/shares/{bob_id}"))
        .await;
    let session = session_id();
    let mut owner_view = connect(&server, &ann_cookie, &id, &session, None)
        .await
        .unwrap();
    // The same id is a shell of bob's own (see
    // `a_terminal_session_is_its_starters_alone`).
    let mut bob_view = connect(&server, &bob_cookie, &id, &session, None)
        .await
        .unwrap();
    bob_view.send("echo from-bob-$((1+2))\n").await;
    bob_view.expect("from-bob-3").await;

    ann.delete(&format!("/api/v1/spaces/{id}/shares/{bob_id}"))
        .await;
    // The right is gone once the revocation is answered: from then on, at most a second.
    let revoked_at = Instant::now();
    let gone = bob_view
        .read_until(Duration::from_secs(1), |v| v.closed)
        .await;
    assert!(
        gone && revoked_at.elapsed() < Duration::from_secs(1),
        "bob still connected"
    );
    assert_eq!(bob_view.controls[0]["type"], "error");
    assert!(bob_view.controls[0]["message"]
        .as_str()
        .unwrap()
        .contains("revoked"));
    // The owner stays.
    owner_view.send("echo still-here\n").await;
    owner_view.expect("still-here").await;

    // Stopping the space closes every session with a message.
    ann.post_empty(&format!("/api/v1/spaces/{id}/stop")).await;
    let closed = owner_view
        .read_until(Duration::from_secs(10), |v| v.closed)
        .await;
    assert!(closed);
    assert!(
        owner_view
            .controls
            .iter()
            .any(|c| c["message"].as_str().unwrap_or("").contains("stopping")),
        "{:?}",
        owner_view.controls
    );
    ann.wait_for_state(&id, "stopped").await;
    // No terminal into a stopped space.
    assert_eq!(
        connect(&server, &ann_cookie, &id, &session_id(), None)
            .await
            .err(),
        Some(409)
    );
    server.stop().await;
}

/// Waits for the server to close `view`; asserts it did within a second, saying why.
async fn closed_within_a_second(view: &mut crate::ws::Viewer, why: &str) {
    let since = Instant::now();
    let closed = view.read_until(Duration::from_secs(1), |v| v.closed).await;
    assert!(
        closed && since.elapsed() < Duration::from_secs(1),
        "terminal still open 1 s after the right was gone ({why})"
    );
    assert!(
        view.controls
            .iter()
            .any(|c| c["message"].as_str().unwrap_or("").contains(why)),
        "{:?}",
        view.controls
    );
}

both_dbs!(a_terminal_closes_within_a_second_once_its_user_loses_the_right);
async fn a_terminal_closes_within_a_second_once_its_user_loses_the_right(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let (_ann, id, cookie) = running_space(&server).await;
    let admin = admin(&server).await;
    let users = admin.get("/api/v1/users").await;
    let ann_id = users
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "ann")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Signing out closes the terminals opened with that session, also one busy printing
    // (each of its writes wakes the terminal's loop, which must not put the look off).
    let mut view = connect(&server, &cookie, &id, &session_id(), None)
        .await
        .unwrap();
    view.send("while :; do echo up-$((1+1)); sleep 0.002; done\n")
        .await;
    view.expect("up-2").await;
    let out = server
        .client
        .post(server.url("/api/v1/auth/logout"))
        .header(reqwest::header::COOKIE, &cookie)
        .header(reqwest::header::ORIGIN, server.origin())
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    closed_within_a_second(&mut view, "signed out").await;

    // Deactivating the user closes the terminal of another of their sessions.
    let cookie = server.login_cookie("ann", "member-password").await;
    let mut view = connect(&server, &cookie, &id, &session_id(), None)
        .await
        .unwrap();
    view.send("echo again-$((2+2))\n").await;
    view.expect("again-4").await;
    let deactivated = admin
        .patch(&format!("/api/v1/users/{ann_id}"), json!({"active": false}))
        .await;
    assert_eq!(deactivated.status, 200, "{deactivated:?}");
    closed_within_a_second(&mut view, "deactivated").await;
    server.stop().await;
}

both_dbs!(a_session_without_viewers_ends_after_the_idle_time);
async fn a_session_without_viewers_ends_after_the_idle_time(db: TestDb) {
    let server = TestServer::start(&db, &["--terminal-idle-secs", "1"]).await;
    let (_ann, id, cookie) = running_space(&server).await;
    let session = session_id();
    let mut first = connect(&server, &cookie, &id, &session, None)
        .await
        .unwrap();
    first
        .send("export MARK=kept-$((20+22)); sleep 4242 & echo $MARK\n")
        .await;
    first.expect("kept-42").await;
    drop(first);
    // Back within the idle time: the same shell.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut back = connect(&server, &cookie, &id, &session, None)
        .await
        .unwrap();
    back.send("echo again-$MARK\n").await;
    back.expect("again-kept-42").await;
    drop(back);
    // Gone for longer than the idle time: a new shell under the same id.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let mut later = connect(&server, &cookie, &id, &session, None)
        .await
        .unwrap();
    later.send("echo later-[$MARK]\n").await;
    later.expect("later-[]").await;
    // The ended session's shell and what it started are gone from the container.
    let (_, processes) = crate::support::docker(&["exec", &format!("hangar-{id}"), "ps"]).await;
    assert!(!processes.contains("sleep 4242"), "{processes}");
    server.stop().await;
}

both_dbs!(a_reattached_viewer_gets_the_lines_that_scrolled_off_before_the_screen);
async fn a_reattached_viewer_gets_the_lines_that_scrolled_off_before_the_screen(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let (_ann, id, cookie) = running_space(&server).await;
    let session = session_id();
    let mut first = connect(&server, &cookie, &id, &session, None)
        .await
        .unwrap();
    first.send("seq 1 3000; echo done-$((1+1))\n").await;
    first.expect("done-2").await;
    drop(first);

    // A reload: the first frame holds the history (lines long gone from the 24-row screen),
    // then the screen.
    let mut again = connect(&server, &cookie, &id, &session, None)
        .await
        .unwrap();
    again.expect("done-2").await;
    let replay = String::from_utf8_lossy(&again.output).into_owned();
    let around_2000 = (1995..=2005)
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join("\r\n");
    let at = replay.find("\r\n1990").unwrap_or(0);
    assert!(
        replay.contains(&around_2000),
        "{:?}",
        &replay[at..(at + 300).min(replay.len())]
    );
    assert!(
        replay.contains("\r\n1\r\n2\r\n3\r\n"),
        "the history starts at the top"
    );
    let history_ends = replay.find("\x1b[H\x1b[2J").expect("the screen follows");
    assert!(replay.find("\r\n2005\r\n").unwrap() < history_ends);
    server.stop().await;
}

/// What `view`'s shell prints for `echo <tag>-$$`: its process id.
async fn shell_pid(view: &mut crate::ws::Viewer, tag: &str) -> String {
    view.send(&format!("echo {tag}-$$-end\n")).await;
    let found = view
        .read_until(Duration::from_secs(10), |v| {
            pid_in(&String::from_utf8_lossy(&v.output), tag).is_some()
        })
        .await;
    assert!(found, "no pid: {:?}", String::from_utf8_lossy(&view.output));
    pid_in(&String::from_utf8_lossy(&view.output), tag).unwrap()
}

/// The digits printed between `<tag>-` and `-end` (not the echoed command line).
fn pid_in(output: &str, tag: &str) -> Option<String> {
    output
        .match_indices(&format!("{tag}-"))
        .find_map(|(at, found)| {
            let rest = &output[at + found.len()..];
            let (digits, after) = rest.split_at(rest.find(|c: char| !c.is_ascii_digit())?);
            (!digits.is_empty() && after.starts_with("-end")).then(|| digits.to_owned())
        })
}

// A terminal session belongs to the user who started it: a sharee, or an admin, who names
// the same (space, id) gets a shell of their own and never reads or types into the owner's.
both_dbs!(a_terminal_session_is_its_starters_alone);
async fn a_terminal_session_is_its_starters_alone(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let (ann, id, ann_cookie) = running_space(&server).await;
    let admin = admin(&server).await;
    admin.new_member(&server, "bob", json!({})).await;
    assert_eq!(
        ann.put(&format!("/api/v1/spaces/{id}/shares/bob"))
            .await
            .status,
        200
    );
    let bob_cookie = server.login_cookie("bob", "member-password").await;
    let admin_cookie = server
        .login_cookie("admin", crate::support::ADMIN_PASSWORD)
        .await;
    let session = session_id();

    let mut ann_view = connect(&server, &ann_cookie, &id, &session, None)
        .await
        .unwrap();
    ann_view.send("echo ann-typed-$((40+2))\n").await;
    ann_view.expect("ann-typed-42").await;
    let ann_pid = shell_pid(&mut ann_view, "ann").await;

    for (who, cookie) in [("bob", &bob_cookie), ("admin", &admin_cookie)] {
        let mut view = connect(&server, cookie, &id, &session, None).await.unwrap();
        let pid = shell_pid(&mut view, who).await;
        assert_ne!(pid, ann_pid, "{who} joined ann's shell");
        view.send(&format!("echo typed-by-{who}\n")).await;
        view.expect(&format!("typed-by-{who}")).await;
        let theirs = String::from_utf8_lossy(&view.output).into_owned();
        assert!(
            !theirs.contains("ann-typed-42"),
            "{who} saw ann's screen: {theirs}"
        );
        // Ann's stream, in order: had they shared her shell, what they typed would come
        // before this.
        ann_view.send(&format!("echo after-{who}\n")).await;
        ann_view.expect(&format!("after-{who}")).await;
        let hers = String::from_utf8_lossy(&ann_view.output).into_owned();
        assert!(
            !hers.contains(&format!("typed-by-{who}")),
            "{who} typed into ann's shell: {hers}"
        );
    }
    // Ann's own second viewer still joins her session.
    let mut again = connect(&server, &ann_cookie, &id, &session, None)
        .await
        .unwrap();
    again.expect("ann-typed-42").await;
    server.stop().await;
}
