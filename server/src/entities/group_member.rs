//! Membership of a user in a group.

use sea_orm::entity::prelude::*;

use app::ids::{GroupId, UserId};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "group_members")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub group_id: GroupId,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: UserId,
    /// Who made it: [`BY_ADMIN`] (by hand) or [`BY_IDP`] (the provider's groups claim, replaced
    /// at each sign-in).
    pub source: String,
}

/// A membership an admin set by hand: sign-ins leave it alone.
pub const BY_ADMIN: &str = "admin";
/// A membership the identity provider's groups claim made.
pub const BY_IDP: &str = "idp";

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
