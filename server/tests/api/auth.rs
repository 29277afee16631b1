//! Sign-in, sessions, cookies, rate limits and CSRF, over HTTP.

use reqwest::header::{COOKIE, ORIGIN, RETRY_AFTER};

use crate::support::{
    both_dbs, json, session_cookie, set_cookie_line, TestDb, TestServer, ADMIN_PASSWORD,
};

both_dbs!(login_with_right_password_signs_in_and_wrong_one_does_not);
async fn login_with_right_password_signs_in_and_wrong_one_does_not(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;

    let wrong = server.login("admin", "not-the-password").await;
    assert_eq!(wrong.status(), 401);
    assert!(session_cookie(wrong.headers()).is_none());
    let body = json(wrong).await;
    assert_eq!(body["error"]["code"], "unauthorized");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("wrong username or password"));

    let unknown = server.login("nobody", ADMIN_PASSWORD).await;
    assert_eq!(unknown.status(), 401);

    let right = server.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(right.status(), 200);
    let cookie = session_cookie(right.headers()).unwrap();
    let body = json(right).await;
    assert_eq!(body["user"]["username"], "admin");
    assert_eq!(body["user"]["role"], "admin");
    assert!(body["user"].get("password_hash").is_none());

    let me = server.get_with_cookie("/api/v1/me", &cookie).await;
    assert_eq!(me.status(), 200);
    assert_eq!(json(me).await["user"]["username"], "admin");
    server.stop().await;
}

both_dbs!(me_without_a_session_is_unauthorized);
async fn me_without_a_session_is_unauthorized(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let response = server
        .client
        .get(server.url("/api/v1/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(json(response).await["error"]["code"], "unauthorized");
    let forged = server
        .get_with_cookie("/api/v1/me", "hangar_session=AAAAAAAAAAAAAAAAAAAAAA")
        .await;
    assert_eq!(forged.status(), 401);
    server.stop().await;
}

both_dbs!(too_many_failures_answer_429_per_account_and_per_ip);
async fn too_many_failures_answer_429_per_account_and_per_ip(db: TestDb) {
    let server = TestServer::start(
        &db,
        &[
            "--login-failures-per-account",
            "3",
            "--login-failures-per-ip",
            "5",
        ],
    )
    .await;
    for _ in 0..3 {
        assert_eq!(server.login("admin", "wrong-password").await.status(), 401);
    }
    // The account is now locked, even with the right password.
    let limited = server.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(limited.status(), 429);
    let retry: u64 = limited.headers()[RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry), "Retry-After {retry}");
    assert_eq!(json(limited).await["error"]["code"], "rate_limited");

    // Other accounts from this IP still get answers until the IP's own limit.
    assert_eq!(
        server.login("someone", "wrong-password").await.status(),
        401
    );
    assert_eq!(
        server
            .login("someone-else", "wrong-password")
            .await
            .status(),
        401
    );
    assert_eq!(server.login("third", "wrong-password").await.status(), 429);
    // No space to clean up, and the admin could not sign in to do it.
    server.shutdown().await;
}

both_dbs!(session_survives_a_server_restart);
async fn session_survives_a_server_restart(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let cookie = server.login_cookie("admin", ADMIN_PASSWORD).await;
    server.stop().await;

    let restarted = TestServer::start(&db, &[]).await;
    let me = restarted.get_with_cookie("/api/v1/me", &cookie).await;
    assert_eq!(me.status(), 200);
    assert_eq!(json(me).await["user"]["username"], "admin");
    restarted.stop().await;
}

both_dbs!(session_cookie_is_httponly_lax_and_secure_only_behind_https);
async fn session_cookie_is_httponly_lax_and_secure_only_behind_https(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let line = set_cookie_line(server.login("admin", ADMIN_PASSWORD).await.headers()).unwrap();
    assert!(line.contains("HttpOnly"), "{line}");
    assert!(line.contains("SameSite=Lax"), "{line}");
    assert!(!line.contains("Secure"), "{line}");
    server.stop().await;

    let tls = TestServer::start(&db, &["--public-url", "https://hangar.example.com"]).await;
    let response = tls
        .client
        .post(tls.url("/api/v1/auth/login"))
        .header(ORIGIN, "https://hangar.example.com")
        .json(&serde_json::json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let line = set_cookie_line(response.headers()).unwrap();
    assert!(
        line.contains("Secure") && line.contains("HttpOnly"),
        "{line}"
    );
    tls.shutdown().await;
}

both_dbs!(login_rotates_the_session_id);
async fn login_rotates_the_session_id(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let first = server.login_cookie("admin", ADMIN_PASSWORD).await;
    let again = server
        .client
        .post(server.url("/api/v1/auth/login"))
        .header(ORIGIN, server.origin())
        .header(COOKIE, &first)
        .json(&serde_json::json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    let second = session_cookie(again.headers()).unwrap();
    assert_ne!(first, second);
    assert_eq!(
        server.get_with_cookie("/api/v1/me", &first).await.status(),
        401
    );
    assert_eq!(
        server.get_with_cookie("/api/v1/me", &second).await.status(),
        200
    );
    server.stop().await;
}

both_dbs!(logout_ends_the_session);
async fn logout_ends_the_session(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let cookie = server.login_cookie("admin", ADMIN_PASSWORD).await;
    let out = server
        .client
        .post(server.url("/api/v1/auth/logout"))
        .header(ORIGIN, server.origin())
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    assert_eq!(
        server.get_with_cookie("/api/v1/me", &cookie).await.status(),
        401
    );
    server.stop().await;
}

both_dbs!(cross_origin_state_changes_are_refused);
async fn cross_origin_state_changes_are_refused(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let cookie = server.login_cookie("admin", ADMIN_PASSWORD).await;
    let logout = |origin: Option<&'static str>| {
        let mut request = server
            .client
            .post(server.url("/api/v1/auth/logout"))
            .header(COOKIE, &cookie);
        if let Some(origin) = origin {
            request = request.header(ORIGIN, origin);
        }
        request.send()
    };

    let evil = logout(Some("http://evil.example")).await.unwrap();
    assert_eq!(evil.status(), 403);
    assert_eq!(json(evil).await["error"]["code"], "forbidden");
    // A cookie-carrying request that hides its origin is refused too.
    assert_eq!(logout(None).await.unwrap().status(), 403);
    // The session is still alive after both attempts.
    assert_eq!(
        server.get_with_cookie("/api/v1/me", &cookie).await.status(),
        200
    );

    let cross_login = server
        .client
        .post(server.url("/api/v1/auth/login"))
        .header(ORIGIN, "http://evil.example")
        .json(&serde_json::json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(cross_login.status(), 403);
    server.stop().await;
}

both_dbs!(malformed_login_bodies_say_what_is_wrong);
async fn malformed_login_bodies_say_what_is_wrong(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let send = |body: serde_json::Value| {
        server
            .client
            .post(server.url("/api/v1/auth/login"))
            .header(ORIGIN, server.origin())
            .json(&body)
            .send()
    };
    let missing = send(serde_json::json!({"username": "admin"}))
        .await
        .unwrap();
    assert_eq!(missing.status(), 400);
    let message = json(missing).await["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("password"), "{message}");

    let unknown = send(serde_json::json!({"username": "admin", "password": "x", "admin": true}))
        .await
        .unwrap();
    assert_eq!(unknown.status(), 400);
    let message = json(unknown).await["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("admin"), "{message}");

    let wrong_type = send(serde_json::json!({"username": 7, "password": "x"}))
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), 400);

    let empty = send(serde_json::json!({"username": "", "password": "x"}))
        .await
        .unwrap();
    assert_eq!(empty.status(), 400);
    assert_eq!(json(empty).await["error"]["field"], "username");

    let no_route = server
        .client
        .get(server.url("/api/v1/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(no_route.status(), 404);
    assert_eq!(json(no_route).await["error"]["code"], "not_found");
    server.stop().await;
}
