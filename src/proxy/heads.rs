//! HTTP head helpers of the forwarding path: the request head limit, hop-by-hop header
//! stripping, header lists and version names for the trace, and the short text answers
//! modscope gives itself.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full};

use super::ProxyBody;

/// Largest request head (URI plus headers) modscope forwards.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// hyper bounds its read buffer, not the head itself (a head that arrives in one read can
/// exceed it), so the limit is enforced here as well.
pub fn reject_oversized_head<B>(req: &Request<B>) -> Option<Response<ProxyBody>> {
    let size: usize = req.uri().to_string().len()
        + req
            .headers()
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 4)
            .sum::<usize>();
    (size > MAX_HEAD_BYTES).then(|| {
        tracing::warn!("refused a request head of {size} bytes (limit {MAX_HEAD_BYTES})");
        text_response(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            &format!(
                "modscope: request head of {size} bytes exceeds the {MAX_HEAD_BYTES}-byte limit"
            ),
        )
    })
}

/// Connection-level headers that must not travel past a proxy (RFC 9110 §7.6.1).
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in [
        "connection",
        "proxy-connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "transfer-encoding",
        "upgrade",
    ] {
        headers.remove(name);
    }
    let keep_trailers = headers
        .get(http::header::TE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("trailers"))
        });
    headers.remove(http::header::TE);
    if keep_trailers {
        headers.insert(http::header::TE, HeaderValue::from_static("trailers"));
    }
}

pub fn header_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

pub fn version_name(v: Version) -> String {
    match v {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/?",
    }
    .to_string()
}

/// A short `text/plain` answer; go prints such bodies as "server response".
pub fn text_response(status: StatusCode, text: &str) -> Response<ProxyBody> {
    let mut body = text.trim_end().to_string();
    body.push('\n');
    let mut resp = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp.headers_mut().insert(
        HeaderName::from_static("x-modscope"),
        HeaderValue::from_static("1"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_are_removed() {
        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("proxy-authorization", HeaderValue::from_static("Basic x"));
        h.insert("te", HeaderValue::from_static("gzip, trailers"));
        h.insert("accept", HeaderValue::from_static("*/*"));
        strip_hop_by_hop(&mut h);
        let names: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["accept", "te"]);
        assert_eq!(h["te"], "trailers");
    }
}
