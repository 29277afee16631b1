//! A person who signs in: credentials, role and own quota.

use sea_orm::entity::prelude::*;

use app::api::auth::Role;
use app::ids::UserId;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: UserId,
    #[sea_orm(unique)]
    pub username: String,
    pub display_name: String,
    pub email: String,
    pub password_hash: String,
    pub role: Role,
    pub active: bool,
    pub max_spaces: Option<i64>,
    pub compute_units: Option<i64>,
    pub storage_units: Option<i64>,
    pub max_tunnels: Option<i64>,
    pub created_at: DateTimeUtc,
    /// IANA time zone (`Europe/Berlin`) of their schedules; None: UTC.
    pub time_zone: Option<String>,
    /// Their dotfiles repository, installed at the first start of each new space.
    #[sea_orm(column_type = "Text", nullable)]
    pub dotfiles_url: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
