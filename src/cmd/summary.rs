//! `modscope summary TRACE`: the summary and findings of a trace, as text or JSON;
//! `--fail-on` makes a finding's severity the exit status.

use anyhow::{Context, Result};

use crate::cli::{FailOn, SummaryArgs};
use crate::console::stdout_color;
use crate::diagnose::Severity;
use crate::trace::load_trace;

pub fn summary(args: SummaryArgs) -> Result<i32> {
    let mut trace = load_trace(&args.trace)
        .with_context(|| format!("cannot read the trace {}", args.trace.display()))?;
    for note in &trace.notes {
        eprintln!("modscope: {note}");
    }
    for problem in &trace.problems {
        eprintln!("modscope: skipped: {problem}");
    }
    crate::verify::fill_missing_h1(&mut trace.entries, &trace.root);
    let go_sum = args
        .go_sum
        .as_deref()
        .map(crate::verify::read_go_sum)
        .transpose()?;
    let obs = crate::report::observations(&trace.entries, &[]);
    let evidence = crate::verify::gather(&trace.entries, &obs, Some(&trace.root), go_sum, None);
    let rendered = crate::report::render_full(
        &trace.entries,
        &trace.unrecorded,
        None,
        &evidence,
        args.json,
        !args.json && stdout_color(),
    );
    let worst = rendered.worst;
    println!("{}", rendered.text);
    let threshold = match args.fail_on {
        Some(FailOn::Error) => Some(Severity::Error),
        Some(FailOn::Warning) => Some(Severity::Warning),
        None => None,
    };
    Ok(match (threshold, worst) {
        (Some(t), Some(w)) if w >= t => 1,
        _ => 0,
    })
}
