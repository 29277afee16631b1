//! [`Runtime`] on a Docker engine through bollard: named volumes (sized, on loop-mounted
//! filesystems, where the host allows: see [`super::disks`]), one container per space with
//! CPU, memory and process limits from its compute units and a reduced set of rights, on a
//! network kept from the host (see [`super::firewall`]), all labelled as Hangar's.

pub(crate) mod files;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use app::ids::SpaceId;
use bollard::errors::Error as DockerError;
use bollard::models::{
    ContainerCreateBody, HostConfig, Mount, MountType, NetworkCreateRequest, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, ListContainersOptionsBuilder,
    ListNetworksOptionsBuilder, ListVolumesOptionsBuilder, RemoveContainerOptionsBuilder,
    RemoveVolumeOptionsBuilder, StopContainerOptionsBuilder,
};

use super::client::DockerClient;
use super::disks::DiskImages;
use super::{
    firewall, ByteStream, ContainerStatus, Enforcement, Exec, ExecControl, ExecOutput, ExecRequest,
    ManagedObject, NodeReport, PathInfo, Reach, Runtime, RuntimeError, SpaceSpec, UploadStream,
    VolumeUsage, LABEL_INSTALLATION, LABEL_MANAGED, LABEL_OWNER, LABEL_SPACE,
};

/// Docker swallows its detach keys (Ctrl-P Ctrl-Q by default) from an exec's input. A long
/// sequence nobody types instead: a partial match is passed on once it stops matching.
const DETACH_KEYS: &str = "ctrl-],ctrl-^,ctrl-_,ctrl-],ctrl-^,ctrl-_,ctrl-],ctrl-^";

/// Seconds a container gets to stop before it is killed.
pub(crate) const STOP_GRACE_SECS: i32 = 10;

/// What a space runs when its template names no command: a shell that idles until stopped
/// and exits at once on SIGTERM.
pub(crate) const IDLE_COMMAND: &str =
    "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done";

/// The capabilities a space keeps: Docker's default set without MKNOD (device nodes),
/// SETPCAP and SETFCAP (changing capability sets and file capabilities). Enough for `sudo`
/// and `su` run as root (SETUID, SETGID, AUDIT_WRITE), `ping` (NET_RAW), package installs
/// (CHOWN, DAC_OVERRIDE, FOWNER, FSETID, and SETUID/SETGID for apt's sandbox user), servers
/// on ports below 1024 (NET_BIND_SERVICE), signals (KILL) and `chroot`, which sshd's
/// privilege separation does (SYS_CHROOT).
pub const SPACE_CAPABILITIES: [&str; 11] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "NET_BIND_SERVICE",
    "NET_RAW",
    "SYS_CHROOT",
    "AUDIT_WRITE",
];

/// What a privileged template's spaces get on top of Docker's default set: what a Docker
/// engine inside the space needs (mounts, namespaces and cgroups, its own networks and
/// firewall, tracing its processes). Docker's own `--privileged` is not used: it gives every
/// device of the host too, and fails on hosts whose capability bounding set is reduced.
pub const DOCKER_IN_DOCKER_CAPABILITIES: [&str; 3] = ["SYS_ADMIN", "NET_ADMIN", "SYS_PTRACE"];

/// How often a running Hangar checks that the network rules are still in place.
const FIREWALL_RECHECK: Duration = Duration::from_secs(30);

/// How long a measured volume use is reused for quota reports.
const USAGE_FRESH_FOR: Duration = Duration::from_secs(5);

/// How a [`DockerRuntime`] runs spaces.
pub struct DockerSettings {
    /// Labels every object it makes; objects of other installations are not seen.
    pub installation: String,
    pub cpus_per_cu: f64,
    pub memory_mib_per_cu: u64,
    /// Process (and thread) limit per compute unit; spaces of 0 CU get one unit's.
    pub pids_per_cu: i64,
    /// Sized volumes on this host, or why there are none.
    pub disks: Result<DiskImages, String>,
    /// Leave spaces able to reach the host (no network rules).
    pub allow_host_access: bool,
}

/// The network rules as last checked: on which bridge, when, and the outcome.
struct NetworkGuard {
    checked: Option<(String, Instant)>,
    status: Result<String, String>,
}

pub struct DockerRuntime {
    docker: Arc<DockerClient>,
    /// Labels every object this runtime makes; objects of other installations are not seen.
    installation: String,
    network_id: tokio::sync::Mutex<Option<String>>,
    cpus_per_cu: f64,
    memory_mib_per_cu: u64,
    pids_per_cu: i64,
    disks: Result<Arc<DiskImages>, String>,
    allow_host_access: bool,
    guard: tokio::sync::Mutex<NetworkGuard>,
    /// Bytes in use on each space's sized volumes, and when that was measured.
    usage: std::sync::Mutex<HashMap<SpaceId, (Instant, u64)>>,
}

/// The CPU (in billionths) and memory (in bytes) of `compute_units`; none for 0 CU (admin
/// templates run without limits).
pub(crate) fn compute_limits(
    compute_units: i64,
    cpus_per_cu: f64,
    memory_mib_per_cu: u64,
) -> (Option<i64>, Option<i64>) {
    if compute_units <= 0 {
        return (None, None);
    }
    (
        Some((compute_units as f64 * cpus_per_cu * 1e9) as i64),
        Some(compute_units * memory_mib_per_cu as i64 * 1024 * 1024),
    )
}

/// The labels of every object made for `space` by `installation`.
pub(crate) fn space_labels(installation: &str, space: &SpaceSpec) -> HashMap<String, String> {
    HashMap::from([
        (LABEL_MANAGED.to_owned(), "true".to_owned()),
        (LABEL_INSTALLATION.to_owned(), installation.to_owned()),
        (LABEL_SPACE.to_owned(), space.id.to_string()),
        (LABEL_OWNER.to_owned(), space.owner.clone()),
    ])
}

pub fn container_name(space_id: &SpaceId) -> String {
    format!("hangar-{space_id}")
}

/// Spaces share one bridge network with inter-container traffic disabled: each reaches the
/// outside world, none reaches another. (A network per space would exhaust Docker's address
/// pools after about thirty spaces.) Every installation on the engine uses the same one, for
/// the same reason: it belongs to no installation, none lists it as an orphan, and Hangar
/// never removes one that has endpoints (Docker refuses to), so it cannot be pulled from
/// under another installation's spaces.
pub const SPACES_NETWORK: &str = "hangar-spaces";
/// Label that marks the shared spaces network.
pub(crate) const LABEL_NETWORK: &str = "io.hangar.network";

pub fn volume_name(space_id: &SpaceId, volume: &str) -> String {
    format!("hangar-{space_id}-{volume}")
}

/// Whose an object is, by its labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    Us,
    /// Made before installations had ids.
    Nobody,
    AnotherInstallation,
}

pub(crate) fn owner_of(labels: Option<&HashMap<String, String>>, installation: &str) -> Owner {
    match labels.and_then(|l| l.get(LABEL_INSTALLATION)) {
        Some(id) if id == installation => Owner::Us,
        Some(_) => Owner::AnotherInstallation,
        None => Owner::Nobody,
    }
}

pub(crate) fn is_not_found(error: &DockerError) -> bool {
    matches!(
        error,
        DockerError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// Runs blocking work (files, `losetup`, `iptables`) off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, RuntimeError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(RuntimeError::Failed),
        Err(e) => Err(RuntimeError::Failed(format!("a host task failed: {e}"))),
    }
}

pub(crate) fn classify(context: &str, error: DockerError) -> RuntimeError {
    match error {
        DockerError::DockerResponseServerError { message, .. } => {
            RuntimeError::Failed(format!("{context}: {message}"))
        }
        other => {
            RuntimeError::Unavailable(format!("{context}: Docker engine unreachable: {other}"))
        }
    }
}

impl DockerRuntime {
    pub fn new(docker: Arc<DockerClient>, settings: DockerSettings) -> Self {
        Self {
            docker,
            installation: settings.installation,
            network_id: tokio::sync::Mutex::new(None),
            cpus_per_cu: settings.cpus_per_cu,
            memory_mib_per_cu: settings.memory_mib_per_cu,
            pids_per_cu: settings.pids_per_cu,
            disks: settings.disks.map(Arc::new),
            allow_host_access: settings.allow_host_access,
            guard: tokio::sync::Mutex::new(NetworkGuard {
                checked: None,
                status: Err("not checked yet: the spaces network is made when a space \
                             first starts"
                    .into()),
            }),
            usage: std::sync::Mutex::default(),
        }
    }

    fn labels(&self, space: &SpaceSpec) -> HashMap<String, String> {
        space_labels(&self.installation, space)
    }

    async fn client(&self) -> Result<bollard::Docker, RuntimeError> {
        self.docker.get().await.map_err(RuntimeError::Unavailable)
    }

    fn host_config(&self, space: &SpaceSpec, network_id: &str) -> HostConfig {
        let mounts = space
            .volumes
            .iter()
            .map(|volume| Mount {
                target: Some(volume.mount_path.clone()),
                source: Some(volume_name(&space.id, &volume.name)),
                typ: Some(MountType::VOLUME),
                ..Default::default()
            })
            .collect();
        let (nano_cpus, memory) = compute_limits(
            space.compute_units,
            self.cpus_per_cu,
            self.memory_mib_per_cu,
        );
        let (cap_drop, cap_add, security_opt) = if space.privileged {
            (
                Vec::new(),
                DOCKER_IN_DOCKER_CAPABILITIES.map(str::to_owned).to_vec(),
                vec![
                    "seccomp=unconfined".to_owned(),
                    "apparmor=unconfined".to_owned(),
                ],
            )
        } else {
            (
                vec!["ALL".to_owned()],
                SPACE_CAPABILITIES.map(str::to_owned).to_vec(),
                // setuid programs do not raise privileges: a process keeps at most the rights
                // of the one that started it.
                vec!["no-new-privileges:true".to_owned()],
            )
        };
        HostConfig {
            mounts: Some(mounts),
            network_mode: Some(network_id.to_owned()),
            nano_cpus,
            memory,
            // A fork bomb stops at the space's own limit.
            pids_limit: Some(space.compute_units.max(1) * self.pids_per_cu),
            cap_drop: Some(cap_drop),
            cap_add: Some(cap_add),
            security_opt: Some(security_opt),
            init: Some(false),
            ..Default::default()
        }
    }

    /// Makes sure every volume the space mounts is one Hangar made (Docker would quietly make
    /// an empty one in place of a missing one) and that sized ones have their device.
    async fn check_volumes(
        &self,
        docker: &bollard::Docker,
        space: &SpaceSpec,
    ) -> Result<(), RuntimeError> {
        for volume in &space.volumes {
            let name = volume_name(&space.id, &volume.name);
            let found = match docker.inspect_volume(&name).await {
                Ok(found) => found,
                Err(e) if is_not_found(&e) => {
                    return Err(RuntimeError::Failed(format!(
                        "volume `{}` ({name}) is missing: Hangar does not start a space on a \
                         new empty volume in its place. Restore the volume, or delete the space",
                        volume.name
                    )))
                }
                Err(e) => return Err(classify(&format!("inspecting volume {name}"), e)),
            };
            if owner_of(Some(&found.labels), &self.installation) == Owner::AnotherInstallation {
                return Err(RuntimeError::Failed(format!(
                    "volume {name} belongs to another Hangar installation"
                )));
            }
            if !found.options.contains_key("device") {
                continue;
            }
            let disks = self.disks.clone().map_err(|reason| {
                RuntimeError::Failed(format!(
                    "volume `{}` is a sized volume, and this host cannot attach it: {reason}",
                    volume.name
                ))
            })?;
            let (space_id, volume_name) = (space.id.to_string(), volume.name.clone());
            let attached = blocking(move || disks.attach(&space_id, &volume_name)).await?;
            if attached.is_none() {
                return Err(RuntimeError::Failed(format!(
                    "the disk image of volume `{}` is missing: restore it, or delete the space",
                    volume.name
                )));
            }
        }
        Ok(())
    }

    /// Installs (or, with `--allow-host-access`, removes) the network rules on the spaces
    /// network's bridge, unless checked there recently; the outcome is kept for
    /// [`Runtime::enforcement`] and logged when it changes.
    async fn guard_network(&self, docker: &bollard::Docker, network_id: &str) {
        let mut guard = self.guard.lock().await;
        let info = match docker
            .inspect_network(
                network_id,
                None::<bollard::query_parameters::InspectNetworkOptions>,
            )
            .await
        {
            Ok(info) => info,
            Err(e) => {
                tracing::warn!(error = %e, "cannot inspect the spaces network for its bridge");
                return;
            }
        };
        let bridge = info
            .options
            .as_ref()
            .and_then(|o| o.get("com.docker.network.bridge.name").cloned())
            .unwrap_or_else(|| format!("br-{}", network_id.get(..12).unwrap_or(network_id)));
        if let Some((checked, at)) = &guard.checked {
            if *checked == bridge && at.elapsed() < FIREWALL_RECHECK {
                return;
            }
        }
        let allow = self.allow_host_access;
        let target = bridge.clone();
        let status = blocking(move || {
            Ok(if allow {
                // Nothing to remove where iptables cannot be run.
                if firewall::host_support().is_ok() {
                    if let Err(e) = firewall::remove(&target) {
                        tracing::warn!(error = %e, "cannot remove the network rules");
                    }
                }
                Err("spaces may reach the host and 169.254.0.0/16 (--allow-host-access)".to_owned())
            } else {
                firewall::install(&target).map(|()| {
                    format!(
                        "enforced: spaces on {target} cannot reach the host or 169.254.0.0/16 \
                         (iptables chain {} of the mangle table)",
                        firewall::CHAIN
                    )
                })
            })
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        if status != guard.status {
            match &status {
                Ok(text) => tracing::info!("network isolation {text}"),
                Err(reason) => tracing::warn!("spaces are NOT kept from the host: {reason}"),
            }
        }
        guard.status = status;
        guard.checked = Some((bridge, Instant::now()));
    }

    /// Measures the spaces' sized volumes that were not measured recently.
    async fn measure(&self, spaces: &[SpaceId]) -> Option<HashMap<SpaceId, u64>> {
        let disks = self.disks.clone().ok()?;
        let stale: Vec<SpaceId> = {
            let known = self.usage.lock().unwrap_or_else(|p| p.into_inner());
            spaces
                .iter()
                .filter(|id| {
                    known
                        .get(*id)
                        .is_none_or(|(at, _)| at.elapsed() >= USAGE_FRESH_FOR)
                })
                .cloned()
                .collect()
        };
        if !stale.is_empty() {
            let measured = blocking(move || {
                Ok(stale
                    .into_iter()
                    .map(|id| {
                        let used = disks.space_used_bytes(id.as_str());
                        (id, used)
                    })
                    .collect::<Vec<_>>())
            })
            .await
            .unwrap_or_default();
            let mut known = self.usage.lock().unwrap_or_else(|p| p.into_inner());
            if known.len() > 4096 {
                known.retain(|_, (at, _)| at.elapsed() < Duration::from_secs(60));
            }
            let now = Instant::now();
            for (id, used) in measured {
                known.insert(id, (now, used));
            }
        }
        let known = self.usage.lock().unwrap_or_else(|p| p.into_inner());
        Some(
            spaces
                .iter()
                .filter_map(|id| known.get(id).map(|(_, used)| (id.clone(), *used)))
                .collect(),
        )
    }

    async fn ensure_image(
        &self,
        docker: &bollard::Docker,
        image: &str,
    ) -> Result<(), RuntimeError> {
        match docker.inspect_image(image).await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => self.pull(docker, image).await,
            Err(e) => Err(classify(&format!("inspecting image `{image}`"), e)),
        }
    }

    async fn start_once(&self, space: &SpaceSpec) -> Result<String, RuntimeError> {
        let docker = self.client().await?;
        self.ensure_image(&docker, &space.image).await?;
        self.check_volumes(&docker, space).await?;
        let network_id = self.spaces_network(&docker).await?;
        self.guard_network(&docker, &network_id).await;
        let env = space
            .env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>();
        let cmd = space
            .command
            .clone()
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into(), IDLE_COMMAND.into()]);
        let body = ContainerCreateBody {
            image: Some(space.image.clone()),
            cmd: Some(cmd),
            env: Some(env),
            hostname: Some(space.name.clone()),
            labels: Some(self.labels(space)),
            host_config: Some(self.host_config(space, &network_id)),
            ..Default::default()
        };
        let name = container_name(&space.id);
        let options = CreateContainerOptionsBuilder::new().name(&name).build();
        let created = match docker
            .create_container(Some(options.clone()), body.clone())
            .await
        {
            Ok(created) => created,
            // A container left by an interrupted start holds the name: replace it (only ours:
            // ids are unique, but nothing of another installation is ever removed).
            Err(DockerError::DockerResponseServerError {
                status_code: 409, ..
            }) => {
                let holder = docker
                    .inspect_container(
                        &name,
                        None::<bollard::query_parameters::InspectContainerOptions>,
                    )
                    .await
                    .map_err(|e| classify("inspecting the container in the way", e))?;
                let labels = holder.config.and_then(|c| c.labels);
                if owner_of(labels.as_ref(), &self.installation) == Owner::AnotherInstallation {
                    return Err(RuntimeError::Failed(format!(
                        "a container named {name} belongs to another Hangar installation"
                    )));
                }
                self.remove_container(&docker, &space.id).await?;
                docker
                    .create_container(Some(options), body)
                    .await
                    .map_err(|e| classify("creating the container", e))?
            }
            Err(e) => return Err(classify("creating the container", e)),
        };
        if let Err(e) = docker
            .start_container(
                &created.id,
                None::<bollard::query_parameters::StartContainerOptions>,
            )
            .await
        {
            // Leave nothing half-made behind.
            let _ = self.remove_container(&docker, &space.id).await;
            return Err(classify("starting the container", e));
        }
        Ok(created.id)
    }

    /// Pulls a missing image; the error says how to provide it when no registry answers.
    async fn pull(&self, docker: &bollard::Docker, image: &str) -> Result<(), RuntimeError> {
        use futures_util::StreamExt;
        tracing::info!(%image, "pulling a missing image");
        let options = CreateImageOptionsBuilder::new().from_image(image).build();
        let mut progress = docker.create_image(Some(options), None, None);
        while let Some(step) = progress.next().await {
            if let Err(e) = step {
                return Err(RuntimeError::Failed(format!(
                    "image `{image}` is not on the Docker host and pulling it failed ({e}): \
                     build or load it there (e.g. `scripts/images.sh`), or fix the template's image"
                )));
            }
        }
        Ok(())
    }

    /// The id of the shared spaces network, made on first use. Docker lets several networks
    /// share a name (and then refuses to start containers on it), so the network is found by
    /// label under a unique name; should several servers make one at once, all settle on the
    /// lowest id and the others are removed.
    async fn spaces_network(&self, docker: &bollard::Docker) -> Result<String, RuntimeError> {
        let mut known = self.network_id.lock().await;
        if let Some(id) = known.as_ref() {
            return Ok(id.clone());
        }
        let list = || async {
            let filter =
                HashMap::from([("label".to_owned(), vec![format!("{LABEL_NETWORK}=spaces")])]);
            let mut ids: Vec<String> = docker
                .list_networks(Some(
                    ListNetworksOptionsBuilder::new().filters(&filter).build(),
                ))
                .await
                .map_err(|e| classify("listing networks", e))?
                .into_iter()
                .filter_map(|n| n.id)
                .collect();
            ids.sort();
            Ok::<_, RuntimeError>(ids)
        };
        let mut ids = list().await?;
        if ids.is_empty() {
            let request = NetworkCreateRequest {
                name: format!(
                    "{SPACES_NETWORK}-{}",
                    &uuid::Uuid::new_v4().simple().to_string()[..8]
                ),
                driver: Some("bridge".into()),
                options: Some(HashMap::from([(
                    "com.docker.network.bridge.enable_icc".to_owned(),
                    "false".to_owned(),
                )])),
                labels: Some(HashMap::from([
                    (LABEL_MANAGED.to_owned(), "true".to_owned()),
                    (LABEL_NETWORK.to_owned(), "spaces".to_owned()),
                ])),
                ..Default::default()
            };
            docker
                .create_network(request)
                .await
                .map_err(|e| classify("creating the spaces network", e))?;
            ids = list().await?;
        }
        let Some(chosen) = ids.first().cloned() else {
            return Err(RuntimeError::Failed(
                "the spaces network vanished as it was made".into(),
            ));
        };
        for extra in ids.iter().skip(1) {
            // Only empty ones go; one in use stays until its containers are gone. The rules
            // of its bridge go with it (swept once the bridge is gone).
            if docker.remove_network(extra).await.is_ok() {
                if let Err(e) = blocking(firewall::sweep).await {
                    tracing::debug!(error = %e, "no network rules to sweep");
                }
            }
        }
        *known = Some(chosen.clone());
        Ok(chosen)
    }

    async fn remove_container(
        &self,
        docker: &bollard::Docker,
        space_id: &SpaceId,
    ) -> Result<(), RuntimeError> {
        let name = container_name(space_id);
        let stop = StopContainerOptionsBuilder::new()
            .t(STOP_GRACE_SECS)
            .build();
        match docker.stop_container(&name, Some(stop)).await {
            Ok(()) => {}
            Err(DockerError::DockerResponseServerError {
                status_code: 304 | 404,
                ..
            }) => {}
            Err(e) => return Err(classify(&format!("stopping container {name}"), e)),
        }
        let remove = RemoveContainerOptionsBuilder::new().force(true).build();
        match docker.remove_container(&name, Some(remove)).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            // Already being removed by an earlier request: that is the goal.
            Err(DockerError::DockerResponseServerError {
                status_code: 409, ..
            }) => Ok(()),
            Err(e) => Err(classify(&format!("removing container {name}"), e)),
        }
    }
}

/// Marks every process an exec starts (its environment is inherited), so that signals can
/// reach them all: Docker has no call to signal an exec.
const EXEC_MARK: &str = "HANGAR_EXEC";

/// An exec on the engine that runs it.
struct DockerExec {
    docker: bollard::Docker,
    id: String,
    container: String,
    /// The value of [`EXEC_MARK`] in its processes' environment.
    mark: String,
}

#[async_trait::async_trait]
impl ExecControl for DockerExec {
    async fn resize(&self, cols: u16, rows: u16) -> Result<(), RuntimeError> {
        self.docker
            .resize_exec(
                &self.id,
                bollard::exec::ResizeExecOptions {
                    height: rows,
                    width: cols,
                },
            )
            .await
            .map_err(|e| classify("resizing the terminal", e))
    }

    async fn exit_code(&self) -> Result<Option<i64>, RuntimeError> {
        let info = self
            .docker
            .inspect_exec(&self.id)
            .await
            .map_err(|e| classify("inspecting the exec", e))?;
        Ok(info.exit_code)
    }

    async fn signal(&self, signal: &str) -> Result<(), RuntimeError> {
        use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
        use futures_util::StreamExt;
        if !super::SIGNALS.contains(&signal) {
            return Err(RuntimeError::Failed(format!("no such signal: {signal}")));
        }
        // Every process of the container whose environment carries the mark.
        let script = format!(
            "for p in /proc/[0-9]*; do tr '\\000' '\\n' < $p/environ 2>/dev/null | grep -qx '{EXEC_MARK}={}' && kill -{signal} ${{p#/proc/}} 2>/dev/null; done; true",
            self.mark
        );
        let exec = self
            .docker
            .create_exec(
                &self.container,
                CreateExecOptions {
                    cmd: Some(vec!["/bin/sh".to_owned(), "-c".to_owned(), script]),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| classify("signalling a process in the space", e))?;
        let started = self
            .docker
            .start_exec(&exec.id, Some(StartExecOptions::default()))
            .await
            .map_err(|e| classify("signalling a process in the space", e))?;
        if let StartExecResults::Attached { mut output, .. } = started {
            while output.next().await.is_some() {}
        }
        Ok(())
    }
}

/// Starts a process in `container` on the engine `docker` runs (the Docker runtime's own
/// engine, or the node a Swarm task runs on).
/// The container's own address on the network `network_id`: never the host's loopback or
/// 0.0.0.0.
pub(crate) fn address_on(
    info: &bollard::models::ContainerInspectResponse,
    network_id: &str,
) -> Option<std::net::IpAddr> {
    info.network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref())
        .into_iter()
        .flatten()
        .find(|(_, endpoint)| endpoint.network_id.as_deref() == Some(network_id))
        .and_then(|(_, endpoint)| endpoint.ip_address.as_deref())
        .and_then(|ip| ip.parse::<std::net::IpAddr>().ok())
        .filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
}

pub(crate) async fn exec_in(
    docker: bollard::Docker,
    container: String,
    request: ExecRequest,
) -> Result<Exec, RuntimeError> {
    use bollard::container::LogOutput;
    use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
    use futures_util::StreamExt;
    let mark = uuid::Uuid::new_v4().simple().to_string();
    let mut env = request.env;
    env.push(format!("{EXEC_MARK}={mark}"));
    let exec = docker
        .create_exec(
            &container,
            CreateExecOptions {
                cmd: Some(request.cmd),
                env: Some(env),
                attach_stdin: Some(true),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                tty: Some(request.tty),
                detach_keys: Some(DETACH_KEYS.to_owned()),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| classify("starting a process in the space", e))?;
    let started = docker
        .start_exec(
            &exec.id,
            Some(StartExecOptions {
                detach: false,
                tty: request.tty,
                ..Default::default()
            }),
        )
        .await
        .map_err(|e| classify("starting a process in the space", e))?;
    let StartExecResults::Attached { output, input } = started else {
        return Err(RuntimeError::Failed(
            "the process in the space did not attach".into(),
        ));
    };
    let control = Arc::new(DockerExec {
        docker,
        id: exec.id,
        container,
        mark,
    });
    if let Some((cols, rows)) = request.size {
        // The process runs either way; a failed resize only leaves the default size.
        let _ = control.resize(cols, rows).await;
    }
    let output = output
        .filter_map(|item| async move {
            match item {
                Ok(LogOutput::StdErr { message }) => Some(Ok(ExecOutput::Stderr(message))),
                Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
                    Some(Ok(ExecOutput::Stdout(message)))
                }
                Ok(LogOutput::StdIn { .. }) => None,
                Err(e) => Some(Err(classify("reading from the space", e))),
            }
        })
        .boxed();
    Ok(Exec {
        output,
        input,
        control,
    })
}

#[async_trait::async_trait]
impl Runtime for DockerRuntime {
    async fn exec(&self, space_id: &SpaceId, request: ExecRequest) -> Result<Exec, RuntimeError> {
        let docker = self.client().await?;
        exec_in(docker, container_name(space_id), request).await
    }

    async fn reach(&self, space_id: &SpaceId) -> Result<Option<Reach>, RuntimeError> {
        let docker = self.client().await?;
        let info = match docker
            .inspect_container(
                &container_name(space_id),
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
        {
            Ok(info) => info,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(classify("inspecting the container", e)),
        };
        let labels = info.config.as_ref().and_then(|c| c.labels.as_ref());
        let ours = owner_of(labels, &self.installation) != Owner::AnotherInstallation
            && labels.and_then(|l| l.get(LABEL_SPACE)) == Some(&space_id.to_string());
        let running = info.state.as_ref().and_then(|s| s.running).unwrap_or(false);
        if !ours || !running {
            return Ok(None);
        }
        let network_id = self.spaces_network(&docker).await?;
        Ok(address_on(&info, &network_id).map(Reach::Address))
    }

    async fn create_volumes(&self, space: &SpaceSpec) -> Result<(), RuntimeError> {
        let docker = self.client().await?;
        for volume in &space.volumes {
            let mut labels = self.labels(space);
            labels.insert("io.hangar.volume".into(), volume.name.clone());
            labels.insert("io.hangar.size_gib".into(), volume.size_gib.to_string());
            // Sized: an ext4 filesystem of its size on a loop device, which the local driver
            // mounts (`discard`: what a space deletes is given back to the host's disk).
            let driver_opts = match &self.disks {
                Ok(disks) => {
                    let disks = disks.clone();
                    let (space_id, name) = (space.id.to_string(), volume.name.clone());
                    let size = u64::try_from(volume.size_gib).unwrap_or(0);
                    let device = blocking(move || disks.create(&space_id, &name, size)).await?;
                    Some(HashMap::from([
                        ("type".to_owned(), "ext4".to_owned()),
                        ("device".to_owned(), device.to_string_lossy().into_owned()),
                        ("o".to_owned(), "discard".to_owned()),
                    ]))
                }
                Err(_) => None,
            };
            let request = VolumeCreateRequest {
                name: Some(volume_name(&space.id, &volume.name)),
                driver: Some("local".to_owned()),
                driver_opts,
                labels: Some(labels),
                ..Default::default()
            };
            docker
                .create_volume(request)
                .await
                .map_err(|e| classify(&format!("creating volume {}", volume.name), e))?;
        }
        Ok(())
    }

    async fn start(&self, space: &SpaceSpec) -> Result<String, RuntimeError> {
        match self.start_once(space).await {
            // The shared network was replaced under us (another server settled on another):
            // look it up again, once.
            Err(RuntimeError::Failed(message))
                if message.contains("network") && message.contains("not found") =>
            {
                *self.network_id.lock().await = None;
                self.start_once(space).await
            }
            other => other,
        }
    }

    async fn stop(&self, space: &SpaceSpec) -> Result<(), RuntimeError> {
        let docker = self.client().await?;
        self.remove_container(&docker, &space.id).await
    }

    async fn remove(&self, space: &SpaceSpec) -> Result<(), RuntimeError> {
        let docker = self.client().await?;
        self.remove_container(&docker, &space.id).await?;
        for volume in &space.volumes {
            let name = volume_name(&space.id, &volume.name);
            let options = RemoveVolumeOptionsBuilder::new().force(true).build();
            match docker.remove_volume(&name, Some(options)).await {
                Ok(()) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(classify(&format!("removing volume {}", volume.name), e)),
            }
            // Once Docker no longer uses it: its device and image.
            if let Ok(disks) = &self.disks {
                let disks = disks.clone();
                let (space_id, name) = (space.id.to_string(), volume.name.clone());
                blocking(move || disks.remove(&space_id, &name)).await?;
            }
        }
        self.usage
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&space.id);
        Ok(())
    }
    async fn inspect(&self, space_id: &SpaceId) -> Result<Option<ContainerStatus>, RuntimeError> {
        let docker = self.client().await?;
        let name = container_name(space_id);
        match docker
            .inspect_container(
                &name,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
        {
            Ok(info) => {
                let labels = info.config.as_ref().and_then(|c| c.labels.as_ref());
                if owner_of(labels, &self.installation) == Owner::AnotherInstallation {
                    return Ok(None);
                }
                let state = info.state.unwrap_or_default();
                let running = state.running.unwrap_or(false);
                let detail = if state.oom_killed.unwrap_or(false) {
                    "the container ran out of memory and was killed".to_owned()
                } else {
                    format!(
                        "the container exited with code {}",
                        state.exit_code.unwrap_or_default()
                    )
                };
                Ok(Some(ContainerStatus {
                    id: info.id.unwrap_or(name),
                    running,
                    detail,
                }))
            }
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(classify("inspecting the container", e)),
        }
    }

    async fn list_managed(&self) -> Result<Vec<ManagedObject>, RuntimeError> {
        let docker = self.client().await?;
        let filter = HashMap::from([("label".to_owned(), vec![format!("{LABEL_MANAGED}=true")])]);
        let mut found = Vec::new();
        let mut keep = |kind: &str,
                        id: Option<String>,
                        name: String,
                        labels: Option<&HashMap<String, String>>| {
            let unlabelled = match owner_of(labels, &self.installation) {
                Owner::Us => false,
                Owner::Nobody => true,
                Owner::AnotherInstallation => return,
            };
            // The shared spaces network is nobody's to remove (see SPACES_NETWORK).
            if labels.is_some_and(|l| l.contains_key(LABEL_NETWORK)) {
                return;
            }
            found.push(ManagedObject {
                kind: kind.into(),
                id: id.unwrap_or_else(|| name.clone()),
                space_id: labels
                    .and_then(|l| l.get(LABEL_SPACE))
                    .cloned()
                    .unwrap_or_default(),
                name,
                unlabelled,
            });
        };
        let containers = docker
            .list_containers(Some(
                ListContainersOptionsBuilder::new()
                    .all(true)
                    .filters(&filter)
                    .build(),
            ))
            .await
            .map_err(|e| classify("listing containers", e))?;
        for c in containers {
            let name = c.names.and_then(|n| n.first().cloned()).unwrap_or_default();
            let name = name.trim_start_matches('/').to_owned();
            keep("container", c.id, name, c.labels.as_ref());
        }
        let volumes = docker
            .list_volumes(Some(
                ListVolumesOptionsBuilder::new().filters(&filter).build(),
            ))
            .await
            .map_err(|e| classify("listing volumes", e))?;
        for v in volumes.volumes.unwrap_or_default() {
            keep("volume", Some(v.name.clone()), v.name, Some(&v.labels));
        }
        let networks = docker
            .list_networks(Some(
                ListNetworksOptionsBuilder::new().filters(&filter).build(),
            ))
            .await
            .map_err(|e| classify("listing networks", e))?;
        for n in networks {
            keep(
                "network",
                n.id,
                n.name.unwrap_or_default(),
                n.labels.as_ref(),
            );
        }
        // Disk images (with their loop devices) live under this installation's own folder:
        // all of them are this installation's.
        if let Ok(disks) = &self.disks {
            let disks = disks.clone();
            let images = blocking(move || Ok(disks.list())).await?;
            found.extend(images.into_iter().map(|image| {
                let path = image.image.to_string_lossy().into_owned();
                ManagedObject {
                    kind: "disk".into(),
                    name: path.clone(),
                    id: path,
                    space_id: image.space_id,
                    unlabelled: false,
                }
            }));
        }
        Ok(found)
    }

    async fn remove_managed(&self, object: &ManagedObject) -> Result<(), RuntimeError> {
        let docker = self.client().await?;
        let result = match object.kind.as_str() {
            "container" => {
                let options = RemoveContainerOptionsBuilder::new().force(true).build();
                docker.remove_container(&object.id, Some(options)).await
            }
            "volume" => {
                let options = RemoveVolumeOptionsBuilder::new().force(true).build();
                docker.remove_volume(&object.id, Some(options)).await
            }
            "network" => docker.remove_network(&object.id).await,
            "disk" => {
                let disks = self.disks.clone().map_err(RuntimeError::Failed)?;
                let image = PathBuf::from(&object.id);
                return blocking(move || disks.remove_image(&image)).await;
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
        if let Ok(disks) = &self.disks {
            let disks = disks.clone();
            // After a reboot no image is attached: attach them all again.
            match blocking(move || Ok(disks.attach_all())).await {
                Ok(errors) => {
                    for error in errors {
                        tracing::warn!(%error, "cannot attach a volume's disk image");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot attach the volumes' disk images"),
            }
        }
        match self.client().await {
            Ok(docker) => match self.spaces_network(&docker).await {
                Ok(network_id) => self.guard_network(&docker, &network_id).await,
                Err(e) => tracing::warn!(error = %e, "cannot make the spaces network yet"),
            },
            Err(e) => tracing::warn!(error = %e, "Docker is not reachable yet"),
        }
        let enforcement = self.enforcement().await;
        match &enforcement.storage {
            Ok(text) => tracing::info!("volume sizes {text}"),
            Err(reason) => tracing::warn!(
                "volume sizes are NOT enforced (a space can fill the host's disk): {reason}"
            ),
        }
        if let Err(reason) = &enforcement.network {
            tracing::warn!("spaces are NOT kept from the host: {reason}");
        }
        enforcement
    }

    async fn enforcement(&self) -> Enforcement {
        let storage = match &self.disks {
            Ok(disks) => Ok(format!(
                "enforced: each volume is an ext4 image of its size on a loop device, in {}",
                disks.root().display()
            )),
            Err(reason) => Err(reason.clone()),
        };
        Enforcement {
            storage,
            network: self.guard.lock().await.status.clone(),
        }
    }

    async fn volume_usage(&self, space: &SpaceSpec) -> Vec<VolumeUsage> {
        let measured = match &self.disks {
            Ok(disks) => {
                let disks = disks.clone();
                let space_id = space.id.to_string();
                let names: Vec<String> = space.volumes.iter().map(|v| v.name.clone()).collect();
                blocking(move || {
                    Ok(names
                        .iter()
                        .map(|name| disks.used_bytes(&space_id, name))
                        .collect::<Vec<_>>())
                })
                .await
                .unwrap_or_default()
            }
            Err(_) => Vec::new(),
        };
        let usage: Vec<VolumeUsage> = space
            .volumes
            .iter()
            .enumerate()
            .map(|(i, volume)| {
                let used_bytes = measured.get(i).copied().flatten();
                VolumeUsage {
                    name: volume.name.clone(),
                    used_bytes,
                    enforced: used_bytes.is_some(),
                }
            })
            .collect();
        let total = usage.iter().filter_map(|u| u.used_bytes).sum();
        self.usage
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(space.id.clone(), (Instant::now(), total));
        usage
    }

    async fn storage_used(&self, spaces: &[SpaceId]) -> Option<HashMap<SpaceId, u64>> {
        self.measure(spaces).await
    }

    async fn stat_path(
        &self,
        space_id: &SpaceId,
        path: &str,
    ) -> Result<Option<PathInfo>, RuntimeError> {
        let docker = self.client().await?;
        files::stat_path_in(&docker, &container_name(space_id), path).await
    }

    async fn download_archive(
        &self,
        space_id: &SpaceId,
        path: &str,
    ) -> Result<ByteStream, RuntimeError> {
        let docker = self.client().await?;
        files::download_archive_of(&docker, &container_name(space_id), path).await
    }

    /// The one engine, as one node: its spaces all run and keep their volumes there.
    async fn nodes(&self) -> Result<Vec<NodeReport>, RuntimeError> {
        let docker = self.client().await?;
        let info = docker
            .info()
            .await
            .map_err(|e| classify("reading the engine's info", e))?;
        let filter = HashMap::from([(
            "label".to_owned(),
            vec![format!("{LABEL_INSTALLATION}={}", self.installation)],
        )]);
        let running = docker
            .list_containers(Some(
                ListContainersOptionsBuilder::new().filters(&filter).build(),
            ))
            .await
            .map_err(|e| classify("listing containers", e))?
            .into_iter()
            .filter_map(|c| c.labels.and_then(|mut l| l.remove(LABEL_SPACE)))
            .map(SpaceId::from)
            .collect();
        let mut holds: Vec<SpaceId> = docker
            .list_volumes(Some(
                ListVolumesOptionsBuilder::new().filters(&filter).build(),
            ))
            .await
            .map_err(|e| classify("listing volumes", e))?
            .volumes
            .unwrap_or_default()
            .into_iter()
            .filter_map(|mut v| v.labels.remove(LABEL_SPACE))
            .map(SpaceId::from)
            .collect();
        holds.sort();
        holds.dedup();
        Ok(vec![NodeReport {
            id: info.id.unwrap_or_default(),
            name: info.name.unwrap_or_default(),
            role: "engine".to_owned(),
            availability: "active".to_owned(),
            problem: None,
            nano_cpus: info.ncpu.unwrap_or(0) * 1_000_000_000,
            memory_bytes: info.mem_total.unwrap_or(0),
            running,
            holds,
        }])
    }

    async fn upload_archive(
        &self,
        space_id: &SpaceId,
        dir: &str,
        tar: UploadStream,
    ) -> Result<(), RuntimeError> {
        let docker = self.client().await?;
        files::upload_archive_to(&docker, &container_name(space_id), dir, tar).await
    }
}
