//! Client-side TLS interception: read the ClientHello, dial the origin offering the same
//! ALPN, then finish the client handshake with the protocol the origin chose.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio::time::timeout;
use tokio_rustls::LazyConfigAcceptor;

use super::forward::{self, ConnCtx, ConnMode};
use super::head_timeout::{CountReads, H2HeadWatch};
use super::io::drive;
use super::io::ConnectionFate;
use super::pending::{fault_facts, publish_connection_event};
use super::upstream::{Predial, Target, UpstreamError, UpstreamSlot, ALPN_H2, ALPN_HTTP11};
use super::Shared;
use crate::ca::Validity;
use crate::exchange::{ClientTls, ErrorKind, ExchangeError, FailPhase};
use crate::fault::{Action, CertFault, Phase, RequestFacts};
use crate::tls::{cipher_name, server_config, version_name};

/// The upstream side of an intercepted tunnel, as the CONNECT left it.
pub struct Upstream {
    /// The origin dialled before the CONNECT was answered (`None`: dial when needed).
    pub predial: Option<Box<Result<Predial, UpstreamError>>>,
    /// When go's TLS handshake budget runs out, less the time to finish ours with it.
    pub tls_deadline: Instant,
}

pub async fn serve_tls<S>(
    shared: Arc<Shared>,
    stream: S,
    target: Target,
    upstream: Upstream,
    peer: SocketAddr,
    fate: ConnectionFate,
    stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let acceptor = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream);
    let start = match timeout(shared.config.header_timeout, acceptor).await {
        Ok(Ok(start)) => start,
        Ok(Err(e)) => {
            tracing::warn!(
                "{peer}: bad TLS ClientHello in the tunnel to {}: {e}",
                target.authority()
            );
            return;
        }
        Err(_) => {
            tracing::warn!(
                "{peer}: no complete ClientHello within {:?}; closed",
                shared.config.header_timeout
            );
            return;
        }
    };
    let hello = start.client_hello();
    let sni = hello.server_name().map(str::to_ascii_lowercase);
    let offered: Vec<Vec<u8>> = hello
        .alpn()
        .map(|protocols| protocols.map(<[u8]>::to_vec).collect())
        .unwrap_or_default();
    let speakable: Vec<Vec<u8>> = offered
        .iter()
        .filter(|p| p.as_slice() == ALPN_H2 || p.as_slice() == ALPN_HTTP11)
        .cloned()
        .collect();
    let upstream_alpn = if speakable.is_empty() {
        vec![ALPN_HTTP11.to_vec()]
    } else {
        speakable.clone()
    };

    let offline = shared
        .replay
        .as_ref()
        .is_some_and(|r| !r.on_miss.uses_network());
    if offline {
        // Replaying without network: no origin to ask, so offer what the client prefers.
        let choice = speakable.first().cloned();
        let client_alpn = pick_client_alpn(&speakable, choice.as_deref());
        return finish_handshake(
            shared,
            start,
            target,
            peer,
            fate,
            stop,
            sni,
            offered,
            UpstreamSlot::default(),
            client_alpn,
            upstream_alpn,
        )
        .await;
    }
    // A pooled connection to the same origin saves the upstream handshake; otherwise
    // finish the connection dialled for the CONNECT (or dial now), the TLS handshake
    // within what is left of go's own handshake budget.
    let dialed = match shared.pool.take(&target, &upstream_alpn) {
        Some(pooled) => Ok((pooled.sender, pooled.info, false)),
        None => {
            let predial = match upstream.predial {
                Some(done) => *done,
                None => shared.dialer.predial(&target).await,
            };
            match predial {
                Ok(p) => shared
                    .dialer
                    .establish(p, &target, &upstream_alpn, Some(upstream.tls_deadline))
                    .await
                    .map(|(sender, info)| (sender, info, true)),
                Err(e) => Err(e),
            }
        }
    };
    let (slot, upstream_choice) = match dialed {
        Ok((sender, info, fresh)) => {
            let choice = info.alpn.clone();
            (
                UpstreamSlot::with_live(target.clone(), sender, info, fresh),
                choice,
            )
        }
        Err(e) => {
            tracing::info!("{peer}: {e}");
            (UpstreamSlot::with_failure(e), None)
        }
    };
    let client_alpn = pick_client_alpn(&speakable, upstream_choice.as_deref());
    finish_handshake(
        shared,
        start,
        target,
        peer,
        fate,
        stop,
        sni,
        offered,
        slot,
        client_alpn,
        upstream_alpn,
    )
    .await;
}

/// Completes the client handshake (after TLS-level faults) and serves HTTP on it.
#[allow(clippy::too_many_arguments)]
async fn finish_handshake<S>(
    shared: Arc<Shared>,
    start: tokio_rustls::StartHandshake<S>,
    target: Target,
    peer: SocketAddr,
    fate: ConnectionFate,
    stop: watch::Receiver<bool>,
    sni: Option<String>,
    offered: Vec<Vec<u8>>,
    slot: UpstreamSlot,
    client_alpn: Option<Vec<u8>>,
    upstream_alpn: Vec<Vec<u8>>,
) where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let leaf_host = sni.clone().unwrap_or_else(|| target.host.clone());
    let decisions = shared.decide(
        Phase::Tls,
        &RequestFacts::connect(&target.host, target.port),
    );
    let mut cert_fault = None;
    for d in &decisions {
        if let Action::Tls { stall_ms, cert } = &d.action {
            let error = ExchangeError::new(
                FailPhase::Tls,
                ErrorKind::Injected,
                format!("client handshake: {} (rule '{}')", d.describe(), d.rule),
            );
            publish_connection_event(&shared, &target, None, Some(error), fault_facts(&decisions));
            if let Some(ms) = stall_ms {
                tokio::time::sleep(Duration::from_millis(*ms)).await;
            }
            cert_fault = *cert;
        }
    }
    let leaf = match faulty_or_real_leaf(&shared, &leaf_host, cert_fault) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("{peer}: cannot mint a certificate for {leaf_host}: {e}");
            return;
        }
    };
    let config = match server_config(
        leaf,
        client_alpn.into_iter().collect(),
        shared.key_log.as_ref(),
    ) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            tracing::error!("{peer}: TLS server configuration failed: {e}");
            return;
        }
    };
    let tls = match timeout(shared.config.header_timeout, start.into_stream(config)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            // Typical: the client does not trust the modscope CA and aborts with an alert.
            tracing::warn!("{peer}: TLS handshake with the client for {leaf_host} failed: {e} (does the client trust the modscope CA? see `modscope ca path`)");
            return;
        }
        Err(_) => {
            tracing::warn!("{peer}: client TLS handshake for {leaf_host} timed out");
            return;
        }
    };
    let (_, state) = tls.get_ref();
    let negotiated = state.alpn_protocol().map(<[u8]>::to_vec);
    let client_tls = ClientTls {
        sni,
        alpn: offered
            .iter()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect(),
        version: state.protocol_version().map(version_name),
        cipher: state.negotiated_cipher_suite().map(cipher_name),
    };
    let h2 = negotiated.as_deref() == Some(ALPN_H2);
    let ctx = Arc::new(ConnCtx {
        shared: shared.clone(),
        client_addr: peer,
        client_connection: shared.next_client_connection_id(),
        mode: ConnMode::Intercepted { target, client_tls },
        slot,
        alpn: upstream_alpn,
        // hyper runs each HTTP/2 stream on a task of its own and resets it alone.
        fate: (!h2).then_some(fate),
    });
    let service = service_fn(move |req| forward::handle(req, ctx.clone()));
    let head_timeout = shared.config.header_timeout;
    let result = if h2 {
        let (io, deadline) = H2HeadWatch::new(tls, head_timeout);
        let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .initial_stream_window_size(1 << 20)
            .initial_connection_window_size(4 << 20)
            .max_concurrent_streams(250)
            .serve_connection(TokioIo::new(io), service);
        tokio::select! {
            r = drive(conn, stop) => r,
            _ = deadline.expired() => {
                tracing::warn!("{peer}: no complete HTTP/2 request head within {head_timeout:?}; closed");
                return;
            }
        }
    } else {
        // Each head within --header-timeout of its first byte (the first one from the end
        // of the handshake); the waits between requests are --idle-timeout's.
        let (io, head_timer) = CountReads::new(tls);
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(head_timer)
            .header_read_timeout(head_timeout)
            .max_buf_size(super::heads::MAX_HEAD_BYTES)
            .serve_connection(TokioIo::new(io), service);
        drive(conn, stop).await
    };
    if let Err(e) = result {
        tracing::debug!("{peer}: intercepted connection ended: {e}");
    }
}

/// The leaf to present: the cached real one, or a deliberately bad one for a TLS fault.
fn faulty_or_real_leaf(
    shared: &Shared,
    host: &str,
    fault: Option<CertFault>,
) -> Result<Arc<rustls::sign::CertifiedKey>, String> {
    let now = time::OffsetDateTime::now_utc();
    match fault {
        None => shared.ca.leaf_for(host).map_err(|e| e.to_string()),
        Some(CertFault::Untrusted) => shared
            .rogue_ca()?
            .mint(&[host], Validity::leaf_default(now))
            .map_err(|e| e.to_string()),
        Some(CertFault::Expired) => shared
            .ca
            .mint(
                &[host],
                Validity {
                    not_before: now - time::Duration::days(400),
                    not_after: now - time::Duration::days(35),
                },
            )
            .map_err(|e| e.to_string()),
        Some(CertFault::WrongHost) => shared
            .ca
            .mint(
                &["wrong-host.modscope.invalid"],
                Validity::leaf_default(now),
            )
            .map_err(|e| e.to_string()),
    }
}

/// The ALPN protocol to select for the client: the origin's choice when the client offered
/// it, else HTTP/1.1 when offered (so a 502 explanation is readable), else whatever the
/// client offered first that modscope speaks. `None` when the client offered nothing.
fn pick_client_alpn(speakable: &[Vec<u8>], upstream: Option<&[u8]>) -> Option<Vec<u8>> {
    if speakable.is_empty() {
        return None;
    }
    if let Some(choice) = upstream {
        if speakable.iter().any(|p| p.as_slice() == choice) {
            return Some(choice.to_vec());
        }
    }
    if speakable.iter().any(|p| p.as_slice() == ALPN_HTTP11) {
        return Some(ALPN_HTTP11.to_vec());
    }
    speakable.first().cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpn_mirrors_the_origin() {
        let both = vec![ALPN_H2.to_vec(), ALPN_HTTP11.to_vec()];
        let h2_only = vec![ALPN_H2.to_vec()];
        type Case<'a> = (&'a [Vec<u8>], Option<&'a [u8]>, Option<&'a [u8]>);
        let table: [Case; 6] = [
            (&both, Some(ALPN_H2), Some(ALPN_H2)),
            (&both, Some(ALPN_HTTP11), Some(ALPN_HTTP11)),
            (&both, None, Some(ALPN_HTTP11)),
            (&h2_only, None, Some(ALPN_H2)),
            (&h2_only, Some(ALPN_HTTP11), Some(ALPN_H2)),
            (&[], Some(ALPN_H2), None),
        ];
        for (offered, upstream, want) in table {
            assert_eq!(
                pick_client_alpn(offered, upstream).as_deref(),
                want,
                "{offered:?} {upstream:?}"
            );
        }
    }
}
