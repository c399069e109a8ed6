//! Plain-text terminal report of a summary and its findings.

use std::fmt::Write as _;

use super::findings::{clip, plural};
use super::{Finding, Percentiles, Severity, Summary};

const HOST_WIDTH: usize = 40;
const MODULE_WIDTH: usize = 72;
const ENTRIES_SHOWN: usize = 10;

#[derive(Clone, Copy)]
struct Paint {
    color: bool,
}

impl Paint {
    fn wrap(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn bold(&self, s: &str) -> String {
        self.wrap("1", s)
    }
    fn dim(&self, s: &str) -> String {
        self.wrap("2", s)
    }
    fn severity(&self, sev: Severity, s: &str) -> String {
        match sev {
            Severity::Error => self.wrap("1;31", s),
            Severity::Warning => self.wrap("33", s),
            Severity::Info => self.wrap("36", s),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Align {
    Left,
    Right,
}

/// Columns sized to their widest cell; colour is applied after padding so escape
/// codes never disturb alignment.
struct Table {
    headers: Vec<&'static str>,
    align: Vec<Align>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(cols: &[(&'static str, Align)]) -> Self {
        Table {
            headers: cols.iter().map(|c| c.0).collect(),
            align: cols.iter().map(|c| c.1).collect(),
            rows: Vec::new(),
        }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn render(&self, out: &mut String, p: Paint) {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(cell.chars().count());
                }
            }
        }
        let line = |cells: Vec<&str>| -> String {
            let mut s = String::from("  ");
            let last = cells.len().saturating_sub(1);
            for (i, cell) in cells.iter().enumerate() {
                let w = widths.get(i).copied().unwrap_or(0);
                let pad = w.saturating_sub(cell.chars().count());
                let right = self.align.get(i) == Some(&Align::Right);
                if right {
                    s.push_str(&" ".repeat(pad));
                }
                s.push_str(cell);
                if !right && i != last {
                    s.push_str(&" ".repeat(pad));
                }
                if i != last {
                    s.push_str("  ");
                }
            }
            s
        };
        let header = line(self.headers.clone());
        let _ = writeln!(out, "{}", p.dim(&header));
        for row in &self.rows {
            let _ = writeln!(out, "{}", line(row.iter().map(String::as_str).collect()));
        }
    }
}

pub(super) use crate::net::human_bytes as fmt_bytes;

pub(super) fn fmt_ms(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

fn fmt_span(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{} ms", fmt_ms(ms))
    } else {
        format!("{:.1} s", ms / 1000.0)
    }
}

fn fmt_pct(p: &Option<Percentiles>) -> String {
    match p {
        Some(p) => format!("{} / {} / {}", fmt_ms(p.p50), fmt_ms(p.p90), fmt_ms(p.max)),
        None => "-".to_string(),
    }
}

/// A compact report; ANSI colour only when `color` is set, so piped output stays clean.
pub fn render_text(summary: &Summary, findings: &[Finding], color: bool) -> String {
    let p = Paint { color };
    let mut out = String::new();
    let t = &summary.totals;
    let mut extras = vec![format!("{} failed", t.failures)];
    if t.not_found > 0 {
        extras.push(format!("{} not found", t.not_found));
    }
    if t.injected > 0 {
        extras.push(format!("{} injected", t.injected));
    }
    let _ = writeln!(
        out,
        "{} {}, {} in {} ({})",
        p.bold("modscope summary:"),
        plural(t.requests, "request"),
        fmt_bytes(t.bytes),
        fmt_span(summary.span_ms),
        extras.join(", ")
    );

    if !summary.by_kind.is_empty() {
        let _ = writeln!(out, "\n{}", p.bold("By kind"));
        let mut table = counts_table("kind");
        for k in &summary.by_kind {
            table.row(counts_row(k.kind.as_str().to_string(), &k.counts));
        }
        table.render(&mut out, p);
    }

    if !summary.by_host.is_empty() {
        let _ = writeln!(out, "\n{}", p.bold("By host"));
        let mut table = counts_table("host");
        for h in &summary.by_host {
            table.row(counts_row(clip(&h.host, HOST_WIDTH), &h.counts));
        }
        table.render(&mut out, p);

        let _ = writeln!(
            out,
            "\n{} {}",
            p.bold("Timings per host"),
            p.dim("(ms: p50 / p90 / max)")
        );
        let mut table = Table::new(&[
            ("host", Align::Left),
            ("dns", Align::Right),
            ("connect", Align::Right),
            ("tls", Align::Right),
            ("wait", Align::Right),
            ("receive", Align::Right),
        ]);
        for h in &summary.by_host {
            let tm = &h.timings;
            table.row(vec![
                clip(&h.host, HOST_WIDTH),
                fmt_pct(&tm.dns),
                fmt_pct(&tm.connect),
                fmt_pct(&tm.tls),
                fmt_pct(&tm.wait),
                fmt_pct(&tm.receive),
            ]);
        }
        table.render(&mut out, p);
    }

    if !summary.slowest_downloads.is_empty() {
        let _ = writeln!(out, "\n{}", p.bold("Slowest module downloads"));
        let mut table = Table::new(&[
            ("ms", Align::Right),
            ("kind", Align::Left),
            ("status", Align::Right),
            ("bytes", Align::Right),
            ("module@version", Align::Left),
            ("host", Align::Left),
        ]);
        for d in &summary.slowest_downloads {
            table.row(vec![
                fmt_ms(d.total_ms),
                d.kind.as_str().to_string(),
                d.status.to_string(),
                fmt_bytes(d.bytes),
                clip(&d.module_version(), MODULE_WIDTH),
                clip(&d.host, HOST_WIDTH),
            ]);
        }
        table.render(&mut out, p);
    }

    render_findings(&mut out, findings, p);
    out
}

fn counts_table(first: &'static str) -> Table {
    Table::new(&[
        (first, Align::Left),
        ("requests", Align::Right),
        ("bytes", Align::Right),
        ("failed", Align::Right),
        ("404/410", Align::Right),
        ("injected", Align::Right),
    ])
}

fn counts_row(label: String, c: &super::Counts) -> Vec<String> {
    vec![
        label,
        c.requests.to_string(),
        fmt_bytes(c.bytes),
        c.failures.to_string(),
        c.not_found.to_string(),
        c.injected.to_string(),
    ]
}

fn render_findings(out: &mut String, findings: &[Finding], p: Paint) {
    let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
    if findings.is_empty() {
        let _ = writeln!(out, "\n{} none", p.bold("Findings:"));
        return;
    }
    let _ = writeln!(
        out,
        "\n{} {}, {}, {}",
        p.bold("Findings:"),
        plural(count(Severity::Error), "error"),
        plural(count(Severity::Warning), "warning"),
        count(Severity::Info).to_string() + " info"
    );
    // Severity labels share one width so titles line up.
    const LABEL: usize = 5;
    let indent = " ".repeat(2 + LABEL + 2);
    for f in findings {
        let label = match f.severity {
            Severity::Error => "ERROR",
            Severity::Warning => "WARN",
            Severity::Info => "INFO",
        };
        let padded = format!("{label:<LABEL$}");
        let _ = writeln!(out, "  {}  {}", p.severity(f.severity, &padded), f.title);
        let mut meta = format!("[{}]", f.cause.as_str());
        if !f.entries.is_empty() {
            let shown: Vec<String> = f
                .entries
                .iter()
                .take(ENTRIES_SHOWN)
                .map(|e| format!("#{e}"))
                .collect();
            meta.push_str(" entries ");
            meta.push_str(&shown.join(" "));
            if f.entries.len() > ENTRIES_SHOWN {
                meta.push_str(&format!(" +{} more", f.entries.len() - ENTRIES_SHOWN));
            }
        }
        let _ = writeln!(out, "{indent}{}", p.dim(&meta));
        if let Some(d) = &f.detail {
            let _ = writeln!(out, "{indent}{}", p.dim(&format!("detail: {d}")));
        }
        let _ = writeln!(out, "{indent}fix: {}", f.advice);
    }
}
