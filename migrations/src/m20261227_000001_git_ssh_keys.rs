//! Each user's SSH key for git hosts (at most one), made by Hangar: the public half is shown
//! to be added to the git host; the private half is kept encrypted with the server's key file
//! and given only to git in its owner's spaces (see the server's `services::git_credentials`).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(GitSshKeys::Table)
                    // One key per user: the user's id is the key's.
                    .col(string(GitSshKeys::UserId).primary_key())
                    .col(text(GitSshKeys::PublicKey))
                    .col(string(GitSshKeys::Fingerprint))
                    // Nonce and ciphertext (AES-256-GCM), base64: never the private key itself.
                    .col(text(GitSshKeys::Secret))
                    .col(timestamp_with_time_zone(GitSshKeys::CreatedAt))
                    .col(timestamp_with_time_zone_null(GitSshKeys::LastUsedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(GitSshKeys::Table, GitSshKeys::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(GitSshKeys::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum GitSshKeys {
    Table,
    UserId,
    PublicKey,
    Fingerprint,
    Secret,
    CreatedAt,
    LastUsedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}
