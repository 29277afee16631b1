//! Tunnels (public links to a port of a space) and the tunnel quota: `max_tunnels` on users
//! (own value, 3 unless set) and on groups (their contribution, 0 unless set), like the other
//! quota dimensions (null = unlimited).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Tunnels::Table)
                    .col(string(Tunnels::Id).primary_key())
                    .col(string(Tunnels::SpaceId))
                    .col(string(Tunnels::OwnerId))
                    .col(integer(Tunnels::Port))
                    // SHA-256 of the link's secret: the secret itself is shown once.
                    .col(string_uniq(Tunnels::SecretHash))
                    .col(string(Tunnels::Hint))
                    .col(string(Tunnels::CreatedBy))
                    .col(timestamp_with_time_zone(Tunnels::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Tunnels::Table, Tunnels::SpaceId)
                            .to(Spaces::Table, Spaces::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Tunnels::Table, Tunnels::OwnerId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("idx_tunnels_owner", Tunnels::OwnerId),
            ("idx_tunnels_space", Tunnels::SpaceId),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Tunnels::Table)
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }
        // One column per statement: SQLite adds one at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(big_integer_null(Users::MaxTunnels).default(3))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Groups::Table)
                    .add_column(big_integer_null(Groups::MaxTunnels).default(0))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Groups::Table)
                    .drop_column(Groups::MaxTunnels)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(Users::MaxTunnels)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(Tunnels::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Tunnels {
    Table,
    Id,
    SpaceId,
    OwnerId,
    Port,
    SecretHash,
    Hint,
    CreatedBy,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Spaces {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    MaxTunnels,
}

#[derive(DeriveIden)]
enum Groups {
    Table,
    MaxTunnels,
}
