//! Each space's own attachable overlay network (spaces never reach each other, on one node or
//! across nodes), and how Hangar reaches a space's ports: directly when Hangar itself is on
//! the overlay, else through a relay.

use std::time::Instant;

use bollard::models::NetworkCreateRequest;
use bollard::Docker;

use app::ids::SpaceId;

use super::{SwarmRuntime, POLL, STOP_TIMEOUT};
use crate::runtime::container::{self, address_on};
use crate::runtime::error::classify;
use crate::runtime::labels::{
    container_name, labelled, networks, owner_of, space_labels, Owner, LABEL_NETWORK,
};
use crate::runtime::{Reach, RuntimeError, SpaceSpec, LABEL_SPACE};

/// The label [`LABEL_NETWORK`]`=spaces-swarm` (with the space's label) finds a space's own
/// overlay network.
const NETWORK_KIND: &str = "spaces-swarm";

/// Whether this process reaches `address` through an interface of its own on the overlay
/// (the kernel's choice of source address for it is in one of the overlay's `subnets`): then
/// Hangar runs attached to the overlay and dials spaces directly.
fn on_the_overlay(address: std::net::IpAddr, subnets: &[String]) -> bool {
    let unspecified: std::net::IpAddr = if address.is_ipv4() {
        std::net::Ipv4Addr::UNSPECIFIED.into()
    } else {
        std::net::Ipv6Addr::UNSPECIFIED.into()
    };
    // A UDP socket's connect sends nothing: it only picks the route and the source address.
    let Ok(socket) = std::net::UdpSocket::bind((unspecified, 0)) else {
        return false;
    };
    if socket.connect((address, 9)).is_err() {
        return false;
    }
    let Ok(local) = socket.local_addr() else {
        return false;
    };
    subnets.iter().any(|subnet| in_subnet(local.ip(), subnet))
}

/// Whether `ip` is in the CIDR block `subnet` (`10.0.1.0/24`).
fn in_subnet(ip: std::net::IpAddr, subnet: &str) -> bool {
    let Some((base, bits)) = subnet.split_once('/') else {
        return false;
    };
    let (Ok(base), Ok(bits)) = (base.parse::<std::net::IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    match (ip, base) {
        (std::net::IpAddr::V4(ip), std::net::IpAddr::V4(base)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(ip) & mask == u32::from(base) & mask
        }
        (std::net::IpAddr::V6(ip), std::net::IpAddr::V6(base)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(ip) & mask == u128::from(base) & mask
        }
        _ => false,
    }
}

impl SwarmRuntime {
    /// The ids of the space's own overlay networks, lowest first (two servers starting the
    /// same space at once may each make one: all settle on the lowest).
    pub(super) async fn space_networks(
        &self,
        manager: &Docker,
        space_id: &SpaceId,
    ) -> Result<Vec<String>, RuntimeError> {
        let filter = labelled(vec![
            format!("{LABEL_NETWORK}={NETWORK_KIND}"),
            format!("{LABEL_SPACE}={space_id}"),
        ]);
        let mut ids: Vec<String> = networks(manager, &filter)
            .await?
            .into_iter()
            .filter(|n| owner_of(n.labels.as_ref(), &self.settings.installation) == Owner::Us)
            .filter_map(|n| n.id)
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// The space's own attachable overlay, made on its first start: one network a space, so
    /// that spaces never reach each other, on one node or across nodes.
    pub(super) async fn space_network(
        &self,
        manager: &Docker,
        space: &SpaceSpec,
    ) -> Result<String, RuntimeError> {
        if let Some(id) = self.space_networks(manager, &space.id).await?.first() {
            return Ok(id.clone());
        }
        let mut labels = space_labels(&self.settings.installation, space);
        labels.insert(LABEL_NETWORK.to_owned(), NETWORK_KIND.to_owned());
        let request = NetworkCreateRequest {
            name: format!("{}-net", container_name(&space.id)),
            driver: Some("overlay".into()),
            attachable: Some(true),
            labels: Some(labels),
            ..Default::default()
        };
        manager
            .create_network(request)
            .await
            .map_err(|e| classify("creating the space's overlay network", e))?;
        self.space_networks(manager, &space.id)
            .await?
            .first()
            .cloned()
            .ok_or_else(|| {
                RuntimeError::Failed("the space's overlay network vanished as it was made".into())
            })
    }

    /// Removes the space's overlay networks, waiting while the ended task's endpoint still
    /// holds them.
    pub(super) async fn remove_space_networks(
        &self,
        manager: &Docker,
        space_id: &SpaceId,
    ) -> Result<(), RuntimeError> {
        for id in self.space_networks(manager, space_id).await? {
            let deadline = Instant::now() + STOP_TIMEOUT;
            loop {
                match manager
                    .remove_network(&id)
                    .await
                    .map_err(|e| classify("removing the space's overlay network", e))
                {
                    Ok(()) | Err(RuntimeError::NotFound { .. }) => break,
                    // In use (Docker says so with 403, 409 or 500): a moment more.
                    Err(RuntimeError::Conflict(_) | RuntimeError::Failed(_))
                        if Instant::now() < deadline =>
                    {
                        tokio::time::sleep(POLL).await
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    async fn overlay_subnets(
        &self,
        manager: &Docker,
        network_id: &str,
    ) -> Result<Vec<String>, RuntimeError> {
        let network = manager
            .inspect_network(
                network_id,
                None::<bollard::query_parameters::InspectNetworkOptions>,
            )
            .await
            .map_err(|e| classify("inspecting the spaces overlay network", e))?;
        let subnets: Vec<String> = network
            .ipam
            .and_then(|ipam| ipam.config)
            .into_iter()
            .flatten()
            .filter_map(|config| config.subnet)
            .collect();
        Ok(subnets)
    }

    /// The container's address on the overlay when Hangar itself is on that overlay (runs as
    /// a task or container attached to it); otherwise a relay through the node's engine.
    pub(super) async fn reach_space(
        &self,
        space_id: &SpaceId,
    ) -> Result<Option<Reach>, RuntimeError> {
        let Ok(located) = self.locate(space_id).await else {
            return Ok(None);
        };
        let manager = self.manager().await?;
        let Some(network_id) = self
            .space_networks(&manager, space_id)
            .await?
            .into_iter()
            .next()
        else {
            return Ok(Some(Reach::Relay));
        };
        let Some(info) = container::inspect(&located.engine, &located.container).await? else {
            return Ok(None);
        };
        let labels = info.config.as_ref().and_then(|c| c.labels.as_ref());
        if labels.and_then(|l| l.get(LABEL_SPACE)) != Some(&space_id.to_string()) {
            return Ok(None);
        }
        let Some(address) = address_on(&info, &network_id) else {
            return Ok(Some(Reach::Relay));
        };
        let subnets = self.overlay_subnets(&manager, &network_id).await?;
        Ok(Some(if on_the_overlay(address, &subnets) {
            Reach::Address(address)
        } else {
            Reach::Relay
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_hold_their_addresses_only() {
        let ip = |s: &str| {
            s.parse::<std::net::IpAddr>()
                .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into())
        };
        assert!(in_subnet(ip("10.0.1.7"), "10.0.1.0/24"));
        assert!(!in_subnet(ip("10.0.2.7"), "10.0.1.0/24"));
        assert!(in_subnet(ip("10.255.3.4"), "10.0.0.0/8"));
        assert!(in_subnet(ip("1.2.3.4"), "0.0.0.0/0"));
        assert!(!in_subnet(ip("10.0.1.7"), "fd00::/8"));
        assert!(in_subnet(ip("fd00::1"), "fd00::/8"));
        assert!(!in_subnet(ip("10.0.1.7"), "10.0.1.0"));
        assert!(!in_subnet(ip("10.0.1.7"), "10.0.1.0/33"));
    }

    #[test]
    fn this_host_is_not_on_an_overlay_it_has_no_interface_in() {
        // 198.51.100.0/24 is TEST-NET-2: reached by the default route, from another address.
        assert!(!on_the_overlay(
            "198.51.100.10"
                .parse()
                .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into()),
            &["198.51.100.0/24".to_owned()]
        ));
        // The loopback route's source address is the loopback's own.
        assert!(on_the_overlay(
            std::net::Ipv4Addr::LOCALHOST.into(),
            &["127.0.0.0/8".to_owned()]
        ));
    }
}
