//! Loads a trace (directory, `.har` or `.jsonl`) for summary, diagnosis and replay.
//!
//! Loading is forgiving per entry and strict per file: a torn journal line or a bad
//! entry becomes a [`LoadProblem`] naming file and line while everything else loads,
//! but a file that is not a trace at all is an error that says what was expected.

use std::fmt;
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::bodies::{check_sha, read_verified_path};
use super::content::{self, BodyFields, ContentError, Plan, Source};
use super::error::TraceError;
use super::har::{Content, Entry, Request};
use super::harstream::HarOutcome;
use super::journal::{Unrecorded, UNRECORDED_KEY};
use super::spill::{SpillStore, Spiller};
use super::urlparts;
use super::{BODIES_DIR, HAR_FILE, JOURNAL_FILE};
use crate::net::plural;

/// A trace in memory. Every entry has an absolute URL (entries with unusable URLs are
/// reported in `problems` and left out).
#[derive(Debug, Clone, Default)]
pub struct LoadedTrace {
    pub entries: Vec<Entry>,
    /// Parts that could not be loaded; the rest of the trace is still usable.
    pub problems: Vec<LoadProblem>,
    /// How the trace was loaded, e.g. "rebuilt from journal.jsonl: ...".
    pub notes: Vec<String>,
    /// Directory that `_file` body paths are relative to.
    pub root: PathBuf,
    /// The file the entries came from (`trace.har` or `journal.jsonl`).
    pub source: PathBuf,
    /// Exchanges the recorder could not write (a full disk): the trace has a gap.
    pub unrecorded: Unrecorded,
    /// Large embedded bodies of a HAR, moved out of memory while it loaded; their
    /// entries keep `_sha256` and no `text`. Shared by clones, removed with the last one.
    pub spill: Option<Arc<SpillStore>>,
}

impl LoadedTrace {
    /// Where the stored body of `content` can be streamed from: the directory whose
    /// `bodies/<sha256>` holds it, and the hash. None for an embedded or empty body.
    pub fn stored_body(&self, content: &Content) -> Option<(PathBuf, String)> {
        if content.text.is_some() {
            return None;
        }
        let sha = content.sha256.as_deref()?;
        if let Some(spill) = self.spill.as_ref().filter(|s| s.holds(sha)) {
            return Some((spill.root().to_path_buf(), sha.to_string()));
        }
        content
            .file
            .is_some()
            .then(|| (self.root.clone(), sha.to_string()))
    }
}

/// Something wrong in one place of a trace file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadProblem {
    pub file: PathBuf,
    /// 1-based line, when known (journal lines always have one).
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for LoadProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl LoadProblem {
    pub(crate) fn new(file: &Path, line: Option<usize>, message: impl Into<String>) -> Self {
        LoadProblem {
            file: file.to_path_buf(),
            line,
            message: message.into(),
        }
    }
}

/// Loads a trace directory, a HAR file or a journal.
///
/// For a directory, `trace.har` is used when it is at least as new as `journal.jsonl`
/// and holds at least as many entries; otherwise (the recorder was killed, or is still
/// running) the entries are rebuilt from the journal and `notes` says why.
pub fn load_trace(path: &Path) -> Result<LoadedTrace, TraceError> {
    let meta = fs::metadata(path).map_err(|e| TraceError::io(path, e))?;
    if meta.is_dir() {
        return load_dir(path);
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("jsonl") | Some("ndjson") => load_journal_file(path),
        _ => load_har_file(path).map(|(t, _)| t),
    }
}

fn load_dir(dir: &Path) -> Result<LoadedTrace, TraceError> {
    let har = dir.join(HAR_FILE);
    let journal = dir.join(JOURNAL_FILE);
    match (har.is_file(), journal.is_file()) {
        (false, false) => Err(TraceError::NotATrace {
            path: dir.to_path_buf(),
        }),
        (true, false) => load_har_file(&har).map(|(t, _)| t),
        (false, true) => {
            let mut t = load_journal_file(&journal)?;
            t.notes.push(format!(
                "no {HAR_FILE} (the recorder did not shut down cleanly, or is still running); \
                 {} rebuilt from {}",
                plural(t.entries.len(), "entry", "entries"),
                journal.display()
            ));
            Ok(t)
        }
        (true, true) => {
            let reason = match stale_reason(&har, &journal) {
                Some(reason) => reason,
                None => match load_har_file(&har) {
                    Ok((t, raw)) => {
                        let in_journal = count_journal_entries(&journal)?;
                        if raw >= in_journal {
                            return Ok(t);
                        }
                        format!("{HAR_FILE} has {raw} entries, {JOURNAL_FILE} has {in_journal}")
                    }
                    Err(e) => format!("{HAR_FILE} could not be read ({e})"),
                },
            };
            let mut t = load_journal_file(&journal)?;
            t.notes.push(format!(
                "{} rebuilt from {}: {reason}",
                plural(t.entries.len(), "entry", "entries"),
                journal.display()
            ));
            Ok(t)
        }
    }
}

/// `Some(reason)` when `trace.har` is older than the journal; unknown times do not count.
fn stale_reason(har: &Path, journal: &Path) -> Option<String> {
    let modified = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
    match (modified(har), modified(journal)) {
        (Some(h), Some(j)) if h < j => Some(format!("{HAR_FILE} is older than {JOURNAL_FILE}")),
        _ => None,
    }
}

/// Complete, well-formed journal lines, without building entries.
fn count_journal_entries(path: &Path) -> Result<usize, TraceError> {
    let file = File::open(path).map_err(|e| TraceError::io(path, e))?;
    let mut reader = BufReader::new(file);
    let mut buf = Vec::new();
    let mut n = 0;
    loop {
        buf.clear();
        let read = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| TraceError::io(path, e))?;
        if read == 0 {
            return Ok(n);
        }
        let line = buf.trim_ascii();
        if !line.is_empty()
            && unrecorded_line(line).is_none()
            && serde_json::from_slice::<serde::de::IgnoredAny>(line).is_ok()
        {
            n += 1;
        }
    }
}

fn root_of(file: &Path) -> PathBuf {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Loads one journal; each line is parsed on its own so one bad line costs one entry.
pub(crate) fn load_journal_file(path: &Path) -> Result<LoadedTrace, TraceError> {
    let mut trace = LoadedTrace {
        root: root_of(path),
        source: path.to_path_buf(),
        ..LoadedTrace::default()
    };
    let mut spiller = Spiller::default();
    let scan = scan_journal(path, |_, _, mut entry| {
        // Journals written with --embed-bodies hold whole bodies too.
        spiller.entry(&mut trace, &mut entry);
        trace.entries.push(entry);
    })?;
    trace.problems = scan.problems;
    trace.unrecorded = scan.unrecorded;
    Ok(trace)
}

/// What [`scan_journal`] found besides the entries.
#[derive(Debug, Default)]
pub(crate) struct JournalScan {
    pub problems: Vec<LoadProblem>,
    /// The gap records of the journal, summed.
    pub unrecorded: Unrecorded,
}

/// A gap record line: `{"_unrecorded": {...}}`, told apart from an entry by its first key.
fn unrecorded_line(line: &[u8]) -> Option<Result<Unrecorded, serde_json::Error>> {
    #[derive(serde::Deserialize)]
    struct Line {
        #[serde(rename = "_unrecorded")]
        unrecorded: Unrecorded,
    }
    let rest = line.strip_prefix(b"{")?.trim_ascii_start();
    let key = format!("\"{UNRECORDED_KEY}\"");
    rest.starts_with(key.as_bytes())
        .then(|| serde_json::from_slice::<Line>(line).map(|l| l.unrecorded))
}

/// Reads a journal line by line, handing each usable entry to `visit` with the byte
/// offset and length of its line, so callers can keep one entry in memory at a time.
/// Bad lines become problems naming the file and line; gap records are summed.
pub(crate) fn scan_journal(
    path: &Path,
    mut visit: impl FnMut(u64, usize, Entry),
) -> Result<JournalScan, TraceError> {
    let file = File::open(path).map_err(|e| TraceError::io(path, e))?;
    let mut reader = BufReader::new(file);
    let mut problems = Vec::new();
    let mut unrecorded = Unrecorded::default();
    let mut buf = Vec::new();
    let mut line_no = 0usize;
    let mut offset = 0u64;
    loop {
        buf.clear();
        let read = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| TraceError::io(path, e))?;
        if read == 0 {
            break;
        }
        let line_offset = offset;
        offset += read as u64;
        line_no += 1;
        let terminated = buf.last() == Some(&b'\n');
        let line = buf.trim_ascii();
        if line.is_empty() {
            continue;
        }
        match unrecorded_line(line) {
            Some(Ok(gap)) => {
                unrecorded.add(&gap);
                continue;
            }
            Some(Err(e)) => {
                problems.push(LoadProblem::new(
                    path,
                    Some(line_no),
                    format!("invalid {UNRECORDED_KEY} record, skipped: {e}"),
                ));
                continue;
            }
            None => {}
        }
        match serde_json::from_slice::<Entry>(line) {
            Ok(entry) => match urlparts::problem(&entry.request.url) {
                None => visit(line_offset, read, entry),
                Some(reason) => problems.push(LoadProblem::new(
                    path,
                    Some(line_no),
                    format!(
                        "entry: invalid request URL {:?} ({reason}), skipped",
                        entry.request.url
                    ),
                )),
            },
            Err(e) => {
                let message = if !terminated && e.is_eof() {
                    format!(
                        "truncated entry at end of file (the recorder stopped mid-write), skipped: {e}"
                    )
                } else {
                    format!("invalid entry, skipped: {e}")
                };
                problems.push(LoadProblem::new(path, Some(line_no), message));
            }
        }
    }
    Ok(JournalScan {
        problems,
        unrecorded,
    })
}

pub(crate) fn push_checked(
    trace: &mut LoadedTrace,
    entry: Entry,
    file: &Path,
    line: Option<usize>,
    what: &str,
) {
    match urlparts::problem(&entry.request.url) {
        None => trace.entries.push(entry),
        Some(reason) => trace.problems.push(LoadProblem::new(
            file,
            line,
            format!(
                "{what}: invalid request URL {:?} ({reason}), skipped",
                entry.request.url
            ),
        )),
    }
}

/// Loads a HAR file, streaming its entries; also returns how many entries the file
/// holds, before skipping.
fn load_har_file(path: &Path) -> Result<(LoadedTrace, usize), TraceError> {
    let mut trace = LoadedTrace {
        root: root_of(path),
        source: path.to_path_buf(),
        ..LoadedTrace::default()
    };
    match super::harstream::load_har_into(path, &mut trace)? {
        HarOutcome::Har { raw } => Ok((trace, raw)),
        HarOutcome::Journal => {
            let mut t = load_journal_file(path)?;
            t.notes.push(format!(
                "{} holds one JSON entry per line; loaded it as a journal",
                path.display()
            ));
            let n = t.entries.len();
            Ok((t, n))
        }
    }
}

/// The bytes of a response body, rebuilt by [`content::plan`]: the stored file (checked
/// against `_sha256`) or the embedded `text` re-encoded as its producer wrote it. Decoded
/// text under a `Content-Encoding` comes back decoded (see [`response_plan`]).
pub fn entry_body(trace: &LoadedTrace, content: &Content) -> Result<Vec<u8>, TraceError> {
    resolve_body(trace, content_ref(content, None))
}

/// The bytes of an entry's response body, with the decision that produced them.
pub fn response_body(trace: &LoadedTrace, entry: &Entry) -> Result<(Vec<u8>, Plan), TraceError> {
    let r = response_ref(entry);
    let plan = plan_of(trace, &r)?;
    Ok((materialise(trace, &r, &plan)?, plan))
}

/// The wire bytes of a response body held in its entry (`text` or base64, as modscope
/// embeds small bodies), checked against `_sha256`. `None` for a body stored in a file,
/// an absent one, or decoded text that no longer is the wire bytes. No file is read.
pub fn embedded_response(entry: &Entry) -> Option<Vec<u8>> {
    let r = response_ref(entry);
    let plan = content::plan(&r.fields()).ok()?;
    let Source::Text { bytes, .. } = plan.source else {
        return None;
    };
    let matches = r
        .sha256
        .is_none_or(|want| hex::encode(Sha256::digest(&bytes)) == want);
    (!plan.drop_content_encoding && matches).then_some(bytes)
}

/// How an entry's response body will be rebuilt (no file is read).
pub fn response_plan(trace: &LoadedTrace, entry: &Entry) -> Result<Plan, TraceError> {
    plan_of(trace, &response_ref(entry))
}

fn response_ref(entry: &Entry) -> BodyRef<'_> {
    let ce = header_value(&entry.response.headers, "content-encoding");
    content_ref(&entry.response.content, ce)
}

fn header_value<'a>(headers: &'a [crate::trace::Header], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

fn content_ref<'a>(content: &'a Content, content_encoding: Option<&'a str>) -> BodyRef<'a> {
    BodyRef {
        text: content.text.as_deref(),
        encoding: content.encoding.as_deref(),
        file: content.file.as_deref(),
        sha256: content.sha256.as_deref(),
        size: content.size,
        compression: content.compression,
        content_encoding,
    }
}

/// The bytes of a request body, like [`entry_body`]; empty when the request had none.
pub fn request_body(trace: &LoadedTrace, request: &Request) -> Result<Vec<u8>, TraceError> {
    let size = request.body_size;
    let Some(post) = &request.post_data else {
        return match size {
            ..=0 => Ok(Vec::new()),
            _ => Err(TraceError::BodyNotRecorded {
                trace: trace.source.clone(),
                size,
            }),
        };
    };
    resolve_body(
        trace,
        BodyRef {
            text: post.text.as_deref(),
            encoding: post.encoding.as_deref(),
            file: post.file.as_deref(),
            sha256: post.sha256.as_deref(),
            size,
            compression: None,
            content_encoding: header_value(&request.headers, "content-encoding"),
        },
    )
}

struct BodyRef<'a> {
    text: Option<&'a str>,
    encoding: Option<&'a str>,
    file: Option<&'a str>,
    sha256: Option<&'a str>,
    size: i64,
    compression: Option<i64>,
    content_encoding: Option<&'a str>,
}

impl<'a> BodyRef<'a> {
    fn fields(&self) -> BodyFields<'a> {
        BodyFields {
            text: self.text,
            encoding: self.encoding,
            size: self.size,
            compression: self.compression,
            stored: self.file.is_some() || self.sha256.is_some(),
            content_encoding: self.content_encoding,
        }
    }
}

fn resolve_body(trace: &LoadedTrace, r: BodyRef<'_>) -> Result<Vec<u8>, TraceError> {
    let plan = plan_of(trace, &r)?;
    materialise(trace, &r, &plan)
}

fn plan_of(trace: &LoadedTrace, r: &BodyRef<'_>) -> Result<Plan, TraceError> {
    if let Some(sha) = r.sha256 {
        check_sha(sha).map_err(|reason| TraceError::BadBodyRef {
            trace: trace.source.clone(),
            value: sha.to_string(),
            reason: format!("_sha256: {reason}"),
        })?;
    }
    content::plan(&r.fields()).map_err(|e| match e {
        ContentError::Base64(source) => TraceError::BadBase64 {
            trace: trace.source.clone(),
            source,
        },
        ContentError::UnsupportedEncoding(enc) => TraceError::BadBodyRef {
            trace: trace.source.clone(),
            value: enc,
            reason: "unsupported encoding (only \"base64\" is defined)".to_string(),
        },
    })
}

/// Where the stored bytes of a body live: `_file` (a relative path inside the trace
/// directory), else `bodies/<_sha256>`; `None` when the entry names neither.
pub(crate) fn stored_path(
    trace: &LoadedTrace,
    file: Option<&str>,
    sha256: Option<&str>,
) -> Result<Option<PathBuf>, TraceError> {
    // A big embedded body moved out of memory at load lives in the spill store.
    if let Some(sha) = sha256 {
        if let Some(spill) = trace.spill.as_ref().filter(|s| s.holds(sha)) {
            return Ok(Some(spill.root().join(BODIES_DIR).join(sha)));
        }
    }
    match (file, sha256) {
        (Some(file), _) => {
            let rel = Path::new(file);
            let safe =
                !file.is_empty() && rel.components().all(|c| matches!(c, Component::Normal(_)));
            if !safe {
                return Err(TraceError::BadBodyRef {
                    trace: trace.source.clone(),
                    value: file.to_string(),
                    reason: "_file must be a relative path inside the trace directory".to_string(),
                });
            }
            Ok(Some(trace.root.join(rel)))
        }
        (None, Some(sha)) => Ok(Some(trace.root.join(BODIES_DIR).join(sha))),
        (None, None) => Ok(None),
    }
}

/// The stored file an entry's response body is served from, when its plan says so.
pub fn response_file(trace: &LoadedTrace, entry: &Entry) -> Result<Option<PathBuf>, TraceError> {
    let c = &entry.response.content;
    stored_path(trace, c.file.as_deref(), c.sha256.as_deref())
}

fn materialise(trace: &LoadedTrace, r: &BodyRef<'_>, plan: &Plan) -> Result<Vec<u8>, TraceError> {
    match &plan.source {
        Source::Empty => Ok(Vec::new()),
        Source::Missing => Err(TraceError::BodyNotRecorded {
            trace: trace.source.clone(),
            size: r.size,
        }),
        Source::Text { bytes, .. } => {
            // Decoded text cannot match the hash of the encoded wire bytes.
            if let (Some(expected), false) = (r.sha256, plan.drop_content_encoding) {
                let actual = hex::encode(Sha256::digest(bytes));
                if actual != expected {
                    return Err(TraceError::EmbeddedMismatch {
                        trace: trace.source.clone(),
                        expected: expected.to_string(),
                        actual,
                    });
                }
            }
            Ok(bytes.clone())
        }
        Source::Stored => {
            let Some(path) = stored_path(trace, r.file, r.sha256)? else {
                return Ok(Vec::new());
            };
            match r.sha256 {
                Some(sha) => read_verified_path(path, sha),
                // Foreign traces may reference files without a hash; nothing to check then.
                None => fs::read(&path).map_err(|e| TraceError::io(path, e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::TempDir;
    use crate::trace::bodies::BodyStore;
    use crate::trace::build::{build_entry, BodyContent, BuildOptions, EntryBodies};
    use crate::trace::journal::{write_har_atomic, JournalWriter};
    use crate::trace::testutil::sample_exchange;
    use base64::Engine as _;
    use serde_json::{json, Value};
    use std::io::Write;
    use std::time::{Duration, SystemTime};

    fn sha(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    fn entry_json(url: &str, content: Value) -> Value {
        json!({
            "startedDateTime": "2026-01-01T00:00:00.000Z",
            "time": 1.0,
            "request": {"method": "GET", "url": url, "httpVersion": "HTTP/1.1", "cookies": [],
                        "headers": [], "queryString": [], "headersSize": -1, "bodySize": 0},
            "response": {"status": 200, "statusText": "OK", "httpVersion": "HTTP/1.1", "cookies": [],
                         "headers": [], "content": content, "redirectURL": "", "headersSize": -1, "bodySize": -1},
            "cache": {},
            "timings": {"send": 0.0, "wait": 1.0, "receive": 0.0}
        })
    }

    fn har_json(version: &str, entries: Vec<Value>) -> Value {
        json!({"log": {"version": version, "creator": {"name": "hand", "version": "1"}, "entries": entries}})
    }

    fn write(path: &Path, v: &Value) {
        fs::write(path, serde_json::to_vec_pretty(v).expect("json")).expect("write");
    }

    fn sample_entry(id: u64) -> Entry {
        let mut ex = sample_exchange();
        ex.id = id;
        build_entry(&ex, None, &EntryBodies::default(), &BuildOptions::default())
    }

    #[test]
    fn hand_written_har_with_text_and_base64_bodies() {
        let dir = TempDir::new("reader-hand");
        let bin: Vec<u8> = (0..=255u8).rev().collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&bin);
        // Wrapped like MIME base64, as some tools write it.
        let wrapped = b64
            .as_bytes()
            .chunks(76)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join("\r\n");
        let har = har_json(
            "1.2",
            vec![
                entry_json(
                    "https://proxy.golang.org/m/@v/list",
                    json!({"size": 7, "mimeType": "text/plain", "text": "v1.0.0\n"}),
                ),
                entry_json(
                    "https://proxy.golang.org/m/@v/v1.0.0.zip",
                    json!({"size": 256, "mimeType": "application/zip", "text": wrapped, "encoding": "base64",
                           "_sha256": sha(&bin)}),
                ),
                entry_json(
                    "https://proxy.golang.org/m/@v/v1.0.0.info",
                    json!({"size": 0, "mimeType": "application/json"}),
                ),
            ],
        );
        let path = dir.path().join("hand.har");
        write(&path, &har);
        let t = load_trace(&path).expect("load");
        assert!(t.problems.is_empty(), "{:?}", t.problems);
        assert!(t.notes.is_empty());
        assert_eq!(t.root, dir.path());
        assert_eq!(t.entries.len(), 3);
        let body = |i: usize| entry_body(&t, &t.entries[i].response.content);
        assert_eq!(body(0).expect("text"), b"v1.0.0\n");
        assert_eq!(body(1).expect("base64"), bin);
        assert_eq!(body(2).expect("empty"), b"");
    }

    #[test]
    fn binary_body_round_trips_through_store_and_embedding() {
        let dir = TempDir::new("reader-roundtrip");
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7919 % 251) as u8).collect();
        let journal = JournalWriter::open(dir.path()).expect("journal");
        let store = BodyStore::new(dir.path()).expect("store");
        let mut sink = store.begin().expect("begin");
        for c in data.chunks(10_000) {
            sink.write(c).expect("write");
        }
        let stored = sink.finish().expect("finish");
        let mut ex = sample_exchange();
        if let Some(r) = ex.response.as_mut() {
            r.headers = vec![("content-type".into(), "application/zip".into())];
            r.body.size = stored.size;
            r.body.sha256 = Some(stored.sha256.clone());
        }
        for (id, embed) in [(1, false), (2, true)] {
            ex.id = id;
            let content = stored
                .content(&store, Some("application/zip"), None, embed)
                .expect("content");
            assert_eq!(content.text, None);
            let bodies = EntryBodies {
                request: BodyContent::default(),
                response: content,
            };
            journal
                .append(&build_entry(&ex, None, &bodies, &BuildOptions::default()))
                .expect("append");
        }
        journal.finish("test").expect("finish");
        let t = load_trace(dir.path()).expect("load");
        assert!(t.problems.is_empty() && t.notes.is_empty(), "{t:?}");
        assert_eq!(t.source, dir.path().join(HAR_FILE));
        assert_eq!(t.entries.len(), 2);
        for e in &t.entries {
            assert_eq!(entry_body(&t, &e.response.content).expect("body"), data);
        }
        // The embedded copy stands on its own once the bodies are gone (it is large, so
        // loading moved it to the spill store rather than keeping it in the entry).
        fs::remove_dir_all(dir.path().join(BODIES_DIR)).expect("rm bodies");
        let embedded = t.entries.iter().find(|e| e.id == Some(2)).expect("entry 2");
        assert!(embedded.response.content.text.is_none());
        assert!(t.spill.as_ref().is_some_and(|s| s.holds(&sha(&data))));
        // The journal alone (written with --embed-bodies) is spilled the same way.
        let j = load_trace(&dir.path().join(JOURNAL_FILE)).expect("journal");
        let embedded = j.entries.iter().find(|e| e.id == Some(2)).expect("entry 2");
        assert!(embedded.response.content.text.is_none());
        assert_eq!(
            entry_body(&j, &embedded.response.content).expect("spilled"),
            data
        );
        assert_eq!(
            entry_body(&t, &embedded.response.content).expect("embedded"),
            data
        );
    }

    #[test]
    fn request_bodies_resolve_too() {
        let dir = TempDir::new("reader-post");
        let store = BodyStore::new(dir.path()).expect("store");
        let mut sink = store.begin().expect("begin");
        sink.write(b"0032want abc\n").expect("write");
        let stored = sink.finish().expect("finish");
        let mut ex = sample_exchange();
        ex.request.method = "POST".into();
        ex.request.body.size = stored.size;
        let bodies = EntryBodies {
            request: stored.content(&store, None, None, false).expect("content"),
            response: BodyContent::default(),
        };
        let e = build_entry(&ex, None, &bodies, &BuildOptions::default());
        let t = LoadedTrace {
            root: dir.path().to_path_buf(),
            ..LoadedTrace::default()
        };
        let mut req = e.request.clone();
        assert_eq!(request_body(&t, &req).expect("text"), b"0032want abc\n");
        if let Some(pd) = req.post_data.as_mut() {
            pd.text = None;
        }
        assert_eq!(request_body(&t, &req).expect("file"), b"0032want abc\n");
        req.post_data = None;
        assert!(matches!(
            request_body(&t, &req),
            Err(TraceError::BodyNotRecorded { size: 13, .. })
        ));
        req.body_size = 0;
        assert_eq!(request_body(&t, &req).expect("none"), b"");
    }

    #[test]
    fn truncated_journal_line_is_a_problem_with_file_and_line() {
        let dir = TempDir::new("reader-torn");
        let path = dir.path().join(JOURNAL_FILE);
        let mut text = String::new();
        for id in 1..=3 {
            text.push_str(&serde_json::to_string(&sample_entry(id)).expect("json"));
            text.push('\n');
        }
        text.push('\n');
        text.push_str("{\"this is\": not json}\n");
        text.push_str(&serde_json::to_string(&sample_entry(4)).expect("json"));
        text.push('\n');
        let torn = serde_json::to_string(&sample_entry(5)).expect("json");
        text.push_str(&torn[..torn.len() / 2]);
        fs::write(&path, text).expect("write");

        let t = load_trace(&path).expect("load");
        let ids: Vec<_> = t.entries.iter().map(|e| e.id).collect();
        assert_eq!(ids, vec![Some(1), Some(2), Some(3), Some(4)]);
        assert_eq!(t.problems.len(), 2, "{:?}", t.problems);
        assert_eq!(t.problems[0].line, Some(5));
        assert_eq!(t.problems[1].line, Some(7));
        assert!(t.problems[1].message.contains("truncated"));
        let shown = t.problems[1].to_string();
        assert!(
            shown.starts_with(&format!("{}:7: ", path.display())),
            "{shown}"
        );

        // As a directory: no trace.har yet, so the note says the journal was used.
        let t = load_trace(dir.path()).expect("load dir");
        assert_eq!(t.entries.len(), 4);
        assert!(
            t.notes.iter().any(|n| n.contains("rebuilt")),
            "{:?}",
            t.notes
        );
    }

    #[test]
    fn stale_or_short_har_is_rebuilt_from_journal() {
        let dir = TempDir::new("reader-stale");
        let j = JournalWriter::open(dir.path()).expect("open");
        j.append(&sample_entry(1)).expect("append");
        j.append(&sample_entry(2)).expect("append");
        // A HAR written before the second entry, e.g. by a killed earlier session.
        write_har_atomic(dir.path(), &[sample_entry(1)], "t").expect("har");
        let t = load_trace(dir.path()).expect("load");
        assert_eq!(t.entries.len(), 2);
        assert_eq!(t.source, dir.path().join(JOURNAL_FILE));
        assert!(
            t.notes.iter().any(|n| n.contains("has 1 entries")),
            "{:?}",
            t.notes
        );

        // A complete HAR that is older than the journal is not trusted either.
        write_har_atomic(dir.path(), &[sample_entry(1), sample_entry(2)], "t").expect("har");
        let old = SystemTime::now() - Duration::from_secs(3600);
        File::options()
            .write(true)
            .open(dir.path().join(HAR_FILE))
            .and_then(|f| f.set_modified(old))
            .expect("age har");
        let t = load_trace(dir.path()).expect("load");
        assert!(t.notes.iter().any(|n| n.contains("older")), "{:?}", t.notes);

        j.finish("t").expect("finish");
        let t = load_trace(dir.path()).expect("load");
        assert_eq!(t.source, dir.path().join(HAR_FILE));
        assert!(t.notes.is_empty(), "{:?}", t.notes);

        // An unreadable HAR falls back to the journal.
        fs::write(dir.path().join(HAR_FILE), b"{\"log\": ").expect("break har");
        let t = load_trace(dir.path()).expect("load");
        assert_eq!(t.entries.len(), 2);
        assert!(
            t.notes.iter().any(|n| n.contains("could not be read")),
            "{:?}",
            t.notes
        );
    }

    #[test]
    fn non_har_json_is_an_error_naming_the_file() {
        let dir = TempDir::new("reader-nothar");
        let path = dir.path().join("package.json");
        write(&path, &json!({"name": "x", "version": "1"}));
        let err = load_trace(&path).expect_err("not har");
        let msg = err.to_string();
        assert!(matches!(err, TraceError::NotHar { .. }));
        assert!(
            msg.contains("package.json") && msg.contains("log.entries"),
            "{msg}"
        );

        write(&path, &json!({"log": {"version": "1.2"}}));
        let msg = load_trace(&path).expect_err("no entries").to_string();
        assert!(msg.contains("without `entries`"), "{msg}");

        write(&path, &json!([1, 2]));
        let msg = load_trace(&path).expect_err("array").to_string();
        assert!(msg.contains("an array"), "{msg}");

        fs::write(&path, b"{\n  \"log\": {\n    oops\n").expect("write");
        let err = load_trace(&path).expect_err("bad json");
        assert!(
            matches!(err, TraceError::Json { line: Some(3), .. }),
            "{err}"
        );
        assert!(err.to_string().contains("package.json:3"), "{err}");

        let empty = TempDir::new("reader-emptydir");
        let msg = load_trace(empty.path()).expect_err("empty dir").to_string();
        assert!(msg.contains("trace.har or journal.jsonl"), "{msg}");

        let msg = load_trace(&dir.path().join("nope.har"))
            .expect_err("missing")
            .to_string();
        assert!(msg.contains("nope.har"), "{msg}");
    }

    #[test]
    fn other_versions_and_bad_entries_are_problems_not_errors() {
        let dir = TempDir::new("reader-version");
        let path = dir.path().join("x.har");
        let mut broken = entry_json("https://ok.example/", json!({"size": 0, "mimeType": ""}));
        broken["request"]
            .as_object_mut()
            .expect("request")
            .remove("method");
        write(
            &path,
            &har_json(
                "1.3",
                vec![
                    entry_json("https://ok.example/a", json!({"size": 0, "mimeType": ""})),
                    entry_json("not a url", json!({"size": 0, "mimeType": ""})),
                    broken,
                    entry_json("https://ok.example/b", json!({"size": 0, "mimeType": ""})),
                ],
            ),
        );
        let t = load_trace(&path).expect("load");
        let urls: Vec<&str> = t.entries.iter().map(|e| e.request.url.as_str()).collect();
        assert_eq!(urls, vec!["https://ok.example/a", "https://ok.example/b"]);
        let msgs: Vec<String> = t.problems.iter().map(|p| p.message.clone()).collect();
        assert_eq!(msgs.len(), 3, "{msgs:?}");
        assert!(msgs[0].contains("1.3"));
        assert!(msgs[1].contains("log.entries[1]") && msgs[1].contains("not a url"));
        assert!(msgs[2].contains("log.entries[2]") && msgs[2].contains("method"));
    }

    #[test]
    fn foreign_fields_survive_load_and_rewrite() {
        let dir = TempDir::new("reader-foreign");
        let mut e = entry_json(
            "https://ok.example/a",
            json!({"size": 0, "mimeType": "", "_decoded": 1}),
        );
        e["_resourceType"] = json!("fetch");
        e["_error"] = json!("net::ERR_FAILED");
        e["time"] = json!(1);
        e["request"]["_initiator"] = json!({"type": "script"});
        e["timings"]["_queued"] = json!(0.5);
        let path = dir.path().join("foreign.har");
        write(&path, &har_json("1.2", vec![e]));
        let t = load_trace(&path).expect("load");
        assert!(t.problems.is_empty(), "{:?}", t.problems);
        assert_eq!(t.entries[0].time, 1.0);
        let out = TempDir::new("reader-foreign-out");
        let har = write_har_atomic(out.path(), &t.entries, "t").expect("write");
        let v: Value = serde_json::from_slice(&fs::read(har).expect("read")).expect("json");
        let e = &v["log"]["entries"][0];
        assert_eq!(e["_resourceType"], "fetch");
        assert_eq!(e["_error"], "net::ERR_FAILED");
        assert_eq!(e["request"]["_initiator"]["type"], "script");
        assert_eq!(e["response"]["content"]["_decoded"], 1);
        assert_eq!(e["timings"]["_queued"], 0.5);
    }

    #[test]
    fn journal_with_har_extension_is_sniffed() {
        let dir = TempDir::new("reader-sniff");
        let path = dir.path().join("rec.json");
        let mut f = File::create(&path).expect("create");
        for id in [1, 2] {
            writeln!(
                f,
                "{}",
                serde_json::to_string(&sample_entry(id)).expect("json")
            )
            .expect("write");
        }
        drop(f);
        let t = load_trace(&path).expect("load");
        assert_eq!(t.entries.len(), 2);
        assert!(t.notes.iter().any(|n| n.contains("as a journal")));
        // One entry saved alone (pretty-printed) is not a journal: it lacks `log`.
        let one = dir.path().join("one.json");
        fs::write(
            &one,
            serde_json::to_vec_pretty(&sample_entry(1)).expect("json"),
        )
        .expect("w");
        let msg = load_trace(&one).expect_err("lone entry").to_string();
        assert!(msg.contains("without `log`"), "{msg}");
    }

    #[test]
    fn large_embedded_bodies_are_spilled_and_still_served() {
        let dir = TempDir::new("reader-spill");
        let zip: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 253) as u8).collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&zip);
        let list = "v1.0.0\n".repeat(20_000);
        let upload: Vec<u8> = (0..100_000u32).map(|i| (i % 7) as u8).collect();
        let mut post = entry_json(
            "https://p.example/upload",
            json!({"size": 0, "mimeType": ""}),
        );
        post["request"]["method"] = json!("POST");
        post["request"]["bodySize"] = json!(upload.len());
        post["request"]["postData"] = json!({
            "mimeType": "application/octet-stream",
            "text": base64::engine::general_purpose::STANDARD.encode(&upload),
            "_encoding": "base64"
        });
        let mut wrong = entry_json(
            "https://p.example/wrong.zip",
            json!({"size": 300_000, "mimeType": "application/zip", "text": b64, "encoding": "base64", "_sha256": sha(b"other")}),
        );
        wrong["_viewer"] = json!({"kept": true});
        let har = har_json(
            "1.2",
            vec![
                entry_json(
                    "https://p.example/m/@v/v1.0.0.zip",
                    json!({"size": 300_000, "mimeType": "application/zip", "text": b64, "encoding": "base64", "_custom": 1}),
                ),
                entry_json(
                    "https://p.example/m/@v/list",
                    json!({"size": list.len(), "mimeType": "text/plain", "text": list}),
                ),
                entry_json(
                    "https://p.example/m/@v/v1.0.0.mod",
                    json!({"size": 9, "mimeType": "text/plain", "text": "module m\n"}),
                ),
                post,
                wrong,
            ],
        );
        let path = dir.path().join("big.har");
        write(&path, &har);
        let t = load_trace(&path).expect("load");
        assert!(t.problems.is_empty(), "{:?}", t.problems);
        assert_eq!(t.entries.len(), 5);
        let spill = t.spill.clone().expect("bodies were spilled");
        let c = &t.entries[0].response.content;
        assert_eq!((c.text.as_deref(), c.encoding.as_deref()), (None, None));
        assert_eq!(c.sha256.as_deref(), Some(sha(&zip).as_str()));
        assert_eq!(
            c.extra.get("_custom"),
            Some(&json!(1)),
            "unknown fields stay"
        );
        assert_eq!(entry_body(&t, c).expect("zip"), zip);
        assert_eq!(
            t.stored_body(c),
            Some((spill.root().to_path_buf(), sha(&zip))),
            "replay streams it from the spill store"
        );
        let c = &t.entries[1].response.content;
        assert!(c.text.is_none());
        assert_eq!(entry_body(&t, c).expect("list"), list.as_bytes());
        let c = &t.entries[2].response.content;
        assert_eq!(
            c.text.as_deref(),
            Some("module m\n"),
            "small bodies stay in the entry"
        );
        assert_eq!(t.stored_body(c), None);
        let req = &t.entries[3].request;
        assert!(req.post_data.as_ref().is_some_and(|p| p.text.is_none()));
        assert_eq!(request_body(&t, req).expect("upload"), upload);
        // A body that contradicts its _sha256 stays embedded, so the mismatch is reported.
        let e = &t.entries[4];
        assert!(e.response.content.text.is_some());
        assert!(e.extra.contains_key("_viewer"));
        assert!(matches!(
            entry_body(&t, &e.response.content),
            Err(TraceError::EmbeddedMismatch { .. })
        ));
        // The store goes with the last trace holding it.
        let root = spill.root().to_path_buf();
        drop(spill);
        let copy = t.clone();
        drop(t);
        assert!(root.exists(), "a clone still holds it");
        assert_eq!(
            entry_body(&copy, &copy.entries[1].response.content).expect("list"),
            list.as_bytes()
        );
        drop(copy);
        assert!(!root.exists());
    }

    #[test]
    fn streaming_reader_reads_every_key_order_and_the_gap_record() {
        let dir = TempDir::new("reader-order");
        let path = dir.path().join("o.har");
        // `entries` before `version`, unknown keys around, the gap record.
        let text = format!(
            r#"{{"x": [1, {{"y": 2}}], "log": {{"entries": [{}], "pages": [], "_unrecorded": {{"exchanges": 2, "reason": "disk full"}}, "version": "1.3"}}, "z": null}}"#,
            serde_json::to_string(&sample_entry(1)).expect("json")
        );
        fs::write(&path, text).expect("write");
        let t = load_trace(&path).expect("load");
        assert_eq!(t.entries.len(), 1);
        assert_eq!(t.unrecorded.exchanges, 2);
        assert_eq!(t.unrecorded.bodies, 0);
        assert!(t.problems[0].message.contains("1.3"), "{:?}", t.problems);
        // Trailing garbage after the document is still an error.
        fs::write(
            &path,
            b"{\"log\": {\"version\": \"1.2\", \"entries\": []}} x",
        )
        .expect("write");
        let err = load_trace(&path).expect_err("trailing");
        assert!(matches!(err, TraceError::Json { .. }), "{err}");
        // `log.entries` of the wrong shape says what it is.
        fs::write(&path, b"{\"log\": {\"entries\": {\"a\": 1}}}").expect("write");
        let msg = load_trace(&path).expect_err("shape").to_string();
        assert!(
            msg.contains("`log.entries` is an object with keys [\"a\"]"),
            "{msg}"
        );
        fs::write(&path, b"{\"log\": 3}").expect("write");
        let msg = load_trace(&path).expect_err("shape").to_string();
        assert!(msg.contains("`log` is a number"), "{msg}");
    }

    #[test]
    fn missing_corrupt_and_unsafe_body_files_are_clear_errors() {
        let dir = TempDir::new("reader-bodies");
        let good = b"module example.com/m\n";
        let h = sha(good);
        let har = har_json(
            "1.2",
            vec![
                entry_json(
                    "https://p/m/@v/v1.mod",
                    json!({"size": 21, "mimeType": "text/plain", "_sha256": h, "_file": format!("bodies/{h}")}),
                ),
                entry_json(
                    "https://p/m/@v/v2.mod",
                    json!({"size": 3, "mimeType": "text/plain", "_file": "../../etc/passwd"}),
                ),
                entry_json(
                    "https://p/m/@v/v3.mod",
                    json!({"size": 5, "mimeType": "text/plain"}),
                ),
                entry_json(
                    "https://p/m/@v/v4.mod",
                    json!({"size": 5, "mimeType": "text/plain", "text": "hello", "_sha256": h}),
                ),
                entry_json(
                    "https://p/m/@v/v5.mod",
                    json!({"size": 5, "mimeType": "text/plain", "text": "%%%", "encoding": "base64"}),
                ),
            ],
        );
        let path = dir.path().join(HAR_FILE);
        write(&path, &har);
        let t = load_trace(dir.path()).expect("load");
        assert_eq!(t.entries.len(), 5);
        let body = |i: usize| entry_body(&t, &t.entries[i].response.content);

        let err = body(0).expect_err("missing");
        assert!(matches!(err, TraceError::BodyMissing { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("bodies/{h}")) && msg.contains("missing"),
            "{msg}"
        );

        fs::create_dir_all(dir.path().join(BODIES_DIR)).expect("mkdir");
        fs::write(
            dir.path().join(BODIES_DIR).join(&h),
            b"module example.com/X\n",
        )
        .expect("w");
        let msg = body(0).expect_err("corrupt").to_string();
        assert!(msg.contains("corrupt") && msg.contains(&h), "{msg}");

        fs::write(dir.path().join(BODIES_DIR).join(&h), good).expect("w");
        assert_eq!(body(0).expect("good"), good);

        assert!(matches!(body(1), Err(TraceError::BadBodyRef { .. })));
        assert!(matches!(
            body(2),
            Err(TraceError::BodyNotRecorded { size: 5, .. })
        ));
        assert!(matches!(body(3), Err(TraceError::EmbeddedMismatch { .. })));
        let err = body(4).expect_err("bad base64");
        assert!(err.to_string().contains(HAR_FILE), "{err}");
    }
}
