//! Replay matching (pure): which recorded entry answers a request. Keys are method,
//! scheme, host, port, path and query (minus ignored parameters); identical requests are
//! answered in recorded order, then the last answer repeats.

use std::collections::HashMap;

use serde::Serialize;

/// How a request is looked up in a trace.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestKey {
    pub method: String,
    pub scheme: String,
    pub host: String,
    pub port: u16,
    pub path: String,
    /// `name=value` pairs, sorted, without ignored parameters.
    pub query: Vec<String>,
}

impl RequestKey {
    /// Parses an absolute URL; `None` when it is not `scheme://host[:port]/...`.
    pub fn from_url(method: &str, url: &str, ignore_query: &[String]) -> Option<RequestKey> {
        let (scheme, rest) = url.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        let (authority, path_query) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => match rest.find('?') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, "/"),
            },
        };
        let default_port = crate::net::default_port(&scheme)?;
        let (host, port) = split_authority(authority, default_port)?;
        let (path, query) = match path_query.split_once('?') {
            Some((p, q)) => (p, q),
            None => (path_query, ""),
        };
        let path = if path.is_empty() { "/" } else { path };
        let mut query: Vec<String> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .filter(|p| {
                let name = p.split('=').next().unwrap_or("");
                !ignore_query.iter().any(|i| i == name)
            })
            .map(str::to_string)
            .collect();
        query.sort();
        Some(RequestKey {
            method: method.to_ascii_uppercase(),
            scheme,
            host: host.to_ascii_lowercase(),
            port,
            path: path.to_string(),
            query,
        })
    }

    pub fn display(&self) -> String {
        let query = if self.query.is_empty() {
            String::new()
        } else {
            format!("?{}", self.query.join("&"))
        };
        format!(
            "{} {}://{}:{}{}{}",
            self.method, self.scheme, self.host, self.port, self.path, query
        )
    }
}

fn split_authority(authority: &str, default_port: u16) -> Option<(String, u16)> {
    let a = crate::net::Authority::parse(authority).ok()?;
    // A recorded `host:` (empty port) is not a key go ever sends; keep refusing it.
    if authority.ends_with(':') {
        return None;
    }
    Some((a.host.to_string(), a.port.unwrap_or(default_port)))
}

/// The recorded entries by key, with what has been served so far.
#[derive(Debug, Default)]
pub struct ReplayIndex {
    by_key: HashMap<RequestKey, Vec<usize>>,
    served: HashMap<RequestKey, usize>,
    used: Vec<bool>,
    hits: u64,
    misses: Vec<String>,
}

/// What a replay did, for the closing report.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReplayReport {
    pub hits: u64,
    /// Each missed request, in order ("GET https://host:443/path").
    pub misses: Vec<String>,
    /// Indexes of recorded entries that were never served.
    pub unused: Vec<usize>,
}

impl ReplayIndex {
    /// Indexes `(method, url)` pairs in recorded order; returns the positions it could not
    /// key (URLs that are not absolute http(s)).
    pub fn build<'a>(
        requests: impl IntoIterator<Item = (&'a str, &'a str)>,
        ignore_query: &[String],
    ) -> (ReplayIndex, Vec<usize>) {
        let mut index = ReplayIndex::default();
        let mut unusable = Vec::new();
        for (i, (method, url)) in requests.into_iter().enumerate() {
            index.used.push(false);
            match RequestKey::from_url(method, url, ignore_query) {
                Some(key) => index.by_key.entry(key).or_default().push(i),
                None => unusable.push(i),
            }
        }
        (index, unusable)
    }

    /// The entry that answers `key` now, advancing through repeats.
    pub fn lookup(&mut self, key: &RequestKey) -> Option<usize> {
        let Some(candidates) = self.by_key.get(key) else {
            self.misses.push(key.display());
            return None;
        };
        let n = self.served.entry(key.clone()).or_insert(0);
        let pick = candidates[(*n).min(candidates.len() - 1)];
        *n += 1;
        self.hits += 1;
        if let Some(u) = self.used.get_mut(pick) {
            *u = true;
        }
        Some(pick)
    }

    pub fn report(&self) -> ReplayReport {
        ReplayReport {
            hits: self.hits,
            misses: self.misses.clone(),
            unused: self
                .used
                .iter()
                .enumerate()
                .filter(|(_, u)| !**u)
                .map(|(i, _)| i)
                .collect(),
        }
    }
}

/// `--on-miss`: what to do with a request the trace does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnMiss {
    NotFound,
    BadGateway,
    Passthrough,
    Record,
}

impl std::str::FromStr for OnMiss {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "404" => Ok(OnMiss::NotFound),
            "502" => Ok(OnMiss::BadGateway),
            "passthrough" => Ok(OnMiss::Passthrough),
            "record" => Ok(OnMiss::Record),
            other => Err(format!(
                "--on-miss {other:?}: expected 404, 502, passthrough or record"
            )),
        }
    }
}

impl OnMiss {
    /// Whether misses reach the network (so connections are dialled).
    pub fn uses_network(self) -> bool {
        matches!(self, OnMiss::Passthrough | OnMiss::Record)
    }
}

impl std::fmt::Display for OnMiss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OnMiss::NotFound => "404",
            OnMiss::BadGateway => "502",
            OnMiss::Passthrough => "passthrough",
            OnMiss::Record => "record",
        })
    }
}

/// `--timing`: how recorded waits are reproduced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReplayTiming {
    None,
    /// Recorded wait and receive times multiplied by this factor (1.0 = as recorded).
    Scaled(f64),
}

impl std::str::FromStr for ReplayTiming {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(ReplayTiming::None),
            "recorded" => Ok(ReplayTiming::Scaled(1.0)),
            other => match other.strip_prefix("scale=").map(str::parse::<f64>) {
                Some(Ok(f)) if f.is_finite() && f >= 0.0 => Ok(ReplayTiming::Scaled(f)),
                _ => Err(format!(
                    "--timing {other:?}: expected none, recorded or scale=F (F >= 0)"
                )),
            },
        }
    }
}

impl ReplayTiming {
    /// Milliseconds to wait for a recorded duration.
    pub fn apply(self, recorded_ms: f64) -> f64 {
        match self {
            ReplayTiming::None => 0.0,
            ReplayTiming::Scaled(f) => (recorded_ms.max(0.0) * f).min(24.0 * 3600.0 * 1000.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_normalise_ports_case_and_query_order() {
        let a =
            RequestKey::from_url("get", "https://Proxy.Golang.org/m/@v/list?b=2&a=1", &[]).unwrap();
        let b = RequestKey::from_url("GET", "https://proxy.golang.org:443/m/@v/list?a=1&b=2", &[])
            .unwrap();
        assert_eq!(a, b);
        let ignored =
            RequestKey::from_url("GET", "https://h/x?go-get=1&t=123", &["t".into()]).unwrap();
        assert_eq!(ignored.query, ["go-get=1"]);
        let v6 = RequestKey::from_url("GET", "http://[::1]:8080/p", &[]).unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 8080));
        for bad in [
            "",
            "proxy.golang.org/x",
            "ftp://h/x",
            "https://",
            "https://h:notaport/",
        ] {
            assert!(RequestKey::from_url("GET", bad, &[]).is_none(), "{bad}");
        }
    }

    #[test]
    fn repeats_are_served_in_order_then_the_last_repeats() {
        let urls = [
            ("GET", "https://h/a"),
            ("GET", "https://h/b"),
            ("GET", "https://h/a"),
            ("GET", "not a url"),
        ];
        let (mut index, unusable) = ReplayIndex::build(urls, &[]);
        assert_eq!(unusable, [3]);
        let a = RequestKey::from_url("GET", "https://h/a", &[]).unwrap();
        assert_eq!(index.lookup(&a), Some(0));
        assert_eq!(index.lookup(&a), Some(2));
        assert_eq!(index.lookup(&a), Some(2));
        let post = RequestKey::from_url("POST", "https://h/a", &[]).unwrap();
        assert_eq!(index.lookup(&post), None);
        let report = index.report();
        assert_eq!(report.hits, 3);
        assert_eq!(report.misses, ["POST https://h:443/a"]);
        assert_eq!(report.unused, [1, 3]);
    }

    #[test]
    fn options_parse() {
        assert_eq!("404".parse::<OnMiss>(), Ok(OnMiss::NotFound));
        assert!("418".parse::<OnMiss>().is_err());
        assert_eq!(
            "recorded".parse::<ReplayTiming>(),
            Ok(ReplayTiming::Scaled(1.0))
        );
        assert_eq!(
            "scale=0.5".parse::<ReplayTiming>(),
            Ok(ReplayTiming::Scaled(0.5))
        );
        assert!("scale=-1".parse::<ReplayTiming>().is_err());
        assert_eq!(ReplayTiming::Scaled(2.0).apply(10.0), 20.0);
        assert_eq!(ReplayTiming::None.apply(10.0), 0.0);
    }
}
