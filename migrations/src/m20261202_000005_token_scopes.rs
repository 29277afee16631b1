//! API tokens get scopes (what they may do). Tokens made before may read and write, but no
//! longer manage credentials: a leaked one cannot mint tokens that outlive its revocation.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ApiTokens::Table)
                    .add_column(string(ApiTokens::Scopes).default("read,write"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ApiTokens::Table)
                    .drop_column(ApiTokens::Scopes)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum ApiTokens {
    Table,
    Scopes,
}
