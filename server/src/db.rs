//! Opening the database (creating a SQLite file when missing) and applying migrations.

use std::time::Duration;

use chrono::Utc;
use migrations::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, EntityTrait, Set};

use crate::entities::setting;
use crate::error::{ApiError, ApiResult};

pub async fn connect(url: &str) -> ApiResult<DatabaseConnection> {
    let url = if url.starts_with("sqlite:") && !url.contains("mode=") {
        let separator = if url.contains('?') { '&' } else { '?' };
        format!("{url}{separator}mode=rwc")
    } else {
        url.to_owned()
    };
    // SQLite runs each connection on a thread of its own and hands every statement over to
    // it: more connections than cores only add thread switches (WAL lets these few read at
    // once). PostgreSQL serves each connection in the server, so more help there.
    let sqlite = url.starts_with("sqlite:");
    let connections = if sqlite { 4 } else { 16 };
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(connections)
        // A SQLite connection is a local file that cannot drop; pinging it before every
        // statement was a second hand-over to its thread. A PostgreSQL one can (a restart),
        // so it is still checked.
        .test_before_acquire(!sqlite)
        .connect_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    let db = Database::connect(options)
        .await
        .map_err(|e| ApiError::unavailable(format!("cannot open the database: {e}")))?;
    if db.get_database_backend() == sea_orm::DatabaseBackend::Sqlite {
        // WAL lets readers run beside the one writer (it is a property of the file, so once
        // is enough; sqlx already sets a busy timeout and foreign keys on each connection).
        db.execute_unprepared("PRAGMA journal_mode=WAL").await?;
    }
    Migrator::up(&db, None)
        .await
        .map_err(|e| ApiError::internal(format!("migrations failed: {e}")))?;
    Ok(db)
}

/// Whether the database answers a trivial query.
pub async fn ping(db: &DatabaseConnection) -> Result<(), String> {
    db.ping()
        .await
        .map_err(|e| format!("database unreachable: {e}"))
}

/// The setting `key`, stored as `fresh` if it has no value yet. Another replica may have made
/// it first: then its value is the one.
pub async fn setting_made_once(
    db: &DatabaseConnection,
    key: &str,
    fresh: String,
) -> ApiResult<String> {
    let row = setting::ActiveModel {
        key: Set(key.into()),
        value: Set(fresh),
        created_at: Set(Utc::now()),
    };
    setting::Entity::insert(row)
        .on_conflict(
            sea_orm::sea_query::OnConflict::column(setting::Column::Key)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    setting::Entity::find_by_id(key)
        .one(db)
        .await?
        .map(|s| s.value)
        .ok_or_else(|| ApiError::internal(format!("the setting {key} vanished as it was made")))
}

/// The setting `key`, if it has a value.
pub async fn setting(db: &DatabaseConnection, key: &str) -> ApiResult<Option<String>> {
    Ok(setting::Entity::find_by_id(key)
        .one(db)
        .await?
        .map(|s| s.value))
}

/// Sets the setting `key` to `value` (made or replaced).
pub async fn set_setting(db: &DatabaseConnection, key: &str, value: &str) -> ApiResult<()> {
    let row = setting::ActiveModel {
        key: Set(key.into()),
        value: Set(value.into()),
        created_at: Set(Utc::now()),
    };
    setting::Entity::insert(row)
        .on_conflict(
            sea_orm::sea_query::OnConflict::column(setting::Column::Key)
                .update_column(setting::Column::Value)
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}
