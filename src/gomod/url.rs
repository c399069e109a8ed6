//! Just enough absolute-URL parsing for classification, tolerant of any input.
//!
//! Tolerant on purpose, unlike `net::Authority`, which refuses what is not a valid
//! authority: classification and the diagnosis read every recorded URL, including ones a
//! broken client or another tool wrote, and keep what they can (`host:junk` still has a
//! host). The default ports come from `net`.

/// The pieces of `scheme://[userinfo@]host[:port]/path?query#fragment`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Parsed {
    /// Lower-cased.
    pub scheme: String,
    /// `host[:port]`, lower-cased, userinfo dropped so credentials never reach a trace.
    pub authority: String,
    /// Percent-decoded path, always starting with '/'.
    pub path: String,
    /// Raw query (without '?'), empty when absent.
    pub query: String,
    /// Set when the path held a malformed or non-UTF-8 percent-escape.
    pub problem: Option<String>,
}

impl Parsed {
    pub fn origin(&self) -> String {
        format!("{}://{}", self.scheme, self.authority)
    }

    /// Host without port, for module paths built from the URL.
    pub fn host(&self) -> &str {
        host_of(&self.authority)
    }

    /// Authority with the scheme's default port removed, for comparing bases.
    pub fn canonical_authority(&self) -> String {
        canonical_authority(&self.scheme, &self.authority)
    }
}

pub(crate) fn host_of(authority: &str) -> &str {
    // Bracketed IPv6 literals carry colons of their own.
    if let Some(rest) = authority.strip_prefix('[') {
        return match rest.find(']') {
            Some(i) => &authority[..i + 2],
            None => authority,
        };
    }
    match authority.rfind(':') {
        Some(i) => &authority[..i],
        None => authority,
    }
}

pub(crate) fn canonical_authority(scheme: &str, authority: &str) -> String {
    match crate::net::default_port(scheme) {
        Some(port) => authority
            .strip_suffix(&format!(":{port}"))
            .unwrap_or(authority)
            .to_string(),
        None => authority.to_string(),
    }
}

pub(crate) fn parse(url: &str) -> Option<Parsed> {
    let url = url.trim();
    let (scheme, rest) = url.split_once("://")?;
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        return None;
    }
    let rest = rest.split('#').next().unwrap_or("");
    let (before_query, query) = match rest.split_once('?') {
        Some((a, q)) => (a, q),
        None => (rest, ""),
    };
    let (authority, raw_path) = match before_query.find('/') {
        Some(i) => (&before_query[..i], &before_query[i..]),
        None => (before_query, "/"),
    };
    let authority = match authority.rfind('@') {
        Some(i) => &authority[i + 1..],
        None => authority,
    };
    if authority.is_empty() {
        return None;
    }
    let (path, problem) = percent_decode(raw_path);
    Some(Parsed {
        scheme: scheme.to_ascii_lowercase(),
        authority: authority.to_ascii_lowercase(),
        path,
        query: query.to_string(),
        problem,
    })
}

/// Decodes `%XX`; malformed escapes are kept literally and reported, never guessed at.
pub(crate) fn percent_decode(s: &str) -> (String, Option<String>) {
    if !s.contains('%') {
        return (s.to_string(), None);
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut problem = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hi = bytes.get(i + 1).and_then(|c| hex_val(*c));
            let lo = bytes.get(i + 2).and_then(|c| hex_val(*c));
            if let (Some(hi), Some(lo)) = (hi, lo) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
            if problem.is_none() {
                problem = Some(format!("malformed percent-escape at byte {i} of the path"));
            }
        }
        out.push(b);
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(decoded) => (decoded, problem),
        Err(e) => (
            String::from_utf8_lossy(e.as_bytes()).into_owned(),
            Some("percent-escapes in the path decode to invalid UTF-8".to_string()),
        ),
    }
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Whether a query string carries `name=value` among its `&`-separated pairs.
pub(crate) fn query_has(query: &str, name: &str, value: &str) -> bool {
    query_get(query, name).is_some_and(|v| v == value)
}

pub(crate) fn query_get<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then_some(v)
    })
}
