//! The SSH gateway's rules: which key is whose, which space a login names, who may enter it
//! (as for the web terminal: owner, sharee, admin; running; a template offering SSH) and how
//! many connections one user may keep; who may forward their SSH agent into a space (`ssh -A`);
//! the `~/.ssh/config` entries of a user's spaces; the live sessions of a space. The gateway
//! itself (`crate::ssh`) only carries bytes.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use app::api::page::all_pages;
use app::api::spaces::{ssr::SpaceQueries, SpaceListQuery};
use app::api::ssh::{ssr::SshApi, LiveSessionsDto, SshConfigDto, SshHostDto};
use app::api::templates::Feature;
use app::ids::{SpaceId, UserId};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
use serde_json::json;

use super::access::{Caller, Credential, SpaceRole};
use super::audit::{record, space_target, Outcome};
use super::Services;
use crate::entities::{space, ssh_key, user};
use crate::error::{ApiError, ApiResult};

/// The SSH gateway's live connections, for the per-user cap and the counts pages show, and
/// the address it listens on.
#[derive(Default)]
pub struct SshSessions {
    /// Where the gateway listens, once it does.
    address: OnceLock<SocketAddr>,
    live: Mutex<HashMap<u64, (UserId, SpaceId)>>,
    next: AtomicU64,
}

/// One live connection in [`SshSessions`], counted until dropped.
pub struct Ticket {
    registry: Arc<SshSessions>,
    id: u64,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.registry.live().remove(&self.id);
    }
}

impl SshSessions {
    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<u64, (UserId, SpaceId)>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where the gateway listens (set once, when it binds).
    pub fn listening_on(&self, address: SocketAddr) {
        let _ = self.address.set(address);
    }

    /// The address the gateway listens on, when it does.
    pub fn address(&self) -> Option<SocketAddr> {
        self.address.get().copied()
    }

    /// Counts a connection of `user` into `space`, unless they have `cap` already: then the
    /// number they have.
    pub fn open(
        self: &Arc<Self>,
        user: &UserId,
        space: &SpaceId,
        cap: usize,
    ) -> Result<Ticket, usize> {
        let mut live = self.live();
        let theirs = live.values().filter(|(u, _)| u == user).count();
        if theirs >= cap {
            return Err(theirs);
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        live.insert(id, (user.clone(), space.clone()));
        Ok(Ticket {
            registry: self.clone(),
            id,
        })
    }

    /// Live connections, all spaces together.
    pub fn count(&self) -> usize {
        self.live().len()
    }

    /// Live connections into a space.
    pub fn count_in(&self, space: &SpaceId) -> usize {
        self.live().values().filter(|(_, s)| s == space).count()
    }
}

/// An authenticated connection's way into a space.
pub struct SshEntry {
    pub space: space::Model,
    /// The owner's username.
    pub owner: String,
    pub role: SpaceRole,
    /// Counts the connection until dropped.
    pub ticket: Ticket,
    pub opened: Instant,
}

impl Services {
    /// Whether a public key (by its `SHA256:` fingerprint) is registered to an active user.
    pub async fn ssh_key_known(&self, fingerprint: &str) -> bool {
        matches!(self.ssh_caller(fingerprint).await, Ok(Some(_)))
    }

    /// The caller a public key (by its `SHA256:` fingerprint) stands for: the active user it
    /// is registered to, with the key as their credential. A key belongs to one account (the
    /// database holds fingerprints unique); should two rows ever hold it, it stands for
    /// nobody rather than for whichever comes first.
    pub async fn ssh_caller(&self, fingerprint: &str) -> ApiResult<Option<Caller>> {
        let mut holders = ssh_key::Entity::find()
            .filter(ssh_key::Column::Fingerprint.eq(fingerprint))
            .limit(2)
            .all(&self.db)
            .await?;
        let key = match (holders.pop(), holders.pop()) {
            (Some(key), None) => key,
            (None, _) => return Ok(None),
            (Some(_), Some(_)) => {
                tracing::error!(
                    fingerprint,
                    "an SSH key is registered to two accounts: it signs nobody in"
                );
                return Ok(None);
            }
        };
        let user = user::Entity::find_by_id(key.user_id.clone())
            .one(&self.db)
            .await?
            .filter(|u| u.active);
        Ok(user.map(|user| Caller {
            user: user.into(),
            credential: Credential::SshKey(key.id),
        }))
    }

    /// The space `login` names for `caller` (`<space>`, or `<owner>.<space>` for another's),
    /// ready to use: visible to them, running, offering SSH, and within their connection cap.
    /// A refusal is the one line to show them. Audited either way.
    pub async fn ssh_enter(
        &self,
        caller: &Caller,
        login: &str,
        peer: &str,
    ) -> Result<SshEntry, String> {
        let entered = self.ssh_entry(caller, login).await;
        let key = match &caller.credential {
            Credential::SshKey(id) => id.to_string(),
            _ => String::new(),
        };
        let (target, outcome, details) = match &entered {
            Ok(entry) => (
                space_target(&entry.owner, &entry.space.name),
                Outcome::Success,
                json!({"login": login, "key_id": key, "from": peer}),
            ),
            Err(reason) => (
                format!("ssh:{login}"),
                Outcome::Refused,
                json!({"login": login, "key_id": key, "from": peer, "reason": reason}),
            ),
        };
        record(
            &self.db,
            Some(caller),
            "ssh.open",
            &target,
            outcome,
            details,
        )
        .await;
        if let Ok(entry) = &entered {
            // Pages that show live sessions follow.
            self.space_presence_changed(&entry.space.id).await;
        }
        entered
    }

    async fn ssh_entry(&self, caller: &Caller, login: &str) -> Result<SshEntry, String> {
        let unknown = || {
            format!(
                "there is no space `{login}` of yours or shared with you: log in as `<space>`, \
                 or `<owner>.<space>` for a space shared with you"
            )
        };
        let (owner_name, space_name) = match login.split_once('.') {
            Some((owner, space)) => (owner, space),
            None => (caller.user.username.as_str(), login),
        };
        let valid = |name: &str| {
            name.len() <= 32 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if !valid(owner_name) || !valid(space_name) {
            return Err(unknown());
        }
        let unavailable = |e: ApiError| format!("Hangar cannot check this now: {}", e.message);
        let owner = user::Entity::find()
            .filter(user::Column::Username.eq(owner_name))
            .one(&self.db)
            .await
            .map_err(|e| unavailable(e.into()))?
            .ok_or_else(unknown)?;
        let found = space::Entity::find()
            .filter(space::is_live())
            .filter(space::Column::OwnerId.eq(owner.id.clone()))
            .filter(space::Column::Name.eq(space_name))
            .one(&self.db)
            .await
            .map_err(|e| unavailable(e.into()))?
            .ok_or_else(unknown)?;
        let role = match self.space_role(caller, &found).await {
            Ok(role) => role,
            Err(e) if e.code == app::error::ErrorCode::NotFound => return Err(unknown()),
            Err(e) => return Err(unavailable(e)),
        };
        // The template's feature and the admins' rules, for the caller and the owner alike.
        if let Some(refusal) = self
            .feature_refusal(caller, &found, Feature::Ssh)
            .await
            .map_err(unavailable)?
        {
            return Err(format!("space `{login}`: {}", refusal.message));
        }
        if !found.state.is_running() {
            let what_to_do = if role.can_manage() {
                "start it from the dashboard, then connect again"
            } else {
                "ask its owner to start it, then connect again"
            };
            return Err(format!("space `{login}` is {}; {what_to_do}", found.state));
        }
        let cap = self.config.ssh_max_sessions_per_user as usize;
        let ticket = self.ssh.open(caller.id(), &found.id, cap).map_err(|open| {
            format!(
                "you already have {open} SSH connection{} open, the most allowed: close one \
                 and connect again",
                if open == 1 { "" } else { "s" }
            )
        })?;
        Ok(SshEntry {
            space: found,
            owner: owner.username,
            role,
            ticket,
            opened: Instant::now(),
        })
    }

    /// Records the end of a connection that [`Services::ssh_enter`] let in.
    pub async fn ssh_left(&self, caller: &Caller, entry: SshEntry, why: &str) {
        let seconds = entry.opened.elapsed().as_secs();
        let (space_id, target) = (
            entry.space.id.clone(),
            space_target(&entry.owner, &entry.space.name),
        );
        drop(entry.ticket);
        record(
            &self.db,
            Some(caller),
            "ssh.close",
            &target,
            Outcome::Success,
            json!({"seconds": seconds, "why": why}),
        )
        .await;
        self.space_presence_changed(&space_id).await;
    }

    /// Why `caller` may not forward their SSH agent (`ssh -A`) into space `space_id` now, or
    /// `None` when they may: only its owner, and only while it is shared with nobody. Every
    /// shell in a space runs as the same Unix user, so whoever else has one there could use
    /// the forwarded keys (the reason git tokens are not given while a space is shared); an
    /// admin's agent would be the owner's to use. Asked when the client asks for forwarding
    /// and again for every connection to the agent made in the space.
    pub async fn ssh_agent_refusal(&self, caller: &Caller, space_id: &SpaceId) -> Option<String> {
        self.agent_refusal(caller, space_id)
            .await
            .unwrap_or_else(|e| {
                Some(format!(
                    "agent forwarding (ssh -A) is off: Hangar cannot check this now: {}",
                    e.message
                ))
            })
    }

    /// As [`Self::ssh_agent_refusal`], with a database that does not answer as an error (a
    /// watch on a relay running goes on until it can check).
    pub async fn agent_refusal(
        &self,
        caller: &Caller,
        space_id: &SpaceId,
    ) -> Result<Option<String>, ApiError> {
        let Some(found) = space::Entity::find_by_id(space_id.clone())
            .one(&self.db)
            .await?
        else {
            return Ok(Some(
                "agent forwarding (ssh -A) is off: the space is gone".into(),
            ));
        };
        if &found.owner_id != caller.id() {
            return Ok(Some(
                "agent forwarding (ssh -A) is for the space's owner only: their shells could \
                 use your keys"
                    .into(),
            ));
        }
        Ok(self.space_is_shared(space_id).await?.then(|| {
            "agent forwarding (ssh -A) is off while the space is shared: everyone with a shell \
             in it could use your keys"
                .into()
        }))
    }

    /// Whether the space still runs (false once it is stopping or gone); `None` when the
    /// database does not answer, which proves nothing.
    pub async fn ssh_space_running(&self, id: &SpaceId) -> Option<bool> {
        match space::Entity::find_by_id(id.clone()).one(&self.db).await {
            Ok(found) => Some(found.is_some_and(|s| s.state.is_running())),
            Err(_) => None,
        }
    }
}

/// The name clients should connect to: the listening address when it is a loopback one (only
/// this machine can connect), else the host of `--public-url`, else the listening address when
/// it names one interface, else the host the request came to.
fn host_name(listening: IpAddr, public_url: Option<&str>, request_host: Option<String>) -> String {
    let public = public_url
        .and_then(|url| url.parse::<http::Uri>().ok())
        .and_then(|uri| uri.host().map(|h| h.trim_matches(['[', ']']).to_owned()));
    if listening.is_loopback() {
        listening.to_string()
    } else if let Some(host) = public {
        host
    } else if !listening.is_unspecified() {
        listening.to_string()
    } else {
        request_host.unwrap_or_else(|| "localhost".into())
    }
}

/// The `Host` block of one space.
fn host_block(alias: &str, host: &str, port: u16, user: &str) -> String {
    format!("Host {alias}\n  HostName {host}\n  Port {port}\n  User {user}\n")
}

#[async_trait::async_trait]
impl SshApi for Services {
    async fn ssh_config(
        &self,
        caller: &Caller,
        request_host: Option<String>,
    ) -> ApiResult<SshConfigDto> {
        let Some(address) = self.ssh.address() else {
            return Ok(SshConfigDto {
                enabled: false,
                host: String::new(),
                port: 0,
                hosts: Vec::new(),
                text: "# The SSH gateway of this Hangar is turned off (--ssh-listen none).\n"
                    .into(),
            });
        };
        let host = host_name(
            address.ip(),
            self.config.public_url.as_deref(),
            request_host,
        );
        let port = address.port();
        // Every page: the config names every space the caller may reach.
        let spaces =
            all_pages(|page| self.list_spaces(caller, SpaceListQuery::of(false, page))).await?;
        let hosts: Vec<SshHostDto> = spaces
            .into_iter()
            .filter(|s| s.features.contains(&Feature::Ssh))
            .map(|s| {
                let user = if &s.owner.id == caller.id() {
                    s.name.clone()
                } else {
                    format!("{}.{}", s.owner.username, s.name)
                };
                let alias = format!("hangar-{user}");
                SshHostDto {
                    space_id: s.id,
                    text: host_block(&alias, &host, port, &user),
                    alias,
                    user,
                }
            })
            .collect();
        let mut text = format!(
            "# Hangar: the spaces of {} (ssh <Host>; scp, sftp and rsync use the same names)\n",
            caller.user.username
        );
        for entry in &hosts {
            text.push('\n');
            text.push_str(&entry.text);
        }
        Ok(SshConfigDto {
            enabled: true,
            host,
            port,
            hosts,
            text,
        })
    }

    async fn live_sessions(&self, caller: &Caller, id: &SpaceId) -> ApiResult<LiveSessionsDto> {
        let (space, _) = self.visible_space(caller, id).await?;
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Ok(LiveSessionsDto {
            terminal: count(self.terminals.sessions_in(space.id.as_str())),
            ssh: count(self.ssh.count_in(&space.id)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_name_is_the_one_clients_can_reach() {
        let any = IpAddr::from([0, 0, 0, 0]);
        let lan = IpAddr::from([10, 0, 0, 5]);
        let local = IpAddr::from([127, 0, 0, 1]);
        let public = Some("https://hangar.example.com:8443/");
        let asked = || Some("seen.example.com".to_owned());
        assert_eq!(host_name(local, public, asked()), "127.0.0.1");
        assert_eq!(host_name(any, public, asked()), "hangar.example.com");
        assert_eq!(host_name(lan, public, asked()), "hangar.example.com");
        assert_eq!(host_name(lan, None, asked()), "10.0.0.5");
        assert_eq!(host_name(any, None, asked()), "seen.example.com");
        assert_eq!(host_name(any, None, None), "localhost");
        assert_eq!(
            host_name(any, Some("http://[2001:db8::1]:3000"), None),
            "2001:db8::1"
        );
    }

    #[test]
    fn a_host_block_is_what_ssh_config_expects() {
        assert_eq!(
            host_block("hangar-ann.api", "h.example", 2222, "ann.api"),
            "Host hangar-ann.api\n  HostName h.example\n  Port 2222\n  User ann.api\n"
        );
    }
}
