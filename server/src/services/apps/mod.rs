//! The apps of a space: what listens in it ([`scan`]), the addresses its ports open at
//! ([`links`]), the apps Hangar starts in it ([`launch`]: code-server, the desktop, the VS Code
//! tunnel), the tickets that sign a browser in to an app's own origin ([`tickets`]), and who
//! may open which port. The proxy (`crate::proxy`) carries the bytes; the HTTP layer
//! (`crate::http::apps`) takes the requests.

pub mod launch;
pub mod links;
pub mod route;
pub mod scan;
pub mod tickets;

use std::sync::Arc;

use app::api::templates::Feature;
use app::ids::SpaceId;

use super::access::{Caller, SpaceRole, Use};
use super::slots::{Slot, Slots};
use super::Services;
use crate::entities::space;
use crate::error::{ApiError, ApiResult, ErrorCode};
use links::CODE_SERVER_PORT;

/// Desktop and port-forward connections one user may have open at once.
pub const MAX_BRIDGES_PER_USER: usize = 64;

/// What the apps of every space share on this server.
pub struct Apps {
    /// The scans of what listens in spaces that someone is watching.
    pub scans: scan::PortScans,
    /// Signs the tickets that sign browsers in to app domains.
    signing_key: Vec<u8>,
    /// Desktop and port-forward connections open, per user (each holds a TCP connection into
    /// a space).
    bridges: Arc<Slots>,
}

impl Apps {
    pub fn new(signing_key: Vec<u8>) -> Self {
        Self {
            scans: scan::PortScans::default(),
            signing_key,
            bridges: Arc::default(),
        }
    }
}

impl Services {
    /// The feature that opens `port` of the space for the caller, for what the request does
    /// there (a [`Use::Change`] needs a token's `write` scope): code-server's own port with
    /// the `code_server` feature, any port with `port_forwarding`.
    pub async fn port_access(
        &self,
        caller: &Caller,
        space_id: &SpaceId,
        port: u16,
        intent: Use,
    ) -> ApiResult<(space::Model, SpaceRole, Feature)> {
        if port == CODE_SERVER_PORT {
            match self
                .space_with_feature(caller, space_id, Feature::CodeServer, intent)
                .await
            {
                Ok((space, role)) => return Ok((space, role, Feature::CodeServer)),
                Err(refusal) if refusal.code == ErrorCode::Forbidden => {
                    return self
                        .space_with_feature(caller, space_id, Feature::PortForwarding, intent)
                        .await
                        .map(|(space, role)| (space, role, Feature::PortForwarding))
                        .map_err(|_| refusal);
                }
                Err(other) => return Err(other),
            }
        }
        self.space_with_feature(caller, space_id, Feature::PortForwarding, intent)
            .await
            .map(|(space, role)| (space, role, Feature::PortForwarding))
    }

    /// A place among the caller's open bridges (desktops, port forwards), or 429 when they
    /// have the most.
    pub fn bridge_slot(&self, caller: &Caller) -> ApiResult<Slot> {
        self.apps
            .bridges
            .take(caller.id(), MAX_BRIDGES_PER_USER)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::RateLimited,
                    format!(
                        "you have {MAX_BRIDGES_PER_USER} desktop and port-forward connections \
                         open, the most allowed: close one"
                    ),
                )
            })
    }
}
