//! What each caller's live stream (`GET /api/v1/events`) carries: their quota usage, the
//! spaces they can see (admins: everyone's spaces) and their unread notifications, as they
//! change.

use app::api::spaces::ssr::SpaceQueries;
use app::lifecycle::SpaceState;
use app::protocol::{LiveEvent, SpaceUpdate};

use super::access::Caller;
use super::Services;
use crate::error::{ApiError, ErrorCode};
use crate::live::Change;

impl Services {
    /// What a caller's live stream carries for one change (for `None`, the first batch: their
    /// quota); None when the caller may no longer listen (deleted or deactivated meanwhile).
    ///
    /// The caller is read afresh before anything is sent: their quota, name or role may be
    /// what changed, and a stream lives for hours. Changes that concern them not at all cost
    /// nothing.
    pub async fn live_events(
        &self,
        caller: &mut Caller,
        change: Option<Change>,
    ) -> Option<Vec<LiveEvent>> {
        let services = self;
        let mut out = Vec::new();
        let concerns_me = change
            .as_ref()
            .is_none_or(|c| c.users.iter().any(|u| u == caller.id()));
        let space_id = change.as_ref().and_then(|c| c.space_id.clone());
        let sees_space = space_id.is_some() && caller.is_admin();
        if !(concerns_me || sees_space) {
            return Some(out);
        }
        match services.find_user(caller.id()).await {
            Ok(user) if user.active => caller.user = user.into(),
            Ok(_)
            | Err(ApiError {
                code: ErrorCode::NotFound,
                ..
            }) => return None,
            Err(e) => {
                tracing::warn!(error = %e, "live update: cannot read the subscriber");
                return Some(out);
            }
        }
        // Only as it changes: a page asks for the count when it opens or resyncs.
        if change.as_ref().is_some_and(|c| c.notification) {
            if let Ok(count) = services.unread_of(caller.id()).await {
                out.push(LiveEvent::Notifications(count));
            }
            return Some(out);
        }
        if concerns_me {
            if let Ok(report) = services.quota_report(&caller.user).await {
                out.push(LiveEvent::Quota(report));
            }
        }
        if change.is_none() {
            // A page opened during a warning of an automatic stop shows it too.
            out.extend(services.warned_spaces(caller).await);
        }
        if let Some(space_id) = space_id {
            if concerns_me || caller.is_admin() {
                let update = match services.get_space(caller, &space_id).await {
                    Ok(space) => Some(SpaceUpdate::Visible(Box::new(space))),
                    // Deleted, or no longer shared with the caller.
                    Err(ApiError {
                        code: ErrorCode::NotFound,
                        ..
                    }) => Some(SpaceUpdate::Gone {
                        id: space_id,
                        state: SpaceState::Deleted,
                    }),
                    Err(e) => {
                        tracing::warn!(space = %space_id, error = %e, "live update: cannot read the space");
                        None
                    }
                };
                out.extend(update.map(LiveEvent::Space));
            }
        }
        Some(out)
    }
}
