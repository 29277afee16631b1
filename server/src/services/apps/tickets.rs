//! Signing a browser in to an app domain without ever widening Hangar's session cookie.
//!
//! An app host (`8080--api--ann.apps.example.com`) has no Hangar session: a browser without
//! an app cookie there is sent to Hangar's own origin (`GET /api/v1/apps/authorize`), where its
//! session proves who it is and that it may use that port. Hangar answers with a redirect back
//! to the app host carrying a ticket: single-use, valid for a minute, bound to that host and
//! signed with the installation's key. The app host exchanges it (`/__hangar/auth`) for a
//! cookie of its own (host-only, HttpOnly), which names a server-side record tied to the
//! Hangar session it came from: signing out of Hangar, or losing access, ends it too.
//!
//! Tickets and app sessions are rows of the sessions table (shared by replicas, swept when
//! expired) under ids no browser session can have, holding only the SHA-256 of their secret.
//! The doors (`crate::http::apps`) carry them; the rules are here.

use app::api::ssr::{Caller, Credential};
use app::ids::{SpaceId, UserId};
use chrono::{Duration, Utc};
use hmac::{Hmac, Mac};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::route::{self, HostTarget};
use crate::entities::session;
use crate::error::{ApiError, ApiResult};
use crate::services::access::Use;
use crate::services::tokens::{hash_token, random_hex};
use crate::services::Services;

/// Where an app host takes its ticket (never passed on to the app).
pub const EXCHANGE_PATH: &str = "/__hangar/auth";
/// How long a ticket is good for.
const TICKET_SECS: i64 = 60;
/// Session-table ids of tickets and app sessions: never those of a browser session (which
/// are 22 characters of base64), and holding only a hash of the secret.
const TICKET_ID: &str = "apt-";
const APP_ID: &str = "app-";
/// The settings key of the installation's signing key.
const SIGNING_KEY: &str = "apps_signing_key";

/// What an app session (or a ticket for one) grants. Its keys are not those of a browser
/// session's data, so it can never pass for one.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Grant {
    /// The Hangar session it was granted from: it lasts no longer.
    app_parent: String,
    app_user: UserId,
    app_space: SpaceId,
    app_port: u16,
    app_host: String,
    /// The owner's username, to name the space in messages.
    #[serde(default)]
    app_owner: String,
}

/// A signed-in app request: who, and which port of which space the cookie is for.
#[derive(Clone)]
pub struct AppSession {
    pub caller: Caller,
    pub space_id: SpaceId,
    pub port: u16,
    /// The space owner's username.
    pub owner: String,
}

/// The installation's key for signing tickets: made by the first server, shared by replicas.
pub async fn signing_key(db: &DatabaseConnection) -> ApiResult<Vec<u8>> {
    crate::db::setting_made_once(db, SIGNING_KEY, random_hex(32))
        .await
        .map(String::into_bytes)
}

fn mac(key: &[u8], host: &str, secret: &str, expires: i64) -> Option<Hmac<Sha256>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).ok()?;
    mac.update(format!("{host}|{secret}|{expires}").as_bytes());
    Some(mac)
}

fn sign(key: &[u8], host: &str, secret: &str, expires: i64) -> Option<String> {
    use base64::Engine;
    let tag = mac(key, host, secret, expires)?.finalize().into_bytes();
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag))
}

/// The secret of a ticket whose signature, host and time hold.
fn verify(key: &[u8], host: &str, ticket: &str, now: i64) -> Option<String> {
    use base64::Engine;
    let mut parts = ticket.split('.');
    let (secret, expires, tag) = (parts.next()?, parts.next()?, parts.next()?);
    let expires: i64 = expires.parse().ok()?;
    if parts.next().is_some() || expires < now || expires > now + TICKET_SECS + 5 {
        return None;
    }
    let tag = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(tag)
        .ok()?;
    mac(key, host, secret, expires)?.verify_slice(&tag).ok()?;
    Some(secret.to_owned())
}

/// A stored, unexpired grant by its row id.
async fn grant(db: &DatabaseConnection, id: String) -> ApiResult<Option<Grant>> {
    let row = session::Entity::find_by_id(id)
        .filter(session::Column::ExpiresAt.gt(Utc::now()))
        .one(db)
        .await?;
    Ok(row.and_then(|r| serde_json::from_str(&r.data).ok()))
}

async fn store(
    db: &DatabaseConnection,
    id: String,
    grant: &Grant,
    lasts: Duration,
) -> ApiResult<()> {
    session::Entity::insert(session::ActiveModel {
        id: Set(id),
        data: Set(serde_json::to_string(grant).map_err(ApiError::internal)?),
        expires_at: Set(Utc::now() + lasts),
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

impl Services {
    /// The signed-in user of a request to an app host with the app cookie `secret`, if it is
    /// good: issued for this host, from a Hangar session that still exists, to a user who is
    /// still active.
    pub async fn app_session(&self, secret: &str, host: &str) -> ApiResult<Option<AppSession>> {
        let generation = self.notifier.rights_generation();
        let id = format!("{APP_ID}{}", hash_token(secret));
        let question = (id.clone(), host.to_owned());
        let read = self.read_app_session(id, host);
        self.remembered
            .app_sessions
            .or_read(question, generation, read)
            .await
    }

    async fn read_app_session(&self, id: String, host: &str) -> ApiResult<Option<AppSession>> {
        let db = &self.db;
        let Some(grant) = grant(db, id).await? else {
            return Ok(None);
        };
        if grant.app_host != host {
            return Ok(None);
        }
        let parent = session::Entity::find_by_id(grant.app_parent.clone())
            .filter(session::Column::ExpiresAt.gt(Utc::now()))
            .one(db)
            .await?;
        if parent.is_none() {
            return Ok(None);
        }
        let user = match self.find_user(&grant.app_user).await {
            Ok(user) if user.active => user,
            _ => return Ok(None),
        };
        Ok(Some(AppSession {
            caller: Caller {
                user: user.into(),
                credential: Credential::Session(grant.app_parent),
            },
            space_id: grant.app_space,
            port: grant.app_port,
            owner: grant.app_owner,
        }))
    }

    /// A ticket that signs the caller in to the app host `host` (lowercased, as the browser
    /// will ask for it) once they proved they may use that port of that space: one minute,
    /// single use, signed.
    pub async fn app_ticket(&self, caller: &Caller, host: &str) -> ApiResult<String> {
        let apps = self.config.apps();
        let domain = apps.domain().ok_or_else(|| {
            ApiError::not_found_because("this Hangar serves apps on no origins of their own")
        })?;
        let Some(HostTarget::Port(readings)) = route::parse_host(host, domain) else {
            return Err(ApiError::invalid(
                "host",
                "not an app address of this Hangar: open apps from the space's page",
            ));
        };
        let Credential::Session(parent) = &caller.credential else {
            return Err(ApiError::bad_request(
                "apps open in a browser signed in to Hangar, not with an API token",
            ));
        };
        let mut refusal = ApiError::not_found("space");
        let mut granted = None;
        for reading in &readings {
            let Some(space) = self.space_by_names(&reading.owner, &reading.space).await? else {
                continue;
            };
            // The app session it opens may do anything the app does.
            match self
                .port_access(caller, &space.id, reading.port, Use::Change)
                .await
            {
                Ok((space, _, _)) => {
                    granted = Some((space.id, reading));
                    break;
                }
                Err(e) => refusal = e,
            }
        }
        let Some((space_id, reading)) = granted else {
            return Err(refusal);
        };
        let secret = random_hex(32);
        let expires = Utc::now().timestamp() + TICKET_SECS;
        let grant = Grant {
            app_parent: parent.clone(),
            app_user: caller.id().clone(),
            app_space: space_id,
            app_port: reading.port,
            app_host: host.to_owned(),
            app_owner: reading.owner.clone(),
        };
        store(
            &self.db,
            format!("{TICKET_ID}{}", hash_token(&secret)),
            &grant,
            Duration::seconds(TICKET_SECS),
        )
        .await?;
        let tag = sign(&self.apps.signing_key, host, &secret, expires)
            .ok_or_else(|| ApiError::internal("cannot sign an app ticket"))?;
        Ok(format!("{secret}.{expires}.{tag}"))
    }

    /// Uses up a ticket for `host` (once, whoever races for it) and makes the app session;
    /// the secret of its cookie, when the ticket was good.
    pub async fn claim_app_ticket(&self, host: &str, ticket: &str) -> ApiResult<Option<String>> {
        let Some(secret) = verify(&self.apps.signing_key, host, ticket, Utc::now().timestamp())
        else {
            return Ok(None);
        };
        let db = &self.db;
        let ticket_id = format!("{TICKET_ID}{}", hash_token(&secret));
        let Some(grant) = grant(db, ticket_id.clone()).await? else {
            return Ok(None);
        };
        if grant.app_host != host {
            return Ok(None);
        }
        let taken = session::Entity::delete_by_id(ticket_id).exec(db).await?;
        if taken.rows_affected != 1 {
            return Ok(None);
        }
        let cookie_secret = random_hex(32);
        store(
            db,
            format!("{APP_ID}{}", hash_token(&cookie_secret)),
            &grant,
            Duration::days(self.config.session_days),
        )
        .await?;
        Ok(Some(cookie_secret))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_hold_only_for_their_host_and_minute() {
        let key = b"key";
        let now = 1_000_000;
        let tag = sign(key, "80--a1--bb.apps.test", "s3cret", now + 60).unwrap();
        let ticket = format!("s3cret.{}.{tag}", now + 60);
        assert_eq!(
            verify(key, "80--a1--bb.apps.test", &ticket, now).as_deref(),
            Some("s3cret")
        );
        assert_eq!(verify(key, "81--a1--bb.apps.test", &ticket, now), None);
        assert_eq!(verify(key, "80--a1--bb.apps.test", &ticket, now + 61), None);
        assert_eq!(verify(b"other", "80--a1--bb.apps.test", &ticket, now), None);
        let forged = format!("other.{}.{tag}", now + 60);
        assert_eq!(verify(key, "80--a1--bb.apps.test", &forged, now), None);
    }
}
