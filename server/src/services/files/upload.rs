//! Uploads: one file (`PUT`) written under a staging name, through the archive API when its
//! length is known and through a program in the space when not; a tar or a multipart form
//! (`POST`) rewritten entry by entry under a staging directory. Once whole, what was staged
//! is moved into place; a failed upload removes it and says why (its limit, the space out
//! of room, or the archive refused).

use std::sync::Arc;
use std::time::Duration;

use app::api::files::ssr::{ByteStream, Upload};
use app::api::files::{join_path, FileKind, UploadDone};
use app::api::templates::Feature;
use bytes::Bytes;
use futures_util::StreamExt;

use super::guard::{verdict_of, Guarded, SharedVerdict};
use super::{human, shell, split_path, Place, STAGING_PREFIX};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::runtime::UploadStream;
use crate::services::access::Caller;
use crate::services::slots::Slot;
use crate::services::watch::Need;
use crate::services::Services;
use crate::tar::{self, EntryKind, Input, TarError};

/// Entries an uploaded archive (or parts a form) may hold.
pub const MAX_UPLOAD_ENTRIES: usize = 100_000;
/// A refused upload's body is read and dropped for this long (or this much) before the
/// answer, so that a client still sending gets the answer rather than a reset connection.
const LINGER_TIME: Duration = Duration::from_secs(5);
const LINGER_BYTES: u64 = 64 << 20;
/// A filesystem with less free space than this after a failed write was filled by it.
const FULL_BELOW: u64 = 1 << 20;

/// Reads and drops what is left of a refused body, for a while, so that the client (still
/// sending) reads the answer instead of a reset.
async fn linger(body: Option<ByteStream>) {
    let Some(mut body) = body else { return };
    let _ = tokio::time::timeout(LINGER_TIME, async {
        let mut read = 0u64;
        while let Some(Ok(chunk)) = body.next().await {
            read += chunk.len() as u64;
            if read > LINGER_BYTES {
                break;
            }
        }
    })
    .await;
}

/// Whether a write failed for want of space: the runtime said so (its `NoRoom`, answered as
/// `insufficient_storage`), or the program that wrote in the space did (its complaint is text).
fn out_of_space(error: &ApiError) -> bool {
    let complaint = error.message.to_ascii_lowercase();
    error.code == ErrorCode::InsufficientStorage
        || complaint.contains("no space left")
        || complaint.contains("quota exceeded")
}

fn no_space(dir: &str) -> ApiError {
    ApiError::insufficient_storage(
        format!("the upload did not fit: {dir} ran out of space (nothing was kept)"),
        0,
    )
}

impl Services {
    /// Refuses an upload whose declared size is over the limit or over the free space in
    /// `dir` (its body read and dropped first, so the client gets the answer).
    async fn check_room(&self, place: &Place, dir: &str, upload: &mut Upload) -> ApiResult<()> {
        let Some(length) = upload.length else {
            return Ok(());
        };
        let limit = self.max_upload_bytes();
        let refusal = if length > limit {
            Some(ApiError::too_large(
                format!(
                    "the upload is {}, over the limit of {}",
                    human(length),
                    human(limit)
                ),
                limit,
            ))
        } else if length < FULL_BELOW {
            // Too small to be worth a look first: a full disk still fails it cleanly.
            None
        } else {
            let free = shell::free_bytes(self.runtime.as_ref(), &place.space.id, dir).await?;
            (length > free).then(|| {
                ApiError::insufficient_storage(
                    format!(
                        "not enough space in {dir}: {} free, the upload is {}",
                        human(free),
                        human(length)
                    ),
                    free,
                )
            })
        };
        match refusal {
            Some(error) => {
                let body =
                    std::mem::replace(&mut upload.body, futures_util::stream::empty().boxed());
                linger(Some(body)).await;
                Err(error)
            }
            None => Ok(()),
        }
    }

    /// The body of an upload, guarded: cut when the caller loses the space or when it
    /// passes the upload limit.
    fn guard_upload(
        &self,
        caller: &Caller,
        place: &Place,
        body: ByteStream,
        slot: Slot,
    ) -> (UploadStream, SharedVerdict) {
        let verdict = SharedVerdict::default();
        let mut watch = self.watch_access(
            caller,
            Need::Feature(place.space.id.clone(), Feature::FileTransfer),
        );
        let guarded = Guarded::new(
            body,
            async move { watch.lost().await },
            self.max_upload_bytes(),
            verdict.clone(),
            None,
            slot,
        );
        (guarded.boxed(), verdict)
    }

    /// The answer to a failed upload: why the body was cut if it was (after reading and
    /// dropping the rest of an oversized one), else what went wrong; removes `staged`.
    async fn upload_failed(
        &self,
        place: &Place,
        staged: &str,
        verdict: &SharedVerdict,
        error: ApiError,
    ) -> ApiError {
        let dir = split_path(staged).0;
        // Out of space, even when the engine's answer was lost as it hung up: look before the
        // clean-up frees it again.
        let full = out_of_space(&error)
            || shell::free_bytes(self.runtime.as_ref(), &place.space.id, dir)
                .await
                .is_ok_and(|free| free < FULL_BELOW);
        let removed = self
            .in_space(place, shell::REMOVE, &[staged], None)
            .await
            .map(|ran| ran.ok() || ran.code == Some(44));
        if !matches!(removed, Ok(true)) {
            tracing::warn!(staged, "could not remove a failed upload's staging path");
        }
        let (cut, leftover) = verdict_of(verdict);
        linger(leftover).await;
        match cut {
            Some(cut) => cut,
            None if full => no_space(dir),
            None => error,
        }
    }

    /// Writes one file from a stream of known length, through the archive API.
    async fn write_known(
        &self,
        place: &Place,
        dir: &str,
        staged_name: &str,
        length: u64,
        body: UploadStream,
    ) -> ApiResult<()> {
        let now = chrono::Utc::now().timestamp().max(0) as u64;
        let head = tar::header(staged_name, &EntryKind::File, length, 0o644, now);
        let tail = {
            let mut tail = tar::padding(length).to_vec();
            tail.extend_from_slice(&tar::END_OF_ARCHIVE);
            Bytes::from(tail)
        };
        let mut sent = 0u64;
        let counted = body.map(move |chunk| {
            let chunk = chunk?;
            sent += chunk.len() as u64;
            if sent > length {
                return Err(std::io::Error::other(
                    "the body is longer than its Content-Length",
                ));
            }
            Ok(chunk)
        });
        let tar = futures_util::stream::once(async move { Ok(head) })
            .chain(counted)
            .chain(futures_util::stream::once(async move { Ok(tail) }))
            .boxed();
        self.runtime
            .upload_archive(&place.space.id, dir, tar)
            .await
            .map_err(|e| shell::runtime_error("writing into the space failed", e))
    }

    /// Writes one file from a stream of unknown length, through a program in the space.
    async fn write_streamed(
        &self,
        place: &Place,
        staged: &str,
        body: UploadStream,
    ) -> ApiResult<()> {
        let ran = self
            .in_space(place, shell::WRITE_FILE, &[staged], Some(body))
            .await?;
        if ran.ok() {
            Ok(())
        } else {
            Err(ApiError::conflict(format!(
                "writing into the space failed: {}",
                ran.complaint()
            )))
        }
    }

    pub(super) async fn put_file_now(
        &self,
        caller: &Caller,
        place: &Place,
        path: &str,
        create: bool,
        mut upload: Upload,
        slot: Slot,
    ) -> ApiResult<UploadDone> {
        let (dir, name) = split_path(path);
        if name.starts_with(STAGING_PREFIX) {
            return Err(ApiError::invalid(
                "path",
                "names starting with .hangar-upload- are reserved",
            ));
        }
        self.ensure_dir(place, dir, create).await?;
        if let Ok((_, info)) = self.resolve(place, path).await {
            if info.kind == FileKind::Dir {
                return Err(ApiError::conflict(format!(
                    "a directory is at {path}: upload into it with POST, or choose another name"
                )));
            }
        }
        self.check_room(place, dir, &mut upload).await?;
        let staged_name = format!("{STAGING_PREFIX}{}", uuid::Uuid::new_v4().simple());
        let staged = join_path(dir, &staged_name);
        let length = upload.length;
        let (body, verdict) = self.guard_upload(caller, place, upload.body, slot);
        let written = match length {
            Some(length) => {
                self.write_known(place, dir, &staged_name, length, body)
                    .await
            }
            None => self.write_streamed(place, &staged, body).await,
        };
        // A body cut short may still have made the program (or the engine) finish cleanly.
        let written = match (written, verdict.lock().map(|v| v.error.is_some())) {
            (Ok(()), Ok(true)) => Err(ApiError::conflict("the upload was cut short")),
            (other, _) => other,
        };
        if let Err(error) = written {
            return Err(self.upload_failed(place, &staged, &verdict, error).await);
        }
        let ran = self
            .in_space(place, shell::PUT_IN_PLACE, &[&staged, path], None)
            .await;
        match ran {
            Ok(ran) if ran.ok() => {}
            Ok(ran) => {
                let error =
                    ApiError::conflict(format!("cannot put {path} in place: {}", ran.complaint()));
                return Err(self.upload_failed(place, &staged, &verdict, error).await);
            }
            Err(error) => return Err(self.upload_failed(place, &staged, &verdict, error).await),
        }
        let bytes = match length {
            Some(length) => length,
            None => self.stat(place, path).await?.map_or(0, |i| i.size),
        };
        Ok(UploadDone {
            path: path.to_owned(),
            files: 1,
            bytes,
        })
    }

    /// Rewrites an uploaded tar under the staging directory as it streams into the space.
    async fn post_tar(
        &self,
        place: &Place,
        dir: &str,
        staging: &str,
        body: UploadStream,
    ) -> ApiResult<(u64, u64)> {
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(8);
        let staging_name = staging.to_owned();
        let rewrite = async move {
            let result = rewrite_archive(body, &tx, &staging_name).await;
            if let Err(e) = &result {
                // The space must not keep a half-checked archive: abort the upload.
                let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
            }
            result
        };
        let upload = self
            .runtime
            .upload_archive(&place.space.id, dir, tokio_stream_of(rx));
        let (rewritten, uploaded) = tokio::join!(rewrite, upload);
        let uploaded =
            uploaded.map_err(|e| shell::runtime_error("writing into the space failed", e));
        match (rewritten, uploaded) {
            // The client's archive at fault first, then the space's refusal (out of space, say).
            (Err(TarError::Invalid(message)), _) => Err(ApiError::invalid("body", message)),
            (Err(TarError::Io(e)), _) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(
                ApiError::invalid("body", format!("{e}: send a whole, uncompressed tar")),
            ),
            (_, Err(refused)) => Err(refused),
            (Err(TarError::Io(e)), Ok(())) => {
                Err(ApiError::conflict(format!("the upload was cut short: {e}")))
            }
            (Ok(counts), Ok(())) => Ok(counts),
        }
    }

    /// Writes the files of a multipart form under the staging directory.
    async fn post_form(
        &self,
        place: &Place,
        staging_path: &str,
        boundary: String,
        body: UploadStream,
    ) -> ApiResult<(u64, u64)> {
        let ran = self
            .in_space(place, shell::MAKE_DIR, &[staging_path], None)
            .await?;
        if !ran.ok() {
            return Err(ApiError::conflict(format!(
                "cannot write here: {}",
                ran.complaint()
            )));
        }
        let mut form = multer::Multipart::new(body, boundary);
        let (mut files, mut bytes) = (0u64, 0u64);
        let form_error =
            |e: multer::Error| ApiError::invalid("body", format!("the form is malformed: {e}"));
        while let Some(field) = form.next_field().await.map_err(form_error)? {
            let Some(name) = field.file_name().map(str::to_owned) else {
                continue;
            };
            let name = tar::member_path(&name)
                .map_err(|e| ApiError::invalid("body", e))?
                .ok_or_else(|| ApiError::invalid("body", "a file in the form has no name"))?;
            files += 1;
            if files > MAX_UPLOAD_ENTRIES as u64 {
                return Err(ApiError::invalid(
                    "body",
                    format!("the form holds more than {MAX_UPLOAD_ENTRIES} files: split it"),
                ));
            }
            let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
            let seen = counter.clone();
            let content = field
                .map(move |chunk| {
                    let chunk = chunk.map_err(std::io::Error::other)?;
                    seen.fetch_add(chunk.len() as u64, std::sync::atomic::Ordering::Relaxed);
                    Ok(chunk)
                })
                .boxed();
            self.write_streamed(place, &join_path(staging_path, &name), content)
                .await?;
            bytes += counter.load(std::sync::atomic::Ordering::Relaxed);
        }
        Ok((files, bytes))
    }

    pub(super) async fn post_files_now(
        &self,
        caller: &Caller,
        place: &Place,
        dir: &str,
        create: bool,
        mut upload: Upload,
        slot: Slot,
    ) -> ApiResult<UploadDone> {
        let content_type = upload
            .content_type
            .clone()
            .unwrap_or_else(|| "application/x-tar".into());
        let boundary = if content_type.starts_with("multipart/form-data") {
            Some(multer::parse_boundary(&content_type).map_err(|_| {
                ApiError::bad_request("the multipart form names no boundary in its Content-Type")
            })?)
        } else if content_type.starts_with("application/x-tar")
            || content_type.starts_with("application/octet-stream")
        {
            None
        } else {
            return Err(ApiError::bad_request(format!(
                "cannot unpack `{content_type}`: send a tar (Content-Type: application/x-tar) or a multipart form"
            )));
        };
        self.ensure_dir(place, dir, create).await?;
        if upload.length == Some(0) {
            // Nothing to write: the directory was the point.
            return Ok(UploadDone {
                path: dir.to_owned(),
                files: 0,
                bytes: 0,
            });
        }
        self.check_room(place, dir, &mut upload).await?;
        let staging_name = format!("{STAGING_PREFIX}{}", uuid::Uuid::new_v4().simple());
        let staging = join_path(dir, &staging_name);
        let (body, verdict) = self.guard_upload(caller, place, upload.body, slot);
        let written = match boundary {
            Some(boundary) => self.post_form(place, &staging, boundary, body).await,
            None => self.post_tar(place, dir, &staging_name, body).await,
        };
        let written = match (written, verdict.lock().map(|v| v.error.is_some())) {
            (Ok(_), Ok(true)) => Err(ApiError::conflict("the upload was cut short")),
            (other, _) => other,
        };
        let (files, bytes) = match written {
            Ok(counts) => counts,
            Err(error) => return Err(self.upload_failed(place, &staging, &verdict, error).await),
        };
        match self
            .in_space(place, shell::MERGE, &[&staging, dir], None)
            .await
        {
            Ok(ran) if ran.ok() => {}
            Ok(ran) => {
                let error = ApiError::conflict(format!(
                    "cannot move the upload into {dir}: {} (what was moved stays)",
                    ran.complaint()
                ));
                return Err(self.upload_failed(place, &staging, &verdict, error).await);
            }
            Err(error) => return Err(self.upload_failed(place, &staging, &verdict, error).await),
        }
        Ok(UploadDone {
            path: dir.to_owned(),
            files,
            bytes,
        })
    }

    pub(super) async fn audit_upload(
        &self,
        caller: &Caller,
        place: &Place,
        path: &str,
        result: &ApiResult<UploadDone>,
    ) {
        let details = match result {
            Ok(done) => {
                serde_json::json!({"path": path, "files": done.files, "bytes": done.bytes})
            }
            Err(e) => serde_json::json!({"path": path, "error": e.message}),
        };
        self.audit_transfer(caller, place, "files.upload", result.is_ok(), details)
            .await;
    }
}

/// A receiver as a stream.
fn tokio_stream_of(mut rx: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>) -> UploadStream {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
}

/// Reads an uploaded tar entry by entry, checks each, and sends it anew (under `staging`,
/// owned by the space's user) to `tx`; returns the files and bytes written.
async fn rewrite_archive(
    body: UploadStream,
    tx: &tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    staging: &str,
) -> Result<(u64, u64), TarError> {
    let send = |bytes: Bytes| async move {
        tx.send(Ok(bytes))
            .await
            .map_err(|_| TarError::Io(std::io::Error::other("the space stopped taking the upload")))
    };
    let mut input = Input::new(body);
    let mut checker = tar::Checker::new(MAX_UPLOAD_ENTRIES);
    let now = chrono::Utc::now().timestamp().max(0) as u64;
    send(tar::header(staging, &EntryKind::Dir, 0, 0o755, now)).await?;
    let (mut files, mut bytes) = (0u64, 0u64);
    while let Some(entry) = tar::next_entry(&mut input).await? {
        let size = entry.size;
        let Some(entry) = checker
            .check(entry)
            .map_err(|refused| TarError::Invalid(refused.to_string()))?
        else {
            input.skip(size + tar::padding_of(size) as u64).await?;
            continue;
        };
        let kind = match entry.kind {
            EntryKind::HardLink(target) => EntryKind::HardLink(format!("{staging}/{target}")),
            other => other,
        };
        let path = format!("{staging}/{}", entry.path);
        send(tar::header(
            &path,
            &kind,
            size,
            entry.mode & 0o1777,
            entry.mtime,
        ))
        .await?;
        let mut left = size;
        while left > 0 {
            let piece = input
                .chunk(usize::try_from(left.min(256 * 1024)).unwrap_or(256 * 1024))
                .await?
                .ok_or_else(|| {
                    TarError::Io(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the archive ended in the middle of a file",
                    ))
                })?;
            left -= piece.len() as u64;
            send(piece).await?;
        }
        input.skip(tar::padding_of(size) as u64).await?;
        send(tar::padding(size)).await?;
        if kind == EntryKind::File {
            files += 1;
            bytes += size;
        }
    }
    input.drain().await?;
    send(Bytes::from_static(&tar::END_OF_ARCHIVE)).await?;
    Ok((files, bytes))
}
