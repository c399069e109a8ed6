//! IO: OpenTelemetry around the proxy-running commands (start-up from `--otlp` and the
//! `OTEL_*` environment, the run's root span, the closing flush); `cmd::export` sends a
//! recorded trace.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use ring::rand::{SecureRandom, SystemRandom};

use crate::otlp::settings::{settings, ProcessFacts};
use crate::otlp::{
    parse_traceparent, ExportStats, OtlpExporter, OtlpSettings, SpanContext, SpanGrouping,
};
use crate::tls::UpstreamTrust;

/// How long the closing flush may hold up the end of `run`/`proxy`/`replay`.
pub const FLUSH_DEADLINE: Duration = Duration::from_secs(3);

fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // The system RNG failing is not a reason to stop proxying; ids then only need to differ.
    if SystemRandom::new().fill(&mut bytes).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
            ^ u128::from(std::process::id());
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (t >> ((i % 16) * 8)) as u8;
        }
    }
    bytes
}

/// This machine's name, for the `host.name` resource attribute.
pub(crate) fn host_name() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into the buffer we own.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    std::str::from_utf8(&buf[..end])
        .ok()
        .map(str::to_string)
        .filter(|h| !h.is_empty())
}

/// An environment variable, as the OTLP settings look them up.
pub(crate) fn process_env(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

/// OTLP settings from `--otlp` and the environment; `None` when export is not asked for.
pub fn live_settings(flag: Option<&str>) -> Result<Option<OtlpSettings>> {
    let facts = ProcessFacts {
        host_name: host_name(),
        pid: std::process::id(),
    };
    settings(flag, &process_env, &facts).context("cannot set up OpenTelemetry export")
}

/// Starts the exporter for a proxy-running command (on the current tokio runtime).
pub fn start_live(flag: Option<&str>, trust: &UpstreamTrust) -> Result<Option<Arc<OtlpExporter>>> {
    Ok(live_settings(flag)?.map(|s| {
        eprintln!("modscope: sending spans to {} (OpenTelemetry)", s.url);
        OtlpExporter::start(s, Some(trust.clone()))
    }))
}

/// Spans of a long-running `proxy` or `replay`: one trace per client connection.
pub fn per_connection_grouping() -> SpanGrouping {
    SpanGrouping::PerClientConnection {
        nonce: random(),
        flags: 1,
    }
}

/// The trace a `run` belongs to: the CI job's (`TRACEPARENT`, W3C) when set, else a new
/// one; and the id of the run's root span, which every exchange span hangs from.
pub fn run_context() -> (SpanContext, [u8; 8]) {
    let ctx = process_env("TRACEPARENT")
        .and_then(|v| parse_traceparent(&v))
        .unwrap_or_else(|| SpanContext {
            trace_id: random(),
            parent: None,
            flags: 1,
        });
    (ctx, random())
}

/// Flushes and says what happened: always when spans were lost, otherwise unless quiet.
pub async fn finish_live(exporter: &OtlpExporter, quiet: bool) -> ExportStats {
    let stats = exporter.finish(FLUSH_DEADLINE).await;
    if stats.dropped > 0 {
        eprintln!(
            "modscope: OpenTelemetry: {} span(s) sent to {}, {} dropped ({})",
            stats.sent,
            exporter.url(),
            stats.dropped,
            stats.last_error.as_deref().unwrap_or("unknown reason")
        );
    } else if !quiet {
        eprintln!(
            "modscope: OpenTelemetry: {} span(s) sent to {}",
            stats.sent,
            exporter.url()
        );
    }
    stats
}
