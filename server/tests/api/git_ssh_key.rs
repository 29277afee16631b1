//! SSH remotes with the key Hangar keeps for each user: made through the API, its public half
//! authorized on a real SSH git server (dropbear, in the tests' git namespace), a space clones
//! over SSH with its owner's key while another user's space cannot; the key is never in the
//! clear in the database nor left in the space, is not given while the space is shared, and a
//! replaced or removed key is no longer given.

use serde_json::{json, Value};

use crate::events::Events;
use crate::repos::{create, debian_template, git_and_server, start, wait_setup};
use crate::support::{both_dbs, in_space, TestDb};

both_dbs!(spaces_reach_ssh_remotes_with_their_owners_key_only);
async fn spaces_reach_ssh_remotes_with_their_owners_key_only(db: TestDb) {
    let (git, server, admin, cookie) = git_and_server(&db).await;
    let template = debian_template(&admin, json!({})).await;
    let quota = json!({"compute_units": 4, "storage_units": 4, "max_spaces": 4});
    let (_, ann) = admin.new_member(&server, "ann", quota.clone()).await;
    let (bob_id, bob) = admin.new_member(&server, "bob", quota).await;

    let none = ann.get("/api/v1/me/git-ssh-key").await;
    assert_eq!(none.status, 404, "{none:?}");
    let made = ann.post_empty("/api/v1/me/git-ssh-key").await;
    assert_eq!(made.status, 201, "{made:?}");
    let public_key = made.body["public_key"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        public_key.starts_with("ssh-ed25519 ") && public_key.ends_with(" hangar:ann"),
        "{made:?}"
    );
    let fingerprint = made.body["fingerprint"].as_str().unwrap_or_default();
    assert!(fingerprint.starts_with("SHA256:"), "{made:?}");
    assert_eq!(made.body["last_used_at"], Value::Null);
    let shown = ann.get("/api/v1/me/git-ssh-key").await;
    assert_eq!(shown.status, 200, "{shown:?}");
    assert_eq!(shown.body["public_key"], public_key.as_str());
    assert!(!shown.body.to_string().contains("PRIVATE"), "{shown:?}");
    if let crate::support::TestDb::Sqlite(file) = &db {
        let bytes = std::fs::read(&file.path).unwrap_or_default();
        assert!(!bytes.is_empty());
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains("OPENSSH PRIVATE KEY"),
            "the private key is in the database file in the clear"
        );
    }
    if let Err(e) = git.authorize(&public_key) {
        panic!("authorizing the key on the git server: {e}");
    }

    // Ann's space clones over SSH with her key; Bob's (no key) cannot.
    let remote = git.ssh_url("secret.git");
    let mine = create(&ann, "mine", &template, json!({"url": remote})).await;
    let theirs = create(&bob, "theirs", &template, json!({"url": remote})).await;
    let mine = mine["id"].as_str().unwrap_or_default().to_owned();
    let theirs = theirs["id"].as_str().unwrap_or_default().to_owned();
    let mut events = Events::open(&server, &cookie).await;
    start(&ann, &mine).await;
    wait_setup(&mut events, &mine, "repository", "cloned").await;
    start(&bob, &theirs).await;
    let failed = wait_setup(&mut events, &theirs, "repository", "failed").await;
    let reason = failed["repository"]["error"].as_str().unwrap_or_default();
    assert!(reason.contains("correct access rights"), "{reason}");
    let (ok, readme) = in_space(&mine, "cat ~/secret/README.md").await;
    assert!(ok && readme.contains("# project"), "{readme}");
    let used = ann.get("/api/v1/me/git-ssh-key").await;
    assert!(used.body["last_used_at"].is_string(), "{used:?}");
    // The key went into an agent of that one ssh, not onto the space's disk; the agent ended.
    let (found, said) = in_space(&mine, "grep -rls 'BEGIN OPENSSH PRIVATE' /root /tmp").await;
    assert!(!found, "the private key was left in the space: {said}");
    let (agents, _) = in_space(&mine, "pgrep -x ssh-agent").await;
    assert!(!agents, "an ssh-agent outlived its git command");

    // git in a terminal of the space (not only the clone) uses it too; not while shared.
    let ls_remote =
        format!("cd ~ && git ls-remote {remote} >/dev/null 2>&1 && echo given || echo refused");
    assert_eq!(in_space(&mine, &ls_remote).await.1, "given");
    let shared = ann
        .put(&format!("/api/v1/spaces/{mine}/shares/{bob_id}"))
        .await;
    assert_eq!(shared.status, 200, "{shared:?}");
    assert_eq!(in_space(&mine, &ls_remote).await.1, "refused");
    let unshared = ann
        .delete(&format!("/api/v1/spaces/{mine}/shares/{bob_id}"))
        .await;
    assert!(unshared.status < 300, "{unshared:?}");
    assert_eq!(in_space(&mine, &ls_remote).await.1, "given");

    // Replaced, the new key (not yet on the git server) is the one given; removed, none is.
    let replaced = ann.post_empty("/api/v1/me/git-ssh-key").await;
    assert_eq!(replaced.status, 201, "{replaced:?}");
    assert_ne!(replaced.body["public_key"], public_key.as_str());
    assert_eq!(in_space(&mine, &ls_remote).await.1, "refused");
    let replaced_key = replaced.body["public_key"].as_str().unwrap_or_default();
    if let Err(e) = git.authorize(replaced_key) {
        panic!("authorizing the key on the git server: {e}");
    }
    assert_eq!(in_space(&mine, &ls_remote).await.1, "given");
    let removed = ann.delete("/api/v1/me/git-ssh-key").await;
    assert_eq!(removed.status, 204, "{removed:?}");
    assert_eq!(in_space(&mine, &ls_remote).await.1, "refused");
    assert_eq!(ann.get("/api/v1/me/git-ssh-key").await.status, 404);
    assert_eq!(ann.delete("/api/v1/me/git-ssh-key").await.status, 404);
    server.stop().await;
}
