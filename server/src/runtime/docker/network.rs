//! The one network all of a Docker engine's spaces share, the rules on its bridge that keep
//! spaces from the host (see [`crate::runtime::firewall`]), and each space's address pinned
//! to its own container there (see [`super::neighbours`]).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::models::NetworkCreateRequest;

use super::{blocking, neighbours, DockerRuntime};
use crate::runtime::error::classify;
use crate::runtime::firewall;
use crate::runtime::labels::{labelled, networks, LABEL_MANAGED, LABEL_NETWORK};
use crate::runtime::RuntimeError;

/// Spaces share one bridge network with inter-container traffic disabled: each reaches the
/// outside world, none reaches another. (A network per space would exhaust Docker's address
/// pools after about thirty spaces.) Every installation on the engine uses the same one, for
/// the same reason: it belongs to no installation, none lists it as an orphan, and Hangar
/// never removes one that has endpoints (Docker refuses to), so it cannot be pulled from
/// under another installation's spaces.
pub const SPACES_NETWORK: &str = "hangar-spaces";

/// How often a running Hangar checks that the network rules are still in place.
const FIREWALL_RECHECK: Duration = Duration::from_secs(30);

/// The network rules as last checked: on which network and bridge, when, and the outcome.
pub(super) struct NetworkGuard {
    checked: Option<(String, String, Instant)>,
    status: Result<String, String>,
}

impl NetworkGuard {
    pub(super) fn unchecked() -> Self {
        Self {
            checked: None,
            status: Err("not checked yet: the spaces network is made when a space \
                         first starts"
                .into()),
        }
    }
}

impl DockerRuntime {
    /// Whether the network rules are in place, as last checked.
    pub(super) async fn network_status(&self) -> Result<String, String> {
        self.guard.lock().await.status.clone()
    }

    /// Installs (or, with `--allow-host-access`, removes) the network rules on the spaces
    /// network's bridge, unless checked there recently, and removes the pins of addresses no
    /// container holds any more (see [`Self::network_rules`] and [`Self::sweep_pins`]).
    /// Answers the bridge's name when the network could be inspected.
    pub(super) async fn guard_network(
        &self,
        docker: &bollard::Docker,
        network_id: &str,
    ) -> Option<String> {
        let bridge = self.network_rules(docker, network_id).await?;
        self.sweep_pins(docker, network_id).await;
        Some(bridge)
    }

    /// The bridge of the spaces network `network_id`, from the engine.
    async fn bridge_of(
        docker: &bollard::Docker,
        network_id: &str,
    ) -> Option<(String, bollard::models::NetworkInspect)> {
        let info = match docker
            .inspect_network(
                network_id,
                None::<bollard::query_parameters::InspectNetworkOptions>,
            )
            .await
        {
            Ok(info) => info,
            Err(e) => {
                tracing::warn!(error = %e, "cannot inspect the spaces network for its bridge");
                return None;
            }
        };
        let bridge = info
            .options
            .as_ref()
            .and_then(|o| o.get("com.docker.network.bridge.name").cloned())
            .unwrap_or_else(|| format!("br-{}", network_id.get(..12).unwrap_or(network_id)));
        Some((bridge, info))
    }

    /// Removes the host's pins on the spaces network's bridge of addresses no container holds
    /// any more (their spaces stopped). Under the guard's lock, like every pin: a pin made
    /// after the network was listed here is not removed. Needs not finish before a start:
    /// a start pins its own address afresh.
    pub(super) async fn sweep_pins(&self, docker: &bollard::Docker, network_id: &str) {
        let _guard = self.guard.lock().await;
        let Some((bridge, info)) = Self::bridge_of(docker, network_id).await else {
            return;
        };
        let held: Vec<std::net::Ipv4Addr> = info
            .containers
            .iter()
            .flat_map(|containers| containers.values())
            .filter_map(|c| c.ipv4_address.as_deref())
            .filter_map(|a| a.split('/').next()?.parse().ok())
            .collect();
        if firewall::interface_exists(&bridge) && neighbours::host_support().is_ok() {
            if let Err(e) = blocking(move || neighbours::sweep(&bridge, &held)).await {
                tracing::warn!(error = %e, "cannot remove stopped spaces' address pins");
            }
        }
    }

    /// Installs (or, with `--allow-host-access`, removes) the network rules on the spaces
    /// network's bridge, unless checked there recently (then without asking the engine); the
    /// outcome is kept for [`crate::runtime::Runtime::enforcement`] and logged when it
    /// changes. Answers the bridge's name when the network could be inspected.
    pub(super) async fn network_rules(
        &self,
        docker: &bollard::Docker,
        network_id: &str,
    ) -> Option<String> {
        let mut guard = self.guard.lock().await;
        if let Some((network, bridge, at)) = &guard.checked {
            if network == network_id && at.elapsed() < FIREWALL_RECHECK {
                return Some(bridge.clone());
            }
        }
        let (bridge, _) = Self::bridge_of(docker, network_id).await?;
        let allow = self.allow_host_access;
        let target = bridge.clone();
        let status = blocking(move || {
            Ok(if allow {
                // Nothing to remove where iptables cannot be run.
                if firewall::host_support().is_ok() {
                    if let Err(e) = firewall::remove(&target) {
                        tracing::warn!(error = %e, "cannot remove the network rules");
                    }
                }
                Err("spaces may reach the host and 169.254.0.0/16 (--allow-host-access)".to_owned())
            } else {
                firewall::install(&target).map(|()| {
                    format!(
                        "enforced: spaces on {target} cannot reach the host or 169.254.0.0/16 \
                         (iptables chain {} of the mangle table)",
                        firewall::CHAIN
                    )
                })
            })
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        // Spaces kept from the host are not enough: they must not take each other's traffic.
        let status = match (status, neighbours::host_support()) {
            (Ok(text), Ok(())) => Ok(format!(
                "{text}; each space's address is pinned to its own container on the bridge \
                 (no space takes another's traffic, even with raw sockets)"
            )),
            (Ok(_), Err(why)) => Err(format!(
                "spaces are kept from the host, but their addresses are not pinned on the \
                 bridge ({why}): a space with raw sockets could take a neighbour's traffic"
            )),
            (Err(why), _) => Err(why),
        };
        if status != guard.status {
            match &status {
                Ok(text) => tracing::info!("network isolation {text}"),
                Err(reason) => tracing::warn!("spaces are NOT kept from the host: {reason}"),
            }
        }
        guard.status = status;
        guard.checked = Some((network_id.to_owned(), bridge.clone(), Instant::now()));
        Some(bridge)
    }

    /// The id of the shared spaces network, made on first use. Docker lets several networks
    /// share a name (and then refuses to start containers on it), so the network is found by
    /// label under a unique name; should several servers make one at once, all settle on the
    /// lowest id and the others are removed.
    pub(super) async fn spaces_network(
        &self,
        docker: &bollard::Docker,
    ) -> Result<String, RuntimeError> {
        let mut known = self.network_id.lock().await;
        if let Some(id) = known.as_ref() {
            return Ok(id.clone());
        }
        let filter = labelled(vec![format!("{LABEL_NETWORK}=spaces")]);
        let list = || async {
            let mut ids: Vec<String> = networks(docker, &filter)
                .await?
                .into_iter()
                .filter_map(|n| n.id)
                .collect();
            ids.sort();
            Ok::<_, RuntimeError>(ids)
        };
        let mut ids = list().await?;
        if ids.is_empty() {
            let request = NetworkCreateRequest {
                name: format!(
                    "{SPACES_NETWORK}-{}",
                    &uuid::Uuid::new_v4().simple().to_string()[..8]
                ),
                driver: Some("bridge".into()),
                options: Some(HashMap::from([(
                    "com.docker.network.bridge.enable_icc".to_owned(),
                    "false".to_owned(),
                )])),
                labels: Some(HashMap::from([
                    (LABEL_MANAGED.to_owned(), "true".to_owned()),
                    (LABEL_NETWORK.to_owned(), "spaces".to_owned()),
                ])),
                ..Default::default()
            };
            docker
                .create_network(request)
                .await
                .map_err(|e| classify("creating the spaces network", e))?;
            ids = list().await?;
        }
        let Some(chosen) = ids.first().cloned() else {
            return Err(RuntimeError::Failed(
                "the spaces network vanished as it was made".into(),
            ));
        };
        for extra in ids.iter().skip(1) {
            // Only empty ones go; one in use stays until its containers are gone. The rules
            // of its bridge go with it (swept once the bridge is gone).
            if docker.remove_network(extra).await.is_ok() {
                if let Err(e) = blocking(firewall::sweep).await {
                    tracing::debug!(error = %e, "no network rules to sweep");
                }
            }
        }
        *known = Some(chosen.clone());
        Ok(chosen)
    }

    /// The space's container's process, address and MAC on the spaces network; `None` when
    /// it has no running container there.
    async fn endpoint(
        &self,
        docker: &bollard::Docker,
        container: &str,
        network_id: &str,
    ) -> Result<Option<(u32, std::net::Ipv4Addr, String)>, RuntimeError> {
        let Some(info) = crate::runtime::container::inspect(docker, container).await? else {
            return Ok(None);
        };
        let pid = info
            .state
            .as_ref()
            .and_then(|s| s.pid)
            .and_then(|p| u32::try_from(p).ok())
            .filter(|p| *p > 0);
        let endpoint = info
            .network_settings
            .as_ref()
            .and_then(|n| n.networks.as_ref())
            .into_iter()
            .flatten()
            .find(|(_, e)| e.network_id.as_deref() == Some(network_id))
            .map(|(_, e)| e.clone());
        let address = endpoint
            .as_ref()
            .and_then(|e| e.ip_address.as_deref())
            .and_then(|ip| ip.parse::<std::net::Ipv4Addr>().ok());
        let mac = endpoint
            .and_then(|e| e.mac_address)
            .filter(|m| !m.is_empty());
        Ok(match (pid, address, mac) {
            (Some(pid), Some(address), Some(mac)) => Some((pid, address, mac)),
            _ => None,
        })
    }

    /// Pins the address of the space's running container to it on the bridge (see
    /// [`neighbours`]). Where this host cannot (not root, tools missing, an engine on another
    /// machine) nothing is done: the network status says so.
    pub(super) async fn pin_container(
        &self,
        docker: &bollard::Docker,
        container: &str,
        network_id: &str,
        bridge: Option<String>,
    ) -> Result<(), RuntimeError> {
        let Some(bridge) = bridge.filter(|b| firewall::interface_exists(b)) else {
            return Ok(());
        };
        if neighbours::host_support().is_err() {
            return Ok(());
        }
        let Some((pid, address, mac)) = self.endpoint(docker, container, network_id).await? else {
            return Err(RuntimeError::Failed(
                "the container has no address on the spaces network".into(),
            ));
        };
        // Under the guard's lock: a sweep (another start's) that listed the network before
        // this container joined it must not remove the pin right after it is made.
        let _guard = self.guard.lock().await;
        blocking(move || neighbours::pin(&bridge, pid, address, &mac))
            .await
            .map_err(|e| {
                RuntimeError::Failed(format!(
                    "cannot pin the space's address to its container on the spaces network \
                     ({e}): it is not started, so that no other space can take its traffic"
                ))
            })
    }

    /// Pins every running space container of this installation (see [`Self::pin_container`]);
    /// failures are logged.
    pub(super) async fn pin_running(
        &self,
        docker: &bollard::Docker,
        network_id: &str,
        bridge: Option<String>,
    ) {
        let filter = labelled(vec![
            format!(
                "{}={}",
                crate::runtime::LABEL_INSTALLATION,
                self.installation
            ),
            crate::runtime::LABEL_SPACE.to_owned(),
        ]);
        let options = bollard::query_parameters::ListContainersOptionsBuilder::new()
            .filters(&filter)
            .build();
        let containers = match docker.list_containers(Some(options)).await {
            Ok(containers) => containers,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the running spaces to pin them");
                return;
            }
        };
        for id in containers.into_iter().filter_map(|c| c.id) {
            if let Err(e) = self
                .pin_container(docker, &id, network_id, bridge.clone())
                .await
            {
                tracing::warn!(container = %id, error = %e, "a running space is not pinned");
            }
        }
    }
}
