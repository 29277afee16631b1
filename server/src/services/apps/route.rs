//! Which space and port a request is for: from the `Host` the client sent on an apps domain
//! (`{port}--{space}--{owner}.{domain}`, `t--{secret}.{domain}` for a tunnel), or from the path
//! on Hangar's own origin (`/spaces/{owner}/{space}/ports/{port}/…`, `/t/{secret}/…`). Never
//! from `X-Forwarded-Host` or anything else a client may set besides the `Host` itself.

use crate::domain::hosts;

/// A port of a space named by its owner's and its own name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortTarget {
    pub owner: String,
    pub space: String,
    pub port: u16,
}

/// What an apps-domain host names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostTarget {
    /// A port of a space. Names may themselves hold `--`, so a label can be read more than
    /// one way: every reading, to be looked up.
    Port(Vec<PortTarget>),
    /// A tunnel, by its secret.
    Tunnel(String),
}

/// A request on Hangar's origin for a proxied port or tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathRoute {
    pub target: PathTarget,
    /// The part of the path that names the target (`/spaces/ann/api/ports/8080`): removed
    /// before forwarding, and put back in front of redirects the app answers.
    pub prefix: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathTarget {
    Port(PortTarget),
    Tunnel(String),
}

/// The first label of `host` when it is directly under `domain`. A domain given with a port
/// must match the host's port too; one given without matches any port.
pub fn app_label<'a>(host: &'a str, domain: &str) -> Option<&'a str> {
    hosts::label_under(host, domain)
}

/// Whether `host` is the apps domain or any name under it: Hangar's own pages never answer
/// there, and requests from such an origin are never Hangar's.
pub fn is_apps_host(host: &str, domain: &str) -> bool {
    hosts::is_under(host, domain)
}

fn is_name(text: &str) -> bool {
    crate::validate::username(text).is_ok()
}

/// A tunnel's secret: 32 lowercase hex digits (128 random bits).
pub fn is_tunnel_secret(text: &str) -> bool {
    text.len() == 32
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
}

fn parse_port(text: &str) -> Option<u16> {
    if text.is_empty() || text.len() > 5 || !text.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|p| *p > 0)
}

/// What the `Host` of a request names under the apps domain, if anything.
pub fn parse_host(host: &str, domain: &str) -> Option<HostTarget> {
    let label = app_label(host, domain)?.to_ascii_lowercase();
    if let Some(secret) = label.strip_prefix("t--") {
        return is_tunnel_secret(secret).then(|| HostTarget::Tunnel(secret.to_owned()));
    }
    let (port, rest) = label.split_once("--")?;
    let port = parse_port(port)?;
    let readings: Vec<PortTarget> = rest
        .match_indices("--")
        .map(|(at, _)| (&rest[..at], &rest[at + 2..]))
        .filter(|(space, owner)| is_name(space) && is_name(owner))
        .map(|(space, owner)| PortTarget {
            owner: owner.to_owned(),
            space: space.to_owned(),
            port,
        })
        .collect();
    (!readings.is_empty()).then_some(HostTarget::Port(readings))
}

/// What a path on Hangar's origin names, if it is a proxied port or a tunnel.
pub fn parse_path(path: &str) -> Option<PathRoute> {
    let mut parts = path.split('/');
    if !parts.next()?.is_empty() {
        return None;
    }
    match parts.next()? {
        "spaces" => {
            let (owner, space, ports, port) =
                (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
            if ports != "ports" || !is_name(owner) || !is_name(space) {
                return None;
            }
            let port = parse_port(port)?;
            Some(PathRoute {
                prefix: format!("/spaces/{owner}/{space}/ports/{port}"),
                target: PathTarget::Port(PortTarget {
                    owner: owner.to_owned(),
                    space: space.to_owned(),
                    port,
                }),
            })
        }
        "t" => {
            let secret = parts.next()?;
            is_tunnel_secret(secret).then(|| PathRoute {
                prefix: format!("/t/{secret}"),
                target: PathTarget::Tunnel(secret.to_owned()),
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(owner: &str, space: &str, port: u16) -> PortTarget {
        PortTarget {
            owner: owner.into(),
            space: space.into(),
            port,
        }
    }

    #[test]
    fn hosts_under_the_apps_domain_name_a_port() {
        let domain = "apps.example.com";
        assert_eq!(
            parse_host("8080--api--ann.apps.example.com", domain),
            Some(HostTarget::Port(vec![port("ann", "api", 8080)]))
        );
        // Any port of the host, case-insensitively, when the domain gives none.
        assert_eq!(
            parse_host("8080--API--ann.Apps.Example.com:443", domain),
            Some(HostTarget::Port(vec![port("ann", "api", 8080)]))
        );
        // Names holding `--` can be read two ways: both are looked up.
        assert_eq!(
            parse_host("80--my--app--ann.apps.example.com", domain),
            Some(HostTarget::Port(vec![
                port("app--ann", "my", 80),
                port("ann", "my--app", 80)
            ]))
        );
        let secret = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            parse_host(&format!("t--{secret}.apps.example.com"), domain),
            Some(HostTarget::Tunnel(secret.into()))
        );
    }

    #[test]
    fn other_hosts_name_nothing() {
        let domain = "apps.example.com";
        for host in [
            "apps.example.com",
            "hangar.example.com",
            "8080--api--ann.evil.com",
            "8080--api--ann.x.apps.example.com",
            "x.8080--api--ann.apps.example.com.evil.com",
            "0--api--ann.apps.example.com",
            "99999--api--ann.apps.example.com",
            "8080--api.apps.example.com",
            "8080--a--ann.apps.example.com",
            "t--nothex.apps.example.com",
            "t--0123456789ABCDEF0123456789ABCDEG.apps.example.com",
        ] {
            assert_eq!(parse_host(host, domain), None, "{host}");
        }
    }

    #[test]
    fn a_domain_with_a_port_wants_that_port() {
        let domain = "localhost:3000";
        assert!(parse_host("80--api--ann.localhost:3000", domain).is_some());
        assert_eq!(parse_host("80--api--ann.localhost:3001", domain), None);
        assert_eq!(parse_host("80--api--ann.localhost", domain), None);
    }

    #[test]
    fn paths_name_ports_and_tunnels() {
        assert_eq!(
            parse_path("/spaces/ann/api/ports/8080/static/app.js"),
            Some(PathRoute {
                prefix: "/spaces/ann/api/ports/8080".into(),
                target: PathTarget::Port(port("ann", "api", 8080)),
            })
        );
        assert!(parse_path("/spaces/ann/api/ports/8080").is_some());
        let secret = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            parse_path(&format!("/t/{secret}/x?y")).map(|r| r.target),
            Some(PathTarget::Tunnel(secret.into()))
        );
        for path in [
            "/",
            "/spaces/abc",
            "/spaces/ann/api",
            "/spaces/ann/api/terminal",
            "/spaces/ann/api/ports/http",
            "/spaces/ann/api/ports/0/",
            "/spaces/Ann/api/ports/80/",
            "/t/short/",
            "/api/v1/spaces",
        ] {
            assert_eq!(parse_path(path), None, "{path}");
        }
    }
}
