//! The proxy IO shell: the only module that owns sockets and spawns connection tasks.
//!
//! Its public face is `start`, the `Observer` hook and the few types they name; the
//! connection machinery stays inside the crate (the test kit reaches `upstream::Sender`
//! from within and hands it on as `testkit::client::Sender`).

mod admin;
mod body;
mod connect;
mod faults;
mod forward;
mod head_timeout;
mod heads;
mod intercept;
mod io;
mod listener;
mod pending;
mod replay;
mod route;
pub(crate) mod upstream;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;

pub use body::{BodyCapture, BodyOutcome};
pub use listener::{ProxyError, ProxyHandle, RunningProxy};
pub use replay::ReplaySource;
/// Idle upstream connections kept per origin (the hardening tests size their load by it).
pub use upstream::POOL_PER_TARGET;

use crate::ca::CertAuthority;
use crate::config::ProxyConfig;
use crate::exchange::Exchange;
use crate::fault::{Decision, FaultEngine, Phase, RequestFacts};
use crate::tls::UpstreamTrust;
use upstream::Dialer;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

/// Which body of an exchange a capture is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BodyKind {
    Request,
    Response,
}

/// Receives every finished exchange (console printer, trace recorder, counters...).
pub trait Observer: Send + Sync + 'static {
    fn on_exchange(&self, exchange: &Exchange);

    /// A capture for one body of exchange `id`, or `None` to not look at the bytes.
    fn capture(&self, _id: u64, _kind: BodyKind) -> Option<Box<dyn BodyCapture>> {
        None
    }
}

/// State shared by every connection of one proxy.
pub(crate) struct Shared {
    pub config: ProxyConfig,
    pub ca: Arc<CertAuthority>,
    pub dialer: Dialer,
    observers: Vec<Arc<dyn Observer>>,
    next_exchange: AtomicU64,
    next_client_connection: AtomicU64,
    pub faults: Mutex<FaultEngine>,
    pub stats: TrafficStats,
    /// Idle upstream connections left by client connections that ended.
    pub pool: upstream::Pool,
    /// Where TLS secrets of both sides go (`--keylog`/`SSLKEYLOGFILE`).
    pub key_log: Option<Arc<crate::tls::KeyLogWriter>>,
    /// Replay mode: answers come from this trace instead of the network.
    pub replay: Option<Arc<replay::ReplaySource>>,
    /// Signs certificates nobody trusts, for the `tls cert=untrusted` fault.
    rogue_ca: OnceLock<Result<Arc<CertAuthority>, String>>,
    /// What `--goproxy` hops offer upstream (go's own client offers both).
    pub goproxy_alpn: Vec<Vec<u8>>,
}

/// Counters for the admin API.
#[derive(Debug, Default)]
pub(crate) struct TrafficStats {
    pub exchanges: AtomicU64,
    pub failed: AtomicU64,
    pub bytes_down: AtomicU64,
    pub bytes_up: AtomicU64,
    /// Exchanges between their request head and their publication (`pending::InFlight`);
    /// not reset with the others.
    pub in_flight: Arc<std::sync::atomic::AtomicUsize>,
}

impl TrafficStats {
    pub fn snapshot(&self) -> serde_json::Value {
        serde_json::json!({
            "exchanges": self.exchanges.load(Ordering::Relaxed),
            "failed": self.failed.load(Ordering::Relaxed),
            "bytes_down": self.bytes_down.load(Ordering::Relaxed),
            "bytes_up": self.bytes_up.load(Ordering::Relaxed),
        })
    }

    pub fn reset(&self) {
        for c in [
            &self.exchanges,
            &self.failed,
            &self.bytes_down,
            &self.bytes_up,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }
}

impl Shared {
    pub fn new(
        config: ProxyConfig,
        ca: Arc<CertAuthority>,
        trust: UpstreamTrust,
        observers: Vec<Arc<dyn Observer>>,
    ) -> Result<Self, ProxyError> {
        let faults = FaultEngine::new(config.fault_rules.clone(), config.fault_seed)?;
        let key_log = match &config.keylog {
            Some(path) => Some(crate::tls::KeyLogWriter::open(path)?),
            None => None,
        };
        let trust = trust.with_key_log(key_log.clone());
        let dialer = Dialer::new(
            config.connect_to.clone(),
            config.upstream_proxy.clone(),
            trust,
            config.connect_timeout,
            config.tls_timeout,
        );
        Ok(Shared {
            config,
            ca,
            dialer,
            observers,
            next_exchange: AtomicU64::new(1),
            next_client_connection: AtomicU64::new(1),
            faults: Mutex::new(faults),
            stats: TrafficStats::default(),
            replay: None,
            pool: upstream::Pool::default(),
            key_log,
            rogue_ca: OnceLock::new(),
            goproxy_alpn: vec![upstream::ALPN_H2.to_vec(), upstream::ALPN_HTTP11.to_vec()],
        })
    }

    /// The fault engine's decisions for one phase (cheap when no rule applies).
    pub fn decide(&self, phase: Phase, facts: &RequestFacts) -> Vec<Decision> {
        let mut engine = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        if !engine.has_rules_for(phase) {
            return Vec::new();
        }
        engine.decide(phase, facts)
    }

    pub fn rogue_ca(&self) -> Result<Arc<CertAuthority>, String> {
        self.rogue_ca
            .get_or_init(|| {
                CertAuthority::generate("modscope untrusted (injected fault)")
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .clone()
    }

    fn next_exchange_id(&self) -> u64 {
        self.next_exchange.fetch_add(1, Ordering::Relaxed)
    }

    /// A new id for a client connection (see `Exchange::client_connection`).
    pub(crate) fn next_client_connection_id(&self) -> u64 {
        self.next_client_connection.fetch_add(1, Ordering::Relaxed)
    }

    fn publish(&self, exchange: Exchange) {
        self.stats.exchanges.fetch_add(1, Ordering::Relaxed);
        if exchange.error.is_some() {
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(r) = &exchange.response {
            self.stats
                .bytes_down
                .fetch_add(r.body.size, Ordering::Relaxed);
        }
        self.stats
            .bytes_up
            .fetch_add(exchange.request.body.size, Ordering::Relaxed);
        for o in &self.observers {
            o.on_exchange(&exchange);
        }
    }

    /// The first observer that wants the bytes gets them (only the recorder does).
    fn capture(&self, id: u64, kind: BodyKind) -> Option<Box<dyn BodyCapture>> {
        self.observers.iter().find_map(|o| o.capture(id, kind))
    }
}

/// Starts a proxy on `config.listen` in the background.
pub async fn start(
    config: ProxyConfig,
    ca: Arc<CertAuthority>,
    trust: UpstreamTrust,
    observers: Vec<Arc<dyn Observer>>,
) -> Result<RunningProxy, ProxyError> {
    start_with_replay(config, ca, trust, observers, None).await
}

/// Starts a proxy that answers from `replay` (when given) instead of the network.
pub async fn start_with_replay(
    config: ProxyConfig,
    ca: Arc<CertAuthority>,
    trust: UpstreamTrust,
    observers: Vec<Arc<dyn Observer>>,
    replay: Option<Arc<replay::ReplaySource>>,
) -> Result<RunningProxy, ProxyError> {
    let mut shared = Shared::new(config, ca, trust, observers)?;
    shared.replay = replay;
    listener::start(shared).await
}

/// The address clients should use, for printing.
pub fn proxy_url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}
