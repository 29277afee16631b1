//! Quota and usage as the API reports them (null = unlimited).

use serde::{Deserialize, Serialize};

#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct QuotaValues {
    pub max_spaces: Option<i64>,
    pub compute_units: Option<i64>,
    pub storage_units: Option<i64>,
}

#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UsageValues {
    pub spaces: i64,
    pub compute_units: i64,
    pub storage_units: i64,
}

/// One contributor to the effective quota: `own` or `group:<name>`.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaSource {
    pub source: String,
    pub max_spaces: Option<i64>,
    pub compute_units: Option<i64>,
    pub storage_units: Option<i64>,
}

#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaReport {
    pub quota: QuotaValues,
    pub usage: UsageValues,
    pub breakdown: Vec<QuotaSource>,
    /// Usage is above the quota in some dimension (after a quota was lowered).
    pub over_quota: bool,
}

/// One user's report in the list every admin page with live usage reads at once.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserQuota {
    pub user_id: crate::api::auth::UserId,
    pub report: QuotaReport,
}
