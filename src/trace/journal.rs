//! Crash-safe trace writing: the append-only `journal.jsonl` and the atomic `trace.har`.
//!
//! Each finished exchange becomes one journal line handed to the OS with a single
//! `write`, so a `kill -9` loses nothing already appended. `trace.har` is only a
//! convenience written at clean shutdown; the reader rebuilds it from the journal when it
//! is missing or stale.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;

use super::error::TraceError;
use super::har::{Creator, Entry, HAR_VERSION};
use super::reader::LoadProblem;
use super::tempfiles;
use super::{BODIES_DIR, HAR_FILE, JOURNAL_FILE};

/// Appends entries to `DIR/journal.jsonl`. Shareable between tasks (`&self` methods);
/// the lock keeps lines whole when two exchanges end at once. Calls block on disk IO.
#[derive(Debug)]
pub struct JournalWriter {
    dir: PathBuf,
    path: PathBuf,
    file: Mutex<LineLog>,
    /// Lines the journal held when it was opened.
    existing_lines: u64,
}

/// The journal file as an append target. `File` in production; tests put a failing
/// writer here to play a full disk.
pub(crate) trait LogFile: Write + Send + std::fmt::Debug {
    /// Cuts the file back to `len` bytes.
    fn truncate_to(&mut self, len: u64) -> io::Result<()>;
    fn sync(&mut self) -> io::Result<()>;
}

impl LogFile for File {
    fn truncate_to(&mut self, len: u64) -> io::Result<()> {
        self.set_len(len)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.sync_all()
    }
}

/// All-or-nothing line appends: `len` is the size of the file made of whole lines only.
/// A failed write (a full disk) can leave part of a line behind; it is cut off at once,
/// and if even that fails, before the next line is written, so a later line is never
/// glued onto a fragment and nothing before `len` is ever touched.
#[derive(Debug)]
struct LineLog {
    file: Box<dyn LogFile>,
    len: u64,
    /// A fragment may follow `len` (a failed write whose truncation failed too).
    torn: bool,
    /// Start time, offset and length of every entry line, while every line of the file
    /// is one this writer appended: `finish` then needs no pass over the journal.
    index: Option<Vec<(String, u64, usize)>>,
    /// The `_unrecorded` lines this writer appended, summed.
    unrecorded: Unrecorded,
}

impl LineLog {
    fn append(&mut self, line: &[u8]) -> io::Result<()> {
        if self.torn {
            self.file.truncate_to(self.len)?;
            self.torn = false;
        }
        match self.file.write_all(line) {
            Ok(()) => {
                self.len += line.len() as u64;
                Ok(())
            }
            Err(e) => {
                // Cutting a file frees space, so this works on a full disk too.
                self.torn = self.file.truncate_to(self.len).is_err();
                Err(e)
            }
        }
    }
}

/// What [`JournalWriter::finish`] wrote.
#[derive(Debug)]
pub struct FinishReport {
    pub har: PathBuf,
    pub entries: usize,
    /// Bad journal lines (for example from an earlier run that was killed mid-write).
    pub problems: Vec<LoadProblem>,
    /// Exchanges the journal says were not recorded (all sessions in this directory).
    pub unrecorded: Unrecorded,
}

impl JournalWriter {
    /// Creates `dir`, `dir/bodies/` and opens `dir/journal.jsonl` for appending; an
    /// existing journal is continued.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, TraceError> {
        Self::open_with(dir, |f| Box::new(f))
    }

    /// [`JournalWriter::open`] with the file wrapped by `wrap` (tests inject write errors).
    pub(crate) fn open_with(
        dir: impl AsRef<Path>,
        wrap: impl FnOnce(File) -> Box<dyn LogFile>,
    ) -> Result<Self, TraceError> {
        let dir = dir.as_ref().to_path_buf();
        let bodies = dir.join(BODIES_DIR);
        fs::create_dir_all(&bodies).map_err(|e| TraceError::io(&bodies, e))?;
        let stale = tempfiles::remove_stale(&dir, &har_temp_prefix())
            .map_err(|e| TraceError::io(&dir, e))?;
        if stale.files > 0 {
            tracing::warn!(
                "removed {} unfinished {HAR_FILE} copy(ies) ({} bytes) from {}, left by a recording that was killed",
                stale.files,
                stale.bytes,
                dir.display()
            );
        }
        let path = dir.join(JOURNAL_FILE);
        let mut file = File::options()
            .create(true)
            .append(true)
            .read(true)
            .open(&path)
            .map_err(|e| TraceError::io(&path, e))?;
        let (mut len, existing_lines, torn) =
            measure(&mut file).map_err(|e| TraceError::io(&path, e))?;
        // A run killed mid-line leaves a fragment; without a newline the next entry would
        // be glued to it and lost too. (The fragment stays: it is a record of the kill.)
        if torn {
            file.write_all(b"\n")
                .map_err(|e| TraceError::io(&path, e))?;
            len += 1;
        }
        Ok(JournalWriter {
            dir,
            path,
            file: Mutex::new(LineLog {
                file: wrap(file),
                len,
                torn: false,
                index: (len == 0).then(Vec::new),
                unrecorded: Unrecorded::default(),
            }),
            existing_lines: existing_lines + u64::from(torn),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Lines (entries, markers and bad lines) the journal held when it was opened.
    pub fn existing_lines(&self) -> u64 {
        self.existing_lines
    }

    /// Writes `entry` as one compact JSON line, all or nothing: when the write fails
    /// (a full disk), the journal is left as it was before the call.
    pub fn append(&self, entry: &Entry) -> Result<(), TraceError> {
        // An entry the reader would skip (a bad URL) is left to the reader's own pass.
        let key = super::urlparts::problem(&entry.request.url)
            .is_none()
            .then(|| entry.started_date_time.clone());
        self.append_json(entry, Line::Entry(key))
    }

    /// Notes in the journal that exchanges were not recorded (see [`Unrecorded`]), so a
    /// later `summary` says the trace has a gap. All or nothing, like [`Self::append`].
    pub fn append_unrecorded(&self, gap: &Unrecorded) -> Result<(), TraceError> {
        self.append_json(&UnrecordedLine { unrecorded: gap }, Line::Gap(gap))
    }

    fn append_json(&self, value: &impl Serialize, kind: Line<'_>) -> Result<(), TraceError> {
        let mut line = serde_json::to_vec(value).map_err(|source| TraceError::Serialize {
            path: self.path.clone(),
            source,
        })?;
        line.push(b'\n');
        // A panic elsewhere while holding the lock cannot leave a half line (a failed
        // write is undone before the lock is released), so a poisoned lock is safe.
        let mut log = self.file.lock().unwrap_or_else(|p| p.into_inner());
        // `File` is unbuffered: once the write returns, the line is in the kernel.
        let offset = log.len;
        log.append(&line)
            .map_err(|e| TraceError::io(&self.path, e))?;
        match kind {
            Line::Entry(Some(started)) => {
                if let Some(index) = log.index.as_mut() {
                    index.push((started, offset, line.len()));
                }
            }
            Line::Entry(None) => log.index = None,
            Line::Gap(gap) => log.unrecorded.add(gap),
        }
        Ok(())
    }

    /// Flushes the journal to disk (survives power loss, not just a process crash).
    pub fn sync(&self) -> Result<(), TraceError> {
        let mut log = self.file.lock().unwrap_or_else(|p| p.into_inner());
        log.file.sync().map_err(|e| TraceError::io(&self.path, e))
    }

    /// Clean shutdown: syncs the journal and writes `trace.har` from it, entries sorted
    /// by start time (the journal is in completion order). Streams: only the start time
    /// and position of each line are kept, then entries are re-read one at a time.
    pub fn finish(self, creator_version: &str) -> Result<FinishReport, TraceError> {
        self.sync()?;
        let log = self.file.into_inner().unwrap_or_else(|p| p.into_inner());
        // Another process appending to the same journal would make the file longer
        // than the lines this writer knows.
        let alone = fs::metadata(&self.path).is_ok_and(|m| m.len() == log.len);
        let (mut index, scan) = match log.index.filter(|_| alone && !log.torn) {
            Some(index) => (
                index,
                super::reader::JournalScan {
                    problems: Vec::new(),
                    unrecorded: log.unrecorded,
                },
            ),
            None => {
                let mut index: Vec<(String, u64, usize)> = Vec::new();
                let scan = super::reader::scan_journal(&self.path, |offset, len, entry| {
                    index.push((entry.started_date_time, offset, len));
                })?;
                (index, scan)
            }
        };
        // Our timestamps are fixed-width UTC, so text order is time order; the offset
        // keeps equal times in journal order.
        index.sort();
        let har = write_har_streaming(
            &self.dir,
            &self.path,
            &index,
            &scan.unrecorded,
            creator_version,
        )?;
        Ok(FinishReport {
            har,
            entries: index.len(),
            problems: scan.problems,
            unrecorded: scan.unrecorded,
        })
    }
}

/// Writes `trace.har` atomically from journal lines at the given positions, in order.
fn write_har_streaming(
    dir: &Path,
    journal: &Path,
    index: &[(String, u64, usize)],
    unrecorded: &Unrecorded,
    creator_version: &str,
) -> Result<PathBuf, TraceError> {
    let dest = dir.join(HAR_FILE);
    let tmp = temp_har_path(dir);
    let result = (|| -> Result<(), TraceError> {
        let mut source = File::open(journal).map_err(|e| TraceError::io(journal, e))?;
        let file = File::create(&tmp).map_err(|e| TraceError::io(&tmp, e))?;
        let mut out = BufWriter::new(file);
        let ser = |e| TraceError::Serialize {
            path: tmp.clone(),
            source: e,
        };
        let creator = serde_json::to_string(&Creator::modscope(creator_version)).map_err(ser)?;
        write!(
            out,
            "{{\n  \"log\": {{\n    \"version\": \"{HAR_VERSION}\",\n    \"creator\": {creator},\n"
        )
        .map_err(|e| TraceError::io(&tmp, e))?;
        if !unrecorded.is_empty() {
            let gap = serde_json::to_string(unrecorded).map_err(ser)?;
            writeln!(out, "    \"{UNRECORDED_KEY}\": {gap},")
                .map_err(|e| TraceError::io(&tmp, e))?;
        }
        out.write_all(b"    \"entries\": [")
            .map_err(|e| TraceError::io(&tmp, e))?;
        let mut line = Vec::new();
        for (i, (_, offset, len)) in index.iter().enumerate() {
            line.resize(*len, 0);
            source
                .seek(SeekFrom::Start(*offset))
                .and_then(|_| source.read_exact(&mut line))
                .map_err(|e| TraceError::io(journal, e))?;
            out.write_all(if i == 0 { b"\n" } else { b",\n" })
                .map_err(|e| TraceError::io(&tmp, e))?;
            // The line is an entry serde wrote (and the scan or the writer checked):
            // re-indented as it is, not parsed and serialized once more.
            write_pretty(line.trim_ascii(), &mut out).map_err(|e| TraceError::io(&tmp, e))?;
        }
        out.write_all(b"\n    ]\n  }\n}\n")
            .map_err(|e| TraceError::io(&tmp, e))?;
        let file = out
            .into_inner()
            .map_err(|e| TraceError::io(&tmp, e.into_error()))?;
        file.sync_all().map_err(|e| TraceError::io(&tmp, e))?;
        drop(file);
        fs::rename(&tmp, &dest).map_err(|e| TraceError::io(&dest, e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(dest)
}

/// What a journal line is, for the writer's own index.
enum Line<'a> {
    /// An entry, with its start time when the reader will take it.
    Entry(Option<String>),
    Gap(&'a Unrecorded),
}

/// Writes one JSON value as serde_json's pretty printer does (two-space indent,
/// `"key": value`, `{}`/`[]` when empty), copying strings and numbers byte for byte;
/// whitespace between tokens is dropped. A linear pass, no allocation per value.
fn write_pretty(json: &[u8], out: &mut impl Write) -> io::Result<()> {
    let mut buf = Vec::with_capacity(json.len() + json.len() / 2);
    let mut depth = 0usize;
    let (mut in_string, mut escaped) = (false, false);
    // An object or array was opened and nothing is in it yet.
    let mut opened = false;
    let newline = |buf: &mut Vec<u8>, depth: usize| {
        buf.push(b'\n');
        buf.resize(buf.len() + 2 * depth, b' ');
    };
    for &b in json {
        if in_string {
            buf.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b' ' | b'\t' | b'\n' | b'\r' => {}
            b'{' | b'[' => {
                if opened {
                    newline(&mut buf, depth);
                }
                buf.push(b);
                depth += 1;
                opened = true;
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if !opened {
                    newline(&mut buf, depth);
                }
                buf.push(b);
                opened = false;
            }
            b',' => {
                buf.push(b',');
                newline(&mut buf, depth);
            }
            b':' => buf.extend_from_slice(b": "),
            _ => {
                if opened {
                    newline(&mut buf, depth);
                    opened = false;
                }
                in_string = b == b'"';
                buf.push(b);
            }
        }
    }
    out.write_all(&buf)
}

fn temp_har_path(dir: &Path) -> PathBuf {
    tempfiles::temp_path(dir, &har_temp_prefix())
}

/// Temp copies of `trace.har` are named `.trace.har.tmp-<pid>-<seq>`.
fn har_temp_prefix() -> String {
    format!(".{HAR_FILE}")
}

/// Length, complete lines, and whether the last line lacks its newline; streams.
fn measure(file: &mut File) -> io::Result<(u64, u64, bool)> {
    file.seek(SeekFrom::Start(0))?;
    let mut buf = vec![0u8; 64 * 1024];
    let (mut len, mut lines, mut last) = (0u64, 0u64, b'\n');
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok((len, lines, last != b'\n'));
        }
        let chunk = buf.get(..n).unwrap_or_default();
        lines += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
        last = chunk.last().copied().unwrap_or(last);
        len += n as u64;
    }
}

/// The key of the gap record: a journal line `{"_unrecorded": {...}}` and, in
/// `trace.har`, `log._unrecorded`.
pub(crate) const UNRECORDED_KEY: &str = "_unrecorded";

/// Exchanges that were proxied but could not be recorded (the disk was full). The
/// recorder writes one journal line per burst once the disk takes writes again; the
/// reader sums them, so `summary` can say the trace is incomplete.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Unrecorded {
    /// Exchanges with no entry at all.
    pub exchanges: u64,
    /// Entries whose body could not be stored (they have no `_sha256`/`_file`).
    #[serde(default)]
    pub bodies: u64,
    /// Why, e.g. "disk full".
    pub reason: String,
}

impl Unrecorded {
    pub fn is_empty(&self) -> bool {
        self.exchanges == 0 && self.bodies == 0
    }

    /// "3 exchanges were not recorded (disk full)", with bodies when some were lost.
    pub fn describe(&self) -> String {
        let count =
            |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let what = match (self.exchanges, self.bodies) {
            (e, 0) => count(e, "exchange was", "exchanges were"),
            (0, b) => count(b, "body was", "bodies were"),
            (e, b) => format!(
                "{} and {}",
                count(e, "exchange", "exchanges"),
                count(b, "body were", "bodies were")
            ),
        };
        format!("{what} not recorded ({})", self.reason)
    }

    /// Adds another gap; the first reason is kept, a different one is appended.
    pub fn add(&mut self, other: &Unrecorded) {
        self.exchanges += other.exchanges;
        self.bodies += other.bodies;
        if self.reason.is_empty() {
            self.reason = other.reason.clone();
        } else if !other.reason.is_empty() && !self.reason.contains(&other.reason) {
            self.reason = format!("{}; {}", self.reason, other.reason);
        }
    }
}

#[derive(Serialize)]
struct UnrecordedLine<'a> {
    #[serde(rename = "_unrecorded")]
    unrecorded: &'a Unrecorded,
}

/// Borrowing twin of [`super::har::Har`], so writing does not clone every entry.
#[derive(Serialize)]
struct HarOut<'a> {
    log: LogOut<'a>,
}

#[derive(Serialize)]
struct LogOut<'a> {
    version: &'a str,
    creator: Creator,
    entries: &'a [Entry],
}

/// Writes `dir/trace.har` via a temp file, fsync and rename, so readers see either the
/// old file or the complete new one. Returns the path written.
pub fn write_har_atomic(
    dir: &Path,
    entries: &[Entry],
    creator_version: &str,
) -> Result<PathBuf, TraceError> {
    let dest = dir.join(HAR_FILE);
    let tmp = temp_har_path(dir);
    let har = HarOut {
        log: LogOut {
            version: HAR_VERSION,
            creator: Creator::modscope(creator_version),
            entries,
        },
    };
    let result = write_and_rename(&tmp, &dest, &har);
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    // The rename is durable only once the directory is synced; not every platform or
    // filesystem allows opening a directory, and the file itself is already safe.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(dest)
}

fn write_and_rename(tmp: &Path, dest: &Path, har: &HarOut<'_>) -> Result<(), TraceError> {
    let file = File::create(tmp).map_err(|e| TraceError::io(tmp, e))?;
    let mut out = BufWriter::new(file);
    serde_json::to_writer_pretty(&mut out, har).map_err(|source| TraceError::Serialize {
        path: tmp.to_path_buf(),
        source,
    })?;
    out.write_all(b"\n").map_err(|e| TraceError::io(tmp, e))?;
    let file = out
        .into_inner()
        .map_err(|e| TraceError::io(tmp, e.into_error()))?;
    file.sync_all().map_err(|e| TraceError::io(tmp, e))?;
    drop(file);
    fs::rename(tmp, dest).map_err(|e| TraceError::io(dest, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::TempDir;
    use crate::trace::build::{build_entry, BuildOptions, EntryBodies};
    use crate::trace::testutil::sample_exchange;
    use crate::trace::validate::validate_har_1_2;

    fn entry(id: u64, started_micros: u64) -> Entry {
        let mut ex = sample_exchange();
        ex.id = id;
        ex.started = std::time::UNIX_EPOCH + std::time::Duration::from_micros(started_micros);
        build_entry(&ex, None, &EntryBodies::default(), &BuildOptions::default())
    }

    #[test]
    fn pretty_matches_serde_json_pretty_byte_for_byte() {
        let mut full = serde_json::to_value(entry(7, 1_500_000)).expect("value");
        full["_x"] = serde_json::json!({
            "empty": {}, "none": [], "nested": [[], [{}], {"a": [1, 2.5, -3e-7]}],
            "tricky": "quote \" backslash \\ brackets {[,:]} tab\t newline\n é \u{1}",
            "keys:with,commas": null, "t": true, "f": false
        });
        let values = [
            full,
            serde_json::json!({}),
            serde_json::json!([]),
            serde_json::json!("just a string"),
            serde_json::json!([1, [2, [3, {}]], {"k": []}]),
        ];
        for v in values {
            let compact = serde_json::to_vec(&v).expect("compact");
            let mut got = Vec::new();
            write_pretty(&compact, &mut got).expect("pretty");
            let want = serde_json::to_string_pretty(&v).expect("pretty");
            assert_eq!(String::from_utf8(got).expect("utf8"), want);
            // Whitespace between tokens (a hand-edited journal) is dropped the same way.
            let mut from_pretty = Vec::new();
            write_pretty(want.as_bytes(), &mut from_pretty).expect("pretty");
            assert_eq!(String::from_utf8(from_pretty).expect("utf8"), want);
        }
    }

    #[test]
    fn finish_from_its_own_index_writes_what_a_journal_scan_writes() {
        let dir = TempDir::new("journal-index");
        let (own, scanned) = (dir.path().join("own"), dir.path().join("scanned"));
        let gap = Unrecorded {
            exchanges: 2,
            bodies: 1,
            reason: "disk full".into(),
        };
        for trace in [&own, &scanned] {
            let mut j = JournalWriter::open(trace).expect("open");
            j.append(&entry(1, 3_000_000)).expect("append");
            j.append_unrecorded(&gap).expect("gap");
            j.append(&entry(2, 1_000_000)).expect("append");
            if trace == &scanned {
                // Reopened: the lines are not this writer's, so `finish` scans them.
                drop(j);
                j = JournalWriter::open(trace).expect("reopen");
                assert_eq!(j.existing_lines(), 3);
            }
            let report = j.finish("test").expect("finish");
            assert_eq!((report.entries, report.unrecorded), (2, gap.clone()));
        }
        let read = |t: &Path| fs::read_to_string(t.join(HAR_FILE)).expect("har");
        assert_eq!(read(&own), read(&scanned));
        let har: serde_json::Value = serde_json::from_str(&read(&own)).expect("json");
        let ids: Vec<_> = har["log"]["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|e| e["_id"].clone())
            .collect();
        assert_eq!(
            ids,
            [serde_json::json!(2), serde_json::json!(1)],
            "by start time"
        );
    }

    #[test]
    fn append_writes_one_line_per_entry_immediately() {
        let dir = TempDir::new("journal-append");
        let trace = dir.path().join("rec");
        let j = JournalWriter::open(&trace).expect("open");
        assert!(trace.join(BODIES_DIR).is_dir());
        j.append(&entry(1, 2_000_000)).expect("append");
        j.append(&entry(2, 1_000_000)).expect("append");
        // Read while the writer is still open: nothing may be waiting in a buffer.
        let text = fs::read_to_string(trace.join(JOURNAL_FILE)).expect("read");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(text.ends_with('\n'));
        let back: Entry = serde_json::from_str(lines[0]).expect("parse line");
        assert_eq!(back, entry(1, 2_000_000));

        let report = j.finish("0.1.0").expect("finish");
        assert_eq!(report.entries, 2);
        assert!(report.problems.is_empty());
        let har: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&report.har).expect("read har"))
                .expect("parse har");
        assert!(
            validate_har_1_2(&har).is_empty(),
            "{:?}",
            validate_har_1_2(&har)
        );
        assert_eq!(har["log"]["entries"][0]["_id"], 2, "sorted by start time");
        assert_eq!(har["log"]["creator"]["name"], "modscope");
        let leftovers: Vec<_> = fs::read_dir(&trace)
            .expect("ls")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn reopening_after_a_torn_line_starts_a_fresh_line() {
        let dir = TempDir::new("journal-torn");
        let j = JournalWriter::open(dir.path()).expect("open");
        j.append(&entry(1, 1_000_000)).expect("append");
        drop(j);
        let path = dir.path().join(JOURNAL_FILE);
        let mut f = File::options().append(true).open(&path).expect("open raw");
        f.write_all(b"{\"startedDateTime\":\"20")
            .expect("torn write");
        drop(f);
        let j = JournalWriter::open(dir.path()).expect("reopen");
        j.append(&entry(3, 3_000_000)).expect("append");
        let report = j.finish("0.1.0").expect("finish");
        assert_eq!(report.entries, 2);
        assert_eq!(report.problems.len(), 1);
        assert_eq!(report.problems[0].line, Some(2));
    }

    #[test]
    fn har_is_replaced_atomically() {
        let dir = TempDir::new("journal-har");
        let p = write_har_atomic(dir.path(), &[entry(1, 1)], "1").expect("write");
        let p2 = write_har_atomic(dir.path(), &[entry(1, 1), entry(2, 2)], "1").expect("write");
        assert_eq!(p, p2);
        let v: serde_json::Value =
            serde_json::from_slice(&fs::read(&p).expect("read")).expect("json");
        assert_eq!(v["log"]["entries"].as_array().map(Vec::len), Some(2));
        assert_eq!(v["log"]["version"], "1.2");
    }

    #[test]
    fn a_full_disk_never_leaves_a_partial_line() {
        use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
        let dir = TempDir::new("journal-full");
        let one = serde_json::to_vec(&entry(1, 1_000_000))
            .expect("json")
            .len() as u64
            + 1;
        // Room for two lines and half of a third.
        let room = std::sync::Arc::new(AtomicU64::new(one * 2 + one / 2));
        let j = JournalWriter::open_with(dir.path(), |file| {
            Box::new(crate::trace::testutil::FullDisk {
                file,
                room: room.clone(),
            })
        })
        .expect("open");
        let mut results = Vec::new();
        for id in 1..=5 {
            results.push(j.append(&entry(id, id * 1_000_000)).is_ok());
        }
        assert_eq!(results, [true, true, false, false, false]);
        let path = dir.path().join(JOURNAL_FILE);
        let text = fs::read_to_string(&path).expect("read");
        assert!(text.ends_with('\n') && text.lines().count() == 2, "{text}");
        let gap = Unrecorded {
            exchanges: 3,
            bodies: 0,
            reason: "disk full".into(),
        };
        assert!(j.append_unrecorded(&gap).is_err(), "still full");
        // Space comes back: the gap is noted, later entries follow whole.
        room.store(1 << 20, SeqCst);
        j.append_unrecorded(&gap).expect("note the gap");
        j.append(&entry(6, 6_000_000)).expect("append");
        j.append(&entry(7, 7_000_000)).expect("append");
        let text = fs::read_to_string(&path).expect("read");
        for line in text.lines() {
            serde_json::from_str::<serde_json::Value>(line).expect("every line parses");
        }
        let report = j.finish("t").expect("finish");
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        assert_eq!(report.entries, 4);
        assert_eq!(report.unrecorded, gap);
        let har: serde_json::Value =
            serde_json::from_slice(&fs::read(&report.har).expect("read har")).expect("json");
        assert_eq!(har["log"]["_unrecorded"]["exchanges"], 3);
        assert!(
            validate_har_1_2(&har).is_empty(),
            "{:?}",
            validate_har_1_2(&har)
        );
        let t = crate::trace::load_trace(dir.path()).expect("load");
        let ids: Vec<_> = t.entries.iter().map(|e| e.id).collect();
        assert_eq!(ids, [Some(1), Some(2), Some(6), Some(7)]);
        assert_eq!(t.unrecorded, gap, "read back from trace.har");
        assert!(t.notes.is_empty(), "the HAR is complete: {:?}", t.notes);
        // The journal alone says the same.
        let t = crate::trace::load_trace(&path).expect("load journal");
        assert_eq!((t.entries.len(), t.unrecorded.clone()), (4, gap));
    }

    #[test]
    fn a_failed_cut_is_retried_before_the_next_line() {
        /// Fails the first `cuts_fail` truncations and writes half of the first line.
        #[derive(Debug)]
        struct Stubborn {
            file: File,
            half_written: bool,
            cuts_fail: u32,
        }
        impl Write for Stubborn {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                if !self.half_written {
                    self.half_written = true;
                    self.file.write_all(&buf[..buf.len() / 2])?;
                    return Err(io::Error::other("EIO"));
                }
                self.file.write(buf)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        impl LogFile for Stubborn {
            fn truncate_to(&mut self, len: u64) -> io::Result<()> {
                if self.cuts_fail > 0 {
                    self.cuts_fail -= 1;
                    return Err(io::Error::other("cannot cut"));
                }
                self.file.set_len(len)
            }
            fn sync(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let dir = TempDir::new("journal-stubborn");
        let j = JournalWriter::open_with(dir.path(), |file| {
            Box::new(Stubborn {
                file,
                half_written: false,
                cuts_fail: 2,
            })
        })
        .expect("open");
        assert!(j.append(&entry(1, 1)).is_err(), "torn write");
        assert!(
            j.append(&entry(2, 2)).is_err(),
            "the cut fails again: nothing written"
        );
        j.append(&entry(3, 3))
            .expect("cut works now, then the line");
        let text = fs::read_to_string(dir.path().join(JOURNAL_FILE)).expect("read");
        assert_eq!(text.lines().count(), 1, "{text}");
        let back: Entry = serde_json::from_str(text.trim_end()).expect("whole line");
        assert_eq!(back.id, Some(3));
    }

    #[test]
    fn stale_har_copies_are_removed_on_open() {
        let dir = TempDir::new("journal-stale");
        let stale = dir.path().join(".trace.har.tmp-4194304999-0");
        fs::write(&stale, b"{\"log\"").expect("write");
        let mine = temp_har_path(dir.path());
        fs::write(&mine, b"x").expect("write");
        let j = JournalWriter::open(dir.path()).expect("open");
        assert!(
            !stale.exists(),
            "a copy of a pid that cannot exist is removed"
        );
        assert!(mine.exists(), "this process' own temp file is left alone");
        assert_eq!(j.existing_lines(), 0);
    }

    #[test]
    fn open_names_the_path_on_failure() {
        let dir = TempDir::new("journal-fail");
        let blocker = dir.path().join("file");
        fs::write(&blocker, b"x").expect("write");
        let err = JournalWriter::open(blocker.join("sub")).expect_err("not a dir");
        assert!(err.to_string().contains("file"), "{err}");
    }
}
