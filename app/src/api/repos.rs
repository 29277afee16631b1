//! Spaces made from a repository: what to clone (given at creation or preset by the template),
//! how the clone and the owner's dotfiles went at the first start, and the owner's dotfiles
//! repository.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::ids::SpaceId;
use crate::time::Timestamp;

use super::spaces::SpaceDto;

/// A repository to clone into a space at its first start.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepositoryInput {
    /// `https://host/path`, `ssh://[user@]host[:port]/path` or `user@host:path` (also
    /// `http://` and `git://`, which are not encrypted); at most 500 characters, with no
    /// password or token in it (git credentials are not kept in URLs).
    #[cfg_attr(feature = "ssr", schema(min_length = 1, max_length = 500))]
    pub url: String,
    /// The branch (or tag) to check out; absent: the repository's default branch. At most 200
    /// characters: letters, digits, `.`, `_`, `-` and `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "ssr",
        schema(max_length = 200, pattern = "^[A-Za-z0-9._/-]*$")
    )]
    pub branch: Option<String>,
    /// The folder to clone into, relative to the home (`~/` may lead), without `..`; absent:
    /// the repository's name. At most 200 characters: letters, digits, `.`, `_`, `-` and `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "ssr",
        schema(max_length = 200, pattern = "^(~/)?[A-Za-z0-9._/-]*$")
    )]
    pub folder: Option<String>,
}

/// How a step of a space's first start went (the repository's clone, the dotfiles).
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SetupState {
    /// Waits for the space's first start.
    Waiting,
    /// Being cloned (or installed) now.
    Cloning,
    /// Done.
    Cloned,
    /// Failed; `error` says why. Nothing is retried by itself.
    Failed,
}

impl SetupState {
    pub fn as_str(self) -> &'static str {
        match self {
            SetupState::Waiting => "waiting",
            SetupState::Cloning => "cloning",
            SetupState::Cloned => "cloned",
            SetupState::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            SetupState::Waiting,
            SetupState::Cloning,
            SetupState::Cloned,
            SetupState::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// The repository of a space and how its clone went.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositoryStatus {
    pub url: String,
    pub branch: Option<String>,
    /// Relative to the home.
    pub folder: String,
    pub state: SetupState,
    /// Why it failed.
    pub error: Option<String>,
}

/// The owner's dotfiles as installed in a space at its first start.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DotfilesStatus {
    pub url: String,
    pub state: SetupState,
    pub error: Option<String>,
}

/// The caller's dotfiles repository (`GET/PUT /api/v1/me/dotfiles`): cloned into `~/.dotfiles`
/// at the first start of each new space and installed by its first script of `install.sh`,
/// `install`, `bootstrap.sh`, `bootstrap`, `script/bootstrap`, `setup.sh`, `setup`,
/// `script/setup`; without one, its dotfiles are linked into the home.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DotfilesSetting {
    /// A repository URL as for a space's repository; null: none.
    #[cfg_attr(feature = "ssr", schema(max_length = 500))]
    pub url: Option<String>,
}

/// A token of the caller for a git host, as the API shows it: never the token itself.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitCredentialDto {
    /// `host` or `host:port`.
    pub host: String,
    pub username: String,
    pub created_at: Timestamp,
    /// When git in one of the caller's spaces last got it.
    pub last_used_at: Option<Timestamp>,
}

/// The caller's SSH key for git hosts, made by Hangar: the public half, to add to the git
/// host (GitHub: Settings → SSH keys); the private half never leaves Hangar except to git in
/// the caller's own spaces (never while a space is shared).
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitSshKeyDto {
    /// The OpenSSH line: `ssh-ed25519 AAAA… hangar:<user name>`.
    pub public_key: String,
    /// `SHA256:…`, as `ssh-keygen -l` and git hosts show it.
    pub fingerprint: String,
    pub created_at: Timestamp,
    /// When git in one of the caller's spaces last used it.
    pub last_used_at: Option<Timestamp>,
}

/// Saves the caller's token for a git host (`PUT /api/v1/me/git-credentials/{host}`),
/// replacing the one saved before; it is kept encrypted and never shown again.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetGitCredential {
    /// The user name git gives with the token (absent: `git`; GitHub and Gitea take any,
    /// GitLab wants `oauth2` for its tokens). At most 100 printable characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "ssr",
        schema(min_length = 1, max_length = 100, pattern = "^[!-~]+$")
    )]
    pub username: Option<String>,
    /// The token (or password), 1 to 1000 printable characters.
    #[cfg_attr(
        feature = "ssr",
        schema(min_length = 1, max_length = 1000, pattern = "^[!-~]+$")
    )]
    pub token: String,
}

/// "Clone again": clones the space's repository once more, when its clone failed and the
/// folder is absent.
/// Where the image built from a space's `devcontainer.json` stands.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BuildState {
    /// Reading `devcontainer.json` and gathering the build's context.
    Reading,
    /// The engine builds the image (its log in `setup_log`).
    Building,
    /// Built: the space runs it (after a restart Hangar made).
    Built,
    /// Reading or building failed: the space runs the template's image; `error` says why.
    Failed,
    /// The repository has no `devcontainer.json`: the space runs the template's image.
    Absent,
}

impl BuildState {
    pub fn as_str(self) -> &'static str {
        match self {
            BuildState::Reading => "reading",
            BuildState::Building => "building",
            BuildState::Built => "built",
            BuildState::Failed => "failed",
            BuildState::Absent => "absent",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            BuildState::Reading,
            BuildState::Building,
            BuildState::Built,
            BuildState::Failed,
            BuildState::Absent,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// A port `devcontainer.json` asks to forward, with its label.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeclaredPort {
    pub port: u16,
    pub label: Option<String>,
}

/// The image built from a space's `devcontainer.json`, and what of the file Hangar did not
/// apply.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevContainerStatus {
    pub state: BuildState,
    pub error: Option<String>,
    /// The file read, relative to the repository's folder.
    pub config: Option<String>,
    /// The image the space runs (built, or named by the file).
    pub image: Option<String>,
    /// What the file asks that Hangar does not do, each with the reason.
    #[serde(default)]
    pub ignored: Vec<String>,
    /// `forwardPorts`, with `portsAttributes.label`.
    #[serde(default)]
    pub ports: Vec<DeclaredPort>,
}

#[server(name = RebuildCall)]
pub async fn rebuild(id: SpaceId) -> Result<SpaceDto, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.rebuild(&caller, &id).await)
}

#[server(name = CloneAgainCall)]
pub async fn clone_again(id: SpaceId) -> Result<SpaceDto, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.clone_again(&caller, &id).await)
}

#[server(name = DotfilesCall)]
pub async fn my_dotfiles() -> Result<DotfilesSetting, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.dotfiles(&caller).await)
}

#[server(name = SetDotfilesCall, input = server_fn::codec::Json)]
pub async fn set_dotfiles(input: DotfilesSetting) -> Result<DotfilesSetting, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.set_dotfiles(&caller, input).await)
}

#[server(name = GitCredentialsCall)]
pub async fn my_git_credentials() -> Result<Vec<GitCredentialDto>, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.git_credentials(&caller).await)
}

#[server(name = SetGitCredentialCall, input = server_fn::codec::Json)]
pub async fn set_git_credential(
    host: String,
    input: SetGitCredential,
) -> Result<GitCredentialDto, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.set_git_credential(&caller, &host, input).await)
}

#[server(name = DeleteGitCredentialCall)]
pub async fn delete_git_credential(host: String) -> Result<(), ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.delete_git_credential(&caller, &host).await)
}

#[server(name = GitSshKeyCall)]
pub async fn my_git_ssh_key() -> Result<Option<GitSshKeyDto>, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.git_ssh_key(&caller).await)
}

#[server(name = MakeGitSshKeyCall)]
pub async fn make_git_ssh_key() -> Result<GitSshKeyDto, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.make_git_ssh_key(&caller).await)
}

#[server(name = DeleteGitSshKeyCall)]
pub async fn delete_git_ssh_key() -> Result<(), ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.delete_git_ssh_key(&caller).await)
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use super::{DotfilesSetting, GitCredentialDto, GitSshKeyDto, SetGitCredential};
    use crate::api::spaces::SpaceDto;
    use crate::api::ssr::Caller;
    use crate::error::ApiResult;
    use crate::ids::SpaceId;

    /// Repositories in spaces: cloning again, the caller's dotfiles.
    #[async_trait::async_trait]
    pub trait ReposApi: Send + Sync + 'static {
        async fn clone_again(&self, caller: &Caller, id: &SpaceId) -> ApiResult<SpaceDto>;
        async fn rebuild(&self, caller: &Caller, id: &SpaceId) -> ApiResult<SpaceDto>;
        async fn dotfiles(&self, caller: &Caller) -> ApiResult<DotfilesSetting>;
        async fn set_dotfiles(
            &self,
            caller: &Caller,
            input: DotfilesSetting,
        ) -> ApiResult<DotfilesSetting>;
        async fn git_credentials(&self, caller: &Caller) -> ApiResult<Vec<GitCredentialDto>>;
        async fn set_git_credential(
            &self,
            caller: &Caller,
            host: &str,
            input: SetGitCredential,
        ) -> ApiResult<GitCredentialDto>;
        async fn delete_git_credential(&self, caller: &Caller, host: &str) -> ApiResult<()>;
        /// The caller's SSH key for git hosts, if Hangar made one.
        async fn git_ssh_key(&self, caller: &Caller) -> ApiResult<Option<GitSshKeyDto>>;
        /// Makes the caller a new SSH key for git hosts, replacing the one made before.
        async fn make_git_ssh_key(&self, caller: &Caller) -> ApiResult<GitSshKeyDto>;
        async fn delete_git_ssh_key(&self, caller: &Caller) -> ApiResult<()>;
    }
}
