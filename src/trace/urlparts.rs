//! Just enough URL handling for traces: validity check, query parsing, userinfo redaction.
//!
//! The project has no URL crate; trace URLs are absolute `scheme://authority/...` strings
//! written by the proxy, so a small, total (never panicking) splitter is enough.

/// The pieces of an absolute URL, borrowed from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UrlParts<'a> {
    pub scheme: &'a str,
    pub userinfo: Option<&'a str>,
    /// Host and optional port, without userinfo.
    pub hostport: &'a str,
    /// Everything after the authority (path, query, fragment), possibly empty.
    pub rest: &'a str,
}

/// Splits an absolute URL, or says what is wrong with it.
pub(crate) fn split(url: &str) -> Result<UrlParts<'_>, String> {
    if url.is_empty() {
        return Err("empty URL".to_string());
    }
    if let Some(c) = url.chars().find(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!("URL contains the character {c:?}"));
    }
    let Some((scheme, after)) = url.split_once("://") else {
        return Err("not an absolute URL (no scheme://)".to_string());
    };
    let mut chars = scheme.chars();
    let scheme_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return Err(format!("invalid scheme {scheme:?}"));
    }
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (authority, rest) = after.split_at(end);
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
        None => (None, authority),
    };
    parse_hostport(hostport)?;
    Ok(UrlParts {
        scheme,
        userinfo,
        hostport,
        rest,
    })
}

/// Host (IPv6 without brackets) and port (`None` when absent or empty) of an authority.
fn parse_hostport(hostport: &str) -> Result<(&str, Option<u16>), String> {
    let authority = crate::net::Authority::parse(hostport)
        .map_err(|e| format!("URL authority {hostport:?}: {e}"))?;
    let host = authority.host;
    if let Some(c) = host.chars().find(|c| {
        matches!(
            c,
            '<' | '>' | '"' | '{' | '}' | '|' | '\\' | '^' | '`' | '[' | ']'
        )
    }) {
        return Err(format!("host {host:?} contains {c:?}"));
    }
    Ok((host, authority.port))
}

/// Host and port of an absolute URL, the port defaulted from the scheme (http 80, https 443).
pub(crate) fn host_port(url: &str) -> Option<(String, u16)> {
    let parts = split(url).ok()?;
    let (host, port) = parse_hostport(parts.hostport).ok()?;
    let port = port.or_else(|| crate::net::default_port(parts.scheme))?;
    Some((host.to_ascii_lowercase(), port))
}

/// `None` when the URL is usable in a trace, otherwise the reason.
pub(crate) fn problem(url: &str) -> Option<String> {
    split(url).err()
}

/// Replaces any `user[:pass]@` with `[redacted]@`; URLs that do not parse are returned as is
/// unless they contain an `@` before the path, which is then redacted the same way.
/// The one redaction of URLs: traces, the journal, `_go.base`, findings, console lines and
/// error messages all go through it.
pub fn redact_userinfo(url: &str, marker: &str) -> String {
    match split(url) {
        Ok(p) => match p.userinfo {
            Some(_) => format!("{}://{marker}@{}{}", p.scheme, p.hostport, p.rest),
            None => url.to_string(),
        },
        Err(_) => {
            // A malformed URL can still carry a password; cut it out conservatively.
            let start = url.find("://").map(|i| i + 3).unwrap_or(0);
            let after = &url[start..];
            let end = after.find(['/', '?', '#']).unwrap_or(after.len());
            match after[..end].rfind('@') {
                Some(at) => format!("{}{marker}@{}", &url[..start], &after[at + 1..]),
                None => url.to_string(),
            }
        }
    }
}

/// A `,`/`|`-separated URL list (GOPROXY) with each entry's userinfo redacted; the
/// separators and keywords (`direct`, `off`) stay as they are.
pub fn redact_url_list(list: &str, marker: &str) -> String {
    let mut out = String::with_capacity(list.len());
    let mut rest = list;
    while !rest.is_empty() {
        let end = rest.find([',', '|']).unwrap_or(rest.len());
        let entry = &rest[..end];
        if entry.contains("://") {
            out.push_str(&redact_userinfo(entry, marker));
        } else {
            out.push_str(entry);
        }
        out.push_str(&rest[end..(end + 1).min(rest.len())]);
        rest = &rest[(end + 1).min(rest.len())..];
    }
    out
}

/// `(name, value)` pairs of the query, percent-decoded with `+` as space (as Go's
/// `url.ParseQuery` and browsers do); empty pieces (`a=1&&b=2`) are skipped.
pub(crate) fn query_pairs(url: &str) -> Vec<(String, String)> {
    let Some(q) = url.split_once('?').map(|(_, q)| q) else {
        return Vec::new();
    };
    let q = q.split_once('#').map_or(q, |(q, _)| q);
    q.split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (n, v) = piece.split_once('=').unwrap_or((piece, ""));
            (percent_decode(n), percent_decode(v))
        })
        .collect()
}

/// Decodes `%XX` and `+`; malformed escapes stay literal and invalid UTF-8 becomes U+FFFD,
/// because a trace must record something for every URL rather than fail.
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hi = bytes.get(i + 1).and_then(|c| (*c as char).to_digit(16));
                let lo = bytes.get(i + 2).and_then(|c| (*c as char).to_digit(16));
                match (hi, lo) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                    }
                    _ => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_and_invalid_urls() {
        for ok in [
            "https://proxy.golang.org/golang.org/x/mod/@v/list",
            "http://127.0.0.1:8080/",
            "https://[::1]:443/x",
            "https://user:pw@example.com",
            "https://example.com?x=1",
            "git+ssh://example.com/x",
        ] {
            assert_eq!(problem(ok), None, "{ok}");
        }
        for bad in [
            "",
            "not a url",
            "/relative/path",
            "https://",
            "https:///path",
            "https://host:99999/",
            "https://[::1/",
            "https://exa mple.com/",
            "ht^tp://x/",
            "https://host/\u{0}",
        ] {
            assert!(problem(bad).is_some(), "{bad:?} should be invalid");
        }
    }

    #[test]
    fn query_is_decoded() {
        let q = query_pairs("https://h/p?go-get=1&a=%2Fb+c&flag&&bad=%zz&u=%E2%82%AC#frag=1");
        let want: Vec<(String, String)> = [
            ("go-get", "1"),
            ("a", "/b c"),
            ("flag", ""),
            ("bad", "%zz"),
            ("u", "€"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(q, want);
        assert!(query_pairs("https://h/p").is_empty());
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("%f"), "%f");
        assert_eq!(percent_decode("%ff"), "\u{fffd}");
    }

    #[test]
    fn never_panics_on_odd_input() {
        let pieces = [
            "", "https", "://", ":", "@", "[", "]", "/", "?", "#", "%", "%e2", "€", "ü", "h", "=",
            "&", "+", "99999", "::1", " ",
        ];
        for a in pieces {
            for b in pieces {
                for c in pieces {
                    for d in pieces {
                        let url = format!("{a}{b}{c}{d}");
                        let _ = problem(&url);
                        let _ = query_pairs(&url);
                        let r = redact_userinfo(&url, "[redacted]");
                        if split(&url).is_ok_and(|p| p.userinfo.is_some()) {
                            assert!(r.contains("[redacted]@"), "{url:?} -> {r:?}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn url_lists_keep_their_shape() {
        let m = "[redacted]";
        for (input, want) in [
            (
                "https://u:SECRET@corp.example/go,direct",
                "https://[redacted]@corp.example/go,direct",
            ),
            (
                "https://a.example|https://t@b.example/x,off",
                "https://a.example|https://[redacted]@b.example/x,off",
            ),
            ("", ""),
            ("direct", "direct"),
            ("https://u:p@h,", "https://[redacted]@h,"),
        ] {
            assert_eq!(redact_url_list(input, m), want, "{input:?}");
        }
    }

    #[test]
    fn userinfo_is_redacted() {
        let m = "[redacted]";
        assert_eq!(
            redact_userinfo("https://u:p@h.example/x?q=1", m),
            "https://[redacted]@h.example/x?q=1"
        );
        assert_eq!(
            redact_userinfo("https://tok@h/", m),
            "https://[redacted]@h/"
        );
        assert_eq!(redact_userinfo("https://h/a@b", m), "https://h/a@b");
        assert_eq!(
            redact_userinfo("https://u:p w@h/", m),
            "https://[redacted]@h/"
        );
    }
}
