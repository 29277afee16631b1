//! Operators' commands: an online backup of the SQLite database and its restore, a password
//! reset for a locked-out admin, and `doctor`, which checks what Hangar needs and says what to
//! fix.

mod doctor;

use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::Utc;
use clap::Subcommand;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, EntityTrait, QueryFilter, Set};

use crate::auth::password;
use crate::config::Config;
use crate::entities::user;

pub use doctor::doctor;

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Set a new password for a user (and re-activate them), ending their sessions: for an
    /// admin who cannot sign in. Prints a random password unless one is given on stdin.
    ResetPassword {
        /// The username.
        username: String,
        /// Read the new password from standard input.
        #[arg(long)]
        password_stdin: bool,
        #[arg(
            long,
            env = "HANGAR_DATABASE_URL",
            default_value = "sqlite://hangar.db"
        )]
        database_url: String,
    },
}

/// What an operator command reports when it cannot do its job.
pub type OpsResult = Result<(), String>;

/// The SQLite file a `sqlite://` URL names (without its query).
fn sqlite_path(url: &str) -> Result<PathBuf, String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"));
    match rest {
        Some(rest) => Ok(PathBuf::from(rest.split('?').next().unwrap_or(rest))),
        None if url.starts_with("postgres") => Err(
            "this is a PostgreSQL database: back it up with pg_dump (e.g. `pg_dump -Fc -f hangar.dump \"$URL\"`) and restore it with pg_restore; Hangar's own backup is for SQLite".into(),
        ),
        None => Err(format!("`{url}` is not a database URL Hangar knows")),
    }
}

async fn open_existing(path: &Path) -> Result<DatabaseConnection, String> {
    if !path.is_file() {
        return Err(format!("there is no database at {}", path.display()));
    }
    Database::connect(format!("sqlite://{}?mode=ro", path.display()))
        .await
        .map_err(|e| format!("cannot open {}: {e}", path.display()))
}

async fn integrity_of(db: &DatabaseConnection) -> Result<(), String> {
    let row = db
        .query_one(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "PRAGMA integrity_check",
        ))
        .await
        .map_err(|e| format!("integrity check failed to run: {e}"))?;
    let verdict: String = row
        .and_then(|r| r.try_get_by_index(0).ok())
        .unwrap_or_default();
    if verdict == "ok" {
        Ok(())
    } else {
        Err(format!("the database is damaged: {verdict}"))
    }
}

/// `hangar backup <file>`: a consistent copy of the SQLite database while Hangar serves
/// (`VACUUM INTO` reads one snapshot; writers go on), checked before it is reported.
pub async fn backup(database_url: &str, target: &Path) -> OpsResult {
    let source = sqlite_path(database_url)?;
    if target.exists() {
        return Err(format!(
            "{} exists already: give a new file name (nothing was overwritten)",
            target.display()
        ));
    }
    let started = Instant::now();
    let db = open_existing(&source).await?;
    let quoted = target.display().to_string().replace('\'', "''");
    db.execute_unprepared(&format!("VACUUM INTO '{quoted}'"))
        .await
        .map_err(|e| format!("the backup failed: {e}"))?;
    db.close().await.ok();
    let copy = open_existing(target).await?;
    integrity_of(&copy).await?;
    copy.close().await.ok();
    let size = std::fs::metadata(target).map(|m| m.len()).unwrap_or(0);
    println!(
        "Backed up {} to {} ({:.1} MB, {} ms); it passed an integrity check.",
        source.display(),
        target.display(),
        size as f64 / 1e6,
        started.elapsed().as_millis()
    );
    Ok(())
}

/// `hangar restore <file>`: puts a backup in place of the SQLite database (Hangar must be
/// stopped). The current database is kept beside it, renamed, never deleted.
pub async fn restore(database_url: &str, backup: &Path) -> OpsResult {
    let target = sqlite_path(database_url)?;
    let copy = open_existing(backup).await?;
    integrity_of(&copy).await?;
    copy.close().await.ok();
    let staged = target.with_extension("db.restoring");
    std::fs::copy(backup, &staged)
        .map_err(|e| format!("cannot copy the backup next to the database: {e}"))?;
    std::fs::File::open(&staged)
        .and_then(|f| f.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", staged.display()))?;
    let mut kept = None;
    if target.exists() {
        let aside = target.with_extension(format!(
            "db.before-restore-{}",
            Utc::now().format("%Y%m%dT%H%M%S")
        ));
        std::fs::rename(&target, &aside)
            .map_err(|e| format!("cannot move the current database aside: {e}"))?;
        kept = Some(aside);
    }
    // The write-ahead log of the old file must not be replayed into the restored one.
    for suffix in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{suffix}", target.display()));
        if side.exists() {
            let aside = PathBuf::from(format!(
                "{}{suffix}",
                kept.as_deref().unwrap_or(&target).display()
            ));
            std::fs::rename(&side, &aside)
                .map_err(|e| format!("cannot move {} aside: {e}", side.display()))?;
        }
    }
    std::fs::rename(&staged, &target)
        .map_err(|e| format!("cannot put the backup in place: {e}"))?;
    println!("Restored {} from {}.", target.display(), backup.display());
    if let Some(kept) = kept {
        println!("The database it replaced is kept as {}.", kept.display());
    }
    Ok(())
}

pub async fn admin(command: AdminCommand) -> OpsResult {
    match command {
        AdminCommand::ResetPassword {
            username,
            password_stdin,
            database_url,
        } => reset_password(&database_url, &username, password_stdin).await,
    }
}

async fn reset_password(database_url: &str, username: &str, from_stdin: bool) -> OpsResult {
    use sea_orm::{ActiveModelTrait, ColumnTrait};
    let db = crate::db::connect(database_url)
        .await
        .map_err(|e| e.to_string())?;
    let found = user::Entity::find()
        .filter(user::Column::Username.eq(username.trim().to_ascii_lowercase()))
        .one(&db)
        .await
        .map_err(|e| format!("cannot read the users: {e}"))?
        .ok_or_else(|| format!("there is no user `{username}`"))?;
    let (plain, generated) = if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the password: {e}"))?;
        (line.trim_end_matches(['\n', '\r']).to_owned(), false)
    } else {
        (password::random_password(), true)
    };
    password::check_new_password(&plain).map_err(|e| e.message)?;
    let hash = password::hash_password(plain.clone())
        .await
        .map_err(|e| e.message)?;
    let id = found.id.clone();
    let mut model: user::ActiveModel = found.into();
    model.password_hash = Set(hash);
    model.active = Set(true);
    model
        .update(&db)
        .await
        .map_err(|e| format!("cannot save the password: {e}"))?;
    let ended = crate::auth::session_store::DbSessionStore::delete_user_sessions(&db, &id, None)
        .await
        .map_err(|e| format!("cannot end the sessions: {e}"))?;
    println!("The password of {username} was reset; {ended} session(s) ended.");
    if generated {
        println!("New password (shown once): {plain}");
    }
    println!(
        "A running Hangar may still refuse sign-ins for a while after many failures (the limit \
         is per server and per client); restarting it clears that."
    );
    Ok(())
}

pub async fn run_doctor(config: Config) -> OpsResult {
    doctor(&config).await
}
