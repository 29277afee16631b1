//! One place that decides who may do what: the caller, and their relation to a space.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::Services;
use crate::entities::{share, space, user};
use crate::error::{AppError, AppResult};

/// The signed-in user making a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: user::Model,
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.user.role == user::ROLE_ADMIN
    }

    pub fn id(&self) -> &str {
        &self.user.id
    }

    /// Admin-only actions: others are told it exists but is not theirs to use.
    pub fn require_admin(&self) -> AppResult<()> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(AppError::forbidden("only admins may do this"))
        }
    }
}

/// How the caller relates to a space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpaceRole {
    Owner,
    Admin,
    Sharee,
}

impl SpaceRole {
    pub fn can_manage(self) -> bool {
        matches!(self, SpaceRole::Owner | SpaceRole::Admin)
    }
}

impl Services {
    /// The caller's relation to a space; none at all answers 404, as if it did not exist.
    pub async fn space_role(&self, caller: &Caller, space: &space::Model) -> AppResult<SpaceRole> {
        if space.owner_id == caller.user.id {
            return Ok(SpaceRole::Owner);
        }
        if caller.is_admin() {
            return Ok(SpaceRole::Admin);
        }
        let shared = share::Entity::find_by_id((space.id.clone(), caller.user.id.clone()))
            .one(&self.db)
            .await?;
        match shared {
            Some(_) => Ok(SpaceRole::Sharee),
            None => Err(AppError::not_found("space")),
        }
    }

    /// A live space the caller may see, with their relation to it.
    pub async fn visible_space(
        &self,
        caller: &Caller,
        id: &str,
    ) -> AppResult<(space::Model, SpaceRole)> {
        let space = space::Entity::find_by_id(id.to_owned())
            .filter(space::is_live())
            .one(&self.db)
            .await?
            .ok_or_else(|| AppError::not_found("space"))?;
        let role = self.space_role(caller, &space).await?;
        Ok((space, role))
    }

    /// A live space the caller may change (owner or admin); sharees get 403.
    pub async fn managed_space(&self, caller: &Caller, id: &str) -> AppResult<space::Model> {
        let (space, role) = self.visible_space(caller, id).await?;
        if role.can_manage() {
            Ok(space)
        } else {
            Err(AppError::forbidden(
                "this space is shared with you: only its owner can change, share or delete it",
            ))
        }
    }

    /// The user with this id, for admins; 404 otherwise.
    pub async fn find_user(&self, id: &str) -> AppResult<user::Model> {
        user::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?
            .ok_or_else(|| AppError::not_found("user"))
    }

    /// The user with this id, or else with this username (people share by name).
    pub async fn find_user_by_id_or_name(&self, id_or_name: &str) -> AppResult<user::Model> {
        user::Entity::find()
            .filter(
                user::Column::Id
                    .eq(id_or_name)
                    .or(user::Column::Username.eq(id_or_name)),
            )
            .one(&self.db)
            .await?
            .ok_or_else(|| {
                AppError::invalid(
                    "user",
                    format!("there is no user `{id_or_name}`: check the username"),
                )
            })
    }

    pub async fn users_by_ids(&self, ids: Vec<String>) -> AppResult<Vec<user::Model>> {
        Ok(user::Entity::find()
            .filter(user::Column::Id.is_in(ids))
            .all(&self.db)
            .await?)
    }
}
