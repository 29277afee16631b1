//! The template flag that lets its spaces open raw sockets (`NET_RAW`, which spaces lack
//! by default), and its snapshot on each space.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters a table one change at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(Templates::Table)
                    .add_column(boolean(Templates::RawSockets).default(false))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Spaces::Table)
                    .add_column(boolean(Spaces::RawSockets).default(false))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Spaces::Table)
                    .drop_column(Spaces::RawSockets)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Templates::Table)
                    .drop_column(Templates::RawSockets)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Templates {
    Table,
    RawSockets,
}

#[derive(DeriveIden)]
enum Spaces {
    Table,
    RawSockets,
}
