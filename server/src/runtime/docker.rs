//! [`Runtime`] on a Docker engine through bollard: named volumes, one container per space
//! with CPU and memory limits from its compute units, labelled as Hangar's.

use std::collections::HashMap;
use std::sync::Arc;

use bollard::errors::Error as DockerError;
use bollard::models::{
    ContainerCreateBody, HostConfig, Mount, MountType, NetworkCreateRequest, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, ListContainersOptionsBuilder,
    ListNetworksOptionsBuilder, ListVolumesOptionsBuilder, RemoveContainerOptionsBuilder,
    RemoveVolumeOptionsBuilder, StopContainerOptionsBuilder,
};

use super::{
    ContainerStatus, ManagedObject, Runtime, RuntimeError, SpaceSpec, LABEL_MANAGED, LABEL_OWNER,
    LABEL_SPACE,
};
use crate::docker::DockerClient;

/// Seconds a container gets to stop before it is killed.
const STOP_GRACE_SECS: i32 = 10;

/// What a space runs when its template names no command: a shell that idles until stopped
/// and exits at once on SIGTERM.
const IDLE_COMMAND: &str = "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done";

pub struct DockerRuntime {
    docker: Arc<DockerClient>,
    cpus_per_cu: f64,
    memory_mib_per_cu: u64,
}

pub fn container_name(space_id: &str) -> String {
    format!("hangar-{space_id}")
}

/// Each space has a bridge network of its own, so spaces cannot reach each other.
pub fn network_name(space_id: &str) -> String {
    format!("hangar-net-{space_id}")
}

pub fn volume_name(space_id: &str, volume: &str) -> String {
    format!("hangar-{space_id}-{volume}")
}

fn labels(space: &SpaceSpec) -> HashMap<String, String> {
    HashMap::from([
        (LABEL_MANAGED.to_owned(), "true".to_owned()),
        (LABEL_SPACE.to_owned(), space.id.clone()),
        (LABEL_OWNER.to_owned(), space.owner.clone()),
    ])
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
    pub fn new(docker: Arc<DockerClient>, cpus_per_cu: f64, memory_mib_per_cu: u64) -> Self {
        Self {
            docker,
            cpus_per_cu,
            memory_mib_per_cu,
        }
    }

    async fn client(&self) -> Result<bollard::Docker, RuntimeError> {
        self.docker.get().await.map_err(RuntimeError::Unavailable)
    }

    fn host_config(&self, space: &SpaceSpec) -> HostConfig {
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
            network_mode: Some(network_name(&space.id)),
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

    async fn ensure_network(
        &self,
        docker: &bollard::Docker,
        space: &SpaceSpec,
    ) -> Result<(), RuntimeError> {
        let request = NetworkCreateRequest {
            name: network_name(&space.id),
            driver: Some("bridge".into()),
            labels: Some(labels(space)),
            ..Default::default()
        };
        // Docker allows several networks of one name: reuse one left by an earlier start.
        match docker
            .inspect_network(
                &request.name,
                None::<bollard::query_parameters::InspectNetworkOptions>,
            )
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(classify("inspecting the space's network", e)),
        }
        match docker.create_network(request).await {
            Ok(_) => Ok(()),
            Err(e) => Err(classify("creating the space's network", e)),
        }
    }

    /// Removes every network of the space's name (a race between replicas can leave two).
    async fn remove_network(
        &self,
        docker: &bollard::Docker,
        space_id: &str,
    ) -> Result<(), RuntimeError> {
        let name = network_name(space_id);
        let filter = HashMap::from([("name".to_owned(), vec![name.clone()])]);
        let networks = docker
            .list_networks(Some(
                ListNetworksOptionsBuilder::new().filters(&filter).build(),
            ))
            .await
            .map_err(|e| classify("listing the space's networks", e))?;
        // The name filter matches substrings: keep exact matches only.
        for network in networks
            .into_iter()
            .filter(|n| n.name.as_deref() == Some(name.as_str()))
        {
            let Some(id) = network.id else { continue };
            match docker.remove_network(&id).await {
                Ok(()) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(classify("removing the space's network", e)),
            }
        }
        Ok(())
    }

    async fn remove_container(
        &self,
        docker: &bollard::Docker,
        space_id: &str,
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

#[async_trait::async_trait]
impl Runtime for DockerRuntime {
    async fn create_volumes(&self, space: &SpaceSpec) -> Result<(), RuntimeError> {
        let docker = self.client().await?;
        // The network is made with the space, not at each start: creating one costs about
        // as much as starting the container.
        self.ensure_network(&docker, space).await?;
        for volume in &space.volumes {
            let mut labels = labels(space);
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
        let docker = self.client().await?;
        self.ensure_image(&docker, &space.image).await?;
        self.ensure_network(&docker, space).await?;
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
            labels: Some(labels(space)),
            host_config: Some(self.host_config(space)),
            ..Default::default()
        };
        let name = container_name(&space.id);
        let options = CreateContainerOptionsBuilder::new().name(&name).build();
        let created = match docker
            .create_container(Some(options.clone()), body.clone())
            .await
        {
            Ok(created) => created,
            // A container left by an interrupted start holds the name: replace it.
            Err(DockerError::DockerResponseServerError {
                status_code: 409, ..
            }) => {
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

    async fn stop(&self, space: &SpaceSpec) -> Result<(), RuntimeError> {
        let docker = self.client().await?;
        self.remove_container(&docker, &space.id).await
    }

    async fn remove(&self, space: &SpaceSpec) -> Result<(), RuntimeError> {
        let docker = self.client().await?;
        self.remove_container(&docker, &space.id).await?;
        self.remove_network(&docker, &space.id).await?;
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

    async fn inspect(&self, space_id: &str) -> Result<Option<ContainerStatus>, RuntimeError> {
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
            let labels = c.labels.unwrap_or_default();
            let name = c.names.and_then(|n| n.first().cloned()).unwrap_or_default();
            found.push(ManagedObject {
                kind: "container".into(),
                id: c.id.unwrap_or_else(|| name.clone()),
                name: name.trim_start_matches('/').to_owned(),
                space_id: labels.get(LABEL_SPACE).cloned().unwrap_or_default(),
            });
        }
        let volumes = docker
            .list_volumes(Some(
                ListVolumesOptionsBuilder::new().filters(&filter).build(),
            ))
            .await
            .map_err(|e| classify("listing volumes", e))?;
        for v in volumes.volumes.unwrap_or_default() {
            found.push(ManagedObject {
                kind: "volume".into(),
                id: v.name.clone(),
                space_id: v.labels.get(LABEL_SPACE).cloned().unwrap_or_default(),
                name: v.name,
            });
        }
        let networks = docker
            .list_networks(Some(
                ListNetworksOptionsBuilder::new().filters(&filter).build(),
            ))
            .await
            .map_err(|e| classify("listing networks", e))?;
        for n in networks {
            let labels = n.labels.unwrap_or_default();
            found.push(ManagedObject {
                kind: "network".into(),
                id: n.id.unwrap_or_default(),
                space_id: labels.get(LABEL_SPACE).cloned().unwrap_or_default(),
                name: n.name.unwrap_or_default(),
            });
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
}
