//! The bell in the top bar (the unread count, live) and the notifications page: the list,
//! newest first, and "Mark all read"; the profile's panel of channels per kind.

use leptos::prelude::*;

use crate::api::notifications::{
    mark_read, my_notifications, notification_settings, unread_count, update_notification_settings,
    MarkRead, NotificationChoice, NotificationSettings, UpdateNotificationSettings,
};
use crate::api::page::PageQuery;
use crate::components::time::RelativeTime;
use crate::error::ApiError;
use crate::live::Live;

/// The bell: links to the notifications, with the unread count once the page is live (pushed
/// by the live stream, asked for when it has not said it yet). Drawn in the browser only, so
/// that the top bar hydrates as rendered.
#[component]
pub fn Bell() -> impl IntoView {
    let mounted = crate::hydrated_signal();
    view! {
        <a href="/notifications" class="bell" data-testid="bell" aria-label="Notifications" title="Notifications">
            // Drawn, not a character: machines without an emoji font show a box.
            <svg class="bell-icon" viewBox="0 0 24 24" width="20" height="20" aria-hidden="true">
                <path fill="currentColor" d="M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22zm7-6V11a7 7 0 0 0-5.5-6.84V3.5a1.5 1.5 0 0 0-3 0v.66A7 7 0 0 0 5 11v5l-2 2v1h18v-1l-2-2z" />
            </svg>
            <Show when=move || mounted.get()>
                <UnreadBadge />
            </Show>
        </a>
    }
}

#[component]
fn UnreadBadge() -> impl IntoView {
    let live = Live::get();
    let asked = LocalResource::new(move || {
        live.notifications.track();
        unread_count()
    });
    let count = move || {
        live.unread
            .get()
            .or_else(|| asked.get().and_then(|r| r.ok()).map(|c| c.unread))
            .unwrap_or(0)
    };
    move || {
        let unread = count();
        (unread > 0).then(|| {
            view! {
                <span class="badge unread" data-testid="unread-count" title=format!("{unread} unread")>{unread}</span>
            }
        })
    }
}

#[component]
pub fn NotificationsPage() -> impl IntoView {
    let live = Live::get();
    let read = Action::new(|input: &MarkRead| {
        let input = input.clone();
        async move { mark_read(input).await }
    });
    let list = Resource::new(
        move || (live.notifications.get(), read.version().get()),
        |_| my_notifications(PageQuery::default()),
    );
    Effect::new(move |_| {
        if let Some(Ok(count)) = read.value().get() {
            live.unread.set(Some(count.unread));
        }
    });
    view! {
        <super::dashboard::SignedIn page=move |_| view! {
            <section class="panel" data-testid="notifications">
                <div class="row">
                    <h1>"Notifications"</h1>
                    <button type="button" data-testid="mark-all-read"
                        disabled=move || read.pending().get()
                        on:click=move |_| { read.dispatch(MarkRead::default()); }>
                        "Mark all read"
                    </button>
                </div>
                <p class="hint">"The newest 500 are kept. Choose what you are told, and how, on your " <a href="/profile">"profile"</a> "."</p>
                <Transition fallback=|| view! { <p>"Loading…"</p> }>
                    {move || list.get().map(|r| match r {
                        Err(e) => view! { <p class="error">{e.message}</p> }.into_any(),
                        Ok(items) if items.is_empty() => view! { <p class="empty">"Nothing yet."</p> }.into_any(),
                        Ok(items) => view! {
                            <ul class="notifications">
                                {items.into_iter().map(|n| {
                                    let class = if n.read_at.is_none() { "notification unread" } else { "notification" };
                                    view! {
                                        <li class=class data-kind=n.kind.as_str()>
                                            <strong>{n.title}</strong>
                                            " " <RelativeTime at=n.created_at />
                                            <p>{n.body}</p>
                                            {n.link.map(|link| view! { <a href=link>"Open"</a> })}
                                        </li>
                                    }
                                }).collect_view()}
                            </ul>
                        }.into_any(),
                    })}
                </Transition>
            </section>
        } />
    }
}

/// The profile's panel: which channels each kind of notification goes to.
#[component]
pub fn NotificationSettingsPanel() -> impl IntoView {
    let save = Action::new(|input: &UpdateNotificationSettings| {
        let input = input.clone();
        async move { update_notification_settings(input).await }
    });
    let settings = Resource::new(move || save.version().get(), |_| notification_settings());
    let error = super::widgets::last_error(save);
    view! {
        <section class="panel">
            <h2>"Notifications"</h2>
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || settings.get().map(|r| match r {
                    Err(e) => view! { <p class="error">{e.message}</p> }.into_any(),
                    Ok(current) => {
                        // Each box saves its row's choice with that one channel changed.
                        let toggle = move |mut choice: NotificationChoice, channel: &str, on: bool| {
                            match channel {
                                "in_app" => choice.in_app = on,
                                "email" => choice.email = on,
                                _ => choice.webhook = on,
                            }
                            save.dispatch(UpdateNotificationSettings {
                                choices: Some(vec![choice]),
                                ..Default::default()
                            });
                        };
                        view! {
                            <table class="list" data-testid="notification-settings">
                                <thead><tr><th>"When"</th><th>"In the app"</th><th>"Email"</th><th>"Webhook"</th></tr></thead>
                                <tbody>{current.choices.iter().map(|c| {
                                    let (choice, kind) = (*c, c.kind);
                                    let cell = move |channel: &'static str, on: bool| {
                                        view! {
                                            <td><input type="checkbox" checked=on
                                                data-channel=channel
                                                aria-label=format!("{}: {channel}", kind.label())
                                                on:change=move |ev| toggle(choice, channel, event_target_checked(&ev)) /></td>
                                        }
                                    };
                                    view! {
                                        <tr data-kind=kind.as_str()>
                                            <td>{kind.label()}</td>
                                            {cell("in_app", c.in_app)}
                                            {cell("email", c.email)}
                                            {cell("webhook", c.webhook)}
                                        </tr>
                                    }
                                }).collect_view()}</tbody>
                            </table>
                        }.into_any()
                    }
                })}
            </Transition>
            {super::widgets::form_error(error, &["webhook_url", "webhook_secret"])}
            <WebhookForm save settings=Signal::derive(move || settings.get().and_then(|r| r.ok())) error />
        </section>
    }
}

/// The caller's webhook: its URL and signing secret (never shown again once saved).
#[component]
fn WebhookForm(
    save: Action<UpdateNotificationSettings, Result<NotificationSettings, ApiError>>,
    settings: Signal<Option<NotificationSettings>>,
    error: impl Fn() -> Option<ApiError> + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let url = RwSignal::new(String::new());
    let secret = RwSignal::new(String::new());
    Effect::new(move |_| {
        if let Some(current) = settings.get() {
            url.set(current.webhook_url.unwrap_or_default());
            secret.set(String::new());
        }
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let secret = secret.get_untracked();
        save.dispatch(UpdateNotificationSettings {
            webhook_url: Some(url.get_untracked()),
            webhook_secret: (!secret.is_empty()).then_some(secret),
            ..Default::default()
        });
    };
    view! {
        <form class="stack narrow-form" on:submit=submit data-testid="webhook-form">
            <h3>"Webhook"</h3>
            <p class="hint">"Hangar POSTs each notification you send to the webhook as JSON, signed in "
                <code>"X-Hangar-Signature: sha256=<HMAC-SHA256 of the body with your secret>"</code>
                ", and retries a few times with growing pauses when the receiver fails."</p>
            <label>"URL (empty: no webhook)"
                <input type="url" bind:value=url placeholder="https://hooks.example.com/hangar" />
                {super::widgets::field_error(error, "webhook_url")}
            </label>
            <label>{move || if settings.get().is_some_and(|s| s.webhook_secret_set) { "Secret (set; type a new one to replace it)" } else { "Secret (16 characters or more)" }}
                <input type="password" autocomplete="new-password" bind:value=secret />
                {super::widgets::field_error(error, "webhook_secret")}
            </label>
            <button type="submit" class="primary" disabled=move || save.pending().get()>"Save webhook"</button>
        </form>
    }
}
