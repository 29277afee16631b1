//! The services as the UI's server functions reach them (the `app` crate's backend traits).

use std::sync::Arc;

use app::api::auth::{ssr::AuthBackend, LoginRequest, UserDto};
use app::api::groups::{ssr::GroupsBackend, CreateGroup, GroupDto, UpdateGroup};
use app::api::quota::{QuotaReport, UserQuota};
use app::api::spaces::{
    ssr::SpacesBackend, AuditEventDto, AuditFilter, CreatePreview, CreateSpace, ShareDto,
    SpaceAction, SpaceDto,
};
use app::api::templates::{ssr::TemplatesBackend, CreateTemplate, TemplateDto, UpdateTemplate};
use app::api::users::{
    ssr::UsersBackend, ChangePassword, CreateSshKey, CreateToken, CreateUser, SshKeyDto,
    TokenCreated, TokenDto, UpdateUser,
};
use app::error::ApiError;
use http::request::Parts;

use crate::auth::{client_ip_of, session_of, AuthService};
use crate::domain::lifecycle::Action;
use crate::http::extract::{caller_of, session_user_of};
use crate::services::access::Caller;
use crate::services::spaces::SpaceListQuery;
use crate::services::Services;
use crate::state::AppState;

pub struct ServerBackend {
    pub auth: Arc<AuthService>,
    pub state: AppState,
}

impl ServerBackend {
    /// Who is asking, and the services to ask.
    async fn caller(&self, parts: &Parts) -> Result<(Caller, &Services), ApiError> {
        Ok((caller_of(parts, &self.state).await?, &self.state.services))
    }
}

#[async_trait::async_trait]
impl SpacesBackend for ServerBackend {
    async fn list_spaces(&self, parts: &Parts) -> Result<Vec<SpaceDto>, ApiError> {
        let (caller, services) = self.caller(parts).await?;
        Ok(services
            .list_spaces(&caller, SpaceListQuery::default())
            .await?)
    }

    async fn all_spaces(&self, parts: &Parts) -> Result<Vec<SpaceDto>, ApiError> {
        let (caller, services) = self.caller(parts).await?;
        Ok(services
            .list_spaces(&caller, SpaceListQuery { all: true })
            .await?)
    }

    async fn get_space(&self, parts: &Parts, id: String) -> Result<SpaceDto, ApiError> {
        let (caller, services) = self.caller(parts).await?;
        Ok(services.get_space(&caller, &id).await?)
    }

    async fn space_history(
        &self,
        parts: &Parts,
        id: String,
    ) -> Result<Vec<AuditEventDto>, ApiError> {
        let (caller, services) = self.caller(parts).await?;
        Ok(services.space_history(&caller, &id).await?)
    }

    async fn my_quota(&self, parts: &Parts) -> Result<QuotaReport, ApiError> {
        let (caller, services) = self.caller(parts).await?;
        Ok(services.quota_report(&caller.user).await?)
    }

    async fn usable_templates(&self, parts: &Parts) -> Result<Vec<TemplateDto>, ApiError> {
        let (caller, services) = self.caller(parts).await?;
        let templates = services.list_templates(&caller).await?;
        // Admins list archived ones too; nobody creates from those.
        Ok(templates.into_iter().filter(|t| !t.archived).collect())
    }

    async fn create_preview(
        &self,
        parts: &Parts,
        template_id: String,
    ) -> Result<CreatePreview, ApiError> {
        let (caller, services) = self.caller(parts).await?;
        Ok(services.create_preview(&caller, &template_id).await?)
    }

    async fn create_space(&self, parts: &Parts, input: CreateSpace) -> Result<SpaceDto, ApiError> {
        let (caller, services) = self.caller(parts).await?;
        Ok(services.create_space(&caller, input).await?)
    }

    async fn space_action(
        &self,
        parts: &Parts,
        id: String,
        action: SpaceAction,
    ) -> Result<SpaceDto, ApiError> {
        let (caller, services) = self.caller(parts).await?;
        let action = match action {
            SpaceAction::Start => Action::Start,
            SpaceAction::Stop => Action::Stop,
            SpaceAction::Restart => Action::Restart,
        };
        Ok(services.transition(&caller, &id, action).await?)
    }

    async fn delete_space(&self, parts: &Parts, id: String) -> Result<(), ApiError> {
        let (caller, services) = self.caller(parts).await?;
        services.delete_space(&caller, &id).await?;
        Ok(())
    }

    async fn share_space(
        &self,
        parts: &Parts,
        id: String,
        username: String,
    ) -> Result<Vec<ShareDto>, ApiError> {
        let (caller, services) = self.caller(parts).await?;
        Ok(services.share_space(&caller, &id, username.trim()).await?)
    }

    async fn revoke_share(
        &self,
        parts: &Parts,
        id: String,
        user_id: String,
    ) -> Result<Vec<ShareDto>, ApiError> {
        let (caller, services) = self.caller(parts).await?;
        Ok(services.revoke_share(&caller, &id, &user_id).await?)
    }

    async fn audit_log(
        &self,
        parts: &Parts,
        filter: AuditFilter,
    ) -> Result<Vec<AuditEventDto>, ApiError> {
        let (caller, services) = self.caller(parts).await?;
        Ok(services.audit_events(&caller, filter).await?)
    }
}

#[async_trait::async_trait]
impl UsersBackend for ServerBackend {
    async fn list_users(&self, parts: &Parts) -> Result<Vec<UserDto>, ApiError> {
        let (caller, services) = self.caller(parts).await?;
        Ok(services.list_users(&caller).await?)
    }

    async fn create_user(&self, parts: &Parts, input: CreateUser) -> Result<UserDto, ApiError> {
        let (caller, services) = self.caller(parts).await?;
        Ok(services.create_user(&caller, input).await?)
    }

    async fn update_user(
        &self,
        parts: &Parts,
        id: String,
        input: UpdateUser,
    ) -> Result<UserDto, ApiError> {
        let (caller, services) = self.caller(parts).await?;
        Ok(services.update_user(&caller, &id, input).await?)
    }

    async fn user_quota(&self, parts: &Parts, id: String) -> Result<QuotaReport, ApiError> {
        let (caller, services) = self.caller(parts).await?;
        Ok(services.user_quota(&caller, &id).await?)
    }

    async fn user_quotas(&self, parts: &Parts) -> Result<Vec<UserQuota>, ApiError> {
        let (caller, services) = self.caller(parts).await?;
        Ok(services.user_quotas(&caller).await?)
    }

    async fn change_password(&self, parts: &Parts, input: ChangePassword) -> Result<(), ApiError> {
        let (caller, services) = self.caller(parts).await?;
        Ok(services.change_password(&caller, input).await?)
    }

    async fn list_tokens(&self, parts: &Parts) -> Result<Vec<TokenDto>, ApiError> {
        let (caller, services) = self.caller(parts).await?;
        Ok(services.list_tokens(&caller).await?)
    }

    async fn create_token(
        &self,
        parts: &Parts,
        input: CreateToken,
    ) -> Result<TokenCreated, ApiError> {
        let (caller, services) = self.caller(parts).await?;
        Ok(services.create_token(&caller, input).await?)
    }

    async fn revoke_token(&self, parts: &Parts, id: String) -> Result<(), ApiError> {
        let (caller, services) = self.caller(parts).await?;
        Ok(services.revoke_token(&caller, &id).await?)
    }

    async fn list_ssh_keys(&self, parts: &Parts) -> Result<Vec<SshKeyDto>, ApiError> {
        let (caller, services) = self.caller(parts).await?;
        Ok(services.list_ssh_keys(&caller).await?)
    }

    async fn add_ssh_key(&self, parts: &Parts, input: CreateSshKey) -> Result<SshKeyDto, ApiError> {
        let (caller, services) = self.caller(parts).await?;
        Ok(services.add_ssh_key(&caller, input).await?)
    }

    async fn remove_ssh_key(&self, parts: &Parts, id: String) -> Result<(), ApiError> {
        let (caller, services) = self.caller(parts).await?;
        Ok(services.remove_ssh_key(&caller, &id).await?)
    }
}

#[async_trait::async_trait]
impl GroupsBackend for ServerBackend {
    async fn list_groups(&self, parts: &Parts) -> Result<Vec<GroupDto>, ApiError> {
        let (caller, services) = self.caller(parts).await?;
        Ok(services.list_groups(&caller).await?)
    }

    async fn create_group(&self, parts: &Parts, input: CreateGroup) -> Result<GroupDto, ApiError> {
        let (caller, services) = self.caller(parts).await?;
        Ok(services.create_group(&caller, input).await?)
    }

    async fn update_group(
        &self,
        parts: &Parts,
        id: String,
        input: UpdateGroup,
    ) -> Result<GroupDto, ApiError> {
        let (caller, services) = self.caller(parts).await?;
        Ok(services.update_group(&caller, &id, input).await?)
    }

    async fn set_membership(
        &self,
        parts: &Parts,
        group_id: String,
        user_id: String,
        member: bool,
    ) -> Result<GroupDto, ApiError> {
        let (caller, services) = self.caller(parts).await?;
        Ok(if member {
            services.add_member(&caller, &group_id, &user_id).await?
        } else {
            services.remove_member(&caller, &group_id, &user_id).await?
        })
    }
}

#[async_trait::async_trait]
impl TemplatesBackend for ServerBackend {
    async fn all_templates(&self, parts: &Parts) -> Result<Vec<TemplateDto>, ApiError> {
        let (caller, services) = self.caller(parts).await?;
        caller.require_admin()?;
        Ok(services.list_templates(&caller).await?)
    }

    async fn create_template(
        &self,
        parts: &Parts,
        input: CreateTemplate,
    ) -> Result<TemplateDto, ApiError> {
        let (caller, services) = self.caller(parts).await?;
        Ok(services.create_template(&caller, input).await?)
    }

    async fn update_template(
        &self,
        parts: &Parts,
        id: String,
        input: UpdateTemplate,
    ) -> Result<TemplateDto, ApiError> {
        let (caller, services) = self.caller(parts).await?;
        Ok(services.update_template(&caller, &id, input).await?)
    }
}

#[async_trait::async_trait]
impl AuthBackend for ServerBackend {
    async fn login(&self, parts: &Parts, input: LoginRequest) -> Result<UserDto, ApiError> {
        let session = session_of(parts)?;
        Ok(self
            .auth
            .login(&session, client_ip_of(parts), &input)
            .await?)
    }

    async fn logout(&self, parts: &Parts) -> Result<(), ApiError> {
        let session = session_of(parts)?;
        Ok(self.auth.logout(&session).await?)
    }

    async fn current_user(&self, parts: &Parts) -> Result<Option<UserDto>, ApiError> {
        Ok(session_user_of(parts, &self.state)
            .await?
            .map(UserDto::from))
    }
}
