//! Trace files: the HAR 1.2 model, entry building, the journal, the body store and the reader.
//!
//! Layout of a trace directory (see `docs/trace-format.md`):
//! `journal.jsonl` (one entry per line, appended as exchanges end), `trace.har`
//! (written atomically at clean shutdown, rebuildable from the journal) and
//! `bodies/<sha256>` (bodies streamed to disk, deduplicated by content).

pub mod bodies;
pub mod build;
pub mod content;
pub mod error;
pub mod har;
mod harstream;
pub mod journal;
pub mod reader;
pub mod spill;
pub mod tempfiles;
pub(crate) mod urlparts;
pub mod validate;

#[cfg(test)]
pub(crate) mod testutil;

pub use bodies::{
    looks_like_text, open_verified, read_verified, BodySink, BodyStore, StoredBody, EMBED_LIMIT,
    HEAD_LIMIT,
};
pub use build::{
    build_entry, format_started, har_timings, BodyContent, BuildOptions, EntryBodies, REDACTED,
};
pub use content::{Coding, Plan, SizeMismatch, Source as BodySource};
pub use error::TraceError;
pub use har::{
    Cache, Content, Cookie, Creator, Entry, Har, Header, Log, NameValue, PostData, PostParam,
    Request, Response, Timings,
};
pub use journal::{write_har_atomic, FinishReport, JournalWriter, Unrecorded};
pub use reader::{
    embedded_response, entry_body, load_trace, request_body, response_body, response_file,
    response_plan, LoadProblem, LoadedTrace,
};
pub use urlparts::{redact_url_list, redact_userinfo};
pub use validate::validate_har_1_2;

/// File names inside a trace directory.
pub const JOURNAL_FILE: &str = "journal.jsonl";
pub const HAR_FILE: &str = "trace.har";
pub const BODIES_DIR: &str = "bodies";
