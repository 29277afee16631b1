//! The admins' overview: what the machines hold, who runs what, idle spaces, users near their
//! quotas, the latest failures and what the host enforces, read from what the other rooms
//! already know (nodes, spaces, activity, quotas, the audit log).

use std::collections::HashMap;

use app::api::admin::ssr::AuditApi;
use app::api::overview::{
    ssr::OverviewApi, AdminOverview, HangarHealth, IdleSpace, NearQuota, OwnerRunning,
};
use app::api::page::PageQuery;
use app::api::quota::ssr::QuotaApi;
use app::api::spaces::AuditFilter;
use app::ids::UserId;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::domain::lifecycle::SpaceState;
use crate::entities::space;
use crate::error::ApiResult;
use crate::services::access::Caller;
use crate::services::groups::user_ref;
use crate::services::Services;

/// A running space unused this long is idle.
const IDLE_AFTER: chrono::TimeDelta = chrono::TimeDelta::hours(1);
/// A quota this full is near.
const NEAR_PERCENT: i64 = 80;

fn enforced(result: Result<String, String>) -> String {
    match result {
        Ok(how) => how,
        Err(why) => format!("not enforced: {why}"),
    }
}

#[async_trait::async_trait]
impl OverviewApi for Services {
    async fn overview(&self, caller: &Caller) -> ApiResult<AdminOverview> {
        caller.require_admin()?;
        let enforcement = self.runtime.enforcement().await;
        let (nodes, nodes_note) = match self.node_list(caller).await {
            Ok(nodes) => (nodes, None),
            Err(e) => (Vec::new(), Some(e.message)),
        };
        let running = space::Entity::find()
            .filter(space::Column::State.eq(SpaceState::Running))
            .all(&self.db)
            .await?;
        let mut owner_ids: Vec<UserId> = running.iter().map(|s| s.owner_id.clone()).collect();
        owner_ids.sort();
        owner_ids.dedup();
        let owners: HashMap<UserId, app::api::auth::UserRef> = self
            .users_by_ids(owner_ids)
            .await?
            .iter()
            .map(|u| (u.id.clone(), user_ref(u)))
            .collect();
        let mut by_owner: HashMap<UserId, (i64, i64)> = HashMap::new();
        for space in &running {
            let entry = by_owner.entry(space.owner_id.clone()).or_default();
            entry.0 += 1;
            entry.1 += space.compute_units;
        }
        let mut by_owner: Vec<OwnerRunning> = by_owner
            .into_iter()
            .filter_map(|(id, (spaces, compute_units))| {
                Some(OwnerRunning {
                    user: owners.get(&id)?.clone(),
                    spaces,
                    compute_units,
                })
            })
            .collect();
        by_owner.sort_by(|a, b| {
            (b.compute_units, b.spaces, &a.user.username).cmp(&(
                a.compute_units,
                a.spaces,
                &b.user.username,
            ))
        });
        by_owner.truncate(10);
        // By the services' clock, as the automatic stops (and the start times) go.
        let now = self.clock.now();
        let mut idle: Vec<IdleSpace> = running
            .iter()
            .filter_map(|space| {
                let since = space.last_activity_at.or(space.started_at)?;
                if now - since < IDLE_AFTER {
                    return None;
                }
                Some(IdleSpace {
                    id: space.id.clone(),
                    name: space.name.clone(),
                    owner: owners.get(&space.owner_id)?.clone(),
                    compute_units: space.compute_units,
                    idle_since: since.into(),
                })
            })
            .collect();
        idle.sort_by(|a, b| a.idle_since.as_str().cmp(b.idle_since.as_str()));
        idle.truncate(20);
        let near_quota = self.near_quota(caller).await?;
        let failures = self
            .audit_events(
                caller,
                AuditFilter {
                    outcome: Some("failed".into()),
                    limit: Some(10),
                    ..Default::default()
                },
            )
            .await?;
        Ok(AdminOverview {
            health: HangarHealth {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                storage: enforced(enforcement.storage),
                network: enforced(enforcement.network),
                privileges: enforced(enforcement.privileges),
            },
            nodes,
            nodes_note,
            running_spaces: running.len() as i64,
            running_compute_units: running.iter().map(|s| s.compute_units).sum(),
            by_owner,
            idle,
            near_quota,
            failures,
        })
    }
}

impl Services {
    /// Users at [`NEAR_PERCENT`] or more of a quota, the fullest first (at most 20).
    async fn near_quota(&self, caller: &Caller) -> ApiResult<Vec<NearQuota>> {
        let mut near: Vec<(i64, NearQuota, UserId)> = Vec::new();
        let mut page = PageQuery::first();
        loop {
            let quotas = self.user_quotas(caller, page.clone()).await?;
            let Some(last) = quotas.last().map(|q| q.user_id.clone()) else {
                break;
            };
            for user in &quotas {
                let (quota, usage) = (&user.report.quota, &user.report.usage);
                for (dimension, used, limit) in [
                    ("spaces", usage.spaces, quota.max_spaces),
                    ("compute_units", usage.compute_units, quota.compute_units),
                    ("storage_units", usage.storage_units, quota.storage_units),
                ] {
                    let Some(limit) = limit.filter(|l| *l > 0) else {
                        continue;
                    };
                    let percent = used * 100 / limit;
                    if percent >= NEAR_PERCENT {
                        near.push((
                            percent,
                            NearQuota {
                                user: app::api::auth::UserRef {
                                    id: user.user_id.clone(),
                                    username: String::new(),
                                    display_name: String::new(),
                                },
                                dimension: dimension.to_owned(),
                                used,
                                quota: limit,
                            },
                            user.user_id.clone(),
                        ));
                    }
                }
            }
            if quotas.len() < 500 {
                break;
            }
            page = PageQuery {
                limit: Some(500),
                after: Some(last.to_string()),
            };
        }
        near.sort_by_key(|n| std::cmp::Reverse(n.0));
        near.truncate(20);
        let ids: Vec<UserId> = near.iter().map(|(_, _, id)| id.clone()).collect();
        let users: HashMap<UserId, app::api::auth::UserRef> = self
            .users_by_ids(ids)
            .await?
            .iter()
            .map(|u| (u.id.clone(), user_ref(u)))
            .collect();
        Ok(near
            .into_iter()
            .filter_map(|(_, mut entry, id)| {
                entry.user = users.get(&id)?.clone();
                Some(entry)
            })
            .collect())
    }
}
