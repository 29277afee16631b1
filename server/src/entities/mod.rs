//! The database tables as sea-orm entities; they never leave the server (DTOs do).

pub mod api_token;
pub mod audit_event;
pub mod feature_rule;
pub mod git_credential;
pub mod git_ssh_key;
pub mod group;
pub mod group_member;
pub mod login_grant;
pub mod notification;
pub mod notification_delivery;
pub mod notification_setting;
pub mod quota_sample;
pub mod session;
pub mod setting;
pub mod share;
pub mod space;
pub mod ssh_key;
pub mod template;
pub mod tunnel;
pub mod usage_sample;
pub mod user;
pub mod user_identity;
