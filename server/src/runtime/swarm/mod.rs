//! [`Runtime`] on a Docker Swarm (`--runtime swarm`): each space is a one-replica service
//! that Swarm places by its CPU and memory reservations, on an attachable overlay network of
//! its own (spaces never reach each other).
//! Volumes are node-local, so a space's later starts are pinned to the node its volumes were
//! made on; exec and archive calls go to the engine of the node its task runs on (the
//! node's `io.hangar.engine` label), through the same code as the Docker runtime. Sized
//! volumes are disk images on that node ([`disks`]): a space's first start picks its node
//! (where its compute units fit) and makes them there before Swarm runs it.

mod disks;
mod guard;
mod helper;
mod managed;
mod network;
mod nodes;
mod spec;
mod start;

pub use disks::NODE_VOLUMES;
pub use guard::{privileges_status, NodeFacts, GUARD_IMAGE};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use app::ids::SpaceId;
use bollard::models::{Node, NodeSpecAvailabilityEnum, NodeState, Task, TaskState};
use bollard::query_parameters::ListTasksOptionsBuilder;
use bollard::Docker;

use futures_util::StreamExt;

use super::client::DockerClient;
use super::docker::oom::oom_events;
use super::docker::stats::container_stats;
use super::error::{again_if_network_gone, classify, found, removed};
use super::exec::exec_in;
use super::files;
use super::labels::container_name;
use super::{
    ByteStream, ContainerStatus, Enforcement, Exec, ExecRequest, ManagedObject, Moved, NodeReport,
    OomStream, PathInfo, Reach, Runtime, RuntimeError, SpaceSpec, SpaceStats, UploadStream,
    VolumeUsage,
};

/// How long the merged stream of the nodes' OOM events runs before it is opened again (on
/// the nodes of then).
const OOM_REOPEN: Duration = Duration::from_secs(300);

/// The node label that says where a node's engine answers (`tcp://ip:2375`), for exec and
/// archive calls to the spaces it runs.
pub const LABEL_ENGINE: &str = "io.hangar.engine";
/// The service label naming the node a space's volumes are on.
pub const LABEL_NODE: &str = "io.hangar.node";
/// How long a stop or removal waits for the task's container to be gone.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the task is looked at while waiting.
const POLL: Duration = Duration::from_millis(100);
/// A node engine that does not answer within this is taken for a dead node.
const NODE_PING_TIMEOUT: Duration = Duration::from_secs(2);

/// How a [`SwarmRuntime`] runs spaces.
pub struct SwarmSettings {
    pub installation: String,
    pub cpus_per_cu: f64,
    pub memory_mib_per_cu: u64,
    pub pids_per_cu: i64,
    /// Volumes are disk images of their size on their node ([`disks`]); else plain volumes
    /// whose size is bookkeeping only (`--volume-sizes off`).
    pub sized_volumes: bool,
}

pub struct SwarmRuntime {
    /// The manager's engine (`--docker-host`).
    manager: Arc<DockerClient>,
    settings: SwarmSettings,
    /// Clients of the nodes' engines, by endpoint.
    engines: std::sync::Mutex<HashMap<String, Docker>>,
    /// When each node's network rules were last installed.
    guarded: std::sync::Mutex<HashMap<String, Instant>>,
    /// One install of a node's rules at a time: starts racing onto a node wait for the one
    /// installing them instead of running helpers side by side.
    guarding: std::sync::Mutex<HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>,
    /// What each node's helper last said of its node, and when, by node id.
    facts: std::sync::Mutex<HashMap<String, (guard::NodeFacts, Instant)>>,
    /// What each start placing a space right now holds (its node, CPU nanos, memory bytes),
    /// by space, counted until Swarm counts the space's task: racing first starts spread
    /// instead of piling up, and no reservation counts twice.
    placing: std::sync::Mutex<HashMap<SpaceId, (String, i64, i64)>>,
    /// What the nodes' sized volumes held when last measured; one measure at a time.
    measured: tokio::sync::Mutex<disks::Measured>,
}

/// Where a running space's container is.
struct Located {
    engine: Docker,
    container: String,
}

fn service_filter(space_id: &SpaceId) -> HashMap<String, Vec<String>> {
    HashMap::from([("service".to_owned(), vec![container_name(space_id)])])
}

fn node_name(node: &Node) -> String {
    node.description
        .as_ref()
        .and_then(|d| d.hostname.clone())
        .or_else(|| node.id.clone())
        .unwrap_or_default()
}

/// Why a node cannot run a space now, if it cannot.
fn node_unusable(node: &Node) -> Option<String> {
    let availability = node.spec.as_ref().and_then(|s| s.availability);
    let state = node.status.as_ref().and_then(|s| s.state);
    match (availability, state) {
        (_, Some(state)) if state != NodeState::READY => Some(format!("is {state}")),
        (Some(NodeSpecAvailabilityEnum::DRAIN), _) => Some("is drained".to_owned()),
        (Some(NodeSpecAvailabilityEnum::PAUSE), _) => Some("is paused".to_owned()),
        _ => None,
    }
}

fn task_state(task: &Task) -> Option<TaskState> {
    task.status.as_ref().and_then(|s| s.state)
}

/// The labels of a task's container (Hangar's space and installation labels among them).
fn task_labels(task: &Task) -> Option<&HashMap<String, String>> {
    task.spec.as_ref()?.container_spec.as_ref()?.labels.as_ref()
}

fn task_error(task: &Task) -> String {
    let status = task.status.as_ref();
    status
        .and_then(|s| s.err.clone())
        .filter(|e| !e.is_empty())
        .or_else(|| status.and_then(|s| s.message.clone()))
        .unwrap_or_default()
}

/// Every node of the swarm.
async fn swarm_nodes(manager: &Docker) -> Result<Vec<Node>, RuntimeError> {
    let listed = manager
        .list_nodes(None::<bollard::query_parameters::ListNodesOptions>)
        .await;
    listed.map_err(|e| classify("listing the swarm's nodes", e))
}

/// The tasks meant to run, on every node.
async fn running_tasks(manager: &Docker) -> Result<Vec<Task>, RuntimeError> {
    let filter = HashMap::from([("desired-state".to_owned(), vec!["running".to_owned()])]);
    let options = ListTasksOptionsBuilder::new().filters(&filter).build();
    let listed = manager.list_tasks(Some(options)).await;
    listed.map_err(|e| classify("listing the swarm's tasks", e))
}

/// The newest of the tasks (Swarm keeps a history of ended ones).
fn newest(tasks: Vec<Task>) -> Option<Task> {
    tasks
        .into_iter()
        .max_by_key(|t| t.version.as_ref().and_then(|v| v.index).unwrap_or(0))
}

impl SwarmRuntime {
    pub fn new(manager: Arc<DockerClient>, settings: SwarmSettings) -> Self {
        Self {
            manager,
            settings,
            engines: std::sync::Mutex::default(),
            guarded: std::sync::Mutex::default(),
            guarding: std::sync::Mutex::default(),
            facts: std::sync::Mutex::default(),
            placing: std::sync::Mutex::default(),
            measured: tokio::sync::Mutex::default(),
        }
    }

    /// The nodes whose engines are up (drained or paused ones included: they still hold
    /// volumes).
    async fn ready_nodes(&self) -> Result<Vec<Node>, RuntimeError> {
        let manager = self.manager().await?;
        Ok(swarm_nodes(&manager)
            .await?
            .into_iter()
            .filter(|node| node.status.as_ref().and_then(|s| s.state) == Some(NodeState::READY))
            .collect())
    }

    async fn manager(&self) -> Result<Docker, RuntimeError> {
        self.manager.get().await.map_err(RuntimeError::Unavailable)
    }

    /// The client of a node's engine, from its `io.hangar.engine` label.
    fn engine_of(&self, node: &Node) -> Result<Docker, RuntimeError> {
        let endpoint = node
            .spec
            .as_ref()
            .and_then(|s| s.labels.as_ref())
            .and_then(|l| l.get(LABEL_ENGINE))
            .ok_or_else(|| {
                RuntimeError::Failed(format!(
                    "node {} has no {LABEL_ENGINE} label saying where its engine answers: \
                     add it (docker node update --label-add {LABEL_ENGINE}=tcp://ADDRESS:2375 {})",
                    node_name(node),
                    node.id.clone().unwrap_or_default()
                ))
            })?;
        let mut engines = self.engines.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(client) = engines.get(endpoint) {
            return Ok(client.clone());
        }
        let client = Docker::connect_with_host(endpoint).map_err(|e| {
            RuntimeError::Failed(format!(
                "node {}: cannot use engine endpoint {endpoint}: {e}",
                node_name(node)
            ))
        })?;
        engines.insert(endpoint.clone(), client.clone());
        Ok(client)
    }

    async fn node(&self, manager: &Docker, node_id: &str) -> Result<Option<Node>, RuntimeError> {
        found(
            "inspecting a swarm node",
            manager.inspect_node(node_id).await,
        )
    }

    async fn tasks(&self, manager: &Docker, space_id: &SpaceId) -> Result<Vec<Task>, RuntimeError> {
        manager
            .list_tasks(Some(
                ListTasksOptionsBuilder::new()
                    .filters(&service_filter(space_id))
                    .build(),
            ))
            .await
            .map_err(|e| classify("listing the space's tasks", e))
    }

    /// The space's running task's container and the engine of its node.
    async fn locate(&self, space_id: &SpaceId) -> Result<Located, RuntimeError> {
        let manager = self.manager().await?;
        let tasks = self.tasks(&manager, space_id).await?;
        let running = newest(
            tasks
                .into_iter()
                .filter(|t| task_state(t) == Some(TaskState::RUNNING))
                .collect(),
        );
        let not_running =
            || RuntimeError::Failed("the space is not running on any node: start it".into());
        let task = running.ok_or_else(not_running)?;
        let container = task
            .status
            .as_ref()
            .and_then(|s| s.container_status.as_ref())
            .and_then(|c| c.container_id.clone())
            .ok_or_else(not_running)?;
        let node_id = task.node_id.unwrap_or_default();
        let node = self
            .node(&manager, &node_id)
            .await?
            .ok_or_else(|| RuntimeError::Failed(format!("node {node_id} has left the swarm")))?;
        Ok(Located {
            engine: self.engine_of(&node)?,
            container,
        })
    }
}

#[async_trait::async_trait]
impl Runtime for SwarmRuntime {
    /// Swarm makes a space's volumes on the node its first task lands on (labelled through
    /// the mounts' volume options): nothing to make before then.
    async fn create_volumes(&self, _space: &SpaceSpec) -> Result<(), RuntimeError> {
        Ok(())
    }

    async fn start(&self, space: &SpaceSpec) -> Result<String, RuntimeError> {
        // The space's overlay was removed under us: made again.
        again_if_network_gone(|| self.start_service(space), async {}).await
    }

    /// Scales the service to 0: its pin stays for the next start.
    async fn stop(&self, space: &SpaceSpec) -> Result<(), RuntimeError> {
        let manager = self.manager().await?;
        if self.scale(&manager, &space.id, 0, None).await? {
            self.wait_stopped(&manager, &space.id).await?;
        }
        Ok(())
    }

    async fn remove(&self, space: &SpaceSpec) -> Result<(), RuntimeError> {
        let manager = self.manager().await?;
        let node = self.volume_node(&manager, space).await?;
        if self.scale(&manager, &space.id, 0, None).await? {
            self.wait_stopped(&manager, &space.id).await?;
            let deleted = manager.delete_service(&container_name(&space.id)).await;
            removed("removing the space's service", deleted)?;
        }
        self.remove_space_networks(&manager, &space.id).await?;
        let Some(node_id) = node else {
            return Ok(());
        };
        let node = self.node(&manager, &node_id).await?.ok_or_else(|| {
            RuntimeError::Failed(format!(
                "node {node_id}, which holds this space's volumes, has left the swarm"
            ))
        })?;
        let engine = self.engine_of(&node)?;
        self.remove_space_data(&engine, &node, space).await
    }

    async fn inspect(&self, space_id: &SpaceId) -> Result<Option<ContainerStatus>, RuntimeError> {
        let manager = self.manager().await?;
        let pin = match self.pin(&manager, space_id).await {
            Ok(pin) => pin,
            Err(e @ RuntimeError::Unavailable(_)) => return Err(e),
            // Another installation's service, or one the engine will not show.
            Err(_) => return Ok(None),
        };
        let Some(task) = newest(self.tasks(&manager, space_id).await?) else {
            return Ok(None);
        };
        let container = task
            .status
            .as_ref()
            .and_then(|s| s.container_status.as_ref())
            .and_then(|c| c.container_id.clone())
            .or_else(|| task.id.clone())
            .unwrap_or_default();
        let state = task_state(&task);
        if state != Some(TaskState::RUNNING) {
            let exit = task
                .status
                .as_ref()
                .and_then(|s| s.container_status.as_ref())
                .and_then(|c| c.exit_code);
            // A drained (or lost) node is why Swarm shut it down: say so.
            let node_id = task.node_id.clone().unwrap_or_default();
            let node_reason = match self.node(&manager, &node_id).await {
                Ok(Some(node)) => {
                    node_unusable(&node).map(|why| format!("node {} {why}", node_name(&node)))
                }
                _ => None,
            };
            let detail = match (exit, node_reason) {
                (_, Some(reason)) if state == Some(TaskState::SHUTDOWN) => {
                    format!("Swarm stopped the space: {reason}")
                }
                (Some(code), _)
                    if state == Some(TaskState::FAILED) || state == Some(TaskState::COMPLETE) =>
                {
                    format!("the container exited with code {code}")
                }
                _ => format!(
                    "the space's task is {}: {}",
                    state.map(|s| s.to_string()).unwrap_or_default(),
                    task_error(&task)
                ),
            };
            return Ok(Some(ContainerStatus {
                id: container,
                running: false,
                detail,
            }));
        }
        // Swarm takes a while to call a dead node down: its engine not answering says so now.
        let node_id = task.node_id.clone().unwrap_or_default();
        if pin.as_ref().is_some_and(|pin| *pin != node_id) {
            // Swarm rescheduled it (a drained node) away from its volumes: not the space.
            return Ok(Some(ContainerStatus {
                id: container,
                running: false,
                detail: "Swarm moved the space off the node that holds its volumes".to_owned(),
            }));
        }
        let node = self.node(&manager, &node_id).await?;
        let dead = match &node {
            None => Some(format!("node {node_id} has left the swarm")),
            Some(node) => match node_unusable(node) {
                Some(why)
                    if node.status.as_ref().and_then(|s| s.state) != Some(NodeState::READY) =>
                {
                    Some(format!("node {} {why}", node_name(node)))
                }
                _ => match self.engine_of(node) {
                    Ok(engine) => {
                        match tokio::time::timeout(NODE_PING_TIMEOUT, engine.ping()).await {
                            Ok(Ok(_)) => None,
                            _ => Some(format!(
                                "node {} does not answer: it is down or cut off",
                                node_name(node)
                            )),
                        }
                    }
                    Err(_) => None,
                },
            },
        };
        Ok(Some(ContainerStatus {
            id: container,
            running: dead.is_none(),
            detail: dead.unwrap_or_default(),
        }))
    }

    async fn exec(&self, space_id: &SpaceId, request: ExecRequest) -> Result<Exec, RuntimeError> {
        let located = self.locate(space_id).await?;
        exec_in(located.engine, located.container, request).await
    }

    async fn reach(&self, space_id: &SpaceId) -> Result<Option<Reach>, RuntimeError> {
        self.reach_space(space_id).await
    }

    async fn stats(&self, space_id: &SpaceId) -> Result<Option<SpaceStats>, RuntimeError> {
        // Read from the engine of the node its task runs on, as `docker stats` there would.
        match self.locate(space_id).await {
            Ok(located) => container_stats(&located.engine, &located.container).await,
            // Not running anywhere (or on a node Hangar cannot reach): nothing to read.
            Err(RuntimeError::Failed(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn oom_kills(&self) -> Result<OomStream, RuntimeError> {
        // Every node's engine reports the kills of the containers it runs. A node that joins
        // later is heard from when the stream is opened again: it ends every few minutes.
        let manager = self.manager().await?;
        let streams: Vec<OomStream> = swarm_nodes(&manager)
            .await?
            .iter()
            .filter(|node| node.status.as_ref().and_then(|s| s.state) == Some(NodeState::READY))
            .filter_map(|node| self.engine_of(node).ok())
            .map(|engine| oom_events(&engine, &self.settings.installation))
            .collect();
        if streams.is_empty() {
            return Err(RuntimeError::Failed(
                "no node's engine can be reached for its events".into(),
            ));
        }
        let reopen = tokio::time::sleep(OOM_REOPEN);
        Ok(futures_util::stream::select_all(streams)
            .take_until(reopen)
            .boxed())
    }

    async fn list_managed(&self) -> Result<Vec<ManagedObject>, RuntimeError> {
        self.managed().await
    }

    async fn remove_managed(&self, object: &ManagedObject) -> Result<(), RuntimeError> {
        self.remove_object(object).await
    }

    async fn prepare(&self) -> Enforcement {
        match self.manager().await {
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "the swarm manager is not reachable yet"),
        }
        let enforcement = self.enforcement().await;
        if let Err(reason) = &enforcement.storage {
            tracing::warn!("volume sizes are NOT enforced: {reason}");
        }
        if let Err(reason) = &enforcement.network {
            tracing::warn!("spaces are NOT kept from the nodes: {reason}");
        }
        enforcement
    }

    async fn enforcement(&self) -> Enforcement {
        let storage = if self.settings.sized_volumes {
            Ok(format!(
                "enforced: on Swarm, each volume is an ext4 image of its size on a loop device \
                 on the space's node, under {NODE_VOLUMES}/{} there, made by Hangar's helper",
                self.settings.installation
            ))
        } else {
            Err(
                "turned off (--volume-sizes off): on Swarm, volumes are plain node-local \
                 Docker volumes whose sizes are bookkeeping only (a space can fill its node's \
                 disk)"
                    .to_owned(),
            )
        };
        Enforcement {
            storage,
            network: Ok(
                "on Swarm, each space has an overlay network of its own (spaces never reach \
                 each other), and every node a space runs on drops what spaces send to any \
                 address of any node and to link-local addresses"
                    .to_owned(),
            ),
            privileges: privileges_status(&self.node_facts()),
        }
    }

    async fn volume_usage(&self, space: &SpaceSpec) -> Vec<VolumeUsage> {
        self.measure_space(space).await
    }

    async fn storage_used(&self, spaces: &[SpaceId]) -> Option<HashMap<SpaceId, u64>> {
        self.measure_spaces(spaces).await
    }

    async fn nodes(&self) -> Result<Vec<NodeReport>, RuntimeError> {
        self.node_reports().await
    }

    async fn move_space(&self, space: &SpaceSpec, to: &str) -> Result<Moved, RuntimeError> {
        self.move_to(space, to).await
    }

    async fn stat_path(
        &self,
        space_id: &SpaceId,
        path: &str,
    ) -> Result<Option<PathInfo>, RuntimeError> {
        let located = self.locate(space_id).await?;
        files::stat_path_in(&located.engine, &located.container, path).await
    }

    async fn download_archive(
        &self,
        space_id: &SpaceId,
        path: &str,
    ) -> Result<ByteStream, RuntimeError> {
        let located = self.locate(space_id).await?;
        files::download_archive_of(&located.engine, &located.container, path).await
    }

    async fn upload_archive(
        &self,
        space_id: &SpaceId,
        dir: &str,
        tar: UploadStream,
    ) -> Result<(), RuntimeError> {
        let located = self.locate(space_id).await?;
        files::upload_archive_to(&located.engine, &located.container, dir, tar).await
    }
}
