//! The sign-in page's part for an identity provider: "Sign in with <provider>", what the last
//! sign-in or sign-out of this browser has to say (why the provider's sign-in was refused,
//! whether the provider's session remains), and whether passwords are only for the break-glass
//! admin.

use leptos::prelude::*;

use crate::api::auth::{sign_in_options, PasswordSignIn};

/// Percent-encodes a query value.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[component]
pub fn ProviderSignIn() -> impl IntoView {
    let options = Resource::new(|| (), |_| sign_in_options());
    let query = leptos_router::hooks::use_query_map();
    // The server keeps only a path of its own as `next`.
    let start = move || {
        let next = query
            .with(|q| q.get("next"))
            .unwrap_or_else(|| "/".to_owned());
        format!("/api/v1/auth/oidc/login?next={}", encode(&next))
    };
    view! {
        <Transition fallback=|| ()>
            {move || options.get().and_then(Result::ok).map(|options| view! {
                {options.notice.map(|notice| view! {
                    <p class="error" role="alert" data-testid="sign-in-notice">{notice}</p>
                })}
                {options.provider.map(|name| view! {
                    <p>
                        // Not a page of the app: the router must let the browser go.
                        <a class="button primary" rel="external" href=start data-testid="provider-sign-in">
                            {format!("Sign in with {name}")}
                        </a>
                    </p>
                })}
                {(options.password == PasswordSignIn::BreakGlass).then(|| view! {
                    <p class="hint" data-testid="break-glass-only">
                        "Password sign-in is kept for the break-glass admin."
                    </p>
                })}
            })}
        </Transition>
    }
}

/// The profile page's link to the identity provider, when Hangar has one: signing in there
/// links this account to that identity (by its subject), so that it signs in through it.
#[component]
pub fn LinkProvider() -> impl IntoView {
    let options = Resource::new(|| (), |_| sign_in_options());
    view! {
        <Transition fallback=|| ()>
            {move || options.get().and_then(Result::ok).and_then(|o| Some((o.provider?, o.notice))).map(|(name, notice)| view! {
                <section class="panel">
                    <h2>{format!("Sign in with {name}")}</h2>
                    {notice.map(|notice| view! {
                        <p class="error" role="alert" data-testid="sign-in-notice">{notice}</p>
                    })}
                    <p>
                        {format!("Link this account to your {name} identity to sign in with it. ")}
                        <a class="button secondary" rel="external" href="/api/v1/auth/oidc/login?link=true&next=/profile" data-testid="link-provider">
                            {format!("Link your {name} account")}
                        </a>
                    </p>
                </section>
            })}
        </Transition>
    }
}
