//! Sharing a space with other users, and revoking it (which closes their terminals).

use app::api::spaces::{ssr::Sharing, ShareDto};
use app::ids::SpaceId;
use chrono::Utc;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};
use serde_json::json;

use crate::entities::share;
use crate::error::{ApiError, ApiResult};
use crate::services::access::{Caller, SpaceRole};
use crate::services::audit::{record, space_target, Outcome};
use crate::services::notifications::Notice;
use crate::services::Services;
use app::api::notifications::NotificationKind;

impl Services {
    /// Whether anyone else may use the space: then git tokens, the SSH key for git and agent
    /// forwarding are kept from it (every shell in it runs as the same user).
    pub(crate) async fn space_is_shared(&self, space_id: &SpaceId) -> Result<bool, sea_orm::DbErr> {
        let shares = share::Entity::find()
            .filter(share::Column::SpaceId.eq(space_id.clone()))
            .count(&self.db)
            .await?;
        Ok(shares > 0)
    }
}

#[async_trait::async_trait]
impl Sharing for Services {
    async fn list_shares(&self, caller: &Caller, space_id: &SpaceId) -> ApiResult<Vec<ShareDto>> {
        let space = self.managed_space(caller, space_id).await?;
        Ok(self
            .space_dto(caller, space, SpaceRole::Owner)
            .await?
            .shared_with)
    }

    /// `user` is a user id or a username (surrounding blanks ignored).
    async fn share_space(
        &self,
        caller: &Caller,
        space_id: &SpaceId,
        user: &str,
    ) -> ApiResult<Vec<ShareDto>> {
        let space = self.managed_space(caller, space_id).await?;
        let sharee = self.find_user_by_id_or_name(user.trim()).await?;
        if sharee.id == space.owner_id {
            return Err(ApiError::invalid(
                "user_id",
                "the owner already has the space: share it with someone else",
            ));
        }
        let added = share::Entity::insert(share::ActiveModel {
            space_id: Set(space.id.clone()),
            user_id: Set(sharee.id.clone()),
            granted_at: Set(Utc::now()),
            granted_by: Set(caller.user.username.clone()),
        })
        .on_conflict(
            OnConflict::columns([share::Column::SpaceId, share::Column::UserId])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await?;
        let owner = self.find_user(&space.owner_id).await?;
        if added > 0 {
            self.notify(
                &sharee.id,
                Notice::new(
                    NotificationKind::ShareReceived,
                    format!("{} shared {} with you", caller.user.username, space.name),
                    format!(
                        "{} shared the space {} (owned by {}) with you: it is in your list of \
                         spaces.",
                        caller.user.username, space.name, owner.username
                    ),
                )
                .on_space(&space.id),
            )
            .await;
        }
        record(
            &self.db,
            Some(caller),
            super::SHARE_EVENT,
            &space_target(&owner.username, &space.name),
            Outcome::Success,
            json!({"user": sharee.username}),
        )
        .await;
        self.space_changed(&space.id).await;
        self.list_shares(caller, space_id).await
    }

    async fn revoke_share(
        &self,
        caller: &Caller,
        space_id: &SpaceId,
        user: &str,
    ) -> ApiResult<Vec<ShareDto>> {
        let space = self.managed_space(caller, space_id).await?;
        let sharee = self.find_user_by_id_or_name(user.trim()).await?;
        let removed = share::Entity::delete_by_id((space.id.clone(), sharee.id.clone()))
            .exec(&self.db)
            .await?;
        if removed.rows_affected == 0 {
            return Err(ApiError::not_found_because(format!(
                "the space is not shared with {}",
                sharee.username
            )));
        }
        // Their open terminals close at once.
        self.terminals.kick(space.id.as_str(), sharee.id.as_str());
        let owner = self.find_user(&space.owner_id).await?;
        record(
            &self.db,
            Some(caller),
            super::UNSHARE_EVENT,
            &space_target(&owner.username, &space.name),
            Outcome::Success,
            json!({"user": sharee.username}),
        )
        .await;
        self.space_changed(&space.id).await;
        // The former sharee is no longer among the shares: tell them too.
        self.notifier.notify(crate::live::Change {
            users: vec![sharee.id.clone()],
            space_id: Some(space.id.clone()),
            presence: false,
            ..Default::default()
        });
        self.list_shares(caller, space_id).await
    }
}
