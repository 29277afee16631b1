//! An admin's rule allowing or denying one feature to everyone, a group or a user.

use sea_orm::entity::prelude::*;

use app::ids::{FeatureRuleId, GroupId, UserId};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "feature_rules")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: FeatureRuleId,
    /// `everyone`, `group:<id>` or `user:<id>` (unique with the feature).
    pub subject: String,
    /// The feature's wire name (`vnc`, `tunnels`...).
    pub feature: String,
    pub user_id: Option<UserId>,
    pub group_id: Option<GroupId>,
    pub allowed: bool,
    pub updated_by: String,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
