//! `modscope import CAPTURE -o DIR`: a packet capture turned into a trace directory.

use anyhow::{Context, Result};

use crate::cli::ImportArgs;
use crate::procenv::redact_goproxy;

pub fn import(args: ImportArgs) -> Result<i32> {
    let options = crate::capture::ImportOptions {
        redact: !args.no_redact,
        goproxy_bases: crate::report::goproxy_bases(
            redact_goproxy(std::env::var("GOPROXY").ok().as_deref(), !args.no_redact).as_deref(),
        ),
    };
    let report = crate::capture::import_with(&args.capture, &args.output, &options)
        .with_context(|| format!("cannot import {}", args.capture.display()))?;
    println!("{report}");
    for warning in &report.warnings {
        eprintln!("modscope: warning: {warning}");
    }
    println!(
        "trace written to {} (see: modscope summary {})",
        args.output.display(),
        args.output.display()
    );
    Ok(0)
}
