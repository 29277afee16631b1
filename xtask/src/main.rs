//! Hangar's build task, run as `cargo xtask <command>` (an alias in `.cargo/config.toml`).
//!
//! `cargo xtask build [--release]` does what `cargo leptos build` did, without a build tool
//! compiled from source first: the `frontend` crate for `wasm32-unknown-unknown`, the
//! wasm-bindgen pass (its CLI's engine, linked in as a library), `wasm-opt` from npm's binaryen
//! (release only), the style sheet and `public/` into `target/site`, then the `hangar` server.
//! `cargo xtask sizes` lists what takes room in the release wasm, by crate and by function.

mod build;
mod sizes;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  build [--release] [--tests] [--site-only]
                      build the site (target/site) and the server (target/{debug,release}/hangar)
                      --tests: build the server the way `cargo test -p app -p server -p migrations`
                        does (its test binaries too), so that those tests then compile nothing
                      --site-only: the site alone, not the server
  sizes [--top N] [--main]
                      what takes room in the release wasm (the whole program, before it is
                      split into parts; --main: the main part, the first download), by crate
                      and by function
                      (run `cargo xtask build --release` first)";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Vec<String>) -> Result<()> {
    let mut args = args.into_iter();
    let command = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    let paths = Paths::discover()?;
    match command.as_str() {
        "build" => {
            let mut options = build::Options::default();
            for arg in &rest {
                match arg.as_str() {
                    "--release" | "-r" => options.release = true,
                    "--tests" => options.tests = true,
                    "--site-only" => options.site_only = true,
                    _ => bail!("unknown argument `{arg}`\n\n{USAGE}"),
                }
            }
            if options.release && options.tests {
                bail!("--tests goes with debug builds (the tests run on the debug server)");
            }
            build::build(&paths, &options)
        }
        "sizes" => {
            let mut top = 25;
            let mut main_only = false;
            let mut rest = rest.iter();
            while let Some(arg) = rest.next() {
                match arg.as_str() {
                    "--main" => main_only = true,
                    "--top" => {
                        top = rest
                            .next()
                            .context("--top needs a number")?
                            .parse()
                            .context("--top needs a number")?
                    }
                    _ => bail!("unknown argument `{arg}`\n\n{USAGE}"),
                }
            }
            sizes::report(&paths, top, main_only)
        }
        "" | "help" | "-h" | "--help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command `{other}`\n\n{USAGE}"),
    }
}

/// Where things are: the workspace, cargo's target directory, the site.
pub struct Paths {
    pub root: PathBuf,
    pub target: PathBuf,
    /// The wasm build's own target directory, `target/front`, the one cargo-leptos uses: so
    /// `cargo leptos watch` and this task reuse each other's wasm artifacts.
    pub front_target: PathBuf,
    pub site: PathBuf,
    /// Leptos' output name: the file names the server's hydration script asks for.
    pub output_name: String,
}

impl Paths {
    fn discover() -> Result<Self> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .context("xtask lives inside the workspace")?
            .to_path_buf();
        let target = match std::env::var_os("CARGO_TARGET_DIR") {
            Some(dir) => root.join(dir),
            None => root.join("target"),
        };
        // The server serves `LEPTOS_SITE_ROOT`, by default `target/site` under its working dir.
        let site = match std::env::var_os("LEPTOS_SITE_ROOT") {
            Some(dir) => root.join(dir),
            None => root.join("target").join("site"),
        };
        // `.cargo/config.toml` sets it for every cargo command; the same value names the files.
        let output_name = std::env::var("LEPTOS_OUTPUT_NAME").unwrap_or_else(|_| "hangar".into());
        Ok(Self {
            front_target: target.join("front"),
            root,
            target,
            site,
            output_name,
        })
    }

    /// What the site's build printed when it ran beside the server's (outside the site, which
    /// each build empties).
    pub fn site_log(&self) -> PathBuf {
        self.target.join("site-build.log")
    }

    /// The folder of the wasm, JS and CSS inside the site (leptos' `site-pkg-dir`).
    pub fn pkg(&self) -> PathBuf {
        self.site.join("pkg")
    }

    /// The wasm as rustc leaves it, before wasm-bindgen.
    pub fn raw_wasm(&self, profile: &str) -> PathBuf {
        self.front_target
            .join("wasm32-unknown-unknown")
            .join(profile)
            .join("frontend.wasm")
    }

    /// The main module the split leaves of `raw_wasm(profile)`: the first download, before
    /// wasm-bindgen.
    pub fn split_main_wasm(&self, profile: &str) -> PathBuf {
        self.raw_wasm(profile)
            .with_file_name(format!("{}_split.wasm", self.output_name))
    }

    /// `wasm-opt` from npm's binaryen: Debian's binaryen is too old for this wasm.
    pub fn wasm_opt(&self) -> Result<PathBuf> {
        let path = self.root.join("node_modules/.bin/wasm-opt");
        if !path.exists() {
            bail!(
                "{} is missing: run `npm ci` (scripts/setup.sh does) to get binaryen",
                path.display()
            );
        }
        Ok(path)
    }
}
