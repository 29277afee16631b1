//! A space's volumes on the engine: made (sized, on their disk images, where the host allows:
//! see [`crate::runtime::disks`]), removed with their images, and measured.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::models::VolumeCreateRequest;
use bollard::query_parameters::RemoveVolumeOptionsBuilder;

use app::ids::SpaceId;

use super::{blocking, DockerRuntime};
use crate::runtime::error::{classify, removed};
use crate::runtime::labels::{volume_labels, volume_name};
use crate::runtime::{RuntimeError, SpaceSpec, VolumeUsage};

/// How long a measured volume use is reused for quota reports.
const USAGE_FRESH_FOR: Duration = Duration::from_secs(5);

impl DockerRuntime {
    /// Creates the space's volumes (labelled); existing ones are kept.
    pub(super) async fn create_space_volumes(&self, space: &SpaceSpec) -> Result<(), RuntimeError> {
        let docker = self.client().await?;
        for volume in &space.volumes {
            let labels = volume_labels(&self.labels(space), volume);
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

    /// Removes the space's volumes and their disk images; absent is fine.
    pub(super) async fn remove_space_volumes(&self, space: &SpaceSpec) -> Result<(), RuntimeError> {
        let docker = self.client().await?;
        for volume in &space.volumes {
            let name = volume_name(&space.id, &volume.name);
            let options = RemoveVolumeOptionsBuilder::new().force(true).build();
            let answer = docker.remove_volume(&name, Some(options)).await;
            removed(&format!("removing volume {}", volume.name), answer)?;
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

    /// What each of the space's volumes holds, measured now.
    pub(super) async fn measure_volumes(&self, space: &SpaceSpec) -> Vec<VolumeUsage> {
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

    /// Measures the spaces' sized volumes that were not measured recently.
    pub(super) async fn measure(&self, spaces: &[SpaceId]) -> Option<HashMap<SpaceId, u64>> {
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
}
