//! [`Runtime`] on a Docker engine through bollard: named volumes, one container per space
//! with CPU and memory limits from its compute units, labelled as Hangar's.

mod files;

use std::collections::HashMap;
use std::sync::Arc;

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
use super::{
    ByteStream, ContainerStatus, Exec, ExecControl, ExecOutput, ExecRequest, ManagedObject,
    PathInfo, Runtime, RuntimeError, SpaceSpec, UploadStream, LABEL_INSTALLATION, LABEL_MANAGED,
    LABEL_OWNER, LABEL_SPACE,
};

/// Docker swallows its detach keys (Ctrl-P Ctrl-Q by default) from an exec's input. A long
/// sequence nobody types instead: a partial match is passed on once it stops matching.
const DETACH_KEYS: &str = "ctrl-],ctrl-^,ctrl-_,ctrl-],ctrl-^,ctrl-_,ctrl-],ctrl-^";

/// Seconds a container gets to stop before it is killed.
const STOP_GRACE_SECS: i32 = 10;

/// What a space runs when its template names no command: a shell that idles until stopped
/// and exits at once on SIGTERM.
const IDLE_COMMAND: &str = "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done";

pub struct DockerRuntime {
    docker: Arc<DockerClient>,
    /// Labels every object this runtime makes; objects of other installations are not seen.
    installation: String,
    network_id: tokio::sync::Mutex<Option<String>>,
    cpus_per_cu: f64,
    memory_mib_per_cu: u64,
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
const LABEL_NETWORK: &str = "io.hangar.network";

pub fn volume_name(space_id: &SpaceId, volume: &str) -> String {
    format!("hangar-{space_id}-{volume}")
}

/// Whose an object is, by its labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    Us,
    /// Made before installations had ids.
    Nobody,
    AnotherInstallation,
}

fn owner_of(labels: Option<&HashMap<String, String>>, installation: &str) -> Owner {
    match labels.and_then(|l| l.get(LABEL_INSTALLATION)) {
        Some(id) if id == installation => Owner::Us,
        Some(_) => Owner::AnotherInstallation,
        None => Owner::Nobody,
    }
}

fn is_not_found(error: &DockerError) -> bool {
    matches!(
        error,
        DockerError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

fn classify(context: &str, error: DockerError) -> RuntimeError {
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
    pub fn new(
        docker: Arc<DockerClient>,
        installation: String,
        cpus_per_cu: f64,
        memory_mib_per_cu: u64,
    ) -> Self {
        Self {
            docker,
            installation,
            network_id: tokio::sync::Mutex::new(None),
            cpus_per_cu,
            memory_mib_per_cu,
        }
    }

    fn labels(&self, space: &SpaceSpec) -> HashMap<String, String> {
        HashMap::from([
            (LABEL_MANAGED.to_owned(), "true".to_owned()),
            (LABEL_INSTALLATION.to_owned(), self.installation.clone()),
            (LABEL_SPACE.to_owned(), space.id.to_string()),
            (LABEL_OWNER.to_owned(), space.owner.clone()),
        ])
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
        // 0 CU: no limits (admin templates).
        let (nano_cpus, memory) = if space.compute_units > 0 {
            let cu = space.compute_units as f64;
            (
                Some((cu * self.cpus_per_cu * 1e9) as i64),
                Some(space.compute_units * self.memory_mib_per_cu as i64 * 1024 * 1024),
            )
        } else {
            (None, None)
        };
        HostConfig {
            mounts: Some(mounts),
            network_mode: Some(network_id.to_owned()),
            nano_cpus,
            memory,
            init: Some(false),
            ..Default::default()
        }
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
        let network_id = self.spaces_network(&docker).await?;
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
            // Only empty ones go; one in use stays until its containers are gone.
            let _ = docker.remove_network(extra).await;
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

/// An exec on the engine that runs it.
struct DockerExec {
    docker: bollard::Docker,
    id: String,
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
}

#[async_trait::async_trait]
impl Runtime for DockerRuntime {
    async fn exec(&self, space_id: &SpaceId, request: ExecRequest) -> Result<Exec, RuntimeError> {
        use bollard::container::LogOutput;
        use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
        use futures_util::StreamExt;
        let docker = self.client().await?;
        let exec = docker
            .create_exec(
                &container_name(space_id),
                CreateExecOptions {
                    cmd: Some(request.cmd),
                    env: Some(request.env),
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

    async fn create_volumes(&self, space: &SpaceSpec) -> Result<(), RuntimeError> {
        let docker = self.client().await?;
        for volume in &space.volumes {
            let mut labels = self.labels(space);
            labels.insert("io.hangar.volume".into(), volume.name.clone());
            labels.insert("io.hangar.size_gib".into(), volume.size_gib.to_string());
            let request = VolumeCreateRequest {
                name: Some(volume_name(&space.id, &volume.name)),
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
        }
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

    async fn stat_path(
        &self,
        space_id: &SpaceId,
        path: &str,
    ) -> Result<Option<PathInfo>, RuntimeError> {
        self.stat_path_in(space_id, path).await
    }

    async fn download_archive(
        &self,
        space_id: &SpaceId,
        path: &str,
    ) -> Result<ByteStream, RuntimeError> {
        self.download_archive_of(space_id, path).await
    }

    async fn upload_archive(
        &self,
        space_id: &SpaceId,
        dir: &str,
        tar: UploadStream,
    ) -> Result<(), RuntimeError> {
        self.upload_archive_to(space_id, dir, tar).await
    }
}
