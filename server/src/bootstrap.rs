//! First run: an empty database gets its first admin.

use chrono::Utc;
use sea_orm::{DatabaseConnection, EntityTrait, PaginatorTrait, Set};

use crate::auth::password;
use crate::config::Config;
use crate::entities::{setting, template, user};
use crate::error::{ApiError, ApiResult};

/// Creates the first admin when there is no user at all. Returns the generated password when
/// one was made up (it is shown once, by the caller).
pub async fn ensure_first_admin(
    db: &DatabaseConnection,
    config: &Config,
) -> ApiResult<Option<String>> {
    if user::Entity::find().count(db).await? > 0 {
        return Ok(None);
    }
    let username = config.admin_user.trim().to_ascii_lowercase();
    crate::validate::username(&username)
        .map_err(|e| ApiError::bad_request(format!("HANGAR_ADMIN_USER: {e}")))?;
    let (plain, generated) = match &config.admin_password {
        Some(given) => {
            password::check_new_password(given)
                .map_err(|e| ApiError::bad_request(format!("HANGAR_ADMIN_PASSWORD: {e}")))?;
            (given.clone(), false)
        }
        None => (password::random_password(), true),
    };
    let hash = password::hash_password(plain.clone()).await?;
    let admin = user::ActiveModel {
        id: Set(crate::services::new_id()),
        username: Set(username.clone()),
        display_name: Set("Administrator".into()),
        email: Set(String::new()),
        password_hash: Set(hash),
        role: Set(app::api::auth::Role::Admin),
        active: Set(true),
        max_spaces: Set(None),
        compute_units: Set(None),
        storage_units: Set(None),
        max_tunnels: Set(None),
        created_at: Set(Utc::now()),
        time_zone: Set(None),
        dotfiles_url: Set(None),
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

/// The image of the default template, built locally from Debian's packages.
pub const DEFAULT_IMAGE: &str = "hangar/default:bookworm";
/// The image of the full template: the default one with code-server and a desktop.
pub const FULL_IMAGE: &str = "hangar/full:bookworm";

/// A template made on first run.
struct Starter {
    name: &'static str,
    description: &'static str,
    image: &'static str,
    compute_units: i64,
    features: &'static str,
}

/// On first run (no template at all), ready templates: `default` (Debian with bash and git,
/// 1 CU) and `full` (the same with VS Code in the browser and a desktop, 2 CU), each with a
/// 10 GiB home. `scripts/images.sh` builds both images locally.
pub async fn ensure_default_template(db: &DatabaseConnection, config: &Config) -> ApiResult<()> {
    if !config.default_template || template::Entity::find().count(db).await? > 0 {
        return Ok(());
    }
    let starters = [
        Starter {
            name: "default",
            description: "Debian 12 with bash, git, curl and an SSH/SFTP server; your home (/root) is kept.",
            image: DEFAULT_IMAGE,
            compute_units: 1,
            features: r#"["terminal","ssh","port_forwarding","tunnels","file_transfer"]"#,
        },
        Starter {
            name: "full",
            description: "The default template plus VS Code in the browser (code-server) and a desktop (TigerVNC, openbox); your home (/root) is kept.",
            image: FULL_IMAGE,
            compute_units: 2,
            features: r#"["terminal","ssh","code_server","vnc","port_forwarding","tunnels","file_transfer"]"#,
        },
    ];
    let now = Utc::now();
    for starter in starters {
        let model = template::ActiveModel {
            id: Set(crate::services::new_id()),
            name: Set(starter.name.into()),
            description: Set(starter.description.into()),
            image: Set(starter.image.into()),
            command: Set(None),
            shell: Set("/bin/bash".into()),
            env: Set("{}".into()),
            compute_units: Set(starter.compute_units),
            storage_units: Set(10),
            volumes: Set(r#"[{"name":"home","mount_path":"/root","size_gib":10}]"#.into()),
            features: Set(starter.features.into()),
            ports: Set("[]".into()),
            allowed_groups: Set("[]".into()),
            archived: Set(false),
            privileged: Set(false),
            raw_sockets: Set(false),
            devcontainer: Set(true),
            version: Set(1),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        };
        let inserted = template::Entity::insert(model)
            .on_conflict(
                sea_orm::sea_query::OnConflict::column(template::Column::Name)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
        if inserted == 1 {
            tracing::info!(
                name = starter.name,
                image = starter.image,
                "created a template"
            );
        }
    }
    Ok(())
}

/// The installation's id, made by the first server to start on this database and read by
/// every later one (replicas on one PostgreSQL share it). Every Docker object Hangar makes
/// carries it, so that installations sharing an engine never touch each other's objects.
pub async fn installation_id(db: &DatabaseConnection) -> ApiResult<String> {
    crate::db::setting_made_once(
        db,
        setting::INSTALLATION_ID,
        uuid::Uuid::new_v4().simple().to_string(),
    )
    .await
}
