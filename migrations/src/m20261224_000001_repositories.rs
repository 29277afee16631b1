//! Spaces from a repository: the repository (and its clone's outcome) and the owner's dotfiles
//! installed at a space's first start, with what they printed; templates' preset repository and
//! allowed repository prefixes; each user's dotfiles repository.

use sea_orm_migration::{prelude::*, schema::*};

use crate::{add_columns, drop_columns};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let spaces = vec![
            text_null(Spaces::RepositoryUrl),
            text_null(Spaces::RepositoryBranch),
            text_null(Spaces::RepositoryFolder),
            string_null(Spaces::CloneState),
            text_null(Spaces::CloneError),
            text_null(Spaces::DotfilesUrl),
            string_null(Spaces::DotfilesState),
            text_null(Spaces::DotfilesError),
            text_null(Spaces::SetupLog),
            timestamp_with_time_zone_null(Spaces::SetUpAt),
        ];
        add_columns(manager, Spaces::Table, spaces).await?;
        let templates = vec![
            text_null(Templates::Repository),
            text_null(Templates::RepositoryPrefixes),
        ];
        add_columns(manager, Templates::Table, templates).await?;
        add_columns(manager, Users::Table, vec![text_null(Users::DotfilesUrl)]).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_columns(manager, Users::Table, vec![Users::DotfilesUrl]).await?;
        let templates = vec![Templates::Repository, Templates::RepositoryPrefixes];
        drop_columns(manager, Templates::Table, templates).await?;
        let spaces = vec![
            Spaces::RepositoryUrl,
            Spaces::RepositoryBranch,
            Spaces::RepositoryFolder,
            Spaces::CloneState,
            Spaces::CloneError,
            Spaces::DotfilesUrl,
            Spaces::DotfilesState,
            Spaces::DotfilesError,
            Spaces::SetupLog,
            Spaces::SetUpAt,
        ];
        drop_columns(manager, Spaces::Table, spaces).await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Spaces {
    Table,
    RepositoryUrl,
    RepositoryBranch,
    RepositoryFolder,
    CloneState,
    CloneError,
    DotfilesUrl,
    DotfilesState,
    DotfilesError,
    SetupLog,
    SetUpAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Templates {
    Table,
    Repository,
    RepositoryPrefixes,
}

#[derive(DeriveIden, Clone, Copy)]
enum Users {
    Table,
    DotfilesUrl,
}
