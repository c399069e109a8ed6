//! IO: the background OTLP/HTTP exporter. Spans go through a bounded queue to one task
//! that batches them, gzips each batch and POSTs it with retries and backoff; a slow or
//! dead collector costs dropped spans (counted, reported once and at the end), never a
//! slower proxy or unbounded memory.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use prost::Message;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{timeout, Instant};

use super::proto::{ExportTraceServiceResponse, Span};
use super::settings::{OtlpProtocol, OtlpSettings};
use super::span::{derive_trace_id, entry_span, SpanContext};
use crate::exchange::Exchange;
use crate::proxy::Observer;
use crate::tls::UpstreamTrust;

/// Spans waiting for the exporter; past this, new spans are dropped and counted.
pub const QUEUE_SPANS: usize = 4096;
/// Spans per export request.
pub const MAX_BATCH: usize = 512;
/// How long a partial batch waits for more spans.
pub const BATCH_DELAY: Duration = Duration::from_millis(500);
/// Tries per batch (the first plus retries).
const ATTEMPTS: u32 = 5;
/// The closing flush's limit when the collector's latest answer was a failure (a retry
/// may still land); when nothing even accepted the connection, the flush does not wait.
const FAILING_DEADLINE: Duration = Duration::from_millis(600);
/// How often the closing flush looks at the collector's health.
const HEALTH_POLL: Duration = Duration::from_millis(20);
const HEALTHY: u8 = 0;
const FAILING: u8 = 1;
const UNREACHABLE: u8 = 2;
/// A collector's answer is read up to this size (it is a tiny protobuf).
const MAX_RESPONSE: usize = 64 * 1024;

/// Why one POST failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("TLS to {host} failed: {source}")]
    Tls {
        host: String,
        source: std::io::Error,
    },
    #[error("TLS setup failed: {0}")]
    TlsSetup(#[from] crate::tls::TlsSetupError),
    #[error("HTTP exchange with the collector failed: {0}")]
    Http(#[from] hyper::Error),
    #[error("the collector answered {status}{}", if .message.is_empty() { String::new() } else { format!(": {}", .message) })]
    Status { status: u16, message: String },
    #[error("no answer within {0} ms (OTEL_EXPORTER_OTLP_TIMEOUT)")]
    Timeout(u64),
}

impl ExportError {
    /// Transient failures are retried (OTLP/HTTP: 429, 502, 503, 504 and transport errors).
    fn retryable(&self) -> bool {
        match self {
            ExportError::Status { status, .. } => matches!(status, 429 | 502 | 503 | 504),
            ExportError::TlsSetup(_) => false,
            _ => true,
        }
    }
}

/// What the exporter did, for the closing summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportStats {
    pub sent: u64,
    /// Queue full, collector unreachable after retries, rejected, or cut at shutdown.
    pub dropped: u64,
    pub last_error: Option<String>,
}

#[derive(Default)]
struct Counters {
    queued: AtomicU64,
    sent: AtomicU64,
    dropped: AtomicU64,
    warned: AtomicBool,
    /// How the latest POST went (`HEALTHY`, `FAILING`, `UNREACHABLE`): a collector that is
    /// down must not hold the command up for the whole closing deadline.
    health: AtomicU8,
    last_error: Mutex<Option<String>>,
}

impl Counters {
    /// Counts `n` lost spans and says so on stderr the first time only.
    fn lose(&self, n: u64, url: &str, why: &str) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(why.to_string());
        }
        if !self.warned.swap(true, Ordering::Relaxed) {
            eprintln!(
                "modscope: warning: OpenTelemetry export to {url}: {why}; dropping spans (proxying is not affected; the total is in the closing summary)"
            );
        }
    }
}

/// What waits in the queue: a finished span, or an exchange still to be mapped (mapping
/// happens on the exporter's task, off the proxy's forwarding path).
enum Job {
    Span(Box<Span>),
    Exchange {
        exchange: Box<Exchange>,
        ctx: SpanContext,
        goproxy_bases: Arc<Vec<String>>,
    },
}

impl Job {
    fn into_span(self) -> Span {
        match self {
            Job::Span(span) => *span,
            Job::Exchange {
                exchange,
                ctx,
                goproxy_bases,
            } => {
                let go = crate::gomod::classify(
                    &exchange.request.method,
                    &exchange.request.url,
                    &goproxy_bases,
                );
                let mut entry = crate::trace::build_entry(
                    &exchange,
                    serde_json::to_value(&go).ok(),
                    &crate::trace::EntryBodies::default(),
                    &crate::trace::BuildOptions { redact: true },
                );
                entry.id = Some(exchange.id);
                entry_span(&entry, 0, &ctx, &goproxy_bases)
            }
        }
    }
}

/// The exporter: `submit` from any thread, `finish` once at the end.
pub struct OtlpExporter {
    url: String,
    tx: Mutex<Option<mpsc::Sender<Job>>>,
    counters: Arc<Counters>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl OtlpExporter {
    /// Starts the background task on the current tokio runtime. `trust` verifies an
    /// https:// collector (system roots plus `--upstream-ca`).
    pub fn start(settings: OtlpSettings, trust: Option<UpstreamTrust>) -> Arc<Self> {
        let (tx, rx) = mpsc::channel(QUEUE_SPANS);
        let counters = Arc::new(Counters::default());
        let url = settings.url.clone();
        let client = Client {
            settings,
            trust,
            conn: None,
        };
        let task = tokio::spawn(batch_loop(rx, client, counters.clone()));
        Arc::new(OtlpExporter {
            url,
            tx: Mutex::new(Some(tx)),
            counters,
            task: Mutex::new(Some(task)),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    fn sender(&self) -> Option<mpsc::Sender<Job>> {
        self.tx.lock().ok().and_then(|t| t.clone())
    }

    /// Queues a span without waiting: a full queue drops it (proxying never waits).
    pub fn submit(&self, span: Span) {
        self.submit_job(Job::Span(Box::new(span)));
    }

    fn submit_job(&self, job: Job) {
        let sent = self.sender().map(|tx| tx.try_send(job));
        match sent {
            Some(Ok(())) => {
                self.counters.queued.fetch_add(1, Ordering::Relaxed);
            }
            Some(Err(mpsc::error::TrySendError::Full(_))) => self.counters.lose(
                1,
                &self.url,
                "the collector is slower than the traffic (queue full)",
            ),
            Some(Err(mpsc::error::TrySendError::Closed(_))) | None => {
                self.counters.lose(1, &self.url, "the exporter has stopped")
            }
        }
    }

    /// Queues a span, waiting for room (for `modscope export`, which has no traffic to protect).
    pub async fn submit_wait(&self, span: Span) {
        match self.sender() {
            Some(tx) if tx.send(Job::Span(Box::new(span))).await.is_ok() => {
                self.counters.queued.fetch_add(1, Ordering::Relaxed);
            }
            _ => self.counters.lose(1, &self.url, "the exporter has stopped"),
        }
    }

    /// Sends what is queued, giving up after `deadline`; what is still unsent is dropped.
    pub async fn finish(&self, deadline: Duration) -> ExportStats {
        // Closing the queue lets the task flush its last batch and end.
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(mut task) = task {
            // The limit follows the collector's health as the last attempts come back:
            // a refused connection ends the wait at once, a failing answer caps it.
            let started = Instant::now();
            let finished = loop {
                let limit = match self.counters.health.load(Ordering::Relaxed) {
                    HEALTHY => deadline,
                    FAILING => deadline.min(FAILING_DEADLINE),
                    _ => Duration::ZERO,
                };
                let left = limit.saturating_sub(started.elapsed());
                if left.is_zero() {
                    break false;
                }
                if timeout(left.min(HEALTH_POLL), &mut task).await.is_ok() {
                    break true;
                }
            };
            if !finished {
                task.abort();
                let _ = task.await;
                let sent = self.counters.sent.load(Ordering::Relaxed);
                let dropped = self.counters.dropped.load(Ordering::Relaxed);
                let queued = self.counters.queued.load(Ordering::Relaxed);
                let unsent = queued.saturating_sub(sent + dropped);
                if unsent > 0 {
                    self.counters.lose(
                        unsent,
                        &self.url,
                        &format!(
                            "not sent before exit ({:.1} s of the shutdown deadline)",
                            started.elapsed().as_secs_f64()
                        ),
                    );
                }
            }
        }
        ExportStats {
            sent: self.counters.sent.load(Ordering::Relaxed),
            dropped: self.counters.dropped.load(Ordering::Relaxed),
            last_error: self.counters.last_error.lock().ok().and_then(|l| l.clone()),
        }
    }
}

/// Gathers spans into batches of up to `MAX_BATCH`, or whatever arrived within
/// `BATCH_DELAY` of a batch's first span, and exports each.
async fn batch_loop(mut rx: mpsc::Receiver<Job>, mut client: Client, counters: Arc<Counters>) {
    let mut batch: Vec<Span> = Vec::new();
    let mut flush_at = Instant::now();
    loop {
        let next = if batch.is_empty() {
            rx.recv().await
        } else {
            match tokio::time::timeout_at(flush_at, rx.recv()).await {
                Ok(next) => next,
                Err(_) => {
                    client.export(std::mem::take(&mut batch), &counters).await;
                    continue;
                }
            }
        };
        match next {
            Some(span) => {
                if batch.is_empty() {
                    flush_at = Instant::now() + BATCH_DELAY;
                }
                batch.push(span.into_span());
                if batch.len() >= MAX_BATCH {
                    client.export(std::mem::take(&mut batch), &counters).await;
                }
            }
            None => {
                if !batch.is_empty() {
                    client.export(std::mem::take(&mut batch), &counters).await;
                }
                return;
            }
        }
    }
}

/// Encodes a batch as the settings ask: protobuf or OTLP/JSON, gzipped.
pub fn encode_batch(settings: &OtlpSettings, spans: Vec<Span>) -> Bytes {
    let request = super::export_request(&settings.resource, spans);
    let raw = match settings.protocol {
        OtlpProtocol::Protobuf => request.encode_to_vec(),
        OtlpProtocol::Json => super::json::request_to_json(&request)
            .to_string()
            .into_bytes(),
    };
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = gz.write_all(&raw);
    Bytes::from(gz.finish().unwrap_or_default())
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// One keep-alive HTTP/1.1 connection to the collector, reopened when it breaks.
struct Client {
    settings: OtlpSettings,
    trust: Option<UpstreamTrust>,
    conn: Option<Sender>,
}

impl Client {
    async fn export(&mut self, spans: Vec<Span>, counters: &Counters) {
        let n = spans.len() as u64;
        let body = encode_batch(&self.settings, spans);
        let mut backoff = Duration::from_millis(250);
        for attempt in 1..=ATTEMPTS {
            let limit = self.settings.timeout_ms;
            let result = match timeout(Duration::from_millis(limit), self.post(body.clone())).await
            {
                Ok(r) => r,
                Err(_) => {
                    self.conn = None;
                    Err((ExportError::Timeout(limit), None))
                }
            };
            let health = match &result {
                Ok(_) => HEALTHY,
                Err((ExportError::Connect { .. }, _)) => UNREACHABLE,
                Err(_) => FAILING,
            };
            counters.health.store(health, Ordering::Relaxed);
            match result {
                Ok(rejected) => {
                    counters
                        .sent
                        .fetch_add(n - rejected.min(n), Ordering::Relaxed);
                    if rejected > 0 {
                        counters.lose(
                            rejected.min(n),
                            &self.settings.url,
                            "the collector rejected some spans",
                        );
                    }
                    return;
                }
                Err((e, retry_after)) if e.retryable() && attempt < ATTEMPTS => {
                    tracing::debug!("OTLP export attempt {attempt} failed: {e}");
                    let wait = retry_after.unwrap_or(backoff).min(Duration::from_secs(10));
                    tokio::time::sleep(wait).await;
                    backoff = (backoff * 2).min(Duration::from_secs(4));
                }
                Err((e, _)) => {
                    counters.lose(n, &self.settings.url, &e.to_string());
                    return;
                }
            }
        }
    }

    /// One POST; `Ok(rejected span count)` on 2xx.
    async fn post(&mut self, body: Bytes) -> Result<u64, (ExportError, Option<Duration>)> {
        let sender = match self.conn.take() {
            Some(s) if !s.is_closed() => s,
            _ => self.connect().await.map_err(|e| (e, None))?,
        };
        let mut sender = sender;
        sender.ready().await.map_err(|e| (e.into(), None))?;
        let s = &self.settings;
        let host = if (s.https && s.port == 443) || (!s.https && s.port == 80) {
            s.host.clone()
        } else if s.host.contains(':') {
            format!("[{}]:{}", s.host, s.port)
        } else {
            format!("{}:{}", s.host, s.port)
        };
        let mut req = http::Request::post(&s.path)
            .header(http::header::HOST, host)
            .header(http::header::CONTENT_TYPE, s.protocol.content_type())
            .header(http::header::CONTENT_ENCODING, "gzip")
            .header(
                http::header::USER_AGENT,
                concat!("modscope/", env!("CARGO_PKG_VERSION")),
            );
        for (k, v) in &s.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let req = req.body(Full::new(body)).map_err(|e| {
            (
                ExportError::Status {
                    status: 0,
                    message: format!("bad OTEL_EXPORTER_OTLP_HEADERS entry ({e})"),
                },
                None,
            )
        })?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| (e.into(), None))?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let is_protobuf = resp
            .headers()
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/x-protobuf"));
        let body = Limited::new(resp.into_body(), MAX_RESPONSE)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        self.conn = Some(sender);
        if status.is_success() {
            let rejected = if is_protobuf {
                ExportTraceServiceResponse::decode(body)
                    .ok()
                    .and_then(|r| r.partial_success)
                    .map(|p| p.rejected_spans.max(0) as u64)
                    .unwrap_or(0)
            } else {
                0
            };
            return Ok(rejected);
        }
        let message: String = String::from_utf8_lossy(&body)
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect();
        Err((
            ExportError::Status {
                status: status.as_u16(),
                message: if is_protobuf { String::new() } else { message },
            },
            retry_after,
        ))
    }

    async fn connect(&mut self) -> Result<Sender, ExportError> {
        let s = &self.settings;
        let addr = format!("{}:{}", s.host, s.port);
        let tcp = tokio::net::TcpStream::connect((s.host.as_str(), s.port))
            .await
            .map_err(|source| ExportError::Connect {
                addr: addr.clone(),
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        if s.https {
            let trust = match &self.trust {
                Some(t) => t.clone(),
                None => UpstreamTrust::new(&[])?,
            };
            let config = trust.client_config(vec![b"http/1.1".to_vec()], Default::default())?;
            let name = rustls::pki_types::ServerName::try_from(s.host.clone()).map_err(|e| {
                ExportError::Tls {
                    host: s.host.clone(),
                    source: std::io::Error::new(std::io::ErrorKind::InvalidInput, e),
                }
            })?;
            let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
                .connect(name, tcp)
                .await
                .map_err(|source| ExportError::Tls {
                    host: s.host.clone(),
                    source,
                })?;
            handshake(TokioIo::new(tls)).await
        } else {
            handshake(TokioIo::new(tcp)).await
        }
    }
}

async fn handshake<T>(io: T) -> Result<Sender, ExportError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// How live exchanges are grouped into traces.
#[derive(Debug, Clone, Copy)]
pub enum SpanGrouping {
    /// `run`: one trace, every exchange a child of the run's root span (`ctx.parent`).
    Run(SpanContext),
    /// `proxy`/`replay`: one trace per client connection. A long-running proxy has no
    /// natural end, and one trace that grows for days is cut or refused by trace stores;
    /// a client connection is one go process's requests over one tunnel.
    PerClientConnection { nonce: [u8; 16], flags: u8 },
}

/// Queues each finished exchange for export (mapped to a span on the exporter's task).
pub struct OtlpObserver {
    pub exporter: Arc<OtlpExporter>,
    pub grouping: SpanGrouping,
    pub goproxy_bases: Arc<Vec<String>>,
}

impl OtlpObserver {
    fn context(&self, ex: &Exchange) -> SpanContext {
        match self.grouping {
            SpanGrouping::Run(ctx) => ctx,
            SpanGrouping::PerClientConnection { nonce, flags } => SpanContext {
                // Connection-less events (a refused CONNECT) get a trace of their own.
                trace_id: derive_trace_id(
                    &nonce,
                    ex.client_connection
                        .map(|c| c << 1)
                        .unwrap_or(ex.id << 1 | 1),
                ),
                parent: None,
                flags,
            },
        }
    }
}

impl Observer for OtlpObserver {
    fn on_exchange(&self, ex: &Exchange) {
        self.exporter.submit_job(Job::Exchange {
            exchange: Box::new(ex.clone()),
            ctx: self.context(ex),
            goproxy_bases: self.goproxy_bases.clone(),
        });
    }
}
