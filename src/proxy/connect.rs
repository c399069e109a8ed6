//! The first hop of a client connection: HTTP/1.1 proxy requests (CONNECT or absolute-form),
//! then, for CONNECT, a peek that routes the tunnel to TLS interception, plain HTTP, or a
//! blind byte pipe.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{watch, OwnedSemaphorePermit};

use super::forward::{self, ConnCtx, ConnMode};
use super::head_timeout::CountReads;
use super::heads::{reject_oversized_head, text_response, MAX_HEAD_BYTES};
use super::io::{drive, linger_close, Activity, ActivityClock, ConnectionFate, Rewind};
use super::pending::{fault_facts, publish_connection_event};
use super::upstream::{
    ConnTimings, Predial, Target, UpstreamError, UpstreamSlot, CLIENT_HANDSHAKE_MARGIN,
    GO_TLS_HANDSHAKE_BUDGET,
};
use super::{intercept, BoxError, ProxyBody, Shared};
use crate::exchange::{ErrorKind, ExchangeError, FailPhase};
use crate::fault::{Action, Phase, RequestFacts};

/// What a CONNECT turned into, handed from the hyper service to the connection task.
enum Tunnel {
    /// Intercept (or serve plain HTTP); the origin dialled before answering, unless a
    /// pooled connection may serve or replay runs offline.
    Inspect(
        Target,
        hyper::upgrade::OnUpgrade,
        Option<Box<Result<Predial, UpstreamError>>>,
    ),
    Blind(TcpStream, hyper::upgrade::OnUpgrade),
    /// An injected fault: accept the CONNECT, then close at once.
    Close(hyper::upgrade::OnUpgrade),
}

/// How long a closed client connection waits for the client to close its side too.
const LINGER: Duration = Duration::from_secs(5);

pub async fn serve_client(
    shared: Arc<Shared>,
    tcp: TcpStream,
    peer: SocketAddr,
    permit: OwnedSemaphorePermit,
    stop: watch::Receiver<bool>,
) {
    let clock = ActivityClock::new();
    // Injected resets on this connection's HTTP/1.1 requests end the socket with an RST.
    let fate = ConnectionFate::default();
    let (io, mut returned) = Activity::new(tcp, clock.clone(), fate.clone());
    let idle = shared.config.idle_timeout;
    let lifecycle = client_lifecycle(shared, io, peer, fate, stop);
    let ended = tokio::select! {
        _ = lifecycle => true,
        _ = clock.idle(idle) => {
            tracing::debug!("{peer}: closing after {idle:?} without traffic");
            false
        }
    };
    // The socket is back unless something outlived the connection (then it closes
    // there). Holding the permit while lingering keeps a shutdown's drain waiting for
    // it, so the process does not exit (closing the socket with an RST) under a client
    // still reading.
    if let (true, Ok(tcp)) = (ended, returned.try_recv()) {
        linger_close(tcp, LINGER).await;
    }
    drop(permit);
}

async fn client_lifecycle(
    shared: Arc<Shared>,
    io: Activity,
    peer: SocketAddr,
    fate: ConnectionFate,
    stop: watch::Receiver<bool>,
) {
    let tunnel: Arc<Mutex<Option<Tunnel>>> = Arc::new(Mutex::new(None));
    let forward_ctx = Arc::new(ConnCtx {
        shared: shared.clone(),
        client_addr: peer,
        client_connection: shared.next_client_connection_id(),
        mode: ConnMode::ForwardProxy,
        slot: UpstreamSlot::default(),
        alpn: Vec::new(),
        fate: Some(fate.clone()),
    });
    let service = {
        let tunnel = tunnel.clone();
        let stop = stop.clone();
        service_fn(move |req| first_hop(req, forward_ctx.clone(), tunnel.clone(), stop.clone()))
    };
    let (io, head_timer) = CountReads::new(io);
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(head_timer)
        .header_read_timeout(shared.config.header_timeout)
        .max_buf_size(MAX_HEAD_BYTES)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    if let Err(e) = drive(conn, stop.clone()).await {
        log_client_error(peer, &e);
    }
    let pending = tunnel.lock().ok().and_then(|mut t| t.take());
    match pending {
        Some(Tunnel::Inspect(target, upgrade, predial)) => match upgrade.await {
            Ok(upgraded) => {
                let tunnel = TokioIo::new(upgraded);
                inspect_tunnel(shared, tunnel, target, predial, peer, fate, stop).await
            }
            Err(e) => tracing::debug!("{peer}: CONNECT upgrade failed: {e}"),
        },
        Some(Tunnel::Close(upgrade)) => drop(upgrade.await),
        Some(Tunnel::Blind(mut upstream, upgrade)) => match upgrade.await {
            Ok(upgraded) => {
                let mut client = TokioIo::new(upgraded);
                if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
                    tracing::debug!("{peer}: tunnel ended: {e}");
                }
            }
            Err(e) => tracing::debug!("{peer}: CONNECT upgrade failed: {e}"),
        },
        None => {}
    }
}

fn log_client_error(peer: SocketAddr, e: &hyper::Error) {
    if e.is_parse() || e.is_parse_too_large() {
        tracing::warn!("{peer}: malformed request from client, answered 4xx and closed: {e}");
    } else if e.is_timeout() {
        tracing::warn!("{peer}: client did not send a complete request head in time; closed");
    } else {
        tracing::debug!("{peer}: client connection ended: {e}");
    }
}

async fn first_hop(
    req: Request<Incoming>,
    ctx: Arc<ConnCtx>,
    tunnel: Arc<Mutex<Option<Tunnel>>>,
    stop: watch::Receiver<bool>,
) -> Result<Response<ProxyBody>, BoxError> {
    if let Some(answer) = refuse_loop(&req, &ctx.shared.dialer.via) {
        return Ok(answer);
    }
    if req.method() != Method::CONNECT {
        return forward::handle(req, ctx).await;
    }
    if let Some(answer) = reject_oversized_head(&req) {
        return Ok(answer);
    }
    if *stop.borrow() {
        return Ok(text_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "modscope: shutting down, not accepting new tunnels",
        ));
    }
    let target = match parse_connect_target(&req) {
        Ok(t) => t,
        Err(message) => {
            tracing::warn!("{}: bad CONNECT: {message}", ctx.client_addr);
            return Ok(text_response(StatusCode::BAD_REQUEST, &message));
        }
    };
    let shared = &ctx.shared;
    let decisions = shared.decide(
        Phase::Connect,
        &RequestFacts::connect(&target.host, target.port),
    );
    let fault = fault_facts(&decisions);
    for d in &decisions {
        match d.action {
            Action::RefuseConnect { status } => {
                let code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
                publish_connection_event(shared, &target, Some(status), None, fault);
                return Ok(text_response(
                    code,
                    &format!(
                        "modscope: injected fault (rule '{}'): CONNECT {} refused",
                        d.rule,
                        target.authority()
                    ),
                ));
            }
            Action::CloseAfterConnect => {
                let error = ExchangeError::new(
                    FailPhase::Connect,
                    ErrorKind::Injected,
                    format!("tunnel closed right after CONNECT by rule '{}'", d.rule),
                );
                publish_connection_event(shared, &target, None, Some(error), fault);
                if let Ok(mut slot) = tunnel.lock() {
                    *slot = Some(Tunnel::Close(hyper::upgrade::on(req)));
                }
                return Ok(connect_established());
            }
            _ => {}
        }
    }
    let upgrade = hyper::upgrade::on(req);
    let next = if shared.config.intercepts(&target.host) {
        let offline = shared
            .replay
            .as_ref()
            .is_some_and(|r| !r.on_miss.uses_network());
        // Dial the origin now, while go waits for the CONNECT answer (up to a minute,
        // after its own 30 s dial budget), so that go's 10 s TLS handshake budget is
        // left for the TLS handshakes alone, as without modscope. A failure is not
        // answered here: it is carried into the tunnel and reported on go's request,
        // where the trace knows which module it was for.
        let predial = if offline || shared.pool.has(&target) {
            None
        } else {
            Some(Box::new(shared.dialer.predial(&target).await))
        };
        Tunnel::Inspect(target, upgrade, predial)
    } else {
        let mut timings = ConnTimings::default();
        let mut ip = None;
        match shared
            .dialer
            .dial_stream(&target, &mut timings, &mut ip)
            .await
        {
            Ok(upstream) => Tunnel::Blind(upstream, upgrade),
            Err(e) => return Ok(text_response(StatusCode::BAD_GATEWAY, &e.to_string())),
        }
    };
    if let Ok(mut slot) = tunnel.lock() {
        *slot = Some(next);
    }
    Ok(connect_established())
}

/// 508 when the request already passed through this instance (its `Via` names us): the
/// parent proxy is this modscope, and forwarding would nest one hop per round trip.
fn refuse_loop(req: &Request<Incoming>, via: &str) -> Option<Response<ProxyBody>> {
    let ours = via.split_whitespace().last().unwrap_or(via);
    let looped = req
        .headers()
        .get_all(http::header::VIA)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|hop| hop.split_whitespace().nth(1) == Some(ours));
    looped.then(|| {
        tracing::warn!("refused a request that came from this modscope itself (--upstream-proxy loop)");
        text_response(
            StatusCode::LOOP_DETECTED,
            &format!(
                "modscope: request loop: {} {} came from this modscope itself ({ours}); --upstream-proxy must name another proxy, not this one",
                req.method(),
                req.uri()
            ),
        )
    })
}

fn connect_established() -> Response<ProxyBody> {
    let mut resp = Response::new(Empty::new().map_err(|never| match never {}).boxed_unsync());
    *resp.status_mut() = StatusCode::OK;
    resp
}

/// `host:port` of a CONNECT request, validated.
fn parse_connect_target(req: &Request<Incoming>) -> Result<Target, String> {
    let raw = req.uri().to_string();
    let authority = req
        .uri()
        .authority()
        .ok_or_else(|| format!("modscope: CONNECT needs host:port, got {raw:?}"))?;
    let port = authority.port_u16().ok_or_else(|| {
        format!("modscope: CONNECT needs host:port (the port is missing in {raw:?})")
    })?;
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    if !valid_host(host) {
        return Err(format!("modscope: CONNECT to an invalid host {host:?}"));
    }
    if port == 0 {
        return Err("modscope: CONNECT to port 0".to_string());
    }
    Ok(Target {
        host: host.to_ascii_lowercase(),
        port,
        tls: true,
    })
}

fn valid_host(host: &str) -> bool {
    if host.parse::<IpAddr>().is_ok() {
        return true;
    }
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Reads the first bytes of a tunnel: a TLS handshake record is intercepted, anything else
/// is served as plain HTTP to the CONNECT target.
async fn inspect_tunnel<S>(
    shared: Arc<Shared>,
    mut stream: S,
    target: Target,
    predial: Option<Box<Result<Predial, UpstreamError>>>,
    peer: SocketAddr,
    fate: ConnectionFate,
    stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    // go's TLS handshake timer starts about now, when it has read the CONNECT answer.
    let handshake_started = Instant::now();
    let mut buf = BytesMut::with_capacity(4096);
    let read = tokio::time::timeout(shared.config.header_timeout, stream.read_buf(&mut buf)).await;
    match read {
        Ok(Ok(0)) => {
            tracing::debug!(
                "{peer}: closed the tunnel to {} without sending anything",
                target.authority()
            );
            return;
        }
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            tracing::debug!("{peer}: tunnel read failed: {e}");
            return;
        }
        Err(_) => {
            tracing::warn!(
                "{peer}: sent nothing into the tunnel to {} within {:?}; closed",
                target.authority(),
                shared.config.header_timeout
            );
            return;
        }
    }
    let stream = Rewind::new(buf.freeze(), stream);
    // 0x16 is the TLS handshake record type that every ClientHello starts with.
    if stream.peek_first() == Some(0x16) {
        let tls_deadline = handshake_started + GO_TLS_HANDSHAKE_BUDGET - CLIENT_HANDSHAKE_MARGIN;
        let upstream = intercept::Upstream {
            predial,
            tls_deadline,
        };
        intercept::serve_tls(shared, stream, target, upstream, peer, fate, stop).await;
    } else {
        let target = Target {
            tls: false,
            ..target
        };
        serve_plain_tunnel(shared, stream, target, peer, fate, stop).await;
    }
}

async fn serve_plain_tunnel<S>(
    shared: Arc<Shared>,
    stream: S,
    target: Target,
    peer: SocketAddr,
    fate: ConnectionFate,
    stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let ctx = Arc::new(ConnCtx {
        shared: shared.clone(),
        client_addr: peer,
        client_connection: shared.next_client_connection_id(),
        mode: ConnMode::PlainTunnel { target },
        slot: UpstreamSlot::default(),
        alpn: Vec::new(),
        fate: Some(fate),
    });
    let service = service_fn(move |req| forward::handle(req, ctx.clone()));
    // Each head within --header-timeout of its first byte (the first one of the start);
    // the waits between requests are --idle-timeout's.
    let (stream, head_timer) = CountReads::new(stream);
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(head_timer)
        .header_read_timeout(shared.config.header_timeout)
        .max_buf_size(MAX_HEAD_BYTES)
        .serve_connection(TokioIo::new(stream), service);
    if let Err(e) = drive(conn, stop).await {
        log_client_error(peer, &e);
    }
}

#[cfg(test)]
mod tests {
    use super::valid_host;

    #[test]
    fn host_validation() {
        for good in ["proxy.golang.org", "127.0.0.1", "::1", "a-b.example", "x"] {
            assert!(valid_host(good), "{good}");
        }
        for bad in [
            "",
            "a..b",
            "a b",
            "exa mple.com",
            "<script>",
            &"a".repeat(64),
        ] {
            assert!(!valid_host(bad), "{bad}");
        }
    }
}
