//! The control API (`--admin`, loopback only): JSON over HTTP so test suites can change
//! fault rules and read counters while the proxy runs.

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

pub async fn serve(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        let (tcp, _) = tokio::select! {
            a = listener.accept() => match a { Ok(a) => a, Err(_) => continue },
            _ = stop.wait_for(|s| *s) => return,
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(route(req, &shared).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}

pub async fn bind(addr: SocketAddr) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

fn json(status: StatusCode, value: serde_json::Value) -> Response<ProxyBody> {
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    let mut resp = Response::new(
        Full::new(Bytes::from(text))
            .map_err(|n| match n {})
            .boxed_unsync(),
    );
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

fn error(status: StatusCode, message: impl std::fmt::Display) -> Response<ProxyBody> {
    json(status, serde_json::json!({ "error": message.to_string() }))
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
            let rule = if text.trim_start().starts_with('{') {
                parse_json_rule(&text).map_err(|e| e.to_string())
            } else {
                parse_spec(text.trim()).map_err(|e| e.to_string())
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
    let looks_json = content_type.contains("json") || text.trim_start().starts_with(['[', '{']);
    if looks_json {
        parse_json_rules(text).map_err(|e| e.to_string())
    } else {
        parse_toml(text, "request body")
            .map(|f| f.rules)
            .map_err(|e| e.to_string())
    }
}
