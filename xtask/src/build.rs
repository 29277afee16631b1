//! `cargo xtask build [--release]`: the site (wasm, JS, CSS, static files) and the server.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use wasm_bindgen_cli_support::Bindgen;

use crate::Paths;

/// Type-erased views (`--cfg erase_components`): every component returns `AnyView`. Far
/// less generic code to compile and ship. cargo-leptos sets it in debug builds only; Hangar
/// sets it in release too (a smaller wasm), and on both sides: the server renders the HTML
/// the wasm hydrates, so both must be built the same way.
const ERASE_COMPONENTS: &str = "--cfg erase_components";

/// Keeps the linker's relocations in the wasm: the split step needs them to move functions
/// and data into chunks.
const EMIT_RELOCS: &str = "-Clink-args=--emit-relocs";

/// The loader module the wasm imports its chunks from. leptos' `HydrationScripts` and its
/// preload links name it so when file hashing is off (Hangar serves unhashed files).
const SPLIT_LINK_NAME: &str = "./__wasm_split.______________________.js";

#[derive(Default)]
pub struct Options {
    pub release: bool,
    /// Build the server side as `cargo test -p app -p server -p migrations` does. The tests'
    /// dev-dependencies (reqwest above all) switch on more features of crates the server
    /// uses (tower, tower-http, hyper-util, idna, getrandom, ...), and a build with other
    /// features is another build: without this, the tests recompiled some 60 crates, from
    /// leptos to the server, after `cargo xtask build`.
    pub tests: bool,
    pub site_only: bool,
}

pub fn build(paths: &Paths, options: &Options) -> Result<()> {
    let start = Instant::now();
    check_bindgen_version(paths)?;
    // Off only to compare sizes and build times (`HANGAR_ERASE_COMPONENTS=0`).
    let erase = std::env::var("HANGAR_ERASE_COMPONENTS").map_or(true, |v| v != "0");
    let rustflags: Vec<&str> = if erase {
        ERASE_COMPONENTS.split(' ').collect()
    } else {
        Vec::new()
    };

    if options.site_only {
        build_site(paths, options, start, &rustflags)?;
        return finished(start, &site_summary(paths)?);
    }
    // Both at once, the site at the lowest priority: it takes only what the server build
    // leaves idle (a crate that compiles alone, the single-threaded front end of app and
    // server), and the server build runs as fast as it would alone. At equal priority the
    // two only slowed each other on two cores (a fresh `make run`: 17.8 min side by side,
    // 14.7 one after the other).
    step(
        start,
        &format!(
            "{} and, beside it at low priority, the site (log: {})",
            server_step(options),
            paths.site_log().display()
        ),
    );
    let mut server = server_command(paths, options, &rustflags)
        .spawn()
        .context("starting cargo for the server")?;
    let site = build_site_beside(paths, options);
    if site.is_err() {
        // Nothing to wait for: the build fails either way.
        let _ = server.kill();
    }
    let server_status = server.wait().context("waiting for cargo (server)")?;
    site?;
    if !server_status.success() {
        bail!("building the server failed ({server_status})");
    }
    let mut built = site_summary(paths)?;
    let dir = if options.release { "release" } else { "debug" };
    built.push(paths.target.join(dir).join("hangar").display().to_string());
    finished(start, &built)
}

/// What a site build left in `pkg/`, with sizes: the main wasm and its JS, then the parts.
fn site_summary(paths: &Paths) -> Result<Vec<String>> {
    let pkg = paths.pkg();
    let main = pkg.join(format!("{}.wasm", paths.output_name));
    let mut parts: Vec<PathBuf> = fs::read_dir(&pkg)
        .with_context(|| format!("listing {}", pkg.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "wasm") && *path != main)
        .collect();
    parts.sort();
    let js = pkg.join(format!("{}.js", paths.output_name));
    Ok([main, js]
        .iter()
        .chain(&parts)
        .map(|path| describe(path))
        .collect())
}

fn finished(start: Instant, built: &[String]) -> Result<()> {
    println!(
        "\nbuilt in {:.0} s:\n  {}",
        start.elapsed().as_secs_f64(),
        built.join("\n  ")
    );
    Ok(())
}

/// Builds the site with this task run again (`build --site-only`) at the lowest priority
/// (`nice -n 19`), its output into [`Paths::site_log`]; then prints its steps.
fn build_site_beside(paths: &Paths, options: &Options) -> Result<()> {
    let log_path = paths.site_log();
    fs::create_dir_all(&paths.target)
        .with_context(|| format!("creating {}", paths.target.display()))?;
    let log =
        fs::File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
    let this = std::env::current_exe().context("finding the build task's own program")?;
    let mut site = Command::new("nice");
    site.args(["-n", "19"])
        .arg(this)
        .args(["build", "--site-only"])
        .current_dir(&paths.root)
        .stdout(log.try_clone().context("opening the site's log")?)
        .stderr(log);
    if options.release {
        site.arg("--release");
    }
    let status = site.status().context("running the site's build (nice)")?;
    let output = fs::read_to_string(&log_path).unwrap_or_default();
    if !status.success() {
        let lines: Vec<&str> = output.lines().collect();
        let tail = lines[lines.len().saturating_sub(60)..].join("\n");
        bail!(
            "building the site failed ({status}); the end of {}:\n{tail}",
            log_path.display()
        );
    }
    // Its steps and timings; cargo's list of crates stays in the log.
    for line in output.lines() {
        if line.contains("==>") || line.starts_with("built in") {
            // Its list of files comes with the whole build's, below.
            println!("site {}", line.trim_end_matches(':'));
        }
    }
    Ok(())
}

fn server_step(options: &Options) -> &'static str {
    match (options.tests, options.release) {
        (true, _) => "server and its tests (debug, as `cargo test` builds them)",
        (false, true) => "server (release)",
        (false, false) => "server (debug)",
    }
}

fn server_command(paths: &Paths, options: &Options, rustflags: &[&str]) -> Command {
    let mut server = cargo(paths);
    if options.tests {
        // Builds the `hangar` binary too (the integration tests run it) into target/debug.
        server.args([
            "test",
            "--no-run",
            "-p",
            "app",
            "-p",
            "server",
            "-p",
            "migrations",
        ]);
    } else {
        server.args(["build", "--package", "server", "--bin", "hangar"]);
    }
    server
        // The same flags `cargo test` gets in scripts/test.sh, so that it reuses these artifacts.
        .env("RUSTFLAGS", rustflags.join(" "))
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    if options.release {
        server.arg("--release");
    }
    server
}

fn build_site(paths: &Paths, options: &Options, start: Instant, rustflags: &[&str]) -> Result<()> {
    let release = options.release;
    let profile = if release { "wasm-release" } else { "debug" };
    let mut wasm_rustflags = rustflags.to_vec();
    wasm_rustflags.push(EMIT_RELOCS);

    step(start, "wasm (frontend crate, wasm32-unknown-unknown)");
    let mut wasm = cargo(paths);
    wasm.args(["build", "--package", "frontend", "--lib"])
        .args(["--target", "wasm32-unknown-unknown"])
        .arg("--target-dir")
        .arg(&paths.front_target)
        // Appended to `target.wasm32-unknown-unknown.rustflags` of .cargo/config.toml (cargo
        // joins config arrays); RUSTFLAGS in the environment would replace that list instead.
        .arg("--config")
        .arg(format!(
            "target.wasm32-unknown-unknown.rustflags={wasm_rustflags:?}"
        ))
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    if release {
        wasm.args(["--profile", "wasm-release"]);
    }
    run(&mut wasm)?;

    step(start, "split the wasm at its lazy routes");
    // A fresh site each time, as cargo-leptos does: no file of an earlier build (a stale
    // `.gz` beside a newer file would be served in its place) survives.
    if paths.site.exists() {
        fs::remove_dir_all(&paths.site)
            .with_context(|| format!("emptying {}", paths.site.display()))?;
    }
    let pkg = paths.pkg();
    fs::create_dir_all(&pkg).with_context(|| format!("creating {}", pkg.display()))?;
    let split = split(paths, profile, &pkg)?;
    step(start, "wasm-bindgen");
    bindgen(&split.main, &pkg, &paths.output_name, true)?;
    let wasm_file = pkg.join(format!("{}.wasm", paths.output_name));
    if release {
        step(start, "wasm-opt -Oz");
        let files: Vec<&Path> = std::iter::once(&wasm_file)
            .chain(&split.chunks)
            .map(PathBuf::as_path)
            .collect();
        wasm_opt_all(paths, &files)?;
    }

    step(start, "style sheet and static files");
    let css_file = pkg.join(format!("{}.css", paths.output_name));
    copy_if_changed(&paths.root.join("style/main.css"), &css_file)?;
    let public = paths.root.join("public");
    if public.is_dir() {
        copy_dir(&public, &paths.site)?;
    }

    let js_file = pkg.join(format!("{}.js", paths.output_name));
    if release {
        // leptos_axum serves `<file>.br` or `<file>.gz` in place of `<file>` to browsers that
        // accept them (Chromium asks for brotli over HTTPS only).
        step(start, "precompress (gzip, brotli)");
        let link_file = pkg.join(SPLIT_LINK_NAME);
        let mut files = vec![wasm_file.as_path(), &js_file, &css_file, &link_file];
        files.extend(split.chunks.iter().map(PathBuf::as_path));
        precompress(paths, &files)?;
    }
    Ok(())
}

/// Prints a step's title with the time since the build started.
fn step(start: Instant, what: &str) {
    println!(
        "\x1b[1m==> {what}\x1b[0m  (at {:.1} s)",
        start.elapsed().as_secs_f64()
    );
}

/// The cargo that runs this task (cargo sets `CARGO` for `cargo run`).
fn cargo(paths: &Paths) -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(&paths.root);
    // `cargo xtask` is a `cargo run`, which hands this process the xtask package's variables
    // (CARGO_MANIFEST_DIR, CARGO_PKG_NAME, ...). Build scripts that watch them (ring's does)
    // would see them change between this build and a plain `cargo test` from the shell, and
    // that test run recompiled ring and all above it (43 s of every `make test`).
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(is_package_variable) {
            command.env_remove(name);
        }
    }
    command
}

/// The variables `cargo run` sets for the package it runs, as opposed to the user's settings
/// (CARGO_HOME, CARGO_TARGET_DIR, CARGO_TERM_*, ...), which the inner cargo must keep.
fn is_package_variable(name: &str) -> bool {
    name.starts_with("CARGO_PKG_")
        || matches!(
            name,
            "CARGO_MANIFEST_DIR"
                | "CARGO_MANIFEST_PATH"
                | "CARGO_MANIFEST_LINKS"
                | "CARGO_CRATE_NAME"
                | "CARGO_BIN_NAME"
                | "CARGO_PRIMARY_PACKAGE"
                | "CARGO_RUSTC_CURRENT_DIR"
        )
}

fn run(command: &mut Command) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("running {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed ({status})");
    }
    Ok(())
}

/// wasm-bindgen's library and the `wasm-bindgen` crate the wasm was built with must be the
/// very same version, or the wasm is refused ("different bindgen format"); both come from
/// Cargo.lock, so say which pin to move when they drift apart.
fn check_bindgen_version(paths: &Paths) -> Result<()> {
    let lock = fs::read_to_string(paths.root.join("Cargo.lock")).context("reading Cargo.lock")?;
    let version_of = |name: &str| -> Vec<String> {
        let header = format!("name = \"{name}\"\nversion = \"");
        lock.match_indices(&header)
            .filter_map(|(at, _)| {
                let rest = &lock[at + header.len()..];
                rest.split('"').next().map(str::to_owned)
            })
            .collect()
    };
    let crate_versions = version_of("wasm-bindgen");
    let library_versions = version_of("wasm-bindgen-cli-support");
    if crate_versions.len() != 1 || crate_versions != library_versions {
        bail!(
            "Cargo.lock has wasm-bindgen {crate_versions:?} but wasm-bindgen-cli-support \
             {library_versions:?}: pin `wasm-bindgen-cli-support = \"=X\"` in xtask/Cargo.toml \
             to the one wasm-bindgen version"
        );
    }
    Ok(())
}

/// The wasm after the split: its main module (still to go through wasm-bindgen) and the
/// chunks, already in the site.
pub struct Split {
    pub main: PathBuf,
    pub chunks: Vec<PathBuf>,
}

/// Cuts the wasm at its `#[lazy]` functions (each `LazyRoute`'s view) with the splitter
/// cargo-leptos runs for `--split`, used as a library: the main module, one wasm per lazy
/// route plus chunks of the code several of them share, the loader module the main module
/// imports them through, and `__wasm_split_manifest.json`, from which the server writes each
/// page's preload links.
pub fn split(paths: &Paths, profile: &str, pkg: &Path) -> Result<Split> {
    let input = paths.raw_wasm(profile);
    let name = &paths.output_name;
    let bytes = fs::read(&input).with_context(|| format!("reading {}", input.display()))?;
    let main = paths.split_main_wasm(profile);
    let main_module = format!("/pkg/{name}.js");
    let mut options = wasm_split_cli_support::Options::new(&bytes);
    options.output_dir = pkg;
    options.main_out_path = &main;
    options.main_module = &main_module;
    options.link_name = SPLIT_LINK_NAME;
    let output = wasm_split_cli_support::transform(options)
        .map_err(|error| anyhow::anyhow!("{error:?}"))
        .with_context(|| format!("splitting {}", input.display()))?;
    let manifest: String = {
        let mut entries: Vec<_> = output.prefetch_map.iter().collect();
        entries.sort();
        let entries: Vec<String> = entries
            .into_iter()
            .map(|(split, files)| {
                let files: Vec<String> = files.iter().map(|file| format!("{file:?}")).collect();
                format!("{split:?}: [{}]", files.join(", "))
            })
            .collect();
        format!("{{{}}}", entries.join(", "))
    };
    let manifest_file = pkg.join("__wasm_split_manifest.json");
    fs::write(&manifest_file, manifest)
        .with_context(|| format!("writing {}", manifest_file.display()))?;
    Ok(Split {
        main,
        chunks: output.split_modules,
    })
}

/// wasm-bindgen's pass, the way cargo-leptos runs it: `<name>.js` (ES module, `--target web`)
/// and `<name>.wasm` (not `<name>_bg.wasm`: leptos' `HydrationScripts` asks for that name
/// when `LEPTOS_OUTPUT_NAME` is set at compile time, as `.cargo/config.toml` does). A split
/// main module keeps the linker's exports, which its chunks import.
pub fn bindgen(input: &Path, out_dir: &Path, name: &str, split: bool) -> Result<()> {
    let mut output = Bindgen::new()
        .input_path(input)
        .out_name(name)
        .web(true)?
        .debug(false)
        .keep_debug(false)
        .keep_lld_exports(split)
        .demangle(!split)
        .generate_output()
        .with_context(|| format!("wasm-bindgen on {}", input.display()))?;
    output
        .emit(out_dir)
        .with_context(|| format!("writing wasm-bindgen's output into {}", out_dir.display()))?;
    let emitted = out_dir.join(format!("{name}_bg.wasm"));
    let wasm = out_dir.join(format!("{name}.wasm"));
    fs::rename(&emitted, &wasm)
        .with_context(|| format!("renaming {} to {}", emitted.display(), wasm.display()))?;
    Ok(())
}

/// cargo-leptos's arguments (`-Oz --enable-bulk-memory`); `keep_names` keeps the name
/// section, for `cargo xtask sizes`.
pub fn wasm_opt(paths: &Paths, input: &Path, output: &Path, keep_names: bool) -> Result<()> {
    let mut command = Command::new(paths.wasm_opt()?);
    command.args(["-Oz", "--enable-bulk-memory"]);
    if keep_names {
        command.arg("--debuginfo");
    }
    command
        .arg(input)
        .arg("-o")
        .arg(output)
        .current_dir(&paths.root);
    // Its output is kept for a failure: on success it is only warnings that binaryen does not
    // know the split modules' extended name subsections, one per file.
    let output = command
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// `wasm_opt` over many files, on every core: each run is a Node process that takes about a
/// second to start, and most chunks are small.
fn wasm_opt_all(paths: &Paths, files: &[&Path]) -> Result<()> {
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism().map_or(2, usize::from);
    std::thread::scope(|scope| {
        let runs: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| -> Result<()> {
                    while let Some(file) = files.get(next.fetch_add(1, Ordering::Relaxed)) {
                        wasm_opt(paths, file, file, false)?;
                    }
                    Ok(())
                })
            })
            .collect();
        runs.into_iter().try_for_each(|run| {
            run.join()
                .map_err(|_| anyhow::anyhow!("a wasm-opt worker panicked"))?
        })
    })
}

fn copy_if_changed(from: &Path, to: &Path) -> Result<()> {
    let bytes = fs::read(from).with_context(|| format!("reading {}", from.display()))?;
    if fs::read(to).ok().as_deref() == Some(bytes.as_slice()) {
        return Ok(());
    }
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    fs::write(to, bytes).with_context(|| format!("writing {}", to.display()))
}

/// Copies a folder's files into another (as cargo-leptos copies `assets-dir` into the site).
fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    for entry in fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            copy_if_changed(&entry.path(), &target)?;
        }
    }
    Ok(())
}

/// `path  1234 KB, 456 KB gzip, 345 KB brotli` (the compressed sizes when they were written).
pub fn describe(path: &Path) -> String {
    let size = |path: &Path| fs::metadata(path).map(|m| m.len() / 1000).ok();
    let mut text = format!("{}  {} KB", path.display(), size(path).unwrap_or(0));
    for (extension, name) in [("gz", "gzip"), ("br", "brotli")] {
        let mut compressed = path.as_os_str().to_owned();
        compressed.push(".");
        compressed.push(extension);
        if let Some(kb) = size(Path::new(&compressed)) {
            text.push_str(&format!(", {kb} KB {name}"));
        }
    }
    text
}

/// Writes `<file>.gz` (level 9) and `<file>.br` (quality 11) beside each file, with Node's
/// zlib: Node is there anyway (npm), and no compressor has to be compiled or installed.
fn precompress(paths: &Paths, files: &[&Path]) -> Result<()> {
    const SCRIPT: &str = "const z = require('zlib'), fs = require('fs');
for (const f of process.argv.slice(1)) {
  const b = fs.readFileSync(f);
  fs.writeFileSync(f + '.gz', z.gzipSync(b, { level: 9 }));
  fs.writeFileSync(f + '.br', z.brotliCompressSync(b, { params: {
    [z.constants.BROTLI_PARAM_QUALITY]: 11, [z.constants.BROTLI_PARAM_SIZE_HINT]: b.length } }));
}";
    let mut node = Command::new("node");
    node.arg("-e")
        .arg(SCRIPT)
        .args(files)
        .current_dir(&paths.root);
    run(&mut node).context("precompressing with node (Debian: apt-get install nodejs)")
}
