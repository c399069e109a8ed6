//! The proxy IO shell: the only module that owns sockets and spawns connection tasks.

pub mod body;
mod connect;
pub mod forward;
mod intercept;
mod io;
mod listener;
pub mod upstream;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;

pub use body::{BodyCapture, BodyOutcome};
pub use listener::{ProxyError, ProxyHandle, RunningProxy};

use crate::ca::CertAuthority;
use crate::config::ProxyConfig;
use crate::exchange::Exchange;
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
pub struct Shared {
    pub config: ProxyConfig,
    pub ca: Arc<CertAuthority>,
    pub dialer: Dialer,
    observers: Vec<Arc<dyn Observer>>,
    next_exchange: AtomicU64,
}

impl Shared {
    pub fn new(
        config: ProxyConfig,
        ca: Arc<CertAuthority>,
        trust: UpstreamTrust,
        observers: Vec<Arc<dyn Observer>>,
    ) -> Self {
        let dialer = Dialer::new(
            config.connect_to.clone(),
            config.upstream_proxy.clone(),
            trust,
            config.connect_timeout,
            config.tls_timeout,
        );
        Shared {
            config,
            ca,
            dialer,
            observers,
            next_exchange: AtomicU64::new(1),
        }
    }

    fn next_exchange_id(&self) -> u64 {
        self.next_exchange.fetch_add(1, Ordering::Relaxed)
    }

    fn publish(&self, exchange: Exchange) {
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
    listener::start(Shared::new(config, ca, trust, observers)).await
}

/// The address clients should use, for printing.
pub fn proxy_url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}
