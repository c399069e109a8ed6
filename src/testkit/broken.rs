//! A deliberately broken GOPROXY origin for the failure catalogue: it serves one set of
//! synthetic modules over TLS and misbehaves in one chosen way (a status, the first N
//! requests failing, a delay before the head, a stall or cut mid-body, a throttle, a
//! slow TLS handshake, no response at all, or another module's bytes).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::modules::SyntheticModule;
use crate::ca::{CertAuthority, Validity};
use crate::proxy::BoxError;

type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// The one way the origin misbehaves.
#[derive(Debug, Clone)]
pub enum Misbehave {
    /// Serve everything correctly.
    Nothing,
    /// Answer `status` (with `Retry-After` when given) to every request, or only to the
    /// first `first` requests of module files.
    Status {
        status: u16,
        first: Option<usize>,
        retry_after: Option<String>,
    },
    /// Wait this long before every response head.
    DelayHead(Duration),
    /// Send half of a zip, then wait `stall`, then finish (`close: false`) or cut.
    StallBody { stall: Duration, close: bool },
    /// Send half of a zip, then fail the body (the connection or stream is cut).
    CutBody,
    /// Send bodies at this many bytes per second.
    Throttle(u64),
    /// Keep the accept queue full for this long, so new connections' SYNs are dropped
    /// and the client's TCP retransmits (after 1, 3, 7, 15 s) decide when it connects.
    ConnectDelay(Duration),
    /// Wait this long before starting the TLS handshake.
    HandshakeDelay(Duration),
    /// Read the first request bytes and close without any response.
    NoResponse,
    /// Serve the zip of `other` in place of every zip.
    SwapZip(Box<SyntheticModule>),
}

/// A running broken origin.
pub struct BrokenOrigin {
    pub addr: SocketAddr,
    pub ca: Arc<CertAuthority>,
    stop: watch::Sender<bool>,
}

impl BrokenOrigin {
    /// Starts on 127.0.0.1 with a certificate for `names`.
    pub async fn start(
        modules: Vec<SyntheticModule>,
        names: &[&str],
        how: Misbehave,
    ) -> std::io::Result<BrokenOrigin> {
        let ca = Arc::new(
            CertAuthority::generate("modscope broken origin CA").map_err(std::io::Error::other)?,
        );
        let leaf = ca
            .mint(
                names,
                Validity::leaf_default(time::OffsetDateTime::now_utc()),
            )
            .map_err(std::io::Error::other)?;
        let config =
            crate::tls::server_config(leaf, vec![b"h2".to_vec(), b"http/1.1".to_vec()], None)
                .map_err(std::io::Error::other)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let backlog = if matches!(how, Misbehave::ConnectDelay(_)) {
            1
        } else {
            1024
        };
        let listener = socket.listen(backlog)?;
        let addr = listener.local_addr()?;
        let mut fillers = Vec::new();
        if matches!(how, Misbehave::ConnectDelay(_)) {
            // Fill the accept queue with connections nobody accepts yet.
            for _ in 0..4 {
                let dial = tokio::net::TcpStream::connect(addr);
                if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_millis(300), dial).await {
                    fillers.push(s);
                }
            }
        }
        let (stop, stop_rx) = watch::channel(false);
        let state = Arc::new(State {
            modules,
            how,
            served: AtomicUsize::new(0),
        });
        tokio::spawn(serve(listener, acceptor, state, stop_rx, fillers));
        Ok(BrokenOrigin { addr, ca, stop })
    }

    pub fn ca_pem(&self) -> &str {
        self.ca.cert_pem()
    }
}

impl Drop for BrokenOrigin {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

struct State {
    modules: Vec<SyntheticModule>,
    how: Misbehave,
    served: AtomicUsize,
}

async fn serve(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    state: Arc<State>,
    mut stop: watch::Receiver<bool>,
    fillers: Vec<tokio::net::TcpStream>,
) {
    if let Misbehave::ConnectDelay(d) = state.how {
        tokio::time::sleep(d).await;
        drop(fillers);
    }
    loop {
        let (tcp, _) = tokio::select! {
            a = listener.accept() => match a { Ok(a) => a, Err(_) => continue },
            _ = stop.wait_for(|s| *s) => return,
        };
        let state = state.clone();
        let acceptor = acceptor.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            if let Misbehave::HandshakeDelay(d) = state.how {
                tokio::time::sleep(d).await;
            }
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                return;
            };
            if let Misbehave::NoResponse = state.how {
                // Take the request, answer nothing, close.
                use tokio::io::AsyncReadExt;
                let mut buf = [0u8; 4096];
                let _ = tls.read(&mut buf).await;
                tokio::time::sleep(Duration::from_millis(200)).await;
                return;
            }
            let service = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(answer(req, &state).await) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection(TokioIo::new(tls), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.wait_for(|s| *s) => {}
            }
        });
    }
}

/// The module file a GOPROXY path names: (module, file suffix), or a `list`.
fn lookup<'a>(state: &'a State, path: &str) -> Option<(&'a SyntheticModule, &'static str)> {
    let (module, file) = path.trim_start_matches('/').split_once("/@v/")?;
    let module = crate::gomod::unescape_path(module).ok()?;
    let candidates = || state.modules.iter().filter(move |m| m.path == module);
    if file == "list" {
        return candidates().next().map(|m| (m, "list"));
    }
    for suffix in [".info", ".mod", ".zip"] {
        if let Some(version) = file.strip_suffix(suffix) {
            return candidates()
                .find(|m| m.version == version)
                .map(|m| (m, suffix));
        }
    }
    None
}

fn full(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(
        Full::new(body.into())
            .map_err(|e| match e {})
            .boxed_unsync(),
    );
    *r.status_mut() = status;
    r
}

async fn answer(req: Request<Incoming>, state: &State) -> Response<Body> {
    let (path, _) = crate::gomod::url::percent_decode(req.uri().path());
    let Some((module, file)) = lookup(state, &path) else {
        return full(StatusCode::NOT_FOUND, "not found");
    };
    let nth = state.served.fetch_add(1, Ordering::SeqCst);
    let content: Bytes = match file {
        "list" => state
            .modules
            .iter()
            .filter(|m| m.path == module.path)
            .map(|m| format!("{}\n", m.version))
            .collect::<String>()
            .into(),
        ".info" => module.info_json().into(),
        ".mod" => Bytes::copy_from_slice(module.go_mod()),
        _ => module.zip().into(),
    };
    let zip = file == ".zip";
    match &state.how {
        Misbehave::Status {
            status,
            first,
            retry_after,
        } if first.is_none_or(|n| nth < n) => {
            let code = StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY);
            let mut r = full(code, format!("broken origin: {status}\n"));
            if let Some(v) = retry_after {
                if let Ok(v) = http::HeaderValue::from_str(v) {
                    r.headers_mut().insert("retry-after", v);
                }
            }
            return r;
        }
        Misbehave::DelayHead(d) => tokio::time::sleep(*d).await,
        Misbehave::SwapZip(other) if zip => return full(StatusCode::OK, other.zip()),
        _ => {}
    }
    let len = content.len();
    let half = content.slice(..len / 2);
    let rest = content.slice(len / 2..);
    let body: Body = match (&state.how, zip) {
        (Misbehave::StallBody { stall, close }, true) => {
            let (stall, close) = (*stall, *close);
            let frames = futures_util::stream::unfold(0u8, move |step| {
                let (half, rest) = (half.clone(), rest.clone());
                async move {
                    let item: Result<Frame<Bytes>, BoxError> = match step {
                        0 => Ok(Frame::data(half)),
                        1 => {
                            tokio::time::sleep(stall).await;
                            if close {
                                Err(BoxError::from(String::from("cut after the stall")))
                            } else {
                                Ok(Frame::data(rest))
                            }
                        }
                        _ => return None,
                    };
                    Some((item, step + 1))
                }
            });
            StreamBody::new(frames).boxed_unsync()
        }
        (Misbehave::CutBody, true) => {
            // A short pause lets the head and the first half reach the client before
            // the cut (an h2 reset could otherwise overtake the head).
            let frames = futures_util::stream::unfold(0u8, move |step| {
                let half = half.clone();
                async move {
                    let item: Result<Frame<Bytes>, BoxError> = match step {
                        0 => Ok(Frame::data(half)),
                        1 => {
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            Err(BoxError::from(String::from("cut mid-body")))
                        }
                        _ => return None,
                    };
                    Some((item, step + 1))
                }
            });
            StreamBody::new(frames).boxed_unsync()
        }
        (Misbehave::Throttle(rate), _) => {
            let chunk = (*rate as usize / 10).max(1);
            let frames =
                futures_util::stream::unfold(content.clone(), move |mut left| async move {
                    if left.is_empty() {
                        return None;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    let piece = left.split_to(chunk.min(left.len()));
                    Some((Ok::<_, BoxError>(Frame::data(piece)), left))
                });
            StreamBody::new(frames).boxed_unsync()
        }
        _ => Full::new(content)
            .map_err(|e: Infallible| match e {})
            .boxed_unsync(),
    };
    let mut r = Response::new(body);
    r.headers_mut()
        .insert(http::header::CONTENT_LENGTH, len.into());
    r
}
