//! JSON API v1 handlers of ports, tunnels, apps and feature permissions: thin wrappers over
//! the services, like [`super::api`], with the proxy's own routes (the VNC bridge, the live
//! port list and the app sign-in) declared beside them.

use app::api::features::{ssr::FeaturesApi, FeatureAccess, FeatureRuleDto, SetFeatureRule};
use app::api::ports::{
    ssr::PortsApi, CreateTunnel, SpacePorts, TunnelCreated, TunnelDto, VscodeTunnelStatus,
};
use app::api::ssr::{AdminCaller, Caller};
use app::error::ErrorBody;
use app::ids::{SpaceId, TunnelId, UserId};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::ValidJson;
use crate::error::ApiResult;
use crate::services::Services;
use crate::state::AppState;

/// What listens in a running space now, with where to open each port.
#[utoipa::path(get, path = "/api/v1/spaces/{id}/ports", tag = "ports", params(("id" = String, Path, description = "the space id")), responses((status = 200, body = SpacePorts), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn space_ports(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<SpaceId>,
) -> ApiResult<Json<SpacePorts>> {
    Ok(Json(services.space_ports(&caller, &id).await?))
}

#[utoipa::path(get, path = "/api/v1/spaces/{id}/tunnels", tag = "ports", params(("id" = String, Path, description = "the space id")), responses((status = 200, body = [TunnelDto]), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_tunnels(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<SpaceId>,
) -> ApiResult<Json<Vec<TunnelDto>>> {
    Ok(Json(services.list_tunnels(&caller, &id).await?))
}

/// Publishes a port at a public link (shown once), within the owner's tunnel quota.
#[utoipa::path(post, path = "/api/v1/spaces/{id}/tunnels", tag = "ports", request_body = CreateTunnel, params(("id" = String, Path, description = "the space id")), responses((status = 201, body = TunnelCreated), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, description = "a sharee, or the `tunnels` permission is missing", body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "quota_exceeded, or no public links are served", body = ErrorBody)))]
pub async fn create_tunnel(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<SpaceId>,
    ValidJson(input): ValidJson<CreateTunnel>,
) -> ApiResult<(StatusCode, Json<TunnelCreated>)> {
    Ok((
        StatusCode::CREATED,
        Json(services.create_tunnel(&caller, &id, input).await?),
    ))
}

/// Revokes a public link at once: what is open through it closes.
#[utoipa::path(delete, path = "/api/v1/tunnels/{id}", tag = "ports", params(("id" = String, Path, description = "the tunnel id")), responses((status = 204, description = "revoked"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_tunnel(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<TunnelId>,
) -> ApiResult<StatusCode> {
    services.revoke_tunnel(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The tunnels of the caller's own spaces.
#[utoipa::path(get, path = "/api/v1/me/tunnels", tag = "me", responses((status = 200, body = [TunnelDto]), (status = 401, body = ErrorBody)))]
pub async fn my_tunnels(
    State(services): State<Services>,
    caller: Caller,
) -> ApiResult<Json<Vec<TunnelDto>>> {
    Ok(Json(services.my_tunnels(&caller).await?))
}

/// The VS Code tunnel of a running space and its sign-in code.
#[utoipa::path(get, path = "/api/v1/spaces/{id}/vscode-tunnel", tag = "ports", params(("id" = String, Path, description = "the space id")), responses((status = 200, body = VscodeTunnelStatus), (status = 401, body = ErrorBody), (status = 403, description = "the `vscode_tunnel` permission is missing", body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn vscode_tunnel(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<SpaceId>,
) -> ApiResult<Json<VscodeTunnelStatus>> {
    Ok(Json(services.vscode_tunnel(&caller, &id).await?))
}

/// Every feature rule (admins only).
#[utoipa::path(get, path = "/api/v1/feature-rules", tag = "admin", responses((status = 200, body = [FeatureRuleDto]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_feature_rules(
    State(services): State<Services>,
    AdminCaller(caller): AdminCaller,
) -> ApiResult<Json<Vec<FeatureRuleDto>>> {
    Ok(Json(services.list_feature_rules(&caller).await?))
}

/// Allows or denies a feature to everyone, a group or a user (`inherit` removes the rule).
#[utoipa::path(put, path = "/api/v1/feature-rules", tag = "admin", request_body = SetFeatureRule, responses((status = 200, description = "every rule", body = [FeatureRuleDto]), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn set_feature_rule(
    State(services): State<Services>,
    AdminCaller(caller): AdminCaller,
    ValidJson(input): ValidJson<SetFeatureRule>,
) -> ApiResult<Json<Vec<FeatureRuleDto>>> {
    Ok(Json(services.set_feature_rule(&caller, input).await?))
}

/// What a user may use, and which rule decided each feature (admins; others see their own).
#[utoipa::path(get, path = "/api/v1/users/{id}/features", tag = "users", params(("id" = String, Path, description = "the user id")), responses((status = 200, body = FeatureAccess), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn user_features(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<UserId>,
) -> ApiResult<Json<FeatureAccess>> {
    Ok(Json(services.user_features(&caller, &id).await?))
}

/// What the caller may use.
#[utoipa::path(get, path = "/api/v1/me/features", tag = "me", responses((status = 200, body = FeatureAccess), (status = 401, body = ErrorBody)))]
pub async fn my_features(
    State(services): State<Services>,
    caller: Caller,
) -> ApiResult<Json<FeatureAccess>> {
    let id = caller.id().clone();
    Ok(Json(services.user_features(&caller, &id).await?))
}

/// The routes of this file and the proxy's, each declared once with its OpenAPI entry.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(space_ports))
        .routes(routes!(crate::proxy::ports::live_ports))
        .routes(routes!(list_tunnels, create_tunnel))
        .routes(routes!(revoke_tunnel))
        .routes(routes!(my_tunnels))
        .routes(routes!(vscode_tunnel))
        .routes(routes!(crate::proxy::vnc::vnc))
        .routes(routes!(crate::proxy::tcp::tcp))
        .routes(routes!(crate::proxy::apps::authorize))
        .routes(routes!(list_feature_rules, set_feature_rule))
        .routes(routes!(user_features))
        .routes(routes!(my_features))
}
