//! Quotas against the database: contributions, usage, reports, and the per-user lock that
//! makes check-then-act atomic across requests and replicas.

use std::collections::HashMap;

use app::api::auth::UserDto;
use app::api::page::PageQuery;
use app::api::quota::{
    ssr::QuotaApi, QuotaReport, QuotaSource, QuotaValues, UsageValues, UserQuota,
};
use app::ids::{GroupId, SpaceId, UserId};
use app::lifecycle::SpaceState;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect,
};

use super::access::Caller;
use super::Services;
use crate::domain::quota::{effective, over_quota, Contribution, Limits, Usage};
use crate::entities::{group, group_member, space, tunnel, user};
use crate::error::{ApiError, ApiResult};

/// Takes the owner's quota lock for the rest of the transaction: a write to the user's row,
/// which PostgreSQL holds as a row lock until commit and which makes SQLite take its write
/// lock up front. It must be the transaction's first statement (on SQLite a read before it
/// could not be upgraded once another writer committed).
pub async fn lock_owner(txn: &impl ConnectionTrait, owner_id: &UserId) -> ApiResult<()> {
    let touched = user::Entity::update_many()
        .col_expr(user::Column::Id, Expr::col(user::Column::Id).into())
        .filter(user::Column::Id.eq(owner_id.clone()))
        .exec(txn)
        .await?;
    if touched.rows_affected == 0 {
        return Err(ApiError::not_found("user"));
    }
    Ok(())
}

/// Whose quota it is: their id and their own values (a stored user, or the caller).
pub trait QuotaOwner {
    fn owner_id(&self) -> &UserId;
    fn own_limits(&self) -> Limits;
}

impl QuotaOwner for user::Model {
    fn owner_id(&self) -> &UserId {
        &self.id
    }

    fn own_limits(&self) -> Limits {
        Limits {
            max_spaces: self.max_spaces,
            compute_units: self.compute_units,
            storage_units: self.storage_units,
            tunnels: self.max_tunnels,
        }
    }
}

impl QuotaOwner for UserDto {
    fn owner_id(&self) -> &UserId {
        &self.id
    }

    fn own_limits(&self) -> Limits {
        Limits {
            max_spaces: self.max_spaces,
            compute_units: self.compute_units,
            storage_units: self.storage_units,
            tunnels: self.max_tunnels,
        }
    }
}

/// The user's own quota and each of their groups'.
pub async fn contributions(
    db: &impl ConnectionTrait,
    owner: &impl QuotaOwner,
) -> ApiResult<Vec<Contribution>> {
    Ok(with_own(
        owner,
        group_contributions(db, owner.owner_id()).await?,
    ))
}

/// What the groups of `owner` add to their quota, by group name.
async fn group_contributions(
    db: &impl ConnectionTrait,
    owner: &UserId,
) -> ApiResult<Vec<Contribution>> {
    let memberships = sea_orm::sea_query::Query::select()
        .column(group_member::Column::GroupId)
        .from(group_member::Entity)
        .and_where(group_member::Column::UserId.eq(owner.clone()))
        .to_owned();
    let groups = group::Entity::find()
        .filter(group::Column::Id.in_subquery(memberships))
        .all(db)
        .await?;
    Ok(by_group_name(groups.iter()))
}

/// The owner's own values first, then their groups' by name (sorted here, not by the
/// database, so that both backends agree: collations differ).
fn contributions_of<'a>(
    owner: &impl QuotaOwner,
    groups: impl Iterator<Item = &'a group::Model>,
) -> Vec<Contribution> {
    with_own(owner, by_group_name(groups))
}

/// The groups' contributions, by group name.
fn by_group_name<'a>(groups: impl Iterator<Item = &'a group::Model>) -> Vec<Contribution> {
    let mut groups: Vec<&group::Model> = groups.collect();
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    groups
        .into_iter()
        .map(|g| Contribution {
            source: format!("group:{}", g.name),
            limits: group_limits(g),
        })
        .collect()
}

/// The owner's own values, then `groups`' contributions.
fn with_own(owner: &impl QuotaOwner, groups: Vec<Contribution>) -> Vec<Contribution> {
    let mut all = vec![Contribution {
        source: "own".into(),
        limits: owner.own_limits(),
    }];
    all.extend(groups);
    all
}

/// What a group adds to each member's quota.
pub fn group_limits(group: &group::Model) -> Limits {
    Limits {
        max_spaces: group.max_spaces,
        compute_units: group.compute_units,
        storage_units: group.storage_units,
        tunnels: group.max_tunnels,
    }
}

/// Limits as the API shows them.
pub fn quota_values(limits: &Limits) -> QuotaValues {
    QuotaValues {
        max_spaces: limits.max_spaces,
        compute_units: limits.compute_units,
        storage_units: limits.storage_units,
        max_tunnels: limits.tunnels,
    }
}

/// Adds one live space (state, compute units, storage units) to `usage`.
fn count_space(usage: &mut Usage, state: SpaceState, compute_units: i64, storage_units: i64) {
    usage.spaces += 1;
    usage.storage_units += storage_units;
    if state.uses_compute() {
        usage.compute_units += compute_units;
    }
}

/// What counts of every live space: id, owner, state, compute and storage units. Only these
/// columns are read: this runs on every page view and every quota check.
fn live_space_units() -> sea_orm::Select<space::Entity> {
    space::Entity::find()
        .select_only()
        .columns([
            space::Column::Id,
            space::Column::OwnerId,
            space::Column::State,
            space::Column::ComputeUnits,
            space::Column::StorageUnits,
        ])
        .filter(space::is_live())
}

type SpaceUnits = (SpaceId, UserId, SpaceState, i64, i64);

/// What the user's own live spaces consume (shared spaces count for their owner only).
pub async fn usage(db: &impl ConnectionTrait, owner_id: &UserId) -> ApiResult<Usage> {
    let spaces: Vec<SpaceUnits> = live_space_units()
        .filter(space::Column::OwnerId.eq(owner_id.clone()))
        .into_tuple()
        .all(db)
        .await?;
    let mut usage = usage_of(&spaces);
    usage.tunnels = tunnels_of(db, owner_id).await?;
    Ok(usage)
}

/// What every owner's live spaces consume, in one statement (owners without a live space
/// are left out; tunnels are not counted).
pub async fn usage_by_owner(
    db: &impl ConnectionTrait,
) -> ApiResult<std::collections::HashMap<UserId, Usage>> {
    let spaces: Vec<SpaceUnits> = live_space_units().into_tuple().all(db).await?;
    let mut by_owner: std::collections::HashMap<UserId, Usage> = Default::default();
    for (_, owner, state, compute_units, storage_units) in spaces {
        count_space(
            by_owner.entry(owner).or_default(),
            state,
            compute_units,
            storage_units,
        );
    }
    Ok(by_owner)
}

/// The user's tunnels (public links) open now.
async fn tunnels_of(db: &impl ConnectionTrait, owner_id: &UserId) -> ApiResult<i64> {
    let count = tunnel::Entity::find()
        .filter(tunnel::Column::OwnerId.eq(owner_id.clone()))
        .count(db)
        .await?;
    Ok(i64::try_from(count).unwrap_or(i64::MAX))
}

fn usage_of(spaces: &[SpaceUnits]) -> Usage {
    let mut usage = Usage::default();
    for (_, _, state, compute_units, storage_units) in spaces {
        count_space(&mut usage, *state, *compute_units, *storage_units);
    }
    usage
}

/// Effective limits and usage of a user, read inside `db` (a locked transaction when checking).
pub async fn limits_and_usage(
    db: &impl ConnectionTrait,
    owner: &impl QuotaOwner,
) -> ApiResult<(Limits, Usage)> {
    let limits = effective(&contributions(db, owner).await?);
    Ok((limits, usage(db, owner.owner_id()).await?))
}

/// The report of one user from their quota's sources and what they use.
fn report(sources: Vec<Contribution>, used: &Usage, storage_used: Option<u64>) -> QuotaReport {
    let limits = effective(&sources);
    QuotaReport {
        quota: quota_values(&limits),
        usage: UsageValues {
            spaces: used.spaces,
            compute_units: used.compute_units,
            storage_units: used.storage_units,
            tunnels: used.tunnels,
        },
        breakdown: sources
            .into_iter()
            .map(|c| QuotaSource {
                source: c.source,
                max_spaces: c.limits.max_spaces,
                compute_units: c.limits.compute_units,
                storage_units: c.limits.storage_units,
                max_tunnels: c.limits.tunnels,
            })
            .collect(),
        over_quota: over_quota(&limits, used),
        storage_used_bytes: storage_used.and_then(|b| i64::try_from(b).ok()),
    }
}

impl Services {
    pub async fn quota_report(&self, owner: &impl QuotaOwner) -> ApiResult<QuotaReport> {
        let sources = self.shown_contributions(owner).await?;
        let spaces: Vec<SpaceUnits> = live_space_units()
            .filter(space::Column::OwnerId.eq(owner.owner_id().clone()))
            .into_tuple()
            .all(&self.db)
            .await?;
        let ids: Vec<SpaceId> = spaces.iter().map(|s| s.0.clone()).collect();
        let storage_used = self
            .runtime
            .storage_used(&ids)
            .await
            .map(|used| used.values().sum());
        let mut usage = usage_of(&spaces);
        usage.tunnels = tunnels_of(&self.db, owner.owner_id()).await?;
        Ok(report(sources, &usage, storage_used))
    }

    /// [`contributions`] for showing: the groups' part is reused for a moment (see
    /// [`super::recent`]), the owner's own values are the ones given.
    async fn shown_contributions(&self, owner: &impl QuotaOwner) -> ApiResult<Vec<Contribution>> {
        // Taken before the database is read (see `Recent::or_read`).
        let generation = self.notifier.rights_generation();
        let read = async {
            group_contributions(&self.db, owner.owner_id())
                .await
                .map(Some)
        };
        let groups = self
            .remembered
            .quota_sources
            .or_read(owner.owner_id().clone(), generation, read)
            .await?
            .unwrap_or_default();
        Ok(with_own(owner, groups))
    }
}

#[async_trait::async_trait]
impl QuotaApi for Services {
    async fn my_quota(&self, caller: &Caller) -> ApiResult<QuotaReport> {
        self.quota_report(&caller.user).await
    }

    /// `GET /users/quotas`: a page of users' reports, by username, in a few statements however many users.
    async fn user_quotas(&self, caller: &Caller, page: PageQuery) -> ApiResult<Vec<UserQuota>> {
        caller.require_admin()?;
        let users = self.users_page(&page).await?;
        let ids: Vec<UserId> = users.iter().map(|u| u.id.clone()).collect();
        let memberships = group_member::Entity::find()
            .filter(group_member::Column::UserId.is_in(ids.clone()))
            .all(&self.db)
            .await?;
        let groups: HashMap<GroupId, group::Model> = group::Entity::find()
            .filter(group::Column::Id.is_in(memberships.iter().map(|m| m.group_id.clone())))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|g| (g.id.clone(), g))
            .collect();
        let mut groups_of: HashMap<UserId, Vec<&group::Model>> = HashMap::new();
        for membership in memberships {
            if let Some(group) = groups.get(&membership.group_id) {
                groups_of.entry(membership.user_id).or_default().push(group);
            }
        }
        let spaces: Vec<SpaceUnits> = live_space_units()
            .filter(space::Column::OwnerId.is_in(ids.clone()))
            .into_tuple()
            .all(&self.db)
            .await?;
        let tunnel_owners: Vec<UserId> = tunnel::Entity::find()
            .select_only()
            .column(tunnel::Column::OwnerId)
            .filter(tunnel::Column::OwnerId.is_in(ids))
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut tunnels_of: HashMap<UserId, i64> = HashMap::new();
        for owner_id in tunnel_owners {
            *tunnels_of.entry(owner_id).or_default() += 1;
        }
        let ids: Vec<SpaceId> = spaces.iter().map(|s| s.0.clone()).collect();
        let measured = self.runtime.storage_used(&ids).await;
        let mut spaces_of: HashMap<UserId, Vec<SpaceUnits>> = HashMap::new();
        for space in spaces {
            spaces_of.entry(space.1.clone()).or_default().push(space);
        }
        Ok(users
            .into_iter()
            .map(|user| {
                let groups = groups_of.get(&user.id).into_iter().flatten().copied();
                let sources = contributions_of(&user, groups);
                let owned = spaces_of.remove(&user.id).unwrap_or_default();
                let storage_used = measured
                    .as_ref()
                    .map(|used| owned.iter().filter_map(|s| used.get(&s.0)).sum::<u64>());
                let mut usage = usage_of(&owned);
                usage.tunnels = tunnels_of.get(&user.id).copied().unwrap_or(0);
                UserQuota {
                    report: report(sources, &usage, storage_used),
                    user_id: user.id,
                }
            })
            .collect())
    }

    /// `GET /users/{id}/quota`: admins only.
    async fn user_quota(&self, caller: &Caller, id: &UserId) -> ApiResult<QuotaReport> {
        caller.require_admin()?;
        let owner = self.find_user(id).await?;
        self.quota_report(&owner).await
    }
}
