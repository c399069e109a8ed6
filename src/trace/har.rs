//! HAR 1.2 model as our own serde structs, keeping every unknown and `_custom` field.
//!
//! Other tools (browsers, mitmproxy, Charles) add their own fields; a trace that passes
//! through modscope must come out with them intact, so every object carries a flattened
//! `extra` map. Fields HAR marks as required are always written; optional ones are
//! skipped when `None`. Reading is lenient where real-world HAR files are sloppy
//! (missing arrays, missing sizes), so `validate_har_1_2` is the place for strictness.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::exchange::{ExchangeError, FaultFacts, TlsFacts};

/// Unknown fields of a HAR object, kept verbatim for the round trip.
pub type Extra = Map<String, Value>;

/// The HAR version modscope writes.
pub const HAR_VERSION: &str = "1.2";

/// The `creator.name` modscope writes.
pub const CREATOR_NAME: &str = "modscope";

fn minus_one() -> i64 {
    -1
}

fn minus_one_f() -> f64 {
    -1.0
}

/// Like `Option<Value>` but keeps an explicit `null` as `Some(Value::Null)`, so a
/// `"_go": null` written by someone else survives a round trip.
fn keep_null<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// Top-level HAR document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Har {
    pub log: Log,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Har {
    /// A HAR 1.2 log as modscope writes it.
    pub fn new(creator_version: &str, entries: Vec<Entry>) -> Self {
        Har {
            log: Log {
                version: HAR_VERSION.to_string(),
                creator: Creator::modscope(creator_version),
                browser: None,
                pages: None,
                entries,
                comment: None,
                extra: Extra::new(),
            },
            extra: Extra::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Log {
    pub version: String,
    pub creator: Creator,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser: Option<Creator>,
    /// Pages are a browser notion; kept opaque so foreign HARs round-trip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pages: Option<Vec<Value>>,
    pub entries: Vec<Entry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `log.creator` and `log.browser`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Creator {
    pub name: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Creator {
    pub fn modscope(version: &str) -> Self {
        Creator {
            name: CREATOR_NAME.to_string(),
            version: version.to_string(),
            comment: None,
            extra: Extra::new(),
        }
    }
}

/// One exchange.
///
/// Deserialisation goes through a private raw twin: a custom field whose shape is not ours
/// (another tool's `_error` string, say) stays in `extra` instead of failing the entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", from = "EntryRaw")]
pub struct Entry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pageref: Option<String>,
    /// RFC 3339; modscope writes UTC with milliseconds (`2026-01-02T03:04:05.678Z`).
    pub started_date_time: String,
    /// Milliseconds: blocked + dns + connect + send + wait + receive, `-1` parts left out.
    pub time: f64,
    pub request: Request,
    pub response: Response,
    pub cache: Cache,
    pub timings: Timings,
    #[serde(
        rename = "serverIPAddress",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub server_ip_address: Option<String>,
    /// Id of the upstream connection, shared by entries that reused it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(rename = "_id", default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    /// Go classification `{kind, module, version, base}`; filled by the proxy shell.
    #[serde(rename = "_go", default, skip_serializing_if = "Option::is_none")]
    pub go: Option<Value>,
    #[serde(rename = "_tls", default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsFacts>,
    #[serde(rename = "_error", default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ExchangeError>,
    #[serde(rename = "_fault", default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<FaultFacts>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Wire shape of [`Entry`] with the custom fields left untyped until checked.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EntryRaw {
    #[serde(default)]
    pageref: Option<String>,
    started_date_time: String,
    time: f64,
    request: Request,
    response: Response,
    #[serde(default)]
    cache: Cache,
    #[serde(default)]
    timings: Timings,
    #[serde(rename = "serverIPAddress", default)]
    server_ip_address: Option<String>,
    #[serde(default)]
    connection: Option<String>,
    #[serde(default)]
    comment: Option<String>,
    #[serde(rename = "_id", default, deserialize_with = "keep_null")]
    id: Option<Value>,
    #[serde(rename = "_go", default, deserialize_with = "keep_null")]
    go: Option<Value>,
    #[serde(rename = "_tls", default, deserialize_with = "keep_null")]
    tls: Option<Value>,
    #[serde(rename = "_error", default, deserialize_with = "keep_null")]
    error: Option<Value>,
    #[serde(rename = "_fault", default, deserialize_with = "keep_null")]
    fault: Option<Value>,
    #[serde(flatten)]
    extra: Extra,
}

/// Types `value` as `T`, or parks it in `extra` under `key` when it has another shape.
fn typed_or_extra<T: serde::de::DeserializeOwned>(
    key: &str,
    value: Option<Value>,
    extra: &mut Extra,
) -> Option<T> {
    let value = value?;
    match serde_json::from_value::<T>(value.clone()) {
        Ok(t) => Some(t),
        Err(_) => {
            extra.insert(key.to_string(), value);
            None
        }
    }
}

impl From<EntryRaw> for Entry {
    fn from(raw: EntryRaw) -> Self {
        let mut extra = raw.extra;
        let id = typed_or_extra::<u64>("_id", raw.id, &mut extra);
        let tls = typed_or_extra::<TlsFacts>("_tls", raw.tls, &mut extra);
        let error = typed_or_extra::<ExchangeError>("_error", raw.error, &mut extra);
        let fault = typed_or_extra::<FaultFacts>("_fault", raw.fault, &mut extra);
        Entry {
            pageref: raw.pageref,
            started_date_time: raw.started_date_time,
            time: raw.time,
            request: raw.request,
            response: raw.response,
            cache: raw.cache,
            timings: raw.timings,
            server_ip_address: raw.server_ip_address,
            connection: raw.connection,
            comment: raw.comment,
            id,
            go: raw.go,
            tls,
            error,
            fault,
            extra,
        }
    }
}

/// A header, query parameter or trailer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NameValue {
    pub name: String,
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

pub type Header = NameValue;

impl NameValue {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        NameValue {
            name: name.into(),
            value: value.into(),
            comment: None,
            extra: Extra::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cookie {
    pub name: String,
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_only: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secure: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    pub method: String,
    pub url: String,
    pub http_version: String,
    #[serde(default)]
    pub cookies: Vec<Cookie>,
    #[serde(default)]
    pub headers: Vec<Header>,
    #[serde(default)]
    pub query_string: Vec<NameValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_data: Option<PostData>,
    /// `-1` when unknown (modscope does not see raw header bytes).
    #[serde(default = "minus_one")]
    pub headers_size: i64,
    /// Body bytes as on the wire; `-1` when unknown.
    #[serde(default = "minus_one")]
    pub body_size: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(rename = "_trailers", default, skip_serializing_if = "Option::is_none")]
    pub trailers: Option<Vec<Header>>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A request body. HAR 1.2 only requires `mimeType`; modscope adds the same body
/// reference fields as [`Content`] because go's git smart-HTTP POSTs matter for replay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostData {
    pub mime_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Vec<PostParam>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// `"base64"` when `text` is base64 (HAR 1.2 has no such field for requests).
    #[serde(rename = "_encoding", default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    #[serde(rename = "_sha256", default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(rename = "_file", default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// `Some(false)` when the body was cut; absent means complete.
    #[serde(rename = "_complete", default, skip_serializing_if = "Option::is_none")]
    pub complete: Option<bool>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostParam {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    /// `0` when no response arrived (see the entry's `_error`).
    pub status: u16,
    #[serde(default)]
    pub status_text: String,
    #[serde(default)]
    pub http_version: String,
    #[serde(default)]
    pub cookies: Vec<Cookie>,
    #[serde(default)]
    pub headers: Vec<Header>,
    pub content: Content,
    #[serde(rename = "redirectURL", default)]
    pub redirect_url: String,
    #[serde(default = "minus_one")]
    pub headers_size: i64,
    #[serde(default = "minus_one")]
    pub body_size: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(rename = "_trailers", default, skip_serializing_if = "Option::is_none")]
    pub trailers: Option<Vec<Header>>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Content {
    /// Length of the body in bytes (modscope stores bodies as they passed, so this equals
    /// `bodySize` unless the body was cut before it was counted).
    pub size: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<i64>,
    #[serde(default)]
    pub mime_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// `"base64"` when `text` is base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(rename = "_sha256", default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Path relative to the trace directory, `bodies/<sha256>`.
    #[serde(rename = "_file", default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// `Some(false)` when the body was cut; absent means complete.
    #[serde(rename = "_complete", default, skip_serializing_if = "Option::is_none")]
    pub complete: Option<bool>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Content {
    /// An empty body of unknown type (used for failed exchanges).
    pub fn empty(mime_type: &str) -> Self {
        Content {
            size: 0,
            compression: None,
            mime_type: mime_type.to_string(),
            text: None,
            encoding: None,
            comment: None,
            sha256: None,
            file: None,
            complete: None,
            extra: Extra::new(),
        }
    }
}

/// modscope never serves from a cache, so this is always `{}` unless read from elsewhere.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cache {
    #[serde(
        default,
        deserialize_with = "keep_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub before_request: Option<Value>,
    #[serde(
        default,
        deserialize_with = "keep_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub after_request: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Milliseconds per phase; `-1` means "does not apply". `ssl` is also counted in
/// `connect`, as HAR 1.2 requires for HAR 1.1 compatibility.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    #[serde(default = "minus_one_f")]
    pub blocked: f64,
    #[serde(default = "minus_one_f")]
    pub dns: f64,
    #[serde(default = "minus_one_f")]
    pub connect: f64,
    #[serde(default)]
    pub send: f64,
    #[serde(default)]
    pub wait: f64,
    #[serde(default)]
    pub receive: f64,
    #[serde(default = "minus_one_f")]
    pub ssl: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            blocked: -1.0,
            dns: -1.0,
            connect: -1.0,
            send: 0.0,
            wait: 0.0,
            receive: 0.0,
            ssl: -1.0,
            comment: None,
            extra: Extra::new(),
        }
    }
}

impl Timings {
    /// HAR `time`: every non-negative phase except `ssl`, which `connect` already holds.
    pub fn total(&self) -> f64 {
        [
            self.blocked,
            self.dns,
            self.connect,
            self.send,
            self.wait,
            self.receive,
        ]
        .iter()
        .filter(|v| v.is_finite() && **v >= 0.0)
        .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn foreign_har() -> Value {
        json!({
            "log": {
                "version": "1.2",
                "creator": {"name": "OtherTool", "version": "9", "_build": 7},
                "browser": {"name": "Firefox", "version": "140"},
                "pages": [{"id": "page_1", "title": "x", "startedDateTime": "2026-01-01T00:00:00.000Z", "pageTimings": {}}],
                "_exportedBy": {"who": "someone"},
                "entries": [{
                    "pageref": "page_1",
                    "startedDateTime": "2026-01-01T00:00:00.123+01:00",
                    "time": 12.5,
                    "request": {
                        "method": "GET",
                        "url": "https://example.com/a?b=c",
                        "httpVersion": "HTTP/2",
                        "cookies": [{"name": "c", "value": "v", "httpOnly": true, "_samesite": "Lax"}],
                        "headers": [{"name": "accept", "value": "*/*", "_order": 1}],
                        "queryString": [{"name": "b", "value": "c"}],
                        "headersSize": 40,
                        "bodySize": 0,
                        "_initiatorDetail": "script"
                    },
                    "response": {
                        "status": 200,
                        "statusText": "OK",
                        "httpVersion": "HTTP/2",
                        "cookies": [],
                        "headers": [],
                        "content": {"size": 3, "mimeType": "text/plain", "text": "abc", "_decoded": true},
                        "redirectURL": "",
                        "headersSize": -1,
                        "bodySize": 3,
                        "_error": "net::ERR_SOMETHING",
                        "_transferSize": 120
                    },
                    "cache": {"beforeRequest": null, "_hit": false},
                    "timings": {"blocked": 1.0, "dns": -1.0, "connect": -1.0, "send": 0.5, "wait": 10.0, "receive": 1.0, "ssl": -1.0, "_queued": 0.2},
                    "serverIPAddress": "192.0.2.1",
                    "connection": "443",
                    "_priority": "High",
                    "_error": "not our shape",
                    "_id": "abc-1",
                    "_go": null,
                    "_resourceType": "fetch"
                }]
            },
            "_topLevel": [1, 2, 3]
        })
    }

    #[test]
    fn round_trip_keeps_foreign_and_custom_fields() {
        let input = foreign_har();
        let har: Har = serde_json::from_value(input.clone()).expect("parse foreign HAR");
        let e = &har.log.entries[0];
        // Shapes that are not ours stay untyped instead of failing the entry.
        assert!(e.error.is_none());
        assert!(e.id.is_none());
        assert_eq!(e.extra.get("_error"), Some(&json!("not our shape")));
        assert_eq!(e.go, Some(Value::Null));
        assert_eq!(e.timings.extra.get("_queued"), Some(&json!(0.2)));
        let out = serde_json::to_value(&har).expect("serialise");
        assert_eq!(out, input);
    }

    #[test]
    fn round_trip_keeps_typed_custom_fields() {
        let input = json!({
            "startedDateTime": "2026-01-01T00:00:00.000Z",
            "time": 3.0,
            "request": {"method": "GET", "url": "https://proxy.golang.org/x/@v/list", "httpVersion": "HTTP/1.1",
                        "cookies": [], "headers": [], "queryString": [], "headersSize": -1, "bodySize": 0,
                        "_trailers": [{"name": "x-t", "value": "1"}]},
            "response": {"status": 0, "statusText": "", "httpVersion": "", "cookies": [], "headers": [],
                         "content": {"size": 0, "mimeType": "x-unknown", "_sha256": "ab", "_file": "bodies/ab", "_complete": false},
                         "redirectURL": "", "headersSize": -1, "bodySize": -1},
            "cache": {},
            "timings": {"blocked": -1.0, "dns": 1.0, "connect": 2.0, "send": 0.0, "wait": 0.0, "receive": 0.0, "ssl": 1.0},
            "_id": 7,
            "_go": {"kind": "list", "module": "x", "version": null, "base": "https://proxy.golang.org"},
            "_tls": {"client": {"sni": "proxy.golang.org", "alpn": ["h2"], "version": "TLSv1_3", "cipher": null},
                     "upstream": {"version": "TLSv1_3", "cipher": "TLS13_AES_128_GCM_SHA256", "alpn": "h2", "verified": false,
                                  "error": "unknown issuer",
                                  "certificates": [{"subject": "CN=a", "issuer": "CN=b", "notBefore": "2026-01-01T00:00:00Z",
                                                    "notAfter": "2027-01-01T00:00:00Z", "dnsNames": ["a"], "sha256": "00"}]}},
            "_error": {"phase": "tls", "kind": "tls-untrusted", "message": "unknown issuer"},
            "_fault": {"rule": "r1", "action": "reset"},
            "_mine": {"deep": [1]}
        });
        let e: Entry = serde_json::from_value(input.clone()).expect("parse");
        assert_eq!(e.id, Some(7));
        let tls = e.tls.as_ref().expect("typed _tls");
        assert_eq!(
            tls.upstream
                .as_ref()
                .map(|u| u.certificates[0].dns_names.clone()),
            Some(vec!["a".to_string()])
        );
        assert_eq!(
            e.error.as_ref().map(|x| x.kind.as_str()),
            Some("tls-untrusted")
        );
        assert_eq!(e.fault.as_ref().map(|x| x.action.as_str()), Some("reset"));
        assert_eq!(e.response.content.complete, Some(false));
        assert_eq!(e.request.trailers.as_ref().map(Vec::len), Some(1));
        assert_eq!(serde_json::to_value(&e).expect("serialise"), input);
    }

    #[test]
    fn new_har_writes_required_fields() {
        let har = Har::new("0.1.0", vec![]);
        let v = serde_json::to_value(&har).expect("serialise");
        assert_eq!(
            v,
            json!({"log": {"version": "1.2", "creator": {"name": "modscope", "version": "0.1.0"}, "entries": []}})
        );
    }

    #[test]
    fn timings_total_skips_ssl_and_minus_one() {
        let t = Timings {
            blocked: -1.0,
            dns: 2.0,
            connect: 10.0,
            ssl: 6.0,
            send: 1.0,
            wait: 3.0,
            receive: 4.0,
            ..Timings::default()
        };
        assert_eq!(t.total(), 20.0);
    }
}
