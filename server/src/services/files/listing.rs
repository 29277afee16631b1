//! Listing a directory of a space: a program run in the space names its entries and stats
//! them, and the two halves are matched (once more if the directory changed in between).

use app::api::files::{DirListing, FileEntry, FileKind};

use super::{shell, Place, STAGING_PREFIX};
use crate::error::{ApiError, ApiResult};
use crate::services::Services;

/// Entries a listing returns at most.
pub const MAX_LIST_ENTRIES: usize = 5000;

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
    /// The entries of the directory at the clean path `path`, directories first.
    pub(super) async fn list(&self, place: &Place, path: String) -> ApiResult<DirListing> {
        let (resolved, info) = self.resolve(place, &path).await?;
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
                .in_space(place, shell::LIST, &[&resolved, &max], None)
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
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

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
