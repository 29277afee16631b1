//! Checking the entries of an archive from elsewhere before anything is made of them: names
//! kept inside the place it unpacks to, nothing written through a link (not even one spelled
//! in another case), links that lead inside once every link on their way is followed, no path
//! made twice as different things, a bounded count.
//!
//! Links are resolved the way the kernel will, not read as text: `a -> .` makes `a/a/../..`
//! climb two levels above `a`, though it reads as staying inside. [`resolve_inside`] follows
//! them through a [`Tree`]: what the archive made so far ([`Checker`], enough for an upload,
//! which lands in a directory of its own) or a directory on disk (the command line's
//! download, where earlier copies left things). After a name that is not (yet) a directory a
//! target may only go down: what is made there later cannot turn it into a way out.

use std::collections::{HashMap, VecDeque};
use std::fmt;

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

/// Links followed while resolving one, at most (the kernel's own limit).
pub const MAX_LINK_HOPS: usize = 40;

/// What is at a path, as far as resolving a link goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Missing,
    Dir,
    /// Anything that is neither a directory nor a link.
    File,
    Link(String),
}

/// Where links are resolved: names below a root, and what is at each.
pub trait Tree {
    /// What is at `path` (its names below the root); every name but the last is a directory
    /// of the tree, never a link.
    fn node(&self, path: &[String]) -> Node;
}

/// The names of a link target, `.` and empty ones left out.
fn names_of(target: &str) -> impl DoubleEndedIterator<Item = String> + '_ {
    target
        .split('/')
        .filter(|n| !n.is_empty() && *n != ".")
        .map(str::to_owned)
}

/// Whether a link at `at` (its names below the root) to `target` leads inside the root once
/// every link on its way is followed in `tree`, as the kernel follows them; if not, why, in
/// words that follow "which".
pub fn resolve_inside(tree: &impl Tree, at: &[String], target: &str) -> Result<(), String> {
    if target.starts_with('/') {
        return Err("is an absolute path".into());
    }
    // The link's own directory: a directory of the tree, by the contract of `Tree`.
    let mut here: Vec<String> = at
        .split_last()
        .map(|(_, dir)| dir.to_vec())
        .unwrap_or_default();
    let mut rest: VecDeque<String> = names_of(target).collect();
    let mut hops = 0;
    // The first name on the way that is not a directory (yet): from there, only down.
    let mut unknown: Option<String> = None;
    while let Some(name) = rest.pop_front() {
        if name == ".." {
            if let Some(unknown) = &unknown {
                return Err(format!(
                    "climbs back with `..` from `{unknown}`, which is not a directory (yet)"
                ));
            }
            if here.pop().is_none() {
                return Err("leads out of it".into());
            }
            continue;
        }
        here.push(name);
        if unknown.is_some() {
            continue;
        }
        match tree.node(&here) {
            Node::Dir => {}
            Node::Missing | Node::File => unknown = Some(here.join("/")),
            Node::Link(next) if next.is_empty() => unknown = Some(here.join("/")),
            Node::Link(next) => {
                hops += 1;
                if hops > MAX_LINK_HOPS {
                    return Err(format!("follows more than {MAX_LINK_HOPS} links"));
                }
                if next.starts_with('/') {
                    return Err(format!(
                        "passes through `{}`, a link to the absolute path `{next}`",
                        here.join("/")
                    ));
                }
                // The kernel goes on from the link's directory, along its target, then on.
                here.pop();
                for name in names_of(&next).rev() {
                    rest.push_front(name);
                }
            }
        }
    }
    Ok(())
}

/// Why an entry is refused: this entry alone (what else the archive holds may still be
/// made), or the whole archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Entry(String),
    Archive(String),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Entry(why) | Refusal::Archive(why) => f.write_str(why),
        }
    }
}

/// What an archive made at a path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Made {
    Dir,
    /// A file, or a hard link to one.
    File,
    Link(String),
}

impl Made {
    fn what(&self) -> &'static str {
        match self {
            Made::Dir => "a directory",
            Made::File => "a file",
            Made::Link(_) => "a link",
        }
    }
}

/// A path as a file system that ignores case sees it.
fn folded(path: &str) -> String {
    path.to_lowercase()
}

/// Checks entries of one archive as they come, against what the entries before them made:
/// names inside the place it unpacks to; nothing written through a link, or inside a file;
/// links that lead inside it; hard links to files it holds; no path made twice as different
/// things (a directory over a link would let what follows go through the link's old place);
/// no link whose name differs only in case from another entry's; a bounded count.
pub struct Checker {
    made: HashMap<String, Made>,
    /// Every path made, folded, to its first spelling.
    spellings: HashMap<String, String>,
    count: usize,
    max_entries: usize,
}

impl Tree for Checker {
    fn node(&self, path: &[String]) -> Node {
        match self.made.get(&path.join("/")) {
            None => Node::Missing,
            Some(Made::Dir) => Node::Dir,
            Some(Made::File) => Node::File,
            Some(Made::Link(target)) => Node::Link(target.clone()),
        }
    }
}

impl Checker {
    pub fn new(max_entries: usize) -> Self {
        Self {
            made: HashMap::new(),
            spellings: HashMap::new(),
            count: 0,
            max_entries,
        }
    }

    /// The link made at `path`, or at a path that differs from it only in case: its spelling.
    fn link_at(&self, path: &str) -> Option<String> {
        if let Some(made) = self.made.get(path) {
            return matches!(made, Made::Link(_)).then(|| path.to_owned());
        }
        let spelled = self.spellings.get(&folded(path))?;
        matches!(self.made.get(spelled), Some(Made::Link(_))).then(|| spelled.clone())
    }

    fn record(&mut self, path: String, made: Made) {
        self.spellings
            .entry(folded(&path))
            .or_insert_with(|| path.clone());
        self.made.insert(path, made);
    }

    /// The entry with clean names (`None`: the archive's root, which makes nothing), or why
    /// it is refused.
    pub fn check(&mut self, entry: Entry) -> Result<Option<Entry>, Refusal> {
        let Some(path) = member_path(&entry.path).map_err(Refusal::Entry)? else {
            return Ok(None);
        };
        self.count += 1;
        if self.count > self.max_entries {
            return Err(Refusal::Archive(format!(
                "the archive holds more than {} entries: split it",
                self.max_entries
            )));
        }
        let refuse = |why: String| Err(Refusal::Entry(why));
        let names: Vec<String> = path.split('/').map(str::to_owned).collect();
        // Every directory on the way is one: never a link or a file the archive made.
        let mut parents = Vec::new();
        for end in 1..names.len() {
            let parent = names[..end].join("/");
            if let Some(link) = self.link_at(&parent) {
                let case = if link == parent {
                    String::new()
                } else {
                    " (the names differ only in case, which some file systems ignore)".into()
                };
                return refuse(format!(
                    "`{path}` would be written through `{link}`, a link the archive made{case}"
                ));
            }
            match self.made.get(&parent) {
                Some(Made::File) => {
                    return refuse(format!("`{path}` would go inside `{parent}`, a file"))
                }
                Some(_) => {}
                None => parents.push(parent),
            }
        }
        // A link and another entry one name on a file system that ignores case.
        if let Some(other) = self.spellings.get(&folded(&path)).filter(|s| **s != path) {
            let other_is_link = matches!(self.made.get(other), Some(Made::Link(_)));
            if other_is_link || matches!(entry.kind, EntryKind::Symlink(_)) {
                return refuse(format!(
                    "`{path}` and `{other}` differ only in case and one is a link: a file system \
                     that ignores case would make them one"
                ));
            }
        }
        let made = match &entry.kind {
            EntryKind::Dir => Made::Dir,
            EntryKind::File | EntryKind::HardLink(_) => Made::File,
            EntryKind::Symlink(target) => Made::Link(target.clone()),
        };
        match self.made.get(&path) {
            None => {}
            Some(Made::Dir) if made == Made::Dir => {}
            Some(Made::File) if made == Made::File => {}
            Some(before) => {
                return refuse(format!(
                    "`{path}` comes twice in the archive, as {} and as {}",
                    before.what(),
                    made.what()
                ))
            }
        }
        for parent in parents {
            self.record(parent, Made::Dir);
        }
        let kind = match entry.kind {
            EntryKind::Symlink(target) => {
                if let Err(why) = resolve_inside(self, &names, &target) {
                    return refuse(format!(
                        "`{path}` links to `{target}`, which {why}: a link must lead inside \
                         the directory it is unpacked into"
                    ));
                }
                EntryKind::Symlink(target)
            }
            EntryKind::HardLink(target) => {
                let target = member_path(&target)
                    .map_err(Refusal::Entry)?
                    .unwrap_or_default();
                if self.made.get(&target) != Some(&Made::File) {
                    return refuse(format!(
                        "`{path}` is a hard link to `{target}`, which is not a file earlier in the archive"
                    ));
                }
                EntryKind::HardLink(target)
            }
            other => other,
        };
        self.record(path.clone(), made);
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

    /// Checks `entries` in order; what each came to (`Ok` or the refusal's words).
    fn run(entries: &[(&str, EntryKind)]) -> Vec<Result<(), String>> {
        let mut checker = Checker::new(100);
        entries
            .iter()
            .map(|(path, kind)| {
                checker
                    .check(entry(path, kind.clone()))
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
            .collect()
    }

    fn link(target: &str) -> EntryKind {
        EntryKind::Symlink(target.into())
    }

    #[test]
    fn links_must_lead_inside_and_nothing_is_written_through_them() {
        let outcome = run(&[
            ("a/up", link("../b")),
            ("a/out", link("../../b")),
            ("abs", link("/etc")),
            ("root", link(".")),
            ("root/x", EntryKind::File),
            ("h", EntryKind::HardLink("a/up".into())),
            ("f", EntryKind::File),
            ("h1", EntryKind::HardLink("f".into())),
            ("h2", EntryKind::HardLink("/etc/shadow".into())),
            ("h3", EntryKind::HardLink("nothing".into())),
        ]);
        assert!(outcome[0].is_ok());
        assert!(outcome[1].as_ref().unwrap_err().contains("leads out"));
        assert!(outcome[2].as_ref().unwrap_err().contains("absolute"));
        assert!(outcome[3].is_ok());
        assert!(outcome[4].as_ref().unwrap_err().contains("through `root`"));
        // A hard link only to a file the archive made (not to a link, nor out of it).
        assert!(outcome[5].is_err());
        assert!(outcome[6].is_ok() && outcome[7].is_ok());
        assert!(outcome[8].is_err() && outcome[9].is_err());
    }

    #[test]
    fn a_link_to_dot_does_not_make_a_climb_look_inside() {
        // `a -> .`: `a/a/..` is the root's parent, though as text it is `a`.
        let outcome = run(&[
            ("d/a", link(".")),
            ("d/out", link("a/a/../..")),
            ("d/deep", link("a/a/a/a/../../..")),
            ("d/fine", link("a/a/..")),
        ]);
        assert!(outcome[0].is_ok());
        let out = outcome[1].as_ref().unwrap_err();
        assert!(
            out.contains("`d/out` links to `a/a/../..`") && out.contains("leads out"),
            "{out}"
        );
        assert!(outcome[2].is_err());
        // `d/a/a/..` is the root: inside.
        assert!(outcome[3].is_ok(), "{outcome:?}");
    }

    #[test]
    fn a_link_then_a_directory_then_a_file_through_it_is_refused() {
        let outcome = run(&[
            ("d/up", link("..")),
            ("d/up", EntryKind::Dir),
            ("d/up/x", EntryKind::File),
        ]);
        assert!(outcome[0].is_ok());
        let twice = outcome[1].as_ref().unwrap_err();
        assert!(twice.contains("comes twice"), "{twice}");
        let through = outcome[2].as_ref().unwrap_err();
        assert!(through.contains("through `d/up`"), "{through}");
    }

    #[test]
    fn a_directory_that_becomes_a_link_cannot_carry_a_hard_link_out() {
        // Docker's archive API replaces `a` by the link, then links `h` to what `a/etc/passwd`
        // leads to: the space's own /etc/passwd, chowned to the space's user.
        let outcome = run(&[
            ("b", link(".")),
            ("a", EntryKind::Dir),
            ("a/etc/passwd", EntryKind::File),
            ("a", link("b/b/b/b/../../../..")),
            ("h", EntryKind::HardLink("a/etc/passwd".into())),
        ]);
        assert!(outcome[..3].iter().all(Result::is_ok));
        let replaced = outcome[3].as_ref().unwrap_err();
        assert!(replaced.contains("comes twice"), "{replaced}");
        // Even as the archive's first word about `a`, that link leads out.
        let first = run(&[("b", link(".")), ("a", link("b/b/b/b/../../../.."))]);
        assert!(first[1].as_ref().unwrap_err().contains("leads out"));
    }

    #[test]
    fn a_climb_after_a_name_not_yet_made_is_refused() {
        // `d/c` does not exist yet: a later `d/c -> .` would make `c/../..` the root's parent.
        let outcome = run(&[
            ("d/b", link("c/../..")),
            ("d/c", link(".")),
            ("d/e", link("c/x/y")),
        ]);
        let refused = outcome[0].as_ref().unwrap_err();
        assert!(refused.contains("not a directory (yet)"), "{refused}");
        assert!(outcome[1].is_ok() && outcome[2].is_ok());
    }

    #[test]
    fn names_that_differ_only_in_case_cannot_go_through_a_link() {
        let outcome = run(&[
            ("A", link(".")),
            ("a/x", EntryKind::File),
            ("a", EntryKind::Dir),
            ("Dir", EntryKind::Dir),
            ("dir", link("Dir")),
            ("Dir/ok", EntryKind::File),
            ("DIR/ok", EntryKind::File),
        ]);
        assert!(outcome[0].is_ok());
        let through = outcome[1].as_ref().unwrap_err();
        assert!(
            through.contains("through `A`") && through.contains("case"),
            "{through}"
        );
        assert!(outcome[2]
            .as_ref()
            .unwrap_err()
            .contains("differ only in case"));
        assert!(outcome[3].is_ok());
        assert!(outcome[4]
            .as_ref()
            .unwrap_err()
            .contains("differ only in case"));
        // Names in another case that are no link: each is what it is.
        assert!(outcome[5].is_ok() && outcome[6].is_ok(), "{outcome:?}");
    }

    #[test]
    fn trees_as_tools_make_them_pass() {
        let outcome = run(&[
            ("app", EntryKind::Dir),
            ("app/LINK", link("README")),
            ("app/README", EntryKind::File),
            ("app/node_modules/pkg/bin/cli.js", EntryKind::File),
            ("app/node_modules/.bin/cli", link("../pkg/bin/cli.js")),
            ("app/current", link("node_modules/pkg")),
            ("app/tool", link("current/bin/./cli.js")),
            ("app/loop", link("loop")),
            ("app/sub/up", link("../..")),
            ("app/README", EntryKind::File),
            ("app", EntryKind::Dir),
        ]);
        assert!(outcome.iter().all(Result::is_ok), "{outcome:?}");
    }

    #[test]
    fn a_chain_of_links_is_followed_to_its_end() {
        let outcome = run(&[
            ("a/b/c", EntryKind::Dir),
            ("a/one", link("b/c")),
            ("a/two", link("one/../..")),
            ("a/three", link("one/../../../..")),
        ]);
        // `a/one/../..` is `a/b/c/../..`: `a`.
        assert!(outcome[1].is_ok() && outcome[2].is_ok(), "{outcome:?}");
        assert!(outcome[3].as_ref().unwrap_err().contains("leads out"));
    }

    /// A tree given whole, as a disk with links already on it is.
    struct Given(HashMap<String, Node>);

    impl Tree for Given {
        fn node(&self, path: &[String]) -> Node {
            self.0
                .get(&path.join("/"))
                .cloned()
                .unwrap_or(Node::Missing)
        }
    }

    fn at(path: &str) -> Vec<String> {
        path.split('/').map(str::to_owned).collect()
    }

    #[test]
    fn links_already_there_are_followed_too() {
        let tree = Given(HashMap::from([
            ("abs".to_owned(), Node::Link("/home/me".into())),
            ("dot".to_owned(), Node::Link(".".into())),
            ("d".to_owned(), Node::Dir),
            ("d/ring".to_owned(), Node::Link("ring2".into())),
            ("d/ring2".to_owned(), Node::Link("ring".into())),
            ("f".to_owned(), Node::File),
        ]));
        let via = resolve_inside(&tree, &at("x"), "abs/.ssh").unwrap_err();
        assert!(via.contains("through `abs`"), "{via}");
        assert!(resolve_inside(&tree, &at("d/x"), "../dot/dot/..").is_err());
        assert!(resolve_inside(&tree, &at("d/x"), "../dot/dot/d").is_ok());
        let ring = resolve_inside(&tree, &at("d/x"), "ring/a").unwrap_err();
        assert!(ring.contains("more than 40 links"), "{ring}");
        assert!(resolve_inside(&tree, &at("x"), "f/..").is_err());
        assert!(resolve_inside(&tree, &at("x"), "f").is_ok());
    }

    #[test]
    fn the_entry_count_is_bounded() {
        let mut checker = Checker::new(2);
        checker.check(entry("a", EntryKind::File)).unwrap();
        checker.check(entry("b", EntryKind::File)).unwrap();
        assert!(matches!(
            checker.check(entry("c", EntryKind::File)),
            Err(Refusal::Archive(_))
        ));
    }
}
