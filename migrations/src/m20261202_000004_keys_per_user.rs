//! SSH keys are unique per user instead of across users: with a unique fingerprint, a member
//! could register someone else's public key first and so block them from adding it. The
//! fingerprint keeps an index of its own (the SSH gateway finds keys by it).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

const PER_USER: &str = "idx_ssh_keys_user_fingerprint";
const BY_FINGERPRINT: &str = "idx_ssh_keys_fingerprint";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        match manager.get_database_backend() {
            // SQLite cannot drop a column's UNIQUE: the table is made again without it.
            sea_orm::DatabaseBackend::Sqlite => rebuild_without_unique(manager).await?,
            _ => {
                // PostgreSQL's name for the column constraint of `fingerprint ... UNIQUE`.
                manager
                    .get_connection()
                    .execute_unprepared(
                        "ALTER TABLE ssh_keys DROP CONSTRAINT IF EXISTS ssh_keys_fingerprint_key",
                    )
                    .await?;
            }
        }
        manager
            .create_index(
                Index::create()
                    .name(PER_USER)
                    .table(SshKeys::Table)
                    .col(SshKeys::UserId)
                    .col(SshKeys::Fingerprint)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(BY_FINGERPRINT)
                    .table(SshKeys::Table)
                    .col(SshKeys::Fingerprint)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in [PER_USER, BY_FINGERPRINT] {
            manager
                .drop_index(Index::drop().name(name).table(SshKeys::Table).to_owned())
                .await?;
        }
        // Fails while two users hold the same key, as it must.
        let unique = match manager.get_database_backend() {
            // As the table was made (its rebuild on the way up drops this index).
            sea_orm::DatabaseBackend::Sqlite => {
                "CREATE UNIQUE INDEX idx_ssh_keys_fingerprint_unique ON ssh_keys (fingerprint)"
            }
            _ => {
                "ALTER TABLE ssh_keys ADD CONSTRAINT ssh_keys_fingerprint_key UNIQUE (fingerprint)"
            }
        };
        manager
            .get_connection()
            .execute_unprepared(unique)
            .await
            .map(drop)
    }
}

/// One statement string, so that it runs on one connection of the pool, as one transaction
/// (SQLite migrations run outside a transaction, and each statement may otherwise go to
/// another connection).
async fn rebuild_without_unique(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let backend = manager.get_database_backend();
    let create = backend.build(
        &Table::create()
            .table(SshKeysNew::Table)
            .col(string(SshKeys::Id).primary_key())
            .col(string(SshKeys::UserId))
            .col(string(SshKeys::Name))
            .col(text(SshKeys::PublicKey))
            .col(string(SshKeys::Fingerprint))
            .col(timestamp_with_time_zone(SshKeys::CreatedAt))
            .foreign_key(
                ForeignKey::create()
                    .name("fk_ssh_keys_user_id")
                    .from(SshKeysNew::Table, SshKeys::UserId)
                    .to(Users::Table, Users::Id)
                    .on_delete(ForeignKeyAction::Cascade),
            )
            .to_owned(),
    );
    let script = format!(
        "BEGIN IMMEDIATE; {}; \
         INSERT INTO ssh_keys_new (id, user_id, name, public_key, fingerprint, created_at) \
         SELECT id, user_id, name, public_key, fingerprint, created_at FROM ssh_keys; \
         DROP TABLE ssh_keys; \
         ALTER TABLE ssh_keys_new RENAME TO ssh_keys; \
         COMMIT;",
        create.sql
    );
    manager
        .get_connection()
        .execute_unprepared(&script)
        .await
        .map(drop)
}

#[derive(DeriveIden)]
enum SshKeys {
    Table,
    Id,
    UserId,
    Name,
    PublicKey,
    Fingerprint,
    CreatedAt,
}

#[derive(DeriveIden)]
enum SshKeysNew {
    Table,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}
