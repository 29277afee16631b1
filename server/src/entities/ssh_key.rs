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
    #[sea_orm(unique)]
    pub fingerprint: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
