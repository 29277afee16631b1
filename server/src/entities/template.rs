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
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
