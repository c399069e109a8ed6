//! The authority of a URL (`user:pass@host:port`), split once, correctly, for everyone:
//! IPv6 literals keep their colons inside brackets, an empty or missing port means the
//! scheme's default, and userinfo is kept apart so it is never mistaken for a host.

/// The scheme's default port (`https` 443, `http` 80), if it has one.
pub fn default_port(scheme: &str) -> Option<u16> {
    match scheme.to_ascii_lowercase().as_str() {
        "https" => Some(443),
        "http" => Some(80),
        _ => None,
    }
}

/// Why an authority does not parse. The texts name the `host[:port]` part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthorityError {
    #[error("no host")]
    NoHost,
    #[error("unclosed IPv6 literal in {0:?}")]
    UnclosedIpv6(String),
    #[error("invalid IPv6 literal in {0:?}")]
    InvalidIpv6(String),
    #[error("junk after IPv6 literal in {0:?}")]
    JunkAfterIpv6(String),
    #[error("invalid port {0:?}")]
    InvalidPort(String),
}

/// A parsed authority. `host` has no brackets (`::1`, not `[::1]`); see
/// [`Authority::host_for_url`] for the written form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority<'a> {
    pub userinfo: Option<&'a str>,
    pub host: &'a str,
    /// The explicit port; `None` when absent or empty (`host:`).
    pub port: Option<u16>,
}

impl<'a> Authority<'a> {
    /// Splits `[userinfo@]host[:port]`, refusing an unclosed or junk-followed IPv6
    /// literal, an empty host and a port that is not a number.
    pub fn parse(text: &'a str) -> Result<Authority<'a>, AuthorityError> {
        let (userinfo, hostport) = match text.rfind('@') {
            Some(at) => (Some(&text[..at]), &text[at + 1..]),
            None => (None, text),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let Some((inside, after)) = v6.split_once(']') else {
                return Err(AuthorityError::UnclosedIpv6(hostport.to_string()));
            };
            if inside.is_empty()
                || !inside
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
            {
                return Err(AuthorityError::InvalidIpv6(hostport.to_string()));
            }
            match after {
                "" => (inside, None),
                p if p.starts_with(':') => (inside, Some(&p[1..])),
                _ => return Err(AuthorityError::JunkAfterIpv6(hostport.to_string())),
            }
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err(AuthorityError::NoHost);
        }
        // An empty port ("host:") is legal per RFC 3986 and means the default.
        let port = match port.filter(|p| !p.is_empty()) {
            None => None,
            Some(p) => Some(
                p.parse::<u16>()
                    .map_err(|_| AuthorityError::InvalidPort(p.to_string()))?,
            ),
        };
        Ok(Authority {
            userinfo,
            host,
            port,
        })
    }

    /// The authority of an absolute URL (`scheme://authority/...`), with the scheme.
    pub fn of_url(url: &'a str) -> Result<(&'a str, Authority<'a>), String> {
        let (scheme, rest) = url
            .trim()
            .split_once("://")
            .ok_or_else(|| format!("{url:?} is not an absolute URL"))?;
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = Authority::parse(&rest[..end]).map_err(|e| e.to_string())?;
        Ok((scheme, authority))
    }

    /// The port, or the scheme's default when none was written.
    pub fn port_or_default(&self, scheme: &str) -> Option<u16> {
        self.port.or_else(|| default_port(scheme))
    }

    /// The host as written in a URL: IPv6 literals in brackets.
    pub fn host_for_url(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities() {
        let ok = |text: &str, user: Option<&str>, host: &str, port: Option<u16>| {
            let a = Authority::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!((a.userinfo, a.host, a.port), (user, host, port), "{text}");
        };
        ok("proxy.golang.org", None, "proxy.golang.org", None);
        ok(
            "proxy.golang.org:8443",
            None,
            "proxy.golang.org",
            Some(8443),
        );
        ok("host:", None, "host", None);
        ok("[::1]", None, "::1", None);
        ok("[::1]:8080", None, "::1", Some(8080));
        ok("u:p@[::1]:1", Some("u:p"), "::1", Some(1));
        ok("a@b@host", Some("a@b"), "host", None);
        for bad in ["", ":80", "[::1", "[::1]x", "[]", "[zz]", "host:http", "u@"] {
            assert!(Authority::parse(bad).is_err(), "{bad}");
        }
        let (scheme, a) = Authority::of_url("https://[::1]/mod/@v/list").unwrap();
        assert_eq!(
            (scheme, a.host, a.port_or_default(scheme)),
            ("https", "::1", Some(443))
        );
        assert_eq!(a.host_for_url(), "[::1]");
        let (_, a) = Authority::of_url("http://u@example.com:81?x").unwrap();
        assert_eq!(
            (a.host, a.port_or_default("http")),
            ("example.com", Some(81))
        );
        assert_eq!(default_port("HTTPS"), Some(443));
        assert_eq!(default_port("git"), None);
    }
}
