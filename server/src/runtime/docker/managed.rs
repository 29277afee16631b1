//! The objects an installation made on the engine, as the orphan sweep sees them: listed by
//! their labels (its disk images by their folder), and removed one by one.

use std::collections::HashMap;
use std::path::PathBuf;

use bollard::query_parameters::{RemoveContainerOptionsBuilder, RemoveVolumeOptionsBuilder};

use super::{blocking, DockerRuntime};
use crate::runtime::labels::{containers, networks, volumes, LABEL_NETWORK};
use crate::runtime::managed::{managed_filter, removed_object, Listing};
use crate::runtime::{ManagedObject, RuntimeError};

impl DockerRuntime {
    /// See [`crate::runtime::Runtime::list_managed`].
    pub(super) async fn managed(&self) -> Result<Vec<ManagedObject>, RuntimeError> {
        let docker = self.client().await?;
        let filter = managed_filter();
        let mut listing = Listing::new(&self.installation);
        let mut keep = |kind: &str,
                        id: Option<String>,
                        name: String,
                        labels: Option<&HashMap<String, String>>| {
            // The shared spaces network is nobody's to remove (see SPACES_NETWORK).
            if !labels.is_some_and(|l| l.contains_key(LABEL_NETWORK)) {
                listing.keep(kind, id.unwrap_or_else(|| name.clone()), name, labels);
            }
        };
        for c in containers(&docker, &filter, "listing containers").await? {
            let name = c.names.and_then(|n| n.first().cloned()).unwrap_or_default();
            let name = name.trim_start_matches('/').to_owned();
            keep("container", c.id, name, c.labels.as_ref());
        }
        for v in volumes(&docker, &filter, "listing volumes").await? {
            keep("volume", Some(v.name.clone()), v.name, Some(&v.labels));
        }
        for n in networks(&docker, &filter).await? {
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
            listing.found.extend(images.into_iter().map(|image| {
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
        Ok(listing.found)
    }

    /// See [`crate::runtime::Runtime::remove_managed`].
    pub(super) async fn remove_object(&self, object: &ManagedObject) -> Result<(), RuntimeError> {
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
        removed_object(object, result)
    }
}
