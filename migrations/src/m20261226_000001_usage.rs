//! What each running space used, sampled from the engine: a point a minute for a day, a
//! point an hour (rolled up from the minutes) for 90 days; dropped with the space.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(UsageSamples::Table)
                    .col(string(UsageSamples::SpaceId))
                    // `minute` or `hour`.
                    .col(string(UsageSamples::Resolution))
                    .col(timestamp_with_time_zone(UsageSamples::At))
                    // Thousandths of a CPU, on average over the point's span.
                    .col(big_integer(UsageSamples::CpuMillis))
                    .col(big_integer(UsageSamples::MemoryBytes))
                    .col(big_integer_null(UsageSamples::MemoryLimitBytes))
                    .col(big_integer(UsageSamples::Pids))
                    .col(big_integer(UsageSamples::NetRxBytes))
                    .col(big_integer(UsageSamples::NetTxBytes))
                    .primary_key(
                        Index::create()
                            .col(UsageSamples::SpaceId)
                            .col(UsageSamples::Resolution)
                            .col(UsageSamples::At),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_usage_samples_resolution_at")
                    .table(UsageSamples::Table)
                    .col(UsageSamples::Resolution)
                    .col(UsageSamples::At)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(UsageSamples::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum UsageSamples {
    Table,
    SpaceId,
    Resolution,
    At,
    CpuMillis,
    MemoryBytes,
    MemoryLimitBytes,
    Pids,
    NetRxBytes,
    NetTxBytes,
}
