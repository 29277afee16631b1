//! A user's choices of channels per kind of notification, and their webhook (the secret
//! encrypted, see `auth::git_key`).

use sea_orm::entity::prelude::*;

use app::ids::UserId;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "notification_settings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: UserId,
    /// JSON: a list of `NotificationChoice`, for the kinds the user chose for.
    #[sea_orm(column_type = "Text")]
    pub choices: String,
    pub webhook_url: Option<String>,
    /// Nonce and ciphertext of the webhook's signing secret, base64.
    #[sea_orm(column_type = "Text", nullable)]
    pub webhook_secret: Option<String>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
