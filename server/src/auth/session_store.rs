//! tower-sessions storage in Hangar's own database (SQLite or PostgreSQL), through sea-orm.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};

use app::ids::UserId;

use super::SESSION_USER_ID;
use crate::entities::session;

/// A session's expiry is pushed back on every request (expiry on inactivity); writing it each
/// time would make every page view a database write. It is written when the data changed or
/// the stored expiry is this much behind, so a session may end up to this much early.
const EXPIRY_SLACK_SECS: i64 = 3600;

/// Sessions remembered as last read or written, at most (then forgotten all at once).
const KNOWN_SESSIONS: usize = 50_000;

/// What this process last read or wrote for a session: its data and stored expiry.
type Known = (HashMap<String, serde_json::Value>, i64);

#[derive(Debug, Clone)]
pub struct DbSessionStore {
    db: DatabaseConnection,
    known: Arc<Mutex<HashMap<String, Known>>>,
}

fn backend(error: impl std::fmt::Display) -> session_store::Error {
    session_store::Error::Backend(error.to_string())
}

fn to_chrono(at: time::OffsetDateTime) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(at.unix_timestamp(), at.nanosecond()).unwrap_or_default()
}

impl DbSessionStore {
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            known: Arc::default(),
        }
    }

    fn known(&self) -> std::sync::MutexGuard<'_, HashMap<String, Known>> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn remember(&self, record: &Record) {
        let mut known = self.known();
        if known.len() >= KNOWN_SESSIONS {
            known.clear();
        }
        known.insert(
            record.id.to_string(),
            (record.data.clone(), record.expiry_date.unix_timestamp()),
        );
    }

    /// Whether the database already holds this data with an expiry close enough.
    fn stored_already(&self, record: &Record) -> bool {
        let expires = record.expiry_date.unix_timestamp();
        self.known()
            .get(&record.id.to_string())
            .is_some_and(|(data, stored)| {
                *data == record.data && (*stored..*stored + EXPIRY_SLACK_SECS).contains(&expires)
            })
    }

    fn row(record: &Record) -> session_store::Result<session::ActiveModel> {
        let data = serde_json::to_string(&record.data)
            .map_err(|e| session_store::Error::Encode(e.to_string()))?;
        Ok(session::ActiveModel {
            id: Set(record.id.to_string()),
            data: Set(data),
            expires_at: Set(to_chrono(record.expiry_date)),
        })
    }

    /// Ends every session of `user_id` but `except` (the caller's own, when they keep it);
    /// returns how many. Whoever held them is signed out at their next request, and their
    /// live channels close when the access watch hears of it.
    pub async fn delete_user_sessions(
        db: &DatabaseConnection,
        user_id: &UserId,
        except: Option<&str>,
    ) -> Result<u64, sea_orm::DbErr> {
        // The record's data is this JSON object (see `row`): the user id is in it as written
        // by serde_json, without spaces. Ids are Hangar's own UUIDs, with no LIKE wildcard.
        let marker = serde_json::to_string(&serde_json::json!({ SESSION_USER_ID: user_id }))
            .map_err(|e| sea_orm::DbErr::Custom(e.to_string()))?;
        let inner = marker.trim_start_matches('{').trim_end_matches('}');
        let mut delete =
            session::Entity::delete_many().filter(session::Column::Data.contains(inner));
        if let Some(keep) = except {
            delete = delete.filter(session::Column::Id.ne(keep));
        }
        Ok(delete.exec(db).await?.rows_affected)
    }

    /// Removes sessions whose expiry has passed; returns how many.
    pub async fn delete_expired(&self) -> Result<u64, sea_orm::DbErr> {
        let result = session::Entity::delete_many()
            .filter(session::Column::ExpiresAt.lt(Utc::now()))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected)
    }
}

#[async_trait]
impl SessionStore for DbSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        // A fresh id may collide with a stored one (vanishingly rarely): pick another.
        loop {
            let inserted = session::Entity::insert(Self::row(record)?)
                .on_conflict(
                    OnConflict::column(session::Column::Id)
                        .do_nothing()
                        .to_owned(),
                )
                .exec_without_returning(&self.db)
                .await
                .map_err(backend)?;
            if inserted == 1 {
                self.remember(record);
                return Ok(());
            }
            record.id = Id::default();
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        if self.stored_already(record) {
            return Ok(());
        }
        session::Entity::insert(Self::row(record)?)
            .on_conflict(
                OnConflict::column(session::Column::Id)
                    .update_columns([session::Column::Data, session::Column::ExpiresAt])
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await
            .map_err(backend)?;
        self.remember(record);
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let Some(row) = session::Entity::find_by_id(id.to_string())
            .filter(session::Column::ExpiresAt.gt(Utc::now()))
            .one(&self.db)
            .await
            .map_err(backend)?
        else {
            return Ok(None);
        };
        let data = serde_json::from_str(&row.data)
            .map_err(|e| session_store::Error::Decode(e.to_string()))?;
        let expiry_date = time::OffsetDateTime::from_unix_timestamp(row.expires_at.timestamp())
            .map_err(|e| session_store::Error::Decode(e.to_string()))?;
        let record = Record {
            id: *id,
            data,
            expiry_date,
        };
        self.remember(&record);
        Ok(Some(record))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.known().remove(&id.to_string());
        session::Entity::delete_by_id(id.to_string())
            .exec(&self.db)
            .await
            .map_err(backend)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::sea_query::Expr;

    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    async fn stored_expiry(
        db: &DatabaseConnection,
        id: &Id,
    ) -> Result<i64, Box<dyn std::error::Error>> {
        let row = session::Entity::find_by_id(id.to_string())
            .one(db)
            .await?
            .ok_or("the session row is gone")?;
        Ok(row.expires_at.timestamp())
    }

    #[tokio::test]
    async fn an_unchanged_session_is_not_written_again_until_its_expiry_lags() -> TestResult {
        let dir = tempfile::tempdir()?;
        let url = format!("sqlite://{}", dir.path().join("s.db").display());
        let db = crate::db::connect(&url).await?;
        let store = DbSessionStore::new(db.clone());
        let now = time::OffsetDateTime::now_utc();
        let mut record = Record {
            id: Id::default(),
            data: HashMap::from([("user".to_owned(), serde_json::json!("u1"))]),
            expiry_date: now + time::Duration::days(7),
        };
        store.create(&mut record).await?;
        // Mark the stored row, to see whether a save writes it.
        let marker = Utc::now() + chrono::Duration::days(100);
        session::Entity::update_many()
            .col_expr(session::Column::ExpiresAt, Expr::value(marker))
            .exec(&db)
            .await?;

        // The next page view pushes the expiry back a little: nothing is written.
        record.expiry_date = now + time::Duration::days(7) + time::Duration::minutes(5);
        store.save(&record).await?;
        assert_eq!(stored_expiry(&db, &record.id).await?, marker.timestamp());

        // Once it lags by more than the slack, it is written.
        record.expiry_date = now + time::Duration::days(7) + time::Duration::hours(2);
        store.save(&record).await?;
        assert_eq!(
            stored_expiry(&db, &record.id).await?,
            record.expiry_date.unix_timestamp()
        );

        // Changed data is written at once.
        record
            .data
            .insert("user".to_owned(), serde_json::json!("u2"));
        store.save(&record).await?;
        let loaded = DbSessionStore::new(db.clone())
            .load(&record.id)
            .await?
            .ok_or("the session did not load")?;
        assert_eq!(loaded.data["user"], "u2");
        Ok(())
    }
}
