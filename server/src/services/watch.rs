//! Live channels (web terminals, event streams, SSH sessions, proxied connections) keep
//! serving only while their caller keeps the right to: [`AccessWatch::lost`] resolves with the
//! reason once it is gone. It is checked again on every change that may concern it, on any
//! server sharing the database (the live notifier carries changes across), on a change
//! stream of its own that a lagging viewer cannot hold back, and every few seconds regardless
//! (for what ends without a change being announced, such as an expiry).

use std::time::Duration;

use app::ids::{SpaceId, UserId};
use sea_orm::EntityTrait;
use tokio::sync::broadcast::{self, error::RecvError};

use super::access::{Caller, Credential};
use super::Services;
use crate::entities::{session, ssh_key};
use crate::error::{ApiError, ErrorCode};
use crate::live::{Change, Update};

/// How often a watch checks again when nothing was announced.
const RECHECK: Duration = Duration::from_secs(5);

/// What a channel needs to go on serving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// Only that the caller is still signed in with the same credential.
    SignedIn,
    /// That they may still use this space (owner, sharee or admin).
    Space(SpaceId),
    /// That they may still use this feature of this space (see
    /// [`Services::space_with_feature`]).
    Feature(SpaceId, app::api::templates::Feature),
    /// That they may still forward their SSH agent into this space (see
    /// [`Services::agent_refusal`]): SSH there, own it, and share it with nobody.
    Agent(SpaceId),
}

/// A channel's watch on its caller's right to it.
pub struct AccessWatch {
    services: Services,
    caller: Caller,
    need: Need,
    changes: broadcast::Receiver<Update>,
    /// The periodic look, kept across calls of [`Self::lost`]: a channel that calls it again
    /// after each of its own events must not put the next look off each time.
    every: tokio::time::Interval,
    /// The look under way (a change that concerns the caller came, or time was up): kept
    /// here, so that a call of [`Self::lost`] cancelled meanwhile (the channel had work of
    /// its own) goes on with it at the next call instead of dropping it.
    look: Option<Look>,
}

/// A look at whether the caller still has what the channel needs: the reason when not.
type Look = std::pin::Pin<Box<dyn std::future::Future<Output = Option<String>> + Send>>;

impl AccessWatch {
    /// Resolves, with a reason fit to show the person, once the caller lost what the channel
    /// needs. Cancel-safe: select on it beside the channel's own work, and call it again; a
    /// change it received is looked at even when the call that received it was cancelled.
    pub async fn lost(&mut self) -> String {
        loop {
            if let Some(look) = self.look.as_mut() {
                let reason = look.await;
                self.look = None;
                if let Some(reason) = reason {
                    return reason;
                }
            }
            let due = tokio::select! {
                update = self.changes.recv() => match update {
                    Ok(Update::Changed(change)) => concerns(self.caller.id(), &self.need, &change),
                    // Something may have been missed: look.
                    Ok(Update::Resync) | Err(RecvError::Lagged(_)) => true,
                    Err(RecvError::Closed) => return "Hangar is shutting down".into(),
                },
                _ = self.every.tick() => true,
            };
            if due {
                let (services, caller, need) = (
                    self.services.clone(),
                    self.caller.clone(),
                    self.need.clone(),
                );
                self.look = Some(Box::pin(async move {
                    services.access_lost(&caller, &need).await
                }));
            }
        }
    }
}

/// Whether `change` may have taken away what `need` asks of `user`: a change of the user or
/// of the space, unless only who is connected to it changed (a session opening or closing
/// takes nobody's right away) or only their notifications did.
fn concerns(user: &UserId, need: &Need, change: &Change) -> bool {
    !change.presence
        && !change.notification
        && (change.users.iter().any(|u| u == user)
            || matches!(need, Need::Space(id) | Need::Feature(id, _) | Need::Agent(id) if change.space_id.as_ref() == Some(id)))
}

impl Services {
    /// Starts watching `caller`'s right to what `need` names.
    pub fn watch_access(&self, caller: &Caller, need: Need) -> AccessWatch {
        let mut every = tokio::time::interval_at(tokio::time::Instant::now() + RECHECK, RECHECK);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        AccessWatch {
            services: self.clone(),
            caller: caller.clone(),
            need,
            changes: self.notifier.subscribe(),
            every,
            look: None,
        }
    }

    /// Why `caller` no longer has what `need` asks, if they do not. A database that does not
    /// answer proves nothing: the channel goes on until it can be checked.
    pub async fn access_lost(&self, caller: &Caller, need: &Need) -> Option<String> {
        let user = match self.find_user(caller.id()).await {
            Ok(user) => user,
            Err(ApiError {
                code: ErrorCode::NotFound,
                ..
            }) => return Some("your account was deleted".into()),
            Err(_) => return None,
        };
        if !user.active {
            return Some("your account was deactivated".into());
        }
        let now = chrono::Utc::now();
        let credential_ended = match &caller.credential {
            Credential::Session(id) => session::Entity::find_by_id(id.clone())
                .one(&self.db)
                .await
                .map(|s| {
                    s.is_none_or(|s| s.expires_at <= now)
                        .then_some("you signed out, or your session ended")
                })
                .map_err(drop),
            Credential::Token(id, _) => self
                .token_alive(id)
                .await
                .map(|alive| (!alive).then_some("the API token was revoked or expired"))
                .map_err(drop),
            Credential::SshKey(id) => ssh_key::Entity::find_by_id(id.clone())
                .one(&self.db)
                .await
                .map(|k| k.is_none().then_some("the SSH key was removed"))
                .map_err(drop),
        };
        match credential_ended {
            Ok(Some(reason)) => return Some(reason.into()),
            Ok(None) => {}
            Err(_) => return None,
        }
        if let Need::Space(space_id) | Need::Feature(space_id, _) | Need::Agent(space_id) = need {
            // As they are now: a demoted admin keeps only what is their own or shared.
            let current = Caller {
                user: user.into(),
                credential: caller.credential.clone(),
            };
            let space = match self.visible_space(&current, space_id).await {
                Ok((space, _)) => space,
                Err(ApiError {
                    code: ErrorCode::NotFound,
                    ..
                }) => return Some("you no longer have access to this space".into()),
                Err(_) => return None,
            };
            let feature = match need {
                Need::Feature(_, feature) => Some(*feature),
                Need::Agent(_) => Some(app::api::templates::Feature::Ssh),
                _ => None,
            };
            if let Some(feature) = feature {
                match self.feature_refusal(&current, &space, feature).await {
                    Ok(Some(refusal)) => return Some(refusal.message),
                    Ok(None) => {}
                    Err(_) => return None,
                }
            }
            if let Need::Agent(space_id) = need {
                match self.agent_refusal(&current, space_id).await {
                    Ok(Some(refusal)) => return Some(refusal),
                    Ok(None) => {}
                    Err(_) => return None,
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each of a space's open sessions holds a watch: if one opening or closing made them all
    /// read their rights again, N sessions coming and going cost N² reads (200 SSH sessions
    /// ending held SQLite's pool of 4 past its 10 s timeout, and sign-ins were refused).
    #[test]
    fn a_session_coming_or_going_is_no_reason_to_look_again() {
        let (user, space) = (UserId::from("user-1"), SpaceId::from("space-1"));
        let change = |presence| Change {
            users: vec![user.clone()],
            space_id: Some(space.clone()),
            presence,
            ..Default::default()
        };
        for need in [
            Need::SignedIn,
            Need::Space(space.clone()),
            Need::Feature(space.clone(), app::api::templates::Feature::Ssh),
            Need::Agent(space.clone()),
        ] {
            assert!(concerns(&user, &need, &change(false)), "{need:?}");
            assert!(!concerns(&user, &need, &change(true)), "{need:?}");
        }
        // Another user's space changing concerns a watch on this space, not one on the user.
        let elsewhere = Change {
            users: vec![UserId::from("user-2")],
            space_id: Some(space.clone()),
            presence: false,
            ..Default::default()
        };
        assert!(concerns(&user, &Need::Space(space.clone()), &elsewhere));
        assert!(!concerns(&user, &Need::SignedIn, &elsewhere));
    }
}
