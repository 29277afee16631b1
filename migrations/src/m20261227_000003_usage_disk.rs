//! A usage point's disk: bytes in use on the space's sized volumes (null where volume sizes
//! are not enforced, so nothing is measured).

use sea_orm_migration::{prelude::*, schema::*};

use crate::{add_columns, drop_columns};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let columns = vec![big_integer_null(UsageSamples::DiskBytes)];
        add_columns(manager, UsageSamples::Table, columns).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_columns(manager, UsageSamples::Table, vec![UsageSamples::DiskBytes]).await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum UsageSamples {
    Table,
    DiskBytes,
}
