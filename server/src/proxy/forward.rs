//! Handing one request to a port of a space and its answer back: bodies stream both ways
//! (nothing is buffered, so uploads, downloads, server-sent events and long polls pass),
//! WebSocket and other upgrades are joined end to end, Hangar's credentials never reach the
//! app, the app can never set (or clear) Hangar's cookies, a public link on Hangar's own origin
//! never redirects to another site, and the exchange is cut the moment the right to it ends.

use std::error::Error as StdError;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{StatusCode, Version};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::connect::{SpaceConnector, Upstream, CONNECT_TIMEOUT};
use super::page;
use crate::auth::SESSION_COOKIE;
use crate::services::activity::Touch;

/// The app-domain cookie (see `crate::services::apps::tickets`).
pub const APP_COOKIE: &str = "hangar_app";

/// A request as the doors hand it over.
pub type Request = http::Request<Body>;

/// The HTTP/1.1 client of every proxied request: connections to a space's port are kept and
/// reused.
pub type HttpClient = Client<SpaceConnector, Body>;

pub fn client(connector: SpaceConnector) -> HttpClient {
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(64)
        .build(connector)
}

/// Resolves, with a reason, once the exchange must end (access revoked, link removed...).
pub type Cut = Pin<Box<dyn Future<Output = String> + Send>>;

/// Where and how one request goes.
pub struct Forward {
    /// Where the space's port is reached.
    pub upstream: Upstream,
    /// Path-based apps: the part of the path naming the port, removed before forwarding and
    /// put back in front of the app's redirects.
    pub prefix: Option<String>,
    pub client_ip: IpAddr,
    /// `http` or `https`: how the client reached Hangar.
    pub scheme: &'static str,
    /// The answer is sandboxed (a page served on Hangar's own origin to someone other than
    /// the space's owner): its scripts run in an opaque origin, without the visitor's cookies.
    pub sandbox: bool,
    /// Redirects may lead to this origin only (a public link served on Hangar's own origin:
    /// Hangar's address must not become a way to send strangers to any site).
    pub redirects_stay_here: bool,
    /// Ends the exchange when it resolves.
    pub cut: Cut,
    /// Names the target in error pages (`port 8080 of ann/api`).
    pub what: String,
    /// Records the space's use: the request, and each part of a streamed answer or an
    /// upgraded connection's traffic (at most once a second).
    pub activity: Option<Touch>,
}

/// Headers that belong to one connection, never passed on.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authenticate",
    "proxy-authorization",
];

/// What a client may claim about the forwarding path: replaced by what Hangar saw.
const FORWARDING: [&str; 6] = [
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-prefix",
    "x-real-ip",
];

fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
}

/// Removes the hop-by-hop headers, and those the Connection header names.
fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Marks an answer that came from an app through the proxy: how it may be framed (and the
/// like) is the app's to say, not Hangar's.
#[derive(Debug, Clone, Copy)]
pub struct AppAnswer;

/// Whether a cookie is one of Hangar's own (in any case: no app needs a cookie spelled like
/// Hangar's, and a parser that folds case must not be fooled either).
pub fn is_hangar_cookie(name: &str) -> bool {
    name.eq_ignore_ascii_case(SESSION_COOKIE) || name.eq_ignore_ascii_case(APP_COOKIE)
}

/// Whether a `Set-Cookie` would set one of Hangar's cookies, read as a browser reads it: the
/// name is what comes before the first `=` of the part before the first `;`, without the
/// spaces and tabs around it. A cookie without a name (`=hangar_session=…`, or no `=` at all)
/// goes back to the server as its bare value, which is then read as `hangar_session=…`: that
/// value's own name counts too.
pub fn sets_hangar_cookie(set_cookie: &[u8]) -> bool {
    let text = String::from_utf8_lossy(set_cookie);
    let trim = |s: &'_ str| s.trim_matches([' ', '\t']).to_owned();
    let pair = text.split(';').next().unwrap_or_default();
    let (name, value) = match pair.split_once('=') {
        Some((name, value)) => (trim(name), trim(value)),
        None => (String::new(), trim(pair)),
    };
    let sent_as = trim(value.split('=').next().unwrap_or_default());
    is_hangar_cookie(&name) || (name.is_empty() && is_hangar_cookie(&sent_as))
}

/// Takes Hangar's cookies out of the Cookie headers (the app's own stay) and drops every
/// Authorization: neither Hangar's session nor its API tokens ever reach a space.
pub fn strip_credentials(headers: &mut HeaderMap) {
    let kept: Vec<String> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .filter(|pair| !is_hangar_cookie(pair.split('=').next().unwrap_or_default().trim()))
        .map(str::to_owned)
        .collect();
    headers.remove(header::COOKIE);
    if !kept.is_empty() {
        if let Ok(value) = HeaderValue::from_str(&kept.join("; ")) {
            headers.insert(header::COOKIE, value);
        }
    }
    headers.remove(header::AUTHORIZATION);
}

/// `for=…` of a Forwarded header: IPv6 addresses are quoted and bracketed.
fn forwarded_for(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("\"[{v6}]\""),
    }
}

fn set(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

/// The headers the app gets.
fn request_headers(mut headers: HeaderMap, forward: &Forward, upgrade: bool) -> HeaderMap {
    let upgrade_to = headers.get(header::UPGRADE).cloned();
    remove_hop_by_hop(&mut headers);
    strip_credentials(&mut headers);
    for name in FORWARDING {
        headers.remove(name);
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned);
    set(
        &mut headers,
        "x-forwarded-for",
        &forward.client_ip.to_string(),
    );
    set(&mut headers, "x-forwarded-proto", forward.scheme);
    let mut forwarded = format!(
        "for={};proto={}",
        forwarded_for(forward.client_ip),
        forward.scheme
    );
    if let Some(host) = &host {
        set(&mut headers, "x-forwarded-host", host);
        // Unquoted, as apps parse it (code-server compares it with the WebSocket's Origin
        // as it is, quotes and all).
        forwarded.push_str(&format!(";host={host}"));
    }
    set(&mut headers, "forwarded", &forwarded);
    if let Some(prefix) = &forward.prefix {
        set(&mut headers, "x-forwarded-prefix", prefix);
    }
    if let (true, Some(to)) = (upgrade, upgrade_to) {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, to);
    }
    headers
}

/// The headers the client gets: the app may neither set Hangar's cookies nor clear what the
/// browser keeps for the site, and on a path its redirects to `/…` stay under the port's
/// prefix.
fn response_headers(headers: &mut HeaderMap, forward: &Forward, upgraded: bool) {
    let upgrade_to = headers.get(header::UPGRADE).cloned();
    remove_hop_by_hop(headers);
    if let (true, Some(to)) = (upgraded, upgrade_to) {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, to);
    }
    let cookies: Vec<HeaderValue> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter(|v| !sets_hangar_cookie(v.as_bytes()))
        .cloned()
        .collect();
    headers.remove(header::SET_COOKIE);
    for cookie in cookies {
        headers.append(header::SET_COOKIE, cookie);
    }
    // `Clear-Site-Data: "cookies"` clears every cookie of the registrable domain: an app
    // beside Hangar (or on its origin) would sign the visitor out of Hangar.
    headers.remove("clear-site-data");
    if let Some(prefix) = &forward.prefix {
        let location = headers
            .get(header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .filter(|l| l.starts_with('/') && !l.starts_with("//"))
            .map(|l| format!("{prefix}{l}"));
        if let Some(location) = location {
            set(headers, "location", &location);
        }
    }
    if forward.sandbox {
        headers.append(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads",
            ),
        );
    }
}

/// Where a `Location` leads when it leaves `here` (`http://host[:port]/path`), resolved as a
/// browser resolves it (`//x`, `/\x`, `https:x`, tabs and all); None when it stays on the
/// origin of `here`.
pub fn leaves_origin(here: &str, location: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(location);
    let Ok(base) = url::Url::parse(here) else {
        return Some(text.into_owned());
    };
    match base.join(&text) {
        Ok(target) if target.origin() == base.origin() => None,
        Ok(target) => Some(target.to_string()),
        Err(_) => Some(text.into_owned()),
    }
}

/// Why the space's port did not answer, in words.
fn failure(error: &hyper_util::client::legacy::Error, what: &str) -> String {
    let mut source: Option<&(dyn StdError + 'static)> = error.source();
    while let Some(inner) = source {
        if let Some(io) = inner.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::ConnectionRefused => format!(
                    "nothing listens on {what} (connection refused): start the app, and have \
                     it listen on 0.0.0.0 rather than 127.0.0.1"
                ),
                std::io::ErrorKind::TimedOut => format!(
                    "{what} did not accept a connection within {} s",
                    CONNECT_TIMEOUT.as_secs()
                ),
                _ => format!("{what} could not be reached: {io}"),
            };
        }
        source = inner.source();
    }
    if error.is_connect() {
        format!("{what} could not be reached: {error}")
    } else {
        format!("{what} closed the connection without answering")
    }
}

/// Sends the request to the space's port and passes its answer back.
pub async fn forward(client: &HttpClient, request: Request, mut forward: Forward) -> Response {
    if let Some(activity) = forward.activity.as_mut() {
        activity.touch();
    }
    let accepts_html = page::accepts_html(request.headers());
    let (mut parts, body) = request.into_parts();
    let here = format!(
        "{}://{}{}",
        forward.scheme,
        parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("hangar.invalid"),
        parts.uri.path()
    );
    let upgrade = is_upgrade(&parts.headers);
    let client_side = if upgrade {
        parts.extensions.remove::<hyper::upgrade::OnUpgrade>()
    } else {
        None
    };
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    let rest = match &forward.prefix {
        Some(prefix) => path_and_query
            .strip_prefix(prefix.as_str())
            .unwrap_or(&path_and_query),
        None => &path_and_query,
    };
    let rest = if rest.starts_with('/') {
        rest.to_owned()
    } else {
        format!("/{rest}")
    };
    let uri = match format!("http://{}{rest}", forward.upstream.authority()).parse::<http::Uri>() {
        Ok(uri) => uri,
        Err(_) => {
            return page::refusal(
                StatusCode::BAD_REQUEST,
                "Bad address",
                "the address of the request cannot be passed on",
                accepts_html,
                false,
            )
        }
    };
    let mut outgoing = http::Request::new(body);
    *outgoing.method_mut() = parts.method;
    *outgoing.uri_mut() = uri;
    *outgoing.version_mut() = Version::HTTP_11;
    *outgoing.headers_mut() = request_headers(parts.headers, &forward, upgrade);

    let mut response = match client.request(outgoing).await {
        Ok(response) => response,
        Err(error) => {
            return page::refusal(
                StatusCode::BAD_GATEWAY,
                "The app does not answer",
                &failure(&error, &forward.what),
                accepts_html,
                true,
            )
        }
    };
    if forward.redirects_stay_here {
        let elsewhere = response
            .headers()
            .get(header::LOCATION)
            .and_then(|location| leaves_origin(&here, location.as_bytes()));
        if let Some(elsewhere) = elsewhere {
            return page::refusal(
                StatusCode::BAD_GATEWAY,
                "This link does not lead elsewhere",
                &format!(
                    "the app behind this public link sent you to another site ({elsewhere}); \
                     a public link on Hangar's own address does not take visitors to other \
                     sites: open that address yourself if you trust it"
                ),
                accepts_html,
                false,
            );
        }
    }
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        let Some(client_side) = client_side else {
            return page::refusal(
                StatusCode::BAD_GATEWAY,
                "Unexpected upgrade",
                "the app switched protocols without being asked to",
                accepts_html,
                false,
            );
        };
        let app_side = hyper::upgrade::on(&mut response);
        let (mut head, _) = response.into_parts();
        response_headers(&mut head.headers, &forward, true);
        let what = forward.what.clone();
        let cut = forward.cut;
        let activity = forward.activity;
        tokio::spawn(async move {
            let (client_io, app_io) = match tokio::try_join!(client_side, app_side) {
                Ok(both) => both,
                Err(e) => {
                    tracing::debug!(error = %e, "a proxied upgrade did not complete");
                    return;
                }
            };
            let mut client_io = Touching {
                inner: TokioIo::new(client_io),
                activity: activity.clone(),
            };
            let mut app_io = Touching {
                inner: TokioIo::new(app_io),
                activity,
            };
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut client_io, &mut app_io) => {}
                reason = cut => tracing::info!(target = %what, %reason, "closed a proxied connection"),
            }
        });
        head.extensions.insert(AppAnswer);
        return Response::from_parts(head, Body::empty());
    }
    let (mut head, body) = response.into_parts();
    response_headers(&mut head.headers, &forward, false);
    head.extensions.insert(AppAnswer);
    Response::from_parts(
        head,
        Body::new(Guarded {
            inner: body,
            cut: Some(forward.cut),
            activity: forward.activity,
        }),
    )
}

/// An answer's body that ends (as a broken transfer, so the client sees it was cut) when
/// the right to it ends.
struct Guarded {
    inner: Incoming,
    cut: Option<Cut>,
    activity: Option<Touch>,
}

impl HttpBody for Guarded {
    type Data = Bytes;
    type Error = Box<dyn StdError + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Some(cut) = this.cut.as_mut() {
            if let Poll::Ready(reason) = cut.as_mut().poll(cx) {
                this.cut = None;
                return Poll::Ready(Some(Err(reason.into())));
            }
        }
        let frame = Pin::new(&mut this.inner)
            .poll_frame(cx)
            .map_err(|e| Box::new(e) as Self::Error);
        if let (Poll::Ready(Some(Ok(_))), Some(activity)) = (&frame, this.activity.as_mut()) {
            activity.touch();
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The smallest read on an upgraded connection that counts as use. Apps keep their WebSockets
/// open with small heartbeats while nobody is there (a minimised code-server sends a 13-byte
/// keep-alive message every few seconds, each way): counting those would keep a forgotten
/// editor running for ever. Typing, edits and output are larger messages.
const MEANINGFUL_READ: usize = 64;

/// An upgraded connection's side whose reads (traffic one way) are the space's activity, when
/// they are more than a heartbeat.
struct Touching<T> {
    inner: T,
    activity: Option<Touch>,
}

impl<T: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Touching<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let read = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() >= before + MEANINGFUL_READ {
            if let Some(activity) = this.activity.as_mut() {
                activity.touch();
            }
        }
        read
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Touching<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// A redirect to `location` (which the caller built from trusted parts).
pub fn redirect(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => (StatusCode::FOUND, [(header::LOCATION, value)]).into_response(),
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Port 80 of a space at 10.0.0.2, as seen from `client_ip`.
    fn to_port_80(
        prefix: Option<&str>,
        client_ip: &str,
        sandbox: bool,
        redirects_stay_here: bool,
    ) -> Forward {
        Forward {
            upstream: Upstream::Tcp(std::net::SocketAddr::from(([10, 0, 0, 2], 80))),
            prefix: prefix.map(str::to_owned),
            client_ip: client_ip.parse().unwrap(),
            scheme: "http",
            sandbox,
            redirects_stay_here,
            cut: Box::pin(std::future::pending()),
            what: "port 80".into(),
            activity: None,
        }
    }

    #[test]
    fn hangar_credentials_never_pass() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; hangar_session=secret; b=2"),
        );
        headers.append(header::COOKIE, HeaderValue::from_static("hangar_app=x"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer hgr_x"),
        );
        strip_credentials(&mut headers);
        assert_eq!(headers.get(header::COOKIE).unwrap(), "a=1; b=2");
        assert!(headers.get(header::AUTHORIZATION).is_none());

        let mut only_ours = HeaderMap::new();
        only_ours.insert(header::COOKIE, HeaderValue::from_static("hangar_session=s"));
        strip_credentials(&mut only_ours);
        assert!(only_ours.get(header::COOKIE).is_none());
    }

    #[test]
    fn forwarding_headers_are_hangars_own() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("hangar.test"));
        headers.insert("x-forwarded-host", HeaderValue::from_static("evil.test"));
        headers.insert("x-forwarded-for", HeaderValue::from_static("1.2.3.4"));
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-drop"),
        );
        headers.insert("x-drop", HeaderValue::from_static("1"));
        let forward = to_port_80(Some("/spaces/ann/api/ports/80"), "::1", false, false);
        let out = request_headers(headers, &forward, false);
        assert_eq!(out["x-forwarded-host"], "hangar.test");
        assert_eq!(out["x-forwarded-for"], "::1");
        assert_eq!(out["x-forwarded-prefix"], "/spaces/ann/api/ports/80");
        assert_eq!(
            out["forwarded"],
            "for=\"[::1]\";proto=http;host=hangar.test"
        );
        assert!(out.get("x-drop").is_none() && out.get(header::CONNECTION).is_none());
    }

    #[test]
    fn apps_cannot_set_hangar_cookies_and_redirect_under_their_prefix() {
        let forward = to_port_80(Some("/spaces/ann/api/ports/80"), "127.0.0.1", true, true);
        let mut headers = HeaderMap::new();
        headers.append(
            header::SET_COOKIE,
            HeaderValue::from_static("hangar_session=evil; Path=/"),
        );
        headers.append(header::SET_COOKIE, HeaderValue::from_static("theirs=1"));
        headers.insert(header::LOCATION, HeaderValue::from_static("/login"));
        response_headers(&mut headers, &forward, false);
        let cookies: Vec<_> = headers.get_all(header::SET_COOKIE).iter().collect();
        assert_eq!(cookies, ["theirs=1"]);
        assert_eq!(headers[header::LOCATION], "/spaces/ann/api/ports/80/login");
        assert!(headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .starts_with("sandbox"));
    }

    #[test]
    fn no_form_of_hangars_cookie_names_passes_and_nothing_clears_the_site() {
        let forward = to_port_80(None, "127.0.0.1", false, false);
        let mut headers = HeaderMap::new();
        for planted in [
            "hangar_session=evil; Path=/",
            "=hangar_session=evil; Path=/",
            "= hangar_session =evil",
            "hangar_session",
            " \thangar_app=evil; Domain=example.com",
            "HANGAR_SESSION=evil",
            "Hangar_App=evil",
        ] {
            headers.append(header::SET_COOKIE, HeaderValue::from_str(planted).unwrap());
        }
        headers.append(
            header::SET_COOKIE,
            HeaderValue::from_bytes(b"hangar_session=\xff; Path=/").unwrap(),
        );
        for theirs in [
            "theirs=1",
            "hangar_sessions=1",
            "x=hangar_session=1",
            "=theirs=2",
        ] {
            headers.append(header::SET_COOKIE, HeaderValue::from_str(theirs).unwrap());
        }
        headers.insert("clear-site-data", HeaderValue::from_static("\"cookies\""));
        response_headers(&mut headers, &forward, false);
        let cookies: Vec<_> = headers.get_all(header::SET_COOKIE).iter().collect();
        assert_eq!(
            cookies,
            [
                "theirs=1",
                "hangar_sessions=1",
                "x=hangar_session=1",
                "=theirs=2"
            ]
        );
        assert!(headers.get("clear-site-data").is_none());
    }

    #[test]
    fn redirects_are_resolved_as_a_browser_does() {
        let here = "http://127.0.0.1:3000/t/abc/login";
        for same in [
            "/x",
            "x",
            "?a=1",
            "#f",
            "http://127.0.0.1:3000/y",
            "http:y",
            "/t/abc/",
        ] {
            assert_eq!(leaves_origin(here, same.as_bytes()), None, "{same}");
        }
        for away in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example/",
            "\\\\evil.example",
            "https:evil.example",
            " //evil.example",
            "/\t/evil.example",
            "http://127.0.0.1:3001/",
            "javascript:alert(1)",
        ] {
            assert!(leaves_origin(here, away.as_bytes()).is_some(), "{away}");
        }
    }
}
