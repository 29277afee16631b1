//! A space's use over time (CPU, memory against its limit, processes, network, disk against
//! its volumes' size), sampled by the
//! server from the engine: minutes for the last day, hours for 90 days; and the space page's
//! charts of it, drawn as SVG on the server and in the browser alike.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::api::quota::QuotaValues;
use crate::error::ApiError;
use crate::ids::{GroupId, SpaceId, UserId};
use crate::time::Timestamp;

/// How far back a space's usage goes, and at which resolution.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UsageRange {
    /// The last hour, a point a minute.
    #[default]
    Hour,
    /// The last day, a point a minute.
    Day,
    /// The last 90 days, a point an hour.
    Quarter,
}

/// One point of a space's usage.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsagePoint {
    pub at: Timestamp,
    /// CPUs in use, on average over the point.
    pub cpus: f64,
    pub memory_bytes: i64,
    pub pids: i64,
    /// Received and sent since the container started.
    pub net_rx_bytes: i64,
    pub net_tx_bytes: i64,
    /// In use on its sized volumes (None where volume sizes are not enforced).
    pub disk_bytes: Option<i64>,
}

/// A space's usage over a range, with its limits.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpaceUsage {
    pub range: UsageRange,
    pub points: Vec<UsagePoint>,
    /// The CPUs its compute units give it (None: no limit).
    pub cpu_limit: Option<f64>,
    /// Its memory limit as the engine last reported it.
    pub memory_limit_bytes: Option<i64>,
    /// The size of its volumes together, when their use is measured.
    pub disk_limit_bytes: Option<i64>,
    /// Seconds between points.
    pub step_secs: i64,
}

/// One point of what a user's (or a group's members') spaces held of the quota.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaPoint {
    pub at: Timestamp,
    pub spaces: i64,
    /// Of the spaces running (or starting).
    pub compute_units: i64,
    pub storage_units: i64,
}

/// Quota use over a range: a user's (against their effective quota now), or a group's
/// members' together (against the group's contribution).
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuotaUsage {
    pub range: UsageRange,
    /// A point per sample in which any of the spaces counted existed; a time without a point
    /// held nothing.
    pub points: Vec<QuotaPoint>,
    /// The quota the use is read against, as it is now (null values: unlimited).
    pub quota: QuotaValues,
    /// Seconds between points.
    pub step_secs: i64,
}

/// `GET /api/v1/spaces/{id}/usage?range=`.
#[cfg_attr(feature = "ssr", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "ssr", into_params(parameter_in = Query))]
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    #[serde(default)]
    pub range: Option<UsageRange>,
}

#[server(name = SpaceUsageCall)]
pub async fn space_usage(id: SpaceId, range: UsageRange) -> Result<SpaceUsage, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.space_usage(&caller, &id, range).await)
}

#[server(name = MyQuotaUsageCall)]
pub async fn my_quota_usage(range: UsageRange) -> Result<QuotaUsage, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.my_quota_usage(&caller, range).await)
}

#[server(name = UserQuotaUsageCall)]
pub async fn user_quota_usage(id: UserId, range: UsageRange) -> Result<QuotaUsage, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.user_quota_usage(&caller, &id, range).await)
}

#[server(name = GroupQuotaUsageCall)]
pub async fn group_quota_usage(id: GroupId, range: UsageRange) -> Result<QuotaUsage, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.group_quota_usage(&caller, &id, range).await)
}

/// The points of one series as an SVG polyline's `points`, in a `width`×`height` box, the
/// value `top` at the top.
pub fn polyline(values: &[f64], top: f64, width: f64, height: f64) -> String {
    if values.is_empty() || top <= 0.0 {
        return String::new();
    }
    let step = if values.len() > 1 {
        width / (values.len() - 1) as f64
    } else {
        0.0
    };
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let y = height - (v.max(0.0) / top).min(1.0) * height;
            format!("{:.1},{:.1}", i as f64 * step, y)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use super::{QuotaUsage, SpaceUsage, UsageRange};
    use crate::api::ssr::Caller;
    use crate::error::ApiResult;
    use crate::ids::{GroupId, SpaceId, UserId};

    #[async_trait::async_trait]
    pub trait UsageApi: Send + Sync + 'static {
        async fn space_usage(
            &self,
            caller: &Caller,
            id: &SpaceId,
            range: UsageRange,
        ) -> ApiResult<SpaceUsage>;
        /// The caller's quota use over the range.
        async fn my_quota_usage(&self, caller: &Caller, range: UsageRange)
            -> ApiResult<QuotaUsage>;
        /// A user's quota use over the range (admins).
        async fn user_quota_usage(
            &self,
            caller: &Caller,
            id: &UserId,
            range: UsageRange,
        ) -> ApiResult<QuotaUsage>;
        /// A group's members' quota use together over the range (admins).
        async fn group_quota_usage(
            &self,
            caller: &Caller,
            id: &GroupId,
            range: UsageRange,
        ) -> ApiResult<QuotaUsage>;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_series_fills_its_box_and_clips_at_the_top() {
        assert_eq!(
            polyline(&[0.0, 1.0, 4.0], 2.0, 100.0, 10.0),
            "0.0,10.0 50.0,5.0 100.0,0.0"
        );
        assert_eq!(polyline(&[], 1.0, 100.0, 10.0), "");
    }
}
