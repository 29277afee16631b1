//! The container runtime the space lifecycle drives: one Docker engine ([`docker`]) or a
//! Docker Swarm ([`swarm`]), both through bollard. What both do alike lives here once: the
//! reading of the engine's errors ([`RuntimeError`]), exec, the archive API, names and labels,
//! and the container's limits and rights.

pub mod client;
mod container;
pub mod disks;
pub mod docker;
mod error;
mod exec;
mod files;
pub mod firewall;
mod labels;
mod managed;
pub mod relay;
pub mod swarm;

use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;
use std::sync::Arc;

use app::api::files::FileKind;
use app::api::templates::VolumeSpec;
use app::ids::SpaceId;

pub use crate::domain::run_options::Tmpfs;
pub use container::{DOCKER_IN_DOCKER_CAPABILITIES, RAW_SOCKETS_CAPABILITY, SPACE_CAPABILITIES};
pub use error::{Missing, RuntimeError};
pub use labels::{
    container_name, volume_name, LABEL_INSTALLATION, LABEL_MANAGED, LABEL_OWNER, LABEL_SPACE,
};

/// Everything the runtime needs to know about a space (its template snapshot).
#[derive(Debug, Clone, PartialEq)]
pub struct SpaceSpec {
    pub id: SpaceId,
    pub name: String,
    pub owner: String,
    pub image: String,
    pub command: Option<Vec<String>>,
    pub env: BTreeMap<String, String>,
    pub volumes: Vec<VolumeSpec>,
    pub compute_units: i64,
    /// Docker-in-Docker rights instead of the reduced default set.
    pub privileged: bool,
    /// Raw sockets (`NET_RAW`) on top of the reduced default set.
    pub raw_sockets: bool,
    /// Capabilities added on top of either set (the `devcontainer.json`'s run options, as the
    /// template allows them), without `CAP_`.
    pub cap_add: Vec<String>,
    /// tmpfs mounts, each at most [`container::tmpfs_cap`] large.
    pub tmpfs: Vec<Tmpfs>,
    /// The size of `/dev/shm` asked for, capped likewise (None: the engine's).
    pub shm_size_bytes: Option<u64>,
    /// The user its processes run as (None: the image's).
    pub user: Option<String>,
}

/// An image to build from a tar of its context.
pub struct BuildRequest {
    /// The tag it gets.
    pub tag: String,
    /// The Dockerfile, relative to the context.
    pub dockerfile: String,
    pub args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub context: UploadStream,
    /// Built within this space's compute limits, on the spaces' network.
    pub limits_of: SpaceSpec,
}

/// What a space's container uses now (as `docker stats` shows it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpaceStats {
    /// Thousandths of a CPU, over the last second or so.
    pub cpu_millis: i64,
    /// In use, the page cache it can give back left out.
    pub memory_bytes: i64,
    pub memory_limit_bytes: Option<i64>,
    pub pids: i64,
    pub net_rx_bytes: i64,
    pub net_tx_bytes: i64,
}

/// What the engine knows of an image it has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageFacts {
    /// The user it runs as (`""`: root).
    pub user: String,
    /// Its environment, `NAME=value`.
    pub env: Vec<String>,
}

/// What the runtime sees of a space's container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerStatus {
    pub id: String,
    pub running: bool,
    /// Why it is not running, when it is not (exit code, OOM kill...).
    pub detail: String,
}

/// A Docker object labelled as Hangar's, of this installation or of none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedObject {
    /// `container`, `volume` or `network`.
    pub kind: String,
    pub name: String,
    /// What Docker removes it by (names of networks need not be unique).
    pub id: String,
    /// The space its label names.
    pub space_id: String,
    /// It carries no installation label: made by a Hangar from before installations had ids,
    /// so it may be another installation's.
    pub unlabelled: bool,
}

/// How Hangar reaches the ports of a space's running container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Dialled at this address: the container's own on the spaces network, never the host's
    /// or another space's.
    Address(std::net::IpAddr),
    /// Hangar has no network path to it (a Swarm node's overlay that Hangar is not on):
    /// through a [`relay`] started inside the space.
    Relay,
}

/// One machine spaces run on, as the runtime sees it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeReport {
    pub id: String,
    /// Its hostname.
    pub name: String,
    /// `manager` or `worker` in a swarm, `engine` for the one Docker engine.
    pub role: String,
    /// `active`, `pause` or `drain`.
    pub availability: String,
    /// Why no space can start there now (down, drained, its engine silent); None when it can.
    pub problem: Option<String>,
    pub nano_cpus: i64,
    pub memory_bytes: i64,
    /// The spaces whose container runs there.
    pub running: Vec<SpaceId>,
    /// The spaces whose volumes are there (where they start).
    pub holds: Vec<SpaceId>,
}

/// What moving a stopped space to another node did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    pub from: String,
    pub to: String,
    /// Bytes of its volumes' archives copied.
    pub bytes: u64,
}

/// A process to start inside a running space.
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    pub cmd: Vec<String>,
    /// `NAME=value` pairs added to the container's environment.
    pub env: Vec<String>,
    /// With a terminal: output is one stream and the size can be changed.
    pub tty: bool,
    /// The terminal's first size, (columns, rows).
    pub size: Option<(u16, u16)>,
}

/// Output of a process in a space, in the order it wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecOutput {
    Stdout(bytes::Bytes),
    Stderr(bytes::Bytes),
}

/// A process running inside a space: its output, its input, and control of it.
pub struct Exec {
    pub output: futures_util::stream::BoxStream<'static, Result<ExecOutput, RuntimeError>>,
    pub input: Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
    pub control: Arc<dyn ExecControl>,
}

/// What can be done to a running exec besides writing to it.
#[async_trait::async_trait]
pub trait ExecControl: Send + Sync + 'static {
    /// Resizes its terminal.
    async fn resize(&self, cols: u16, rows: u16) -> Result<(), RuntimeError>;
    /// Its exit code, once it has ended.
    async fn exit_code(&self) -> Result<Option<i64>, RuntimeError>;
    /// Sends a signal (`HUP`, `INT`, `TERM`, ... : one of [`SIGNALS`]) to the process and
    /// every process it started that is still inside the space, as a terminal hanging up
    /// signals its whole session (closing a TTY exec's input does not end its shell).
    async fn signal(&self, signal: &str) -> Result<(), RuntimeError>;
}

/// The signals [`ExecControl::signal`] sends, by their names without `SIG`.
pub const SIGNALS: [&str; 14] = [
    "ABRT", "ALRM", "FPE", "HUP", "ILL", "INT", "KILL", "PIPE", "QUIT", "SEGV", "TERM", "USR1",
    "USR2", "WINCH",
];
/// What one of a space's volumes holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeUsage {
    pub name: String,
    /// Bytes in use; `None` when the runtime cannot measure this volume.
    pub used_bytes: Option<u64>,
    /// Its size is a hard limit (writes past it fail with ENOSPC in the space).
    pub enforced: bool,
}

/// What the host enforces of the limits Hangar promises, each as a sentence: `Ok` says what
/// is enforced, `Err` why it is not. Shown at start-up and in `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enforcement {
    /// Volume sizes.
    pub storage: Result<String, String>,
    /// Spaces kept from the host and from link-local addresses.
    pub network: Result<String, String>,
    /// Spaces (but privileged templates') run with `no_new_privs`: setuid programs do not
    /// raise privileges.
    pub privileges: Result<String, String>,
}

/// What is at a path inside a space (a symbolic link itself, not what it leads to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathInfo {
    pub kind: FileKind,
    pub size: u64,
    /// Permission bits with setuid, setgid and sticky.
    pub mode: u32,
    pub modified: Option<chrono::DateTime<chrono::Utc>>,
    /// For a symbolic link: the absolute path it leads to, resolved inside the space.
    pub link_target: Option<String>,
}

/// Spaces whose container had a process killed for memory, as they happen.
pub type OomStream = futures_util::stream::BoxStream<'static, Result<SpaceId, RuntimeError>>;

/// Bytes streamed out of a space.
pub type ByteStream = futures_util::stream::BoxStream<'static, Result<bytes::Bytes, RuntimeError>>;

/// Bytes streamed into a space; an error aborts what they were for.
pub type UploadStream =
    futures_util::stream::BoxStream<'static, Result<bytes::Bytes, std::io::Error>>;

#[async_trait::async_trait]
pub trait Runtime: Send + Sync + 'static {
    /// Creates the space's volumes (labelled); existing ones are kept.
    async fn create_volumes(&self, space: &SpaceSpec) -> Result<(), RuntimeError>;
    /// Creates and starts the space's container; returns its id.
    async fn start(&self, space: &SpaceSpec) -> Result<String, RuntimeError>;
    /// Stops and removes the space's container (volumes stay); absent is fine.
    async fn stop(&self, space: &SpaceSpec) -> Result<(), RuntimeError>;
    /// Removes the container and the volumes; absent is fine.
    async fn remove(&self, space: &SpaceSpec) -> Result<(), RuntimeError>;
    /// The space's container, if one exists.
    async fn inspect(&self, space_id: &SpaceId) -> Result<Option<ContainerStatus>, RuntimeError>;
    /// Starts a process inside the space's running container.
    async fn exec(&self, space_id: &SpaceId, request: ExecRequest) -> Result<Exec, RuntimeError>;
    /// How Hangar reaches the ports of the space's running container; None when no
    /// container of the space runs.
    async fn reach(&self, space_id: &SpaceId) -> Result<Option<Reach>, RuntimeError>;
    /// Every container, volume and network labelled as this installation's, and those
    /// labelled as Hangar's with no installation at all; never another installation's.
    async fn list_managed(&self) -> Result<Vec<ManagedObject>, RuntimeError>;
    /// Removes one object found by [`Runtime::list_managed`]; absent is fine.
    async fn remove_managed(&self, object: &ManagedObject) -> Result<(), RuntimeError>;
    /// Gets the host ready at start-up (after a reboot: volumes' devices, network rules) and
    /// says what it enforces; never fails: what it cannot do, it reports.
    async fn prepare(&self) -> Enforcement;
    /// What the host enforces now.
    async fn enforcement(&self) -> Enforcement;
    /// What each of the space's volumes holds, measured now.
    async fn volume_usage(&self, space: &SpaceSpec) -> Vec<VolumeUsage>;
    /// Bytes in use on the volumes of each of these spaces (measured at most a few seconds
    /// ago; spaces with no measured volume are left out); `None` when volume sizes are not
    /// enforced, so nothing is measured.
    async fn storage_used(&self, spaces: &[SpaceId]) -> Option<HashMap<SpaceId, u64>>;
    /// What is at `path` in the space's running container (symbolic links resolved inside
    /// the space only); `None` when nothing is.
    async fn stat_path(
        &self,
        space_id: &SpaceId,
        path: &str,
    ) -> Result<Option<PathInfo>, RuntimeError>;
    /// A tar archive of `path` in the space, streamed; its top entry is named after the
    /// path's last part.
    async fn download_archive(
        &self,
        space_id: &SpaceId,
        path: &str,
    ) -> Result<ByteStream, RuntimeError>;
    /// The machines spaces run on, with what each can hold and holds.
    async fn nodes(&self) -> Result<Vec<NodeReport>, RuntimeError>;
    /// Moves a stopped space's volumes to the node `to` (its id or hostname), where it starts
    /// from then on; on failure the space stays where it was with its data.
    async fn move_space(&self, space: &SpaceSpec, to: &str) -> Result<Moved, RuntimeError> {
        let _ = (space, to);
        Err(RuntimeError::Failed(
            "this Hangar runs every space on one Docker engine: there is no other node to              move a space to (`--runtime swarm` has nodes)"
                .into(),
        ))
    }
    /// Builds an image (the engine's classic builder, which uses local base images without
    /// pulling them), labelled as Hangar's; each line the build prints goes to `log`. The
    /// error is the build's own.
    async fn build_image(
        &self,
        request: BuildRequest,
        log: tokio::sync::mpsc::Sender<String>,
    ) -> Result<(), RuntimeError> {
        let _ = (request, log);
        Err(RuntimeError::Failed(
            "building images (from devcontainer.json) needs the one-engine runtime: on Swarm a \
             built image would exist on one node only; give the file an `image` the nodes have"
                .into(),
        ))
    }
    /// What the space's running container uses now; None when it has none running (or the
    /// runtime cannot say).
    async fn stats(&self, space_id: &SpaceId) -> Result<Option<SpaceStats>, RuntimeError> {
        let _ = space_id;
        Ok(None)
    }
    /// The spaces of this installation whose container had a process killed for memory (its
    /// limit reached), as the engine reports it from now on; ends when the engine's stream
    /// does (the caller opens it again). Runtimes that cannot say answer an error.
    async fn oom_kills(&self) -> Result<OomStream, RuntimeError> {
        Err(RuntimeError::Failed(
            "this runtime does not report OOM kills".into(),
        ))
    }
    /// What the engine knows of `image`; None when it does not have it.
    async fn image_facts(&self, image: &str) -> Result<Option<ImageFacts>, RuntimeError> {
        let _ = image;
        Ok(None)
    }
    /// Extracts a tar archive into the existing directory `dir` of the space, owned by the
    /// space's user. An error from `tar` aborts it (and fails the call).
    async fn upload_archive(
        &self,
        space_id: &SpaceId,
        dir: &str,
        tar: UploadStream,
    ) -> Result<(), RuntimeError>;
}
