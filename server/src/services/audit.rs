//! The audit log: every state-changing action, its actor, target and outcome.

use app::api::admin::ssr::AuditApi;
use app::api::spaces::{AuditEventDto, AuditFilter};
use chrono::Utc;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};

use super::access::Caller;
use super::Services;
use crate::entities::audit_event;
use crate::error::{ApiError, ApiResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Refused,
    Failed,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
        }
    }
}

/// Records one event. Failing to audit is logged, never hidden, but does not undo the action.
pub async fn record(
    db: &impl ConnectionTrait,
    actor: Option<&Caller>,
    action: &str,
    target: &str,
    outcome: Outcome,
    details: serde_json::Value,
) {
    let actor = actor.map_or(Actor::Hangar("hangar"), Actor::Caller);
    record_by(db, actor, action, target, outcome, details).await;
}

/// Who did something.
#[derive(Clone, Copy)]
pub enum Actor<'a> {
    /// A signed-in user.
    Caller(&'a Caller),
    /// Hangar by itself, named by why (`idle`, `schedule`, `longest run`, `retention`).
    Hangar(&'a str),
}

/// [`record`] for any [`Actor`].
pub async fn record_by(
    db: &impl ConnectionTrait,
    actor: Actor<'_>,
    action: &str,
    target: &str,
    outcome: Outcome,
    details: serde_json::Value,
) {
    let (actor_id, actor) = match actor {
        Actor::Caller(c) => (Some(c.user.id.clone()), c.user.username.clone()),
        Actor::Hangar(name) => (None, name.to_owned()),
    };
    // The log's details are an object (its document says so): anything else is named.
    let details = match details {
        serde_json::Value::Object(_) => details,
        serde_json::Value::Null => serde_json::json!({}),
        other => serde_json::json!({ "value": other }),
    };
    let event = audit_event::ActiveModel {
        at: Set(Utc::now()),
        actor_id: Set(actor_id),
        actor: Set(actor),
        action: Set(action.to_owned()),
        target: Set(target.to_owned()),
        outcome: Set(outcome.as_str().to_owned()),
        details: Set(details.to_string()),
        ..Default::default()
    };
    if let Err(e) = audit_event::Entity::insert(event)
        .exec_without_returning(db)
        .await
    {
        tracing::error!(error = %e, action, target, "could not write the audit event");
    }
}

/// How the audit log names a space: by owner and name, as people know it.
pub fn space_target(owner: &str, space: &str) -> String {
    format!("space:{owner}/{space}")
}

pub fn event_dto(e: audit_event::Model) -> AuditEventDto {
    AuditEventDto {
        id: e.id,
        at: e.at.into(),
        actor: e.actor,
        action: e.action,
        target: e.target,
        outcome: e.outcome,
        details: serde_json::from_str(&e.details).unwrap_or_else(|_| serde_json::json!({})),
    }
}

#[async_trait::async_trait]
impl AuditApi for Services {
    async fn audit_events(
        &self,
        caller: &Caller,
        query: AuditFilter,
    ) -> ApiResult<Vec<AuditEventDto>> {
        caller.require_admin()?;
        let limit = query.limit.unwrap_or(50);
        if !(1..=500).contains(&limit) {
            return Err(ApiError::invalid(
                "limit",
                "limit must be between 1 and 500",
            ));
        }
        for (field, text) in [
            ("action", &query.action),
            ("actor", &query.actor),
            ("target", &query.target),
            ("outcome", &query.outcome),
        ] {
            if let Some(text) = text {
                crate::validate::at_most(field, text, 200)?;
            }
        }
        let mut select = audit_event::Entity::find().order_by_desc(audit_event::Column::Id);
        if let Some(action) = query.action {
            select = select.filter(audit_event::Column::Action.eq(action));
        }
        if let Some(actor) = query.actor {
            select = select.filter(audit_event::Column::Actor.eq(actor));
        }
        if let Some(target) = query.target {
            select = select.filter(audit_event::Column::Target.contains(target));
        }
        if let Some(outcome) = query.outcome {
            select = select.filter(audit_event::Column::Outcome.eq(outcome));
        }
        if let Some(before) = query.before {
            if before < 1 {
                return Err(ApiError::invalid(
                    "before",
                    "before is an event id: 1 or more",
                ));
            }
            select = select.filter(audit_event::Column::Id.lt(before));
        }
        let events = select.limit(limit).all(&self.db).await?;
        Ok(events.into_iter().map(event_dto).collect())
    }
}
