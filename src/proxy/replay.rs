//! Serving from a recorded trace: the "upstream" of replay mode. Bodies stored as files are
//! verified against their SHA-256 in one pass and streamed in a second, so memory does not
//! grow with body size and a corrupt file is never served.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use tokio::io::AsyncReadExt;

use super::{BoxError, ProxyBody};
use crate::replay::{OnMiss, ReplayIndex, ReplayReport, ReplayTiming, RequestKey};
use crate::trace::{entry_body, Content, Entry, LoadedTrace, TraceError};

/// A loaded trace being served.
pub struct ReplaySource {
    pub trace: LoadedTrace,
    index: Mutex<ReplayIndex>,
    pub on_miss: OnMiss,
    pub timing: ReplayTiming,
    pub ignore_query: Vec<String>,
    /// Entries that cannot be matched (reported at load).
    pub unusable: Vec<usize>,
}

impl ReplaySource {
    pub fn new(
        trace: LoadedTrace,
        on_miss: OnMiss,
        timing: ReplayTiming,
        ignore_query: Vec<String>,
    ) -> Self {
        let (index, unusable) = ReplayIndex::build(
            trace
                .entries
                .iter()
                .map(|e| (e.request.method.as_str(), e.request.url.as_str())),
            &ignore_query,
        );
        ReplaySource {
            trace,
            index: Mutex::new(index),
            on_miss,
            timing,
            ignore_query,
            unusable,
        }
    }

    /// The entry answering this request now, if the trace has one.
    pub fn lookup(&self, method: &str, url: &str) -> Option<&Entry> {
        let key = RequestKey::from_url(method, url, &self.ignore_query)?;
        let i = self
            .index
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .lookup(&key)?;
        self.trace.entries.get(i)
    }

    pub fn report(&self) -> ReplayReport {
        self.index
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .report()
    }
}

/// The recorded response head of an entry, ready to send (framing headers dropped: the
/// body decides them).
pub fn response_head(entry: &Entry) -> Response<()> {
    let mut resp = Response::new(());
    *resp.status_mut() =
        StatusCode::from_u16(entry.response.status).unwrap_or(StatusCode::BAD_GATEWAY);
    for h in &entry.response.headers {
        let name = h.name.to_ascii_lowercase();
        if matches!(
            name.as_str(),
            "content-length"
                | "transfer-encoding"
                | "connection"
                | "keep-alive"
                | "proxy-connection"
                | "upgrade"
        ) || name.starts_with(':')
        {
            continue;
        }
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&h.value),
        ) {
            resp.headers_mut().append(k, v);
        }
    }
    resp
}

/// The recorded body of an entry as a streaming body (verified first).
pub async fn body(trace: &LoadedTrace, content: &Content) -> Result<(ProxyBody, u64), TraceError> {
    // Stored bodies (in the trace's `bodies/` or spilled from a big HAR) are streamed;
    // embedded (text or base64) or empty ones are already in memory with the entry.
    let Some((root, sha)) = trace.stored_body(content) else {
        let bytes = Bytes::from(entry_body(trace, content)?);
        let len = bytes.len() as u64;
        return Ok((Full::new(bytes).map_err(|n| match n {}).boxed_unsync(), len));
    };
    // Body files live at bodies/<sha256>; the name is the checksum, so it is the path.
    let path: PathBuf = root.join(crate::trace::BODIES_DIR).join(&sha);
    // Pass 1: hash the file without keeping it.
    let len = tokio::task::spawn_blocking(move || -> Result<u64, TraceError> {
        let mut reader = crate::trace::open_verified(&root, &sha)?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        loop {
            let n = reader.read(&mut buf).map_err(|source| TraceError::Io {
                path: reader.path().to_path_buf(),
                source,
            })?;
            if n == 0 {
                return Ok(total);
            }
            total += n as u64;
        }
    })
    .await
    .map_err(|e| TraceError::Io {
        path: path.clone(),
        source: std::io::Error::other(e.to_string()),
    })??;
    // Pass 2: stream it.
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|source| TraceError::Io {
            path: path.clone(),
            source,
        })?;
    let stream = futures_util::stream::unfold(file, |mut file| async move {
        let mut buf = vec![0u8; 64 * 1024];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(http_body::Frame::data(Bytes::from(buf))), file))
            }
            Err(e) => Some((Err(BoxError::from(e)), file)),
        }
    });
    Ok((StreamBody::new(stream).boxed_unsync(), len))
}

/// Milliseconds to wait before the head, and the pacing rate for the body, under `timing`.
pub fn pacing(timing: ReplayTiming, entry: &Entry, body_len: u64) -> (Duration, Option<u64>) {
    let wait = Duration::from_secs_f64(timing.apply(entry.timings.wait) / 1000.0);
    let receive_ms = timing.apply(entry.timings.receive);
    let rate = (receive_ms >= 1.0 && body_len > 0)
        .then(|| ((body_len as f64) / (receive_ms / 1000.0)).max(1.0) as u64);
    (wait, rate)
}

/// The text/plain answer for a miss.
pub fn miss_text(
    on_miss: OnMiss,
    method: &str,
    url: &str,
    source: &std::path::Path,
) -> (StatusCode, String) {
    let status = match on_miss {
        OnMiss::BadGateway => StatusCode::BAD_GATEWAY,
        _ => StatusCode::NOT_FOUND,
    };
    (
        status,
        format!(
            "modscope replay: no recorded response for {method} {url} in {} (offline replay; record it with --on-miss record)",
            source.display()
        ),
    )
}
