//! Spaces and their shares.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

use super::auth::UserRef;
use super::templates::{Feature, VolumeSpec};

#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShareDto {
    pub user: UserRef,
    pub granted_at: String,
    pub granted_by: String,
}

#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpaceDto {
    pub id: String,
    pub name: String,
    pub owner: UserRef,
    pub template_id: Option<String>,
    pub template_name: String,
    pub state: String,
    pub compute_units: i64,
    pub storage_units: i64,
    pub image: String,
    pub volumes: Vec<VolumeSpec>,
    pub features: Vec<Feature>,
    pub last_error: Option<String>,
    /// The users it is shared with (listed for its owner and admins only).
    pub shared_with: Vec<ShareDto>,
    /// The caller sees it because it was shared with them.
    pub shared_with_me: bool,
    /// The caller may start, stop, delete and share it.
    pub can_manage: bool,
    pub created_at: String,
    pub updated_at: String,
    pub started_at: Option<String>,
    pub stopped_at: Option<String>,
}

#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSpace {
    pub name: String,
    pub template_id: String,
    /// Admins may create a space for another user (by id); it counts against that user.
    #[serde(default)]
    pub owner_id: Option<String>,
}

#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEventDto {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    #[cfg_attr(feature = "ssr", schema(value_type = Object))]
    pub details: serde_json::Value,
}

/// The caller's own spaces and those shared with them.
#[server]
pub async fn my_spaces() -> Result<Vec<SpaceDto>, ApiError> {
    let parts = crate::api::ssr::request_parts()?;
    crate::api::ssr::backend()?.list_spaces(&parts).await
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use super::SpaceDto;
    use crate::error::ApiError;

    /// Spaces as the server implements them; `parts` is the HTTP request being served.
    #[async_trait::async_trait]
    pub trait SpacesBackend: Send + Sync + 'static {
        async fn list_spaces(
            &self,
            parts: &http::request::Parts,
        ) -> Result<Vec<SpaceDto>, ApiError>;
    }
}
