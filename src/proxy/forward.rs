//! Per-request forwarding, top-down: resolve the target and URL, take the request-phase
//! fault decisions, let the pure `route` say who answers, and run that one executor
//! (injected answer, failure before the head, recorded entry, replay miss, or the origin
//! through body taps); each ends in one `Exchange` for the observers (see `pending.rs`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::request::Parts;
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use http_body::Body as _;
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::body::TapBody;
use super::faults::{stall, BodyFaults, FaultBody, FaultPlan};
use super::heads::{
    header_pairs, reject_oversized_head, strip_hop_by_hop, text_response, version_name,
};
use super::io::{reset_client, ConnectionFate};
use super::pending::{fault_facts, InFlight, Pending, Timing};
use super::replay::{body as replay_body, miss_text, pacing, response_head, ReplaySource};
use super::route::{route, HeadFault, Route};
use super::upstream::{send_via_slot, SendError, Sent, Target, UpstreamSlot};
use super::BoxError;
use super::{BodyKind, ProxyBody, Shared};
use crate::exchange::{BodyFacts, ClientTls, ErrorKind, ExchangeRequest, FailPhase, ResponseFacts};
use crate::fault::{Decision, Phase, RequestFacts, StallEnd};
use crate::replay::OnMiss;
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
    /// How the client's TCP connection ends, for injected resets on HTTP/1.1. `None` on
    /// HTTP/2: hyper resets the stream (RST_STREAM) and the connection lives on.
    pub fate: Option<ConnectionFate>,
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

/// Serves one request; never fails (failures become 4xx/5xx answers and trace entries),
/// except to make hyper drop the stream or connection for an injected failure.
pub async fn handle(
    mut req: Request<Incoming>,
    ctx: Arc<ConnCtx>,
) -> Result<Response<ProxyBody>, BoxError> {
    let (started_wall, started) = (SystemTime::now(), Instant::now());
    if let Some(answer) = reject_oversized_head(&req) {
        return Ok(answer);
    }
    let dest = match resolve(&mut req, &ctx) {
        Ok(dest) => dest,
        Err(message) => return Ok(text_response(StatusCode::BAD_REQUEST, &message)),
    };
    let id = ctx.shared.next_exchange_id();
    let (parts, body) = req.into_parts();
    let request = exchange_request(&parts, &dest);
    let facts = request_facts(&request, &dest, &ctx.shared.config.goproxy_bases);
    let decisions = ctx.shared.decide(Phase::Request, &facts);
    let mut plan = FaultPlan::default();
    plan.add(&decisions);
    let pending = Pending {
        shared: ctx.shared.clone(),
        id,
        started_wall,
        started,
        request,
        client_tls: match &ctx.mode {
            ConnMode::Intercepted { client_tls, .. } => Some(client_tls.clone()),
            _ => None,
        },
        request_outcome: Default::default(),
        fault: fault_facts(&decisions),
        client_connection: ctx.client_connection,
        in_flight: InFlight::start(&ctx.shared),
    };
    if !plan.latency.is_zero() {
        tokio::time::sleep(plan.latency).await;
    }
    let replay = ctx.shared.replay.as_deref().map(|r| (r, r.on_miss));
    let (method, url) = (&pending.request.method, &pending.request.url);
    match route(&plan, replay, |r| r.lookup(method, url)) {
        Route::Inject((status, headers, text)) => {
            Ok(pending.answer_injected(status, &headers, &text))
        }
        Route::Fail(fault) => fail_before_head(pending, fault, ctx.fate.as_ref()).await,
        Route::Replay(source, entry) => {
            let faults = Faults {
                plan,
                decisions,
                facts,
            };
            serve_replayed(pending, source, entry, faults, ctx.fate.clone()).await
        }
        Route::Miss(source, on_miss) => Ok(answer_miss(pending, source, on_miss)),
        Route::Upstream => {
            let up = Outbound { dest, parts, body };
            let faults = Faults {
                plan,
                decisions,
                facts,
            };
            forward_upstream(&ctx, pending, up, faults).await
        }
    }
}

/// Where a request goes: the dialled target, the absolute URL, and for a `--goproxy`
/// hop the credentials modscope adds upstream.
struct Destination {
    target: Target,
    url: Uri,
    via_goproxy: bool,
    credentials: Vec<(HeaderName, HeaderValue)>,
}

/// The destination of a request: a `--goproxy` route for an origin-form request on a
/// route prefix, else the connection's target (or the absolute URL, as a forward proxy).
fn resolve(req: &mut Request<Incoming>, ctx: &ConnCtx) -> Result<Destination, String> {
    if let Some(hop) = goproxy_hop(req, ctx) {
        return Ok(Destination {
            target: hop.target,
            url: hop.url,
            via_goproxy: true,
            credentials: hop.credentials,
        });
    }
    let (target, url) = resolve_target(req, &ctx.mode)?;
    Ok(Destination {
        target,
        url,
        via_goproxy: false,
        credentials: Vec::new(),
    })
}

/// The request as the trace shows it.
fn exchange_request(parts: &Parts, dest: &Destination) -> ExchangeRequest {
    let mut headers = header_pairs(&parts.headers);
    // HTTP/2 carries the name in `:authority`, not in a header: keep a name that differs
    // from the dialled one visible in the trace, as HTTP/1.1's Host header is.
    if let Some(named) = parts.uri.authority() {
        let default = if dest.target.tls { ":443" } else { ":80" };
        let bare = |a: &str| a.strip_suffix(default).unwrap_or(a).to_ascii_lowercase();
        let dialled = dest
            .url
            .authority()
            .map(|a| bare(a.as_str()))
            .unwrap_or_default();
        if !headers.iter().any(|(n, _)| n == "host") && bare(named.as_str()) != dialled {
            headers.push((":authority".to_string(), named.to_string()));
        }
    }
    for (name, _) in &dest.credentials {
        // Credentials modscope adds upstream are never recorded, whatever --no-redact says.
        headers.push((
            name.as_str().to_string(),
            crate::trace::REDACTED.to_string(),
        ));
    }
    ExchangeRequest {
        method: parts.method.to_string(),
        url: dest.url.to_string(),
        http_version: version_name(parts.version),
        headers,
        body: BodyFacts::default(),
    }
}

/// What the fault rules match a request on.
fn request_facts(
    request: &ExchangeRequest,
    dest: &Destination,
    goproxy_bases: &[String],
) -> RequestFacts {
    let go = crate::gomod::classify(&request.method, &request.url, goproxy_bases);
    RequestFacts {
        host: dest.target.host.clone(),
        port: dest.target.port,
        method: request.method.clone(),
        path: dest.url.path().to_string(),
        go_kind: Some(go.effective_kind()),
        module: go.module.clone(),
        version: go.version.clone(),
        status: None,
        content_length: None,
    }
}

/// Fails the exchange before any response head, as an injected fault says. The error
/// makes hyper drop the request: the HTTP/1.1 connection (reset when asked) or the
/// HTTP/2 stream.
async fn fail_before_head(
    pending: Pending,
    fault: HeadFault,
    fate: Option<&ConnectionFate>,
) -> Result<Response<ProxyBody>, BoxError> {
    match fault {
        HeadFault::Stall(wait, end) => {
            stall(wait).await;
            if end == StallEnd::Reset {
                reset_client(fate);
            }
            let message = format!("{:?} after an injected stall before the response head", end)
                .to_lowercase();
            pending.fail_injected(FailPhase::Response, &message);
            Err(message.into())
        }
        HeadFault::Reset => {
            reset_client(fate);
            pending.fail_injected(
                FailPhase::Response,
                "injected reset before the response head",
            );
            Err("modscope: injected reset".into())
        }
    }
}

/// Answers a request the trace does not have while replay runs offline (404 or 502).
fn answer_miss(pending: Pending, replay: &ReplaySource, on_miss: OnMiss) -> Response<ProxyBody> {
    let (status, text) = miss_text(
        on_miss,
        &pending.request.method,
        &pending.request.url,
        &replay.trace.source,
    );
    pending.answer_injected(status.as_u16(), &[], &text)
}

/// Answers from a recorded entry: its status, headers and verified body, recorded
/// failures as failures, with recorded timing when asked and faults on top.
async fn serve_replayed(
    pending: Pending,
    replay: &ReplaySource,
    entry: &Entry,
    mut faults: Faults,
    fate: Option<ConnectionFate>,
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
                ErrorKind::Other,
                "replayed a recorded exchange that got no response".to_string(),
            ),
        };
        pending.fail_locally(FailPhase::Response, kind, &message);
        return Err(message.into());
    }
    let replayed = match replay_body(&replay.trace, entry).await {
        Ok(b) => b,
        Err(e) => {
            let text = format!(
                "modscope replay: the recorded body of {} {} cannot be served: {e}",
                pending.request.method, pending.request.url
            );
            tracing::error!("{text}");
            pending.fail_locally(FailPhase::Body, ErrorKind::ReplayBody, &text);
            return Ok(text_response(StatusCode::BAD_GATEWAY, &text));
        }
    };
    let (body, len) = (replayed.body, replayed.len);
    let (wait, rate) = pacing(replay.timing, entry, len);
    tokio::time::sleep(wait).await;
    let (mut head, ()) = response_head(entry).into_parts();
    if replayed.drop_content_encoding {
        head.headers.remove(http::header::CONTENT_ENCODING);
    }
    let mut pending = pending;
    faults.decide_response(&mut pending, head.status.as_u16(), Some(len));
    let plan = &mut faults.plan;
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
        FaultBody::new(body, plan.body.clone())
            .with_fate(fate)
            .boxed_unsync()
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
    let capture = pending.shared.capture(pending.id, BodyKind::Response);
    let body = TapBody::new(
        body,
        Box::new(move |outcome| pending.finish(response_facts, outcome, None, false, timing, None)),
    )
    .with_capture(capture)
    .boxed_unsync();
    Ok(Response::from_parts(head, body))
}

/// A request on its way to the origin.
struct Outbound {
    dest: Destination,
    parts: Parts,
    body: Incoming,
}

/// The faults of one exchange so far, carried to its response phase: the rules see the
/// status and length there, and may add decisions.
struct Faults {
    plan: FaultPlan,
    decisions: Vec<Decision>,
    facts: RequestFacts,
}

impl Faults {
    /// Adds the response-phase decisions for a response head (from the origin or the
    /// trace). The exchange's `_fault` then names every rule that shaped it, request-
    /// and response-phase alike (replay once kept only the response-phase ones).
    fn decide_response(&mut self, pending: &mut Pending, status: u16, content_length: Option<u64>) {
        self.facts.status = Some(status);
        self.facts.content_length = content_length;
        let late = pending.shared.decide(Phase::Response, &self.facts);
        if !late.is_empty() {
            self.plan.add(&late);
            self.decisions.extend(late);
            pending.fault = fault_facts(&self.decisions);
        }
    }
}

/// Forwards to the origin through the connection's upstream slot and streams the answer
/// back (`relay_response`), or answers 502 saying what failed before a response head.
async fn forward_upstream(
    ctx: &ConnCtx,
    pending: Pending,
    up: Outbound,
    faults: Faults,
) -> Result<Response<ProxyBody>, BoxError> {
    let Outbound { dest, parts, body } = up;
    let body = upload_body(ctx, &pending, body, faults.plan.up_bytes_per_sec);
    let mut headers = parts.headers;
    strip_hop_by_hop(&mut headers);
    for (name, value) in dest.credentials.iter().cloned() {
        headers.insert(name, value);
    }
    // The client already got (or will get) its 100 Continue from us; the origin must not
    // send another interim answer.
    headers.remove(http::header::EXPECT);
    // A bodiless idempotent request can be sent again if a reused connection turns out
    // to have been closed by the origin while idle, as net/http does.
    let retryable = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS)
        && body.is_end_stream();
    let retry_headers = retryable.then(|| headers.clone());
    let mut req = Request::new(body);
    *req.method_mut() = parts.method.clone();
    *req.uri_mut() = dest.url.clone();
    *req.headers_mut() = headers;

    let sent_at = Instant::now();
    let sent = send_upstream(ctx, &dest, &parts.method, req, retry_headers).await;
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
                dest.target.authority()
            );
            pending.fail_request(&info, kind, &message, sent_at, head_at);
            Ok(text_response(StatusCode::BAD_GATEWAY, &text))
        }
        Ok(sent) => Ok(relay_response(ctx, pending, sent, faults, sent_at, head_at)),
    }
}

/// The request body going up: tapped for the trace and the recorder, paced when an
/// upload bandwidth fault applies.
fn upload_body(
    ctx: &ConnCtx,
    pending: &Pending,
    body: Incoming,
    up_bytes_per_sec: Option<u64>,
) -> ProxyBody {
    let outcome = pending.request_outcome.clone();
    let capture = ctx.shared.capture(pending.id, BodyKind::Request);
    let tapped = TapBody::new(
        body,
        Box::new(move |o| {
            if let Ok(mut slot) = outcome.lock() {
                *slot = Some(o);
            }
        }),
    )
    .with_capture(capture);
    match up_bytes_per_sec {
        Some(bps) => FaultBody::new(
            tapped,
            BodyFaults {
                bytes_per_sec: Some(bps),
                ..BodyFaults::default()
            },
        )
        .boxed_unsync(),
        None => tapped.boxed_unsync(),
    }
}

/// Sends through the connection's upstream slot. A request that may be repeated
/// (`retry_headers`) is sent once more when a reused connection turns out to have been
/// closed by the origin while idle.
async fn send_upstream(
    ctx: &ConnCtx,
    dest: &Destination,
    method: &Method,
    req: Request<ProxyBody>,
    retry_headers: Option<HeaderMap>,
) -> Result<Sent, SendError> {
    // go would offer h2 and http/1.1 to its proxy itself; intercepted connections offer
    // what the client offered.
    let alpn: &[Vec<u8>] = if dest.via_goproxy {
        &ctx.shared.goproxy_alpn
    } else {
        &ctx.alpn
    };
    let pool = dest.via_goproxy.then_some(&ctx.shared.pool);
    let (slot, dialer, target) = (&ctx.slot, &ctx.shared.dialer, &dest.target);
    let sent = send_via_slot(slot, dialer, pool, target, alpn, req).await;
    let headers = match (&sent, retry_headers) {
        (Err(SendError::Request(err, _)), Some(headers))
            if err.is_canceled() || err.is_incomplete_message() || err.is_closed() =>
        {
            tracing::debug!(
                "{}: reused upstream connection was closed ({err}); retrying once",
                target.authority()
            );
            headers
        }
        _ => return sent,
    };
    let mut again = Request::new(
        http_body_util::Empty::<Bytes>::new()
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *again.method_mut() = method.clone();
    *again.uri_mut() = dest.url.clone();
    *again.headers_mut() = headers;
    send_via_slot(slot, dialer, pool, target, alpn, again).await
}

/// Streams the origin's response down: response-phase faults first (an injected answer
/// replaces the origin's), then the body through the fault shaper and a tap that
/// publishes the exchange when it ends.
fn relay_response(
    ctx: &ConnCtx,
    mut pending: Pending,
    sent: Sent,
    mut faults: Faults,
    sent_at: Instant,
    head_at: Instant,
) -> Response<ProxyBody> {
    let (mut head, body) = sent.response.into_parts();
    let content_length = head
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    faults.decide_response(&mut pending, head.status.as_u16(), content_length);
    let Faults {
        mut plan, facts, ..
    } = faults;
    if let Some((status, headers, text)) = plan.respond.take() {
        // The origin's answer is discarded in favour of the injected one.
        return pending.answer_injected(status, &headers, &text);
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
        blocked: sent.waited + sent_at.saturating_duration_since(pending.started),
        sent_at: sent_at + sent.waited + sent.dialed,
        head_at,
    };
    let info = sent.info.clone();
    let fresh = sent.fresh;
    let resp_capture = ctx.shared.capture(pending.id, BodyKind::Response);
    let body = if plan.body.is_empty() {
        body.map_err(BoxError::from).boxed_unsync()
    } else {
        if plan.body.shortens() {
            // A clean early end needs framing without the original length.
            head.headers.remove(http::header::CONTENT_LENGTH);
        }
        FaultBody::new(body, plan.body.clone())
            .with_fate(ctx.fate.clone())
            .boxed_unsync()
    };
    let expected = facts.content_length;
    let label = format!("{} {}", pending.request.method, pending.request.url);
    let body = TapBody::new(
        body,
        Box::new(move |outcome| {
            pending.finish(
                response_facts,
                outcome,
                Some(&info),
                fresh,
                timing,
                expected,
            );
        }),
    )
    .watch_stalls(ctx.shared.config.stall_after, label)
    .with_capture(resp_capture)
    .boxed_unsync();
    Response::from_parts(head, body)
}

fn request_error_kind(err: &hyper::Error) -> ErrorKind {
    if err.is_incomplete_message() || err.is_closed() || err.is_canceled() {
        ErrorKind::UpstreamClosed
    } else if err.is_timeout() {
        ErrorKind::Timeout
    } else if err.is_parse() {
        ErrorKind::Protocol
    } else {
        ErrorKind::UpstreamReset
    }
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
