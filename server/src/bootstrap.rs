//! First run: an empty database gets its first admin.

use chrono::Utc;
use sea_orm::{DatabaseConnection, EntityTrait, PaginatorTrait, Set};

use crate::auth::password;
use crate::config::Config;
use crate::entities::user;
use crate::error::{AppError, AppResult};

/// Creates the first admin when there is no user at all. Returns the generated password when
/// one was made up (it is shown once, by the caller).
pub async fn ensure_first_admin(
    db: &DatabaseConnection,
    config: &Config,
) -> AppResult<Option<String>> {
    if user::Entity::find().count(db).await? > 0 {
        return Ok(None);
    }
    let username = config.admin_user.trim().to_ascii_lowercase();
    crate::validate::username(&username)
        .map_err(|e| AppError::bad_request(format!("HANGAR_ADMIN_USER: {e}")))?;
    let (plain, generated) = match &config.admin_password {
        Some(given) => {
            password::check_new_password(given)
                .map_err(|e| AppError::bad_request(format!("HANGAR_ADMIN_PASSWORD: {e}")))?;
            (given.clone(), false)
        }
        None => (password::random_password(), true),
    };
    let hash = password::hash_password(plain.clone()).await?;
    let admin = user::ActiveModel {
        id: Set(uuid::Uuid::new_v4().to_string()),
        username: Set(username.clone()),
        display_name: Set("Administrator".into()),
        email: Set(String::new()),
        password_hash: Set(hash),
        role: Set(user::ROLE_ADMIN.into()),
        active: Set(true),
        max_spaces: Set(None),
        compute_units: Set(None),
        storage_units: Set(None),
        created_at: Set(Utc::now()),
    };
    // Another replica may have won the race to create it: that is fine.
    let inserted = user::Entity::insert(admin)
        .on_conflict(
            sea_orm::sea_query::OnConflict::column(user::Column::Username)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    if inserted == 0 {
        return Ok(None);
    }
    tracing::info!(%username, "created the first admin");
    Ok(generated.then_some(plain))
}
