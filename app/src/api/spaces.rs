//! Spaces and their shares.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

use super::auth::UserRef;
use super::quota::{QuotaReport, QuotaValues, UsageValues};
use super::templates::{Feature, TemplateDto, VolumeSpec};

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

/// What creating a space from a template would do to the caller's quota, before they do it.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreatePreview {
    pub template_id: String,
    pub compute_units: i64,
    pub storage_units: i64,
    pub quota: QuotaValues,
    pub usage: UsageValues,
    /// Usage once created (a created space holds storage, not compute).
    pub after_create: UsageValues,
    /// Usage once it is also started.
    pub after_start: UsageValues,
    /// Why it cannot be created, when it cannot.
    pub refusal: Option<String>,
    /// Why it could be created but not started now, when so.
    pub start_refusal: Option<String>,
}

/// Filters of the audit log (`GET /api/v1/audit`), newest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Matches targets containing this text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Only events older than this id (for paging).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<i64>,
    /// At most this many (default 50, at most 500).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
}

/// A space action the dashboard and space page offer.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpaceAction {
    Start,
    Stop,
    Restart,
}

/// The caller's own spaces and those shared with them.
#[server]
pub async fn my_spaces() -> Result<Vec<SpaceDto>, ApiError> {
    let parts = crate::api::ssr::request_parts()?;
    crate::api::ssr::answer(crate::api::ssr::backend()?.list_spaces(&parts).await)
}

/// Every space (admins only).
#[server]
pub async fn all_spaces() -> Result<Vec<SpaceDto>, ApiError> {
    let parts = crate::api::ssr::request_parts()?;
    crate::api::ssr::answer(crate::api::ssr::backend()?.all_spaces(&parts).await)
}

#[server]
pub async fn get_space(id: String) -> Result<SpaceDto, ApiError> {
    let parts = crate::api::ssr::request_parts()?;
    crate::api::ssr::answer(crate::api::ssr::backend()?.get_space(&parts, id).await)
}

/// The space's audit trail, newest first.
#[server]
pub async fn space_history(id: String) -> Result<Vec<AuditEventDto>, ApiError> {
    let parts = crate::api::ssr::request_parts()?;
    crate::api::ssr::answer(crate::api::ssr::backend()?.space_history(&parts, id).await)
}

/// The caller's effective quota and usage.
#[server]
pub async fn my_quota() -> Result<QuotaReport, ApiError> {
    let parts = crate::api::ssr::request_parts()?;
    crate::api::ssr::answer(crate::api::ssr::backend()?.my_quota(&parts).await)
}

/// Templates the caller may create spaces from.
#[server]
pub async fn usable_templates() -> Result<Vec<TemplateDto>, ApiError> {
    let parts = crate::api::ssr::request_parts()?;
    crate::api::ssr::answer(crate::api::ssr::backend()?.usable_templates(&parts).await)
}

#[server(name = CreatePreviewCall)]
pub async fn create_preview(template_id: String) -> Result<CreatePreview, ApiError> {
    let parts = crate::api::ssr::request_parts()?;
    crate::api::ssr::answer(
        crate::api::ssr::backend()?
            .create_preview(&parts, template_id)
            .await,
    )
}

#[server(name = CreateSpaceCall, input = server_fn::codec::Json)]
pub async fn create_space(input: CreateSpace) -> Result<SpaceDto, ApiError> {
    let parts = crate::api::ssr::request_parts()?;
    crate::api::ssr::answer(
        crate::api::ssr::backend()?
            .create_space(&parts, input)
            .await,
    )
}

#[server(name = SpaceActionCall)]
pub async fn space_action(id: String, action: SpaceAction) -> Result<SpaceDto, ApiError> {
    let parts = crate::api::ssr::request_parts()?;
    crate::api::ssr::answer(
        crate::api::ssr::backend()?
            .space_action(&parts, id, action)
            .await,
    )
}

#[server]
pub async fn delete_space(id: String) -> Result<(), ApiError> {
    let parts = crate::api::ssr::request_parts()?;
    crate::api::ssr::answer(crate::api::ssr::backend()?.delete_space(&parts, id).await)
}

/// Shares a space with a user given by username.
#[server]
pub async fn share_space(id: String, username: String) -> Result<Vec<ShareDto>, ApiError> {
    let parts = crate::api::ssr::request_parts()?;
    crate::api::ssr::answer(
        crate::api::ssr::backend()?
            .share_space(&parts, id, username)
            .await,
    )
}

#[server]
pub async fn revoke_share(id: String, user_id: String) -> Result<Vec<ShareDto>, ApiError> {
    let parts = crate::api::ssr::request_parts()?;
    crate::api::ssr::answer(
        crate::api::ssr::backend()?
            .revoke_share(&parts, id, user_id)
            .await,
    )
}

/// The audit log (admins only).
#[server(input = server_fn::codec::Json)]
pub async fn audit_log(filter: AuditFilter) -> Result<Vec<AuditEventDto>, ApiError> {
    let parts = crate::api::ssr::request_parts()?;
    crate::api::ssr::answer(crate::api::ssr::backend()?.audit_log(&parts, filter).await)
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use http::request::Parts;

    use super::{
        AuditEventDto, AuditFilter, CreatePreview, CreateSpace, ShareDto, SpaceAction, SpaceDto,
    };
    use crate::api::quota::QuotaReport;
    use crate::api::templates::TemplateDto;
    use crate::error::ApiError;

    /// Spaces as the server implements them; `parts` is the HTTP request being served.
    #[async_trait::async_trait]
    pub trait SpacesBackend: Send + Sync + 'static {
        async fn list_spaces(&self, parts: &Parts) -> Result<Vec<SpaceDto>, ApiError>;
        async fn all_spaces(&self, parts: &Parts) -> Result<Vec<SpaceDto>, ApiError>;
        async fn get_space(&self, parts: &Parts, id: String) -> Result<SpaceDto, ApiError>;
        async fn space_history(
            &self,
            parts: &Parts,
            id: String,
        ) -> Result<Vec<AuditEventDto>, ApiError>;
        async fn my_quota(&self, parts: &Parts) -> Result<QuotaReport, ApiError>;
        async fn usable_templates(&self, parts: &Parts) -> Result<Vec<TemplateDto>, ApiError>;
        async fn create_preview(
            &self,
            parts: &Parts,
            template_id: String,
        ) -> Result<CreatePreview, ApiError>;
        async fn create_space(
            &self,
            parts: &Parts,
            input: CreateSpace,
        ) -> Result<SpaceDto, ApiError>;
        async fn space_action(
            &self,
            parts: &Parts,
            id: String,
            action: SpaceAction,
        ) -> Result<SpaceDto, ApiError>;
        async fn delete_space(&self, parts: &Parts, id: String) -> Result<(), ApiError>;
        async fn share_space(
            &self,
            parts: &Parts,
            id: String,
            username: String,
        ) -> Result<Vec<ShareDto>, ApiError>;
        async fn revoke_share(
            &self,
            parts: &Parts,
            id: String,
            user_id: String,
        ) -> Result<Vec<ShareDto>, ApiError>;
        async fn audit_log(
            &self,
            parts: &Parts,
            filter: AuditFilter,
        ) -> Result<Vec<AuditEventDto>, ApiError>;
    }
}
