//! An SSH key belongs to one account: its fingerprint is unique across users. The SSH gateway
//! knows who is connecting by the key alone, so a key held by two accounts would sign one of
//! them in as the other (a member who registers someone else's public key first receives
//! their logins). Unique per user (`m20261202_000004`) let exactly that happen.
//!
//! Keys already held by more than one account are removed from every one of them, each
//! removal recorded in the audit log (`ssh_key.remove` by `hangar`, naming the user and why).
//! Keeping the oldest registration instead would be a guess: the first to register a public
//! key is not necessarily its owner (registering another's key first is the very attack), and
//! a wrong guess would keep handing one user's logins to another. Removed, nobody signs in as
//! anyone else; each user adds their key again (the first to do so has it, the others are told
//! to generate a new key), and an admin sees in the audit log whom it concerned. The way down
//! cannot bring the removed keys back.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend, Statement};

#[derive(DeriveMigrationName)]
pub struct Migration;

const ONE_ACCOUNT: &str = "idx_ssh_keys_fingerprint_one_account";
/// The indexes of `m20261202_000004`, which this one replaces.
const PER_USER: &str = "idx_ssh_keys_user_fingerprint";
const BY_FINGERPRINT: &str = "idx_ssh_keys_fingerprint";

/// Why the audit log says a key was removed.
const REASON: &str = "this key was registered to more than one account, and an SSH key now \
                      signs in as one account only: it was removed from all of them; add it \
                      again, or generate a new key if it is taken";

/// A JSON string literal of `text`.
fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let conn = manager.get_connection();
        let backend = manager.get_database_backend();
        let shared = conn
            .query_all(Statement::from_string(
                backend,
                "SELECT k.id, k.fingerprint, k.name, u.username FROM ssh_keys k \
                 JOIN users u ON u.id = k.user_id \
                 WHERE k.fingerprint IN \
                   (SELECT fingerprint FROM ssh_keys GROUP BY fingerprint HAVING COUNT(*) > 1) \
                 ORDER BY k.fingerprint, k.created_at, k.id",
            ))
            .await?;
        // The time of the removal, as each database stores the audit log's timestamps.
        let now = match backend {
            // As sqlx writes a `DateTime<Utc>` (RFC 3339), so that times sort as text.
            DatabaseBackend::Sqlite => "strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')",
            _ => "CURRENT_TIMESTAMP",
        };
        for row in shared {
            let id: String = row.try_get("", "id")?;
            let fingerprint: String = row.try_get("", "fingerprint")?;
            let name: String = row.try_get("", "name")?;
            let username: String = row.try_get("", "username")?;
            let details = format!(
                "{{\"user\":{},\"key\":{},\"reason\":{}}}",
                json_string(&username),
                json_string(&name),
                json_string(REASON)
            );
            manager
                .exec_stmt(
                    Query::insert()
                        .into_table(AuditEvents::Table)
                        .columns([
                            AuditEvents::At,
                            AuditEvents::ActorId,
                            AuditEvents::Actor,
                            AuditEvents::Action,
                            AuditEvents::Target,
                            AuditEvents::Outcome,
                            AuditEvents::Details,
                        ])
                        .values([
                            Expr::cust(now),
                            Expr::value(Value::String(None)),
                            Expr::value("hangar"),
                            Expr::value("ssh_key.remove"),
                            Expr::value(format!("ssh_key:{fingerprint}")),
                            Expr::value("success"),
                            Expr::value(details),
                        ])
                        .map_err(|e| DbErr::Migration(e.to_string()))?
                        .to_owned(),
                )
                .await?;
            manager
                .exec_stmt(
                    Query::delete()
                        .from_table(SshKeys::Table)
                        .and_where(Expr::col(SshKeys::Id).eq(id))
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name(ONE_ACCOUNT)
                    .table(SshKeys::Table)
                    .col(SshKeys::Fingerprint)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // Both are covered by the unique index now.
        for name in [PER_USER, BY_FINGERPRINT] {
            manager
                .drop_index(Index::drop().name(name).table(SshKeys::Table).to_owned())
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
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
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name(ONE_ACCOUNT)
                    .table(SshKeys::Table)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum SshKeys {
    Table,
    Id,
    UserId,
    Fingerprint,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    At,
    ActorId,
    Actor,
    Action,
    Target,
    Outcome,
    Details,
}
