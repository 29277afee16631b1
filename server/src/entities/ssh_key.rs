//! A user's SSH public key, for the SSH gateway.

use sea_orm::entity::prelude::*;

use app::ids::{SshKeyId, UserId};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ssh_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: SshKeyId,
    pub user_id: UserId,
    pub name: String,
    #[sea_orm(column_type = "Text")]
    pub public_key: String,
    /// Unique per user (not across users: nobody can block another's key by adding it first).
    pub fingerprint: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
