//! Each user's tokens for git hosts (one per host), encrypted with the server's key file: the
//! API never returns them; a space's git asks for its owner's (see the server's
//! `services::spaces::credentials`).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(GitCredentials::Table)
                    .col(string(GitCredentials::Id).primary_key())
                    .col(string(GitCredentials::UserId))
                    .col(string(GitCredentials::Host))
                    .col(string(GitCredentials::Username))
                    // Nonce and ciphertext (AES-256-GCM), base64: never the token itself.
                    .col(text(GitCredentials::Secret))
                    .col(timestamp_with_time_zone(GitCredentials::CreatedAt))
                    .col(timestamp_with_time_zone_null(GitCredentials::LastUsedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(GitCredentials::Table, GitCredentials::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_git_credentials_user_host")
                    .table(GitCredentials::Table)
                    .col(GitCredentials::UserId)
                    .col(GitCredentials::Host)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(GitCredentials::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum GitCredentials {
    Table,
    Id,
    UserId,
    Host,
    Username,
    Secret,
    CreatedAt,
    LastUsedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}
