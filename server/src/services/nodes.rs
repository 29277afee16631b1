//! The machines spaces run on, for admins: each node's capacity in compute units, what its
//! running spaces reserve, which spaces run and are kept there; and moving a stopped space
//! to another node (Swarm), its volumes copied over.

use std::collections::{HashMap, HashSet};

use app::api::admin::{MoveReport, MoveSpaceRequest, NodeDto, NodeSpaceDto};
use app::ids::{SpaceId, UserId};
use app::lifecycle::SpaceState;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;

use super::access::Caller;
use super::audit::{record, Outcome};
use super::spaces::spec_of;
use super::Services;
use crate::entities::{space, user};
use crate::error::{ApiError, ApiResult};
use crate::runtime::{NodeReport, RuntimeError};

fn unavailable(e: RuntimeError) -> ApiError {
    match e {
        RuntimeError::Unavailable(why) => {
            ApiError::unavailable(format!("the container engine does not answer: {why}"))
        }
        refused => ApiError::unavailable(refused.to_string()),
    }
}

/// Compute units that fit in `nano_cpus` and `memory_bytes`, whichever runs out first (a
/// setting of 0 per unit does not limit).
pub fn capacity_cu(
    nano_cpus: i64,
    memory_bytes: i64,
    cpus_per_cu: f64,
    memory_mib_per_cu: u64,
) -> i64 {
    let by_cpu = (cpus_per_cu > 0.0).then(|| (nano_cpus as f64 / 1e9 / cpus_per_cu).floor() as i64);
    let by_memory = (memory_mib_per_cu > 0).then(|| {
        memory_bytes / (1024 * 1024) / i64::try_from(memory_mib_per_cu).unwrap_or(i64::MAX)
    });
    match (by_cpu, by_memory) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => 0,
    }
    .max(0)
}

impl Services {
    pub(super) async fn node_list(&self, caller: &Caller) -> ApiResult<Vec<NodeDto>> {
        caller.require_admin()?;
        let reports = self.runtime.nodes().await.map_err(unavailable)?;
        let ids: HashSet<SpaceId> = reports
            .iter()
            .flat_map(|n| n.running.iter().chain(n.holds.iter()).cloned())
            .collect();
        let spaces: HashMap<SpaceId, space::Model> = space::Entity::find()
            .filter(space::Column::Id.is_in(ids))
            .filter(space::is_live())
            .all(&self.db)
            .await?
            .into_iter()
            .map(|s| (s.id.clone(), s))
            .collect();
        let owner_ids: HashSet<UserId> = spaces.values().map(|s| s.owner_id.clone()).collect();
        let owners: HashMap<UserId, String> = user::Entity::find()
            .filter(user::Column::Id.is_in(owner_ids))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|u| (u.id, u.username))
            .collect();
        Ok(reports
            .into_iter()
            .map(|node| self.node_dto(node, &spaces, &owners))
            .collect())
    }

    fn node_dto(
        &self,
        node: NodeReport,
        spaces: &HashMap<SpaceId, space::Model>,
        owners: &HashMap<UserId, String>,
    ) -> NodeDto {
        let mut listed: Vec<NodeSpaceDto> = node
            .running
            .iter()
            .chain(node.holds.iter())
            .collect::<HashSet<_>>()
            .into_iter()
            .filter_map(|id| spaces.get(id))
            .map(|s| NodeSpaceDto {
                id: s.id.clone(),
                name: s.name.clone(),
                owner: owners.get(&s.owner_id).cloned().unwrap_or_default(),
                state: s.state,
                compute_units: s.compute_units,
                running_here: node.running.contains(&s.id),
                kept_here: node.holds.contains(&s.id),
            })
            .collect();
        listed.sort_by(|a, b| (&a.owner, &a.name).cmp(&(&b.owner, &b.name)));
        let capacity = capacity_cu(
            node.nano_cpus,
            node.memory_bytes,
            self.config.cpus_per_cu,
            self.config.memory_mib_per_cu,
        );
        let reserved: i64 = listed
            .iter()
            .filter(|s| s.running_here)
            .map(|s| s.compute_units)
            .sum();
        NodeDto {
            id: node.id,
            name: node.name,
            role: node.role,
            availability: node.availability,
            problem: node.problem,
            cpus: node.nano_cpus as f64 / 1e9,
            memory_mib: node.memory_bytes / (1024 * 1024),
            capacity_cu: capacity,
            reserved_cu: reserved,
            free_cu: (capacity - reserved).max(0),
            spaces: listed,
        }
    }

    pub(super) async fn move_space_to(
        &self,
        caller: &Caller,
        id: &SpaceId,
        request: MoveSpaceRequest,
    ) -> ApiResult<MoveReport> {
        caller.require_admin()?;
        // Held through the copy: a start asked for meanwhile waits, then runs on the new node.
        let lock = self.space_locks.of(id);
        let _guard = lock.lock().await;
        let space = space::Entity::find_by_id(id.clone())
            .one(&self.db)
            .await?
            .filter(|s| s.state != SpaceState::Deleted)
            .ok_or_else(|| ApiError::not_found("space"))?;
        if space.state != SpaceState::Stopped {
            return Err(ApiError::wrong_state(
                space.state,
                format!(
                    "the space is {}: only a stopped space moves (stop it first)",
                    space.state
                ),
            ));
        }
        let wanted = request.node.trim();
        if wanted.is_empty() || wanted.len() > 255 {
            return Err(ApiError::invalid(
                "node",
                "name the node to move the space to (its id or hostname)",
            ));
        }
        let nodes = self.runtime.nodes().await.map_err(unavailable)?;
        let Some(node) = nodes.iter().find(|n| n.id == wanted || n.name == wanted) else {
            let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
            return Err(ApiError::invalid(
                "node",
                format!("no node `{wanted}`: one of {}", names.join(", ")),
            ));
        };
        if let Some(problem) = &node.problem {
            return Err(ApiError::conflict(format!(
                "node {} cannot take a space now: {problem}",
                node.name
            )));
        }
        let owner = self.find_user(&space.owner_id).await?;
        let spec = spec_of(&space, &owner.username)?;
        let target = format!("{}/{}", owner.username, space.name);
        let started = std::time::Instant::now();
        match self.move_volumes(&spec, &node.id).await {
            Ok(moved) => {
                record(&self.db, Some(caller), "space.move", &target, Outcome::Success,
                    json!({"from": moved.from, "to": moved.to, "bytes": moved.bytes, "ms": started.elapsed().as_millis() as u64})).await;
                Ok(MoveReport {
                    space_id: space.id,
                    from: moved.from,
                    to: moved.to,
                    bytes: moved.bytes,
                })
            }
            Err(e) => {
                record(
                    &self.db,
                    Some(caller),
                    "space.move",
                    &target,
                    Outcome::Failed,
                    json!({"to": node.name, "reason": e.to_string()}),
                )
                .await;
                Err(match e {
                    RuntimeError::Unavailable(why) => ApiError::unavailable(why),
                    refused => ApiError::conflict(refused.to_string()),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::capacity_cu;

    #[test]
    fn capacity_is_what_runs_out_first() {
        let gib = 1024 * 1024 * 1024;
        // 2 CPUs, 8 GiB; 1 CPU and 2 GiB a unit: the CPUs run out first.
        assert_eq!(capacity_cu(2_000_000_000, 8 * gib, 1.0, 2048), 2);
        // Memory runs out first.
        assert_eq!(capacity_cu(8_000_000_000, 3 * gib, 1.0, 2048), 1);
        // Half a CPU a unit.
        assert_eq!(capacity_cu(2_000_000_000, 8 * gib, 0.5, 0), 4);
        assert_eq!(capacity_cu(0, 0, 1.0, 2048), 0);
    }
}
