//! The OpenAPI document describes every route of SPEC §7.

use crate::support::{both_dbs, Client, TestDb, TestServer};

both_dbs!(openapi_lists_every_route_with_its_methods);
async fn openapi_lists_every_route_with_its_methods(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let doc = Client::anonymous(&server).get("/api/v1/openapi.json").await;
    assert_eq!(doc.status, 200);
    assert!(doc.body["openapi"].as_str().unwrap().starts_with("3."));
    let expected = [
        ("/api/v1/auth/login", "post"),
        ("/api/v1/auth/logout", "post"),
        ("/api/v1/me", "get"),
        ("/api/v1/me/quota", "get"),
        ("/api/v1/me/tokens", "get"),
        ("/api/v1/me/tokens", "post"),
        ("/api/v1/me/tokens/{id}", "delete"),
        ("/api/v1/me/ssh-keys", "get"),
        ("/api/v1/me/ssh-keys", "post"),
        ("/api/v1/me/ssh-keys/{id}", "delete"),
        ("/api/v1/users", "get"),
        ("/api/v1/users", "post"),
        ("/api/v1/users/{id}", "get"),
        ("/api/v1/users/{id}", "patch"),
        ("/api/v1/users/{id}", "delete"),
        ("/api/v1/users/{id}/quota", "get"),
        ("/api/v1/groups", "get"),
        ("/api/v1/groups", "post"),
        ("/api/v1/groups/{id}", "get"),
        ("/api/v1/groups/{id}", "patch"),
        ("/api/v1/groups/{id}", "delete"),
        ("/api/v1/groups/{id}/members/{user_id}", "put"),
        ("/api/v1/groups/{id}/members/{user_id}", "delete"),
        ("/api/v1/templates", "get"),
        ("/api/v1/templates", "post"),
        ("/api/v1/templates/{id}", "get"),
        ("/api/v1/templates/{id}", "patch"),
        ("/api/v1/templates/{id}", "delete"),
        ("/api/v1/spaces", "get"),
        ("/api/v1/spaces", "post"),
        ("/api/v1/spaces/{id}", "get"),
        ("/api/v1/spaces/{id}", "delete"),
        ("/api/v1/spaces/{id}/start", "post"),
        ("/api/v1/spaces/{id}/stop", "post"),
        ("/api/v1/spaces/{id}/restart", "post"),
        ("/api/v1/spaces/{id}/shares", "get"),
        ("/api/v1/spaces/{id}/shares/{user_id}", "put"),
        ("/api/v1/spaces/{id}/shares/{user_id}", "delete"),
        ("/api/v1/audit", "get"),
        ("/api/v1/spaces/{id}/ports", "get"),
        ("/api/v1/spaces/{id}/ports/live", "get"),
        ("/api/v1/spaces/{id}/tunnels", "get"),
        ("/api/v1/spaces/{id}/tunnels", "post"),
        ("/api/v1/tunnels/{id}", "delete"),
        ("/api/v1/me/tunnels", "get"),
        ("/api/v1/spaces/{id}/vnc", "get"),
        ("/api/v1/spaces/{id}/vscode-tunnel", "get"),
        ("/api/v1/apps/authorize", "get"),
        ("/api/v1/feature-rules", "get"),
        ("/api/v1/feature-rules", "put"),
        ("/api/v1/users/{id}/features", "get"),
        ("/api/v1/me/features", "get"),
        ("/api/v1/spaces/{id}/files", "get"),
        ("/api/v1/spaces/{id}/files", "put"),
        ("/api/v1/spaces/{id}/files", "post"),
        ("/api/v1/spaces/{id}/files", "delete"),
    ];
    let mut missing = Vec::new();
    for (path, method) in expected {
        if doc.body["paths"][path][method].is_null() {
            missing.push(format!("{method} {path}"));
        }
    }
    assert!(missing.is_empty(), "missing from openapi.json: {missing:?}");
    let schemas = &doc.body["components"]["schemas"];
    for name in ["SpaceDto", "QuotaReport", "ErrorBody", "CreateTemplate"] {
        assert!(schemas[name].is_object(), "schema {name} missing");
    }
    let create = &doc.body["paths"]["/api/v1/spaces"]["post"]["responses"];
    assert!(create["201"].is_object() && create["409"].is_object());
    server.stop().await;
}
