//! Where the command line keeps what `hangar login` learnt: the server's URL and a personal API
//! token, in `~/.config/hangar/config.toml` (mode 0600, as it holds a secret).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::CliError;

/// The saved sign-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// The Hangar the commands talk to, e.g. `https://hangar.example.com`.
    pub url: String,
    /// The personal API token `hangar login` created (or was given).
    pub token: String,
    /// Who signed in, for messages.
    pub username: String,
    /// The token's id, so that `hangar logout` can revoke it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
}

/// `$HANGAR_CONFIG`, else `$XDG_CONFIG_HOME/hangar/config.toml`, else
/// `~/.config/hangar/config.toml`.
pub fn path() -> Result<PathBuf, CliError> {
    if let Some(path) = std::env::var_os("HANGAR_CONFIG") {
        return Ok(PathBuf::from(path));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))
        .ok_or_else(|| {
            CliError::usage("cannot tell where to keep the sign-in: set HOME or HANGAR_CONFIG")
        })?;
    Ok(base.join("hangar").join("config.toml"))
}

impl Profile {
    /// The saved sign-in; a clear error when there is none.
    pub fn load() -> Result<Profile, CliError> {
        let path = path()?;
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(CliError::signed_out(
                    "not signed in: run `hangar login <url>` first",
                ))
            }
            Err(e) => {
                return Err(CliError::usage(format!(
                    "cannot read {}: {e}",
                    path.display()
                )))
            }
        };
        toml::from_str(&text).map_err(|e| {
            CliError::usage(format!(
                "{} is not a valid Hangar configuration ({e}): run `hangar login <url>` again",
                path.display()
            ))
        })
    }

    /// Writes it, readable by its owner only.
    pub fn save(&self) -> Result<PathBuf, CliError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let path = path()?;
        let io =
            |e: std::io::Error| CliError::usage(format!("cannot write {}: {e}", path.display()));
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let text = toml::to_string(self)
            .map_err(|e| CliError::usage(format!("cannot encode the configuration: {e}")))?;
        // Written beside and renamed, so a crash never leaves half a file; created 0600 so the
        // token is never readable by others, not even for a moment.
        let temporary = path.with_extension("toml.new");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)
            .map_err(io)?;
        file.write_all(text.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&temporary, &path).map_err(io)?;
        Ok(path)
    }

    /// Forgets the saved sign-in.
    pub fn remove() -> Result<(), CliError> {
        let path = path()?;
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(CliError::usage(format!(
                "cannot remove {}: {e}",
                path.display()
            ))),
        }
    }
}
