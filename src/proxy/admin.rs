//! The control API (`--admin`, loopback only): JSON over HTTP so test suites can change
//! fault rules and read counters while the proxy runs. Every request must carry the
//! per-run bearer token and come from the API's own loopback origin (see [`check_access`]).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::{ProxyBody, Shared};
use crate::fault::{parse_json_rule, parse_json_rules, parse_spec, parse_toml, FaultEngine, Rule};

const MAX_BODY: usize = 1024 * 1024;

/// Who may use the control API: requests addressed to `addr` carrying `token`.
#[derive(Debug, Clone)]
pub struct AdminAccess {
    pub addr: SocketAddr,
    pub token: String,
}

impl AdminAccess {
    /// A fresh random token (32 bytes, hex) for the API listening on `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        AdminAccess {
            addr,
            token: crate::tls::random_hex(32),
        }
    }
}

pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    access: AdminAccess,
    token_file: Option<std::path::PathBuf>,
    mut stop: watch::Receiver<bool>,
) {
    let access = Arc::new(access);
    loop {
        let (tcp, _) = tokio::select! {
            a = listener.accept() => match a { Ok(a) => a, Err(_) => continue },
            _ = stop.wait_for(|s| *s) => {
                if let Some(path) = &token_file {
                    let _ = std::fs::remove_file(path);
                }
                return;
            }
        };
        let shared = shared.clone();
        let access = access.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let shared = shared.clone();
                let access = access.clone();
                async move {
                    let answer = match check_access(req.method(), req.headers(), &access) {
                        Ok(()) => route(req, &shared).await,
                        Err(Refusal::Options) => options_answer(),
                        Err(refusal) => {
                            let (status, message) = refusal.answer();
                            error(status, message)
                        }
                    };
                    Ok::<_, Infallible>(answer)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}

/// Writes the token to `path` (mode 0600) so scripts that did not read the start-up line
/// can find it; removed again when the API stops.
pub fn write_token_file(path: &std::path::Path, token: &str) -> Result<(), crate::ca::CaError> {
    crate::ca::write_atomic(path, format!("{token}\n").as_bytes(), 0o600)
}

pub async fn bind(addr: SocketAddr) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

fn json(status: StatusCode, value: serde_json::Value) -> Response<ProxyBody> {
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    answer(
        status,
        Bytes::from(text),
        http::header::CONTENT_TYPE,
        "application/json",
    )
}

/// A response with one header (the content type, or `Allow` for `OPTIONS`).
fn answer(
    status: StatusCode,
    body: Bytes,
    name: http::header::HeaderName,
    value: &'static str,
) -> Response<ProxyBody> {
    let mut resp = Response::new(Full::new(body).map_err(|n| match n {}).boxed_unsync());
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(name, http::HeaderValue::from_static(value));
    resp
}

fn error(status: StatusCode, message: impl std::fmt::Display) -> Response<ProxyBody> {
    json(status, serde_json::json!({ "error": message.to_string() }))
}

/// Why a control API request is refused before it is routed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// `Host` is not the API's own address (DNS rebinding).
    Host(String),
    /// `Origin` is a web page other than the API itself.
    Origin(String),
    /// A CORS preflight or other `OPTIONS`: answered, but without any grant.
    Options,
    /// The bearer token is missing or wrong.
    Token,
    /// A body whose type a browser may send cross-site without a preflight.
    ContentType(String),
}

impl Refusal {
    pub fn answer(&self) -> (StatusCode, String) {
        match self {
            Refusal::Host(h) => (
                StatusCode::MISDIRECTED_REQUEST,
                format!("modscope control API: Host {h:?} is not this API's loopback address"),
            ),
            Refusal::Origin(o) => (
                StatusCode::FORBIDDEN,
                format!("modscope control API: requests from the web origin {o:?} are refused"),
            ),
            Refusal::Options => (StatusCode::NO_CONTENT, String::new()),
            Refusal::Token => (
                StatusCode::UNAUTHORIZED,
                "modscope control API: send the token printed at start-up as 'Authorization: Bearer TOKEN'".to_string(),
            ),
            Refusal::ContentType(t) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("modscope control API: a body must be sent as application/json (or application/toml for PUT /faults), not {t:?}"),
            ),
        }
    }
}

/// PURE: whether a request may reach the routes. A web page can make a browser send
/// requests to loopback, so: the Host must name the listening address (a rebinding page
/// has its own name there), an `Origin` must be the API's own, a body must have a type a
/// browser cannot send cross-site without a preflight (which gets no CORS grant), and the
/// per-run token must be present (a page cannot know it).
pub fn check_access(
    method: &Method,
    headers: &http::HeaderMap,
    access: &AdminAccess,
) -> Result<(), Refusal> {
    let text = |name: http::header::HeaderName| {
        headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let own = own_authorities(access.addr);
    let host = text(http::header::HOST).unwrap_or_default();
    if !own.iter().any(|a| a.eq_ignore_ascii_case(host.trim())) {
        return Err(Refusal::Host(host));
    }
    if let Some(origin) = text(http::header::ORIGIN) {
        let allowed = own
            .iter()
            .any(|a| origin.trim().eq_ignore_ascii_case(&format!("http://{a}")));
        if !allowed {
            return Err(Refusal::Origin(origin));
        }
    }
    if method == Method::OPTIONS {
        return Err(Refusal::Options);
    }
    let presented = text(http::header::AUTHORIZATION).unwrap_or_default();
    let presented = presented
        .trim()
        .strip_prefix("Bearer ")
        .or_else(|| presented.trim().strip_prefix("bearer "))
        .unwrap_or("")
        .trim();
    if !same_secret(presented.as_bytes(), access.token.as_bytes()) {
        return Err(Refusal::Token);
    }
    let has_body = headers
        .get(http::header::CONTENT_LENGTH)
        .is_some_and(|v| v.as_bytes() != b"0")
        || headers.contains_key(http::header::TRANSFER_ENCODING);
    if has_body {
        let content_type = text(http::header::CONTENT_TYPE).unwrap_or_default();
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let toml_put = method == Method::PUT && essence == "application/toml";
        if essence != "application/json" && !toml_put {
            return Err(Refusal::ContentType(content_type));
        }
    }
    Ok(())
}

/// `Host` values that name the API: its IP and port, and `localhost` with the port.
fn own_authorities(addr: SocketAddr) -> [String; 2] {
    [addr.to_string(), format!("localhost:{}", addr.port())]
}

/// Compares without stopping at the first difference, so timing says nothing about the token.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `OPTIONS` (a CORS preflight): the methods, and no `Access-Control-Allow-*` header, so a
/// browser refuses to send the real cross-site request.
fn options_answer() -> Response<ProxyBody> {
    answer(
        StatusCode::NO_CONTENT,
        Bytes::new(),
        http::header::ALLOW,
        "GET, PUT, POST, DELETE",
    )
}

fn rules_doc(engine: &FaultEngine) -> serde_json::Value {
    serde_json::json!({ "seed": engine.seed(), "rules": engine.rules() })
}

async fn route(req: Request<Incoming>, shared: &Shared) -> Response<ProxyBody> {
    let method = req.method().clone();
    let path = req.uri().path().trim_end_matches('/').to_string();
    let content_type = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("cannot read the body: {e}"),
            )
        }
    };
    let text = String::from_utf8_lossy(&body).into_owned();
    let mut engine = shared.faults.lock().unwrap_or_else(|p| p.into_inner());
    match (method, path.as_str()) {
        (Method::GET, "/healthz") => json(StatusCode::OK, serde_json::json!({ "ok": true })),
        (Method::GET, "/faults") => json(StatusCode::OK, rules_doc(&engine)),
        (Method::PUT, "/faults") => match parse_rule_list(&text, &content_type) {
            Ok(rules) => match engine.replace_rules(rules) {
                Ok(()) => json(StatusCode::OK, rules_doc(&engine)),
                Err(e) => error(StatusCode::BAD_REQUEST, e),
            },
            Err(e) => error(StatusCode::BAD_REQUEST, e),
        },
        (Method::POST, "/faults") => {
            // A JSON object is a rule; a JSON string is an inline spec (`"kind=zip:503"`).
            let rule = match serde_json::from_str::<String>(&text) {
                Ok(spec) => parse_spec(spec.trim()).map_err(|e| e.to_string()),
                Err(_) => parse_json_rule(&text).map_err(|e| e.to_string()),
            };
            match rule.and_then(|r| engine.add_rule(r).map_err(|e| e.to_string())) {
                Ok(name) => json(StatusCode::CREATED, serde_json::json!({ "name": name })),
                Err(e) => error(StatusCode::BAD_REQUEST, e),
            }
        }
        (Method::DELETE, p) if p.starts_with("/faults/") => {
            let name = &p["/faults/".len()..];
            match engine.remove_rule(name) {
                Ok(_) => json(StatusCode::OK, serde_json::json!({ "removed": name })),
                Err(e) => error(StatusCode::NOT_FOUND, e),
            }
        }
        (Method::POST, "/reset") => {
            let _ = engine.replace_rules(Vec::new());
            engine.reset();
            shared.stats.reset();
            json(StatusCode::OK, serde_json::json!({ "reset": true }))
        }
        (Method::GET, "/stats") => json(
            StatusCode::OK,
            serde_json::json!({ "traffic": shared.stats.snapshot(), "faults": engine.stats() }),
        ),
        (m, p) => error(
            StatusCode::NOT_FOUND,
            format!("no route {m} {p}; see GET/PUT/POST /faults, DELETE /faults/NAME, POST /reset, GET /stats, GET /healthz"),
        ),
    }
}

/// A rule list as JSON (array or `{"rules": [...]}`) or TOML (`[[rule]]` tables).
fn parse_rule_list(text: &str, content_type: &str) -> Result<Vec<Rule>, String> {
    let looks_json = content_type.contains("json")
        || (!content_type.contains("toml") && text.trim_start().starts_with(['[', '{']));
    if looks_json {
        parse_json_rules(text).map_err(|e| e.to_string())
    } else {
        parse_toml(text, "request body")
            .map(|f| f.rules)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access() -> AdminAccess {
        AdminAccess {
            addr: "127.0.0.1:9090".parse().unwrap(),
            token: "t0ken".into(),
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (n, v) in pairs {
            h.append(*n, http::HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn only_the_apis_own_loopback_origin_with_the_token_gets_through() {
        let ok_host = ("host", "127.0.0.1:9090");
        let bearer = ("authorization", "Bearer t0ken");
        let json = ("content-type", "application/json");
        let body = ("content-length", "2");
        type Case<'a> = (Method, Vec<(&'static str, &'a str)>, Result<(), Refusal>);
        let table: Vec<Case> = vec![
            (Method::GET, vec![ok_host, bearer], Ok(())),
            (
                Method::GET,
                vec![("host", "localhost:9090"), bearer],
                Ok(()),
            ),
            (
                Method::GET,
                vec![ok_host, ("origin", "http://127.0.0.1:9090"), bearer],
                Ok(()),
            ),
            (Method::POST, vec![ok_host, bearer, json, body], Ok(())),
            (
                Method::POST,
                vec![
                    ok_host,
                    bearer,
                    ("content-type", "application/json; charset=utf-8"),
                    body,
                ],
                Ok(()),
            ),
            (
                Method::PUT,
                vec![ok_host, bearer, ("content-type", "application/toml"), body],
                Ok(()),
            ),
            (
                Method::POST,
                vec![ok_host, bearer, ("content-length", "0")],
                Ok(()),
            ),
            // DNS rebinding: the page's own name, or the right name on another port.
            (
                Method::GET,
                vec![("host", "evil.example:9090"), bearer],
                Err(Refusal::Host("evil.example:9090".into())),
            ),
            (
                Method::GET,
                vec![("host", "127.0.0.1:8080"), bearer],
                Err(Refusal::Host("127.0.0.1:8080".into())),
            ),
            (Method::GET, vec![bearer], Err(Refusal::Host(String::new()))),
            // A cross-site page, or a sandboxed one.
            (
                Method::POST,
                vec![
                    ok_host,
                    ("origin", "https://evil.example"),
                    bearer,
                    json,
                    body,
                ],
                Err(Refusal::Origin("https://evil.example".into())),
            ),
            (
                Method::GET,
                vec![ok_host, ("origin", "null"), bearer],
                Err(Refusal::Origin("null".into())),
            ),
            // Preflight: answered without a grant, even without the token.
            (Method::OPTIONS, vec![ok_host], Err(Refusal::Options)),
            (Method::GET, vec![ok_host], Err(Refusal::Token)),
            (
                Method::GET,
                vec![ok_host, ("authorization", "Bearer wrong")],
                Err(Refusal::Token),
            ),
            (
                Method::GET,
                vec![ok_host, ("authorization", "t0ken")],
                Err(Refusal::Token),
            ),
            // Simple cross-site body types, and TOML where only JSON is taken.
            (
                Method::POST,
                vec![ok_host, bearer, ("content-type", "text/plain"), body],
                Err(Refusal::ContentType("text/plain".into())),
            ),
            (
                Method::POST,
                vec![
                    ok_host,
                    bearer,
                    ("content-type", "application/x-www-form-urlencoded"),
                    body,
                ],
                Err(Refusal::ContentType(
                    "application/x-www-form-urlencoded".into(),
                )),
            ),
            (
                Method::POST,
                vec![ok_host, bearer, body],
                Err(Refusal::ContentType(String::new())),
            ),
            (
                Method::POST,
                vec![ok_host, bearer, ("content-type", "application/toml"), body],
                Err(Refusal::ContentType("application/toml".into())),
            ),
        ];
        for (method, pairs, want) in table {
            let got = check_access(&method, &headers(&pairs), &access());
            assert_eq!(got, want, "{method} {pairs:?}");
        }
    }

    #[test]
    fn ipv6_authority_and_fresh_tokens() {
        let a = AdminAccess::new("[::1]:7000".parse().unwrap());
        let b = AdminAccess::new("[::1]:7000".parse().unwrap());
        assert_eq!(a.token.len(), 64);
        assert_ne!(a.token, b.token);
        let bearer = format!("Bearer {}", a.token);
        let h = headers(&[("host", "[::1]:7000"), ("authorization", &bearer)]);
        assert_eq!(check_access(&Method::GET, &h, &a), Ok(()));
    }
}
