//! Per-request forwarding: resolve the target, stream the request up and the response down
//! through body taps, and turn what happened into one `Exchange` for the observers.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Request, Response, StatusCode, Uri, Version};
use http_body::Body as _;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;

use super::body::{BodyOutcome, TapBody};
use super::faults::{stall, BodyFaults, FaultBody, FaultPlan};
use super::io::request_tcp_reset;
use super::replay::{body as replay_body, miss_text, pacing, response_head, ReplaySource};
use super::upstream::{send_via_slot, ConnInfo, SendError, Target, UpstreamError, UpstreamSlot};
use super::BoxError;
use super::{BodyKind, ProxyBody, Shared};
use crate::exchange::{
    BodyFacts, ClientTls, Exchange, ExchangeError, FaultFacts, PhaseTimes,
    RequestFacts as ExchangeRequest, ResponseFacts, TlsFacts,
};
use crate::fault::{trace_summary, Decision, Phase, RequestFacts, StallEnd};
use crate::trace::Entry;

/// What kind of client connection a request arrived on.
#[derive(Debug, Clone)]
pub enum ConnMode {
    /// TLS terminated by modscope after `CONNECT target`.
    Intercepted {
        target: Target,
        client_tls: ClientTls,
    },
    /// Plain HTTP spoken inside a `CONNECT` tunnel.
    PlainTunnel { target: Target },
    /// Absolute-form `GET http://host/...` requests to the proxy itself.
    ForwardProxy,
}

/// State shared by every request of one client connection.
pub struct ConnCtx {
    pub shared: Arc<Shared>,
    pub client_addr: SocketAddr,
    /// Shared by every exchange of this client connection (`Exchange::client_connection`).
    pub client_connection: u64,
    pub mode: ConnMode,
    pub slot: UpstreamSlot,
    /// ALPN to offer when the upstream connection has to be redialled.
    pub alpn: Vec<Vec<u8>>,
}

impl Drop for ConnCtx {
    fn drop(&mut self) {
        // The client went away; its upstream connection can serve the next client.
        // (`--goproxy` hops arrive on forward-proxy connections and dial TLS.)
        let pooled = match self.mode {
            ConnMode::Intercepted { .. } => true,
            ConnMode::ForwardProxy => self.shared.config.goproxy.is_some(),
            ConnMode::PlainTunnel { .. } => false,
        };
        if pooled {
            if let Some(conn) = self.slot.take_reusable() {
                self.shared.pool.put(conn);
            }
        }
    }
}

/// Serves one request; never fails (failures become 4xx/5xx answers and trace entries).
pub async fn handle(
    mut req: Request<Incoming>,
    ctx: Arc<ConnCtx>,
) -> Result<Response<ProxyBody>, BoxError> {
    let started_wall = SystemTime::now();
    let started = Instant::now();
    if let Some(answer) = reject_oversized_head(&req) {
        return Ok(answer);
    }
    // `--goproxy`: an origin-form request on a route prefix goes to the real entry.
    let hop = goproxy_hop(&mut req, &ctx);
    let resolved = match &hop {
        Some(hop) => Ok((hop.target.clone(), hop.url.clone())),
        None => resolve_target(&req, &ctx.mode),
    };
    let (target, url) = match resolved {
        Ok(t) => t,
        Err(message) => return Ok(text_response(StatusCode::BAD_REQUEST, &message)),
    };
    let id = ctx.shared.next_exchange_id();
    let (parts, body) = req.into_parts();
    let mut headers = header_pairs(&parts.headers);
    // HTTP/2 carries the name in `:authority`, not in a header: keep a name that differs
    // from the dialled one visible in the trace, as HTTP/1.1's Host header is.
    if let Some(named) = parts.uri.authority() {
        let default = if target.tls { ":443" } else { ":80" };
        let bare = |a: &str| a.strip_suffix(default).unwrap_or(a).to_ascii_lowercase();
        let dialled = url
            .authority()
            .map(|a| bare(a.as_str()))
            .unwrap_or_default();
        if !headers.iter().any(|(n, _)| n == "host") && bare(named.as_str()) != dialled {
            headers.push((":authority".to_string(), named.to_string()));
        }
    }
    let via_goproxy = hop.is_some();
    let upstream_credentials = hop.map(|h| h.credentials).unwrap_or_default();
    for (name, _) in &upstream_credentials {
        // Credentials modscope adds upstream are never recorded, whatever --no-redact says.
        headers.push((
            name.as_str().to_string(),
            crate::trace::REDACTED.to_string(),
        ));
    }
    let request_facts = ExchangeRequest {
        method: parts.method.to_string(),
        url: url.to_string(),
        http_version: version_name(parts.version),
        headers,
        body: BodyFacts::default(),
    };
    let client_tls = match &ctx.mode {
        ConnMode::Intercepted { client_tls, .. } => Some(client_tls.clone()),
        _ => None,
    };
    let go = crate::gomod::classify(
        &request_facts.method,
        &request_facts.url,
        &ctx.shared.config.goproxy_bases,
    );
    let mut facts = RequestFacts {
        host: target.host.clone(),
        port: target.port,
        method: request_facts.method.clone(),
        path: url.path().to_string(),
        go_kind: Some(go.effective_kind().as_str().to_string()),
        module: go.module.clone(),
        version: go.version.clone(),
        status: None,
        content_length: None,
    };
    let mut decisions = ctx.shared.decide(Phase::Request, &facts);
    let mut plan = FaultPlan::default();
    plan.add(&decisions);
    let mut pending = Pending {
        shared: ctx.shared.clone(),
        id,
        started_wall,
        started,
        request: request_facts,
        client_tls,
        request_outcome: Arc::new(Mutex::new(None)),
        fault: fault_facts(&decisions),
        client_connection: ctx.client_connection,
    };
    if !plan.latency.is_zero() {
        tokio::time::sleep(plan.latency).await;
    }
    if let Some((status, headers, text)) = plan.respond.take() {
        return Ok(pending.answer_injected(status, &headers, &text));
    }
    if let Some((wait, end)) = plan.stall_head {
        stall(wait).await;
        if end == StallEnd::Reset {
            request_tcp_reset();
        }
        let message =
            format!("{:?} after an injected stall before the response head", end).to_lowercase();
        pending.fail_injected("response", &message);
        return Err(message.into());
    }
    if plan.reset_head {
        request_tcp_reset();
        pending.fail_injected("response", "injected reset before the response head");
        return Err("modscope: injected reset".into());
    }

    if let Some(replay) = ctx.shared.replay.clone() {
        if let Some(entry) = replay.lookup(&pending.request.method, &pending.request.url) {
            return serve_replayed(pending, &replay, entry, plan, facts).await;
        }
        if !replay.on_miss.uses_network() {
            let (status, text) = miss_text(
                replay.on_miss,
                &pending.request.method,
                &pending.request.url,
                &replay.trace.source,
            );
            return Ok(pending.answer_injected(status.as_u16(), &[], &text));
        }
    }
    let req_outcome = pending.request_outcome.clone();
    let req_capture = ctx.shared.capture(id, BodyKind::Request);
    let up_body = TapBody::new(
        body,
        Box::new(move |o| {
            if let Ok(mut slot) = req_outcome.lock() {
                *slot = Some(o);
            }
        }),
    )
    .with_capture(req_capture);
    let up_body = match plan.up_bytes_per_sec {
        Some(bps) => FaultBody::new(
            up_body,
            BodyFaults {
                bytes_per_sec: Some(bps),
                ..BodyFaults::default()
            },
        )
        .boxed_unsync(),
        None => up_body.boxed_unsync(),
    };

    let mut up_headers = parts.headers.clone();
    strip_hop_by_hop(&mut up_headers);
    for (name, value) in upstream_credentials {
        up_headers.insert(name, value);
    }
    // The client already got (or will get) its 100 Continue from us; the origin must not
    // send another interim answer.
    up_headers.remove(http::header::EXPECT);
    // A bodiless idempotent request can be sent again if a reused connection turns out
    // to have been closed by the origin while idle, as net/http does.
    let retryable = matches!(
        parts.method,
        http::Method::GET | http::Method::HEAD | http::Method::OPTIONS
    ) && up_body.is_end_stream();
    let retry_headers = retryable.then(|| up_headers.clone());
    let mut up_req = Request::new(up_body);
    *up_req.method_mut() = parts.method.clone();
    *up_req.uri_mut() = url.clone();
    *up_req.headers_mut() = up_headers;

    // go would offer h2 and http/1.1 to its proxy itself; intercepted connections offer
    // what the client offered.
    let alpn: &[Vec<u8>] = if via_goproxy {
        &ctx.shared.goproxy_alpn
    } else {
        &ctx.alpn
    };
    let pool = via_goproxy.then_some(&ctx.shared.pool);
    let sent_at = Instant::now();
    let mut sent = send_via_slot(&ctx.slot, &ctx.shared.dialer, pool, &target, alpn, up_req).await;
    if let (Err(SendError::Request(err, _)), Some(headers)) = (&sent, retry_headers) {
        if err.is_canceled() || err.is_incomplete_message() || err.is_closed() {
            tracing::debug!(
                "{}: reused upstream connection was closed ({err}); retrying once",
                target.authority()
            );
            let mut again = Request::new(
                http_body_util::Empty::<Bytes>::new()
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            );
            *again.method_mut() = parts.method.clone();
            *again.uri_mut() = url.clone();
            *again.headers_mut() = headers;
            sent = send_via_slot(&ctx.slot, &ctx.shared.dialer, pool, &target, alpn, again).await;
        }
    }
    let head_at = Instant::now();
    match sent {
        Err(SendError::Connect(err)) => {
            let answer = text_response(StatusCode::BAD_GATEWAY, &err.to_string());
            pending.fail_connect(&err, head_at);
            Ok(answer)
        }
        Err(SendError::Request(err, info)) => {
            let message = super::body::error_chain(&err);
            let kind = request_error_kind(&err);
            let text = format!(
                "modscope: request to {} failed before a response arrived: {message}",
                target.authority()
            );
            pending.fail_request(&info, kind, &message, sent_at, head_at);
            Ok(text_response(StatusCode::BAD_GATEWAY, &text))
        }
        Ok(sent) => {
            let (mut head, body) = sent.response.into_parts();
            facts.status = Some(head.status.as_u16());
            facts.content_length = head
                .headers
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok());
            let late = ctx.shared.decide(Phase::Response, &facts);
            if !late.is_empty() {
                plan.add(&late);
                decisions.extend(late);
                pending.fault = fault_facts(&decisions);
            }
            if let Some((status, headers, text)) = plan.respond.take() {
                // The origin's answer is discarded in favour of the injected one.
                return Ok(pending.answer_injected(status, &headers, &text));
            }
            let response_facts = ResponseFacts {
                status: head.status.as_u16(),
                http_version: version_name(head.version),
                headers: header_pairs(&head.headers),
                trailers: Vec::new(),
                body: BodyFacts::default(),
            };
            strip_hop_by_hop(&mut head.headers);
            let timing = Timing {
                // Time before sending (an injected latency, mostly) is time go waited:
                // counted as blocked so the entry's `time` covers it and waterfalls show it.
                blocked: sent.waited + sent_at.saturating_duration_since(started),
                sent_at: sent_at + sent.waited + sent.dialed,
                head_at,
            };
            let info = sent.info.clone();
            let fresh = sent.fresh;
            let resp_capture = ctx.shared.capture(id, BodyKind::Response);
            let body = if plan.body.is_empty() {
                body.map_err(BoxError::from).boxed_unsync()
            } else {
                if plan.body.shortens() {
                    // A clean early end needs framing without the original length.
                    head.headers.remove(http::header::CONTENT_LENGTH);
                }
                FaultBody::new(body, plan.body.clone()).boxed_unsync()
            };
            let body = TapBody::new(
                body,
                Box::new(move |outcome| {
                    pending.finish(response_facts, outcome, Some(&info), fresh, timing);
                }),
            )
            .with_capture(resp_capture)
            .boxed_unsync();
            Ok(Response::from_parts(head, body))
        }
    }
}

/// Answers from a recorded entry: its status, headers and verified body, recorded
/// failures as failures, with recorded timing when asked and faults on top.
async fn serve_replayed(
    pending: Pending,
    replay: &ReplaySource,
    entry: &Entry,
    mut plan: FaultPlan,
    mut facts: RequestFacts,
) -> Result<Response<ProxyBody>, BoxError> {
    if entry.response.status == 0 {
        let (wait, _) = pacing(replay.timing, entry, 0);
        tokio::time::sleep(wait).await;
        let (kind, message) = match &entry.error {
            Some(e) => (
                e.kind.clone(),
                format!("replayed recorded failure: {}", e.message),
            ),
            None => (
                "other".to_string(),
                "replayed a recorded exchange that got no response".to_string(),
            ),
        };
        pending.fail_locally("response", &kind, &message);
        return Err(message.into());
    }
    let (body, len) = match replay_body(&replay.trace, &entry.response.content).await {
        Ok(b) => b,
        Err(e) => {
            let text = format!(
                "modscope replay: the recorded body of {} {} cannot be served: {e}",
                pending.request.method, pending.request.url
            );
            tracing::error!("{text}");
            pending.fail_locally("body", "replay-body", &text);
            return Ok(text_response(StatusCode::BAD_GATEWAY, &text));
        }
    };
    let (wait, rate) = pacing(replay.timing, entry, len);
    tokio::time::sleep(wait).await;
    let (mut head, ()) = response_head(entry).into_parts();
    facts.status = Some(head.status.as_u16());
    facts.content_length = Some(len);
    let shared = pending.shared.clone();
    let late = shared.decide(Phase::Response, &facts);
    if !late.is_empty() {
        plan.add(&late);
    }
    let mut pending = pending;
    if let Some(f) = fault_facts(&late) {
        pending.fault = Some(f);
    }
    if let Some((status, headers, text)) = plan.respond.take() {
        return Ok(pending.answer_injected(status, &headers, &text));
    }
    if plan.body.bytes_per_sec.is_none() {
        plan.body.bytes_per_sec = rate;
    }
    if entry.response.content.complete == Some(false) {
        // A body that was cut when recorded is cut again.
        plan.body.reset_at = Some(len);
    }
    if plan.body.shortens() {
        head.headers.remove(http::header::CONTENT_LENGTH);
    } else if plan.body.reset_at.is_none() {
        head.headers
            .insert(http::header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    let body = if plan.body.is_empty() {
        body
    } else {
        FaultBody::new(body, plan.body.clone()).boxed_unsync()
    };
    let response_facts = ResponseFacts {
        status: head.status.as_u16(),
        http_version: pending.request.http_version.clone(),
        headers: header_pairs(&head.headers),
        trailers: Vec::new(),
        body: BodyFacts::default(),
    };
    let now = Instant::now();
    let timing = Timing {
        blocked: Duration::ZERO,
        sent_at: now,
        head_at: now,
    };
    let capture = shared.capture(pending.id, BodyKind::Response);
    let body = TapBody::new(
        body,
        Box::new(move |outcome| pending.finish(response_facts, outcome, None, false, timing)),
    )
    .with_capture(capture)
    .boxed_unsync();
    Ok(Response::from_parts(head, body))
}

#[derive(Clone, Copy)]
struct Timing {
    blocked: Duration,
    sent_at: Instant,
    head_at: Instant,
}

/// Everything known about an exchange before its response body ends.
struct Pending {
    shared: Arc<Shared>,
    id: u64,
    started_wall: SystemTime,
    started: Instant,
    request: ExchangeRequest,
    client_tls: Option<ClientTls>,
    request_outcome: Arc<Mutex<Option<BodyOutcome>>>,
    fault: Option<FaultFacts>,
    client_connection: u64,
}

impl Pending {
    fn request_body(&self) -> (BodyFacts, Option<Instant>) {
        let outcome = self.request_outcome.lock().ok().and_then(|o| o.clone());
        match outcome {
            Some(o) => (
                BodyFacts {
                    size: o.bytes,
                    sha256: None,
                    complete: o.complete,
                },
                Some(o.ended),
            ),
            None => (BodyFacts::default(), None),
        }
    }

    fn base(self, info: Option<&ConnInfo>, fresh: bool) -> (Exchange, Arc<Shared>) {
        let (body, _) = self.request_body();
        let mut request = self.request;
        request.body = body;
        let conn_timings = info
            .filter(|_| fresh)
            .map(|i| i.timings)
            .unwrap_or_default();
        let tls = TlsFacts {
            client: self.client_tls,
            upstream: info.and_then(|i| i.tls.clone()),
        };
        let has_tls = tls.client.is_some() || tls.upstream.is_some();
        let ex = Exchange {
            id: self.id,
            started: self.started_wall,
            request,
            response: None,
            timings: PhaseTimes {
                blocked: None,
                dns: conn_timings.dns.map(ms),
                tcp: conn_timings.tcp.map(ms),
                tls: conn_timings.tls.map(ms),
                send: None,
                wait: None,
                receive: None,
            },
            connection_id: info.map(|i| i.id),
            server_ip: info.and_then(|i| i.server_ip).map(|ip| ip.to_string()),
            tls: has_tls.then_some(tls),
            error: None,
            fault: self.fault,
            client_connection: Some(self.client_connection),
        };
        (ex, self.shared)
    }

    /// Answers with an injected response instead of forwarding, and records it.
    fn answer_injected(
        self,
        status: u16,
        headers: &[(String, String)],
        text: &str,
    ) -> Response<ProxyBody> {
        let mut resp = text_response(
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
            text,
        );
        for (k, v) in headers {
            if let (Ok(k), Ok(v)) = (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(v),
            ) {
                resp.headers_mut().insert(k, v);
            }
        }
        let started = self.started;
        let (mut ex, shared) = self.base(None, false);
        let size = text.trim_end().len() as u64 + 1;
        ex.timings.wait = Some(ms(started.elapsed()));
        ex.timings.send = Some(0.0);
        ex.timings.receive = Some(0.0);
        ex.response = Some(ResponseFacts {
            status,
            http_version: ex.request.http_version.clone(),
            headers: header_pairs(resp.headers()),
            trailers: Vec::new(),
            body: BodyFacts {
                size,
                sha256: None,
                complete: true,
            },
        });
        shared.publish(ex);
        resp
    }

    fn fail_injected(self, phase: &str, message: &str) {
        self.fail_locally(phase, "injected", message);
    }

    fn fail_locally(self, phase: &str, kind: &str, message: &str) {
        let started = self.started;
        let (mut ex, shared) = self.base(None, false);
        ex.timings.wait = Some(ms(started.elapsed()));
        ex.error = Some(ExchangeError {
            phase: phase.into(),
            kind: kind.into(),
            message: message.into(),
        });
        shared.publish(ex);
    }

    fn fail_connect(self, err: &UpstreamError, at: Instant) {
        let started = self.started;
        let client_tls = self.client_tls.clone();
        let (mut ex, shared) = self.base(None, false);
        ex.timings.dns = err.timings.dns.map(ms);
        ex.timings.tcp = err.timings.tcp.map(ms);
        ex.timings.tls = err.timings.tls.map(ms);
        let phases: Duration = [err.timings.dns, err.timings.tcp, err.timings.tls]
            .into_iter()
            .flatten()
            .sum();
        // Whatever is not a named phase was spent waiting for the failed connection.
        ex.timings.blocked = Some(ms(at
            .saturating_duration_since(started)
            .saturating_sub(phases)));
        ex.server_ip = err.server_ip.map(|ip| ip.to_string());
        ex.tls = Some(TlsFacts {
            client: client_tls,
            upstream: err.tls.clone(),
        });
        ex.error = Some(ExchangeError {
            phase: err.phase.to_string(),
            kind: err.kind.to_string(),
            message: format!("{}: {}", err.what, err.message),
        });
        shared.publish(ex);
    }

    fn fail_request(
        self,
        info: &ConnInfo,
        kind: &str,
        message: &str,
        sent_at: Instant,
        at: Instant,
    ) {
        let (mut ex, shared) = self.base(Some(info), false);
        ex.timings.send = Some(0.0);
        ex.timings.wait = Some(ms(at.saturating_duration_since(sent_at)));
        ex.error = Some(ExchangeError {
            phase: "response".into(),
            kind: kind.into(),
            message: message.into(),
        });
        shared.publish(ex);
    }

    fn finish(
        self,
        mut response: ResponseFacts,
        outcome: BodyOutcome,
        info: Option<&ConnInfo>,
        fresh: bool,
        timing: Timing,
    ) {
        let (_, request_ended) = self.request_body();
        let (mut ex, shared) = self.base(info, fresh);
        let send_end = request_ended
            .unwrap_or(timing.sent_at)
            .clamp(timing.sent_at, timing.head_at);
        ex.timings.blocked = Some(ms(timing.blocked));
        ex.timings.send = Some(ms(send_end.saturating_duration_since(timing.sent_at)));
        ex.timings.wait = Some(ms(timing.head_at.saturating_duration_since(send_end)));
        ex.timings.receive = Some(ms(outcome.ended.saturating_duration_since(timing.head_at)));
        response.body = BodyFacts {
            size: outcome.bytes,
            sha256: None,
            complete: outcome.complete,
        };
        if let Some(trailers) = &outcome.trailers {
            response.trailers = header_pairs(trailers);
        }
        let injected = ex.fault.is_some();
        if !outcome.complete {
            ex.error = Some(match &outcome.error {
                Some(message) => ExchangeError {
                    phase: "body".into(),
                    kind: if injected {
                        "injected"
                    } else {
                        "upstream-reset"
                    }
                    .into(),
                    message: format!(
                        "the response body failed after {} bytes: {message}",
                        outcome.bytes
                    ),
                },
                None => ExchangeError {
                    phase: "body".into(),
                    kind: "client-abort".into(),
                    message: format!("the client stopped reading after {} bytes", outcome.bytes),
                },
            });
        }
        ex.response = Some(response);
        shared.publish(ex);
    }
}

/// Records a CONNECT- or TLS-level event that never became an HTTP exchange (so the trace
/// and the summary still show it), as a `CONNECT https://host:port/` entry.
pub fn publish_connection_event(
    shared: &Shared,
    target: &Target,
    status: Option<u16>,
    error: Option<ExchangeError>,
    fault: Option<FaultFacts>,
) {
    let ex = Exchange {
        id: shared.next_exchange_id(),
        started: SystemTime::now(),
        request: ExchangeRequest {
            method: "CONNECT".into(),
            url: format!("https://{}/", target.authority()),
            http_version: "HTTP/1.1".into(),
            headers: Vec::new(),
            body: BodyFacts {
                complete: true,
                ..BodyFacts::default()
            },
        },
        response: status.map(|status| ResponseFacts {
            status,
            http_version: "HTTP/1.1".into(),
            headers: Vec::new(),
            trailers: Vec::new(),
            body: BodyFacts {
                complete: true,
                ..BodyFacts::default()
            },
        }),
        timings: PhaseTimes {
            send: Some(0.0),
            wait: Some(0.0),
            receive: Some(0.0),
            ..PhaseTimes::default()
        },
        connection_id: None,
        server_ip: None,
        tls: None,
        error,
        fault,
        client_connection: None,
    };
    shared.publish(ex);
}

/// The `_fault` note for a set of decisions.
pub fn fault_facts(decisions: &[Decision]) -> Option<FaultFacts> {
    trace_summary(decisions).map(|(rule, action)| FaultFacts { rule, action })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn request_error_kind(err: &hyper::Error) -> &'static str {
    if err.is_incomplete_message() || err.is_closed() || err.is_canceled() {
        "upstream-closed"
    } else if err.is_timeout() {
        "timeout"
    } else if err.is_parse() {
        "protocol"
    } else {
        "upstream-reset"
    }
}

/// Largest request head (URI plus headers) modscope forwards.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// hyper bounds its read buffer, not the head itself (a head that arrives in one read can
/// exceed it), so the limit is enforced here as well.
pub fn reject_oversized_head<B>(req: &Request<B>) -> Option<Response<ProxyBody>> {
    let size: usize = req.uri().to_string().len()
        + req
            .headers()
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 4)
            .sum::<usize>();
    (size > MAX_HEAD_BYTES).then(|| {
        tracing::warn!("refused a request head of {size} bytes (limit {MAX_HEAD_BYTES})");
        text_response(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            &format!(
                "modscope: request head of {size} bytes exceeds the {MAX_HEAD_BYTES}-byte limit"
            ),
        )
    })
}

/// Where a `--goproxy` route sends a request, and the credentials to add upstream.
struct GoproxyHop {
    target: Target,
    url: Uri,
    credentials: Vec<(HeaderName, HeaderValue)>,
}

/// The `--goproxy` route of an origin-form request sent to the proxy itself, if its first
/// path segment names one. Its `Host` is rewritten to the real entry's, so the trace and
/// the origin see the host go would have asked.
fn goproxy_hop(req: &mut Request<Incoming>, ctx: &ConnCtx) -> Option<GoproxyHop> {
    if !matches!(ctx.mode, ConnMode::ForwardProxy) || req.uri().scheme().is_some() {
        return None;
    }
    let routes = ctx.shared.config.goproxy.as_ref()?;
    let path = req.uri().path_and_query()?.as_str();
    let (route, url) = routes.route(path)?;
    let url = url.parse::<Uri>().ok()?;
    let authority = url.authority()?.as_str();
    let host = HeaderValue::from_str(authority).ok()?;
    req.headers_mut().insert(http::header::HOST, host);
    let credentials = route
        .credential_headers()
        .into_iter()
        .filter_map(|(k, v)| {
            let name = HeaderName::from_bytes(k.as_bytes()).ok()?;
            let mut value = HeaderValue::from_str(&v).ok()?;
            value.set_sensitive(true);
            Some((name, value))
        })
        .collect();
    Some(GoproxyHop {
        target: Target {
            host: route.host.clone(),
            port: route.port,
            tls: route.tls,
        },
        url,
        credentials,
    })
}

/// The upstream target and the absolute URL of a request, by connection mode.
fn resolve_target(req: &Request<Incoming>, mode: &ConnMode) -> Result<(Target, Uri), String> {
    let path = req
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/");
    match mode {
        ConnMode::Intercepted { target, .. } | ConnMode::PlainTunnel { target } => {
            let scheme = if target.tls { "https" } else { "http" };
            let default_port = if target.tls { 443 } else { 80 };
            // The URL names where the socket goes (the CONNECT target), never the client's
            // Host header or `:authority`: a trace must not say a request went to a site
            // the client merely named. A differing Host stays visible among the headers.
            let authority = target.authority();
            let authority = authority
                .strip_suffix(&format!(":{default_port}"))
                .map(str::to_string)
                .unwrap_or(authority);
            let url = format!("{scheme}://{authority}{path}")
                .parse::<Uri>()
                .map_err(|e| {
                    format!("modscope: cannot form a URL from {authority:?} and {path:?}: {e}")
                })?;
            Ok((target.clone(), url))
        }
        ConnMode::ForwardProxy => {
            let uri = req.uri();
            match (uri.scheme_str(), uri.host()) {
                (Some("http"), Some(host)) => {
                    let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
                    let target = Target {
                        host,
                        port: uri.port_u16().unwrap_or(80),
                        tls: false,
                    };
                    Ok((target, uri.clone()))
                }
                (Some(other), _) => Err(format!(
                    "modscope: {other}:// URLs must be tunnelled with CONNECT, not sent as {} {}",
                    req.method(),
                    uri
                )),
                _ => Err(format!(
                    "modscope is a proxy: it expected an absolute URL (GET http://host/path) or CONNECT host:port, got {} {}. Set HTTPS_PROXY/HTTP_PROXY to this address instead of requesting it directly.",
                    req.method(),
                    uri
                )),
            }
        }
    }
}

/// Connection-level headers that must not travel past a proxy (RFC 9110 §7.6.1).
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in [
        "connection",
        "proxy-connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "transfer-encoding",
        "upgrade",
    ] {
        headers.remove(name);
    }
    let keep_trailers = headers
        .get(http::header::TE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("trailers"))
        });
    headers.remove(http::header::TE);
    if keep_trailers {
        headers.insert(http::header::TE, HeaderValue::from_static("trailers"));
    }
}

fn header_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

pub fn version_name(v: Version) -> String {
    match v {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/?",
    }
    .to_string()
}

/// A short `text/plain` answer; go prints such bodies as "server response".
pub fn text_response(status: StatusCode, text: &str) -> Response<ProxyBody> {
    let mut body = text.trim_end().to_string();
    body.push('\n');
    let mut resp = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp.headers_mut().insert(
        HeaderName::from_static("x-modscope"),
        HeaderValue::from_static("1"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_are_removed() {
        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("proxy-authorization", HeaderValue::from_static("Basic x"));
        h.insert("te", HeaderValue::from_static("gzip, trailers"));
        h.insert("accept", HeaderValue::from_static("*/*"));
        strip_hop_by_hop(&mut h);
        let names: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["accept", "te"]);
        assert_eq!(h["te"], "trailers");
    }
}
