//! PURE: trace entries (and a run) -> OTLP spans following the stable HTTP client
//! semantic conventions, plus modscope's Go, TLS and fault attributes.
//!
//! Ids are derived, not drawn: a span id is a hash of its trace id and the entry's `_id`,
//! so the same input always maps to the same spans (table tests, and an exported trace
//! that is sent twice lands on the same span ids instead of doubling).

use sha2::{Digest, Sha256};

use super::proto::{Event, KeyValue, Span, SpanKind, Status, StatusCode};
use crate::gomod::{self, GoKind, GoRequest};
use crate::trace::{urlparts, Entry, REDACTED};

/// Spans leave the machine: userinfo never goes with them, whatever the trace holds.
fn redact_url(url: &str) -> String {
    urlparts::redact_userinfo(url, REDACTED)
}

/// Where spans of one trace hang: the trace id and, when there is one, the parent span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanContext {
    pub trace_id: [u8; 16],
    pub parent: Option<[u8; 8]>,
    /// W3C trace flags (bit 0: sampled).
    pub flags: u8,
}

/// A W3C `traceparent` (version 00): `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`.
pub fn parse_traceparent(value: &str) -> Option<SpanContext> {
    let mut parts = value.trim().split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    // Version ff is invalid; later versions may append fields, which the spec says to ignore.
    if version.len() != 2 || version == "ff" || (version == "00" && parts.next().is_some()) {
        return None;
    }
    let trace_id: [u8; 16] = hex::decode(trace).ok()?.try_into().ok()?;
    let span_id: [u8; 8] = hex::decode(span).ok()?.try_into().ok()?;
    let flags = u8::from_str_radix(flags, 16)
        .ok()
        .filter(|_| flags.len() == 2)?;
    if trace_id == [0; 16] || span_id == [0; 8] || hex::decode(version).is_err() {
        return None;
    }
    Some(SpanContext {
        trace_id,
        parent: Some(span_id),
        flags,
    })
}

/// A trace id for one group of exchanges (a run, a client connection) from a per-process
/// random nonce: distinct across processes, stable within one.
pub fn derive_trace_id(nonce: &[u8; 16], group: u64) -> [u8; 16] {
    let digest = Sha256::new()
        .chain_update(b"modscope trace")
        .chain_update(nonce)
        .chain_update(group.to_be_bytes())
        .finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    id
}

/// The span id of entry `entry_id` (its `_id`, or its position) within `trace_id`.
pub fn derive_span_id(trace_id: &[u8; 16], entry_id: u64) -> [u8; 8] {
    let digest = Sha256::new()
        .chain_update(b"modscope span")
        .chain_update(trace_id)
        .chain_update(entry_id.to_be_bytes())
        .finalize();
    let mut id = [0u8; 8];
    id.copy_from_slice(&digest[..8]);
    id
}

/// Nanoseconds since the Unix epoch of an RFC 3339 time; `None` when it does not parse.
pub fn unix_nanos(rfc3339: &str) -> Option<u64> {
    let t = time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .ok()?;
    u64::try_from(t.unix_timestamp_nanos()).ok()
}

fn ms_to_nanos(ms: f64) -> u64 {
    if ms.is_finite() && ms > 0.0 {
        (ms * 1_000_000.0).round() as u64
    } else {
        0
    }
}

/// The span name: the method and a low-cardinality template of the GOPROXY/sumdb path
/// (semantic conventions: `{method} {url.template}`), so a fleet can group by it.
pub fn url_template(kind: GoKind) -> Option<&'static str> {
    Some(match kind {
        GoKind::List => "/{module}/@v/list",
        GoKind::Info => "/{module}/@v/{version}.info",
        GoKind::Mod => "/{module}/@v/{version}.mod",
        GoKind::Zip => "/{module}/@v/{version}.zip",
        GoKind::Latest => "/{module}/@latest",
        GoKind::SumdbSupported => "/sumdb/{name}/supported",
        GoKind::SumdbLookup => "/lookup/{module}@{version}",
        GoKind::SumdbTile => "/tile/{height}/{level}/{index}",
        GoKind::SumdbLatest => "/latest",
        GoKind::Toolchain => "/golang.org/toolchain/@v/{file}",
        GoKind::GoGet => "/{path}?go-get=1",
        // git's smart-HTTP paths vary by service; the method alone groups them.
        GoKind::Git | GoKind::Other => return None,
    })
}

/// `http.client.network_timing` event attributes: start and end of each phase in
/// milliseconds from the span's start (HAR: `ssl` lies inside `connect`).
fn timing_attributes(e: &Entry) -> Vec<KeyValue> {
    let t = &e.timings;
    let some = |v: f64| (v >= 0.0).then_some(v);
    let mut at = some(t.blocked).unwrap_or(0.0);
    let mut attrs = Vec::new();
    let mut phase = |name: &str, from: f64, len: f64| {
        attrs.push(KeyValue::new(&format!("{name}.start"), from));
        attrs.push(KeyValue::new(&format!("{name}.end"), from + len));
    };
    if let Some(dns) = some(t.dns) {
        phase("dns", at, dns);
        at += dns;
    }
    if let Some(connect) = some(t.connect) {
        phase("connect", at, connect);
        if let Some(ssl) = some(t.ssl).filter(|s| *s <= connect) {
            phase("secure_connect", at + connect - ssl, ssl);
        }
        at += connect;
    }
    let send = some(t.send).unwrap_or(0.0);
    phase("request", at, send);
    at += send + some(t.wait).unwrap_or(0.0);
    if e.response.status > 0 {
        phase("response", at, some(t.receive).unwrap_or(0.0));
    }
    attrs
}

fn go_request(e: &Entry, bases: &[String]) -> GoRequest {
    e.go.clone()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_else(|| gomod::classify(&e.request.method, &e.request.url, bases))
}

/// `network.protocol.version` from a HAR `httpVersion` (`HTTP/1.1` -> `1.1`, `h2` -> `2`).
fn protocol_version(http_version: &str) -> Option<String> {
    let v = http_version.trim();
    let v = v
        .strip_prefix("HTTP/")
        .or_else(|| v.strip_prefix("http/"))
        .unwrap_or(v);
    match v {
        "" => None,
        "h2" | "2.0" => Some("2".into()),
        "h3" | "3.0" => Some("3".into()),
        other => Some(other.to_string()),
    }
}

/// `tls.protocol.version` wants `1.3` where modscope records `TLS 1.3` / `TLSv1_3`.
fn tls_version(v: &str) -> String {
    v.trim_start_matches("TLS")
        .trim_start_matches('v')
        .trim()
        .replace('_', ".")
}

/// One CLIENT span for one exchange. `url.full` is stored redacted whatever the trace
/// holds, because spans leave the machine.
pub fn entry_span(e: &Entry, index: usize, ctx: &SpanContext, bases: &[String]) -> Span {
    let entry_id = e.id.unwrap_or(index as u64 + 1);
    let start = unix_nanos(&e.started_date_time).unwrap_or(0);
    let end = start + ms_to_nanos(e.time);
    let go = go_request(e, bases);
    let url = redact_url(&e.request.url);
    let parts = urlparts::host_port(&url);
    let template = url_template(go.kind);

    let mut a = vec![
        KeyValue::new("http.request.method", e.request.method.as_str()),
        KeyValue::new("url.full", url.as_str()),
    ];
    if let Some((host, port)) = &parts {
        a.push(KeyValue::new("server.address", host.as_str()));
        a.push(KeyValue::new("server.port", i64::from(*port)));
    }
    if let Some(t) = template {
        a.push(KeyValue::new("url.template", t));
    }
    let status = e.response.status;
    if status > 0 {
        a.push(KeyValue::new(
            "http.response.status_code",
            i64::from(status),
        ));
        if e.response.content.size >= 0 {
            a.push(KeyValue::new(
                "http.response.body.size",
                e.response.content.size,
            ));
        }
    }
    let version = if status > 0 {
        &e.response.http_version
    } else {
        &e.request.http_version
    };
    if let Some(v) = protocol_version(version) {
        a.push(KeyValue::new("network.protocol.name", "http"));
        a.push(KeyValue::new("network.protocol.version", v));
    }
    if let Some(ip) = &e.server_ip_address {
        a.push(KeyValue::new("network.peer.address", ip.as_str()));
    }
    if let Some(conn) = &e.connection {
        a.push(KeyValue::new("modscope.connection", conn.as_str()));
    }
    a.push(KeyValue::new("modscope.entry", entry_id as i64));

    a.push(KeyValue::new("go.kind", go.kind.as_str()));
    if let Some(m) = &go.module {
        a.push(KeyValue::new("go.module", m.as_str()));
    }
    if let Some(v) = &go.version {
        a.push(KeyValue::new("go.version", v.as_str()));
    }
    if let Some(base) = &go.base {
        a.push(KeyValue::new("go.proxy", redact_url(base)));
    }
    if let Some(h1) =
        e.go.as_ref()
            .and_then(|g| g.get("h1"))
            .and_then(|v| v.as_str())
    {
        a.push(KeyValue::new("go.h1", h1));
    }

    if let Some(up) = e.tls.as_ref().and_then(|t| t.upstream.as_ref()) {
        a.push(KeyValue::new("tls.established", up.error.is_none()));
        if let Some(v) = &up.version {
            a.push(KeyValue::new("tls.protocol.name", "tls"));
            a.push(KeyValue::new("tls.protocol.version", tls_version(v)));
        }
        if let Some(c) = &up.cipher {
            a.push(KeyValue::new("tls.cipher", c.as_str()));
        }
        if let Some(p) = &up.alpn {
            a.push(KeyValue::new("tls.next_protocol", p.as_str()));
        }
        if let Some(leaf) = up.certificates.first() {
            a.push(KeyValue::new("tls.server.subject", leaf.subject.as_str()));
            a.push(KeyValue::new("tls.server.issuer", leaf.issuer.as_str()));
            a.push(KeyValue::new(
                "tls.server.not_after",
                leaf.not_after.as_str(),
            ));
            a.push(KeyValue::new(
                "tls.server.hash.sha256",
                leaf.sha256.to_uppercase(),
            ));
        }
    }
    if let Some(f) = &e.fault {
        a.push(KeyValue::new("modscope.fault.rule", f.rule.as_str()));
        a.push(KeyValue::new("modscope.fault.action", f.action.as_str()));
    }

    // Semantic conventions: a client span fails on a transport error or a 4xx/5xx, and
    // error.type is the error class, or the status code as a string.
    let error_type = match (&e.error, status) {
        (Some(err), _) => Some(err.kind.clone()),
        (None, 0) => Some("_OTHER".to_string()),
        (None, s) if s >= 400 => Some(s.to_string()),
        _ => None,
    };
    let span_status = match &error_type {
        Some(kind) => {
            a.push(KeyValue::new("error.type", kind.as_str()));
            let message = e
                .error
                .as_ref()
                .map(|err| err.message.clone())
                .unwrap_or_else(|| format!("HTTP {status}"));
            Some(Status {
                message,
                code: StatusCode::Error as i32,
            })
        }
        None => None,
    };

    let name = match template {
        Some(t) => format!("{} {t}", e.request.method),
        None => e.request.method.clone(),
    };
    Span {
        trace_id: ctx.trace_id.to_vec(),
        span_id: derive_span_id(&ctx.trace_id, entry_id).to_vec(),
        trace_state: String::new(),
        parent_span_id: ctx.parent.map(|p| p.to_vec()).unwrap_or_default(),
        name,
        kind: SpanKind::Client as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        attributes: a,
        events: vec![Event {
            time_unix_nano: start,
            name: "http.client.network_timing".into(),
            attributes: timing_attributes(e),
        }],
        status: span_status,
        flags: u32::from(ctx.flags) | 0x100, // bit 8: the "is remote" bit below is known
    }
}

/// What a `run` adds to its root span.
#[derive(Debug, Clone, PartialEq)]
pub struct RunFacts {
    pub command: Vec<String>,
    pub exit_code: i32,
    /// `ok`, `transient` or `permanent` (see `diagnose`), when known.
    pub verdict: Option<String>,
    pub start_unix_nanos: u64,
    pub end_unix_nanos: u64,
    pub requests: usize,
    pub failed: usize,
}

/// A short, low-cardinality name for a command: the program's file name and its leading
/// sub-command words (`go mod download`), without flags, paths or module@version arguments.
pub fn command_name(command: &[String]) -> String {
    let Some((program, rest)) = command.split_first() else {
        return "modscope run".into();
    };
    let program = program.rsplit('/').next().unwrap_or(program);
    let mut words = vec![program.to_string()];
    words.extend(
        rest.iter()
            .take_while(|a| {
                !a.starts_with('-')
                    && !a.contains(['@', '/', '.', '='])
                    && a.chars().all(|c| c.is_ascii_alphanumeric())
            })
            .take(2)
            .cloned(),
    );
    words.join(" ")
}

/// The root span of a run, its id `root_id`; `ctx.parent` is the CI job's span from
/// `TRACEPARENT`, if any.
pub fn run_span(run: &RunFacts, ctx: &SpanContext, root_id: [u8; 8]) -> Span {
    let mut a = vec![
        KeyValue::new("process.command_line", run.command.join(" ")),
        KeyValue::new("process.exit.code", i64::from(run.exit_code)),
        KeyValue::new("modscope.requests", run.requests as i64),
        KeyValue::new("modscope.failed", run.failed as i64),
    ];
    if let Some(v) = &run.verdict {
        a.push(KeyValue::new("modscope.verdict", v.as_str()));
    }
    let status = (run.exit_code != 0).then(|| Status {
        message: format!("exit code {}", run.exit_code),
        code: StatusCode::Error as i32,
    });
    Span {
        trace_id: ctx.trace_id.to_vec(),
        span_id: root_id.to_vec(),
        trace_state: String::new(),
        parent_span_id: ctx.parent.map(|p| p.to_vec()).unwrap_or_default(),
        name: command_name(&run.command),
        kind: SpanKind::Internal as i32,
        start_time_unix_nano: run.start_unix_nanos,
        end_time_unix_nano: run.end_unix_nanos.max(run.start_unix_nanos),
        attributes: a,
        events: Vec::new(),
        status,
        flags: u32::from(ctx.flags) | 0x100 | if ctx.parent.is_some() { 0x200 } else { 0 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otlp::proto::Value;

    fn entry(json: serde_json::Value) -> Entry {
        serde_json::from_value(json).expect("entry")
    }

    fn zip_entry() -> Entry {
        entry(serde_json::json!({
            "startedDateTime": "2026-11-25T10:00:00.000Z",
            "time": 50.0,
            "request": {"method": "GET", "url": "https://u:pw@proxy.golang.org/example.com/!hello/@v/v1.0.0.zip",
                        "httpVersion": "HTTP/2", "headers": [], "queryString": [], "cookies": [],
                        "headersSize": -1, "bodySize": 0},
            "response": {"status": 200, "statusText": "OK", "httpVersion": "HTTP/2", "headers": [], "cookies": [],
                         "content": {"size": 1234, "mimeType": "application/zip"}, "redirectURL": "",
                         "headersSize": -1, "bodySize": 1234},
            "cache": {},
            "timings": {"blocked": 1.0, "dns": 2.0, "connect": 10.0, "ssl": 6.0, "send": 1.0, "wait": 30.0, "receive": 6.0},
            "serverIPAddress": "127.0.0.1",
            "connection": "3",
            "_id": 7,
            "_go": {"kind": "zip", "module": "example.com/Hello", "version": "v1.0.0",
                    "base": "https://u:pw@proxy.golang.org", "h1": "h1:abc="},
            "_tls": {"upstream": {"version": "TLSv1_3", "cipher": "TLS13_AES_128_GCM_SHA256", "alpn": "h2",
                     "verified": true, "certificates": [{"subject": "CN=proxy.golang.org", "issuer": "CN=CA",
                     "notBefore": "2026-01-01T00:00:00Z", "notAfter": "2027-01-01T00:00:00Z",
                     "dnsNames": ["proxy.golang.org"], "sha256": "aabb"}]}},
            "_fault": {"rule": "slow-zips", "action": "latency"}
        }))
    }

    fn attr(span: &Span, key: &str) -> Option<Value> {
        span.attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.clone()?.value)
    }

    fn s(v: &str) -> Option<Value> {
        Some(Value::StringValue(v.into()))
    }

    const CTX: SpanContext = SpanContext {
        trace_id: [7; 16],
        parent: Some([9; 8]),
        flags: 1,
    };

    #[test]
    fn a_zip_download_follows_the_http_client_conventions() {
        let span = entry_span(&zip_entry(), 0, &CTX, &[]);
        assert_eq!(span.kind, SpanKind::Client as i32);
        assert_eq!(span.name, "GET /{module}/@v/{version}.zip");
        assert_eq!(span.trace_id, vec![7; 16]);
        assert_eq!(span.parent_span_id, vec![9; 8]);
        assert_eq!(
            span.span_id,
            derive_span_id(&[7; 16], 7).to_vec(),
            "from _id"
        );
        assert_eq!(span.start_time_unix_nano, 1_795_600_800_000_000_000);
        assert_eq!(
            span.end_time_unix_nano - span.start_time_unix_nano,
            50_000_000
        );
        let want = [
            ("http.request.method", s("GET")),
            (
                "url.full",
                s("https://[redacted]@proxy.golang.org/example.com/!hello/@v/v1.0.0.zip"),
            ),
            ("server.address", s("proxy.golang.org")),
            ("server.port", Some(Value::IntValue(443))),
            ("http.response.status_code", Some(Value::IntValue(200))),
            ("http.response.body.size", Some(Value::IntValue(1234))),
            ("network.protocol.version", s("2")),
            ("network.peer.address", s("127.0.0.1")),
            ("go.kind", s("zip")),
            ("go.module", s("example.com/Hello")),
            ("go.version", s("v1.0.0")),
            ("go.proxy", s("https://[redacted]@proxy.golang.org")),
            ("go.h1", s("h1:abc=")),
            ("tls.protocol.version", s("1.3")),
            ("tls.cipher", s("TLS13_AES_128_GCM_SHA256")),
            ("tls.next_protocol", s("h2")),
            ("tls.server.subject", s("CN=proxy.golang.org")),
            ("tls.server.not_after", s("2027-01-01T00:00:00Z")),
            ("tls.server.hash.sha256", s("AABB")),
            ("modscope.fault.rule", s("slow-zips")),
            ("modscope.fault.action", s("latency")),
            ("error.type", None),
        ];
        for (key, value) in want {
            assert_eq!(attr(&span, key), value, "{key}");
        }
        assert!(span.status.is_none());
    }

    #[test]
    fn phase_times_become_the_network_timing_event() {
        let span = entry_span(&zip_entry(), 0, &CTX, &[]);
        let event = &span.events[0];
        assert_eq!(event.name, "http.client.network_timing");
        let get = |k: &str| {
            event
                .attributes
                .iter()
                .find(|kv| kv.key == k)
                .and_then(|kv| match kv.value.clone()?.value? {
                    Value::DoubleValue(d) => Some(d),
                    _ => None,
                })
        };
        // blocked 1, dns 2, connect 10 (ssl 6 inside it), send 1, wait 30, receive 6.
        let table = [
            ("dns.start", 1.0),
            ("dns.end", 3.0),
            ("connect.start", 3.0),
            ("connect.end", 13.0),
            ("secure_connect.start", 7.0),
            ("secure_connect.end", 13.0),
            ("request.start", 13.0),
            ("request.end", 14.0),
            ("response.start", 44.0),
            ("response.end", 50.0),
        ];
        for (key, want) in table {
            assert_eq!(get(key), Some(want), "{key}");
        }

        let mut reused = zip_entry();
        reused.timings.dns = -1.0;
        reused.timings.connect = -1.0;
        reused.timings.ssl = -1.0;
        let span = entry_span(&reused, 0, &CTX, &[]);
        let keys: Vec<&str> = span.events[0]
            .attributes
            .iter()
            .map(|kv| kv.key.as_str())
            .collect();
        assert!(
            !keys
                .iter()
                .any(|k| k.starts_with("dns") || k.contains("connect")),
            "{keys:?}"
        );
    }

    #[test]
    fn failures_set_error_type_and_status() {
        let mut failed = zip_entry();
        failed.response.status = 0;
        failed.error = Some(crate::exchange::ExchangeError {
            phase: "tls".into(),
            kind: "tls-untrusted".into(),
            message: "certificate signed by unknown authority".into(),
        });
        let mut not_found = zip_entry();
        not_found.response.status = 404;
        let table = [
            (
                failed,
                Some("tls-untrusted"),
                Some("certificate signed by unknown authority"),
            ),
            (not_found, Some("404"), Some("HTTP 404")),
            (zip_entry(), None, None),
        ];
        for (e, want_type, want_message) in table {
            let span = entry_span(&e, 0, &CTX, &[]);
            assert_eq!(
                attr(&span, "error.type"),
                want_type.and_then(s),
                "{want_type:?}"
            );
            assert_eq!(
                span.status.as_ref().map(|s| s.message.as_str()),
                want_message
            );
            if want_type.is_some() {
                assert_eq!(span.status.unwrap().code, StatusCode::Error as i32);
            }
        }
    }

    #[test]
    fn traceparent_parsing() {
        let ok =
            parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(hex::encode(ok.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(
            ok.parent.map(hex::encode).as_deref(),
            Some("00f067aa0ba902b7")
        );
        assert_eq!(ok.flags, 1);
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert_eq!(parse_traceparent(bad), None, "{bad:?}");
        }
        // A later version may carry more fields; its first four are still read.
        assert!(
            parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-x")
                .is_some()
        );
    }

    #[test]
    fn command_names_are_low_cardinality() {
        let table: &[(&[&str], &str)] = &[
            (
                &["/usr/lib/go/bin/go", "mod", "download", "-x"],
                "go mod download",
            ),
            (&["go", "get", "example.com/m@v1.2.3"], "go get"),
            (&["go", "build", "./..."], "go build"),
            (&["make"], "make"),
            (&[], "modscope run"),
        ];
        for (cmd, want) in table {
            let cmd: Vec<String> = cmd.iter().map(|s| s.to_string()).collect();
            assert_eq!(command_name(&cmd), *want);
        }
    }

    #[test]
    fn the_run_span_carries_the_outcome() {
        let run = RunFacts {
            command: vec!["go".into(), "mod".into(), "download".into()],
            exit_code: 1,
            verdict: Some("transient".into()),
            start_unix_nanos: 10,
            end_unix_nanos: 5,
            requests: 3,
            failed: 1,
        };
        let ctx = SpanContext {
            trace_id: [1; 16],
            parent: Some([2; 8]),
            flags: 1,
        };
        let span = run_span(&run, &ctx, [3; 8]);
        assert_eq!(span.name, "go mod download");
        assert_eq!(span.kind, SpanKind::Internal as i32);
        assert_eq!(span.parent_span_id, vec![2; 8]);
        assert_eq!(span.span_id, vec![3; 8]);
        assert_eq!(span.end_time_unix_nano, 10, "never ends before it starts");
        assert_eq!(attr(&span, "process.exit.code"), Some(Value::IntValue(1)));
        assert_eq!(attr(&span, "modscope.verdict"), s("transient"));
        assert_eq!(span.status.unwrap().code, StatusCode::Error as i32);
        assert_eq!(
            span.flags & 0x300,
            0x300,
            "the parent came from TRACEPARENT: remote"
        );
    }

    #[test]
    fn ids_are_stable_and_distinct() {
        let a = derive_trace_id(&[1; 16], 1);
        assert_eq!(a, derive_trace_id(&[1; 16], 1));
        assert_ne!(a, derive_trace_id(&[1; 16], 2));
        assert_ne!(a, derive_trace_id(&[2; 16], 1));
        assert_ne!(derive_span_id(&a, 1), derive_span_id(&a, 2));
    }
}
