//! Files in a space's container through Docker's archive API: stat (`HEAD`), download
//! (`GET`, a tar) and upload (`PUT`, a tar extracted into a directory). Docker resolves every
//! path, symbolic links included, inside the container's own filesystem.

use app::api::files::FileKind;
use bollard::query_parameters::{
    ContainerArchiveInfoOptionsBuilder, DownloadFromContainerOptionsBuilder,
    UploadToContainerOptionsBuilder,
};
use futures_util::StreamExt;

use super::container::inspect;
use super::error::classify;
use super::{ByteStream, PathInfo, RuntimeError, UploadStream};

// Bits of Go's `os.FileMode`, as Docker reports a path's mode.
const GO_MODE_DIR: u32 = 1 << 31;
const GO_MODE_SYMLINK: u32 = 1 << 27;
const GO_MODE_DEVICE: u32 = 1 << 26;
const GO_MODE_NAMED_PIPE: u32 = 1 << 25;
const GO_MODE_SOCKET: u32 = 1 << 24;
const GO_MODE_SETUID: u32 = 1 << 23;
const GO_MODE_SETGID: u32 = 1 << 22;
const GO_MODE_CHAR_DEVICE: u32 = 1 << 21;
const GO_MODE_STICKY: u32 = 1 << 20;
const GO_MODE_IRREGULAR: u32 = 1 << 19;

/// The kind and the Unix permission bits of a Go `os.FileMode`.
pub(crate) fn from_go_mode(mode: u32) -> (FileKind, u32) {
    let kind = if mode & GO_MODE_DIR != 0 {
        FileKind::Dir
    } else if mode & GO_MODE_SYMLINK != 0 {
        FileKind::Symlink
    } else if mode
        & (GO_MODE_DEVICE
            | GO_MODE_NAMED_PIPE
            | GO_MODE_SOCKET
            | GO_MODE_CHAR_DEVICE
            | GO_MODE_IRREGULAR)
        != 0
    {
        FileKind::Other
    } else {
        FileKind::File
    };
    let mut permissions = mode & 0o777;
    for (go, unix) in [
        (GO_MODE_SETUID, 0o4000),
        (GO_MODE_SETGID, 0o2000),
        (GO_MODE_STICKY, 0o1000),
    ] {
        if mode & go != 0 {
            permissions |= unix;
        }
    }
    (kind, permissions)
}

/// A 404 of the archive API means no such path or no such container: `None` when the
/// container is there (so the path is not), else what is wrong with the container.
async fn container_missing(docker: &bollard::Docker, container: &str) -> Option<RuntimeError> {
    match inspect(docker, container).await {
        Ok(Some(_)) => None,
        Ok(None) => Some(RuntimeError::not_found(
            "the space's container is gone: start the space again",
        )),
        Err(e) => Some(e),
    }
}

/// What a 404 of the archive API means for an operation that needed the path.
async fn not_found(docker: &bollard::Docker, container: &str) -> RuntimeError {
    container_missing(docker, container)
        .await
        .unwrap_or_else(|| RuntimeError::not_found("no such file or directory"))
}

/// [`crate::runtime::Runtime::stat_path`] in `container` on the engine `docker`.
pub(crate) async fn stat_path_in(
    docker: &bollard::Docker,
    container: &str,
    path: &str,
) -> Result<Option<PathInfo>, RuntimeError> {
    let options = ContainerArchiveInfoOptionsBuilder::new().path(path).build();
    match docker
        .get_container_archive_info(container, Some(options))
        .await
        .map_err(|e| classify("looking at a path in the space", e))
    {
        Ok(stat) => {
            let (kind, mode) = from_go_mode(stat.file_mode);
            let modified = stat
                .modification_time
                .as_deref()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&chrono::Utc));
            Ok(Some(PathInfo {
                kind,
                size: u64::try_from(stat.size).unwrap_or(0),
                mode,
                modified,
                link_target: (!stat.link_target.is_empty()).then_some(stat.link_target),
            }))
        }
        Err(RuntimeError::NotFound { .. }) => match container_missing(docker, container).await {
            None => Ok(None),
            Some(error) => Err(error),
        },
        Err(e) => Err(e),
    }
}

/// [`crate::runtime::Runtime::download_archive`] from `container` on the engine `docker`.
pub(crate) async fn download_archive_of(
    docker: &bollard::Docker,
    container: &str,
    path: &str,
) -> Result<ByteStream, RuntimeError> {
    let options = DownloadFromContainerOptionsBuilder::new()
        .path(path)
        .build();
    let mut archive = docker
        .download_from_container(container, Some(options))
        .boxed();
    // The engine's refusal comes as the first item: answer it now, not mid-stream.
    let first = match archive.next().await {
        None => return Ok(futures_util::stream::empty().boxed()),
        Some(Ok(chunk)) => chunk,
        Some(Err(e)) => match classify("reading from the space", e) {
            RuntimeError::NotFound { .. } => return Err(not_found(docker, container).await),
            e => return Err(e),
        },
    };
    let rest = archive.map(|item| item.map_err(|e| classify("reading from the space", e)));
    Ok(futures_util::stream::once(async move { Ok(first) })
        .chain(rest)
        .boxed())
}

/// [`crate::runtime::Runtime::upload_archive`] into `container` on the engine `docker`.
pub(crate) async fn upload_archive_to(
    docker: &bollard::Docker,
    container: &str,
    dir: &str,
    tar: UploadStream,
) -> Result<(), RuntimeError> {
    // Ownership: the container's user when it names one, else the headers' (root). Nothing an
    // archive holds may replace a directory by something else or the reverse (the engine
    // would otherwise remove what is in the way, and what follows could go through a link
    // put where a directory was).
    let options = UploadToContainerOptionsBuilder::new()
        .path(dir)
        .copy_uidgid("true")
        .no_overwrite_dir_non_dir("true")
        .build();
    let Err(e) = docker
        .upload_to_container(container, Some(options), bollard::body_try_stream(tar))
        .await
    else {
        return Ok(());
    };
    let cut_short = format!("writing into the space was cut short: {e}");
    match classify("writing into the space", e) {
        RuntimeError::NotFound { .. } => Err(not_found(docker, container).await),
        // Not the engine gone: the upload's own stream broke off (its error aborts it).
        RuntimeError::Unavailable(_) => Err(RuntimeError::Failed(cut_short)),
        // Out of space (`NoRoom`) included.
        refused => Err(refused),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_modes_become_kinds_and_unix_bits() {
        assert_eq!(from_go_mode(0o644), (FileKind::File, 0o644));
        assert_eq!(from_go_mode(GO_MODE_DIR | 0o755), (FileKind::Dir, 0o755));
        assert_eq!(
            from_go_mode(GO_MODE_SYMLINK | 0o777),
            (FileKind::Symlink, 0o777)
        );
        assert_eq!(
            from_go_mode(GO_MODE_DIR | GO_MODE_STICKY | 0o777),
            (FileKind::Dir, 0o1777)
        );
        assert_eq!(
            from_go_mode(GO_MODE_SETUID | 0o755),
            (FileKind::File, 0o4755)
        );
        assert_eq!(
            from_go_mode(GO_MODE_DEVICE | GO_MODE_CHAR_DEVICE | 0o666),
            (FileKind::Other, 0o666)
        );
    }
}
