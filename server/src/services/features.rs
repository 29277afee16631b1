//! Feature permissions against the database: admins' rules, what each user may use, and the
//! one check every way into a space makes ([`Services::space_with_feature`]): the template's
//! features, as far as both the caller and the space's owner are allowed them.

use std::collections::{BTreeSet, HashMap};

use app::api::features::{
    ssr::FeaturesApi, FeatureAccess, FeatureDecision, FeatureRuleDto, RuleEffect, RuleScope,
    SetFeatureRule,
};
use app::api::templates::Feature;
use app::ids::{GroupId, SpaceId, UserId};
use chrono::Utc;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use serde_json::json;

use super::access::{Caller, SpaceRole, Use};
use super::audit::{record, Outcome};
use super::{from_json, new_id, Services};
use crate::domain::features::{decide, decided_by, Rule, Source};
use crate::entities::{feature_rule, group, group_member, space, user};
use crate::error::{ApiError, ApiResult};

const EVERYONE: &str = "everyone";

fn group_subject(id: &GroupId) -> String {
    format!("group:{id}")
}

fn user_subject(id: &UserId) -> String {
    format!("user:{id}")
}

/// The features of a space's template snapshot.
pub fn space_features(space: &space::Model) -> ApiResult<BTreeSet<Feature>> {
    let features: Vec<Feature> = from_json(&space.features, "space features")?;
    Ok(features.into_iter().collect())
}

impl Services {
    /// The rules that concern each of these users (theirs, their groups', everyone's), in
    /// two statements however many users.
    async fn rules_of(&self, users: &[UserId]) -> ApiResult<HashMap<UserId, Vec<Rule>>> {
        let memberships = group_member::Entity::find()
            .filter(group_member::Column::UserId.is_in(users.to_vec()))
            .all(&self.db)
            .await?;
        let group_ids: Vec<GroupId> = memberships.iter().map(|m| m.group_id.clone()).collect();
        let rows = feature_rule::Entity::find()
            .filter(
                Condition::any()
                    .add(feature_rule::Column::Subject.eq(EVERYONE))
                    .add(feature_rule::Column::UserId.is_in(users.to_vec()))
                    .add(feature_rule::Column::GroupId.is_in(group_ids.clone())),
            )
            .all(&self.db)
            .await?;
        let group_names: HashMap<GroupId, String> = if rows.iter().any(|r| r.group_id.is_some()) {
            group::Entity::find()
                .filter(group::Column::Id.is_in(group_ids))
                .all(&self.db)
                .await?
                .into_iter()
                .map(|g| (g.id, g.name))
                .collect()
        } else {
            HashMap::new()
        };
        let mut out: HashMap<UserId, Vec<Rule>> =
            users.iter().map(|u| (u.clone(), Vec::new())).collect();
        for row in rows {
            let Some(feature) = Feature::parse(&row.feature) else {
                continue;
            };
            let mut give = |user: &UserId, source: Source| {
                if let Some(rules) = out.get_mut(user) {
                    rules.push(Rule {
                        source,
                        feature,
                        allowed: row.allowed,
                    });
                }
            };
            match (&row.user_id, &row.group_id) {
                (Some(user), _) => give(user, Source::User),
                (None, Some(group)) => {
                    let name = group_names.get(group).cloned().unwrap_or_default();
                    for member in memberships.iter().filter(|m| &m.group_id == group) {
                        give(&member.user_id, Source::Group(name.clone()));
                    }
                }
                (None, None) => {
                    for user in users {
                        give(user, Source::Everyone);
                    }
                }
            }
        }
        Ok(out)
    }

    /// The features each of these users may use by the admins' rules.
    pub async fn allowed_features_of(
        &self,
        users: &[UserId],
    ) -> ApiResult<HashMap<UserId, BTreeSet<Feature>>> {
        // Taken before the database is read (see `Recent::or_read`).
        let generation = self.notifier.rights_generation();
        let kept = &self.remembered.allowed_features;
        let mut out = HashMap::with_capacity(users.len());
        let mut unknown = Vec::new();
        for user in users {
            match kept.get(user, generation) {
                Some(allowed) => {
                    out.insert(user.clone(), allowed);
                }
                None => unknown.push(user.clone()),
            }
        }
        if unknown.is_empty() {
            return Ok(out);
        }
        for (user, rules) in self.rules_of(&unknown).await? {
            let allowed: BTreeSet<Feature> = Feature::ALL
                .into_iter()
                .filter(|f| decide(&rules, *f).0)
                .collect();
            kept.put(user.clone(), generation, allowed.clone());
            out.insert(user, allowed);
        }
        Ok(out)
    }

    /// What the caller may use in this space: its template's features that both the caller
    /// and the owner are allowed.
    pub async fn effective_features(
        &self,
        caller: &Caller,
        space: &space::Model,
    ) -> ApiResult<BTreeSet<Feature>> {
        let users = [space.owner_id.clone(), caller.id().clone()];
        let allowed = self.allowed_features_of(&users).await?;
        let mut features = space_features(space)?;
        for user in &users {
            let theirs = allowed.get(user).cloned().unwrap_or_default();
            features.retain(|f| theirs.contains(f));
        }
        Ok(features)
    }

    /// Why the caller may not use `feature` in this space (a 403 naming the permission), if
    /// they may not.
    pub async fn feature_refusal(
        &self,
        caller: &Caller,
        space: &space::Model,
        feature: Feature,
    ) -> ApiResult<Option<ApiError>> {
        let refuse = |message: String| {
            Some(ApiError::forbidden(message).with_detail("permission", feature.as_str()))
        };
        if !space_features(space)?.contains(&feature) {
            return Ok(refuse(format!(
                "missing permission `{feature}`: the space's template `{}` does not offer it \
                 (an admin can add it to the template; spaces made before keep their features)",
                space.template_name
            )));
        }
        let users = [caller.id().clone(), space.owner_id.clone()];
        let rules = self.rules_of(&users).await?;
        for user in &users {
            let mine = user == caller.id();
            let (allowed, rule) = decide(rules.get(user).map_or(&[], Vec::as_slice), feature);
            if !allowed {
                let by = decided_by(rule);
                return Ok(refuse(if mine {
                    format!(
                        "missing permission `{feature}`: an admin has not allowed it to you \
                         (rule: {by}); ask an admin"
                    )
                } else {
                    format!(
                        "missing permission `{feature}`: the space's owner is not allowed it \
                         (rule: {by}), so nobody is in this space"
                    )
                }));
            }
        }
        Ok(None)
    }

    /// A running space whose `feature` the caller may use now to change things (a shell, a
    /// TCP forward): as [`Services::space_with_feature`] for a [`Use::Change`], with 409 when
    /// the space does not run.
    pub async fn usable_space_with_feature(
        &self,
        caller: &Caller,
        space_id: &SpaceId,
        feature: Feature,
    ) -> ApiResult<(space::Model, SpaceRole)> {
        let (space, role) = self.usable_space(caller, space_id).await?;
        match self.feature_refusal(caller, &space, feature).await? {
            Some(refusal) => Err(refusal),
            None => Ok((space, role)),
        }
    }

    /// THE check of every way into a space (terminal, SSH, proxy, desktop, files, the VS
    /// Code tunnel): a live space the caller may see (else 404), for what the door is about
    /// to do (a change needs a token's `write` scope, else 403 naming it: see [`Use`]), whose
    /// `feature` they may use (else 403 naming the missing permission), with their relation
    /// to it.
    pub async fn space_with_feature(
        &self,
        caller: &Caller,
        space_id: &SpaceId,
        feature: Feature,
        intent: Use,
    ) -> ApiResult<(space::Model, SpaceRole)> {
        let (space, role) = self.space_for(caller, space_id, intent).await?;
        match self.feature_refusal(caller, &space, feature).await? {
            Some(refusal) => Err(refusal),
            None => Ok((space, role)),
        }
    }

    async fn rule_dtos(&self) -> ApiResult<Vec<FeatureRuleDto>> {
        let rows = feature_rule::Entity::find()
            .order_by_asc(feature_rule::Column::Subject)
            .order_by_asc(feature_rule::Column::Feature)
            .all(&self.db)
            .await?;
        let user_ids: Vec<UserId> = rows.iter().filter_map(|r| r.user_id.clone()).collect();
        let group_ids: Vec<GroupId> = rows.iter().filter_map(|r| r.group_id.clone()).collect();
        let users: HashMap<UserId, String> = self
            .users_by_ids(user_ids)
            .await?
            .into_iter()
            .map(|u| (u.id, u.username))
            .collect();
        let groups: HashMap<GroupId, String> = group::Entity::find()
            .filter(group::Column::Id.is_in(group_ids))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|g| (g.id, g.name))
            .collect();
        let mut dtos: Vec<FeatureRuleDto> = rows
            .into_iter()
            .filter_map(|r| {
                let feature = Feature::parse(&r.feature)?;
                let (scope, subject_id, subject_name) = match (&r.user_id, &r.group_id) {
                    (Some(u), _) => (
                        RuleScope::User,
                        Some(u.to_string()),
                        users.get(u).cloned().unwrap_or_default(),
                    ),
                    (None, Some(g)) => (
                        RuleScope::Group,
                        Some(g.to_string()),
                        groups.get(g).cloned().unwrap_or_default(),
                    ),
                    (None, None) => (RuleScope::Everyone, None, EVERYONE.to_owned()),
                };
                Some(FeatureRuleDto {
                    id: r.id,
                    scope,
                    subject_id,
                    subject_name,
                    feature,
                    allowed: r.allowed,
                    updated_by: r.updated_by,
                    updated_at: r.updated_at.into(),
                })
            })
            .collect();
        dtos.sort_by(|a, b| {
            (a.scope, &a.subject_name, a.feature).cmp(&(b.scope, &b.subject_name, b.feature))
        });
        Ok(dtos)
    }

    /// The users a rule for this subject concerns, so that their pages and open channels
    /// look again.
    async fn users_of_subject(
        &self,
        user: Option<&UserId>,
        group: Option<&GroupId>,
    ) -> ApiResult<Vec<UserId>> {
        Ok(match (user, group) {
            (Some(user), _) => vec![user.clone()],
            (None, Some(group)) => group_member::Entity::find()
                .filter(group_member::Column::GroupId.eq(group.clone()))
                .all(&self.db)
                .await?
                .into_iter()
                .map(|m| m.user_id)
                .collect(),
            (None, None) => {
                user::Entity::find()
                    .select_only()
                    .column(user::Column::Id)
                    .into_tuple()
                    .all(&self.db)
                    .await?
            }
        })
    }
}

#[async_trait::async_trait]
impl FeaturesApi for Services {
    async fn list_feature_rules(&self, caller: &Caller) -> ApiResult<Vec<FeatureRuleDto>> {
        caller.require_admin()?;
        self.rule_dtos().await
    }

    async fn set_feature_rule(
        &self,
        caller: &Caller,
        input: SetFeatureRule,
    ) -> ApiResult<Vec<FeatureRuleDto>> {
        caller.require_admin()?;
        let subject_text = input.subject.as_deref().map(str::trim).unwrap_or_default();
        let (subject, user_id, group_id, target) = match input.scope {
            RuleScope::Everyone => {
                if !subject_text.is_empty() {
                    return Err(ApiError::invalid(
                        "subject",
                        "a rule for everyone names no group or user: leave subject out",
                    ));
                }
                (EVERYONE.to_owned(), None, None, EVERYONE.to_owned())
            }
            RuleScope::User => {
                if subject_text.is_empty() {
                    return Err(ApiError::invalid(
                        "subject",
                        "name the user (username or id)",
                    ));
                }
                let user = self.find_user_by_id_or_name(subject_text).await?;
                let target = format!("user:{}", user.username);
                (user_subject(&user.id), Some(user.id), None, target)
            }
            RuleScope::Group => {
                if subject_text.is_empty() {
                    return Err(ApiError::invalid("subject", "name the group (name or id)"));
                }
                let group = group::Entity::find()
                    .filter(
                        group::Column::Id
                            .eq(GroupId::from(subject_text))
                            .or(group::Column::Name.eq(subject_text)),
                    )
                    .one(&self.db)
                    .await?
                    .ok_or_else(|| {
                        ApiError::invalid(
                            "subject",
                            format!("there is no group `{subject_text}`: check the name"),
                        )
                    })?;
                let target = format!("group:{}", group.name);
                (group_subject(&group.id), None, Some(group.id), target)
            }
        };
        let feature = input.feature.as_str();
        match input.rule {
            RuleEffect::Inherit => {
                feature_rule::Entity::delete_many()
                    .filter(feature_rule::Column::Subject.eq(subject.as_str()))
                    .filter(feature_rule::Column::Feature.eq(feature))
                    .exec(&self.db)
                    .await?;
            }
            RuleEffect::Allow | RuleEffect::Deny => {
                let allowed = input.rule == RuleEffect::Allow;
                let now = Utc::now();
                feature_rule::Entity::insert(feature_rule::ActiveModel {
                    id: Set(new_id()),
                    subject: Set(subject.clone()),
                    feature: Set(feature.to_owned()),
                    user_id: Set(user_id.clone()),
                    group_id: Set(group_id.clone()),
                    allowed: Set(allowed),
                    updated_by: Set(caller.user.username.clone()),
                    updated_at: Set(now),
                })
                .on_conflict(
                    OnConflict::columns([
                        feature_rule::Column::Subject,
                        feature_rule::Column::Feature,
                    ])
                    .value(feature_rule::Column::Allowed, Expr::value(allowed))
                    .value(
                        feature_rule::Column::UpdatedBy,
                        Expr::value(caller.user.username.clone()),
                    )
                    .value(feature_rule::Column::UpdatedAt, Expr::value(now))
                    .to_owned(),
                )
                .exec_without_returning(&self.db)
                .await?;
            }
        }
        record(
            &self.db,
            Some(caller),
            "feature_rule.set",
            &target,
            Outcome::Success,
            json!({"feature": feature, "rule": input.rule}),
        )
        .await;
        // Pages redraw, and channels of those who lost the feature close.
        let concerned = self
            .users_of_subject(user_id.as_ref(), group_id.as_ref())
            .await?;
        self.users_changed(concerned);
        self.rule_dtos().await
    }

    async fn user_features(&self, caller: &Caller, id: &UserId) -> ApiResult<FeatureAccess> {
        if id != caller.id() {
            caller.require_admin()?;
            self.find_user(id).await?;
        }
        let rules = self.rules_of(std::slice::from_ref(id)).await?;
        let rules = rules.get(id).map_or(&[][..], Vec::as_slice);
        Ok(FeatureAccess {
            user_id: id.clone(),
            decisions: Feature::ALL
                .into_iter()
                .map(|feature| {
                    let (allowed, rule) = decide(rules, feature);
                    FeatureDecision {
                        feature,
                        allowed,
                        decided_by: decided_by(rule),
                    }
                })
                .collect(),
        })
    }
}
