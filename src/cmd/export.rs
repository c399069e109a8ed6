//! `modscope export TRACE`: a recorded trace sent to an OpenTelemetry collector, or
//! written as OTLP/JSON.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::cli::ExportArgs;
use crate::export::{host_name, live_settings, process_env};
use crate::otlp::settings::ProcessFacts;
use crate::otlp::span::{derive_span_id, unix_nanos};
use crate::otlp::{entry_span, export_request, parse_traceparent, OtlpExporter, SpanContext};
use crate::tls::UpstreamTrust;
use crate::trace::load_trace;

/// `modscope export` has nothing else to do, so it waits longer for a slow collector.
const EXPORT_DEADLINE: Duration = Duration::from_secs(60);

/// `modscope export TRACE (--otlp URL | --otlp-file FILE)`.
pub async fn export(args: ExportArgs) -> Result<i32> {
    let trace = load_trace(&args.trace)
        .with_context(|| format!("cannot read the trace {}", args.trace.display()))?;
    for problem in &trace.problems {
        eprintln!("modscope: skipped: {problem}");
    }
    let bases = crate::report::goproxy_bases(process_env("GOPROXY").as_deref());
    let (ctx, root) = export_context(&trace.entries, &trace.source);
    let mut spans = Vec::with_capacity(trace.entries.len() + 1);
    let child_ctx = SpanContext {
        parent: Some(root.span_id[..].try_into().unwrap_or([0; 8])),
        ..ctx
    };
    for (i, entry) in trace.entries.iter().enumerate() {
        spans.push(entry_span(entry, i, &child_ctx, &bases));
    }
    spans.push(root);
    let count = spans.len();

    if let Some(file) = &args.otlp_file {
        let facts = ProcessFacts {
            host_name: host_name(),
            pid: std::process::id(),
        };
        let resource = crate::otlp::settings::resource(&process_env, &facts)
            .context("cannot read OTEL_RESOURCE_ATTRIBUTES")?;
        write_json_lines(file, &resource, spans)?;
        if file != Path::new("-") {
            eprintln!(
                "modscope: {count} span(s) written to {} as OTLP/JSON",
                file.display()
            );
        }
        return Ok(0);
    }

    let trust = UpstreamTrust::new(&args.upstream_ca).context("cannot load trust roots")?;
    let Some(settings) = live_settings(args.otlp.as_deref())? else {
        anyhow::bail!("no collector given: pass --otlp URL or --otlp-file FILE");
    };
    let url = settings.url.clone();
    let exporter = OtlpExporter::start(settings, Some(trust));
    for span in spans {
        exporter.submit_wait(span).await;
    }
    let stats = exporter.finish(EXPORT_DEADLINE).await;
    if stats.dropped > 0 {
        anyhow::bail!(
            "{} of {count} span(s) did not reach {url}: {}",
            stats.dropped,
            stats.last_error.as_deref().unwrap_or("unknown reason")
        );
    }
    eprintln!("modscope: {} span(s) sent to {url}", stats.sent);
    Ok(0)
}

/// An exported trace's context: the CI job's `TRACEPARENT` when set, else a trace id
/// derived from the trace itself, so exporting the same recording twice does not make
/// two traces. The root span covers the first start to the last end.
fn export_context(
    entries: &[crate::trace::Entry],
    source: &Path,
) -> (SpanContext, crate::otlp::proto::Span) {
    use sha2::{Digest, Sha256};
    let first = entries
        .first()
        .map(|e| e.started_date_time.as_str())
        .unwrap_or("");
    let digest = Sha256::new()
        .chain_update(first.as_bytes())
        .chain_update((entries.len() as u64).to_be_bytes())
        .chain_update(
            source
                .file_name()
                .map(|n| n.as_encoded_bytes())
                .unwrap_or(b""),
        )
        .finalize();
    let ctx = process_env("TRACEPARENT")
        .and_then(|v| parse_traceparent(&v))
        .unwrap_or_else(|| {
            let mut trace_id = [0u8; 16];
            trace_id.copy_from_slice(&digest[..16]);
            SpanContext {
                trace_id,
                parent: None,
                flags: 1,
            }
        });
    let start = entries
        .iter()
        .filter_map(|e| unix_nanos(&e.started_date_time))
        .min()
        .unwrap_or(0);
    let end = entries
        .iter()
        .filter_map(|e| {
            unix_nanos(&e.started_date_time).map(|s| s + (e.time.max(0.0) * 1e6) as u64)
        })
        .max()
        .unwrap_or(start);
    let failed = entries
        .iter()
        .filter(|e| e.response.status == 0 || e.error.is_some())
        .count();
    let name = source
        .parent()
        .filter(|_| {
            source
                .file_name()
                .is_some_and(|n| n == "trace.har" || n == "journal.jsonl")
        })
        .unwrap_or(source)
        .display()
        .to_string();
    let run = crate::otlp::RunFacts {
        command: vec!["modscope".into(), "trace".into(), name],
        exit_code: 0,
        verdict: None,
        start_unix_nanos: start,
        end_unix_nanos: end,
        requests: entries.len(),
        failed,
    };
    let root_id = derive_span_id(&ctx.trace_id, 0);
    (ctx, crate::otlp::run_span(&run, &ctx, root_id))
}

/// OTLP/JSON lines, one export request of up to `MAX_BATCH` spans per line.
fn write_json_lines(
    file: &Path,
    resource: &[crate::otlp::proto::KeyValue],
    spans: Vec<crate::otlp::proto::Span>,
) -> Result<()> {
    let mut out: Box<dyn Write> = if file == Path::new("-") {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(std::io::BufWriter::new(
            std::fs::File::create(file)
                .with_context(|| format!("cannot create {}", file.display()))?,
        ))
    };
    let mut spans = spans.into_iter().peekable();
    while spans.peek().is_some() {
        let batch: Vec<_> = spans
            .by_ref()
            .take(crate::otlp::exporter::MAX_BATCH)
            .collect();
        let doc = crate::otlp::json::request_to_json(&export_request(resource, batch));
        writeln!(out, "{doc}").with_context(|| format!("cannot write {}", file.display()))?;
    }
    out.flush()
        .with_context(|| format!("cannot write {}", file.display()))?;
    Ok(())
}
