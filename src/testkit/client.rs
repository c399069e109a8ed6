//! A client that reaches origins through an HTTP proxy the way go does (CONNECT, then TLS
//! with ALPN), used by the demo when go is absent, by tests and by the benchmark.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::RootCertStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The proxy's own upstream sender (h1 or h2), which `connect` returns; named here
/// because the proxy keeps its connection machinery inside the crate.
pub use crate::proxy::upstream::Sender;
use crate::proxy::{BoxError, ProxyBody};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the proxy at {0}")]
    Proxy(SocketAddr, #[source] std::io::Error),
    #[error("the proxy refused CONNECT {target}: {status_line}")]
    ConnectRefused { target: String, status_line: String },
    #[error("TLS through the tunnel to {host} failed")]
    Tls {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("HTTP failed: {0}")]
    Http(#[from] hyper::Error),
    #[error("bad URL {0:?}")]
    Url(String),
    #[error("TLS setup: {0}")]
    Setup(String),
}

/// Which HTTP version to ask for with ALPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alpn {
    H1,
    H2,
    /// Offer both, as go does.
    Both,
}

/// A response read whole (tests and the demo only read small bodies this way).
#[derive(Debug)]
pub struct Fetched {
    pub status: u16,
    pub version: http::Version,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

/// Talks to origins through `proxy`, trusting `roots` (the modscope CA).
#[derive(Clone)]
pub struct ProxiedClient {
    pub proxy: SocketAddr,
    roots: Arc<RootCertStore>,
}

impl ProxiedClient {
    pub fn new(proxy: SocketAddr, roots: &[CertificateDer<'static>]) -> Result<Self, ClientError> {
        let mut store = RootCertStore::empty();
        for r in roots {
            store
                .add(r.clone())
                .map_err(|e| ClientError::Setup(e.to_string()))?;
        }
        Ok(ProxiedClient {
            proxy,
            roots: Arc::new(store),
        })
    }

    /// Opens a tunnel with `CONNECT authority` and returns the raw stream.
    pub async fn tunnel(&self, authority: &str) -> Result<TcpStream, ClientError> {
        let mut tcp = TcpStream::connect(self.proxy)
            .await
            .map_err(|e| ClientError::Proxy(self.proxy, e))?;
        let _ = tcp.set_nodelay(true);
        let head = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n");
        tcp.write_all(head.as_bytes())
            .await
            .map_err(|e| ClientError::Proxy(self.proxy, e))?;
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        while !buf.ends_with(b"\r\n\r\n") {
            let n = tcp
                .read(&mut byte)
                .await
                .map_err(|e| ClientError::Proxy(self.proxy, e))?;
            if n == 0 || buf.len() > 16 * 1024 {
                break;
            }
            buf.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&buf).into_owned();
        let status_line = head.lines().next().unwrap_or("").to_string();
        if !status_line.contains(" 200") {
            return Err(ClientError::ConnectRefused {
                target: authority.to_string(),
                status_line: if head.is_empty() {
                    "connection closed".into()
                } else {
                    head
                },
            });
        }
        Ok(tcp)
    }

    /// CONNECT + TLS + HTTP handshake to `host:port`.
    pub async fn connect(&self, host: &str, port: u16, alpn: Alpn) -> Result<Sender, ClientError> {
        let tls = self.tls_tunnel(host, port, alpn).await?;
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        let io = TokioIo::new(tls);
        if h2 {
            let (sender, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await?;
            tokio::spawn(conn);
            Ok(Sender::H2(sender))
        } else {
            let (sender, conn) = hyper::client::conn::http1::handshake(io).await?;
            tokio::spawn(conn);
            Ok(Sender::H1(sender))
        }
    }

    /// CONNECT + TLS to `host:port`: the raw TLS stream, for tests that write bytes by hand.
    pub async fn tls_tunnel(
        &self,
        host: &str,
        port: u16,
        alpn: Alpn,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ClientError> {
        let authority = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let tcp = self.tunnel(&authority).await?;
        let mut config = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| ClientError::Setup(e.to_string()))?
            .with_root_certificates(self.roots.clone())
            .with_no_client_auth();
        config.alpn_protocols = match alpn {
            Alpn::H1 => vec![b"http/1.1".to_vec()],
            Alpn::H2 => vec![b"h2".to_vec()],
            Alpn::Both => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        };
        let name =
            ServerName::try_from(host.to_string()).map_err(|_| ClientError::Url(host.into()))?;
        tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|source| ClientError::Tls {
                host: host.to_string(),
                source,
            })
    }

    /// One GET on a fresh connection, body read whole.
    pub async fn get(&self, url: &str, alpn: Alpn) -> Result<Fetched, ClientError> {
        let uri: http::Uri = url.parse().map_err(|_| ClientError::Url(url.into()))?;
        let host = uri.host().ok_or_else(|| ClientError::Url(url.into()))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let mut sender = self
            .connect(host, uri.port_u16().unwrap_or(443), alpn)
            .await?;
        let resp = sender.send(get_request(&uri)).await?;
        read_whole(resp).await
    }

    /// A plain-HTTP request sent to the proxy in absolute form (`GET http://...`).
    pub async fn get_plain(&self, url: &str) -> Result<Fetched, ClientError> {
        let uri: http::Uri = url.parse().map_err(|_| ClientError::Url(url.into()))?;
        let tcp = TcpStream::connect(self.proxy)
            .await
            .map_err(|e| ClientError::Proxy(self.proxy, e))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
        tokio::spawn(conn);
        let resp = sender.send_request(get_request(&uri)).await?;
        read_whole(resp).await
    }
}

/// A GET with an empty body for `uri` (absolute).
pub fn get_request(uri: &http::Uri) -> Request<ProxyBody> {
    let mut req = Request::new(
        Empty::<Bytes>::new()
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *req.uri_mut() = uri.clone();
    if let Some(a) = uri.authority() {
        if let Ok(v) = http::HeaderValue::from_str(a.as_str()) {
            req.headers_mut().insert(http::header::HOST, v);
        }
    }
    req
}

/// Collects a response body (small bodies only).
pub async fn read_whole(resp: Response<Incoming>) -> Result<Fetched, ClientError> {
    let (parts, body) = resp.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok(Fetched {
        status: parts.status.as_u16(),
        version: parts.version,
        headers: parts.headers,
        body,
    })
}

/// Drains a body counting bytes, without holding it (large downloads).
pub async fn drain(resp: Response<Incoming>) -> Result<(u16, u64), BoxError> {
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    let mut total = 0u64;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            total += data.len() as u64;
        }
    }
    Ok((status, total))
}
