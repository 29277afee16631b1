//! Where a sign-in (or an app's sign-in) may send the browser back to: a path of the same
//! origin only, decided by parsing the address as the browser will (the WHATWG URL parser:
//! the browser's own in the browser, the `url` crate's on the server), never by looking at its
//! text. Browsers strip tabs and newlines, read `\` as `/` and take `//host` as another site,
//! so `/\t/example.org` or `/\example.org`, which look like paths, lead elsewhere; what comes
//! out of [`same_origin_path`] is the path the browser would have reached on this origin,
//! written so that it cannot mean anything else.

/// Stand-ins for this origin, one per scheme it may be served over (`http:x` is a path on an
/// `http` origin but another host on an `https` one): their name never resolves, and only
/// what stays on them, at the same path, is kept.
const HERE: [&str; 2] = ["http://here.invalid/", "https://here.invalid/"];

/// The path (with its query and fragment) that `target` leads to on this origin, when it
/// stays on it; `None` when a browser would leave (another host, a scheme such as
/// `javascript:`, or an address it cannot parse).
pub fn same_origin_path(target: &str) -> Option<String> {
    let mut found: Option<String> = None;
    for base in HERE {
        let path = path_on(base, target)?;
        if found.as_ref().is_some_and(|seen| seen != &path) {
            return None;
        }
        found = Some(path);
    }
    found
}

/// What [`same_origin_path`] finds against one stand-in.
fn path_on(base: &str, target: &str) -> Option<String> {
    let there = Resolved::join(base, target)?;
    if there.origin != Resolved::join(base, "")?.origin {
        return None;
    }
    // The rest of the address after its origin: the path, query and fragment, as written.
    // (An address with a user name or password does not start with its origin.)
    let path = there.href.strip_prefix(&there.origin)?.to_owned();
    // `/.//host` resolves to the path `//host`, which written out would be another host: the
    // answer must lead to the same place when the browser reads it again.
    let again = Resolved::join(base, &path)?;
    (again.href == there.href && path.starts_with('/') && !path.starts_with("//")).then_some(path)
}

/// An address resolved against a base, as the WHATWG URL parser does.
struct Resolved {
    href: String,
    origin: String,
}

impl Resolved {
    /// In the browser, its own parser: the one that will follow the address, and no parser of
    /// ours in the first download.
    #[cfg(feature = "hydrate")]
    fn join(base: &str, target: &str) -> Option<Self> {
        let url = web_sys::Url::new_with_base(target, base).ok()?;
        Some(Self {
            href: url.href(),
            origin: url.origin(),
        })
    }

    #[cfg(not(feature = "hydrate"))]
    fn join(base: &str, target: &str) -> Option<Self> {
        let url = url::Url::parse(base).ok()?.join(target).ok()?;
        Some(Self {
            origin: url.origin().ascii_serialization(),
            href: url.into(),
        })
    }
}

/// Where to go back to: `target` when it is a path of this origin ([`same_origin_path`]),
/// else the home page.
pub fn local_path(target: Option<&str>) -> String {
    target
        .and_then(same_origin_path)
        .unwrap_or_else(|| "/".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_of_this_origin_are_kept() {
        for (given, kept) in [
            ("/", "/"),
            ("/x?y=1", "/x?y=1"),
            ("/spaces/ann/web/ports/8080/", "/spaces/ann/web/ports/8080/"),
            ("/admin/users#new", "/admin/users#new"),
            ("/a/../b", "/b"),
            ("/a b", "/a%20b"),
            ("/café", "/caf%C3%A9"),
            // Percent-escapes are not decoded by a browser in a path: this stays here.
            ("/%09/example.org", "/%09/example.org"),
            ("/%2F%2Fexample.org", "/%2F%2Fexample.org"),
            ("/%5Cexample.org", "/%5Cexample.org"),
            // Relative ones resolve against the root (the page never sends them).
            ("files", "/files"),
            ("?q=1", "/?q=1"),
            // What a browser strips, stripped.
            ("/a\tb", "/ab"),
            ("  /x  ", "/x"),
        ] {
            assert_eq!(same_origin_path(given).as_deref(), Some(kept), "{given:?}");
        }
    }

    #[test]
    fn what_a_browser_reads_as_another_site_is_refused() {
        for given in [
            "//example.org",
            "///example.org",
            "/\\example.org",
            "\\\\example.org",
            "\\/example.org",
            "/\t/example.org",
            "/\n/example.org",
            "/\r\n/example.org",
            "\t//example.org",
            " //example.org",
            "\u{0}//example.org",
            "/.//example.org",
            "/./\\example.org",
            "https://example.org/",
            "http:example.org",
            "https:/\\example.org",
            "HTTPS://example.org",
            "javascript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "//here.invalid@example.org",
            "http://here.invalid/x",
            "http://here.invalid:8080/",
            "https://here.invalid/",
        ] {
            assert_eq!(same_origin_path(given), None, "{given:?}");
        }
    }

    #[test]
    fn anything_else_goes_home() {
        assert_eq!(local_path(Some("/x?y=1")), "/x?y=1");
        assert_eq!(local_path(Some("/\t/example.org")), "/");
        assert_eq!(local_path(None), "/");
    }
}
