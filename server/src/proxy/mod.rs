//! The reverse-proxy engine: carries HTTP, WebSocket and raw TCP traffic to a port of a
//! running space. It dials the space's own container (its address from the runtime, or a
//! relay inside the space), strips Hangar's cookies and `Authorization`, sets
//! `X-Forwarded-*`/`Forwarded`, streams bodies, joins upgrades, and cuts the exchange when the
//! future it is given (the caller's right to it) completes.
//!
//! Who may reach which port is the services' (`crate::services::apps`); the doors that take
//! requests in (apps by path or on the apps domain, tunnels, the desktop, TCP forwards) are
//! the HTTP layer's (`crate::http::apps`). This room takes neither requests' credentials nor
//! the application's state.
//!
//! - [`connect`]: dialling a space's port (directly, or through a relay);
//! - [`forward`]: passing one HTTP exchange (and its upgrade) on;
//! - [`page`]: what the proxy answers when it cannot pass a request on.

pub mod connect;
pub mod forward;
pub mod page;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use app::ids::SpaceId;

use crate::entities::space;
use crate::error::{ApiError, ApiResult};
use crate::runtime::{Reach, Runtime};
use connect::{SpaceStream, Upstream};
use forward::HttpClient;

/// What the proxy keeps between requests.
pub struct Proxy {
    pub client: HttpClient,
    runtime: Arc<dyn Runtime>,
    /// How each space is reached, by the container it belongs to (a new container, a new
    /// look).
    reaches: Mutex<HashMap<SpaceId, (String, Reach)>>,
}

impl Proxy {
    pub fn new(runtime: Arc<dyn Runtime>) -> Self {
        Self {
            client: forward::client(connect::SpaceConnector::new(runtime.clone())),
            runtime,
            reaches: Mutex::default(),
        }
    }

    /// How the space's running container is reached; None when it has none.
    pub async fn reach(&self, space: &space::Model) -> ApiResult<Option<Reach>> {
        let container = space.container_id.clone().unwrap_or_default();
        {
            let known = self.reaches.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((id, reach)) = known.get(&space.id) {
                if *id == container && !container.is_empty() {
                    return Ok(Some(*reach));
                }
            }
        }
        let found = self
            .runtime
            .reach(&space.id)
            .await
            .map_err(|e| ApiError::unavailable(e.to_string()))?;
        let mut known = self.reaches.lock().unwrap_or_else(|p| p.into_inner());
        match found {
            Some(reach) if !container.is_empty() => {
                if known.len() > 4096 {
                    known.clear();
                }
                known.insert(space.id.clone(), (container, reach));
            }
            _ => {
                known.remove(&space.id);
            }
        }
        Ok(found)
    }

    /// A connection to `port` of the space's running container, or 503 saying why not
    /// (`what` names the port).
    pub async fn dial(
        &self,
        space: &space::Model,
        port: u16,
        what: &str,
    ) -> ApiResult<SpaceStream> {
        let reach = self
            .reach(space)
            .await?
            .ok_or_else(|| ApiError::unavailable("the space has no running container right now"))?;
        connect::dial(
            self.runtime.as_ref(),
            &Upstream::new(&space.id, reach, port),
            what,
        )
        .await
    }
}
