//! What a transition leaves in the database once the runtime acted: each a compare-and-set on
//! the state it expects, so that a transition someone else moved on meanwhile is not undone.

use app::ids::SpaceId;
use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::domain::lifecycle::{AfterStop, SpaceState};
use crate::entities::{share, space};
use crate::error::ApiResult;
use crate::services::Services;

impl Services {
    pub(super) async fn mark_deleted(
        &self,
        space_id: &SpaceId,
        from_state: SpaceState,
    ) -> ApiResult<()> {
        let now = Utc::now();
        space::Entity::update_many()
            .col_expr(space::Column::State, Expr::value(SpaceState::Deleted))
            .col_expr(
                space::Column::ContainerId,
                Expr::value(Option::<String>::None),
            )
            .col_expr(space::Column::DeletedAt, Expr::value(now))
            .col_expr(space::Column::UpdatedAt, Expr::value(now))
            .filter(space::Column::Id.eq(space_id.clone()))
            .filter(space::Column::State.eq(from_state))
            .exec(&self.db)
            .await?;
        // Before the shares go, so that sharees hear of it too.
        self.space_changed(space_id).await;
        // Shares of a deleted space mean nothing any more.
        share::Entity::delete_many()
            .filter(share::Column::SpaceId.eq(space_id.clone()))
            .exec(&self.db)
            .await?;
        // Nor does what it used.
        self.drop_usage(space_id).await?;
        // Nor do its public links (which counted against the owner's tunnel quota).
        crate::entities::tunnel::Entity::delete_many()
            .filter(crate::entities::tunnel::Column::SpaceId.eq(space_id.clone()))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    pub(super) async fn set_last_error(&self, space_id: &SpaceId, message: &str) -> ApiResult<()> {
        space::Entity::update_many()
            .col_expr(space::Column::LastError, Expr::value(message))
            .col_expr(space::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(space::Column::Id.eq(space_id.clone()))
            .exec(&self.db)
            .await?;
        self.space_changed(space_id).await;
        Ok(())
    }

    pub(super) async fn finish(
        &self,
        space_id: &SpaceId,
        from: SpaceState,
        to: SpaceState,
        container_id: Option<String>,
        error: Option<String>,
    ) -> ApiResult<bool> {
        let now = Utc::now();
        // When it started and stopped go by the services' clock, as its automatic stops do.
        let at = self.clock.now();
        let mut update = space::Entity::update_many()
            .col_expr(space::Column::State, Expr::value(to))
            .col_expr(space::Column::UpdatedAt, Expr::value(now))
            .col_expr(space::Column::ContainerId, Expr::value(container_id))
            .col_expr(space::Column::LastError, Expr::value(error))
            .col_expr(
                space::Column::StopWarnedAt,
                Expr::value(Option::<chrono::DateTime<Utc>>::None),
            );
        update = match to {
            SpaceState::Running => update.col_expr(space::Column::StartedAt, Expr::value(at)),
            SpaceState::Stopped => update
                .col_expr(space::Column::StoppedAt, Expr::value(at))
                .col_expr(
                    space::Column::AfterStop,
                    Expr::value(Option::<AfterStop>::None),
                ),
            SpaceState::Starting => update.col_expr(
                space::Column::AfterStop,
                Expr::value(Option::<AfterStop>::None),
            ),
            _ => update,
        };
        let moved = update
            .filter(space::Column::Id.eq(space_id.clone()))
            .filter(space::Column::State.eq(from))
            .exec(&self.db)
            .await?;
        if moved.rows_affected == 1 {
            self.space_changed(space_id).await;
        }
        Ok(moved.rows_affected == 1)
    }
}
