//! The one network all of a Docker engine's spaces share, and the rules on its bridge that
//! keep spaces from the host (see [`crate::runtime::firewall`]).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::models::NetworkCreateRequest;

use super::{blocking, DockerRuntime};
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

/// The network rules as last checked: on which bridge, when, and the outcome.
pub(super) struct NetworkGuard {
    checked: Option<(String, Instant)>,
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
    /// network's bridge, unless checked there recently; the outcome is kept for
    /// [`crate::runtime::Runtime::enforcement`] and logged when it changes.
    pub(super) async fn guard_network(&self, docker: &bollard::Docker, network_id: &str) {
        let mut guard = self.guard.lock().await;
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
                return;
            }
        };
        let bridge = info
            .options
            .as_ref()
            .and_then(|o| o.get("com.docker.network.bridge.name").cloned())
            .unwrap_or_else(|| format!("br-{}", network_id.get(..12).unwrap_or(network_id)));
        if let Some((checked, at)) = &guard.checked {
            if *checked == bridge && at.elapsed() < FIREWALL_RECHECK {
                return;
            }
        }
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
        if status != guard.status {
            match &status {
                Ok(text) => tracing::info!("network isolation {text}"),
                Err(reason) => tracing::warn!("spaces are NOT kept from the host: {reason}"),
            }
        }
        guard.status = status;
        guard.checked = Some((bridge, Instant::now()));
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
}
