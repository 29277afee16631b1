//! Quota and usage as the API reports them (null = unlimited).

use serde::{Deserialize, Serialize};

#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct QuotaValues {
    pub max_spaces: Option<i64>,
    pub compute_units: Option<i64>,
    pub storage_units: Option<i64>,
    /// Tunnels (public links) the user may have at once.
    #[serde(default)]
    pub max_tunnels: Option<i64>,
}

#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UsageValues {
    pub spaces: i64,
    pub compute_units: i64,
    pub storage_units: i64,
    /// Tunnels of the user's spaces.
    #[serde(default)]
    pub tunnels: i64,
}

/// One contributor to the effective quota: `own` or `group:<name>`.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaSource {
    pub source: String,
    pub max_spaces: Option<i64>,
    pub compute_units: Option<i64>,
    pub storage_units: Option<i64>,
    #[serde(default)]
    pub max_tunnels: Option<i64>,
}

#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaReport {
    pub quota: QuotaValues,
    pub usage: UsageValues,
    pub breakdown: Vec<QuotaSource>,
    /// Usage is above the quota in some dimension (after a quota was lowered).
    pub over_quota: bool,
    /// Bytes in use on the volumes of the user's spaces (measured at most seconds ago), to
    /// read against `usage.storage_units` GiB; null when the host does not enforce volume
    /// sizes (see `/readyz`).
    #[serde(default)]
    pub storage_used_bytes: Option<i64>,
}

/// One user's report in the list every admin page with live usage reads at once.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserQuota {
    pub user_id: crate::ids::UserId,
    pub report: QuotaReport,
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use super::{QuotaReport, UserQuota};
    use crate::api::page::PageQuery;
    use crate::api::ssr::Caller;
    use crate::error::ApiResult;
    use crate::ids::UserId;

    /// Quotas and live usage.
    #[async_trait::async_trait]
    pub trait QuotaApi: Send + Sync + 'static {
        /// The caller's effective quota and usage.
        async fn my_quota(&self, caller: &Caller) -> ApiResult<QuotaReport>;
        /// One user's (admins only).
        async fn user_quota(&self, caller: &Caller, id: &UserId) -> ApiResult<QuotaReport>;
        /// A page of users' reports, by username (admins only).
        async fn user_quotas(&self, caller: &Caller, page: PageQuery) -> ApiResult<Vec<UserQuota>>;
    }
}
