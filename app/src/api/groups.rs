//! Groups and their quota contribution.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::auth::UserRef;
use super::serde_helpers::double_option;
use crate::error::ApiError;

#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupDto {
    pub id: String,
    pub name: String,
    pub description: String,
    pub max_spaces: Option<i64>,
    pub compute_units: Option<i64>,
    pub storage_units: Option<i64>,
    pub members: Vec<UserRef>,
    pub created_at: String,
}

#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateGroup {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Absent: contributes 0; `null`: unlimited.
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_spaces: Option<Option<i64>>,
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub compute_units: Option<Option<i64>>,
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub storage_units: Option<Option<i64>>,
}

#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateGroup {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_spaces: Option<Option<i64>>,
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub compute_units: Option<Option<i64>>,
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub storage_units: Option<Option<i64>>,
}

#[server]
pub async fn list_groups() -> Result<Vec<GroupDto>, ApiError> {
    let parts = crate::api::ssr::request_parts()?;
    crate::api::ssr::answer(crate::api::ssr::backend()?.list_groups(&parts).await)
}

#[server(name = CreateGroupCall, input = server_fn::codec::Json)]
pub async fn create_group(input: CreateGroup) -> Result<GroupDto, ApiError> {
    let parts = crate::api::ssr::request_parts()?;
    crate::api::ssr::answer(
        crate::api::ssr::backend()?
            .create_group(&parts, input)
            .await,
    )
}

#[server(name = UpdateGroupCall, input = server_fn::codec::Json)]
pub async fn update_group(id: String, input: UpdateGroup) -> Result<GroupDto, ApiError> {
    let parts = crate::api::ssr::request_parts()?;
    crate::api::ssr::answer(
        crate::api::ssr::backend()?
            .update_group(&parts, id, input)
            .await,
    )
}

/// Adds (`member = true`) or removes a user from a group.
#[server]
pub async fn set_membership(
    group_id: String,
    user_id: String,
    member: bool,
) -> Result<GroupDto, ApiError> {
    let parts = crate::api::ssr::request_parts()?;
    crate::api::ssr::answer(
        crate::api::ssr::backend()?
            .set_membership(&parts, group_id, user_id, member)
            .await,
    )
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use http::request::Parts;

    use super::{CreateGroup, GroupDto, UpdateGroup};
    use crate::error::ApiError;

    /// Groups as the server implements them (admins only).
    #[async_trait::async_trait]
    pub trait GroupsBackend: Send + Sync + 'static {
        async fn list_groups(&self, parts: &Parts) -> Result<Vec<GroupDto>, ApiError>;
        async fn create_group(
            &self,
            parts: &Parts,
            input: CreateGroup,
        ) -> Result<GroupDto, ApiError>;
        async fn update_group(
            &self,
            parts: &Parts,
            id: String,
            input: UpdateGroup,
        ) -> Result<GroupDto, ApiError>;
        async fn set_membership(
            &self,
            parts: &Parts,
            group_id: String,
            user_id: String,
            member: bool,
        ) -> Result<GroupDto, ApiError>;
    }
}
