//! A point of a running space's use of CPU, memory, processes, network and disk, sampled from
//! the engine (see `services::usage`).

use sea_orm::entity::prelude::*;

use app::ids::SpaceId;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "usage_samples")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub space_id: SpaceId,
    /// `minute` or `hour`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub resolution: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub at: DateTimeUtc,
    /// Thousandths of a CPU, on average.
    pub cpu_millis: i64,
    pub memory_bytes: i64,
    pub memory_limit_bytes: Option<i64>,
    pub pids: i64,
    /// Received and sent since the container started.
    pub net_rx_bytes: i64,
    pub net_tx_bytes: i64,
    /// In use on its sized volumes; None where volume sizes are not enforced.
    pub disk_bytes: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
