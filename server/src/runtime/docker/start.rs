//! Starting a space's container on the engine (its image pulled when missing, its volumes
//! checked, its limits and rights), and stopping it.

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, RemoveContainerOptionsBuilder,
    StopContainerOptionsBuilder,
};

use app::ids::SpaceId;

use super::{blocking, DockerRuntime};
use crate::runtime::container::{
    capabilities, command, compute_limits, environment, mount, pids_limit, shm_size, sysctls,
    tmpfs_mounts, STOP_GRACE_SECS,
};
use crate::runtime::error::{classify, found, removed, unchanged};
use crate::runtime::labels::{container_name, owner_of, volume_name, Owner};
use crate::runtime::{RuntimeError, SpaceSpec};

impl DockerRuntime {
    fn host_config(&self, space: &SpaceSpec, network_id: &str) -> HostConfig {
        let mut mounts: Vec<_> = space.volumes.iter().map(|v| mount(space, v)).collect();
        mounts.extend(tmpfs_mounts(space, self.memory_mib_per_cu));
        let (nano_cpus, memory) = compute_limits(
            space.compute_units,
            self.cpus_per_cu,
            self.memory_mib_per_cu,
        );
        let (cap_drop, cap_add) = capabilities(space);
        let security_opt = if space.privileged {
            vec![
                "seccomp=unconfined".to_owned(),
                "apparmor=unconfined".to_owned(),
            ]
        } else {
            // setuid programs do not raise privileges: a process keeps at most the rights of
            // the one that started it.
            vec!["no-new-privileges:true".to_owned()]
        };
        HostConfig {
            mounts: Some(mounts),
            network_mode: Some(network_id.to_owned()),
            nano_cpus,
            memory,
            pids_limit: Some(pids_limit(space, self.pids_per_cu)),
            cap_drop: Some(cap_drop),
            cap_add: Some(cap_add),
            security_opt: Some(security_opt),
            sysctls: Some(sysctls()),
            init: Some(false),
            shm_size: shm_size(space, self.memory_mib_per_cu),
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
            let inspected = docker.inspect_volume(&name).await;
            let Some(found) = found(&format!("inspecting volume {name}"), inspected)? else {
                return Err(RuntimeError::Failed(format!(
                    "volume `{}` ({name}) is missing: Hangar does not start a space on a new \
                     empty volume in its place. Restore the volume, or delete the space",
                    volume.name
                )));
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

    async fn ensure_image(
        &self,
        docker: &bollard::Docker,
        image: &str,
    ) -> Result<(), RuntimeError> {
        let inspected = docker.inspect_image(image).await;
        match found(&format!("inspecting image `{image}`"), inspected)? {
            Some(_) => Ok(()),
            None => self.pull(docker, image).await,
        }
    }

    pub(super) async fn start_once(&self, space: &SpaceSpec) -> Result<String, RuntimeError> {
        let docker = self.client().await?;
        // Independent looks at the engine and the host, each a round trip or a program run:
        // at once, not one after another, since each start waits for all of them.
        let network = async {
            let network_id = self.spaces_network(&docker).await?;
            let bridge = self.network_rules(&docker, &network_id).await;
            Ok::<_, RuntimeError>((network_id, bridge))
        };
        let (image, volumes, network) = tokio::join!(
            self.ensure_image(&docker, &space.image),
            self.check_volumes(&docker, space),
            network
        );
        image?;
        volumes?;
        let (network_id, bridge) = network?;
        // Stale pins go while the container is made: its own address is pinned afresh after.
        let (_, created) = tokio::join!(
            self.sweep_pins(&docker, &network_id),
            self.create_and_start(&docker, space, &network_id)
        );
        let created = created?;
        if let Err(e) = self
            .pin_container(&docker, &created, &network_id, bridge)
            .await
        {
            let _ = self.remove_container(&docker, &space.id).await;
            return Err(e);
        }
        Ok(created)
    }

    /// Creates the space's container on `network_id` and starts it; answers its id. A
    /// container that does not start is removed.
    async fn create_and_start(
        &self,
        docker: &bollard::Docker,
        space: &SpaceSpec,
        network_id: &str,
    ) -> Result<String, RuntimeError> {
        let body = ContainerCreateBody {
            image: Some(space.image.clone()),
            cmd: Some(command(space)),
            env: Some(environment(space)),
            hostname: Some(space.name.clone()),
            user: space.user.clone(),
            labels: Some(self.labels(space)),
            host_config: Some(self.host_config(space, network_id)),
            ..Default::default()
        };
        let name = container_name(&space.id);
        let options = CreateContainerOptionsBuilder::new().name(&name).build();
        let created = match docker
            .create_container(Some(options.clone()), body.clone())
            .await
            .map_err(|e| classify("creating the container", e))
        {
            Ok(created) => created,
            // A container left by an interrupted start holds the name: replace it (only ours:
            // ids are unique, but nothing of another installation is ever removed).
            Err(RuntimeError::Conflict(_)) => {
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
                self.remove_container(docker, &space.id).await?;
                docker
                    .create_container(Some(options), body)
                    .await
                    .map_err(|e| classify("creating the container", e))?
            }
            Err(e) => return Err(e),
        };
        if let Err(e) = docker
            .start_container(
                &created.id,
                None::<bollard::query_parameters::StartContainerOptions>,
            )
            .await
        {
            // Leave nothing half-made behind.
            let _ = self.remove_container(docker, &space.id).await;
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

    /// Stops and removes the space's container; absent is fine.
    pub(super) async fn remove_container(
        &self,
        docker: &bollard::Docker,
        space_id: &SpaceId,
    ) -> Result<(), RuntimeError> {
        let name = container_name(space_id);
        let stop = StopContainerOptionsBuilder::new()
            .t(STOP_GRACE_SECS)
            .build();
        let stopped = docker.stop_container(&name, Some(stop)).await;
        // Stopped already (not modified) or gone: that is the goal.
        if !stopped.as_ref().is_err_and(unchanged) {
            removed(&format!("stopping container {name}"), stopped)?;
        }
        let remove = RemoveContainerOptionsBuilder::new().force(true).build();
        match docker
            .remove_container(&name, Some(remove))
            .await
            .map_err(|e| classify(&format!("removing container {name}"), e))
        {
            // Already being removed by an earlier request (a conflict): that is the goal.
            Ok(()) | Err(RuntimeError::NotFound { .. } | RuntimeError::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
