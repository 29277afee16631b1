//! The JSON API of the audit log and of what admins do to the machines: orphans, nodes, moves.

use app::api::admin::{
    ssr::AdminApi, ssr::AuditApi, DockerObject, MoveReport, MoveSpaceRequest, NodeDto, OrphanReport,
};
use app::api::spaces::{AuditEventDto, AuditFilter};
use app::api::ssr::AdminCaller;
use app::error::ErrorBody;
use app::ids::SpaceId;
use axum::extract::{Path, State};
use axum::Json;

use crate::error::ApiResult;
use crate::http::extract::{ValidJson, ValidQuery};
use crate::services::Services;

#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditFilter), responses((status = 200, body = [AuditEventDto]), (status = 403, description = "admins only", body = ErrorBody)))]
pub async fn audit(
    State(services): State<Services>,
    AdminCaller(caller): AdminCaller,
    ValidQuery(query): ValidQuery<AuditFilter>,
) -> ApiResult<Json<Vec<AuditEventDto>>> {
    Ok(Json(services.audit_events(&caller, query).await?))
}

#[utoipa::path(get, path = "/api/v1/admin/orphans", tag = "admin", responses((status = 200, description = "this installation's containers and volumes whose space is unknown or deleted, and unlabelled Hangar objects no space here owns", body = OrphanReport), (status = 403, description = "admins only", body = ErrorBody), (status = 503, description = "the Docker engine does not answer", body = ErrorBody)))]
pub async fn list_orphans(
    State(services): State<Services>,
    AdminCaller(caller): AdminCaller,
) -> ApiResult<Json<OrphanReport>> {
    Ok(Json(services.orphans(&caller).await?))
}

#[utoipa::path(delete, path = "/api/v1/admin/orphans", tag = "admin", responses((status = 200, description = "the orphans removed (unlabelled objects stay)", body = [DockerObject]), (status = 403, description = "admins only", body = ErrorBody), (status = 503, description = "the Docker engine does not answer", body = ErrorBody)))]
pub async fn remove_orphans(
    State(services): State<Services>,
    AdminCaller(caller): AdminCaller,
) -> ApiResult<Json<Vec<DockerObject>>> {
    Ok(Json(services.remove_orphans(&caller).await?))
}

#[utoipa::path(get, path = "/api/v1/admin/nodes", tag = "admin", responses((status = 200, description = "the machines spaces run on (the one Docker engine, or each node of the swarm) with their capacity, what is reserved, and the spaces running and kept there", body = [NodeDto]), (status = 401, body = ErrorBody), (status = 403, description = "admins only", body = ErrorBody), (status = 503, description = "the container engine does not answer", body = ErrorBody)))]
pub async fn list_nodes(
    State(services): State<Services>,
    AdminCaller(caller): AdminCaller,
) -> ApiResult<Json<Vec<NodeDto>>> {
    Ok(Json(services.nodes(&caller).await?))
}

#[utoipa::path(post, path = "/api/v1/admin/spaces/{id}/move", tag = "admin", params(("id" = String, Path, description = "the space id")), request_body = MoveSpaceRequest, responses((status = 200, description = "the space's volumes were copied to the node, where it starts from now on; the old node's copies are removed", body = MoveReport), (status = 400, description = "no such node", body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, description = "admins only", body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "the space is not stopped, the node cannot take it (drained, down), it is already there, or the runtime has one node only", body = ErrorBody), (status = 503, description = "the container engine does not answer", body = ErrorBody)))]
pub async fn move_space(
    State(services): State<Services>,
    AdminCaller(caller): AdminCaller,
    Path(id): Path<SpaceId>,
    ValidJson(request): ValidJson<MoveSpaceRequest>,
) -> ApiResult<Json<MoveReport>> {
    Ok(Json(services.move_space(&caller, &id, request).await?))
}

#[utoipa::path(delete, path = "/api/v1/admin/unlabelled/{name}", tag = "admin", params(("name" = String, Path, description = "the object's name, as listed under `unlabelled`")), responses((status = 200, description = "the objects removed", body = [DockerObject]), (status = 403, description = "admins only", body = ErrorBody), (status = 503, description = "the Docker engine does not answer", body = ErrorBody)))]
pub async fn remove_unlabelled(
    State(services): State<Services>,
    AdminCaller(caller): AdminCaller,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<DockerObject>>> {
    Ok(Json(services.remove_unlabelled(&caller, &name).await?))
}

/// What an admin looks at first: the machines and what they hold, who runs what, the idle
/// spaces, the users near their quotas, the latest failures and what the host enforces.
#[utoipa::path(get, path = "/api/v1/admin/overview", tag = "admin", responses((status = 200, body = app::api::overview::AdminOverview), (status = 401, body = ErrorBody), (status = 403, description = "admins only", body = ErrorBody)))]
pub async fn overview(
    State(services): State<Services>,
    AdminCaller(caller): AdminCaller,
) -> ApiResult<Json<app::api::overview::AdminOverview>> {
    use app::api::overview::ssr::OverviewApi;
    Ok(Json(services.overview(&caller).await?))
}
