//! `modscope verify TRACE [--go-sum FILE]`: checks every recorded `.zip`/`.mod` against
//! go.sum and the checksum-database answers.

use anyhow::{Context, Result};

use crate::cli::VerifyArgs;
use crate::diagnose::{self, VerifyStatus};
use crate::verify::{fill_missing_h1, gather, read_go_sum};

/// `modscope verify`: exit 1 when a recorded `.zip`/`.mod` differs from go.sum, the
/// checksum database or another host's copy, or is a zip go refuses.
pub fn verify(args: VerifyArgs) -> Result<i32> {
    let mut trace = crate::trace::load_trace(&args.trace)
        .with_context(|| format!("cannot read the trace {}", args.trace.display()))?;
    for problem in &trace.problems {
        eprintln!("modscope: skipped: {problem}");
    }
    fill_missing_h1(&mut trace.entries, &trace.root);
    let go_sum = args.go_sum.as_deref().map(read_go_sum).transpose()?;
    let obs = crate::report::observations(&trace.entries, &[]);
    let evidence = gather(&trace.entries, &obs, Some(&trace.root), go_sum, None);
    let rows = diagnose::verify_rows(&obs, evidence.go_sum.as_ref());
    let findings = diagnose::checksum_findings(&obs, evidence.go_sum.as_ref(), &evidence.zips);
    if args.json {
        let doc = serde_json::json!({ "checked": rows, "findings": findings });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        for r in &rows {
            let what = match &r.status {
                VerifyStatus::Verified(sources) => format!("ok ({})", sources.join(", ")),
                VerifyStatus::NoRecord => {
                    "no record to compare (no go.sum line or checksum-database answer)".to_string()
                }
                VerifyStatus::Mismatch => "MISMATCH".to_string(),
                VerifyStatus::Rejected(why) => format!("REJECTED: {why}"),
            };
            println!(
                "#{:<4} {}@{} {:<6} {:<28} {} {what}",
                r.entry,
                r.module,
                r.version,
                r.file.as_str(),
                r.host,
                r.h1.as_deref().unwrap_or("-"),
            );
        }
        for f in &findings {
            println!(
                "\nERROR  {}\n  [{}] {}",
                f.title,
                f.cause,
                f.detail.as_deref().unwrap_or("")
            );
            println!("  fix: {}", f.advice);
        }
        let bad = findings.len();
        println!(
            "\n{} checked, {} {}",
            rows.len(),
            bad,
            if bad == 1 { "problem" } else { "problems" }
        );
    }
    Ok(if findings.is_empty() { 0 } else { 1 })
}
