//! A user's SSH key for git hosts, made by Hangar; the private half encrypted (see
//! `auth::git_key`).

use sea_orm::entity::prelude::*;

use app::ids::UserId;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "git_ssh_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: UserId,
    /// The OpenSSH line (`ssh-ed25519 AAAA… hangar:<user>`).
    #[sea_orm(column_type = "Text")]
    pub public_key: String,
    /// `SHA256:…`, as `ssh-keygen -l` and git hosts show it.
    pub fingerprint: String,
    /// Nonce and ciphertext of the OpenSSH private key, base64.
    #[sea_orm(column_type = "Text")]
    pub secret: String,
    pub created_at: DateTimeUtc,
    pub last_used_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
