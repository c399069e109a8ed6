//! Crash-safe trace writing: the append-only `journal.jsonl` and the atomic `trace.har`.
//!
//! Each finished exchange becomes one journal line handed to the OS with a single
//! `write`, so a `kill -9` loses nothing already appended. `trace.har` is only a
//! convenience written at clean shutdown; the reader rebuilds it from the journal when it
//! is missing or stale.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::Serialize;

use super::error::TraceError;
use super::har::{Creator, Entry, HAR_VERSION};
use super::reader::LoadProblem;
use super::{BODIES_DIR, HAR_FILE, JOURNAL_FILE};

/// Appends entries to `DIR/journal.jsonl`. Shareable between tasks (`&self` methods);
/// the lock keeps lines whole when two exchanges end at once. Calls block on disk IO.
#[derive(Debug)]
pub struct JournalWriter {
    dir: PathBuf,
    path: PathBuf,
    file: Mutex<File>,
}

/// What [`JournalWriter::finish`] wrote.
#[derive(Debug)]
pub struct FinishReport {
    pub har: PathBuf,
    pub entries: usize,
    /// Bad journal lines (for example from an earlier run that was killed mid-write).
    pub problems: Vec<LoadProblem>,
}

impl JournalWriter {
    /// Creates `dir`, `dir/bodies/` and opens `dir/journal.jsonl` for appending; an
    /// existing journal is continued.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, TraceError> {
        let dir = dir.as_ref().to_path_buf();
        let bodies = dir.join(BODIES_DIR);
        fs::create_dir_all(&bodies).map_err(|e| TraceError::io(&bodies, e))?;
        let path = dir.join(JOURNAL_FILE);
        let mut file = File::options()
            .create(true)
            .append(true)
            .read(true)
            .open(&path)
            .map_err(|e| TraceError::io(&path, e))?;
        // A run killed mid-line leaves a fragment; without a newline the next entry would
        // be glued to it and lost too.
        if ends_without_newline(&mut file).map_err(|e| TraceError::io(&path, e))? {
            file.write_all(b"\n")
                .map_err(|e| TraceError::io(&path, e))?;
        }
        Ok(JournalWriter {
            dir,
            path,
            file: Mutex::new(file),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `entry` as one compact JSON line.
    pub fn append(&self, entry: &Entry) -> Result<(), TraceError> {
        let mut line = serde_json::to_vec(entry).map_err(|source| TraceError::Serialize {
            path: self.path.clone(),
            source,
        })?;
        line.push(b'\n');
        // A panic elsewhere while holding the lock cannot leave a half line (the write is
        // one call), so a poisoned lock is safe to reuse.
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        // `File` is unbuffered: once `write_all` returns, the line is in the kernel.
        file.write_all(&line)
            .map_err(|e| TraceError::io(&self.path, e))
    }

    /// Flushes the journal to disk (survives power loss, not just a process crash).
    pub fn sync(&self) -> Result<(), TraceError> {
        let file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        file.sync_all().map_err(|e| TraceError::io(&self.path, e))
    }

    /// Clean shutdown: syncs the journal and writes `trace.har` from it, entries sorted
    /// by start time (the journal is in completion order). Streams: only the start time
    /// and position of each line are kept, then entries are re-read one at a time.
    pub fn finish(self, creator_version: &str) -> Result<FinishReport, TraceError> {
        self.sync()?;
        let mut index: Vec<(String, u64, usize)> = Vec::new();
        let problems = super::reader::scan_journal(&self.path, |offset, len, entry| {
            index.push((entry.started_date_time, offset, len));
        })?;
        // Our timestamps are fixed-width UTC, so text order is time order; the offset
        // keeps equal times in journal order.
        index.sort();
        let har = write_har_streaming(&self.dir, &self.path, &index, creator_version)?;
        Ok(FinishReport {
            har,
            entries: index.len(),
            problems,
        })
    }
}

/// Writes `trace.har` atomically from journal lines at the given positions, in order.
fn write_har_streaming(
    dir: &Path,
    journal: &Path,
    index: &[(String, u64, usize)],
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
            "{{\n  \"log\": {{\n    \"version\": \"{HAR_VERSION}\",\n    \"creator\": {creator},\n    \"entries\": ["
        )
        .map_err(|e| TraceError::io(&tmp, e))?;
        let mut line = Vec::new();
        for (i, (_, offset, len)) in index.iter().enumerate() {
            line.resize(*len, 0);
            source
                .seek(SeekFrom::Start(*offset))
                .and_then(|_| source.read_exact(&mut line))
                .map_err(|e| TraceError::io(journal, e))?;
            let entry: Entry =
                serde_json::from_slice(line.trim_ascii()).map_err(|e| TraceError::Json {
                    path: journal.to_path_buf(),
                    line: None,
                    source: e,
                })?;
            out.write_all(if i == 0 { b"\n" } else { b",\n" })
                .map_err(|e| TraceError::io(&tmp, e))?;
            serde_json::to_writer_pretty(&mut out, &entry).map_err(ser)?;
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

fn temp_har_path(dir: &Path) -> PathBuf {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    dir.join(format!(
        ".{HAR_FILE}.tmp-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ))
}

fn ends_without_newline(file: &mut File) -> io::Result<bool> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(false);
    }
    file.seek(SeekFrom::Start(len - 1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
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
    use crate::trace::build::{build_entry, BuildOptions, EntryBodies};
    use crate::trace::testutil::{sample_exchange, TestDir};
    use crate::trace::validate::validate_har_1_2;

    fn entry(id: u64, started_micros: u64) -> Entry {
        let mut ex = sample_exchange();
        ex.id = id;
        ex.started = std::time::UNIX_EPOCH + std::time::Duration::from_micros(started_micros);
        build_entry(&ex, None, &EntryBodies::default(), &BuildOptions::default())
    }

    #[test]
    fn append_writes_one_line_per_entry_immediately() {
        let dir = TestDir::new("journal-append");
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
        let dir = TestDir::new("journal-torn");
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
        let dir = TestDir::new("journal-har");
        let p = write_har_atomic(dir.path(), &[entry(1, 1)], "1").expect("write");
        let p2 = write_har_atomic(dir.path(), &[entry(1, 1), entry(2, 2)], "1").expect("write");
        assert_eq!(p, p2);
        let v: serde_json::Value =
            serde_json::from_slice(&fs::read(&p).expect("read")).expect("json");
        assert_eq!(v["log"]["entries"].as_array().map(Vec::len), Some(2));
        assert_eq!(v["log"]["version"], "1.2");
    }

    #[test]
    fn open_names_the_path_on_failure() {
        let dir = TestDir::new("journal-fail");
        let blocker = dir.path().join("file");
        fs::write(&blocker, b"x").expect("write");
        let err = JournalWriter::open(blocker.join("sub")).expect_err("not a dir");
        assert!(err.to_string().contains("file"), "{err}");
    }
}
