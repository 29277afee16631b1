//! Users as admins manage them.

use app::api::auth::{Role, UserDto};
use app::api::users::{ssr::UsersApi, ChangePassword, CreateUser, UpdateUser};
use app::ids::UserId;
use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Set,
};
use serde_json::json;

use super::access::Caller;
use super::audit::{record, Outcome};
use super::{check_limit, conflict_on_duplicate, new_id, Services};
use crate::auth::password;
use crate::entities::{space, user};
use crate::error::{ApiError, ApiResult};

fn check_text(field: &str, value: &str, max: usize) -> ApiResult<()> {
    if value.chars().count() > max {
        return Err(ApiError::invalid(
            field,
            format!("{field} is too long: at most {max} characters"),
        ));
    }
    Ok(())
}

fn check_email(email: &str) -> ApiResult<()> {
    check_text("email", email, 254)?;
    if !email.is_empty() && !email.contains('@') {
        return Err(ApiError::invalid(
            "email",
            format!("`{email}` is not an email address"),
        ));
    }
    Ok(())
}

#[async_trait::async_trait]
impl UsersApi for Services {
    async fn list_users(&self, caller: &Caller) -> ApiResult<Vec<UserDto>> {
        caller.require_admin()?;
        let users = user::Entity::find()
            .order_by_asc(user::Column::Username)
            .all(&self.db)
            .await?;
        Ok(users.into_iter().map(UserDto::from).collect())
    }

    async fn get_user(&self, caller: &Caller, id: &UserId) -> ApiResult<UserDto> {
        caller.require_admin()?;
        Ok(self.find_user(id).await?.into())
    }

    async fn create_user(&self, caller: &Caller, input: CreateUser) -> ApiResult<UserDto> {
        caller.require_admin()?;
        let username = input.username.trim().to_owned();
        crate::validate::username(&username).map_err(|e| ApiError::invalid("username", e))?;
        password::check_new_password(&input.password)?;
        let email = input.email.unwrap_or_default();
        check_email(&email)?;
        let display_name = input.display_name.unwrap_or_else(|| username.clone());
        check_text("display_name", &display_name, 100)?;
        let defaults = &self.config;
        let max_spaces = check_limit(
            "max_spaces",
            input.max_spaces.unwrap_or(defaults.default_max_spaces.0),
        )?;
        let compute_units = check_limit(
            "compute_units",
            input
                .compute_units
                .unwrap_or(defaults.default_compute_units.0),
        )?;
        let storage_units = check_limit(
            "storage_units",
            input
                .storage_units
                .unwrap_or(defaults.default_storage_units.0),
        )?;
        let max_tunnels = check_limit(
            "max_tunnels",
            input.max_tunnels.unwrap_or(defaults.default_max_tunnels.0),
        )?;
        let hash = password::hash_password(input.password).await?;
        let model = user::ActiveModel {
            id: Set(new_id()),
            username: Set(username.clone()),
            display_name: Set(display_name),
            email: Set(email),
            password_hash: Set(hash),
            role: Set(input.role.unwrap_or(Role::Member)),
            active: Set(input.active.unwrap_or(true)),
            max_spaces: Set(max_spaces),
            compute_units: Set(compute_units),
            storage_units: Set(storage_units),
            max_tunnels: Set(max_tunnels),
            created_at: Set(Utc::now()),
        };
        let created = model.insert(&self.db).await.map_err(|e| {
            conflict_on_duplicate(e, || format!("the username `{username}` is taken"))
        })?;
        record(
            &self.db,
            Some(caller),
            "user.create",
            &format!("user:{username}"),
            Outcome::Success,
            json!({"role": created.role.as_str()}),
        )
        .await;
        Ok(created.into())
    }

    async fn update_user(
        &self,
        caller: &Caller,
        id: &UserId,
        input: UpdateUser,
    ) -> ApiResult<UserDto> {
        caller.require_admin()?;
        let existing = self.find_user(id).await?;
        let mut model: user::ActiveModel = existing.clone().into();
        let mut changed = Vec::new();
        if let Some(password) = input.password {
            password::check_new_password(&password)?;
            model.password_hash = Set(password::hash_password(password).await?);
            changed.push("password");
        }
        if let Some(role) = input.role {
            if &existing.id == caller.id() && role != Role::Admin {
                return Err(ApiError::invalid(
                    "role",
                    "you cannot remove your own admin role: ask another admin",
                ));
            }
            model.role = Set(role);
            changed.push("role");
        }
        if let Some(email) = input.email {
            check_email(&email)?;
            model.email = Set(email);
            changed.push("email");
        }
        if let Some(display_name) = input.display_name {
            check_text("display_name", &display_name, 100)?;
            model.display_name = Set(display_name);
            changed.push("display_name");
        }
        if let Some(active) = input.active {
            if &existing.id == caller.id() && !active {
                return Err(ApiError::invalid(
                    "active",
                    "you cannot deactivate yourself: ask another admin",
                ));
            }
            model.active = Set(active);
            changed.push("active");
        }
        if let Some(value) = input.max_spaces {
            model.max_spaces = Set(check_limit("max_spaces", value)?);
            changed.push("max_spaces");
        }
        if let Some(value) = input.compute_units {
            model.compute_units = Set(check_limit("compute_units", value)?);
            changed.push("compute_units");
        }
        if let Some(value) = input.storage_units {
            model.storage_units = Set(check_limit("storage_units", value)?);
            changed.push("storage_units");
        }
        if let Some(value) = input.max_tunnels {
            model.max_tunnels = Set(check_limit("max_tunnels", value)?);
            changed.push("max_tunnels");
        }
        let updated = model.update(&self.db).await?;
        self.users_changed(vec![updated.id.clone()]);
        record(
            &self.db,
            Some(caller),
            "user.update",
            &format!("user:{}", updated.username),
            Outcome::Success,
            json!({"changed": changed}),
        )
        .await;
        Ok(updated.into())
    }

    /// Deletes a user who owns no live space (their spaces must go first: nothing is lost
    /// silently).
    async fn delete_user(&self, caller: &Caller, id: &UserId) -> ApiResult<()> {
        caller.require_admin()?;
        let existing = self.find_user(id).await?;
        if &existing.id == caller.id() {
            return Err(ApiError::conflict(
                "you cannot delete yourself: ask another admin",
            ));
        }
        let live = space::Entity::find()
            .filter(space::Column::OwnerId.eq(id.clone()))
            .filter(space::is_live())
            .count(&self.db)
            .await?;
        if live > 0 {
            return Err(ApiError::conflict(format!(
                "{} owns {live} space(s): delete them first, or deactivate the user instead",
                existing.username
            )));
        }
        user::Entity::delete_by_id(id.clone())
            .exec(&self.db)
            .await?;
        self.users_changed(vec![id.clone()]);
        record(
            &self.db,
            Some(caller),
            "user.delete",
            &format!("user:{}", existing.username),
            Outcome::Success,
            json!({}),
        )
        .await;
        Ok(())
    }

    /// The caller changes their own password, proving they know the current one.
    async fn change_password(&self, caller: &Caller, input: ChangePassword) -> ApiResult<()> {
        let current = self.find_user(caller.id()).await?;
        if !password::verify_password(input.current_password, current.password_hash.clone()).await?
        {
            record(
                &self.db,
                Some(caller),
                "user.password",
                &format!("user:{}", current.username),
                Outcome::Refused,
                json!({"reason": "wrong current password"}),
            )
            .await;
            return Err(ApiError::invalid(
                "current_password",
                "the current password is wrong: type the one you signed in with",
            ));
        }
        password::check_new_password(&input.new_password)
            .map_err(|e| ApiError::invalid("new_password", e.message))?;
        let mut model: user::ActiveModel = current.clone().into();
        model.password_hash = Set(password::hash_password(input.new_password).await?);
        model.update(&self.db).await?;
        record(
            &self.db,
            Some(caller),
            "user.password",
            &format!("user:{}", current.username),
            Outcome::Success,
            json!({}),
        )
        .await;
        Ok(())
    }
}
