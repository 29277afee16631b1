//! Host names as the apps of spaces use them: whether a `Host` (or an Origin's host) is under
//! an apps domain, with or without a port, and whether a host is this machine's.

use std::net::IpAddr;

/// The host (`name[:port]`) without its port.
pub fn without_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((name, port)) if !name.ends_with(']') && port.chars().all(|c| c.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

/// `host` compared as `domain` wants it: with its port when the domain names one (it must
/// match too), without it otherwise.
fn as_domain_wants<'a>(host: &'a str, domain: &str) -> &'a str {
    if domain.contains(':') {
        host
    } else {
        without_port(host)
    }
}

/// The first label of `host` when it is directly under `domain` (case-insensitively).
pub fn label_under<'a>(host: &'a str, domain: &str) -> Option<&'a str> {
    let (label, parent) = as_domain_wants(host, domain).split_once('.')?;
    (parent.eq_ignore_ascii_case(domain) && !label.is_empty()).then_some(label)
}

/// Whether `host` is `domain` itself or any name under it, however deep.
pub fn is_under(host: &str, domain: &str) -> bool {
    let host = as_domain_wants(host, domain).to_ascii_lowercase();
    let domain = domain.to_ascii_lowercase();
    host == domain
        || host
            .strip_suffix(&domain)
            .is_some_and(|rest| rest.ends_with('.'))
}

/// Whether a host name (without port) is this machine: `localhost`, a name under it, or a
/// loopback address (IPv6 in brackets or not).
pub fn is_loopback(host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare == "localhost"
        || bare.ends_with(".localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_under_a_domain_at_any_depth() {
        assert!(is_under("apps.localhost:3000", "apps.localhost:3000"));
        assert!(is_under(
            "8080--a--b.Apps.Localhost:3000",
            "apps.localhost:3000"
        ));
        assert!(is_under("x.y.apps.localhost:3000", "apps.localhost:3000"));
        assert!(!is_under("x.apps.localhost:3001", "apps.localhost:3000"));
        assert!(!is_under("evilapps.localhost:3000", "apps.localhost:3000"));
        assert!(!is_under("127.0.0.1:3000", "apps.localhost:3000"));
        assert!(is_under("x.apps.example.com:8443", "apps.example.com"));
        assert!(!is_under("apps.example.com.evil.com", "apps.example.com"));
        assert_eq!(
            label_under("a.apps.example.com:1", "apps.example.com"),
            Some("a")
        );
        assert_eq!(
            label_under("a.b.apps.example.com", "apps.example.com"),
            None
        );
    }

    #[test]
    fn this_machine_by_name_or_address() {
        for host in [
            "localhost",
            "LOCALHOST",
            "hangar.localhost",
            "127.0.0.1",
            "127.1.2.3",
            "[::1]",
            "::1",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "example.com",
            "localhost.example.com",
            "10.0.0.1",
            "0.0.0.0",
            "[::]",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }
}
