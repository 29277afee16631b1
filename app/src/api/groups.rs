//! Groups and their quota contribution.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::auth::UserRef;
use super::page::{PageQuery, Paged};
use super::quota::body_with_quota;
use crate::error::ApiError;
use crate::ids::{GroupId, UserId};
use crate::time::Timestamp;

#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupDto {
    pub id: GroupId,
    pub name: String,
    pub description: String,
    pub max_spaces: Option<i64>,
    pub compute_units: Option<i64>,
    pub storage_units: Option<i64>,
    #[serde(default)]
    pub max_tunnels: Option<i64>,
    pub members: Vec<UserRef>,
    /// The members whose membership came from the identity provider's groups claim (replaced
    /// at each of their sign-ins); the others were added by hand.
    #[serde(default)]
    pub idp_members: Vec<UserId>,
    pub created_at: Timestamp,
}

body_with_quota! {
/// A new group (admins only).
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateGroup {
    /// 1 to 64 characters, not all blank.
    #[cfg_attr(
        feature = "ssr",
        schema(min_length = 1, max_length = 64, pattern = "[^ \\t\\n\\f\\r]")
    )]
    pub name: String,
    /// At most 1000 characters.
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(max_length = 1000))]
    pub description: Option<String>,
}
absent: "Absent: contributes 0; `null`: unlimited."
}

body_with_quota! {
/// Changes to a group (admins only); absent fields stay as they are.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateGroup {
    #[serde(default)]
    #[cfg_attr(
        feature = "ssr",
        schema(min_length = 1, max_length = 64, pattern = "[^ \\t\\n\\f\\r]")
    )]
    pub name: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(max_length = 1000))]
    pub description: Option<String>,
}
}

/// A page of groups, by name (admins only).
#[server(input = server_fn::codec::Json)]
pub async fn list_groups(page: PageQuery) -> Result<Vec<GroupDto>, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.list_groups(&caller, page).await)
}

#[server(name = CreateGroupCall, input = server_fn::codec::Json)]
pub async fn create_group(input: CreateGroup) -> Result<GroupDto, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.create_group(&caller, input).await)
}

#[server(name = UpdateGroupCall, input = server_fn::codec::Json)]
pub async fn update_group(id: GroupId, input: UpdateGroup) -> Result<GroupDto, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.update_group(&caller, &id, input).await)
}

/// Adds the user to the group (`member`) or removes them.
#[server]
pub async fn set_membership(
    group_id: GroupId,
    user_id: UserId,
    member: bool,
) -> Result<GroupDto, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(
        api.set_membership(&caller, &group_id, &user_id, member)
            .await,
    )
}

impl Paged for GroupDto {
    fn cursor(&self) -> String {
        self.id.to_string()
    }
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use super::{CreateGroup, GroupDto, UpdateGroup};
    use crate::api::page::PageQuery;
    use crate::api::ssr::Caller;
    use crate::error::ApiResult;
    use crate::ids::{GroupId, UserId};

    /// Groups and their members (admins only).
    #[async_trait::async_trait]
    pub trait GroupsApi: Send + Sync + 'static {
        /// A page of groups, by name.
        async fn list_groups(&self, caller: &Caller, page: PageQuery) -> ApiResult<Vec<GroupDto>>;
        async fn get_group(&self, caller: &Caller, id: &GroupId) -> ApiResult<GroupDto>;
        async fn create_group(&self, caller: &Caller, input: CreateGroup) -> ApiResult<GroupDto>;
        async fn update_group(
            &self,
            caller: &Caller,
            id: &GroupId,
            input: UpdateGroup,
        ) -> ApiResult<GroupDto>;
        async fn delete_group(&self, caller: &Caller, id: &GroupId) -> ApiResult<()>;
        async fn set_membership(
            &self,
            caller: &Caller,
            group_id: &GroupId,
            user_id: &UserId,
            member: bool,
        ) -> ApiResult<GroupDto>;
    }
}
