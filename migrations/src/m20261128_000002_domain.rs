//! Groups and memberships, templates, spaces, shares, audit events, API tokens and SSH keys.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn fk(
    from_table: impl IntoIden + 'static,
    from_col: impl IntoIden + 'static,
    to_table: impl IntoIden + 'static,
    to_col: impl IntoIden + 'static,
    on_delete: ForeignKeyAction,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(from_table, from_col)
        .to(to_table, to_col)
        .on_delete(on_delete)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Groups::Table)
                    .col(string(Groups::Id).primary_key())
                    .col(string_uniq(Groups::Name))
                    .col(text(Groups::Description))
                    .col(big_integer_null(Groups::MaxSpaces))
                    .col(big_integer_null(Groups::ComputeUnits))
                    .col(big_integer_null(Groups::StorageUnits))
                    .col(timestamp_with_time_zone(Groups::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(GroupMembers::Table)
                    .col(string(GroupMembers::GroupId))
                    .col(string(GroupMembers::UserId))
                    .primary_key(
                        Index::create()
                            .col(GroupMembers::GroupId)
                            .col(GroupMembers::UserId),
                    )
                    .foreign_key(&mut fk(
                        GroupMembers::Table,
                        GroupMembers::GroupId,
                        Groups::Table,
                        Groups::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut fk(
                        GroupMembers::Table,
                        GroupMembers::UserId,
                        Users::Table,
                        Users::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_group_members_user")
                    .table(GroupMembers::Table)
                    .col(GroupMembers::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Templates::Table)
                    .col(string(Templates::Id).primary_key())
                    .col(string_uniq(Templates::Name))
                    .col(text(Templates::Description))
                    .col(string(Templates::Image))
                    .col(text_null(Templates::Command))
                    .col(string(Templates::Shell))
                    .col(text(Templates::Env))
                    .col(big_integer(Templates::ComputeUnits))
                    .col(big_integer(Templates::StorageUnits))
                    .col(text(Templates::Volumes))
                    .col(text(Templates::Features))
                    .col(text(Templates::Ports))
                    .col(text(Templates::AllowedGroups))
                    .col(boolean(Templates::Archived))
                    .col(big_integer(Templates::Version))
                    .col(timestamp_with_time_zone(Templates::CreatedAt))
                    .col(timestamp_with_time_zone(Templates::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Spaces::Table)
                    .col(string(Spaces::Id).primary_key())
                    .col(string(Spaces::OwnerId))
                    .col(string(Spaces::Name))
                    .col(string_null(Spaces::TemplateId))
                    .col(string(Spaces::TemplateName))
                    .col(big_integer(Spaces::ComputeUnits))
                    .col(big_integer(Spaces::StorageUnits))
                    .col(string(Spaces::Image))
                    .col(text_null(Spaces::Command))
                    .col(string(Spaces::Shell))
                    .col(text(Spaces::Env))
                    .col(text(Spaces::Volumes))
                    .col(text(Spaces::Features))
                    .col(string(Spaces::State))
                    .col(string_null(Spaces::AfterStop))
                    .col(string_null(Spaces::ContainerId))
                    .col(text_null(Spaces::LastError))
                    .col(timestamp_with_time_zone(Spaces::CreatedAt))
                    .col(timestamp_with_time_zone(Spaces::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Spaces::StartedAt))
                    .col(timestamp_with_time_zone_null(Spaces::StoppedAt))
                    .col(timestamp_with_time_zone_null(Spaces::DeletedAt))
                    .foreign_key(&mut fk(
                        Spaces::Table,
                        Spaces::OwnerId,
                        Users::Table,
                        Users::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut fk(
                        Spaces::Table,
                        Spaces::TemplateId,
                        Templates::Table,
                        Templates::Id,
                        ForeignKeyAction::SetNull,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_spaces_owner")
                    .table(Spaces::Table)
                    .col(Spaces::OwnerId)
                    .to_owned(),
            )
            .await?;
        // Names are unique per owner among live spaces only: a tombstone frees its name.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX idx_spaces_owner_name_live ON spaces (owner_id, name) WHERE state <> 'deleted'",
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Shares::Table)
                    .col(string(Shares::SpaceId))
                    .col(string(Shares::UserId))
                    .col(timestamp_with_time_zone(Shares::GrantedAt))
                    .col(string(Shares::GrantedBy))
                    .primary_key(Index::create().col(Shares::SpaceId).col(Shares::UserId))
                    .foreign_key(&mut fk(
                        Shares::Table,
                        Shares::SpaceId,
                        Spaces::Table,
                        Spaces::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut fk(
                        Shares::Table,
                        Shares::UserId,
                        Users::Table,
                        Users::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_shares_user")
                    .table(Shares::Table)
                    .col(Shares::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AuditEvents::Table)
                    .col(pk_auto(AuditEvents::Id).big_integer())
                    .col(timestamp_with_time_zone(AuditEvents::At))
                    .col(string_null(AuditEvents::ActorId))
                    .col(string(AuditEvents::Actor))
                    .col(string(AuditEvents::Action))
                    .col(string(AuditEvents::Target))
                    .col(string(AuditEvents::Outcome))
                    .col(text(AuditEvents::Details))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_audit_at")
                    .table(AuditEvents::Table)
                    .col(AuditEvents::At)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ApiTokens::Table)
                    .col(string(ApiTokens::Id).primary_key())
                    .col(string(ApiTokens::UserId))
                    .col(string(ApiTokens::Name))
                    .col(string_uniq(ApiTokens::TokenHash))
                    .col(string(ApiTokens::Prefix))
                    .col(timestamp_with_time_zone(ApiTokens::CreatedAt))
                    .col(timestamp_with_time_zone_null(ApiTokens::ExpiresAt))
                    .col(timestamp_with_time_zone_null(ApiTokens::LastUsedAt))
                    .foreign_key(&mut fk(
                        ApiTokens::Table,
                        ApiTokens::UserId,
                        Users::Table,
                        Users::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SshKeys::Table)
                    .col(string(SshKeys::Id).primary_key())
                    .col(string(SshKeys::UserId))
                    .col(string(SshKeys::Name))
                    .col(text(SshKeys::PublicKey))
                    .col(string_uniq(SshKeys::Fingerprint))
                    .col(timestamp_with_time_zone(SshKeys::CreatedAt))
                    .foreign_key(&mut fk(
                        SshKeys::Table,
                        SshKeys::UserId,
                        Users::Table,
                        Users::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            SshKeys::Table.into_iden(),
            ApiTokens::Table.into_iden(),
            AuditEvents::Table.into_iden(),
            Shares::Table.into_iden(),
            Spaces::Table.into_iden(),
            Templates::Table.into_iden(),
            GroupMembers::Table.into_iden(),
            Groups::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
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
    Name,
    Description,
    MaxSpaces,
    ComputeUnits,
    StorageUnits,
    CreatedAt,
}

#[derive(DeriveIden)]
enum GroupMembers {
    Table,
    GroupId,
    UserId,
}

#[derive(DeriveIden)]
enum Templates {
    Table,
    Id,
    Name,
    Description,
    Image,
    Command,
    Shell,
    Env,
    ComputeUnits,
    StorageUnits,
    Volumes,
    Features,
    Ports,
    AllowedGroups,
    Archived,
    Version,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Spaces {
    Table,
    Id,
    OwnerId,
    Name,
    TemplateId,
    TemplateName,
    ComputeUnits,
    StorageUnits,
    Image,
    Command,
    Shell,
    Env,
    Volumes,
    Features,
    State,
    AfterStop,
    ContainerId,
    LastError,
    CreatedAt,
    UpdatedAt,
    StartedAt,
    StoppedAt,
    DeletedAt,
}

#[derive(DeriveIden)]
enum Shares {
    Table,
    SpaceId,
    UserId,
    GrantedAt,
    GrantedBy,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Id,
    At,
    ActorId,
    Actor,
    Action,
    Target,
    Outcome,
    Details,
}

#[derive(DeriveIden)]
enum ApiTokens {
    Table,
    Id,
    UserId,
    Name,
    TokenHash,
    Prefix,
    CreatedAt,
    ExpiresAt,
    LastUsedAt,
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
