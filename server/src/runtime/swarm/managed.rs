//! The objects an installation made on the swarm, as the orphan sweep sees them (its services
//! and overlays on the manager, its volumes on every node whose engine answers), and the
//! removal of a space's data from a node.

use std::collections::HashMap;
use std::time::Instant;

use bollard::models::Node;
use bollard::query_parameters::{
    ListServicesOptionsBuilder, RemoveContainerOptionsBuilder, RemoveVolumeOptionsBuilder,
};
use bollard::Docker;

use super::{node_name, swarm_nodes, SwarmRuntime, NODE_PING_TIMEOUT, POLL, STOP_TIMEOUT};
use crate::runtime::error::classify;
use crate::runtime::labels::{containers, labelled, networks, volume_name, volumes, LABEL_NETWORK};
use crate::runtime::managed::{managed_filter, removed_object, Listing};
use crate::runtime::{ManagedObject, RuntimeError, SpaceSpec, LABEL_SPACE};

impl SwarmRuntime {
    /// See [`crate::runtime::Runtime::list_managed`].
    pub(super) async fn managed(&self) -> Result<Vec<ManagedObject>, RuntimeError> {
        let manager = self.manager().await?;
        let filter = managed_filter();
        let mut listing = Listing::new(&self.settings.installation);
        let mut keep =
            |kind: &str, id: String, name: String, labels: Option<&HashMap<String, String>>| {
                // The overlay all spaces shared before each had its own belongs to nobody.
                let shared_overlay = labels.and_then(|l| l.get(LABEL_NETWORK)).is_some()
                    && labels.and_then(|l| l.get(LABEL_SPACE)).is_none();
                if !shared_overlay {
                    listing.keep(kind, id, name, labels);
                }
            };
        let options = ListServicesOptionsBuilder::new().filters(&filter).build();
        let services = manager.list_services(Some(options)).await;
        for service in services.map_err(|e| classify("listing services", e))? {
            let spec = service.spec.unwrap_or_default();
            let name = spec.name.clone().unwrap_or_default();
            keep(
                "service",
                service.id.unwrap_or_else(|| name.clone()),
                name,
                spec.labels.as_ref(),
            );
        }
        for network in networks(&manager, &filter).await? {
            let name = network.name.clone().unwrap_or_default();
            keep(
                "network",
                network.id.clone().unwrap_or_else(|| name.clone()),
                name,
                network.labels.as_ref(),
            );
        }
        for node in swarm_nodes(&manager).await? {
            let Ok(engine) = self.engine_of(&node) else {
                continue;
            };
            let listed = tokio::time::timeout(
                NODE_PING_TIMEOUT * 5,
                volumes(&engine, &filter, "listing volumes"),
            )
            .await;
            let Ok(Ok(volumes)) = listed else {
                tracing::warn!(node = %node_name(&node), "cannot list the volumes of a node");
                continue;
            };
            let node_id = node.id.clone().unwrap_or_default();
            for volume in volumes {
                keep(
                    "volume",
                    format!("{node_id}/{}", volume.name),
                    volume.name.clone(),
                    Some(&volume.labels),
                );
            }
        }
        Ok(listing.found)
    }

    /// See [`crate::runtime::Runtime::remove_managed`].
    pub(super) async fn remove_object(&self, object: &ManagedObject) -> Result<(), RuntimeError> {
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
                self.remove_orphan_volume(&engine, &node, name).await
            }
            other => {
                return Err(RuntimeError::Failed(format!(
                    "unknown object kind `{other}`"
                )))
            }
        };
        removed_object(object, result)
    }

    /// Removes the space's ended containers and its volumes from one node's engine.
    pub(super) async fn remove_space_data(
        &self,
        engine: &Docker,
        node: &Node,
        space: &SpaceSpec,
    ) -> Result<(), RuntimeError> {
        // Swarm keeps the containers of ended tasks a while; they hold the volumes.
        let filter = labelled(vec![format!("{LABEL_SPACE}={}", space.id)]);
        let doing = format!("listing containers on node {}", node_name(node));
        let ended = containers(engine, &filter, &doing).await?;
        for container in ended.into_iter().filter_map(|c| c.id) {
            let options = RemoveContainerOptionsBuilder::new().force(true).build();
            match engine
                .remove_container(&container, Some(options))
                .await
                .map_err(|e| classify("removing an ended container of the space", e))
            {
                Ok(()) | Err(RuntimeError::NotFound { .. } | RuntimeError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        for volume in &space.volumes {
            let name = volume_name(&space.id, &volume.name);
            let options = RemoveVolumeOptionsBuilder::new().force(true).build();
            // The task's container goes a moment after the task: retry while it is in use.
            let deadline = Instant::now() + STOP_TIMEOUT;
            let doing = || {
                format!(
                    "removing volume {} on node {}",
                    volume.name,
                    node_name(node)
                )
            };
            loop {
                match engine
                    .remove_volume(&name, Some(options.clone()))
                    .await
                    .map_err(|e| classify(&doing(), e))
                {
                    Ok(()) | Err(RuntimeError::NotFound { .. }) => break,
                    Err(RuntimeError::Conflict(_)) if Instant::now() < deadline => {
                        tokio::time::sleep(POLL).await
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        self.remove_disks(engine, node, space).await
    }
}
