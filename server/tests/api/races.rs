//! Transitions that race each other lose nothing (#15 item 9), a space never starts on a
//! volume Hangar did not make, and orphan removal leaves running spaces and their network
//! alone (item 10).

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use sea_orm::{ConnectionTrait, Database};
use serde_json::json;

use crate::support::{
    admin, both_dbs, data_volume, docker, in_space, loops_under, Client, TestDb, TestServer,
};

/// Races run at once, each a start and a delete of one stopped space.
const RACES: usize = 12;

/// Creates a space with a `/data` volume, writes `content` into it, and stops it.
async fn stopped_space_with_file(
    client: &Client,
    name: &str,
    template: &str,
    content: &str,
) -> String {
    let id = client.running_space(name, template).await;
    assert!(
        in_space(&id, &format!("echo {content} > /data/file"))
            .await
            .0
    );
    client
        .post_empty(&format!("/api/v1/spaces/{id}/stop"))
        .await;
    client.wait_for_state(&id, "stopped").await;
    id
}

/// Whether the space's disk image is still on the host.
fn has_disk_image(data_dir: &std::path::Path, space_id: &str) -> bool {
    std::fs::read_dir(data_dir.join("volumes"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|installation| installation.path().join(space_id).exists())
}

both_dbs!(deletes_racing_starts_leave_nothing_behind_an_accepted_delete_and_lose_no_volume);
async fn deletes_racing_starts_leave_nothing_behind_an_accepted_delete_and_lose_no_volume(
    db: TestDb,
) {
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    let (_, ann) = admin
        .new_member(
            &server,
            "ann",
            json!({"max_spaces": null, "compute_units": null, "storage_units": null}),
        )
        .await;
    let tpl = admin.new_template("box", 0, data_volume()).await;
    let spaces = join_all((0..RACES).map(|i| {
        let (ann, tpl) = (ann.clone(), tpl.clone());
        async move {
            stopped_space_with_file(&ann, &format!("race{i}"), &tpl, &format!("kept-{i}")).await
        }
    }))
    .await;

    // A start and a delete of each, sent at the same moment.
    let outcomes = join_all(spaces.iter().map(|id| {
        let ann = ann.clone();
        async move {
            let start = format!("/api/v1/spaces/{id}/start");
            let delete = format!("/api/v1/spaces/{id}");
            tokio::join!(ann.post_empty(&start), ann.delete(&delete))
        }
    }))
    .await;

    let data_dir = db.data_dir();
    let mut deleted = 0;
    for (i, (id, (start, delete))) in spaces.iter().zip(&outcomes).enumerate() {
        let started = start.status == 202;
        let removed = delete.status == 204;
        assert!(
            started != removed,
            "race {i}: exactly one may win: start {start:?}, delete {delete:?}"
        );
        let loser = if started { delete } else { start };
        assert_eq!(loser.status, 409, "race {i}: {loser:?}");
        assert_eq!(loser.code(), "invalid_state", "race {i}: {loser:?}");
        if removed {
            deleted += 1;
            // Nothing is left: space, container, volume, disk image.
            let deadline = Instant::now() + Duration::from_secs(30);
            while ann.get(&format!("/api/v1/spaces/{id}")).await.status != 404 {
                assert!(Instant::now() < deadline, "race {i}: the space stayed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            assert!(
                !docker(&["inspect", &format!("hangar-{id}")]).await.0,
                "race {i}: a container"
            );
            assert!(
                !docker(&["volume", "inspect", &format!("hangar-{id}-data")])
                    .await
                    .0,
                "race {i}: a volume"
            );
            assert!(!has_disk_image(&data_dir, id), "race {i}: a disk image");
        } else {
            // It runs on its own volume, with what was written there.
            ann.wait_for_state(id, "running").await;
            assert_eq!(
                in_space(id, "cat /data/file").await.1,
                format!("kept-{i}"),
                "race {i}"
            );
            let (_, installation) = docker(&[
                "volume",
                "inspect",
                "-f",
                "{{index .Labels \"io.hangar.installation\"}}",
                &format!("hangar-{id}-data"),
            ])
            .await;
            assert_eq!(installation.len(), 32, "race {i}: the volume is Hangar's");
        }
    }
    println!("{deleted} of {RACES} races were won by the delete");
    server.stop().await;
    assert_eq!(
        loops_under(&data_dir.canonicalize().unwrap()),
        Vec::<String>::new()
    );
}

both_dbs!(a_space_whose_volume_is_missing_does_not_start_on_a_new_empty_one);
async fn a_space_whose_volume_is_missing_does_not_start_on_a_new_empty_one(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    let tpl = admin.new_template("box", 0, data_volume()).await;
    let id = admin.new_space("lost", &tpl).await;
    let volume = format!("hangar-{id}-data");
    assert!(docker(&["volume", "rm", &volume]).await.0);
    admin
        .post_empty(&format!("/api/v1/spaces/{id}/start"))
        .await;
    let stopped = admin.wait_for_state(&id, "stopped").await;
    let error = stopped["last_error"].as_str().unwrap();
    assert!(
        error.contains("`data`") && error.contains("is missing"),
        "{error}"
    );
    // Its owner is told, with the reason.
    let failed = admin.told("start_failed", Duration::from_secs(10)).await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["link"], format!("/spaces/{id}"));
    assert!(
        failed[0]["body"]
            .as_str()
            .unwrap_or_default()
            .contains("is missing"),
        "{failed:?}"
    );
    assert!(
        !docker(&["volume", "inspect", &volume]).await.0,
        "Docker made a new empty volume"
    );
    assert!(!docker(&["inspect", &format!("hangar-{id}")]).await.0);
    // It can still be deleted, and then nothing of it is left.
    assert_eq!(
        admin.delete(&format!("/api/v1/spaces/{id}")).await.status,
        204
    );
    assert!(!has_disk_image(&db.data_dir(), &id));
    server.stop().await;
}

both_dbs!(removing_orphans_while_spaces_run_keeps_them_and_their_network);
async fn removing_orphans_while_spaces_run_keeps_them_and_their_network(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    let tpl = admin.new_template("box", 0, data_volume()).await;
    let running = admin.running_space("live", &tpl).await;
    let network = docker(&[
        "inspect",
        "-f",
        "{{range $name, $_ := .NetworkSettings.Networks}}{{$name}}{{end}}",
        &format!("hangar-{running}"),
    ])
    .await
    .1;
    assert!(network.starts_with("hangar-spaces"), "{network}");
    // A space the database forgot (marked deleted behind Hangar's back): its volume and disk
    // image are orphans.
    let forgotten = admin.new_space("gone", &tpl).await;
    let connection = Database::connect(db.url()).await.unwrap();
    connection
        .execute_unprepared(&format!(
            "UPDATE spaces SET state = 'deleted' WHERE id = '{forgotten}'"
        ))
        .await
        .unwrap();
    connection.close().await.unwrap();

    let listed = admin.get("/api/v1/admin/orphans").await;
    assert_eq!(listed.status, 200, "{listed:?}");
    let orphans = listed.body["orphans"].as_array().unwrap();
    let kinds: Vec<&str> = orphans
        .iter()
        .filter(|o| o["space_id"] == forgotten.as_str())
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.len(), 2, "{listed:?}");
    assert!(
        kinds.contains(&"volume") && kinds.contains(&"disk"),
        "{listed:?}"
    );
    assert!(
        !listed.body.to_string().contains(&running) && !listed.body.to_string().contains(&network),
        "{listed:?}"
    );

    let removed = admin.delete("/api/v1/admin/orphans").await;
    assert_eq!(removed.status, 200, "{removed:?}");
    assert!(
        !docker(&["volume", "inspect", &format!("hangar-{forgotten}-data")])
            .await
            .0
    );
    assert!(!has_disk_image(&db.data_dir(), &forgotten));
    assert!(
        docker(&["network", "inspect", &network]).await.0,
        "the network was removed"
    );
    assert_eq!(
        docker(&[
            "inspect",
            "-f",
            "{{.State.Running}}",
            &format!("hangar-{running}")
        ])
        .await
        .1,
        "true"
    );
    assert!(in_space(&running, "echo ok > /data/ok").await.0);
    // New spaces still start on the network.
    let another = admin.running_space("next", &tpl).await;
    assert!(in_space(&another, "echo ok > /data/ok").await.0);
    server.stop().await;
}
