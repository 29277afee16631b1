//! The space driver: the only code that moves containers and volumes for the lifecycle. The
//! rules (`super::lifecycle`: plan, quota, state change, audit) record a transition first;
//! the driver then carries it out through the runtime, one operation per space at a time, in
//! the background, and records the outcome. After a crash, or when the runtime failed, the
//! reconciler ([`reconcile`]) finds the space between states and drives it again.
//!
//! A transition is a list of [`steps`]: a feature that needs a new step adds it there.

pub mod reconcile;
mod records;
pub mod steps;

use app::ids::SpaceId;
use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;

use super::spec_of;
use crate::domain::lifecycle::{after_stop, AfterStop, SpaceState};
use crate::entities::space;
use crate::error::ApiResult;
use crate::runtime::SpaceSpec;
use crate::services::audit::{record, space_target, Outcome};
use crate::services::notifications::Notice;
use crate::services::Services;
use app::api::notifications::NotificationKind;
use steps::Step;

/// How often a space being started or stopped shows it is being worked on.
pub const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(2);

/// What the steps of a transition work on.
pub struct Work {
    /// The space as recorded when the transition began.
    pub space: space::Model,
    /// Its owner's username.
    pub owner: String,
    /// What the runtime is told of it.
    pub spec: SpaceSpec,
    /// The container the start made, once it made one.
    pub container_id: Option<String>,
}

/// Counts a runtime transition and times it (`hangar_space_transitions_total`,
/// `hangar_space_transition_seconds`).
fn record_transition(transition: &'static str, started: std::time::Instant, succeeded: bool) {
    let outcome = if succeeded { "success" } else { "failed" };
    metrics::counter!("hangar_space_transitions_total", "transition" => transition, "outcome" => outcome)
        .increment(1);
    metrics::histogram!("hangar_space_transition_seconds", "transition" => transition)
        .record(started.elapsed().as_secs_f64());
}

/// Runs `steps` in order; the first failure ends the list.
async fn run_steps(
    services: &Services,
    steps: &[&dyn Step],
    work: &mut Work,
) -> Result<(), String> {
    for step in steps {
        if let Err(e) = step.run(services, work).await {
            tracing::debug!(space = %work.space.id, step = step.name(), error = %e, "step failed");
            return Err(e);
        }
    }
    Ok(())
}

impl Services {
    /// Moves a stopped space's volumes to the node `to`, where it starts from then on (the
    /// rules, in `crate::services::nodes`, checked that it may go there).
    pub async fn move_volumes(
        &self,
        spec: &SpaceSpec,
        to: &str,
    ) -> Result<crate::runtime::Moved, crate::runtime::RuntimeError> {
        self.runtime.move_space(spec, to).await
    }

    /// Makes the volumes of a space just created (storage is consumed from creation); when
    /// they cannot all be made, removes what was, and says why.
    pub(super) async fn create_volumes(&self, spec: &SpaceSpec) -> Result<(), String> {
        if let Err(e) = self.runtime.create_volumes(spec).await {
            let _ = self.runtime.remove(spec).await;
            return Err(e.to_string());
        }
        Ok(())
    }

    async fn with_heartbeat<T>(
        &self,
        space_id: &SpaceId,
        work: impl std::future::Future<Output = T>,
    ) -> T {
        let beat = async {
            let mut every = tokio::time::interval(HEARTBEAT);
            every.tick().await;
            loop {
                every.tick().await;
                let _ = space::Entity::update_many()
                    .col_expr(space::Column::UpdatedAt, Expr::value(Utc::now()))
                    .filter(space::Column::Id.eq(space_id.clone()))
                    .exec(&self.db)
                    .await;
            }
        };
        tokio::select! {
            result = work => result,
            () = beat => unreachable!("the heartbeat never ends"),
        }
    }

    /// Carries out, in the background, the transition recorded for the space.
    pub fn drive(&self, space_id: SpaceId) {
        let services = self.clone();
        tokio::spawn(async move {
            if let Err(e) = services.drive_now(&space_id).await {
                tracing::error!(space = %space_id, error = %e, "space transition failed");
            }
        });
    }

    /// Carries out the transition recorded for the space, now.
    pub async fn drive_now(&self, space_id: &SpaceId) -> ApiResult<()> {
        let lock = self.space_locks.of(space_id);
        let _guard = lock.lock().await;
        // Each pass handles one recorded state; a restart passes through twice.
        for _ in 0..3 {
            let Some(space) = space::Entity::find_by_id(space_id.to_owned())
                .one(&self.db)
                .await?
            else {
                return Ok(());
            };
            let owner = self.find_user(&space.owner_id).await?.username;
            let spec = spec_of(&space, &owner)?;
            let state = space.state;
            let work = Work {
                space,
                owner,
                spec,
                container_id: None,
            };
            let again = match state {
                SpaceState::Starting => self.start(work).await?,
                SpaceState::Stopping => self.stop(work).await?,
                _ => false,
            };
            if !again {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Starts the space; true when it must be driven again (a stop came in meanwhile).
    async fn start(&self, mut work: Work) -> ApiResult<bool> {
        let space_id = work.space.id.clone();
        let started = std::time::Instant::now();
        let result = self
            .with_heartbeat(&space_id, run_steps(self, steps::START, &mut work))
            .await;
        record_transition("start", started, result.is_ok());
        match result {
            Ok(()) => {
                let moved = self
                    .finish(
                        &space_id,
                        SpaceState::Starting,
                        SpaceState::Running,
                        work.container_id.clone(),
                        None,
                    )
                    .await?;
                if !moved {
                    // A stop came in while starting: go round to carry it out.
                    return Ok(true);
                }
                tracing::info!(space = %space_id, "space running");
                let services = self.clone();
                tokio::spawn(async move {
                    for step in steps::STARTED {
                        if let Err(e) = step.run(&services, &mut work).await {
                            tracing::warn!(space = %work.space.id, step = step.name(), error = %e, "a step after the start failed");
                        }
                    }
                });
            }
            Err(e) => {
                let _ = self.runtime.stop(&work.spec).await;
                let message = format!("start failed: {e}");
                tracing::warn!(space = %space_id, error = %message, "space did not start");
                self.finish(
                    &space_id,
                    SpaceState::Starting,
                    SpaceState::Stopped,
                    None,
                    Some(message.clone()),
                )
                .await?;
                record(
                    &self.db,
                    None,
                    "space.start",
                    &space_target(&work.owner, &work.space.name),
                    Outcome::Failed,
                    json!({"error": message}),
                )
                .await;
                self.notify(
                    &work.space.owner_id,
                    Notice::new(
                        NotificationKind::StartFailed,
                        format!("{} did not start", work.space.name),
                        format!("The space {} did not start: {e}", work.space.name),
                    )
                    .on_space(&space_id),
                )
                .await;
            }
        }
        Ok(false)
    }

    /// Stops (and, as recorded, deletes or restarts) the space; true when it must be driven
    /// again (a restart goes on to start).
    async fn stop(&self, mut work: Work) -> ApiResult<bool> {
        let space_id = work.space.id.clone();
        let then = work.space.after_stop.unwrap_or(AfterStop::Stay);
        let (transition, steps) = match then {
            AfterStop::Delete => ("delete", steps::DELETE),
            _ => ("stop", steps::STOP),
        };
        let started = std::time::Instant::now();
        let stopped = self
            .with_heartbeat(&space_id, run_steps(self, steps, &mut work))
            .await;
        record_transition(transition, started, stopped.is_ok());
        if let Err(e) = stopped {
            // Still holding compute: an admin or the reconciler retries.
            let message = match then {
                AfterStop::Delete => {
                    format!("could not remove the space's container or volumes: {e}")
                }
                _ => format!("stop failed: {e}"),
            };
            self.set_last_error(&space_id, &message).await?;
            return Ok(false);
        }
        match after_stop(then) {
            SpaceState::Deleted => {
                self.mark_deleted(&space_id, SpaceState::Stopping).await?;
                Ok(false)
            }
            SpaceState::Starting => {
                self.finish(
                    &space_id,
                    SpaceState::Stopping,
                    SpaceState::Starting,
                    None,
                    None,
                )
                .await?;
                Ok(true)
            }
            to => {
                self.finish(&space_id, SpaceState::Stopping, to, None, None)
                    .await?;
                Ok(false)
            }
        }
    }
}
