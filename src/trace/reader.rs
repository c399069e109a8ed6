//! Loads a trace (directory, `.har` or `.jsonl`) for summary, diagnosis and replay.
//!
//! Loading is forgiving per entry and strict per file: a torn journal line or a bad
//! entry becomes a [`LoadProblem`] naming file and line while everything else loads,
//! but a file that is not a trace at all is an error that says what was expected.

use std::fmt;
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::{Component, Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::bodies::{check_sha, read_verified_path};
use super::content::{self, BodyFields, ContentError, Plan, Source};
use super::error::TraceError;
use super::har::{Content, Entry, Request};
use super::urlparts;
use super::{BODIES_DIR, HAR_FILE, JOURNAL_FILE};
use crate::console::plural;

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
    fn new(file: &Path, line: Option<usize>, message: impl Into<String>) -> Self {
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
        if !line.is_empty() && serde_json::from_slice::<serde::de::IgnoredAny>(line).is_ok() {
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
    let mut entries = Vec::new();
    trace.problems = scan_journal(path, |_, _, entry| entries.push(entry))?;
    trace.entries = entries;
    Ok(trace)
}

/// Reads a journal line by line, handing each usable entry to `visit` with the byte
/// offset and length of its line, so callers can keep one entry in memory at a time.
/// Bad lines become problems naming the file and line.
pub(crate) fn scan_journal(
    path: &Path,
    mut visit: impl FnMut(u64, usize, Entry),
) -> Result<Vec<LoadProblem>, TraceError> {
    let file = File::open(path).map_err(|e| TraceError::io(path, e))?;
    let mut reader = BufReader::new(file);
    let mut problems = Vec::new();
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
    Ok(problems)
}

fn push_checked(
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

/// Loads a HAR file; also returns how many entries the file holds, before skipping.
fn load_har_file(path: &Path) -> Result<(LoadedTrace, usize), TraceError> {
    let bytes = fs::read(path).map_err(|e| TraceError::io(path, e))?;
    // Some Windows tools write a UTF-8 byte order mark.
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    let doc: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            if looks_like_journal(body) {
                let mut t = load_journal_file(path)?;
                t.notes.push(format!(
                    "{} holds one JSON entry per line; loaded it as a journal",
                    path.display()
                ));
                let n = t.entries.len();
                return Ok((t, n));
            }
            return Err(TraceError::Json {
                path: path.to_path_buf(),
                line: Some(e.line()),
                source: e,
            });
        }
    };
    let Value::Object(mut top) = doc else {
        return Err(TraceError::NotHar {
            path: path.to_path_buf(),
            found: describe(&doc),
        });
    };
    let Some(Value::Object(log)) = top.get_mut("log") else {
        let found = match top.get("log") {
            Some(v) => format!("`log` is {}", describe(v)),
            None => "a JSON object without `log`".to_string(),
        };
        return Err(TraceError::NotHar {
            path: path.to_path_buf(),
            found,
        });
    };
    let mut trace = LoadedTrace {
        root: root_of(path),
        source: path.to_path_buf(),
        ..LoadedTrace::default()
    };
    match log.get("version") {
        Some(Value::String(v)) if v == "1.1" || v == "1.2" => {}
        Some(v) => trace.problems.push(LoadProblem::new(
            path,
            None,
            format!("HAR version {v} (expected \"1.1\" or \"1.2\"); loaded anyway"),
        )),
        None => trace.problems.push(LoadProblem::new(
            path,
            None,
            "no log.version (expected \"1.2\"); loaded anyway",
        )),
    }
    let entries = match log.get_mut("entries") {
        Some(Value::Array(a)) => std::mem::take(a),
        other => {
            return Err(TraceError::NotHar {
                path: path.to_path_buf(),
                found: match other {
                    Some(v) => format!("`log.entries` is {}", describe(v)),
                    None => "`log` without `entries`".to_string(),
                },
            })
        }
    };
    let raw = entries.len();
    for (i, v) in entries.into_iter().enumerate() {
        let what = format!("log.entries[{i}]");
        match serde_json::from_value::<Entry>(v) {
            Ok(entry) => push_checked(&mut trace, entry, path, None, &what),
            Err(e) => trace.problems.push(LoadProblem::new(
                path,
                None,
                format!("{what}: not a valid HAR entry, skipped: {e}"),
            )),
        }
    }
    Ok((trace, raw))
}

/// A journal renamed to `.har`/`.json`: its first line alone is a JSON object with a
/// `request`.
fn looks_like_journal(body: &[u8]) -> bool {
    body.split(|&b| b == b'\n')
        .map(<[u8]>::trim_ascii)
        .find(|l| !l.is_empty())
        .and_then(|l| serde_json::from_slice::<Value>(l).ok())
        .is_some_and(|v| v.get("request").is_some() && v.get("startedDateTime").is_some())
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(_) => "a boolean".to_string(),
        Value::Number(_) => "a number".to_string(),
        Value::String(_) => "a string".to_string(),
        Value::Array(_) => "an array".to_string(),
        Value::Object(o) => {
            let keys: Vec<&str> = o.keys().take(5).map(String::as_str).collect();
            format!("an object with keys {keys:?}")
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
    content::plan(&BodyFields {
        text: r.text,
        encoding: r.encoding,
        size: r.size,
        compression: r.compression,
        stored: r.file.is_some() || r.sha256.is_some(),
        content_encoding: r.content_encoding,
    })
    .map_err(|e| match e {
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
    use crate::trace::bodies::BodyStore;
    use crate::trace::build::{build_entry, BodyContent, BuildOptions, EntryBodies};
    use crate::trace::journal::{write_har_atomic, JournalWriter};
    use crate::trace::testutil::{sample_exchange, TestDir};
    use base64::Engine as _;
    use serde_json::json;
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
        let dir = TestDir::new("reader-hand");
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
        let dir = TestDir::new("reader-roundtrip");
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
        // The embedded copy stands on its own once the bodies are gone.
        fs::remove_dir_all(dir.path().join(BODIES_DIR)).expect("rm bodies");
        let embedded = t.entries.iter().find(|e| e.id == Some(2)).expect("entry 2");
        assert_eq!(
            embedded.response.content.encoding.as_deref(),
            Some("base64")
        );
        assert_eq!(
            entry_body(&t, &embedded.response.content).expect("embedded"),
            data
        );
    }

    #[test]
    fn request_bodies_resolve_too() {
        let dir = TestDir::new("reader-post");
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
        let dir = TestDir::new("reader-torn");
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
        let dir = TestDir::new("reader-stale");
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
        let dir = TestDir::new("reader-nothar");
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

        let empty = TestDir::new("reader-emptydir");
        let msg = load_trace(empty.path()).expect_err("empty dir").to_string();
        assert!(msg.contains("trace.har or journal.jsonl"), "{msg}");

        let msg = load_trace(&dir.path().join("nope.har"))
            .expect_err("missing")
            .to_string();
        assert!(msg.contains("nope.har"), "{msg}");
    }

    #[test]
    fn other_versions_and_bad_entries_are_problems_not_errors() {
        let dir = TestDir::new("reader-version");
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
        let dir = TestDir::new("reader-foreign");
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
        let out = TestDir::new("reader-foreign-out");
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
        let dir = TestDir::new("reader-sniff");
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
    }

    #[test]
    fn missing_corrupt_and_unsafe_body_files_are_clear_errors() {
        let dir = TestDir::new("reader-bodies");
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
