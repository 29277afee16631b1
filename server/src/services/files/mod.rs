//! File transfer (SPEC §5): listing, downloading and uploading files of a running space, and
//! deleting them. Bytes stream both ways and are never held whole: downloads come from the
//! runtime's archive of a path, uploads go to it as a tar made (or checked and made anew)
//! as the body arrives. Every path is inside the space: the runtime resolves it in the
//! space's own filesystem, and what the runtime cannot do (listing, free space, moving into
//! place) runs as small programs inside the space. An upload lands under a hidden staging
//! name in its directory and is moved into place only once whole, so a failed or cut-short
//! upload leaves nothing behind and an existing file stays as it was. Transfers stop as soon
//! as the caller loses the space.
//!
//! The doors of [`FilesApi`] are here with what every transfer needs (the place, its paths,
//! a slot among the caller's transfers); uploads are in `upload`, downloads in `download`,
//! listings in `listing`, and the byte streams both watch in `guard`.

mod download;
mod guard;
mod listing;
mod shell;
mod upload;

use app::api::files::ssr::{Download, FilesApi, Upload};
use app::api::files::{DirListing, FileFormat, FileKind, UploadDone};
use app::api::templates::Feature;
use app::components::size::bytes_text;
use app::error::ErrorCode;
use app::ids::SpaceId;

use super::access::{Caller, Use};
use super::audit::{self, space_target, Outcome};
use super::slots::Slot;
use super::Services;
use crate::entities::space;
use crate::error::{ApiError, ApiResult};
use crate::runtime::{PathInfo, UploadStream};
use crate::tar;

pub use self::listing::MAX_LIST_ENTRIES;
pub use self::upload::MAX_UPLOAD_ENTRIES;

/// Transfers one user may have going at once.
pub const MAX_TRANSFERS_PER_USER: usize = 8;
/// Uploads are written under this name in their directory, then moved into place.
const STAGING_PREFIX: &str = ".hangar-upload-";
/// Longest path accepted.
const MAX_PATH_BYTES: usize = 4096;

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

/// What [`clean_path`] accepts, as the API document states it (an ECMAScript pattern):
/// absolute, no `..` part, no NUL. (Its byte limits a pattern of characters cannot state.)
pub const PATH_PATTERN: &str =
    r"^(/(\.|[^/.\u0000][^/\u0000]*|\.[^/.\u0000][^/\u0000]*|\.\.[^/\u0000]+)?)+$";

/// The same, naming something below `/`: where a file is written or what is deleted.
pub const NAMED_PATH_PATTERN: &str = r"^(/\.?)*/([^/.\u0000][^/\u0000]*|\.[^/.\u0000][^/\u0000]*|\.\.[^/\u0000]+)(/(\.|[^/.\u0000][^/\u0000]*|\.[^/.\u0000][^/\u0000]*|\.\.[^/\u0000]+)?)*$";

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
            part if part.len() > tar::MAX_NAME_BYTES => {
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

/// Bytes for people: `11.8 MiB`.
fn human(bytes: u64) -> String {
    bytes_text(bytes as f64)
}

impl Services {
    fn max_upload_bytes(&self) -> u64 {
        self.config.max_upload_mib.saturating_mul(1 << 20)
    }

    /// The space, if the caller may transfer files there now (to look, or to change them: a
    /// read-only token only looks): 404 when they may not see it, 403 naming the permission
    /// when its template leaves file transfer off or an admin's rule denies it (to the caller
    /// or the owner), or naming the scope, 409 when it is not running.
    async fn place(&self, caller: &Caller, space_id: &SpaceId, intent: Use) -> ApiResult<Place> {
        let (space, _role) = self
            .space_with_feature(caller, space_id, Feature::FileTransfer, intent)
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
        let place = self.place(caller, space_id, Use::Read).await?;
        self.list(&place, path).await
    }

    async fn download(
        &self,
        caller: &Caller,
        space_id: &SpaceId,
        path: &str,
        format: Option<FileFormat>,
    ) -> ApiResult<Download> {
        let path = clean_path(path)?;
        let place = self.place(caller, space_id, Use::Read).await?;
        let slot = self.transfer_slot(caller)?;
        self.download_from(caller, &place, path, format, slot).await
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
        let place = self.place(caller, space_id, Use::Change).await?;
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
        let place = self.place(caller, space_id, Use::Change).await?;
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
        let place = self.place(caller, space_id, Use::Change).await?;
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
        let place = self.place(caller, space_id, Use::Change).await?;
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

    /// The document states the rules that `clean_path` enforces: a path it refuses for its
    /// shape (not its bytes) never matches, one it takes always does.
    #[test]
    fn the_published_patterns_say_what_clean_path_takes() {
        let any = regex::Regex::new(PATH_PATTERN).unwrap();
        let named = regex::Regex::new(NAMED_PATH_PATTERN).unwrap();
        let samples = [
            "",
            "/",
            "//",
            "/.",
            "/./",
            "/..",
            "/../",
            "/a/..",
            "/a/../b",
            "/...",
            "/..a",
            "/.a",
            "/a.",
            "/a",
            "/a/",
            "/a//b/./c",
            "a",
            "./a",
            "/a\0b",
            "/\0",
            "/é/漢字",
            "/a b",
            "/.hidden/..x",
            "/x/.",
            "//.//",
            "/./a",
            "..",
            "/a/...",
        ];
        for sample in samples {
            let sample = sample.replace("\\0", "\0");
            let cleaned = clean_path(&sample);
            assert_eq!(any.is_match(&sample), cleaned.is_ok(), "{sample:?}");
            let names_something = cleaned.is_ok_and(|p| p != "/");
            assert_eq!(named.is_match(&sample), names_something, "{sample:?}");
        }
    }

    #[test]
    fn paths_split_into_directory_and_name() {
        assert_eq!(split_path("/a"), ("/", "a"));
        assert_eq!(split_path("/a/b/c"), ("/a/b", "c"));
    }
}
