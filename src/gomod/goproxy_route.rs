//! `--goproxy` mode's GOPROXY rewrite: each proxy entry becomes a loopback URL of modscope's
//! with one readable path prefix, and a request on that prefix maps back to the real entry.
//!
//! Pure: the caller supplies the GOPROXY value and the listening address.

use std::net::{IpAddr, SocketAddr};

use super::goenv::{parse_goproxy, Fallback, ProxyEntry, ProxyTarget};
use super::url::percent_decode;
use crate::net::{Authority, AuthorityError};

/// Why a GOPROXY value cannot be served in `--goproxy` mode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GoproxyRouteError {
    #[error("GOPROXY=off disables module downloads, so there is no proxy for --goproxy to stand in front of (set GOPROXY to your proxies, e.g. https://proxy.golang.org,direct)")]
    Off,
    #[error("GOPROXY={value:?} names no proxy (only direct fetches), so --goproxy has nothing to stand in front of; use `modscope run` without --goproxy to see direct (VCS) traffic")]
    NoProxy { value: String },
    #[error("GOPROXY={value:?} holds no entries; go refuses it too")]
    Empty { value: String },
    #[error("GOPROXY entry {entry:?} is not a URL modscope can forward to ({reason}); expected https://host[:port][/path] or http://...")]
    NotAUrl { entry: String, reason: String },
    #[error("GOPROXY entry {entry:?} points at modscope itself ({addr}); set GOPROXY to the real proxy, not to modscope's own address")]
    PointsAtModscope { entry: String, addr: SocketAddr },
}

/// One proxy entry modscope stands in front of.
#[derive(Clone, PartialEq, Eq)]
pub struct GoproxyRoute {
    /// The single path segment that names this entry on modscope's listener.
    pub prefix: String,
    /// The real base URL, without userinfo and without trailing slash.
    pub base: String,
    pub host: String,
    pub port: u16,
    pub tls: bool,
    /// Basic credentials from the entry's userinfo (`user`, `password`), percent-decoded.
    pub userinfo: Option<(String, String)>,
    /// Headers go would have sent to this entry from `.netrc` or a GOAUTH command,
    /// filled in by the caller (reading them is IO).
    pub upstream_headers: Vec<(String, String)>,
}

impl GoproxyRoute {
    /// The host part of the base as go compares it with `.netrc` machines (`host` or
    /// `host:port` as written in the URL).
    pub fn url_host(&self) -> &str {
        let rest = self.base.split_once("://").map(|(_, r)| r).unwrap_or("");
        rest.split('/').next().unwrap_or("")
    }

    /// The headers modscope adds upstream: userinfo in the entry wins (as net/http
    /// applies URL userinfo), else the `.netrc`/GOAUTH headers.
    pub fn credential_headers(&self) -> Vec<(String, String)> {
        use base64::Engine;
        match &self.userinfo {
            Some((user, pass)) => vec![(
                "authorization".to_string(),
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
                ),
            )],
            None => self.upstream_headers.clone(),
        }
    }
}

// Credentials must never reach a log line through `{:?}`.
impl std::fmt::Debug for GoproxyRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoproxyRoute")
            .field("prefix", &self.prefix)
            .field("base", &self.base)
            .field("userinfo", &self.userinfo.as_ref().map(|_| "[redacted]"))
            .field("upstream_headers", &self.upstream_headers.len())
            .finish()
    }
}

/// How one GOPROXY element is given to the child.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Slot {
    /// Served by modscope: index into `routes`.
    Routed(usize),
    /// Kept verbatim (`file://` entries: go reads them itself).
    Verbatim(String),
    Direct,
    Off,
}

/// The rewrite of one GOPROXY value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoproxyRoutes {
    /// The value as read (for messages).
    pub original: String,
    routes: Vec<GoproxyRoute>,
    slots: Vec<(Slot, Fallback)>,
}

/// Plans the rewrite of `value` (an empty value means go's default list).
pub fn plan_goproxy(value: &str) -> Result<GoproxyRoutes, GoproxyRouteError> {
    let entries = parse_goproxy(value);
    if entries.is_empty() {
        return Err(GoproxyRouteError::Empty {
            value: value.to_string(),
        });
    }
    if entries.first().map(|e| &e.target) == Some(&ProxyTarget::Off) {
        return Err(GoproxyRouteError::Off);
    }
    let mut routes: Vec<GoproxyRoute> = Vec::new();
    let mut slots = Vec::new();
    for ProxyEntry { target, fallback } in entries {
        let slot = match target {
            ProxyTarget::Direct => Slot::Direct,
            ProxyTarget::Off => Slot::Off,
            ProxyTarget::Url(url) if url.starts_with("file://") => Slot::Verbatim(url),
            ProxyTarget::Url(url) => {
                let mut route = parse_entry(&url)?;
                // The same real base twice needs only one route.
                match routes.iter().position(|r| r.base == route.base) {
                    Some(i) => Slot::Routed(i),
                    None => {
                        route.prefix = unique_prefix(&route, &routes);
                        routes.push(route);
                        Slot::Routed(routes.len() - 1)
                    }
                }
            }
        };
        slots.push((slot, fallback));
    }
    if routes.is_empty() {
        return Err(GoproxyRouteError::NoProxy {
            value: value.to_string(),
        });
    }
    Ok(GoproxyRoutes {
        original: value.to_string(),
        routes,
        slots,
    })
}

impl GoproxyRoutes {
    pub fn routes(&self) -> &[GoproxyRoute] {
        &self.routes
    }

    /// For the caller that fills in `upstream_headers`.
    pub fn routes_mut(&mut self) -> &mut [GoproxyRoute] {
        &mut self.routes
    }

    /// The value as read, with any userinfo replaced by `[redacted]`, for messages.
    pub fn shown(&self) -> String {
        let mut out = String::new();
        let mut rest = self.original.as_str();
        while let Some(i) = rest.find([',', '|']) {
            out.push_str(&redact(&rest[..i]));
            out.push_str(&rest[i..=i]);
            rest = &rest[i + 1..];
        }
        out.push_str(&redact(rest));
        out
    }

    /// The real bases, for decoding module requests (`_go.base`).
    pub fn bases(&self) -> Vec<String> {
        self.routes.iter().map(|r| r.base.clone()).collect()
    }

    /// Whether go may fall back to `direct` (traffic modscope does not see in this mode).
    pub fn has_direct(&self) -> bool {
        self.slots.iter().any(|(s, _)| *s == Slot::Direct)
    }

    /// The base of the entry that comes right before `direct`, if any: when it answers
    /// 404/410 (or any error after `|`), go goes direct for that request.
    pub fn last_before_direct(&self) -> Option<(&GoproxyRoute, Fallback)> {
        let at = self.slots.iter().position(|(s, _)| *s == Slot::Direct)?;
        match self.slots.get(at.checked_sub(1)?)? {
            (Slot::Routed(i), fb) => Some((self.routes.get(*i)?, *fb)),
            _ => None,
        }
    }

    /// The last entry modscope serves before `direct`, `off` or the end of the list: when
    /// it answers 404/410 to `sumdb/<db>/supported`, go asks the checksum database itself.
    pub fn last_route(&self) -> Option<&GoproxyRoute> {
        let mut last = None;
        for (slot, _) in &self.slots {
            match slot {
                Slot::Routed(i) => last = self.routes.get(*i),
                Slot::Verbatim(_) => {}
                Slot::Direct | Slot::Off => break,
            }
        }
        last
    }

    /// The GOPROXY value for the child: every routed entry replaced by
    /// `http://ADDR/PREFIX`, separators, `direct` and `off` kept exactly.
    pub fn rewritten(&self, addr: SocketAddr) -> Result<String, GoproxyRouteError> {
        for r in &self.routes {
            if points_at(r, addr) {
                return Err(GoproxyRouteError::PointsAtModscope {
                    entry: r.base.clone(),
                    addr,
                });
            }
        }
        let mut out = String::new();
        for (n, (slot, fallback)) in self.slots.iter().enumerate() {
            match slot {
                Slot::Routed(i) => {
                    let prefix = self.routes.get(*i).map(|r| r.prefix.as_str()).unwrap_or("");
                    out.push_str(&format!("http://{addr}/{prefix}"));
                }
                Slot::Verbatim(url) => out.push_str(url),
                Slot::Direct => out.push_str("direct"),
                Slot::Off => out.push_str("off"),
            }
            if n + 1 < self.slots.len() {
                out.push(match fallback {
                    Fallback::OnNotFound => ',',
                    Fallback::OnAnyError => '|',
                });
            }
        }
        Ok(out)
    }

    /// The route and real upstream URL for an origin-form request target
    /// (`/PREFIX/rest?query`), or `None` when the first path segment names no route.
    pub fn route(&self, path_and_query: &str) -> Option<(&GoproxyRoute, String)> {
        let rest = path_and_query.strip_prefix('/')?;
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (segment, tail) = rest.split_at(end);
        let route = self.routes.iter().find(|r| r.prefix == segment)?;
        let tail = if tail.is_empty() || tail.starts_with('?') {
            format!("/{tail}")
        } else {
            tail.to_string()
        };
        Some((route, format!("{}{tail}", route.base)))
    }
}

fn points_at(route: &GoproxyRoute, addr: SocketAddr) -> bool {
    if route.tls || route.port != addr.port() {
        return false;
    }
    let host = route.host.as_str();
    match host.parse::<IpAddr>() {
        Ok(ip) => ip == addr.ip() || (ip.is_loopback() && addr.ip().is_loopback()),
        Err(_) => host.eq_ignore_ascii_case("localhost") && addr.ip().is_loopback(),
    }
}

/// Splits a normalized GOPROXY URL into a route (prefix filled in later).
fn parse_entry(url: &str) -> Result<GoproxyRoute, GoproxyRouteError> {
    let bad = |reason: &str| GoproxyRouteError::NotAUrl {
        entry: redact(url),
        reason: reason.to_string(),
    };
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| bad("it has no scheme"))?;
    let tls = match scheme.to_ascii_lowercase().as_str() {
        "https" => true,
        "http" => false,
        _ => return Err(bad(&format!("scheme {scheme:?} is not http or https"))),
    };
    if rest.contains(['?', '#']) {
        return Err(bad("a proxy base cannot carry a query or fragment"));
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let (userinfo, host, port) = match Authority::parse(authority) {
        Ok(a) if a.port != Some(0) => (a.userinfo, a.host, a.port),
        Err(AuthorityError::NoHost) => return Err(bad("the host is empty")),
        _ => return Err(bad("malformed host:port")),
    };
    if host.parse::<IpAddr>().is_err()
        && !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    {
        return Err(bad(&format!("{host:?} is not a host name")));
    }
    let default_port = if tls { 443 } else { 80 };
    let port = port.unwrap_or(default_port);
    let userinfo = userinfo.map(|u| {
        let (user, pass) = u.split_once(':').unwrap_or((u, ""));
        (percent_decode(user).0, percent_decode(pass).0)
    });
    let host = host.to_ascii_lowercase();
    let shown_host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.clone()
    };
    let authority = if port == default_port {
        shown_host
    } else {
        format!("{shown_host}:{port}")
    };
    let base = format!("{}://{authority}{path}", if tls { "https" } else { "http" });
    Ok(GoproxyRoute {
        prefix: String::new(),
        base,
        host,
        port,
        tls,
        userinfo,
        upstream_headers: Vec::new(),
    })
}

/// A readable single path segment: the host, `_PORT` for a non-default port, and the
/// base path with `/` written as `~`; a number appended when two bases read alike.
fn unique_prefix(route: &GoproxyRoute, taken: &[GoproxyRoute]) -> String {
    let after_scheme = route.base.split_once("://").map(|(_, r)| r).unwrap_or("");
    let (_, path) = match after_scheme.find('/') {
        Some(i) => after_scheme.split_at(i),
        None => (after_scheme, ""),
    };
    let default_port = if route.tls { 443 } else { 80 };
    let mut label = route.host.clone();
    if route.port != default_port {
        label.push_str(&format!("_{}", route.port));
    }
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        label.push('~');
        label.push_str(seg);
    }
    let label: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '~') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut candidate = label.clone();
    let mut n = 2;
    while taken.iter().any(|r| r.prefix == candidate) {
        candidate = format!("{label}-{n}");
        n += 1;
    }
    candidate
}

fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}[redacted]{}", &url[..s + 3], &url[at..]),
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> SocketAddr {
        "127.0.0.1:41000".parse().unwrap()
    }

    #[test]
    fn rewrite_keeps_separators_direct_and_off() {
        let a = "http://127.0.0.1:41000";
        let table = [
            ("", format!("{a}/proxy.golang.org,direct")),
            (
                "https://proxy.golang.org,direct",
                format!("{a}/proxy.golang.org,direct"),
            ),
            (
                "https://a.example|https://b.example,direct",
                format!("{a}/a.example|{a}/b.example,direct"),
            ),
            (
                "https://a.example,https://b.example|off",
                format!("{a}/a.example,{a}/b.example|off"),
            ),
            // go adds https:// to host-looking words and trims trailing slashes.
            ("goproxy.io/", format!("{a}/goproxy.io")),
            (
                "https://corp.example/artifactory/api/go/remote/",
                format!("{a}/corp.example~artifactory~api~go~remote"),
            ),
            (
                "https://corp.example:8443/go,file:///srv/mods,direct",
                format!("{a}/corp.example_8443~go,file:///srv/mods,direct"),
            ),
            (
                "http://10.0.0.5:3000|direct",
                format!("{a}/10.0.0.5_3000|direct"),
            ),
            // Same host twice, different scheme: distinct prefixes.
            (
                "https://h.example,http://h.example",
                format!("{a}/h.example,{a}/h.example-2"),
            ),
            // The same base twice shares one route.
            (
                "https://h.example|https://h.example",
                format!("{a}/h.example|{a}/h.example"),
            ),
            // Entries after direct are ignored by go.
            (
                "https://a.example,direct,https://b.example",
                format!("{a}/a.example,direct"),
            ),
            (
                "https://u:p%40ss@corp.example/go",
                format!("{a}/corp.example~go"),
            ),
        ];
        for (value, want) in table {
            let plan = plan_goproxy(value).unwrap_or_else(|e| panic!("{value}: {e}"));
            assert_eq!(plan.rewritten(addr()).unwrap(), want, "{value}");
        }
    }

    #[test]
    fn routes_map_back_to_the_real_entry() {
        let plan = plan_goproxy("https://u:p%40ss@corp.example/go|https://proxy.golang.org,direct")
            .unwrap();
        let table = [
            (
                "/proxy.golang.org/github.com/!azure/x/@v/list",
                Some("https://proxy.golang.org/github.com/!azure/x/@v/list"),
            ),
            (
                "/corp.example~go/example.com/m/@v/v1.0.0.zip",
                Some("https://corp.example/go/example.com/m/@v/v1.0.0.zip"),
            ),
            (
                "/proxy.golang.org/sumdb/sum.golang.org/supported",
                Some("https://proxy.golang.org/sumdb/sum.golang.org/supported"),
            ),
            ("/proxy.golang.org", Some("https://proxy.golang.org/")),
            (
                "/proxy.golang.org?x=1",
                Some("https://proxy.golang.org/?x=1"),
            ),
            ("/other.example/m/@v/list", None),
            ("/proxy.golang.orgx/m/@v/list", None),
            ("/", None),
            ("proxy.golang.org/m", None),
        ];
        for (path, want) in table {
            let got = plan.route(path).map(|(_, url)| url);
            assert_eq!(got.as_deref(), want, "{path}");
        }
        assert_eq!(
            plan.shown(),
            "https://[redacted]@corp.example/go|https://proxy.golang.org,direct"
        );
        let (corp, _) = plan.route("/corp.example~go/x").unwrap();
        assert_eq!(
            corp.userinfo,
            Some(("u".to_string(), "p@ss".to_string())),
            "userinfo is decoded"
        );
        assert!(!format!("{corp:?}").contains("p@ss"), "Debug redacts");
        assert_eq!(
            plan.bases(),
            ["https://corp.example/go", "https://proxy.golang.org"]
        );
        assert_eq!(
            plan.last_route().map(|r| r.base.as_str()),
            Some("https://proxy.golang.org")
        );
        let (last, fb) = plan.last_before_direct().unwrap();
        assert_eq!(
            (last.base.as_str(), fb),
            ("https://proxy.golang.org", Fallback::OnNotFound)
        );
    }

    #[test]
    fn bad_input_is_refused_with_a_reason() {
        assert_eq!(plan_goproxy("off"), Err(GoproxyRouteError::Off));
        assert!(matches!(
            plan_goproxy("direct"),
            Err(GoproxyRouteError::NoProxy { .. })
        ));
        assert!(matches!(
            plan_goproxy(" , "),
            Err(GoproxyRouteError::Empty { .. })
        ));
        for bad in [
            "ftp://mirror.example/go",
            "https://",
            "https://host:notaport",
            "https://ho st.example",
            "https://a.example/?q=1",
            "https://[::1",
        ] {
            let err = plan_goproxy(bad).unwrap_err();
            assert!(
                matches!(err, GoproxyRouteError::NotAUrl { .. }),
                "{bad}: {err:?}"
            );
        }
        let err = plan_goproxy("https://user:hunter2@ftp.example:x/")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter2"), "{err}");
        // Why an authority is refused (net::Authority splits it).
        for (bad, why) in [
            ("https://", "the host is empty"),
            ("https://u@", "the host is empty"),
            ("https://:8443/go", "the host is empty"),
            ("https://host:0/", "malformed host:port"),
            ("https://host:99999/", "malformed host:port"),
            ("https://[::1]x/", "malformed host:port"),
            ("https://[zz]/", "malformed host:port"),
        ] {
            let err = plan_goproxy(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
        let routes = plan_goproxy("https://u:p@[::1]:8443/go").unwrap();
        let route = &routes.routes()[0];
        assert_eq!((route.host.as_str(), route.port), ("::1", 8443));
        assert_eq!(route.base, "https://[::1]:8443/go");
    }

    #[test]
    fn an_entry_pointing_at_modscope_is_refused() {
        for value in [
            "http://127.0.0.1:41000/proxy.golang.org",
            "http://localhost:41000",
            "http://127.0.0.2:41000,direct",
        ] {
            let plan = plan_goproxy(value).unwrap();
            assert!(
                matches!(
                    plan.rewritten(addr()),
                    Err(GoproxyRouteError::PointsAtModscope { .. })
                ),
                "{value}"
            );
        }
        for fine in ["http://127.0.0.1:41001", "https://127.0.0.1:41000"] {
            assert!(
                plan_goproxy(fine).unwrap().rewritten(addr()).is_ok(),
                "{fine}"
            );
        }
    }
}
