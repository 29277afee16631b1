//! [`Runtime`] on a Docker engine through bollard: named volumes (sized, on loop-mounted
//! filesystems, where the host allows: see [`super::disks`]), one container per space with
//! CPU, memory and process limits from its compute units and a reduced set of rights, on a
//! network kept from the host (see [`super::firewall`]), all labelled as Hangar's.

mod build;
mod managed;
mod neighbours;
mod network;
pub(super) mod oom;
mod start;
pub(super) mod stats;
mod volumes;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use app::ids::SpaceId;
use bollard::query_parameters::ListContainersOptionsBuilder;

pub use network::SPACES_NETWORK;

use super::client::DockerClient;
use super::container::{self, address_on};
use super::disks::DiskImages;
use super::error::{again_if_network_gone, classify};
use super::exec::exec_in;
use super::files;
use super::labels::{container_name, labelled, owner_of, space_labels, volumes, Owner};
use super::{
    ByteStream, ContainerStatus, Enforcement, Exec, ExecRequest, ManagedObject, NodeReport,
    PathInfo, Reach, Runtime, RuntimeError, SpaceSpec, UploadStream, VolumeUsage,
    LABEL_INSTALLATION, LABEL_SPACE,
};
use network::NetworkGuard;

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

/// Runs blocking work (files, `losetup`, `iptables`) off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, RuntimeError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(RuntimeError::Failed),
        Err(e) => Err(RuntimeError::Failed(format!("a host task failed: {e}"))),
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
            guard: tokio::sync::Mutex::new(NetworkGuard::unchecked()),
            usage: std::sync::Mutex::default(),
        }
    }

    fn labels(&self, space: &SpaceSpec) -> HashMap<String, String> {
        space_labels(&self.installation, space)
    }

    async fn client(&self) -> Result<bollard::Docker, RuntimeError> {
        self.docker.get().await.map_err(RuntimeError::Unavailable)
    }
}

#[async_trait::async_trait]
impl Runtime for DockerRuntime {
    async fn build_image(
        &self,
        request: crate::runtime::BuildRequest,
        log: tokio::sync::mpsc::Sender<String>,
    ) -> Result<(), RuntimeError> {
        self.build(request, log).await
    }

    async fn oom_kills(&self) -> Result<crate::runtime::OomStream, RuntimeError> {
        self.oom_stream().await
    }

    async fn stats(
        &self,
        space_id: &SpaceId,
    ) -> Result<Option<crate::runtime::SpaceStats>, RuntimeError> {
        self.space_stats(space_id).await
    }

    async fn image_facts(
        &self,
        image: &str,
    ) -> Result<Option<crate::runtime::ImageFacts>, RuntimeError> {
        self.facts(image).await
    }

    async fn exec(&self, space_id: &SpaceId, request: ExecRequest) -> Result<Exec, RuntimeError> {
        let docker = self.client().await?;
        exec_in(docker, container_name(space_id), request).await
    }

    async fn reach(&self, space_id: &SpaceId) -> Result<Option<Reach>, RuntimeError> {
        let docker = self.client().await?;
        let Some(info) = container::inspect(&docker, &container_name(space_id)).await? else {
            return Ok(None);
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
        self.create_space_volumes(space).await
    }

    async fn start(&self, space: &SpaceSpec) -> Result<String, RuntimeError> {
        // The shared network was replaced under us (another server settled on another): it is
        // looked up again.
        let forget = async { *self.network_id.lock().await = None };
        again_if_network_gone(|| self.start_once(space), forget).await
    }

    async fn stop(&self, space: &SpaceSpec) -> Result<(), RuntimeError> {
        let docker = self.client().await?;
        self.remove_container(&docker, &space.id).await
    }

    async fn remove(&self, space: &SpaceSpec) -> Result<(), RuntimeError> {
        let docker = self.client().await?;
        self.remove_container(&docker, &space.id).await?;
        self.remove_space_volumes(space).await
    }

    async fn inspect(&self, space_id: &SpaceId) -> Result<Option<ContainerStatus>, RuntimeError> {
        let docker = self.client().await?;
        let name = container_name(space_id);
        match container::inspect(&docker, &name).await? {
            None => Ok(None),
            Some(info) => {
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
        }
    }

    async fn list_managed(&self) -> Result<Vec<ManagedObject>, RuntimeError> {
        self.managed().await
    }

    async fn remove_managed(&self, object: &ManagedObject) -> Result<(), RuntimeError> {
        self.remove_object(object).await
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
                Ok(network_id) => {
                    let bridge = self.guard_network(&docker, &network_id).await;
                    // Spaces that were running before this Hangar started are pinned too.
                    self.pin_running(&docker, &network_id, bridge).await;
                }
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
            network: self.network_status().await,
            privileges: Ok("enforced: spaces run with no-new-privileges (but those of \
                            privileged templates): setuid programs do not raise privileges"
                .to_owned()),
        }
    }

    async fn volume_usage(&self, space: &SpaceSpec) -> Vec<VolumeUsage> {
        self.measure_volumes(space).await
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
        let filter = labelled(vec![format!("{LABEL_INSTALLATION}={}", self.installation)]);
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
        let mut holds: Vec<SpaceId> = volumes(&docker, &filter, "listing volumes")
            .await?
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
