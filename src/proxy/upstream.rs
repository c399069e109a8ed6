//! The timed upstream connector: DNS, TCP, optional CONNECT through a parent proxy, TLS and
//! the HTTP handshake, each timestamped, plus the per-client-connection reuse slot.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::ProxyBody;
use crate::config::{ConnectTo, UpstreamProxy};
use crate::exchange::{ErrorKind, FailPhase, UpstreamTls};
use crate::tls::{cert_facts, cipher_name, classify_handshake_error, version_name, UpstreamTrust};

pub const ALPN_H2: &[u8] = b"h2";
pub const ALPN_HTTP11: &[u8] = b"http/1.1";

/// Where the client wanted to go (before `--connect-to` mapping).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// Host name or IP literal, without brackets.
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

impl Target {
    /// `host:port` with IPv6 literals bracketed.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Durations of the connection phases; `None` where a phase did not happen.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConnTimings {
    pub dns: Option<Duration>,
    pub tcp: Option<Duration>,
    pub tls: Option<Duration>,
}

/// A failure to establish an upstream connection, in trace vocabulary.
#[derive(Debug, Clone, thiserror::Error)]
#[error("modscope: {what} failed: {message}")]
pub struct UpstreamError {
    pub phase: FailPhase,
    pub kind: ErrorKind,
    /// "TLS to proxy.golang.org:443", "DNS lookup of x.example", ...
    pub what: String,
    pub message: String,
    pub timings: ConnTimings,
    pub server_ip: Option<IpAddr>,
    pub tls: Option<UpstreamTls>,
}

/// Facts about one established upstream connection.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub id: u64,
    pub server_ip: Option<IpAddr>,
    pub timings: ConnTimings,
    pub tls: Option<UpstreamTls>,
    pub alpn: Option<Vec<u8>>,
}

/// The request half of an upstream HTTP connection.
pub enum Sender {
    H1(hyper::client::conn::http1::SendRequest<ProxyBody>),
    H2(hyper::client::conn::http2::SendRequest<ProxyBody>),
}

impl Sender {
    pub fn is_closed(&self) -> bool {
        match self {
            Sender::H1(s) => s.is_closed(),
            Sender::H2(s) => s.is_closed(),
        }
    }

    /// Open and with no HTTP/1.1 exchange still in flight.
    pub fn is_idle(&self) -> bool {
        match self {
            Sender::H1(s) => !s.is_closed() && s.is_ready(),
            Sender::H2(s) => !s.is_closed(),
        }
    }

    /// Sends `req` (absolute URI) in the form the protocol wants: origin-form plus `Host`
    /// for HTTP/1.1, absolute URI and no `Host` for HTTP/2.
    pub async fn send(&mut self, mut req: Request<ProxyBody>) -> hyper::Result<Response<Incoming>> {
        match self {
            Sender::H1(s) => {
                if let Some(authority) = req.uri().authority().cloned() {
                    if !req.headers().contains_key(http::header::HOST) {
                        if let Ok(v) = http::HeaderValue::from_str(authority.as_str()) {
                            req.headers_mut().insert(http::header::HOST, v);
                        }
                    }
                }
                let origin_form = req
                    .uri()
                    .path_and_query()
                    .map(|pq| pq.as_str())
                    .unwrap_or("/")
                    .parse::<http::Uri>();
                if let Ok(uri) = origin_form {
                    *req.uri_mut() = uri;
                }
                *req.version_mut() = http::Version::HTTP_11;
                s.ready().await?;
                s.send_request(req).await
            }
            Sender::H2(s) => {
                req.headers_mut().remove(http::header::HOST);
                *req.version_mut() = http::Version::HTTP_2;
                s.ready().await?;
                s.send_request(req).await
            }
        }
    }
}

/// Anything we can run HTTP over.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// go's own budgets for an HTTPS request through a proxy (net/http's DefaultTransport):
/// the dial (DNS + TCP) may take 30 s, and the TLS handshake 10 s from the moment the
/// CONNECT is answered. modscope dials the origin before answering the CONNECT, inside
/// go's dial budget, and hands the upstream TLS handshake what is left of go's, so a
/// slow origin that go alone survives also works through modscope.
pub const GO_DIAL_BUDGET: Duration = Duration::from_secs(30);
pub const GO_TLS_HANDSHAKE_BUDGET: Duration = Duration::from_secs(10);

/// Time kept back from go's TLS handshake budget to finish the client-side handshake
/// after the upstream one (a few round trips on loopback).
pub const CLIENT_HANDSHAKE_MARGIN: Duration = Duration::from_millis(300);

/// A TCP connection dialled for a CONNECT before it was answered, with what the dial took.
pub struct Predial {
    pub tcp: TcpStream,
    pub timings: ConnTimings,
    pub server_ip: Option<IpAddr>,
}

/// Opens upstream connections, recording how long each phase took.
pub struct Dialer {
    pub connect_to: Vec<ConnectTo>,
    pub upstream_proxy: Option<UpstreamProxy>,
    pub trust: UpstreamTrust,
    pub connect_timeout: Duration,
    pub tls_timeout: Duration,
    next_id: AtomicU64,
    /// `Via` value naming this instance (RFC 9110 §7.6.3), sent on every CONNECT to a
    /// parent proxy so a parent that is this modscope again can see the loop.
    pub via: String,
}

impl Dialer {
    pub fn new(
        connect_to: Vec<ConnectTo>,
        upstream_proxy: Option<UpstreamProxy>,
        trust: UpstreamTrust,
        connect_timeout: Duration,
        tls_timeout: Duration,
    ) -> Self {
        Dialer {
            connect_to,
            upstream_proxy,
            trust,
            connect_timeout,
            tls_timeout,
            next_id: AtomicU64::new(1),
            via: format!("1.1 modscope-{}", crate::tls::random_hex(8)),
        }
    }

    /// Where a target is really dialled after `--connect-to` rules.
    pub fn mapped(&self, target: &Target) -> (String, u16) {
        crate::config::apply_connect_to(&self.connect_to, &target.host, target.port)
    }

    /// A raw byte stream to the target (dns, tcp, and CONNECT through a parent proxy when
    /// configured), used for blind tunnels and as the base of HTTP connections.
    pub async fn dial_stream(
        &self,
        target: &Target,
        timings: &mut ConnTimings,
        server_ip: &mut Option<IpAddr>,
    ) -> Result<TcpStream, UpstreamError> {
        let (host, port) = self.mapped(target);
        let fail =
            |phase, kind, what: String, message: String, timings: &ConnTimings| UpstreamError {
                phase,
                kind,
                what,
                message,
                timings: *timings,
                server_ip: None,
                tls: None,
            };
        // One budget for resolution and connect together, like go's net.Dialer.Timeout.
        let deadline = tokio::time::Instant::now() + self.connect_timeout;
        let (dial_host, dial_port) = match &self.upstream_proxy {
            Some(p) => (p.host.clone(), p.port),
            None => (host.clone(), port),
        };
        let addrs: Vec<SocketAddr> = match dial_host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, dial_port)],
            Err(_) => {
                let started = Instant::now();
                let looked_up = tokio::time::timeout_at(
                    deadline,
                    tokio::net::lookup_host((dial_host.as_str(), dial_port)),
                )
                .await;
                timings.dns = Some(started.elapsed());
                let what = format!("DNS lookup of {dial_host}");
                match looked_up {
                    Ok(Ok(addrs)) => addrs.collect(),
                    Ok(Err(e)) => {
                        let (kind, words) = lookup_failure(&e.to_string());
                        return Err(fail(
                            FailPhase::Dns,
                            kind,
                            what,
                            format!("{words} ({e})"),
                            timings,
                        ));
                    }
                    Err(_) => {
                        return Err(fail(
                            FailPhase::Dns,
                            ErrorKind::DnsServerFailure,
                            what,
                            format!(
                                "the resolver did not answer within {:?}",
                                self.connect_timeout
                            ),
                            timings,
                        ));
                    }
                }
            }
        };
        if addrs.is_empty() {
            return Err(fail(
                FailPhase::Dns,
                ErrorKind::Dns,
                format!("DNS lookup of {dial_host}"),
                "no addresses".into(),
                timings,
            ));
        }
        let started = Instant::now();
        let mut last_err = None;
        let mut stream = None;
        for addr in &addrs {
            match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
                Ok(Ok(s)) => {
                    *server_ip = Some(addr.ip());
                    stream = Some(s);
                    break;
                }
                Ok(Err(e)) => last_err = Some((*addr, Some(e))),
                Err(_) => last_err = Some((*addr, None)),
            }
        }
        timings.tcp = Some(started.elapsed());
        let mut stream = match (stream, last_err) {
            (Some(s), _) => s,
            (None, Some((addr, err))) => {
                let what = format!("TCP connect to {dial_host}:{dial_port} ({addr})");
                let (kind, message) = match err {
                    Some(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                        (ErrorKind::ConnectRefused, "connection refused".to_string())
                    }
                    Some(e) => (ErrorKind::ConnectRefused, e.to_string()),
                    None => (
                        ErrorKind::ConnectTimeout,
                        format!("no answer within {:?}", self.connect_timeout),
                    ),
                };
                return Err(fail(FailPhase::Connect, kind, what, message, timings));
            }
            // Not reachable (the address list was checked non-empty), but an error is
            // cheaper to reason about than a panic.
            (None, None) => {
                return Err(fail(
                    FailPhase::Dns,
                    ErrorKind::Other,
                    format!("DNS lookup of {dial_host}"),
                    "no addresses".into(),
                    timings,
                ))
            }
        };
        let _ = stream.set_nodelay(true);
        if let Some(proxy) = &self.upstream_proxy {
            let authority = Target {
                host: host.clone(),
                port,
                tls: target.tls,
            }
            .authority();
            connect_through(
                &mut stream,
                proxy,
                &authority,
                &self.via,
                self.connect_timeout,
            )
            .await
            .map_err(|(kind, message)| {
                fail(
                    FailPhase::Connect,
                    kind,
                    format!(
                        "CONNECT {authority} through upstream proxy {}",
                        proxy.display()
                    ),
                    message,
                    timings,
                )
            })?;
        }
        Ok(stream)
    }

    /// A ready HTTP connection to `target`, offering `alpn` when it is TLS.
    pub async fn dial(
        &self,
        target: &Target,
        alpn: &[Vec<u8>],
    ) -> Result<(Sender, Arc<ConnInfo>), UpstreamError> {
        let predial = self.predial(target).await?;
        self.establish(predial, target, alpn, None).await
    }

    /// DNS and TCP (and a parent proxy's CONNECT) to `target`: done before a client's
    /// CONNECT is answered, within go's dial budget.
    pub async fn predial(&self, target: &Target) -> Result<Predial, UpstreamError> {
        let mut timings = ConnTimings::default();
        let mut server_ip = None;
        let tcp = self
            .dial_stream(target, &mut timings, &mut server_ip)
            .await?;
        Ok(Predial {
            tcp,
            timings,
            server_ip,
        })
    }

    /// TLS (for https targets) and the HTTP handshake on a dialled connection. The TLS
    /// handshake ends by `--tls-timeout` or `tls_deadline`, whichever comes first (the
    /// deadline is what is left of go's own handshake budget while go waits).
    pub async fn establish(
        &self,
        predial: Predial,
        target: &Target,
        alpn: &[Vec<u8>],
        tls_deadline: Option<Instant>,
    ) -> Result<(Sender, Arc<ConnInfo>), UpstreamError> {
        let Predial {
            tcp,
            mut timings,
            server_ip,
        } = predial;
        let (io, tls, negotiated): (Box<dyn Io>, Option<UpstreamTls>, Option<Vec<u8>>) =
            if target.tls {
                let limit = match tls_deadline {
                    Some(d) => self
                        .tls_timeout
                        .min(d.saturating_duration_since(Instant::now())),
                    None => self.tls_timeout,
                };
                let (stream, facts, negotiated) = self
                    .handshake(target, alpn, tcp, &mut timings, server_ip, limit)
                    .await?;
                (Box::new(stream), Some(facts), negotiated)
            } else {
                (Box::new(tcp), None, None)
            };
        let h2 = negotiated.as_deref() == Some(ALPN_H2);
        let sender = http_handshake(io, h2).await.map_err(|e| UpstreamError {
            phase: FailPhase::Connect,
            kind: ErrorKind::Protocol,
            what: format!("HTTP handshake with {}", target.authority()),
            message: e.to_string(),
            timings,
            server_ip,
            tls: tls.clone(),
        })?;
        let info = ConnInfo {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            server_ip,
            timings,
            tls,
            alpn: negotiated,
        };
        Ok((sender, Arc::new(info)))
    }

    async fn handshake(
        &self,
        target: &Target,
        alpn: &[Vec<u8>],
        tcp: TcpStream,
        timings: &mut ConnTimings,
        server_ip: Option<IpAddr>,
        limit: Duration,
    ) -> Result<
        (
            tokio_rustls::client::TlsStream<TcpStream>,
            UpstreamTls,
            Option<Vec<u8>>,
        ),
        UpstreamError,
    > {
        let what = format!("TLS to {}", target.authority());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let fail = |kind, message: String, timings: &ConnTimings, tls: Option<UpstreamTls>| {
            UpstreamError {
                phase: FailPhase::Tls,
                kind,
                what: what.clone(),
                message,
                timings: *timings,
                server_ip,
                tls,
            }
        };
        let config = self
            .trust
            .client_config(alpn.to_vec(), seen.clone())
            .map_err(|e| fail(ErrorKind::TlsHandshake, e.to_string(), timings, None))?;
        let server_name = match ServerName::try_from(target.host.clone()) {
            Ok(n) => n,
            Err(e) => {
                return Err(fail(
                    ErrorKind::TlsHandshake,
                    format!("invalid server name {:?}: {e}", target.host),
                    timings,
                    None,
                ))
            }
        };
        let started = Instant::now();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let result = timeout(limit, connector.connect(server_name, tcp)).await;
        timings.tls = Some(started.elapsed());
        let (chain, weak): (Vec<_>, Option<String>) = seen
            .lock()
            .map(|c| {
                (
                    c.iter().map(cert_facts).collect(),
                    c.iter().find_map(|d| crate::tls::weak_crypto(d)),
                )
            })
            .unwrap_or_default();
        match result {
            Ok(Ok(stream)) => {
                let (_, state) = stream.get_ref();
                let negotiated = state.alpn_protocol().map(|p| p.to_vec());
                let facts = UpstreamTls {
                    version: state.protocol_version().map(version_name),
                    cipher: state.negotiated_cipher_suite().map(cipher_name),
                    alpn: negotiated
                        .as_ref()
                        .map(|p| String::from_utf8_lossy(p).into_owned()),
                    verified: true,
                    error: None,
                    certificates: chain.into(),
                };
                Ok((stream, facts, negotiated))
            }
            Ok(Err(e)) => {
                let (kind, message) = classify_handshake_error(&e, &chain, weak.as_deref());
                let facts = UpstreamTls {
                    verified: false,
                    error: Some(message.clone()),
                    certificates: chain.into(),
                    ..UpstreamTls::default()
                };
                Err(fail(kind, message, timings, Some(facts)))
            }
            Err(_) => Err(fail(
                ErrorKind::TlsHandshakeTimeout,
                format!("no TLS handshake within {:?}", self.tls_timeout),
                timings,
                None,
            )),
        }
    }
}

async fn http_handshake(io: Box<dyn Io>, h2: bool) -> Result<Sender, hyper::Error> {
    let io = TokioIo::new(io);
    if h2 {
        let (sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .initial_stream_window_size(1 << 20)
            .initial_connection_window_size(4 << 20)
            .handshake(io)
            .await?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("upstream h2 connection ended: {e}");
            }
        });
        Ok(Sender::H2(sender))
    } else {
        let (sender, conn) = hyper::client::conn::http1::Builder::new()
            .max_buf_size(1 << 20)
            .handshake(io)
            .await?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("upstream h1 connection ended: {e}");
            }
        });
        Ok(Sender::H1(sender))
    }
}

/// How a failed name lookup reads, from getaddrinfo's words: only "no such name" says
/// the name is wrong; a temporary or non-recoverable failure says the resolver is.
fn lookup_failure(message: &str) -> (ErrorKind, &'static str) {
    let m = message.to_ascii_lowercase();
    if m.contains("not known") || m.contains("no address associated") || m.contains("no such host")
    {
        (ErrorKind::Dns, "no such host")
    } else {
        (ErrorKind::DnsServerFailure, "the DNS resolver failed")
    }
}

/// Sends `CONNECT authority` to a parent proxy and reads its answer head.
async fn connect_through(
    stream: &mut TcpStream,
    proxy: &UpstreamProxy,
    authority: &str,
    via: &str,
    limit: Duration,
) -> Result<(), (ErrorKind, String)> {
    let mut head = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\nVia: {via}\r\n");
    if let Some(auth) = &proxy.authorization {
        head.push_str(&format!("Proxy-Authorization: {auth}\r\n"));
    }
    head.push_str("\r\n");
    let exchange = async {
        stream.write_all(head.as_bytes()).await?;
        read_response_head(stream).await
    };
    let answer = match timeout(limit, exchange).await {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => return Err((ErrorKind::UpstreamProxy, format!("{e}"))),
        Err(_) => {
            return Err((
                ErrorKind::UpstreamProxy,
                format!("no answer within {limit:?}"),
            ))
        }
    };
    let status_line = answer.lines().next().unwrap_or("").to_string();
    let code = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok());
    match code {
        Some(200..=299) => Ok(()),
        Some(407) => Err((
            ErrorKind::ProxyAuth,
            format!("{status_line} (check the user:password in --upstream-proxy)"),
        )),
        Some(508) => Err((
            ErrorKind::UpstreamProxy,
            format!("{status_line}: --upstream-proxy leads back to this modscope; point it at another proxy"),
        )),
        _ => Err((ErrorKind::UpstreamProxy, format!("answered {status_line:?}"))),
    }
}

/// Reads up to the blank line ending an HTTP/1 response head, byte by byte so nothing
/// of the tunnelled stream after it is consumed.
async fn read_response_head(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut buf = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if buf.len() > 16 * 1024 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "response head larger than 16 KiB",
            ));
        }
        if stream.read(&mut byte).await? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the proxy closed the connection before answering",
            ));
        }
        buf.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// The upstream connection of one client connection: dialled once, reused while it lives,
/// redialled when the origin closed it.
pub struct UpstreamSlot {
    state: tokio::sync::Mutex<SlotState>,
}

enum SlotState {
    Empty,
    Live {
        target: Target,
        sender: Sender,
        info: Arc<ConnInfo>,
        /// The first exchange on a connection carries its dns/connect/tls timings.
        fresh: bool,
    },
    /// The dial made for the TLS handshake failed; every request on it gets that answer.
    Failed(Box<UpstreamError>),
}

/// An idle upstream connection kept for the next client connection to the same target,
/// so a new client connection costs only the client-side handshake.
pub struct Pooled {
    pub target: Target,
    pub sender: Sender,
    pub info: Arc<ConnInfo>,
    pub since: Instant,
}

/// Idle upstream connections by target.
#[derive(Default)]
pub struct Pool {
    idle: Mutex<std::collections::HashMap<Target, Vec<Pooled>>>,
}

/// Idle connections kept per target, and for how long: below the idle timeouts of
/// common origins (go's own client keeps 90 s), so a pooled connection is rarely stale.
pub const POOL_PER_TARGET: usize = 4;
const POOL_MAX_IDLE: Duration = Duration::from_secs(30);

fn still_usable(c: &Pooled) -> bool {
    c.since.elapsed() < POOL_MAX_IDLE && c.sender.is_idle()
}

impl Pool {
    pub fn put(&self, conn: Pooled) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        // Many targets (a browser, a benchmark): sweep stale ones now and then, not on
        // every call.
        if idle.len() > 256 {
            idle.retain(|_, list| {
                list.retain(still_usable);
                !list.is_empty()
            });
        }
        let list = idle.entry(conn.target.clone()).or_default();
        list.retain(still_usable);
        if list.len() < POOL_PER_TARGET {
            list.push(conn);
        }
    }

    /// Whether an idle connection to `target` may be waiting (then a CONNECT need not
    /// dial first).
    pub fn has(&self, target: &Target) -> bool {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.get_mut(target).is_some_and(|list| {
            list.retain(still_usable);
            !list.is_empty()
        })
    }

    /// The newest idle connection to `target` whose protocol the client offered.
    pub fn take(&self, target: &Target, acceptable: &[Vec<u8>]) -> Option<Pooled> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let list = idle.get_mut(target)?;
        list.retain(still_usable);
        let pos = list.iter().rposition(|c| {
            let alpn = c.info.alpn.as_deref().unwrap_or(ALPN_HTTP11);
            acceptable.iter().any(|a| a.as_slice() == alpn)
        })?;
        let conn = list.remove(pos);
        if list.is_empty() {
            idle.remove(target);
        }
        Some(conn)
    }
}

impl Default for UpstreamSlot {
    fn default() -> Self {
        UpstreamSlot {
            state: tokio::sync::Mutex::new(SlotState::Empty),
        }
    }
}

impl UpstreamSlot {
    /// A slot primed with a connection made before the client handshake finished.
    /// A slot primed with a connection; `fresh` when it was just dialled for this client
    /// (its first exchange then carries the dns/connect/tls timings).
    pub fn with_live(target: Target, sender: Sender, info: Arc<ConnInfo>, fresh: bool) -> Self {
        UpstreamSlot {
            state: tokio::sync::Mutex::new(SlotState::Live {
                target,
                sender,
                info,
                fresh,
            }),
        }
    }

    /// The live connection, if it can serve another client (used when the client
    /// connection ends, to return it to the pool).
    pub fn take_reusable(&self) -> Option<Pooled> {
        let mut state = self.state.try_lock().ok()?;
        let SlotState::Live { sender, .. } = &*state else {
            return None;
        };
        if !sender.is_idle() {
            return None;
        }
        match std::mem::replace(&mut *state, SlotState::Empty) {
            SlotState::Live {
                target,
                sender,
                info,
                ..
            } => Some(Pooled {
                target,
                sender,
                info,
                since: Instant::now(),
            }),
            _ => None,
        }
    }

    pub fn with_failure(err: UpstreamError) -> Self {
        UpstreamSlot {
            state: tokio::sync::Mutex::new(SlotState::Failed(Box::new(err))),
        }
    }
}

/// Sends `req` over the slot's connection to `target`, dialling when needed.
/// Returns the response head, the connection facts and whether they are fresh.
pub async fn send_via_slot(
    slot: &UpstreamSlot,
    dialer: &Dialer,
    pool: Option<&Pool>,
    target: &Target,
    alpn: &[Vec<u8>],
    req: Request<ProxyBody>,
) -> Result<Sent, SendError> {
    let waited_from = Instant::now();
    let mut guard = slot.state.lock().await;
    let waited = waited_from.elapsed();
    let reusable = match &*guard {
        SlotState::Live {
            target: t, sender, ..
        } => t == target && !sender.is_closed(),
        SlotState::Failed(e) => return Err(SendError::Connect(e.clone())),
        SlotState::Empty => false,
    };
    let mut dialed = Duration::ZERO;
    let mut from_pool = false;
    if !reusable {
        if let Some(pool) = pool {
            // A slot that served another target hands its connection to the pool, and
            // an idle pooled connection to this target saves a dial.
            let old = std::mem::replace(&mut *guard, SlotState::Empty);
            if let SlotState::Live {
                target: t,
                sender,
                info,
                ..
            } = old
            {
                if sender.is_idle() {
                    pool.put(Pooled {
                        target: t,
                        sender,
                        info,
                        since: Instant::now(),
                    });
                }
            }
            if let Some(conn) = pool.take(target, alpn) {
                *guard = SlotState::Live {
                    target: conn.target,
                    sender: conn.sender,
                    info: conn.info,
                    fresh: false,
                };
                from_pool = true;
            }
        }
    }
    if !reusable && !from_pool {
        let dial_started = Instant::now();
        let (sender, info) = dialer
            .dial(target, alpn)
            .await
            .map_err(|e| SendError::Connect(Box::new(e)))?;
        dialed = dial_started.elapsed();
        *guard = SlotState::Live {
            target: target.clone(),
            sender,
            info,
            fresh: true,
        };
    }
    let SlotState::Live {
        sender,
        info,
        fresh,
        ..
    } = &mut *guard
    else {
        // The slot was filled just above; a state machine slip must not panic a task.
        return Err(SendError::Connect(Box::new(UpstreamError {
            phase: FailPhase::Connect,
            kind: ErrorKind::Other,
            what: format!("connecting to {}", target.authority()),
            message: "internal error: no upstream connection after dialling".into(),
            timings: ConnTimings::default(),
            server_ip: None,
            tls: None,
        })));
    };
    let was_fresh = std::mem::replace(fresh, false);
    let info = info.clone();
    if let Sender::H2(h2) = sender {
        // Multiplexed: release the lock before waiting for the head.
        let mut h2 = Sender::H2(h2.clone());
        drop(guard);
        let response = h2
            .send(req)
            .await
            .map_err(|e| SendError::Request(e, info.clone()))?;
        return Ok(Sent {
            response,
            info,
            fresh: was_fresh,
            waited,
            dialed,
        });
    }
    let response = sender
        .send(req)
        .await
        .map_err(|e| SendError::Request(e, info.clone()))?;
    Ok(Sent {
        response,
        info,
        fresh: was_fresh,
        waited,
        dialed,
    })
}

/// A response head and how it was obtained.
pub struct Sent {
    pub response: Response<Incoming>,
    pub info: Arc<ConnInfo>,
    /// First exchange on this connection: it carries the connection's phase timings.
    pub fresh: bool,
    /// Time spent waiting for the connection slot.
    pub waited: Duration,
    /// Time spent dialling inside this call (zero on reuse or a pre-dialled connection).
    pub dialed: Duration,
}

#[derive(Debug)]
pub enum SendError {
    /// No connection could be made.
    Connect(Box<UpstreamError>),
    /// The connection existed but the exchange failed before a response head.
    Request(hyper::Error, Arc<ConnInfo>),
}

#[cfg(test)]
mod lookup_tests {
    use super::*;

    #[test]
    fn lookup_failures_tell_a_missing_name_from_a_failing_resolver() {
        let table = [
            (
                "failed to lookup address information: Name or service not known",
                ErrorKind::Dns,
            ),
            (
                "failed to lookup address information: No address associated with hostname",
                ErrorKind::Dns,
            ),
            (
                "failed to lookup address information: Temporary failure in name resolution",
                ErrorKind::DnsServerFailure,
            ),
            (
                "failed to lookup address information: Non-recoverable failure in name resolution",
                ErrorKind::DnsServerFailure,
            ),
        ];
        for (message, kind) in table {
            assert_eq!(lookup_failure(message).0, kind, "{message}");
        }
    }
}
