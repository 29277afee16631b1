//! The JSON API of notifications: the caller's bell (list, unread count, mark read), their
//! channels per kind and webhook, the admins' defaults and the deliveries by webhook and
//! email.

use app::api::notifications::{
    ssr::NotificationsApi, DeliveryDto, MarkRead, NotificationChoice, NotificationDto,
    NotificationSettings, UnreadCount, UpdateNotificationSettings,
};
use app::api::page::PageQuery;
use app::api::ssr::{AdminCaller, Caller};
use app::error::ErrorBody;
use axum::extract::State;
use axum::Json;

use crate::error::ApiResult;
use crate::http::extract::{ValidJson, ValidQuery};
use crate::services::Services;

/// The caller's notifications, newest first (the newest 500 are kept); `after` is the id of
/// the last one of the page before.
#[utoipa::path(get, path = "/api/v1/me/notifications", tag = "me", params(PageQuery), responses((status = 200, description = "a page of the caller's notifications, newest first", body = [NotificationDto]), (status = 400, description = "a bad `limit`", body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, description = "`after` names no notification of the caller's", body = ErrorBody)))]
pub async fn notifications(
    State(services): State<Services>,
    caller: Caller,
    ValidQuery(page): ValidQuery<PageQuery>,
) -> ApiResult<Json<Vec<NotificationDto>>> {
    Ok(Json(services.notifications(&caller, page).await?))
}

/// How many of the caller's notifications are unread (the bell's count; the live stream's
/// `notifications` event carries it as it changes).
#[utoipa::path(get, path = "/api/v1/me/notifications/unread", tag = "me", responses((status = 200, body = UnreadCount), (status = 401, body = ErrorBody)))]
pub async fn unread_count(
    State(services): State<Services>,
    caller: Caller,
) -> ApiResult<Json<UnreadCount>> {
    Ok(Json(services.unread_count(&caller).await?))
}

/// Marks the caller's notifications read: all of them, or those up to `up_to` (an id).
#[utoipa::path(post, path = "/api/v1/me/notifications/read", tag = "me", request_body = MarkRead, responses((status = 200, description = "what is still unread", body = UnreadCount), (status = 401, body = ErrorBody), (status = 403, description = "a `read` API token", body = ErrorBody)))]
pub async fn mark_read(
    State(services): State<Services>,
    caller: Caller,
    ValidJson(input): ValidJson<MarkRead>,
) -> ApiResult<Json<UnreadCount>> {
    Ok(Json(services.mark_read(&caller, input).await?))
}

/// Where each kind of notification goes for the caller, and their webhook (its secret is
/// never shown).
#[utoipa::path(get, path = "/api/v1/me/notification-settings", tag = "me", responses((status = 200, body = NotificationSettings), (status = 401, body = ErrorBody)))]
pub async fn notification_settings(
    State(services): State<Services>,
    caller: Caller,
) -> ApiResult<Json<NotificationSettings>> {
    Ok(Json(services.notification_settings(&caller).await?))
}

/// Changes the caller's channels for the kinds given (or resets kinds to the admins'
/// defaults), and their webhook's URL and signing secret.
#[utoipa::path(put, path = "/api/v1/me/notification-settings", tag = "me", request_body = UpdateNotificationSettings, responses((status = 200, body = NotificationSettings), (status = 400, description = "a bad webhook URL or secret", body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, description = "a `read` API token, one without the `credentials` scope for the webhook, or a webhook at a private address this server does not allow", body = ErrorBody)))]
pub async fn update_notification_settings(
    State(services): State<Services>,
    caller: Caller,
    ValidJson(input): ValidJson<UpdateNotificationSettings>,
) -> ApiResult<Json<NotificationSettings>> {
    Ok(Json(
        services
            .update_notification_settings(&caller, input)
            .await?,
    ))
}

/// The channels each kind of notification goes to for users who did not choose.
#[utoipa::path(get, path = "/api/v1/admin/notification-defaults", tag = "admin", responses((status = 200, body = [NotificationChoice]), (status = 401, body = ErrorBody), (status = 403, description = "admins only", body = ErrorBody)))]
pub async fn notification_defaults(
    State(services): State<Services>,
    AdminCaller(caller): AdminCaller,
) -> ApiResult<Json<Vec<NotificationChoice>>> {
    Ok(Json(services.notification_defaults(&caller).await?))
}

/// Sets the defaults of the kinds given (the others keep theirs); answers every kind's.
#[utoipa::path(put, path = "/api/v1/admin/notification-defaults", tag = "admin", request_body = [NotificationChoice], responses((status = 200, body = [NotificationChoice]), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, description = "admins only", body = ErrorBody)))]
pub async fn set_notification_defaults(
    State(services): State<Services>,
    AdminCaller(caller): AdminCaller,
    ValidJson(input): ValidJson<Vec<NotificationChoice>>,
) -> ApiResult<Json<Vec<NotificationChoice>>> {
    Ok(Json(
        services.set_notification_defaults(&caller, input).await?,
    ))
}

/// Deliveries by webhook and email, newest first: pending (with their next attempt),
/// delivered, or failed after the last attempt, with the receiver's last answer.
#[utoipa::path(get, path = "/api/v1/admin/webhook-deliveries", tag = "admin", params(PageQuery), responses((status = 200, description = "a page of deliveries, newest first", body = [DeliveryDto]), (status = 400, description = "a bad `limit`", body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, description = "admins only", body = ErrorBody), (status = 404, description = "`after` names no delivery", body = ErrorBody)))]
pub async fn deliveries(
    State(services): State<Services>,
    AdminCaller(caller): AdminCaller,
    ValidQuery(page): ValidQuery<PageQuery>,
) -> ApiResult<Json<Vec<DeliveryDto>>> {
    Ok(Json(services.deliveries(&caller, page).await?))
}
