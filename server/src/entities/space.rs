//! A space: one container and its volumes, with a snapshot of its template taken at creation.

use sea_orm::entity::prelude::*;

use app::ids::{SpaceId, TemplateId, UserId};
use app::lifecycle::{AfterStop, SpaceState};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "spaces")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: SpaceId,
    pub owner_id: UserId,
    pub name: String,
    pub template_id: Option<TemplateId>,
    pub template_name: String,
    pub compute_units: i64,
    pub storage_units: i64,
    pub image: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub command: Option<String>,
    pub shell: String,
    #[sea_orm(column_type = "Text")]
    pub env: String,
    #[sea_orm(column_type = "Text")]
    pub volumes: String,
    #[sea_orm(column_type = "Text")]
    pub features: String,
    /// Snapshot of the template's flag: runs with Docker-in-Docker rights.
    pub privileged: bool,
    /// Snapshot of the template's flag: may open raw sockets.
    pub raw_sockets: bool,
    /// Snapshot of the template's flag: its repository's `devcontainer.json` may set run
    /// options (`privileged`, `capAdd`, tmpfs `mounts`, `runArgs`).
    pub devcontainer_run_options: bool,
    pub state: SpaceState,
    pub after_stop: Option<AfterStop>,
    pub container_id: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub started_at: Option<DateTimeUtc>,
    pub stopped_at: Option<DateTimeUtc>,
    pub deleted_at: Option<DateTimeUtc>,
    /// The owner's own idle stop, in minutes (never above the template's), when the template
    /// lets owners change it; None: the template's.
    pub idle_stop_minutes: Option<i64>,
    /// The owner's own longest run, in minutes, likewise.
    pub max_run_minutes: Option<i64>,
    /// Its weekly schedule (JSON of `app::api::autostop::Schedule`); None: the template's.
    #[sea_orm(column_type = "Text", nullable)]
    pub schedule: Option<String>,
    /// Pinned: retention never deletes it.
    pub keep: bool,
    /// The last activity Hangar saw at one of its doors, and its kind (see `services::activity`).
    pub last_activity_at: Option<DateTimeUtc>,
    pub last_activity_kind: Option<String>,
    /// Counts as in use until then (`hangar keepalive`).
    pub keepalive_until: Option<DateTimeUtc>,
    /// When the warning of the coming automatic stop was given (cleared once the stop moves
    /// away again): given once.
    pub stop_warned_at: Option<DateTimeUtc>,
    /// Scheduled starts up to this time were acted on (or were before the schedule was set).
    pub schedule_seen_at: Option<DateTimeUtc>,
    /// Why Hangar last stopped it, or skipped a scheduled start, by itself.
    #[sea_orm(column_type = "Text", nullable)]
    pub auto_note: Option<String>,
    /// When its owner was warned that retention deletes it.
    pub retention_warned_at: Option<DateTimeUtc>,
    /// The repository cloned at its first start (see `services::spaces::setup`).
    #[sea_orm(column_type = "Text", nullable)]
    pub repository_url: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub repository_branch: Option<String>,
    /// Relative to the home.
    #[sea_orm(column_type = "Text", nullable)]
    pub repository_folder: Option<String>,
    /// `app::api::repos::SetupState` of the clone.
    pub clone_state: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub clone_error: Option<String>,
    /// The owner's dotfiles repository as installed at the first start.
    #[sea_orm(column_type = "Text", nullable)]
    pub dotfiles_url: Option<String>,
    pub dotfiles_state: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub dotfiles_error: Option<String>,
    /// What the clone and the dotfiles printed (bounded).
    #[sea_orm(column_type = "Text", nullable)]
    pub setup_log: Option<String>,
    /// When its first start's setup (git identity, clone, dotfiles) began: it runs once.
    pub set_up_at: Option<DateTimeUtc>,
    /// `app::api::devcontainer::BuildState` of the image built from the repository's
    /// `devcontainer.json` (None: not looked for yet).
    pub devcontainer_state: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub devcontainer_error: Option<String>,
    /// What was read of `devcontainer.json` (JSON of `domain::devcontainer::Plan`).
    #[sea_orm(column_type = "Text", nullable)]
    pub devcontainer_plan: Option<String>,
    /// The image built from it, which the space runs instead of the template's.
    #[sea_orm(column_type = "Text", nullable)]
    pub devcontainer_image: Option<String>,
    /// When its once-only lifecycle commands (`onCreateCommand`...) ran in this image.
    pub devcontainer_created_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// `state <> 'deleted'`: the spaces that still exist.
///
/// The state is written into the SQL rather than bound: SQLite matches this condition against
/// the partial index on live spaces, and when it is a bound parameter it re-plans the
/// statement at every execution to check that the value still fits the index (this was most
/// of the database's CPU on a dashboard view).
pub fn is_live() -> sea_orm::sea_query::SimpleExpr {
    Expr::col((Entity, Column::State)).ne(Expr::cust("'deleted'"))
}

#[cfg(test)]
mod tests {
    use sea_orm::sea_query::{Query, SqliteQueryBuilder};

    use super::*;
    use crate::domain::lifecycle::SpaceState;

    #[test]
    fn the_live_condition_writes_the_deleted_state_into_the_sql() {
        let (sql, values) = Query::select()
            .column(Column::Id)
            .from(Entity)
            .and_where(is_live())
            .build(SqliteQueryBuilder);
        assert!(values.0.is_empty(), "nothing is bound: {sql} {values:?}");
        let expected = format!(
            r#""spaces"."state" <> ('{}')"#,
            SpaceState::Deleted.as_str()
        );
        assert!(sql.ends_with(&expected), "{sql}");
    }
}
