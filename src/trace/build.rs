//! PURE: turns one observed [`Exchange`] into a HAR [`Entry`] (timings, bodies, redaction).
//!
//! No IO and no clock: the shell passes in where bodies were stored and the Go
//! classification, so the HAR rules here are tested with plain tables.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use time::macros::format_description;
use time::OffsetDateTime;

use super::har::Timings;
use super::har::{Cache, Content, Entry, Extra, Header, NameValue, PostData, Request, Response};
use super::urlparts;
use crate::exchange::{BodyFacts, Exchange, PhaseTimes};

/// What replaces a secret when redaction is on.
pub const REDACTED: &str = "[redacted]";

/// Headers whose values are credentials.
const SECRET_HEADERS: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];

/// Where one body ended up, as the shell's body store reported it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BodyContent {
    /// Hex SHA-256 of the stored bytes.
    pub sha256: Option<String>,
    /// Path relative to the trace directory, `bodies/<sha256>`.
    pub file: Option<String>,
    /// The whole body as UTF-8 when it is text and at most 64 KiB.
    pub text: Option<String>,
    /// The whole body as base64, when `--embed-bodies` asked for it.
    pub base64: Option<String>,
    /// Length after undoing `Content-Encoding`, when the body was encoded and decoded;
    /// `text` and `base64` then hold the decoded body, the file the wire bytes.
    pub decoded_size: Option<u64>,
}

/// The request and response bodies of one exchange.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryBodies {
    pub request: BodyContent,
    pub response: BodyContent,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildOptions {
    /// Hide credentials: secret header values and URL userinfo.
    pub redact: bool,
}

/// Builds the HAR entry for `ex`. Total: any `Exchange` gives a well-formed entry.
pub fn build_entry(
    ex: &Exchange,
    go: Option<Value>,
    bodies: &EntryBodies,
    opts: &BuildOptions,
) -> Entry {
    let timings = har_timings(&ex.timings);
    let time = round_ms(timings.total());
    Entry {
        pageref: None,
        started_date_time: format_started(ex.started),
        time,
        request: build_request(ex, &bodies.request, opts),
        response: build_response(ex, &bodies.response, opts),
        cache: Cache::default(),
        timings,
        server_ip_address: ex.server_ip.clone(),
        connection: ex.connection_id.map(|c| c.to_string()),
        comment: None,
        id: Some(ex.id),
        go,
        tls: ex.tls.clone(),
        error: ex.error.clone(),
        fault: ex.fault.clone(),
        extra: stall_extra(ex),
    }
}

/// `_stall` (see [`crate::exchange::BodyStall`]) in the entry's extension fields.
fn stall_extra(ex: &Exchange) -> Extra {
    let mut extra = Extra::new();
    if let Some(v) = ex.stall.as_ref().and_then(|s| serde_json::to_value(s).ok()) {
        extra.insert("_stall".to_string(), v);
    }
    extra
}

/// HAR 1.2 timings from raw phase durations.
///
/// `connect` includes the TLS handshake and `ssl` repeats it, as HAR 1.2 asks; phases that
/// did not happen (a reused connection has no dns/connect/ssl) are `-1`. `send`, `wait`
/// and `receive` must not be negative in HAR, so unknown means `0` there.
pub fn har_timings(p: &PhaseTimes) -> Timings {
    let tcp = clean(p.tcp);
    let tls = clean(p.tls);
    let connect = match (tcp, tls) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
    };
    Timings {
        blocked: or_minus_one(clean(p.blocked)),
        dns: or_minus_one(clean(p.dns)),
        connect: or_minus_one(connect),
        send: round_ms(clean(p.send).unwrap_or(0.0)),
        wait: round_ms(clean(p.wait).unwrap_or(0.0)),
        receive: round_ms(clean(p.receive).unwrap_or(0.0)),
        ssl: or_minus_one(tls),
        comment: None,
        extra: Extra::new(),
    }
}

/// Longest duration taken as data (about 31 years); anything longer is a clock glitch and
/// would lose precision or overflow when summed and rounded.
const MAX_PHASE_MS: f64 = 1e12;

/// Negative, NaN, infinite and absurdly long durations are clock glitches, not data; NaN
/// would also serialise as JSON `null` and break the HAR.
fn clean(v: Option<f64>) -> Option<f64> {
    v.filter(|x| x.is_finite() && *x >= 0.0 && *x <= MAX_PHASE_MS)
}

fn or_minus_one(v: Option<f64>) -> f64 {
    v.map_or(-1.0, round_ms)
}

/// Microsecond precision keeps `0.1 + 0.2`-style noise out of the file.
fn round_ms(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// RFC 3339, UTC, milliseconds: `2026-01-02T03:04:05.678Z`.
pub fn format_started(t: SystemTime) -> String {
    let nanos: i128 = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    };
    let fmt =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|dt| dt.format(&fmt).ok())
        // Out of range only for absurd clocks; an obviously wrong date beats no entry.
        .unwrap_or_else(|| "1970-01-01T00:00:00.000Z".to_string())
}

fn build_request(ex: &Exchange, body: &BodyContent, opts: &BuildOptions) -> Request {
    let r = &ex.request;
    let url = if opts.redact {
        urlparts::redact_userinfo(&r.url, REDACTED)
    } else {
        r.url.clone()
    };
    let query_string = urlparts::query_pairs(&url)
        .into_iter()
        .map(|(n, v)| NameValue::new(n, v))
        .collect();
    let has_body = r.body.size > 0 || r.body.sha256.is_some() || has_any(body);
    let post_data = has_body.then(|| {
        let mime = header(&r.headers, "content-type").unwrap_or("application/octet-stream");
        let (text, encoding) = embedded(body);
        PostData {
            mime_type: mime.to_string(),
            params: None,
            text,
            comment: None,
            encoding,
            sha256: body.sha256.clone().or_else(|| r.body.sha256.clone()),
            file: body.file.clone(),
            complete: (!r.body.complete).then_some(false),
            extra: Extra::new(),
        }
    });
    Request {
        method: r.method.clone(),
        url,
        http_version: r.http_version.clone(),
        cookies: Vec::new(),
        headers: headers(&r.headers, opts),
        query_string,
        post_data,
        headers_size: -1,
        body_size: size_i64(r.body.size),
        comment: None,
        trailers: None,
        extra: Extra::new(),
    }
}

fn build_response(ex: &Exchange, body: &BodyContent, opts: &BuildOptions) -> Response {
    let Some(r) = &ex.response else {
        // No response head: HAR's convention for failed requests, the cause is in `_error`.
        return Response {
            status: 0,
            status_text: String::new(),
            http_version: String::new(),
            cookies: Vec::new(),
            headers: Vec::new(),
            content: Content::empty("x-unknown"),
            redirect_url: String::new(),
            headers_size: -1,
            body_size: -1,
            comment: None,
            trailers: None,
            extra: Extra::new(),
        };
    };
    let mime = header(&r.headers, "content-type").unwrap_or("application/octet-stream");
    let redirect = header(&r.headers, "location").unwrap_or("");
    let redirect_url = if opts.redact {
        urlparts::redact_userinfo(redirect, REDACTED)
    } else {
        redirect.to_string()
    };
    Response {
        status: r.status,
        // HTTP/2 carries no reason phrase; the canonical one keeps HAR viewers readable.
        status_text: crate::net::reason_phrase(r.status).to_string(),
        http_version: r.http_version.clone(),
        cookies: Vec::new(),
        headers: headers(&r.headers, opts),
        content: content(&r.body, body, mime),
        redirect_url,
        headers_size: -1,
        body_size: size_i64(r.body.size),
        comment: None,
        trailers: (!r.trailers.is_empty()).then(|| headers(&r.trailers, opts)),
        extra: Extra::new(),
    }
}

fn content(facts: &BodyFacts, body: &BodyContent, mime: &str) -> Content {
    let (text, encoding) = embedded(body);
    // HAR 1.2: `size` is the decoded length and `compression` the bytes saved by the
    // encoding; `bodySize` stays the bytes on the wire, which the stored file holds.
    let size = body.decoded_size.unwrap_or(facts.size);
    let compression = body
        .decoded_size
        .map(|d| size_i64(d).saturating_sub(size_i64(facts.size)));
    Content {
        size: size_i64(size),
        compression,
        mime_type: mime_with_charset(mime, text.is_some() && encoding.is_none()),
        text,
        encoding,
        comment: None,
        sha256: body.sha256.clone().or_else(|| facts.sha256.clone()),
        file: body.file.clone(),
        complete: (!facts.complete).then_some(false),
        extra: Extra::new(),
    }
}

/// The MIME type, with `charset=utf-8` added when the body is embedded as plain text and
/// the type names no charset: the text is UTF-8, and a reader that guesses (mitmproxy
/// falls back to Latin-1) would otherwise rebuild other bytes.
fn mime_with_charset(mime: &str, plain_text: bool) -> String {
    let has_charset = mime
        .split(';')
        .skip(1)
        .any(|p| p.trim().to_ascii_lowercase().starts_with("charset="));
    if plain_text && !has_charset && !mime.trim().is_empty() {
        format!("{}; charset=utf-8", mime.trim_end())
    } else {
        mime.to_string()
    }
}

/// Plain text wins over base64: both are byte-exact, and text is readable.
fn embedded(body: &BodyContent) -> (Option<String>, Option<String>) {
    match (&body.text, &body.base64) {
        (Some(t), _) => (Some(t.clone()), None),
        (None, Some(b)) => (Some(b.clone()), Some("base64".to_string())),
        (None, None) => (None, None),
    }
}

fn has_any(b: &BodyContent) -> bool {
    b.sha256.is_some() || b.file.is_some() || b.text.is_some() || b.base64.is_some()
}

fn size_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn headers(list: &[(String, String)], opts: &BuildOptions) -> Vec<Header> {
    list.iter()
        .map(|(n, v)| {
            let secret = SECRET_HEADERS.iter().any(|s| n.eq_ignore_ascii_case(s));
            let value = if !opts.redact {
                v.clone()
            } else if secret {
                redact_secret(n, v)
            } else if n.eq_ignore_ascii_case("location") {
                urlparts::redact_userinfo(v, REDACTED)
            } else {
                v.clone()
            };
            NameValue::new(n.clone(), value)
        })
        .collect()
}

/// A secret header value without its secret. For `Authorization` the scheme stays
/// (`Basic [redacted]`): it is no secret, and diagnosis says which scheme go sent.
fn redact_secret(name: &str, value: &str) -> String {
    let scheme = value.trim().split_once(' ').map(|(s, _)| s).filter(|s| {
        !s.is_empty() && s.len() <= 32 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    match scheme {
        Some(s)
            if name.eq_ignore_ascii_case("authorization")
                || name.eq_ignore_ascii_case("proxy-authorization") =>
        {
            format!("{s} {REDACTED}")
        }
        _ => REDACTED.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::{ExchangeError, FaultFacts};
    use crate::trace::testutil::sample_exchange;
    use std::time::Duration;

    fn build(ex: &Exchange, redact: bool) -> Entry {
        build_entry(ex, None, &EntryBodies::default(), &BuildOptions { redact })
    }

    #[test]
    fn timings_new_connection_put_ssl_inside_connect() {
        let e = build(&sample_exchange(), false);
        let t = &e.timings;
        assert_eq!(t.blocked, 0.5);
        assert_eq!(t.dns, 2.0);
        assert_eq!(t.connect, 10.25);
        assert_eq!(t.ssl, 7.25);
        assert_eq!((t.send, t.wait, t.receive), (0.125, 30.0, 1.5));
        // ssl is inside connect, so it is not added a second time.
        assert_eq!(e.time, 0.5 + 2.0 + 10.25 + 0.125 + 30.0 + 1.5);
        assert_eq!(e.time, t.total());
    }

    #[test]
    fn timings_reused_connection_are_minus_one() {
        let mut ex = sample_exchange();
        ex.timings = PhaseTimes {
            blocked: None,
            dns: None,
            tcp: None,
            tls: None,
            send: Some(1.0),
            wait: Some(2.0),
            receive: None,
        };
        let e = build(&ex, false);
        let t = &e.timings;
        assert_eq!(
            (t.blocked, t.dns, t.connect, t.ssl),
            (-1.0, -1.0, -1.0, -1.0)
        );
        assert_eq!((t.send, t.wait, t.receive), (1.0, 2.0, 0.0));
        assert_eq!(e.time, 3.0);
    }

    #[test]
    fn timings_plain_http_has_connect_without_ssl_and_glitches_are_dropped() {
        let mut ex = sample_exchange();
        ex.timings = PhaseTimes {
            blocked: Some(f64::NAN),
            dns: Some(-3.0),
            tcp: Some(4.0),
            tls: None,
            send: Some(f64::INFINITY),
            wait: Some(0.1),
            receive: Some(0.2),
        };
        let e = build(&ex, false);
        let t = &e.timings;
        assert_eq!(
            (t.blocked, t.dns, t.connect, t.ssl),
            (-1.0, -1.0, 4.0, -1.0)
        );
        assert_eq!(t.send, 0.0);
        assert_eq!(e.time, 4.3);
        let v = serde_json::to_value(&e).expect("serialise");
        assert!(v["timings"]
            .as_object()
            .is_some_and(|o| o.values().all(Value::is_number)));
    }

    #[test]
    fn sum_rule_holds_for_a_table_of_phase_sets() {
        let opt = |i: u32, bit: u32| ((i >> bit) & 1 == 1).then_some(f64::from(bit) + 0.1);
        for i in 0..128u32 {
            let p = PhaseTimes {
                blocked: opt(i, 0),
                dns: opt(i, 1),
                tcp: opt(i, 2),
                tls: opt(i, 3),
                send: opt(i, 4),
                wait: opt(i, 5),
                receive: opt(i, 6),
            };
            let t = har_timings(&p);
            let expect: f64 = [p.blocked, p.dns, p.tcp, p.tls, p.send, p.wait, p.receive]
                .iter()
                .flatten()
                .sum();
            assert!((t.total() - expect).abs() < 1e-9, "case {i}: {t:?}");
            if t.ssl >= 0.0 {
                assert!(t.connect >= t.ssl, "case {i}");
            }
            assert!(t.send >= 0.0 && t.wait >= 0.0 && t.receive >= 0.0);
        }
    }

    #[test]
    fn started_is_rfc3339_millis_utc() {
        let e = build(&sample_exchange(), false);
        assert_eq!(e.started_date_time, "2026-01-01T00:00:00.123Z");
        assert_eq!(format_started(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_started(UNIX_EPOCH - Duration::from_millis(1)),
            "1969-12-31T23:59:59.999Z"
        );
        // Far beyond year 9999: must not panic.
        let far = UNIX_EPOCH + Duration::from_micros(u64::MAX);
        assert_eq!(format_started(far), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn request_and_response_fields() {
        let e = build(&sample_exchange(), false);
        assert_eq!(e.id, Some(42));
        assert_eq!(e.connection.as_deref(), Some("9"));
        assert_eq!(e.server_ip_address.as_deref(), Some("142.250.1.1"));
        let q: Vec<(&str, &str)> = e
            .request
            .query_string
            .iter()
            .map(|nv| (nv.name.as_str(), nv.value.as_str()))
            .collect();
        assert_eq!(q, vec![("go-get", "1"), ("q", "a b")]);
        assert!(e.request.post_data.is_none());
        assert_eq!(e.request.body_size, 0);
        assert_eq!(e.response.status_text, "OK");
        assert_eq!(e.response.content.mime_type, "text/plain; charset=utf-8");
        assert_eq!(e.response.content.size, 13);
        assert_eq!(e.response.body_size, 13);
        assert_eq!(e.response.content.sha256, Some("ab".repeat(32)));
        assert_eq!(e.response.content.complete, None);
        assert!(e.response.trailers.is_none());
        assert!(e.tls.as_ref().and_then(|t| t.client.as_ref()).is_some());
        let v = serde_json::to_value(&e).expect("serialise");
        assert!(super::super::validate::validate_har_1_2(
            &serde_json::json!({"log": {"version": "1.2", "creator": {"name": "t", "version": "1"}, "entries": [v]}})
        )
        .is_empty());
    }

    #[test]
    fn failed_exchange_has_status_zero_and_error() {
        let mut ex = sample_exchange();
        ex.response = None;
        ex.error = Some(ExchangeError::new(
            crate::exchange::FailPhase::Tls,
            crate::exchange::ErrorKind::TlsUntrusted,
            "invalid peer certificate: UnknownIssuer",
        ));
        ex.fault = Some(FaultFacts {
            rule: "flaky".into(),
            action: "reset".into(),
        });
        let e = build(&ex, false);
        assert_eq!(e.response.status, 0);
        assert_eq!(e.response.status_text, "");
        assert_eq!(e.response.body_size, -1);
        assert_eq!(e.response.headers_size, -1);
        let v = serde_json::to_value(&e).expect("serialise");
        assert_eq!(v["_error"]["kind"], "tls-untrusted");
        assert_eq!(v["_error"]["phase"], "tls");
        assert_eq!(v["_fault"]["action"], "reset");
        assert_eq!(v["response"]["redirectURL"], "");
        assert_eq!(v["response"]["cookies"], serde_json::json!([]));
        assert_eq!(v["cache"], serde_json::json!({}));
    }

    #[test]
    fn bodies_cut_trailers_and_default_mime() {
        let mut ex = sample_exchange();
        ex.request.method = "POST".into();
        ex.request.body = BodyFacts {
            size: 5,
            sha256: None,
            complete: true,
        };
        if let Some(r) = ex.response.as_mut() {
            r.headers.retain(|(n, _)| n != "content-type");
            r.headers
                .push(("location".into(), "https://u:p@elsewhere/".into()));
            r.trailers = vec![("grpc-status".into(), "0".into())];
            r.body.complete = false;
        }
        let bodies = EntryBodies {
            request: BodyContent {
                sha256: Some("cd".repeat(32)),
                file: Some(format!("bodies/{}", "cd".repeat(32))),
                text: None,
                base64: Some("AAEC".into()),
                decoded_size: None,
            },
            response: BodyContent {
                sha256: Some("ef".repeat(32)),
                file: Some(format!("bodies/{}", "ef".repeat(32))),
                text: Some("hello".into()),
                base64: Some("aGVsbG8=".into()),
                decoded_size: None,
            },
        };
        let e = build_entry(
            &ex,
            Some(serde_json::json!({"kind": "list"})),
            &bodies,
            &BuildOptions::default(),
        );
        let pd = e.request.post_data.as_ref().expect("post data");
        assert_eq!(pd.mime_type, "application/octet-stream");
        assert_eq!(pd.text.as_deref(), Some("AAEC"));
        assert_eq!(pd.encoding.as_deref(), Some("base64"));
        assert_eq!(pd.sha256, bodies.request.sha256);
        // Embedded plain text says its charset; base64 does not need one.
        assert_eq!(
            e.response.content.mime_type,
            "application/octet-stream; charset=utf-8"
        );
        assert_eq!(e.response.content.text.as_deref(), Some("hello"));
        assert_eq!(e.response.content.encoding, None);
        assert_eq!(e.response.content.file, bodies.response.file);
        assert_eq!(e.response.content.complete, Some(false));
        assert_eq!(e.response.redirect_url, "https://u:p@elsewhere/");
        let tr = e.response.trailers.as_ref().expect("trailers");
        assert_eq!(
            (tr[0].name.as_str(), tr[0].value.as_str()),
            ("grpc-status", "0")
        );
        assert_eq!(e.go, Some(serde_json::json!({"kind": "list"})));
    }

    #[test]
    fn encoded_body_has_decoded_size_compression_and_wire_body_size() {
        let mut ex = sample_exchange();
        if let Some(r) = ex.response.as_mut() {
            r.headers = vec![
                ("content-type".into(), "application/json".into()),
                ("content-encoding".into(), "gzip".into()),
            ];
            r.body.size = 40;
        }
        let decoded = BodyContent {
            sha256: Some("ab".repeat(32)),
            file: Some(format!("bodies/{}", "ab".repeat(32))),
            text: Some("{\"a\":1}".repeat(10)),
            base64: None,
            decoded_size: Some(70),
        };
        let e = build_entry(
            &ex,
            None,
            &EntryBodies {
                request: BodyContent::default(),
                response: decoded.clone(),
            },
            &BuildOptions::default(),
        );
        let c = &e.response.content;
        assert_eq!(
            (c.size, c.compression, e.response.body_size),
            (70, Some(30), 40)
        );
        assert_eq!(c.mime_type, "application/json; charset=utf-8");
        assert_eq!(c.sha256, decoded.sha256, "the hash names the wire bytes");
        // A body that did not decode keeps the wire view and no `compression`.
        let e = build_entry(
            &ex,
            None,
            &EntryBodies {
                request: BodyContent::default(),
                response: BodyContent {
                    text: None,
                    decoded_size: None,
                    ..decoded
                },
            },
            &BuildOptions::default(),
        );
        let c = &e.response.content;
        assert_eq!((c.size, c.compression), (40, None));
        assert_eq!(c.mime_type, "application/json");
        for (mime, text, want) in [
            (
                "text/plain; charset=ISO-8859-1",
                true,
                "text/plain; charset=ISO-8859-1",
            ),
            ("text/plain", true, "text/plain; charset=utf-8"),
            ("", true, ""),
            ("text/plain", false, "text/plain"),
        ] {
            assert_eq!(mime_with_charset(mime, text), want);
        }
    }

    #[test]
    fn redaction_on_and_off() {
        let mut ex = sample_exchange();
        if let Some(r) = ex.response.as_mut() {
            r.headers
                .push(("location".into(), "https://u:p@elsewhere/".into()));
            r.trailers = vec![("set-cookie".into(), "t=1".into())];
        }
        let off = build(&ex, false);
        assert!(off.request.url.contains("alice:s3cret@"));
        let auth = |e: &Entry, n: &str| {
            e.request
                .headers
                .iter()
                .chain(&e.response.headers)
                .chain(e.response.trailers.iter().flatten())
                .filter(|h| h.name.eq_ignore_ascii_case(n))
                .map(|h| h.value.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(auth(&off, "authorization"), vec!["Basic YWxpY2U6czNjcmV0"]);
        assert_eq!(auth(&off, "set-cookie"), vec!["a=b", "t=1"]);

        let on = build(&ex, true);
        assert_eq!(
            on.request.url,
            "https://[redacted]@proxy.golang.org/golang.org/x/mod/@v/list?go-get=1&q=a%20b"
        );
        for h in [
            "authorization",
            "proxy-authorization",
            "cookie",
            "set-cookie",
        ] {
            let vals = auth(&on, h);
            assert!(!vals.is_empty(), "{h}");
            let keeps_scheme = h.ends_with("authorization");
            assert!(
                vals.iter().all(
                    |v| v == REDACTED || (keeps_scheme && v.ends_with(&format!(" {REDACTED}")))
                ),
                "{h}: {vals:?}"
            );
        }
        assert_eq!(
            auth(&on, "authorization"),
            vec![format!("Basic {REDACTED}")]
        );
        assert_eq!(auth(&on, "user-agent"), vec!["Go-http-client/2.0"]);
        assert_eq!(on.response.redirect_url, "https://[redacted]@elsewhere/");
        assert_eq!(auth(&on, "location"), vec!["https://[redacted]@elsewhere/"]);
        let text = serde_json::to_string(&on).expect("serialise");
        assert!(!text.contains("s3cret") && !text.contains("YWxpY2U6czNjcmV0"));
        assert!(!text.contains("session=1"));
    }
}
