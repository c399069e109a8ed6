//! The one error type of the trace module; every variant names the file (and line) involved.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

/// Why reading or writing a trace failed.
///
/// Paths are kept as given so a message can be pasted into a shell; `line` numbers are
/// 1-based, as editors count them.
#[derive(Debug, Error)]
pub enum TraceError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("{}{}: invalid JSON: {source}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Json {
        path: PathBuf,
        line: Option<usize>,
        #[source]
        source: serde_json::Error,
    },

    #[error("{}: not a HAR file: expected a JSON object with `log.entries` (an array), found {found}", path.display())]
    NotHar { path: PathBuf, found: String },

    #[error("{}: not a trace: expected a trace directory (with trace.har or journal.jsonl), a .har file or a .jsonl journal", path.display())]
    NotATrace { path: PathBuf },

    #[error("body file {} is missing (expected content with sha256 {sha256})", path.display())]
    BodyMissing { path: PathBuf, sha256: String },

    #[error("body file {} is corrupt: its sha256 is {actual}, the trace expects {expected}", path.display())]
    BodyCorrupt {
        path: PathBuf,
        expected: String,
        actual: String,
    },

    #[error("{}: invalid body reference {value:?}: {reason}", trace.display())]
    BadBodyRef {
        trace: PathBuf,
        value: String,
        reason: String,
    },

    #[error("{}: embedded base64 body is invalid: {source}", trace.display())]
    BadBase64 {
        trace: PathBuf,
        #[source]
        source: base64::DecodeError,
    },

    #[error("{}: embedded body does not match its _sha256: content hashes to {actual}, the trace expects {expected}", trace.display())]
    EmbeddedMismatch {
        trace: PathBuf,
        expected: String,
        actual: String,
    },

    #[error("{}: body of {size} bytes was not recorded (no text, _file or _sha256)", trace.display())]
    BodyNotRecorded { trace: PathBuf, size: i64 },

    #[error("{}: cannot serialise the trace: {source}", path.display())]
    Serialize {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

impl TraceError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        TraceError::Io {
            path: path.into(),
            source,
        }
    }
}
