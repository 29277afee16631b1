//! What each user's spaces held of their quota over time (spaces, compute units running,
//! storage units), sampled with the spaces' usage: a point a minute for a day, an hour for 90
//! days; dropped with the user. A group's is the sum of its members'.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(QuotaSamples::Table)
                    .col(string(QuotaSamples::UserId))
                    // `minute` or `hour`.
                    .col(string(QuotaSamples::Resolution))
                    .col(timestamp_with_time_zone(QuotaSamples::At))
                    .col(big_integer(QuotaSamples::Spaces))
                    .col(big_integer(QuotaSamples::ComputeUnits))
                    .col(big_integer(QuotaSamples::StorageUnits))
                    .primary_key(
                        Index::create()
                            .col(QuotaSamples::UserId)
                            .col(QuotaSamples::Resolution)
                            .col(QuotaSamples::At),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(QuotaSamples::Table, QuotaSamples::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_quota_samples_resolution_at")
                    .table(QuotaSamples::Table)
                    .col(QuotaSamples::Resolution)
                    .col(QuotaSamples::At)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(QuotaSamples::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum QuotaSamples {
    Table,
    UserId,
    Resolution,
    At,
    Spaces,
    ComputeUnits,
    StorageUnits,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}
