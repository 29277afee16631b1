//! Pins each space's address on the spaces bridge to its own container, so that no space takes
//! a neighbour's traffic, not even one with raw sockets (a privileged or `raw_sockets`
//! template) that answers ARP for the neighbour's address or sends frames from its MAC:
//! - the host's neighbour entry for the address is permanent: no ARP packet changes where
//!   Hangar (its port proxy, its forwards) sends what is meant for that space;
//! - the bridge's entry for the container's MAC is static and sticky on the container's own
//!   port: a frame from another port with that MAC as its source does not move it;
//! - the port is isolated: spaces' ports exchange no frames at all, so no space answers
//!   another's ARP for the gateway (and receives its replies).
//!
//! Hangar runs `nsenter`, `ip` and `bridge` as root on the Docker host, as it runs iptables for
//! [`crate::runtime::firewall`]; every call is a few milliseconds.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `/proc/net/arp`'s flags of a complete, permanent entry (ATF_COM | ATF_PERM).
const PERMANENT: u32 = 0x2 | 0x4;

fn tool(name: &str) -> Option<PathBuf> {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .into_iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.is_file())
}

/// Why Hangar cannot pin spaces' addresses on this host, if it cannot.
pub fn host_support() -> Result<(), String> {
    if !rustix::process::geteuid().is_root() {
        return Err("Hangar is not running as root".into());
    }
    for (name, package) in [
        ("ip", "iproute2"),
        ("bridge", "iproute2"),
        ("nsenter", "util-linux"),
    ] {
        if tool(name).is_none() {
            return Err(format!(
                "`{name}` is not installed (apt-get install {package})"
            ));
        }
    }
    Ok(())
}

/// Runs a tool; its output, or an error carrying its stderr.
fn run(name: &str, args: &[&str]) -> Result<String, String> {
    let path = tool(name).ok_or_else(|| format!("`{name}` is not installed"))?;
    let output = Command::new(path)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {name}: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "{name} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// A MAC address as `ip` and `bridge` take it (six lower-case hex pairs), or an error.
fn mac(text: &str) -> Result<String, String> {
    let pairs: Vec<&str> = text.split(':').collect();
    if pairs.len() == 6
        && pairs
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
    {
        Ok(text.to_ascii_lowercase())
    } else {
        Err(format!("`{text}` is not a MAC address"))
    }
}

/// The host-side index of the link that has `mac` inside the network namespace of `pid`:
/// `ip -o link` there shows a veth as `NN: eth0@ifMM: ... link/ether MAC`, MM being its peer.
fn peer_index(links: &str, mac: &str) -> Option<u32> {
    links
        .lines()
        .find(|line| {
            line.split_whitespace()
                .skip_while(|w| *w != "link/ether")
                .nth(1)
                .is_some_and(|m| m.eq_ignore_ascii_case(mac))
        })
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|name| name.trim_end_matches(':').rsplit_once("@if"))
        .and_then(|(_, index)| index.parse().ok())
}

/// The bridge port (host-side veth) of the container whose process is `pid` and whose MAC is
/// `mac`.
fn port_of(bridge: &str, pid: u32, mac: &str) -> Result<String, String> {
    let links = run(
        "nsenter",
        &[
            &format!("--net=/proc/{pid}/ns/net"),
            "ip",
            "-o",
            "link",
            "show",
        ],
    )?;
    let index = peer_index(&links, mac)
        .ok_or_else(|| format!("the container has no veth link with MAC {mac}"))?;
    let ports = std::fs::read_dir(Path::new("/sys/class/net").join(bridge).join("brif"))
        .map_err(|e| format!("cannot list the ports of {bridge}: {e}"))?;
    for port in ports.flatten() {
        let name = port.file_name().to_string_lossy().into_owned();
        let found =
            std::fs::read_to_string(Path::new("/sys/class/net").join(&name).join("ifindex"))
                .ok()
                .and_then(|i| i.trim().parse::<u32>().ok());
        if found == Some(index) {
            return Ok(name);
        }
    }
    Err(format!(
        "no port of {bridge} is the container's link (index {index})"
    ))
}

/// Pins `address` to the container (process `pid`, MAC `mac`) on `bridge`: the host's
/// neighbour entry, the bridge's forwarding entry, and the port's isolation.
pub fn pin(bridge: &str, pid: u32, address: Ipv4Addr, mac_address: &str) -> Result<(), String> {
    let mac = mac(mac_address)?;
    if !crate::runtime::firewall::interface_exists(bridge) {
        return Err(format!("the bridge {bridge} is not on this host"));
    }
    let port = port_of(bridge, pid, &mac)?;
    let address = address.to_string();
    // Two entries of their own, made at once: a start waits for both.
    let (neighbour, forwarding) = std::thread::scope(|both| {
        let neighbour = both.spawn(|| {
            run(
                "ip",
                &[
                    "neigh",
                    "replace",
                    &address,
                    "lladdr",
                    &mac,
                    "nud",
                    "permanent",
                    "dev",
                    bridge,
                ],
            )
        });
        let forwarding = run(
            "bridge",
            &[
                "fdb", "replace", &mac, "dev", &port, "master", "static", "sticky",
            ],
        );
        let neighbour = neighbour
            .join()
            .unwrap_or_else(|_| Err("making the neighbour entry failed".to_owned()));
        (neighbour, forwarding)
    });
    neighbour?;
    forwarding?;
    let isolated = Path::new("/sys/class/net")
        .join(&port)
        .join("brport/isolated");
    std::fs::write(&isolated, "1").map_err(|e| format!("cannot isolate port {port}: {e}"))
}

/// The addresses `/proc/net/arp` has permanent entries of on `bridge`.
fn pins_in(table: &str, bridge: &str) -> Vec<Ipv4Addr> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let flags = words
                .get(2)
                .and_then(|f| u32::from_str_radix(f.trim_start_matches("0x"), 16).ok())?;
            (words.len() >= 6 && words[5] == bridge && flags & PERMANENT == PERMANENT)
                .then(|| words[0].parse().ok())
                .flatten()
        })
        .collect()
}

/// Removes the host's pins on `bridge` of addresses no container holds (`held` are those that
/// are): their spaces stopped (the bridge's entries went with their ports).
pub fn sweep(bridge: &str, held: &[Ipv4Addr]) -> Result<(), String> {
    let table = std::fs::read_to_string("/proc/net/arp")
        .map_err(|e| format!("cannot read /proc/net/arp: {e}"))?;
    for address in pins_in(&table, bridge) {
        if !held.contains(&address) {
            run("ip", &["neigh", "del", &address.to_string(), "dev", bridge])?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn the_containers_veth_is_found_by_its_mac_and_names_its_peer() {
        let links = "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN \
                     mode DEFAULT group default qlen 1000\\    link/loopback 00:00:00:00:00:00 \
                     brd 00:00:00:00:00:00\n\
                     1653: eth0@if1654: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc \
                     noqueue state UP mode DEFAULT group default \\    link/ether \
                     02:42:AC:13:00:02 brd ff:ff:ff:ff:ff:ff link-netnsid 0\n";
        assert_eq!(peer_index(links, "02:42:ac:13:00:02"), Some(1654));
        assert_eq!(peer_index(links, "02:42:ac:13:00:03"), None);
    }

    #[test]
    fn only_mac_addresses_reach_the_tools() {
        assert_eq!(mac("02:42:AC:13:00:02").unwrap(), "02:42:ac:13:00:02");
        for bad in [
            "",
            "02:42:ac:13:00",
            "02:42:ac:13:00:0g",
            "-f:42:ac:13:00:02",
            "x y",
        ] {
            assert!(mac(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_permanent_entries_of_the_bridge_are_pins() {
        let table = "IP address       HW type     Flags       HW address            Mask     Device\n\
                     172.19.0.2       0x1         0x6         02:42:ac:13:00:02     *        br-a\n\
                     172.19.0.3       0x1         0x2         02:42:ac:13:00:03     *        br-a\n\
                     172.20.0.2       0x1         0x6         02:42:ac:14:00:02     *        br-b\n";
        assert_eq!(pins_in(table, "br-a"), [Ipv4Addr::new(172, 19, 0, 2)]);
        assert!(pins_in(table, "br-c").is_empty());
    }
}
