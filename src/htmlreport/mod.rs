//! `modscope report` and `--report FILE`: one self-contained HTML file (waterfall,
//! connections, Go view, details, filters) made from a trace.
//!
//! `model` is the pure part (entries → report model, table-tested); `html` embeds the model
//! in the template under `assets/`; this file is the IO shell that streams a trace from
//! disk, picks small text bodies for previews and writes the file.

pub mod html;
pub mod model;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::diagnose::GoEnv;
use crate::trace::{Entry, LoadProblem, LoadedTrace, TraceError, HAR_FILE, JOURNAL_FILE};

pub use model::{ReportBuilder, ReportModel, ReportSource};

/// Largest body shown as a preview in the details pane.
pub const PREVIEW_LIMIT: i64 = 4096;

#[derive(Debug, Error)]
pub enum ReportError {
    #[error("cannot read the trace")]
    Trace(#[from] TraceError),
    #[error("cannot write the report {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What generating a report did, for the command's closing lines.
#[derive(Debug, Default)]
pub struct ReportStats {
    pub entries: usize,
    pub bytes: u64,
    pub problems: Vec<LoadProblem>,
    pub notes: Vec<String>,
}

/// `TRACE/report.html` for a trace directory, else `report.html`.
pub fn default_output(trace: &Path) -> PathBuf {
    if trace.is_dir() {
        trace.join("report.html")
    } else {
        PathBuf::from("report.html")
    }
}

/// Reads `trace` one entry at a time and writes the report to `out`.
pub fn write_from_trace(
    trace: &Path,
    out: &Path,
    source: ReportSource,
    env: Option<&GoEnv>,
    goproxy_bases: Vec<String>,
) -> Result<ReportStats, ReportError> {
    let mut builder = ReportBuilder::new(goproxy_bases);
    let mut stats = ReportStats::default();
    visit_entries(trace, &mut stats, |loaded, entry| {
        let preview = preview(loaded, &entry);
        builder.push(&entry, preview);
    })?;
    stats.entries = builder.len();
    let (model, details) = builder.finish(env, source);
    stats.bytes = write_html(out, &model, &details)?;
    Ok(stats)
}

/// A report from entries already in memory (a `run` that did not record to disk).
pub fn write_from_entries(
    entries: &[Entry],
    out: &Path,
    source: ReportSource,
    env: Option<&GoEnv>,
    goproxy_bases: Vec<String>,
) -> Result<ReportStats, ReportError> {
    let mut builder = ReportBuilder::new(goproxy_bases);
    for entry in entries {
        builder.push(entry, inline_preview(entry));
    }
    let (model, details) = builder.finish(env, source);
    Ok(ReportStats {
        entries: entries.len(),
        bytes: write_html(out, &model, &details)?,
        ..ReportStats::default()
    })
}

/// Hands every entry of a trace, with the trace its bodies are found in, to `visit`, in
/// the order `summary` numbers them (so `#N` means the same entry in both).
/// Journals (a `.jsonl`, or a directory whose recorder never wrote `trace.har`) are read
/// line by line; otherwise `load_trace` decides, as it does for `summary`.
fn visit_entries(
    trace: &Path,
    stats: &mut ReportStats,
    mut visit: impl FnMut(&LoadedTrace, Entry),
) -> Result<(), ReportError> {
    let journal = if trace.is_dir() {
        Some(trace.join(JOURNAL_FILE)).filter(|j| j.is_file() && !trace.join(HAR_FILE).exists())
    } else {
        let ext = trace
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        matches!(ext.as_deref(), Some("jsonl" | "ndjson")).then(|| trace.to_path_buf())
    };
    if let Some(journal) = journal {
        let bodies = LoadedTrace {
            root: journal
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from(".")),
            source: journal.clone(),
            ..LoadedTrace::default()
        };
        let scan = crate::trace::reader::scan_journal(&journal, |_, _, e| visit(&bodies, e))?;
        stats.problems = scan.problems;
        return Ok(());
    }
    // load_trace streams HAR files and moves large embedded bodies out of memory.
    let mut loaded = crate::trace::load_trace(trace)?;
    stats.problems = std::mem::take(&mut loaded.problems);
    stats.notes = std::mem::take(&mut loaded.notes);
    for entry in std::mem::take(&mut loaded.entries) {
        visit(&loaded, entry);
    }
    Ok(())
}

/// Whether a body of this type and size may be shown in the details pane.
fn previewable(content: &crate::trace::Content) -> bool {
    (1..=PREVIEW_LIMIT).contains(&content.size)
        && crate::trace::looks_like_text(b"", Some(&content.mime_type))
}

/// A small text body embedded in the entry itself.
fn inline_preview(entry: &Entry) -> Option<String> {
    let c = &entry.response.content;
    if !previewable(c) || c.encoding.is_some() {
        return None;
    }
    c.text.clone()
}

/// A small text body, embedded or from `bodies/`; anything else stays out of the page.
fn preview(trace: &LoadedTrace, entry: &Entry) -> Option<String> {
    let c = &entry.response.content;
    if !previewable(c) {
        return None;
    }
    let bytes = crate::trace::entry_body(trace, c).ok()?;
    crate::trace::looks_like_text(&bytes, Some(&c.mime_type))
        .then(|| String::from_utf8(bytes).ok())
        .flatten()
}

/// Writes the page next to its final name, then renames it, so a reader never sees half.
fn write_html(
    out: &Path,
    model: &ReportModel,
    details: &[model::Detail],
) -> Result<u64, ReportError> {
    let err = |source| ReportError::Write {
        path: out.to_path_buf(),
        source,
    };
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report.html".to_string());
    let tmp = out.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let written = (|| {
        let mut w = BufWriter::new(File::create(&tmp)?);
        let n = html::render(&mut w, model, details)?;
        w.flush()?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, out)?;
        Ok(n)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(err)
}
