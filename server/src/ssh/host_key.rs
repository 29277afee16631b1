//! The gateway's host key: ed25519, made on first start and kept in the `settings` table, so
//! that clients never see it change across restarts or between replicas on one database.

use russh::keys::ssh_key::LineEnding;
use russh::keys::PrivateKey;
use sea_orm::DatabaseConnection;

use crate::db::setting_made_once;
use crate::entities::setting;
use crate::error::{ApiError, ApiResult};

/// The host key in the database, made now if there is none (the first of several servers
/// starting at once wins; the others read it).
pub async fn load_or_create(db: &DatabaseConnection) -> ApiResult<PrivateKey> {
    let fresh = crate::auth::ed25519::fresh()
        .to_openssh(LineEnding::LF)
        .map_err(|e| ApiError::internal(format!("encoding the SSH host key: {e}")))?;
    let stored = setting_made_once(db, setting::SSH_HOST_KEY, fresh.to_string()).await?;
    PrivateKey::from_openssh(stored.as_bytes())
        .map_err(|e| ApiError::internal(format!("the stored SSH host key is unreadable: {e}")))
}
