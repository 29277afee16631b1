//! The SSH gateway as the pages and the API see it: the `~/.ssh/config` entries of the
//! caller's spaces, and how many live sessions a space has.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::ids::SpaceId;

/// How to reach the caller's spaces over SSH.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshConfigDto {
    /// The gateway is on (`--ssh-listen` is not `none`).
    pub enabled: bool,
    /// The host name clients connect to.
    pub host: String,
    pub port: u16,
    /// One entry per space the caller owns or has been shared, by space name.
    pub hosts: Vec<SshHostDto>,
    /// All of it as `~/.ssh/config` text, ready to paste.
    pub text: String,
}

/// One `Host` block of `~/.ssh/config`.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshHostDto {
    pub space_id: SpaceId,
    /// The alias to type: `ssh <alias>`.
    pub alias: String,
    /// The login that selects the space: `<space>`, or `<owner>.<space>` for a shared one.
    pub user: String,
    /// The block itself.
    pub text: String,
}

/// Live sessions into a space, on the server that answers.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LiveSessionsDto {
    /// Web terminal sessions (each may have several viewers).
    pub terminal: u32,
    /// SSH connections (each may carry shells, commands, file transfers and forwards).
    pub ssh: u32,
}

/// The `~/.ssh/config` entries of the caller's spaces.
#[server]
pub async fn ssh_config() -> Result<SshConfigDto, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    let host = crate::api::ssr::request_parts()
        .ok()
        .and_then(|parts| ssr::request_host(&parts.headers));
    crate::api::ssr::answer(api.ssh_config(&caller, host).await)
}

/// How many sessions are open into a space.
#[server]
pub async fn live_sessions(id: SpaceId) -> Result<LiveSessionsDto, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.live_sessions(&caller, &id).await)
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use super::{LiveSessionsDto, SshConfigDto};
    use crate::api::ssr::Caller;
    use crate::error::ApiResult;
    use crate::ids::SpaceId;

    /// The SSH gateway's entries and the live sessions of a space.
    #[async_trait::async_trait]
    pub trait SshApi: Send + Sync + 'static {
        /// `host` is the host name the request came to (its `Host` header, without the
        /// port): the name clients use when nothing better is configured.
        async fn ssh_config(
            &self,
            caller: &Caller,
            host: Option<String>,
        ) -> ApiResult<SshConfigDto>;
        async fn live_sessions(&self, caller: &Caller, id: &SpaceId) -> ApiResult<LiveSessionsDto>;
    }

    /// The host name of a request's `Host` header, without its port.
    pub fn request_host(headers: &http::HeaderMap) -> Option<String> {
        let host = headers.get(http::header::HOST)?.to_str().ok()?;
        let name = match host.strip_prefix('[') {
            // [v6]:port
            Some(v6) => v6.split(']').next()?,
            None => host.rsplit_once(':').map_or(host, |(name, _)| name),
        };
        (!name.is_empty()).then(|| name.to_owned())
    }
}
