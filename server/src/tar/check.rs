//! Checking the entries of an archive from elsewhere before anything is made of them: names
//! kept inside the place it unpacks to, links that lead inside it, a bounded count.

use std::collections::HashSet;

use super::{Entry, EntryKind, MAX_NAME_BYTES, MAX_PATH_BYTES};

/// A path inside an uploaded archive made safe: relative, with no `.` or empty parts, each
/// part a plain name. `None` for the archive's root itself (`./`), which makes nothing.
pub fn member_path(raw: &str) -> Result<Option<String>, String> {
    if raw.starts_with('/') {
        return Err(format!(
            "`{raw}` is an absolute name: archives must hold relative names (tar -C DIR -c .)"
        ));
    }
    if raw.len() > MAX_PATH_BYTES {
        return Err(format!(
            "a name in the archive is over {MAX_PATH_BYTES} bytes"
        ));
    }
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                return Err(format!(
                    "`{raw}` climbs out with `..`: archives must hold names inside the upload"
                ))
            }
            part if part.len() > MAX_NAME_BYTES => {
                return Err(format!("`{raw}` has a name over {MAX_NAME_BYTES} bytes"))
            }
            part if part.contains('\0') => return Err("a name in the archive holds a NUL".into()),
            part => parts.push(part),
        }
    }
    Ok((!parts.is_empty()).then(|| parts.join("/")))
}

/// Whether a symbolic link at `path` (inside the upload) to `target` stays inside it.
fn link_stays_inside(path: &str, target: &str) -> bool {
    if target.starts_with('/') || target.is_empty() {
        return false;
    }
    let mut depth: Vec<&str> = path.split('/').collect();
    depth.pop();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if depth.pop().is_none() {
                    return false;
                }
            }
            other => depth.push(other),
        }
    }
    true
}

/// Checks entries of one upload as they come: names inside the upload, no entry written
/// through a link the same archive made, links that lead inside it, hard links to files it
/// holds, and a bounded count.
pub struct Checker {
    links: HashSet<String>,
    files: HashSet<String>,
    count: usize,
    max_entries: usize,
}

impl Checker {
    pub fn new(max_entries: usize) -> Self {
        Self {
            links: HashSet::new(),
            files: HashSet::new(),
            count: 0,
            max_entries,
        }
    }

    /// The entry with clean names (`None`: the archive's root, which makes nothing), or why
    /// it is refused.
    pub fn check(&mut self, entry: Entry) -> Result<Option<Entry>, String> {
        let Some(path) = member_path(&entry.path)? else {
            return Ok(None);
        };
        self.count += 1;
        if self.count > self.max_entries {
            return Err(format!(
                "the archive holds more than {} entries: split it",
                self.max_entries
            ));
        }
        let mut parent = String::new();
        for part in path.split('/') {
            if !parent.is_empty() && self.links.contains(&parent) {
                return Err(format!(
                    "`{path}` would be written through the link `{parent}` the archive made"
                ));
            }
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(part);
        }
        let kind = match entry.kind {
            EntryKind::Symlink(target) => {
                if !link_stays_inside(&path, &target) {
                    return Err(format!(
                        "`{path}` links to `{target}`, outside the upload: links in an archive must lead inside it"
                    ));
                }
                self.links.insert(path.clone());
                self.files.remove(&path);
                EntryKind::Symlink(target)
            }
            EntryKind::HardLink(target) => {
                let target = member_path(&target)?.unwrap_or_default();
                if !self.files.contains(&target) {
                    return Err(format!(
                        "`{path}` is a hard link to `{target}`, which is not a file earlier in the archive"
                    ));
                }
                self.links.remove(&path);
                self.files.insert(path.clone());
                EntryKind::HardLink(target)
            }
            EntryKind::File => {
                self.links.remove(&path);
                self.files.insert(path.clone());
                EntryKind::File
            }
            EntryKind::Dir => {
                self.links.remove(&path);
                self.files.remove(&path);
                EntryKind::Dir
            }
        };
        Ok(Some(Entry {
            path,
            kind,
            ..entry
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn names_are_made_relative_and_plain_or_refused() {
        assert_eq!(member_path("./a/./b/").unwrap(), Some("a/b".into()));
        assert_eq!(member_path("./").unwrap(), None);
        assert!(member_path("../etc/passwd").is_err());
        assert!(member_path("a/../../b").is_err());
        assert!(member_path("/etc/passwd").is_err());
        assert!(member_path(&"n".repeat(300)).is_err());
    }

    fn entry(path: &str, kind: EntryKind) -> Entry {
        Entry {
            path: path.into(),
            kind,
            size: 0,
            mode: 0o644,
            mtime: 0,
        }
    }

    #[test]
    fn links_must_lead_inside_and_nothing_is_written_through_them() {
        let mut checker = Checker::new(100);
        assert!(checker
            .check(entry("a/up", EntryKind::Symlink("../b".into())))
            .is_ok());
        assert!(checker
            .check(entry("a/out", EntryKind::Symlink("../../b".into())))
            .is_err());
        assert!(checker
            .check(entry("abs", EntryKind::Symlink("/etc".into())))
            .is_err());
        assert!(checker
            .check(entry("root", EntryKind::Symlink(".".into())))
            .is_ok());
        let through = checker.check(entry("root/x", EntryKind::File)).unwrap_err();
        assert!(through.contains("through the link"), "{through}");
        // A directory put where the link was replaces it.
        checker.check(entry("root", EntryKind::Dir)).unwrap();
        assert!(checker.check(entry("root/x", EntryKind::File)).is_ok());
        assert!(checker
            .check(entry("h", EntryKind::HardLink("root/x".into())))
            .is_ok());
        assert!(checker
            .check(entry("h2", EntryKind::HardLink("/etc/shadow".into())))
            .is_err());
        assert!(checker
            .check(entry("h3", EntryKind::HardLink("nothing".into())))
            .is_err());
    }

    #[test]
    fn the_entry_count_is_bounded() {
        let mut checker = Checker::new(2);
        checker.check(entry("a", EntryKind::File)).unwrap();
        checker.check(entry("b", EntryKind::File)).unwrap();
        assert!(checker.check(entry("c", EntryKind::File)).is_err());
    }
}
