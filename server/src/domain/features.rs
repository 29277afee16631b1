//! Feature permissions (who may use which feature): the rules that concern one user decide,
//! most specific first. A rule of the user's own wins; then their groups' (an allow of any
//! group wins over a deny of another, so a group can open a feature that everyone else is
//! denied); then the rule for everyone; with no rule, a feature is allowed.

use app::api::templates::Feature;

/// Whom a rule that concerns a user is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Everyone,
    /// One of their groups, by name.
    Group(String),
    /// The user themselves.
    User,
}

/// One rule that concerns the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub source: Source,
    pub feature: Feature,
    pub allowed: bool,
}

/// Whether the user may use `feature`, and which rule said so (`None`: no rule, allowed).
pub fn decide(rules: &[Rule], feature: Feature) -> (bool, Option<&Rule>) {
    let of = |pick: fn(&Source) -> bool| {
        rules
            .iter()
            .filter(move |r| r.feature == feature && pick(&r.source))
    };
    if let Some(rule) = of(|s| *s == Source::User).next() {
        return (rule.allowed, Some(rule));
    }
    let mut groups = of(|s| matches!(s, Source::Group(_)));
    if let Some(rule) = groups.clone().find(|r| r.allowed).or_else(|| groups.next()) {
        return (rule.allowed, Some(rule));
    }
    if let Some(rule) = of(|s| *s == Source::Everyone).next() {
        return (rule.allowed, Some(rule));
    }
    (true, None)
}

/// How a decision names the rule that made it: `default`, `everyone`, `group:<name>`, `user`.
pub fn decided_by(rule: Option<&Rule>) -> String {
    match rule.map(|r| &r.source) {
        None => "default".into(),
        Some(Source::Everyone) => "everyone".into(),
        Some(Source::Group(name)) => format!("group:{name}"),
        Some(Source::User) => "user".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(source: Source, allowed: bool) -> Rule {
        Rule {
            source,
            feature: Feature::Vnc,
            allowed,
        }
    }

    #[test]
    fn no_rule_allows() {
        assert_eq!(decide(&[], Feature::Vnc), (true, None));
    }

    #[test]
    fn the_most_specific_rule_decides() {
        let everyone_no = rule(Source::Everyone, false);
        let designers_yes = rule(Source::Group("designers".into()), true);
        let interns_no = rule(Source::Group("interns".into()), false);
        let user_no = rule(Source::User, false);
        assert!(!decide(std::slice::from_ref(&everyone_no), Feature::Vnc).0);
        // Only some groups: everyone is denied, one group allowed.
        let rules = [everyone_no.clone(), designers_yes.clone()];
        assert_eq!(decide(&rules, Feature::Vnc), (true, Some(&rules[1])));
        // An allow of any group wins over another group's deny.
        let rules = [
            interns_no.clone(),
            designers_yes.clone(),
            everyone_no.clone(),
        ];
        assert!(decide(&rules, Feature::Vnc).0);
        let rules = [interns_no.clone(), everyone_no.clone()];
        assert_eq!(decide(&rules, Feature::Vnc), (false, Some(&rules[0])));
        // The user's own rule wins over all.
        let rules = [designers_yes, user_no, everyone_no];
        assert_eq!(decide(&rules, Feature::Vnc), (false, Some(&rules[1])));
        assert_eq!(decided_by(Some(&rules[0])), "group:designers");
    }

    #[test]
    fn rules_of_other_features_do_not_count() {
        let ssh_no = Rule {
            source: Source::Everyone,
            feature: Feature::Ssh,
            allowed: false,
        };
        assert!(decide(std::slice::from_ref(&ssh_no), Feature::Vnc).0);
        assert!(!decide(&[ssh_no], Feature::Ssh).0);
    }
}
