//! Docker objects labelled as Hangar's whose space the database does not know (or deleted):
//! listed for admins and removed only when an admin asks.

use std::collections::HashSet;

use sea_orm::{EntityTrait, QueryFilter, QuerySelect};
use serde_json::json;

use super::access::Caller;
use super::audit::{record, Outcome};
use super::Services;
use crate::entities::space;
use crate::error::{AppError, AppResult};
use crate::runtime::{ManagedObject, RuntimeError};

fn runtime_error(e: RuntimeError) -> AppError {
    AppError::Unavailable(format!("cannot list Docker objects: {e}"))
}

impl Services {
    pub async fn orphans(&self, caller: &Caller) -> AppResult<Vec<ManagedObject>> {
        caller.require_admin()?;
        let objects = self.runtime.list_managed().await.map_err(runtime_error)?;
        let live: HashSet<String> = space::Entity::find()
            .select_only()
            .column(space::Column::Id)
            .filter(space::is_live())
            .into_tuple::<String>()
            .all(&self.db)
            .await?
            .into_iter()
            .collect();
        Ok(objects
            .into_iter()
            .filter(|o| !live.contains(&o.space_id))
            .collect())
    }

    /// Removes every orphan (containers first, then networks and volumes); returns them.
    pub async fn remove_orphans(&self, caller: &Caller) -> AppResult<Vec<ManagedObject>> {
        let mut orphans = self.orphans(caller).await?;
        orphans.sort_by_key(|o| match o.kind.as_str() {
            "container" => 0,
            "network" => 1,
            _ => 2,
        });
        for object in &orphans {
            self.runtime.remove_managed(object).await.map_err(|e| {
                AppError::Unavailable(format!(
                    "could not remove {} {}: {e}",
                    object.kind, object.name
                ))
            })?;
        }
        record(&self.db, Some(caller), "orphans.remove", "docker", Outcome::Success,
            json!({"removed": orphans.iter().map(|o| format!("{} {}", o.kind, o.name)).collect::<Vec<_>>()})).await;
        Ok(orphans)
    }
}
