//! Spaces that stop and start themselves: the template's idle stop, longest run, whether owners
//! may change them and its default schedule; each space's overrides, weekly schedule, `keep`
//! pin, last activity and what the automatic-stop loop needs to act exactly once; each user's
//! time zone (schedules are in it).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters a table one change at a time.
        let templates = [
            big_integer_null(Templates::IdleStopMinutes),
            big_integer_null(Templates::MaxRunMinutes),
            boolean(Templates::OwnersMayChangeStops)
                .default(false)
                .to_owned(),
            text_null(Templates::DefaultSchedule),
        ];
        for column in templates {
            let mut column = column;
            manager
                .alter_table(
                    Table::alter()
                        .table(Templates::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        let spaces = [
            big_integer_null(Spaces::IdleStopMinutes),
            big_integer_null(Spaces::MaxRunMinutes),
            text_null(Spaces::Schedule),
            boolean(Spaces::Keep).default(false).to_owned(),
            timestamp_with_time_zone_null(Spaces::LastActivityAt),
            string_null(Spaces::LastActivityKind),
            timestamp_with_time_zone_null(Spaces::KeepaliveUntil),
            timestamp_with_time_zone_null(Spaces::StopWarnedAt),
            timestamp_with_time_zone_null(Spaces::ScheduleSeenAt),
            text_null(Spaces::AutoNote),
            timestamp_with_time_zone_null(Spaces::RetentionWarnedAt),
        ];
        for column in spaces {
            let mut column = column;
            manager
                .alter_table(
                    Table::alter()
                        .table(Spaces::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(string_null(Users::TimeZone))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(Users::TimeZone)
                    .to_owned(),
            )
            .await?;
        for column in [
            Spaces::IdleStopMinutes,
            Spaces::MaxRunMinutes,
            Spaces::Schedule,
            Spaces::Keep,
            Spaces::LastActivityAt,
            Spaces::LastActivityKind,
            Spaces::KeepaliveUntil,
            Spaces::StopWarnedAt,
            Spaces::ScheduleSeenAt,
            Spaces::AutoNote,
            Spaces::RetentionWarnedAt,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Spaces::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for column in [
            Templates::IdleStopMinutes,
            Templates::MaxRunMinutes,
            Templates::OwnersMayChangeStops,
            Templates::DefaultSchedule,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Templates::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Templates {
    Table,
    IdleStopMinutes,
    MaxRunMinutes,
    OwnersMayChangeStops,
    DefaultSchedule,
}

#[derive(DeriveIden, Clone, Copy)]
enum Spaces {
    Table,
    IdleStopMinutes,
    MaxRunMinutes,
    Schedule,
    Keep,
    LastActivityAt,
    LastActivityKind,
    KeepaliveUntil,
    StopWarnedAt,
    ScheduleSeenAt,
    AutoNote,
    RetentionWarnedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    TimeZone,
}
