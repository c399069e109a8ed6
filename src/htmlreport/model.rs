//! Pure: trace entries, fed one at a time, become the HTML report's data model (rows for the
//! waterfall, connection lanes, Go module groups, per-row details, and the header with the
//! same summary and findings `summary` prints).
//!
//! Only small per-entry facts are kept (no bodies beyond a short text preview the caller
//! chooses to pass), so memory grows with the number of entries, not with body sizes.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use serde_json::Value;

use crate::diagnose::{self, Cause, Finding, GoEnv, Observation, Summary};
use crate::exchange::{ExchangeError, FaultFacts, TlsFacts};
use crate::trace::Entry;

/// Phase names in bar order, as the page's legend shows them.
pub const PHASES: [&str; 7] = [
    "blocked", "dns", "connect", "tls", "send", "wait", "receive",
];

/// What the report says about where it came from.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReportSource {
    /// The traced command (`go mod download`), when known.
    pub command: Option<String>,
    /// The trace path or a description of the live session.
    pub trace: String,
    /// modscope's version.
    pub producer: String,
}

/// The whole report: everything the page draws from the main JSON block.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportModel {
    pub header: Header,
    pub rows: Vec<Row>,
    pub connections: Vec<Connection>,
    pub go: Vec<GoGroup>,
    /// Distinct hosts and kinds, for the filter menus.
    pub hosts: Vec<String>,
    pub kinds: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Header {
    pub source: ReportSource,
    /// RFC 3339 start of the first exchange.
    pub started: Option<String>,
    pub duration_ms: f64,
    pub requests: usize,
    pub bytes: u64,
    pub failures: usize,
    pub not_found: usize,
    pub injected: usize,
    /// The findings exactly as `summary` has them (one diagnosis, two renderings).
    pub findings: Vec<Finding>,
    /// `summary`'s text rendering, shown verbatim in a collapsible block.
    pub summary_text: String,
}

/// One waterfall row (short keys: 20,000 of these are embedded in the page).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// Index of the entry in the trace (`#N` in `summary`'s findings).
    pub i: usize,
    /// Start, ms since the first exchange.
    pub t: f64,
    /// Total time, ms.
    pub d: f64,
    /// Phase durations in [`PHASES`] order; `-1` when the phase did not happen.
    pub p: [f64; 7],
    /// HTTP status; 0 when no response arrived.
    pub s: u16,
    pub m: String,
    pub u: String,
    pub h: String,
    /// `_go.kind`.
    pub k: &'static str,
    /// `module@version` (or the module alone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mv: Option<String>,
    /// Response body bytes.
    pub b: u64,
    /// Index into [`ReportModel::connections`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub c: Option<usize>,
    /// `rule: action` of an injected fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub f: Option<String>,
    /// `_error.kind` of a failed exchange.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    /// The GOPROXY entry or checksum database base that was asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// Part of a prefix-probing 404 run (`go get` looking for the module root).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub probe: bool,
}

/// What the details pane shows for one row beyond the row itself (method, URL, status and
/// phase times are in [`Row`]); embedded separately and parsed on the first click, so
/// opening the page does not pay for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Detail {
    pub started: String,
    pub request_version: String,
    pub status_text: String,
    pub response_version: String,
    pub request_headers: Vec<(String, String)>,
    pub response_headers: Vec<(String, String)>,
    pub server_ip: Option<String>,
    pub connection: Option<String>,
    pub tls: Option<TlsFacts>,
    pub go: Option<Value>,
    pub error: Option<ExchangeError>,
    pub fault: Option<FaultFacts>,
    pub mime_type: String,
    pub body_complete: bool,
    /// A small text body, when the caller had one.
    pub preview: Option<String>,
}

/// One upstream connection (HAR `connection`) and the exchanges it carried.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Connection {
    pub id: String,
    pub host: String,
    pub protocol: String,
    /// ms since the first exchange.
    pub start: f64,
    pub end: f64,
    /// Row indices (into `rows`) in start order.
    pub rows: Vec<usize>,
    /// dns, connect (tcp), tls of the handshake, when this trace saw it.
    pub handshake: Option<[f64; 3]>,
    /// Another connection to this host was opened earlier (a session could be resumed).
    pub known_host: bool,
    /// Most exchanges in flight at once (more than 1 only with HTTP/2 streams).
    pub max_parallel: usize,
}

/// One `module@version` (or a folded run of probing 404s) in the Go view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GoGroup {
    pub key: String,
    pub module: Option<String>,
    pub version: Option<String>,
    /// Row indices in start order.
    pub rows: Vec<usize>,
    /// Per kind in the group: (kind, status of the last attempt, total ms).
    pub kinds: Vec<(&'static str, u16, f64)>,
    /// GOPROXY entry (or sumdb base) that answered 200, if any.
    pub answered_by: Option<String>,
    /// Every base asked, in order, with the status it gave (0: no response).
    pub tried: Vec<(String, u16)>,
    pub start: f64,
    pub end: f64,
    /// Sum of the rows' times.
    pub busy_ms: f64,
    pub bytes: u64,
    pub failed: bool,
    pub injected: bool,
    /// Prefix-probing 404s folded into this one line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub folded: Option<usize>,
    /// Why this group took its time, in one line (slowest exchange, its biggest phase,
    /// and the fault, error or fallback involved).
    pub why: String,
    /// Finding causes touching the group's rows.
    pub causes: Vec<Cause>,
}

/// Builds the model from entries pushed one at a time.
#[derive(Debug, Default)]
pub struct ReportBuilder {
    bases: Vec<String>,
    rows: Vec<Row>,
    details: Vec<Detail>,
    observations: Vec<Observation>,
    /// Absolute start (ms since the epoch) per row, made relative in `finish`.
    starts: Vec<Option<f64>>,
    started_text: Vec<String>,
    connection_ids: Vec<Option<String>>,
    http_versions: Vec<String>,
}

impl ReportBuilder {
    /// `goproxy_bases`: GOPROXY URLs known to the caller, for entries without `_go`.
    pub fn new(goproxy_bases: Vec<String>) -> Self {
        ReportBuilder {
            bases: goproxy_bases,
            ..ReportBuilder::default()
        }
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Adds one entry; `preview` is a short text body the caller chose to show.
    pub fn push(&mut self, entry: &Entry, preview: Option<String>) {
        let index = self.rows.len();
        // Entry numbers count from 1 (as in `summary`); rows are 0-based positions.
        let obs = crate::report::observation(index + 1, entry, 0.0, &self.bases);
        let t = &entry.timings;
        let opt = |v: f64| {
            if v >= 0.0 && v.is_finite() {
                round(v)
            } else {
                -1.0
            }
        };
        let tls = opt(t.ssl);
        let tcp = if t.connect >= 0.0 {
            round((t.connect - tls.max(0.0)).max(0.0))
        } else {
            -1.0
        };
        let row = Row {
            i: index,
            t: 0.0,
            d: round(entry.time.max(0.0)),
            p: [
                opt(t.blocked),
                opt(t.dns),
                tcp,
                tls,
                opt(t.send),
                opt(t.wait),
                opt(t.receive),
            ],
            s: obs.status,
            m: obs.method.clone(),
            u: obs.url.clone(),
            h: obs.host.clone(),
            k: obs.go.kind.as_str(),
            mv: obs.go.module_version(),
            b: obs.response_bytes,
            c: None,
            f: obs
                .fault
                .as_ref()
                .map(|f| format!("{}: {}", f.rule, f.action)),
            e: obs.error.as_ref().map(|e| e.kind.to_string()),
            base: obs.go.base.clone(),
            probe: false,
        };
        let pairs = |h: &[crate::trace::Header]| -> Vec<(String, String)> {
            h.iter()
                .map(|h| (h.name.clone(), h.value.clone()))
                .collect()
        };
        self.details.push(Detail {
            started: entry.started_date_time.clone(),
            request_version: entry.request.http_version.clone(),
            status_text: entry.response.status_text.clone(),
            response_version: entry.response.http_version.clone(),
            request_headers: pairs(&entry.request.headers),
            response_headers: pairs(&entry.response.headers),
            server_ip: entry.server_ip_address.clone(),
            connection: entry.connection.clone(),
            tls: entry.tls.clone(),
            go: entry.go.clone(),
            error: entry.error.clone(),
            fault: entry.fault.clone(),
            mime_type: entry.response.content.mime_type.clone(),
            body_complete: entry.response.content.complete != Some(false),
            preview,
        });
        self.starts
            .push(crate::report::started_ms(&entry.started_date_time));
        self.started_text.push(entry.started_date_time.clone());
        self.connection_ids.push(entry.connection.clone());
        self.http_versions
            .push(if entry.response.http_version.is_empty() {
                entry.request.http_version.clone()
            } else {
                entry.response.http_version.clone()
            });
        self.rows.push(row);
        self.observations.push(obs);
    }

    /// The model and the details (one per row, same order).
    pub fn finish(
        mut self,
        env: Option<&GoEnv>,
        source: ReportSource,
    ) -> (ReportModel, Vec<Detail>) {
        let first = self
            .starts
            .iter()
            .flatten()
            .copied()
            .fold(f64::INFINITY, f64::min);
        let first_text = self
            .starts
            .iter()
            .position(|s| *s == Some(first))
            .map(|i| self.started_text[i].clone());
        for ((row, obs), start) in self
            .rows
            .iter_mut()
            .zip(self.observations.iter_mut())
            .zip(&self.starts)
        {
            let rel = start.map(|s| s - first).unwrap_or(0.0);
            row.t = round(rel);
            obs.started_ms = rel;
        }
        let summary: Summary = diagnose::summarize(&self.observations);
        let findings =
            diagnose::diagnose_all(&self.observations, env, &diagnose::Evidence::default());
        let (verdict, reasons) = diagnose::verdict(&findings, &self.observations);
        let routes = env.map(|e| diagnose::module_routes(&self.observations, e));
        let summary_text = diagnose::render_text(&summary, &findings, false)
            + &crate::report::render_tail(routes.as_deref(), verdict, &reasons);
        let probing: HashSet<usize> = findings
            .iter()
            .filter(|f| f.cause == Cause::ExpectedProbing)
            .flat_map(|f| f.entries.iter().copied())
            .collect();
        for row in &mut self.rows {
            row.probe = probing.contains(&(row.i + 1));
        }
        let connections = connections(&mut self.rows, &self.connection_ids, &self.http_versions);
        let go = go_groups(&self.rows, &findings);
        let duration_ms = self.rows.iter().map(|r| r.t + r.d).fold(0.0, f64::max);
        let hosts = distinct(self.rows.iter().map(|r| r.h.as_str()));
        let kinds = distinct(self.rows.iter().map(|r| r.k));
        let totals = &summary.totals;
        let header = Header {
            source,
            started: first_text,
            duration_ms: round(duration_ms),
            requests: totals.requests,
            bytes: totals.bytes,
            failures: totals.failures,
            not_found: totals.not_found,
            injected: totals.injected,
            findings,
            summary_text,
        };
        (
            ReportModel {
                header,
                rows: self.rows,
                connections,
                go,
                hosts,
                kinds,
            },
            self.details,
        )
    }
}

/// Milliseconds to one decimal: enough for a waterfall, and a smaller page.
fn round(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn distinct<'a>(items: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut set: Vec<String> = items
        .filter(|s| !s.is_empty())
        .collect::<HashSet<_>>()
        .into_iter()
        .map(str::to_string)
        .collect();
    set.sort();
    set
}

/// Lanes per connection id; sets `Row::c`.
fn connections(rows: &mut [Row], ids: &[Option<String>], versions: &[String]) -> Vec<Connection> {
    let mut by_id: HashMap<&str, usize> = HashMap::new();
    let mut lanes: Vec<Connection> = Vec::new();
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by(|&a, &b| rows[a].t.total_cmp(&rows[b].t).then(a.cmp(&b)));
    for &r in &order {
        let Some(id) = ids[r].as_deref() else {
            continue;
        };
        let lane = *by_id.entry(id).or_insert_with(|| {
            lanes.push(Connection {
                id: id.to_string(),
                host: rows[r].h.clone(),
                protocol: versions[r].clone(),
                start: rows[r].t,
                end: rows[r].t,
                rows: Vec::new(),
                handshake: None,
                known_host: false,
                max_parallel: 0,
            });
            lanes.len() - 1
        });
        let row = &mut rows[r];
        row.c = Some(lane);
        let c = &mut lanes[lane];
        c.rows.push(r);
        c.end = c.end.max(row.t + row.d);
        let [_, dns, tcp, tls, ..] = row.p;
        if c.handshake.is_none() && (dns >= 0.0 || tcp >= 0.0 || tls >= 0.0) {
            c.handshake = Some([dns, tcp, tls]);
        }
    }
    let mut seen_hosts: HashSet<String> = HashSet::new();
    for c in &mut lanes {
        c.known_host = !seen_hosts.insert(c.host.clone());
        c.max_parallel = max_parallel(c.rows.iter().map(|&r| (rows[r].t, rows[r].t + rows[r].d)));
    }
    lanes
}

/// Most intervals open at one instant (an interval ending when another starts does not
/// overlap it: HTTP/1.1 reuse is sequential).
fn max_parallel(spans: impl Iterator<Item = (f64, f64)>) -> usize {
    let mut events: Vec<(f64, i32)> = Vec::new();
    for (s, e) in spans {
        events.push((s, 1));
        events.push((e.max(s), -1));
    }
    events.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut open, mut most) = (0i32, 0i32);
    for (_, delta) in events {
        open += delta;
        most = most.max(open);
    }
    most.max(0) as usize
}

/// Module groups for the Go view, slowest first.
fn go_groups(rows: &[Row], findings: &[Finding]) -> Vec<GoGroup> {
    let mut causes_of: HashMap<usize, Vec<Cause>> = HashMap::new();
    for f in findings {
        for &e in &f.entries {
            // Finding entries are numbered from 1; rows from 0.
            causes_of
                .entry(e.saturating_sub(1))
                .or_default()
                .push(f.cause);
        }
    }
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by(|&a, &b| rows[a].t.total_cmp(&rows[b].t).then(a.cmp(&b)));

    let mut groups: Vec<(String, Vec<usize>, bool)> = Vec::new();
    let mut by_key: HashMap<String, usize> = HashMap::new();
    // Tiles verify the lookup just before them, so they join its group.
    let mut last_lookup: Option<String> = None;
    let mut open_probe: Option<usize> = None;
    for &r in &order {
        let row = &rows[r];
        if row.probe {
            let g = *open_probe.get_or_insert_with(|| {
                groups.push((String::new(), Vec::new(), true));
                groups.len() - 1
            });
            groups[g].1.push(r);
            continue;
        }
        let key = match (row.k, &row.mv) {
            ("sumdb-tile", _) => last_lookup.clone(),
            ("other" | "git" | "go-get", _) => None,
            (_, Some(mv)) => Some(mv.clone()),
            _ => None,
        };
        let Some(key) = key else { continue };
        open_probe = None;
        if row.k == "sumdb-lookup" {
            last_lookup = Some(key.clone());
        }
        let g = *by_key.entry(key.clone()).or_insert_with(|| {
            groups.push((key, Vec::new(), false));
            groups.len() - 1
        });
        groups[g].1.push(r);
    }

    let mut out: Vec<GoGroup> = groups
        .into_iter()
        .map(|(key, members, folded)| group(rows, key, members, folded, &causes_of))
        .collect();
    out.sort_by(|a, b| {
        b.busy_ms
            .total_cmp(&a.busy_ms)
            .then(a.start.total_cmp(&b.start))
    });
    out
}

fn group(
    rows: &[Row],
    key: String,
    members: Vec<usize>,
    folded: bool,
    causes_of: &HashMap<usize, Vec<Cause>>,
) -> GoGroup {
    let first = &rows[members[0]];
    let (module, version) = split_module_version(first.mv.as_deref());
    let mut kinds: Vec<(&'static str, u16, f64)> = Vec::new();
    let mut tried: Vec<(String, u16)> = Vec::new();
    let mut answered_by = None;
    for &r in &members {
        let row = &rows[r];
        match kinds.iter_mut().find(|k| k.0 == row.k) {
            Some(k) => {
                k.1 = row.s;
                k.2 = round(k.2 + row.d);
            }
            None => kinds.push((row.k, row.s, row.d)),
        }
        if let Some(base) = &row.base {
            if row.k != "sumdb-tile" && row.k != "sumdb-lookup" {
                if tried.last() != Some(&(base.clone(), row.s)) {
                    tried.push((base.clone(), row.s));
                }
                if row.s == 200 {
                    answered_by = Some(base.clone());
                }
            }
        }
    }
    let mut causes: Vec<Cause> = members
        .iter()
        .filter_map(|r| causes_of.get(r))
        .flatten()
        .copied()
        .collect();
    causes.sort();
    causes.dedup();
    let start = members
        .iter()
        .map(|&r| rows[r].t)
        .fold(f64::INFINITY, f64::min);
    let end = members
        .iter()
        .map(|&r| rows[r].t + rows[r].d)
        .fold(0.0, f64::max);
    let busy_ms = round(members.iter().map(|&r| rows[r].d).sum());
    let failed = members
        .iter()
        .any(|&r| rows[r].e.is_some() || rows[r].s == 0);
    let injected = members.iter().any(|&r| rows[r].f.is_some());
    let (key, module) = if folded {
        let longest = members
            .iter()
            .filter_map(|&r| rows[r].mv.as_deref())
            .max_by_key(|m| m.len())
            .unwrap_or("")
            .to_string();
        (format!("probing prefixes of {longest}"), Some(longest))
    } else {
        (key, module)
    };
    let why = explain(rows, &members, folded, &tried, answered_by.as_deref());
    GoGroup {
        key,
        module,
        version,
        rows: members.clone(),
        kinds,
        answered_by,
        tried,
        start: round(start),
        end: round(end),
        busy_ms,
        bytes: members.iter().map(|&r| rows[r].b).sum(),
        failed,
        injected,
        folded: folded.then_some(members.len()),
        why,
        causes,
    }
}

fn split_module_version(mv: Option<&str>) -> (Option<String>, Option<String>) {
    match mv.and_then(|m| m.rsplit_once('@')) {
        Some((m, v)) => (Some(m.to_string()), Some(v.to_string())),
        None => (mv.map(str::to_string), None),
    }
}

/// One line: the slowest exchange with its biggest phase, and what went wrong around it.
fn explain(
    rows: &[Row],
    members: &[usize],
    folded: bool,
    tried: &[(String, u16)],
    answered_by: Option<&str>,
) -> String {
    if folded {
        return format!(
            "{} prefix lookup(s) answered 404/410 while go looked for the module root (expected)",
            members.len()
        );
    }
    let Some(&slowest) = members
        .iter()
        .max_by(|&&a, &&b| rows[a].d.total_cmp(&rows[b].d))
    else {
        return String::new();
    };
    let row = &rows[slowest];
    let (phase, ms) = PHASES
        .iter()
        .zip(row.p)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(name, v)| (*name, v))
        .unwrap_or(("wait", 0.0));
    // Time before sending is an injected latency when a fault touched the row: say so.
    let cause = match (&row.f, phase) {
        (Some(f), "blocked") => format!(" by fault {f}"),
        _ => String::new(),
    };
    let mut parts = vec![format!(
        "slowest: {} {} ({} {}{cause})",
        row.k,
        crate::net::human_ms(row.d),
        phase,
        crate::net::human_ms(ms.max(0.0))
    )];
    if cause.is_empty() {
        if let Some(f) = members.iter().find_map(|&r| rows[r].f.as_deref()) {
            parts.push(format!("fault {f}"));
        }
    }
    if let Some(e) = members.iter().find_map(|&r| rows[r].e.as_deref()) {
        parts.push(format!("failed: {e}"));
    }
    let bases: Vec<&str> = tried.iter().map(|(b, _)| b.as_str()).collect();
    let distinct_bases: HashSet<&str> = bases.iter().copied().collect();
    if distinct_bases.len() > 1 {
        if let Some(answer) = answered_by {
            let mut failed: Vec<String> = Vec::new();
            for (b, s) in tried.iter().filter(|(b, _)| b != answer) {
                let said = format!("{b} {}", status_word(*s));
                if !failed.contains(&said) {
                    failed.push(said);
                }
            }
            parts.push(format!("fell back: {} → {answer}", failed.join(", ")));
        }
    }
    parts.join("; ")
}

fn status_word(status: u16) -> String {
    match status {
        0 => "no response".to_string(),
        s => s.to_string(),
    }
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
