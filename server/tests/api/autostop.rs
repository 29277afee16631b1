//! Spaces that stop and start themselves, against real containers: idle stops that see real
//! use (terminal typing, SSH output from the system's OpenSSH client, a proxied stream, an
//! upload) and not mere presence (a silent open SSH session), the longest run, schedules in
//! the owner's time zone across a daylight-saving change, a scheduled start over quota,
//! retention, a restart of Hangar mid-countdown and two servers on one PostgreSQL. Time is a
//! clock the test moves (`MovableClock`); each pass of the loop is run by the test
//! (`Services::autostop_once`), so nothing sleeps for minutes.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use hangar::domain::clock::MovableClock;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::{admin, both_dbs, Client, DatabaseUrl, TestDb, TestServer, TEST_IMAGE};

/// A server whose rules go by `clock`, with the loop's own passes far apart (the test runs
/// them) and activity written down only by them.
async fn start(db: &impl DatabaseUrl, clock: &Arc<MovableClock>, extra: &[&str]) -> TestServer {
    let mut flags = vec![
        "--autostop-interval-secs",
        "3600",
        "--activity-flush-secs",
        "300",
    ];
    flags.extend_from_slice(extra);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    TestServer::start_with_clock(listener, db, &flags, clock.clone()).await
}

/// One pass of the automatic stop loop on `server`.
async fn pass(server: &TestServer) {
    server
        .services
        .as_ref()
        .unwrap()
        .autostop_once()
        .await
        .unwrap();
}

fn minutes(n: i64) -> chrono::Duration {
    chrono::Duration::minutes(n)
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

/// A busybox template with these features and automatic stops.
async fn template(admin: &Client, name: &str, features: Value, autostop: Value) -> String {
    let created = admin
        .post(
            "/api/v1/templates",
            json!({
                "name": name, "image": TEST_IMAGE, "compute_units": 1, "features": features,
                "autostop": autostop,
            }),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    created.id()
}

/// A server on a clock the test moves, its admin, the member ann and a busybox template
/// `box` (terminal, file transfer) with these automatic stops.
struct Stage {
    clock: Arc<MovableClock>,
    server: TestServer,
    admin: Client,
    ann: Client,
    tpl: String,
}

async fn stage(db: &TestDb, extra: &[&str], ann_quota: Value, autostop: Value) -> Stage {
    let clock = Arc::new(MovableClock::default());
    let server = start(db, &clock, extra).await;
    let admin = admin(&server).await;
    let (_, ann) = admin.new_member(&server, "ann", ann_quota).await;
    let tpl = template(
        &admin,
        "box",
        json!(["terminal", "file_transfer"]),
        autostop,
    )
    .await;
    Stage {
        clock,
        server,
        admin,
        ann,
        tpl,
    }
}

/// ann's web terminal in the space, attached (its shell answered).
async fn attached_terminal(server: &TestServer, id: &str) -> crate::ws::Viewer {
    let cookie = server.login_cookie("ann", "member-password").await;
    let origin = server.url("");
    let mut viewer =
        crate::ws::connect(server, &cookie, id, &crate::ws::session_id(), Some(&origin))
            .await
            .unwrap();
    typed(&mut viewer, "attached").await;
    viewer
}

/// Types `echo <word>` and waits for all it prints: the word (computed by the shell, so not
/// the echo of the typing) and the prompt after it. Nothing is left on its way to arrive later
/// (it would count as activity at a later time of the clock).
async fn typed(viewer: &mut crate::ws::Viewer, word: &str) {
    viewer.send(&format!("echo {word}-$((40+2))\n")).await;
    let done = format!("{word}-42\r\n");
    let shown = viewer
        .read_until(Duration::from_secs(10), |v| {
            let out = String::from_utf8_lossy(&v.output);
            out.rsplit_once(done.as_str())
                .is_some_and(|(_, after)| after.contains("# "))
        })
        .await;
    assert!(shown, "{:?}", String::from_utf8_lossy(&viewer.output));
}

/// The space as its owner sees it.
async fn space(owner: &Client, id: &str) -> Value {
    let got = owner.get(&format!("/api/v1/spaces/{id}")).await;
    assert_eq!(got.status, 200, "{got:?}");
    got.body
}

/// The space's state once the pass's stop (or start) is carried out.
async fn settled(owner: &Client, id: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let state = space(owner, id).await["state"]
            .as_str()
            .unwrap_or("deleted")
            .to_owned();
        if !matches!(state.as_str(), "stopping" | "starting") {
            return state;
        }
        assert!(std::time::Instant::now() < deadline, "stuck {state}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The audit events of `action` on ann's space `name`, by `actor`.
async fn audited(admin: &Client, action: &str, name: &str, actor: &str) -> Vec<Value> {
    let events = admin
        .get(&format!(
            "/api/v1/audit?action={action}&target=ann/{name}&limit=500"
        ))
        .await;
    events
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"] == actor)
        .cloned()
        .collect()
}

both_dbs!(an_idle_space_is_warned_then_stops_and_says_why);
async fn an_idle_space_is_warned_then_stops_and_says_why(db: TestDb) {
    let Stage {
        clock,
        server,
        admin,
        ann,
        tpl,
    } = stage(&db, &[], json!({}), json!({"idle_stop_minutes": 10})).await;
    let id = ann.running_space("idle", &tpl).await;
    let stop = &space(&ann, &id).await["autostop"];
    assert_eq!(stop["reason"], "idle", "{stop}");
    assert_eq!(stop["minutes"], 10);
    assert_eq!(stop["warned"], false);

    clock.advance(minutes(6));
    pass(&server).await;
    let warned = space(&ann, &id).await;
    assert_eq!(warned["state"], "running");
    assert_eq!(warned["autostop"]["warned"], true, "{warned}");
    assert_eq!(warned["autostop"]["can_keep_running"], true);
    let soon = ann.told("stop_soon", Duration::from_secs(10)).await;
    assert_eq!(soon.len(), 1, "{soon:?}");
    assert_eq!(soon[0]["link"], format!("/spaces/{id}"), "{soon:?}");

    clock.advance(minutes(5));
    pass(&server).await;
    assert_eq!(settled(&ann, &id).await, "stopped");
    let stopped = space(&ann, &id).await;
    let note = stopped["auto_note"].as_str().unwrap_or_default();
    assert!(
        note.contains("unused for 10 min (its idle stop)"),
        "{stopped}"
    );
    assert!(stopped["autostop"].is_null());
    let gone = ann.told("space_stopped", Duration::from_secs(10)).await;
    assert_eq!(gone.len(), 1, "{gone:?}");
    assert_eq!(gone[0]["link"], format!("/spaces/{id}"), "{gone:?}");
    assert!(
        admin.told("space_stopped", Duration::ZERO).await.is_empty(),
        "the owner only"
    );
    let stops = audited(&admin, "space.stop", "idle", "idle").await;
    assert_eq!(stops.len(), 1, "{stops:?}");
    assert!(stops[0]["details"]["reason"]
        .as_str()
        .unwrap()
        .contains("idle stop"));
    server.stop().await;
}

both_dbs!(typing_in_the_terminal_keeps_it_running_an_open_silent_one_does_not);
async fn typing_in_the_terminal_keeps_it_running_an_open_silent_one_does_not(db: TestDb) {
    let Stage {
        clock,
        server,
        admin: _,
        ann,
        tpl,
    } = stage(&db, &[], json!({}), json!({"idle_stop_minutes": 10})).await;
    let id = ann.running_space("typing", &tpl).await;
    let mut viewer = attached_terminal(&server, &id).await;
    // 18 minutes of typing, a keystroke every 6: never 10 minutes unused.
    for round in 0..3 {
        clock.advance(minutes(6));
        typed(&mut viewer, &format!("typed-{round}")).await;
        pass(&server).await;
        let now = space(&ann, &id).await;
        assert_eq!(now["state"], "running", "round {round}: {now}");
        assert_eq!(now["last_activity"]["kind"], "terminal", "{now}");
    }
    // The terminal stays open, silent: that is no use.
    clock.advance(minutes(11));
    pass(&server).await;
    assert_eq!(settled(&ann, &id).await, "stopped");
    server.stop().await;
}

both_dbs!(a_warning_reaches_open_terminals_and_keepalive_moves_the_stop);
async fn a_warning_reaches_open_terminals_and_keepalive_moves_the_stop(db: TestDb) {
    let Stage {
        clock,
        server,
        admin: _,
        ann,
        tpl,
    } = stage(&db, &[], json!({}), json!({"idle_stop_minutes": 10})).await;
    let id = ann.running_space("kept", &tpl).await;
    let mut viewer = attached_terminal(&server, &id).await;
    clock.advance(minutes(6));
    pass(&server).await;
    let told = viewer
        .read_until(Duration::from_secs(10), |v| {
            v.controls.iter().any(|c| c["type"] == "notice")
        })
        .await;
    assert!(told, "no notice: {:?}", viewer.controls);
    let notice = viewer
        .controls
        .iter()
        .find(|c| c["type"] == "notice")
        .unwrap();
    let message = notice["message"].as_str().unwrap();
    assert!(
        message.contains("(idle 10 min)") && message.contains("hangar keepalive kept"),
        "{message}"
    );
    assert!(!viewer.closed, "a notice does not end the session");

    // Two hours for an unattended job: the stop moves past them.
    let before = space(&ann, &id).await["autostop"]["at"].clone();
    let kept = ann
        .post(
            &format!("/api/v1/spaces/{id}/keepalive"),
            json!({"for_minutes": 120}),
        )
        .await;
    assert_eq!(kept.status, 200, "{kept:?}");
    assert_eq!(kept.body["warned"], false, "{kept:?}");
    let after = space(&ann, &id).await["autostop"].clone();
    assert!(
        after["at"].as_str() > before.as_str(),
        "{before} -> {after}"
    );
    assert_eq!(after["warned"], false);
    clock.advance(minutes(125));
    pass(&server).await;
    assert_eq!(space(&ann, &id).await["state"], "running");
    clock.advance(minutes(6));
    pass(&server).await;
    assert_eq!(settled(&ann, &id).await, "stopped");
    assert!(ann
        .post(
            &format!("/api/v1/spaces/{id}/keepalive"),
            json!({"for_minutes": 2000})
        )
        .await
        .message()
        .contains("0 to 1440"));
    server.stop().await;
}

/// A server with the SSH gateway on, ann with a key and her running busybox space `box` that
/// stops after 10 idle minutes.
async fn ssh_stage(
    db: &TestDb,
    clock: &Arc<MovableClock>,
) -> (TestServer, Client, String, crate::ssh::Ssh, crate::ssh::Key) {
    let server = start(db, clock, &["--ssh-listen", "127.0.0.1:0"]).await;
    let admin = admin(&server).await;
    let (_, ann) = admin.new_member(&server, "ann", json!({})).await;
    let tpl = crate::ssh::ssh_template(&admin, "box", TEST_IMAGE, "/bin/sh").await;
    let patched = admin
        .patch(
            &format!("/api/v1/templates/{tpl}"),
            json!({"autostop": {"idle_stop_minutes": 10}}),
        )
        .await;
    assert_eq!(patched.status, 200, "{patched:?}");
    let id = ann.running_space("box", &tpl).await;
    let ssh = crate::ssh::Ssh::of(&server);
    let key = ssh.key("ann").await;
    crate::ssh::add_key(&ann, &key).await;
    (server, ann, id, ssh, key)
}

both_dbs!(an_open_ssh_session_that_prints_nothing_lets_it_stop_a_build_printing_does_not);
async fn an_open_ssh_session_that_prints_nothing_lets_it_stop_a_build_printing_does_not(
    db: TestDb,
) {
    let clock = Arc::new(MovableClock::default());
    let (server, ann, id, ssh, key) = ssh_stage(&db, &clock).await;

    // A build that prints a line a second, through the real OpenSSH client.
    let mut build = ssh
        .command(
            &key,
            "box",
            &[],
            "while true; do echo building; sleep 1; done",
        )
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(build.stdout.take().unwrap()).lines();
    for round in 0..3 {
        clock.advance(minutes(6));
        let moved = clock_now(&server);
        // Lines keep coming; once one printed after the clock moved went through, the
        // server has seen it.
        while !seen_since(&server, &id, moved) {
            let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(line.as_deref(), Some("building"));
        }
        pass(&server).await;
        let now = space(&ann, &id).await;
        assert_eq!(now["state"], "running", "round {round}: {now}");
        assert_eq!(now["last_activity"]["kind"], "ssh");
    }
    build.kill().await.unwrap();

    // `sleep 30`, open and silent: the space stops under it.
    let mut silent = ssh
        .command(&key, "box", &[], "echo ready; exec sleep 30")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut said = BufReader::new(silent.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(Duration::from_secs(15), said.next_line())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ready.as_deref(), Some("ready"));
    clock.advance(minutes(11));
    pass(&server).await;
    assert_eq!(settled(&ann, &id).await, "stopped");
    let ended = tokio::time::timeout(Duration::from_secs(20), silent.wait()).await;
    assert!(ended.is_ok(), "the session ends with the space");
    server.stop().await;
}

both_dbs!(a_proxied_stream_and_uploads_keep_it_running);
async fn a_proxied_stream_and_uploads_keep_it_running(db: TestDb) {
    let clock = Arc::new(MovableClock::default());
    let server = start(&db, &clock, crate::ports::PATH_APPS).await;
    let admin = admin(&server).await;
    let (_, ann) = admin.new_member(&server, "ann", json!({})).await;
    let tpl = crate::ports::app_template(
        &admin,
        "web",
        json!(["port_forwarding", "file_transfer"]),
        json!({}),
    )
    .await;
    admin
        .patch(
            &format!("/api/v1/templates/{tpl}"),
            json!({"autostop": {"idle_stop_minutes": 10}}),
        )
        .await;
    let id = crate::ports::running(&ann, "web", &tpl).await;
    let cookie = server.login_cookie("ann", "member-password").await;
    crate::ports::served(
        &server,
        "/spaces/ann/web/ports/8080/",
        &[("cookie", &cookie)],
    )
    .await;

    // A long answer streamed through the proxy (a tick every 200 ms).
    let stream = server
        .client
        .get(server.url("/spaces/ann/web/ports/8080/cgi-bin/stream"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let mut body = stream.bytes_stream();
    for round in 0..3 {
        clock.advance(minutes(6));
        let moved = clock_now(&server);
        // Ticks keep coming; once one written after the clock moved passed, the server has
        // seen it.
        while !seen_since(&server, &id, moved) {
            tokio::time::timeout(Duration::from_secs(5), body.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
        }
        pass(&server).await;
        let now = space(&ann, &id).await;
        assert_eq!(now["state"], "running", "round {round}: {now}");
        assert_eq!(now["last_activity"]["kind"], "proxy");
    }
    drop(body);

    // Uploads, one every 6 minutes.
    for round in 0..2 {
        clock.advance(minutes(6));
        let put = ann
            .request(
                reqwest::Method::PUT,
                &format!("/api/v1/spaces/{id}/files?path=/tmp/upload-{round}"),
            )
            .body(vec![b'x'; 100_000])
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), 201);
        pass(&server).await;
        let now = space(&ann, &id).await;
        assert_eq!(now["state"], "running", "upload {round}: {now}");
        assert_eq!(now["last_activity"]["kind"], "files");
    }
    clock.advance(minutes(11));
    pass(&server).await;
    assert_eq!(settled(&ann, &id).await, "stopped");
    server.stop().await;
}

both_dbs!(an_open_websocket_s_heartbeats_let_it_stop_its_messages_do_not);
async fn an_open_websocket_s_heartbeats_let_it_stop_its_messages_do_not(db: TestDb) {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let clock = Arc::new(MovableClock::default());
    let server = start(&db, &clock, crate::ports::PATH_APPS).await;
    let admin = admin(&server).await;
    let (_, ann) = admin.new_member(&server, "ann", json!({})).await;
    let created = admin
        .post(
            "/api/v1/templates",
            json!({"name": "echo", "image": crate::ports_apps::FULL_IMAGE, "compute_units": 0,
                   "features": ["port_forwarding"],
                   "command": ["python3", "-c", crate::ports_apps::WS_ECHO, "8765"],
                   "autostop": {"idle_stop_minutes": 10}}),
        )
        .await;
    let id = crate::ports::running(&ann, "echo", &created.id()).await;
    let cookie = server.login_cookie("ann", "member-password").await;
    let mut socket =
        crate::support::open_websocket(&server, "/spaces/ann/echo/ports/8765/", &cookie, None)
            .await;
    type Socket = tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >;
    async fn echoed(socket: &mut Socket, message: Message) {
        socket.send(message.clone()).await.unwrap();
        let reply = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(reply, message);
    }

    // A heartbeat each way (sent and echoed back): the connection is open, nobody uses it.
    clock.advance(minutes(6));
    let moved = clock_now(&server);
    echoed(&mut socket, Message::Text("ping".into())).await;
    assert!(
        !seen_since(&server, &id, moved),
        "a heartbeat counted as use"
    );
    // A message a person makes (an edit, a keystroke's round trip) is use.
    echoed(&mut socket, Message::Text("x".repeat(200).into())).await;
    assert!(
        seen_since(&server, &id, moved),
        "a real message did not count"
    );
    clock.advance(minutes(6));
    pass(&server).await;
    assert_eq!(space(&ann, &id).await["state"], "running");

    // Only heartbeats from now on: it stops ten minutes after the last message.
    clock.advance(minutes(3));
    echoed(&mut socket, Message::Text("ping".into())).await;
    clock.advance(minutes(2));
    pass(&server).await;
    assert_eq!(settled(&ann, &id).await, "stopped");
    server.stop().await;
}

both_dbs!(the_longest_run_stops_a_busy_space);
async fn the_longest_run_stops_a_busy_space(db: TestDb) {
    let Stage {
        clock,
        server,
        admin,
        ann,
        tpl,
    } = stage(
        &db,
        &[],
        json!({}),
        json!({"idle_stop_minutes": 10, "max_run_minutes": 30}),
    )
    .await;
    let id = ann.running_space("busy", &tpl).await;
    for _ in 0..4 {
        clock.advance(minutes(6));
        ann.post(&format!("/api/v1/spaces/{id}/keepalive"), json!({}))
            .await;
        pass(&server).await;
    }
    let busy = space(&ann, &id).await;
    assert_eq!(busy["state"], "running");
    assert_eq!(busy["autostop"]["reason"], "longest_run", "{busy}");
    assert_eq!(busy["autostop"]["can_keep_running"], false);
    clock.advance(minutes(7));
    ann.post(&format!("/api/v1/spaces/{id}/keepalive"), json!({}))
        .await;
    pass(&server).await;
    assert_eq!(settled(&ann, &id).await, "stopped");
    assert!(space(&ann, &id).await["auto_note"]
        .as_str()
        .unwrap()
        .contains("ran for 30 min (its longest run)"));
    assert_eq!(
        audited(&admin, "space.stop", "busy", "longest run")
            .await
            .len(),
        1
    );
    server.stop().await;
}

both_dbs!(owners_choose_shorter_stops_only);
/// Owners choose shorter stops only where the template lets them, never longer ones.
async fn owners_choose_shorter_stops_only(db: TestDb) {
    let Stage {
        clock: _,
        server,
        admin,
        ann,
        tpl: _,
    } = stage(&db, &[], json!({}), json!({})).await;
    let fixed = template(
        &admin,
        "fixed",
        json!(["terminal"]),
        json!({"idle_stop_minutes": 30}),
    )
    .await;
    let free = template(
        &admin,
        "free",
        json!(["terminal"]),
        json!({"idle_stop_minutes": 30, "owners_may_change": true}),
    )
    .await;
    let a = ann.new_space("fixed", &fixed).await;
    let refused = ann
        .patch(
            &format!("/api/v1/spaces/{a}/autostop"),
            json!({"idle_stop_minutes": 10}),
        )
        .await;
    assert_eq!(refused.status, 400, "{refused:?}");
    assert!(refused.message().contains("ask an admin"));
    let b = ann.new_space("free", &free).await;
    let longer = ann
        .patch(
            &format!("/api/v1/spaces/{b}/autostop"),
            json!({"idle_stop_minutes": 60}),
        )
        .await;
    assert_eq!(longer.status, 400);
    assert!(
        longer.message().contains("at most the template's 30"),
        "{longer:?}"
    );
    let shorter = ann
        .patch(
            &format!("/api/v1/spaces/{b}/autostop"),
            json!({"idle_stop_minutes": 10}),
        )
        .await;
    assert_eq!(shorter.status, 200, "{shorter:?}");
    assert_eq!(shorter.body["idle_stop_minutes"], 10);
    server.stop().await;
}

both_dbs!(a_schedule_follows_the_owner_s_clock_across_the_spring_change);
async fn a_schedule_follows_the_owner_s_clock_across_the_spring_change(db: TestDb) {
    let Stage {
        clock,
        server,
        admin,
        ann,
        tpl,
    } = stage(&db, &[], json!({}), json!({})).await;
    let zone = ann
        .send(
            reqwest::Method::PUT,
            "/api/v1/me/time-zone",
            Some(json!({"time_zone": "Europe/Berlin"})),
        )
        .await;
    assert_eq!(zone.status, 200, "{zone:?}");
    let id = ann.new_space("office", &tpl).await;
    // Europe/Berlin moves to summer time on Sunday 28 March 2027 at 01:00 UTC.
    clock.set(at("2027-03-27T12:00:00Z"));
    let set = ann
        .patch(
            &format!("/api/v1/spaces/{id}/autostop"),
            json!({"schedule": {"rules": [{"days": ["mon","tue","wed","thu","fri","sat","sun"], "start": "07:00", "stop": "08:00"}]}}),
        )
        .await;
    assert_eq!(set.status, 200, "{set:?}");
    assert_eq!(set.body["time_zone"], "Europe/Berlin");
    assert_eq!(
        set.body["next_start"], "2027-03-28T05:00:00.000Z",
        "{set:?}"
    );

    // 07:00 in Berlin that Sunday is 05:00 UTC (it was 06:00 UTC the day before).
    clock.set(at("2027-03-28T04:59:00Z"));
    pass(&server).await;
    assert_eq!(space(&ann, &id).await["state"], "created");
    clock.set(at("2027-03-28T05:00:30Z"));
    pass(&server).await;
    ann.wait_for_state(&id, "running").await;
    let running = space(&ann, &id).await;
    assert_eq!(running["autostop"]["reason"], "schedule", "{running}");
    assert_eq!(running["autostop"]["local"], "08:00");
    assert_eq!(
        audited(&admin, "space.start", "office", "schedule")
            .await
            .len(),
        1
    );

    clock.set(at("2027-03-28T05:59:00Z"));
    pass(&server).await;
    assert_eq!(space(&ann, &id).await["state"], "running");
    clock.set(at("2027-03-28T06:00:30Z"));
    pass(&server).await;
    assert_eq!(settled(&ann, &id).await, "stopped");
    assert!(space(&ann, &id).await["auto_note"]
        .as_str()
        .unwrap()
        .contains("its schedule"));
    assert_eq!(
        audited(&admin, "space.stop", "office", "schedule")
            .await
            .len(),
        1
    );
    // Once started and stopped, the same morning does not start it again.
    pass(&server).await;
    assert_eq!(space(&ann, &id).await["state"], "stopped");
    server.stop().await;
}

both_dbs!(a_scheduled_start_over_quota_is_skipped_with_the_reason);
async fn a_scheduled_start_over_quota_is_skipped_with_the_reason(db: TestDb) {
    let Stage {
        clock,
        server,
        admin,
        ann,
        tpl,
    } = stage(&db, &[], json!({"compute_units": 1}), json!({})).await;
    let busy = ann.running_space("busy", &tpl).await;
    let id = ann.new_space("later", &tpl).await;
    clock.set(at("2027-01-04T06:00:00Z"));
    ann.patch(
        &format!("/api/v1/spaces/{id}/autostop"),
        json!({"schedule": {"rules": [{"days": ["mon"], "start": "07:00"}]}}),
    )
    .await;
    clock.set(at("2027-01-04T07:00:10Z"));
    pass(&server).await;
    let skipped = space(&ann, &id).await;
    assert_eq!(skipped["state"], "created");
    let note = skipped["auto_note"].as_str().unwrap_or_default();
    assert!(
        note.contains("scheduled start at 07:00 (UTC) was skipped") && note.contains("compute"),
        "{skipped}"
    );
    let refused = admin
        .get("/api/v1/audit?action=space.start&outcome=refused&target=ann/later")
        .await;
    assert_eq!(refused.body[0]["actor"], "schedule", "{refused:?}");
    let quota = ann.told("quota_reached", Duration::from_secs(10)).await;
    assert_eq!(quota.len(), 1, "{quota:?}");
    assert!(
        quota[0]["body"]
            .as_str()
            .unwrap_or_default()
            .contains("compute"),
        "{quota:?}"
    );
    // Tried once: the next pass does not try again.
    pass(&server).await;
    assert_eq!(
        admin
            .get("/api/v1/audit?action=space.start&outcome=refused&target=ann/later")
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let _ = busy;
    server.stop().await;
}

both_dbs!(retention_warns_honours_keep_and_deletes_only_the_expired);
async fn retention_warns_honours_keep_and_deletes_only_the_expired(db: TestDb) {
    let Stage {
        clock,
        server,
        admin,
        ann,
        tpl,
    } = stage(&db, &[], json!({}), json!({})).await;
    let set = admin
        .send(
            reqwest::Method::PUT,
            "/api/v1/admin/retention",
            Some(json!({"days": 30, "warning_days": 7})),
        )
        .await;
    assert_eq!(set.status, 200, "{set:?}");
    let old = ann.new_space("old", &tpl).await;
    let pinned = ann.new_space("pinned", &tpl).await;
    let used = ann.new_space("used", &tpl).await;
    let kept = ann
        .patch(
            &format!("/api/v1/spaces/{pinned}/autostop"),
            json!({"keep": true}),
        )
        .await;
    assert_eq!(kept.status, 200);
    // `used` runs on day 20.
    clock.advance(chrono::Duration::days(20));
    ann.post_empty(&format!("/api/v1/spaces/{used}/start"))
        .await;
    ann.wait_for_state(&used, "running").await;
    ann.post_empty(&format!("/api/v1/spaces/{used}/stop")).await;
    ann.wait_for_state(&used, "stopped").await;

    clock.advance(chrono::Duration::days(4));
    pass(&server).await;
    let warned = space(&ann, &old).await;
    assert!(warned["deletes_at"].is_string(), "{warned}");
    assert!(space(&ann, &pinned).await["deletes_at"].is_null());
    assert!(space(&ann, &used).await["deletes_at"].is_null());
    assert_eq!(
        audited(&admin, "space.retention_warning", "old", "retention")
            .await
            .len(),
        1
    );
    let retention = ann.told("retention_soon", Duration::from_secs(10)).await;
    assert_eq!(retention.len(), 1, "{retention:?}");
    assert_eq!(
        retention[0]["link"],
        format!("/spaces/{old}"),
        "{retention:?}"
    );
    clock.advance(chrono::Duration::days(5));
    pass(&server).await;
    assert_eq!(
        space(&ann, &old).await["state"],
        "created",
        "not before the days"
    );
    clock.advance(chrono::Duration::days(3));
    pass(&server).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while ann.get(&format!("/api/v1/spaces/{old}")).await.status != 404 {
        assert!(std::time::Instant::now() < deadline, "never deleted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(space(&ann, &pinned).await["state"], "created");
    assert_eq!(space(&ann, &used).await["state"], "stopped");
    assert_eq!(
        audited(&admin, "space.delete", "old", "retention")
            .await
            .len(),
        1
    );
    server.stop().await;
}

/// The countdown is in the database: a Hangar that restarts keeps it (neither from its own
/// start nor from the space's: from the last use the first one saw).
#[tokio::test]
async fn a_restart_mid_countdown_keeps_the_deadline() {
    let db = TestDb::sqlite();
    let clock = Arc::new(MovableClock::default());
    let first = start(&db, &clock, &[]).await;
    let admin_client = admin(&first).await;
    let (_, ann) = admin_client.new_member(&first, "ann", json!({})).await;
    let tpl = template(
        &admin_client,
        "box",
        json!(["terminal", "file_transfer"]),
        json!({"idle_stop_minutes": 10}),
    )
    .await;
    let id = ann.running_space("kept", &tpl).await;
    clock.advance(minutes(2));
    // Seen by the first server only, in memory: written down as it shuts down.
    let put = ann
        .request(
            reqwest::Method::PUT,
            &format!("/api/v1/spaces/{id}/files?path=/tmp/x"),
        )
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201);
    clock.advance(minutes(6));
    first.shutdown().await;

    // Restarted at +8: the deadline is still +12 (ten minutes after the upload), neither +18
    // (ten after the restart) nor +10 (ten after the start).
    let second = start(&db, &clock, &[]).await;
    let ann = Client::signed_in(&second, "ann", "member-password").await;
    clock.advance(minutes(3));
    pass(&second).await;
    let still = space(&ann, &id).await;
    assert_eq!(still["state"], "running", "{still}");
    assert_eq!(still["last_activity"]["kind"], "files");
    clock.advance(minutes(2));
    pass(&second).await;
    assert_eq!(settled(&ann, &id).await, "stopped");
    second.stop().await;
}

/// Two servers on one PostgreSQL run their passes at the same moment: each stop and each
/// scheduled start happens once.
#[tokio::test]
async fn two_servers_on_postgres_stop_and_start_a_space_once() {
    let db = TestDb::postgres().await;
    let clock = Arc::new(MovableClock::default());
    let first = start(&db, &clock, &[]).await;
    let second = start(&db, &clock, &[]).await;
    let admin_client = admin(&first).await;
    let (_, ann) = admin_client.new_member(&first, "ann", json!({})).await;
    let tpl = template(
        &admin_client,
        "box",
        json!(["terminal"]),
        json!({"idle_stop_minutes": 10}),
    )
    .await;
    let id = ann.running_space("twice", &tpl).await;
    clock.advance(minutes(11));
    tokio::join!(pass(&first), pass(&second));
    assert_eq!(settled(&ann, &id).await, "stopped");
    assert_eq!(
        audited(&admin_client, "space.stop", "twice", "idle")
            .await
            .len(),
        1
    );

    let now = clock_now(&first);
    ann.patch(
        &format!("/api/v1/spaces/{id}/autostop"),
        json!({"schedule": {"rules": [{"days": ["mon","tue","wed","thu","fri","sat","sun"], "start": (now + minutes(2)).format("%H:%M").to_string()}]}}),
    )
    .await;
    clock.advance(minutes(3));
    tokio::join!(pass(&first), pass(&second));
    ann.wait_for_state(&id, "running").await;
    assert_eq!(
        audited(&admin_client, "space.start", "twice", "schedule")
            .await
            .len(),
        1
    );
    second.shutdown().await;
    first.stop().await;
}

fn clock_now(server: &TestServer) -> DateTime<Utc> {
    server.services.as_ref().unwrap().clock.now()
}

/// The server saw the space used at `since` or later (its doors touched it). Activity is kept
/// in whole milliseconds: a touch within the millisecond of `since` counts.
fn seen_since(server: &TestServer, id: &str, since: DateTime<Utc>) -> bool {
    server
        .services
        .as_ref()
        .unwrap()
        .activity
        .latest(&id.into())
        .is_some_and(|at| at.timestamp_millis() >= since.timestamp_millis())
}
