//! Downloads: a file's bytes as they come out of the runtime's archive of it (its one entry
//! read as it streams), or a tar of a file or directory as the runtime makes it; audited
//! when the bytes end.

use app::api::files::ssr::{ByteStream, Download};
use app::api::files::{FileFormat, FileKind};
use app::api::templates::Feature;
use futures_util::StreamExt;

use super::guard::{Guarded, SharedVerdict};
use super::{shell, split_path, Place};
use crate::error::{ApiError, ApiResult};
use crate::services::access::Caller;
use crate::services::slots::Slot;
use crate::services::watch::Need;
use crate::services::Services;
use crate::tar::{self, EntryKind, Input};

impl Services {
    /// The download of the clean path `path`: a file's bytes, or with `format` a tar of it.
    pub(super) async fn download_from(
        &self,
        caller: &Caller,
        place: &Place,
        path: String,
        format: Option<FileFormat>,
        slot: Slot,
    ) -> ApiResult<Download> {
        let (resolved, info) = self.resolve(place, &path).await?;
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
                let entry = match tar::next_entry(&mut input).await {
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
        let body = self.guard_download(caller, place, download.body, slot, details);
        Ok(Download { body, ..download })
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
        Guarded::new(
            body,
            async move { watch.lost().await },
            u64::MAX,
            SharedVerdict::default(),
            Some(Box::new(on_end)),
            slot,
        )
        .boxed()
    }
}
