//! Starting a space's service and waiting until its task runs (or why it cannot: no room,
//! no node that can run it, its node gone), and waiting until a stopped one has ended.

use std::time::{Duration, Instant};

use bollard::models::{Node, NodeState, Task, TaskState};
use bollard::Docker;

use app::ids::SpaceId;

use super::guard::lacks_no_new_privileges;
use super::{
    newest, node_name, node_unusable, running_tasks, swarm_nodes, task_error, task_labels,
    task_state, SwarmRuntime, NODE_PING_TIMEOUT, POLL, STOP_TIMEOUT,
};
use crate::runtime::container::compute_limits;
use crate::runtime::error::{classify, found, removed, reported, Missing};
use crate::runtime::labels::{container_name, volume_name};
use crate::runtime::{RuntimeError, SpaceSpec, LABEL_SPACE};

/// How long a start waits for Swarm to run the task (an image load on a node included).
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a start that Swarm cannot place yet waits while the room it needs is held by
/// tasks that are ending.
const CAPACITY_GRACE: Duration = Duration::from_secs(10);

/// What a node has left to reserve.
struct FreeSlot {
    node_id: String,
    node: String,
    nano_cpus: i64,
    memory: i64,
}

impl SwarmRuntime {
    /// Refuses a start on the pinned node when it cannot run the space, and when one of the
    /// space's volumes is missing there (never a new empty one in its place).
    async fn check_pinned_node(
        &self,
        manager: &Docker,
        space: &SpaceSpec,
        node_id: &str,
    ) -> Result<(), RuntimeError> {
        let node = self.node(manager, node_id).await?.ok_or_else(|| {
            RuntimeError::Failed(format!(
                "node {node_id}, which holds this space's volumes, has left the swarm: \
                 bring it back, or an admin moves the space to another node"
            ))
        })?;
        if let Some(why) = node_unusable(&node) {
            return Err(RuntimeError::Failed(format!(
                "node {} holds this space's volumes and {why}: it cannot start there until \
                 an admin makes the node active and ready again (docker node update \
                 --availability active), or moves the space to another node",
                node_name(&node)
            )));
        }
        let engine = self.engine_of(&node)?;
        for volume in &space.volumes {
            let name = volume_name(&space.id, &volume.name);
            let inspected =
                tokio::time::timeout(NODE_PING_TIMEOUT * 5, engine.inspect_volume(&name)).await;
            let Ok(inspected) = inspected else {
                return Err(RuntimeError::Failed(format!(
                    "node {} holds this space's volumes and its engine does not answer",
                    node_name(&node)
                )));
            };
            let doing = format!("inspecting volume {name} on node {}", node_name(&node));
            if found(&doing, inspected)?.is_none() {
                return Err(RuntimeError::Failed(format!(
                    "volume `{}` ({name}) is missing on node {}: Hangar does not start a space \
                     on a new empty volume in its place. Restore the volume, or delete the space",
                    volume.name,
                    node_name(&node)
                )));
            }
        }
        Ok(())
    }

    /// What each active, ready node has left to reserve, counting the tasks meant to run
    /// (a task that is ending still holds its reservation in the scheduler a moment longer).
    async fn free_slots(&self, manager: &Docker) -> Option<Vec<FreeSlot>> {
        let nodes = swarm_nodes(manager).await.ok()?;
        let tasks = running_tasks(manager).await.ok()?;
        Some(free_slots_of(&nodes, &tasks))
    }

    /// Whether the node is in the swarm, ready, and its engine answers now.
    async fn node_answers(&self, manager: &Docker, node_id: &str) -> bool {
        let Ok(Some(node)) = self.node(manager, node_id).await else {
            return false;
        };
        if node.status.as_ref().and_then(|s| s.state) != Some(NodeState::READY) {
            return false;
        }
        let Ok(engine) = self.engine_of(&node) else {
            // Nothing to ask: trust Swarm's word.
            return true;
        };
        matches!(
            tokio::time::timeout(NODE_PING_TIMEOUT, engine.ping()).await,
            Ok(Ok(_))
        )
    }

    /// Waits until no task of the space runs any more on a node that answers.
    pub(super) async fn wait_stopped(
        &self,
        manager: &Docker,
        space_id: &SpaceId,
    ) -> Result<(), RuntimeError> {
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            let tasks = self.tasks(manager, space_id).await?;
            let mut live = Vec::new();
            for task in tasks.iter().filter(|t| {
                matches!(
                    task_state(t),
                    Some(
                        TaskState::RUNNING
                            | TaskState::STARTING
                            | TaskState::PREPARING
                            | TaskState::ASSIGNED
                            | TaskState::ACCEPTED
                            | TaskState::READY
                    )
                )
            }) {
                live.push(task.node_id.clone().unwrap_or_default());
            }
            // A dead node's task cannot be waited for: Swarm ends it when the node is back.
            let mut waiting = false;
            for node_id in live {
                if self.node_answers(manager, &node_id).await {
                    waiting = true;
                    break;
                }
            }
            if !waiting {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(RuntimeError::Failed(format!(
                    "the space's task still runs after {} s: its node may be unreachable",
                    STOP_TIMEOUT.as_secs()
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The network rules of the node a space's task runs on (see [`super::guard`]).
    async fn guard_task_node(&self, manager: &Docker, node_id: &str) -> Result<(), RuntimeError> {
        let node = self
            .node(manager, node_id)
            .await?
            .ok_or_else(|| RuntimeError::Failed(format!("node {node_id} has left the swarm")))?;
        self.guard_node(manager, node_id).await.map_err(|e| {
            RuntimeError::Failed(format!(
                "node {} cannot be made to keep spaces from the nodes: {e}",
                node_name(&node)
            ))
        })
    }

    pub(super) async fn start_service(&self, space: &SpaceSpec) -> Result<String, RuntimeError> {
        let manager = self.manager().await?;
        let network_id = self.space_network(&manager, space).await?;
        let pin = self.volume_node(&manager, space).await?;
        if let Some(node) = &pin {
            self.check_pinned_node(&manager, space, node).await?;
        }
        let avoid = self
            .nodes_without_no_new_privileges(&manager, space, pin.as_deref())
            .await?;
        if pin.is_none() && self.settings.sized_volumes && !space.volumes.is_empty() {
            // The first start: its sized volumes are made on the node chosen for it, first.
            let placed = self.place(&manager, space, &avoid).await?;
            let made = self.make_disks(&placed.engine, &placed.node, space).await;
            let started = match made {
                Ok(()) => {
                    let pin = placed.node.id.as_deref();
                    self.run_service(&manager, space, &network_id, pin, &avoid)
                        .await
                }
                Err(e) => Err(e),
            };
            if started.is_err() {
                self.undo_disks(&placed.engine, &placed.node, space).await;
            }
            return started;
        }
        let started = self
            .run_service(&manager, space, &network_id, pin.as_deref(), &avoid)
            .await;
        match (started, &pin) {
            // Its node rebooted: the loop devices of its images are gone. Attached again, and
            // started once more.
            (
                Err(
                    e @ RuntimeError::NotFound {
                        what: Missing::Device,
                        ..
                    },
                ),
                Some(node_id),
            ) if self.settings.sized_volumes => {
                let node = self.node(&manager, node_id).await?.ok_or_else(|| {
                    RuntimeError::Failed(format!("node {node_id} has left the swarm"))
                })?;
                let engine = self.engine_of(&node)?;
                tracing::info!(space = %space.id, node = %node_name(&node), error = %e,
                    "attaching the space's volumes again on its node");
                self.attach_disks(&engine, &node, space).await?;
                self.run_service(&manager, space, &network_id, pin.as_deref(), &avoid)
                    .await
            }
            (started, _) => started,
        }
    }

    /// The nodes a space must not run on because they cannot give it `no_new_privs` (each
    /// candidate asked first, at most once a minute); a refusal saying why when no candidate
    /// can (its pinned node, or every node). Privileged templates' spaces run without it.
    async fn nodes_without_no_new_privileges(
        &self,
        manager: &Docker,
        space: &SpaceSpec,
        pin: Option<&str>,
    ) -> Result<Vec<String>, RuntimeError> {
        if space.privileged {
            return Ok(Vec::new());
        }
        let nodes = swarm_nodes(manager).await?;
        let candidates: Vec<&Node> = nodes
            .iter()
            .filter(|node| node_unusable(node).is_none())
            .filter(|node| pin.is_none_or(|pin| node.id.as_deref() == Some(pin)))
            .collect();
        futures_util::future::join_all(candidates.iter().map(|node| self.learn(node))).await;
        let mut avoid = Vec::new();
        let mut reasons = Vec::new();
        for node in &candidates {
            let id = node.id.clone().unwrap_or_default();
            if let Some(why) = self
                .facts_of(&id)
                .and_then(|facts| lacks_no_new_privileges(&facts))
            {
                avoid.push(id);
                reasons.push(why);
            }
        }
        if !candidates.is_empty() && avoid.len() == candidates.len() {
            return Err(RuntimeError::Failed(format!(
                "Hangar does not run a space without no-new-privileges: {}",
                reasons.join("; ")
            )));
        }
        Ok(avoid)
    }

    /// Picks the node a space's first start makes its volumes on: of the active, ready nodes
    /// whose engines Hangar reaches, the one with the most CPU left to reserve (then memory),
    /// counting what other starts placing now hold. What this start holds is held until the
    /// returned placement is dropped.
    async fn place(
        &self,
        manager: &Docker,
        space: &SpaceSpec,
        avoid: &[String],
    ) -> Result<Placed<'_>, RuntimeError> {
        let (cpus, memory) = self.reservation(space);
        let nodes = swarm_nodes(manager).await?;
        let tasks = running_tasks(manager).await?;
        let mut slots = free_slots_of(&nodes, &tasks);
        slots.retain(|slot| !avoid.contains(&slot.node_id));
        let counted: std::collections::HashSet<&str> = tasks
            .iter()
            .filter_map(|task| task_labels(task)?.get(LABEL_SPACE).map(String::as_str))
            .collect();
        let mut placing = self.placing.lock().unwrap_or_else(|p| p.into_inner());
        // What the starts placing now hold is not free, unless Swarm counts it already.
        for (space_id, (node_id, held_cpus, held_memory)) in placing.iter() {
            if counted.contains(space_id.as_str()) {
                continue;
            }
            if let Some(slot) = slots.iter_mut().find(|slot| slot.node_id == *node_id) {
                slot.nano_cpus -= held_cpus;
                slot.memory -= held_memory;
            }
        }
        let chosen = slots
            .iter()
            .filter(|slot| slot.nano_cpus >= cpus && slot.memory >= memory)
            .filter_map(|slot| {
                let node = nodes
                    .iter()
                    .find(|n| n.id.as_deref() == Some(&slot.node_id))?;
                let engine = self.engine_of(node).ok()?;
                Some((node, engine, slot.nano_cpus, slot.memory))
            })
            .max_by_key(|(_, _, free_cpus, free_memory)| (*free_cpus, *free_memory));
        let Some((node, engine, _, _)) = chosen else {
            drop(placing);
            return Err(no_room(cpus, memory, &slots, false));
        };
        placing.insert(
            space.id.clone(),
            (node.id.clone().unwrap_or_default(), cpus, memory),
        );
        Ok(Placed {
            runtime: self,
            node: node.clone(),
            engine,
            space_id: space.id.clone(),
        })
    }

    /// The CPU nanos and memory bytes a space reserves.
    fn reservation(&self, space: &SpaceSpec) -> (i64, i64) {
        let (cpus, memory) = compute_limits(
            space.compute_units,
            self.settings.cpus_per_cu,
            self.settings.memory_mib_per_cu,
        );
        (cpus.unwrap_or(0), memory.unwrap_or(0))
    }

    /// Creates the space's service (on `pin` when given) and waits until its task runs.
    async fn run_service(
        &self,
        manager: &Docker,
        space: &SpaceSpec,
        network_id: &str,
        pin: Option<&str>,
        avoid: &[String],
    ) -> Result<String, RuntimeError> {
        let manager = manager.clone();
        let pin = pin.map(str::to_owned);
        // The stopped service (0 replicas) carries the pin; a fresh one replaces it.
        let name = container_name(&space.id);
        removed(
            "removing the space's old service",
            manager.delete_service(&name).await,
        )?;
        let mut spec = self.service_spec(space, network_id, pin.as_deref(), 1);
        if let Some(task) = spec.task_template.as_mut() {
            let placement = task.placement.get_or_insert_with(Default::default);
            let constraints = placement.constraints.get_or_insert_with(Vec::new);
            constraints.extend(avoid.iter().map(|node| format!("node.id!={node}")));
        }
        manager
            .create_service(spec, None)
            .await
            .map_err(|e| classify("creating the space's service", e))?;
        let deadline = Instant::now() + START_TIMEOUT;
        let mut short_since = None;
        loop {
            let tasks = self.tasks(&manager, &space.id).await?;
            if let Some(task) = newest(tasks) {
                let error = task_error(&task);
                match task_state(&task) {
                    Some(TaskState::RUNNING) => {
                        let container = task
                            .status
                            .as_ref()
                            .and_then(|s| s.container_status.as_ref())
                            .and_then(|c| c.container_id.clone())
                            .unwrap_or_default();
                        let node_id = task.node_id.clone().unwrap_or_default();
                        if let Err(e) = self.guard_task_node(&manager, &node_id).await {
                            // Never a space that can reach the nodes' engines.
                            let _ = self.scale(&manager, &space.id, 0, None).await;
                            return Err(e);
                        }
                        // A node first heard of now (it could not be asked before the start).
                        let lacking = self
                            .facts_of(&node_id)
                            .and_then(|facts| lacks_no_new_privileges(&facts));
                        if let Some(why) = lacking.filter(|_| !space.privileged) {
                            let _ = self.scale(&manager, &space.id, 0, None).await;
                            return Err(RuntimeError::Failed(format!(
                                "Hangar does not run a space without no-new-privileges: {why}"
                            )));
                        }
                        if pin.is_none() && !space.volumes.is_empty() {
                            // Its volumes are now on this node: later starts go there.
                            self.scale(&manager, &space.id, 1, Some(&node_id)).await?;
                        }
                        return Ok(container);
                    }
                    Some(TaskState::PENDING) if error.contains("insufficient resources") => {
                        let (cpus, memory) = self.reservation(space);
                        let slots = self.free_slots(&manager).await.unwrap_or_default();
                        let fits = slots.iter().any(|slot| {
                            pin.as_ref().is_none_or(|pin| *pin == slot.node_id)
                                && slot.nano_cpus >= cpus
                                && slot.memory >= memory
                        });
                        // Room held only by tasks that are ending: Swarm places it once
                        // they are gone.
                        let short_of_room = *short_since.get_or_insert_with(Instant::now);
                        if fits && short_of_room.elapsed() < CAPACITY_GRACE {
                            tokio::time::sleep(POLL).await;
                            continue;
                        }
                        self.scale(&manager, &space.id, 0, None).await?;
                        return Err(no_room(cpus, memory, &slots, pin.is_some()));
                    }
                    Some(TaskState::PENDING) if error.contains("no suitable node") => {
                        self.scale(&manager, &space.id, 0, None).await?;
                        return Err(reported(
                            format!("no node of the cluster can run this space: {error}"),
                            &error,
                        ));
                    }
                    Some(
                        state @ (TaskState::FAILED
                        | TaskState::REJECTED
                        | TaskState::SHUTDOWN
                        | TaskState::COMPLETE
                        | TaskState::ORPHANED
                        | TaskState::REMOVE),
                    ) => {
                        self.scale(&manager, &space.id, 0, None).await?;
                        // A task that failed for want of its overlay (removed under the start)
                        // is a missing network: the start is tried again.
                        return Err(reported(
                            format!("the space's task is {state}: {error}"),
                            &error,
                        ));
                    }
                    _ => {}
                }
            }
            if Instant::now() >= deadline {
                self.scale(&manager, &space.id, 0, None).await?;
                return Err(RuntimeError::Failed(format!(
                    "Swarm did not run the space within {} s: check the nodes \
                     (docker service ps {name})",
                    START_TIMEOUT.as_secs()
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

/// What each active, ready node of `nodes` has left to reserve, `tasks` (those meant to run)
/// counted.
fn free_slots_of(nodes: &[Node], tasks: &[Task]) -> Vec<FreeSlot> {
    nodes
        .iter()
        .filter(|node| node_unusable(node).is_none())
        .map(|node| {
            let total = node.description.as_ref().and_then(|d| d.resources.as_ref());
            let (mut nano_cpus, mut memory) = (
                total.and_then(|r| r.nano_cpus).unwrap_or(0),
                total.and_then(|r| r.memory_bytes).unwrap_or(0),
            );
            for task in tasks.iter().filter(|t| t.node_id == node.id) {
                let reserved = task
                    .spec
                    .as_ref()
                    .and_then(|s| s.resources.as_ref())
                    .and_then(|r| r.reservations.as_ref());
                nano_cpus -= reserved.and_then(|r| r.nano_cpus).unwrap_or(0);
                memory -= reserved.and_then(|r| r.memory_bytes).unwrap_or(0);
            }
            FreeSlot {
                node_id: node.id.clone().unwrap_or_default(),
                node: node_name(node),
                nano_cpus,
                memory,
            }
        })
        .collect()
}

/// What a first start holds on the node chosen for it, until dropped.
struct Placed<'a> {
    runtime: &'a SwarmRuntime,
    node: Node,
    engine: Docker,
    space_id: SpaceId,
}

impl Drop for Placed<'_> {
    fn drop(&mut self) {
        let mut placing = self
            .runtime
            .placing
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        placing.remove(&self.space_id);
    }
}

/// Why a space cannot be placed: the cluster (or its pinned node) has no room for its
/// reservation. Not the user's quota, and said so.
fn no_room(cpus: i64, memory: i64, slots: &[FreeSlot], pinned: bool) -> RuntimeError {
    let largest = match slots.iter().max_by_key(|slot| slot.nano_cpus) {
        Some(slot) => format!(
            "the largest free slot is {:.2} CPUs and {} MiB on node {}",
            slot.nano_cpus.max(0) as f64 / 1e9,
            slot.memory.max(0) / (1024 * 1024),
            slot.node
        ),
        None => "no node is active and ready".to_owned(),
    };
    let where_ = if pinned {
        "the node that holds this space's volumes has"
    } else {
        "no node of the cluster has"
    };
    RuntimeError::NoRoom(format!(
        "cluster capacity: {where_} room for this space ({} CPUs, {} MiB reserved; {largest}). \
         This is not your quota: stop another space there or ask an admin to add a node, then \
         start it again",
        cpus as f64 / 1e9,
        memory / (1024 * 1024)
    ))
}
