//! A setting of the installation, shared by every replica on the database.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "settings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    #[sea_orm(column_type = "Text")]
    pub value: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// The installation's id: labels every Docker object this installation makes.
pub const INSTALLATION_ID: &str = "installation_id";

/// The SSH gateway's host key (OpenSSH private key text): made by the first server to start,
/// so that restarts and replicas show clients the same one.
pub const SSH_HOST_KEY: &str = "ssh_host_key";
