//! What listens inside a space: read from `/proc/net/tcp` and `/proc/net/tcp6` through an exec
//! in the space, and pushed to the pages that show it (one scan per watched space, every two
//! seconds while someone watches, whatever the number of viewers).

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use app::ids::SpaceId;
use futures_util::stream::StreamExt;
use tokio::sync::watch;

use crate::runtime::{ExecOutput, ExecRequest, Runtime};

/// How often a watched space is scanned.
pub const EVERY: Duration = Duration::from_secs(2);
/// Most output of one scan read (a space with thousands of sockets is cut there).
const MAX_OUTPUT: usize = 1 << 20;
/// How long one scan may take.
const SCAN_TIMEOUT: Duration = Duration::from_secs(5);

/// A listening TCP socket of a space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listening {
    pub port: u16,
    pub address: String,
    /// Bound to all addresses (or the space's own), not the loopback only.
    pub reachable: bool,
}

/// The state of a watched space's ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scan {
    Pending,
    Ports(Vec<Listening>),
    Failed(String),
}

/// Docker's embedded DNS server, which listens inside every container of a user-defined
/// network (a TCP port of its choosing on this address): the engine's, not the space's.
const DOCKER_DNS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);

fn ipv4(hex: &str) -> Option<Ipv4Addr> {
    // The kernel prints the address as one 32-bit word in host (little-endian) order.
    let word = u32::from_str_radix(hex, 16).ok()?;
    Some(Ipv4Addr::from(word.swap_bytes()))
}

fn ipv6(hex: &str) -> Option<Ipv6Addr> {
    if hex.len() != 32 {
        return None;
    }
    let mut bytes = [0u8; 16];
    for word in 0..4 {
        let value = u32::from_str_radix(&hex[word * 8..word * 8 + 8], 16).ok()?;
        bytes[word * 4..word * 4 + 4].copy_from_slice(&value.swap_bytes().to_be_bytes());
    }
    Some(Ipv6Addr::from(bytes))
}

/// The listening sockets in the text of `/proc/net/tcp` and `/proc/net/tcp6`, one per port
/// (a port open on all addresses wins over the same port on the loopback), sorted by port.
pub fn parse_proc_net_tcp(text: &str) -> Vec<Listening> {
    let mut by_port: HashMap<u16, Listening> = HashMap::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // sl local_address rem_address st ...; 0A is LISTEN.
        if fields.len() < 4 || fields[3] != "0A" {
            continue;
        }
        let Some((address, port)) = fields[1].split_once(':') else {
            continue;
        };
        let Ok(port) = u16::from_str_radix(port, 16) else {
            continue;
        };
        let (shown, loopback) = match address.len() {
            8 => match ipv4(address) {
                Some(ip) if ip == DOCKER_DNS => continue,
                Some(ip) => (ip.to_string(), ip.is_loopback()),
                None => continue,
            },
            _ => match ipv6(address) {
                Some(ip) => (ip.to_string(), ip.is_loopback()),
                None => continue,
            },
        };
        let found = Listening {
            port,
            address: shown,
            reachable: !loopback,
        };
        by_port
            .entry(port)
            .and_modify(|known| {
                if found.reachable && !known.reachable {
                    *known = found.clone();
                }
            })
            .or_insert(found);
    }
    let mut ports: Vec<Listening> = by_port.into_values().collect();
    ports.sort_by_key(|p| p.port);
    ports
}

/// Reads what listens in the space now.
pub async fn scan(runtime: &dyn Runtime, space_id: &SpaceId) -> Result<Vec<Listening>, String> {
    let request = ExecRequest {
        cmd: vec![
            "cat".into(),
            "/proc/net/tcp".into(),
            "/proc/net/tcp6".into(),
        ],
        ..Default::default()
    };
    let read = async {
        let mut exec = runtime
            .exec(space_id, request)
            .await
            .map_err(|e| e.to_string())?;
        let mut text = Vec::new();
        while let Some(chunk) = exec.output.next().await {
            if let Ok(ExecOutput::Stdout(bytes)) = chunk {
                text.extend_from_slice(&bytes);
                if text.len() > MAX_OUTPUT {
                    break;
                }
            }
        }
        Ok::<_, String>(String::from_utf8_lossy(&text).into_owned())
    };
    match tokio::time::timeout(SCAN_TIMEOUT, read).await {
        Ok(Ok(text)) => Ok(parse_proc_net_tcp(&text)),
        Ok(Err(e)) => Err(e),
        Err(_) => Err("the space did not answer the port scan in time".into()),
    }
}

/// The scans of spaces someone is watching.
#[derive(Default)]
pub struct PortScans {
    scans: Arc<Mutex<HashMap<SpaceId, watch::Receiver<Scan>>>>,
}

impl PortScans {
    /// Follows the ports of a space: starts scanning it unless someone already watches it.
    /// Scanning stops once nobody does.
    pub fn watch(&self, runtime: Arc<dyn Runtime>, space_id: &SpaceId) -> watch::Receiver<Scan> {
        let mut scans = self.scans.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(receiver) = scans.get(space_id) {
            if receiver.has_changed().is_ok() {
                return receiver.clone();
            }
        }
        let (sender, receiver) = watch::channel(Scan::Pending);
        scans.insert(space_id.clone(), receiver.clone());
        let all = self.scans.clone();
        let space_id = space_id.clone();
        tokio::spawn(async move {
            loop {
                let found = match scan(runtime.as_ref(), &space_id).await {
                    Ok(ports) => Scan::Ports(ports),
                    Err(e) => Scan::Failed(e),
                };
                sender.send_if_modified(|current| {
                    let changed = *current != found;
                    *current = found;
                    changed
                });
                tokio::time::sleep(EVERY).await;
                // Only the map's own receiver left: nobody watches any more.
                let mut scans = all.lock().unwrap_or_else(|p| p.into_inner());
                if sender.receiver_count() <= 1 {
                    scans.remove(&space_id);
                    return;
                }
            }
        });
        receiver
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0
   2: 0200A8C0:1F90 0100A8C0:D431 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0 20 4 30 10 -1
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:3419 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4 1 0 100 0 0 10 0
   1: 00000000000000000000000001000000:0CEA 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5 1 0 100 0 0 10 0
";

    #[test]
    fn reads_listening_sockets_of_both_families() {
        let ports = parse_proc_net_tcp(SAMPLE);
        assert_eq!(
            ports,
            vec![
                Listening {
                    port: 3306,
                    address: "127.0.0.1".into(),
                    reachable: false
                },
                Listening {
                    port: 8080,
                    address: "0.0.0.0".into(),
                    reachable: true
                },
                Listening {
                    port: 13337,
                    address: "::".into(),
                    reachable: true
                },
            ]
        );
    }

    #[test]
    fn dockers_embedded_dns_is_not_a_port_of_the_space() {
        // 127.0.0.11:42001, as Docker's resolver listens in a space.
        let ports = parse_proc_net_tcp(
            "0: 0B00007F:A411 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1 1 0",
        );
        assert_eq!(ports, vec![]);
    }

    #[test]
    fn ipv6_loopback_is_recognised() {
        let ports = parse_proc_net_tcp(
            "0: 00000000000000000000000001000000:0050 00000000000000000000000000000000:0000 0A x",
        );
        assert_eq!(ports[0].address, "::1");
        assert!(!ports[0].reachable);
    }
}
