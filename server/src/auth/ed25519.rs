//! Fresh ed25519 key pairs from the OS's random source: the SSH gateway's host key and each
//! user's SSH key for git hosts.

use rand::RngCore;
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::PrivateKey;

/// A new ed25519 private key.
pub fn fresh() -> PrivateKey {
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    PrivateKey::from(Ed25519Keypair::from_seed(&seed))
}
