//! A tunnel: a port of a space published at an unguessable link that needs no sign-in. Only
//! the SHA-256 of the link's secret is stored.

use sea_orm::entity::prelude::*;

use app::ids::{SpaceId, TunnelId, UserId};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tunnels")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: TunnelId,
    pub space_id: SpaceId,
    /// The space's owner, whose tunnel quota it counts against.
    pub owner_id: UserId,
    pub port: i32,
    #[sea_orm(unique)]
    pub secret_hash: String,
    /// The secret's first characters, to tell links apart.
    pub hint: String,
    pub created_by: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
