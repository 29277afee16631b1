//! Templates: the blueprints spaces are made from.

use std::collections::BTreeMap;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

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
    pub id: String,
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
    pub allowed_groups: Vec<String>,
    pub archived: bool,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
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
    pub allowed_groups: Vec<String>,
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
    pub allowed_groups: Option<Vec<String>>,
    #[serde(default)]
    pub archived: Option<bool>,
}

/// Every template, archived ones included (admins only).
#[server]
pub async fn all_templates() -> Result<Vec<TemplateDto>, ApiError> {
    let parts = crate::api::ssr::request_parts()?;
    crate::api::ssr::answer(crate::api::ssr::backend()?.all_templates(&parts).await)
}

#[server(name = CreateTemplateCall, input = server_fn::codec::Json)]
pub async fn create_template(input: CreateTemplate) -> Result<TemplateDto, ApiError> {
    let parts = crate::api::ssr::request_parts()?;
    crate::api::ssr::answer(
        crate::api::ssr::backend()?
            .create_template(&parts, input)
            .await,
    )
}

#[server(name = UpdateTemplateCall, input = server_fn::codec::Json)]
pub async fn update_template(id: String, input: UpdateTemplate) -> Result<TemplateDto, ApiError> {
    let parts = crate::api::ssr::request_parts()?;
    crate::api::ssr::answer(
        crate::api::ssr::backend()?
            .update_template(&parts, id, input)
            .await,
    )
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use http::request::Parts;

    use super::{CreateTemplate, TemplateDto, UpdateTemplate};
    use crate::error::ApiError;

    /// Templates as the server implements them.
    #[async_trait::async_trait]
    pub trait TemplatesBackend: Send + Sync + 'static {
        async fn all_templates(&self, parts: &Parts) -> Result<Vec<TemplateDto>, ApiError>;
        async fn create_template(
            &self,
            parts: &Parts,
            input: CreateTemplate,
        ) -> Result<TemplateDto, ApiError>;
        async fn update_template(
            &self,
            parts: &Parts,
            id: String,
            input: UpdateTemplate,
        ) -> Result<TemplateDto, ApiError>;
    }
}
