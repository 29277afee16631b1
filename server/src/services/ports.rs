//! Ports of spaces: what listens in them (with where to open it), tunnels (public links to a
//! port: made by the owner within their tunnel quota, stored as a hash, revoked at once) and
//! the VS Code tunnel's sign-in code.

use std::time::Duration;

use app::api::ports::{
    ssr::PortsApi, CreateTunnel, ListeningPort, SpacePorts, TunnelCreated, TunnelDto,
    VscodeTunnelStatus,
};
use app::api::templates::Feature;
use app::ids::{SpaceId, TunnelId};
use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set, TransactionTrait,
};
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use super::access::{Caller, SpaceRole, Use};
use super::apps::links::{self, CODE_SERVER_PORT, VNC_PORT};
use super::apps::scan::{scan, Scan};
use super::audit::{record, space_target, Outcome};
use super::quota::{limits_and_usage, lock_owner};
use super::tokens::{hash_token, random_hex};
use super::{new_id, Services};
use crate::domain::quota::check_tunnel;
use crate::entities::{space, tunnel, user};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::live::Update;
use crate::runtime::{ExecOutput, ExecRequest};

/// How often an open tunnel connection checks its link again when nothing was announced.
const TUNNEL_RECHECK: Duration = Duration::from_secs(5);
/// What publishing a port at a public link takes, of the template, the owner and whoever
/// publishes it: the link forwards a port, so `tunnels` alone is not enough.
const TUNNEL_FEATURES: [Feature; 2] = [Feature::Tunnels, Feature::PortForwarding];

/// A tunnel that may be served now: its space and port.
pub struct OpenTunnel {
    pub tunnel_id: TunnelId,
    pub space: space::Model,
    pub port: u16,
}

fn tunnel_dto(t: tunnel::Model, space_name: String) -> TunnelDto {
    TunnelDto {
        id: t.id,
        space_id: t.space_id,
        space_name,
        port: u16::try_from(t.port).unwrap_or_default(),
        hint: t.hint,
        created_by: t.created_by,
        created_at: t.created_at.into(),
    }
}

/// The app Hangar runs on a port.
fn app_on(port: u16) -> Option<String> {
    match port {
        CODE_SERVER_PORT => Some("code-server".into()),
        VNC_PORT => Some("desktop (VNC)".into()),
        _ => None,
    }
}

impl Services {
    /// The id of the live space `name` of the user named `owner`, as [`Self::space_by_names`]
    /// finds it, reused for a moment: a page's every request through the proxy asks it.
    pub async fn space_id_by_names(&self, owner: &str, name: &str) -> ApiResult<Option<SpaceId>> {
        let generation = self.notifier.rights_generation();
        let read = async {
            Ok::<_, ApiError>(
                self.space_by_names(owner, name)
                    .await?
                    .map(|space| space.id),
            )
        };
        self.remembered
            .spaces_by_name
            .or_read((owner.to_owned(), name.to_owned()), generation, read)
            .await
    }

    /// A live space by its owner's username and its name.
    pub async fn space_by_names(&self, owner: &str, name: &str) -> ApiResult<Option<space::Model>> {
        let Some(owner) = user::Entity::find()
            .filter(user::Column::Username.eq(owner))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        Ok(space::Entity::find()
            .filter(space::Column::OwnerId.eq(owner.id))
            .filter(space::Column::Name.eq(name))
            .filter(space::is_live())
            .one(&self.db)
            .await?)
    }

    /// What listens in a space, as the caller sees it: where to open each port when they may.
    pub async fn ports_report(
        &self,
        caller: &Caller,
        space_id: &SpaceId,
        scan: Scan,
    ) -> ApiResult<SpacePorts> {
        let (space, _) = self.visible_space(caller, space_id).await?;
        let ports = match scan {
            _ if !space.state.is_running() => {
                return Ok(SpacePorts {
                    ports: Vec::new(),
                    note: Some(format!(
                        "the space is {}: start it to see its ports",
                        space.state
                    )),
                })
            }
            Scan::Pending => {
                return Ok(SpacePorts {
                    ports: Vec::new(),
                    note: Some("looking…".into()),
                })
            }
            Scan::Failed(reason) => {
                return Ok(SpacePorts {
                    ports: Vec::new(),
                    note: Some(format!("cannot see the space's ports: {reason}")),
                })
            }
            Scan::Ports(ports) => ports,
        };
        let features = self.effective_features(caller, &space).await?;
        let owner = self.find_user(&space.owner_id).await?;
        let declared = crate::services::spaces::devcontainer::devcontainer_status(&space)
            .map(|d| d.ports)
            .unwrap_or_default();
        let ports = ports
            .into_iter()
            .map(|p| {
                let may = features.contains(&Feature::PortForwarding)
                    || (p.port == CODE_SERVER_PORT && features.contains(&Feature::CodeServer));
                // The desktop's raw VNC opens through the desktop page, not as a web page.
                let url = (may && p.reachable && p.port != VNC_PORT)
                    .then(|| links::port_url(&self.config, &owner.username, &space.name, p.port))
                    .flatten();
                ListeningPort {
                    label: declared
                        .iter()
                        .find(|d| d.port == p.port)
                        .and_then(|d| d.label.clone()),
                    app: app_on(p.port),
                    port: p.port,
                    address: p.address,
                    reachable: p.reachable,
                    url,
                }
            })
            .collect();
        Ok(SpacePorts { ports, note: None })
    }

    /// Why a tunnel cannot be served now (as if it did not exist: visitors are strangers).
    async fn tunnel_refusal(&self, tunnel: &tunnel::Model) -> ApiResult<Option<space::Model>> {
        let Some(space) = space::Entity::find_by_id(tunnel.space_id.clone())
            .filter(space::is_live())
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let owner = self.find_user(&space.owner_id).await?;
        if !owner.active {
            return Ok(None);
        }
        let allowed = self
            .allowed_features_of(std::slice::from_ref(&owner.id))
            .await?;
        let template = super::features::space_features(&space)?;
        let owners = allowed.get(&owner.id);
        let open = TUNNEL_FEATURES
            .iter()
            .all(|f| template.contains(f) && owners.is_some_and(|a| a.contains(f)));
        Ok(open.then_some(space))
    }

    /// The tunnel behind a public link's secret, if it may be served.
    pub async fn open_tunnel(&self, secret: &str) -> ApiResult<OpenTunnel> {
        let gone = || ApiError::not_found_because("this public link does not exist (any more)");
        let tunnel = tunnel::Entity::find()
            .filter(tunnel::Column::SecretHash.eq(hash_token(secret)))
            .one(&self.db)
            .await?
            .ok_or_else(gone)?;
        let space = self.tunnel_refusal(&tunnel).await?.ok_or_else(gone)?;
        Ok(OpenTunnel {
            port: u16::try_from(tunnel.port).unwrap_or_default(),
            tunnel_id: tunnel.id,
            space,
        })
    }

    /// Resolves, with the reason, once the tunnel may no longer be served: revoked, its
    /// space deleted, or the owner no longer allowed tunnels. Checked on every change of its
    /// space (on any server) and every few seconds regardless.
    pub async fn tunnel_lost(self, tunnel_id: TunnelId, space_id: SpaceId) -> String {
        let mut changes = self.notifier.subscribe();
        let mut every = tokio::time::interval(TUNNEL_RECHECK);
        every.tick().await;
        loop {
            let check = tokio::select! {
                update = changes.recv() => match update {
                    Ok(Update::Changed(change)) => change.space_id.as_ref() == Some(&space_id),
                    Ok(Update::Resync) | Err(RecvError::Lagged(_)) => true,
                    Err(RecvError::Closed) => return "Hangar is shutting down".into(),
                },
                _ = every.tick() => true,
            };
            if !check {
                continue;
            }
            let row = tunnel::Entity::find_by_id(tunnel_id.clone())
                .one(&self.db)
                .await;
            match row {
                Ok(None) => return "the public link was revoked".into(),
                Ok(Some(tunnel)) => {
                    if let Ok(None) = self.tunnel_refusal(&tunnel).await {
                        return "the public link is no longer available".into();
                    }
                }
                // A database that does not answer proves nothing.
                Err(_) => {}
            }
        }
    }

    async fn tunnel_dtos(&self, rows: Vec<tunnel::Model>) -> ApiResult<Vec<TunnelDto>> {
        let ids: Vec<SpaceId> = rows.iter().map(|t| t.space_id.clone()).collect();
        let names: std::collections::HashMap<SpaceId, String> = space::Entity::find()
            .filter(space::Column::Id.is_in(ids))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|s| (s.id, s.name))
            .collect();
        Ok(rows
            .into_iter()
            .map(|t| {
                let name = names.get(&t.space_id).cloned().unwrap_or_default();
                tunnel_dto(t, name)
            })
            .collect())
    }
}

#[async_trait::async_trait]
impl PortsApi for Services {
    async fn space_ports(&self, caller: &Caller, id: &SpaceId) -> ApiResult<SpacePorts> {
        let (space, _) = self.visible_space(caller, id).await?;
        let found = if space.state.is_running() {
            match scan(self.runtime.as_ref(), &space.id).await {
                Ok(ports) => Scan::Ports(ports),
                Err(e) => Scan::Failed(e),
            }
        } else {
            Scan::Pending
        };
        self.ports_report(caller, id, found).await
    }

    async fn list_tunnels(&self, caller: &Caller, id: &SpaceId) -> ApiResult<Vec<TunnelDto>> {
        let (space, _) = self.visible_space(caller, id).await?;
        let rows = tunnel::Entity::find()
            .filter(tunnel::Column::SpaceId.eq(space.id.clone()))
            .order_by_asc(tunnel::Column::CreatedAt)
            .all(&self.db)
            .await?;
        self.tunnel_dtos(rows).await
    }

    async fn create_tunnel(
        &self,
        caller: &Caller,
        id: &SpaceId,
        input: CreateTunnel,
    ) -> ApiResult<TunnelCreated> {
        let (space, role) = self.space_for(caller, id, Use::Change).await?;
        if role == SpaceRole::Sharee {
            return Err(ApiError::forbidden(
                "this space is shared with you: only its owner can publish its ports",
            ));
        }
        for feature in TUNNEL_FEATURES {
            if let Some(mut refusal) = self.feature_refusal(caller, &space, feature).await? {
                if feature != Feature::Tunnels {
                    refusal.message = format!(
                        "a public link forwards a port, so it needs `{feature}` as well as \
                         `tunnels`: {}",
                        refusal.message
                    );
                }
                return Err(refusal);
            }
        }
        if input.port == 0 {
            return Err(ApiError::invalid("port", "give a port from 1 to 65535"));
        }
        let secret = random_hex(16);
        let url = links::tunnel_url(&self.config, &secret).ok_or_else(|| {
            ApiError::conflict(
                "this Hangar serves no public links: it is reached from other machines and \
                 has no apps domain; its operator gives --apps-domain (with wildcard DNS) to \
                 serve them",
            )
        })?;
        let owner = self.find_user(&space.owner_id).await?;
        let target = space_target(&owner.username, &space.name);
        let txn = self.db.begin().await?;
        lock_owner(&txn, &owner.id).await?;
        let (limits, usage) = limits_and_usage(&txn, &owner).await?;
        let action = format!("publishing port {} of \"{}\"", input.port, space.name);
        if let Err(refusal) = check_tunnel(&limits, &usage, &action) {
            txn.rollback().await?;
            record(&self.db, Some(caller), "tunnel.create", &target, Outcome::Refused,
                json!({"port": input.port, "reason": refusal.to_string(), "limit": refusal.dimension.as_str(), "usage": refusal.used, "quota": refusal.quota})).await;
            return Err(refusal.into());
        }
        let created = tunnel::ActiveModel {
            id: Set(new_id()),
            space_id: Set(space.id.clone()),
            owner_id: Set(owner.id.clone()),
            port: Set(i32::from(input.port)),
            secret_hash: Set(hash_token(&secret)),
            hint: Set(secret[..6].to_owned()),
            created_by: Set(caller.user.username.clone()),
            created_at: Set(Utc::now()),
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        record(
            &self.db,
            Some(caller),
            "tunnel.create",
            &target,
            Outcome::Success,
            json!({"port": input.port, "tunnel": created.id, "hint": created.hint}),
        )
        .await;
        self.users_changed(vec![owner.id.clone()]);
        self.space_changed(&space.id).await;
        Ok(TunnelCreated {
            tunnel: tunnel_dto(created, space.name),
            url,
        })
    }

    async fn revoke_tunnel(&self, caller: &Caller, id: &TunnelId) -> ApiResult<()> {
        let tunnel = tunnel::Entity::find_by_id(id.clone())
            .one(&self.db)
            .await?
            .ok_or_else(|| ApiError::not_found("tunnel"))?;
        let (space, role) = match self.visible_space(caller, &tunnel.space_id).await {
            Ok(found) => found,
            Err(e) if e.code == ErrorCode::NotFound => return Err(ApiError::not_found("tunnel")),
            Err(e) => return Err(e),
        };
        if role == SpaceRole::Sharee {
            return Err(ApiError::forbidden(
                "this space is shared with you: only its owner can revoke its public links",
            ));
        }
        tunnel::Entity::delete_by_id(tunnel.id.clone())
            .exec(&self.db)
            .await?;
        let owner = self.find_user(&space.owner_id).await?;
        record(
            &self.db,
            Some(caller),
            "tunnel.revoke",
            &space_target(&owner.username, &space.name),
            Outcome::Success,
            json!({"port": tunnel.port, "tunnel": tunnel.id, "hint": tunnel.hint}),
        )
        .await;
        // Open connections through it hear of it here (on every server) and close.
        self.users_changed(vec![owner.id.clone()]);
        self.space_changed(&space.id).await;
        Ok(())
    }

    async fn my_tunnels(&self, caller: &Caller) -> ApiResult<Vec<TunnelDto>> {
        let rows = tunnel::Entity::find()
            .filter(tunnel::Column::OwnerId.eq(caller.id().clone()))
            .order_by_asc(tunnel::Column::CreatedAt)
            .all(&self.db)
            .await?;
        self.tunnel_dtos(rows).await
    }

    async fn vscode_tunnel(&self, caller: &Caller, id: &SpaceId) -> ApiResult<VscodeTunnelStatus> {
        use futures_util::StreamExt;
        // The code signs the tunnel in to whoever enters it: a way into the space.
        let (space, _) = self
            .space_with_feature(caller, id, Feature::VscodeTunnel, Use::Change)
            .await?;
        if !space.state.is_running() {
            return Ok(VscodeTunnelStatus {
                device_code: None,
                verification_url: None,
                message: format!(
                    "the space is {}: start it to run the VS Code tunnel",
                    space.state
                ),
            });
        }
        let request = ExecRequest {
            cmd: vec![
                "/bin/sh".into(),
                "-c".into(),
                format!(
                    "if command -v code >/dev/null 2>&1; then tail -c 65536 {} 2>/dev/null; \
                     else echo 'NO-CLI'; fi",
                    super::apps::launch::VSCODE_TUNNEL_LOG
                ),
            ],
            ..Default::default()
        };
        let mut exec = self
            .runtime
            .exec(&space.id, request)
            .await
            .map_err(|e| ApiError::unavailable(e.to_string()))?;
        let mut log = Vec::new();
        let read = async {
            while let Some(chunk) = exec.output.next().await {
                if let Ok(ExecOutput::Stdout(bytes)) = chunk {
                    log.extend_from_slice(&bytes);
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), read).await;
        let log = String::from_utf8_lossy(&log);
        if log.trim() == "NO-CLI" {
            return Ok(VscodeTunnelStatus {
                device_code: None,
                verification_url: None,
                message: "this space's image has no VS Code CLI (`code`): use an image that \
                          provides it to run the VS Code tunnel"
                    .into(),
            });
        }
        Ok(match super::apps::launch::device_code(&log) {
            Some((code, url)) => VscodeTunnelStatus {
                message: format!("sign the tunnel in: open {url} and enter the code {code}"),
                device_code: Some(code),
                verification_url: Some(url),
            },
            None => VscodeTunnelStatus {
                device_code: None,
                verification_url: None,
                message: log
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .map_or_else(
                        || "the VS Code tunnel is starting".to_owned(),
                        |l| l.trim().to_owned(),
                    ),
            },
        })
    }
}
