//! Quota and usage as the API reports them (null = unlimited).

use serde::{Deserialize, Serialize};

#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct QuotaValues {
    pub max_spaces: Option<i64>,
    pub compute_units: Option<i64>,
    pub storage_units: Option<i64>,
    /// Tunnels (public links) the user may have at once.
    #[serde(default)]
    pub max_tunnels: Option<i64>,
}

#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UsageValues {
    pub spaces: i64,
    pub compute_units: i64,
    pub storage_units: i64,
    /// Tunnels of the user's spaces.
    #[serde(default)]
    pub tunnels: i64,
}

/// A request body that sets a quota (declared with [`body_with_quota`]).
pub trait SetsQuota {
    /// The body with every quota value given (the admin forms send all four).
    fn with_quota(self, quota: QuotaValues) -> Self;
}

/// Declares a request body that sets a user's or a group's quota: its own fields, then the
/// four quota values, each absent (no change, or the default), `null` (unlimited) or 0 to
/// 1,000,000, with the attributes that publish and enforce that written once. An optional
/// `absent: "…"` after the struct documents what an absent value means. (Not a flattened
/// struct: the published schema would then refuse the fields its `allOf` parts do not name.)
/// The struct is written unindented inside the call, so that it reads as it would without.
macro_rules! body_with_quota {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $($(#[$field_meta:meta])* pub $field:ident: $type:ty,)*
        }
        $(absent: $absent:tt)?
    ) => {
        $crate::api::quota::body_with_quota! {
            @emit [$(#[$meta])*] $name [$($(#[$field_meta])* pub $field: $type,)*]
            [$(#[doc = $absent])?] max_spaces,
            [] compute_units,
            [] storage_units,
            [#[doc = "Tunnels (public links) at once."]] max_tunnels
        }
    };
    (
        @emit [$($meta:tt)*] $name:ident [$($fields:tt)*]
        $([$($doc:tt)*] $quota:ident),*
    ) => {
        $($meta)*
        pub struct $name {
            $($fields)*
            $(
                $($doc)*
                #[serde(
                    default,
                    deserialize_with = "crate::api::serde_helpers::double_option",
                    skip_serializing_if = "Option::is_none"
                )]
                #[cfg_attr(
                    feature = "ssr",
                    schema(value_type = Option<i64>, minimum = 0, maximum = 1000000)
                )]
                pub $quota: Option<Option<i64>>,
            )*
        }

        impl $crate::api::quota::SetsQuota for $name {
            fn with_quota(self, quota: $crate::api::quota::QuotaValues) -> Self {
                Self {
                    $($quota: Some(quota.$quota),)*
                    ..self
                }
            }
        }
    };
}
pub(crate) use body_with_quota;

/// One contributor to the effective quota: `own` or `group:<name>`.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaSource {
    pub source: String,
    pub max_spaces: Option<i64>,
    pub compute_units: Option<i64>,
    pub storage_units: Option<i64>,
    #[serde(default)]
    pub max_tunnels: Option<i64>,
}

#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaReport {
    pub quota: QuotaValues,
    pub usage: UsageValues,
    pub breakdown: Vec<QuotaSource>,
    /// Usage is above the quota in some dimension (after a quota was lowered).
    pub over_quota: bool,
    /// Bytes in use on the volumes of the user's spaces (measured at most seconds ago), to
    /// read against `usage.storage_units` GiB; null when the host does not enforce volume
    /// sizes (see `/readyz`).
    #[serde(default)]
    pub storage_used_bytes: Option<i64>,
}

/// One user's report in the list every admin page with live usage reads at once.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserQuota {
    pub user_id: crate::ids::UserId,
    pub report: QuotaReport,
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use super::{QuotaReport, UserQuota};
    use crate::api::page::PageQuery;
    use crate::api::ssr::Caller;
    use crate::error::ApiResult;
    use crate::ids::UserId;

    /// Quotas and live usage.
    #[async_trait::async_trait]
    pub trait QuotaApi: Send + Sync + 'static {
        /// The caller's effective quota and usage.
        async fn my_quota(&self, caller: &Caller) -> ApiResult<QuotaReport>;
        /// One user's (admins only).
        async fn user_quota(&self, caller: &Caller, id: &UserId) -> ApiResult<QuotaReport>;
        /// A page of users' reports, by username (admins only).
        async fn user_quotas(&self, caller: &Caller, page: PageQuery) -> ApiResult<Vec<UserQuota>>;
    }
}
