//! Hangar's database schema as sea-orm migrations, run at start-up on SQLite and PostgreSQL.

pub use sea_orm_migration::prelude::*;

mod m20261128_000001_users_and_sessions;
mod m20261128_000002_domain;
mod m20261201_000001_settings;
mod m20261202_000002_tunnels;
mod m20261202_000003_feature_permissions;
mod m20261202_000004_keys_per_user;
mod m20261202_000005_token_scopes;
mod m20261210_000001_privileged;
mod m20261220_000001_raw_sockets;
mod m20261221_000001_one_account_per_key;
mod m20261222_000001_identity_provider;
mod m20261223_000001_autostop;
mod m20261224_000001_repositories;
mod m20261224_000002_git_credentials;
mod m20261225_000001_devcontainer;
mod m20261226_000001_usage;
mod m20261227_000001_git_ssh_keys;
mod m20261227_000002_devcontainer_run_options;
mod m20261227_000003_usage_disk;
mod m20261227_000004_quota_samples;
mod m20261228_000001_notifications;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261128_000001_users_and_sessions::Migration),
            Box::new(m20261128_000002_domain::Migration),
            Box::new(m20261201_000001_settings::Migration),
            Box::new(m20261202_000002_tunnels::Migration),
            Box::new(m20261202_000003_feature_permissions::Migration),
            Box::new(m20261202_000004_keys_per_user::Migration),
            Box::new(m20261202_000005_token_scopes::Migration),
            Box::new(m20261210_000001_privileged::Migration),
            Box::new(m20261220_000001_raw_sockets::Migration),
            Box::new(m20261221_000001_one_account_per_key::Migration),
            Box::new(m20261222_000001_identity_provider::Migration),
            Box::new(m20261223_000001_autostop::Migration),
            Box::new(m20261224_000001_repositories::Migration),
            Box::new(m20261224_000002_git_credentials::Migration),
            Box::new(m20261225_000001_devcontainer::Migration),
            Box::new(m20261226_000001_usage::Migration),
            Box::new(m20261227_000001_git_ssh_keys::Migration),
            Box::new(m20261227_000002_devcontainer_run_options::Migration),
            Box::new(m20261227_000003_usage_disk::Migration),
            Box::new(m20261227_000004_quota_samples::Migration),
            Box::new(m20261228_000001_notifications::Migration),
        ]
    }
}

/// Adds columns to a table, one statement each: SQLite alters a table one change at a time.
pub(crate) async fn add_columns<T: IntoIden + Clone + 'static>(
    manager: &SchemaManager<'_>,
    table: T,
    columns: Vec<ColumnDef>,
) -> Result<(), DbErr> {
    for mut column in columns {
        manager
            .alter_table(
                Table::alter()
                    .table(table.clone())
                    .add_column(&mut column)
                    .to_owned(),
            )
            .await?;
    }
    Ok(())
}

/// Drops columns of a table, one statement each.
pub(crate) async fn drop_columns<T: IntoIden + Clone + 'static, C: IntoIden + 'static>(
    manager: &SchemaManager<'_>,
    table: T,
    columns: Vec<C>,
) -> Result<(), DbErr> {
    for column in columns {
        manager
            .alter_table(
                Table::alter()
                    .table(table.clone())
                    .drop_column(column)
                    .to_owned(),
            )
            .await?;
    }
    Ok(())
}
