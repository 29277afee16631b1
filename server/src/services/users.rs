//! Users as admins manage them.

use app::api::auth::{Role, UserDto};
use app::api::page::PageQuery;
use app::api::users::{ssr::UsersApi, ChangePassword, CreateUser, TokenScope, UpdateUser};
use app::ids::UserId;
use chrono::Utc;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};
use serde_json::json;

use super::access::{Caller, Credential};
use super::audit::{record, Outcome};
use super::paging::Keyset;
use super::{check_limit, conflict_on_duplicate, new_id, Services};
use crate::auth::password;
use crate::auth::session_store::DbSessionStore;
use crate::entities::{api_token, space, user};
use crate::error::{ApiError, ApiResult};
use crate::validate::at_most;
use app::api::ssr::Presented;

fn check_email(email: &str) -> ApiResult<()> {
    at_most("email", email, 254)?;
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
    async fn list_users(&self, caller: &Caller, page: PageQuery) -> ApiResult<Vec<UserDto>> {
        caller.require_admin()?;
        Ok(self
            .users_page(&page)
            .await?
            .into_iter()
            .map(UserDto::from)
            .collect())
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
        at_most("display_name", &display_name, 100)?;
        let defaults = &self.config;
        // The server's defaults apply unchecked: only what was given is input.
        let quota = |field: &str, given: Option<Option<i64>>, default: Option<i64>| {
            given.map_or(Ok(default), |value| check_limit(field, value))
        };
        let max_spaces = quota(
            "max_spaces",
            input.max_spaces,
            defaults.default_max_spaces.0,
        )?;
        let compute_units = quota(
            "compute_units",
            input.compute_units,
            defaults.default_compute_units.0,
        )?;
        let storage_units = quota(
            "storage_units",
            input.storage_units,
            defaults.default_storage_units.0,
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
            time_zone: Set(None),
            dotfiles_url: Set(None),
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
        let yourself = &existing.id == caller.id();
        let mut model: user::ActiveModel = existing.clone().into();
        let mut changed = Vec::new();
        let reset = input.password.is_some();
        if let Some(password) = input.password {
            if yourself {
                // Else a stolen session could take the account over without knowing the
                // password.
                return Err(ApiError::forbidden(
                    "change your own password at POST /api/v1/me/password, with your current one",
                ));
            }
            password::check_new_password(&password)?;
            model.password_hash = Set(password::hash_password(password).await?);
            changed.push("password");
        }
        if let Some(role) = input.role {
            if yourself && role != Role::Admin {
                return Err(ApiError::forbidden(
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
            at_most("display_name", &display_name, 100)?;
            model.display_name = Set(display_name);
            changed.push("display_name");
        }
        if let Some(active) = input.active {
            if yourself && !active {
                return Err(ApiError::forbidden(
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
        let revoke_tokens = input.revoke_tokens.unwrap_or(false);
        if revoke_tokens {
            changed.push("tokens");
        }
        if let Some(value) = input.max_tunnels {
            model.max_tunnels = Set(check_limit("max_tunnels", value)?);
            changed.push("max_tunnels");
        }
        let updated = model.update(&self.db).await?;
        // A reset password ends every session of the user (whoever knew the old one), and
        // lifts the sign-in limits their failures had set.
        let ended = if reset {
            self.auth.forget_failures(&updated.username);
            DbSessionStore::delete_user_sessions(&self.db, &updated.id, None).await?
        } else {
            0
        };
        let revoked = if revoke_tokens {
            self.revoke_all_tokens(&updated.id).await?
        } else {
            0
        };
        // Live channels of the user look again (and close when what they ran on is gone).
        self.users_changed(vec![updated.id.clone()]);
        record(
            &self.db,
            Some(caller),
            "user.update",
            &format!("user:{}", updated.username),
            Outcome::Success,
            json!({"changed": changed, "sessions_ended": ended, "tokens_revoked": revoked}),
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

    /// The caller changes their own password, proving they know the current one (within the
    /// sign-in limits: a wrong one counts as a failed sign-in). Their other sessions end, and
    /// with `revoke_tokens` their API tokens too.
    async fn change_password(
        &self,
        caller: &Caller,
        presented: &Presented,
        input: ChangePassword,
    ) -> ApiResult<()> {
        caller.require_scope(TokenScope::Credentials)?;
        let current = self.find_user(caller.id()).await?;
        let length = input.current_password.chars().count();
        if length == 0 || length > password::MAX_PASSWORD_CHARS {
            return Err(ApiError::invalid(
                "current_password",
                "type the password you signed in with",
            ));
        }
        let proven = self
            .auth
            .check_password(&current.username, presented.client, input.current_password)
            .await?;
        if proven.is_none() {
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
        let keep = match &caller.credential {
            Credential::Session(id) => Some(id.as_str()),
            Credential::Token(..) | Credential::SshKey(_) => None,
        };
        let ended = DbSessionStore::delete_user_sessions(&self.db, &current.id, keep).await?;
        let revoked = if input.revoke_tokens {
            self.revoke_all_tokens(&current.id).await?
        } else {
            0
        };
        // Live channels opened with what just ended close.
        self.users_changed(vec![current.id.clone()]);
        record(
            &self.db,
            Some(caller),
            "user.password",
            &format!("user:{}", current.username),
            Outcome::Success,
            json!({"sessions_ended": ended, "tokens_revoked": revoked}),
        )
        .await;
        Ok(())
    }
}

impl Services {
    /// A page of users by username.
    pub async fn users_page(&self, page: &PageQuery) -> ApiResult<Vec<user::Model>> {
        Keyset::new([user::Column::Username])
            .page(&self.db, user::Entity::find(), page)
            .await
    }

    /// Revokes every API token of the user; returns how many.
    pub async fn revoke_all_tokens(&self, user_id: &UserId) -> ApiResult<u64> {
        Ok(api_token::Entity::delete_many()
            .filter(api_token::Column::UserId.eq(user_id.clone()))
            .exec(&self.db)
            .await?
            .rows_affected)
    }
}
