//! Notifications: what Hangar told each user in the app (the bell's list, newest kept), each
//! user's choice of channels per kind of event with their webhook (its secret encrypted with
//! the server's key file), and the deliveries by webhook and email waiting, done or given up
//! (durable, so that a restart resumes them).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Notifications::Table)
                    .col(pk_auto(Notifications::Id).big_integer())
                    .col(string(Notifications::UserId))
                    .col(string(Notifications::Kind))
                    .col(string(Notifications::Title))
                    .col(text(Notifications::Body))
                    .col(string_null(Notifications::Link))
                    .col(timestamp_with_time_zone(Notifications::CreatedAt))
                    .col(timestamp_with_time_zone_null(Notifications::ReadAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Notifications::Table, Notifications::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_notifications_user")
                    .table(Notifications::Table)
                    .col(Notifications::UserId)
                    .col(Notifications::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(NotificationSettings::Table)
                    .col(string(NotificationSettings::UserId).primary_key())
                    // JSON: the kinds the user chose for, each with its channels; the other
                    // kinds follow the admins' defaults.
                    .col(text(NotificationSettings::Choices))
                    .col(string_null(NotificationSettings::WebhookUrl))
                    // Nonce and ciphertext (AES-256-GCM), base64: never the secret itself.
                    .col(text_null(NotificationSettings::WebhookSecret))
                    .col(timestamp_with_time_zone(NotificationSettings::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(NotificationSettings::Table, NotificationSettings::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(NotificationDeliveries::Table)
                    .col(pk_auto(NotificationDeliveries::Id).big_integer())
                    .col(string(NotificationDeliveries::UserId))
                    // `webhook` or `email`.
                    .col(string(NotificationDeliveries::Channel))
                    .col(string(NotificationDeliveries::Kind))
                    // The webhook's URL or the email address, as they were when it was queued.
                    .col(text(NotificationDeliveries::Target))
                    // The JSON body (webhook) or the notification (email).
                    .col(text(NotificationDeliveries::Payload))
                    // `pending`, `delivered` or `failed` (given up).
                    .col(string(NotificationDeliveries::Status))
                    .col(integer(NotificationDeliveries::Attempts))
                    .col(timestamp_with_time_zone(NotificationDeliveries::NextAt))
                    .col(integer_null(NotificationDeliveries::LastCode))
                    .col(string_null(NotificationDeliveries::LastError))
                    .col(timestamp_with_time_zone(NotificationDeliveries::CreatedAt))
                    .col(timestamp_with_time_zone(NotificationDeliveries::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(
                                NotificationDeliveries::Table,
                                NotificationDeliveries::UserId,
                            )
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_notification_deliveries_due")
                    .table(NotificationDeliveries::Table)
                    .col(NotificationDeliveries::Status)
                    .col(NotificationDeliveries::NextAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(NotificationDeliveries::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(NotificationSettings::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Notifications::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Notifications {
    Table,
    Id,
    UserId,
    Kind,
    Title,
    Body,
    Link,
    CreatedAt,
    ReadAt,
}

#[derive(DeriveIden)]
enum NotificationSettings {
    Table,
    UserId,
    Choices,
    WebhookUrl,
    WebhookSecret,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum NotificationDeliveries {
    Table,
    Id,
    UserId,
    Channel,
    Kind,
    Target,
    Payload,
    Status,
    Attempts,
    NextAt,
    LastCode,
    LastError,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}
