//! A point of what a user's spaces held of their quota (see `services::usage`).

use sea_orm::entity::prelude::*;

use app::ids::UserId;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "quota_samples")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: UserId,
    /// `minute` or `hour`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub resolution: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub at: DateTimeUtc,
    pub spaces: i64,
    /// Of its running (or starting) spaces.
    pub compute_units: i64,
    pub storage_units: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
