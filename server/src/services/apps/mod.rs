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
use std::time::Duration;

use app::api::ssr::Credential;
use app::api::templates::Feature;
use app::ids::{SpaceId, UserId};

use super::access::{Caller, SpaceRole, Use};
use super::recent::Recent;
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
    /// Recent decisions of [`Services::port_access`]: a page's hundreds of requests ask the
    /// same question.
    decisions: Recent<PortQuestion, PortAnswer>,
}

/// How long a decision on a port is reused at most, whatever was announced: what is not
/// announced (an expiry) still stops being served within a second.
const DECISION_TTL: Duration = Duration::from_secs(1);
/// Most decisions kept (beyond, all are dropped).
const MAX_DECISIONS: usize = 4096;

/// Who asks what of which port: every part of the question the answer depends on.
#[derive(Clone, PartialEq, Eq, Hash)]
struct PortQuestion {
    user: UserId,
    admin: bool,
    /// The credential's kind and id, and a token's scopes.
    credential: String,
    space: SpaceId,
    port: u16,
    change: bool,
}

impl PortQuestion {
    fn new(caller: &Caller, space: &SpaceId, port: u16, intent: Use) -> Self {
        let credential = match &caller.credential {
            Credential::Session(id) => format!("session:{id}"),
            Credential::Token(id, scopes) => format!("token:{id}:{scopes:?}"),
            Credential::SshKey(id) => format!("key:{id}"),
        };
        PortQuestion {
            user: caller.id().clone(),
            admin: caller.user.role == app::api::auth::Role::Admin,
            credential,
            space: space.clone(),
            port,
            change: intent == Use::Change,
        }
    }
}

type PortAnswer = (space::Model, SpaceRole, Feature);

impl Apps {
    pub fn new(signing_key: Vec<u8>) -> Self {
        Self {
            scans: scan::PortScans::default(),
            signing_key,
            bridges: Arc::default(),
            decisions: Recent::new(DECISION_TTL, MAX_DECISIONS),
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
        // Read before the database: a change written meanwhile makes this answer stale.
        let generation = self.notifier.rights_generation();
        let question = PortQuestion::new(caller, space_id, port, intent);
        if let Some(answer) = self.apps.decisions.get(&question, generation) {
            return Ok(answer);
        }
        let answer = self
            .decide_port_access(caller, space_id, port, intent)
            .await?;
        self.apps
            .decisions
            .put(question, generation, answer.clone());
        Ok(answer)
    }

    async fn decide_port_access(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_question_tells_apart_ports_and_what_is_done_there() {
        let reader = PortQuestion {
            user: UserId::from("u"),
            admin: false,
            credential: "session:s".into(),
            space: SpaceId::from("s"),
            port: 8080,
            change: false,
        };
        let decisions = Recent::<PortQuestion, u32>::new(DECISION_TTL, MAX_DECISIONS);
        decisions.put(reader.clone(), 7, 1);
        assert_eq!(decisions.get(&reader, 7), Some(1));
        let other_port = PortQuestion {
            port: 8081,
            ..reader.clone()
        };
        assert_eq!(decisions.get(&other_port, 7), None);
        let writer = PortQuestion {
            change: true,
            ..reader
        };
        assert_eq!(decisions.get(&writer, 7), None);
    }
}
