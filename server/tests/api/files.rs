//! File transfer (#14) against real containers: a large file both ways in bounded server
//! memory, directories as tar and forms, paths and archives that try to leave the space,
//! limits, a full volume, and who may transfer (and only while they may).

use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{Stream, StreamExt};
use reqwest::header::{CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::Method;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::support::{
    admin, both_dbs, docker, Answer, Client, Process, TestDb, TestServer, TEST_IMAGE,
};

/// A template with file transfer on and a volume at /home/dev.
async fn files_template(admin: &Client, name: &str, features: &[&str]) -> String {
    let created = admin
        .post(
            "/api/v1/templates",
            json!({
                "name": name, "image": TEST_IMAGE, "compute_units": 0, "features": features,
                "volumes": [{"name": "home", "mount_path": "/home/dev", "size_gib": 1}],
            }),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    created.id()
}

const WITH_FILES: &[&str] = &["terminal", "file_transfer"];

async fn new_space(owner: &Client, template: &str, name: &str) -> String {
    owner
        .post(
            "/api/v1/spaces",
            json!({"name": name, "template_id": template}),
        )
        .await
        .id()
}

async fn running_space(owner: &Client, template: &str, name: &str) -> String {
    let id = new_space(owner, template, name).await;
    owner
        .post_empty(&format!("/api/v1/spaces/{id}/start"))
        .await;
    owner.wait_for_state(&id, "running").await;
    id
}

fn files(id: &str, query: &str) -> String {
    format!("/api/v1/spaces/{id}/files?{query}")
}

/// Runs a shell command in the space's container; its success and output.
async fn in_space(id: &str, script: &str) -> (bool, String) {
    docker(&["exec", &format!("hangar-{id}"), "sh", "-c", script]).await
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    Answer { status, body }
}

async fn send(
    client: &Client,
    method: Method,
    path: &str,
    body: impl Into<reqwest::Body>,
) -> Answer {
    answer(
        client
            .request(method, path)
            .body(body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// Sends a body as it is made, without a length, of `content_type` when given.
async fn send_stream(
    client: &Client,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: impl Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static,
) -> Answer {
    let mut request = client.request(method, path);
    if let Some(content_type) = content_type {
        request = request.header(CONTENT_TYPE, content_type);
    }
    let response = request.body(reqwest::Body::wrap_stream(body)).send();
    answer(response.await.unwrap()).await
}

/// Bytes in 64 KiB pieces, as a client sending them without a length would.
fn in_pieces(bytes: &[u8]) -> impl Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    let pieces: Vec<_> = bytes.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
    futures_util::stream::iter(pieces)
}

const TAR: Option<&str> = Some("application/x-tar");

/// Asserts an error answer's status and code.
#[track_caller]
fn expect_error(answer: &Answer, status: u16, code: &str) {
    assert_eq!((answer.status, answer.code()), (status, code), "{answer:?}");
}

/// The bytes of a file in the space, through the API.
async fn download(client: &Client, id: &str, path: &str) -> Vec<u8> {
    let response = client
        .request(Method::GET, &files(id, &format!("path={path}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "GET {path}");
    response.bytes().await.unwrap().to_vec()
}

/// `len` bytes of a fixed pseudo-random sequence, made as they are needed, in 64 KiB pieces.
fn pattern(len: u64) -> impl Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    futures_util::stream::unfold(
        (0x9e37_79b9_7f4a_7c15u64, len),
        |(mut state, left)| async move {
            if left == 0 {
                return None;
            }
            let n = left.min(64 * 1024) as usize;
            let mut piece = Vec::with_capacity(n);
            while piece.len() < n {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                piece.extend_from_slice(&state.to_le_bytes());
            }
            piece.truncate(n);
            Some((Ok(piece), (state, left - n as u64)))
        },
    )
}

async fn pattern_bytes(len: u64) -> Vec<u8> {
    pattern(len).map(|p| p.unwrap()).concat().await
}

fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// A tar entry written by hand: names the server must refuse cannot come from `tar` itself.
fn raw_entry(name: &str, typeflag: u8, link: &str, data: &[u8]) -> Vec<u8> {
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name.as_bytes());
    for (at, text) in [
        (100, "0000644"),
        (108, "0000000"),
        (116, "0000000"),
        (136, "00000000000"),
    ] {
        header[at..at + text.len()].copy_from_slice(text.as_bytes());
    }
    header[124..135].copy_from_slice(format!("{:011o}", data.len()).as_bytes());
    header[156] = typeflag;
    header[157..157 + link.len()].copy_from_slice(link.as_bytes());
    header[257..265].copy_from_slice(b"ustar\x0000");
    header[148..156].fill(b' ');
    let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    header[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    let mut entry = header.to_vec();
    entry.extend_from_slice(data);
    entry.resize(entry.len().div_ceil(512) * 512, 0);
    entry
}

fn raw_tar(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut tar = entries.concat();
    tar.extend_from_slice(&[0u8; 1024]);
    tar
}

/// A tar of `dir` made by GNU tar, as people make them.
fn tar_of(dir: &Path) -> Vec<u8> {
    let out = std::process::Command::new("tar")
        .arg("-C")
        .arg(dir)
        .args(["-cf", "-", "."])
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

fn untar(tar: &[u8], into: &Path) {
    use std::io::Write;
    let mut child = std::process::Command::new("tar")
        .arg("-C")
        .arg(into)
        .args(["-xf", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(tar).unwrap();
    assert!(child.wait().unwrap().success());
}

/// A multipart form with these files and one plain field.
fn form(boundary: &str, files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nnot a file\r\n"
    )
    .into_bytes();
    for (name, data) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    body
}

/// What `ls -A` shows in a directory of the space.
async fn names_in(id: &str, dir: &str) -> Vec<String> {
    let (ok, out) = in_space(id, &format!("ls -A {dir}")).await;
    assert!(ok, "ls {dir}: {out}");
    out.lines().map(str::to_owned).collect()
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

// One database: the streaming path does not touch it, and 200 MB each way twice is slow.
#[tokio::test]
async fn a_200_mb_file_goes_up_and_down_byte_identical_in_bounded_server_memory() {
    const SIZE: u64 = 200_000_000;
    let db = TestDb::sqlite();
    let process = Process::start(&db.url()).await;
    let server = &process.server;
    let admin = admin(server).await;
    let template = files_template(&admin, "box", WITH_FILES).await;
    let id = running_space(&admin, &template, "big").await;
    let pid = process.child.id().unwrap();

    // Once each way first, so that what any first transfer allocates counts as the baseline.
    let warm = send(
        &admin,
        Method::PUT,
        &files(&id, "path=/home/dev/warm"),
        vec![1u8; 1 << 20],
    )
    .await;
    assert_eq!(warm.status, 201, "{warm:?}");
    assert_eq!(download(&admin, &id, "/home/dev/warm").await.len(), 1 << 20);
    let baseline = rss_kib(pid);
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(baseline));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = tokio::spawn({
        let (peak, sampling) = (peak.clone(), sampling.clone());
        async move {
            while sampling.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });

    let expected = sha256_hex(&pattern_bytes(SIZE).await);
    let up = admin
        .request(Method::PUT, &files(&id, "path=/home/dev/big.bin"))
        .header(CONTENT_LENGTH, SIZE)
        .body(reqwest::Body::wrap_stream(pattern(SIZE)))
        .send()
        .await
        .unwrap();
    let up = answer(up).await;
    assert_eq!(up.status, 201, "{up:?}");
    assert_eq!(up.body["bytes"], SIZE);

    let down = admin
        .request(Method::GET, &files(&id, "path=/home/dev/big.bin"))
        .send()
        .await
        .unwrap();
    assert_eq!(down.status(), 200);
    assert_eq!(down.headers()[CONTENT_LENGTH], SIZE.to_string().as_str());
    assert!(down.headers()[CONTENT_DISPOSITION]
        .to_str()
        .unwrap()
        .contains("filename=\"big.bin\""));
    let mut hasher = Sha256::new();
    let mut received = 0u64;
    let mut body = down.bytes_stream();
    while let Some(piece) = body.next().await {
        let piece = piece.unwrap();
        received += piece.len() as u64;
        hasher.update(&piece);
    }
    sampling.store(false, Ordering::Relaxed);
    sampler.await.unwrap();
    assert_eq!(received, SIZE);
    assert_eq!(format!("{:x}", hasher.finalize()), expected);
    let (ok, in_container) = in_space(&id, "sha256sum /home/dev/big.bin").await;
    assert!(ok);
    assert!(in_container.starts_with(&expected), "{in_container}");

    let growth_mib = (peak.load(Ordering::Relaxed).saturating_sub(baseline)) / 1024;
    println!(
        "server RSS: {} MiB before, grew by {growth_mib} MiB moving 2 x 200 MB",
        baseline / 1024
    );
    assert!(
        growth_mib < 50,
        "the server's memory grew by {growth_mib} MiB"
    );
    server.cleanup().await;
    process.kill_9().await;
}

both_dbs!(a_directory_round_trips_as_tar_and_every_move_is_audited);
async fn a_directory_round_trips_as_tar_and_every_move_is_audited(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    let (_, ann) = admin.new_member(&server, "ann", json!({})).await;
    let template = files_template(&admin, "box", WITH_FILES).await;
    let id = running_space(&ann, &template, "work").await;

    // A tree as people have them: nested folders, an empty one, a link, an executable,
    // a long name, a name that is not ASCII, a file larger than a pipe's buffer.
    let src = tempfile::tempdir().unwrap();
    let root = src.path();
    std::fs::create_dir_all(root.join("a/b")).unwrap();
    std::fs::create_dir_all(root.join("empty")).unwrap();
    std::fs::write(root.join("a/one.txt"), "one\n").unwrap();
    let blob = pattern_bytes(300_000).await;
    std::fs::write(root.join("a/b/blob.bin"), &blob).unwrap();
    std::os::unix::fs::symlink("one.txt", root.join("a/link")).unwrap();
    std::fs::write(root.join("run.sh"), "#!/bin/sh\necho hi\n").unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(root.join("run.sh"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
    }
    let long = "l".repeat(150);
    std::fs::write(root.join(&long), "long\n").unwrap();
    std::fs::write(root.join("café.txt"), "crème\n").unwrap();

    let up = answer(
        ann.request(Method::POST, &files(&id, "path=/home/dev/project&create"))
            .header(CONTENT_TYPE, "application/x-tar")
            .body(tar_of(root))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(up.status, 201, "{up:?}");
    assert_eq!(up.body["files"], 5);
    assert_eq!(up.body["bytes"], 4 + 300_000 + 18 + 5 + 7);

    let listing = ann.get(&files(&id, "path=/home/dev/project&list")).await;
    assert_eq!(listing.status, 200, "{listing:?}");
    let names: Vec<&str> = listing.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "empty", "café.txt", long.as_str(), "run.sh"]);
    let run = &listing.body["entries"][4];
    assert_eq!(
        (
            run["kind"].as_str(),
            run["size"].as_u64(),
            run["mode"].as_u64()
        ),
        (Some("file"), Some(18), Some(0o755))
    );
    let inner = ann.get(&files(&id, "path=/home/dev/project/a&list")).await;
    let link = inner.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "link")
        .unwrap();
    assert_eq!(link["kind"], "symlink");

    // Back as a tar: the same tree.
    let tar = ann
        .request(
            Method::GET,
            &files(&id, "path=/home/dev/project&format=tar"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(tar.status(), 200);
    assert_eq!(tar.headers()[CONTENT_TYPE], "application/x-tar");
    assert!(tar.headers()[CONTENT_DISPOSITION]
        .to_str()
        .unwrap()
        .contains("project.tar"));
    let out = tempfile::tempdir().unwrap();
    untar(&tar.bytes().await.unwrap(), out.path());
    let back = out.path().join("project");
    assert_eq!(std::fs::read(back.join("a/b/blob.bin")).unwrap(), blob);
    assert_eq!(
        std::fs::read_to_string(back.join("a/one.txt")).unwrap(),
        "one\n"
    );
    assert_eq!(
        std::fs::read_link(back.join("a/link")).unwrap(),
        Path::new("one.txt")
    );
    assert!(back.join("empty").is_dir());
    assert_eq!(std::fs::read_to_string(back.join(&long)).unwrap(), "long\n");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(back.join("run.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
    }

    // One file, named for the browser in ASCII and in UTF-8.
    let one = ann
        .request(
            Method::GET,
            &files(&id, "path=/home/dev/project/caf%C3%A9.txt"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), 200);
    let disposition = one.headers()[CONTENT_DISPOSITION]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.contains("filename*=UTF-8''caf%C3%A9.txt"),
        "{disposition}"
    );
    assert_eq!(one.text().await.unwrap(), "crème\n");

    // A directory needs format=tar (or list); a file replaced stays whole until the new one is.
    let bare = ann.get(&files(&id, "path=/home/dev/project")).await;
    expect_error(&bare, 400, "invalid_input");
    let replaced = send(
        &ann,
        Method::PUT,
        &files(&id, "path=/home/dev/project/a/one.txt"),
        "uno\n",
    )
    .await;
    assert_eq!(replaced.status, 201, "{replaced:?}");
    assert_eq!(
        download(&ann, &id, "/home/dev/project/a/one.txt").await,
        b"uno\n"
    );
    let onto_dir = send(
        &ann,
        Method::PUT,
        &files(&id, "path=/home/dev/project/a"),
        "x",
    )
    .await;
    assert_eq!(onto_dir.status, 409, "{onto_dir:?}");
    let no_dir = send(
        &ann,
        Method::PUT,
        &files(&id, "path=/home/dev/nowhere/x.txt"),
        "x",
    )
    .await;
    assert_eq!(no_dir.status, 404, "{no_dir:?}");
    assert!(no_dir.message().contains("create=true"), "{no_dir:?}");

    // A body without a length streams through the same way.
    let streamed = send_stream(
        &ann,
        Method::PUT,
        &files(&id, "path=/home/dev/deep/er/streamed.bin&create"),
        None,
        pattern(3_000_000),
    )
    .await;
    assert_eq!(streamed.status, 201, "{streamed:?}");
    assert_eq!(streamed.body["bytes"], 3_000_000);
    assert_eq!(
        download(&ann, &id, "/home/dev/deep/er/streamed.bin").await,
        pattern_bytes(3_000_000).await
    );

    // A multipart form: its files land in the directory, plain fields are ignored.
    let boundary = "hangar-test-boundary";
    let uploaded = answer(
        ann.request(Method::POST, &files(&id, "path=/home/dev/forms&create"))
            .header(
                CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(form(
                boundary,
                &[("first.txt", b"first\n"), ("second.bin", &blob)],
            ))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(uploaded.status, 201, "{uploaded:?}");
    assert_eq!(
        (
            uploaded.body["files"].as_u64(),
            uploaded.body["bytes"].as_u64()
        ),
        (Some(2), Some(6 + 300_000))
    );
    assert_eq!(
        names_in(&id, "/home/dev/forms").await,
        ["first.txt", "second.bin"]
    );
    assert_eq!(
        download(&ann, &id, "/home/dev/forms/second.bin").await,
        blob
    );

    // An empty POST with create only makes the directory.
    let made = send(
        &ann,
        Method::POST,
        &files(&id, "path=/home/dev/made/here&create"),
        "",
    )
    .await;
    assert_eq!(made.status, 201, "{made:?}");
    assert_eq!(names_in(&id, "/home/dev/made").await, ["here"]);

    // Deleting: a tree, then nothing is there; never /.
    let deleted = ann.delete(&files(&id, "path=/home/dev/project/a")).await;
    assert_eq!(deleted.status, 204, "{deleted:?}");
    assert_eq!(
        ann.delete(&files(&id, "path=/home/dev/project/a"))
            .await
            .status,
        404
    );
    assert!(!names_in(&id, "/home/dev/project")
        .await
        .contains(&"a".to_owned()));
    assert_eq!(ann.delete(&files(&id, "path=/")).await.status, 400);

    // No upload left a staging name behind.
    let (_, all) = in_space(&id, "find /home/dev -name '.hangar-upload-*'").await;
    assert_eq!(all, "");

    // Who moved what, and how much.
    let audit = |action: &str| {
        let admin = admin.clone();
        let action = action.to_owned();
        async move {
            admin
                .get(&format!("/api/v1/audit?action={action}"))
                .await
                .body
        }
    };
    let uploads = audit("files.upload").await;
    let tar_upload = uploads
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["details"]["path"] == "/home/dev/project")
        .unwrap();
    assert_eq!(tar_upload["actor"], "ann");
    assert_eq!(tar_upload["target"], "space:ann/work");
    assert_eq!(tar_upload["outcome"], "success");
    assert_eq!(tar_upload["details"]["bytes"], 4 + 300_000 + 18 + 5 + 7);
    // A download is recorded once its stream has ended, a moment after the client read it.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let downloads = audit("files.download").await;
        if downloads.as_array().unwrap().iter().any(|e| {
            e["details"]["path"] == "/home/dev/project"
                && e["details"]["format"] == "tar"
                && e["details"]["complete"] == true
                && e["details"]["bytes"].as_u64() > Some(300_000)
        }) {
            break;
        }
        assert!(Instant::now() < deadline, "{downloads:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deletes = audit("files.delete").await;
    assert_eq!(deletes[0]["details"]["path"], "/home/dev/project/a");
    server.stop().await;
}

both_dbs!(paths_links_and_archive_entries_cannot_reach_the_host_or_another_space);
async fn paths_links_and_archive_entries_cannot_reach_the_host_or_another_space(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    let (_, ann) = admin.new_member(&server, "ann", json!({})).await;
    let template = files_template(&admin, "box", WITH_FILES).await;
    let id = running_space(&ann, &template, "mine").await;
    let other = running_space(&admin, &template, "theirs").await;
    assert!(
        in_space(&other, "echo theirs > /home/dev/theirs.txt")
            .await
            .0
    );
    let (_, other_volume) = docker(&[
        "volume",
        "inspect",
        "-f",
        "{{.Mountpoint}}",
        &format!("hangar-{other}-home"),
    ])
    .await;

    // A folder of the host, with a secret in it.
    let host = tempfile::tempdir().unwrap();
    let host_dir = host.path().to_str().unwrap().to_owned();
    std::fs::write(host.path().join("secret.txt"), "host secret").unwrap();
    let host_listing = || {
        let mut names: Vec<String> = std::fs::read_dir(host.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };

    // Links planted in the space toward the host, the other space's volume and the root.
    let planted = in_space(
        &id,
        &format!(
            "ln -s {host_dir}/secret.txt /home/dev/s1 && ln -s {host_dir} /home/dev/d1 && \
             ln -s {other_volume} /home/dev/other && ln -s ../../.. /home/dev/up && mkdir /home/dev/in"
        ),
    )
    .await;
    assert!(planted.0, "{planted:?}");

    for path in [
        "/home/dev/s1".to_owned(),
        "/home/dev/d1/secret.txt".into(),
        "/home/dev/other/theirs.txt".into(),
        format!("{other_volume}/theirs.txt"),
        format!("{host_dir}/secret.txt"),
    ] {
        let got = ann.get(&files(&id, &format!("path={path}"))).await;
        assert_eq!(got.status, 404, "GET {path}: {got:?}");
        assert!(!got.body.to_string().contains("host secret"));
        assert!(!got.body.to_string().contains("theirs\n"));
    }
    for query in [
        "path=/home/dev/d1&format=tar",
        "path=/home/dev/other&list",
        "path=/home/dev/d1&list",
    ] {
        assert_eq!(ann.get(&files(&id, query)).await.status, 404, "{query}");
    }
    // A relative link that climbs resolves in the space's own root.
    let (_, hostname) = in_space(&id, "cat /etc/hostname").await;
    let through = download(&ann, &id, "/home/dev/up/etc/hostname").await;
    assert_eq!(String::from_utf8(through).unwrap().trim(), hostname);

    // Paths with `..` or without a root are refused outright.
    for query in [
        "path=/home/dev/../../etc/passwd",
        "path=home/dev",
        "path=/home/dev/%2e%2e/x",
    ] {
        let refused = ann.get(&files(&id, query)).await;
        assert_eq!(
            (refused.status, refused.code()),
            (400, "invalid_input"),
            "{query}: {refused:?}"
        );
    }

    // Writing through the links lands in the space, never on the host or in the other space.
    for path in ["/home/dev/d1/planted.txt", "/home/dev/other/planted.txt"] {
        let written = send(
            &ann,
            Method::PUT,
            &files(&id, &format!("path={path}&create")),
            "planted",
        )
        .await;
        assert!(
            written.status == 201 || written.status >= 400,
            "{written:?}"
        );
    }
    assert_eq!(host_listing(), ["secret.txt"]);
    assert_eq!(names_in(&other, "/home/dev").await, ["theirs.txt"]);

    // Archive entries that climb out, are absolute, link out or write through a link.
    let crafted = [
        (
            "a name with ..",
            raw_tar(&[
                raw_entry("ok.txt", b'0', "", b"ok"),
                raw_entry("../escape.txt", b'0', "", b"bad"),
            ]),
        ),
        (
            "an absolute name",
            raw_tar(&[raw_entry("/abs.txt", b'0', "", b"bad")]),
        ),
        (
            "a link to the host",
            raw_tar(&[
                raw_entry("l", b'2', &host_dir, b""),
                raw_entry("l/x.txt", b'0', "", b"bad"),
            ]),
        ),
        (
            "a link that climbs",
            raw_tar(&[raw_entry("l", b'2', "../../..", b"")]),
        ),
        (
            "a write through a link",
            raw_tar(&[
                raw_entry("l", b'2', ".", b""),
                raw_entry("l/x.txt", b'0', "", b"bad"),
            ]),
        ),
        (
            "a hard link out",
            raw_tar(&[raw_entry("h", b'1', "/etc/passwd", b"")]),
        ),
        ("a device", raw_tar(&[raw_entry("null", b'3', "", b"")])),
        ("not a tar", b"plain text, not an archive".to_vec()),
    ];
    for (what, tar) in crafted {
        let refused = send_stream(
            &ann,
            Method::POST,
            &files(&id, "path=/home/dev/in"),
            TAR,
            in_pieces(&tar),
        )
        .await;
        assert_eq!(
            (refused.status, refused.code()),
            (400, "invalid_input"),
            "{what}: {refused:?}"
        );
    }
    assert!(names_in(&id, "/home/dev/in").await.is_empty());
    assert!(
        !in_space(
            &id,
            "ls /home/dev/escape.txt || ls /abs.txt || ls /home/dev/x.txt"
        )
        .await
        .0
    );

    // Links are resolved as the kernel follows them: with `b -> .`, `b/b/../..` climbs out
    // though as text it stays inside; and a directory the archive turns into such a link
    // would carry a hard link to the space's own /etc/passwd (which the engine, writing as
    // root, hands to the space's user). On the root filesystem, where a hard link reaches.
    let climb = format!("{}{}", "b/".repeat(8), "../".repeat(8));
    let resolved = [
        (
            "a directory made a link, and a hard link through it",
            raw_tar(&[
                raw_entry("b", b'2', ".", b""),
                raw_entry("a/", b'5', "", b""),
                raw_entry("a/etc/passwd", b'0', "", b"x"),
                raw_entry("a", b'2', &climb, b""),
                raw_entry("h", b'1', "a/etc/passwd", b""),
            ]),
            "`a` comes twice in the archive, as a directory and as a link",
        ),
        (
            "a link through `b -> .` that climbs out",
            raw_tar(&[
                raw_entry("b", b'2', ".", b""),
                raw_entry("up", b'2', "b/b/../..", b""),
            ]),
            "`up` links to `b/b/../..`, which leads out",
        ),
    ];
    for (what, tar, why) in resolved {
        let refused = send_stream(
            &ann,
            Method::POST,
            &files(&id, "path=/tmp/in&create"),
            TAR,
            in_pieces(&tar),
        )
        .await;
        let (_, links) = in_space(&id, "stat -c %h /etc/passwd; ls -A /tmp/in").await;
        assert_eq!(links.trim(), "1", "{what}: {refused:?}");
        assert_eq!(
            (refused.status, refused.code()),
            (400, "invalid_input"),
            "{what}: {refused:?}"
        );
        assert!(
            refused.body.to_string().contains(why),
            "{what}: {refused:?}"
        );
    }
    assert_eq!(host_listing(), ["secret.txt"]);
    server.stop().await;
}

// One database: the limit is checked before anything reaches it.
#[tokio::test]
async fn an_upload_over_the_limit_is_refused_with_413_and_leaves_nothing() {
    let db = TestDb::sqlite();
    let server = TestServer::start(&db, &["--max-upload-mib", "1"]).await;
    let admin = admin(&server).await;
    let template = files_template(&admin, "box", WITH_FILES).await;
    let id = running_space(&admin, &template, "small").await;

    let declared = send(
        &admin,
        Method::PUT,
        &files(&id, "path=/home/dev/big"),
        vec![0u8; 3 << 20],
    )
    .await;
    expect_error(&declared, 413, "too_large");
    assert_eq!(declared.body["error"]["limit_bytes"], 1 << 20);
    assert!(
        declared.message().contains("over the limit"),
        "{declared:?}"
    );

    let streamed = send_stream(
        &admin,
        Method::PUT,
        &files(&id, "path=/home/dev/big"),
        None,
        pattern(3 << 20),
    )
    .await;
    expect_error(&streamed, 413, "too_large");

    let mut tar = raw_entry("big", b'0', "", &pattern_bytes(3 << 20).await);
    tar.extend_from_slice(&[0u8; 1024]);
    let archive = send_stream(
        &admin,
        Method::POST,
        &files(&id, "path=/home/dev"),
        TAR,
        in_pieces(&tar),
    )
    .await;
    expect_error(&archive, 413, "too_large");

    assert!(names_in(&id, "/home/dev").await.is_empty());
    let under = send(
        &admin,
        Method::PUT,
        &files(&id, "path=/home/dev/fits"),
        vec![7u8; 512 << 10],
    )
    .await;
    assert_eq!(under.status, 201, "{under:?}");
    server.stop().await;
}

// One database: what is checked is the space's disk.
#[tokio::test]
async fn an_upload_that_does_not_fit_fails_without_leaving_a_partial_file() {
    let db = TestDb::sqlite();
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    let template = files_template(&admin, "box", WITH_FILES).await;
    let id = new_space(&admin, &template, "tight").await;
    // The volume made anew as an 8 MiB tmpfs, with the same labels: a full disk on demand
    // (volumes are not size-enforced on disk here).
    let volume = format!("hangar-{id}-home");
    let (_, labels) = docker(&["volume", "inspect", "-f", "{{json .Labels}}", &volume]).await;
    let labels: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&labels).unwrap();
    assert!(docker(&["volume", "rm", &volume]).await.0);
    let mut create = vec![
        "volume".to_owned(),
        "create".into(),
        "--driver".into(),
        "local".into(),
        "--opt".into(),
        "type=tmpfs".into(),
        "--opt".into(),
        "device=tmpfs".into(),
        "--opt".into(),
        "o=size=8m".into(),
    ];
    for (key, value) in &labels {
        create.push("--label".into());
        create.push(format!("{key}={}", value.as_str().unwrap()));
    }
    create.push(volume.clone());
    let create: Vec<&str> = create.iter().map(String::as_str).collect();
    assert!(docker(&create).await.0);
    admin
        .post_empty(&format!("/api/v1/spaces/{id}/start"))
        .await;
    admin.wait_for_state(&id, "running").await;

    let kept = send(
        &admin,
        Method::PUT,
        &files(&id, "path=/home/dev/keep.txt"),
        "old content",
    )
    .await;
    assert_eq!(kept.status, 201);

    // Declared too large for the free space: refused before a byte is written.
    let declared = send(
        &admin,
        Method::PUT,
        &files(&id, "path=/home/dev/big.bin"),
        vec![1u8; 16 << 20],
    )
    .await;
    expect_error(&declared, 507, "insufficient_storage");
    assert!(
        declared.message().contains("not enough space"),
        "{declared:?}"
    );

    // No length given: the disk fills up mid-way; nothing stays, the old file is untouched.
    let streamed = send_stream(
        &admin,
        Method::PUT,
        &files(&id, "path=/home/dev/keep.txt"),
        None,
        pattern(16 << 20),
    )
    .await;
    expect_error(&streamed, 507, "insufficient_storage");
    assert_eq!(
        download(&admin, &id, "/home/dev/keep.txt").await,
        b"old content"
    );

    // An archive of two files that do not fit together: neither stays.
    let six = pattern_bytes(6 << 20).await;
    let tar = raw_tar(&[
        raw_entry("a.bin", b'0', "", &six),
        raw_entry("b.bin", b'0', "", &six),
    ]);
    let archive = send_stream(
        &admin,
        Method::POST,
        &files(&id, "path=/home/dev"),
        TAR,
        in_pieces(&tar),
    )
    .await;
    expect_error(&archive, 507, "insufficient_storage");

    assert_eq!(names_in(&id, "/home/dev").await, ["keep.txt"]);
    let (_, used) = in_space(&id, "du -sk /home/dev | cut -f1").await;
    assert!(used.parse::<u64>().unwrap() < 64, "{used} KiB still used");
    server.stop().await;
}

both_dbs!(only_those_who_may_use_the_space_transfer_and_only_while_they_may);
async fn only_those_who_may_use_the_space_transfer_and_only_while_they_may(db: TestDb) {
    let server = TestServer::start(&db, &[]).await;
    let admin = admin(&server).await;
    let (_, ann) = admin.new_member(&server, "ann", json!({})).await;
    let (_, bob) = admin.new_member(&server, "bob", json!({})).await;
    let (cat_id, cat) = admin.new_member(&server, "cat", json!({})).await;
    let template = files_template(&admin, "box", WITH_FILES).await;
    let id = running_space(&ann, &template, "work").await;
    assert!(in_space(&id, "echo hi > /home/dev/hi.txt").await.0);

    // Strangers learn nothing; anonymous callers must sign in.
    let attempts = [
        (Method::GET, "path=/home/dev&list"),
        (Method::GET, "path=/home/dev/hi.txt"),
        (Method::PUT, "path=/home/dev/x.txt"),
        (Method::POST, "path=/home/dev"),
        (Method::DELETE, "path=/home/dev/hi.txt"),
    ];
    for (method, query) in &attempts {
        let refused = send(&bob, method.clone(), &files(&id, query), "x").await;
        assert_eq!(
            (refused.status, refused.code()),
            (404, "not_found"),
            "{method} {query}: {refused:?}"
        );
        let anonymous = send(
            &Client::anonymous(&server),
            method.clone(),
            &files(&id, query),
            "x",
        )
        .await;
        assert_eq!(anonymous.status, 401, "{method} {query}");
    }
    assert_eq!(names_in(&id, "/home/dev").await, ["hi.txt"]);

    // A sharee may, like the owner (they have a shell there anyway).
    let shared = ann.put(&format!("/api/v1/spaces/{id}/shares/cat")).await;
    assert_eq!(shared.status, 200, "{shared:?}");
    assert_eq!(download(&cat, &id, "/home/dev/hi.txt").await, b"hi\n");
    let put = send(
        &cat,
        Method::PUT,
        &files(&id, "path=/home/dev/from-cat.txt"),
        "cat",
    )
    .await;
    assert_eq!(put.status, 201, "{put:?}");

    // Losing the share stops a download under way within a second.
    assert!(
        in_space(
            &id,
            "dd if=/dev/zero of=/home/dev/huge bs=1M count=0 seek=4096 2>/dev/null"
        )
        .await
        .0
    );
    let response = cat
        .request(Method::GET, &files(&id, "path=/home/dev/huge"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut received = 0u64;
    while received < (1 << 20) {
        received += body.next().await.unwrap().unwrap().len() as u64;
    }
    let reader = tokio::spawn(async move {
        let mut failed = false;
        while let Some(piece) = body.next().await {
            match piece {
                Ok(piece) => received += piece.len() as u64,
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        (failed, received, Instant::now())
    });
    let revoked = ann
        .delete(&format!("/api/v1/spaces/{id}/shares/{cat_id}"))
        .await;
    assert_eq!(revoked.status, 200, "{revoked:?}");
    // The right is gone once the revocation is answered: from then on, at most a second.
    let revoked_at = Instant::now();
    let (failed, received, ended_at) = tokio::time::timeout(Duration::from_secs(10), reader)
        .await
        .unwrap()
        .unwrap();
    let stopped_download = ended_at.saturating_duration_since(revoked_at);
    assert!(
        stopped_download < Duration::from_secs(1),
        "stopped after {stopped_download:?}"
    );
    assert!(failed || received < 4 << 30, "the whole file came through");
    // And the cut download is audited as incomplete.
    loop {
        let events = admin
            .get("/api/v1/audit?action=files.download&actor=cat")
            .await;
        let cut =
            events.body.as_array().unwrap().iter().any(|e| {
                e["details"]["path"] == "/home/dev/huge" && e["details"]["complete"] == false
            });
        if cut {
            break;
        }
        assert!(
            revoked_at.elapsed() < Duration::from_secs(5),
            "the cut download was not audited"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        ann.get(&files(&id, "path=/home/dev&list")).await.status,
        200
    );
    assert_eq!(
        cat.get(&files(&id, "path=/home/dev&list")).await.status,
        404
    );

    // Losing it stops an upload under way within a second, and leaves nothing.
    assert_eq!(
        ann.put(&format!("/api/v1/spaces/{id}/shares/cat"))
            .await
            .status,
        200
    );
    let (feed, chunks) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let chunks =
        futures_util::stream::unfold(
            chunks,
            |mut rx| async move { rx.recv().await.map(|c| (c, rx)) },
        );
    let uploading = tokio::spawn({
        let request = cat
            .request(Method::PUT, &files(&id, "path=/home/dev/slow.bin"))
            .body(reqwest::Body::wrap_stream(chunks));
        async move { answer(request.send().await.unwrap()).await }
    });
    for _ in 0..16 {
        feed.send(Ok(vec![5u8; 64 * 1024])).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        ann.delete(&format!("/api/v1/spaces/{id}/shares/{cat_id}"))
            .await
            .status,
        200
    );
    let revoked_at = Instant::now();
    let refused = tokio::time::timeout(Duration::from_secs(5), uploading)
        .await
        .unwrap()
        .unwrap();
    let stopped_upload = revoked_at.elapsed();
    expect_error(&refused, 404, "not_found");
    assert!(
        refused.message().contains("no longer have access"),
        "{refused:?}"
    );
    assert!(
        stopped_upload < Duration::from_secs(1),
        "stopped after {stopped_upload:?}"
    );
    drop(feed);
    assert_eq!(
        names_in(&id, "/home/dev").await,
        ["from-cat.txt", "hi.txt", "huge"]
    );

    // A template without file transfer: refused, with the reason.
    let plain = files_template(&admin, "plain", &["terminal"]).await;
    let no_files = running_space(&ann, &plain, "nofiles").await;
    let off = ann.get(&files(&no_files, "path=/&list")).await;
    expect_error(&off, 403, "forbidden");

    // A stopped space: 409, saying what to do.
    ann.post_empty(&format!("/api/v1/spaces/{id}/stop")).await;
    ann.wait_for_state(&id, "stopped").await;
    for (method, query) in &attempts {
        let stopped = send(&ann, method.clone(), &files(&id, query), "x").await;
        assert_eq!(
            (stopped.status, stopped.code()),
            (409, "invalid_state"),
            "{method} {query}: {stopped:?}"
        );
        assert!(stopped.message().contains("start it"), "{stopped:?}");
    }
    server.stop().await;
}
