//! The admins' overview (`/admin`): the machines and what they hold, who runs what, the idle
//! spaces, the users near their quotas, the latest failures and Hangar's own health, each
//! linking to the page that acts on it.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::admin::NodeDto;
use super::auth::UserRef;
use super::spaces::AuditEventDto;
use crate::error::ApiError;
use crate::ids::SpaceId;
use crate::time::Timestamp;

/// A user's running spaces.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerRunning {
    pub user: UserRef,
    pub spaces: i64,
    pub compute_units: i64,
}

/// A running space nobody used for a while.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdleSpace {
    pub id: SpaceId,
    pub name: String,
    pub owner: UserRef,
    pub compute_units: i64,
    /// Its last use seen at a door (else when it started).
    pub idle_since: Timestamp,
}

/// A user at 80% or more of one of their quotas.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NearQuota {
    pub user: UserRef,
    /// `spaces`, `compute_units` or `storage_units`.
    pub dimension: String,
    pub used: i64,
    pub quota: i64,
}

/// Hangar itself.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HangarHealth {
    pub version: String,
    /// `enforced: …` or `not enforced: …`, as `/readyz` tells admins.
    pub storage: String,
    pub network: String,
    pub privileges: String,
}

/// `GET /api/v1/admin/overview`.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminOverview {
    pub health: HangarHealth,
    pub nodes: Vec<NodeDto>,
    /// Why the nodes are not listed (the engine did not answer).
    pub nodes_note: Option<String>,
    pub running_spaces: i64,
    pub running_compute_units: i64,
    /// Who runs the most compute units (at most 10).
    pub by_owner: Vec<OwnerRunning>,
    /// Running spaces unused for an hour or more, longest idle first (at most 20).
    pub idle: Vec<IdleSpace>,
    /// At most 20, the fullest first.
    pub near_quota: Vec<NearQuota>,
    /// The latest failed actions of the audit log (at most 10).
    pub failures: Vec<AuditEventDto>,
}

#[server(name = AdminOverviewCall)]
pub async fn admin_overview() -> Result<AdminOverview, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.overview(&caller).await)
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use super::AdminOverview;
    use crate::api::ssr::Caller;
    use crate::error::ApiResult;

    #[async_trait::async_trait]
    pub trait OverviewApi: Send + Sync + 'static {
        async fn overview(&self, caller: &Caller) -> ApiResult<AdminOverview>;
    }
}
