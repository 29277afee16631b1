//! One place that decides who may do what: the caller, and their relation to a space.

use app::api::auth::{ssr::AuthApi, LoginRequest, SignInMethods, UserDto};
use app::api::ssr::{Authorization, Presented};
use app::api::users::TokenScope;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::tokens::hash_token;
use super::Services;
use crate::entities::{share, space, user};
use crate::error::{ApiError, ApiResult};
use app::ids::{SpaceId, UserId};

/// The signed-in user making a request, and what they signed in with.
pub use app::api::ssr::{Caller, Credential};

#[async_trait::async_trait]
impl AuthApi for Services {
    async fn caller(&self, presented: &Presented) -> ApiResult<Caller> {
        // Taken before the database is read (see `Recent::or_read`).
        let generation = self.notifier.rights_generation();
        let callers = &self.remembered.callers;
        match &presented.authorization {
            Authorization::Malformed => Err(ApiError::unauthorized_because(
                "the Authorization header must be `Bearer <api token>`",
            )),
            Authorization::Bearer(secret) => {
                let question = format!("token:{}", hash_token(secret));
                let read = async {
                    Ok::<_, ApiError>(self.user_for_token(secret).await?.map(
                        |(user, credential)| Caller {
                            user: user.into(),
                            credential,
                        },
                    ))
                };
                let caller = callers
                    .or_read(question, generation, read)
                    .await?
                    .ok_or_else(|| {
                        ApiError::unauthorized_because(
                            "the API token is unknown, revoked or expired: create a new one",
                        )
                    })?;
                // What only reads needs `read`; anything else changes something.
                caller.require_scope(if presented.reads_only {
                    TokenScope::Read
                } else {
                    TokenScope::Write
                })?;
                Ok(caller)
            }
            Authorization::None => self
                .session_caller(presented, generation)
                .await?
                .ok_or_else(ApiError::unauthorized),
        }
    }

    async fn login(&self, presented: &Presented, input: LoginRequest) -> ApiResult<UserDto> {
        self.check_password_sign_in(&input.username)?;
        let user = self
            .auth
            .login(&presented.session, presented.client, &input)
            .await?;
        self.check_break_glass(presented, &user).await?;
        Ok(user)
    }

    async fn logout(&self, presented: &Presented) -> ApiResult<()> {
        let user = self.auth.presented_user(presented).await?;
        let through_provider = self.signed_in_through_provider(presented).await;
        self.auth.logout(&presented.session).await?;
        if through_provider {
            self.tell_provider_session_remains(presented).await;
        }
        // Channels opened with this session close.
        if let Some(user) = user {
            self.users_changed(vec![user.id]);
        }
        Ok(())
    }

    async fn current_user(&self, presented: &Presented) -> ApiResult<Option<UserDto>> {
        let generation = self.notifier.rights_generation();
        Ok(self
            .session_caller(presented, generation)
            .await?
            .map(|caller| caller.user))
    }

    async fn sign_in_methods(&self, presented: &Presented) -> ApiResult<SignInMethods> {
        self.sign_in_methods_of(presented).await
    }
}

impl Services {
    /// Who holds the presented session cookie, if anyone: the kept answer while nothing that
    /// may take a right away was announced since `generation` (taken before the database is
    /// read), else the session and its user, read and kept.
    async fn session_caller(
        &self,
        presented: &Presented,
        generation: u64,
    ) -> ApiResult<Option<Caller>> {
        // The cookie's id, known before the session is loaded: a kept answer spares loading
        // it and its user.
        let Some(cookie_id) = presented.session.id() else {
            return Ok(None);
        };
        let read = async {
            Ok::<_, ApiError>(
                match (
                    self.auth.presented_user(presented).await?,
                    presented.session.id(),
                ) {
                    (Some(user), Some(id)) => Some(Caller {
                        user,
                        credential: Credential::Session(id.to_string()),
                    }),
                    _ => None,
                },
            )
        };
        self.remembered
            .callers
            .or_read(format!("session:{cookie_id}"), generation, read)
            .await
    }
}

/// What a door is about to do in a space: only look at it, or change something in it. Every
/// way in says which when it asks for the space ([`Services::space_for`]), and that one place
/// decides: a `read` API token may look, only a `write` one may change. A shell, a desktop, a
/// TCP forward, any WebSocket into the space, an upload or a delete, a proxied request other
/// than GET or HEAD, the VS Code tunnel's sign-in code: each is a change (a keystroke in a
/// desktop is a shell; a WebSocket carries whatever the app does with it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    Read,
    Change,
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
    pub async fn space_role(&self, caller: &Caller, space: &space::Model) -> ApiResult<SpaceRole> {
        if &space.owner_id == caller.id() {
            return Ok(SpaceRole::Owner);
        }
        if caller.is_admin() {
            return Ok(SpaceRole::Admin);
        }
        let shared = share::Entity::find_by_id((space.id.clone(), caller.id().clone()))
            .one(&self.db)
            .await?;
        match shared {
            Some(_) => Ok(SpaceRole::Sharee),
            None => Err(ApiError::not_found("space")),
        }
    }

    /// A live space the caller may see, with their relation to it.
    pub async fn visible_space(
        &self,
        caller: &Caller,
        id: &SpaceId,
    ) -> ApiResult<(space::Model, SpaceRole)> {
        let space = space::Entity::find_by_id(id.clone())
            .filter(space::is_live())
            .one(&self.db)
            .await?
            .ok_or_else(|| ApiError::not_found("space"))?;
        let role = self.space_role(caller, &space).await?;
        Ok((space, role))
    }

    /// A live space the caller may see, for what they are about to do in it: 404 when they
    /// may not see it, 403 naming the `write` scope when an API token that lacks it would
    /// change something ([`Use`]). THE scope check of every way into a space.
    pub async fn space_for(
        &self,
        caller: &Caller,
        id: &SpaceId,
        intent: Use,
    ) -> ApiResult<(space::Model, SpaceRole)> {
        let (space, role) = self.visible_space(caller, id).await?;
        if intent == Use::Change {
            caller.require_scope(TokenScope::Write)?;
        }
        Ok((space, role))
    }

    /// A running space whose processes the caller may use (a terminal, a TCP forward): a
    /// change ([`Services::space_for`]), and 409 unless it runs.
    pub async fn usable_space(
        &self,
        caller: &Caller,
        id: &SpaceId,
    ) -> ApiResult<(space::Model, SpaceRole)> {
        let (space, role) = self.space_for(caller, id, Use::Change).await?;
        let state = space.state;
        if !state.is_running() {
            return Err(ApiError::wrong_state(
                state,
                format!("the space is {state}: start it first"),
            ));
        }
        Ok((space, role))
    }

    /// A live space the caller may change (owner or admin); sharees get 403.
    pub async fn managed_space(&self, caller: &Caller, id: &SpaceId) -> ApiResult<space::Model> {
        let (space, role) = self.visible_space(caller, id).await?;
        if role.can_manage() {
            Ok(space)
        } else {
            Err(ApiError::forbidden(
                "this space is shared with you: only its owner can change, share or delete it",
            ))
        }
    }

    /// The user with this id, for admins; 404 otherwise.
    pub async fn find_user(&self, id: &UserId) -> ApiResult<user::Model> {
        user::Entity::find_by_id(id.clone())
            .one(&self.db)
            .await?
            .ok_or_else(|| ApiError::not_found("user"))
    }

    /// The user with this id, or else with this username (people share by name).
    pub async fn find_user_by_id_or_name(&self, id_or_name: &str) -> ApiResult<user::Model> {
        user::Entity::find()
            .filter(
                user::Column::Id
                    .eq(UserId::from(id_or_name))
                    .or(user::Column::Username.eq(id_or_name)),
            )
            .one(&self.db)
            .await?
            .ok_or_else(|| {
                ApiError::invalid(
                    "user",
                    format!("there is no user `{id_or_name}`: check the username"),
                )
            })
    }

    pub async fn users_by_ids(&self, ids: Vec<UserId>) -> ApiResult<Vec<user::Model>> {
        Ok(user::Entity::find()
            .filter(user::Column::Id.is_in(ids))
            .all(&self.db)
            .await?)
    }
}
