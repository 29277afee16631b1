//! The signed-in user's own settings: password, SSH keys and API tokens.

use leptos::prelude::*;

use super::dashboard::SignedIn;
use super::widgets::{field_error, form_error, last_error, ConfirmButton};
use crate::api::auth::UserDto;
use crate::api::page::all_pages;
use crate::api::users::{
    add_ssh_key, change_password, create_token, list_ssh_keys, list_tokens, remove_ssh_key,
    revoke_token, ChangePassword, CreateSshKey, CreateToken, TokenScope,
};
use crate::components::time::RelativeTime;
use crate::ids::{SshKeyId, TokenId};

#[component]
pub fn ProfilePage() -> impl IntoView {
    view! {
        <SignedIn page=|user: UserDto| view! {
            <section class="panel">
                <h1>"Profile"</h1>
                <p>{user.display_name.clone()} " · " <code>{user.username.clone()}</code> " · " {format!("{:?}", user.role).to_lowercase()}</p>
            </section>
            <super::notifications::NotificationSettingsPanel />
            <super::autostop::TimeZoneForm current=user.time_zone.clone() />
            <super::repos::DotfilesForm current=user.dotfiles_url.clone() />
            <super::repos::GitCredentialsPanel />
            <super::repos::GitSshKeyPanel />
            <PasswordForm />
            <super::sign_in_provider::LinkProvider />
            <SshKeys />
            <super::ssh::SshConfigPanel />
            <Tokens />
            <super::ports::MyTunnels />
        } />
    }
}

#[component]
fn PasswordForm() -> impl IntoView {
    let current = RwSignal::new(String::new());
    let new = RwSignal::new(String::new());
    let revoke_tokens = RwSignal::new(false);
    let change = Action::new(|input: &ChangePassword| {
        let input = input.clone();
        async move { change_password(input).await }
    });
    let error = last_error(change);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        change.dispatch(ChangePassword {
            current_password: current.get_untracked(),
            new_password: new.get_untracked(),
            revoke_tokens: revoke_tokens.get_untracked(),
        });
    };
    Effect::new(move |_| {
        if let Some(Ok(())) = change.value().get() {
            current.set(String::new());
            new.set(String::new());
        }
    });
    view! {
        <section class="panel">
            <h2>"Password"</h2>
            <form class="stack narrow-form" on:submit=submit data-testid="password-form">
                <label>"Current password"
                    <input type="password" autocomplete="current-password" bind:value=current required=true />
                    {field_error(error, "current_password")}
                </label>
                <label>"New password"
                    <input type="password" autocomplete="new-password" bind:value=new required=true minlength="8" />
                    {field_error(error, "new_password")}
                </label>
                <label class="check"><input type="checkbox" bind:checked=revoke_tokens />
                    " Also revoke my API tokens"</label>
                {form_error(error, &["current_password", "new_password"])}
                {move || matches!(change.value().get(), Some(Ok(()))).then(|| view! { <p class="ok" role="status">"Password changed; your other sessions were signed out."</p> })}
                <button type="submit" class="primary" disabled=move || change.pending().get()>"Change password"</button>
            </form>
        </section>
    }
}

#[component]
fn SshKeys() -> impl IntoView {
    let name = RwSignal::new(String::new());
    let key = RwSignal::new(String::new());
    let add = Action::new(|input: &CreateSshKey| {
        let input = input.clone();
        async move { add_ssh_key(input).await }
    });
    let remove = Action::new(|id: &SshKeyId| {
        let id = id.clone();
        async move { remove_ssh_key(id).await }
    });
    let keys = Resource::new(
        move || (add.version().get(), remove.version().get()),
        |_| all_pages(list_ssh_keys),
    );
    let error = last_error(add);
    Effect::new(move |_| {
        if let Some(Ok(_)) = add.value().get() {
            name.set(String::new());
            key.set(String::new());
        }
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let name = name.get_untracked();
        add.dispatch(CreateSshKey {
            name: (!name.trim().is_empty()).then_some(name),
            public_key: key.get_untracked(),
        });
    };
    view! {
        <section class="panel">
            <h2>"SSH keys"</h2>
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || keys.get().map(|r| match r {
                    Err(e) => view! { <p class="error">{e.message}</p> }.into_any(),
                    Ok(list) if list.is_empty() => view! { <p class="empty">"No SSH keys yet. Paste your public key (e.g. ~/.ssh/id_ed25519.pub) below."</p> }.into_any(),
                    Ok(list) => view! {
                        <table class="list" data-testid="ssh-keys">
                            <thead><tr><th>"Name"</th><th>"Fingerprint"</th><th>"Added"</th><th></th></tr></thead>
                            <tbody>{list.into_iter().map(|k| {
                                let id = k.id.clone();
                                view! { <tr><td>{k.name}</td><td><code>{k.fingerprint}</code></td><td><RelativeTime at=k.created_at /></td>
                                    <td><ConfirmButton label="Remove" question="Remove this key?".into()
                                        on_confirm=Callback::new(move |_| { remove.dispatch(id.clone()); }) /></td></tr> }
                            }).collect_view()}</tbody>
                        </table>
                    }.into_any(),
                })}
            </Transition>
            <form class="stack" on:submit=submit>
                <label>"Name (optional)" <input type="text" bind:value=name placeholder="laptop" /></label>
                <label>"Public key"
                    <textarea rows="3" bind:value=key placeholder="ssh-ed25519 AAAA… you@laptop" required=true></textarea>
                    {field_error(error, "public_key")}
                </label>
                {form_error(error, &["public_key"])}
                <button type="submit" class="primary" disabled=move || add.pending().get()>"Add key"</button>
            </form>
        </section>
    }
}

#[component]
fn Tokens() -> impl IntoView {
    let name = RwSignal::new(String::new());
    let days = RwSignal::new("90".to_owned());
    let scope = RwSignal::new(TokenScope::Write.as_str().to_owned());
    let create = Action::new(|input: &CreateToken| {
        let input = input.clone();
        async move { create_token(input).await }
    });
    let revoke = Action::new(|id: &TokenId| {
        let id = id.clone();
        async move { revoke_token(id).await }
    });
    let tokens = Resource::new(
        move || (create.version().get(), revoke.version().get()),
        |_| all_pages(list_tokens),
    );
    let error = last_error(create);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        create.dispatch(CreateToken {
            name: name.get_untracked(),
            expires_in_days: days.get_untracked().trim().parse().ok(),
            scopes: TokenScope::parse(&scope.get_untracked()).map(|s| vec![s]),
        });
    };
    view! {
        <section class="panel">
            <h2>"API tokens"</h2>
            <p class="hint">"Use a token as " <code>"Authorization: Bearer <token>"</code> " with the JSON API (" <a href="/api/v1/openapi.json">"OpenAPI"</a> ")."</p>
            {move || create.value().get().and_then(|r| r.ok()).map(|created| view! {
                <div class="secret" role="status" data-testid="token-secret">
                    <p><strong>"Copy your new token now: it is shown only once."</strong></p>
                    <code>{created.secret}</code>
                </div>
            })}
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || tokens.get().map(|r| match r {
                    Err(e) => view! { <p class="error">{e.message}</p> }.into_any(),
                    Ok(list) if list.is_empty() => view! { <p class="empty">"No tokens yet."</p> }.into_any(),
                    Ok(list) => view! {
                        <table class="list" data-testid="tokens">
                            <thead><tr><th>"Name"</th><th>"Starts with"</th><th>"May"</th><th>"Expires"</th><th>"Last used"</th><th></th></tr></thead>
                            <tbody>{list.into_iter().map(|t| {
                                let id = t.id.clone();
                                let scopes = t.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
                                view! { <tr><td>{t.name}</td><td><code>{t.prefix}</code></td><td>{scopes}</td>
                                    <td><RelativeTime at=t.expires_at /></td>
                                    <td><RelativeTime at=t.last_used_at /></td>
                                    <td><ConfirmButton label="Revoke" question="Revoke this token?".into()
                                        on_confirm=Callback::new(move |_| { revoke.dispatch(id.clone()); }) /></td></tr> }
                            }).collect_view()}</tbody>
                        </table>
                    }.into_any(),
                })}
            </Transition>
            <form class="row" on:submit=submit>
                <label>"Name" <input type="text" bind:value=name placeholder="ci" required=true />
                    {field_error(error, "name")}</label>
                <label>"Expires in (days)" <input type="number" min="1" bind:value=days />
                    {field_error(error, "expires_in_days")}</label>
                <label>"May"
                    <select data-testid="token-scope" on:change=move |ev| scope.set(event_target_value(&ev))>
                        <option value="read">"read only"</option>
                        <option value="write" selected=true>"read and change"</option>
                        <option value="credentials">"also manage tokens, keys and password"</option>
                    </select>
                    {field_error(error, "scopes")}</label>
                <button type="submit" class="primary" disabled=move || create.pending().get()>"Create token"</button>
            </form>
            {form_error(error, &["name", "expires_in_days", "scopes"])}
        </section>
    }
}
