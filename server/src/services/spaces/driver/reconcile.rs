//! The reconciler: keeps the database and the runtime consistent. At start-up and every few
//! seconds, spaces whose container died or vanished become `stopped` (with the reason), and
//! transitions left half done by a crash are driven again. While the engine cannot be reached
//! nothing is concluded.

use std::time::Duration;

use app::api::notifications::NotificationKind;
use app::ids::SpaceId;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;

use super::super::spec_of;
use crate::domain::lifecycle::SpaceState;
use crate::entities::{space, user};
use crate::error::ApiResult;
use crate::runtime::RuntimeError;
use crate::services::audit::{record, Outcome};
use crate::services::notifications::Notice;
use crate::services::Services;

/// How often the reconciler looks.
pub const INTERVAL: Duration = Duration::from_secs(2);

/// A space between states with no heartbeat for this long has nobody working on it (its
/// replica crashed): the reconciler takes it over.
pub const ABANDONED_AFTER: Duration = Duration::from_secs(8);

/// One pass over every space that should have a container or is between states.
pub async fn reconcile_once(services: &Services) -> ApiResult<()> {
    let spaces = space::Entity::find()
        .filter(space::Column::State.is_in([
            SpaceState::Starting,
            SpaceState::Running,
            SpaceState::Stopping,
        ]))
        .all(&services.db)
        .await?;
    for space in spaces {
        match space.state {
            SpaceState::Running => match services.runtime.inspect(&space.id).await {
                Ok(Some(container)) if container.running => {}
                Ok(found) => {
                    // Only if nobody is working on it right now (a restart replaces the container).
                    let Some(_guard) = services.space_locks.try_lock(&space.id) else {
                        continue;
                    };
                    let reason = match found {
                        Some(container) => container.detail,
                        None => "the container vanished".to_owned(),
                    };
                    services.space_died(&space, &reason).await?;
                }
                Err(RuntimeError::Unavailable(e)) => {
                    tracing::warn!(error = %e, "reconciler: Docker unreachable, will retry");
                    return Ok(());
                }
                Err(e) => {
                    tracing::warn!(space = %space.id, error = %e, "reconciler: cannot inspect")
                }
            },
            // Between states with nobody driving it (a crash, or a runtime error): drive it.
            SpaceState::Starting | SpaceState::Stopping => {
                let quiet_for = (chrono::Utc::now() - space.updated_at)
                    .to_std()
                    .unwrap_or_default();
                if quiet_for >= ABANDONED_AFTER
                    && services.space_locks.try_lock(&space.id).is_some()
                {
                    services.drive(space.id.clone());
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Runs [`reconcile_once`] now and then every [`INTERVAL`] until the task is dropped.
pub fn spawn(services: Services) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if let Err(e) = reconcile_once(&services).await {
                tracing::warn!(error = %e, "reconciler pass failed");
            }
        }
    })
}

impl Services {
    /// A running space whose container died or vanished (`reason`): stopped, audited, and its
    /// owner told (their work there stopped, and nothing else would tell them why).
    async fn space_died(&self, space: &space::Model, reason: &str) -> ApiResult<()> {
        let Some(owner) = self.mark_died(&space.id, reason).await? else {
            return Ok(());
        };
        metrics::counter!("hangar_reconciler_spaces_died_total").increment(1);
        tracing::warn!(space = %space.id, %reason, "space stopped on its own");
        record(
            &self.db,
            None,
            "space.died",
            &format!("space:{}/{}", owner.username, space.name),
            Outcome::Failed,
            json!({"reason": reason}),
        )
        .await;
        let notice = Notice::new(
            NotificationKind::SpaceStopped,
            format!("{} stopped on its own", space.name),
            format!(
                "The space {} stopped on its own: {reason}. Its volumes are kept: start it \
                 again from its page.",
                space.name
            ),
        )
        .on_space(&space.id);
        self.notify(&owner.id, notice).await;
        Ok(())
    }

    /// Records that the space's container died or vanished (`reason`), cleaning up what is
    /// left of it; its owner when it did, None when the space was no longer running.
    async fn mark_died(&self, space_id: &SpaceId, reason: &str) -> ApiResult<Option<user::Model>> {
        let Some(space) = space::Entity::find_by_id(space_id.to_owned())
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let owner = self.find_user(&space.owner_id).await?;
        if let Err(e) = self.runtime.stop(&spec_of(&space, &owner.username)?).await {
            tracing::warn!(space = %space_id, error = %e, "could not clean up a dead container");
        }
        let died = self
            .finish(
                space_id,
                SpaceState::Running,
                SpaceState::Stopped,
                None,
                Some(format!("stopped on its own: {reason}")),
            )
            .await?;
        Ok(died.then_some(owner))
    }
}
