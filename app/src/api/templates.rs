//! Templates: the blueprints spaces are made from.

use std::collections::BTreeMap;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::page::{PageQuery, Paged};
use crate::error::ApiError;
use crate::ids::{GroupId, TemplateId};
use crate::time::Timestamp;

/// A volume of a template: made for each space, kept across stops.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeSpec {
    /// 2 to 32 characters: lowercase letters, digits and `-`, starting with a letter; unique
    /// in the template.
    #[cfg_attr(feature = "ssr", schema(pattern = "^[a-z][a-z0-9-]{1,31}$"))]
    pub name: String,
    /// An absolute path below `/`, without `..`, at most 255 characters; unique in the
    /// template.
    #[cfg_attr(
        feature = "ssr",
        schema(min_length = 2, max_length = 255, pattern = "^/(?:[^.]|\\.[^.])*\\.?$")
    )]
    pub mount_path: String,
    /// Size in GiB (storage units), 1 to 10000.
    #[cfg_attr(feature = "ssr", schema(minimum = 1, maximum = 10000))]
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
    /// docs/spaces.md); only admins make and change templates.
    #[serde(default)]
    pub privileged: bool,
    /// Its spaces may open raw sockets (`NET_RAW`: packet capture, crafted packets, `arping`);
    /// without it they cannot, and `ping` uses ICMP datagram sockets. Privileged templates
    /// have raw sockets anyway.
    #[serde(default)]
    pub raw_sockets: bool,
    pub version: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Automatic stops of its spaces and their default schedule (unlike the rest, these apply
    /// to its existing spaces too).
    #[serde(default)]
    pub autostop: super::autostop::TemplateAutostop,
    /// The repository its spaces clone unless their creator names another.
    #[serde(default)]
    pub repository: Option<super::repos::RepositoryInput>,
    /// Its spaces may only clone repositories whose URL starts with one of these (empty: any).
    #[serde(default)]
    pub repository_prefixes: Vec<String>,
    /// Its spaces made from a repository are built from the repository's `devcontainer.json`
    /// when it has one (image or Dockerfile, lifecycle commands, ports; see
    /// docs/devcontainer.md). Compute, volumes, features and rights stay the template's.
    #[serde(default)]
    pub devcontainer: bool,
    /// The repository's `devcontainer.json` may set run options: `privileged` (this
    /// template's Docker-in-Docker rights), `capAdd`, tmpfs `mounts`, and `runArgs` of those
    /// kinds (see docs/devcontainer.md). Snapshotted on each space, as `privileged` is.
    #[serde(default)]
    pub devcontainer_run_options: bool,
}

/// A new template (admins only).
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTemplate {
    /// 1 to 64 characters, not all blank; unique.
    #[cfg_attr(
        feature = "ssr",
        schema(min_length = 1, max_length = 64, pattern = "[^ \\t\\n\\f\\r]")
    )]
    pub name: String,
    /// At most 1000 characters.
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(max_length = 1000))]
    pub description: Option<String>,
    /// A Docker image reference (printable ASCII without spaces, at most 255 characters).
    #[cfg_attr(feature = "ssr", schema(pattern = "^[!-~]{1,255}$"))]
    pub image: String,
    /// The container's command, 1 to 64 words; absent or null: an idle shell.
    #[serde(default)]
    #[cfg_attr(
        feature = "ssr",
        schema(value_type = Option<Vec<crate::api::schema::CommandWord>>, min_items = 1, max_items = 64)
    )]
    pub command: Option<Vec<String>>,
    /// The terminal's shell, an absolute path (at most 255 characters); absent: `/bin/sh`.
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(max_length = 255, pattern = "^/"))]
    pub shell: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(schema_with = crate::api::schema::env))]
    pub env: BTreeMap<String, String>,
    /// 0 to 1024.
    #[cfg_attr(feature = "ssr", schema(minimum = 0, maximum = 1024))]
    pub compute_units: i64,
    /// At most 16.
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(max_items = 16))]
    pub volumes: Vec<VolumeSpec>,
    /// Absent: the web terminal only.
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(max_items = 8))]
    pub features: Option<Vec<Feature>>,
    /// At most 64.
    #[serde(default)]
    #[cfg_attr(
        feature = "ssr",
        schema(value_type = Vec<crate::api::schema::Port>, max_items = 64)
    )]
    pub ports: Vec<u16>,
    /// Ids of the groups allowed to use it (at most 100); empty: everyone.
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(max_items = 100))]
    pub allowed_groups: Vec<GroupId>,
    /// Run its spaces with Docker-in-Docker rights (more capabilities, no seccomp or
    /// AppArmor profile, setuid allowed) instead of the reduced default set.
    #[serde(default)]
    pub privileged: bool,
    /// Let its spaces open raw sockets (`NET_RAW`), which spaces lack by default: with them a
    /// space can forge packets on the network it shares with other spaces (Hangar pins each
    /// space's address to its own container, so it cannot take a neighbour's traffic).
    #[serde(default)]
    pub raw_sockets: bool,
    /// Automatic stops of its spaces (absent: none).
    #[serde(default)]
    pub autostop: Option<super::autostop::TemplateAutostop>,
    /// A repository its spaces clone unless their creator names another (absent: none).
    #[serde(default)]
    pub repository: Option<super::repos::RepositoryInput>,
    /// Its spaces may only clone repositories whose URL starts with one of these (at most 20,
    /// each 1 to 500 characters); empty: any.
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(max_items = 20))]
    pub repository_prefixes: Vec<String>,
    /// Build its spaces from their repository's `devcontainer.json` when it has one.
    #[serde(default)]
    pub devcontainer: bool,
    /// Let the repository's `devcontainer.json` ask for `privileged`, `capAdd`, tmpfs
    /// `mounts` and `runArgs` of those kinds; without it they are listed as ignored.
    #[serde(default)]
    pub devcontainer_run_options: bool,
}

/// Changes to a template (admins only); absent fields stay as they are. Spaces keep what
/// they were made with.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateTemplate {
    #[serde(default)]
    #[cfg_attr(
        feature = "ssr",
        schema(min_length = 1, max_length = 64, pattern = "[^ \\t\\n\\f\\r]")
    )]
    pub name: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(max_length = 1000))]
    pub description: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(pattern = "^[!-~]{1,255}$"))]
    pub image: Option<String>,
    /// Absent: unchanged; null: an idle shell.
    #[serde(
        default,
        deserialize_with = "super::serde_helpers::double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(
        feature = "ssr",
        schema(value_type = Option<Vec<crate::api::schema::CommandWord>>, min_items = 1, max_items = 64)
    )]
    pub command: Option<Option<Vec<String>>>,
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(max_length = 255, pattern = "^/"))]
    pub shell: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(schema_with = crate::api::schema::env_change))]
    pub env: Option<BTreeMap<String, String>>,
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(minimum = 0, maximum = 1024))]
    pub compute_units: Option<i64>,
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(max_items = 16))]
    pub volumes: Option<Vec<VolumeSpec>>,
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(max_items = 8))]
    pub features: Option<Vec<Feature>>,
    #[serde(default)]
    #[cfg_attr(
        feature = "ssr",
        schema(value_type = Option<Vec<crate::api::schema::Port>>, max_items = 64)
    )]
    pub ports: Option<Vec<u16>>,
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(max_items = 100))]
    pub allowed_groups: Option<Vec<GroupId>>,
    #[serde(default)]
    pub archived: Option<bool>,
    /// Changes new spaces only: existing spaces keep the rights they were made with.
    #[serde(default)]
    pub privileged: Option<bool>,
    /// Changes new spaces only, likewise.
    #[serde(default)]
    pub raw_sockets: Option<bool>,
    /// Replaces its automatic stops; applies to its existing spaces too.
    #[serde(default)]
    pub autostop: Option<super::autostop::TemplateAutostop>,
    /// Absent: unchanged; null: none. New spaces only.
    #[serde(
        default,
        deserialize_with = "super::serde_helpers::double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "ssr", schema(value_type = Option<super::repos::RepositoryInput>))]
    pub repository: Option<Option<super::repos::RepositoryInput>>,
    /// Replaces the allowed prefixes (empty: any). New spaces only.
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(max_items = 20))]
    pub repository_prefixes: Option<Vec<String>>,
    /// Build spaces from their repository's `devcontainer.json`; applies at their next
    /// setup or rebuild.
    #[serde(default)]
    pub devcontainer: Option<bool>,
    /// Changes new spaces only: existing spaces keep the rights they were made with.
    #[serde(default)]
    pub devcontainer_run_options: Option<bool>,
}

/// `GET /api/v1/templates`: the templates the caller may use (admins: all, archived ones
/// included), or with `usable` only those the caller may create spaces from now; by name, a
/// page at a time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "ssr", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct TemplateListQuery {
    /// Only templates the caller may create a space from now (never archived ones, also for
    /// admins).
    #[serde(default)]
    pub usable: bool,
    /// Most items to answer, 1 to 500 (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ssr", param(minimum = 1, maximum = 500))]
    pub limit: Option<u32>,
    /// The id of the last template of the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

impl TemplateListQuery {
    pub fn page(&self) -> PageQuery {
        PageQuery {
            limit: self.limit,
            after: self.after.clone(),
        }
    }
}

impl Paged for TemplateDto {
    fn cursor(&self) -> String {
        self.id.to_string()
    }
}

/// A page of templates (for admins every one; others get those they may use).
#[server(input = server_fn::codec::Json)]
pub async fn all_templates(page: PageQuery) -> Result<Vec<TemplateDto>, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    let query = TemplateListQuery {
        usable: false,
        limit: page.limit,
        after: page.after,
    };
    crate::api::ssr::answer(api.list_templates(&caller, query).await)
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
