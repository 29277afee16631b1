//! Keeps a swarm's spaces from the nodes, as the Docker runtime's firewall keeps them from
//! its host: on every node a space runs on, packets that containers send out through
//! `docker_gwbridge` (their way out of an overlay) to an address of that node, to any node of
//! the swarm, to broadcast or multicast, or to link-local 169.254.0.0/16 are dropped; replies
//! and the rest of the world pass. Without this a space could reach the nodes' engines.
//!
//! Hangar has no agent on the nodes: it runs the node's own `iptables` through the node's
//! engine, in a short-lived container of the space's image (on that node already) with the
//! host's network and its root filesystem mounted, that only `chroot`s into the host. The
//! rules sit in a chain of their own, `HANGAR-SWARM` in the `mangle` table, rewritten whole
//! each time. Every container on `docker_gwbridge` is covered, so the swarm is meant to be
//! Hangar's.

use std::time::{Duration, Instant};

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    WaitContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;

use super::{swarm_nodes, SwarmRuntime};
use crate::runtime::error::classify;
use crate::runtime::{RuntimeError, LABEL_INSTALLATION, LABEL_MANAGED};

/// A node's rules are checked again after this long (a rebooted node has lost them).
pub const GUARD_FRESH: Duration = Duration::from_secs(60);
/// How long installing the rules may take.
const GUARD_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs on the node, in its own root: installs the chain; the node addresses to drop are its
/// arguments.
const SCRIPT: &str = r#"set -e
ipt() { iptables -w 10 -t mangle "$@"; }
ipt -S HANGAR-SWARM >/dev/null 2>&1 || ipt -N HANGAR-SWARM
ipt -C PREROUTING -j HANGAR-SWARM 2>/dev/null || ipt -I PREROUTING 1 -j HANGAR-SWARM
ipt -F HANGAR-SWARM
ipt -A HANGAR-SWARM -i docker_gwbridge -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN
ipt -A HANGAR-SWARM -i docker_gwbridge -m addrtype ! --dst-type UNICAST -j DROP
ipt -A HANGAR-SWARM -i docker_gwbridge -d 169.254.0.0/16 -j DROP
for address in "$@"; do ipt -A HANGAR-SWARM -i docker_gwbridge -d "$address" -j DROP; done
echo guarded"#;

impl SwarmRuntime {
    /// Installs the rules on the node `node_id` (whose engine is `engine`) unless it was done
    /// in the last [`GUARD_FRESH`] (a start then costs no call at all).
    pub(super) async fn guard_node(
        &self,
        manager: &Docker,
        engine: &Docker,
        node_id: &str,
        image: &str,
    ) -> Result<(), RuntimeError> {
        let fresh = self
            .guarded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(node_id)
            .is_some_and(|at| at.elapsed() < GUARD_FRESH);
        if fresh {
            return Ok(());
        }
        let mut addresses: Vec<String> = swarm_nodes(manager)
            .await?
            .into_iter()
            .filter_map(|node| node.status.and_then(|s| s.addr))
            .filter(|addr| {
                addr.parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| !ip.is_unspecified())
            })
            .collect();
        addresses.sort();
        addresses.dedup();
        tokio::time::timeout(GUARD_TIMEOUT, self.install_guard(engine, image, &addresses))
            .await
            .map_err(|_| {
                RuntimeError::Failed(format!(
                    "installing the network rules on node {node_id} took over {} s",
                    GUARD_TIMEOUT.as_secs()
                ))
            })??;
        self.guarded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(node_id.to_owned(), Instant::now());
        Ok(())
    }

    async fn install_guard(
        &self,
        engine: &Docker,
        image: &str,
        addresses: &[String],
    ) -> Result<(), RuntimeError> {
        let mut cmd = vec![
            "chroot".to_owned(),
            "/host".to_owned(),
            "/bin/sh".to_owned(),
            "-c".to_owned(),
            SCRIPT.to_owned(),
            "hangar-guard".to_owned(),
        ];
        cmd.extend(addresses.iter().cloned());
        let body = ContainerCreateBody {
            image: Some(image.to_owned()),
            entrypoint: Some(Vec::new()),
            cmd: Some(cmd),
            user: Some("0".to_owned()),
            labels: Some(std::collections::HashMap::from([
                (LABEL_MANAGED.to_owned(), "true".to_owned()),
                (
                    LABEL_INSTALLATION.to_owned(),
                    self.settings.installation.clone(),
                ),
            ])),
            host_config: Some(HostConfig {
                network_mode: Some("host".to_owned()),
                binds: Some(vec!["/:/host".to_owned()]),
                cap_drop: Some(vec!["ALL".to_owned()]),
                cap_add: Some(
                    ["NET_ADMIN", "NET_RAW", "SYS_CHROOT", "DAC_OVERRIDE"]
                        .map(str::to_owned)
                        .to_vec(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        };
        let name = format!(
            "hangar-guard-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let created = engine
            .create_container(
                Some(CreateContainerOptionsBuilder::new().name(&name).build()),
                body,
            )
            .await
            .map_err(|e| classify("creating the node's network-rules helper", e))?;
        let outcome = async {
            engine
                .start_container(
                    &created.id,
                    None::<bollard::query_parameters::StartContainerOptions>,
                )
                .await
                .map_err(|e| classify("starting the node's network-rules helper", e))?;
            let mut waiting = engine.wait_container(
                &created.id,
                Some(WaitContainerOptionsBuilder::new().build()),
            );
            let code = match waiting.next().await {
                Some(Ok(done)) => done.status_code,
                // A non-zero exit comes as an error carrying the code.
                Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
                Some(Err(e)) => return Err(classify("waiting for the network-rules helper", e)),
                None => -1,
            };
            if code == 0 {
                return Ok(());
            }
            let mut said = String::new();
            let mut logs = engine.logs(
                &created.id,
                Some(
                    LogsOptionsBuilder::new()
                        .stdout(true)
                        .stderr(true)
                        .tail("20")
                        .build(),
                ),
            );
            while let Some(Ok(line)) = logs.next().await {
                said.push_str(&line.to_string());
            }
            Err(RuntimeError::Failed(format!(
                "the node's network rules could not be installed (exit {code}): {}",
                said.trim()
            )))
        }
        .await;
        let _ = engine
            .remove_container(
                &created.id,
                Some(RemoveContainerOptionsBuilder::new().force(true).build()),
            )
            .await;
        outcome
    }
}
