//! A space shared with a user.

use sea_orm::entity::prelude::*;

use app::ids::{SpaceId, UserId};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "shares")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub space_id: SpaceId,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: UserId,
    pub granted_at: DateTimeUtc,
    pub granted_by: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
