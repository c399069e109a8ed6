//! From trace entries to the Go-aware summary and diagnosis that `summary` and `run` print.

use crate::diagnose::{self, GoEnv, Observation};
use crate::exchange::{Exchange, PhaseTimes};
use crate::gomod::{self, GoRequest};
use crate::trace::Entry;

/// Maps HAR entries (ours or another tool's) to what diagnosis reads.
pub fn observations(entries: &[Entry], goproxy_bases: &[String]) -> Vec<Observation> {
    let starts: Vec<Option<f64>> = entries
        .iter()
        .map(|e| started_ms(&e.started_date_time))
        .collect();
    let first = starts
        .iter()
        .flatten()
        .copied()
        .fold(f64::INFINITY, f64::min);
    entries
        .iter()
        .zip(starts)
        .enumerate()
        .map(|(index, (entry, start))| {
            observation(
                index,
                entry,
                start.map(|s| s - first).unwrap_or(0.0),
                goproxy_bases,
            )
        })
        .collect()
}

fn observation(index: usize, e: &Entry, started_ms: f64, bases: &[String]) -> Observation {
    let url = e.request.url.clone();
    let go: GoRequest =
        e.go.clone()
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_else(|| gomod::classify(&e.request.method, &url, bases));
    let host = url
        .split_once("://")
        .map(|(_, rest)| rest.split(['/', '?']).next().unwrap_or("").to_string())
        .unwrap_or_default();
    let phase = |v: f64| (v >= 0.0).then_some(v);
    let t = &e.timings;
    let tls = phase(t.ssl);
    let tcp = phase(t.connect).map(|c| (c - tls.unwrap_or(0.0)).max(0.0));
    let content = &e.response.content;
    let response_text = content
        .text
        .as_ref()
        .filter(|_| content.encoding.is_none() && content.mime_type.starts_with("text/plain"))
        .map(|t| t.chars().take(1024).collect());
    let retry_after = e
        .response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("retry-after"))
        .map(|h| h.value.clone());
    Observation {
        index,
        started_ms,
        method: e.request.method.clone(),
        url,
        host,
        status: e.response.status,
        error: e.error.clone(),
        fault: e.fault.clone(),
        go,
        timings: PhaseTimes {
            blocked: phase(t.blocked),
            dns: phase(t.dns),
            tcp,
            tls,
            send: phase(t.send),
            wait: phase(t.wait),
            receive: phase(t.receive),
        },
        total_ms: e.time,
        response_bytes: content.size.max(0) as u64,
        body_complete: content.complete != Some(false),
        response_text,
        retry_after,
    }
}

fn started_ms(rfc3339: &str) -> Option<f64> {
    let t = time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .ok()?;
    Some((t.unix_timestamp_nanos() / 1_000) as f64 / 1000.0)
}

/// GOPROXY URLs, used as known bases when decoding module requests.
pub fn goproxy_bases(goproxy: Option<&str>) -> Vec<String> {
    gomod::parse_goproxy(goproxy.unwrap_or(""))
        .into_iter()
        .filter_map(|entry| match entry.target {
            gomod::ProxyTarget::Url(u) => Some(u),
            _ => None,
        })
        .collect()
}

/// The report text (or JSON) for a set of entries.
pub fn render(entries: &[Entry], env: Option<&GoEnv>, json: bool, color: bool) -> String {
    render_with_severity(entries, env, json, color).0
}

/// The report and the most severe finding in it (for `summary --fail-on`).
pub fn render_with_severity(
    entries: &[Entry],
    env: Option<&GoEnv>,
    json: bool,
    color: bool,
) -> (String, Option<diagnose::Severity>) {
    let bases = goproxy_bases(env.and_then(|e| e.goproxy.as_deref()));
    let obs = observations(entries, &bases);
    let summary = diagnose::summarize(&obs);
    let findings = diagnose::diagnose(&obs, env);
    let worst = findings.iter().map(|f| f.severity).max();
    let text = if json {
        let doc = serde_json::json!({ "summary": summary, "findings": findings });
        serde_json::to_string_pretty(&doc).unwrap_or_default()
    } else {
        diagnose::render_text(&summary, &findings, color)
    };
    (text, worst)
}

/// Entries for exchanges that were not recorded to disk (no bodies), for the end-of-run report.
pub fn entries_from_exchanges(exchanges: &[Exchange], goproxy_bases: &[String]) -> Vec<Entry> {
    exchanges
        .iter()
        .map(|ex| {
            let go = gomod::classify(&ex.request.method, &ex.request.url, goproxy_bases);
            crate::trace::build_entry(
                ex,
                serde_json::to_value(&go).ok(),
                &crate::trace::EntryBodies::default(),
                &crate::trace::BuildOptions { redact: true },
            )
        })
        .collect()
}
