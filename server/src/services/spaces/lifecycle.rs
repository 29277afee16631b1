//! The space lifecycle's rules: creation within quota, and start/stop/restart/delete planned
//! from the lifecycle table, checked against the quota, recorded in the database and audited
//! before the driver (`super::driver`) carries them out in the background (also after a
//! crash).

use app::api::notifications::NotificationKind;
use app::api::spaces::{ssr::SpaceLifecycle, CreateSpace, SpaceDto};
use app::ids::{SpaceId, UserId};
use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set, TransactionTrait};
use serde_json::json;

use super::spec_of;
use crate::domain::lifecycle::{self, Action, AfterStop, Plan, SpaceState};
use crate::domain::quota::{check_create, check_start};
use crate::entities::{space, template};
use crate::error::{ApiError, ApiResult};
use crate::services::access::{Caller, SpaceRole};
use crate::services::audit::{record, record_by, space_target, Actor, Outcome};
use crate::services::notifications::Notice;
use crate::services::quota::{limits_and_usage, lock_owner};
use crate::services::{new_id, Services};

#[async_trait::async_trait]
impl SpaceLifecycle for Services {
    async fn create_space(&self, caller: &Caller, input: CreateSpace) -> ApiResult<SpaceDto> {
        let name = input.name.trim().to_owned();
        crate::validate::username(&name).map_err(|e| ApiError::invalid("name", e))?;
        let owner = match input.owner_id.as_ref() {
            Some(id) if id != caller.id() => {
                caller.require_admin()?;
                self.find_user(id).await.map_err(|e| match e.code {
                    crate::error::ErrorCode::NotFound => ApiError::invalid(
                        "owner_id",
                        "no user has this id: pick one from GET /api/v1/users",
                    ),
                    _ => e,
                })?
            }
            _ => self.find_user(caller.id()).await?,
        };
        let template = template::Entity::find_by_id(input.template_id.clone())
            .one(&self.db)
            .await?
            .ok_or_else(|| {
                ApiError::invalid(
                    "template_id",
                    "no such template: pick one from GET /api/v1/templates",
                )
            })?;
        let template_dto = super::super::templates::to_dto(template.clone())?;
        if template_dto.archived {
            return Err(ApiError::invalid(
                "template_id",
                format!("the template `{}` is archived: pick another", template.name),
            ));
        }
        if !self
            .may_use_template(false, &owner.id, &template_dto)
            .await?
        {
            return Err(ApiError::invalid(
                "template_id",
                format!(
                    "the template `{}` is not available to {}",
                    template.name, owner.username
                ),
            ));
        }
        let repository = match input
            .repository
            .as_ref()
            .or(template_dto.repository.as_ref())
        {
            Some(given) => Some(super::setup::check_repository(
                given,
                &template_dto.repository_prefixes,
            )?),
            None => None,
        };
        let target = space_target(&owner.username, &name);

        // Held until its volumes exist: a start or delete that comes in meanwhile waits
        // for them instead of finding them half made.
        let id: SpaceId = new_id();
        let lock = self.space_locks.of(&id);
        let _guard = lock.lock().await;
        let txn = self.db.begin().await?;
        lock_owner(&txn, &owner.id).await?;
        let (limits, usage) = limits_and_usage(&txn, &owner).await?;
        if let Err(refusal) = check_create(&limits, &usage, &name, template.storage_units) {
            txn.rollback().await?;
            metrics::counter!("hangar_quota_refusals_total", "limit" => refusal.dimension.as_str())
                .increment(1);
            record(&self.db, Some(caller), "space.create", &target, Outcome::Refused,
                json!({"reason": refusal.to_string(), "limit": refusal.dimension.as_str(), "usage": refusal.used, "quota": refusal.quota, "needed": refusal.needed})).await;
            self.quota_reached(&owner.id, &refusal.to_string(), None)
                .await;
            return Err(refusal.into());
        }
        let taken = space::Entity::find()
            .filter(space::Column::OwnerId.eq(owner.id.as_str()))
            .filter(space::Column::Name.eq(name.as_str()))
            .filter(space::is_live())
            .one(&txn)
            .await?;
        if taken.is_some() {
            txn.rollback().await?;
            return Err(ApiError::conflict(format!(
                "{} already has a space named `{name}`: pick another name",
                owner.username
            )));
        }
        let now = Utc::now();
        let created = space::ActiveModel {
            id: Set(id),
            owner_id: Set(owner.id.clone()),
            name: Set(name.clone()),
            template_id: Set(Some(template.id.clone())),
            template_name: Set(template.name.clone()),
            compute_units: Set(template.compute_units),
            storage_units: Set(template.storage_units),
            image: Set(template.image.clone()),
            command: Set(template.command.clone()),
            shell: Set(template.shell.clone()),
            env: Set(template.env.clone()),
            volumes: Set(template.volumes.clone()),
            features: Set(template.features.clone()),
            privileged: Set(template.privileged),
            raw_sockets: Set(template.raw_sockets),
            devcontainer_run_options: Set(template.devcontainer_run_options),
            state: Set(SpaceState::Created),
            after_stop: Set(None),
            container_id: Set(None),
            last_error: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            started_at: Set(None),
            stopped_at: Set(None),
            deleted_at: Set(None),
            clone_state: Set(repository
                .as_ref()
                .map(|_| app::api::repos::SetupState::Waiting.as_str().to_owned())),
            repository_url: Set(repository.as_ref().map(|r| r.url.clone())),
            repository_branch: Set(repository.as_ref().and_then(|r| r.branch.clone())),
            repository_folder: Set(repository.map(|r| r.folder)),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;

        // Storage is consumed from creation: make the volumes now, and undo the space
        // entirely when they cannot be made.
        let spec = spec_of(&created, &owner.username)?;
        if let Err(e) = self.create_volumes(&spec).await {
            space::Entity::delete_by_id(created.id.clone())
                .exec(&self.db)
                .await?;
            record(
                &self.db,
                Some(caller),
                "space.create",
                &target,
                Outcome::Failed,
                json!({"error": e}),
            )
            .await;
            return Err(ApiError::unavailable(format!("could not create the space's volumes: {e}. Nothing was kept; try again once the Docker host is healthy")));
        }
        record(&self.db, Some(caller), "space.create", &target, Outcome::Success,
            json!({"template": template.name, "compute_units": created.compute_units, "storage_units": created.storage_units, "repository": created.repository_url})).await;
        self.space_changed(&created.id).await;
        let role = if owner.id == caller.user.id {
            SpaceRole::Owner
        } else {
            SpaceRole::Admin
        };
        self.space_dto(caller, created, role).await
    }

    async fn transition(
        &self,
        caller: &Caller,
        id: &SpaceId,
        action: Action,
    ) -> ApiResult<SpaceDto> {
        let space = self.managed_space(caller, id).await?;
        let owner = self.find_user(&space.owner_id).await?;
        let target = space_target(&owner.username, &space.name);
        let audit_action = format!("space.{}", action.as_str());
        let plan = match lifecycle::plan(space.state, action) {
            Ok(plan) => plan,
            Err(refusal) => {
                record(
                    &self.db,
                    Some(caller),
                    &audit_action,
                    &target,
                    Outcome::Refused,
                    json!({"reason": refusal.to_string()}),
                )
                .await;
                return Err(refusal.into());
            }
        };
        let updated = match plan {
            Plan::Start => {
                self.begin_start(&space, &owner, Actor::Caller(caller), action)
                    .await?
            }
            Plan::Stop { then } => self.begin_stop(&space, then).await?,
            Plan::Delete => return Err(ApiError::internal("delete goes through delete_space")),
        };
        record(
            &self.db,
            Some(caller),
            &audit_action,
            &target,
            Outcome::Success,
            json!({"state": updated.state}),
        )
        .await;
        self.space_changed(&updated.id).await;
        self.drive(updated.id.clone());
        self.space_dto(caller, updated, SpaceRole::Owner).await
    }

    async fn delete_space(&self, caller: &Caller, id: &SpaceId) -> ApiResult<Option<SpaceDto>> {
        let space = self.managed_space(caller, id).await?;
        let owner = self.find_user(&space.owner_id).await?;
        let target = space_target(&owner.username, &space.name);
        let plan = match lifecycle::plan(space.state, Action::Delete) {
            Ok(plan) => plan,
            Err(refusal) => {
                record(
                    &self.db,
                    Some(caller),
                    "space.delete",
                    &target,
                    Outcome::Refused,
                    json!({"reason": refusal.to_string()}),
                )
                .await;
                return Err(refusal.into());
            }
        };
        match plan {
            Plan::Delete => {
                // Marked first (the loser of a race with a start gets 409), removed after.
                self.begin_stop(&space, AfterStop::Delete).await?;
                self.drive_now(&space.id).await?;
                let current = space::Entity::find_by_id(space.id.clone())
                    .one(&self.db)
                    .await?
                    .ok_or_else(|| ApiError::not_found("space"))?;
                if current.state != SpaceState::Deleted {
                    let message = current.last_error.unwrap_or_else(|| {
                        "could not remove the space's container or volumes".to_owned()
                    });
                    // Put back as it was, deleteable again.
                    space::Entity::update_many()
                        .col_expr(space::Column::State, Expr::value(space.state))
                        .col_expr(
                            space::Column::AfterStop,
                            Expr::value(Option::<AfterStop>::None),
                        )
                        .col_expr(space::Column::UpdatedAt, Expr::value(Utc::now()))
                        .filter(space::Column::Id.eq(space.id.clone()))
                        .filter(space::Column::State.eq(SpaceState::Stopping))
                        .exec(&self.db)
                        .await?;
                    self.space_changed(&space.id).await;
                    record(
                        &self.db,
                        Some(caller),
                        "space.delete",
                        &target,
                        Outcome::Failed,
                        json!({"error": message}),
                    )
                    .await;
                    return Err(ApiError::unavailable(format!(
                        "{message}. The space is kept; delete it again later"
                    )));
                }
                record(
                    &self.db,
                    Some(caller),
                    "space.delete",
                    &target,
                    Outcome::Success,
                    json!({}),
                )
                .await;
                Ok(None)
            }
            Plan::Stop { then } => {
                let updated = self.begin_stop(&space, then).await?;
                record(
                    &self.db,
                    Some(caller),
                    "space.delete",
                    &target,
                    Outcome::Success,
                    json!({"state": "stopping"}),
                )
                .await;
                self.drive(updated.id.clone());
                Ok(Some(
                    self.space_dto(caller, updated, SpaceRole::Owner).await?,
                ))
            }
            Plan::Start => Err(ApiError::internal("delete planned a start")),
        }
    }
}

impl Services {
    /// Tells the owner that their quota refused a new space or a start (`why`: the refusal).
    async fn quota_reached(&self, owner: &UserId, why: &str, space_id: Option<&SpaceId>) {
        let mut notice = Notice::new(
            NotificationKind::QuotaReached,
            "Quota reached",
            format!(
                "Refused: {}. Stop or delete a space, or ask an admin for a larger quota.",
                why.trim_end_matches('.')
            ),
        );
        if let Some(space_id) = space_id {
            notice = notice.on_space(space_id);
        }
        self.notify(owner, notice).await;
    }

    /// Records the start of a stopped space within its owner's quota (refusals audited as
    /// `by`'s), for the driver to carry out: by its owner or an admin, or by its schedule.
    pub(super) async fn begin_start(
        &self,
        space: &space::Model,
        owner: &crate::entities::user::Model,
        by: Actor<'_>,
        action: Action,
    ) -> ApiResult<space::Model> {
        let target = space_target(&owner.username, &space.name);
        let audit_action = format!("space.{}", action.as_str());
        let txn = self.db.begin().await?;
        lock_owner(&txn, &owner.id).await?;
        // Re-read under the lock: a concurrent request may have moved it on.
        let current = space::Entity::find_by_id(space.id.clone())
            .one(&txn)
            .await?
            .ok_or_else(|| ApiError::not_found("space"))?;
        if let Err(refusal) = lifecycle::plan(current.state, action) {
            txn.rollback().await?;
            return Err(refusal.into());
        }
        let (limits, usage) = limits_and_usage(&txn, owner).await?;
        if let Err(refusal) = check_start(&limits, &usage, &current.name, current.compute_units) {
            txn.rollback().await?;
            metrics::counter!("hangar_quota_refusals_total", "limit" => refusal.dimension.as_str())
                .increment(1);
            record_by(&self.db, by, &audit_action, &target, Outcome::Refused,
                json!({"reason": refusal.to_string(), "limit": refusal.dimension.as_str(), "usage": refusal.used, "quota": refusal.quota, "needed": refusal.needed})).await;
            self.quota_reached(&owner.id, &refusal.to_string(), Some(&space.id))
                .await;
            return Err(refusal.into());
        }
        // A compare-and-set on the state read: the owner's lock serialises quota
        // checks, not a delete (which takes no quota), so the row may have moved on.
        let moved = space::Entity::update_many()
            .col_expr(space::Column::State, Expr::value(SpaceState::Starting))
            .col_expr(
                space::Column::AfterStop,
                Expr::value(Option::<AfterStop>::None),
            )
            .col_expr(
                space::Column::LastError,
                Expr::value(Option::<String>::None),
            )
            .col_expr(space::Column::AutoNote, Expr::value(Option::<String>::None))
            .col_expr(
                space::Column::RetentionWarnedAt,
                Expr::value(Option::<chrono::DateTime<Utc>>::None),
            )
            .col_expr(space::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(space::Column::Id.eq(current.id.clone()))
            .filter(space::Column::State.eq(current.state))
            .exec(&txn)
            .await?;
        if moved.rows_affected != 1 {
            txn.rollback().await?;
            return Err(self.lost_race(&space.id, action).await);
        }
        let updated = space::Entity::find_by_id(current.id.clone())
            .one(&txn)
            .await?
            .ok_or_else(|| ApiError::not_found("space"))?;
        txn.commit().await?;
        Ok(updated)
    }

    pub(super) async fn begin_stop(
        &self,
        space: &space::Model,
        then: AfterStop,
    ) -> ApiResult<space::Model> {
        self.terminals.close_space(
            space.id.as_str(),
            match then {
                AfterStop::Delete => "the space is being deleted",
                AfterStop::Restart => "the space is restarting: reconnect when it runs again",
                AfterStop::Stay => "the space is stopping",
            },
        );
        let moved = space::Entity::update_many()
            .col_expr(space::Column::State, Expr::value(SpaceState::Stopping))
            .col_expr(space::Column::AfterStop, Expr::value(then))
            .col_expr(space::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(space::Column::Id.eq(space.id.clone()))
            .filter(space::Column::State.eq(space.state))
            .exec(&self.db)
            .await?;
        let current = space::Entity::find_by_id(space.id.clone())
            .one(&self.db)
            .await?
            .ok_or_else(|| ApiError::not_found("space"))?;
        if moved.rows_affected == 1 {
            self.space_changed(&space.id).await;
        }
        if moved.rows_affected == 0 {
            let action = match then {
                AfterStop::Stay => Action::Stop,
                AfterStop::Restart => Action::Restart,
                AfterStop::Delete => Action::Delete,
            };
            return Err(self.lost_race(&space.id, action).await);
        }
        Ok(current)
    }

    /// The answer to a transition whose compare-and-set found the space changed by someone
    /// else first: what it is now, as `invalid_state` when the action no longer fits.
    async fn lost_race(&self, space_id: &SpaceId, action: Action) -> ApiError {
        let current = match space::Entity::find_by_id(space_id.clone())
            .one(&self.db)
            .await
        {
            Ok(Some(current)) => current,
            Ok(None) => return ApiError::not_found("space"),
            Err(e) => return e.into(),
        };
        match lifecycle::plan(current.state, action) {
            Err(refusal) => refusal.into(),
            Ok(_) => ApiError::conflict("the space changed meanwhile: try again"),
        }
    }
}
