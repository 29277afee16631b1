//! The key that keeps users' git tokens encrypted at rest: 32 random bytes in a file of the
//! operator's (`git-credentials.key` in the data dir, mode 0600), made when first needed.
//! Without that file the tokens in the database cannot be read: back it up with the database,
//! and give every server of one database the same file.

use std::io::Write;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use rand::RngCore;

/// The key file's name in the data dir.
pub const KEY_FILE: &str = "git-credentials.key";
const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;

/// The cipher of git tokens.
pub struct GitKey(Aes256Gcm);

impl GitKey {
    /// The key in `dir`, made (0600) when there is none yet.
    pub fn in_dir(dir: &Path) -> Result<GitKey, String> {
        let path: PathBuf = dir.join(KEY_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::make(dir, &path)?,
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        if bytes.len() != KEY_LEN {
            return Err(format!(
                "{} holds {} bytes, not the {KEY_LEN} of a key: restore it from a backup (or remove it, and every saved git token with it)",
                path.display(),
                bytes.len()
            ));
        }
        let key = Key::<Aes256Gcm>::try_from(bytes.as_slice())
            .map_err(|_| format!("{} is not a key", path.display()))?;
        Ok(GitKey(Aes256Gcm::new(&key)))
    }

    fn make(dir: &Path, path: &Path) -> Result<Vec<u8>, String> {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot make {}: {e}", dir.display()))?;
        let mut bytes = vec![0u8; KEY_LEN];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        // create_new: of two servers making it at once, one writes and the other reads it.
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(mut file) => {
                file.write_all(&bytes)
                    .and_then(|()| file.sync_all())
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                Ok(bytes)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
            }
            Err(e) => Err(format!("cannot make {}: {e}", path.display())),
        }
    }

    /// `token` encrypted under a fresh nonce, as base64 of nonce and ciphertext.
    pub fn seal(&self, token: &str) -> Result<String, String> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .0
            .encrypt(&Nonce::from(nonce), token.as_bytes())
            .map_err(|_| "cannot encrypt the token".to_owned())?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(base64::engine::general_purpose::STANDARD.encode(out))
    }

    /// The token `seal` made; an error when the key is not the one it was sealed with.
    pub fn open(&self, sealed: &str) -> Result<String, String> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .map_err(|_| "the saved token is damaged".to_owned())?;
        if bytes.len() <= NONCE_LEN {
            return Err("the saved token is damaged".into());
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_from(nonce).map_err(|_| "the saved token is damaged".to_owned())?;
        let plain = self.0.decrypt(&nonce, sealed).map_err(|_| {
            format!(
                "the saved token cannot be decrypted with this server's {KEY_FILE}: save it again"
            )
        })?;
        String::from_utf8(plain).map_err(|_| "the saved token is damaged".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_the_key_file_is_private_and_kept(
    ) -> Result<(), Box<dyn std::error::Error>> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir()?;
        let key = GitKey::in_dir(dir.path())?;
        let sealed = key.seal("ghp_secret")?;
        assert!(!sealed.contains("ghp_secret"));
        assert_ne!(sealed, key.seal("ghp_secret")?, "a fresh nonce each time");
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))?
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // The same file again reads what was sealed; another key does not.
        assert_eq!(GitKey::in_dir(dir.path())?.open(&sealed)?, "ghp_secret");
        let other = tempfile::tempdir()?;
        assert!(GitKey::in_dir(other.path())?.open(&sealed).is_err());
        Ok(())
    }
}
