//! Ports of a space: the ports listening inside it, the apps Hangar runs there (VS Code, a
//! desktop), tunnels (public links to a port) and the VS Code tunnel's sign-in code.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::ids::{SpaceId, TunnelId};
use crate::time::Timestamp;

/// A TCP port something listens on inside a space.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListeningPort {
    pub port: u16,
    /// The address it is bound to (`0.0.0.0`, `::`, `127.0.0.1`...).
    pub address: String,
    /// Reachable through Hangar: bound to every address, not to the loopback only.
    pub reachable: bool,
    /// Where to open it through Hangar's proxy, when the caller may.
    pub url: Option<String>,
    /// The app Hangar runs on it (`code-server`, `vnc`), if any.
    pub app: Option<String>,
    /// Its label in the repository's `devcontainer.json` (`portsAttributes.<port>.label`).
    #[serde(default)]
    pub label: Option<String>,
}

/// What listens in a space now.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpacePorts {
    pub ports: Vec<ListeningPort>,
    /// Why there is no list (the space is stopped, the scan failed...).
    pub note: Option<String>,
}

/// An app Hangar runs in a space.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppKind {
    /// code-server: VS Code in the browser.
    VsCode,
    /// A desktop shown by noVNC.
    Desktop,
}

/// A way into a running space's app, for the caller.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppLink {
    pub kind: AppKind,
    pub label: String,
    pub url: String,
}

#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TunnelDto {
    pub id: TunnelId,
    pub space_id: SpaceId,
    pub space_name: String,
    pub port: u16,
    /// The first characters of the link's secret, to tell links apart (the whole link is
    /// shown once, when made).
    pub hint: String,
    pub created_by: String,
    pub created_at: Timestamp,
}

/// `POST /api/v1/spaces/{id}/tunnels`: publish a port.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTunnel {
    #[cfg_attr(feature = "ssr", schema(minimum = 1, maximum = 65535))]
    pub port: u16,
}

/// A new tunnel and its link, shown this once (only a hash of it is kept).
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TunnelCreated {
    pub tunnel: TunnelDto,
    /// The public link. A path (`/t/…/`) is relative to Hangar's own address.
    pub url: String,
}

/// The VS Code tunnel of a space (`code tunnel`), as far as Hangar can tell.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VscodeTunnelStatus {
    /// The code to enter at `verification_url` to sign the tunnel in, while it waits for one.
    pub device_code: Option<String>,
    pub verification_url: Option<String>,
    /// What it is doing, in words (or why it is not running).
    pub message: String,
}

/// Where a browser signs in to an app on an origin of its own, on Hangar's origin.
pub const AUTHORIZE_PATH: &str = "/api/v1/apps/authorize";

/// Percent-encodes a query value (all but the unreserved characters).
pub fn encode_query_value(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Where a page of Hangar sends the browser to open an app. An app on an origin of its own
/// (`http://8080--api--ann.apps.localhost:3000/`) opens through [`AUTHORIZE_PATH`] on the
/// page's own origin, so that the session the page runs with signs the browser in to the app
/// (whichever of Hangar's addresses the page was loaded from: `localhost` or `127.0.0.1`);
/// a path opens as it is.
pub fn open_link(url: &str) -> String {
    let Some(rest) = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    else {
        return url.to_owned();
    };
    let (host, path) = rest.find('/').map_or((rest, "/"), |at| rest.split_at(at));
    format!(
        "{AUTHORIZE_PATH}?host={}&path={}",
        encode_query_value(host),
        encode_query_value(path)
    )
}

#[server(name = SpacePortsCall)]
pub async fn space_ports(id: SpaceId) -> Result<SpacePorts, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.space_ports(&caller, &id).await)
}

#[server]
pub async fn space_tunnels(id: SpaceId) -> Result<Vec<TunnelDto>, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.list_tunnels(&caller, &id).await)
}

#[server(name = CreateTunnelCall)]
pub async fn create_tunnel(id: SpaceId, port: u16) -> Result<TunnelCreated, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.create_tunnel(&caller, &id, CreateTunnel { port }).await)
}

#[server]
pub async fn revoke_tunnel(id: TunnelId) -> Result<(), ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.revoke_tunnel(&caller, &id).await)
}

/// The tunnels of the caller's spaces.
#[server]
pub async fn my_tunnels() -> Result<Vec<TunnelDto>, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.my_tunnels(&caller).await)
}

#[server]
pub async fn vscode_tunnel(id: SpaceId) -> Result<VscodeTunnelStatus, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.vscode_tunnel(&caller, &id).await)
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use super::{CreateTunnel, SpacePorts, TunnelCreated, TunnelDto, VscodeTunnelStatus};
    use crate::api::ssr::Caller;
    use crate::error::ApiResult;
    use crate::ids::{SpaceId, TunnelId};

    /// Ports, tunnels and the apps running in spaces.
    #[async_trait::async_trait]
    pub trait PortsApi: Send + Sync + 'static {
        /// What listens in a running space now.
        async fn space_ports(&self, caller: &Caller, id: &SpaceId) -> ApiResult<SpacePorts>;
        /// The space's tunnels (anyone who sees the space).
        async fn list_tunnels(&self, caller: &Caller, id: &SpaceId) -> ApiResult<Vec<TunnelDto>>;
        /// Publishes a port (the owner, or an admin); counts against the owner's quota.
        async fn create_tunnel(
            &self,
            caller: &Caller,
            id: &SpaceId,
            input: CreateTunnel,
        ) -> ApiResult<TunnelCreated>;
        /// Revokes a tunnel at once, closing what is open through it.
        async fn revoke_tunnel(&self, caller: &Caller, id: &TunnelId) -> ApiResult<()>;
        /// The tunnels of the caller's own spaces.
        async fn my_tunnels(&self, caller: &Caller) -> ApiResult<Vec<TunnelDto>>;
        /// The space's VS Code tunnel and its sign-in code.
        async fn vscode_tunnel(
            &self,
            caller: &Caller,
            id: &SpaceId,
        ) -> ApiResult<VscodeTunnelStatus>;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apps_on_their_own_origin_open_through_hangars_sign_in() {
        assert_eq!(
            open_link("http://8080--api--ann.apps.localhost:3000/"),
            "/api/v1/apps/authorize?host=8080--api--ann.apps.localhost%3A3000&path=%2F"
        );
        assert_eq!(
            open_link("https://8080--api--ann.apps.example.com/x?y=1"),
            "/api/v1/apps/authorize?host=8080--api--ann.apps.example.com&path=%2Fx%3Fy%3D1"
        );
        assert_eq!(
            open_link("https://a.example.com"),
            "/api/v1/apps/authorize?host=a.example.com&path=%2F"
        );
        assert_eq!(
            open_link("/spaces/ann/api/ports/8080/"),
            "/spaces/ann/api/ports/8080/"
        );
        assert_eq!(
            open_link("/novnc/vnc.html?path=x"),
            "/novnc/vnc.html?path=x"
        );
    }
}
