//! What the UI shows before acting: the quota a new space would take, and a space's history.

use app::api::quota::{QuotaValues, UsageValues};
use app::api::spaces::{AuditEventDto, CreatePreview};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::access::Caller;
use super::audit::{event_dto, space_target};
use super::quota::limits_and_usage;
use super::Services;
use crate::domain::quota::{check_create, check_start, Usage};
use crate::entities::audit_event;
use crate::error::AppResult;

/// Most history entries a space page shows.
const HISTORY_LIMIT: u64 = 100;

impl Services {
    /// The caller's usage now, after creating a space from the template and after starting
    /// it, with the reason either would be refused (the same checks create and start make).
    pub async fn create_preview(
        &self,
        caller: &Caller,
        template_id: &str,
    ) -> AppResult<CreatePreview> {
        let template = self.get_template(caller, template_id).await?;
        let (limits, usage) = limits_and_usage(&self.db, &caller.user).await?;
        let name = "the new space";
        let refusal = check_create(&limits, &usage, name, template.storage_units)
            .err()
            .map(|r| r.to_string());
        let after_create = Usage {
            spaces: usage.spaces + 1,
            storage_units: usage.storage_units + template.storage_units,
            ..usage
        };
        let start_refusal = check_start(&limits, &after_create, name, template.compute_units)
            .err()
            .map(|r| r.to_string());
        let after_start = Usage {
            compute_units: after_create.compute_units + template.compute_units,
            ..after_create
        };
        let values = |u: Usage| UsageValues {
            spaces: u.spaces,
            compute_units: u.compute_units,
            storage_units: u.storage_units,
        };
        Ok(CreatePreview {
            template_id: template.id,
            compute_units: template.compute_units,
            storage_units: template.storage_units,
            quota: QuotaValues {
                max_spaces: limits.max_spaces,
                compute_units: limits.compute_units,
                storage_units: limits.storage_units,
            },
            usage: values(usage),
            after_create: values(after_create),
            after_start: values(after_start),
            refusal,
            start_refusal,
        })
    }

    /// A visible space's audit trail since it was created, newest first. Names are reused only
    /// after deletion, so the target plus the creation time picks exactly this space.
    pub async fn space_history(
        &self,
        caller: &Caller,
        space_id: &str,
    ) -> AppResult<Vec<AuditEventDto>> {
        let (space, _role) = self.visible_space(caller, space_id).await?;
        let owner = self.find_user(&space.owner_id).await?;
        let events = audit_event::Entity::find()
            .filter(audit_event::Column::Target.eq(space_target(&owner.username, &space.name)))
            .filter(audit_event::Column::At.gte(space.created_at))
            .order_by_desc(audit_event::Column::Id)
            .limit(HISTORY_LIMIT)
            .all(&self.db)
            .await?;
        Ok(events.into_iter().map(event_dto).collect())
    }
}
