//! Who is at the other end: the client's address and whether it came over HTTPS, as the
//! socket says or, behind a trusted reverse proxy (`--trusted-proxies`), as the proxy's
//! `X-Forwarded-For` and `X-Forwarded-Proto` say. Anyone else's forwarding headers are
//! ignored, so a client cannot choose its own address.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

use crate::auth::SESSION_COOKIE;
use crate::config::Config;

/// The client of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    pub ip: IpAddr,
    /// The client reached Hangar (or its proxy) over HTTPS.
    pub https: bool,
}

const FORWARDED_FOR: &str = "x-forwarded-for";
const FORWARDED_PROTO: &str = "x-forwarded-proto";

/// The client behind `peer`: the peer itself, unless it is a trusted proxy, in which case the
/// nearest address in `X-Forwarded-For` that is not a trusted proxy too.
pub fn resolve(config: &Config, peer: IpAddr, headers: &HeaderMap) -> Client {
    if !config.is_trusted_proxy(peer) {
        return Client {
            ip: peer,
            https: false,
        };
    }
    let hops: Vec<&str> = headers
        .get_all(FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    // Right to left: each hop was appended by the proxy after it; stop at the first address
    // no trusted proxy vouches for (or at one that does not parse: what lies left of it
    // could be made up).
    let mut ip = peer;
    for hop in hops.iter().rev() {
        match parse_hop(hop) {
            Some(address) => {
                ip = address;
                if !config.is_trusted_proxy(address) {
                    break;
                }
            }
            None => break,
        }
    }
    // The first proxy's word on the scheme is the one that saw the client.
    let https = headers
        .get(FORWARDED_PROTO)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"));
    Client { ip, https }
}

/// An address as proxies write it: bare, `ip:port` or `[v6]:port`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    hop.parse::<SocketAddr>().ok().map(|address| address.ip())
}

/// Resolves the request's [`Client`] for everything after it, and marks the session cookie
/// `Secure` on answers to clients that came over HTTPS through a trusted proxy.
pub async fn resolve_client(
    State(config): State<Arc<Config>>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip());
    let client = resolve(&config, peer, request.headers());
    request.extensions_mut().insert(client);
    let mut response = next.run(request).await;
    if client.https && !config.secure_cookies() {
        mark_session_cookie_secure(response.headers_mut());
    }
    response
}

fn mark_session_cookie_secure(headers: &mut HeaderMap) {
    let cookies: Vec<HeaderValue> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .cloned()
        .collect();
    if cookies.is_empty() {
        return;
    }
    headers.remove(header::SET_COOKIE);
    for cookie in cookies {
        let secured = cookie.to_str().ok().and_then(|text| {
            let ours = text.starts_with(&format!("{SESSION_COOKIE}="));
            let secure = text
                .split(';')
                .any(|attribute| attribute.trim().eq_ignore_ascii_case("secure"));
            (ours && !secure)
                .then(|| HeaderValue::from_str(&format!("{text}; Secure")).ok())
                .flatten()
        });
        headers.append(header::SET_COOKIE, secured.unwrap_or(cookie));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(proxies: &str) -> Config {
        Config::from_args(["hangar", "--trusted-proxies", proxies])
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn forwarding_headers_count_only_from_trusted_proxies() {
        let config = config("10.0.0.0/8");
        let forwarded = headers(&[
            (FORWARDED_FOR, "198.51.100.1, 203.0.113.9"),
            (FORWARDED_PROTO, "https"),
        ]);
        let stranger: IpAddr = "192.0.2.4".parse().unwrap();
        assert_eq!(
            resolve(&config, stranger, &forwarded),
            Client {
                ip: stranger,
                https: false
            }
        );
        // The proxy appended the address it saw; what is left of it the client wrote.
        let proxy: IpAddr = "10.1.1.1".parse().unwrap();
        assert_eq!(
            resolve(&config, proxy, &forwarded),
            Client {
                ip: "203.0.113.9".parse().unwrap(),
                https: true
            }
        );
    }

    #[test]
    fn chains_of_trusted_proxies_are_walked_through() {
        let config = config("10.0.0.0/8,::1");
        let proxy: IpAddr = "::1".parse().unwrap();
        let chain = headers(&[(FORWARDED_FOR, "203.0.113.9:5123, 10.0.0.7, 10.0.0.8")]);
        assert_eq!(
            resolve(&config, proxy, &chain).ip,
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        let garbage = headers(&[(FORWARDED_FOR, "made-up, 10.0.0.7")]);
        assert_eq!(
            resolve(&config, proxy, &garbage).ip,
            "10.0.0.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(resolve(&config, proxy, &HeaderMap::new()).ip, proxy);
    }

    #[test]
    fn only_the_session_cookie_gains_secure() {
        let mut answer = headers(&[
            (
                "set-cookie",
                "hangar_session=abc; HttpOnly; SameSite=Lax; Path=/",
            ),
            ("set-cookie", "other=1"),
        ]);
        mark_session_cookie_secure(&mut answer);
        let cookies: Vec<&str> = answer
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(
            cookies,
            [
                "hangar_session=abc; HttpOnly; SameSite=Lax; Path=/; Secure",
                "other=1"
            ]
        );
    }
}
