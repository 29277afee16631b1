//! Operators' views of the Docker engine: objects Hangar made that no space owns, the nodes
//! spaces run on (one engine, or a swarm's nodes), and moving a space between nodes.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::ids::SpaceId;
use crate::lifecycle::SpaceState;

/// A Docker object labelled as Hangar's.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerObject {
    /// `container`, `volume`, `network`, or `disk` (a volume's disk image and its loop
    /// device, named by the image's path).
    pub kind: String,
    pub name: String,
    /// What Docker knows it by (a disk: its path).
    pub id: String,
    /// The space its label names (empty when none).
    pub space_id: String,
}

/// What `GET /api/v1/admin/orphans` finds.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OrphanReport {
    /// This installation's objects whose space is unknown or deleted: `DELETE
    /// /api/v1/admin/orphans` removes them.
    pub orphans: Vec<DockerObject>,
    /// Hangar objects with no installation label (made before installations had ids) whose
    /// space this installation does not know: they may be another installation's, so they
    /// are removed only one by one, by name (`DELETE /api/v1/admin/unlabelled/{name}`).
    pub unlabelled: Vec<DockerObject>,
}

/// A space on a node's list.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSpaceDto {
    pub id: SpaceId,
    pub name: String,
    pub owner: String,
    pub state: SpaceState,
    pub compute_units: i64,
    /// Its container runs on this node now.
    pub running_here: bool,
    /// Its volumes are on this node (it starts here).
    pub kept_here: bool,
}

/// A machine spaces run on: the one Docker engine, or a node of the swarm.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeDto {
    pub id: String,
    pub name: String,
    /// `manager` or `worker` in a swarm, `engine` for the one Docker engine.
    pub role: String,
    /// `active`, `pause` or `drain`.
    pub availability: String,
    /// Why no space can start there now; absent when one can.
    pub problem: Option<String>,
    pub cpus: f64,
    pub memory_mib: i64,
    /// Compute units it can hold (its CPUs and memory, whichever runs out first).
    pub capacity_cu: i64,
    /// Compute units of the spaces running there.
    pub reserved_cu: i64,
    pub free_cu: i64,
    pub spaces: Vec<NodeSpaceDto>,
}

/// `POST /api/v1/admin/spaces/{id}/move`.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoveSpaceRequest {
    /// The node's id or hostname, from the nodes list.
    #[cfg_attr(
        feature = "ssr",
        schema(min_length = 1, max_length = 255, pattern = "[^ \\t\\n\\f\\r]")
    )]
    pub node: String,
}

/// What a move did.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoveReport {
    pub space_id: SpaceId,
    pub from: String,
    pub to: String,
    /// Bytes of its volumes copied.
    pub bytes: u64,
}

/// The nodes with their capacity, what is reserved and which spaces they run and keep.
#[server]
pub async fn list_nodes() -> Result<Vec<NodeDto>, crate::error::ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.nodes(&caller).await)
}

/// Moves a stopped space to another node (its volumes are copied there).
#[server(input = server_fn::codec::Json)]
pub async fn move_space(
    id: SpaceId,
    request: MoveSpaceRequest,
) -> Result<MoveReport, crate::error::ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.move_space(&caller, &id, request).await)
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use super::{DockerObject, MoveReport, MoveSpaceRequest, NodeDto, OrphanReport};
    use crate::api::spaces::{AuditEventDto, AuditFilter};
    use crate::api::ssr::Caller;
    use crate::error::ApiResult;
    use crate::ids::SpaceId;

    /// The audit log (admins only).
    #[async_trait::async_trait]
    pub trait AuditApi: Send + Sync + 'static {
        async fn audit_events(
            &self,
            caller: &Caller,
            filter: AuditFilter,
        ) -> ApiResult<Vec<AuditEventDto>>;
    }

    /// Operators' actions on the Docker engine (admins only).
    #[async_trait::async_trait]
    pub trait AdminApi: Send + Sync + 'static {
        async fn orphans(&self, caller: &Caller) -> ApiResult<OrphanReport>;
        async fn remove_orphans(&self, caller: &Caller) -> ApiResult<Vec<DockerObject>>;
        async fn remove_unlabelled(
            &self,
            caller: &Caller,
            name: &str,
        ) -> ApiResult<Vec<DockerObject>>;
        async fn nodes(&self, caller: &Caller) -> ApiResult<Vec<NodeDto>>;
        async fn move_space(
            &self,
            caller: &Caller,
            id: &SpaceId,
            request: MoveSpaceRequest,
        ) -> ApiResult<MoveReport>;
    }
}
