//! The JSON API of feature permissions: the admins' rules and what each user may use.

use app::api::features::{ssr::FeaturesApi, FeatureAccess, FeatureRuleDto, SetFeatureRule};
use app::api::ssr::{AdminCaller, Caller};
use app::error::ErrorBody;
use app::ids::UserId;
use axum::extract::{Path, State};
use axum::Json;

use crate::error::ApiResult;
use crate::http::extract::ValidJson;
use crate::services::Services;

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
