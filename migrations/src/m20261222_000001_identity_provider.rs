//! Sign-in through an OpenID Connect provider: which provider identity (issuer and subject)
//! each account is linked to, where each group membership came from (an admin's hand or the
//! provider's groups claim), and the one-time grants that hand a command line its token after
//! a browser sign-in.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(UserIdentities::Table)
                    .col(string(UserIdentities::Issuer))
                    .col(string(UserIdentities::Subject))
                    .col(string(UserIdentities::UserId))
                    .col(timestamp_with_time_zone(UserIdentities::CreatedAt))
                    .col(timestamp_with_time_zone_null(UserIdentities::LastSignInAt))
                    // A subject is unique per issuer: one provider identity, one account.
                    .primary_key(
                        Index::create()
                            .col(UserIdentities::Issuer)
                            .col(UserIdentities::Subject),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(UserIdentities::Table, UserIdentities::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // And one account, one identity per provider.
        manager
            .create_index(
                Index::create()
                    .name("idx_user_identities_user")
                    .table(UserIdentities::Table)
                    .col(UserIdentities::UserId)
                    .col(UserIdentities::Issuer)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // Memberships made before were all set by hand.
        manager
            .alter_table(
                Table::alter()
                    .table(GroupMembers::Table)
                    .add_column(string(GroupMembers::Source).default("admin"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(LoginGrants::Table)
                    .col(string(LoginGrants::CodeHash).primary_key())
                    .col(string(LoginGrants::UserId))
                    .col(string(LoginGrants::Challenge))
                    .col(timestamp_with_time_zone(LoginGrants::ExpiresAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(LoginGrants::Table, LoginGrants::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(LoginGrants::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(GroupMembers::Table)
                    .drop_column(GroupMembers::Source)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(UserIdentities::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum UserIdentities {
    Table,
    Issuer,
    Subject,
    UserId,
    CreatedAt,
    LastSignInAt,
}

#[derive(DeriveIden)]
enum GroupMembers {
    Table,
    Source,
}

#[derive(DeriveIden)]
enum LoginGrants {
    Table,
    CodeHash,
    UserId,
    Challenge,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}
