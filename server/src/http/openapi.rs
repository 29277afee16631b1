//! The OpenAPI description of the JSON API, generated from the handlers and wire types.

use app::api::admin::{DockerObject, OrphanReport};
use app::api::auth::{LoginRequest, Role, UserDto, UserEnvelope, UserRef};
use app::api::groups::{CreateGroup, GroupDto, UpdateGroup};
use app::api::quota::{QuotaReport, QuotaSource, QuotaValues, UsageValues, UserQuota};
use app::api::spaces::{AuditEventDto, CreatePreview, CreateSpace, ShareDto, SpaceDto};
use app::api::templates::{CreateTemplate, Feature, TemplateDto, UpdateTemplate, VolumeSpec};
use app::api::users::{
    ChangePassword, CreateSshKey, CreateToken, CreateUser, SshKeyDto, TokenCreated, TokenDto,
    UpdateUser,
};
use app::error::{ApiError, ErrorBody, ErrorCode};
use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::api;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Hangar API", description = "Spaces, templates, quotas and sharing. Authenticate with the session cookie from /auth/login or `Authorization: Bearer <api token>`. Errors are `{\"error\": {\"code\", \"message\", ...}}`."),
    paths(api::login, api::logout, api::me, api::my_quota, api::change_password, api::list_tokens, api::create_token, api::revoke_token, api::list_ssh_keys, api::add_ssh_key, api::remove_ssh_key, api::list_users, api::create_user, api::get_user, api::update_user, api::delete_user, api::user_quota, api::user_quotas, api::list_groups, api::create_group, api::get_group, api::update_group, api::delete_group, api::add_member, api::remove_member, api::list_templates, api::create_template, api::get_template, api::update_template, api::delete_template, api::create_preview, api::list_spaces, api::create_space, api::get_space, api::delete_space, api::start_space, api::stop_space, api::restart_space, api::space_history, api::list_shares, api::share_space, api::revoke_share, api::audit, api::list_orphans, api::remove_orphans, api::remove_unlabelled),
    components(schemas(DockerObject, OrphanReport, ChangePassword, CreatePreview, LoginRequest, Role, UserDto, UserEnvelope, UserRef, CreateGroup, GroupDto, UpdateGroup, QuotaReport, QuotaSource, QuotaValues, UsageValues, UserQuota, AuditEventDto, CreateSpace, ShareDto, SpaceDto, CreateTemplate, Feature, TemplateDto, UpdateTemplate, VolumeSpec, CreateSshKey, CreateToken, CreateUser, SshKeyDto, TokenCreated, TokenDto, UpdateUser, ApiError, ErrorBody, ErrorCode)),
    modifiers(&Security),
    security(("api_token" = [])),
)]
pub struct ApiDoc;

pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
