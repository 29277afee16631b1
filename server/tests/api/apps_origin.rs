//! Where the code of spaces runs (#26 items 1, 10, 11), against real spaces: by default, on a
//! Hangar reached on this machine only, every port of a space has an origin of its own under
//! `apps.localhost:<port>` (signed in through Hangar's derived origin), nothing is served by
//! path on Hangar's origin, Hangar refuses what an app's page sends it, apps cannot set or
//! clear Hangar's cookies, a public link on Hangar's origin does not redirect elsewhere,
//! Hangar's own answers refuse framing, and tunnel secrets stay out of the log.

use std::time::{Duration, Instant};

use reqwest::header::{COOKIE, LOCATION, ORIGIN, REFERER, SET_COOKIE};
use serde_json::{json, Value};

use crate::ports::{app_template, running, served, shared_web, PATH_APPS};
use crate::support::{
    admin, both_dbs, in_space, set_cookie_line, Client, Process, TempDb, TestDb, TestServer,
};

/// CGI scripts an app could answer with: cookies spelled like Hangar's in every way a browser
/// would still take as Hangar's, `Clear-Site-Data`, and redirects away and home.
const HOSTILE_CGI: &str = r#"cat > /www/cgi-bin/plant <<'EOF'
#!/bin/sh
echo "Content-Type: text/plain"
echo "Set-Cookie: hangar_session=planted; Path=/"
echo "Set-Cookie: =hangar_session=planted; Path=/"
echo "Set-Cookie: = hangar_session =planted; Path=/"
echo "Set-Cookie: HANGAR_SESSION=planted; Path=/"
echo "Set-Cookie:  hangar_app=planted; Path=/"
echo "Set-Cookie: hangar_app; Path=/"
echo "Set-Cookie: theirs=1; Path=/"
echo "Clear-Site-Data: \"cookies\", \"storage\""
echo
echo planted
EOF
cat > /www/cgi-bin/away <<'EOF'
#!/bin/sh
echo "Status: 302 Found"
echo "Location: https://evil.example/phish"
echo
EOF
cat > /www/cgi-bin/sneak <<'EOF'
#!/bin/sh
echo "Status: 302 Found"
echo "Location: /\evil.example/phish"
echo
EOF
cat > /www/cgi-bin/home <<'EOF'
#!/bin/sh
echo "Status: 302 Found"
echo "Location: /index.html"
echo
EOF
chmod +x /www/cgi-bin/plant /www/cgi-bin/away /www/cgi-bin/sneak /www/cgi-bin/home"#;

/// The Set-Cookie lines of an answer.
fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// A GET on the server with these headers, no redirects followed.
async fn get(server: &TestServer, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = server.client.get(server.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

/// Signs a browser with this Hangar session in to the app host `host` the way a page of
/// Hangar does (its link goes through `/api/v1/apps/authorize` on Hangar's origin); the app
/// cookie (`hangar_app=…`).
async fn app_cookie(server: &TestServer, host: &str, hangar_cookie: &str) -> String {
    let authorize = format!("/api/v1/apps/authorize?host={host}&path=%2F");
    let granted = get(server, &authorize, &[("cookie", hangar_cookie)]).await;
    assert_eq!(granted.status(), 302, "{}", granted.text().await.unwrap());
    let back = granted.headers()[LOCATION].to_str().unwrap().to_owned();
    let exchange = back
        .strip_prefix(&format!("http://{host}"))
        .unwrap_or_else(|| panic!("not back to {host}: {back}"))
        .to_owned();
    let exchanged = get(server, &exchange, &[("host", host)]).await;
    assert_eq!(exchanged.status(), 302);
    let line = exchanged.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    line.split(';').next().unwrap().to_owned()
}

/// Publishes port 8080 of the space: its public link, and the link's secret.
async fn publish(owner: &Client, id: &str) -> (String, String) {
    let made = owner
        .post(
            &format!("/api/v1/spaces/{id}/tunnels"),
            json!({"port": 8080}),
        )
        .await;
    assert_eq!(made.status, 201, "{made:?}");
    let link = made.body["url"].as_str().unwrap().to_owned();
    let secret = link
        .trim_start_matches("http://t--")
        .trim_start_matches("/t/")
        .split(['.', '/'])
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(secret.len(), 32, "{link}");
    (link, secret)
}

/// A refusal with this status whose message says `says`.
async fn refused(response: reqwest::Response, status: u16, says: &str) {
    assert_eq!(response.status(), status, "{says}");
    let body: Value = response.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(says), "{body}");
}

both_dbs!(by_default_apps_have_origins_of_their_own_under_localhost);
async fn by_default_apps_have_origins_of_their_own_under_localhost(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let port = server.addr.port();
    let admin = admin(&server).await;
    let features = json!(["terminal", "port_forwarding", "tunnels"]);
    let web = shared_web(&server, &admin, features).await;
    let (ann, id, ann_cookie, bob_cookie) = (web.ann, web.id, web.ann_cookie, web.bob_cookie);
    let host = format!("8080--web--ann.apps.localhost:{port}");
    let app_origin = format!("http://{host}");

    // The space page's link is the port's own origin.
    let deadline = Instant::now() + Duration::from_secs(20);
    let url = loop {
        let ports = ann.get(&format!("/api/v1/spaces/{id}/ports")).await;
        let found = ports.body["ports"]
            .as_array()
            .and_then(|p| p.iter().find(|p| p["port"] == 8080).cloned());
        if let Some(found) = found {
            break found["url"].clone();
        }
        assert!(Instant::now() < deadline, "{ports:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(url, json!(format!("{app_origin}/")));

    // Nothing of a space is served on Hangar's own origin: a clear 404 that says where.
    let by_path = get(
        &server,
        "/spaces/ann/web/ports/8080/",
        &[("cookie", &ann_cookie)],
    )
    .await;
    refused(by_path, 404, "origins of their own").await;

    // A browser without the app's cookie signs in through Hangar's origin, derived from the
    // listening address (no --public-url was given).
    let first = get(
        &server,
        "/index.html",
        &[("host", &host), ("accept", "text/html")],
    )
    .await;
    assert_eq!(first.status(), 302);
    let authorize = first.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(
        authorize.starts_with(&format!(
            "http://127.0.0.1:{port}/api/v1/apps/authorize?host="
        )),
        "{authorize}"
    );
    // The owner and the sharee both get the app, on its own origin: no sandbox is needed.
    for hangar_cookie in [&ann_cookie, &bob_cookie] {
        let cookie = app_cookie(&server, &host, hangar_cookie).await;
        let page = served(&server, "/", &[("host", &host), ("cookie", &cookie)]).await;
        assert!(page.headers().get("content-security-policy").is_none());
        assert!(page.headers().get("x-frame-options").is_none());
        assert_eq!(page.text().await.unwrap().trim(), "hello-from-the-space");
    }

    // Hangar's pages never answer under the apps domain, however deep.
    for elsewhere in [
        format!("apps.localhost:{port}"),
        format!("x.{host}"),
        format!("api.x.apps.localhost:{port}"),
    ] {
        let page = get(
            &server,
            "/api/v1/me",
            &[("host", &elsewhere), ("cookie", &ann_cookie)],
        )
        .await;
        refused(page, 404, "names no port").await;
    }

    // What an app's page sends Hangar (its fetches, whatever the method, and its WebSockets)
    // is refused, saying why; nothing is created.
    let read = get(
        &server,
        "/api/v1/me",
        &[("cookie", &ann_cookie), ("origin", &app_origin)],
    )
    .await;
    refused(read, 403, "comes from a page of an app").await;
    for (header, value) in [
        (ORIGIN, app_origin.clone()),
        (ORIGIN, format!("http://t--0123.apps.localhost:{port}")),
        (REFERER, format!("{app_origin}/steal.html")),
    ] {
        let mint = server
            .client
            .post(server.url("/api/v1/me/tokens"))
            .header(COOKIE, &ann_cookie)
            .header(header.clone(), &value)
            .json(&json!({"name": "stolen", "scopes": ["credentials"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(mint.status(), 403, "{header}: {value}");
    }
    assert_eq!(
        ann.get("/api/v1/me/tokens").await.body,
        json!([]),
        "no token was made"
    );
    let session = crate::ws::session_id();
    let terminal = crate::ws::connect(&server, &ann_cookie, &id, &session, Some(&app_origin)).await;
    assert_eq!(terminal.err(), Some(403));
    // A link from an app to Hangar is a navigation (no Origin, the app as Referer): allowed,
    // so that an app whose cookie expired signs in again.
    let again = get(
        &server,
        &format!("/api/v1/apps/authorize?host={host}&path=%2F"),
        &[
            ("cookie", &ann_cookie),
            ("referer", &format!("{app_origin}/")),
        ],
    )
    .await;
    assert_eq!(again.status(), 302);
    // Hangar's session cookie is host-only: browsers never send it to an app's origin.
    let login = server.login("ann", "member-password").await;
    let line = set_cookie_line(login.headers()).unwrap();
    assert!(!line.to_ascii_lowercase().contains("domain"), "{line}");

    // An app on its own origin still cannot set Hangar's cookies, nor clear the site's.
    in_space(&id, HOSTILE_CGI).await;
    let cookie = app_cookie(&server, &host, &ann_cookie).await;
    let planted = served(
        &server,
        "/cgi-bin/plant",
        &[("host", &host), ("cookie", &cookie)],
    )
    .await;
    assert_eq!(set_cookies(&planted), ["theirs=1; Path=/"]);
    assert!(planted.headers().get("clear-site-data").is_none());

    // A public link is an origin of its own too; where it redirects is its own business.
    let (link, secret) = publish(&ann, &id).await;
    assert_eq!(link, format!("http://t--{secret}.apps.localhost:{port}/"));
    let tunnel_host = format!("t--{secret}.apps.localhost:{port}");
    let page = get(&server, "/", &[("host", &tunnel_host)]).await;
    assert_eq!(page.status(), 200);
    assert!(page.headers().get("content-security-policy").is_none());
    let away = get(&server, "/cgi-bin/away", &[("host", &tunnel_host)]).await;
    assert_eq!(away.status(), 302);
    assert_eq!(away.headers()[LOCATION], "https://evil.example/phish");
    assert_eq!(
        get(&server, &format!("/t/{secret}/"), &[]).await.status(),
        404,
        "not on Hangar's origin"
    );
    server.stop().await;
}

both_dbs!(apps_by_path_keep_hangars_cookies_and_public_links_stay_home);
async fn apps_by_path_keep_hangars_cookies_and_public_links_stay_home(db: TestDb) {
    let server = TestServer::start(&db, PATH_APPS).await;
    let web = shared_web(
        &server,
        &admin(&server).await,
        json!(["port_forwarding", "tunnels"]),
    )
    .await;
    let (ann, id, ann_cookie) = (web.ann, web.id, web.ann_cookie);
    in_space(&id, HOSTILE_CGI).await;
    let base = "/spaces/ann/web/ports/8080";
    let planted = served(
        &server,
        &format!("{base}/cgi-bin/plant"),
        &[("cookie", &ann_cookie)],
    )
    .await;
    // On Hangar's own origin, no form of Hangar's cookie names passes, nor Clear-Site-Data.
    assert_eq!(set_cookies(&planted), ["theirs=1; Path=/"]);
    assert!(planted.headers().get("clear-site-data").is_none());

    // A public link on Hangar's origin never sends strangers to another site, however the
    // address is spelled; redirects home pass (under the link's prefix).
    let (link, _) = publish(&ann, &id).await;
    assert!(link.starts_with("/t/"), "{link}");
    for script in ["away", "sneak"] {
        let away = get(
            &server,
            &format!("{link}cgi-bin/{script}"),
            &[("accept", "text/html")],
        )
        .await;
        assert_eq!(away.status(), 502, "{script}");
        assert!(away.headers().get(LOCATION).is_none());
        let page = away.text().await.unwrap();
        assert!(
            page.contains("does not take visitors to other sites")
                && page.contains("evil.example/phish"),
            "{page}"
        );
    }
    let home = get(&server, &format!("{link}cgi-bin/home"), &[]).await;
    assert_eq!(home.status(), 302);
    assert_eq!(home.headers()[LOCATION], format!("{link}index.html"));
    // The owner's own app by path may redirect where it likes (it is behind sign-in).
    let owner = get(
        &server,
        &format!("{base}/cgi-bin/away"),
        &[("cookie", &ann_cookie)],
    )
    .await;
    assert_eq!(owner.status(), 302);
    server.stop().await;
}

both_dbs!(hangars_own_answers_refuse_framing_apps_decide_for_themselves);
async fn hangars_own_answers_refuse_framing_apps_decide_for_themselves(db: TestDb) {
    let server = TestServer::start(&db, PATH_APPS).await;
    let web = shared_web(&server, &admin(&server).await, json!(["port_forwarding"])).await;
    let ann_cookie = web.ann_cookie;
    for path in [
        "/login",
        "/",
        "/admin/users",
        "/api/v1/me",
        "/api/v1/openapi.json",
        "/healthz",
        "/spaces/ann/web/ports/1/",
    ] {
        let answer = get(&server, path, &[("cookie", &ann_cookie)]).await;
        assert_eq!(answer.headers()["x-frame-options"], "DENY", "{path}");
        let policies: Vec<_> = answer
            .headers()
            .get_all("content-security-policy")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        assert!(
            policies.iter().any(|p| p == "frame-ancestors 'none'"),
            "{path}: {policies:?}"
        );
    }
    // The app's own answer (by path, to its owner) carries nothing of Hangar's.
    let app = served(
        &server,
        "/spaces/ann/web/ports/8080/",
        &[("cookie", &ann_cookie)],
    )
    .await;
    assert!(app.headers().get("x-frame-options").is_none());
    assert!(app.headers().get("content-security-policy").is_none());
    server.stop().await;
}

#[tokio::test]
async fn tunnel_secrets_and_tickets_never_reach_the_log() {
    let db = TempDb::new();
    let log = tempfile::NamedTempFile::new().unwrap();
    // What an operator sees when looking closely: every request, as tower-http traces it.
    // (The apps domain is given, as the default would make it, for the test to mean the same
    // before the default existed.)
    let process = Process::start_logged(
        &db.url(),
        &[
            (
                "HANGAR_LOG",
                "debug,tower_http=trace,sqlx=warn,sea_orm=warn",
            ),
            ("HANGAR_APPS_DOMAIN", "apps.localhost:{port}"),
            ("HANGAR_PUBLIC_URL", "http://127.0.0.1:{port}"),
        ],
        log.path(),
    )
    .await;
    let server = &process.server;
    let port = server.addr.port();
    let admin = admin(server).await;
    let (_, ann) = admin.new_member(server, "ann", json!({})).await;
    let tpl = app_template(
        &admin,
        "web",
        json!(["port_forwarding", "tunnels"]),
        json!({}),
    )
    .await;
    let id = running(&ann, "web", &tpl).await;
    let (_, secret) = publish(&ann, &id).await;
    let tunnel_host = format!("t--{secret}.apps.localhost:{port}");
    served(server, "/", &[("host", &tunnel_host)]).await;
    // The same secret by path (refused here, but its address is what gets logged), and a
    // sign-in ticket.
    get(server, &format!("/t/{secret}/x"), &[]).await;
    let ann_cookie = server.login_cookie("ann", "member-password").await;
    let host = format!("8080--web--ann.apps.localhost:{port}");
    let granted = get(
        server,
        &format!("/api/v1/apps/authorize?host={host}&path=%2F"),
        &[("cookie", &ann_cookie)],
    )
    .await;
    let back = granted.headers()[LOCATION].to_str().unwrap().to_owned();
    let ticket = back
        .split("ticket=")
        .nth(1)
        .and_then(|rest| rest.split('&').next())
        .unwrap()
        .to_owned();
    let exchange = back
        .strip_prefix(&format!("http://{host}"))
        .unwrap()
        .to_owned();
    assert_eq!(
        get(server, &exchange, &[("host", &host)]).await.status(),
        302
    );
    server.cleanup().await;
    process.kill_9().await;
    let logged = std::fs::read_to_string(log.path()).unwrap();
    // The requests were logged, their secrets were not.
    assert!(
        !logged.contains(&secret),
        "the tunnel's secret is in the log"
    );
    let ticket_secret = ticket.split('.').next().unwrap();
    assert!(!logged.contains(ticket_secret), "a ticket is in the log");
    assert!(logged.contains("/t/<secret>/x"), "{logged}");
    assert!(logged.contains("ticket=<secret>"), "{logged}");
}
