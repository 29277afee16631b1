//! Files in a running space: listing a directory, downloading a file or a directory (as tar),
//! uploading a file, a tar or a multipart form into a directory, and deleting a path.
//! Transfers stream through the JSON API (`/api/v1/spaces/{id}/files`); the pages list and
//! delete through server functions and move bytes through the API.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::ids::SpaceId;
use crate::time::Timestamp;

/// What a path in a space is.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    /// A device, FIFO or socket: listed, never transferred.
    Other,
}

/// One entry of a directory listing.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    pub name: String,
    pub kind: FileKind,
    /// Bytes (of the link itself for a symbolic link).
    pub size: u64,
    /// Permission bits with setuid, setgid and sticky (`0o755` is 493).
    pub mode: u32,
    pub modified: Timestamp,
    /// For a symbolic link: whether it leads to a directory (so it can be opened as one).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub leads_to_dir: bool,
}

/// `GET /api/v1/spaces/{id}/files?path=DIR&list`: a directory's entries, directories first.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DirListing {
    /// The directory, as asked.
    pub path: String,
    pub entries: Vec<FileEntry>,
    /// More entries exist than a listing returns (see `max_entries`).
    pub truncated: bool,
    pub max_entries: usize,
    /// The largest upload the server accepts, in bytes.
    pub max_upload_bytes: u64,
}

/// The answer to an upload.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UploadDone {
    /// The file written (`PUT`) or the directory written into (`POST`).
    pub path: String,
    /// Files written.
    pub files: u64,
    /// Bytes of file content written.
    pub bytes: u64,
}

/// `?format=tar`: a tar archive, of a directory or of a file.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileFormat {
    Tar,
}

/// Where in a space, and how: the query of every method of `/api/v1/spaces/{id}/files`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "ssr", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct FilesQuery {
    /// An absolute path inside the space, such as `/home/dev/notes.txt`: no `..` part, no NUL,
    /// at most 4096 bytes and 255 bytes a name (`PUT` and `DELETE`: not `/` itself).
    pub path: String,
    /// `GET`: `tar` answers a tar archive of the path (a directory needs it, or `list`).
    #[serde(default)]
    pub format: Option<FileFormat>,
    /// `GET`: a JSON listing of the directory (`?list` alone is enough).
    #[serde(default, deserialize_with = "super::serde_helpers::flag")]
    #[cfg_attr(feature = "ssr", param(value_type = Option<bool>))]
    pub list: bool,
    /// `PUT`, `POST`: create the target directory and its parents when missing (`POST`
    /// with an empty body and `create` only creates the directory).
    #[serde(default, deserialize_with = "super::serde_helpers::flag")]
    #[cfg_attr(feature = "ssr", param(value_type = Option<bool>))]
    pub create: bool,
}

/// `POST /api/v1/spaces/{id}/files` as a multipart form: each part a file, named by its
/// filename (a path below the target directory); at least one.
#[cfg(feature = "ssr")]
pub struct UploadForm;

#[cfg(feature = "ssr")]
impl utoipa::PartialSchema for UploadForm {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{
            AdditionalProperties, KnownFormat, ObjectBuilder, SchemaFormat, Type,
        };
        let file = ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .build();
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .min_properties(Some(1))
            .additional_properties(Some(AdditionalProperties::RefOr(file.into())))
            .description(Some(
                "Each part a file, named by its filename (a path below the target directory); \
                 at least one.",
            ))
            .into()
    }
}

#[cfg(feature = "ssr")]
impl utoipa::ToSchema for UploadForm {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("UploadForm")
    }
}

/// `/a/b` + `c` → `/a/b/c` (and `/` + `c` → `/c`).
pub fn join_path(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// The entries of a directory in a running space.
#[server]
pub async fn list_files(space_id: SpaceId, path: String) -> Result<DirListing, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.list_files(&caller, &space_id, &path).await)
}

/// Creates a directory (and its parents) in a running space.
#[server]
pub async fn make_directory(space_id: SpaceId, path: String) -> Result<(), ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.make_dir(&caller, &space_id, &path).await)
}

/// Deletes a file or a directory (with what it holds) in a running space.
#[server]
pub async fn delete_file(space_id: SpaceId, path: String) -> Result<(), ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.delete_path(&caller, &space_id, &path).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_join() {
        assert_eq!(join_path("/", "a"), "/a");
        assert_eq!(join_path("/a", "b"), "/a/b");
    }
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use std::pin::Pin;

    use super::{DirListing, FileFormat, UploadDone};
    use crate::api::ssr::Caller;
    use crate::error::ApiResult;
    use crate::ids::SpaceId;

    /// Bytes as they arrive from, or leave for, the network: never whole in memory.
    pub type ByteStream =
        Pin<Box<dyn futures_core::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send>>;

    /// A download about to stream.
    pub struct Download {
        /// The name to save it under (`notes.txt`, `project.tar`).
        pub file_name: String,
        /// `application/octet-stream` for a file, `application/x-tar` for an archive.
        pub content_type: &'static str,
        /// Known for a file; unknown for an archive made as it streams.
        pub length: Option<u64>,
        pub body: ByteStream,
    }

    /// An upload's body as the request carries it.
    pub struct Upload {
        /// The request's `Content-Type` (`application/x-tar`, `multipart/form-data; ...`).
        pub content_type: Option<String>,
        /// The request's `Content-Length`, when it declared one.
        pub length: Option<u64>,
        pub body: ByteStream,
    }

    /// Moving files in and out of a running space (its owner, sharees and admins).
    #[async_trait::async_trait]
    pub trait FilesApi: Send + Sync + 'static {
        async fn list_files(
            &self,
            caller: &Caller,
            space_id: &SpaceId,
            path: &str,
        ) -> ApiResult<DirListing>;
        /// A file's content, or a tar of the path with `format`.
        async fn download(
            &self,
            caller: &Caller,
            space_id: &SpaceId,
            path: &str,
            format: Option<FileFormat>,
        ) -> ApiResult<Download>;
        /// Writes one file at `path` from the body; `create` makes its directory.
        async fn put_file(
            &self,
            caller: &Caller,
            space_id: &SpaceId,
            path: &str,
            create: bool,
            upload: Upload,
        ) -> ApiResult<UploadDone>;
        /// Writes a tar archive or a multipart form's files into the directory `dir`.
        async fn post_files(
            &self,
            caller: &Caller,
            space_id: &SpaceId,
            dir: &str,
            create: bool,
            upload: Upload,
        ) -> ApiResult<UploadDone>;
        async fn make_dir(&self, caller: &Caller, space_id: &SpaceId, path: &str) -> ApiResult<()>;
        async fn delete_path(
            &self,
            caller: &Caller,
            space_id: &SpaceId,
            path: &str,
        ) -> ApiResult<()>;
    }
}
