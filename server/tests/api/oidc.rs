//! Sign-in through an identity provider, against a real OpenID provider on 127.0.0.1
//! (PyPI's oidc-provider-mock, started by `scripts/oidc-provider.py` for each test): the code
//! flow driven with an HTTP client as a browser would (cookies kept, redirects followed by
//! hand), and the command line's browser sign-in driven headless.

use std::process::Stdio;
use std::time::Duration;

use reqwest::header::LOCATION;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::{admin, both_dbs, Client, TestDb, TestServer};

/// The OpenID provider of one test, stopped when dropped (its standard input closes, and it is
/// killed).
pub struct Provider {
    child: tokio::process::Child,
    pub issuer: String,
    http: reqwest::Client,
}

impl Provider {
    pub async fn start() -> Provider {
        Provider::start_on(None).await
    }

    /// Stops it and waits until it is gone.
    pub async fn stop(mut self) {
        drop(self.child.stdin.take());
        self.child.kill().await.unwrap();
    }

    /// One on `port` (that of a provider that stopped: the same issuer with new keys).
    pub async fn start_on(port: Option<u16>) -> Provider {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let python = root.join(".tools/venv/bin/python");
        assert!(
            python.exists(),
            "{} is missing: run scripts/setup.sh test (it installs oidc-provider-mock)",
            python.display()
        );
        let mut child = tokio::process::Command::new(python)
            .arg(root.join("scripts/oidc-provider.py"))
            .args(port.map(|p| p.to_string()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let issuer = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the OpenID provider did not start within 30 s")
            .unwrap()
            .expect("the OpenID provider ended without saying where it listens");
        assert!(issuer.starts_with("http://127.0.0.1:"), "{issuer}");
        Provider {
            child,
            issuer,
            http: reqwest::Client::new(),
        }
    }

    /// Sets the claims the provider gives `sub`.
    pub async fn set(&self, sub: &str, claims: Value) {
        let answer = self
            .http
            .put(format!("{}/users/{sub}", self.issuer))
            .json(&claims)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 204, "{:?}", answer.text().await);
    }
}

/// A Hangar signing people in through `provider`, with these extra flags.
pub async fn hangar(db: &TestDb, provider: &Provider, extra: &[&str]) -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public = format!("http://{}", listener.local_addr().unwrap());
    let mut args = vec![
        "--public-url",
        &public,
        "--oidc-issuer-url",
        &provider.issuer,
        "--oidc-client-id",
        "hangar",
        "--oidc-client-secret",
        "hangar-secret",
        "--oidc-provider-name",
        "Acme ID",
    ];
    args.extend_from_slice(extra);
    TestServer::start_on(listener, db, &args).await
}

/// A browser: keeps cookies (Hangar's and the provider's), follows no redirect by itself.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(LOCATION)
        .unwrap_or_else(|| panic!("no Location in {response:?}"))
        .to_str()
        .unwrap()
        .to_owned()
}

/// Starts a sign-in at Hangar and lets the provider authorize `sub`: answers the callback URL
/// the provider sends the browser back to.
pub async fn authorize(browser: &reqwest::Client, start: &str, sub: &str) -> String {
    let started = browser.get(start).send().await.unwrap();
    assert_eq!(started.status(), 302, "{:?}", started.text().await);
    let at_provider = location(&started);
    let authorized = browser
        .post(&at_provider)
        .form(&[("sub", sub)])
        .send()
        .await
        .unwrap();
    assert_eq!(authorized.status(), 302, "{:?}", authorized.text().await);
    location(&authorized)
}

/// What Hangar answers when the browser comes back: (status, where to, JSON body).
async fn back(browser: &reqwest::Client, callback: &str) -> (u16, Option<String>, Value) {
    let answer = browser.get(callback).send().await.unwrap();
    let status = answer.status().as_u16();
    let to = answer
        .headers()
        .get(LOCATION)
        .map(|l| l.to_str().unwrap().to_owned());
    let body = answer.json().await.unwrap_or(Value::Null);
    (status, to, body)
}

/// Signs `sub` in through the provider; answers the browser, signed in to Hangar.
async fn sign_in(server: &TestServer, sub: &str) -> reqwest::Client {
    let browser = browser();
    let callback = authorize(
        &browser,
        &server.url("/api/v1/auth/oidc/login?next=/spaces"),
        sub,
    )
    .await;
    let (status, to, body) = back(&browser, &callback).await;
    assert_eq!((status, to.as_deref()), (302, Some("/spaces")), "{body}");
    browser
}

async fn me(server: &TestServer, browser: &reqwest::Client) -> Value {
    let answer = browser.get(server.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    answer.json::<Value>().await.unwrap()["user"].clone()
}

async fn group(admin: &Client, name: &str, quota: Value) -> String {
    let mut body = json!({"name": name});
    for (k, v) in quota.as_object().unwrap() {
        body[k] = v.clone();
    }
    let created = admin.post("/api/v1/groups", body).await;
    assert_eq!(created.status, 201, "{created:?}");
    created.id()
}

async fn members(admin: &Client, group: &str) -> (Vec<String>, Vec<String>) {
    let found = admin.get(&format!("/api/v1/groups/{group}")).await;
    let names = found.body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["username"].as_str().unwrap().to_owned())
        .collect();
    let from_idp = found.body["idp_members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().to_owned())
        .collect();
    (names, from_idp)
}

both_dbs!(first_sign_in_creates_the_user_with_the_mapped_groups_whose_quota_applies);
async fn first_sign_in_creates_the_user_with_the_mapped_groups_whose_quota_applies(db: TestDb) {
    let provider = Provider::start().await;
    // No quota of their own: whatever they may create comes from the mapped group.
    let server = hangar(
        &db,
        &provider,
        &[
            "--oidc-group-mapping",
            "cn=eng,ou=groups=developers",
            "--default-max-spaces",
            "0",
            "--default-compute-units",
            "0",
            "--default-storage-units",
            "0",
        ],
    )
    .await;
    let admin = admin(&server).await;
    let developers = group(
        &admin,
        "developers",
        json!({"max_spaces": 1, "compute_units": 1, "storage_units": 5}),
    )
    .await;
    let others = group(&admin, "others", json!({"max_spaces": 5})).await;
    let template = admin.new_template("box", 1, json!([])).await;
    provider
        .set(
            "alice-sub",
            json!({
                "preferred_username": "Alice.Smith", "name": "Alice Smith",
                "email": "alice@example.com", "email_verified": true,
                "groups": ["cn=eng,ou=groups", "others-not-mapped"],
            }),
        )
        .await;

    let browser = sign_in(&server, "alice-sub").await;
    let alice = me(&server, &browser).await;
    assert_eq!(alice["username"], "alice-smith");
    assert_eq!(alice["email"], "alice@example.com");
    assert_eq!(alice["display_name"], "Alice Smith");
    assert_eq!(alice["role"], "member");
    let id = alice["id"].as_str().unwrap().to_owned();
    assert_eq!(
        members(&admin, &developers).await,
        (vec!["alice-smith".to_owned()], vec![id.clone()])
    );
    assert_eq!(members(&admin, &others).await.0, Vec::<String>::new());

    // The group's quota is what lets her create one space of one unit, and no second.
    let create = |name: &'static str| {
        let browser = browser.clone();
        let server_url = server.url("/api/v1/spaces");
        let origin = server.url("");
        let template = template.clone();
        async move {
            browser
                .post(server_url)
                .header("origin", origin)
                .json(&json!({"name": name, "template_id": template}))
                .send()
                .await
                .unwrap()
        }
    };
    let first = create("one").await;
    assert_eq!(first.status(), 201, "{:?}", first.text().await);
    let second = create("two").await;
    assert_eq!(second.status(), 409, "{:?}", second.text().await);
    let refusal: Value = second.json().await.unwrap();
    assert_eq!(refusal["error"]["code"], "quota_exceeded", "{refusal}");

    // The sign-in and the account's creation and link are in the audit log.
    let audit = admin.get("/api/v1/audit?target=user:alice-smith").await;
    let actions: Vec<(&str, &str)> = audit
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    for wanted in [
        ("auth.oidc", "success"),
        ("user.create", "success"),
        ("user.link", "success"),
    ] {
        assert!(actions.contains(&wanted), "{wanted:?} not in {actions:?}");
    }
    let space = first.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let deleted = admin.delete(&format!("/api/v1/spaces/{space}")).await;
    assert!(deleted.status < 300, "{deleted:?}");
}

both_dbs!(a_changed_groups_claim_changes_memberships_while_hand_set_ones_stay);
async fn a_changed_groups_claim_changes_memberships_while_hand_set_ones_stay(db: TestDb) {
    let provider = Provider::start().await;
    let server = hangar(
        &db,
        &provider,
        &[
            "--oidc-group-filter",
            "team-.*",
            "--oidc-admin-claim",
            "groups",
            "--oidc-admin-value",
            "ops",
        ],
    )
    .await;
    let admin = admin(&server).await;
    let red = group(&admin, "team-red", json!({})).await;
    let blue = group(&admin, "team-blue", json!({})).await;
    let ops = group(&admin, "ops", json!({})).await;
    let claims = |groups: Value| {
        json!({
            "preferred_username": "bob", "email": "bob@example.com", "email_verified": true,
            "groups": groups,
        })
    };
    // `ops` is not let through by the filter: only an admin can make bob a member.
    provider
        .set("bob-sub", claims(json!(["team-red", "team-blue", "ops"])))
        .await;
    let browser = sign_in(&server, "bob-sub").await;
    let bob = me(&server, &browser).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        members(&admin, &red).await,
        (vec!["bob".to_owned()], vec![bob.clone()])
    );
    assert_eq!(
        members(&admin, &blue).await,
        (vec!["bob".to_owned()], vec![bob.clone()])
    );
    assert!(members(&admin, &ops).await.0.is_empty());
    // The admin claim made him an admin.
    assert_eq!(me(&server, &browser).await["role"], "admin");
    // By hand: ops, and blue (which makes that one hand-set).
    for group in [&ops, &blue] {
        let added = admin
            .put(&format!("/api/v1/groups/{group}/members/{bob}"))
            .await;
        assert_eq!(added.status, 200, "{added:?}");
    }
    assert_eq!(
        members(&admin, &blue).await,
        (vec!["bob".to_owned()], vec![])
    );

    // The provider drops red and blue, and the admin value.
    provider.set("bob-sub", claims(json!([]))).await;
    let browser = sign_in(&server, "bob-sub").await;
    assert_eq!(me(&server, &browser).await["role"], "member");
    assert!(
        members(&admin, &red).await.0.is_empty(),
        "red came from the provider"
    );
    assert_eq!(
        members(&admin, &blue).await.0,
        ["bob"],
        "blue was set by hand"
    );
    assert_eq!(
        members(&admin, &ops).await.0,
        ["bob"],
        "ops was set by hand"
    );

    // And gives red back.
    provider.set("bob-sub", claims(json!(["team-red"]))).await;
    sign_in(&server, "bob-sub").await;
    assert_eq!(
        members(&admin, &red).await,
        (vec!["bob".to_owned()], vec![bob.clone()])
    );
    let sync = admin.get("/api/v1/audit?action=group.member.sync").await;
    assert_eq!(sync.body.as_array().unwrap().len(), 3, "{sync:?}");
}

/// Signs `sub` in and checks that Hangar refuses with `status` and a message saying each of
/// `says`.
async fn expect_refusal(server: &TestServer, sub: &str, status: u16, says: &[&str]) {
    let (answered, message) = refused(server, sub).await;
    assert_eq!(answered, status, "{message}");
    for text in says {
        assert!(message.contains(text), "`{text}` not in: {message}");
    }
}

/// What `GET /api/v1/auth/methods` answers this browser.
async fn methods(server: &TestServer, browser: &reqwest::Client) -> Value {
    let answer = browser
        .get(server.url("/api/v1/auth/methods"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    answer.json().await.unwrap()
}

/// Signs `sub` in and answers Hangar's refusal: (status, message).
async fn refused(server: &TestServer, sub: &str) -> (u16, String) {
    let browser = browser();
    let callback = authorize(&browser, &server.url("/api/v1/auth/oidc/login"), sub).await;
    let (status, _, body) = back(&browser, &callback).await;
    // And nobody is signed in.
    let me = browser.get(server.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(me.status(), 401);
    (
        status,
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

both_dbs!(refusals_name_the_reason_and_what_to_do);
async fn refusals_name_the_reason_and_what_to_do(db: TestDb) {
    let provider = Provider::start().await;
    let server = hangar(
        &db,
        &provider,
        &["--oidc-allowed-domains", "example.com,example.org"],
    )
    .await;
    let person = |name: &str, email: &str, verified: bool| {
        json!({
            "preferred_username": name, "email": email, "email_verified": verified,
        })
    };

    provider
        .set("unverified", person("uma", "uma@example.com", false))
        .await;
    expect_refusal(
        &server,
        "unverified",
        403,
        &["not verified your email address uma@example.com"],
    )
    .await;

    provider
        .set("foreign", person("fred", "fred@elsewhere.net", true))
        .await;
    expect_refusal(
        &server,
        "foreign",
        403,
        &[
            "domain elsewhere.net may not sign in",
            "example.com, example.org",
        ],
    )
    .await;

    // An ID token minted for another client (the provider lets a claim override `aud`).
    let mut other = person("otto", "otto@example.com", true);
    other["aud"] = json!("another-application");
    provider.set("other-audience", other).await;
    expect_refusal(
        &server,
        "other-audience",
        401,
        &["meant for another application"],
    )
    .await;

    // A callback whose state this browser never had.
    provider
        .set("carol", person("carol", "carol@example.com", true))
        .await;
    let browser = browser();
    let callback = authorize(&browser, &server.url("/api/v1/auth/oidc/login"), "carol").await;
    let forged = regex::Regex::new("state=[^&]+")
        .unwrap()
        .replace(&callback, "state=forged")
        .into_owned();
    let (status, _, body) = back(&browser, &forged).await;
    assert_eq!(status, 401);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`state` is unknown"),
        "{body}"
    );
    // The real callback still works (the forged one did not use it up)...
    let (status, to, body) = back(&browser, &callback).await;
    assert_eq!((status, to.as_deref()), (302, Some("/")), "{body}");
    // ...once: replayed, its state is spent.
    let (status, _, body) = back(&browser, &callback).await;
    assert_eq!(status, 401);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("was used already (its `state` is unknown)"),
        "{body}"
    );
    // And its code, brought back with a fresh state, is refused by the provider.
    let code = regex::Regex::new("code=([^&]+)")
        .unwrap()
        .captures(&callback)
        .unwrap()[1]
        .to_owned();
    let fresh = authorize(&browser, &server.url("/api/v1/auth/oidc/login"), "carol").await;
    let replayed = regex::Regex::new("code=[^&]+")
        .unwrap()
        .replace(&fresh, format!("code={code}").as_str())
        .into_owned();
    let (status, _, body) = back(&browser, &replayed).await;
    assert_eq!(status, 401);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("refused the sign-in code"),
        "{body}"
    );

    // Deactivated in Hangar: out, whatever the provider says.
    let admin = admin(&server).await;
    let carol = admin
        .get("/api/v1/users")
        .await
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "carol")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let off = admin
        .patch(&format!("/api/v1/users/{carol}"), json!({"active": false}))
        .await;
    assert_eq!(off.status, 200, "{off:?}");
    expect_refusal(&server, "carol", 403, &["deactivated"]).await;

    // Each refusal of a sign-in that began here is audited with its reason; an unknown state
    // (anyone can send one, signed in or not) only reaches the log.
    let audit = admin
        .get("/api/v1/audit?action=auth.oidc&outcome=refused&limit=50")
        .await;
    let reasons: Vec<String> = audit
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e["details"]["reason"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert!(!reasons.iter().any(|r| r == "unknown state"), "{reasons:?}");
    for wanted in ["email not verified", "domain not allowed", "deactivated"] {
        assert!(
            reasons.iter().any(|r| r == wanted),
            "{wanted} not in {reasons:?}"
        );
    }
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("not for client `hangar`")),
        "{reasons:?}"
    );
}

both_dbs!(a_refused_browser_is_told_why_on_the_sign_in_page);
async fn a_refused_browser_is_told_why_on_the_sign_in_page(db: TestDb) {
    let provider = Provider::start().await;
    let server = hangar(&db, &provider, &["--oidc-auto-create", "false"]).await;
    provider.set("dora", json!({"preferred_username": "dora", "email": "dora@example.com", "email_verified": true})).await;
    let browser = browser();
    let callback = authorize(&browser, &server.url("/api/v1/auth/oidc/login"), "dora").await;
    let answer = browser
        .get(&callback)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(
        (answer.status().as_u16(), location(&answer).as_str()),
        (302, "/login")
    );
    let first = methods(&server, &browser).await;
    assert_eq!(first["provider"], "Acme ID");
    let notice = first["notice"].as_str().unwrap();
    assert!(
        notice.contains("no Hangar account is linked to your Acme ID identity"),
        "{notice}"
    );
    // Said once.
    let again = methods(&server, &browser).await;
    assert!(again["notice"].is_null(), "{again}");
}

both_dbs!(password_sign_in_off_still_lets_the_break_glass_admin_in);
async fn password_sign_in_off_still_lets_the_break_glass_admin_in(db: TestDb) {
    let provider = Provider::start().await;
    let server = hangar(&db, &provider, &["--password-sign-in", "break-glass"]).await;
    // The break-glass admin signs in with a password (and makes a member with one).
    let admin = admin(&server).await;
    let made = admin
        .post(
            "/api/v1/users",
            json!({"username": "mia", "password": "member-password"}),
        )
        .await;
    assert_eq!(made.status, 201, "{made:?}");
    let offered = Client::anonymous(&server).get("/api/v1/auth/methods").await;
    assert_eq!(offered.body["password"], "break_glass");
    // Anyone else is sent to the provider.
    let refused = Client::anonymous(&server)
        .post(
            "/api/v1/auth/login",
            json!({"username": "mia", "password": "member-password"}),
        )
        .await;
    assert_eq!(refused.status, 403, "{refused:?}");
    assert!(
        refused.message().contains("Sign in with Acme ID"),
        "{refused:?}"
    );
    provider.set("nina", json!({"preferred_username": "nina", "email": "nina@example.com", "email_verified": true})).await;
    let browser = sign_in(&server, "nina").await;
    assert_eq!(me(&server, &browser).await["username"], "nina");
    // Signing out says the provider's session remains.
    let out = browser
        .post(server.url("/api/v1/auth/logout"))
        .header("origin", server.url(""))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    let after = methods(&server, &browser).await;
    assert!(
        after["notice"]
            .as_str()
            .unwrap()
            .contains("Your session at Acme ID remains"),
        "{after}"
    );
}

both_dbs!(without_a_provider_its_routes_say_so);
async fn without_a_provider_its_routes_say_so(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let anyone = Client::anonymous(&server);
    let methods = anyone.get("/api/v1/auth/methods").await;
    assert_eq!(methods.status, 200);
    assert_eq!(
        methods.body,
        json!({"provider": null, "password": "everyone", "notice": null})
    );
    for path in [
        "/api/v1/auth/oidc/login",
        "/api/v1/auth/oidc/callback?code=x&state=y",
    ] {
        let answer = anyone.get(path).await;
        assert_eq!(answer.status, 404, "{path}: {answer:?}");
        assert!(answer.message().contains("not configured"), "{answer:?}");
    }
    let claim = anyone
        .post(
            "/api/v1/auth/cli/token",
            json!({"code": "nope", "verifier": "v".repeat(64)}),
        )
        .await;
    assert_eq!(claim.status, 401, "{claim:?}");
}

both_dbs!(the_command_line_signs_in_through_the_browser_headless);
async fn the_command_line_signs_in_through_the_browser_headless(db: TestDb) {
    let provider = Provider::start().await;
    let server = hangar(&db, &provider, &[]).await;
    provider.set("cli-sub", json!({"preferred_username": "cleo", "email": "cleo@example.com", "email_verified": true})).await;
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("config.toml");
    let mut cli = tokio::process::Command::new(env!("CARGO_BIN_EXE_hangar"))
        .args(["login", &server.url(""), "--no-browser"])
        .env("HANGAR_CONFIG", &config)
        .env_remove("HANGAR_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // The address it prints is opened by "the browser": this HTTP client.
    let mut errors = BufReader::new(cli.stderr.take().unwrap()).lines();
    let address = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = errors.next_line().await.unwrap() {
            if let Some(at) = line
                .trim()
                .strip_prefix(&server.url("/api/v1/auth/oidc/login"))
            {
                return format!("{}{at}", server.url("/api/v1/auth/oidc/login"));
            }
        }
        panic!("hangar login printed no address");
    })
    .await
    .unwrap();
    let browser = browser();
    let callback = authorize(&browser, &address, "cli-sub").await;
    let answer = browser.get(&callback).send().await.unwrap();
    assert_eq!(answer.status(), 302, "{:?}", answer.text().await);
    let loopback = location(&answer);
    assert!(loopback.starts_with("http://127.0.0.1:"), "{loopback}");
    let page = browser
        .get(&loopback)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("The command line is signed in"), "{page}");
    let out = tokio::time::timeout(Duration::from_secs(30), cli.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("as cleo"),
        "{out:?}"
    );
    // The token it kept works.
    let saved = std::fs::read_to_string(&config).unwrap();
    let token = saved
        .lines()
        .find_map(|l| l.strip_prefix("token = "))
        .unwrap()
        .trim_matches('"')
        .to_owned();
    let me = Client::with_token(&server, &token).get("/api/v1/me").await;
    assert_eq!(me.body["user"]["username"], "cleo", "{me:?}");
    // The one-time code is spent.
    let code = regex::Regex::new("code=([^&]+)")
        .unwrap()
        .captures(&loopback)
        .unwrap()[1]
        .to_owned();
    let again = Client::anonymous(&server)
        .post(
            "/api/v1/auth/cli/token",
            json!({"code": code, "verifier": "0".repeat(64)}),
        )
        .await;
    assert_eq!(again.status, 401, "{again:?}");
}

both_dbs!(an_account_links_by_subject_never_by_name);
async fn an_account_links_by_subject_never_by_name(db: TestDb) {
    let provider = Provider::start().await;
    let server = hangar(&db, &provider, &[]).await;
    let admin = admin(&server).await;
    let (lena_id, _) = admin.new_member(&server, "lena", json!({})).await;
    provider.set("lena-sub", json!({"preferred_username": "lena", "email": "lena@example.com", "email_verified": true})).await;
    // The name matches an account, but nothing links them: refused, with what to do.
    expect_refusal(
        &server,
        "lena-sub",
        403,
        &[
            "`lena` exists but is not linked",
            "link it on your profile page",
        ],
    )
    .await;

    // Signed in with her password, she links her provider identity.
    let browser = browser();
    let signed = browser
        .post(server.url("/api/v1/auth/login"))
        .header("origin", server.url(""))
        .json(&json!({"username": "lena", "password": "member-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 200);
    let callback = authorize(
        &browser,
        &server.url("/api/v1/auth/oidc/login?link=true&next=/profile"),
        "lena-sub",
    )
    .await;
    let (status, to, body) = back(&browser, &callback).await;
    assert_eq!((status, to.as_deref()), (302, Some("/profile")), "{body}");
    let linked = admin.get("/api/v1/audit?action=user.link&actor=lena").await;
    assert_eq!(linked.body.as_array().unwrap().len(), 1, "{linked:?}");

    // From now on the provider signs her in to that account.
    let browser = sign_in(&server, "lena-sub").await;
    assert_eq!(me(&server, &browser).await["id"], lena_id);
    // Linking needs someone signed in.
    let anonymous = Client::anonymous(&server)
        .get("/api/v1/auth/oidc/login?link=true")
        .await;
    assert_eq!(anonymous.status, 401, "{anonymous:?}");
}

both_dbs!(new_keys_of_the_provider_are_fetched_when_a_token_is_signed_with_one);
async fn new_keys_of_the_provider_are_fetched_when_a_token_is_signed_with_one(db: TestDb) {
    let provider = Provider::start().await;
    let server = hangar(&db, &provider, &[]).await;
    let claims =
        json!({"preferred_username": "kim", "email": "kim@example.com", "email_verified": true});
    provider.set("kim-sub", claims.clone()).await;
    let browser = sign_in(&server, "kim-sub").await;
    let kim = me(&server, &browser).await["id"].clone();
    // The provider comes back at the same address with new keys: Hangar's are stale.
    let port: u16 = provider.issuer.rsplit(':').next().unwrap().parse().unwrap();
    provider.stop().await;
    let rotated = Provider::start_on(Some(port)).await;
    rotated.set("kim-sub", claims).await;
    let browser = sign_in(&server, "kim-sub").await;
    assert_eq!(me(&server, &browser).await["id"], kim);
}

both_dbs!(expiry_within_the_clock_skew_allowance_passes_and_beyond_it_the_clocks_are_named);
async fn expiry_within_the_clock_skew_allowance_passes_and_beyond_it_the_clocks_are_named(
    db: TestDb,
) {
    let provider = Provider::start().await;
    let server = hangar(&db, &provider, &["--oidc-clock-skew-secs", "120"]).await;
    let now = chrono::Utc::now().timestamp();
    // The provider's clock is behind: its token expired a minute ago by Hangar's clock.
    let person = |name: &str, claim: &str, at: i64| {
        let mut claims = json!({"preferred_username": name, "email": format!("{name}@example.com"), "email_verified": true});
        claims[claim] = json!(at);
        claims
    };
    provider.set("late", person("lou", "exp", now - 60)).await;
    let browser = sign_in(&server, "late").await;
    assert_eq!(me(&server, &browser).await["username"], "lou");
    // Ten minutes: beyond the allowance.
    provider.set("later", person("lea", "exp", now - 600)).await;
    expect_refusal(
        &server,
        "later",
        401,
        &["has expired or is dated in the future", "clocks"],
    )
    .await;
    // Issued ten minutes from now by Hangar's clock.
    provider.set("early", person("eli", "iat", now + 600)).await;
    expect_refusal(
        &server,
        "early",
        401,
        &["clocks of Hangar's server and of Acme ID disagree"],
    )
    .await;
}

both_dbs!(a_wrong_issuer_url_is_named);
async fn a_wrong_issuer_url_is_named(db: TestDb) {
    let provider = Provider::start().await;
    // The provider's issuer has no trailing slash: this one does not match it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public = format!("http://{}", listener.local_addr().unwrap());
    let issuer = format!("{}/", provider.issuer);
    let server = TestServer::start_on(
        listener,
        &db,
        &[
            "--public-url",
            &public,
            "--oidc-issuer-url",
            &issuer,
            "--oidc-client-id",
            "hangar",
        ],
    )
    .await;
    let answer = Client::anonymous(&server)
        .get("/api/v1/auth/oidc/login")
        .await;
    assert_eq!(answer.status, 503, "{answer:?}");
    assert!(answer.message().contains("SSO cannot be used for signing in right now (Hangar's issuer URL does not match the provider's)"), "{answer:?}");
}
