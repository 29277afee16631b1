//! Who may use which feature of their spaces: admins allow or deny features to everyone, per
//! group and per user. What someone may use in a space is the template's features that both
//! they and the space's owner are allowed (a sharee never gets more than the owner).

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::templates::Feature;
use crate::error::ApiError;
use crate::ids::{FeatureRuleId, UserId};
use crate::time::Timestamp;

impl Feature {
    /// Every feature, in the order pages list them.
    pub const ALL: [Feature; 8] = [
        Feature::Terminal,
        Feature::Ssh,
        Feature::CodeServer,
        Feature::Vnc,
        Feature::PortForwarding,
        Feature::Tunnels,
        Feature::FileTransfer,
        Feature::VscodeTunnel,
    ];

    /// The wire name, as in templates and rules (`code_server`).
    pub fn as_str(self) -> &'static str {
        match self {
            Feature::Terminal => "terminal",
            Feature::Ssh => "ssh",
            Feature::CodeServer => "code_server",
            Feature::Vnc => "vnc",
            Feature::PortForwarding => "port_forwarding",
            Feature::Tunnels => "tunnels",
            Feature::FileTransfer => "file_transfer",
            Feature::VscodeTunnel => "vscode_tunnel",
        }
    }

    /// The feature with this wire name.
    pub fn parse(name: &str) -> Option<Feature> {
        Feature::ALL.into_iter().find(|f| f.as_str() == name)
    }

    /// How pages name it.
    pub fn label(self) -> &'static str {
        match self {
            Feature::Terminal => "Web terminal",
            Feature::Ssh => "SSH",
            Feature::CodeServer => "VS Code in the browser",
            Feature::Vnc => "Desktop (VNC)",
            Feature::PortForwarding => "Ports",
            Feature::Tunnels => "Public links (tunnels)",
            Feature::FileTransfer => "File transfer",
            Feature::VscodeTunnel => "VS Code tunnel",
        }
    }
}

impl std::fmt::Display for Feature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whom a rule is about.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleScope {
    /// Every user, unless a rule of their groups or their own says otherwise.
    Everyone,
    /// The members of one group (an allow of any of a user's groups wins over a deny of another).
    Group,
    /// One user: wins over every other rule.
    User,
}

/// What a rule says.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleEffect {
    Allow,
    Deny,
    /// No rule of this subject: the next one decides (setting it removes the rule).
    Inherit,
}

#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureRuleDto {
    pub id: FeatureRuleId,
    pub scope: RuleScope,
    /// The group's or user's id (none for everyone).
    pub subject_id: Option<String>,
    /// The group's or user's name, `everyone` for everyone.
    pub subject_name: String,
    pub feature: Feature,
    pub allowed: bool,
    pub updated_by: String,
    pub updated_at: Timestamp,
}

/// `PUT /api/v1/feature-rules`: sets (or with `inherit` removes) one rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetFeatureRule {
    pub scope: RuleScope,
    /// The group or user, by id or by name (not for `everyone`).
    #[serde(default)]
    pub subject: Option<String>,
    pub feature: Feature,
    pub rule: RuleEffect,
}

/// The schema of [`SetFeatureRule`], written out because it says what the derive cannot: a
/// rule for a group or a user names it (`subject`), one for everyone names nobody.
#[cfg(feature = "ssr")]
mod set_feature_rule_schema {
    use std::borrow::Cow;

    use utoipa::openapi::schema::{
        AdditionalProperties, ObjectBuilder, OneOfBuilder, Schema, Type,
    };
    use utoipa::openapi::RefOr;
    use utoipa::{PartialSchema, ToSchema};

    use super::{Feature, RuleEffect, RuleScope, SetFeatureRule};

    fn rule(scopes: &[&str], subject: Option<Schema>) -> ObjectBuilder {
        let scope = ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(scopes.iter().copied()));
        let mut object = ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("scope", scope)
            .required("scope")
            .property("feature", Feature::schema())
            .required("feature")
            .property("rule", RuleEffect::schema())
            .required("rule")
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        if let Some(subject) = subject {
            object = object.property("subject", subject).required("subject");
        }
        object
    }

    impl PartialSchema for SetFeatureRule {
        fn schema() -> RefOr<Schema> {
            let named = ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .pattern(Some("\\S"))
                .description(Some("The group or user, by id or by name (not blank)."))
                .build();
            let nobody = ObjectBuilder::new().schema_type(Type::Null).build();
            OneOfBuilder::new()
                .item(rule(&["everyone"], None).property("subject", nobody))
                .item(rule(&["group", "user"], Some(Schema::Object(named))))
                .description(Some(
                    "Sets (or with `inherit` removes) one rule: for `everyone`, or for a group or \
                     a user named by `subject` (id or name).",
                ))
                .into()
        }
    }

    impl ToSchema for SetFeatureRule {
        fn name() -> Cow<'static, str> {
            Cow::Borrowed("SetFeatureRule")
        }

        fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
            for (name, schema) in [
                (Feature::name(), Feature::schema()),
                (RuleEffect::name(), RuleEffect::schema()),
                (RuleScope::name(), RuleScope::schema()),
            ] {
                schemas.push((name.into_owned(), schema));
            }
        }
    }
}

/// Whether a user may use one feature, and which rule decided it.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureDecision {
    pub feature: Feature,
    pub allowed: bool,
    /// `default`, `everyone`, `group:<name>` or `user:<name>`.
    pub decided_by: String,
}

/// Every feature a user may or may not use.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureAccess {
    pub user_id: UserId,
    pub decisions: Vec<FeatureDecision>,
}

/// Every feature rule (admins only).
#[server]
pub async fn feature_rules() -> Result<Vec<FeatureRuleDto>, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.list_feature_rules(&caller).await)
}

#[server(name = SetFeatureRuleCall, input = server_fn::codec::Json)]
pub async fn set_feature_rule(input: SetFeatureRule) -> Result<Vec<FeatureRuleDto>, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.set_feature_rule(&caller, input).await)
}

/// What a user may use (admins: anyone; others: themselves).
#[server]
pub async fn user_features(id: UserId) -> Result<FeatureAccess, ApiError> {
    let (api, caller) = crate::api::ssr::caller().await?;
    crate::api::ssr::answer(api.user_features(&caller, &id).await)
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use super::{FeatureAccess, FeatureRuleDto, SetFeatureRule};
    use crate::api::ssr::Caller;
    use crate::error::ApiResult;
    use crate::ids::UserId;

    /// Feature permissions.
    #[async_trait::async_trait]
    pub trait FeaturesApi: Send + Sync + 'static {
        /// Every rule (admins only).
        async fn list_feature_rules(&self, caller: &Caller) -> ApiResult<Vec<FeatureRuleDto>>;
        /// Sets or removes one rule (admins only); answers every rule.
        async fn set_feature_rule(
            &self,
            caller: &Caller,
            input: SetFeatureRule,
        ) -> ApiResult<Vec<FeatureRuleDto>>;
        /// What a user may use (admins: anyone; others: themselves only).
        async fn user_features(&self, caller: &Caller, id: &UserId) -> ApiResult<FeatureAccess>;
    }
}
