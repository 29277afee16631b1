//! Admin: who may use which feature. Rules allow or deny one feature to everyone, a group or
//! a user; a user's own rule wins, then their groups' (an allow wins over a deny), then the
//! rule for everyone; with no rule a feature is allowed. Spaces offer only their template's
//! features, and a sharee never gets more than the space's owner.

use leptos::prelude::*;

use super::AdminOnly;
use crate::api::features::{
    feature_rules, set_feature_rule, FeatureRuleDto, RuleEffect, RuleScope, SetFeatureRule,
};
use crate::api::templates::Feature;
use crate::components::time::RelativeTime;
use crate::error::ApiError;
use crate::pages::widgets::{field_error, form_error, last_error};

#[component]
pub fn FeaturesPage() -> impl IntoView {
    view! { <AdminOnly page=|| view! { <FeatureRules /> } /> }
}

fn scope_name(scope: RuleScope) -> &'static str {
    match scope {
        RuleScope::Everyone => "everyone",
        RuleScope::Group => "group",
        RuleScope::User => "user",
    }
}

#[component]
fn FeatureRules() -> impl IntoView {
    let scope = RwSignal::new("group".to_owned());
    let subject = RwSignal::new(String::new());
    let feature = RwSignal::new(Feature::Tunnels.as_str().to_owned());
    let effect = RwSignal::new("deny".to_owned());
    let set = Action::new(|input: &SetFeatureRule| {
        let input = input.clone();
        async move { set_feature_rule(input).await }
    });
    let rules = Resource::new(move || set.version().get(), |_| feature_rules());
    let error = last_error(set);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let scope = match scope.get_untracked().as_str() {
            "everyone" => RuleScope::Everyone,
            "user" => RuleScope::User,
            _ => RuleScope::Group,
        };
        let rule = match effect.get_untracked().as_str() {
            "allow" => RuleEffect::Allow,
            "inherit" => RuleEffect::Inherit,
            _ => RuleEffect::Deny,
        };
        let Some(feature) = Feature::parse(&feature.get_untracked()) else {
            return;
        };
        let name = subject.get_untracked().trim().to_owned();
        set.dispatch(SetFeatureRule {
            scope,
            subject: (scope != RuleScope::Everyone).then_some(name),
            feature,
            rule,
        });
    };
    view! {
        <section class="panel">
            <h1>"Features"</h1>
            <p class="hint">"Spaces offer their template's features. Here you decide who may use them: a user's own rule wins, then their groups' (an allow of any group wins), then the rule for everyone. With no rule, a feature is allowed. Someone a space is shared with never gets more than its owner."</p>
            <form class="row" on:submit=submit data-testid="feature-rule-form">
                <label>"For"
                    <select data-testid="rule-scope" bind:value=scope>
                        <option value="everyone">"everyone"</option>
                        <option value="group">"a group"</option>
                        <option value="user">"a user"</option>
                    </select>
                </label>
                <label>"Group or username"
                    <input type="text" data-testid="rule-subject" bind:value=subject
                        disabled=move || scope.get() == "everyone" placeholder="e.g. designers" />
                    {field_error(error, "subject")}
                </label>
                <label>"Feature"
                    <select data-testid="rule-feature" bind:value=feature>
                        {Feature::ALL.into_iter().map(|f| view! { <option value=f.as_str()>{f.label()}</option> }).collect_view()}
                    </select>
                </label>
                <label>"Rule"
                    <select data-testid="rule-effect" bind:value=effect>
                        <option value="allow">"allow"</option>
                        <option value="deny">"deny"</option>
                        <option value="inherit">"no rule (remove)"</option>
                    </select>
                </label>
                <button type="submit" class="primary" data-testid="set-rule" disabled=move || set.pending().get()>"Set"</button>
            </form>
            {form_error(error, &["subject"])}
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || rules.get().map(|r: Result<Vec<FeatureRuleDto>, ApiError>| match r {
                    Err(e) => view! { <p class="error">{e.message}</p> }.into_any(),
                    Ok(list) if list.is_empty() => view! { <p class="empty" data-testid="no-rules">"No rules: everyone may use every feature their templates offer."</p> }.into_any(),
                    Ok(list) => view! {
                        <table class="list" data-testid="feature-rules">
                            <thead><tr><th>"For"</th><th>"Feature"</th><th>"Rule"</th><th>"Set by"</th></tr></thead>
                            <tbody>{list.into_iter().map(|rule| view! {
                                <tr data-feature=rule.feature.as_str()>
                                    <td>{scope_name(rule.scope)} {(rule.scope != RuleScope::Everyone).then(|| format!(" {}", rule.subject_name))}</td>
                                    <td>{rule.feature.label()}</td>
                                    <td class=if rule.allowed { "outcome success" } else { "outcome refused" }>{if rule.allowed { "allow" } else { "deny" }}</td>
                                    <td>{rule.updated_by} " · " <RelativeTime at=rule.updated_at /></td>
                                </tr>
                            }).collect_view()}</tbody>
                        </table>
                    }.into_any(),
                })}
            </Transition>
        </section>
    }
}
