//! File transfer (SPEC §5): listing, downloading and uploading files of a running space, and
//! deleting them. Bytes stream both ways and are never held whole: downloads come from the
//! runtime's archive of a path, uploads go to it as a tar made (or checked and made anew)
//! as the body arrives. Every path is inside the space: the runtime resolves it in the
//! space's own filesystem, and what the runtime cannot do (listing, free space, moving into
//! place) runs as small programs inside the space. An upload lands under a hidden staging
//! name in its directory and is moved into place only once whole, so a failed or cut-short
//! upload leaves nothing behind and an existing file stays as it was. Transfers stop as soon
//! as the caller loses the space.

pub mod archive;
mod shell;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use app::api::files::ssr::{ByteStream, Download, FilesApi, Upload};
use app::api::files::{
    human_bytes, join_path, DirListing, FileEntry, FileFormat, FileKind, UploadDone,
};
use app::api::templates::Feature;
use app::error::ErrorCode;
use app::ids::SpaceId;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use self::archive::{EntryKind, Input, TarError};
use super::access::Caller;
use super::audit::{self, space_target, Outcome};
use super::slots::Slot;
use super::watch::Need;
use super::Services;
use crate::entities::space;
use crate::error::{ApiError, ApiResult};
use crate::runtime::{PathInfo, UploadStream};

/// Entries a listing returns at most.
pub const MAX_LIST_ENTRIES: usize = 5000;
/// Entries an uploaded archive (or parts a form) may hold.
pub const MAX_UPLOAD_ENTRIES: usize = 100_000;
/// Transfers one user may have going at once.
pub const MAX_TRANSFERS_PER_USER: usize = 8;
/// Uploads are written under this name in their directory, then moved into place.
const STAGING_PREFIX: &str = ".hangar-upload-";
/// A refused upload's body is read and dropped for this long (or this much) before the
/// answer, so that a client still sending gets the answer rather than a reset connection.
const LINGER_TIME: Duration = Duration::from_secs(5);
const LINGER_BYTES: u64 = 64 << 20;
/// Longest path accepted.
const MAX_PATH_BYTES: usize = 4096;
/// A filesystem with less free space than this after a failed write was filled by it.
const FULL_BELOW: u64 = 1 << 20;

impl Services {
    /// A place among the caller's transfers under way, or 429 when they have the most.
    fn transfer_slot(&self, caller: &Caller) -> ApiResult<Slot> {
        self.transfers
            .take(caller.id(), MAX_TRANSFERS_PER_USER)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::RateLimited,
                    format!(
                        "you have {MAX_TRANSFERS_PER_USER} transfers going already: wait for one to end"
                    ),
                )
            })
    }
}

/// An absolute path inside a space, made plain (no `.`, empty parts or trailing slash), or
/// why it is refused.
pub fn clean_path(path: &str) -> ApiResult<String> {
    let refuse = |why: &str| Err(ApiError::invalid("path", why.to_owned()));
    if !path.starts_with('/') {
        return refuse("path must be absolute, such as /home/dev/notes.txt");
    }
    if path.len() > MAX_PATH_BYTES {
        return refuse("path is over 4096 bytes");
    }
    if path.contains('\0') {
        return refuse("path holds a NUL character");
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return refuse("path must not hold `..`: name the directory directly"),
            part if part.len() > archive::MAX_NAME_BYTES => {
                return refuse("a name in path is over 255 bytes")
            }
            part => parts.push(part),
        }
    }
    Ok(format!("/{}", parts.join("/")))
}

/// The directory and the last name of a clean path (not `/`).
fn split_path(path: &str) -> (&str, &str) {
    match path.rsplit_once('/') {
        Some(("", name)) => ("/", name),
        Some((dir, name)) => (dir, name),
        None => ("/", path),
    }
}

/// A running space the caller may move files in and out of.
#[derive(Clone)]
struct Place {
    space: space::Model,
    target: String,
}

/// Why a guarded stream was cut, for the answer; and, when it was cut for its size, the
/// rest of the client's body, to read and drop before answering.
#[derive(Default)]
struct Verdict {
    error: Option<ApiError>,
    leftover: Option<ByteStream>,
}

type SharedVerdict = Arc<Mutex<Verdict>>;

fn verdict_of(shared: &SharedVerdict) -> (Option<ApiError>, Option<ByteStream>) {
    let mut verdict = shared.lock().unwrap_or_else(|e| e.into_inner());
    (verdict.error.take(), verdict.leftover.take())
}

/// A stream of a transfer's bytes that ends in an error as soon as the caller loses the
/// space, or once it passes its size limit; counts what went through and, when it ends or
/// is dropped, says so to `on_end` (bytes, whether it ran to its end).
struct Guarded {
    inner: Option<ByteStream>,
    lost: Pin<Box<dyn Future<Output = String> + Send>>,
    limit: u64,
    counted: u64,
    complete: bool,
    verdict: SharedVerdict,
    on_end: Option<Box<dyn FnOnce(u64, bool) + Send>>,
    _slot: Slot,
}

impl Guarded {
    fn end(&mut self) {
        if let Some(on_end) = self.on_end.take() {
            on_end(self.counted, self.complete);
        }
    }

    fn cut(&mut self, error: ApiError, keep_rest: bool) -> Poll<Option<std::io::Result<Bytes>>> {
        let message = error.message.clone();
        let mut verdict = self.verdict.lock().unwrap_or_else(|e| e.into_inner());
        verdict.error = Some(error);
        let rest = self.inner.take();
        if keep_rest {
            verdict.leftover = rest;
        }
        drop(verdict);
        self.end();
        Poll::Ready(Some(Err(std::io::Error::other(message))))
    }
}

impl Stream for Guarded {
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        if let Poll::Ready(reason) = this.lost.as_mut().poll(cx) {
            let error = ApiError::not_found_because(format!("the transfer was stopped: {reason}"));
            return this.cut(error, false);
        }
        match inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(bytes))) => {
                this.counted += bytes.len() as u64;
                if this.counted > this.limit {
                    let limit = this.limit;
                    return this.cut(
                        ApiError::too_large(
                            format!("the upload is over the limit of {}", human(limit)),
                            limit,
                        ),
                        true,
                    );
                }
                Poll::Ready(Some(Ok(bytes)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.inner = None;
                this.end();
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                this.inner = None;
                this.complete = true;
                this.end();
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.end();
    }
}

/// Bytes for people: `12.3 MB`.
fn human(bytes: u64) -> String {
    human_bytes(bytes as f64)
}

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

/// Kind and permission bits from a raw Unix mode.
fn kind_of_mode(mode: u32) -> FileKind {
    match mode & 0o170000 {
        0o040000 => FileKind::Dir,
        0o120000 => FileKind::Symlink,
        0o100000 => FileKind::File,
        _ => FileKind::Other,
    }
}

/// The entries of a [`shell::LIST`] run, or `None` when its two halves disagree (the
/// directory changed while it was listed).
fn parse_listing(stdout: &[u8]) -> Option<Vec<FileEntry>> {
    let mut names = Vec::new();
    let mut rest = stdout;
    loop {
        let end = rest.iter().position(|&b| b == 0)?;
        let record = &rest[..end];
        rest = &rest[end + 1..];
        let Some((&marker, name)) = record.split_first() else {
            break;
        };
        names.push((marker == b'd', String::from_utf8_lossy(name).into_owned()));
    }
    let stats = std::str::from_utf8(rest).ok()?;
    let lines: Vec<&str> = stats.lines().filter(|l| !l.is_empty()).collect();
    if lines.len() != names.len() {
        return None;
    }
    names
        .into_iter()
        .zip(lines)
        .map(|((leads_to_dir, name), line)| {
            let mut fields = line.split_whitespace();
            let raw = u32::from_str_radix(fields.next()?, 16).ok()?;
            let size = fields.next()?.parse().ok()?;
            let mtime: i64 = fields.next()?.parse().ok()?;
            let kind = kind_of_mode(raw);
            Some(FileEntry {
                name,
                kind,
                size,
                mode: raw & 0o7777,
                modified: chrono::DateTime::from_timestamp(mtime, 0)
                    .unwrap_or_default()
                    .into(),
                leads_to_dir: kind == FileKind::Symlink && leads_to_dir,
            })
        })
        .collect()
}

impl Services {
    fn max_upload_bytes(&self) -> u64 {
        self.config.max_upload_mib.saturating_mul(1 << 20)
    }

    /// The space, if the caller may transfer files there now: 404 when they may not see it,
    /// 403 naming the permission when its template leaves file transfer off or an admin's
    /// rule denies it (to the caller or the owner), 409 when it is not running.
    async fn place(&self, caller: &Caller, space_id: &SpaceId) -> ApiResult<Place> {
        let (space, _role) = self
            .space_with_feature(caller, space_id, Feature::FileTransfer)
            .await?;
        if !space.state.is_running() {
            let state = space.state;
            return Err(ApiError::wrong_state(
                state,
                format!("the space is {state}: start it to transfer files"),
            ));
        }
        let owner = self.find_user(&space.owner_id).await?;
        let target = space_target(&owner.username, &space.name);
        Ok(Place { space, target })
    }

    async fn stat(&self, place: &Place, path: &str) -> ApiResult<Option<PathInfo>> {
        self.runtime
            .stat_path(&place.space.id, path)
            .await
            .map_err(|e| shell::runtime_error("cannot look at the path in the space", e))
    }

    /// What is at `path`, a link followed (inside the space): its resolved path and info.
    async fn resolve(&self, place: &Place, path: &str) -> ApiResult<(String, PathInfo)> {
        let info = self
            .stat(place, path)
            .await?
            .ok_or_else(|| ApiError::not_found_because(format!("nothing is at {path}")))?;
        match (&info.kind, &info.link_target) {
            (FileKind::Symlink, Some(target)) => {
                let followed = self.stat(place, target).await?.ok_or_else(|| {
                    ApiError::not_found_because(format!("{path} is a link to nothing"))
                })?;
                Ok((target.clone(), followed))
            }
            _ => Ok((path.to_owned(), info)),
        }
    }

    /// Makes sure `dir` is a directory, making it when `create` says so.
    async fn ensure_dir(&self, place: &Place, dir: &str, create: bool) -> ApiResult<()> {
        match self.stat(place, dir).await? {
            None if create => {
                let ran = self.in_space(place, shell::MAKE_DIR, &[dir], None).await?;
                if ran.ok() {
                    Ok(())
                } else {
                    Err(ApiError::conflict(format!(
                        "cannot create {dir}: {}",
                        ran.complaint()
                    )))
                }
            }
            None => Err(ApiError::not_found_because(format!(
                "there is no directory {dir}: create it first, or add create=true"
            ))),
            Some(_) => {
                let (_, info) = self.resolve(place, dir).await?;
                if info.kind == FileKind::Dir {
                    Ok(())
                } else {
                    Err(ApiError::conflict(format!("{dir} is not a directory")))
                }
            }
        }
    }

    async fn in_space(
        &self,
        place: &Place,
        script: &str,
        args: &[&str],
        input: Option<UploadStream>,
    ) -> ApiResult<shell::Ran> {
        shell::run(
            self.runtime.as_ref(),
            &place.space.id,
            script,
            args,
            input,
            1 << 20,
        )
        .await
    }

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
        let guarded = Guarded {
            inner: Some(body),
            lost: Box::pin(async move { watch.lost().await }),
            limit: self.max_upload_bytes(),
            counted: 0,
            complete: false,
            verdict: verdict.clone(),
            on_end: None,
            _slot: slot,
        };
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

    async fn audit_transfer(
        &self,
        caller: &Caller,
        place: &Place,
        action: &str,
        succeeded: bool,
        details: serde_json::Value,
    ) {
        let outcome = if succeeded {
            Outcome::Success
        } else {
            Outcome::Failed
        };
        audit::record(
            &self.db,
            Some(caller),
            action,
            &place.target,
            outcome,
            details,
        )
        .await;
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
        let head = archive::header(staged_name, &EntryKind::File, length, 0o644, now);
        let tail = {
            let mut tail = archive::padding(length).to_vec();
            tail.extend_from_slice(&archive::END_OF_ARCHIVE);
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

    async fn put_file_now(
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
            let name = archive::member_path(&name)
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

    async fn post_files_now(
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

    /// A download's bytes, guarded, and audited when they end.
    fn guard_download(
        &self,
        caller: &Caller,
        place: &Place,
        body: ByteStream,
        slot: Slot,
        details: serde_json::Value,
    ) -> ByteStream {
        let mut watch = self.watch_access(
            caller,
            Need::Feature(place.space.id.clone(), Feature::FileTransfer),
        );
        let (services, caller, place) = (self.clone(), caller.clone(), place.clone());
        let on_end = move |bytes: u64, complete: bool| {
            let mut details = details;
            details["bytes"] = bytes.into();
            details["complete"] = complete.into();
            tokio::spawn(async move {
                services
                    .audit_transfer(&caller, &place, "files.download", complete, details)
                    .await;
            });
        };
        Guarded {
            inner: Some(body),
            lost: Box::pin(async move { watch.lost().await }),
            limit: u64::MAX,
            counted: 0,
            complete: false,
            verdict: SharedVerdict::default(),
            on_end: Some(Box::new(on_end)),
            _slot: slot,
        }
        .boxed()
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
    let mut checker = archive::Checker::new(MAX_UPLOAD_ENTRIES);
    let now = chrono::Utc::now().timestamp().max(0) as u64;
    send(archive::header(staging, &EntryKind::Dir, 0, 0o755, now)).await?;
    let (mut files, mut bytes) = (0u64, 0u64);
    while let Some(entry) = archive::next_entry(&mut input).await? {
        let size = entry.size;
        let Some(entry) = checker.check(entry).map_err(TarError::Invalid)? else {
            input.skip(size + archive::padding_of(size) as u64).await?;
            continue;
        };
        let kind = match entry.kind {
            EntryKind::HardLink(target) => EntryKind::HardLink(format!("{staging}/{target}")),
            other => other,
        };
        let path = format!("{staging}/{}", entry.path);
        send(archive::header(
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
        input.skip(archive::padding_of(size) as u64).await?;
        send(archive::padding(size)).await?;
        if kind == EntryKind::File {
            files += 1;
            bytes += size;
        }
    }
    input.drain().await?;
    send(Bytes::from_static(&archive::END_OF_ARCHIVE)).await?;
    Ok((files, bytes))
}

#[async_trait::async_trait]
impl FilesApi for Services {
    async fn list_files(
        &self,
        caller: &Caller,
        space_id: &SpaceId,
        path: &str,
    ) -> ApiResult<DirListing> {
        let path = clean_path(path)?;
        let place = self.place(caller, space_id).await?;
        let (resolved, info) = self.resolve(&place, &path).await?;
        if info.kind != FileKind::Dir {
            return Err(ApiError::invalid(
                "path",
                format!("{path} is not a directory"),
            ));
        }
        let max = MAX_LIST_ENTRIES.to_string();
        // Once more if the directory changed between the two halves of the listing.
        for _ in 0..2 {
            let ran = self
                .in_space(&place, shell::LIST, &[&resolved, &max], None)
                .await?;
            if !ran.ok() {
                return Err(ApiError::conflict(format!(
                    "cannot list {path}: {}",
                    ran.complaint()
                )));
            }
            if let Some(mut entries) = parse_listing(&ran.stdout) {
                entries.retain(|e| !e.name.starts_with(STAGING_PREFIX));
                let truncated = entries.len() > MAX_LIST_ENTRIES;
                entries.truncate(MAX_LIST_ENTRIES);
                entries.sort_by(|a, b| {
                    let dir = |e: &FileEntry| e.kind == FileKind::Dir || e.leads_to_dir;
                    dir(b).cmp(&dir(a)).then_with(|| a.name.cmp(&b.name))
                });
                return Ok(DirListing {
                    path,
                    entries,
                    truncated,
                    max_entries: MAX_LIST_ENTRIES,
                    max_upload_bytes: self.max_upload_bytes(),
                });
            }
        }
        Err(ApiError::conflict(format!(
            "{path} kept changing while it was listed: try again"
        )))
    }

    async fn download(
        &self,
        caller: &Caller,
        space_id: &SpaceId,
        path: &str,
        format: Option<FileFormat>,
    ) -> ApiResult<Download> {
        let path = clean_path(path)?;
        let place = self.place(caller, space_id).await?;
        let slot = self.transfer_slot(caller)?;
        let (resolved, info) = self.resolve(&place, &path).await?;
        let name = match split_path(&path).1 {
            "" => "root".to_owned(),
            name => name.to_owned(),
        };
        let archive_of = |e| shell::runtime_error("cannot read from the space", e);
        let (download, details) = match (info.kind, format) {
            (FileKind::Other, _) => {
                return Err(ApiError::invalid(
                    "path",
                    format!("{path} is a device, FIFO or socket: only files and directories download"),
                ))
            }
            (FileKind::Dir, None) => {
                return Err(ApiError::invalid(
                    "format",
                    format!("{path} is a directory: add format=tar for a tar archive of it, or list to list it"),
                ))
            }
            (_, Some(FileFormat::Tar)) => {
                let tar = self
                    .runtime
                    .download_archive(&place.space.id, &resolved)
                    .await
                    .map_err(archive_of)?;
                let body = tar.map(|item| item.map_err(std::io::Error::other)).boxed();
                (
                    Download {
                        file_name: format!("{name}.tar"),
                        content_type: "application/x-tar",
                        length: None,
                        body,
                    },
                    serde_json::json!({"path": path, "format": "tar"}),
                )
            }
            (_, None) => {
                let tar = self
                    .runtime
                    .download_archive(&place.space.id, &resolved)
                    .await
                    .map_err(archive_of)?;
                let mut input = Input::new(tar.map(|item| item.map_err(std::io::Error::other)).boxed());
                let entry = match archive::next_entry(&mut input).await {
                    Ok(Some(entry)) if entry.kind == EntryKind::File => entry,
                    Ok(_) => {
                        return Err(ApiError::conflict(format!(
                            "{path} changed while it was read: try again"
                        )))
                    }
                    Err(e) => return Err(ApiError::unavailable(format!("reading {path}: {e}"))),
                };
                let length = entry.size;
                let body = futures_util::stream::unfold((input, length), |(mut input, left)| async move {
                    if left == 0 {
                        return None;
                    }
                    let max = usize::try_from(left.min(256 * 1024)).unwrap_or(256 * 1024);
                    match input.chunk(max).await {
                        Ok(Some(piece)) => {
                            let left = left - piece.len() as u64;
                            Some((Ok(piece), (input, left)))
                        }
                        Ok(None) => Some((
                            Err(std::io::Error::new(
                                std::io::ErrorKind::UnexpectedEof,
                                "the file ended early",
                            )),
                            (input, 0),
                        )),
                        Err(e) => Some((Err(e), (input, 0))),
                    }
                })
                .boxed();
                (
                    Download {
                        file_name: name,
                        content_type: "application/octet-stream",
                        length: Some(length),
                        body,
                    },
                    serde_json::json!({"path": path}),
                )
            }
        };
        let body = self.guard_download(caller, &place, download.body, slot, details);
        Ok(Download { body, ..download })
    }

    async fn put_file(
        &self,
        caller: &Caller,
        space_id: &SpaceId,
        path: &str,
        create: bool,
        upload: Upload,
    ) -> ApiResult<UploadDone> {
        let path = clean_path(path)?;
        if path == "/" {
            return Err(ApiError::invalid("path", "path must name a file, not /"));
        }
        let place = self.place(caller, space_id).await?;
        let slot = self.transfer_slot(caller)?;
        // In a task of its own, so that a client going away mid-upload cannot stop the
        // clean-up half done.
        let (services, caller, task_path) = (self.clone(), caller.clone(), path.clone());
        let outcome = tokio::spawn(async move {
            let result = services
                .put_file_now(&caller, &place, &task_path, create, upload, slot)
                .await;
            services
                .audit_upload(&caller, &place, &task_path, &result)
                .await;
            result
        })
        .await
        .map_err(ApiError::internal)?;
        outcome
    }

    async fn post_files(
        &self,
        caller: &Caller,
        space_id: &SpaceId,
        dir: &str,
        create: bool,
        upload: Upload,
    ) -> ApiResult<UploadDone> {
        let dir = clean_path(dir)?;
        let place = self.place(caller, space_id).await?;
        let slot = self.transfer_slot(caller)?;
        let (services, caller, task_dir) = (self.clone(), caller.clone(), dir.clone());
        tokio::spawn(async move {
            let result = services
                .post_files_now(&caller, &place, &task_dir, create, upload, slot)
                .await;
            services
                .audit_upload(&caller, &place, &task_dir, &result)
                .await;
            result
        })
        .await
        .map_err(ApiError::internal)?
    }

    async fn make_dir(&self, caller: &Caller, space_id: &SpaceId, path: &str) -> ApiResult<()> {
        let path = clean_path(path)?;
        let place = self.place(caller, space_id).await?;
        let result = self.ensure_dir(&place, &path, true).await;
        let details = serde_json::json!({"path": path});
        self.audit_transfer(caller, &place, "files.mkdir", result.is_ok(), details)
            .await;
        result
    }

    async fn delete_path(&self, caller: &Caller, space_id: &SpaceId, path: &str) -> ApiResult<()> {
        let path = clean_path(path)?;
        if path == "/" {
            return Err(ApiError::invalid(
                "path",
                "the whole filesystem cannot be deleted",
            ));
        }
        let place = self.place(caller, space_id).await?;
        let ran = self.in_space(&place, shell::REMOVE, &[&path], None).await?;
        let result = match ran.code {
            Some(0) => Ok(()),
            Some(44) => Err(ApiError::not_found_because(format!("nothing is at {path}"))),
            _ => Err(ApiError::conflict(format!(
                "cannot delete {path}: {}",
                ran.complaint()
            ))),
        };
        if !matches!(ran.code, Some(44)) {
            let details = serde_json::json!({"path": path});
            self.audit_transfer(caller, &place, "files.delete", result.is_ok(), details)
                .await;
        }
        result
    }
}

impl Services {
    async fn audit_upload(
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn paths_are_absolute_plain_and_never_climb() {
        assert_eq!(
            clean_path("/home//dev/./notes/").unwrap(),
            "/home/dev/notes"
        );
        assert_eq!(clean_path("/").unwrap(), "/");
        assert!(clean_path("home/dev").is_err());
        assert!(clean_path("/home/../etc/passwd").is_err());
        assert!(clean_path("/a\0b").is_err());
        assert!(clean_path(&format!("/{}", "x".repeat(300))).is_err());
    }

    #[test]
    fn paths_split_into_directory_and_name() {
        assert_eq!(split_path("/a"), ("/", "a"));
        assert_eq!(split_path("/a/b/c"), ("/a/b", "c"));
    }

    #[test]
    fn listings_parse_and_a_changed_directory_is_noticed() {
        let mut out = b"dsub\0fa file\0dlink\0\0".to_vec();
        out.extend_from_slice(b"41ed 4096 1700000000\n81a4 12 1700000001\na1ff 3 1700000002\n");
        let entries = parse_listing(&out).unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0].kind, FileKind::Dir);
        assert_eq!(entries[0].mode, 0o755);
        assert_eq!(entries[1].name, "a file");
        assert_eq!(entries[1].kind, FileKind::File);
        assert_eq!(entries[1].mode, 0o644);
        assert_eq!(entries[1].size, 12);
        assert_eq!(entries[2].kind, FileKind::Symlink);
        assert!(entries[2].leads_to_dir);
        assert_eq!(parse_listing(b"\0").unwrap(), vec![]);
        assert!(parse_listing(b"fa\0fb\0\081a4 1 1\n").is_none());
    }
}
