//! Admin: where each kind of notification goes for users who did not choose, and the
//! deliveries by webhook and email (pending, delivered, given up) with the receivers' last
//! answers.

use leptos::prelude::*;

use super::AdminOnly;
use crate::api::notifications::{
    deliveries, notification_defaults, set_notification_defaults, NotificationChoice,
};
use crate::api::page::PageQuery;
use crate::components::time::RelativeTime;

#[component]
pub fn AdminNotificationsPage() -> impl IntoView {
    view! { <AdminOnly page=|| view! { <Defaults /> <Deliveries /> } /> }
}

#[component]
fn Defaults() -> impl IntoView {
    let save = Action::new(|input: &Vec<NotificationChoice>| {
        let input = input.clone();
        async move { set_notification_defaults(input).await }
    });
    let defaults = Resource::new(move || save.version().get(), |_| notification_defaults());
    let error = crate::pages::widgets::last_error(save);
    view! {
        <section class="panel">
            <h1>"Notifications"</h1>
            <p class="hint">"Where each kind goes for users who did not choose for themselves (on their profile)."</p>
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || defaults.get().map(|r| match r {
                    Err(e) => view! { <p class="error">{e.message}</p> }.into_any(),
                    Ok(choices) => view! {
                        <table class="list" data-testid="notification-defaults">
                            <thead><tr><th>"When"</th><th>"In the app"</th><th>"Email"</th><th>"Webhook"</th></tr></thead>
                            <tbody>{choices.into_iter().map(|choice| {
                                let cell = move |channel: &'static str, on: bool| view! {
                                    <td><input type="checkbox" checked=on data-channel=channel
                                        aria-label=format!("{}: {channel}", choice.kind.label())
                                        on:change=move |ev| {
                                            let on = event_target_checked(&ev);
                                            let mut changed = choice;
                                            match channel {
                                                "in_app" => changed.in_app = on,
                                                "email" => changed.email = on,
                                                _ => changed.webhook = on,
                                            }
                                            save.dispatch(vec![changed]);
                                        } /></td>
                                };
                                view! {
                                    <tr data-kind=choice.kind.as_str()>
                                        <td>{choice.kind.label()}</td>
                                        {cell("in_app", choice.in_app)}
                                        {cell("email", choice.email)}
                                        {cell("webhook", choice.webhook)}
                                    </tr>
                                }
                            }).collect_view()}</tbody>
                        </table>
                    }.into_any(),
                })}
            </Transition>
            {crate::pages::widgets::form_error(error, &[])}
        </section>
    }
}

#[component]
fn Deliveries() -> impl IntoView {
    let refresh = RwSignal::new(0u64);
    let list = Resource::new(move || refresh.get(), |_| deliveries(PageQuery::default()));
    view! {
        <section class="panel">
            <div class="row">
                <h2>"Deliveries"</h2>
                <button type="button" on:click=move |_| refresh.update(|n| *n += 1)>"Refresh"</button>
            </div>
            <p class="hint">"By webhook and email, newest first; finished ones are kept a week."</p>
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || list.get().map(|r| match r {
                    Err(e) => view! { <p class="error">{e.message}</p> }.into_any(),
                    Ok(items) if items.is_empty() => view! { <p class="empty">"None yet."</p> }.into_any(),
                    Ok(items) => view! {
                        <table class="list" data-testid="deliveries">
                            <thead><tr><th>"When"</th><th>"User"</th><th>"What"</th><th>"To"</th><th>"Status"</th><th>"Attempts"</th><th>"Last answer"</th></tr></thead>
                            <tbody>{items.into_iter().map(|d| {
                                let answer = match (d.last_code, d.last_error) {
                                    (Some(code), Some(error)) => format!("{code}: {error}"),
                                    (Some(code), None) => code.to_string(),
                                    (None, Some(error)) => error,
                                    (None, None) => String::new(),
                                };
                                let status = if d.status == "pending" {
                                    view! { "pending, next " <RelativeTime at=d.next_at /> }.into_any()
                                } else {
                                    d.status.clone().into_any()
                                };
                                view! {
                                    <tr>
                                        <td><RelativeTime at=d.created_at /></td>
                                        <td>{d.username}</td>
                                        <td>{d.channel} " · " {d.kind.label()}</td>
                                        <td><code>{d.target}</code></td>
                                        <td>{status}</td>
                                        <td>{d.attempts}</td>
                                        <td>{answer}</td>
                                    </tr>
                                }
                            }).collect_view()}</tbody>
                        </table>
                    }.into_any(),
                })}
            </Transition>
        </section>
    }
}
