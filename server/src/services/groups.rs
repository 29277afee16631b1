//! Groups, their quota contribution and their members.

use std::collections::HashMap;

use app::api::auth::UserRef;
use app::api::groups::{ssr::GroupsApi, CreateGroup, GroupDto, UpdateGroup};
use app::api::page::PageQuery;
use app::ids::{GroupId, UserId};
use chrono::Utc;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::json;

use super::access::Caller;
use super::audit::{record, Outcome};
use super::paging::Keyset;
use super::{check_limit, conflict_on_duplicate, new_id, Services};
use crate::entities::{group, group_member, user};
use crate::error::{ApiError, ApiResult};

/// Longest group description.
const MAX_DESCRIPTION: usize = 1000;

pub fn user_ref(user: &user::Model) -> UserRef {
    UserRef {
        id: user.id.clone(),
        username: user.username.clone(),
        display_name: user.display_name.clone(),
    }
}

#[async_trait::async_trait]
impl GroupsApi for Services {
    async fn list_groups(&self, caller: &Caller, page: PageQuery) -> ApiResult<Vec<GroupDto>> {
        caller.require_admin()?;
        let groups = Keyset::new([group::Column::Name])
            .page(&self.db, group::Entity::find(), &page)
            .await?;
        self.group_dtos(groups).await
    }

    async fn get_group(&self, caller: &Caller, id: &GroupId) -> ApiResult<GroupDto> {
        caller.require_admin()?;
        let group = self.find_group(id).await?;
        self.one_group_dto(group).await
    }

    async fn create_group(&self, caller: &Caller, input: CreateGroup) -> ApiResult<GroupDto> {
        caller.require_admin()?;
        let name = crate::validate::name("name", &input.name, 64)?.to_owned();
        let description = input.description.unwrap_or_default();
        crate::validate::at_most("description", &description, MAX_DESCRIPTION)?;
        let model = group::ActiveModel {
            id: Set(new_id()),
            name: Set(name.clone()),
            description: Set(description),
            max_spaces: Set(check_limit(
                "max_spaces",
                input.max_spaces.unwrap_or(Some(0)),
            )?),
            compute_units: Set(check_limit(
                "compute_units",
                input.compute_units.unwrap_or(Some(0)),
            )?),
            storage_units: Set(check_limit(
                "storage_units",
                input.storage_units.unwrap_or(Some(0)),
            )?),
            max_tunnels: Set(check_limit(
                "max_tunnels",
                input.max_tunnels.unwrap_or(Some(0)),
            )?),
            created_at: Set(Utc::now()),
        };
        let created = model.insert(&self.db).await.map_err(|e| {
            conflict_on_duplicate(e, || format!("a group named `{name}` exists already"))
        })?;
        record(&self.db, Some(caller), "group.create", &format!("group:{name}"), Outcome::Success,
            json!({"max_spaces": created.max_spaces, "compute_units": created.compute_units, "storage_units": created.storage_units, "max_tunnels": created.max_tunnels})).await;
        self.one_group_dto(created).await
    }

    async fn update_group(
        &self,
        caller: &Caller,
        id: &GroupId,
        input: UpdateGroup,
    ) -> ApiResult<GroupDto> {
        caller.require_admin()?;
        let existing = self.find_group(id).await?;
        let mut model: group::ActiveModel = existing.into();
        if let Some(name) = input.name {
            model.name = Set(crate::validate::name("name", &name, 64)?.to_owned());
        }
        if let Some(description) = input.description {
            crate::validate::at_most("description", &description, MAX_DESCRIPTION)?;
            model.description = Set(description);
        }
        if let Some(value) = input.max_spaces {
            model.max_spaces = Set(check_limit("max_spaces", value)?);
        }
        if let Some(value) = input.compute_units {
            model.compute_units = Set(check_limit("compute_units", value)?);
        }
        if let Some(value) = input.storage_units {
            model.storage_units = Set(check_limit("storage_units", value)?);
        }
        if let Some(value) = input.max_tunnels {
            model.max_tunnels = Set(check_limit("max_tunnels", value)?);
        }
        let updated = model.update(&self.db).await.map_err(|e| {
            conflict_on_duplicate(e, || "a group with that name exists already".into())
        })?;
        self.group_members_changed(&updated.id).await;
        record(&self.db, Some(caller), "group.update", &format!("group:{}", updated.name), Outcome::Success,
            json!({"max_spaces": updated.max_spaces, "compute_units": updated.compute_units, "storage_units": updated.storage_units, "max_tunnels": updated.max_tunnels})).await;
        self.one_group_dto(updated).await
    }

    async fn delete_group(&self, caller: &Caller, id: &GroupId) -> ApiResult<()> {
        caller.require_admin()?;
        let existing = self.find_group(id).await?;
        self.group_members_changed(id).await;
        group::Entity::delete_by_id(id.clone())
            .exec(&self.db)
            .await?;
        record(
            &self.db,
            Some(caller),
            "group.delete",
            &format!("group:{}", existing.name),
            Outcome::Success,
            json!({}),
        )
        .await;
        Ok(())
    }

    /// Adds the user to the group (`member`) or removes them; either way is idempotent.
    async fn set_membership(
        &self,
        caller: &Caller,
        group_id: &GroupId,
        user_id: &UserId,
        member: bool,
    ) -> ApiResult<GroupDto> {
        caller.require_admin()?;
        let group = self.find_group(group_id).await?;
        let user = self.find_user(user_id).await?;
        let action = if member {
            self.insert_member(&group, &user).await?;
            "group.member.add"
        } else {
            group_member::Entity::delete_by_id((group.id.clone(), user.id.clone()))
                .exec(&self.db)
                .await?;
            "group.member.remove"
        };
        self.users_changed(vec![user.id.clone()]);
        record(
            &self.db,
            Some(caller),
            action,
            &format!("group:{}", group.name),
            Outcome::Success,
            json!({"user": user.username}),
        )
        .await;
        self.one_group_dto(group).await
    }
}

impl Services {
    async fn group_dtos(&self, groups: Vec<group::Model>) -> ApiResult<Vec<GroupDto>> {
        let ids: Vec<GroupId> = groups.iter().map(|g| g.id.clone()).collect();
        let memberships = group_member::Entity::find()
            .filter(group_member::Column::GroupId.is_in(ids))
            .all(&self.db)
            .await?;
        let users: HashMap<UserId, user::Model> = self
            .users_by_ids(memberships.iter().map(|m| m.user_id.clone()).collect())
            .await?
            .into_iter()
            .map(|u| (u.id.clone(), u))
            .collect();
        Ok(groups
            .into_iter()
            .map(|g| {
                let mut members: Vec<UserRef> = memberships
                    .iter()
                    .filter(|m| m.group_id == g.id)
                    .filter_map(|m| users.get(&m.user_id).map(user_ref))
                    .collect();
                members.sort_by(|a, b| a.username.cmp(&b.username));
                let idp_members = memberships
                    .iter()
                    .filter(|m| m.group_id == g.id && m.source == group_member::BY_IDP)
                    .map(|m| m.user_id.clone())
                    .collect();
                GroupDto {
                    id: g.id,
                    name: g.name,
                    description: g.description,
                    max_spaces: g.max_spaces,
                    compute_units: g.compute_units,
                    storage_units: g.storage_units,
                    max_tunnels: g.max_tunnels,
                    members,
                    idp_members,
                    created_at: g.created_at.into(),
                }
            })
            .collect())
    }

    async fn find_group(&self, id: &GroupId) -> ApiResult<group::Model> {
        group::Entity::find_by_id(id.clone())
            .one(&self.db)
            .await?
            .ok_or_else(|| ApiError::not_found("group"))
    }

    async fn one_group_dto(&self, group: group::Model) -> ApiResult<GroupDto> {
        self.group_dtos(vec![group])
            .await?
            .pop()
            .ok_or_else(|| ApiError::internal("group vanished"))
    }

    /// Adds the membership by hand; adding it twice is no error. One the identity provider
    /// made becomes hand-set: it stays whatever the provider says later.
    async fn insert_member(&self, group: &group::Model, member: &user::Model) -> ApiResult<()> {
        group_member::Entity::insert(group_member::ActiveModel {
            group_id: Set(group.id.clone()),
            user_id: Set(member.id.clone()),
            source: Set(group_member::BY_ADMIN.to_owned()),
        })
        .on_conflict(
            OnConflict::columns([group_member::Column::GroupId, group_member::Column::UserId])
                .update_column(group_member::Column::Source)
                .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await?;
        Ok(())
    }

    /// Tells live views of every member of the group that their quota changed.
    async fn group_members_changed(&self, group_id: &GroupId) {
        if let Ok(members) = group_member::Entity::find()
            .filter(group_member::Column::GroupId.eq(group_id.clone()))
            .all(&self.db)
            .await
        {
            self.users_changed(members.into_iter().map(|m| m.user_id).collect());
        }
    }

    /// Ids of the groups the user belongs to.
    pub async fn group_ids_of(&self, user_id: &UserId) -> ApiResult<Vec<GroupId>> {
        Ok(group_member::Entity::find()
            .filter(group_member::Column::UserId.eq(user_id.clone()))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|m| m.group_id)
            .collect())
    }
}
