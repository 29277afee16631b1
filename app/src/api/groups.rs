//! Groups and their quota contribution.

use serde::{Deserialize, Serialize};

use super::auth::UserRef;
use super::serde_helpers::double_option;

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
    #[serde(default, deserialize_with = "double_option")]
    pub max_spaces: Option<Option<i64>>,
    #[serde(default, deserialize_with = "double_option")]
    pub compute_units: Option<Option<i64>>,
    #[serde(default, deserialize_with = "double_option")]
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
    #[serde(default, deserialize_with = "double_option")]
    pub max_spaces: Option<Option<i64>>,
    #[serde(default, deserialize_with = "double_option")]
    pub compute_units: Option<Option<i64>>,
    #[serde(default, deserialize_with = "double_option")]
    pub storage_units: Option<Option<i64>>,
}
