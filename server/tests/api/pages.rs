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
