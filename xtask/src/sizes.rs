//! `cargo xtask sizes`: what takes room in the release wasm, by crate and by function.
//!
//! Runs wasm-bindgen and `wasm-opt -Oz` on the release build of `frontend` as
//! `cargo xtask build --release` does, but keeps the name section, then adds up the code size
//! of every function by the crate its (demangled) name starts with. A measuring aid in the
//! spirit of `twiggy top`, without installing anything. `--main` looks at the split's main
//! module only (the first download) instead of the whole program.

use std::collections::HashMap;
use std::fs;

use anyhow::{bail, Context, Result};
use wasmparser::{KnownCustom, Name, Parser, Payload, TypeRef};

use crate::build::{bindgen, describe, wasm_opt};
use crate::Paths;

pub fn report(paths: &Paths, top: usize, main_only: bool) -> Result<()> {
    let raw = if main_only {
        paths.split_main_wasm("wasm-release")
    } else {
        paths.raw_wasm("wasm-release")
    };
    if !raw.exists() {
        bail!(
            "{} is missing: run `cargo xtask build --release` first",
            raw.display()
        );
    }
    let work = paths.target.join("xtask-sizes");
    fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    bindgen(&raw, &work, "sizes", main_only)?;
    let named = work.join("sizes.wasm");
    wasm_opt(paths, &named, &named, true)?;
    let bytes = fs::read(&named).with_context(|| format!("reading {}", named.display()))?;
    let module = Module::parse(&bytes)?;

    let shipped = paths.pkg().join(format!("{}.wasm", paths.output_name));
    if shipped.exists() {
        println!("shipped: {}", describe(&shipped));
    }
    println!(
        "analysed: {} ({} KB with names): code {} KB in {} functions, data {} KB\n",
        named.display(),
        bytes.len() / 1000,
        module.code_bytes() / 1000,
        module.functions.len(),
        module.data_bytes / 1000
    );

    let code = module.code_bytes().max(1);
    let mut by_crate: HashMap<&str, (usize, usize)> = HashMap::new();
    for function in &module.functions {
        let entry = by_crate.entry(crate_of(&function.name)).or_default();
        entry.0 += function.size;
        entry.1 += 1;
    }
    let mut by_crate: Vec<_> = by_crate.into_iter().collect();
    by_crate.sort_by_key(|(_, (size, _))| std::cmp::Reverse(*size));
    println!(
        "{:>9} {:>6} {:>6}  crate (first path segment of the function's name)",
        "bytes", "%", "fns"
    );
    for (name, (size, count)) in by_crate.iter().take(top) {
        println!(
            "{size:>9} {:>5.1}% {count:>6}  {name}",
            *size as f64 * 100.0 / code as f64
        );
    }

    let mut functions: Vec<_> = module.functions.iter().collect();
    functions.sort_by_key(|f| std::cmp::Reverse(f.size));
    println!("\n{:>9} {:>6}  function", "bytes", "%");
    for function in functions.iter().take(top) {
        let mut name = function.name.clone();
        if name.len() > 150 {
            name.truncate(name.floor_char_boundary(150));
            name.push('…');
        }
        println!(
            "{:>9} {:>5.1}%  {name}",
            function.size,
            function.size as f64 * 100.0 / code as f64
        );
    }
    Ok(())
}

struct Function {
    name: String,
    size: usize,
}

struct Module {
    functions: Vec<Function>,
    data_bytes: usize,
}

impl Module {
    fn parse(bytes: &[u8]) -> Result<Self> {
        let mut imported = 0u32;
        let mut sizes = Vec::new();
        let mut names: HashMap<u32, String> = HashMap::new();
        let mut data_bytes = 0;
        for payload in Parser::new(0).parse_all(bytes) {
            match payload? {
                Payload::ImportSection(imports) => {
                    for import in imports {
                        if matches!(import?.ty, TypeRef::Func(_)) {
                            imported += 1;
                        }
                    }
                }
                Payload::CodeSectionEntry(body) => sizes.push(body.range().len()),
                Payload::DataSection(data) => data_bytes = data.range().len(),
                Payload::CustomSection(custom) => {
                    if let KnownCustom::Name(reader) = custom.as_known() {
                        for subsection in reader {
                            if let Name::Function(map) = subsection? {
                                for naming in map {
                                    let naming = naming?;
                                    names.insert(naming.index, demangle(naming.name));
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        let functions = sizes
            .into_iter()
            .enumerate()
            .map(|(i, size)| {
                let index = imported + i as u32;
                let name = names
                    .remove(&index)
                    .unwrap_or_else(|| format!("(function {index})"));
                Function { name, size }
            })
            .collect();
        Ok(Self {
            functions,
            data_bytes,
        })
    }

    fn code_bytes(&self) -> usize {
        self.functions.iter().map(|f| f.size).sum()
    }
}

/// Readable names: mangled ones demangled, and without the `::h0123456789abcdef` hash that
/// wasm-bindgen's own demangling leaves.
fn demangle(name: &str) -> String {
    let name = match rustc_demangle::try_demangle(name) {
        Ok(demangled) => format!("{demangled:#}"),
        Err(_) => name.to_owned(),
    };
    match name.rsplit_once("::h") {
        Some((head, hash)) if hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()) => {
            head.to_owned()
        }
        _ => name,
    }
}

/// `leptos::mount::hydrate_body` → `leptos`; `<tachys::x::Y as tachys::Z>::f` → `tachys`;
/// `<F as tachys::R>::invoke` (a closure or a type parameter) → `tachys`, the trait's crate;
/// `core::ptr::drop_in_place<app::T>` counts as `core` (as in twiggy).
fn crate_of(name: &str) -> &str {
    const NONE: &str = "(no crate: runtime, imports, shims)";
    let trimmed = name.trim_start_matches(['<', '&', '*', '(']);
    let trimmed = trimmed.strip_prefix("mut ").unwrap_or(trimmed);
    let trimmed = trimmed.strip_prefix("dyn ").unwrap_or(trimmed);
    let end = trimmed
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(trimmed.len());
    let rest = &trimmed[end..];
    // `core[c5930c85a12de822]::fmt`: a crate name with its disambiguator.
    let rest = match rest.strip_prefix('[') {
        Some(after) => after.split_once(']').map_or(rest, |(_, tail)| tail),
        None => rest,
    };
    if end > 0 && rest.starts_with("::") {
        return &trimmed[..end];
    }
    match name.find(" as ") {
        Some(at) => crate_of(&name[at + 4..]),
        None => NONE,
    }
}

#[cfg(test)]
mod tests {
    use super::crate_of;

    #[test]
    fn crates_from_names() {
        assert_eq!(crate_of("leptos::mount::hydrate_body"), "leptos");
        assert_eq!(crate_of("<tachys::view::X as tachys::Y>::build"), "tachys");
        assert_eq!(crate_of("<&mut serde_json::de::Deserializer<R> as serde::de::Deserializer>::deserialize_any"), "serde_json");
        assert_eq!(
            crate_of("__wbindgen_malloc"),
            "(no crate: runtime, imports, shims)"
        );
    }
}
