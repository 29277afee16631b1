//! What running spaces use over time: a loop samples every running space's CPU, memory,
//! processes and network from the engine (and the bytes in use on its sized volumes) every `--usage-interval-secs` (a minute by default),
//! rolls each finished hour up into one point, and drops minute points after a day and hour
//! points after 90 days; a deleted space's points go with it. The space page draws them.
//! The same pass records what each user's spaces hold of their quota (spaces, compute units
//! running, storage units), kept and rolled up alike; a group's is its members' together.

use std::collections::BTreeMap;
use std::time::Duration;

use app::api::usage::{ssr::UsageApi, QuotaPoint, QuotaUsage, SpaceUsage, UsagePoint, UsageRange};
use app::ids::{GroupId, SpaceId, UserId};
use chrono::{DateTime, DurationRound, Utc};
use futures_util::StreamExt;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use crate::domain::lifecycle::SpaceState;
use crate::domain::quota::effective;
use crate::entities::{group, group_member, quota_sample, space, usage_sample};
use crate::error::{ApiError, ApiResult};
use crate::services::access::Caller;
use crate::services::quota::{contributions, group_limits, quota_values, QuotaOwner};
use crate::services::Services;

pub const MINUTE: &str = "minute";
pub const HOUR: &str = "hour";
/// How long minute points are kept.
pub const MINUTES_KEPT: chrono::TimeDelta = chrono::TimeDelta::days(1);
/// How long hour points are kept.
pub const HOURS_KEPT: chrono::TimeDelta = chrono::TimeDelta::days(90);
/// Spaces whose stats are read at once.
const AT_ONCE: usize = 8;

/// One hour's point from its minute points: the CPU on average, the rest at their highest.
pub fn roll_up(
    space_id: &SpaceId,
    hour: DateTime<Utc>,
    minutes: &[usage_sample::Model],
) -> Option<usage_sample::Model> {
    if minutes.is_empty() {
        return None;
    }
    let count = minutes.len() as i64;
    Some(usage_sample::Model {
        space_id: space_id.clone(),
        resolution: HOUR.to_owned(),
        at: hour,
        cpu_millis: minutes.iter().map(|m| m.cpu_millis).sum::<i64>() / count,
        memory_bytes: minutes.iter().map(|m| m.memory_bytes).max().unwrap_or(0),
        memory_limit_bytes: minutes.iter().filter_map(|m| m.memory_limit_bytes).max(),
        pids: minutes.iter().map(|m| m.pids).max().unwrap_or(0),
        net_rx_bytes: minutes.iter().map(|m| m.net_rx_bytes).max().unwrap_or(0),
        net_tx_bytes: minutes.iter().map(|m| m.net_tx_bytes).max().unwrap_or(0),
        disk_bytes: minutes.iter().filter_map(|m| m.disk_bytes).max(),
    })
}

/// One hour's quota point from its minute points: each figure at its highest.
pub fn roll_up_quota(
    user_id: &UserId,
    hour: DateTime<Utc>,
    minutes: &[quota_sample::Model],
) -> Option<quota_sample::Model> {
    let highest = |f: fn(&quota_sample::Model) -> i64| minutes.iter().map(f).max();
    Some(quota_sample::Model {
        user_id: user_id.clone(),
        resolution: HOUR.to_owned(),
        at: hour,
        spaces: highest(|m| m.spaces)?,
        compute_units: highest(|m| m.compute_units)?,
        storage_units: highest(|m| m.storage_units)?,
    })
}

/// A range's resolution, how far back it goes and the seconds between its points.
fn span(range: UsageRange, interval_secs: u64) -> (&'static str, chrono::TimeDelta, i64) {
    let every = i64::try_from(interval_secs).unwrap_or(60);
    match range {
        UsageRange::Hour => (MINUTE, chrono::TimeDelta::hours(1), every),
        UsageRange::Day => (MINUTE, MINUTES_KEPT, every),
        UsageRange::Quarter => (HOUR, HOURS_KEPT, 3600),
    }
}

/// The size of a space's volumes together, in bytes: its storage units are their GiB.
fn volumes_size(space: &space::Model) -> i64 {
    space.storage_units.saturating_mul(1 << 30)
}

/// The last finished hour: its start and its end (this hour's start).
fn last_finished_hour(now: DateTime<Utc>) -> ApiResult<(DateTime<Utc>, DateTime<Utc>)> {
    let this_hour = now
        .duration_trunc(chrono::TimeDelta::hours(1))
        .map_err(ApiError::internal)?;
    Ok((this_hour - chrono::TimeDelta::hours(1), this_hour))
}

/// Points grouped by whose they are.
fn by_owner<K: Ord, T>(points: Vec<T>, key: impl Fn(&T) -> K) -> BTreeMap<K, Vec<T>> {
    let mut grouped: BTreeMap<K, Vec<T>> = BTreeMap::new();
    for point in points {
        grouped.entry(key(&point)).or_default().push(point);
    }
    grouped
}

fn to_active_quota(m: quota_sample::Model) -> quota_sample::ActiveModel {
    use sea_orm::Set;
    quota_sample::ActiveModel {
        user_id: Set(m.user_id),
        resolution: Set(m.resolution),
        at: Set(m.at),
        spaces: Set(m.spaces),
        compute_units: Set(m.compute_units),
        storage_units: Set(m.storage_units),
    }
}

fn to_active(m: usage_sample::Model) -> usage_sample::ActiveModel {
    use sea_orm::Set;
    usage_sample::ActiveModel {
        space_id: Set(m.space_id),
        resolution: Set(m.resolution),
        at: Set(m.at),
        cpu_millis: Set(m.cpu_millis),
        memory_bytes: Set(m.memory_bytes),
        memory_limit_bytes: Set(m.memory_limit_bytes),
        pids: Set(m.pids),
        net_rx_bytes: Set(m.net_rx_bytes),
        net_tx_bytes: Set(m.net_tx_bytes),
        disk_bytes: Set(m.disk_bytes),
    }
}

impl Services {
    async fn insert_samples(&self, rows: Vec<usage_sample::Model>) -> ApiResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let conflict = OnConflict::columns([
            usage_sample::Column::SpaceId,
            usage_sample::Column::Resolution,
            usage_sample::Column::At,
        ])
        .do_nothing()
        .to_owned();
        usage_sample::Entity::insert_many(rows.into_iter().map(to_active))
            .on_conflict(conflict)
            .do_nothing()
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// One pass: a point for every running space, the last finished hour rolled up, old
    /// points dropped. Returns how many spaces were sampled.
    pub async fn sample_usage(&self) -> ApiResult<usize> {
        let running = space::Entity::find()
            .filter(space::Column::State.eq(SpaceState::Running))
            .all(&self.db)
            .await?;
        let at = Utc::now()
            .duration_trunc(chrono::TimeDelta::seconds(1))
            .map_err(ApiError::internal)?;
        let ids: Vec<SpaceId> = running.iter().map(|s| s.id.clone()).collect();
        // One measure of every space's volumes (none where sizes are not enforced).
        let disks = self.runtime.storage_used(&ids).await;
        let disks = &disks;
        let rows: Vec<usage_sample::Model> = futures_util::stream::iter(running.clone())
            .map(|space| async move {
                let disk_bytes = disks
                    .as_ref()
                    .map(|used| used.get(&space.id).copied().unwrap_or(0))
                    .map(|bytes| i64::try_from(bytes).unwrap_or(i64::MAX));
                let stats = self.runtime.stats(&space.id).await;
                match stats {
                    Ok(Some(s)) => Some(usage_sample::Model {
                        space_id: space.id,
                        resolution: MINUTE.to_owned(),
                        at,
                        cpu_millis: s.cpu_millis,
                        memory_bytes: s.memory_bytes,
                        memory_limit_bytes: s.memory_limit_bytes,
                        pids: s.pids,
                        net_rx_bytes: s.net_rx_bytes,
                        net_tx_bytes: s.net_tx_bytes,
                        disk_bytes,
                    }),
                    Ok(None) => None,
                    Err(e) => {
                        tracing::debug!(space = %space.id, error = %e, "no stats for the space");
                        None
                    }
                }
            })
            .buffer_unordered(AT_ONCE)
            .filter_map(|row| async move { row })
            .collect()
            .await;
        let sampled = rows.len();
        self.tell_full_volumes(&running, &rows).await?;
        self.insert_samples(rows).await?;
        self.sample_quotas(at).await?;
        self.roll_up_hour(at).await?;
        self.roll_up_quota_hour(at).await?;
        self.prune_usage(at).await?;
        Ok(sampled)
    }

    /// Rolls the last finished hour's minute points up, once.
    async fn roll_up_hour(&self, now: DateTime<Utc>) -> ApiResult<()> {
        let (last_hour, this_hour) = last_finished_hour(now)?;
        let done = usage_sample::Entity::find()
            .filter(usage_sample::Column::Resolution.eq(HOUR))
            .filter(usage_sample::Column::At.eq(last_hour))
            .one(&self.db)
            .await?;
        if done.is_some() {
            return Ok(());
        }
        let minutes = usage_sample::Entity::find()
            .filter(usage_sample::Column::Resolution.eq(MINUTE))
            .filter(usage_sample::Column::At.gte(last_hour))
            .filter(usage_sample::Column::At.lt(this_hour))
            .all(&self.db)
            .await?;
        let hours = by_owner(minutes, |m| m.space_id.clone())
            .iter()
            .filter_map(|(id, points)| roll_up(id, last_hour, points))
            .collect();
        self.insert_samples(hours).await
    }

    /// Tells a space's owner when its volumes together reach 90 % of their size: once as the
    /// space crosses the line (its previous point was below it or there is none), not at
    /// every pass while it stays above.
    async fn tell_full_volumes(
        &self,
        running: &[space::Model],
        rows: &[usage_sample::Model],
    ) -> ApiResult<()> {
        use crate::services::notifications::Notice;
        use app::api::notifications::NotificationKind;

        let over =
            |used: i64, size: i64| size > 0 && used.saturating_mul(10) >= size.saturating_mul(9);
        for row in rows {
            let Some(used) = row.disk_bytes else { continue };
            let Some(space) = running.iter().find(|s| s.id == row.space_id) else {
                continue;
            };
            let size = volumes_size(space);
            if !over(used, size) {
                continue;
            }
            let before = usage_sample::Entity::find()
                .filter(usage_sample::Column::SpaceId.eq(row.space_id.clone()))
                .filter(usage_sample::Column::Resolution.eq(MINUTE))
                .filter(usage_sample::Column::At.lt(row.at))
                .order_by_desc(usage_sample::Column::At)
                .one(&self.db)
                .await?;
            if before.is_some_and(|b| b.disk_bytes.is_some_and(|u| over(u, size))) {
                continue;
            }
            let percent = used.saturating_mul(100) / size;
            self.notify(
                &space.owner_id,
                Notice::new(
                    NotificationKind::VolumeFull,
                    format!("{}: its volumes are {percent} % full", space.name),
                    format!(
                        "The volumes of the space {} hold {} MiB of their {} GiB. Writes fail \
                         once they are full: delete what is not needed, or move to a template \
                         with larger volumes.",
                        space.name,
                        used >> 20,
                        size >> 30
                    ),
                )
                .on_space(&space.id),
            )
            .await;
        }
        Ok(())
    }

    async fn insert_quota_samples(&self, rows: Vec<quota_sample::Model>) -> ApiResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let conflict = OnConflict::columns([
            quota_sample::Column::UserId,
            quota_sample::Column::Resolution,
            quota_sample::Column::At,
        ])
        .do_nothing()
        .to_owned();
        quota_sample::Entity::insert_many(rows.into_iter().map(to_active_quota))
            .on_conflict(conflict)
            .do_nothing()
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// A quota point for every user who has a live space.
    async fn sample_quotas(&self, at: DateTime<Utc>) -> ApiResult<()> {
        let used = crate::services::quota::usage_by_owner(&self.db).await?;
        let rows = used
            .into_iter()
            .map(|(user_id, used)| quota_sample::Model {
                user_id,
                resolution: MINUTE.to_owned(),
                at,
                spaces: used.spaces,
                compute_units: used.compute_units,
                storage_units: used.storage_units,
            })
            .collect();
        self.insert_quota_samples(rows).await
    }

    /// Rolls the last finished hour's quota points up, once.
    async fn roll_up_quota_hour(&self, now: DateTime<Utc>) -> ApiResult<()> {
        let (last_hour, this_hour) = last_finished_hour(now)?;
        let hour_points = quota_sample::Entity::find()
            .filter(quota_sample::Column::Resolution.eq(HOUR))
            .filter(quota_sample::Column::At.eq(last_hour));
        if hour_points.one(&self.db).await?.is_some() {
            return Ok(());
        }
        let minutes = quota_sample::Entity::find()
            .filter(quota_sample::Column::Resolution.eq(MINUTE))
            .filter(quota_sample::Column::At.gte(last_hour))
            .filter(quota_sample::Column::At.lt(this_hour))
            .all(&self.db)
            .await?;
        let hours = by_owner(minutes, |m| m.user_id.clone())
            .iter()
            .filter_map(|(id, points)| roll_up_quota(id, last_hour, points))
            .collect();
        self.insert_quota_samples(hours).await
    }

    /// The quota points of these users over the range, summed per time (one user: theirs).
    async fn quota_points(
        &self,
        users: Vec<UserId>,
        range: UsageRange,
    ) -> ApiResult<(Vec<QuotaPoint>, i64)> {
        let (resolution, since, step_secs) = span(range, self.config.usage_interval_secs);
        if users.is_empty() {
            return Ok((Vec::new(), step_secs));
        }
        let rows = quota_sample::Entity::find()
            .filter(quota_sample::Column::UserId.is_in(users))
            .filter(quota_sample::Column::Resolution.eq(resolution))
            .filter(quota_sample::Column::At.gte(Utc::now() - since))
            .order_by_asc(quota_sample::Column::At)
            .all(&self.db)
            .await?;
        let mut by_time: BTreeMap<DateTime<Utc>, QuotaPoint> = BTreeMap::new();
        for row in rows {
            let point = by_time.entry(row.at).or_insert(QuotaPoint {
                at: row.at.into(),
                spaces: 0,
                compute_units: 0,
                storage_units: 0,
            });
            point.spaces += row.spaces;
            point.compute_units += row.compute_units;
            point.storage_units += row.storage_units;
        }
        Ok((by_time.into_values().collect(), step_secs))
    }

    /// A user's quota use over the range, against their effective quota now.
    async fn quota_usage_of(
        &self,
        owner: &impl QuotaOwner,
        range: UsageRange,
    ) -> ApiResult<QuotaUsage> {
        let limits = effective(&contributions(&self.db, owner).await?);
        let users = vec![owner.owner_id().clone()];
        let (points, step_secs) = self.quota_points(users, range).await?;
        Ok(QuotaUsage {
            range,
            points,
            quota: quota_values(&limits),
            step_secs,
        })
    }

    /// Drops minute points older than a day and hour points older than 90 days.
    pub async fn prune_usage(&self, now: DateTime<Utc>) -> ApiResult<u64> {
        let mut dropped = 0;
        for (resolution, kept) in [(MINUTE, MINUTES_KEPT), (HOUR, HOURS_KEPT)] {
            dropped += usage_sample::Entity::delete_many()
                .filter(usage_sample::Column::Resolution.eq(resolution))
                .filter(usage_sample::Column::At.lt(now - kept))
                .exec(&self.db)
                .await?
                .rows_affected;
            dropped += quota_sample::Entity::delete_many()
                .filter(quota_sample::Column::Resolution.eq(resolution))
                .filter(quota_sample::Column::At.lt(now - kept))
                .exec(&self.db)
                .await?
                .rows_affected;
        }
        Ok(dropped)
    }

    /// A deleted space's points.
    pub async fn drop_usage(&self, space_id: &SpaceId) -> ApiResult<()> {
        usage_sample::Entity::delete_many()
            .filter(usage_sample::Column::SpaceId.eq(space_id.clone()))
            .exec(&self.db)
            .await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl UsageApi for Services {
    async fn space_usage(
        &self,
        caller: &Caller,
        id: &SpaceId,
        range: UsageRange,
    ) -> ApiResult<SpaceUsage> {
        let (space, _role) = self.visible_space(caller, id).await?;
        let (resolution, since, step_secs) = span(range, self.config.usage_interval_secs);
        let points = usage_sample::Entity::find()
            .filter(usage_sample::Column::SpaceId.eq(space.id.clone()))
            .filter(usage_sample::Column::Resolution.eq(resolution))
            .filter(usage_sample::Column::At.gte(Utc::now() - since))
            .order_by_asc(usage_sample::Column::At)
            .all(&self.db)
            .await?;
        let memory_limit_bytes = points.last().and_then(|p| p.memory_limit_bytes);
        let disk_limit_bytes = points
            .iter()
            .any(|p| p.disk_bytes.is_some())
            .then(|| volumes_size(&space));
        let cpu_limit =
            (space.compute_units > 0).then(|| space.compute_units as f64 * self.config.cpus_per_cu);
        Ok(SpaceUsage {
            range,
            cpu_limit,
            memory_limit_bytes,
            disk_limit_bytes,
            step_secs,
            points: points
                .into_iter()
                .map(|p| UsagePoint {
                    at: p.at.into(),
                    cpus: p.cpu_millis as f64 / 1000.0,
                    memory_bytes: p.memory_bytes,
                    pids: p.pids,
                    net_rx_bytes: p.net_rx_bytes,
                    net_tx_bytes: p.net_tx_bytes,
                    disk_bytes: p.disk_bytes,
                })
                .collect(),
        })
    }

    async fn my_quota_usage(&self, caller: &Caller, range: UsageRange) -> ApiResult<QuotaUsage> {
        self.quota_usage_of(&caller.user, range).await
    }

    async fn user_quota_usage(
        &self,
        caller: &Caller,
        id: &UserId,
        range: UsageRange,
    ) -> ApiResult<QuotaUsage> {
        caller.require_admin()?;
        let owner = self.find_user(id).await?;
        self.quota_usage_of(&owner, range).await
    }

    async fn group_quota_usage(
        &self,
        caller: &Caller,
        id: &GroupId,
        range: UsageRange,
    ) -> ApiResult<QuotaUsage> {
        caller.require_admin()?;
        let found = group::Entity::find_by_id(id.clone())
            .one(&self.db)
            .await?
            .ok_or_else(|| ApiError::not_found("group"))?;
        let members: Vec<UserId> = group_member::Entity::find()
            .filter(group_member::Column::GroupId.eq(id.clone()))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|m| m.user_id)
            .collect();
        let (points, step_secs) = self.quota_points(members, range).await?;
        Ok(QuotaUsage {
            range,
            points,
            quota: quota_values(&group_limits(&found)),
            step_secs,
        })
    }
}

/// Runs [`Services::sample_usage`] every `--usage-interval-secs` until the task is dropped.
pub fn spawn(services: Services) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut pass =
            tokio::time::interval(Duration::from_secs(services.config.usage_interval_secs));
        pass.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            pass.tick().await;
            if let Err(e) = services.sample_usage().await {
                tracing::warn!(error = %e, "usage sampling pass failed");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn minute(cpu: i64, memory: i64) -> usage_sample::Model {
        usage_sample::Model {
            space_id: SpaceId::from("s".to_owned()),
            resolution: MINUTE.into(),
            at: Utc::now(),
            cpu_millis: cpu,
            memory_bytes: memory,
            memory_limit_bytes: Some(1000),
            pids: 3,
            net_rx_bytes: 10,
            net_tx_bytes: 20,
            disk_bytes: Some(memory),
        }
    }

    #[test]
    fn an_hour_averages_the_cpu_and_keeps_the_highest_of_the_rest() {
        let id = SpaceId::from("s".to_owned());
        let hour = Utc::now();
        let point = roll_up(&id, hour, &[minute(1000, 10), minute(0, 30)]);
        assert_eq!(point.as_ref().map(|p| p.cpu_millis), Some(500));
        assert_eq!(point.as_ref().map(|p| p.memory_bytes), Some(30));
        assert_eq!(point.map(|p| p.resolution), Some(HOUR.to_owned()));
        assert!(roll_up(&id, hour, &[]).is_none());
    }
}
