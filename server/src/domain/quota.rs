//! Quota arithmetic (SPEC §3): effective quota as own + Σ groups (None = unlimited), usage,
//! and the checks made on create and on start. Pure functions; the database locking lives in
//! the space service.

use std::fmt;

/// One value per dimension; `None` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    pub max_spaces: Option<i64>,
    pub compute_units: Option<i64>,
    pub storage_units: Option<i64>,
    /// Tunnels (public links) at once.
    pub tunnels: Option<i64>,
}

impl Limits {
    pub const UNLIMITED: Limits = Limits {
        max_spaces: None,
        compute_units: None,
        storage_units: None,
        tunnels: None,
    };

    pub const ZERO: Limits = Limits {
        max_spaces: Some(0),
        compute_units: Some(0),
        storage_units: Some(0),
        tunnels: Some(0),
    };
}

/// What a user's spaces currently consume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub spaces: i64,
    pub compute_units: i64,
    pub storage_units: i64,
    pub tunnels: i64,
}

/// A contributor to a user's quota: their own values or one group's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contribution {
    pub source: String,
    pub limits: Limits,
}

fn add(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    Some(a?.saturating_add(b?))
}

/// The sum of every contribution, where any unlimited contributor makes the dimension
/// unlimited. With no contributor at all, nothing is allowed.
pub fn effective(contributions: &[Contribution]) -> Limits {
    contributions
        .iter()
        .map(|c| c.limits)
        .reduce(|a, b| Limits {
            max_spaces: add(a.max_spaces, b.max_spaces),
            compute_units: add(a.compute_units, b.compute_units),
            storage_units: add(a.storage_units, b.storage_units),
            tunnels: add(a.tunnels, b.tunnels),
        })
        .unwrap_or(Limits::ZERO)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    Spaces,
    ComputeUnits,
    StorageUnits,
    Tunnels,
}

impl Dimension {
    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Spaces => "max_spaces",
            Dimension::ComputeUnits => "compute_units",
            Dimension::StorageUnits => "storage_units",
            Dimension::Tunnels => "max_tunnels",
        }
    }
}

/// A refused action with the figures that explain it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaExceeded {
    pub dimension: Dimension,
    pub used: i64,
    pub quota: i64,
    pub needed: i64,
    /// `creating "api"` or `starting "api"`.
    pub action: String,
}

impl fmt::Display for QuotaExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (what, unit) = match self.dimension {
            Dimension::Spaces => ("space", " spaces"),
            Dimension::ComputeUnits => ("compute", " CU"),
            Dimension::StorageUnits => ("storage", " SU"),
            Dimension::Tunnels => ("tunnel", " tunnels"),
        };
        let need = match self.dimension {
            Dimension::Spaces => "needs 1 more space".to_owned(),
            Dimension::Tunnels => "needs 1 more tunnel".to_owned(),
            _ => format!("needs {}{unit}", self.needed),
        };
        write!(
            f,
            "{what} quota exceeded: {} of {}{unit} in use, {} {need}",
            self.used, self.quota, self.action
        )
    }
}

fn fits(
    dimension: Dimension,
    limit: Option<i64>,
    used: i64,
    needed: i64,
    action: &str,
) -> Result<(), QuotaExceeded> {
    match limit {
        Some(quota) if used.saturating_add(needed) > quota => Err(QuotaExceeded {
            dimension,
            used,
            quota,
            needed,
            action: action.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// Creating a space takes one space and its storage units.
pub fn check_create(
    limits: &Limits,
    usage: &Usage,
    space_name: &str,
    storage_units: i64,
) -> Result<(), QuotaExceeded> {
    let action = format!("creating \"{space_name}\"");
    fits(
        Dimension::Spaces,
        limits.max_spaces,
        usage.spaces,
        1,
        &action,
    )?;
    fits(
        Dimension::StorageUnits,
        limits.storage_units,
        usage.storage_units,
        storage_units,
        &action,
    )
}

/// Starting a space takes its compute units.
pub fn check_start(
    limits: &Limits,
    usage: &Usage,
    space_name: &str,
    compute_units: i64,
) -> Result<(), QuotaExceeded> {
    fits(
        Dimension::ComputeUnits,
        limits.compute_units,
        usage.compute_units,
        compute_units,
        &format!("starting \"{space_name}\""),
    )
}

/// Publishing a port as a tunnel takes one tunnel.
pub fn check_tunnel(limits: &Limits, usage: &Usage, action: &str) -> Result<(), QuotaExceeded> {
    fits(Dimension::Tunnels, limits.tunnels, usage.tunnels, 1, action)
}

/// Whether usage is above the quota in any dimension (after a quota was lowered).
pub fn over_quota(limits: &Limits, usage: &Usage) -> bool {
    let over = |limit: Option<i64>, used: i64| limit.is_some_and(|l| used > l);
    over(limits.max_spaces, usage.spaces)
        || over(limits.compute_units, usage.compute_units)
        || over(limits.storage_units, usage.storage_units)
        || over(limits.tunnels, usage.tunnels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn own(max_spaces: Option<i64>, cu: Option<i64>, su: Option<i64>) -> Contribution {
        Contribution {
            source: "own".into(),
            limits: Limits {
                max_spaces,
                compute_units: cu,
                storage_units: su,
                tunnels: Some(3),
            },
        }
    }

    #[test]
    fn groups_add_up_as_the_spec_says() {
        let limits = effective(&[
            own(Some(1), Some(2), Some(10)),
            own(Some(0), Some(3), Some(0)),
            own(Some(2), Some(5), None),
        ]);
        assert_eq!(limits.compute_units, Some(10));
        assert_eq!(limits.max_spaces, Some(3));
        assert_eq!(limits.storage_units, None);
    }

    #[test]
    fn tunnels_are_counted_like_the_other_dimensions() {
        let limits = effective(&[own(None, None, None), own(None, None, None)]);
        assert_eq!(limits.tunnels, Some(6));
        let usage = Usage {
            tunnels: 6,
            ..Usage::default()
        };
        let error = check_tunnel(&limits, &usage, "publishing port 8080 of \"api\"").unwrap_err();
        assert_eq!(
            error.to_string(),
            "tunnel quota exceeded: 6 of 6 tunnels in use, publishing port 8080 of \"api\" needs 1 more tunnel"
        );
        assert!(!over_quota(&limits, &usage));
        assert!(over_quota(
            &limits,
            &Usage {
                tunnels: 7,
                ..usage
            }
        ));
    }

    #[test]
    fn message_names_limit_usage_quota_and_need() {
        let limits = Limits {
            compute_units: Some(8),
            ..Limits::UNLIMITED
        };
        let usage = Usage {
            compute_units: 6,
            ..Usage::default()
        };
        let error = check_start(&limits, &usage, "api", 4).unwrap_err();
        assert_eq!(
            error.to_string(),
            "compute quota exceeded: 6 of 8 CU in use, starting \"api\" needs 4 CU"
        );
    }

    fn limit() -> impl Strategy<Value = Option<i64>> {
        prop_oneof![Just(None), (0i64..1000).prop_map(Some)]
    }

    fn limits() -> impl Strategy<Value = Limits> {
        (limit(), limit(), limit(), limit()).prop_map(|(s, c, u, t)| Limits {
            max_spaces: s,
            compute_units: c,
            storage_units: u,
            tunnels: t,
        })
    }

    proptest! {
        #[test]
        fn effective_is_the_sum_or_unlimited(parts in proptest::collection::vec(limits(), 1..6)) {
            let contributions: Vec<_> = parts
                .iter()
                .map(|l| Contribution { source: "x".into(), limits: *l })
                .collect();
            let total = effective(&contributions);
            let expect = |pick: fn(&Limits) -> Option<i64>| {
                parts.iter().map(pick).try_fold(0i64, |acc, v| v.map(|v| acc + v))
            };
            prop_assert_eq!(total.max_spaces, expect(|l| l.max_spaces));
            prop_assert_eq!(total.compute_units, expect(|l| l.compute_units));
            prop_assert_eq!(total.storage_units, expect(|l| l.storage_units));
            prop_assert_eq!(total.tunnels, expect(|l| l.tunnels));
        }

        #[test]
        fn effective_does_not_depend_on_order(mut parts in proptest::collection::vec(limits(), 1..6)) {
            let as_contributions = |p: &[Limits]| -> Vec<Contribution> {
                p.iter().map(|l| Contribution { source: "x".into(), limits: *l }).collect()
            };
            let before = effective(&as_contributions(&parts));
            parts.reverse();
            prop_assert_eq!(before, effective(&as_contributions(&parts)));
        }

        #[test]
        fn accepted_starts_never_exceed_the_quota(quota in 0i64..50, needs in proptest::collection::vec(0i64..10, 0..30)) {
            let limits = Limits { compute_units: Some(quota), ..Limits::UNLIMITED };
            let mut usage = Usage::default();
            for need in needs {
                match check_start(&limits, &usage, "s", need) {
                    Ok(()) => usage.compute_units += need,
                    Err(e) => {
                        prop_assert!(usage.compute_units + need > quota);
                        prop_assert_eq!(e.used, usage.compute_units);
                        prop_assert_eq!(e.quota, quota);
                        prop_assert_eq!(e.needed, need);
                    }
                }
                prop_assert!(usage.compute_units <= quota);
            }
        }

        #[test]
        fn accepted_creates_never_exceed_spaces_or_storage(max in 0i64..20, su_quota in 0i64..100, sizes in proptest::collection::vec(0i64..20, 0..30)) {
            let limits = Limits { max_spaces: Some(max), storage_units: Some(su_quota), ..Limits::UNLIMITED };
            let mut usage = Usage::default();
            for su in sizes {
                if check_create(&limits, &usage, "s", su).is_ok() {
                    usage.spaces += 1;
                    usage.storage_units += su;
                }
                prop_assert!(usage.spaces <= max && usage.storage_units <= su_quota);
                prop_assert!(!over_quota(&limits, &usage));
            }
        }

        #[test]
        fn unlimited_never_refuses(used in 0i64..1_000_000, need in 0i64..1_000_000) {
            let usage = Usage { spaces: used, compute_units: used, storage_units: used, tunnels: used };
            prop_assert!(check_start(&Limits::UNLIMITED, &usage, "s", need).is_ok());
            prop_assert!(check_create(&Limits::UNLIMITED, &usage, "s", need).is_ok());
            prop_assert!(check_tunnel(&Limits::UNLIMITED, &usage, "s").is_ok());
        }
    }
}
