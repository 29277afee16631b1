//! Volumes whose size is a hard limit on Swarm, as on one engine ([`crate::runtime::disks`]):
//! each volume is an ext4 filesystem in an image file of its size, on a loop device, which the
//! node's local volume driver mounts. The images live on the node that holds the space, under
//! [`NODE_VOLUMES`]`/<installation>/<space>/`, with a link to their loop device beside them.
//!
//! Hangar has no agent on the nodes: a short-lived helper from Hangar's own image (never a
//! template's) makes, re-attaches and removes the images through the node's engine. It gets
//! the node's `/dev` (to make the loop device's node there, where the engine resolves the
//! link), `/dev/loop-control` and the loop block devices (major 7) only, `CAP_MKNOD` only, no
//! network, and of the node's files this installation's image folder only. Measuring what a
//! volume holds is another helper that mounts the node's volumes read-only and asks the
//! filesystem, as `df` would.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::models::{
    ContainerCreateBody, DeviceMapping, HostConfig, Mount, MountType, Node, VolumeCreateRequest,
};
use bollard::query_parameters::RemoveVolumeOptionsBuilder;
use bollard::Docker;

use app::ids::SpaceId;

use super::helper::run_to_end;
use super::{node_name, SwarmRuntime, GUARD_IMAGE};
use crate::runtime::disks::plain_name;
use crate::runtime::error::{classify, Missing};
use crate::runtime::labels::{labelled, space_labels, volume_labels, volume_name, volumes};
use crate::runtime::{
    RuntimeError, SpaceSpec, VolumeUsage, LABEL_INSTALLATION, LABEL_MANAGED, LABEL_SPACE,
};

/// Where the nodes keep the images of sized volumes (one folder per installation in it).
pub const NODE_VOLUMES: &str = "/var/lib/hangar/volumes";
/// How long one disk helper may take (making a filesystem is lazy: seconds at most).
const DISK_TIMEOUT: Duration = Duration::from_secs(60);
/// How long what the nodes' volumes hold is reused for quota reports before it is measured
/// again (each measure is a helper on every node).
const USAGE_FRESH_FOR: Duration = Duration::from_secs(30);
/// Where the measuring helper mounts the volumes.
const MEASURED: &str = "/measured";
/// The driver option that marks a volume on a disk image.
const SIZED_TYPE: &str = "ext4";

/// Runs on the node: `make DIR SPACE VOLUME:GIB...` makes the images that do not exist yet
/// and attaches them; `attach DIR SPACE VOLUME...` attaches those that exist (after a reboot,
/// none is); `remove DIR SPACE VOLUME...` detaches and deletes them. Says `link VOLUME PATH`
/// (or `none VOLUME`) for each it attached. Busybox's shell runs its own applets before
/// `PATH`: the util-linux and e2fsprogs programs are called by their full paths.
const SCRIPT: &str = r#"set -e
mode=$1; dir=$2; space=$3; shift 3
[ -e /dev/loop-control ] || { echo "the node has no /dev/loop-control (no loop devices)" >&2; exit 3; }
grep -qw ext4 /proc/filesystems || { echo "the node's kernel has no ext4" >&2; exit 3; }
home=$dir/$space
attach() {
  image=$1 link=$2 tries=0
  device=$(/sbin/losetup -j "$image" | awk -F: 'NR == 1 { print $1 }')
  while [ -z "$device" ]; do
    free=$(/sbin/losetup -f)
    [ -b "$free" ] || mknod "$free" b 7 "${free#/dev/loop}" 2>/dev/null || [ -b "$free" ]
    if /sbin/losetup "$free" "$image" 2>/tmp/losetup.err; then device=$free; break; fi
    tries=$((tries + 1))
    [ "$tries" -lt 10 ] || { cat /tmp/losetup.err >&2; exit 1; }
    sleep 0.1
  done
  [ -b "$device" ] || mknod "$device" b 7 "${device#/dev/loop}"
  if [ "$(readlink "$link" 2>/dev/null)" != "$device" ]; then
    ln -sfn "$device" "$link.new" && mv -f "$link.new" "$link"
  fi
  echo "link $(basename "$link" .dev) $link"
}
case $mode in
  make)
    mkdir -p "$home"
    for item in "$@"; do
      volume=${item%%:*} size=${item#*:} image=$home/${item%%:*}.img
      if [ ! -e "$image" ]; then
        partial=$home/.$volume.partial
        rm -f "$partial"
        truncate -s "${size}G" "$partial"
        /sbin/mkfs.ext4 -q -F -m 0 -E lazy_itable_init=1,lazy_journal_init=1,nodiscard "$partial"
        /sbin/debugfs -w -R "rmdir lost+found" "$partial" >/dev/null 2>&1
        mv -f "$partial" "$image"
      fi
      attach "$image" "$home/$volume.dev"
    done ;;
  attach)
    for volume in "$@"; do
      if [ -e "$home/$volume.img" ]; then attach "$home/$volume.img" "$home/$volume.dev"; else echo "none $volume"; fi
    done ;;
  remove)
    for volume in "$@"; do
      image=$home/$volume.img
      if [ -e "$image" ]; then
        /sbin/losetup -j "$image" | awk -F: '{ print $1 }' | while read -r device; do /sbin/losetup -d "$device"; done
      fi
      rm -f "$home/$volume.dev" "$image" "$home/.$volume.partial"
    done
    rmdir "$home" 2>/dev/null || true ;;
  *) echo "unknown mode $mode" >&2; exit 2 ;;
esac"#;

/// Prints `NAME TOTAL FREE BLOCKSIZE` for each volume mounted under [`MEASURED`].
const MEASURE_SCRIPT: &str =
    r#"for d in /measured/*; do [ -d "$d" ] && stat -f -c "${d##*/} %b %f %S" "$d"; done; true"#;

/// The links a `make` or `attach` run reported, by volume.
fn parse_links(output: &str) -> HashMap<String, String> {
    output
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            match (words.next(), words.next(), words.next()) {
                (Some("link"), Some(volume), Some(path)) => {
                    Some((volume.to_owned(), path.to_owned()))
                }
                _ => None,
            }
        })
        .collect()
}

/// Bytes in use by volume, from the measuring helper's lines (`used = (total - free) *
/// block size`, as `df` counts).
fn parse_measures(output: &str) -> HashMap<String, u64> {
    output
        .lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let [name, total, free, block] = words.as_slice() else {
                return None;
            };
            let (total, free, block) = (
                total.parse::<u64>().ok()?,
                free.parse::<u64>().ok()?,
                block.parse::<u64>().ok()?,
            );
            Some(((*name).to_owned(), total.saturating_sub(free) * block))
        })
        .collect()
}

/// The disk helper: Hangar's image, no network, this installation's image folder, the node's
/// `/dev` for the loop devices' nodes, and `CAP_MKNOD` only.
fn disk_helper(installation: &str, args: Vec<String>) -> ContainerCreateBody {
    let dir = format!("{NODE_VOLUMES}/{installation}");
    let mut cmd = vec![
        "/bin/sh".to_owned(),
        "-c".to_owned(),
        SCRIPT.to_owned(),
        "hangar-disks".to_owned(),
    ];
    cmd.extend(args);
    ContainerCreateBody {
        image: Some(GUARD_IMAGE.to_owned()),
        entrypoint: Some(Vec::new()),
        cmd: Some(cmd),
        user: Some("0".to_owned()),
        labels: Some(helper_labels(installation)),
        network_disabled: Some(true),
        host_config: Some(HostConfig {
            network_mode: Some("none".to_owned()),
            // `binds` (not `mounts`): the engine makes the folder when it is missing.
            binds: Some(vec![format!("{dir}:{dir}"), "/dev:/dev".to_owned()]),
            devices: Some(vec![DeviceMapping {
                path_on_host: Some("/dev/loop-control".to_owned()),
                path_in_container: Some("/dev/loop-control".to_owned()),
                cgroup_permissions: Some("rwm".to_owned()),
            }]),
            device_cgroup_rules: Some(vec!["b 7:* rwm".to_owned()]),
            cap_drop: Some(vec!["ALL".to_owned()]),
            cap_add: Some(vec!["MKNOD".to_owned()]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The measuring helper: the volumes read-only, nothing else.
fn measuring_helper(installation: &str, volumes: &[String]) -> ContainerCreateBody {
    ContainerCreateBody {
        image: Some(GUARD_IMAGE.to_owned()),
        entrypoint: Some(Vec::new()),
        cmd: Some(vec![
            "/bin/sh".to_owned(),
            "-c".to_owned(),
            MEASURE_SCRIPT.to_owned(),
        ]),
        user: Some("0".to_owned()),
        labels: Some(helper_labels(installation)),
        network_disabled: Some(true),
        host_config: Some(HostConfig {
            network_mode: Some("none".to_owned()),
            mounts: Some(
                volumes
                    .iter()
                    .map(|name| Mount {
                        target: Some(format!("{MEASURED}/{name}")),
                        source: Some(name.clone()),
                        typ: Some(MountType::VOLUME),
                        read_only: Some(true),
                        ..Default::default()
                    })
                    .collect(),
            ),
            cap_drop: Some(vec!["ALL".to_owned()]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn helper_labels(installation: &str) -> HashMap<String, String> {
    HashMap::from([
        (LABEL_MANAGED.to_owned(), "true".to_owned()),
        (LABEL_INSTALLATION.to_owned(), installation.to_owned()),
    ])
}

/// Whether a volume lives on a disk image (made with the ext4 driver options).
fn is_sized(options: &HashMap<String, String>) -> bool {
    options.get("type").map(String::as_str) == Some(SIZED_TYPE)
}

/// What the nodes' sized volumes held when last measured, by space.
#[derive(Default)]
pub(super) struct Measured {
    at: Option<Instant>,
    used: HashMap<SpaceId, u64>,
}

impl SwarmRuntime {
    /// Runs the disk helper on `node` within [`DISK_TIMEOUT`]: `mode` on the space's images,
    /// one argument per volume.
    async fn disks_helper(
        &self,
        engine: &Docker,
        node: &Node,
        (mode, space_id): (&str, &str),
        volumes: impl Iterator<Item = String>,
        what: &str,
    ) -> Result<String, RuntimeError> {
        let name = node_name(node);
        let mut args = vec![mode.to_owned(), self.volumes_dir(), space_id.to_owned()];
        args.extend(volumes);
        let body = disk_helper(&self.settings.installation, args);
        let ran = tokio::time::timeout(DISK_TIMEOUT, run_to_end(engine, &name, body, what))
            .await
            .map_err(|_| {
                RuntimeError::Failed(format!(
                    "the helper took over {} s to {what} on node {name}",
                    DISK_TIMEOUT.as_secs()
                ))
            })?;
        ran.map_err(|e| match e {
            RuntimeError::NotFound {
                what: Missing::Device,
                message,
            } => RuntimeError::Failed(format!(
                "node {name} has no loop devices for containers (/dev/loop-control), which \
                 sized volumes need: give its engine loop devices (a node in a container needs \
                 --device /dev/loop-control --device-cgroup-rule 'b 7:* rwm'), or run Hangar \
                 with --volume-sizes off ({message})"
            )),
            e => e,
        })
    }

    /// Makes the space's disk images on `node` (those missing) and its volumes on them;
    /// existing volumes are kept. The space's next start must be pinned to this node.
    pub(super) async fn make_disks(
        &self,
        engine: &Docker,
        node: &Node,
        space: &SpaceSpec,
    ) -> Result<(), RuntimeError> {
        let sizes = space
            .volumes
            .iter()
            .map(|v| format!("{}:{}", v.name, v.size_gib.max(1)));
        let what = "make the space's sized volumes";
        let said = self
            .disks_helper(engine, node, ("make", space.id.as_str()), sizes, what)
            .await?;
        let links = parse_links(&said);
        let labels = space_labels(&self.settings.installation, space);
        for volume in &space.volumes {
            let link = links.get(&volume.name).ok_or_else(|| {
                RuntimeError::Failed(format!(
                    "the helper on node {} made no disk for volume `{}`: {said}",
                    node_name(node),
                    volume.name
                ))
            })?;
            let request = VolumeCreateRequest {
                name: Some(volume_name(&space.id, &volume.name)),
                driver: Some("local".to_owned()),
                driver_opts: Some(HashMap::from([
                    ("type".to_owned(), SIZED_TYPE.to_owned()),
                    ("device".to_owned(), link.clone()),
                    ("o".to_owned(), "discard".to_owned()),
                ])),
                labels: Some(volume_labels(&labels, volume)),
                ..Default::default()
            };
            engine.create_volume(request).await.map_err(|e| {
                classify(
                    &format!(
                        "creating volume {} on node {}",
                        volume.name,
                        node_name(node)
                    ),
                    e,
                )
            })?;
        }
        Ok(())
    }

    /// Attaches the space's disk images on `node` again (their loop devices are gone after
    /// the node rebooted); volumes without an image are left as they are.
    pub(super) async fn attach_disks(
        &self,
        engine: &Docker,
        node: &Node,
        space: &SpaceSpec,
    ) -> Result<(), RuntimeError> {
        let names = space.volumes.iter().map(|v| v.name.clone());
        let what = "attach the space's sized volumes";
        self.disks_helper(engine, node, ("attach", space.id.as_str()), names, what)
            .await
            .map(drop)
    }

    /// Detaches and deletes the space's disk images on `node`; absent is fine. The engine must
    /// no longer use them (their volumes removed first).
    pub(super) async fn remove_disks(
        &self,
        engine: &Docker,
        node: &Node,
        space: &SpaceSpec,
    ) -> Result<(), RuntimeError> {
        if !self.settings.sized_volumes {
            return Ok(());
        }
        let names: Vec<String> = space.volumes.iter().map(|v| v.name.clone()).collect();
        self.remove_images(engine, node, space.id.as_str(), &names)
            .await
    }

    async fn remove_images(
        &self,
        engine: &Docker,
        node: &Node,
        space_id: &str,
        volumes: &[String],
    ) -> Result<(), RuntimeError> {
        let names = volumes.iter().cloned();
        let what = "remove the space's sized volumes";
        self.disks_helper(engine, node, ("remove", space_id), names, what)
            .await
            .map(drop)
    }

    /// Removes a volume found orphaned on `node` and, when it was on a disk image of this
    /// installation's, that image.
    pub(super) async fn remove_orphan_volume(
        &self,
        engine: &Docker,
        node: &Node,
        name: &str,
    ) -> Result<(), bollard::errors::Error> {
        let image = match engine.inspect_volume(name).await {
            Ok(volume) if is_sized(&volume.options) => volume
                .options
                .get("device")
                .and_then(|device| self.image_of_link(device)),
            _ => None,
        };
        let options = RemoveVolumeOptionsBuilder::new().force(true).build();
        engine.remove_volume(name, Some(options)).await?;
        if let Some((space_id, volume)) = image {
            if let Err(e) = self.remove_images(engine, node, &space_id, &[volume]).await {
                tracing::warn!(node = %node_name(node), volume = %name, error = %e,
                    "the disk image of a removed orphan volume stays on its node");
            }
        }
        Ok(())
    }

    /// The space and volume a device link of this installation's names
    /// (`<dir>/<space>/<volume>.dev`); `None` for any other path.
    fn image_of_link(&self, device: &str) -> Option<(String, String)> {
        let rest = device.strip_prefix(&format!("{}/", self.volumes_dir()))?;
        let (space, file) = rest.split_once('/')?;
        let volume = file.strip_suffix(".dev")?;
        (plain_name(space) && plain_name(volume)).then(|| (space.to_owned(), volume.to_owned()))
    }

    /// Removes volumes (and their images) this start made on `node` before it failed, so that
    /// a space that never ran is not pinned to a node it never ran on.
    pub(super) async fn undo_disks(&self, engine: &Docker, node: &Node, space: &SpaceSpec) {
        for volume in &space.volumes {
            let options = RemoveVolumeOptionsBuilder::new().force(true).build();
            let name = volume_name(&space.id, &volume.name);
            let _ = engine.remove_volume(&name, Some(options)).await;
        }
        if let Err(e) = self.remove_disks(engine, node, space).await {
            tracing::warn!(space = %space.id, node = %node_name(node), error = %e,
                "the disks of a space that did not start stay on its node");
        }
    }

    fn volumes_dir(&self) -> String {
        format!("{NODE_VOLUMES}/{}", self.settings.installation)
    }

    /// Bytes in use on each of `engine`'s sized volumes of this installation (of the spaces
    /// `only`, when given), by volume name; their spaces by volume name.
    async fn measure_node(
        &self,
        engine: &Docker,
        node: &Node,
        only: Option<&SpaceId>,
    ) -> Result<(HashMap<String, u64>, HashMap<String, SpaceId>), RuntimeError> {
        let mut wanted = vec![format!(
            "{LABEL_INSTALLATION}={}",
            self.settings.installation
        )];
        if let Some(space) = only {
            wanted.push(format!("{LABEL_SPACE}={space}"));
        }
        let listed = volumes(
            engine,
            &labelled(wanted),
            &format!("listing the volumes on node {}", node_name(node)),
        )
        .await?;
        let mut spaces = HashMap::new();
        let mut names = Vec::new();
        for volume in listed.into_iter().filter(|v| is_sized(&v.options)) {
            if let Some(space) = volume
                .labels
                .get(LABEL_SPACE)
                .and_then(|id| id.parse::<SpaceId>().ok())
            {
                spaces.insert(volume.name.clone(), space);
                names.push(volume.name);
            }
        }
        if names.is_empty() {
            return Ok((HashMap::new(), spaces));
        }
        let body = measuring_helper(&self.settings.installation, &names);
        let what = "measure the sized volumes";
        let said = tokio::time::timeout(
            DISK_TIMEOUT,
            run_to_end(engine, &node_name(node), body, what),
        )
        .await
        .map_err(|_| {
            RuntimeError::Failed(format!("measuring took over {} s", DISK_TIMEOUT.as_secs()))
        })??;
        Ok((parse_measures(&said), spaces))
    }

    /// What each of the space's volumes holds, measured now on the node that holds them.
    pub(super) async fn measure_space(&self, space: &SpaceSpec) -> Vec<VolumeUsage> {
        let measured = async {
            let manager = self.manager().await.ok()?;
            let node_id = self.volume_node(&manager, space).await.ok()??;
            let node = self.node(&manager, &node_id).await.ok()??;
            let engine = self.engine_of(&node).ok()?;
            match self.measure_node(&engine, &node, Some(&space.id)).await {
                Ok((used, _)) => Some(used),
                Err(e) => {
                    tracing::warn!(space = %space.id, error = %e, "cannot measure a space's volumes");
                    None
                }
            }
        }
        .await;
        let measured = measured.unwrap_or_default();
        if self.settings.sized_volumes && !measured.is_empty() {
            // Quota reports see what was just measured, not what the last sweep found.
            let total = measured.values().sum();
            self.measured
                .lock()
                .await
                .used
                .insert(space.id.clone(), total);
        }
        space
            .volumes
            .iter()
            .map(|volume| {
                let used_bytes = measured.get(&volume_name(&space.id, &volume.name)).copied();
                VolumeUsage {
                    name: volume.name.clone(),
                    used_bytes,
                    enforced: used_bytes.is_some(),
                }
            })
            .collect()
    }

    /// Bytes in use on the sized volumes of each of these spaces, measured on every node at
    /// most every [`USAGE_FRESH_FOR`]; `None` when sizes are not enforced.
    pub(super) async fn measure_spaces(&self, spaces: &[SpaceId]) -> Option<HashMap<SpaceId, u64>> {
        if !self.settings.sized_volumes {
            return None;
        }
        let mut measured = self.measured.lock().await;
        if measured.at.is_none_or(|at| at.elapsed() >= USAGE_FRESH_FOR) {
            let mut used: HashMap<SpaceId, u64> = HashMap::new();
            if let Ok(nodes) = self.ready_nodes().await {
                let measures = nodes.iter().filter_map(|node| {
                    let engine = self.engine_of(node).ok()?;
                    Some(async move { self.measure_node(&engine, node, None).await })
                });
                for outcome in futures_util::future::join_all(measures).await {
                    match outcome {
                        Ok((bytes, owners)) => {
                            for (volume, bytes) in bytes {
                                if let Some(space) = owners.get(&volume) {
                                    *used.entry(space.clone()).or_default() += bytes;
                                }
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "cannot measure a node's volumes"),
                    }
                }
            }
            *measured = Measured {
                at: Some(Instant::now()),
                used,
            };
        }
        Some(
            spaces
                .iter()
                .filter_map(|id| measured.used.get(id).map(|bytes| (id.clone(), *bytes)))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn the_disk_helper_gets_the_loop_devices_and_its_folder_and_nothing_else() {
        let body = disk_helper("inst", vec!["make".into()]);
        assert_eq!(body.image.as_deref(), Some(GUARD_IMAGE));
        let host = body.host_config.unwrap_or_default();
        assert_eq!(host.network_mode.as_deref(), Some("none"));
        assert_eq!(
            host.binds,
            Some(vec![
                "/var/lib/hangar/volumes/inst:/var/lib/hangar/volumes/inst".to_owned(),
                "/dev:/dev".to_owned()
            ])
        );
        assert_eq!(host.device_cgroup_rules, Some(vec!["b 7:* rwm".to_owned()]));
        assert_eq!(host.cap_drop, Some(vec!["ALL".to_owned()]));
        assert_eq!(host.cap_add, Some(vec!["MKNOD".to_owned()]));
        assert!(host.privileged.is_none());
        let measuring = measuring_helper("inst", &["v1".to_owned()])
            .host_config
            .unwrap_or_default();
        let mounts = measuring.mounts.clone().unwrap_or_default();
        assert_eq!(mounts.len(), 1);
        assert_eq!(mounts[0].read_only, Some(true));
        assert!(measuring.binds.is_none() && measuring.cap_add.is_none());
    }

    #[test]
    fn only_this_installations_links_name_an_image() {
        let runtime = SwarmRuntime::new(
            std::sync::Arc::new(crate::runtime::client::DockerClient::new(None)),
            super::super::SwarmSettings {
                installation: "inst".into(),
                cpus_per_cu: 1.0,
                memory_mib_per_cu: 1024,
                pids_per_cu: 512,
                sized_volumes: true,
            },
        );
        assert_eq!(
            runtime.image_of_link("/var/lib/hangar/volumes/inst/s-1/data.dev"),
            Some(("s-1".to_owned(), "data".to_owned()))
        );
        for other in [
            "/var/lib/hangar/volumes/other/s-1/data.dev",
            "/var/lib/hangar/volumes/inst/../x/data.dev",
            "/var/lib/hangar/volumes/inst/s-1/data.img",
            "/var/lib/hangar/volumes/inst/s-1/sub/data.dev",
            "/dev/loop3",
        ] {
            assert_eq!(runtime.image_of_link(other), None, "{other}");
        }
    }

    #[test]
    fn the_helpers_reports_are_read_line_by_line() {
        let links = parse_links("link data /v/s/data.dev\nnone home\nnoise\nlink x\n");
        assert_eq!(links.len(), 1);
        assert_eq!(links["data"], "/v/s/data.dev");
        let used = parse_measures("hangar-a-data 249195 249193 4096\nbad line\nb 10 20 4096\n");
        assert_eq!(used["hangar-a-data"], 2 * 4096);
        assert_eq!(used["b"], 0, "more free than total counts as empty");
        assert!(is_sized(&HashMap::from([("type".into(), "ext4".into())])));
        assert!(!is_sized(&HashMap::new()));
    }
}
