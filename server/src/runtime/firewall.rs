//! The rules that keep spaces from reaching the host: on the spaces network's bridge, every
//! packet a space sends to an address of the host (the bridge's gateway, any other address
//! of the host, any port) or to a broadcast or multicast address is dropped, as is anything
//! to link-local 169.254.0.0/16 (cloud metadata services); replies to connections the host
//! opened into a space (a proxied port, say) still pass, and so does the rest of the world.
//!
//! The rules sit in a chain of Hangar's own, `HANGAR-SPACES` in the `mangle` table, jumped to
//! first thing from `PREROUTING`: before routing decides between the host (INPUT) and
//! forwarding, and in a table Docker never rewrites (so they survive a restart of Docker and
//! also work with `dockerd --iptables=false`). Each rule names the bridge, so that removing
//! a network removes exactly its rules. Every Hangar on the host takes one lock file around
//! its changes, so that two of them never interleave.

use std::path::PathBuf;
use std::process::Command;

/// Hangar's chain in the `mangle` table.
pub const CHAIN: &str = "HANGAR-SPACES";

/// Serialises rule changes of every Hangar process on this host.
const LOCK_FILE: &str = "/run/hangar-firewall.lock";

/// Seconds `iptables` waits for the xtables lock that Docker also takes.
const XTABLES_WAIT_SECS: &str = "10";

fn iptables_path() -> Option<PathBuf> {
    ["/usr/sbin/iptables", "/sbin/iptables", "/usr/bin/iptables"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// Why Hangar cannot install the rules on this host, if it cannot.
pub fn host_support() -> Result<(), String> {
    if !rustix::process::geteuid().is_root() {
        return Err("Hangar is not running as root (iptables needs it)".into());
    }
    if iptables_path().is_none() {
        return Err("iptables is not installed (apt-get install iptables)".into());
    }
    Ok(())
}

/// Runs `iptables -w N -t mangle <args>`; the error carries its stderr.
fn iptables(args: &[&str]) -> Result<(), String> {
    let path = iptables_path().ok_or("iptables is not installed")?;
    let output = Command::new(path)
        .args(["-w", XTABLES_WAIT_SECS, "-t", "mangle"])
        .args(args)
        .output()
        .map_err(|e| format!("cannot run iptables: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "iptables {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

fn listing() -> Result<String, String> {
    let path = iptables_path().ok_or("iptables is not installed")?;
    let output = Command::new(path)
        .args(["-w", XTABLES_WAIT_SECS, "-t", "mangle", "-S", CHAIN])
        .output()
        .map_err(|e| format!("cannot run iptables: {e}"))?;
    // A chain that does not exist yet lists nothing.
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The rules of one bridge, in the order they must be in.
pub fn bridge_rules(bridge: &str) -> [Vec<String>; 3] {
    let words = |text: &str| -> Vec<String> {
        text.split(' ')
            .map(|w| if w == "BRIDGE" { bridge } else { w })
            .map(str::to_owned)
            .collect()
    };
    [
        // Replies to what the host opened into a space.
        words("-i BRIDGE -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN"),
        // The host's own addresses, broadcast and multicast: all but plain unicast.
        words("-i BRIDGE -m addrtype ! --dst-type UNICAST -j DROP"),
        words("-i BRIDGE -d 169.254.0.0/16 -j DROP"),
    ]
}

fn has(rule: &[String]) -> bool {
    let mut args = vec!["-C", CHAIN];
    args.extend(rule.iter().map(String::as_str));
    iptables(&args).is_ok()
}

fn delete_all(rule: &[String]) -> Result<(), String> {
    let mut args = vec!["-D", CHAIN];
    args.extend(rule.iter().map(String::as_str));
    // A rule added twice (by hand, say) is deleted twice.
    for _ in 0..16 {
        if !has(rule) {
            return Ok(());
        }
        iptables(&args)?;
    }
    Ok(())
}

/// Holds every Hangar's rule changes on this host still while the returned file is open.
fn lock() -> Result<std::fs::File, String> {
    let file = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(LOCK_FILE)
        .map_err(|e| format!("cannot open {LOCK_FILE}: {e}"))?;
    file.lock()
        .map_err(|e| format!("cannot lock {LOCK_FILE}: {e}"))?;
    Ok(file)
}

/// Whether a network interface of this name exists on this host.
pub fn interface_exists(name: &str) -> bool {
    !name.is_empty() && !name.contains('/') && PathBuf::from("/sys/class/net").join(name).exists()
}

/// Installs (or completes) the rules of `bridge`, and removes those of bridges that are gone.
pub fn install(bridge: &str) -> Result<(), String> {
    host_support()?;
    if !interface_exists(bridge) {
        return Err(format!(
            "the spaces network's bridge {bridge} is not on this host (is the Docker engine \
             on another machine?)"
        ));
    }
    let _lock = lock()?;
    if iptables(&["-S", CHAIN]).is_err() {
        iptables(&["-N", CHAIN])?;
    }
    if iptables(&["-C", "PREROUTING", "-j", CHAIN]).is_err() {
        iptables(&["-I", "PREROUTING", "1", "-j", CHAIN])?;
    }
    let rules = bridge_rules(bridge);
    if !rules.iter().all(|rule| has(rule)) {
        // Some are missing: add them all again, in order.
        for rule in &rules {
            delete_all(rule)?;
        }
        for rule in &rules {
            let mut args = vec!["-A", CHAIN];
            args.extend(rule.iter().map(String::as_str));
            iptables(&args)?;
        }
    }
    sweep_locked(Some(bridge))
}

/// Removes the rules of `bridge` (its network is gone, or spaces may reach the host).
pub fn remove(bridge: &str) -> Result<(), String> {
    host_support()?;
    let _lock = lock()?;
    for rule in &bridge_rules(bridge) {
        delete_all(rule)?;
    }
    sweep_locked(None)
}

/// The bridges the chain has rules for.
pub fn bridges_with_rules() -> Result<Vec<String>, String> {
    let listing = listing()?;
    let mut bridges: Vec<String> = listing
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            words.find(|w| *w == "-i")?;
            words.next().map(str::to_owned)
        })
        .collect();
    bridges.sort();
    bridges.dedup();
    Ok(bridges)
}

/// Removes the rules of bridges that no longer exist (a removed network's).
pub fn sweep() -> Result<(), String> {
    host_support()?;
    let _lock = lock()?;
    sweep_locked(None)
}

/// Removes the rules of bridges that no longer exist (their network was removed while no
/// Hangar was there to see it), and the chain itself once it is empty.
fn sweep_locked(keep: Option<&str>) -> Result<(), String> {
    let bridges = bridges_with_rules()?;
    for bridge in &bridges {
        if Some(bridge.as_str()) != keep && !interface_exists(bridge) {
            for rule in &bridge_rules(bridge) {
                delete_all(rule)?;
            }
        }
    }
    if keep.is_none() && bridges_with_rules()?.is_empty() && iptables(&["-S", CHAIN]).is_ok() {
        let _ = iptables(&["-D", "PREROUTING", "-j", CHAIN]);
        let _ = iptables(&["-X", CHAIN]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn the_rules_name_their_bridge_and_let_replies_through_first() {
        let rules = bridge_rules("br-0123456789ab");
        assert!(rules
            .iter()
            .all(|r| r.windows(2).any(|w| w == ["-i", "br-0123456789ab"])));
        assert_eq!(rules[0].last().unwrap(), "RETURN");
        assert!(rules[1..].iter().all(|r| r.last().unwrap() == "DROP"));
        assert!(rules[2].contains(&"169.254.0.0/16".to_owned()));
    }

    #[test]
    fn interface_names_with_paths_are_not_looked_up() {
        assert!(!interface_exists("../../etc"));
        assert!(!interface_exists(""));
        assert!(interface_exists("lo"));
    }

    /// On a dummy bridge of its own (never another's): installing adds the three rules once,
    /// installing again adds nothing, and removing takes them all away.
    #[test]
    fn rules_are_installed_once_and_removed_with_their_bridge() {
        if !rustix::process::geteuid().is_root() {
            panic!("this test changes iptables and needs root, as `make test` runs it");
        }
        let bridge = format!("hgfw{}", std::process::id() % 100_000);
        let made = Command::new("ip")
            .args(["link", "add", &bridge, "type", "bridge"])
            .status()
            .unwrap();
        assert!(made.success(), "cannot make the test bridge {bridge}");
        let count = || {
            listing()
                .unwrap()
                .lines()
                .filter(|l| l.contains(&format!("-i {bridge} ")))
                .count()
        };
        let outcome = std::panic::catch_unwind(|| {
            install(&bridge).unwrap();
            assert_eq!(count(), 3);
            install(&bridge).unwrap();
            assert_eq!(count(), 3, "installing twice adds nothing");
            assert!(bridges_with_rules().unwrap().contains(&bridge));
            remove(&bridge).unwrap();
            assert_eq!(count(), 0);
            // Rules of a bridge that vanished are swept by the next install elsewhere.
            install(&bridge).unwrap();
        });
        let _ = Command::new("ip").args(["link", "del", &bridge]).status();
        outcome.unwrap();
        let _lock = lock().unwrap();
        sweep_locked(None).unwrap();
        assert_eq!(count(), 0, "the rules of a deleted bridge are swept");
    }
}
