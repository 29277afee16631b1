//! A space's service: its spec (one replica, reservations as large as its limits, never
//! restarted or moved by Swarm, pinned to the node that holds its volumes), that pin, and
//! scaling it (0 replicas is a stopped space).

use std::collections::HashMap;

use bollard::models::{
    Limit, Mount, MountTmpfsOptions, MountType, MountVolumeOptions, NetworkAttachmentConfig,
    ResourceObject, Service, ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated, TaskSpec,
    TaskSpecContainerSpec, TaskSpecContainerSpecPrivileges, TaskSpecPlacement, TaskSpecResources,
    TaskSpecRestartPolicy, TaskSpecRestartPolicyConditionEnum,
};
use bollard::query_parameters::UpdateServiceOptionsBuilder;
use bollard::Docker;

use app::ids::SpaceId;

use super::{swarm_nodes, SwarmRuntime, LABEL_NODE, NODE_PING_TIMEOUT};
use crate::runtime::container::{
    capabilities, command, compute_limits, environment, mount, pids_limit, shm_size, sysctls,
    tmpfs_mounts, STOP_GRACE_SECS,
};
use crate::runtime::error::{classify, found};
use crate::runtime::labels::{
    container_name, owner_of, space_labels, volume_labels, volume_name, Owner,
};
use crate::runtime::{RuntimeError, SpaceSpec};

/// The space's `no_new_privs` bit, as on the Docker runtime: set for every space but those of
/// privileged templates. Engines before Docker 25 (API 1.44) ignore the field: there only an
/// engine started with `--no-new-privileges` sets it (see [`super::guard`], which finds out).
fn privileges(space: &SpaceSpec) -> TaskSpecContainerSpecPrivileges {
    TaskSpecContainerSpecPrivileges {
        no_new_privileges: Some(!space.privileged),
        ..Default::default()
    }
}

impl SwarmRuntime {
    pub(super) fn service_spec(
        &self,
        space: &SpaceSpec,
        network_id: &str,
        pin: Option<&str>,
        replicas: i64,
    ) -> ServiceSpec {
        let labels = space_labels(&self.settings.installation, space);
        let mut mounts: Vec<Mount> = space
            .volumes
            .iter()
            .map(|volume| Mount {
                volume_options: Some(MountVolumeOptions {
                    labels: Some(volume_labels(&labels, volume)),
                    ..Default::default()
                }),
                ..mount(space, volume)
            })
            .collect();
        let memory_mib_per_cu = self.settings.memory_mib_per_cu;
        mounts.extend(tmpfs_mounts(space, memory_mib_per_cu));
        // A service has no shm size of its own: a tmpfs at /dev/shm takes the engine's place.
        if let Some(size) = shm_size(space, memory_mib_per_cu) {
            mounts.push(Mount {
                target: Some("/dev/shm".into()),
                typ: Some(MountType::TMPFS),
                tmpfs_options: Some(MountTmpfsOptions {
                    size_bytes: Some(size),
                    ..Default::default()
                }),
                ..Default::default()
            });
        }
        let (nano_cpus, memory_bytes) = compute_limits(
            space.compute_units,
            self.settings.cpus_per_cu,
            self.settings.memory_mib_per_cu,
        );
        let (cap_drop, cap_add) = capabilities(space);
        let mut service_labels = labels.clone();
        if let Some(pin) = pin {
            service_labels.insert(LABEL_NODE.to_owned(), pin.to_owned());
        }
        ServiceSpec {
            name: Some(container_name(&space.id)),
            labels: Some(service_labels),
            mode: Some(ServiceSpecMode {
                replicated: Some(ServiceSpecModeReplicated {
                    replicas: Some(replicas),
                }),
                ..Default::default()
            }),
            task_template: Some(TaskSpec {
                container_spec: Some(TaskSpecContainerSpec {
                    image: Some(space.image.clone()),
                    labels: Some(labels),
                    command: Some(command(space)),
                    hostname: Some(space.name.clone()),
                    user: space.user.clone(),
                    env: Some(environment(space)),
                    mounts: Some(mounts),
                    stop_grace_period: Some(i64::from(STOP_GRACE_SECS) * 1_000_000_000),
                    init: Some(false),
                    capability_add: Some(cap_add),
                    capability_drop: Some(cap_drop),
                    sysctls: Some(sysctls()),
                    privileges: Some(privileges(space)),
                    ..Default::default()
                }),
                // Reservations as large as the limits: Swarm places a space only where its
                // compute units fit.
                resources: Some(TaskSpecResources {
                    limits: Some(Limit {
                        nano_cpus,
                        memory_bytes,
                        pids: Some(pids_limit(space, self.settings.pids_per_cu)),
                    }),
                    reservations: Some(ResourceObject {
                        nano_cpus,
                        memory_bytes,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                // Swarm never restarts or moves a space on its own: a dead one is `stopped`
                // (the reconciler says why), and a new task could land away from its volumes.
                restart_policy: Some(TaskSpecRestartPolicy {
                    condition: Some(TaskSpecRestartPolicyConditionEnum::NONE),
                    ..Default::default()
                }),
                placement: pin.map(|node| TaskSpecPlacement {
                    constraints: Some(vec![format!("node.id=={node}")]),
                    ..Default::default()
                }),
                networks: Some(vec![NetworkAttachmentConfig {
                    target: Some(network_id.to_owned()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// The node the space's volumes are on: the service's pin when it has one, else a node
    /// whose engine holds one of its volumes (a service lost after the volumes were made).
    pub(super) async fn volume_node(
        &self,
        manager: &Docker,
        space: &SpaceSpec,
    ) -> Result<Option<String>, RuntimeError> {
        if let Some(pin) = self.pin(manager, &space.id).await? {
            return Ok(Some(pin));
        }
        let Some(first) = space.volumes.first() else {
            return Ok(None);
        };
        let name = volume_name(&space.id, &first.name);
        for node in swarm_nodes(manager).await? {
            let Ok(engine) = self.engine_of(&node) else {
                continue;
            };
            if let Ok(Ok(_)) =
                tokio::time::timeout(NODE_PING_TIMEOUT, engine.inspect_volume(&name)).await
            {
                return Ok(node.id);
            }
        }
        Ok(None)
    }

    /// The space's service, if there is one.
    async fn service(
        manager: &Docker,
        space_id: &SpaceId,
    ) -> Result<Option<Service>, RuntimeError> {
        let options = None::<bollard::query_parameters::InspectServiceOptions>;
        let inspected = manager
            .inspect_service(&container_name(space_id), options)
            .await;
        found("inspecting the space's service", inspected)
    }

    /// The node named by the space's service's pin label.
    pub(super) async fn pin(
        &self,
        manager: &Docker,
        space_id: &SpaceId,
    ) -> Result<Option<String>, RuntimeError> {
        let Some(service) = Self::service(manager, space_id).await? else {
            return Ok(None);
        };
        let labels = service.spec.and_then(|s| s.labels);
        if owner_of(labels.as_ref(), &self.settings.installation) == Owner::AnotherInstallation {
            return Err(RuntimeError::Failed(format!(
                "a service named {} belongs to another Hangar installation",
                container_name(space_id)
            )));
        }
        Ok(labels.and_then(|mut l| l.remove(LABEL_NODE)))
    }

    /// Sets the service's replicas (keeping the rest of its spec); absent is fine.
    pub(super) async fn scale(
        &self,
        manager: &Docker,
        space_id: &SpaceId,
        replicas: i64,
        pin: Option<&str>,
    ) -> Result<bool, RuntimeError> {
        let name = container_name(space_id);
        // A concurrent update bumps the version: read it again, a few times.
        for _ in 0..3 {
            let Some(service) = Self::service(manager, space_id).await? else {
                return Ok(false);
            };
            let version = service.version.and_then(|v| v.index).unwrap_or(0);
            let Some(mut spec) = service.spec else {
                return Ok(false);
            };
            if owner_of(spec.labels.as_ref(), &self.settings.installation)
                == Owner::AnotherInstallation
            {
                return Ok(false);
            }
            spec.mode = Some(ServiceSpecMode {
                replicated: Some(ServiceSpecModeReplicated {
                    replicas: Some(replicas),
                }),
                ..Default::default()
            });
            if let Some(pin) = pin {
                spec.labels
                    .get_or_insert_with(HashMap::new)
                    .insert(LABEL_NODE.to_owned(), pin.to_owned());
            }
            let options = UpdateServiceOptionsBuilder::new()
                .version(i32::try_from(version).unwrap_or(i32::MAX))
                .build();
            match manager
                .update_service(&name, spec, options, None)
                .await
                .map_err(|e| classify("updating the space's service", e))
            {
                Ok(_) => return Ok(true),
                // Out of sequence: another update came first.
                Err(RuntimeError::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(RuntimeError::Failed(
            "the space's service kept changing under this update: try again".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::Arc;

    use super::*;
    use crate::runtime::client::DockerClient;
    use crate::runtime::swarm::SwarmSettings;

    fn space(privileged: bool, raw_sockets: bool) -> SpaceSpec {
        SpaceSpec {
            id: SpaceId::from("s1".to_owned()),
            name: "box".into(),
            owner: "ann".into(),
            image: "hangar/busybox:test".into(),
            command: None,
            env: Default::default(),
            volumes: Vec::new(),
            compute_units: 1,
            privileged,
            raw_sockets,
            cap_add: Vec::new(),
            tmpfs: Vec::new(),
            shm_size_bytes: None,
            user: None,
        }
    }

    fn container(space: &SpaceSpec) -> TaskSpecContainerSpec {
        let runtime = SwarmRuntime::new(
            Arc::new(DockerClient::new(None)),
            SwarmSettings {
                installation: "inst".into(),
                cpus_per_cu: 1.0,
                memory_mib_per_cu: 1024,
                pids_per_cu: 512,
                sized_volumes: true,
            },
        );
        let spec = runtime.service_spec(space, "net", None, 1);
        spec.task_template.unwrap().container_spec.unwrap()
    }

    /// As on the Docker runtime: no raw sockets unless asked for, ping through ICMP datagram
    /// sockets, and no-new-privileges for all but privileged templates' spaces (engines from
    /// Docker 25 apply it from the spec).
    #[test]
    fn a_spaces_service_has_its_rights_in_its_spec() {
        let plain = container(&space(false, false));
        assert!(!plain
            .capability_add
            .unwrap()
            .contains(&"NET_RAW".to_owned()));
        assert_eq!(plain.capability_drop.unwrap(), ["ALL"]);
        assert_eq!(
            plain.sysctls.unwrap()["net.ipv4.ping_group_range"],
            "0 2147483647"
        );
        assert_eq!(plain.privileges.unwrap().no_new_privileges, Some(true));
        let raw = container(&space(false, true));
        assert!(raw.capability_add.unwrap().contains(&"NET_RAW".to_owned()));
        let privileged = container(&space(true, false));
        assert_eq!(
            privileged.privileges.unwrap().no_new_privileges,
            Some(false)
        );
    }

    /// A `devcontainer.json`'s run options (as its template allows them): capabilities added
    /// to either set, tmpfs mounts and `/dev/shm` within the space's memory limit.
    #[test]
    fn a_spaces_run_options_are_in_its_spec() {
        let mut asking = space(false, false);
        asking.cap_add = vec!["SYS_PTRACE".into(), "CHOWN".into()];
        asking.tmpfs = vec![
            crate::runtime::Tmpfs {
                target: "/scratch".into(),
                size_bytes: None,
            },
            crate::runtime::Tmpfs {
                target: "/small".into(),
                size_bytes: Some(1 << 20),
            },
        ];
        asking.shm_size_bytes = Some(64 << 30);
        let spec = container(&asking);
        let added = spec.capability_add.unwrap_or_default();
        assert!(added.contains(&"SYS_PTRACE".to_owned()));
        assert_eq!(added.iter().filter(|c| *c == "CHOWN").count(), 1);
        assert_eq!(spec.capability_drop.unwrap_or_default(), ["ALL"]);
        let tmpfs: Vec<(String, Option<i64>)> = spec
            .mounts
            .unwrap_or_default()
            .into_iter()
            .filter(|m| m.typ == Some(MountType::TMPFS))
            .map(|m| {
                let size = m.tmpfs_options.and_then(|o| o.size_bytes);
                (m.target.unwrap_or_default(), size)
            })
            .collect();
        // One compute unit of 1024 MiB: no tmpfs larger than that.
        assert_eq!(
            tmpfs,
            [
                ("/scratch".to_owned(), Some(1 << 30)),
                ("/small".to_owned(), Some(1 << 20)),
                ("/dev/shm".to_owned(), Some(1 << 30)),
            ]
        );
        asking.privileged = true;
        let privileged = container(&asking).capability_add.unwrap_or_default();
        assert!(privileged.contains(&"SYS_ADMIN".to_owned()));
        assert!(privileged.contains(&"CHOWN".to_owned()));
    }
}
