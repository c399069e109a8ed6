//! `modscope report TRACE`: a self-contained HTML report of a trace.

use anyhow::{Context, Result};

use crate::cli::ReportArgs;

/// `modscope report TRACE [-o FILE]`.
pub fn report(args: ReportArgs) -> Result<i32> {
    let out = args
        .output
        .clone()
        .unwrap_or_else(|| crate::htmlreport::default_output(&args.trace));
    let source = crate::htmlreport::ReportSource {
        command: None,
        trace: args.trace.display().to_string(),
        producer: env!("CARGO_PKG_VERSION").to_string(),
    };
    let stats = crate::htmlreport::write_from_trace(&args.trace, &out, source, None, Vec::new())
        .with_context(|| format!("cannot make a report of {}", args.trace.display()))?;
    for note in &stats.notes {
        eprintln!("modscope: {note}");
    }
    for problem in &stats.problems {
        eprintln!("modscope: skipped: {problem}");
    }
    println!(
        "report written to {} ({} entries, {} bytes)",
        out.display(),
        stats.entries,
        stats.bytes
    );
    Ok(0)
}
