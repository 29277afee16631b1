//! The authorization matrix: anonymous, another member, a sharee, the owner and an admin,
//! against every route that touches a space or needs a role.

use serde_json::{json, Value};

use crate::support::{admin, both_dbs, Answer, Client, TestDb, TestServer};

#[derive(Clone, Copy, Debug)]
enum Actor {
    Anonymous,
    Other,
    Sharee,
    Owner,
    Admin,
}

const ACTORS: [Actor; 5] = [
    Actor::Anonymous,
    Actor::Other,
    Actor::Sharee,
    Actor::Owner,
    Actor::Admin,
];

struct World {
    admin: Client,
    owner: Client,
    sharee: Client,
    sharee_id: String,
    other: Client,
    anonymous: Client,
    template: String,
}

impl World {
    fn client(&self, actor: Actor) -> &Client {
        match actor {
            Actor::Anonymous => &self.anonymous,
            Actor::Other => &self.other,
            Actor::Sharee => &self.sharee,
            Actor::Owner => &self.owner,
            Actor::Admin => &self.admin,
        }
    }

    /// A fresh space of the owner, shared with the sharee, in `state`.
    async fn space(&self, name: &str, state: &str) -> String {
        let made = self
            .owner
            .post(
                "/api/v1/spaces",
                json!({"name": name, "template_id": self.template}),
            )
            .await;
        assert_eq!(made.status, 201, "{made:?}");
        let id = made.id();
        self.owner
            .put(&format!("/api/v1/spaces/{id}/shares/{}", self.sharee_id))
            .await;
        if state == "running" {
            self.owner
                .post_empty(&format!("/api/v1/spaces/{id}/start"))
                .await;
            self.owner.wait_for_state(&id, "running").await;
        }
        id
    }
}

/// One route: how to call it on a space, the state the space must be in, and what each
/// actor gets (anonymous, other, sharee, owner, admin).
struct Case {
    method: &'static str,
    path: &'static str,
    body: Option<Value>,
    state: &'static str,
    expect: [u16; 5],
}

both_dbs!(who_may_do_what_to_a_space);
async fn who_may_do_what_to_a_space(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    let (_, owner) = admin
        .new_member(
            &server,
            "owner",
            json!({"max_spaces": null, "compute_units": null}),
        )
        .await;
    let (sharee_id, sharee) = admin.new_member(&server, "sharee", json!({})).await;
    let (other_id, other) = admin.new_member(&server, "other", json!({})).await;
    let template = admin.new_template("box", 1, json!([])).await;
    let world = World {
        admin,
        owner,
        sharee,
        sharee_id,
        other,
        anonymous: Client::anonymous(&server),
        template,
    };

    let cases = [
        Case {
            method: "GET",
            path: "/api/v1/spaces/{id}",
            body: None,
            state: "created",
            expect: [401, 404, 200, 200, 200],
        },
        Case {
            method: "POST",
            path: "/api/v1/spaces/{id}/start",
            body: None,
            state: "created",
            expect: [401, 404, 403, 202, 202],
        },
        Case {
            method: "POST",
            path: "/api/v1/spaces/{id}/stop",
            body: None,
            state: "running",
            expect: [401, 404, 403, 202, 202],
        },
        Case {
            method: "POST",
            path: "/api/v1/spaces/{id}/restart",
            body: None,
            state: "running",
            expect: [401, 404, 403, 202, 202],
        },
        Case {
            method: "DELETE",
            path: "/api/v1/spaces/{id}",
            body: None,
            state: "created",
            expect: [401, 404, 403, 204, 204],
        },
        Case {
            method: "GET",
            path: "/api/v1/spaces/{id}/shares",
            body: None,
            state: "created",
            expect: [401, 404, 403, 200, 200],
        },
        Case {
            method: "PUT",
            path: "/api/v1/spaces/{id}/shares/{other}",
            body: None,
            state: "created",
            expect: [401, 404, 403, 200, 200],
        },
        Case {
            method: "DELETE",
            path: "/api/v1/spaces/{id}/shares/{sharee}",
            body: None,
            state: "created",
            expect: [401, 404, 403, 200, 200],
        },
        Case {
            method: "GET",
            path: "/api/v1/spaces/{id}/ports",
            body: None,
            state: "created",
            expect: [401, 404, 200, 200, 200],
        },
        Case {
            method: "GET",
            path: "/api/v1/spaces/{id}/tunnels",
            body: None,
            state: "created",
            expect: [401, 404, 200, 200, 200],
        },
        // Sharees may never publish; the template offers no tunnels to anyone else.
        Case {
            method: "POST",
            path: "/api/v1/spaces/{id}/tunnels",
            body: Some(json!({"port": 8080})),
            state: "created",
            expect: [401, 404, 403, 403, 403],
        },
    ];
    let mut failures = Vec::new();
    for (n, case) in cases.iter().enumerate() {
        for (a, actor) in ACTORS.into_iter().enumerate() {
            let id = world.space(&format!("s{n}-{a}"), case.state).await;
            let path = case
                .path
                .replace("{id}", &id)
                .replace("{other}", &other_id)
                .replace("{sharee}", &world.sharee_id);
            let answer: Answer = world
                .client(actor)
                .send(case.method.parse().unwrap(), &path, case.body.clone())
                .await;
            if answer.status != case.expect[a] {
                failures.push(format!(
                    "{actor:?} {} {}: expected {}, got {answer:?}",
                    case.method, case.path, case.expect[a]
                ));
            }
        }
    }

    // Routes that are not about one space.
    let admin_only = [
        ("GET", "/api/v1/users"),
        ("GET", "/api/v1/groups"),
        ("GET", "/api/v1/audit"),
        ("GET", "/api/v1/spaces?all=true"),
        ("POST", "/api/v1/templates"),
        ("POST", "/api/v1/users"),
        ("POST", "/api/v1/groups"),
        ("GET", "/api/v1/feature-rules"),
        ("PUT", "/api/v1/feature-rules"),
    ];
    for (method, path) in admin_only {
        let body = (method == "POST" || method == "PUT").then(|| json!({}));
        for (actor, expected) in [(Actor::Anonymous, 401), (Actor::Other, 403)] {
            let answer = world
                .client(actor)
                .send(method.parse().unwrap(), path, body.clone())
                .await;
            if answer.status != expected {
                failures.push(format!(
                    "{actor:?} {method} {path}: expected {expected}, got {answer:?}"
                ));
            }
        }
        if method == "GET" {
            let answer = world.admin.get(path).await;
            if answer.status != 200 {
                failures.push(format!("Admin GET {path}: got {answer:?}"));
            }
        }
    }
    for path in [
        "/api/v1/me",
        "/api/v1/me/quota",
        "/api/v1/me/tokens",
        "/api/v1/me/ssh-keys",
        "/api/v1/me/tunnels",
        "/api/v1/me/features",
        "/api/v1/spaces",
        "/api/v1/templates",
    ] {
        for actor in ACTORS {
            let expected = if matches!(actor, Actor::Anonymous) {
                401
            } else {
                200
            };
            let answer = world.client(actor).get(path).await;
            if answer.status != expected {
                failures.push(format!(
                    "{actor:?} GET {path}: expected {expected}, got {answer:?}"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    server.stop().await;
}
