//! Spaces built from their repository's `devcontainer.json`: what was read of it (the plan,
//! JSON), the image built from it, the build's outcome, when the once-only lifecycle commands
//! ran; templates that allow it.

use sea_orm_migration::{prelude::*, schema::*};

use crate::{add_columns, drop_columns};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let spaces = vec![
            string_null(Spaces::DevcontainerState),
            text_null(Spaces::DevcontainerError),
            text_null(Spaces::DevcontainerPlan),
            text_null(Spaces::DevcontainerImage),
            timestamp_with_time_zone_null(Spaces::DevcontainerCreatedAt),
        ];
        add_columns(manager, Spaces::Table, spaces).await?;
        let templates = vec![boolean(Templates::Devcontainer).default(false).to_owned()];
        add_columns(manager, Templates::Table, templates).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_columns(manager, Templates::Table, vec![Templates::Devcontainer]).await?;
        let spaces = vec![
            Spaces::DevcontainerState,
            Spaces::DevcontainerError,
            Spaces::DevcontainerPlan,
            Spaces::DevcontainerImage,
            Spaces::DevcontainerCreatedAt,
        ];
        drop_columns(manager, Spaces::Table, spaces).await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Spaces {
    Table,
    DevcontainerState,
    DevcontainerError,
    DevcontainerPlan,
    DevcontainerImage,
    DevcontainerCreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Templates {
    Table,
    Devcontainer,
}
