//! [`Runtime`] on a Docker Swarm (`--runtime swarm`): each space is a one-replica service
//! that Swarm places by its CPU and memory reservations, on an attachable overlay network of
//! its own (spaces never reach each other).
//! Volumes are node-local, so a space's later starts are pinned to the node its volumes were
//! made on; exec and archive calls go to the engine of the node its task runs on (the
//! node's `io.hangar.engine` label), through the same code as the Docker runtime.

mod guard;
mod nodes;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use app::ids::SpaceId;
use bollard::models::{
    Limit, Mount, MountType, MountVolumeOptions, NetworkAttachmentConfig, NetworkCreateRequest,
    Node, NodeSpecAvailabilityEnum, NodeState, ResourceObject, ServiceSpec, ServiceSpecMode,
    ServiceSpecModeReplicated, Task, TaskSpec, TaskSpecContainerSpec, TaskSpecPlacement,
    TaskSpecResources, TaskSpecRestartPolicy, TaskSpecRestartPolicyConditionEnum, TaskState,
};
use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListServicesOptionsBuilder,
    ListTasksOptionsBuilder, ListVolumesOptionsBuilder, RemoveContainerOptionsBuilder,
    RemoveVolumeOptionsBuilder, UpdateServiceOptionsBuilder,
};
use bollard::Docker;

use super::client::DockerClient;
use super::docker::{
    address_on, classify, compute_limits, container_name, exec_in, files, is_not_found, owner_of,
    space_labels, volume_name, Owner, DOCKER_IN_DOCKER_CAPABILITIES, IDLE_COMMAND, LABEL_NETWORK,
    SPACE_CAPABILITIES, STOP_GRACE_SECS,
};
use super::{
    ByteStream, ContainerStatus, Enforcement, Exec, ExecRequest, ManagedObject, Moved, NodeReport,
    PathInfo, Reach, Runtime, RuntimeError, SpaceSpec, UploadStream, VolumeUsage, LABEL_MANAGED,
    LABEL_SPACE,
};

/// The node label that says where a node's engine answers (`tcp://ip:2375`), for exec and
/// archive calls to the spaces it runs.
pub const LABEL_ENGINE: &str = "io.hangar.engine";
/// The service label naming the node a space's volumes are on.
pub const LABEL_NODE: &str = "io.hangar.node";
/// The label [`LABEL_NETWORK`]`=spaces-swarm` (with the space's label) finds a space's own
/// overlay network.
const NETWORK_KIND: &str = "spaces-swarm";

/// How long a start waits for Swarm to run the task (an image load on a node included).
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a stop or removal waits for the task's container to be gone.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the task is looked at while waiting.
const POLL: Duration = Duration::from_millis(100);
/// How long a start that Swarm cannot place yet waits while the room it needs is held by
/// tasks that are ending.
const CAPACITY_GRACE: Duration = Duration::from_secs(10);
/// A node engine that does not answer within this is taken for a dead node.
const NODE_PING_TIMEOUT: Duration = Duration::from_secs(2);

/// How a [`SwarmRuntime`] runs spaces.
pub struct SwarmSettings {
    pub installation: String,
    pub cpus_per_cu: f64,
    pub memory_mib_per_cu: u64,
    pub pids_per_cu: i64,
}

pub struct SwarmRuntime {
    /// The manager's engine (`--docker-host`).
    manager: Arc<DockerClient>,
    settings: SwarmSettings,
    /// Clients of the nodes' engines, by endpoint.
    engines: std::sync::Mutex<HashMap<String, Docker>>,
    /// When each node's network rules were last installed.
    guarded: std::sync::Mutex<HashMap<String, Instant>>,
}

/// What a node has left to reserve.
struct FreeSlot {
    node_id: String,
    node: String,
    nano_cpus: i64,
    memory: i64,
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

fn task_error(task: &Task) -> String {
    let status = task.status.as_ref();
    status
        .and_then(|s| s.err.clone())
        .filter(|e| !e.is_empty())
        .or_else(|| status.and_then(|s| s.message.clone()))
        .unwrap_or_default()
}

/// The newest of the tasks (Swarm keeps a history of ended ones).
fn newest(tasks: Vec<Task>) -> Option<Task> {
    tasks
        .into_iter()
        .max_by_key(|t| t.version.as_ref().and_then(|v| v.index).unwrap_or(0))
}

/// Whether this process reaches `address` through an interface of its own on the overlay
/// (the kernel's choice of source address for it is in one of the overlay's `subnets`): then
/// Hangar runs attached to the overlay and dials spaces directly.
fn on_the_overlay(address: std::net::IpAddr, subnets: &[String]) -> bool {
    let unspecified: std::net::IpAddr = if address.is_ipv4() {
        std::net::Ipv4Addr::UNSPECIFIED.into()
    } else {
        std::net::Ipv6Addr::UNSPECIFIED.into()
    };
    // A UDP socket's connect sends nothing: it only picks the route and the source address.
    let Ok(socket) = std::net::UdpSocket::bind((unspecified, 0)) else {
        return false;
    };
    if socket.connect((address, 9)).is_err() {
        return false;
    }
    let Ok(local) = socket.local_addr() else {
        return false;
    };
    subnets.iter().any(|subnet| in_subnet(local.ip(), subnet))
}

/// Whether `ip` is in the CIDR block `subnet` (`10.0.1.0/24`).
fn in_subnet(ip: std::net::IpAddr, subnet: &str) -> bool {
    let Some((base, bits)) = subnet.split_once('/') else {
        return false;
    };
    let (Ok(base), Ok(bits)) = (base.parse::<std::net::IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    match (ip, base) {
        (std::net::IpAddr::V4(ip), std::net::IpAddr::V4(base)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(ip) & mask == u32::from(base) & mask
        }
        (std::net::IpAddr::V6(ip), std::net::IpAddr::V6(base)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(ip) & mask == u128::from(base) & mask
        }
        _ => false,
    }
}

impl SwarmRuntime {
    pub fn new(manager: Arc<DockerClient>, settings: SwarmSettings) -> Self {
        Self {
            manager,
            settings,
            engines: std::sync::Mutex::default(),
            guarded: std::sync::Mutex::default(),
        }
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
        match manager.inspect_node(node_id).await {
            Ok(node) => Ok(Some(node)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(classify("inspecting a swarm node", e)),
        }
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

    /// The ids of the space's own overlay networks, lowest first (two servers starting the
    /// same space at once may each make one: all settle on the lowest).
    async fn space_networks(
        &self,
        manager: &Docker,
        space_id: &SpaceId,
    ) -> Result<Vec<String>, RuntimeError> {
        let filter = HashMap::from([(
            "label".to_owned(),
            vec![
                format!("{LABEL_NETWORK}={NETWORK_KIND}"),
                format!("{LABEL_SPACE}={space_id}"),
            ],
        )]);
        let mut ids: Vec<String> = manager
            .list_networks(Some(
                ListNetworksOptionsBuilder::new().filters(&filter).build(),
            ))
            .await
            .map_err(|e| classify("listing networks", e))?
            .into_iter()
            .filter(|n| owner_of(n.labels.as_ref(), &self.settings.installation) == Owner::Us)
            .filter_map(|n| n.id)
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// The space's own attachable overlay, made on its first start: one network a space, so
    /// that spaces never reach each other, on one node or across nodes.
    async fn space_network(
        &self,
        manager: &Docker,
        space: &SpaceSpec,
    ) -> Result<String, RuntimeError> {
        if let Some(id) = self.space_networks(manager, &space.id).await?.first() {
            return Ok(id.clone());
        }
        let mut labels = space_labels(&self.settings.installation, space);
        labels.insert(LABEL_NETWORK.to_owned(), NETWORK_KIND.to_owned());
        let request = NetworkCreateRequest {
            name: format!("{}-net", container_name(&space.id)),
            driver: Some("overlay".into()),
            attachable: Some(true),
            labels: Some(labels),
            ..Default::default()
        };
        manager
            .create_network(request)
            .await
            .map_err(|e| classify("creating the space's overlay network", e))?;
        self.space_networks(manager, &space.id)
            .await?
            .first()
            .cloned()
            .ok_or_else(|| {
                RuntimeError::Failed("the space's overlay network vanished as it was made".into())
            })
    }

    /// Removes the space's overlay networks, waiting while the ended task's endpoint still
    /// holds them.
    async fn remove_space_networks(
        &self,
        manager: &Docker,
        space_id: &SpaceId,
    ) -> Result<(), RuntimeError> {
        for id in self.space_networks(manager, space_id).await? {
            let deadline = Instant::now() + STOP_TIMEOUT;
            loop {
                match manager.remove_network(&id).await {
                    Ok(()) => break,
                    Err(e) if is_not_found(&e) => break,
                    Err(bollard::errors::Error::DockerResponseServerError {
                        status_code: 403 | 409 | 500,
                        ..
                    }) if Instant::now() < deadline => tokio::time::sleep(POLL).await,
                    Err(e) => return Err(classify("removing the space's overlay network", e)),
                }
            }
        }
        Ok(())
    }

    async fn overlay_subnets(
        &self,
        manager: &Docker,
        network_id: &str,
    ) -> Result<Vec<String>, RuntimeError> {
        let network = manager
            .inspect_network(
                network_id,
                None::<bollard::query_parameters::InspectNetworkOptions>,
            )
            .await
            .map_err(|e| classify("inspecting the spaces overlay network", e))?;
        let subnets: Vec<String> = network
            .ipam
            .and_then(|ipam| ipam.config)
            .into_iter()
            .flatten()
            .filter_map(|config| config.subnet)
            .collect();
        Ok(subnets)
    }

    /// The node the space's volumes are on: the service's pin when it has one, else a node
    /// whose engine holds one of its volumes (a service lost after the volumes were made).
    async fn volume_node(
        &self,
        manager: &Docker,
        space: &SpaceSpec,
    ) -> Result<Option<String>, RuntimeError> {
        if let Some(pin) = self.pin(manager, &space.id).await? {
            return Ok(Some(pin));
        }
        let Some(first) = space.volumes.first() else {
            return Ok(None);
        };
        let name = volume_name(&space.id, &first.name);
        let nodes = manager
            .list_nodes(None::<bollard::query_parameters::ListNodesOptions>)
            .await
            .map_err(|e| classify("listing the swarm's nodes", e))?;
        for node in nodes {
            let Ok(engine) = self.engine_of(&node) else {
                continue;
            };
            if let Ok(Ok(_)) =
                tokio::time::timeout(NODE_PING_TIMEOUT, engine.inspect_volume(&name)).await
            {
                return Ok(node.id);
            }
        }
        Ok(None)
    }

    /// The node named by the space's service's pin label.
    async fn pin(
        &self,
        manager: &Docker,
        space_id: &SpaceId,
    ) -> Result<Option<String>, RuntimeError> {
        match manager
            .inspect_service(
                &container_name(space_id),
                None::<bollard::query_parameters::InspectServiceOptions>,
            )
            .await
        {
            Ok(service) => {
                let labels = service.spec.and_then(|s| s.labels);
                if owner_of(labels.as_ref(), &self.settings.installation)
                    == Owner::AnotherInstallation
                {
                    return Err(RuntimeError::Failed(format!(
                        "a service named {} belongs to another Hangar installation",
                        container_name(space_id)
                    )));
                }
                Ok(labels.and_then(|mut l| l.remove(LABEL_NODE)))
            }
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(classify("inspecting the space's service", e)),
        }
    }

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
            match tokio::time::timeout(NODE_PING_TIMEOUT * 5, engine.inspect_volume(&name)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) if is_not_found(&e) => {
                    return Err(RuntimeError::Failed(format!(
                        "volume `{}` ({name}) is missing on node {}: Hangar does not start a \
                         space on a new empty volume in its place. Restore the volume, or \
                         delete the space",
                        volume.name,
                        node_name(&node)
                    )))
                }
                Ok(Err(e)) => {
                    return Err(classify(
                        &format!("inspecting volume {name} on node {}", node_name(&node)),
                        e,
                    ))
                }
                Err(_) => {
                    return Err(RuntimeError::Failed(format!(
                        "node {} holds this space's volumes and its engine does not answer",
                        node_name(&node)
                    )))
                }
            }
        }
        Ok(())
    }

    fn service_spec(
        &self,
        space: &SpaceSpec,
        network_id: &str,
        pin: Option<&str>,
        replicas: i64,
    ) -> ServiceSpec {
        let labels = space_labels(&self.settings.installation, space);
        let mounts = space
            .volumes
            .iter()
            .map(|volume| {
                let mut volume_labels = labels.clone();
                volume_labels.insert("io.hangar.volume".into(), volume.name.clone());
                volume_labels.insert("io.hangar.size_gib".into(), volume.size_gib.to_string());
                Mount {
                    target: Some(volume.mount_path.clone()),
                    source: Some(volume_name(&space.id, &volume.name)),
                    typ: Some(MountType::VOLUME),
                    volume_options: Some(MountVolumeOptions {
                        labels: Some(volume_labels),
                        ..Default::default()
                    }),
                    ..Default::default()
                }
            })
            .collect();
        let (nano_cpus, memory_bytes) = compute_limits(
            space.compute_units,
            self.settings.cpus_per_cu,
            self.settings.memory_mib_per_cu,
        );
        let (cap_drop, cap_add) = if space.privileged {
            (
                Vec::new(),
                DOCKER_IN_DOCKER_CAPABILITIES.map(str::to_owned).to_vec(),
            )
        } else {
            (
                vec!["ALL".to_owned()],
                SPACE_CAPABILITIES.map(str::to_owned).to_vec(),
            )
        };
        let command = space
            .command
            .clone()
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into(), IDLE_COMMAND.into()]);
        let mut service_labels = labels.clone();
        if let Some(pin) = pin {
            service_labels.insert(LABEL_NODE.to_owned(), pin.to_owned());
        }
        ServiceSpec {
            name: Some(container_name(&space.id)),
            labels: Some(service_labels),
            mode: Some(ServiceSpecMode {
                replicated: Some(ServiceSpecModeReplicated {
                    replicas: Some(replicas),
                }),
                ..Default::default()
            }),
            task_template: Some(TaskSpec {
                container_spec: Some(TaskSpecContainerSpec {
                    image: Some(space.image.clone()),
                    labels: Some(labels),
                    command: Some(command),
                    hostname: Some(space.name.clone()),
                    env: Some(space.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
                    mounts: Some(mounts),
                    stop_grace_period: Some(i64::from(STOP_GRACE_SECS) * 1_000_000_000),
                    init: Some(false),
                    capability_add: Some(cap_add),
                    capability_drop: Some(cap_drop),
                    ..Default::default()
                }),
                // Reservations as large as the limits: Swarm places a space only where its
                // compute units fit.
                resources: Some(TaskSpecResources {
                    limits: Some(Limit {
                        nano_cpus,
                        memory_bytes,
                        pids: Some(space.compute_units.max(1) * self.settings.pids_per_cu),
                    }),
                    reservations: Some(ResourceObject {
                        nano_cpus,
                        memory_bytes,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                // Swarm never restarts or moves a space on its own: a dead one is `stopped`
                // (the reconciler says why), and a new task could land away from its volumes.
                restart_policy: Some(TaskSpecRestartPolicy {
                    condition: Some(TaskSpecRestartPolicyConditionEnum::NONE),
                    ..Default::default()
                }),
                placement: pin.map(|node| TaskSpecPlacement {
                    constraints: Some(vec![format!("node.id=={node}")]),
                    ..Default::default()
                }),
                networks: Some(vec![NetworkAttachmentConfig {
                    target: Some(network_id.to_owned()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// What each active, ready node has left to reserve, counting the tasks meant to run
    /// (a task that is ending still holds its reservation in the scheduler a moment longer).
    async fn free_slots(&self, manager: &Docker) -> Option<Vec<FreeSlot>> {
        let nodes = manager
            .list_nodes(None::<bollard::query_parameters::ListNodesOptions>)
            .await
            .ok()?;
        let filter = HashMap::from([("desired-state".to_owned(), vec!["running".to_owned()])]);
        let tasks = manager
            .list_tasks(Some(
                ListTasksOptionsBuilder::new().filters(&filter).build(),
            ))
            .await
            .ok()?;
        Some(
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
                .collect(),
        )
    }

    /// Sets the service's replicas (keeping the rest of its spec); absent is fine.
    async fn scale(
        &self,
        manager: &Docker,
        space_id: &SpaceId,
        replicas: i64,
        pin: Option<&str>,
    ) -> Result<bool, RuntimeError> {
        let name = container_name(space_id);
        // A concurrent update bumps the version: read it again, a few times.
        for _ in 0..3 {
            let service = match manager
                .inspect_service(
                    &name,
                    None::<bollard::query_parameters::InspectServiceOptions>,
                )
                .await
            {
                Ok(service) => service,
                Err(e) if is_not_found(&e) => return Ok(false),
                Err(e) => return Err(classify("inspecting the space's service", e)),
            };
            let version = service.version.and_then(|v| v.index).unwrap_or(0);
            let Some(mut spec) = service.spec else {
                return Ok(false);
            };
            if owner_of(spec.labels.as_ref(), &self.settings.installation)
                == Owner::AnotherInstallation
            {
                return Ok(false);
            }
            spec.mode = Some(ServiceSpecMode {
                replicated: Some(ServiceSpecModeReplicated {
                    replicas: Some(replicas),
                }),
                ..Default::default()
            });
            if let Some(pin) = pin {
                spec.labels
                    .get_or_insert_with(HashMap::new)
                    .insert(LABEL_NODE.to_owned(), pin.to_owned());
            }
            let options = UpdateServiceOptionsBuilder::new()
                .version(i32::try_from(version).unwrap_or(i32::MAX))
                .build();
            match manager.update_service(&name, spec, options, None).await {
                Ok(_) => return Ok(true),
                Err(bollard::errors::Error::DockerResponseServerError { message, .. })
                    if message.contains("out of sequence") =>
                {
                    continue
                }
                Err(e) => return Err(classify("updating the space's service", e)),
            }
        }
        Err(RuntimeError::Failed(
            "the space's service kept changing under this update: try again".into(),
        ))
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
    async fn wait_stopped(&self, manager: &Docker, space_id: &SpaceId) -> Result<(), RuntimeError> {
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

    /// Removes the space's ended containers and its volumes from one node's engine.
    async fn remove_space_data(
        &self,
        engine: &Docker,
        node: &Node,
        space: &SpaceSpec,
    ) -> Result<(), RuntimeError> {
        // Swarm keeps the containers of ended tasks a while; they hold the volumes.
        let filter = HashMap::from([(
            "label".to_owned(),
            vec![format!("{LABEL_SPACE}={}", space.id)],
        )]);
        let containers = engine
            .list_containers(Some(
                ListContainersOptionsBuilder::new()
                    .all(true)
                    .filters(&filter)
                    .build(),
            ))
            .await
            .map_err(|e| {
                classify(
                    &format!("listing containers on node {}", node_name(node)),
                    e,
                )
            })?;
        for container in containers.into_iter().filter_map(|c| c.id) {
            let options = RemoveContainerOptionsBuilder::new().force(true).build();
            match engine.remove_container(&container, Some(options)).await {
                Ok(()) => {}
                Err(e) if is_not_found(&e) => {}
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 409, ..
                }) => {}
                Err(e) => return Err(classify("removing an ended container of the space", e)),
            }
        }
        for volume in &space.volumes {
            let name = volume_name(&space.id, &volume.name);
            let options = RemoveVolumeOptionsBuilder::new().force(true).build();
            // The task's container goes a moment after the task: retry while it is in use.
            let deadline = Instant::now() + STOP_TIMEOUT;
            loop {
                match engine.remove_volume(&name, Some(options.clone())).await {
                    Ok(()) => break,
                    Err(e) if is_not_found(&e) => break,
                    Err(bollard::errors::Error::DockerResponseServerError {
                        status_code: 409,
                        ..
                    }) if Instant::now() < deadline => tokio::time::sleep(POLL).await,
                    Err(e) => {
                        return Err(classify(
                            &format!(
                                "removing volume {} on node {}",
                                volume.name,
                                node_name(node)
                            ),
                            e,
                        ))
                    }
                }
            }
        }
        Ok(())
    }

    /// The network rules of the node a space's task runs on (see [`guard`]).
    async fn guard_task_node(
        &self,
        manager: &Docker,
        node_id: &str,
        space: &SpaceSpec,
    ) -> Result<(), RuntimeError> {
        let node = self
            .node(manager, node_id)
            .await?
            .ok_or_else(|| RuntimeError::Failed(format!("node {node_id} has left the swarm")))?;
        let engine = self.engine_of(&node)?;
        self.guard_node(manager, &engine, node_id, &space.image)
            .await
            .map_err(|e| {
                RuntimeError::Failed(format!(
                    "node {} cannot be made to keep spaces from the nodes: {e}",
                    node_name(&node)
                ))
            })
    }

    async fn start_service(&self, space: &SpaceSpec) -> Result<String, RuntimeError> {
        let manager = self.manager().await?;
        let network_id = self.space_network(&manager, space).await?;
        let pin = self.volume_node(&manager, space).await?;
        if let Some(node) = &pin {
            self.check_pinned_node(&manager, space, node).await?;
        }
        // The stopped service (0 replicas) carries the pin; a fresh one replaces it.
        let name = container_name(&space.id);
        match manager.delete_service(&name).await {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(classify("removing the space's old service", e)),
        }
        let spec = self.service_spec(space, &network_id, pin.as_deref(), 1);
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
                        if let Err(e) = self.guard_task_node(&manager, &node_id, space).await {
                            // Never a space that can reach the nodes' engines.
                            let _ = self.scale(&manager, &space.id, 0, None).await;
                            return Err(e);
                        }
                        if pin.is_none() && !space.volumes.is_empty() {
                            // Its volumes are now on this node: later starts go there.
                            self.scale(&manager, &space.id, 1, Some(&node_id)).await?;
                        }
                        return Ok(container);
                    }
                    Some(TaskState::PENDING) if error.contains("insufficient resources") => {
                        let (cpus, memory) = compute_limits(
                            space.compute_units,
                            self.settings.cpus_per_cu,
                            self.settings.memory_mib_per_cu,
                        );
                        let (cpus, memory) = (cpus.unwrap_or(0), memory.unwrap_or(0));
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
                        let largest = match slots.iter().max_by_key(|slot| slot.nano_cpus) {
                            Some(slot) => format!(
                                "the largest free slot is {:.2} CPUs and {} MiB on node {}",
                                slot.nano_cpus.max(0) as f64 / 1e9,
                                slot.memory.max(0) / (1024 * 1024),
                                slot.node
                            ),
                            None => "no node is active and ready".to_owned(),
                        };
                        let where_ = if pin.is_some() {
                            "the node that holds this space's volumes has"
                        } else {
                            "no node of the cluster has"
                        };
                        return Err(RuntimeError::Failed(format!(
                            "cluster capacity: {where_} room for this space ({} CPUs, {} MiB \
                             reserved; {largest}). This is not your quota: stop another space \
                             there or ask an admin to add a node, then start it again",
                            cpus as f64 / 1e9,
                            memory / (1024 * 1024)
                        )));
                    }
                    Some(TaskState::PENDING) if error.contains("no suitable node") => {
                        self.scale(&manager, &space.id, 0, None).await?;
                        return Err(RuntimeError::Failed(format!(
                            "no node of the cluster can run this space: {error}"
                        )));
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
                        return Err(RuntimeError::Failed(format!(
                            "the space's task is {state}: {error}"
                        )));
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

#[async_trait::async_trait]
impl Runtime for SwarmRuntime {
    /// Swarm makes a space's volumes on the node its first task lands on (labelled through
    /// the mounts' volume options): nothing to make before then.
    async fn create_volumes(&self, _space: &SpaceSpec) -> Result<(), RuntimeError> {
        Ok(())
    }

    async fn start(&self, space: &SpaceSpec) -> Result<String, RuntimeError> {
        match self.start_service(space).await {
            // The space's overlay was removed under us: made again, once.
            Err(RuntimeError::Failed(message))
                if message.contains("network") && message.contains("not found") =>
            {
                self.start_service(space).await
            }
            other => other,
        }
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
            match manager.delete_service(&container_name(&space.id)).await {
                Ok(()) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(classify("removing the space's service", e)),
            }
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
            Err(RuntimeError::Failed(_)) => return Ok(None),
            Err(e) => return Err(e),
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

    /// The container's address on the overlay when Hangar itself is on that overlay (runs as
    /// a task or container attached to it); otherwise a relay through the node's engine.
    async fn reach(&self, space_id: &SpaceId) -> Result<Option<Reach>, RuntimeError> {
        let Ok(located) = self.locate(space_id).await else {
            return Ok(None);
        };
        let manager = self.manager().await?;
        let Some(network_id) = self
            .space_networks(&manager, space_id)
            .await?
            .into_iter()
            .next()
        else {
            return Ok(Some(Reach::Relay));
        };
        let info = match located
            .engine
            .inspect_container(
                &located.container,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
        {
            Ok(info) => info,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(classify("inspecting the container", e)),
        };
        let labels = info.config.as_ref().and_then(|c| c.labels.as_ref());
        if labels.and_then(|l| l.get(LABEL_SPACE)) != Some(&space_id.to_string()) {
            return Ok(None);
        }
        let Some(address) = address_on(&info, &network_id) else {
            return Ok(Some(Reach::Relay));
        };
        let subnets = self.overlay_subnets(&manager, &network_id).await?;
        Ok(Some(if on_the_overlay(address, &subnets) {
            Reach::Address(address)
        } else {
            Reach::Relay
        }))
    }

    /// The installation's services, and its volumes on every node whose engine answers
    /// (a volume's id is `node-id/name`).
    async fn list_managed(&self) -> Result<Vec<ManagedObject>, RuntimeError> {
        let manager = self.manager().await?;
        let filter = HashMap::from([("label".to_owned(), vec![format!("{LABEL_MANAGED}=true")])]);
        let mut found = Vec::new();
        let mut keep =
            |kind: &str, id: String, name: String, labels: Option<&HashMap<String, String>>| {
                let unlabelled = match owner_of(labels, &self.settings.installation) {
                    Owner::Us => false,
                    Owner::Nobody => true,
                    Owner::AnotherInstallation => return,
                };
                // The overlay all spaces shared before each had its own belongs to nobody.
                if labels.and_then(|l| l.get(LABEL_NETWORK)).is_some()
                    && labels.and_then(|l| l.get(LABEL_SPACE)).is_none()
                {
                    return;
                }
                found.push(ManagedObject {
                    kind: kind.into(),
                    id,
                    space_id: labels
                        .and_then(|l| l.get(LABEL_SPACE))
                        .cloned()
                        .unwrap_or_default(),
                    name,
                    unlabelled,
                });
            };
        let services = manager
            .list_services(Some(
                ListServicesOptionsBuilder::new().filters(&filter).build(),
            ))
            .await
            .map_err(|e| classify("listing services", e))?;
        for service in services {
            let spec = service.spec.unwrap_or_default();
            let name = spec.name.clone().unwrap_or_default();
            keep(
                "service",
                service.id.unwrap_or_else(|| name.clone()),
                name,
                spec.labels.as_ref(),
            );
        }
        let networks = manager
            .list_networks(Some(
                ListNetworksOptionsBuilder::new().filters(&filter).build(),
            ))
            .await
            .map_err(|e| classify("listing networks", e))?;
        for network in networks {
            let name = network.name.clone().unwrap_or_default();
            keep(
                "network",
                network.id.clone().unwrap_or_else(|| name.clone()),
                name,
                network.labels.as_ref(),
            );
        }
        let nodes = manager
            .list_nodes(None::<bollard::query_parameters::ListNodesOptions>)
            .await
            .map_err(|e| classify("listing the swarm's nodes", e))?;
        for node in nodes {
            let Ok(engine) = self.engine_of(&node) else {
                continue;
            };
            let listed = tokio::time::timeout(
                NODE_PING_TIMEOUT * 5,
                engine.list_volumes(Some(
                    ListVolumesOptionsBuilder::new().filters(&filter).build(),
                )),
            )
            .await;
            let Ok(Ok(volumes)) = listed else {
                tracing::warn!(node = %node_name(&node), "cannot list the volumes of a node");
                continue;
            };
            let node_id = node.id.clone().unwrap_or_default();
            for volume in volumes.volumes.unwrap_or_default() {
                keep(
                    "volume",
                    format!("{node_id}/{}", volume.name),
                    volume.name.clone(),
                    Some(&volume.labels),
                );
            }
        }
        Ok(found)
    }

    async fn remove_managed(&self, object: &ManagedObject) -> Result<(), RuntimeError> {
        let manager = self.manager().await?;
        let result = match object.kind.as_str() {
            "service" => manager.delete_service(&object.id).await,
            "network" => manager.remove_network(&object.id).await,
            "volume" => {
                let Some((node_id, name)) = object.id.split_once('/') else {
                    return Err(RuntimeError::Failed(format!(
                        "volume id `{}` names no node",
                        object.id
                    )));
                };
                let Some(node) = self.node(&manager, node_id).await? else {
                    return Ok(());
                };
                let engine = self.engine_of(&node)?;
                let options = RemoveVolumeOptionsBuilder::new().force(true).build();
                engine.remove_volume(name, Some(options)).await
            }
            other => {
                return Err(RuntimeError::Failed(format!(
                    "unknown object kind `{other}`"
                )))
            }
        };
        match result {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(classify(
                &format!("removing {} {}", object.kind, object.name),
                e,
            )),
        }
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
        Enforcement {
            storage: Err(
                "on Swarm, volumes are plain node-local Docker volumes: their sizes \
                          are bookkeeping only (a space can fill its node's disk)"
                    .to_owned(),
            ),
            network: Ok(
                "on Swarm, each space has an overlay network of its own (spaces never reach \
                 each other), and every node a space runs on drops what spaces send to the \
                 nodes and to link-local addresses"
                    .to_owned(),
            ),
        }
    }

    async fn volume_usage(&self, space: &SpaceSpec) -> Vec<VolumeUsage> {
        space
            .volumes
            .iter()
            .map(|volume| VolumeUsage {
                name: volume.name.clone(),
                used_bytes: None,
                enforced: false,
            })
            .collect()
    }

    async fn storage_used(&self, _spaces: &[SpaceId]) -> Option<HashMap<SpaceId, u64>> {
        None
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_hold_their_addresses_only() {
        let ip = |s: &str| {
            s.parse::<std::net::IpAddr>()
                .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into())
        };
        assert!(in_subnet(ip("10.0.1.7"), "10.0.1.0/24"));
        assert!(!in_subnet(ip("10.0.2.7"), "10.0.1.0/24"));
        assert!(in_subnet(ip("10.255.3.4"), "10.0.0.0/8"));
        assert!(in_subnet(ip("1.2.3.4"), "0.0.0.0/0"));
        assert!(!in_subnet(ip("10.0.1.7"), "fd00::/8"));
        assert!(in_subnet(ip("fd00::1"), "fd00::/8"));
        assert!(!in_subnet(ip("10.0.1.7"), "10.0.1.0"));
        assert!(!in_subnet(ip("10.0.1.7"), "10.0.1.0/33"));
    }

    #[test]
    fn this_host_is_not_on_an_overlay_it_has_no_interface_in() {
        // 198.51.100.0/24 is TEST-NET-2: reached by the default route, from another address.
        assert!(!on_the_overlay(
            "198.51.100.10"
                .parse()
                .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into()),
            &["198.51.100.0/24".to_owned()]
        ));
        // The loopback route's source address is the loopback's own.
        assert!(on_the_overlay(
            std::net::Ipv4Addr::LOCALHOST.into(),
            &["127.0.0.0/8".to_owned()]
        ));
    }
}
