//! Server-rendered pages.

use crate::support::{both_dbs, TestDb, TestServer, ADMIN_PASSWORD};

both_dbs!(sign_in_page_renders_and_dashboard_needs_a_session);
async fn sign_in_page_renders_and_dashboard_needs_a_session(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let login = server
        .client
        .get(server.url("/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let html = login.text().await.unwrap();
    assert!(html.contains("Sign in to Hangar"), "{html}");
    assert!(
        html.contains(r#"{"imports":{"xterm":"/xterm/xterm.mjs"}}"#),
        "import map missing"
    );

    // As a browser navigates: asking for HTML.
    let anonymous = server
        .client
        .get(server.url("/"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 302);
    assert_eq!(anonymous.headers()["location"], "/login");

    let cookie = server.login_cookie("admin", ADMIN_PASSWORD).await;
    let dashboard = server.get_with_cookie("/", &cookie).await;
    assert_eq!(dashboard.status(), 200);
    let html = dashboard.text().await.unwrap();
    assert!(html.contains("<h1>Welcome, <!>Administrator"), "{html}");
    assert!(html.contains(r#"data-testid="layout-toggle""#), "{html}");

    let missing = server
        .client
        .get(server.url("/no/such/page"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    server.stop().await;
}

/// The first `<time …>…</time>` after `marker` in `html`, hydration markers left out:
/// (`datetime`, `title`, the words).
fn time_after(html: &str, marker: &str) -> (String, String, String) {
    let from = html
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} in {html}"));
    let rest = &html[from..];
    let start = rest
        .find("<time ")
        .unwrap_or_else(|| panic!("no <time> after {marker}: {rest}"));
    let element = &rest[start..start + rest[start..].find("</time>").unwrap()];
    let attribute = |name: &str| {
        let key = format!("{name}=\"");
        let at = element
            .find(&key)
            .unwrap_or_else(|| panic!("no {name} in {element}"))
            + key.len();
        element[at..at + element[at..].find('"').unwrap()].to_owned()
    };
    let words = element[element.find('>').unwrap() + 1..].replace("<!>", "");
    (attribute("datetime"), attribute("title"), words)
}

/// The HTML of a page as the server renders it for the session `cookie`.
async fn page(server: &TestServer, path: &str, cookie: &str) -> String {
    let answer = server.get_with_cookie(path, cookie).await;
    assert_eq!(answer.status(), 200, "{path}");
    answer.text().await.unwrap()
}

both_dbs!(pages_say_times_sizes_and_overcommits_in_words);
async fn pages_say_times_sizes_and_overcommits_in_words(db: TestDb) {
    // One compute unit asks for more memory than the machine has: a running 1-CU space
    // reserves more units than the engine holds (0).
    let server = TestServer::start(&db, &["--memory-mib-per-cu", "100000000"]).await;
    let admin = crate::support::admin(&server).await;
    let cookie = server.login_cookie("admin", ADMIN_PASSWORD).await;
    // Before any space: no "0 B used of 0 GiB".
    let html = page(&server, "/", &cookie).await;
    assert!(html.contains("No volumes yet"), "{html}");
    let template = admin
        .new_template("timed", 1, crate::support::data_volume())
        .await;
    let space = admin.running_space("timed", &template).await;

    let html = page(&server, &format!("/spaces/{space}"), &cookie).await;
    // The server's "now", which the browser hydrates with.
    assert!(
        html.contains(r#"<meta name="hangar-now" content=""#),
        "{html}"
    );
    let (datetime, title, words) = time_after(&html, r#"data-testid="created""#);
    assert!(
        datetime.ends_with('Z') && datetime.len() == 24,
        "{datetime}"
    );
    assert_eq!(
        title,
        format!("{} UTC", datetime[..19].replacen('T', " ", 1))
    );
    assert!(
        words == "just now" || words.ends_with(" min ago"),
        "created: {words}"
    );
    // No raw time stamp left on the page's text, and no link from the page to itself.
    assert!(!html.contains(r#"data-testid="details""#), "{html}");
    assert!(!html.contains(&format!(">{datetime}<")), "{html}");

    let html = page(&server, "/admin/spaces", &cookie).await;
    assert!(html.contains(r#"data-overcommitted="true""#), "{html}");
    assert!(
        html.contains("1 reserved of 0: overcommitted by 1"),
        "{html}"
    );
    assert!(html.contains(r#"title="Overcommitted: "#), "{html}");

    // The audit log's details read as `key: value`, not as JSON.
    let html = page(&server, "/admin/audit", &cookie).await;
    assert!(
        html.contains(r#"<span class="detail">template<!>: <code>timed<!></code>"#),
        "{html}"
    );
    assert!(!html.contains(r#"<code class="details">"#), "{html}");

    server.stop().await;
}

/// Starting a server lists the pages' routes, which once suppressed every resource load of the
/// process (leptos_server's flag is global): a page rendered meanwhile by another server waited
/// forever. Pages are rendered here while other servers start on other threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pages_render_while_other_servers_start() {
    let serving = TestServer::start(&TestDb::sqlite(), &[]).await;
    let starting = tokio::spawn(async {
        for _ in 0..6 {
            let db = TestDb::sqlite();
            TestServer::start(&db, &[]).await.stop().await;
        }
    });
    let mut rendered = 0;
    while !starting.is_finished() || rendered < 20 {
        let answer = tokio::time::timeout(std::time::Duration::from_secs(20), async {
            let page = serving.client.get(serving.url("/login")).send().await?;
            page.text().await
        })
        .await
        .expect("the sign-in page hung while another server started")
        .unwrap();
        assert!(answer.contains("Sign in to Hangar"), "{answer}");
        rendered += 1;
    }
    starting.await.unwrap();
    serving.stop().await;
}
