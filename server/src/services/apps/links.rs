//! The addresses people open: a port of a space (on its own origin under the apps domain, or
//! under Hangar's origin by path), a tunnel's public link, and the apps Hangar runs in spaces.

use app::api::ports::{AppKind, AppLink};
use app::api::templates::Feature;
use app::ids::SpaceId;

use crate::config::{AppsServed, Config};

/// The port code-server listens on inside a space.
pub const CODE_SERVER_PORT: u16 = 13337;
/// The port of the space's VNC server (reached only through Hangar's WebSocket bridge).
pub const VNC_PORT: u16 = 5901;
/// A DNS label holds at most this many characters.
const MAX_LABEL: usize = 63;

fn scheme(config: &Config) -> &'static str {
    if config.secure_cookies() {
        "https"
    } else {
        "http"
    }
}

/// Hangar's own origin as configured (`https://hangar.example.com`), or "" when only the
/// request knows it (then links are paths).
fn own_origin(config: &Config) -> &str {
    config
        .public_url
        .as_deref()
        .map_or("", |url| url.trim_end_matches('/'))
}

/// Where a port of a space opens through the proxy: on its own origin under the apps domain,
/// or by path when apps are served so; None when apps are off, or when the names make too
/// long a host name.
pub fn port_url(config: &Config, owner: &str, space: &str, port: u16) -> Option<String> {
    match config.apps() {
        AppsServed::Domain(domain) => {
            let label = format!("{port}--{space}--{owner}");
            (label.len() <= MAX_LABEL).then(|| format!("{}://{label}.{domain}/", scheme(config)))
        }
        AppsServed::Path => Some(format!(
            "{}/spaces/{owner}/{space}/ports/{port}/",
            own_origin(config)
        )),
        AppsServed::Off => None,
    }
}

/// A tunnel's public link; None when apps are off.
pub fn tunnel_url(config: &Config, secret: &str) -> Option<String> {
    match config.apps() {
        AppsServed::Domain(domain) => Some(format!("{}://t--{secret}.{domain}/", scheme(config))),
        AppsServed::Path => Some(format!("{}/t/{secret}/", own_origin(config))),
        AppsServed::Off => None,
    }
}

/// The desktop of a space in noVNC, served by Hangar, through Hangar's VNC bridge.
pub fn desktop_url(space_id: &SpaceId) -> String {
    format!(
        "/novnc/vnc.html?path=api/v1/spaces/{space_id}/vnc&autoconnect=true&resize=remote&reconnect=true&reconnect_delay=1000"
    )
}

/// The apps of a running space the caller may open.
pub fn app_links(
    config: &Config,
    owner: &str,
    space: &str,
    space_id: &SpaceId,
    features: &std::collections::BTreeSet<Feature>,
) -> Vec<AppLink> {
    let mut links = Vec::new();
    if features.contains(&Feature::CodeServer) {
        if let Some(url) = port_url(config, owner, space, CODE_SERVER_PORT) {
            links.push(AppLink {
                kind: AppKind::VsCode,
                label: "Open VS Code".into(),
                url,
            });
        }
    }
    if features.contains(&Feature::Vnc) {
        links.push(AppLink {
            kind: AppKind::Desktop,
            label: "Open desktop".into(),
            url: desktop_url(space_id),
        });
    }
    links
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> Config {
        let mut all = vec!["hangar"];
        all.extend_from_slice(args);
        Config::from_args(all)
    }

    #[test]
    fn ports_open_on_their_own_origin_under_an_apps_domain() {
        let c = config(&[
            "--apps-domain",
            "apps.example.com",
            "--public-url",
            "https://hangar.example.com",
        ]);
        assert_eq!(
            port_url(&c, "ann", "api", 8080).as_deref(),
            Some("https://8080--api--ann.apps.example.com/")
        );
        let long = "a".repeat(32);
        assert_eq!(port_url(&c, &long, &long, 8080), None);
        assert!(tunnel_url(&c, "ab")
            .unwrap()
            .starts_with("https://t--ab.apps.example.com"));
    }

    #[test]
    fn ports_open_under_apps_localhost_on_one_machine() {
        let c = config(&["--listen", "127.0.0.1:3000"]);
        assert_eq!(
            port_url(&c, "ann", "api", 8080).as_deref(),
            Some("http://8080--api--ann.apps.localhost:3000/")
        );
        assert_eq!(
            tunnel_url(&c, "ab").as_deref(),
            Some("http://t--ab.apps.localhost:3000/")
        );
    }

    #[test]
    fn ports_open_by_path_only_when_asked_for_and_not_at_all_when_off() {
        let c = config(&["--path-apps", "true"]);
        assert_eq!(
            port_url(&c, "ann", "api", 8080).as_deref(),
            Some("/spaces/ann/api/ports/8080/")
        );
        assert_eq!(tunnel_url(&c, "ab").as_deref(), Some("/t/ab/"));
        let off = config(&["--public-url", "https://hangar.example.com"]);
        assert_eq!(port_url(&off, "ann", "api", 8080), None);
        assert_eq!(tunnel_url(&off, "ab"), None);
    }
}
