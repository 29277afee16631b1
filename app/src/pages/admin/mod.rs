//! Administration: users, groups, templates, every space and the audit log.

pub mod audit;
pub mod features;
pub mod groups;
pub mod nodes;
pub mod notifications;
pub mod overview;
pub mod spaces;
pub mod templates;
pub mod users;

use std::collections::HashMap;

use leptos::prelude::*;

use super::dashboard::SignedIn;
use super::widgets::QuotaBars;
use crate::api::auth::{Role, UserDto};
use crate::api::groups::{set_membership, GroupDto};
use crate::api::page::all_pages;
use crate::api::quota::{QuotaReport, SetsQuota};
use crate::api::users::user_quotas;
use crate::error::ApiError;
use crate::ids::{GroupId, UserId};
use crate::live::Live;
use crate::pages::widgets::{last_error, refreshing, QuotaInputs};

/// Renders the admin section's navigation and `page` for admins; others are told it is not
/// for them.
#[component]
pub fn AdminOnly<F, V>(page: F) -> impl IntoView
where
    F: Fn() -> V + Send + Sync + Copy + 'static,
    V: IntoView + 'static,
{
    view! {
        <SignedIn page=move |user: UserDto| {
            if user.role == Role::Admin {
                view! { <AdminNav /> {page()} }.into_any()
            } else {
                view! {
                    <section class="panel"><h1>"Administrators only"</h1>
                        <p>"This page is for administrators. " <a href="/">"Back to your dashboard"</a></p></section>
                }.into_any()
            }
        } />
    }
}

/// Every user's effective quota and live usage, shared by the rows of a page: one request
/// when the page goes live and one per pushed change, however many users are listed.
///
/// It loads in the browser only: rendered inside lists that themselves wait for data, a
/// server-rendered copy could not be matched up during hydration.
#[derive(Clone, Copy)]
pub struct UsageBook(Memo<Option<Result<HashMap<String, QuotaReport>, String>>>);

impl UsageBook {
    /// Makes the book available to the [`UserUsage`] rows below. It is read again on every
    /// pushed change of usage and every `changed` of the page (the admin's own edits of
    /// quotas and memberships are pushed to the users concerned, not to the admin).
    pub fn provide(changed: RwSignal<u64>) {
        let live = Live::get();
        let loaded = LocalResource::new(move || {
            live.usage.track();
            changed.track();
            all_pages(user_quotas)
        });
        let book = Memo::new(move |_| {
            loaded.get().map(|result| {
                result
                    .map(|list| list.into_iter().map(|q| (q.user_id.0, q.report)).collect())
                    .map_err(|e| e.message)
            })
        });
        provide_context(UsageBook(book));
    }

    /// The report of `user_id`: `None` while loading, `Err` with what went wrong.
    fn report_of(self, user_id: &str) -> Option<Result<QuotaReport, String>> {
        self.0.with(|book| {
            book.as_ref().map(|result| match result {
                Ok(reports) => reports
                    .get(user_id)
                    .cloned()
                    .ok_or_else(|| "no such user any more".to_owned()),
                Err(message) => Err(message.clone()),
            })
        })
    }
}

/// A user's effective quota and live usage, from the page's [`UsageBook`]. Drawn once the
/// page is live, in a loading state of its own, so that the list around it hydrates as
/// rendered.
#[component]
pub fn UserUsage(user_id: String) -> impl IntoView {
    let mounted = crate::hydrated_signal();
    view! {
        <Show when=move || mounted.get() fallback=|| view! { <span class="hint">"…"</span> }>
            <LiveUsage user_id=user_id.clone() />
        </Show>
    }
}

#[component]
fn LiveUsage(user_id: String) -> impl IntoView {
    let book = expect_context::<UsageBook>();
    // Only the rows whose report changed are drawn again.
    let report = Memo::new(move |_| book.report_of(&user_id));
    view! {
        <Transition fallback=|| view! { <span class="hint">"…"</span> }>
            {move || match report.get() {
                Some(Ok(report)) => view! { <QuotaBars report /> }.into_any(),
                Some(Err(message)) => view! { <span class="error">{message}</span> }.into_any(),
                None => view! { <span class="hint">"…"</span> }.into_any(),
            }}
        </Transition>
    }
}

/// Adds (`true`) or removes a user (group id, user id) from a group, then refreshes `changed`.
pub fn membership_action(
    changed: RwSignal<u64>,
) -> Action<(GroupId, UserId, bool), Result<GroupDto, ApiError>> {
    refreshing(
        changed,
        Action::new(|(group, user, member): &(GroupId, UserId, bool)| {
            let (group, user, member) = (group.clone(), user.clone(), *member);
            async move { set_membership(group, user, member).await }
        }),
    )
}

/// What the forms that edit a user's or a group's quota share: the quota fields, the save and
/// membership actions (each refreshing the page when done), and one error for the three.
pub struct QuotaEditor<Id: 'static, Input: 'static, Saved: 'static> {
    pub quota: QuotaInputs,
    pub save: Action<(Id, Input), Result<Saved, ApiError>>,
    pub membership: Action<(GroupId, UserId, bool), Result<GroupDto, ApiError>>,
}

impl<Id, Input, Saved> Clone for QuotaEditor<Id, Input, Saved> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<Id, Input, Saved> Copy for QuotaEditor<Id, Input, Saved> {}

impl<Id, Input, Saved> QuotaEditor<Id, Input, Saved>
where
    Id: Clone + Send + Sync + 'static,
    Input: SetsQuota + Clone + Send + Sync + 'static,
    Saved: Clone + Send + Sync + 'static,
{
    /// `call` saves an `Input` (with the quota typed in `quota`) to the user or group `Id`.
    pub fn new<F, Fut>(changed: RwSignal<u64>, quota: QuotaInputs, call: F) -> Self
    where
        F: Fn(Id, Input) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<Saved, ApiError>> + Send + 'static,
    {
        let save = Action::new(move |(id, input): &(Id, Input)| call(id.clone(), input.clone()));
        Self {
            quota,
            save: refreshing(changed, save),
            membership: membership_action(changed),
        }
    }

    /// A quota field that is not a number, else what the last save or membership change
    /// answered.
    pub fn error(self) -> impl Fn() -> Option<ApiError> + Copy + Send + Sync + 'static {
        move || {
            self.quota
                .typo()
                .or_else(last_error(self.save))
                .or_else(last_error(self.membership))
        }
    }

    /// Saves `input` with the quota typed, unless a quota field is not a number.
    pub fn submit(self, id: Id, input: Input) {
        if let Some(values) = self.quota.read() {
            self.save.dispatch((id, input.with_quota(values)));
        }
    }
}

/// The admin section's own navigation.
#[component]
pub fn AdminNav() -> impl IntoView {
    view! {
        <nav class="subnav" aria-label="Administration">
            <a href="/admin">"Overview"</a>
            <a href="/admin/users">"Users"</a>
            <a href="/admin/groups">"Groups"</a>
            <a href="/admin/templates">"Templates"</a>
            <a href="/admin/spaces">"All spaces"</a>
            <a href="/admin/features">"Features"</a>
            <a href="/admin/audit">"Audit log"</a>
            <a href="/admin/notifications">"Notifications"</a>
        </nav>
    }
}
