//! The house's rules, checked on the source (ARCHITECTURE.md says why each holds): rooms import
//! only rooms at their own level or below, with no cycle; no room below the HTTP layer sees a
//! request; only the space driver moves containers for the lifecycle; one module style; every
//! module says what it is for.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The rooms of `server/src`, lowest first: a room may import its own level and below.
const LAYERS: &[&[&str]] = &[
    &[
        "error", "validate", "domain", "entities", "db", "config", "metrics", "tar",
    ],
    &["runtime"],
    &["live", "auth", "terminal"],
    &["services"],
    &["proxy", "ssh"],
    &["http", "bootstrap", "ops", "cli"],
    &["lib", "main"],
];

/// What only the doors (`http`, and the wiring above it) may name: requests and the
/// application's state.
const DOOR_ONLY: &[&str] = &[
    "axum::extract",
    "axum::routing",
    "axum::middleware",
    "AppState",
    "request::Parts",
    "FromRequestParts",
    "WebSocketUpgrade",
];

/// The runtime's lifecycle operations: only the driver calls them.
const LIFECYCLE_CALLS: &[&str] = &[
    "runtime.create_volumes(",
    "runtime.start(",
    "runtime.stop(",
    "runtime.remove(",
    "runtime.move_space(",
];

struct Module {
    /// Its path below `crate` (`["services", "spaces"]`); `[]` is the crate root.
    path: Vec<String>,
    file: PathBuf,
    /// The code before its tests, without comments.
    code: String,
    first_line: String,
}

fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

type Checked = Result<(), Box<dyn std::error::Error>>;

fn modules() -> std::io::Result<Vec<Module>> {
    let root = source_dir();
    let mut files = Vec::new();
    let mut folders = vec![root.clone()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder)? {
            let path = entry?.path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
        .into_iter()
        .map(|file| {
            let relative = file.strip_prefix(&root).unwrap_or(&file);
            let mut path: Vec<String> = relative
                .with_extension("")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if path.last().is_some_and(|last| last == "mod") {
                path.pop();
            }
            if path == ["lib"] {
                path.clear();
            }
            let text = std::fs::read_to_string(&file)?;
            let first_line = text.lines().next().unwrap_or_default().to_owned();
            let before_tests = text.split("#[cfg(test)]").next().unwrap_or_default();
            let code = before_tests
                .lines()
                .map(|line| match line.find("//") {
                    Some(at) => &line[..at],
                    None => line,
                })
                .collect::<Vec<_>>()
                .join("\n");
            Ok(Module {
                path,
                file,
                code,
                first_line,
            })
        })
        .collect()
}

fn room(path: &[String]) -> &str {
    path.first().map_or("lib", String::as_str)
}

fn layer(room: &str) -> usize {
    LAYERS
        .iter()
        .position(|rooms| rooms.contains(&room))
        .unwrap_or_else(|| {
            panic!("the room `{room}` has no layer: add it to LAYERS and ARCHITECTURE.md")
        })
}

/// The rooms a module's code names through `crate::` paths.
fn rooms_named(code: &str) -> BTreeSet<String> {
    let mut named = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let before = code[..at].chars().last();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &code[at + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            named.insert(name);
        }
    }
    named
}

#[test]
fn rooms_import_only_their_level_and_below_with_no_cycle() -> Checked {
    let modules = modules()?;
    let top_level: BTreeSet<String> = modules.iter().map(|m| room(&m.path).to_owned()).collect();
    let mut upward = Vec::new();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for module in &modules {
        let from = room(&module.path);
        for to in rooms_named(&module.code) {
            if to == from || !top_level.contains(&to) {
                continue;
            }
            graph.entry(from.to_owned()).or_default().insert(to.clone());
            if layer(&to) > layer(from) {
                upward.push(format!("{} -> {to}", module.file.display()));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports that point upward (see ARCHITECTURE.md):\n{}",
        upward.join("\n")
    );
    // Same-level rooms may name each other; together they must still form no cycle.
    for (from, tos) in &graph {
        for to in tos {
            let mut seen = BTreeSet::new();
            let mut stack = vec![to.clone()];
            while let Some(room) = stack.pop() {
                assert!(
                    room != *from,
                    "the rooms `{from}` and `{to}` import each other (through {:?})",
                    seen
                );
                if seen.insert(room.clone()) {
                    stack.extend(graph.get(&room).into_iter().flatten().cloned());
                }
            }
        }
    }
    Ok(())
}

#[test]
fn no_room_below_the_doors_sees_a_request() -> Checked {
    let door = layer("http");
    let mut seen = Vec::new();
    for module in modules()? {
        if layer(room(&module.path)) >= door {
            continue;
        }
        for word in DOOR_ONLY {
            if module.code.contains(word) {
                seen.push(format!("{} names `{word}`", module.file.display()));
            }
        }
    }
    assert!(
        seen.is_empty(),
        "below the doors (put the handler in http/):\n{}",
        seen.join("\n")
    );
    Ok(())
}

#[test]
fn only_the_driver_moves_containers() -> Checked {
    let mut seen = Vec::new();
    for module in modules()? {
        let driver = module.path.starts_with(&[
            "services".to_owned(),
            "spaces".to_owned(),
            "driver".to_owned(),
        ]);
        if driver || room(&module.path) == "runtime" {
            continue;
        }
        let code: String = module.code.split_whitespace().collect();
        for call in LIFECYCLE_CALLS {
            if code.contains(call) {
                seen.push(format!("{} calls `{call}`", module.file.display()));
            }
        }
    }
    assert!(
        seen.is_empty(),
        "lifecycle work outside services/spaces/driver:\n{}",
        seen.join("\n")
    );
    Ok(())
}

#[test]
fn one_module_style_and_every_module_says_what_it_is_for() -> Checked {
    let mut wrong = Vec::new();
    for module in modules()? {
        let file = &module.file;
        if file.file_name().is_some_and(|n| n != "mod.rs") && file.with_extension("").is_dir() {
            wrong.push(format!(
                "{} sits beside its folder: make it {}/mod.rs",
                file.display(),
                file.with_extension("").display()
            ));
        }
        if !module.first_line.starts_with("//!") {
            wrong.push(format!(
                "{} does not start with a `//!` line saying what it is for",
                file.display()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    Ok(())
}
