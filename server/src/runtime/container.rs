//! What a space's container is on either runtime: its command and environment, its CPU,
//! memory and process limits from its compute units, its rights, the time it gets to stop,
//! and its address on its network.

use bollard::models::{ContainerInspectResponse, Mount, MountTmpfsOptions, MountType};

use super::error::found;
use super::labels::volume_name;
use super::{RuntimeError, SpaceSpec};

/// Seconds a container gets to stop before it is killed.
pub(crate) const STOP_GRACE_SECS: i32 = 10;

/// What a space runs when its template names no command: a shell that idles until stopped
/// and exits at once on SIGTERM.
pub(crate) const IDLE_COMMAND: &str =
    "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done";

/// The capabilities a space keeps: Docker's default set without MKNOD (device nodes),
/// SETPCAP and SETFCAP (changing capability sets and file capabilities) and NET_RAW (raw
/// sockets: with them a space forges packets on the bridge it shares with other spaces, such
/// as ARP answers for a neighbour's address). Enough for `sudo` and `su` run as root (SETUID,
/// SETGID, AUDIT_WRITE), package installs (CHOWN, DAC_OVERRIDE, FOWNER, FSETID, and
/// SETUID/SETGID for apt's sandbox user), servers on ports below 1024 (NET_BIND_SERVICE),
/// signals (KILL) and `chroot`, which sshd's privilege separation does (SYS_CHROOT). `ping`
/// needs none: it uses ICMP datagram sockets (see [`sysctls`]).
pub const SPACE_CAPABILITIES: [&str; 10] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "AUDIT_WRITE",
];

/// What a template's `raw_sockets` flag adds to [`SPACE_CAPABILITIES`].
pub const RAW_SOCKETS_CAPABILITY: &str = "NET_RAW";

/// What a privileged template's spaces get on top of Docker's default set: what a Docker
/// engine inside the space needs (mounts, namespaces and cgroups, its own networks and
/// firewall, tracing its processes). Docker's own `--privileged` is not used: it gives every
/// device of the host too, and fails on hosts whose capability bounding set is reduced.
pub const DOCKER_IN_DOCKER_CAPABILITIES: [&str; 3] = ["SYS_ADMIN", "NET_ADMIN", "SYS_PTRACE"];

/// The CPU (in billionths) and memory (in bytes) of `compute_units`; none for 0 CU (admin
/// templates run without limits).
pub(crate) fn compute_limits(
    compute_units: i64,
    cpus_per_cu: f64,
    memory_mib_per_cu: u64,
) -> (Option<i64>, Option<i64>) {
    if compute_units <= 0 {
        return (None, None);
    }
    (
        Some((compute_units as f64 * cpus_per_cu * 1e9) as i64),
        Some(compute_units * memory_mib_per_cu as i64 * 1024 * 1024),
    )
}

/// The space's process (and thread) limit: a fork bomb stops at the space's own limit. Spaces
/// of 0 CU get one unit's.
pub(crate) fn pids_limit(space: &SpaceSpec, pids_per_cu: i64) -> i64 {
    space.compute_units.max(1) * pids_per_cu
}

/// The capabilities the space's container drops and adds: its template's set, and those its
/// `devcontainer.json` added where the template allows it.
pub(crate) fn capabilities(space: &SpaceSpec) -> (Vec<String>, Vec<String>) {
    let (drop, mut add) = if space.privileged {
        (
            Vec::new(),
            DOCKER_IN_DOCKER_CAPABILITIES.map(str::to_owned).to_vec(),
        )
    } else {
        let mut add = SPACE_CAPABILITIES.map(str::to_owned).to_vec();
        if space.raw_sockets {
            add.push(RAW_SOCKETS_CAPABILITY.to_owned());
        }
        (vec!["ALL".to_owned()], add)
    };
    for extra in &space.cap_add {
        if !add.contains(extra) {
            add.push(extra.clone());
        }
    }
    (drop, add)
}

/// Largest tmpfs (and `/dev/shm`) a space gets when it has no memory limit (0 CU).
const TMPFS_UNLIMITED_CAP: i64 = 1 << 30;

/// The largest tmpfs (or `/dev/shm`) of the space: its memory limit, which its files in memory
/// count against anyway, or 1 GiB when it has none.
pub(crate) fn tmpfs_cap(space: &SpaceSpec, memory_mib_per_cu: u64) -> i64 {
    let (_, memory) = compute_limits(space.compute_units, 1.0, memory_mib_per_cu);
    memory.unwrap_or(TMPFS_UNLIMITED_CAP)
}

/// A size asked for, within `cap` (none asked: `cap`).
fn capped(asked: Option<u64>, cap: i64) -> i64 {
    asked
        .map(|size| i64::try_from(size).unwrap_or(i64::MAX).min(cap))
        .unwrap_or(cap)
}

/// The space's tmpfs mounts, each within [`tmpfs_cap`].
pub(crate) fn tmpfs_mounts(space: &SpaceSpec, memory_mib_per_cu: u64) -> Vec<Mount> {
    let cap = tmpfs_cap(space, memory_mib_per_cu);
    space
        .tmpfs
        .iter()
        .map(|tmpfs| Mount {
            target: Some(tmpfs.target.clone()),
            typ: Some(MountType::TMPFS),
            tmpfs_options: Some(MountTmpfsOptions {
                size_bytes: Some(capped(tmpfs.size_bytes, cap)),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect()
}

/// The size of the space's `/dev/shm` when it asked for one, within [`tmpfs_cap`].
pub(crate) fn shm_size(space: &SpaceSpec, memory_mib_per_cu: u64) -> Option<i64> {
    space
        .shm_size_bytes
        .map(|size| capped(Some(size), tmpfs_cap(space, memory_mib_per_cu)))
}

/// The kernel settings of the space's own network namespace: every user may open ICMP
/// datagram sockets, so that `ping` works without raw sockets. (Docker 20.10 and later set
/// this themselves; older engines do not.)
pub(crate) fn sysctls() -> std::collections::HashMap<String, String> {
    std::collections::HashMap::from([(
        "net.ipv4.ping_group_range".to_owned(),
        "0 2147483647".to_owned(),
    )])
}

/// What the space's container runs: its template's command, or [`IDLE_COMMAND`].
pub(crate) fn command(space: &SpaceSpec) -> Vec<String> {
    space
        .command
        .clone()
        .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into(), IDLE_COMMAND.into()])
}

/// The space's environment as `NAME=value` pairs.
pub(crate) fn environment(space: &SpaceSpec) -> Vec<String> {
    space.env.iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// The mount of one of the space's volumes.
pub(crate) fn mount(space: &SpaceSpec, volume: &app::api::templates::VolumeSpec) -> Mount {
    Mount {
        target: Some(volume.mount_path.clone()),
        source: Some(volume_name(&space.id, &volume.name)),
        typ: Some(MountType::VOLUME),
        ..Default::default()
    }
}

/// The container `name` as the engine `docker` sees it; `None` when there is none.
pub(crate) async fn inspect(
    docker: &bollard::Docker,
    name: &str,
) -> Result<Option<ContainerInspectResponse>, RuntimeError> {
    let options = None::<bollard::query_parameters::InspectContainerOptions>;
    found(
        "inspecting the container",
        docker.inspect_container(name, options).await,
    )
}

/// The container's own address on the network `network_id`: never the host's loopback or
/// 0.0.0.0.
pub(crate) fn address_on(
    info: &ContainerInspectResponse,
    network_id: &str,
) -> Option<std::net::IpAddr> {
    info.network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref())
        .into_iter()
        .flatten()
        .find(|(_, endpoint)| endpoint.network_id.as_deref() == Some(network_id))
        .and_then(|(_, endpoint)| endpoint.ip_address.as_deref())
        .and_then(|ip| ip.parse::<std::net::IpAddr>().ok())
        .filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
}
