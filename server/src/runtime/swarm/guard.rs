//! Keeps a swarm's spaces from the nodes, as the Docker runtime's firewall keeps them from
//! its host: on every node a space runs on, packets that containers send out through
//! `docker_gwbridge` (their way out of an overlay) to an address of that node, to any address
//! of any node of the swarm, to broadcast or multicast, or to link-local 169.254.0.0/16 are
//! dropped; replies and the rest of the world pass. Without this a space could reach the
//! nodes' engines, which may listen on any address of their node.
//!
//! Hangar has no agent on the nodes: it runs a short-lived helper through the node's engine,
//! from Hangar's own small image ([`GUARD_IMAGE`]: busybox and iptables, never a template's),
//! with the host's network and nothing of its file system. The helper says what the node is
//! (its addresses, read on the node itself; whether its engine gives every container
//! `no_new_privs`) and installs the rules with the iptables back end the node's own rules are
//! in (nf_tables or legacy). The rules sit in a chain of their own, `HANGAR-SWARM` in the
//! `mangle` table, rewritten whole each time. Every container on `docker_gwbridge` is covered,
//! so the swarm is meant to be Hangar's.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::models::{ContainerCreateBody, HostConfig, Node};
use bollard::Docker;

use super::helper::run_to_end;
use super::{node_name, node_unusable, swarm_nodes, SwarmRuntime};
use crate::runtime::{RuntimeError, LABEL_INSTALLATION, LABEL_MANAGED};

/// Hangar's own image for the helper (`scripts/images.sh guard` builds it; every node needs
/// it: `docker save hangar/guard:2 | docker -H NODE load`). The same tag is in the script.
pub const GUARD_IMAGE: &str = "hangar/guard:2";

/// A node's rules are checked again after this long (a rebooted node has lost them), and
/// what a node said of itself is asked again.
pub const GUARD_FRESH: Duration = Duration::from_secs(60);
/// How long one helper run may take.
const GUARD_TIMEOUT: Duration = Duration::from_secs(30);
/// The first Docker release whose Swarm sets `no_new_privs` from a service's spec (API 1.44).
const NO_NEW_PRIVILEGES_PER_SERVICE: u32 = 25;

/// Runs on the node in Hangar's image. Reports the node (`address A` lines, `nnp 0|1`, and
/// `loops 0|1`: whether its kernel has loop devices and ext4 for sized volumes); with
/// `install ADDRESS...` it then installs the chain, the other nodes' addresses as arguments.
const SCRIPT: &str = r#"set -e
mode=$1; shift
ip -4 addr show | awk '$1 == "inet" { split($2, a, "/"); if (a[1] !~ /^127\./) print "address " a[1] }'
awk '$1 == "NoNewPrivs:" { print "nnp " $2 }' /proc/self/status
if [ -e /sys/class/misc/loop-control ] && grep -qw ext4 /proc/filesystems; then echo "loops 1"; else echo "loops 0"; fi
[ "$mode" = install ] || exit 0
legacy=$(iptables-legacy-save 2>/dev/null | grep -c '^-' || true)
nft=$(iptables-nft-save 2>/dev/null | grep -c '^-' || true)
if [ "${legacy:-0}" -gt "${nft:-0}" ]; then backend=legacy; else backend=nft; fi
ipt() { "iptables-$backend" -w 10 -t mangle "$@"; }
ipt -S HANGAR-SWARM >/dev/null 2>&1 || ipt -N HANGAR-SWARM 2>/dev/null || ipt -S HANGAR-SWARM >/dev/null
ipt -C PREROUTING -j HANGAR-SWARM 2>/dev/null || ipt -I PREROUTING 1 -j HANGAR-SWARM
ipt -F HANGAR-SWARM
ipt -A HANGAR-SWARM -i docker_gwbridge -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN
ipt -A HANGAR-SWARM -i docker_gwbridge -m addrtype ! --dst-type UNICAST -j DROP
ipt -A HANGAR-SWARM -i docker_gwbridge -d 169.254.0.0/16 -j DROP
for address in "$@"; do ipt -A HANGAR-SWARM -i docker_gwbridge -d "$address" -j DROP; done
echo "backend $backend"
echo guarded"#;

/// What the helper found on a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFacts {
    pub name: String,
    /// The node's engine version, as Swarm reports it (`20.10.24+dfsg1`).
    pub engine_version: String,
    /// Its IPv4 addresses, loopback aside.
    pub addresses: Vec<String>,
    /// Whether its engine gives every container `no_new_privs` (`dockerd
    /// --no-new-privileges`; engines before 25 do not say so in their info, the helper sees it).
    pub engine_no_new_privileges: bool,
    /// Whether its kernel offers loop devices and ext4 (sized volumes, see [`super::disks`]).
    pub loop_devices: bool,
}

/// What the helper reported of its node.
#[derive(Debug, Default, PartialEq, Eq)]
struct Report {
    addresses: Vec<String>,
    no_new_privileges: bool,
    loop_devices: bool,
}

/// The helper's report: the node's addresses, whether it runs with `no_new_privs`, and
/// whether it has loop devices.
fn parse_report(output: &str) -> Report {
    let mut addresses = Vec::new();
    let mut no_new_privileges = false;
    let mut loop_devices = false;
    for line in output.lines() {
        match line.trim().split_once(' ') {
            Some(("address", address)) if address.parse::<std::net::Ipv4Addr>().is_ok() => {
                addresses.push(address.to_owned());
            }
            Some(("nnp", flag)) => no_new_privileges = flag.trim() == "1",
            Some(("loops", flag)) => loop_devices = flag.trim() == "1",
            _ => {}
        }
    }
    addresses.sort();
    addresses.dedup();
    Report {
        addresses,
        no_new_privileges,
        loop_devices,
    }
}

/// The major version of an engine version (`20.10.24+dfsg1` is 20); 0 when unreadable.
fn major(version: &str) -> u32 {
    version
        .split('.')
        .next()
        .and_then(|m| m.trim_start_matches('v').parse().ok())
        .unwrap_or(0)
}

/// Why a node cannot give spaces `no_new_privs`, when it cannot: neither its Swarm (Docker 25
/// and later set it from the spec) nor its engine (`--no-new-privileges`) does.
pub fn lacks_no_new_privileges(node: &NodeFacts) -> Option<String> {
    (major(&node.engine_version) < NO_NEW_PRIVILEGES_PER_SERVICE && !node.engine_no_new_privileges)
        .then(|| {
            format!(
                "node {} (Docker {}) cannot give spaces no-new-privileges: Swarm sets it from a \
                 service's spec on Docker {NO_NEW_PRIVILEGES_PER_SERVICE} (API 1.44) and later \
                 only, and its engine does not set it for every container. Upgrade Docker there, \
                 or start its dockerd with --no-new-privileges",
                node.name, node.engine_version
            )
        })
}

/// Whether spaces on every node seen so far run with `no_new_privs`, and how; else which
/// nodes cannot, and what to do.
pub fn privileges_status(nodes: &[NodeFacts]) -> Result<String, String> {
    if nodes.is_empty() {
        return Err(
            "not checked yet: Hangar checks each node when a space first starts on \
                    the swarm (and `hangar doctor` checks them all)"
                .to_owned(),
        );
    }
    let mut by_spec = Vec::new();
    let mut by_engine = Vec::new();
    let mut lacking = Vec::new();
    for node in nodes {
        if major(&node.engine_version) >= NO_NEW_PRIVILEGES_PER_SERVICE {
            by_spec.push(node.name.as_str());
        } else if node.engine_no_new_privileges {
            by_engine.push(node.name.as_str());
        } else {
            lacking.push(format!("{} (Docker {})", node.name, node.engine_version));
        }
    }
    if !lacking.is_empty() {
        return Err(format!(
            "spaces on {} can gain privileges through setuid programs: Swarm sets \
             no-new-privileges from a service's spec on Docker {NO_NEW_PRIVILEGES_PER_SERVICE} \
             (API 1.44) and later only, and these engines do not set it for every container. \
             Upgrade Docker there, or start their dockerd with --no-new-privileges",
            lacking.join(", ")
        ));
    }
    let mut how = Vec::new();
    if !by_spec.is_empty() {
        how.push(format!("from each space's spec on {}", by_spec.join(", ")));
    }
    if !by_engine.is_empty() {
        how.push(format!(
            "by the engine (dockerd --no-new-privileges) on {}",
            by_engine.join(", ")
        ));
    }
    Ok(format!(
        "enforced: spaces run with no-new-privileges (but those of privileged templates) on \
         every node checked: {}",
        how.join("; ")
    ))
}

/// The helper container: Hangar's image, the host's network, nothing of the host's file
/// system, and only the rights iptables needs.
fn helper(installation: &str, args: Vec<String>) -> ContainerCreateBody {
    let mut cmd = vec![
        "/bin/sh".to_owned(),
        "-c".to_owned(),
        SCRIPT.to_owned(),
        "hangar-guard".to_owned(),
    ];
    cmd.extend(args);
    ContainerCreateBody {
        image: Some(GUARD_IMAGE.to_owned()),
        entrypoint: Some(Vec::new()),
        cmd: Some(cmd),
        user: Some("0".to_owned()),
        labels: Some(HashMap::from([
            (LABEL_MANAGED.to_owned(), "true".to_owned()),
            (LABEL_INSTALLATION.to_owned(), installation.to_owned()),
        ])),
        host_config: Some(HostConfig {
            network_mode: Some("host".to_owned()),
            cap_drop: Some(vec!["ALL".to_owned()]),
            // Changing rules (netlink) and reading legacy tables (a raw socket).
            cap_add: Some(vec!["NET_ADMIN".to_owned(), "NET_RAW".to_owned()]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

impl SwarmRuntime {
    /// Installs the rules on the node `node_id` unless it was done in the last
    /// [`GUARD_FRESH`] (a start then costs no call at all). The other nodes' addresses are
    /// asked of each of them (at most every [`GUARD_FRESH`]); one that cannot be asked counts
    /// with what it said before and its swarm address.
    fn guard_fresh(&self, node_id: &str) -> bool {
        self.guarded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(node_id)
            .is_some_and(|at| at.elapsed() < GUARD_FRESH)
    }

    pub(super) async fn guard_node(
        &self,
        manager: &Docker,
        node_id: &str,
    ) -> Result<(), RuntimeError> {
        if self.guard_fresh(node_id) {
            return Ok(());
        }
        let lock = self
            .guarding
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(node_id.to_owned())
            .or_default()
            .clone();
        let _installing = lock.lock().await;
        // Another start installed them while this one waited.
        if self.guard_fresh(node_id) {
            return Ok(());
        }
        let nodes = swarm_nodes(manager).await?;
        let others = nodes
            .iter()
            .filter(|n| n.id.as_deref() != Some(node_id) && node_unusable(n).is_none());
        futures_util::future::join_all(others.map(|n| self.learn(n))).await;
        let mut addresses: Vec<String> = nodes
            .iter()
            .filter_map(|node| node.status.as_ref().and_then(|s| s.addr.clone()))
            .filter(|addr| {
                addr.parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| !ip.is_unspecified())
            })
            .collect();
        {
            let facts = self.facts.lock().unwrap_or_else(|p| p.into_inner());
            for (id, (node, _)) in facts.iter() {
                if id != node_id {
                    addresses.extend(node.addresses.iter().cloned());
                }
            }
        }
        addresses.sort();
        addresses.dedup();
        let node = nodes
            .iter()
            .find(|n| n.id.as_deref() == Some(node_id))
            .ok_or_else(|| RuntimeError::Failed(format!("node {node_id} has left the swarm")))?;
        let mut args = vec!["install".to_owned()];
        args.extend(addresses);
        self.run_helper(node, args).await?;
        self.guarded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(node_id.to_owned(), Instant::now());
        Ok(())
    }

    /// Asks a node what it is (its addresses, `no_new_privs`) unless it said so lately; a
    /// failure is logged and the node keeps what it said before.
    pub(super) async fn learn(&self, node: &Node) {
        let id = node.id.clone().unwrap_or_default();
        let fresh = self
            .facts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .is_some_and(|(_, at)| at.elapsed() < GUARD_FRESH);
        if fresh {
            return;
        }
        if let Err(e) = self.run_helper(node, vec!["report".to_owned()]).await {
            tracing::warn!(node = %node_name(node), error = %e,
                "cannot ask a node for its addresses: spaces on other nodes are kept from its \
                 swarm address only");
        }
    }

    /// Asks every usable node what it is, installing nothing (for `hangar doctor`): by node
    /// name, what it said or why it could not be asked.
    pub async fn check_nodes(
        &self,
    ) -> Result<Vec<(String, Result<NodeFacts, String>)>, RuntimeError> {
        let manager = self.manager().await?;
        let nodes = swarm_nodes(&manager).await?;
        let checks = nodes.iter().map(|node| async move {
            let outcome = match node_unusable(node) {
                Some(why) => Err(format!("not checked: it {why}")),
                None => self
                    .run_helper(node, vec!["report".to_owned()])
                    .await
                    .map_err(|e| e.to_string()),
            };
            (node_name(node), outcome)
        });
        let mut checked = futures_util::future::join_all(checks).await;
        checked.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(checked)
    }

    /// What a node last said of itself, if it was ever asked.
    pub(super) fn facts_of(&self, node_id: &str) -> Option<NodeFacts> {
        let facts = self.facts.lock().unwrap_or_else(|p| p.into_inner());
        facts.get(node_id).map(|(node, _)| node.clone())
    }

    /// What every node seen so far said of itself.
    pub(super) fn node_facts(&self) -> Vec<NodeFacts> {
        let facts = self.facts.lock().unwrap_or_else(|p| p.into_inner());
        let mut nodes: Vec<NodeFacts> = facts.values().map(|(node, _)| node.clone()).collect();
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        nodes
    }

    /// Runs the helper on `node` (within [`GUARD_TIMEOUT`]) and keeps what it reported.
    async fn run_helper(&self, node: &Node, args: Vec<String>) -> Result<NodeFacts, RuntimeError> {
        let engine = self.engine_of(node)?;
        let name = node_name(node);
        let body = helper(&self.settings.installation, args);
        let what = "install the node's network rules";
        let output = tokio::time::timeout(GUARD_TIMEOUT, run_to_end(&engine, &name, body, what))
            .await
            .map_err(|_| {
                RuntimeError::Failed(format!(
                    "the network-rules helper took over {} s on node {name}",
                    GUARD_TIMEOUT.as_secs()
                ))
            })??;
        let report = parse_report(&output);
        let facts = NodeFacts {
            name,
            engine_version: node
                .description
                .as_ref()
                .and_then(|d| d.engine.as_ref())
                .and_then(|e| e.engine_version.clone())
                .unwrap_or_default(),
            addresses: report.addresses,
            engine_no_new_privileges: report.no_new_privileges,
            loop_devices: report.loop_devices,
        };
        if let Some(why) = lacks_no_new_privileges(&facts) {
            tracing::warn!("{why}: spaces (but privileged templates') are not started there");
        }
        self.facts.lock().unwrap_or_else(|p| p.into_inner()).insert(
            node.id.clone().unwrap_or_default(),
            (facts.clone(), Instant::now()),
        );
        Ok(facts)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn the_helper_is_hangars_own_image_with_nothing_of_the_hosts_files() {
        let body = helper("inst", vec!["report".into()]);
        assert_eq!(body.image.as_deref(), Some(GUARD_IMAGE));
        let host = body.host_config.unwrap();
        assert_eq!(host.network_mode.as_deref(), Some("host"));
        assert!(
            host.binds.is_none() && host.mounts.is_none(),
            "no host paths"
        );
        assert_eq!(host.cap_drop, Some(vec!["ALL".to_owned()]));
        assert_eq!(
            host.cap_add,
            Some(vec!["NET_ADMIN".to_owned(), "NET_RAW".to_owned()])
        );
        assert!(host.privileged.is_none());
        assert_eq!(body.cmd.unwrap().last().map(String::as_str), Some("report"));
    }

    #[test]
    fn a_report_gives_the_nodes_addresses_and_its_no_new_privileges_bit() {
        let report = parse_report(
            "address 172.20.0.3\naddress 10.213.0.3\r\naddress 172.20.0.3\nnnp 1\nbackend nft\n\
             address not-an-ip\nloops 1\nguarded\n",
        );
        assert_eq!(report.addresses, ["10.213.0.3", "172.20.0.3"]);
        assert!(report.no_new_privileges && report.loop_devices);
        let other = parse_report("address 10.0.0.1\nnnp 0\nloops 0\n");
        assert!(!other.no_new_privileges && !other.loop_devices);
    }

    fn node(name: &str, version: &str, nnp: bool) -> NodeFacts {
        NodeFacts {
            name: name.to_owned(),
            engine_version: version.to_owned(),
            addresses: Vec::new(),
            engine_no_new_privileges: nnp,
            loop_devices: true,
        }
    }

    #[test]
    fn no_new_privileges_is_enforced_by_a_recent_swarm_or_by_the_engine_and_said_otherwise() {
        assert!(privileges_status(&[])
            .unwrap_err()
            .starts_with("not checked"));
        let ok = privileges_status(&[
            node("a", "25.0.3", false),
            node("b", "20.10.24+dfsg1", true),
        ])
        .unwrap();
        assert!(ok.starts_with("enforced"), "{ok}");
        assert!(
            ok.contains("spec on a") && ok.contains("--no-new-privileges) on b"),
            "{ok}"
        );
        assert!(lacks_no_new_privileges(&node("a", "25.0.3", false)).is_none());
        assert!(lacks_no_new_privileges(&node("b", "20.10.24+dfsg1", true)).is_none());
        let why = lacks_no_new_privileges(&node("c", "24.0.7", false)).unwrap_or_default();
        assert!(
            why.contains("node c (Docker 24.0.7)") && why.contains("Docker 25"),
            "{why}"
        );
        let lacking = privileges_status(&[
            node("a", "28.1.1", false),
            node("b", "20.10.24+dfsg1", false),
        ])
        .unwrap_err();
        assert!(lacking.contains("b (Docker 20.10.24+dfsg1)"), "{lacking}");
        assert!(!lacking.contains("a (Docker"), "{lacking}");
        assert!(lacking.contains("--no-new-privileges"), "{lacking}");
        assert_eq!(major("v26.1.0"), 26);
        assert_eq!(major(""), 0);
    }
}
