//! The JSON API of repositories in spaces: cloning a space's repository again, the caller's
//! dotfiles repository, the caller's tokens and SSH key for git hosts.

use app::api::repos::{
    ssr::ReposApi, DotfilesSetting, GitCredentialDto, GitSshKeyDto, SetGitCredential,
};
use app::api::spaces::SpaceDto;
use app::api::ssr::Caller;
use app::error::ErrorBody;
use app::ids::SpaceId;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use crate::error::{ApiError, ApiResult};
use crate::http::extract::ValidJson;
use crate::services::Services;

/// Clones the space's repository again, in the background, when its clone failed (the folder
/// must be absent: Hangar never clones over existing work); the space's `repository.state`
/// and `setup_log` follow it.
#[utoipa::path(post, path = "/api/v1/spaces/{id}/clone", tag = "spaces", params(("id" = String, Path, description = "the resource id")), responses((status = 202, body = SpaceDto), (status = 403, description = "shared with the caller: only its owner or an admin may", body = ErrorBody), (status = 409, description = "the space is not running, has no repository, or its clone did not fail", body = ErrorBody)))]
pub async fn clone_again(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<SpaceId>,
) -> ApiResult<(StatusCode, Json<SpaceDto>)> {
    Ok((
        StatusCode::ACCEPTED,
        Json(services.clone_again(&caller, &id).await?),
    ))
}

/// Builds the space again from its repository's `devcontainer.json`, in the background, and
/// restarts it on the image (the volumes stay; an unchanged repository is not built again);
/// the space's `devcontainer.state` and `setup_log` follow it.
#[utoipa::path(post, path = "/api/v1/spaces/{id}/rebuild", tag = "spaces", params(("id" = String, Path, description = "the resource id")), responses((status = 202, body = SpaceDto), (status = 401, body = ErrorBody), (status = 403, description = "shared with the caller: only its owner or an admin may, or an API token without the `write` scope", body = ErrorBody), (status = 404, description = "no such space, or not one the caller may see", body = ErrorBody), (status = 409, description = "the space is not running, has no cloned repository, its template does not build from devcontainer.json, or a build is under way", body = ErrorBody)))]
pub async fn rebuild(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<SpaceId>,
) -> ApiResult<(StatusCode, Json<SpaceDto>)> {
    Ok((
        StatusCode::ACCEPTED,
        Json(services.rebuild(&caller, &id).await?),
    ))
}

/// The caller's dotfiles repository.
#[utoipa::path(get, path = "/api/v1/me/dotfiles", tag = "me", responses((status = 200, body = DotfilesSetting)))]
pub async fn dotfiles(
    State(services): State<Services>,
    caller: Caller,
) -> ApiResult<Json<DotfilesSetting>> {
    Ok(Json(services.dotfiles(&caller).await?))
}

/// Sets the caller's dotfiles repository (null: none): cloned into `~/.dotfiles` at the first
/// start of each space made from then on, and installed.
#[utoipa::path(put, path = "/api/v1/me/dotfiles", tag = "me", request_body = DotfilesSetting, responses((status = 200, body = DotfilesSetting), (status = 400, description = "not a repository URL (or one with credentials in it)", body = ErrorBody)))]
pub async fn set_dotfiles(
    State(services): State<Services>,
    caller: Caller,
    ValidJson(input): ValidJson<DotfilesSetting>,
) -> ApiResult<Json<DotfilesSetting>> {
    Ok(Json(services.set_dotfiles(&caller, input).await?))
}

/// The caller's tokens for git hosts: host, user name, when saved and last used; never the
/// token.
#[utoipa::path(get, path = "/api/v1/me/git-credentials", tag = "me", responses((status = 200, body = [GitCredentialDto])))]
pub async fn git_credentials(
    State(services): State<Services>,
    caller: Caller,
) -> ApiResult<Json<Vec<GitCredentialDto>>> {
    Ok(Json(services.git_credentials(&caller).await?))
}

/// Saves the caller's token for a git host (`host` or `host:port`), replacing the one saved
/// before: kept encrypted, never shown again; git in the caller's own spaces gets it (never
/// while a space is shared).
#[utoipa::path(put, path = "/api/v1/me/git-credentials/{host}", tag = "me", params(("host" = String, Path, description = "`host` or `host:port`, such as github.com")), request_body = SetGitCredential, responses((status = 200, body = GitCredentialDto), (status = 403, description = "an API token without the `credentials` scope", body = ErrorBody), (status = 409, description = "the caller keeps tokens for as many hosts as allowed", body = ErrorBody), (status = 503, description = "the server's key file cannot be read or made", body = ErrorBody)))]
pub async fn set_git_credential(
    State(services): State<Services>,
    caller: Caller,
    Path(host): Path<String>,
    ValidJson(input): ValidJson<SetGitCredential>,
) -> ApiResult<Json<GitCredentialDto>> {
    Ok(Json(
        services.set_git_credential(&caller, &host, input).await?,
    ))
}

/// Removes the caller's token for a git host.
#[utoipa::path(delete, path = "/api/v1/me/git-credentials/{host}", tag = "me", params(("host" = String, Path, description = "`host` or `host:port`")), responses((status = 204, description = "removed"), (status = 403, description = "an API token without the `credentials` scope", body = ErrorBody)))]
pub async fn delete_git_credential(
    State(services): State<Services>,
    caller: Caller,
    Path(host): Path<String>,
) -> ApiResult<StatusCode> {
    services.delete_git_credential(&caller, &host).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's SSH key for git hosts (the public half and its fingerprint), if Hangar made
/// one.
#[utoipa::path(get, path = "/api/v1/me/git-ssh-key", tag = "me", responses((status = 200, body = GitSshKeyDto), (status = 401, body = ErrorBody), (status = 404, description = "no key made yet: POST makes one", body = ErrorBody)))]
pub async fn git_ssh_key(
    State(services): State<Services>,
    caller: Caller,
) -> ApiResult<Json<GitSshKeyDto>> {
    services
        .git_ssh_key(&caller)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("SSH key for git"))
}

/// Makes the caller a new SSH key (ed25519) for git hosts, replacing the one made before: add
/// its public half to the git host; git's SSH remotes in the caller's own spaces then use it
/// (never while a space is shared). The private half is kept encrypted and never shown.
#[utoipa::path(post, path = "/api/v1/me/git-ssh-key", tag = "me", responses((status = 201, body = GitSshKeyDto), (status = 401, body = ErrorBody), (status = 403, description = "an API token without the `credentials` scope", body = ErrorBody), (status = 503, description = "the server's key file cannot be read or made", body = ErrorBody)))]
pub async fn make_git_ssh_key(
    State(services): State<Services>,
    caller: Caller,
) -> ApiResult<(StatusCode, Json<GitSshKeyDto>)> {
    Ok((
        StatusCode::CREATED,
        Json(services.make_git_ssh_key(&caller).await?),
    ))
}

/// Removes the caller's SSH key for git hosts.
#[utoipa::path(delete, path = "/api/v1/me/git-ssh-key", tag = "me", responses((status = 204, description = "removed"), (status = 401, body = ErrorBody), (status = 403, description = "an API token without the `credentials` scope", body = ErrorBody), (status = 404, description = "no key to remove", body = ErrorBody)))]
pub async fn delete_git_ssh_key(
    State(services): State<Services>,
    caller: Caller,
) -> ApiResult<StatusCode> {
    services.delete_git_ssh_key(&caller).await?;
    Ok(StatusCode::NO_CONTENT)
}
