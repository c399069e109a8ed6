//! A loopback origin for the demo, tests and benchmarks: serves synthetic modules over the
//! GOPROXY protocol (TLS with h2 + http/1.1, or plain HTTP) plus a few utility endpoints
//! that stream bodies of any size without disk.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::modules::SyntheticModule;
use crate::ca::{CertAuthority, Validity};
use crate::proxy::BoxError;

use super::sumdb::SumDb;

type OriginBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// How the origin presents itself.
#[derive(Debug, Clone)]
pub struct OriginOptions {
    /// TLS with a leaf for `names`; `false` serves plain HTTP.
    pub tls: bool,
    pub names: Vec<String>,
    /// ALPN protocols offered (default h2 + http/1.1).
    pub alpn: Vec<Vec<u8>>,
    /// Leaf validity (default: valid now); tests pass expired windows on purpose.
    pub validity: Option<Validity>,
    /// GOPROXY path prefix, e.g. `/artifactory/api/go/remote`.
    pub prefix: String,
    /// A checksum database to serve: directly (`/lookup`, `/tile`, `/latest`, for a host
    /// named like it) and, with `sumdb_via_proxy`, also through the GOPROXY path
    /// (`<prefix>/sumdb/<name>/...`, announced by `supported`).
    pub sumdb: Option<Arc<SumDb>>,
    pub sumdb_via_proxy: bool,
    /// `user:password` every GOPROXY request must carry as Basic auth (else 401).
    pub basic_auth: Option<String>,
    /// Serve module zips deflated, as proxy.golang.org does (default: stored).
    pub deflate_zips: bool,
    /// A round trip to emulate a distant origin on loopback (the bench's WAN workload):
    /// a new connection waits one RTT before its handshake (TCP) and one more before TLS
    /// completes, and every response head waits one RTT (the request's way out and back).
    /// Bandwidth and slow start are not emulated.
    pub latency: Option<std::time::Duration>,
}

impl Default for OriginOptions {
    fn default() -> Self {
        OriginOptions {
            tls: true,
            names: vec![
                "proxy.golang.org".into(),
                "localhost".into(),
                "127.0.0.1".into(),
            ],
            alpn: vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            validity: None,
            prefix: String::new(),
            sumdb: None,
            sumdb_via_proxy: true,
            basic_auth: None,
            deflate_zips: false,
            latency: None,
        }
    }
}

/// A running origin.
pub struct Origin {
    pub addr: SocketAddr,
    /// The CA that signed the origin's certificate (trust it with `--upstream-ca`).
    pub ca: Arc<CertAuthority>,
    requests: Arc<Mutex<Vec<String>>>,
    stop: watch::Sender<bool>,
}

impl Origin {
    pub async fn start(
        modules: Vec<SyntheticModule>,
        opts: OriginOptions,
    ) -> std::io::Result<Origin> {
        let ca = Arc::new(
            CertAuthority::generate("modscope test origin CA").map_err(std::io::Error::other)?,
        );
        Self::start_with_ca(modules, opts, ca).await
    }

    pub async fn start_with_ca(
        modules: Vec<SyntheticModule>,
        opts: OriginOptions,
        ca: Arc<CertAuthority>,
    ) -> std::io::Result<Origin> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let acceptor = if opts.tls {
            let names: Vec<&str> = opts.names.iter().map(String::as_str).collect();
            let validity = opts
                .validity
                .unwrap_or_else(|| Validity::leaf_default(time::OffsetDateTime::now_utc()));
            let leaf = ca.mint(&names, validity).map_err(std::io::Error::other)?;
            let config = crate::tls::server_config(leaf, opts.alpn.clone(), None)
                .map_err(std::io::Error::other)?;
            Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
        } else {
            None
        };
        let tree = Arc::new(ModuleTree::new(modules, &opts));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (stop, stop_rx) = watch::channel(false);
        tokio::spawn(serve(
            listener,
            acceptor,
            tree,
            requests.clone(),
            stop_rx,
            opts.latency,
        ));
        Ok(Origin {
            addr,
            ca,
            requests,
            stop,
        })
    }

    pub fn ca_pem(&self) -> &str {
        self.ca.cert_pem()
    }

    /// Requests so far, in order ("GET /path HTTP/2.0").
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Stops accepting; open connections end as their clients leave.
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.shutdown();
    }
}

async fn serve(
    listener: TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    tree: Arc<ModuleTree>,
    requests: Arc<Mutex<Vec<String>>>,
    mut stop: watch::Receiver<bool>,
    latency: Option<std::time::Duration>,
) {
    loop {
        let (tcp, _) = tokio::select! {
            a = listener.accept() => match a { Ok(a) => a, Err(_) => continue },
            _ = stop.wait_for(|s| *s) => return,
        };
        let _ = tcp.set_nodelay(true);
        let tree = tree.clone();
        let requests = requests.clone();
        let acceptor = acceptor.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let tree = tree.clone();
                let requests = requests.clone();
                async move {
                    if let Some(rtt) = latency {
                        tokio::time::sleep(rtt).await;
                    }
                    Ok::<_, Infallible>(route(req, &tree, &requests).await)
                }
            });
            if let Some(rtt) = latency {
                // TCP's handshake, then TLS 1.3's one round trip.
                let trips = if acceptor.is_some() { 2 } else { 1 };
                tokio::time::sleep(rtt * trips).await;
            }
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let mut stop = stop;
            match acceptor {
                Some(acceptor) => {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let conn = builder.serve_connection(TokioIo::new(tls), service);
                    tokio::pin!(conn);
                    tokio::select! {
                        _ = conn.as_mut() => {}
                        _ = stop.wait_for(|s| *s) => {}
                    }
                }
                None => {
                    let conn = builder.serve_connection(TokioIo::new(tcp), service);
                    tokio::pin!(conn);
                    tokio::select! {
                        _ = conn.as_mut() => {}
                        _ = stop.wait_for(|s| *s) => {}
                    }
                }
            }
        });
    }
}

/// Module versions by escaped module path.
struct ModuleTree {
    prefix: String,
    by_path: HashMap<String, Vec<SyntheticModule>>,
    sumdb: Option<Arc<SumDb>>,
    sumdb_via_proxy: bool,
    /// The whole `Authorization` value required, when auth is on.
    authorization: Option<String>,
    deflate_zips: bool,
}

impl ModuleTree {
    fn new(modules: Vec<SyntheticModule>, opts: &OriginOptions) -> Self {
        let mut by_path: HashMap<String, Vec<SyntheticModule>> = HashMap::new();
        for m in modules {
            let escaped = crate::gomod::escape_path(&m.path).unwrap_or_else(|_| m.path.clone());
            by_path.entry(escaped).or_default().push(m);
        }
        ModuleTree {
            prefix: opts.prefix.trim_end_matches('/').to_string(),
            by_path,
            sumdb: opts.sumdb.clone(),
            sumdb_via_proxy: opts.sumdb_via_proxy,
            authorization: opts.basic_auth.as_ref().map(|creds| {
                use base64::Engine;
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(creds)
                )
            }),
            deflate_zips: opts.deflate_zips,
        }
    }

    fn version(&self, escaped_path: &str, escaped_version: &str) -> Option<&SyntheticModule> {
        let version = crate::gomod::unescape_version(escaped_version).ok()?;
        self.by_path
            .get(escaped_path)?
            .iter()
            .find(|m| m.version == version)
    }
}

async fn route(
    req: Request<Incoming>,
    tree: &ModuleTree,
    requests: &Mutex<Vec<String>>,
) -> Response<OriginBody> {
    // go percent-encodes the '!' of escaped module paths.
    let (path, _) = crate::gomod::url::percent_decode(req.uri().path());
    if let Ok(mut r) = requests.lock() {
        r.push(format!(
            "{} {} {:?}",
            req.method(),
            req.uri(),
            req.version()
        ));
    }
    let mut segments = path.trim_start_matches('/').splitn(2, '/');
    let first = segments.next().unwrap_or("");
    let rest = segments.next().unwrap_or("");
    match first {
        "bytes" => {
            let n = rest.parse::<u64>().unwrap_or(0);
            let chunked = req.uri().query().is_some_and(|q| q.contains("chunked"));
            return stream_response(n, !chunked, None);
        }
        "cut" => {
            // Declares twice the length, sends `n` bytes, then fails the stream.
            let n = rest.parse::<u64>().unwrap_or(0);
            return stream_response(n, true, Some(n * 2));
        }
        "echo" => {
            let body = req.into_body().map_err(BoxError::from).boxed_unsync();
            return Response::new(body);
        }
        "gzip" => {
            // `gzip/N`: N numbered text lines, gzip-encoded, for HAR body-encoding tests.
            let n = rest.parse::<usize>().unwrap_or(0);
            let mut resp = full(
                StatusCode::OK,
                "text/plain; charset=utf-8",
                gzip(&gzip_text(n)),
            );
            resp.headers_mut().insert(
                http::header::CONTENT_ENCODING,
                http::HeaderValue::from_static("gzip"),
            );
            return resp;
        }
        "headers" => {
            let mut text = format!("{} {} {:?}\n", req.method(), req.uri(), req.version());
            for (k, v) in req.headers() {
                text.push_str(&format!("{k}: {}\n", String::from_utf8_lossy(v.as_bytes())));
            }
            return full(StatusCode::OK, "text/plain", text.into_bytes());
        }
        "trailers" => {
            let mut trailers = http::HeaderMap::new();
            trailers.insert("x-checksum", http::HeaderValue::from_static("abc123"));
            let frames: Vec<Result<Frame<Bytes>, BoxError>> = vec![
                Ok(Frame::data(Bytes::from_static(b"body with trailers\n"))),
                Ok(Frame::trailers(trailers)),
            ];
            let body = http_body_util::StreamBody::new(futures_util::stream::iter(frames));
            return Response::new(body.boxed_unsync());
        }
        "status" => {
            let code = rest
                .parse::<u16>()
                .ok()
                .and_then(|c| StatusCode::from_u16(c).ok());
            let code = code.unwrap_or(StatusCode::BAD_REQUEST);
            return full(
                code,
                "text/plain",
                format!("origin answered {code}\n").into_bytes(),
            );
        }
        _ => {}
    }
    if let Some(answer) = sumdb_route(&path, tree) {
        return answer;
    }
    if let Some(want) = &tree.authorization {
        let sent = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        if sent != Some(want.as_bytes()) {
            let mut resp = full(
                StatusCode::UNAUTHORIZED,
                "text/plain; charset=utf-8",
                b"authentication required\n".to_vec(),
            );
            resp.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Basic realm=\"modules\""),
            );
            return resp;
        }
    }
    goproxy(&path, tree)
}

/// Checksum-database endpoints, direct or under `<prefix>/sumdb/<name>/`.
fn sumdb_route(path: &str, tree: &ModuleTree) -> Option<Response<OriginBody>> {
    let db = tree.sumdb.as_ref()?;
    let proxied = path
        .strip_prefix(tree.prefix.as_str())
        .and_then(|p| p.strip_prefix("/sumdb/"))
        .and_then(|p| p.strip_prefix(db.name()));
    let text = "text/plain; charset=utf-8";
    let endpoint = match proxied {
        Some(rest) if !tree.sumdb_via_proxy => {
            return Some(full(
                StatusCode::NOT_FOUND,
                text,
                format!("this proxy does not serve the checksum database: {rest}\n").into_bytes(),
            ))
        }
        Some(rest) => rest,
        None => path,
    };
    let missing = || {
        full(
            StatusCode::NOT_FOUND,
            text,
            format!("not found: {endpoint}\n").into_bytes(),
        )
    };
    if endpoint == "/supported" {
        return Some(full(StatusCode::OK, text, Vec::new()));
    }
    if endpoint == "/latest" {
        return Some(full(StatusCode::OK, text, db.latest().to_vec()));
    }
    if let Some(key) = endpoint.strip_prefix("/lookup/") {
        let found = key.rsplit_once('@').and_then(|(m, v)| {
            let m = crate::gomod::unescape_path(m).ok()?;
            let v = crate::gomod::unescape_version(v).ok()?;
            db.lookup(&format!("{m}@{v}"))
        });
        return Some(match found {
            Some(body) => full(StatusCode::OK, text, body),
            None => missing(),
        });
    }
    if let Some(tile) = endpoint.strip_prefix("/tile/") {
        return Some(match db.tile(tile) {
            Some(body) => full(StatusCode::OK, "application/octet-stream", body),
            None => missing(),
        });
    }
    None
}

fn goproxy(path: &str, tree: &ModuleTree) -> Response<OriginBody> {
    let not_found = |what: &str| {
        full(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            format!("not found: {what}\n").into_bytes(),
        )
    };
    let Some(path) = path.strip_prefix(tree.prefix.as_str()) else {
        return not_found(path);
    };
    let path = path.trim_start_matches('/');
    if let Some(module) = path.strip_suffix("/@latest") {
        return match tree
            .by_path
            .get(module)
            .and_then(|v| v.iter().max_by(|a, b| a.version.cmp(&b.version)))
        {
            Some(m) => full(
                StatusCode::OK,
                "application/json",
                m.info_json().into_bytes(),
            ),
            None => not_found(&format!("module {module}: no matching versions")),
        };
    }
    let Some((module, file)) = path.split_once("/@v/") else {
        return not_found(path);
    };
    if file == "list" {
        return match tree.by_path.get(module) {
            Some(versions) => {
                let list: String = versions
                    .iter()
                    .map(|m| format!("{}\n", m.version))
                    .collect();
                full(
                    StatusCode::OK,
                    "text/plain; charset=utf-8",
                    list.into_bytes(),
                )
            }
            None => not_found(&format!("module {module}: no matching versions")),
        };
    }
    let Some((version, ext)) = file.rsplit_once('.') else {
        return not_found(path);
    };
    let Some(m) = tree.version(module, version) else {
        return not_found(&format!("{module}@{version}: unknown revision"));
    };
    match ext {
        "info" => full(
            StatusCode::OK,
            "application/json",
            m.info_json().into_bytes(),
        ),
        "mod" => full(
            StatusCode::OK,
            "text/plain; charset=utf-8",
            m.go_mod().to_vec(),
        ),
        "zip" => full(
            StatusCode::OK,
            "application/zip",
            if tree.deflate_zips {
                m.zip_deflated()
            } else {
                m.zip()
            },
        ),
        _ => not_found(path),
    }
}

/// The decoded body of the origin's `gzip/N` route.
pub fn gzip_text(lines: usize) -> Vec<u8> {
    (1..=lines)
        .map(|i| format!("line {i} of a gzip-encoded body\n"))
        .collect::<String>()
        .into_bytes()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = e.write_all(data);
    e.finish().unwrap_or_default()
}

fn full(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<OriginBody> {
    let mut resp = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *resp.status_mut() = status;
    if let Ok(v) = http::HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    resp
}

fn stream_response(n: u64, with_length: bool, declared: Option<u64>) -> Response<OriginBody> {
    let body = PatternBody {
        remaining: n,
        fail_at_end: declared.is_some(),
        exact: with_length && declared.is_none(),
        fail_delay: None,
    };
    let mut resp = Response::new(body.boxed_unsync());
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/octet-stream"),
    );
    if let Some(declared) = declared {
        resp.headers_mut().insert(
            http::header::CONTENT_LENGTH,
            http::HeaderValue::from(declared),
        );
    }
    resp
}

/// Deterministic bytes (`i % 251`) generated on the fly in 64 KiB frames.
pub fn pattern_byte(offset: u64) -> u8 {
    (offset % 251) as u8
}

fn pattern_chunk() -> &'static Bytes {
    static CHUNK: std::sync::OnceLock<Bytes> = std::sync::OnceLock::new();
    // 251 * 261 = 65511: a whole number of periods keeps every frame aligned to the pattern.
    CHUNK.get_or_init(|| Bytes::from((0..251u64 * 261).map(pattern_byte).collect::<Vec<u8>>()))
}

struct PatternBody {
    remaining: u64,
    exact: bool,
    fail_at_end: bool,
    /// A pause before failing, so what was sent is flushed to the client first.
    fail_delay: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Body for PatternBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.remaining == 0 {
            if self.fail_at_end {
                let delay = self.fail_delay.get_or_insert_with(|| {
                    Box::pin(tokio::time::sleep(std::time::Duration::from_millis(50)))
                });
                if delay.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.fail_at_end = false;
                return Poll::Ready(Some(Err("origin cut the body on purpose".into())));
            }
            return Poll::Ready(None);
        }
        let chunk = pattern_chunk();
        let n = (chunk.len() as u64).min(self.remaining) as usize;
        self.remaining -= n as u64;
        Poll::Ready(Some(Ok(Frame::data(chunk.slice(..n)))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0 && !self.fail_at_end
    }

    fn size_hint(&self) -> SizeHint {
        if self.exact {
            SizeHint::with_exact(self.remaining)
        } else {
            SizeHint::default()
        }
    }
}
