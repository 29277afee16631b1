//! A notification on its way out by webhook or email: retried with backoff until delivered
//! or given up.

use sea_orm::entity::prelude::*;

use app::ids::UserId;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "notification_deliveries")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub user_id: UserId,
    /// `webhook` or `email`.
    pub channel: String,
    pub kind: String,
    /// The webhook's URL or the email address.
    #[sea_orm(column_type = "Text")]
    pub target: String,
    #[sea_orm(column_type = "Text")]
    pub payload: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: i32,
    pub next_at: DateTimeUtc,
    /// The receiver's last HTTP status (webhooks) or SMTP reply code (email).
    pub last_code: Option<i32>,
    /// A short excerpt of what went wrong last.
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

pub const PENDING: &str = "pending";
pub const DELIVERED: &str = "delivered";
pub const FAILED: &str = "failed";
pub const WEBHOOK: &str = "webhook";
pub const EMAIL: &str = "email";
