//! Docker objects labelled as Hangar's whose space the database does not know (or deleted):
//! listed for admins and removed only when an admin asks. Only this installation's objects
//! are orphans; objects of another installation are never seen, and unlabelled ones (made
//! before installations had ids) are adopted when their space is known here, and otherwise
//! listed apart and removed only by name.

use std::collections::HashSet;

use app::api::admin::{
    ssr::AdminApi, DockerObject, MoveReport, MoveSpaceRequest, NodeDto, OrphanReport,
};
use app::ids::SpaceId;
use sea_orm::{EntityTrait, QueryFilter, QuerySelect};
use serde_json::json;

use super::access::Caller;
use super::audit::{record, Outcome};
use super::Services;
use crate::entities::space;
use crate::error::{ApiError, ApiResult};
use crate::runtime::{ManagedObject, RuntimeError};

fn runtime_error(e: RuntimeError) -> ApiError {
    ApiError::unavailable(format!("cannot list Docker objects: {e}"))
}

fn dto(object: &ManagedObject) -> DockerObject {
    DockerObject {
        kind: object.kind.clone(),
        name: object.name.clone(),
        id: object.id.clone(),
        space_id: object.space_id.clone(),
    }
}

/// Containers before networks before volumes before the disk images under volumes: each
/// goes only once nothing uses it.
fn removal_order(object: &ManagedObject) -> u8 {
    match object.kind.as_str() {
        "container" => 0,
        "network" => 1,
        "disk" => 3,
        _ => 2,
    }
}

impl Services {
    /// Objects no live space of this installation owns: (orphans, unlabelled).
    async fn unowned(&self) -> ApiResult<(Vec<ManagedObject>, Vec<ManagedObject>)> {
        let objects = self.runtime.list_managed().await.map_err(runtime_error)?;
        let live: HashSet<SpaceId> = space::Entity::find()
            .select_only()
            .column(space::Column::Id)
            .filter(space::is_live())
            .into_tuple::<SpaceId>()
            .all(&self.db)
            .await?
            .into_iter()
            .collect();
        Ok(objects
            .into_iter()
            .filter(|o| !live.contains(&SpaceId::from(o.space_id.as_str())))
            .partition(|o| !o.unlabelled))
    }

    async fn remove_objects(&self, objects: &mut [ManagedObject]) -> ApiResult<()> {
        objects.sort_by_key(removal_order);
        for object in objects.iter() {
            self.runtime.remove_managed(object).await.map_err(|e| {
                ApiError::unavailable(format!(
                    "could not remove {} {}: {e}",
                    object.kind, object.name
                ))
            })?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl AdminApi for Services {
    async fn orphans(&self, caller: &Caller) -> ApiResult<OrphanReport> {
        caller.require_admin()?;
        let (orphans, unlabelled) = self.unowned().await?;
        Ok(OrphanReport {
            orphans: orphans.iter().map(dto).collect(),
            unlabelled: unlabelled.iter().map(dto).collect(),
        })
    }

    /// Removes every orphan of this installation; returns them. Unlabelled objects stay.
    async fn remove_orphans(&self, caller: &Caller) -> ApiResult<Vec<DockerObject>> {
        caller.require_admin()?;
        let (mut orphans, _) = self.unowned().await?;
        self.remove_objects(&mut orphans).await?;
        record(&self.db, Some(caller), "orphans.remove", "docker", Outcome::Success,
            json!({"removed": orphans.iter().map(|o| format!("{} {}", o.kind, o.name)).collect::<Vec<_>>()})).await;
        Ok(orphans.iter().map(dto).collect())
    }

    /// Removes the unlabelled objects with this name (one, unless a network's name repeats)
    /// that no space of this installation owns: the admin's explicit choice.
    async fn remove_unlabelled(&self, caller: &Caller, name: &str) -> ApiResult<Vec<DockerObject>> {
        caller.require_admin()?;
        let (_, unlabelled) = self.unowned().await?;
        let mut chosen: Vec<ManagedObject> =
            unlabelled.into_iter().filter(|o| o.name == name).collect();
        if chosen.is_empty() {
            return Err(ApiError::not_found_because(format!(
                "no unlabelled Hangar object named `{name}` that no space here owns: \
                 see GET /api/v1/admin/orphans"
            )));
        }
        self.remove_objects(&mut chosen).await?;
        record(
            &self.db,
            Some(caller),
            "orphans.remove_unlabelled",
            "docker",
            Outcome::Success,
            json!({"removed": chosen.iter().map(|o| format!("{} {}", o.kind, o.name)).collect::<Vec<_>>()}),
        )
        .await;
        Ok(chosen.iter().map(dto).collect())
    }

    async fn nodes(&self, caller: &Caller) -> ApiResult<Vec<NodeDto>> {
        self.node_list(caller).await
    }

    async fn move_space(
        &self,
        caller: &Caller,
        id: &SpaceId,
        request: MoveSpaceRequest,
    ) -> ApiResult<MoveReport> {
        self.move_space_to(caller, id, request).await
    }
}
