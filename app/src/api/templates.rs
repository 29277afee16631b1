//! Templates: the blueprints spaces are made from.

use std::collections::BTreeMap;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::ids::{GroupId, TemplateId};
use crate::time::Timestamp;

#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeSpec {
    pub name: String,
    pub mount_path: String,
    pub size_gib: i64,
}

#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Feature {
    Terminal,
    Ssh,
    CodeServer,
    Vnc,
    PortForwarding,
    Tunnels,
    FileTransfer,
    VscodeTunnel,
}

#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateDto {
    pub id: TemplateId,
    pub name: String,
    pub description: String,
    pub image: String,
    pub command: Option<Vec<String>>,
    pub shell: String,
    pub env: BTreeMap<String, String>,
    pub compute_units: i64,
    /// Derived: the sum of the volumes' sizes.
    pub storage_units: i64,
    pub volumes: Vec<VolumeSpec>,
    pub features: Vec<Feature>,
    pub ports: Vec<u16>,
    pub allowed_groups: Vec<GroupId>,
    pub archived: bool,
    /// Its spaces run with Docker-in-Docker rights instead of the reduced default set (see
    /// the README); only admins make and change templates.
    #[serde(default)]
    pub privileged: bool,
    pub version: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTemplate {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub image: String,
    #[serde(default)]
    pub command: Option<Vec<String>>,
    #[serde(default)]
    pub shell: Option<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    pub compute_units: i64,
    #[serde(default)]
    pub volumes: Vec<VolumeSpec>,
    /// Absent: the web terminal only.
    #[serde(default)]
    pub features: Option<Vec<Feature>>,
    #[serde(default)]
    pub ports: Vec<u16>,
    /// Group ids allowed to use it; empty: everyone.
    #[serde(default)]
    pub allowed_groups: Vec<GroupId>,
    /// Run its spaces with Docker-in-Docker rights (more capabilities, no seccomp or
    /// AppArmor profile, setuid allowed) instead of the reduced default set.
    #[serde(default)]
    pub privileged: bool,
}

#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateTemplate {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub image: Option<String>,
    #[serde(
        default,
        deserialize_with = "super::serde_helpers::double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub command: Option<Option<Vec<String>>>,
    #[serde(default)]
    pub shell: Option<String>,
    #[serde(default)]
    pub env: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub compute_units: Option<i64>,
    #[serde(default)]
    pub volumes: Option<Vec<VolumeSpec>>,
    #[serde(default)]
    pub features: Option<Vec<Feature>>,
    #[serde(default)]
    pub ports: Option<Vec<u16>>,
    #[serde(default)]
    pub allowed_groups: Option<Vec<GroupId>>,
    #[serde(default)]
    pub archived: Option<bool>,
    /// Changes new spaces only: existing spaces keep the rights they were made with.
    #[serde(default)]
    pub privileged: Option<bool>,
}

/// Every template, archived ones included (admins only).
/// `GET /api/v1/templates`: the templates the caller may use (admins: all, archived ones
/// included), or with `usable` only those the caller may create spaces from now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::IntoParams))]
#[serde(deny_unknown_fields)]
pub struct TemplateListQuery {
    /// Only templates the caller may create a space from now (never archived ones, also for
    /// admins).
    #[serde(default)]
    pub usable: bool,
}

/// Every template (for admins; others get those they may use).
#[server]
pub async fn all_templates() -> Result<Vec<TemplateDto>, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(
        api.list_templates(&caller, TemplateListQuery::default())
            .await,
    )
}

#[server(name = CreateTemplateCall, input = server_fn::codec::Json)]
pub async fn create_template(input: CreateTemplate) -> Result<TemplateDto, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.create_template(&caller, input).await)
}

#[server(name = UpdateTemplateCall, input = server_fn::codec::Json)]
pub async fn update_template(
    id: TemplateId,
    input: UpdateTemplate,
) -> Result<TemplateDto, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.update_template(&caller, &id, input).await)
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use super::{CreateTemplate, TemplateDto, TemplateListQuery, UpdateTemplate};
    use crate::api::ssr::Caller;
    use crate::error::ApiResult;
    use crate::ids::TemplateId;

    #[async_trait::async_trait]
    pub trait TemplatesApi: Send + Sync + 'static {
        async fn list_templates(
            &self,
            caller: &Caller,
            query: TemplateListQuery,
        ) -> ApiResult<Vec<TemplateDto>>;
        async fn get_template(&self, caller: &Caller, id: &TemplateId) -> ApiResult<TemplateDto>;
        async fn create_template(
            &self,
            caller: &Caller,
            input: CreateTemplate,
        ) -> ApiResult<TemplateDto>;
        async fn update_template(
            &self,
            caller: &Caller,
            id: &TemplateId,
            input: UpdateTemplate,
        ) -> ApiResult<TemplateDto>;
        /// `None` when deleted; the archived template when spaces still use it.
        async fn delete_template(
            &self,
            caller: &Caller,
            id: &TemplateId,
        ) -> ApiResult<Option<TemplateDto>>;
    }
}
