//! Which features of their spaces' templates people may use: rules set by admins for
//! everyone, per group and per user (allow or deny one feature). A user's or group's rules go
//! with them.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(FeatureRules::Table)
                    .col(string(FeatureRules::Id).primary_key())
                    // `everyone`, `group:<id>` or `user:<id>`: one rule per subject and feature.
                    .col(string(FeatureRules::Subject))
                    .col(string(FeatureRules::Feature))
                    .col(string_null(FeatureRules::UserId))
                    .col(string_null(FeatureRules::GroupId))
                    .col(boolean(FeatureRules::Allowed))
                    .col(string(FeatureRules::UpdatedBy))
                    .col(timestamp_with_time_zone(FeatureRules::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(FeatureRules::Table, FeatureRules::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(FeatureRules::Table, FeatureRules::GroupId)
                            .to(Groups::Table, Groups::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_feature_rules_subject_feature")
                    .table(FeatureRules::Table)
                    .col(FeatureRules::Subject)
                    .col(FeatureRules::Feature)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(FeatureRules::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum FeatureRules {
    Table,
    Id,
    Subject,
    Feature,
    UserId,
    GroupId,
    Allowed,
    UpdatedBy,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Groups {
    Table,
    Id,
}
