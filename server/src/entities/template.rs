//! A blueprint for spaces: image, units, volumes, features. Lists are stored as JSON text.

use sea_orm::entity::prelude::*;

use app::ids::TemplateId;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "templates")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: TemplateId,
    #[sea_orm(unique)]
    pub name: String,
    #[sea_orm(column_type = "Text")]
    pub description: String,
    pub image: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub command: Option<String>,
    pub shell: String,
    #[sea_orm(column_type = "Text")]
    pub env: String,
    pub compute_units: i64,
    pub storage_units: i64,
    #[sea_orm(column_type = "Text")]
    pub volumes: String,
    #[sea_orm(column_type = "Text")]
    pub features: String,
    #[sea_orm(column_type = "Text")]
    pub ports: String,
    #[sea_orm(column_type = "Text")]
    pub allowed_groups: String,
    pub archived: bool,
    /// Its spaces run with Docker-in-Docker rights (see `runtime::docker`).
    pub privileged: bool,
    /// Its spaces may open raw sockets (`NET_RAW`).
    pub raw_sockets: bool,
    pub version: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// Its spaces stop after this many minutes without activity; None: never.
    pub idle_stop_minutes: Option<i64>,
    /// Its spaces stop after running this many minutes in one go; None: never.
    pub max_run_minutes: Option<i64>,
    /// Owners may set shorter stops (never longer, never off) for their spaces.
    pub owners_may_change_stops: bool,
    /// The schedule spaces get until their owner sets one (JSON of
    /// `app::api::autostop::Schedule`).
    #[sea_orm(column_type = "Text", nullable)]
    pub default_schedule: Option<String>,
    /// The repository its spaces clone unless their creator names another (JSON of
    /// `app::api::repos::RepositoryInput`).
    #[sea_orm(column_type = "Text", nullable)]
    pub repository: Option<String>,
    /// The URL prefixes its spaces' repositories must start with (JSON list; None: any).
    #[sea_orm(column_type = "Text", nullable)]
    pub repository_prefixes: Option<String>,
    /// Its spaces are built from their repository's `devcontainer.json`, when it has one.
    pub devcontainer: bool,
    /// Its spaces' `devcontainer.json` may set run options (`privileged`, `capAdd`, tmpfs
    /// `mounts`, `runArgs`); snapshotted on each space.
    pub devcontainer_run_options: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
