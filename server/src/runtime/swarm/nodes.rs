//! The swarm's nodes as admins see them (capacity, what runs and what is kept where), and
//! moving a stopped space to another node: its volumes are copied engine to engine through
//! Docker's archive API (a stopped helper container on each side mounts the volume), the
//! space is pinned to the new node, and only then are the old volumes removed.

use std::collections::HashMap;

use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType, VolumeCreateRequest};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, DownloadFromContainerOptionsBuilder,
    ListServicesOptionsBuilder, RemoveContainerOptionsBuilder, RemoveVolumeOptionsBuilder,
    UploadToContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;

use app::ids::SpaceId;

use super::{
    node_name, node_unusable, running_tasks, swarm_nodes, task_labels, task_state, SwarmRuntime,
    LABEL_NODE, NODE_PING_TIMEOUT,
};
use crate::runtime::error::{classify, found};
use crate::runtime::labels::{container_name, labelled, volume_name, volumes};
use crate::runtime::{
    Moved, NodeReport, RuntimeError, SpaceSpec, LABEL_INSTALLATION, LABEL_MANAGED, LABEL_SPACE,
};

/// Where the helper containers mount the volume being copied.
const MOUNT: &str = "/hangar-move";

impl SwarmRuntime {
    pub(super) async fn node_reports(&self) -> Result<Vec<NodeReport>, RuntimeError> {
        let manager = self.manager().await?;
        let nodes = swarm_nodes(&manager).await?;
        let tasks = running_tasks(&manager).await?;
        let ours = labelled(vec![format!(
            "{LABEL_INSTALLATION}={}",
            self.settings.installation
        )]);
        let options = ListServicesOptionsBuilder::new().filters(&ours).build();
        let services = manager
            .list_services(Some(options))
            .await
            .map_err(|e| classify("listing the swarm's services", e))?;
        // Where each space is kept: its service's pin.
        let pins: Vec<(String, SpaceId)> = services
            .into_iter()
            .filter_map(|service| {
                let labels = service.spec?.labels?;
                Some((
                    labels.get(LABEL_NODE)?.clone(),
                    SpaceId::from(labels.get(LABEL_SPACE)?.as_str()),
                ))
            })
            .collect();
        // Every node's engine is asked at once: a dead one costs its timeout once, not per node.
        let answers = futures_util::future::join_all(nodes.iter().map(|node| async move {
            match self.engine_of(node) {
                Ok(engine) => matches!(
                    tokio::time::timeout(NODE_PING_TIMEOUT, engine.ping()).await,
                    Ok(Ok(_))
                ),
                Err(_) => false,
            }
        }))
        .await;
        let mut reports = Vec::new();
        for (node, answers) in nodes.iter().zip(answers) {
            let id = node.id.clone().unwrap_or_default();
            let problem = node_unusable(node)
                .map(|why| format!("the node {why}"))
                .or_else(|| {
                    (!answers).then(|| {
                        "its engine does not answer (or has no io.hangar.engine label)".to_owned()
                    })
                });
            let resources = node.description.as_ref().and_then(|d| d.resources.as_ref());
            let running = tasks
                .iter()
                .filter(|t| t.node_id.as_deref() == Some(id.as_str()))
                .filter(|t| task_state(t) == Some(bollard::models::TaskState::RUNNING))
                .filter_map(|t| {
                    let labels = task_labels(t)?;
                    (labels.get(LABEL_INSTALLATION) == Some(&self.settings.installation))
                        .then(|| labels.get(LABEL_SPACE).map(|s| SpaceId::from(s.as_str())))
                        .flatten()
                })
                .collect();
            reports.push(NodeReport {
                name: node_name(node),
                role: node
                    .spec
                    .as_ref()
                    .and_then(|s| s.role)
                    .map_or_else(|| "worker".to_owned(), |r| r.to_string()),
                availability: node
                    .spec
                    .as_ref()
                    .and_then(|s| s.availability)
                    .map_or_else(|| "active".to_owned(), |a| a.to_string()),
                problem,
                nano_cpus: resources.and_then(|r| r.nano_cpus).unwrap_or(0),
                memory_bytes: resources.and_then(|r| r.memory_bytes).unwrap_or(0),
                running,
                holds: pins
                    .iter()
                    .filter(|(pin, _)| *pin == id)
                    .map(|(_, space)| space.clone())
                    .collect(),
                id,
            });
        }
        reports.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(reports)
    }

    pub(super) async fn move_to(&self, space: &SpaceSpec, to: &str) -> Result<Moved, RuntimeError> {
        let manager = self.manager().await?;
        let from_id = self.volume_node(&manager, space).await?.ok_or_else(|| {
            RuntimeError::Failed(
                "the space has no volumes on any node yet: it starts wherever there is room".into(),
            )
        })?;
        if self.locate(&space.id).await.is_ok() {
            return Err(RuntimeError::Failed(
                "the space is running: stop it before moving it".into(),
            ));
        }
        let nodes = swarm_nodes(&manager).await?;
        let target = nodes
            .iter()
            .find(|n| n.id.as_deref() == Some(to) || node_name(n) == to)
            .ok_or_else(|| {
                RuntimeError::Failed(format!(
                    "no node `{to}` in the swarm: give a node's id or hostname from the nodes list"
                ))
            })?;
        let source = nodes
            .iter()
            .find(|n| n.id.as_deref() == Some(from_id.as_str()))
            .ok_or_else(|| {
                RuntimeError::Failed(format!(
                    "node {from_id}, which holds the space's volumes, has left the swarm: its \
                     data cannot be copied from there"
                ))
            })?;
        let (from, to_name) = (node_name(source), node_name(target));
        let target_id = target.id.clone().unwrap_or_default();
        if target_id == from_id {
            return Err(RuntimeError::Failed(format!(
                "the space is already on {from}"
            )));
        }
        if let Some(why) = node_unusable(target) {
            return Err(RuntimeError::Failed(format!(
                "node {to_name} {why}: choose an active, ready node"
            )));
        }
        let source_engine = self.engine_of(source)?;
        let target_engine = self.engine_of(target)?;
        for (engine, name) in [(&source_engine, &from), (&target_engine, &to_name)] {
            if !matches!(
                tokio::time::timeout(NODE_PING_TIMEOUT, engine.ping()).await,
                Ok(Ok(_))
            ) {
                return Err(RuntimeError::Failed(format!(
                    "node {name}'s engine does not answer: the volumes can only be copied \
                     between live engines"
                )));
            }
        }
        let mut made: Vec<String> = Vec::new();
        self.refuse_existing_volumes(space, &target_engine).await?;
        let copied = async {
            if self.settings.sized_volumes {
                // Sized on the target too (a space made before sizes were enforced becomes
                // sized by moving; data larger than its size fails the copy and stays put).
                made.extend(
                    space
                        .volumes
                        .iter()
                        .map(|v| volume_name(&space.id, &v.name)),
                );
                self.make_disks(&target_engine, target, space).await?;
            }
            self.copy_volumes(space, &source_engine, &target_engine, &mut made)
                .await
        }
        .await;
        let bytes = match copied {
            Ok(bytes) => bytes,
            Err(e) => {
                // The space stays where it was, with its data; nothing half-copied is left.
                for volume in &made {
                    let options = RemoveVolumeOptionsBuilder::new().force(true).build();
                    let _ = target_engine.remove_volume(volume, Some(options)).await;
                }
                if let Err(e) = self.remove_disks(&target_engine, target, space).await {
                    tracing::warn!(space = %space.id, node = %to_name, error = %e,
                        "the disks of a move that failed stay on its target node");
                }
                return Err(e);
            }
        };
        if !self.scale(&manager, &space.id, 0, Some(&target_id)).await? {
            return Err(RuntimeError::Failed(
                "the space's service is gone: start the space once, then move it".into(),
            ));
        }
        // The space now starts on the target; its old copy goes (a failure here leaves a
        // stale copy behind, never the space without its data).
        if let Err(e) = self.remove_space_data(&source_engine, source, space).await {
            tracing::warn!(space = %space.id, node = %from, error = %e,
                "the moved space's old volumes stay on its old node: remove them there");
        }
        Ok(Moved {
            from,
            to: to_name,
            bytes,
        })
    }

    /// Refuses a move onto a node that already has a volume of the space (not its current
    /// data, which is on the node it moves from).
    async fn refuse_existing_volumes(
        &self,
        space: &SpaceSpec,
        target: &Docker,
    ) -> Result<(), RuntimeError> {
        for volume in &space.volumes {
            let name = volume_name(&space.id, &volume.name);
            let inspected = target.inspect_volume(&name).await;
            if found("inspecting the target's volumes", inspected)?.is_some() {
                return Err(RuntimeError::Failed(format!(
                    "a volume {name} already exists on the target node: remove it there (it is \
                     not this space's current data), then move again"
                )));
            }
        }
        Ok(())
    }

    /// Copies each of the space's volumes from one engine to the other; the volumes it makes
    /// on the target go into `made` (those already in it were made sized, and are filled).
    /// Returns the bytes copied.
    async fn copy_volumes(
        &self,
        space: &SpaceSpec,
        source: &Docker,
        target: &Docker,
        made: &mut Vec<String>,
    ) -> Result<u64, RuntimeError> {
        let mut bytes = 0;
        for volume in &space.volumes {
            let name = volume_name(&space.id, &volume.name);
            let by_name = HashMap::from([("name".to_owned(), vec![name.clone()])]);
            let existing = volumes(source, &by_name, "listing the source's volumes")
                .await?
                .into_iter()
                .find(|v| v.name == name)
                .ok_or_else(|| {
                    RuntimeError::Failed(format!(
                        "volume `{}` ({name}) is missing on the space's node: nothing to copy",
                        volume.name
                    ))
                })?;
            if !made.contains(&name) {
                target
                    .create_volume(VolumeCreateRequest {
                        name: Some(name.clone()),
                        driver: Some("local".to_owned()),
                        labels: Some(existing.labels.clone()),
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| classify("creating the volume on the target node", e))?;
                made.push(name.clone());
            }
            let from_helper = self.helper(source, space, &name).await?;
            let to_helper = match self.helper(target, space, &name).await {
                Ok(helper) => helper,
                Err(e) => {
                    remove_helper(source, &from_helper).await;
                    return Err(e);
                }
            };
            let copied = copy_archive(source, &from_helper, target, &to_helper).await;
            remove_helper(source, &from_helper).await;
            remove_helper(target, &to_helper).await;
            bytes += copied?;
        }
        Ok(bytes)
    }

    /// A created, never started container of the space's image on `engine` that mounts the
    /// volume `volume` at [`MOUNT`] (the archive API reads and writes a stopped container's
    /// volumes).
    async fn helper(
        &self,
        engine: &Docker,
        space: &SpaceSpec,
        volume: &str,
    ) -> Result<String, RuntimeError> {
        let body = ContainerCreateBody {
            image: Some(space.image.clone()),
            cmd: Some(vec!["true".to_owned()]),
            labels: Some(HashMap::from([
                (LABEL_MANAGED.to_owned(), "true".to_owned()),
                (LABEL_SPACE.to_owned(), space.id.to_string()),
                (
                    LABEL_INSTALLATION.to_owned(),
                    self.settings.installation.clone(),
                ),
            ])),
            network_disabled: Some(true),
            host_config: Some(HostConfig {
                mounts: Some(vec![Mount {
                    target: Some(MOUNT.to_owned()),
                    source: Some(volume.to_owned()),
                    typ: Some(MountType::VOLUME),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let name = format!(
            "{}-move-{}",
            container_name(&space.id),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let options = CreateContainerOptionsBuilder::new().name(&name).build();
        let created = engine
            .create_container(Some(options.clone()), body.clone())
            .await;
        if let Some(created) = found("creating a copy helper", created)? {
            return Ok(created.id);
        }
        // The image is not on that node yet.
        let pull = CreateImageOptionsBuilder::new()
            .from_image(&space.image)
            .build();
        let mut progress = engine.create_image(Some(pull), None, None);
        while let Some(step) = progress.next().await {
            step.map_err(|e| {
                RuntimeError::Failed(format!(
                    "image `{}` is not on the target node and pulling it failed ({e}): load it \
                     there first",
                    space.image
                ))
            })?;
        }
        engine
            .create_container(Some(options), body)
            .await
            .map(|created| created.id)
            .map_err(|e| classify("creating a copy helper", e))
    }
}

async fn remove_helper(engine: &Docker, id: &str) {
    let options = RemoveContainerOptionsBuilder::new().force(true).build();
    let _ = engine.remove_container(id, Some(options)).await;
}

/// Streams the helper's volume from one engine into the other's (uids, gids and modes as
/// they were: no `copyUIDGID`); returns the archive's size.
async fn copy_archive(
    source: &Docker,
    from: &str,
    target: &Docker,
    to: &str,
) -> Result<u64, RuntimeError> {
    let counted = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = counted.clone();
    // The archive's top entry is the mount's own name: extracted at `/`, it lands back on
    // the target's mount, the volume's root included.
    let archive = source
        .download_from_container(
            from,
            Some(
                DownloadFromContainerOptionsBuilder::new()
                    .path(MOUNT)
                    .build(),
            ),
        )
        .map(move |chunk| {
            chunk
                .inspect(|bytes| {
                    counter.fetch_add(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
                })
                .map_err(std::io::Error::other)
        });
    target
        .upload_to_container(
            to,
            Some(UploadToContainerOptionsBuilder::new().path("/").build()),
            bollard::body_try_stream(archive),
        )
        .await
        .map_err(|e| classify("copying the volume between nodes", e))?;
    Ok(counted.load(std::sync::atomic::Ordering::Relaxed))
}
