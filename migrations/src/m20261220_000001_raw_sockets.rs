//! The template flag that lets its spaces open raw sockets (`NET_RAW`, which spaces lack
//! by default), and its snapshot on each space: a `raw_sockets` column on both tables.

use sea_orm_migration::{prelude::*, schema::*};

/// The tables that get the column: templates, and spaces (the snapshot).
const TABLES: [&str; 2] = ["templates", "spaces"];
const COLUMN: &str = "raw_sockets";

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One table per statement: SQLite alters a table one change at a time.
        for table in TABLES {
            let add = Table::alter()
                .table(Alias::new(table))
                .add_column(boolean(Alias::new(COLUMN)).default(false))
                .to_owned();
            manager.alter_table(add).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in TABLES.into_iter().rev() {
            let drop = Table::alter()
                .table(Alias::new(table))
                .drop_column(Alias::new(COLUMN))
                .to_owned();
            manager.alter_table(drop).await?;
        }
        Ok(())
    }
}
