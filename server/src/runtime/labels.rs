//! How Hangar names and labels the Docker objects of a space, on either runtime, finds them
//! by their labels, and tells its own objects from another installation's.

use std::collections::HashMap;

use app::ids::SpaceId;
use bollard::models::{ContainerSummary, Network, Volume};
use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder,
};
use bollard::Docker;

use super::error::classify;
use super::{RuntimeError, SpaceSpec};

/// What a listing selects by (`label`, `name`...), as Docker's filters.
pub(crate) type Filters = HashMap<String, Vec<String>>;

/// Labels that mark Docker objects as Hangar's.
pub const LABEL_MANAGED: &str = "io.hangar.managed";
pub const LABEL_SPACE: &str = "io.hangar.space";
pub const LABEL_OWNER: &str = "io.hangar.owner";
/// The id of the installation that made the object (see [`crate::bootstrap::installation_id`]).
/// Objects made before installations had ids carry none.
pub const LABEL_INSTALLATION: &str = "io.hangar.installation";
/// Label that marks the networks Hangar makes for spaces (the Docker runtime's shared one,
/// each Swarm space's own).
pub(crate) const LABEL_NETWORK: &str = "io.hangar.network";

/// The container of a space (on Swarm: its service).
pub fn container_name(space_id: &SpaceId) -> String {
    format!("hangar-{space_id}")
}

pub fn volume_name(space_id: &SpaceId, volume: &str) -> String {
    format!("hangar-{space_id}-{volume}")
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

/// The labels of one of the space's volumes.
pub(crate) fn volume_labels(
    space_labels: &HashMap<String, String>,
    volume: &app::api::templates::VolumeSpec,
) -> HashMap<String, String> {
    let mut labels = space_labels.clone();
    labels.insert("io.hangar.volume".into(), volume.name.clone());
    labels.insert("io.hangar.size_gib".into(), volume.size_gib.to_string());
    labels
}

/// The filter that selects the objects carrying every one of `labels` (`key=value`).
pub(crate) fn labelled(labels: Vec<String>) -> Filters {
    HashMap::from([("label".to_owned(), labels)])
}

/// The containers, running or not, that `filters` select.
pub(crate) async fn containers(
    docker: &Docker,
    filters: &Filters,
    doing: &str,
) -> Result<Vec<ContainerSummary>, RuntimeError> {
    let options = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(filters)
        .build();
    let listed = docker.list_containers(Some(options)).await;
    listed.map_err(|e| classify(doing, e))
}

/// The volumes that `filters` select.
pub(crate) async fn volumes(
    docker: &Docker,
    filters: &Filters,
    doing: &str,
) -> Result<Vec<Volume>, RuntimeError> {
    let options = ListVolumesOptionsBuilder::new().filters(filters).build();
    let listed = docker.list_volumes(Some(options)).await;
    Ok(listed
        .map_err(|e| classify(doing, e))?
        .volumes
        .unwrap_or_default())
}

/// The networks that `filters` select.
pub(crate) async fn networks(
    docker: &Docker,
    filters: &Filters,
) -> Result<Vec<Network>, RuntimeError> {
    let options = ListNetworksOptionsBuilder::new().filters(filters).build();
    let listed = docker.list_networks(Some(options)).await;
    listed.map_err(|e| classify("listing networks", e))
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
