//! From trace entries to the Go-aware summary and diagnosis that `summary` and `run` print.

use crate::diagnose::{self, GoEnv, Observation};
use crate::exchange::{Exchange, PhaseTimes};
use crate::gomod::{self, GoRequest};
use crate::trace::{Entry, Unrecorded};

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
        .map(|(position, (entry, start))| {
            // Entry numbers count from 1, like `_id` and every `#N` modscope prints.
            observation(
                position + 1,
                entry,
                start.map(|s| s - first).unwrap_or(0.0),
                goproxy_bases,
            )
        })
        .collect()
}

/// One entry as diagnosis reads it; `started_ms` is relative to the trace's first entry.
/// Public so a streaming reader (the HTML report) builds the same observations as `summary`.
pub fn observation(index: usize, e: &Entry, started_ms: f64, bases: &[String]) -> Observation {
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
    let go_kind = go.kind;
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
        stall: e
            .extra
            .get("_stall")
            .and_then(|v| serde_json::from_value(v.clone()).ok()),
        total_ms: e.time,
        // Bytes on the wire: `content.size` is the decoded length under a Content-Encoding.
        response_bytes: if e.response.body_size >= 0 {
            e.response.body_size as u64
        } else {
            content.size.max(0) as u64
        },
        body_complete: content.complete != Some(false),
        response_text,
        retry_after,
        connection_bytes: connection_bytes(e),
        authorization: authorization_scheme(e),
        sums: if go_kind == gomod::GoKind::SumdbLookup {
            content
                .text
                .as_deref()
                .map(gomod::gosum::parse_lookup)
                .unwrap_or_default()
        } else {
            Vec::new()
        },
        host_header: e
            .request
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("host") || h.name == ":authority")
            .map(|h| h.value.clone()),
    }
}

/// The bytes of an imported connection entry (`_capture.connection`) when no HTTP
/// exchange was seen in it: a TLS connection is a `CONNECT` entry with no body.
fn connection_bytes(e: &Entry) -> Option<[u64; 2]> {
    if e.request.method != "CONNECT" || e.response.body_size > 0 {
        return None;
    }
    let conn = e.extra.get("_capture")?.get("connection")?;
    let n = |k: &str| conn.get(k).and_then(serde_json::Value::as_u64);
    Some([n("bytes_client_to_server")?, n("bytes_server_to_client")?])
}

/// The scheme of the request's `Authorization` header (`Some("")` when redaction hid it).
fn authorization_scheme(e: &Entry) -> Option<String> {
    let value = e
        .request
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("authorization"))?
        .value
        .trim();
    let scheme = value.split_whitespace().next().unwrap_or("");
    // A lone token is either the redaction marker or a bare credential: no scheme to show.
    if scheme.starts_with('[') || !value.contains(' ') {
        return Some(String::new());
    }
    Some(scheme.to_string())
}

/// An RFC 3339 time as milliseconds since the Unix epoch.
pub fn started_ms(rfc3339: &str) -> Option<f64> {
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
    render_with_gap(entries, &Unrecorded::default(), env, json, color)
}

/// [`render_with_severity`] for a trace with a gap: what the recorder could not write
/// becomes a finding, so an incomplete trace never reads as "Findings: none".
pub fn render_with_gap(
    entries: &[Entry],
    unrecorded: &Unrecorded,
    env: Option<&GoEnv>,
    json: bool,
    color: bool,
) -> (String, Option<diagnose::Severity>) {
    let r = render_full(
        entries,
        unrecorded,
        env,
        &diagnose::Evidence::default(),
        json,
        color,
    );
    (r.text, r.worst)
}

/// A rendered report with what scripts and `run` act on.
pub struct Rendered {
    pub text: String,
    pub worst: Option<diagnose::Severity>,
    pub verdict: diagnose::Verdict,
    pub reasons: Vec<diagnose::VerdictReason>,
}

/// The report with forensic evidence (go.sum, zip listings, credentials) and the
/// recorder's gap: findings, the verdict (`ok`/`transient`/`permanent`) and, with a go
/// environment, the GOPROXY route of each module.
pub fn render_full(
    entries: &[Entry],
    unrecorded: &Unrecorded,
    env: Option<&GoEnv>,
    evidence: &diagnose::Evidence,
    json: bool,
    color: bool,
) -> Rendered {
    let bases = goproxy_bases(env.and_then(|e| e.goproxy.as_deref()));
    let obs = observations(entries, &bases);
    let summary = diagnose::summarize(&obs);
    let mut findings = diagnose::diagnose_all(&obs, env, evidence);
    if let Some(gap) = gap_finding(unrecorded) {
        // Findings are most severe first: this warning goes before the other warnings.
        let at = findings
            .iter()
            .position(|f| f.severity <= gap.severity)
            .unwrap_or(findings.len());
        findings.insert(at, gap);
    }
    let worst = findings.iter().map(|f| f.severity).max();
    let (verdict, reasons) = diagnose::verdict(&findings, &obs);
    let routes = env.map(|e| diagnose::module_routes(&obs, e));
    let text = if json {
        let mut doc = serde_json::json!({
            "summary": summary,
            "findings": findings,
            "verdict": verdict,
            "verdict_reasons": reasons,
        });
        if let Some(routes) = &routes {
            doc["routes"] = serde_json::json!(routes);
        }
        serde_json::to_string_pretty(&doc).unwrap_or_default()
    } else {
        let mut text = diagnose::render_text(&summary, &findings, color);
        text.push_str(&render_tail(routes.as_deref(), verdict, &reasons));
        text
    };
    Rendered {
        text,
        worst,
        verdict,
        reasons,
    }
}

/// The text after the findings: the GOPROXY route of each module (when known) and the
/// verdict with its reasons. Shared by `summary`, `run` and the HTML report.
pub fn render_tail(
    routes: Option<&[diagnose::ModuleRoute]>,
    verdict: diagnose::Verdict,
    reasons: &[diagnose::VerdictReason],
) -> String {
    let mut text = String::new();
    if let Some(routes) = routes.filter(|r| !r.is_empty()) {
        text.push_str("\nGOPROXY route per module:\n");
        for r in routes {
            let entry = r.entry.as_deref().unwrap_or("(none)");
            let tried = if r.tried.is_empty() {
                String::new()
            } else {
                format!(" after {}", r.tried.join(", "))
            };
            text.push_str(&format!("  {}: {entry}{tried}: {}\n", r.module, r.why));
        }
    }
    text.push_str(&format!("\nVerdict: {}", verdict.as_str()));
    for r in reasons {
        let class = match r.class {
            diagnose::FailureClass::Transient => "transient",
            diagnose::FailureClass::Permanent => "permanent",
        };
        text.push_str(&format!("\n  {class} {} at {}", r.cause, r.hop));
    }
    text
}

/// The finding for exchanges the recorder could not write, if any.
pub fn gap_finding(unrecorded: &Unrecorded) -> Option<diagnose::Finding> {
    (!unrecorded.is_empty()).then(|| diagnose::Finding {
        title: unrecorded.describe(),
        advice: "the trace is incomplete: they were proxied but are not in it; free disk space and record again to capture them".to_string(),
        ..diagnose::Finding::new(diagnose::Cause::TraceIncomplete, diagnose::Severity::Warning)
    })
}

/// Entries for exchanges that were not recorded to disk (no bodies), for the end-of-run report.
/// In start order, as trace.har and `summary` number them (observers see exchanges in
/// completion order), so `#N` and module lists read the same in every rendering.
pub fn entries_from_exchanges(exchanges: &[Exchange], goproxy_bases: &[String]) -> Vec<Entry> {
    let mut ordered: Vec<&Exchange> = exchanges.iter().collect();
    // Milliseconds, as startedDateTime has them; ties keep completion order, as in trace.har.
    ordered.sort_by_key(|e| {
        e.started
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0)
    });
    ordered
        .into_iter()
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

/// What to say when the traced command failed although the network did not: every
/// request succeeded and nothing deserves a warning, so the cause is something go decided
/// after downloading (a checksum, go.sum, the build list), and its own message says which.
/// `None` when the command succeeded or the report already names a cause.
///
/// The advice names go's own checks only when `child_is_go` or go traffic was seen; for
/// another command (`run -- curl ...`) it only says the network is not the cause.
pub fn exit_verdict(
    entries: &[Entry],
    env: Option<&GoEnv>,
    exit_code: i32,
    child_is_go: bool,
) -> Option<String> {
    if exit_code == 0 {
        return None;
    }
    let bases = goproxy_bases(env.and_then(|e| e.goproxy.as_deref()));
    let obs = observations(entries, &bases);
    let go_seen = obs.iter().any(|o| o.go.kind != gomod::GoKind::Other);
    let totals = diagnose::summarize(&obs).totals;
    let named = diagnose::diagnose(&obs, env)
        .iter()
        .any(|f| f.severity >= diagnose::Severity::Warning);
    if named || totals.failures > 0 {
        return None;
    }
    if totals.injected > 0 {
        // Chaos that worked: the summary's verdict is "ok" (the network is fine), which
        // reads like success next to a failed command unless this says why.
        let mut hit: Vec<String> = Vec::new();
        for o in &obs {
            let Some(f) = &o.fault else { continue };
            let what = match o.go.module_version() {
                Some(mv) => format!("{} on {mv}", f.rule),
                None => format!("{} on {}", f.rule, o.host),
            };
            if !hit.contains(&what) {
                hit.push(what);
            }
        }
        let shown = match hit.len() {
            0..=3 => hit.join(", "),
            n => format!("{} +{} more", hit[..3].join(", "), n - 3),
        };
        return Some(format!(
            "the command exited with status {exit_code} after modscope injected {} ({shown}): \
             the failure is the chaos the fault rules asked for, not the network.",
            crate::net::plural(totals.injected, "fault", "faults")
        ));
    }
    let seen = match totals.requests {
        0 => "it made no request through modscope".to_string(),
        n => format!("all {n} requests it made through modscope succeeded"),
    };
    if !child_is_go && !go_seen {
        return Some(format!(
            "the command exited with status {exit_code}, but {seen}: the failure is not the network. \
             Read the command's own message above."
        ));
    }
    Some(format!(
        "the command exited with status {exit_code}, but {seen}: the failure is not the network. \
         Read go's own message above: a checksum that disagrees with go.sum or the checksum \
         database (SECURITY ERROR), a go.sum line missing under -mod=readonly, or a version \
         that does not exist are decided by go after the download."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::Entry;

    fn entry(url: &str, status: u16) -> Entry {
        serde_json::from_value(serde_json::json!({
            "startedDateTime": "2026-11-21T10:00:00.000Z",
            "time": 1.0,
            "request": {"method": "GET", "url": url, "httpVersion": "HTTP/2.0",
                "cookies": [], "headers": [], "queryString": [], "headersSize": -1, "bodySize": 0},
            "response": {"status": status, "statusText": "", "httpVersion": "HTTP/2.0",
                "cookies": [], "headers": [], "content": {"size": 3, "mimeType": "text/plain"},
                "redirectURL": "", "headersSize": -1, "bodySize": 3},
            "cache": {},
            "timings": {"send": 0.0, "wait": 1.0, "receive": 0.0}
        }))
        .unwrap()
    }

    #[test]
    fn a_failure_with_a_clean_network_points_at_go_itself() {
        let ok = vec![
            entry("https://proxy.golang.org/example.com/a/@v/v1.0.0.zip", 200),
            entry(
                "https://proxy.golang.org/sumdb/sum.golang.org/lookup/example.com/a@v1.0.0",
                200,
            ),
        ];
        // Go traffic was seen: go's checks are named, whatever the child was.
        for child_is_go in [true, false] {
            let verdict = exit_verdict(&ok, None, 1, child_is_go).unwrap();
            assert!(verdict.contains("all 2 requests"), "{verdict}");
            assert!(verdict.contains("SECURITY ERROR"), "{verdict}");
        }
        assert!(exit_verdict(&[], None, 1, true)
            .unwrap()
            .contains("made no request"));
        assert_eq!(
            exit_verdict(&ok, None, 0, true),
            None,
            "success needs no verdict"
        );
        // `run -- /bin/false`: no go, no go traffic, no go advice.
        let other = exit_verdict(&[], None, 1, false).unwrap();
        assert!(
            other.contains("made no request") && other.contains("the command's own message"),
            "{other}"
        );
        assert!(
            !other.contains("go.sum") && !other.contains("SECURITY"),
            "{other}"
        );
    }

    #[test]
    fn only_the_authorization_scheme_is_read() {
        let with = |value: Option<&str>| {
            let mut e = entry("https://corp.example/m/@v/list", 401);
            if let Some(v) = value {
                e.request
                    .headers
                    .push(crate::trace::Header::new("Authorization", v));
            }
            authorization_scheme(&e)
        };
        assert_eq!(with(None), None);
        assert_eq!(with(Some("Basic [redacted]")).as_deref(), Some("Basic"));
        assert_eq!(with(Some("Bearer abc.def")).as_deref(), Some("Bearer"));
        assert_eq!(with(Some("[redacted]")).as_deref(), Some(""));
        assert_eq!(with(Some("rawtoken")).as_deref(), Some(""));
    }

    #[test]
    fn a_failure_after_injected_faults_says_they_are_the_cause() {
        let mut corrupted = entry("https://proxy.golang.org/example.com/a/@v/v1.0.0.zip", 200);
        corrupted.fault = Some(crate::exchange::FaultFacts {
            rule: "rule-1".to_string(),
            action: "corrupt 1 B at offset 10".to_string(),
        });
        let fine = entry("https://proxy.golang.org/example.com/b/@v/v1.0.0.zip", 200);
        let said = exit_verdict(&[corrupted, fine.clone()], None, 1, true).unwrap();
        assert!(
            said.contains("injected 1 fault (rule-1 on example.com/a@v1.0.0)")
                && said.contains("not the network"),
            "{said}"
        );
        assert_eq!(exit_verdict(&[fine], None, 0, true), None);
    }

    #[test]
    fn no_verdict_when_the_network_explains_the_failure() {
        let failed = vec![entry(
            "https://proxy.golang.org/example.com/a/@v/v1.0.0.zip",
            502,
        )];
        assert_eq!(exit_verdict(&failed, None, 1, true), None);
    }

    #[test]
    fn imported_connections_count_as_connections_and_entries_from_one() {
        let mut tls: Entry = entry("https://proxy.golang.org/", 200);
        tls.request.method = "CONNECT".into();
        tls.response.body_size = 0;
        tls.extra.insert(
            "_capture".into(),
            serde_json::json!({"connection": {"bytes_client_to_server": 6_700_000u64, "bytes_server_to_client": 6_800_000u64}}),
        );
        let get = entry("https://proxy.golang.org/example.com/a/@v/list", 200);
        let obs = observations(&[get, tls], &[]);
        assert_eq!(obs.iter().map(|o| o.index).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(obs[0].connection_bytes, None);
        assert_eq!(obs[1].connection_bytes, Some([6_700_000, 6_800_000]));
        let t = diagnose::summarize(&obs).totals;
        assert_eq!((t.requests, t.bytes), (1, 3));
        assert_eq!(
            (
                t.connections,
                t.connection_bytes_up,
                t.connection_bytes_down
            ),
            (1, 6_700_000, 6_800_000)
        );
    }
}
