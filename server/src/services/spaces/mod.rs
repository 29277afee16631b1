//! Spaces: the queries that list and show them, a space's history and what creating one
//! would do. Their lifecycle's rules (creation within quota, transitions recorded in the
//! database first) are `lifecycle`'s, the carrying out through the runtime (in the
//! background, one operation per space at a time) the [`driver`]'s, sharing `sharing`'s.

pub mod autostop;
pub mod devcontainer;
pub mod driver;
mod lifecycle;
pub mod setup;
mod sharing;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use app::api::auth::UserRef;
use app::api::quota::{QuotaValues, UsageValues};
use app::api::spaces::{
    ssr::SpaceQueries, AuditEventDto, CreatePreview, ShareDto, SpaceDto, SpaceListQuery,
    VolumeUsage,
};
use app::api::templates::{ssr::TemplatesApi, Feature, VolumeSpec};
use app::ids::{SpaceId, TemplateId, UserId};
use sea_orm::sea_query::Condition;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::access::{Caller, SpaceRole};
use super::audit::{event_dto, space_target};
use super::groups::user_ref;
use super::paging::Keyset;
use super::quota::limits_and_usage;
use super::{from_json, Services};
use crate::domain::quota::{check_create, check_start, Usage};
use crate::entities::{audit_event, share, space};
use crate::error::{ApiError, ApiResult};
use crate::runtime::SpaceSpec;

/// Most history entries a space page shows.
const HISTORY_LIMIT: u64 = 100;

/// The audit actions of sharing and unsharing a space (their details name the sharee).
pub const SHARE_EVENT: &str = "space.share";
pub const UNSHARE_EVENT: &str = "space.unshare";

/// One async lock per space, so that runtime operations on a space never overlap.
#[derive(Default)]
pub struct SpaceLocks {
    locks: Mutex<HashMap<SpaceId, Arc<tokio::sync::Mutex<()>>>>,
}

impl SpaceLocks {
    /// The space's lock if nobody holds it now.
    pub fn try_lock(&self, space_id: &SpaceId) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        self.of(space_id).try_lock_owned().ok()
    }

    pub(crate) fn of(&self, space_id: &SpaceId) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        // Forget locks nobody holds, so the map does not grow with every space ever seen.
        if locks.len() > 1024 {
            locks.retain(|_, lock| Arc::strong_count(lock) > 1);
        }
        locks.entry(space_id.clone()).or_default().clone()
    }
}

pub fn spec_of(space: &space::Model, owner: &str) -> ApiResult<SpaceSpec> {
    let mut spec = template_spec_of(space, owner)?;
    devcontainer::apply(space, &mut spec);
    Ok(spec)
}

/// What the runtime is told of the space as its template made it, without its
/// `devcontainer.json`.
pub fn template_spec_of(space: &space::Model, owner: &str) -> ApiResult<SpaceSpec> {
    Ok(SpaceSpec {
        id: space.id.clone(),
        name: space.name.clone(),
        owner: owner.to_owned(),
        image: space.image.clone(),
        command: space
            .command
            .as_deref()
            .map(|c| from_json(c, "space command"))
            .transpose()?,
        env: from_json(&space.env, "space env")?,
        volumes: from_json(&space.volumes, "space volumes")?,
        compute_units: space.compute_units,
        privileged: space.privileged,
        raw_sockets: space.raw_sockets,
        cap_add: Vec::new(),
        tmpfs: Vec::new(),
        shm_size_bytes: None,
        user: None,
    })
}

impl Services {
    /// How the audit log names the space (`owner/name`; the owner's name left empty should
    /// the owner be gone).
    pub async fn audit_target_of(&self, space: &space::Model) -> String {
        let owner = self
            .find_user(&space.owner_id)
            .await
            .map(|u| u.username)
            .unwrap_or_default();
        space_target(&owner, &space.name)
    }

    async fn space_dtos(
        &self,
        caller: &Caller,
        spaces: Vec<(space::Model, SpaceRole)>,
    ) -> ApiResult<Vec<SpaceDto>> {
        let ids: Vec<SpaceId> = spaces.iter().map(|(s, _)| s.id.clone()).collect();
        let shares = share::Entity::find()
            .filter(share::Column::SpaceId.is_in(ids))
            .order_by_asc(share::Column::GrantedAt)
            .all(&self.db)
            .await?;
        let mut user_ids: Vec<UserId> = spaces.iter().map(|(s, _)| s.owner_id.clone()).collect();
        user_ids.extend(shares.iter().map(|s| s.user_id.clone()));
        user_ids.sort();
        user_ids.dedup();
        // The caller is known already; a list of only their own unshared spaces needs no lookup.
        user_ids.retain(|id| id != caller.id());
        let others = if user_ids.is_empty() {
            Vec::new()
        } else {
            self.users_by_ids(user_ids).await?
        };
        // What each owner and the caller may use, for the features the caller gets in each.
        let mut deciders: Vec<UserId> = spaces.iter().map(|(s, _)| s.owner_id.clone()).collect();
        deciders.push(caller.id().clone());
        deciders.sort();
        deciders.dedup();
        let allowed = self.allowed_features_of(&deciders).await?;
        let nothing = std::collections::BTreeSet::new();
        let mine = allowed.get(caller.id()).unwrap_or(&nothing);
        let users: HashMap<UserId, UserRef> = others
            .iter()
            .map(user_ref)
            .chain([UserRef::from(&caller.user)])
            .map(|u| (u.id.clone(), u))
            .collect();
        // Their stops: the templates' settings, in the owners' time zones.
        let templates = self
            .templates_of(&spaces.iter().map(|(s, _)| s).collect::<Vec<_>>())
            .await?;
        let zones: HashMap<&UserId, Option<&str>> = others
            .iter()
            .map(|u| (&u.id, u.time_zone.as_deref()))
            .chain([(&caller.user.id, caller.user.time_zone.as_deref())])
            .collect();
        let reader_tz = caller.user.time_zone.as_deref();
        let mut out = Vec::with_capacity(spaces.len());
        for (space, role) in spaces {
            let stops = autostop::stops_of(
                &space,
                space.template_id.as_ref().and_then(|id| templates.get(id)),
                zones.get(&space.owner_id).copied().flatten(),
            );
            let coming_stop = self.autostop_view(&space, &stops, reader_tz);
            let starts_at = self.next_start_view(&space, &stops, reader_tz);
            let last_activity = Self::last_activity_view(&space);
            let deletes_at = self.deletes_at_view(&space);
            let repository = setup::repository_status(&space);
            let dotfiles = setup::dotfiles_status(&space);
            let devcontainer = devcontainer::devcontainer_status(&space);
            let owner = users
                .get(&space.owner_id)
                .ok_or_else(|| ApiError::internal("space owner missing"))?;
            let shared_with = if role.can_manage() {
                shares
                    .iter()
                    .filter(|s| s.space_id == space.id)
                    .filter_map(|s| {
                        users.get(&s.user_id).map(|u| ShareDto {
                            user: u.clone(),
                            granted_at: s.granted_at.into(),
                            granted_by: s.granted_by.clone(),
                        })
                    })
                    .collect()
            } else {
                Vec::new()
            };
            let volumes: Vec<VolumeSpec> = from_json(&space.volumes, "space volumes")?;
            let features: Vec<Feature> = from_json(&space.features, "space features")?;
            let owners = allowed.get(&space.owner_id).unwrap_or(&nothing);
            let allowed_features: std::collections::BTreeSet<Feature> = features
                .iter()
                .copied()
                .filter(|f| owners.contains(f) && mine.contains(f))
                .collect();
            let apps = if space.state.is_running() {
                crate::services::apps::links::app_links(
                    &self.config,
                    &owner.username,
                    &space.name,
                    &space.id,
                    &allowed_features,
                )
            } else {
                Vec::new()
            };
            out.push(SpaceDto {
                allowed_features: allowed_features.into_iter().collect(),
                apps,
                shared_with_me: role == SpaceRole::Sharee && &space.owner_id != caller.id(),
                id: space.id,
                name: space.name,
                owner: owner.clone(),
                template_id: space.template_id,
                template_name: space.template_name,
                state: space.state,
                compute_units: space.compute_units,
                storage_units: space.storage_units,
                image: space.image,
                volumes,
                features,
                privileged: space.privileged,
                raw_sockets: space.raw_sockets,
                devcontainer_run_options: space.devcontainer_run_options,
                last_error: space.last_error,
                shared_with,
                can_manage: role.can_manage(),
                created_at: space.created_at.into(),
                updated_at: space.updated_at.into(),
                started_at: space.started_at.map(Into::into),
                stopped_at: space.stopped_at.map(Into::into),
                autostop: coming_stop,
                starts_at,
                last_activity,
                auto_note: space.auto_note,
                keep: space.keep,
                deletes_at,
                repository,
                dotfiles,
                devcontainer,
                setup_log: space.setup_log,
            });
        }
        Ok(out)
    }

    pub async fn space_dto(
        &self,
        caller: &Caller,
        space: space::Model,
        role: SpaceRole,
    ) -> ApiResult<SpaceDto> {
        self.space_dtos(caller, vec![(space, role)])
            .await?
            .pop()
            .ok_or_else(|| ApiError::internal("space vanished"))
    }
}

#[async_trait::async_trait]
impl SpaceQueries for Services {
    /// Own spaces and spaces shared with the caller; `all` (admins only) lists everyone's.
    async fn list_spaces(
        &self,
        caller: &Caller,
        query: SpaceListQuery,
    ) -> ApiResult<Vec<SpaceDto>> {
        if query.all {
            caller.require_admin()?;
        }
        let mut listed = space::Entity::find();
        // Spaces of others are seen as admin (`all`) or because they were shared.
        let others_role = if query.all {
            SpaceRole::Admin
        } else {
            // One statement: the caller's own spaces and those shared with them.
            let shared_with_caller = sea_orm::sea_query::Query::select()
                .column(share::Column::SpaceId)
                .from(share::Entity)
                .and_where(share::Column::UserId.eq(caller.id().clone()))
                .to_owned();
            listed = listed.filter(
                space::Column::OwnerId
                    .eq(caller.id().clone())
                    .or(space::Column::Id.in_subquery(shared_with_caller)),
            );
            SpaceRole::Sharee
        };
        let by_creation = Keyset::new([space::Column::CreatedAt, space::Column::Id]);
        // The cursor must be a space of this very list (deleted ones keep their place).
        let (limit, after) = by_creation
            .start(&self.db, listed.clone(), &query.page())
            .await?;
        let found: Vec<(space::Model, SpaceRole)> = by_creation
            .after(listed.filter(space::is_live()), after.as_ref())
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|s| {
                let role = if &s.owner_id == caller.id() {
                    SpaceRole::Owner
                } else {
                    others_role
                };
                (s, role)
            })
            .collect();
        self.space_dtos(caller, found).await
    }

    async fn get_space(&self, caller: &Caller, id: &SpaceId) -> ApiResult<SpaceDto> {
        let (space, role) = self.visible_space(caller, id).await?;
        self.space_dto(caller, space, role).await
    }

    /// A visible space's audit trail since it was created, newest first. Names are reused only
    /// after deletion, so the target plus the creation time picks exactly this space.
    /// A sharee sees the history without the sharing of others: the space's shares are the
    /// owner's business (its own JSON does not list them to sharees either).
    async fn space_history(&self, caller: &Caller, id: &SpaceId) -> ApiResult<Vec<AuditEventDto>> {
        let (space, role) = self.visible_space(caller, id).await?;
        let owner = self.find_user(&space.owner_id).await?;
        let mut select = audit_event::Entity::find()
            .filter(audit_event::Column::Target.eq(space_target(&owner.username, &space.name)))
            .filter(audit_event::Column::At.gte(space.created_at));
        if role == SpaceRole::Sharee {
            let about_me = super::to_json(&serde_json::json!({ "user": caller.user.username }))?;
            select = select.filter(
                Condition::any()
                    .add(audit_event::Column::Action.is_not_in([SHARE_EVENT, UNSHARE_EVENT]))
                    .add(audit_event::Column::Details.eq(about_me)),
            );
        }
        let events = select
            .order_by_desc(audit_event::Column::Id)
            .limit(HISTORY_LIMIT)
            .all(&self.db)
            .await?;
        Ok(events.into_iter().map(event_dto).collect())
    }

    /// What each of a visible space's volumes holds, measured now.
    async fn space_storage(&self, caller: &Caller, id: &SpaceId) -> ApiResult<Vec<VolumeUsage>> {
        let (space, _role) = self.visible_space(caller, id).await?;
        let owner = self.find_user(&space.owner_id).await?;
        let spec = spec_of(&space, &owner.username)?;
        let measured = self.runtime.volume_usage(&spec).await;
        Ok(spec
            .volumes
            .into_iter()
            .map(|volume| {
                let found = measured.iter().find(|m| m.name == volume.name);
                VolumeUsage {
                    used_bytes: found
                        .and_then(|m| m.used_bytes)
                        .and_then(|b| i64::try_from(b).ok()),
                    enforced: found.is_some_and(|m| m.enforced),
                    name: volume.name,
                    mount_path: volume.mount_path,
                    size_gib: volume.size_gib,
                }
            })
            .collect())
    }

    /// The caller's usage now, after creating a space from the template and after starting
    /// it, with the reason either would be refused (the same checks create and start make).
    async fn create_preview(
        &self,
        caller: &Caller,
        template_id: &TemplateId,
    ) -> ApiResult<CreatePreview> {
        let template = self.get_template(caller, template_id).await?;
        if template.archived {
            // Only admins see archived templates; nobody creates spaces from them.
            return Err(ApiError::conflict(format!(
                "the template `{}` is archived: no space can be created from it",
                template.name
            )));
        }
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
            tunnels: u.tunnels,
        };
        Ok(CreatePreview {
            template_id: template.id,
            compute_units: template.compute_units,
            storage_units: template.storage_units,
            quota: QuotaValues {
                max_spaces: limits.max_spaces,
                compute_units: limits.compute_units,
                storage_units: limits.storage_units,
                max_tunnels: limits.tunnels,
            },
            usage: values(usage),
            after_create: values(after_create),
            after_start: values(after_start),
            refusal,
            start_refusal,
        })
    }
}
