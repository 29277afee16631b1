//! Spaces and their shares.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::ids::{SpaceId, TemplateId, UserId};
use crate::lifecycle::{Action, SpaceState};
use crate::time::Timestamp;

use super::auth::UserRef;
use super::page::{PageQuery, Paged};
use super::quota::{QuotaReport, QuotaValues, UsageValues};
use super::templates::{Feature, TemplateDto, VolumeSpec};

#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShareDto {
    pub user: UserRef,
    pub granted_at: Timestamp,
    pub granted_by: String,
}

#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpaceDto {
    pub id: SpaceId,
    pub name: String,
    pub owner: UserRef,
    pub template_id: Option<TemplateId>,
    pub template_name: String,
    pub state: SpaceState,
    pub compute_units: i64,
    pub storage_units: i64,
    pub image: String,
    pub volumes: Vec<VolumeSpec>,
    pub features: Vec<Feature>,
    /// It runs with Docker-in-Docker rights (its template's flag when it was made).
    #[serde(default)]
    pub privileged: bool,
    /// It may open raw sockets (its template's flag when it was made).
    #[serde(default)]
    pub raw_sockets: bool,
    /// Its repository's `devcontainer.json` may set run options (its template's flag when
    /// it was made).
    #[serde(default)]
    pub devcontainer_run_options: bool,
    /// The features the caller may use here: the template's, as far as both the caller and
    /// the owner are allowed them.
    #[serde(default)]
    pub allowed_features: Vec<Feature>,
    /// Ways into the apps running in it (VS Code, a desktop), for the caller.
    #[serde(default)]
    pub apps: Vec<super::ports::AppLink>,
    pub last_error: Option<String>,
    /// The users it is shared with (listed for its owner and admins only).
    pub shared_with: Vec<ShareDto>,
    /// The caller sees it because it was shared with them.
    pub shared_with_me: bool,
    /// The caller may start, stop, delete and share it.
    pub can_manage: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub stopped_at: Option<Timestamp>,
    /// Its coming automatic stop, while it runs and has one.
    #[serde(default)]
    pub autostop: Option<super::autostop::AutoStop>,
    /// Its next scheduled start, while it is stopped and has one (as the caller reads it:
    /// `08:00` or `Mon 08:00`).
    #[serde(default)]
    pub starts_at: Option<String>,
    /// The last activity Hangar saw, and its kind.
    #[serde(default)]
    pub last_activity: Option<super::autostop::LastActivity>,
    /// Why Hangar last stopped it, or skipped a scheduled start, by itself.
    #[serde(default)]
    pub auto_note: Option<String>,
    /// Pinned: retention never deletes it.
    #[serde(default)]
    pub keep: bool,
    /// Retention deletes it then, unless it is used, started or pinned before.
    #[serde(default)]
    pub deletes_at: Option<Timestamp>,
    /// The repository cloned into it at its first start, and how that went.
    #[serde(default)]
    pub repository: Option<super::repos::RepositoryStatus>,
    /// The owner's dotfiles as installed at its first start.
    #[serde(default)]
    pub dotfiles: Option<super::repos::DotfilesStatus>,
    /// What the clone and the dotfiles' installation printed (the last 64 KB, progress lines
    /// collapsed to their last state).
    #[serde(default)]
    pub setup_log: Option<String>,
    /// The image built from its repository's `devcontainer.json`, when its template allows
    /// it and the repository has one (absent: not looked for yet).
    #[serde(default)]
    pub devcontainer: Option<super::repos::DevContainerStatus>,
}

/// A new space.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSpace {
    /// 2 to 32 characters: lowercase letters, digits and `-`, starting with a letter; unique
    /// among the owner's spaces.
    #[cfg_attr(feature = "ssr", schema(pattern = "^[a-z][a-z0-9-]{1,31}$"))]
    pub name: String,
    pub template_id: TemplateId,
    /// Admins may create a space for another user (by id); it counts against that user.
    #[serde(default)]
    pub owner_id: Option<UserId>,
    /// A repository to clone into it at its first start (absent: the template's, if it
    /// presets one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<super::repos::RepositoryInput>,
}

#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEventDto {
    pub id: i64,
    pub at: Timestamp,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    #[cfg_attr(feature = "ssr", schema(value_type = Object))]
    pub details: serde_json::Value,
}

/// What one of a space's volumes holds (`GET /api/v1/spaces/{id}/storage`).
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeUsage {
    pub name: String,
    pub mount_path: String,
    pub size_gib: i64,
    /// Bytes in use, measured now; null when the host does not measure this volume.
    pub used_bytes: Option<i64>,
    /// The size is a hard limit: writing past it fails with "no space left on device" in the
    /// space. False for volumes made where (or before) Hangar enforced sizes.
    pub enforced: bool,
}

/// What creating a space from a template would do to the caller's quota, before they do it.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreatePreview {
    pub template_id: TemplateId,
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
#[cfg_attr(feature = "ssr", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "ssr", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct AuditFilter {
    /// The action, such as `space.start` (at most 200 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ssr", param(max_length = 200))]
    pub action: Option<String>,
    /// The actor's username (at most 200 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ssr", param(max_length = 200))]
    pub actor: Option<String>,
    /// Matches targets containing this text (at most 200 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ssr", param(max_length = 200))]
    pub target: Option<String>,
    /// `success`, `refused` or `failed` (at most 200 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ssr", param(max_length = 200))]
    pub outcome: Option<String>,
    /// Only events older than this id (for paging): 1 or more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ssr", param(minimum = 1))]
    pub before: Option<i64>,
    /// At most this many, 1 to 500 (default 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ssr", param(minimum = 1, maximum = 500))]
    pub limit: Option<u64>,
}

/// `GET /api/v1/spaces`: the caller's own spaces and those shared with them, or with
/// `all` (admins only) everyone's; oldest first, a page at a time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "ssr", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct SpaceListQuery {
    /// Admins: everyone's spaces.
    #[serde(default)]
    pub all: bool,
    /// Most items to answer, 1 to 500 (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ssr", param(minimum = 1, maximum = 500))]
    pub limit: Option<u32>,
    /// The id of the last space of the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

impl SpaceListQuery {
    /// One page of the caller's spaces (`all`: everyone's).
    pub fn of(all: bool, page: PageQuery) -> Self {
        SpaceListQuery {
            all,
            limit: page.limit,
            after: page.after,
        }
    }

    pub fn page(&self) -> PageQuery {
        PageQuery {
            limit: self.limit,
            after: self.after.clone(),
        }
    }
}

impl Paged for SpaceDto {
    fn cursor(&self) -> String {
        self.id.to_string()
    }
}

/// A page of the caller's own spaces and those shared with them.
#[server(input = server_fn::codec::Json)]
pub async fn my_spaces(page: PageQuery) -> Result<Vec<SpaceDto>, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(
        api.list_spaces(&caller, SpaceListQuery::of(false, page))
            .await,
    )
}

/// A page of every space (admins only).
#[server(input = server_fn::codec::Json)]
pub async fn all_spaces(page: PageQuery) -> Result<Vec<SpaceDto>, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(
        api.list_spaces(&caller, SpaceListQuery::of(true, page))
            .await,
    )
}

#[server]
pub async fn get_space(id: SpaceId) -> Result<SpaceDto, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.get_space(&caller, &id).await)
}

/// The space's audit trail, newest first.
#[server]
pub async fn space_history(id: SpaceId) -> Result<Vec<AuditEventDto>, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.space_history(&caller, &id).await)
}

/// What each of the space's volumes holds.
#[server]
pub async fn space_storage(id: SpaceId) -> Result<Vec<VolumeUsage>, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.space_storage(&caller, &id).await)
}

/// The caller's effective quota and usage.
#[server]
pub async fn my_quota() -> Result<QuotaReport, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.my_quota(&caller).await)
}

/// A page of the templates the caller may create spaces from (never archived ones).
#[server(input = server_fn::codec::Json)]
pub async fn usable_templates(page: PageQuery) -> Result<Vec<TemplateDto>, ApiError> {
    use super::templates::TemplateListQuery;
    let (api, caller) = crate::api::ssr::caller().await?;
    let query = TemplateListQuery {
        usable: true,
        limit: page.limit,
        after: page.after,
    };
    crate::api::ssr::answer(api.list_templates(&caller, query).await)
}

#[server(name = CreatePreviewCall)]
pub async fn create_preview(template_id: TemplateId) -> Result<CreatePreview, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.create_preview(&caller, &template_id).await)
}

#[server(name = CreateSpaceCall, input = server_fn::codec::Json)]
pub async fn create_space(input: CreateSpace) -> Result<SpaceDto, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.create_space(&caller, input).await)
}

/// Start, stop or restart.
#[server(name = SpaceActionCall)]
pub async fn space_action(id: SpaceId, action: Action) -> Result<SpaceDto, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.transition(&caller, &id, action).await)
}

/// Deletes the space: `None` when it is gone, or the space while it stops first.
#[server]
pub async fn delete_space(id: SpaceId) -> Result<Option<SpaceDto>, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.delete_space(&caller, &id).await)
}

/// Shares a space with a user given by username (or id).
#[server]
pub async fn share_space(id: SpaceId, username: String) -> Result<Vec<ShareDto>, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.share_space(&caller, &id, &username).await)
}

#[server]
pub async fn revoke_share(id: SpaceId, user_id: UserId) -> Result<Vec<ShareDto>, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.revoke_share(&caller, &id, user_id.as_str()).await)
}

/// The audit log (admins only).
#[server(input = server_fn::codec::Json)]
pub async fn audit_log(filter: AuditFilter) -> Result<Vec<AuditEventDto>, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.audit_events(&caller, filter).await)
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use super::{
        AuditEventDto, CreatePreview, CreateSpace, ShareDto, SpaceDto, SpaceListQuery, VolumeUsage,
    };
    use crate::api::ssr::Caller;
    use crate::error::ApiResult;
    use crate::ids::{SpaceId, TemplateId};
    use crate::lifecycle::Action;

    /// Seeing spaces: lists, one space, its history, what creating one would do.
    #[async_trait::async_trait]
    pub trait SpaceQueries: Send + Sync + 'static {
        async fn list_spaces(
            &self,
            caller: &Caller,
            query: SpaceListQuery,
        ) -> ApiResult<Vec<SpaceDto>>;
        async fn get_space(&self, caller: &Caller, id: &SpaceId) -> ApiResult<SpaceDto>;
        async fn space_history(
            &self,
            caller: &Caller,
            id: &SpaceId,
        ) -> ApiResult<Vec<AuditEventDto>>;
        async fn create_preview(
            &self,
            caller: &Caller,
            template_id: &TemplateId,
        ) -> ApiResult<CreatePreview>;
        /// What each of a visible space's volumes holds, measured now.
        async fn space_storage(&self, caller: &Caller, id: &SpaceId)
            -> ApiResult<Vec<VolumeUsage>>;
    }

    /// Making, starting, stopping and deleting spaces.
    #[async_trait::async_trait]
    pub trait SpaceLifecycle: Send + Sync + 'static {
        async fn create_space(&self, caller: &Caller, input: CreateSpace) -> ApiResult<SpaceDto>;
        async fn transition(
            &self,
            caller: &Caller,
            id: &SpaceId,
            action: Action,
        ) -> ApiResult<SpaceDto>;
        /// `None` when deleted at once; the space while it stops first.
        async fn delete_space(&self, caller: &Caller, id: &SpaceId) -> ApiResult<Option<SpaceDto>>;
    }

    /// Sharing a space with other users.
    #[async_trait::async_trait]
    pub trait Sharing: Send + Sync + 'static {
        async fn list_shares(&self, caller: &Caller, id: &SpaceId) -> ApiResult<Vec<ShareDto>>;
        /// `user` is a user id or a username.
        async fn share_space(
            &self,
            caller: &Caller,
            id: &SpaceId,
            user: &str,
        ) -> ApiResult<Vec<ShareDto>>;
        async fn revoke_share(
            &self,
            caller: &Caller,
            id: &SpaceId,
            user: &str,
        ) -> ApiResult<Vec<ShareDto>>;
    }
}
