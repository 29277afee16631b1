//! The JSON API v1's handlers, one file per resource: thin wrappers that extract the caller and
//! the input and call the same service methods the UI's server functions call, with the same
//! arguments. [`routes()`] declares each handler once: its route and its OpenAPI entry both come
//! from that.

mod admin;
mod autostop;
mod features;
mod groups;
mod me;
mod notifications;
mod ports;
mod repos;
mod spaces;
mod templates;
mod usage;
mod users;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::error::ApiError;

pub async fn no_such_route() -> ApiError {
    ApiError::not_found_because("no such API route: see /api/v1/openapi.json")
}

/// Every JSON API route, each declared once with its OpenAPI entry.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me::login))
        .routes(routes!(me::logout))
        .routes(routes!(super::oidc::methods))
        .routes(routes!(super::oidc::login))
        .routes(routes!(super::oidc::callback))
        .routes(routes!(super::oidc::cli_token))
        .routes(routes!(me::me))
        .routes(routes!(me::my_quota))
        .routes(routes!(me::change_password))
        .routes(routes!(me::list_tokens, me::create_token))
        .routes(routes!(me::revoke_token))
        .routes(routes!(me::list_ssh_keys, me::add_ssh_key))
        .routes(routes!(me::remove_ssh_key))
        .routes(routes!(users::list_users, users::create_user))
        .routes(routes!(users::user_quotas))
        .routes(routes!(
            users::get_user,
            users::update_user,
            users::delete_user
        ))
        .routes(routes!(users::user_quota))
        .routes(routes!(groups::list_groups, groups::create_group))
        .routes(routes!(
            groups::get_group,
            groups::update_group,
            groups::delete_group
        ))
        .routes(routes!(groups::add_member, groups::remove_member))
        .routes(routes!(
            templates::list_templates,
            templates::create_template
        ))
        .routes(routes!(
            templates::get_template,
            templates::update_template,
            templates::delete_template
        ))
        .routes(routes!(templates::create_preview))
        .routes(routes!(spaces::list_spaces, spaces::create_space))
        .routes(routes!(spaces::get_space, spaces::delete_space))
        .routes(routes!(spaces::space_history))
        .routes(routes!(spaces::space_storage))
        .routes(routes!(spaces::start_space))
        .routes(routes!(spaces::stop_space))
        .routes(routes!(spaces::restart_space))
        .routes(routes!(super::terminal::terminal))
        .routes(routes!(super::ssh::ssh_config))
        .routes(routes!(super::ssh::live_sessions))
        .routes(routes!(
            super::files::get_files,
            super::files::put_file,
            super::files::post_files,
            super::files::delete_file
        ))
        .routes(routes!(spaces::list_shares))
        .routes(routes!(spaces::share_space, spaces::revoke_share))
        .routes(routes!(admin::audit))
        .routes(routes!(super::events::events))
        .routes(routes!(admin::list_orphans, admin::remove_orphans))
        .routes(routes!(admin::list_nodes))
        .routes(routes!(admin::overview))
        .routes(routes!(admin::move_space))
        .routes(routes!(admin::remove_unlabelled))
        .routes(routes!(ports::space_ports))
        .routes(routes!(usage::space_usage))
        .routes(routes!(usage::my_quota_usage))
        .routes(routes!(usage::user_quota_usage))
        .routes(routes!(usage::group_quota_usage))
        .routes(routes!(ports::live_ports))
        .routes(routes!(ports::list_tunnels, ports::create_tunnel))
        .routes(routes!(ports::revoke_tunnel))
        .routes(routes!(ports::my_tunnels))
        .routes(routes!(ports::vscode_tunnel))
        .routes(routes!(super::apps::desktop::vnc))
        .routes(routes!(super::apps::tcp::tcp))
        .routes(routes!(super::apps::sign_in::authorize))
        .routes(routes!(
            features::list_feature_rules,
            features::set_feature_rule
        ))
        .routes(routes!(features::user_features))
        .routes(routes!(features::my_features))
        .routes(routes!(
            autostop::space_autostop,
            autostop::update_space_autostop
        ))
        .routes(routes!(autostop::keepalive))
        .routes(routes!(autostop::set_time_zone))
        .routes(routes!(autostop::retention, autostop::set_retention))
        .routes(routes!(repos::clone_again))
        .routes(routes!(repos::rebuild))
        .routes(routes!(repos::dotfiles, repos::set_dotfiles))
        .routes(routes!(repos::git_credentials))
        .routes(routes!(
            repos::set_git_credential,
            repos::delete_git_credential
        ))
        .routes(routes!(
            repos::git_ssh_key,
            repos::make_git_ssh_key,
            repos::delete_git_ssh_key
        ))
        .routes(routes!(notifications::notifications))
        .routes(routes!(notifications::unread_count))
        .routes(routes!(notifications::mark_read))
        .routes(routes!(
            notifications::notification_settings,
            notifications::update_notification_settings
        ))
        .routes(routes!(
            notifications::notification_defaults,
            notifications::set_notification_defaults
        ))
        .routes(routes!(notifications::deliveries))
}
