//! PURE: finished connections and DNS lookups as [`Exchange`]s plus their `_capture`
//! facts, so the HAR entries come from the same `build_entry` as recorded traffic.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;

use super::dns::{self, Answer, DnsTracker, Lookup};
use super::http::{header, BodyInfo, HttpConn, Slot, Tunnel};
use super::tcp::{App, Conn, Opening};
use super::tls::{Alert, TlsTracker};
use super::Side;
use crate::exchange::{
    BodyFacts, ClientTls, Exchange, ExchangeError, PhaseTimes, RequestFacts, ResponseFacts,
    TlsFacts,
};
use crate::trace::{BodyContent, EntryBodies};

/// Why a connection's entries were written when they were.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// FIN both ways or RST, and quiet since.
    Closed,
    /// A new SYN reused the 4-tuple.
    Reused,
    /// Nothing for a long time (capture time).
    Idle,
    /// The capture ended with the connection open.
    CaptureOver,
}

/// An entry waiting for its id: the exchange, its bodies and the `_capture` object.
pub(crate) struct Item {
    pub exchange: Exchange,
    pub bodies: EntryBodies,
    pub capture: Value,
}

/// Nanosecond timestamps to milliseconds, never negative (captures can step backwards).
pub(crate) fn ms(from: i64, to: i64) -> f64 {
    let d = to.saturating_sub(from).max(0);
    ((d as f64) / 1e6 * 1000.0).round() / 1000.0
}

pub(crate) fn system_time(ts: i64) -> SystemTime {
    if ts >= 0 {
        UNIX_EPOCH + Duration::from_nanos(ts.unsigned_abs())
    } else {
        UNIX_EPOCH
            .checked_sub(Duration::from_nanos(ts.unsigned_abs()))
            .unwrap_or(UNIX_EPOCH)
    }
}

/// A human duration for messages: milliseconds below a second, seconds above.
fn seconds(from: i64, to: i64) -> String {
    let ms = ms(from, to);
    if ms < 1.0 {
        format!("{ms:.3} ms")
    } else if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.1} s", ms / 1000.0)
    }
}

#[derive(Serialize)]
struct PerSide {
    client: u64,
    server: u64,
}

impl PerSide {
    fn of(conn: &Conn, f: impl Fn(&super::tcp::Stream) -> u64) -> Self {
        PerSide {
            client: f(&conn.streams[0]),
            server: f(&conn.streams[1]),
        }
    }
}

#[derive(Serialize)]
struct ConnFacts {
    id: u64,
    client: String,
    server: String,
    protocol: &'static str,
    opening: &'static str,
    syns: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    rtt_ms: Option<f64>,
    bytes_client_to_server: u64,
    bytes_server_to_client: u64,
    packets_client_to_server: u64,
    packets_server_to_client: u64,
    retransmissions: PerSide,
    out_of_order: PerSide,
    zero_windows: PerSide,
    #[serde(skip_serializing_if = "Option::is_none")]
    gaps: Option<PerSide>,
    #[serde(skip_serializing_if = "Option::is_none")]
    snaplen_cut_bytes: Option<u64>,
    fin_by: Vec<Side>,
    rst_by: Vec<Side>,
    #[serde(skip_serializing_if = "Option::is_none")]
    closed_by: Option<Side>,
    duration_ms: f64,
    ended: &'static str,
}

fn conn_facts(conn: &Conn, end: End) -> ConnFacts {
    let [c, s] = &conn.streams;
    let by = |f: fn(&super::tcp::Stream) -> Option<i64>| -> Vec<Side> {
        let mut v: Vec<(i64, Side)> = [(f(c), Side::Client), (f(s), Side::Server)]
            .into_iter()
            .filter_map(|(t, side)| t.map(|t| (t, side)))
            .collect();
        v.sort();
        v.into_iter().map(|(_, side)| side).collect()
    };
    let closes: Vec<(i64, Side)> = [
        (c.fin_ts, Side::Client),
        (c.rst_ts, Side::Client),
        (s.fin_ts, Side::Server),
        (s.rst_ts, Side::Server),
    ]
    .into_iter()
    .filter_map(|(t, side)| t.map(|t| (t, side)))
    .collect();
    let closed_by = closes.iter().min().map(|(_, side)| *side);
    let gaps = (c.gaps + s.gaps > 0).then(|| PerSide::of(conn, |st| st.gaps));
    let cut = c.snaplen_cut + s.snaplen_cut;
    ConnFacts {
        id: conn.id,
        client: conn.client.to_string(),
        server: conn.server.to_string(),
        protocol: match &conn.app {
            App::Http(h) if h.tunnel().is_some_and(|t| t.tls.is_some()) => "http-connect-tls",
            App::Http(_) => "http",
            App::Tls(_) => "tls",
            App::Other => "other",
            App::Detect { .. } => "none",
        },
        opening: match conn.opening() {
            Opening::Complete => "complete",
            Opening::SynAck => "syn-ack",
            Opening::SynOnly => "syn-only",
            Opening::Refused => "refused",
            Opening::Missed => "not-captured",
        },
        syns: conn.syns,
        rtt_ms: handshake_ms(conn),
        bytes_client_to_server: c.bytes,
        bytes_server_to_client: s.bytes,
        packets_client_to_server: c.packets,
        packets_server_to_client: s.packets,
        retransmissions: PerSide::of(conn, |st| st.retransmissions),
        out_of_order: PerSide::of(conn, |st| st.out_of_order),
        zero_windows: PerSide::of(conn, |st| st.zero_windows),
        gaps,
        snaplen_cut_bytes: (cut > 0).then_some(cut),
        fin_by: by(|st| st.fin_ts),
        rst_by: by(|st| st.rst_ts),
        closed_by,
        duration_ms: ms(conn.first_ts, conn.last_ts),
        ended: match end {
            End::Closed => "closed",
            End::Reused => "port-reused",
            End::Idle => "idle",
            End::CaptureOver => "capture-end",
        },
    }
}

/// SYN to the handshake's ACK: one round trip seen from anywhere on the path.
fn handshake_ms(conn: &Conn) -> Option<f64> {
    let syn = conn.syn_ts?;
    let done = conn.ack_ts.or(conn.synack_ts)?;
    Some(ms(syn, done))
}

/// `host` for URLs: the DNS name the capture resolved this address from, or the address.
fn host_of(ip: IpAddr, dns: &DnsTracker) -> String {
    match dns.name_of(ip) {
        Some(name) => url_host(name),
        None => match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        },
    }
}

/// A name as a URL host: anything a trace reader would reject becomes `_`.
fn url_host(name: &str) -> String {
    let cleaned: String = name
        .trim_end_matches('.')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() {
        ".".to_string()
    } else {
        cleaned
    }
}

fn authority(scheme: &str, host: &str, port: u16) -> String {
    // Only https is ever 443 here; anything else (plain http in a capture) defaults to 80.
    let default = crate::net::default_port(scheme).unwrap_or(80);
    if port == default {
        host.to_string()
    } else {
        format!("{host}:{port}")
    }
}

fn empty_request(method: &str, url: String, version: &str) -> RequestFacts {
    RequestFacts {
        method: method.to_string(),
        url,
        http_version: version.to_string(),
        headers: Vec::new(),
        body: BodyFacts {
            size: 0,
            sha256: None,
            complete: true,
        },
    }
}

fn bare_response(status: u16) -> ResponseFacts {
    ResponseFacts {
        status,
        http_version: String::new(),
        headers: Vec::new(),
        trailers: Vec::new(),
        body: BodyFacts {
            size: 0,
            sha256: None,
            complete: true,
        },
    }
}

fn error(phase: &str, kind: &str, message: String) -> Option<ExchangeError> {
    Some(ExchangeError {
        phase: phase.to_string(),
        kind: kind.to_string(),
        message,
    })
}

fn exchange(conn: Option<&Conn>, started: i64, request: RequestFacts) -> Exchange {
    Exchange {
        id: 0,
        started: system_time(started),
        request,
        response: None,
        timings: PhaseTimes::default(),
        connection_id: conn.map(|c| c.id),
        server_ip: conn.map(|c| c.server.ip.to_string()),
        tls: None,
        error: None,
        fault: None,
        client_connection: None,
    }
}

/// Entries for a finished connection. `until` is when the capture stopped watching it.
pub(crate) fn conn_items(conn: &Conn, end: End, until: i64, dns: &DnsTracker) -> Vec<Item> {
    let facts = conn_facts(conn, end);
    let facts_value = serde_json::to_value(&facts).unwrap_or(Value::Null);
    let mut items = Vec::new();
    match conn.opening() {
        Opening::Refused => {
            items.push(connect_failure(conn, true, until, dns, &facts_value));
            return items;
        }
        Opening::SynOnly => {
            items.push(connect_failure(conn, false, until, dns, &facts_value));
            return items;
        }
        _ => {}
    }
    match &conn.app {
        App::Tls(tls) => items.push(tls_item(conn, tls, None, end, until, dns, &facts_value)),
        App::Http(http) => http_items(conn, http, end, until, dns, &facts_value, &mut items),
        App::Other | App::Detect { .. } => {}
    }
    items
}

fn connect_failure(
    conn: &Conn,
    refused: bool,
    until: i64,
    dns: &DnsTracker,
    facts: &Value,
) -> Item {
    let scheme = if matches!(conn.server.port, 443 | 8443) {
        "https"
    } else {
        "http"
    };
    let host = host_of(conn.server.ip, dns);
    let url = format!("{scheme}://{}/", authority(scheme, &host, conn.server.port));
    let syn = conn.syn_ts.unwrap_or(conn.first_ts);
    let mut ex = exchange(Some(conn), syn, empty_request("CONNECT", url, "HTTP/1.1"));
    if refused {
        let at = conn.refused_ts.unwrap_or(conn.last_ts);
        ex.timings.tcp = Some(ms(syn, at));
        ex.error = error(
            "connect",
            "connect-refused",
            format!(
                "connection refused by {}: SYN answered by RST after {}",
                conn.server,
                seconds(syn, at)
            ),
        );
    } else {
        let last = conn.last_ts.max(until);
        ex.timings.tcp = Some(ms(syn, last));
        let syns = if conn.syns == 1 {
            "1 SYN".to_string()
        } else {
            format!("{} SYNs", conn.syns)
        };
        ex.error = error(
            "connect",
            "connect-timeout",
            format!(
                "no answer to {syns} sent to {} over {}",
                conn.server,
                seconds(syn, last)
            ),
        );
    }
    Item {
        exchange: ex,
        bodies: EntryBodies::default(),
        capture: serde_json::json!({ "connection": facts }),
    }
}

#[derive(Serialize)]
struct TlsCapture<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    sni: Option<&'a str>,
    alpn_offered: &'a [String],
    versions_offered: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cipher: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alpn_selected: Option<&'a str>,
    client_hello_seen: bool,
    server_hello_seen: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    hello_retry: bool,
    completed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    handshake_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_hello_ms: Option<f64>,
    alerts: Vec<AlertOut<'a>>,
    records_client: u64,
    records_server: u64,
}

#[derive(Serialize)]
struct AlertOut<'a> {
    #[serde(flatten)]
    alert: &'a Alert,
    after_ms: f64,
}

fn tls_capture<'a>(tls: &'a TlsTracker, origin: i64) -> TlsCapture<'a> {
    let ch = tls.client_hello_ts;
    TlsCapture {
        sni: tls.sni.as_deref(),
        alpn_offered: &tls.alpn_offered,
        versions_offered: &tls.versions_offered,
        version: tls.version.as_deref(),
        cipher: tls.cipher.as_deref(),
        alpn_selected: tls.alpn_selected.as_deref(),
        client_hello_seen: ch.is_some(),
        server_hello_seen: tls.server_hello_ts.is_some(),
        hello_retry: tls.hello_retry,
        completed: tls.completed(),
        handshake_ms: ch.zip(tls.done_ts).map(|(a, b)| ms(a, b)),
        server_hello_ms: ch.zip(tls.server_hello_ts).map(|(a, b)| ms(a, b)),
        alerts: tls
            .alerts
            .iter()
            .map(|a| AlertOut {
                alert: a,
                after_ms: ms(ch.unwrap_or(origin), a.ts),
            })
            .collect(),
        records_client: tls.records(Side::Client),
        records_server: tls.records(Side::Server),
    }
}

/// One entry for a TLS connection (direct, or inside a CONNECT tunnel).
fn tls_item(
    conn: &Conn,
    tls: &TlsTracker,
    tunnel: Option<(&Slot, &Tunnel)>,
    end: End,
    until: i64,
    dns: &DnsTracker,
    facts: &Value,
) -> Item {
    let (host, port) = match tunnel {
        Some((slot, _)) => split_authority(&slot.request.target)
            .unwrap_or_else(|| (host_of(conn.server.ip, dns), conn.server.port)),
        None => (
            tls.sni
                .as_deref()
                .map(url_host)
                .unwrap_or_else(|| host_of(conn.server.ip, dns)),
            conn.server.port,
        ),
    };
    let url = format!("https://{}/", authority("https", &host, port));
    let first = handshake_start(conn);
    let started = first.unwrap_or_else(|| {
        tunnel
            .map(|(s, _)| s.request.start_ts)
            .or(tls.client_hello_ts)
            .unwrap_or(conn.first_ts)
    });
    let mut ex = match tunnel {
        Some((slot, _)) => {
            let mut ex = exchange(Some(conn), started, request_facts(slot, url));
            ex.response = slot.response.as_ref().map(|r| response_facts(r, &r.body));
            if let Some(r) = &slot.response {
                let sent = slot.request.end_ts.unwrap_or(slot.request.start_ts);
                ex.timings.send = Some(ms(slot.request.start_ts, sent));
                ex.timings.wait = Some(ms(sent, r.start_ts));
            }
            ex
        }
        None => {
            let mut ex = exchange(Some(conn), started, empty_request("CONNECT", url, ""));
            ex.response = Some(bare_response(200));
            ex
        }
    };
    if first.is_some() {
        ex.timings.tcp = handshake_ms(conn);
    }
    ex.timings.tls = tls.client_hello_ts.zip(tls.done_ts).map(|(a, b)| ms(a, b));
    ex.tls = Some(TlsFacts {
        client: Some(ClientTls {
            sni: tls.sni.clone(),
            alpn: tls.alpn_offered.clone(),
            version: tls.version.clone(),
            cipher: tls.cipher.clone(),
        }),
        upstream: None,
    });
    ex.error = tls_error(conn, tls, end, until);
    if ex.error.is_some() {
        // HAR's convention for a failed exchange; a tunnel's own status stays in `_capture`.
        ex.response = None;
    }
    let mut capture = serde_json::json!({
        "connection": facts,
        "tls": tls_capture(tls, conn.first_ts),
    });
    if let Some((slot, t)) = tunnel {
        capture["tunnel"] = tunnel_json(conn, slot, t);
    }
    Item {
        exchange: ex,
        bodies: EntryBodies::default(),
        capture,
    }
}

fn tunnel_json(conn: &Conn, slot: &Slot, t: &Tunnel) -> Value {
    serde_json::json!({
        "proxy": conn.server.to_string(),
        "authority": slot.request.target,
        "status": slot.response.as_ref().map(|r| r.status),
        "opened_ms": ms(slot.request.start_ts, t.open_ts),
        "bytes_client_to_server": t.bytes[0],
        "bytes_server_to_client": t.bytes[1],
    })
}

/// The SYN time when the capture saw the handshake.
fn handshake_start(conn: &Conn) -> Option<i64> {
    matches!(conn.opening(), Opening::Complete | Opening::SynAck)
        .then_some(conn.syn_ts)
        .flatten()
}

/// Why a TLS handshake did not complete, in the trace vocabulary; `None` when it did
/// (or the capture never saw it start).
fn tls_error(conn: &Conn, tls: &TlsTracker, end: End, until: i64) -> Option<ExchangeError> {
    let ch = tls.client_hello_ts?;
    if tls.completed() {
        return None;
    }
    let [c, s] = &conn.streams;
    let after = |t: i64| seconds(ch, t);
    let alert = tls
        .alerts
        .iter()
        .find(|a| a.description != "close_notify" && a.level != "warning");
    if let Some(a) = alert {
        return match a.from {
            Side::Server => error(
                "tls",
                "tls-handshake",
                format!(
                    "{} sent TLS alert {} ({}) {} after ClientHello",
                    conn.server,
                    a.description,
                    a.level,
                    after(a.ts)
                ),
            ),
            Side::Client => {
                let kind = match a.description.as_str() {
                    "unknown_ca"
                    | "bad_certificate"
                    | "certificate_unknown"
                    | "unsupported_certificate" => "tls-untrusted",
                    "certificate_expired" => "tls-expired",
                    _ => "tls-handshake",
                };
                error(
                    "tls",
                    kind,
                    format!(
                        "the client rejected the handshake with TLS alert {} ({}) {} after ClientHello",
                        a.description,
                        a.level,
                        after(a.ts)
                    ),
                )
            }
        };
    }
    if let Some(t) = tls.client_rejected_ts {
        return error(
            "tls",
            "tls-handshake",
            format!(
                "the client aborted the TLS 1.3 handshake with an encrypted alert {} after ClientHello \
                 (typically it does not trust the server's certificate)",
                after(t)
            ),
        );
    }
    let stage = if tls.server_hello_ts.is_some() {
        "after ServerHello, before the handshake completed"
    } else {
        "after ClientHello (no ServerHello)"
    };
    if let Some(t) = s.rst_ts {
        return error(
            "tls",
            "tls-handshake",
            format!("connection reset by {} {} {stage}", conn.server, after(t)),
        );
    }
    if let Some(t) = s.fin_ts {
        return error(
            "tls",
            "tls-handshake",
            format!("{} closed the connection {} {stage}", conn.server, after(t)),
        );
    }
    if let Some(t) = c.rst_ts.or(c.fin_ts) {
        let what = if tls.server_hello_ts.is_some() {
            format!("handshake not complete {} after ClientHello", after(t))
        } else {
            format!("no ServerHello within {} after ClientHello", after(t))
        };
        return error(
            "tls",
            "tls-handshake",
            format!("{what}; the client gave up"),
        );
    }
    let watched = if end == End::CaptureOver {
        until.max(conn.last_ts)
    } else {
        conn.last_ts
    };
    let what = if tls.server_hello_ts.is_some() {
        format!(
            "handshake not complete within {} after ClientHello",
            after(watched)
        )
    } else {
        format!("no ServerHello within {} after ClientHello", after(watched))
    };
    let why = match end {
        End::CaptureOver => " (the capture ends there)",
        End::Idle => " (then the connection went quiet)",
        _ => "",
    };
    error("tls", "tls-handshake", format!("{what}{why}"))
}

fn split_authority(target: &str) -> Option<(String, u16)> {
    let a = crate::net::Authority::parse(target).ok()?;
    // `host:` (an empty port) is no CONNECT target.
    if target.ends_with(':') {
        return None;
    }
    let host = if a.host.contains(':') {
        a.host_for_url()
    } else {
        url_host(a.host)
    };
    Some((host, a.port.unwrap_or(443)))
}

fn request_facts(slot: &Slot, url: String) -> RequestFacts {
    let r = &slot.request;
    RequestFacts {
        method: r.method.clone(),
        url,
        http_version: r.version.clone(),
        headers: r.headers.clone(),
        body: body_facts(&r.body),
    }
}

fn response_facts(r: &super::http::Response, body: &BodyInfo) -> ResponseFacts {
    ResponseFacts {
        status: r.status,
        http_version: r.version.clone(),
        headers: r.headers.clone(),
        trailers: r.trailers.clone(),
        body: body_facts(body),
    }
}

fn body_facts(b: &BodyInfo) -> BodyFacts {
    BodyFacts {
        size: b.size,
        sha256: b.content.sha256.clone(),
        complete: b.complete,
    }
}

/// The absolute URL of a request: absolute-form as sent (proxy requests), otherwise
/// rebuilt from Host (or the server address).
fn request_url(conn: &Conn, slot: &Slot, dns: &DnsTracker) -> String {
    let target = &slot.request.target;
    if slot.request.method == "CONNECT" {
        return match split_authority(target) {
            Some((host, port)) => format!("https://{}/", authority("https", &host, port)),
            None => format!("https://{}/", host_of(conn.server.ip, dns)),
        };
    }
    if let Some((scheme, _)) = target.split_once("://") {
        if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") {
            return sanitize_url(target);
        }
    }
    let host = header(&slot.request.headers, "host")
        .map(|h| h.trim().to_string())
        .filter(|h| {
            !h.is_empty()
                && h.chars().all(|c| {
                    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']')
                })
        })
        .unwrap_or_else(|| authority("http", &host_of(conn.server.ip, dns), conn.server.port));
    let path = if target.starts_with('/') {
        target.clone()
    } else {
        format!("/{target}")
    };
    sanitize_url(&format!("http://{host}{path}"))
}

/// Percent-encodes what may not stand in a trace URL (spaces, controls, non-ASCII).
fn sanitize_url(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    for b in url.bytes() {
        if b.is_ascii_graphic() {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[derive(Serialize)]
struct HttpCapture<'a> {
    exchange: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    incomplete: Option<&'a str>,
}

fn http_items(
    conn: &Conn,
    http: &HttpConn,
    end: End,
    until: i64,
    dns: &DnsTracker,
    facts: &Value,
    items: &mut Vec<Item>,
) {
    let first = handshake_start(conn);
    for (index, slot) in http.slots.iter().enumerate() {
        if let Some(tunnel) = &slot.tunnel {
            if let Some(tls) = &tunnel.tls {
                items.push(tls_item(
                    conn,
                    tls,
                    Some((slot, tunnel)),
                    end,
                    until,
                    dns,
                    facts,
                ));
                continue;
            }
        }
        let url = request_url(conn, slot, dns);
        let req = &slot.request;
        let started = match (index, first) {
            (0, Some(syn)) => syn,
            _ => req.start_ts,
        };
        let mut ex = exchange(Some(conn), started, request_facts(slot, url));
        if index == 0 && first.is_some() {
            ex.timings.tcp = handshake_ms(conn);
        }
        let sent = req.end_ts.unwrap_or(req.start_ts);
        ex.timings.send = Some(ms(req.start_ts, sent));
        let incomplete = http.broken[Side::Server.index()]
            .as_deref()
            .or(http.broken[Side::Client.index()].as_deref());
        if let Some(r) = &slot.response {
            ex.timings.wait = Some(ms(sent, r.start_ts));
            ex.timings.receive = Some(ms(r.start_ts, r.end_ts.unwrap_or(r.start_ts)));
            ex.response = Some(response_facts(r, &r.body));
            if !r.body.complete {
                ex.error = body_error(conn, r, end, until, incomplete.is_some());
            }
        } else {
            ex.error = no_response_error(conn, sent, end, until, incomplete.is_some());
        }
        let bodies = EntryBodies {
            request: slot.request.body.content.clone(),
            response: slot
                .response
                .as_ref()
                .map(|r| r.body.content.clone())
                .unwrap_or_else(BodyContent::default),
        };
        let http_capture = HttpCapture {
            exchange: index,
            incomplete: if slot.response.as_ref().is_some_and(|r| r.body.complete) {
                None
            } else {
                incomplete
            },
        };
        let mut capture = serde_json::json!({
            "connection": facts,
            "http": http_capture,
        });
        if let Some(t) = &slot.tunnel {
            capture["tunnel"] = tunnel_json(conn, slot, t);
        }
        items.push(Item {
            exchange: ex,
            bodies,
            capture,
        });
    }
}

fn body_error(
    conn: &Conn,
    r: &super::http::Response,
    end: End,
    until: i64,
    capture_gap: bool,
) -> Option<ExchangeError> {
    if capture_gap {
        // The capture lost segments: the transfer may well have been fine.
        return None;
    }
    let [c, s] = &conn.streams;
    let got = match r.body.expected {
        Some(n) => format!("{} of {n} body bytes", r.body.size),
        None => format!("{} body bytes", r.body.size),
    };
    if s.rst_ts.is_some() {
        return error(
            "body",
            "upstream-reset",
            format!("connection reset by {} after {got}", conn.server),
        );
    }
    if s.fin_ts.is_some() {
        return error(
            "body",
            "upstream-closed",
            format!("{} closed the connection after {got}", conn.server),
        );
    }
    if c.rst_ts.is_some() || c.fin_ts.is_some() {
        return error(
            "body",
            "client-abort",
            format!("the client closed the connection after {got}"),
        );
    }
    let last = r.end_ts.unwrap_or(r.start_ts);
    let watched = if end == End::CaptureOver {
        until
    } else {
        conn.last_ts
    };
    error(
        "body",
        "timeout",
        format!(
            "body incomplete: {got}, nothing more in the {} after the last byte{}",
            seconds(last, watched.max(last)),
            if end == End::CaptureOver {
                " (the capture ends there)"
            } else {
                ""
            }
        ),
    )
}

fn no_response_error(
    conn: &Conn,
    sent: i64,
    end: End,
    until: i64,
    capture_gap: bool,
) -> Option<ExchangeError> {
    if capture_gap {
        return None;
    }
    let [c, s] = &conn.streams;
    if let Some(t) = s.rst_ts {
        return error(
            "response",
            "upstream-reset",
            format!(
                "connection reset by {} {} after the request, before a response",
                conn.server,
                seconds(sent, t)
            ),
        );
    }
    if let Some(t) = s.fin_ts {
        return error(
            "response",
            "upstream-closed",
            format!(
                "{} closed the connection {} after the request without responding",
                conn.server,
                seconds(sent, t)
            ),
        );
    }
    if let Some(t) = c.rst_ts.or(c.fin_ts) {
        return error(
            "response",
            "client-abort",
            format!(
                "the client closed the connection {} after the request, before a response",
                seconds(sent, t)
            ),
        );
    }
    let watched = if end == End::CaptureOver {
        until.max(conn.last_ts)
    } else {
        conn.last_ts
    };
    error(
        "response",
        "timeout",
        format!(
            "no response within {} after the request{}",
            seconds(sent, watched),
            if end == End::CaptureOver {
                " (the capture ends there)"
            } else {
                ""
            }
        ),
    )
}

#[derive(Serialize)]
struct DnsCapture<'a> {
    server: String,
    client: String,
    id: u16,
    #[serde(rename = "type")]
    qtype: String,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    rcode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_ms: Option<f64>,
    retries: u32,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    truncated: bool,
    answers: &'a [Answer],
}

/// One entry per DNS query: method `DNS`, url `https://<name>/`.
pub(crate) fn dns_item(l: &Lookup, until: i64) -> Item {
    let host = url_host(&l.name);
    let url = format!("https://{host}/");
    let qtype = dns::type_name(l.qtype);
    let mut ex = exchange(None, l.query_ts, empty_request("DNS", url, ""));
    ex.server_ip = Some(l.server.ip.to_string());
    match (l.response_ts, l.rcode) {
        (Some(t), Some(rcode)) => {
            ex.timings.dns = Some(ms(l.query_ts, t));
            if rcode == 0 {
                ex.response = Some(bare_response(200));
            } else {
                ex.error = error(
                    "dns",
                    "dns",
                    format!(
                        "{} for {} ({qtype}) from {} after {}",
                        dns::rcode_name(rcode),
                        l.name,
                        l.server,
                        seconds(l.query_ts, t)
                    ),
                );
            }
        }
        _ => {
            let last = until.max(l.last_query_ts);
            ex.timings.dns = Some(ms(l.query_ts, last));
            let retries = match l.retries {
                0 => String::new(),
                1 => ", 1 retry".to_string(),
                n => format!(", {n} retries"),
            };
            ex.error = error(
                "dns",
                "dns",
                format!(
                    "no answer for {} ({qtype}) from {} within {}{retries}",
                    l.name,
                    l.server,
                    seconds(l.query_ts, last)
                ),
            );
        }
    }
    let capture = DnsCapture {
        server: l.server.to_string(),
        client: l.client.to_string(),
        id: l.txid,
        qtype,
        name: &l.name,
        rcode: l.rcode.map(dns::rcode_name),
        response_ms: l.response_ts.map(|t| ms(l.query_ts, t)),
        retries: l.retries,
        truncated: l.truncated,
        answers: &l.answers,
    };
    Item {
        exchange: ex,
        bodies: EntryBodies::default(),
        capture: serde_json::json!({ "dns": capture }),
    }
}
