//! Spaces: the queries that list and show them; their lifecycle (creation within quota,
//! transitions driven through the runtime) and sharing live in the submodules.
//! Every transition is recorded in the database before the runtime acts; runtime work runs
//! in the background, one operation per space at a time.

mod lifecycle;
mod sharing;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use app::api::spaces::{ShareDto, SpaceDto};
use app::api::templates::{Feature, VolumeSpec};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::Deserialize;

use super::access::{Caller, SpaceRole};
use super::groups::user_ref;
use super::{from_json, timestamp, Services};
use crate::domain::lifecycle::SpaceState;
use crate::entities::{share, space, user};
use crate::error::{AppError, AppResult};
use crate::runtime::{RuntimeError, SpaceSpec};

/// One async lock per space, so that runtime operations on a space never overlap.
#[derive(Default)]
pub struct SpaceLocks {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl SpaceLocks {
    /// The space's lock if nobody holds it now.
    pub fn try_lock(&self, space_id: &str) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        self.of(space_id).try_lock_owned().ok()
    }

    fn of(&self, space_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        // Forget locks nobody holds, so the map does not grow with every space ever seen.
        if locks.len() > 1024 {
            locks.retain(|_, lock| Arc::strong_count(lock) > 1);
        }
        locks.entry(space_id.to_owned()).or_default().clone()
    }
}

/// `?all=true` on `GET /api/v1/spaces`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpaceListQuery {
    #[serde(default)]
    pub all: bool,
}

fn state_of(space: &space::Model) -> AppResult<SpaceState> {
    space.state.parse().map_err(AppError::internal)
}

pub fn spec_of(space: &space::Model, owner: &str) -> AppResult<SpaceSpec> {
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
    })
}

fn runtime_message(error: &RuntimeError) -> String {
    error.to_string()
}

impl Services {
    async fn space_dtos(
        &self,
        caller: &Caller,
        spaces: Vec<(space::Model, SpaceRole)>,
    ) -> AppResult<Vec<SpaceDto>> {
        let ids: Vec<String> = spaces.iter().map(|(s, _)| s.id.clone()).collect();
        let shares = share::Entity::find()
            .filter(share::Column::SpaceId.is_in(ids))
            .order_by_asc(share::Column::GrantedAt)
            .all(&self.db)
            .await?;
        let mut user_ids: Vec<String> = spaces.iter().map(|(s, _)| s.owner_id.clone()).collect();
        user_ids.extend(shares.iter().map(|s| s.user_id.clone()));
        user_ids.sort();
        user_ids.dedup();
        // The caller is known already; a list of only their own unshared spaces needs no lookup.
        user_ids.retain(|id| *id != caller.user.id);
        let others = if user_ids.is_empty() {
            Vec::new()
        } else {
            self.users_by_ids(user_ids).await?
        };
        let users: HashMap<String, user::Model> = others
            .into_iter()
            .chain([caller.user.clone()])
            .map(|u| (u.id.clone(), u))
            .collect();
        let mut out = Vec::with_capacity(spaces.len());
        for (space, role) in spaces {
            let owner = users
                .get(&space.owner_id)
                .ok_or_else(|| AppError::internal("space owner missing"))?;
            let shared_with = if role.can_manage() {
                shares
                    .iter()
                    .filter(|s| s.space_id == space.id)
                    .filter_map(|s| {
                        users.get(&s.user_id).map(|u| ShareDto {
                            user: user_ref(u),
                            granted_at: timestamp(s.granted_at),
                            granted_by: s.granted_by.clone(),
                        })
                    })
                    .collect()
            } else {
                Vec::new()
            };
            let volumes: Vec<VolumeSpec> = from_json(&space.volumes, "space volumes")?;
            let features: Vec<Feature> = from_json(&space.features, "space features")?;
            out.push(SpaceDto {
                id: space.id,
                name: space.name,
                owner: user_ref(owner),
                template_id: space.template_id,
                template_name: space.template_name,
                state: space.state,
                compute_units: space.compute_units,
                storage_units: space.storage_units,
                image: space.image,
                volumes,
                features,
                last_error: space.last_error,
                shared_with,
                shared_with_me: role == SpaceRole::Sharee && space.owner_id != caller.user.id,
                can_manage: role.can_manage(),
                created_at: timestamp(space.created_at),
                updated_at: timestamp(space.updated_at),
                started_at: space.started_at.map(timestamp),
                stopped_at: space.stopped_at.map(timestamp),
            });
        }
        Ok(out)
    }

    pub async fn space_dto(
        &self,
        caller: &Caller,
        space: space::Model,
        role: SpaceRole,
    ) -> AppResult<SpaceDto> {
        self.space_dtos(caller, vec![(space, role)])
            .await?
            .pop()
            .ok_or_else(|| AppError::internal("space vanished"))
    }

    /// Own spaces and spaces shared with the caller; `all` (admins only) lists everyone's.
    pub async fn list_spaces(
        &self,
        caller: &Caller,
        query: SpaceListQuery,
    ) -> AppResult<Vec<SpaceDto>> {
        if query.all {
            caller.require_admin()?;
        }
        let mut select = space::Entity::find()
            .filter(space::is_live())
            .order_by_asc(space::Column::CreatedAt);
        // Spaces of others are seen as admin (`all`) or because they were shared.
        let others_role = if query.all {
            SpaceRole::Admin
        } else {
            // One statement: the caller's own spaces and those shared with them.
            let shared_with_caller = sea_orm::sea_query::Query::select()
                .column(share::Column::SpaceId)
                .from(share::Entity)
                .and_where(share::Column::UserId.eq(caller.id()))
                .to_owned();
            select = select.filter(
                space::Column::OwnerId
                    .eq(caller.id())
                    .or(space::Column::Id.in_subquery(shared_with_caller)),
            );
            SpaceRole::Sharee
        };
        let found: Vec<(space::Model, SpaceRole)> = select
            .all(&self.db)
            .await?
            .into_iter()
            .map(|s| {
                let role = if s.owner_id == caller.user.id {
                    SpaceRole::Owner
                } else {
                    others_role
                };
                (s, role)
            })
            .collect();
        self.space_dtos(caller, found).await
    }

    pub async fn get_space(&self, caller: &Caller, id: &str) -> AppResult<SpaceDto> {
        let (space, role) = self.visible_space(caller, id).await?;
        self.space_dto(caller, space, role).await
    }
}
