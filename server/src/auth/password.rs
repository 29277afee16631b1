//! Password hashing with argon2id (OWASP parameters), run off the async runtime, a few at a
//! time: each takes 19 MiB and a core for tens of milliseconds, so a flood of sign-ins would
//! otherwise run hundreds at once. Beyond a short queue, Hangar answers 503 with Retry-After.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::LazyLock;
use std::time::Duration;

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::error::{ApiError, ApiResult};

/// OWASP's argon2id recommendation: 19 MiB of memory, 2 iterations, 1 lane.
fn hasher() -> ApiResult<Argon2<'static>> {
    let params = Params::new(19 * 1024, 2, 1, None).map_err(ApiError::internal)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// The hashes that may run at once (one per core), and the few that may wait for them.
struct HashingPool {
    running: tokio::sync::Semaphore,
    waiting: AtomicUsize,
    max_waiting: usize,
}

/// How long a hash may wait for its turn before Hangar says it is too busy.
const MAX_WAIT: Duration = Duration::from_secs(5);

static POOL: LazyLock<HashingPool> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    HashingPool {
        running: tokio::sync::Semaphore::new(cores),
        waiting: AtomicUsize::new(0),
        max_waiting: cores * 4,
    }
});

/// Runs one hash computation in its turn, or refuses (503 with Retry-After) when too many
/// are waiting already.
async fn in_turn<T: Send + 'static>(
    work: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    let busy = || {
        ApiError::unavailable("Hangar is busy checking other passwords: try again in a moment")
            .with_retry_after(Duration::from_secs(1))
    };
    let pool = &*POOL;
    if pool.waiting.fetch_add(1, Ordering::SeqCst) >= pool.max_waiting {
        pool.waiting.fetch_sub(1, Ordering::SeqCst);
        return Err(busy());
    }
    let permit = tokio::time::timeout(MAX_WAIT, pool.running.acquire()).await;
    pool.waiting.fetch_sub(1, Ordering::SeqCst);
    let Ok(Ok(_permit)) = permit else {
        return Err(busy());
    };
    tokio::task::spawn_blocking(work)
        .await
        .map_err(ApiError::internal)?
}

pub async fn hash_password(password: String) -> ApiResult<String> {
    in_turn(move || {
        let salt = SaltString::generate(&mut OsRng);
        hasher()?
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(ApiError::internal)
    })
    .await
}

/// Whether `password` matches the stored PHC string; a malformed hash never matches.
pub async fn verify_password(password: String, stored_hash: String) -> ApiResult<bool> {
    in_turn(move || {
        let Ok(parsed) = PasswordHash::new(&stored_hash) else {
            return Ok(false);
        };
        Ok(hasher()?
            .verify_password(password.as_bytes(), &parsed)
            .is_ok())
    })
    .await
}

/// Longest password accepted anywhere (sign-in included): hashing cost grows with it.
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// A random password of 20 characters from an alphabet without look-alikes.
pub fn random_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    (0..20)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Validates a new password's strength; the message says what is wanted.
pub fn check_new_password(password: &str) -> ApiResult<()> {
    let length = password.chars().count();
    if length < 8 {
        return Err(ApiError::invalid(
            "password",
            "the password is too short: use at least 8 characters",
        ));
    }
    if length > MAX_PASSWORD_CHARS {
        return Err(ApiError::invalid(
            "password",
            format!("the password is too long: use at most {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_and_verify() {
        let hash = hash_password("correct horse".into()).await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify_password("correct horse".into(), hash.clone())
            .await
            .unwrap());
        assert!(!verify_password("wrong horse".into(), hash).await.unwrap());
        assert!(!verify_password("x".into(), "not a hash".into())
            .await
            .unwrap());
    }

    #[test]
    fn random_passwords_differ_and_are_long() {
        let (a, b) = (random_password(), random_password());
        assert_eq!(a.len(), 20);
        assert_ne!(a, b);
    }
}
