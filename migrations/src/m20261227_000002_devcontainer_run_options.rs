//! The template flag that lets a repository's `devcontainer.json` set run options
//! (`privileged`, `capAdd`, tmpfs `mounts`, `runArgs`; off by default), and its snapshot on
//! each space: a `devcontainer_run_options` column on both tables.

use sea_orm_migration::{prelude::*, schema::*};

/// The tables that get the column: templates, and spaces (the snapshot).
const TABLES: [&str; 2] = ["templates", "spaces"];
const COLUMN: &str = "devcontainer_run_options";

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in TABLES {
            crate::add_columns(
                manager,
                Alias::new(table),
                vec![boolean(Alias::new(COLUMN)).default(false).to_owned()],
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in TABLES.into_iter().rev() {
            crate::drop_columns(manager, Alias::new(table), vec![Alias::new(COLUMN)]).await?;
        }
        Ok(())
    }
}
