//! Quotas against the database: contributions, usage, reports, and the per-user lock that
//! makes check-then-act atomic across requests and replicas.

use app::api::quota::{QuotaReport, QuotaSource, QuotaValues, UsageValues};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};

use super::access::Caller;
use super::Services;
use crate::domain::lifecycle::SpaceState;
use crate::domain::quota::{effective, over_quota, Contribution, Limits, Usage};
use crate::entities::{group, group_member, space, user};
use crate::error::{AppError, AppResult};

/// Takes the owner's quota lock for the rest of the transaction: a write to the user's row,
/// which PostgreSQL holds as a row lock until commit and which makes SQLite take its write
/// lock up front. It must be the transaction's first statement (on SQLite a read before it
/// could not be upgraded once another writer committed).
pub async fn lock_owner(txn: &impl ConnectionTrait, owner_id: &str) -> AppResult<()> {
    let touched = user::Entity::update_many()
        .col_expr(user::Column::Id, Expr::col(user::Column::Id).into())
        .filter(user::Column::Id.eq(owner_id))
        .exec(txn)
        .await?;
    if touched.rows_affected == 0 {
        return Err(AppError::not_found("user"));
    }
    Ok(())
}

/// The user's own quota and each of their groups'.
pub async fn contributions(
    db: &impl ConnectionTrait,
    owner: &user::Model,
) -> AppResult<Vec<Contribution>> {
    let memberships = sea_orm::sea_query::Query::select()
        .column(group_member::Column::GroupId)
        .from(group_member::Entity)
        .and_where(group_member::Column::UserId.eq(owner.id.as_str()))
        .to_owned();
    let mut groups = group::Entity::find()
        .filter(group::Column::Id.in_subquery(memberships))
        .all(db)
        .await?;
    // Sorted here, not by the database, so that both backends agree (collations differ).
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    let mut all = vec![Contribution {
        source: "own".into(),
        limits: Limits {
            max_spaces: owner.max_spaces,
            compute_units: owner.compute_units,
            storage_units: owner.storage_units,
        },
    }];
    all.extend(groups.into_iter().map(|g| Contribution {
        source: format!("group:{}", g.name),
        limits: Limits {
            max_spaces: g.max_spaces,
            compute_units: g.compute_units,
            storage_units: g.storage_units,
        },
    }));
    Ok(all)
}

/// What the user's own live spaces consume (shared spaces count for their owner only).
pub async fn usage(db: &impl ConnectionTrait, owner_id: &str) -> AppResult<Usage> {
    // Only the columns that count: this runs on every page view and every quota check.
    let spaces: Vec<(String, i64, i64)> = space::Entity::find()
        .select_only()
        .columns([
            space::Column::State,
            space::Column::ComputeUnits,
            space::Column::StorageUnits,
        ])
        .filter(space::Column::OwnerId.eq(owner_id))
        .filter(space::is_live())
        .into_tuple()
        .all(db)
        .await?;
    let mut usage = Usage::default();
    for (state, compute_units, storage_units) in spaces {
        usage.spaces += 1;
        usage.storage_units += storage_units;
        let state: SpaceState = state.parse().map_err(AppError::internal)?;
        if state.uses_compute() {
            usage.compute_units += compute_units;
        }
    }
    Ok(usage)
}

/// Effective limits and usage of a user, read inside `db` (a locked transaction when checking).
pub async fn limits_and_usage(
    db: &impl ConnectionTrait,
    owner: &user::Model,
) -> AppResult<(Limits, Usage)> {
    let limits = effective(&contributions(db, owner).await?);
    Ok((limits, usage(db, &owner.id).await?))
}

impl Services {
    pub async fn quota_report(&self, owner: &user::Model) -> AppResult<QuotaReport> {
        let sources = contributions(&self.db, owner).await?;
        let limits = effective(&sources);
        let used = usage(&self.db, &owner.id).await?;
        Ok(QuotaReport {
            quota: QuotaValues {
                max_spaces: limits.max_spaces,
                compute_units: limits.compute_units,
                storage_units: limits.storage_units,
            },
            usage: UsageValues {
                spaces: used.spaces,
                compute_units: used.compute_units,
                storage_units: used.storage_units,
            },
            breakdown: sources
                .into_iter()
                .map(|c| QuotaSource {
                    source: c.source,
                    max_spaces: c.limits.max_spaces,
                    compute_units: c.limits.compute_units,
                    storage_units: c.limits.storage_units,
                })
                .collect(),
            over_quota: over_quota(&limits, &used),
        })
    }

    /// `GET /users/{id}/quota`: admins only.
    pub async fn user_quota(&self, caller: &Caller, user_id: &str) -> AppResult<QuotaReport> {
        caller.require_admin()?;
        let owner = self.find_user(user_id).await?;
        self.quota_report(&owner).await
    }
}
