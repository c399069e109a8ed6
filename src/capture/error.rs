//! The error type of capture import; every variant names the file (and offset) involved.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

use crate::trace::TraceError;

/// Why a capture could not be imported. A capture that is merely cut short is not an
/// error: what was read is imported and [`super::ImportReport::warnings`] says where it ends.
#[derive(Debug, Error)]
pub enum CaptureError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("{}: empty file, expected a pcap or pcapng capture", path.display())]
    Empty { path: PathBuf },

    #[error(
        "{}: not a pcap or pcapng file: bad magic 0x{magic}{hint} (expected a pcap file starting \
         with a1b2c3d4 or a1b23c4d in either byte order, or a pcapng file starting with 0a0d0d0a)",
        path.display()
    )]
    NotCapture {
        path: PathBuf,
        /// The first bytes of the file, as hex in file order.
        magic: String,
        /// `" (looks like text: ...)"` when the file starts with printable text.
        hint: String,
    },

    #[error("{}: unreadable capture header at byte {offset}: {detail}", path.display())]
    BadHeader {
        path: PathBuf,
        offset: u64,
        detail: String,
    },

    #[error("{}: already holds a trace (journal.jsonl is not empty); import into a new or empty directory", dir.display())]
    OutputNotEmpty { dir: PathBuf },

    #[error(transparent)]
    Trace(#[from] TraceError),
}

impl CaptureError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        CaptureError::Io {
            path: path.into(),
            source,
        }
    }
}
