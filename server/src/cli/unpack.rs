//! Unpacking a directory that comes down from a space (`hangar cp SPACE:/dir DEST`) so that
//! nothing lands outside DEST, whatever the space holds and whatever DEST held before: the
//! destination is opened once and every entry is made relative to directory handles opened
//! without following links (`openat` with `O_NOFOLLOW`); files and links are made under a
//! fresh name and renamed into place (so no file already there is written into); a link is
//! made only when it leads inside DEST once the links already there are followed; and nothing
//! already there is written through or replaced by a link. Case-insensitive file systems
//! change nothing: the kernel finds `A` when asked for `a` without following it either.
//!
//! An entry refused is skipped and named, with why; the rest is copied.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{self as fs, AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use super::CliError;
use crate::tar::{self, Entry, EntryKind, Node, Refusal, Tree};

/// Entries a downloaded directory may hold.
const MAX_ENTRIES: usize = 1_000_000;

/// What an unpacking made, and what it did not.
#[derive(Debug, Default)]
pub struct Unpacked {
    /// Bytes of files written.
    pub bytes: u64,
    /// Each entry not made, with why.
    pub refused: Vec<String>,
}

/// Why an entry was not made: refused (the rest goes on), or the disk failed (all stops).
enum Problem {
    Refused(String),
    Failed(String),
}

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

/// A name for something being made, unique in its directory.
fn fresh_name() -> String {
    format!(".hangar-partial-{}", uuid::Uuid::new_v4().simple())
}

/// What is at `name` in `dir`, the name not followed; `None` when nothing is.
fn kind_at(dir: &OwnedFd, name: &str) -> Result<Option<FileType>, Errno> {
    match fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => Ok(Some(FileType::from_raw_mode(stat.st_mode))),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The destination, opened once; every entry is made below it.
struct Dest {
    root: OwnedFd,
    /// How to name it to the user.
    shown: String,
}

impl Dest {
    /// Opens `parent/top`, making it if need be: `parent` is the user's own path, followed as
    /// given; `top` is never a link.
    fn open(parent: &Path, top: &str) -> Result<Self, CliError> {
        let shown = parent.join(top).display().to_string();
        let cannot =
            |e: &dyn std::fmt::Display| CliError::usage(format!("cannot write {shown}: {e}"));
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        std::fs::create_dir_all(parent).map_err(|e| cannot(&e))?;
        let parent = fs::open(parent, dir_flags() & !OFlags::NOFOLLOW, Mode::empty())
            .map_err(|e| cannot(&e))?;
        if top.is_empty() {
            return Ok(Dest {
                root: parent,
                shown,
            });
        }
        match fs::mkdirat(&parent, top, Mode::from_bits_truncate(0o777)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(cannot(&e)),
        }
        let root = match fs::openat(&parent, top, dir_flags(), Mode::empty()) {
            Ok(root) => root,
            Err(e) => {
                return Err(match kind_at(&parent, top) {
                    Ok(Some(FileType::Symlink)) => CliError::usage(format!(
                        "{shown} is a link: hangar cp does not write through links; name the \
                         directory it leads to"
                    )),
                    Ok(Some(kind)) if kind != FileType::Directory => {
                        CliError::usage(format!("{shown} is a file, not a directory"))
                    }
                    _ => cannot(&e),
                })
            }
        };
        Ok(Dest { root, shown })
    }

    /// The directory `names` below the root, each step opened without following a link;
    /// made when missing and `make`.
    fn dir(&self, names: &[String], make: bool) -> Result<OwnedFd, Problem> {
        let mut here = fs::openat(&self.root, ".", dir_flags(), Mode::empty())
            .map_err(|e| Problem::Failed(format!("cannot open {}: {e}", self.shown)))?;
        for (at, name) in names.iter().enumerate() {
            let opened = match fs::openat(&here, name.as_str(), dir_flags(), Mode::empty()) {
                Err(Errno::NOENT) if make => {
                    match fs::mkdirat(&here, name.as_str(), Mode::from_bits_truncate(0o777)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => {
                            return Err(Problem::Failed(format!(
                                "cannot make {}/{}: {e}",
                                self.shown,
                                names[..=at].join("/")
                            )))
                        }
                    }
                    fs::openat(&here, name.as_str(), dir_flags(), Mode::empty())
                }
                other => other,
            };
            here = match opened {
                Ok(next) => next,
                Err(e) => return Err(self.not_a_dir(&here, &names[..=at], e)),
            };
        }
        Ok(here)
    }

    /// Why `path`'s last name in `dir` could not be opened as a directory.
    fn not_a_dir(&self, dir: &OwnedFd, path: &[String], error: Errno) -> Problem {
        let name = path.last().map(String::as_str).unwrap_or(".");
        let shown = path.join("/");
        match kind_at(dir, name) {
            Ok(Some(FileType::Symlink)) => Problem::Refused(format!(
                "`{shown}` is a link already there, and nothing is written through a link"
            )),
            Ok(Some(FileType::Directory)) | Err(_) => {
                Problem::Failed(format!("cannot open {}/{shown}: {error}", self.shown))
            }
            Ok(Some(_)) => Problem::Refused(format!("`{shown}` is a file already there")),
            Ok(None) => Problem::Refused(format!("`{shown}` is not there")),
        }
    }

    /// Refuses to put `what` over what is at `name` in `dir` unless that is nothing or a file
    /// (replaced whole by a rename, never written into).
    fn may_replace(&self, dir: &OwnedFd, path: &str, name: &str) -> Result<(), Problem> {
        match kind_at(dir, name) {
            Ok(Some(FileType::Symlink)) => Err(Problem::Refused(format!(
                "`{path}` is a link already there, and a link is not replaced"
            ))),
            Ok(Some(FileType::Directory)) => Err(Problem::Refused(format!(
                "`{path}` is a directory already there"
            ))),
            Ok(_) => Ok(()),
            Err(e) => Err(Problem::Failed(format!(
                "cannot look at {}/{path}: {e}",
                self.shown
            ))),
        }
    }

    /// Renames `fresh` to `name` in `dir`; removes `fresh` if that fails.
    fn put_in_place(
        &self,
        dir: &OwnedFd,
        fresh: &str,
        name: &str,
        path: &str,
    ) -> Result<(), Problem> {
        let moved = fs::renameat(dir, fresh, dir, name);
        // Renaming a hard link onto another name of the same file does nothing: drop it.
        let _ = fs::unlinkat(dir, fresh, AtFlags::empty());
        moved.map_err(|e| Problem::Failed(format!("cannot write {}/{path}: {e}", self.shown)))
    }

    /// Makes one entry (a file's content read from `input`); the bytes written.
    async fn make(&self, entry: &Entry, input: &mut tar::Input) -> Result<u64, Problem> {
        let names: Vec<String> = entry.path.split('/').map(str::to_owned).collect();
        let Some((name, parents)) = names.split_last() else {
            return Ok(0);
        };
        let path = entry.path.as_str();
        match &entry.kind {
            EntryKind::Dir => self.dir(&names, true).map(|_| 0),
            EntryKind::File => {
                let dir = self.dir(parents, true)?;
                self.may_replace(&dir, path, name)?;
                self.write_file(&dir, name, entry, input).await
            }
            EntryKind::Symlink(target) => {
                let dir = self.dir(parents, true)?;
                if kind_at(&dir, name) == Ok(Some(FileType::Symlink)) {
                    let there = fs::readlinkat(&dir, name.as_str(), Vec::new())
                        .map(|t| t.to_string_lossy().into_owned());
                    if there.as_deref() == Ok(target.as_str()) {
                        // The same link, from an earlier copy.
                        return Ok(0);
                    }
                }
                self.may_replace(&dir, path, name)?;
                tar::resolve_inside(self, &names, target).map_err(|why| {
                    Problem::Refused(format!(
                        "`{path}` links to `{target}`, which {why} ({}): a link must lead inside \
                         the copy",
                        self.shown
                    ))
                })?;
                let fresh = fresh_name();
                fs::symlinkat(target.as_str(), &dir, fresh.as_str()).map_err(|e| {
                    Problem::Failed(format!("cannot write {}/{path}: {e}", self.shown))
                })?;
                self.put_in_place(&dir, &fresh, name, path).map(|()| 0)
            }
            EntryKind::HardLink(target) => {
                let target_names: Vec<String> = target.split('/').map(str::to_owned).collect();
                let Some((target_name, target_parents)) = target_names.split_last() else {
                    return Ok(0);
                };
                let target_dir = self.dir(target_parents, false)?;
                if kind_at(&target_dir, target_name) != Ok(Some(FileType::RegularFile)) {
                    return Err(Problem::Refused(format!(
                        "`{path}` is a hard link to `{target}`, which is not a file here"
                    )));
                }
                let dir = self.dir(parents, true)?;
                self.may_replace(&dir, path, name)?;
                let fresh = fresh_name();
                fs::linkat(
                    &target_dir,
                    target_name.as_str(),
                    &dir,
                    fresh.as_str(),
                    AtFlags::empty(),
                )
                .map_err(|e| Problem::Failed(format!("cannot write {}/{path}: {e}", self.shown)))?;
                self.put_in_place(&dir, &fresh, name, path).map(|()| 0)
            }
        }
    }

    /// Writes a file's content under a fresh name in `dir`, then renames it to `name`.
    async fn write_file(
        &self,
        dir: &OwnedFd,
        name: &str,
        entry: &Entry,
        input: &mut tar::Input,
    ) -> Result<u64, Problem> {
        let path = &entry.path;
        let failed = |e: &dyn std::fmt::Display| {
            Problem::Failed(format!("cannot write {}/{path}: {e}", self.shown))
        };
        let fresh = fresh_name();
        // Executables stay executable; the umask applies as to any new file.
        let mode = if entry.mode & 0o111 != 0 {
            0o777
        } else {
            0o666
        };
        let file = fs::openat(
            dir,
            fresh.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_bits_truncate(mode),
        )
        .map_err(|e| failed(&e))?;
        let mut file = std::fs::File::from(file);
        let written = async {
            let mut left = entry.size;
            while left > 0 {
                let max = usize::try_from(left.min(64 * 1024)).unwrap_or(64 * 1024);
                let chunk = input
                    .chunk(max)
                    .await
                    .map_err(|e| Problem::Failed(format!("the download was cut: {e}")))?
                    .ok_or_else(|| {
                        Problem::Failed("the download ended inside a file".to_owned())
                    })?;
                file.write_all(&chunk).map_err(|e| failed(&e))?;
                left -= chunk.len() as u64;
            }
            file.flush().map_err(|e| failed(&e))
        }
        .await;
        drop(file);
        if let Err(problem) = written {
            let _ = fs::unlinkat(dir, fresh.as_str(), AtFlags::empty());
            return Err(problem);
        }
        self.put_in_place(dir, &fresh, name, path)?;
        Ok(entry.size)
    }
}

/// Links are resolved on the disk as it is, what was there before this copy included.
impl Tree for Dest {
    fn node(&self, path: &[String]) -> Node {
        let Some((name, parents)) = path.split_last() else {
            return Node::Dir;
        };
        let Ok(dir) = self.dir(parents, false) else {
            return Node::Missing;
        };
        match kind_at(&dir, name) {
            Ok(Some(FileType::Directory)) => Node::Dir,
            Ok(Some(FileType::Symlink)) => match fs::readlinkat(&dir, name.as_str(), Vec::new()) {
                Ok(target) => Node::Link(target.to_string_lossy().into_owned()),
                Err(_) => Node::Missing,
            },
            Ok(Some(_)) => Node::File,
            Ok(None) | Err(_) => Node::Missing,
        }
    }
}

/// Where an archive's entry goes, its names made relative to the directory copied.
enum Placed {
    /// The directory copied itself.
    Top(EntryKind),
    Inside(Entry),
    Refused(String),
}

/// `path` (a clean archive name) below `name/`, or `None` when it is not below it.
fn below<'a>(path: &'a str, name: &str) -> Option<&'a str> {
    if name.is_empty() {
        return Some(path);
    }
    path.strip_prefix(name)?.strip_prefix('/')
}

/// Places an entry of an archive whose names start with `name/`.
fn place(entry: Entry, name: &str) -> Option<Placed> {
    let path = match tar::member_path(&entry.path) {
        Ok(Some(path)) => path,
        // The archive's root (`./`) makes nothing.
        Ok(None) => return None,
        Err(why) => return Some(Placed::Refused(why)),
    };
    if path == name {
        return Some(Placed::Top(entry.kind));
    }
    let Some(inside) = below(&path, name) else {
        return Some(Placed::Refused(format!("`{path}` is outside `{name}`")));
    };
    let kind = match entry.kind {
        EntryKind::HardLink(target) => {
            let target = tar::member_path(&target).ok().flatten().unwrap_or_default();
            match below(&target, name) {
                Some(inside) => EntryKind::HardLink(inside.to_owned()),
                None => {
                    return Some(Placed::Refused(format!(
                        "`{path}` is a hard link to `{target}`, outside `{name}`"
                    )))
                }
            }
        }
        other => other,
    };
    Some(Placed::Inside(Entry {
        path: inside.to_owned(),
        kind,
        ..entry
    }))
}

/// Unpacks a tar whose entries sit under `name/` into `parent/top/`.
pub async fn unpack(
    stream: tar::ByteInput,
    parent: &Path,
    name: &str,
    top: &str,
) -> Result<Unpacked, CliError> {
    let dest = Dest::open(parent, top)?;
    let mut input = tar::Input::new(stream);
    let mut checker = tar::Checker::new(MAX_ENTRIES);
    let mut unpacked = Unpacked::default();
    let bad = |e: &dyn std::fmt::Display| {
        CliError::failed(format!("the archive from the space was refused: {e}"))
    };
    while let Some(entry) = tar::next_entry(&mut input).await.map_err(|e| bad(&e))? {
        let size = entry.size;
        let checked = match place(entry, name) {
            None => Ok(None),
            Some(Placed::Top(EntryKind::Dir)) => Ok(None),
            Some(Placed::Top(_)) => {
                return Err(bad(&format!("`{name}` is not a directory in it")));
            }
            Some(Placed::Refused(why)) => Err(why),
            Some(Placed::Inside(entry)) => match checker.check(entry) {
                Ok(checked) => Ok(checked),
                Err(Refusal::Entry(why)) => Err(why),
                Err(refused @ Refusal::Archive(_)) => return Err(bad(&refused)),
            },
        };
        // A file's content is read by making it; anything else skips it.
        let mut consumed = false;
        match checked {
            Ok(Some(entry)) => match dest.make(&entry, &mut input).await {
                Ok(bytes) => {
                    unpacked.bytes += bytes;
                    consumed = true;
                }
                Err(Problem::Refused(why)) => unpacked.refused.push(why),
                Err(Problem::Failed(why)) => return Err(CliError::usage(why)),
            },
            Ok(None) => {}
            Err(why) => unpacked.refused.push(why),
        }
        let skip = if consumed { 0 } else { size };
        input
            .skip(skip + tar::padding_of(size) as u64)
            .await
            .map_err(|e| bad(&e))?;
    }
    Ok(unpacked)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::os::unix::fs::symlink;

    use bytes::Bytes;
    use futures_util::StreamExt;

    use super::*;

    /// An archive of `entries` (a file's content after its name) as the server sends one.
    fn archive(entries: &[(&str, EntryKind, &[u8])]) -> tar::ByteInput {
        let mut all = Vec::new();
        for (path, kind, content) in entries {
            all.extend_from_slice(&tar::header(path, kind, content.len() as u64, 0o644, 0));
            all.extend_from_slice(content);
            all.extend_from_slice(&tar::padding(content.len() as u64));
        }
        all.extend_from_slice(&tar::END_OF_ARCHIVE);
        futures_util::stream::iter([Ok(Bytes::from(all))]).boxed()
    }

    fn dir() -> EntryKind {
        EntryKind::Dir
    }

    fn file() -> EntryKind {
        EntryKind::File
    }

    fn link(target: &str) -> EntryKind {
        EntryKind::Symlink(target.into())
    }

    /// A place to copy to, with a sentinel beside it that no copy may touch.
    struct Place {
        tmp: tempfile::TempDir,
    }

    impl Place {
        fn new() -> Self {
            let tmp = tempfile::tempdir().unwrap();
            std::fs::write(tmp.path().join("sentinel"), "mine").unwrap();
            Place { tmp }
        }

        fn path(&self) -> &Path {
            self.tmp.path()
        }

        /// Asserts that nothing but `dest` and the sentinel is beside the copy.
        fn untouched(&self) {
            let mut names: Vec<String> = std::fs::read_dir(self.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            assert_eq!(names, ["dest", "sentinel"]);
            let sentinel = self.path().join("sentinel");
            assert!(!std::fs::symlink_metadata(&sentinel).unwrap().is_symlink());
            assert_eq!(std::fs::read_to_string(sentinel).unwrap(), "mine");
        }

        async fn copy(&self, entries: &[(&str, EntryKind, &[u8])]) -> Result<Unpacked, CliError> {
            unpack(archive(entries), self.path(), "dir", "dest").await
        }
    }

    fn said(unpacked: &Unpacked, words: &[&str]) {
        assert!(
            unpacked
                .refused
                .iter()
                .any(|why| words.iter().all(|w| why.contains(w))),
            "no refusal says {words:?}: {:?}",
            unpacked.refused
        );
    }

    #[tokio::test]
    async fn a_tree_comes_down_whole_and_again_over_itself() {
        let place = Place::new();
        let tree: &[(&str, EntryKind, &[u8])] = &[
            ("dir", dir(), b""),
            ("dir/README", file(), b"read me"),
            ("dir/LINK", link("README"), b""),
            ("dir/src/deep/main.rs", file(), b"fn main() {}"),
            ("dir/src/up", link("../README"), b""),
            ("dir/hard", EntryKind::HardLink("dir/README".into()), b""),
        ];
        for _ in 0..2 {
            let unpacked = place.copy(tree).await.unwrap();
            assert!(unpacked.refused.is_empty(), "{:?}", unpacked.refused);
            assert_eq!(unpacked.bytes, 19);
        }
        let dest = place.path().join("dest");
        assert_eq!(
            std::fs::read_to_string(dest.join("LINK")).unwrap(),
            "read me"
        );
        assert_eq!(
            std::fs::read_to_string(dest.join("src/up")).unwrap(),
            "read me"
        );
        assert_eq!(
            std::fs::read_to_string(dest.join("hard")).unwrap(),
            "read me"
        );
        assert_eq!(
            std::fs::read_to_string(dest.join("src/deep/main.rs")).unwrap(),
            "fn main() {}"
        );
        let names: Vec<_> = std::fs::read_dir(&dest).unwrap().collect();
        assert_eq!(names.len(), 4, "nothing half-made is left: {names:?}");
        place.untouched();
    }

    #[tokio::test]
    async fn a_link_to_dot_cannot_make_a_climb_look_inside() {
        let place = Place::new();
        let unpacked = place
            .copy(&[
                ("dir", dir(), b""),
                ("dir/a", link("."), b""),
                ("dir/out", link("a/a/.."), b""),
                ("dir/out2", link("a/a/../../sentinel"), b""),
            ])
            .await
            .unwrap();
        let dest = place.path().join("dest");
        assert!(std::fs::symlink_metadata(dest.join("out")).is_err());
        assert!(std::fs::symlink_metadata(dest.join("out2")).is_err());
        place.untouched();
        said(&unpacked, &["`out` links to `a/a/..`", "leads out"]);
        said(&unpacked, &["`out2`"]);
    }

    #[tokio::test]
    async fn a_link_then_a_directory_then_a_file_through_it_writes_nothing_outside() {
        let place = Place::new();
        let unpacked = place
            .copy(&[
                ("dir", dir(), b""),
                ("dir/l", link(".."), b""),
                ("dir/l", dir(), b""),
                ("dir/l/sentinel", file(), b"owned"),
            ])
            .await
            .unwrap();
        place.untouched();
        said(&unpacked, &["`l` links to `..`", "leads out"]);
    }

    #[tokio::test]
    async fn a_second_download_does_not_write_through_a_link_the_first_left() {
        let place = Place::new();
        // The first copy refuses the link out...
        let first = place
            .copy(&[
                ("dir", dir(), b""),
                ("dir/a", link("."), b""),
                ("dir/dir", link("a/a/.."), b""),
            ])
            .await
            .unwrap();
        // ...which an older `hangar`, or anyone, may have left there: the next copy into
        // `dest` (now a directory, so into `dest/dir`) and one written through a link inside
        // it do not follow it.
        let dest = place.path().join("dest");
        let _ = symlink("a/a/..", dest.join("dir"));
        let _ = symlink("../..", dest.join("a/inner"));
        let second = unpack(
            archive(&[("dir", dir(), b""), ("dir/sentinel", file(), b"owned")]),
            &dest,
            "dir",
            "dir",
        )
        .await;
        let through = place
            .copy(&[
                ("dir", dir(), b""),
                ("dir/inner/sentinel", file(), b"owned"),
                ("dir/inner/x/y", file(), b"owned"),
                ("dir/inner", dir(), b""),
            ])
            .await;
        place.untouched();
        said(&first, &["`dir` links to `a/a/..`"]);
        let refused = second.unwrap_err();
        assert!(refused.message.contains("is a link"), "{refused:?}");
        let through = through.unwrap();
        said(
            &through,
            &[
                "`inner` is a link already there",
                "nothing is written through",
            ],
        );
        assert_eq!(through.refused.len(), 3, "{:?}", through.refused);
    }

    #[tokio::test]
    async fn absolute_and_climbing_names_and_targets_are_refused() {
        let place = Place::new();
        let unpacked = place
            .copy(&[
                ("dir", dir(), b""),
                ("dir/abs", link("/etc/passwd"), b""),
                ("dir/up", link("../sentinel"), b""),
                ("dir/../sentinel", file(), b"owned"),
                ("/sentinel", file(), b"owned"),
                ("dir/hard", EntryKind::HardLink("/etc/passwd".into()), b""),
                ("dir/hard2", EntryKind::HardLink("sentinel".into()), b""),
                ("dir/ok", file(), b"ok"),
            ])
            .await;
        place.untouched();
        let unpacked = unpacked.unwrap();
        said(&unpacked, &["`abs` links to `/etc/passwd`", "absolute"]);
        said(&unpacked, &["`up` links to `../sentinel`", "leads out"]);
        said(&unpacked, &["`dir/../sentinel` climbs out"]);
        said(&unpacked, &["`/sentinel` is an absolute name"]);
        assert_eq!(unpacked.refused.len(), 6, "{:?}", unpacked.refused);
        assert_eq!(
            std::fs::read_to_string(place.path().join("dest/ok")).unwrap(),
            "ok"
        );
    }

    #[tokio::test]
    async fn names_that_differ_only_in_case_cannot_go_through_a_link() {
        // On a file system that ignores case, `a/x` is `A/x`: through the link.
        let place = Place::new();
        let unpacked = place
            .copy(&[
                ("dir", dir(), b""),
                ("dir/A", link("."), b""),
                ("dir/a/sentinel", file(), b"owned"),
            ])
            .await
            .unwrap();
        place.untouched();
        said(&unpacked, &["through `A`", "case"]);
        assert!(!place.path().join("dest/a").exists());
    }

    #[tokio::test]
    async fn a_file_already_there_is_replaced_whole_and_never_written_into() {
        let place = Place::new();
        let dest = place.path().join("dest");
        std::fs::create_dir(&dest).unwrap();
        // A hard link to the sentinel, as if someone made one: renamed over, not written into.
        std::fs::hard_link(place.path().join("sentinel"), dest.join("f")).unwrap();
        let unpacked = place
            .copy(&[("dir", dir(), b""), ("dir/f", file(), b"new")])
            .await
            .unwrap();
        assert!(unpacked.refused.is_empty(), "{:?}", unpacked.refused);
        assert_eq!(std::fs::read_to_string(dest.join("f")).unwrap(), "new");
        place.untouched();
    }
}
