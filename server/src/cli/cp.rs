//! `hangar cp`: a file or a directory into or out of a space, through the file API. A
//! directory goes up as a tar written as it is read, and comes down as a tar unpacked as it
//! arrives without ever following a link (`unpack`).

use std::path::{Path, PathBuf};

use app::api::spaces::SpaceDto;
use app::error::ErrorBody;
use clap::Args;
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::client::Client;
use super::spaces::find_space;
use super::{unpack, CliError};
use crate::tar;

#[derive(Debug, Args)]
pub struct CopyArgs {
    /// What to copy: a local path, or `SPACE:/absolute/path` in a space.
    pub source: String,
    /// Where to: a local path, or `SPACE:/absolute/path` (a directory there keeps the name).
    pub target: String,
}

/// One side of `hangar cp`.
enum Place {
    Local(PathBuf),
    Remote { space: String, path: String },
}

fn place(text: &str) -> Place {
    // `api:/root/x` and `ann/api:/root/x` are in a space; `./a:/b` and `a:b` are local.
    let names_a_space = |space: &str| {
        let mut parts = space.split('/');
        let name = |p: Option<&str>| {
            p.is_some_and(|p| {
                !p.is_empty()
                    && !p.starts_with('.')
                    && p.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            })
        };
        let first = parts.next();
        let second = parts.next();
        parts.next().is_none() && name(first) && (second.is_none() || name(second))
    };
    match text.split_once(':') {
        Some((space, path)) if names_a_space(space) && path.starts_with('/') => Place::Remote {
            space: space.to_owned(),
            path: path.to_owned(),
        },
        _ => Place::Local(PathBuf::from(text)),
    }
}

fn files_path(space: &SpaceDto, path: &str, extra: &str) -> String {
    let mut query = url_encode(path);
    if !extra.is_empty() {
        query.push('&');
        query.push_str(extra);
    }
    format!("/api/v1/spaces/{}/files?path={query}", space.id)
}

/// Percent-encodes a query value.
fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn last_name(path: &str) -> &str {
    path.trim_end_matches('/').rsplit('/').next().unwrap_or("")
}

/// `hangar cp`: a file or a directory, into a space or out of one.
pub async fn copy(client: &Client, args: CopyArgs) -> Result<(), CliError> {
    match (place(&args.source), place(&args.target)) {
        (Place::Local(from), Place::Remote { space, path }) => {
            let space = find_space(client, &space).await?;
            upload(client, &space, &from, &path).await
        }
        (Place::Remote { space, path }, Place::Local(to)) => {
            let space = find_space(client, &space).await?;
            download(client, &space, &path, &to).await
        }
        (Place::Local(_), Place::Local(_)) => Err(CliError::usage(
            "one side must be in a space, as SPACE:/absolute/path (e.g. api:/root/notes.txt)",
        )),
        (Place::Remote { .. }, Place::Remote { .. }) => Err(CliError::usage(
            "copy between spaces through your machine: download, then upload",
        )),
    }
}

/// Whether `path` in the space is a directory (false when it is a file or is missing).
async fn remote_is_dir(client: &Client, space: &SpaceDto, path: &str) -> Result<bool, CliError> {
    let response = client
        .request(Method::GET, &files_path(space, path, "list"))
        .send()
        .await
        .map_err(|e| CliError::unreachable(format!("cannot reach Hangar: {e}")))?;
    match response.status() {
        s if s.is_success() => Ok(true),
        // Not a directory, or nothing there: both mean "not a directory".
        StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND => {
            let text = response.text().await.unwrap_or_default();
            match serde_json::from_str::<ErrorBody>(&text) {
                Ok(body) if body.error.field.as_deref() == Some("path") => Ok(false),
                // A 404 of the space itself (not the path) names no field.
                Ok(body) => Err(CliError::from_status(
                    StatusCode::NOT_FOUND,
                    body.error.message,
                )),
                Err(_) => Ok(false),
            }
        }
        _ => Err(super::client::error_of(response).await),
    }
}

async fn upload(client: &Client, space: &SpaceDto, from: &Path, to: &str) -> Result<(), CliError> {
    let meta = tokio::fs::metadata(from)
        .await
        .map_err(|e| CliError::usage(format!("cannot read {}: {e}", from.display())))?;
    let name = from
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let into_dir = to.ends_with('/') || remote_is_dir(client, space, to).await?;
    if meta.is_dir() {
        // The directory arrives as `to/<name>` when `to` is a directory, else as `to`.
        let (dir, top) = if into_dir {
            (to.trim_end_matches('/').to_owned(), name)
        } else {
            let (parent, top) = to
                .trim_end_matches('/')
                .rsplit_once('/')
                .unwrap_or(("", to));
            (parent.to_owned(), top.to_owned())
        };
        let dir = if dir.is_empty() { "/".to_owned() } else { dir };
        let (sender, receiver) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(8);
        let root = from.to_path_buf();
        let writer = tokio::spawn(async move { write_tar(&root, &top, &sender).await });
        let body = reqwest::Body::wrap_stream(futures_util::stream::unfold(
            receiver,
            |mut receiver| async move { receiver.recv().await.map(|item| (item, receiver)) },
        ));
        let sent = client
            .request(Method::POST, &files_path(space, &dir, "create"))
            .header("content-type", "application/x-tar")
            .body(body)
            .send()
            .await;
        let written = writer.await.unwrap_or(Ok(0));
        let response =
            sent.map_err(|e| CliError::unreachable(format!("the upload failed: {e}")))?;
        if !response.status().is_success() {
            return Err(super::client::error_of(response).await);
        }
        let bytes =
            written.map_err(|e| CliError::usage(format!("cannot read {}: {e}", from.display())))?;
        outln!(
            "{} -> {}:{dir} ({bytes} bytes of files)",
            from.display(),
            space.name
        );
        return Ok(());
    }
    let target = if into_dir {
        format!("{}/{name}", to.trim_end_matches('/'))
    } else {
        to.to_owned()
    };
    let file = tokio::fs::File::open(from)
        .await
        .map_err(|e| CliError::usage(format!("cannot read {}: {e}", from.display())))?;
    let response = client
        .request(Method::PUT, &files_path(space, &target, ""))
        .header("content-length", meta.len())
        .body(reqwest::Body::from(file))
        .send()
        .await
        .map_err(|e| CliError::unreachable(format!("the upload failed: {e}")))?;
    if !response.status().is_success() {
        return Err(super::client::error_of(response).await);
    }
    outln!(
        "{} -> {}:{target} ({} bytes)",
        from.display(),
        space.name,
        meta.len()
    );
    Ok(())
}

/// Writes a tar of the local directory `root`, its entries under `top/`, into `sender`; the
/// bytes of files written.
async fn write_tar(
    root: &Path,
    top: &str,
    sender: &tokio::sync::mpsc::Sender<std::io::Result<bytes::Bytes>>,
) -> std::io::Result<u64> {
    use std::os::unix::fs::PermissionsExt;
    let send = |chunk: bytes::Bytes| async move {
        sender
            .send(Ok(chunk))
            .await
            .map_err(|_| std::io::Error::other("the upload ended"))
    };
    let mut total = 0;
    let mut pending = vec![(root.to_path_buf(), top.to_owned())];
    while let Some((dir, name)) = pending.pop() {
        let meta = tokio::fs::metadata(&dir).await?;
        let mode = meta.permissions().mode() & 0o7777;
        send(tar::header(
            &name,
            &tar::EntryKind::Dir,
            0,
            mode,
            mtime(&meta),
        ))
        .await?;
        let mut entries = tokio::fs::read_dir(&dir).await?;
        while let Some(entry) = entries.next_entry().await? {
            let path = entry.path();
            let child = format!("{name}/{}", entry.file_name().to_string_lossy());
            let meta = tokio::fs::symlink_metadata(&path).await?;
            if meta.is_dir() {
                pending.push((path, child));
            } else if meta.is_file() {
                let mode = meta.permissions().mode() & 0o7777;
                send(tar::header(
                    &child,
                    &tar::EntryKind::File,
                    meta.len(),
                    mode,
                    mtime(&meta),
                ))
                .await?;
                let mut file = tokio::fs::File::open(&path).await?;
                let mut left = meta.len();
                let mut buffer = vec![0u8; 64 * 1024];
                while left > 0 {
                    let want =
                        usize::try_from(left.min(buffer.len() as u64)).unwrap_or(buffer.len());
                    let n = file.read(&mut buffer[..want]).await?;
                    if n == 0 {
                        return Err(std::io::Error::other(format!(
                            "{} shrank while it was being sent",
                            path.display()
                        )));
                    }
                    send(bytes::Bytes::copy_from_slice(&buffer[..n])).await?;
                    left -= n as u64;
                }
                send(tar::padding(meta.len())).await?;
                total += meta.len();
            } else if meta.file_type().is_symlink() {
                let target = tokio::fs::read_link(&path).await?;
                let kind = tar::EntryKind::Symlink(target.to_string_lossy().into_owned());
                send(tar::header(&child, &kind, 0, 0o777, mtime(&meta))).await?;
            }
            // Devices, FIFOs and sockets are not copied.
        }
    }
    send(bytes::Bytes::from_static(&tar::END_OF_ARCHIVE)).await?;
    Ok(total)
}

fn mtime(meta: &std::fs::Metadata) -> u64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs())
}

async fn download(
    client: &Client,
    space: &SpaceDto,
    from: &str,
    to: &Path,
) -> Result<(), CliError> {
    let is_dir = remote_is_dir(client, space, from).await?;
    let local_dir = tokio::fs::metadata(to).await.is_ok_and(|m| m.is_dir());
    let name = last_name(from);
    if is_dir {
        // Into `to/<name>` when `to` is a directory, else into `to` itself.
        let (parent, top) = if local_dir {
            (to.to_path_buf(), name.to_owned())
        } else {
            let parent = to.parent().map(Path::to_path_buf).unwrap_or_default();
            let top = to
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (parent, top)
        };
        let response = client
            .request(Method::GET, &files_path(space, from, "format=tar"))
            .send()
            .await
            .map_err(|e| CliError::unreachable(format!("the download failed: {e}")))?;
        if !response.status().is_success() {
            return Err(super::client::error_of(response).await);
        }
        let stream = response
            .bytes_stream()
            .map(|chunk| chunk.map_err(std::io::Error::other))
            .boxed();
        let unpacked = unpack::unpack(stream, &parent, name, &top).await?;
        let dest = parent.join(&top);
        outln!(
            "{}:{from} -> {} ({} bytes of files)",
            space.name,
            dest.display(),
            unpacked.bytes
        );
        return refused(&unpacked.refused, &dest);
    }
    let target = if local_dir {
        to.join(name)
    } else {
        to.to_path_buf()
    };
    let response = client
        .request(Method::GET, &files_path(space, from, ""))
        .send()
        .await
        .map_err(|e| CliError::unreachable(format!("the download failed: {e}")))?;
    if !response.status().is_success() {
        return Err(super::client::error_of(response).await);
    }
    // Whole or nothing: written beside the target, moved into place once complete.
    let partial = partial_name(&target);
    let written = save(response, &partial).await;
    match written {
        Ok(bytes) => {
            tokio::fs::rename(&partial, &target)
                .await
                .map_err(|e| CliError::usage(format!("cannot write {}: {e}", target.display())))?;
            outln!(
                "{}:{from} -> {} ({bytes} bytes)",
                space.name,
                target.display()
            );
            Ok(())
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(&partial).await;
            Err(e)
        }
    }
}

/// Entries of a downloaded directory not copied, named on stderr (the first ones) with why:
/// an error once they are said, so that a script notices.
fn refused(refused: &[String], dest: &Path) -> Result<(), CliError> {
    const SHOWN: usize = 20;
    if refused.is_empty() {
        return Ok(());
    }
    for why in refused.iter().take(SHOWN) {
        eprintln!("hangar: not copied: {why}");
    }
    if refused.len() > SHOWN {
        eprintln!("hangar: … and {} more", refused.len() - SHOWN);
    }
    Err(CliError::failed(format!(
        "{} entries were not copied (above); the rest is in {}",
        refused.len(),
        dest.display()
    )))
}

/// A name beside `target` no one else uses, to write into before the rename.
fn partial_name(target: &Path) -> PathBuf {
    target.with_file_name(format!(".hangar-partial-{}", uuid::Uuid::new_v4().simple()))
}

async fn save(response: reqwest::Response, path: &Path) -> Result<u64, CliError> {
    let cannot =
        |e: std::io::Error| CliError::usage(format!("cannot write {}: {e}", path.display()));
    // A new file, never one already there (nor what a link there leads to).
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .await
        .map_err(cannot)?;
    let mut stream = response.bytes_stream();
    let mut total = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| CliError::unreachable(format!("the download was cut: {e}")))?;
        file.write_all(&chunk).await.map_err(cannot)?;
        total += chunk.len() as u64;
    }
    file.flush().await.map_err(cannot)?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn places_in_spaces_are_named_with_a_colon_and_an_absolute_path() {
        assert!(
            matches!(place("api:/root/a"), Place::Remote { ref space, ref path } if space == "api" && path == "/root/a")
        );
        assert!(
            matches!(place("ann/api:/root"), Place::Remote { ref space, .. } if space == "ann/api")
        );
        assert!(matches!(place("./api:/root"), Place::Local(_)));
        assert!(matches!(place("/tmp/api:/root"), Place::Local(_)));
        assert!(matches!(place("./notes:old"), Place::Local(_)));
        assert!(matches!(place("notes.txt"), Place::Local(_)));
        assert!(matches!(place("api:relative"), Place::Local(_)));
    }
}
