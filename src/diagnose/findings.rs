//! Per-exchange assessment (cause, severity, GOPROXY fallback) and grouping into findings.

use std::collections::{HashMap, HashSet};

use super::advice::go_env_w;
use super::{Cause, DiagnoseOptions, FallbackNote, Finding, GoEnv, Observation, Severity};
use crate::exchange::{ErrorKind, ExchangeError, FailPhase};
use crate::gomod::url as gourl;
use crate::gomod::{
    match_prefix_patterns, parse_goproxy, Fallback, GoKind, ProxyEntry, ProxyTarget,
};

/// Diagnoses with default options (10 s first-byte threshold).
pub fn diagnose(obs: &[Observation], env: Option<&GoEnv>) -> Vec<Finding> {
    diagnose_with(obs, env, &DiagnoseOptions::default())
}

/// Findings grouped per cause and host, most severe first, then in trace order.
pub fn diagnose_with(
    obs: &[Observation],
    env: Option<&GoEnv>,
    opts: &DiagnoseOptions,
) -> Vec<Finding> {
    let ctx = Context::new(obs, env);
    let mut issues = Vec::new();
    for o in obs {
        assess(o, &ctx, opts, &mut issues);
        if let Some(env) = env {
            assess_env(o, env, &mut issues);
        }
    }
    let mut findings = group(issues, &ctx, opts);
    findings.extend(super::slowlink::slow_links(obs));
    findings.extend(super::host_header::findings(obs));
    if let Some(env) = env {
        findings.extend(config_findings(obs, env));
    }
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| first_entry(a).cmp(&first_entry(b)))
            .then_with(|| a.cause.cmp(&b.cause))
            .then_with(|| a.host.cmp(&b.host))
    });
    findings
}

// Configuration-only findings carry no entries and go after those that do.
fn first_entry(f: &Finding) -> usize {
    f.entries.first().copied().unwrap_or(usize::MAX)
}

/// Facts about the whole trace that single exchanges are judged against.
struct Context<'a> {
    proxies: Option<Vec<ProxyEntry>>,
    /// Modules that got at least one 2xx answer: (module, host, started_ms, index).
    found: Vec<(&'a str, String, f64, usize)>,
    found_modules: HashSet<&'a str>,
    /// Requests (method, url) that succeeded, with when: a failure followed by one of
    /// these was transient.
    succeeded: HashMap<(&'a str, &'a str), Vec<(f64, usize)>>,
}

impl<'a> Context<'a> {
    fn new(obs: &'a [Observation], env: Option<&'a GoEnv>) -> Self {
        let mut found = Vec::new();
        let mut found_modules = HashSet::new();
        let mut succeeded: HashMap<(&str, &str), Vec<(f64, usize)>> = HashMap::new();
        for o in obs {
            if is_injected(o) || o.error.is_some() || !(200..300).contains(&o.status) {
                continue;
            }
            if o.body_complete {
                succeeded
                    .entry((o.method.as_str(), o.url.as_str()))
                    .or_default()
                    .push((o.started_ms, o.index));
            }
            if let Some(m) = o.go.module.as_deref() {
                found.push((m, host_key(o), o.started_ms, o.index));
                found_modules.insert(m);
            }
        }
        Context {
            proxies: env.map(|e| parse_goproxy(e.goproxy_value())),
            found,
            found_modules,
            succeeded,
        }
    }

    /// The same request succeeded later: this failure was transient.
    fn retried_ok(&self, o: &Observation) -> bool {
        self.succeeded
            .get(&(o.method.as_str(), o.url.as_str()))
            .is_some_and(|later| later.iter().any(|(t, i)| after(*t, *i, o)))
    }

    /// The host that later served the same module, when go moved on to another one.
    fn later_host(&self, o: &Observation, host: &str) -> Option<&str> {
        let m = o.go.module.as_deref()?;
        self.found
            .iter()
            .find(|(fm, fh, started, index)| *fm == m && fh != host && after(*started, *index, o))
            .map(|(_, fh, _, _)| fh.as_str())
    }

    /// `go get a/b/c` asks for every prefix; a miss is expected when a related
    /// path (prefix or extension) was found.
    fn related_found(&self, module: &str) -> bool {
        self.found_modules
            .iter()
            .any(|other| *other != module && path_related(module, other))
    }
}

/// Whether an exchange started at `started` (trace position `index`) came after `o`.
fn after(started: f64, index: usize, o: &Observation) -> bool {
    started > o.started_ms || (started == o.started_ms && index > o.index)
}

pub(super) fn path_related(a: &str, b: &str) -> bool {
    let under = |long: &str, short: &str| {
        long.strip_prefix(short)
            .is_some_and(|rest| rest.starts_with('/'))
    };
    under(a, b) || under(b, a)
}

/// One reason one exchange deserves attention, before grouping.
struct Issue<'a> {
    cause: Cause,
    severity: Severity,
    obs: &'a Observation,
    host: String,
    fallback: Option<FallbackNote>,
    /// For config-driven causes: the variable and value that matched.
    setting: Option<(&'static str, String)>,
    /// The fault rule that caused this, when modscope injected it.
    injected_by: Option<String>,
    /// The same request succeeded on a later try.
    transient: bool,
}

pub(super) fn is_injected(o: &Observation) -> bool {
    o.fault.is_some()
        || o.error
            .as_ref()
            .is_some_and(|e| e.kind == ErrorKind::Injected)
}

/// `host[:port]` without the scheme's default port, lower case.
pub(super) fn host_key(o: &Observation) -> String {
    let parsed = gourl::parse(&o.url);
    let scheme = parsed
        .as_ref()
        .map(|p| p.scheme.as_str())
        .unwrap_or("https");
    let raw = if o.host.trim().is_empty() {
        parsed
            .as_ref()
            .map(|p| p.authority.clone())
            .unwrap_or_default()
    } else {
        o.host.trim().to_ascii_lowercase()
    };
    gourl::canonical_authority(scheme, &raw)
}

/// The cause an exchange error stands for. Exhaustive on purpose: a new `ErrorKind`
/// must be explained here before it compiles.
pub(super) fn cause_for_error(err: &ExchangeError) -> Cause {
    match &err.kind {
        ErrorKind::Dns => Cause::DnsFailure,
        ErrorKind::DnsServerFailure => Cause::DnsServerFailure,
        ErrorKind::ConnectRefused => Cause::ConnectionRefused,
        ErrorKind::ConnectTimeout => Cause::ConnectTimeout,
        ErrorKind::TlsUntrusted => Cause::TlsUntrusted,
        ErrorKind::TlsHostnameMismatch => Cause::TlsHostnameMismatch,
        ErrorKind::TlsExpired => Cause::TlsExpired,
        ErrorKind::TlsNotYetValid => Cause::TlsNotYetValid,
        ErrorKind::TlsHandshakeTimeout => Cause::TlsHandshakeTimeout,
        ErrorKind::TlsHandshake => Cause::TlsHandshakeFailed,
        // Closed or reset before any response head: the server never answered, which
        // is a different story from a body cut mid-way.
        ErrorKind::UpstreamReset | ErrorKind::UpstreamClosed
            if err.phase == FailPhase::Response =>
        {
            Cause::NoResponse
        }
        ErrorKind::UpstreamReset | ErrorKind::UpstreamClosed => Cause::ResetOrTruncated,
        ErrorKind::ClientAbort => Cause::ClientAbort,
        ErrorKind::ProxyAuth => Cause::ProxyAuthRequired,
        ErrorKind::UpstreamProxy => Cause::UpstreamProxyFailed,
        ErrorKind::Protocol => Cause::ProtocolError,
        ErrorKind::Timeout => Cause::Timeout,
        ErrorKind::Injected => Cause::InjectedFault,
        ErrorKind::ReplayBody => Cause::ReplayBodyUnavailable,
        // A word from another tool or a newer modscope: explained generically.
        ErrorKind::Other | ErrorKind::Unknown(_) => Cause::OtherError,
    }
}

fn assess<'a>(
    o: &'a Observation,
    ctx: &Context<'_>,
    opts: &DiagnoseOptions,
    out: &mut Vec<Issue<'a>>,
) {
    let host = host_key(o);
    let mut mine = Vec::new();
    let mut push = |cause, severity, fallback| {
        mine.push(Issue {
            cause,
            severity,
            obs: o,
            host: host.clone(),
            fallback,
            setting: None,
            injected_by: None,
            transient: false,
        })
    };
    let mut pushed = 0;
    assess_exchange(o, ctx, opts, &host, &mut |c, s, f| {
        pushed += 1;
        push(c, s, f)
    });
    let injected_by = injected_rule(o);
    if injected_by.is_some() && pushed == 0 {
        // A fault that left no visible failure (latency, a replaced body): still say so,
        // and what go made of it.
        push(Cause::InjectedFault, Severity::Info, fallback_note(o, ctx));
    }
    // A fault that only shapes timing fails nothing: a failure on its exchange is real.
    let fault_failed_it = injected_by.is_some() && !timing_only_fault(o);
    let transient = ctx.retried_ok(o);
    for issue in &mut mine {
        if fault_failed_it || (injected_by.is_some() && issue.cause == Cause::InjectedFault) {
            // The experiment, not the network: the real diagnosis is shown, tagged,
            // and never counts as a failure of the network.
            issue.severity = Severity::Info;
            issue.injected_by = injected_by.clone();
        } else if transient && issue.severity >= Severity::Warning && is_failure(issue.cause) {
            issue.transient = true;
            issue.severity = Severity::Warning;
        }
    }
    out.extend(mine);
}

/// Causes that describe a failed exchange (not a slow or odd-but-working one).
fn is_failure(cause: Cause) -> bool {
    !matches!(
        cause,
        Cause::SlowFirstByte | Cause::MalformedRequest | Cause::InjectedFault
    )
}

/// Whether the exchange's faults were only `latency`/`bandwidth` (`_fault.action` joins
/// several with "; "), which slow an exchange down but cannot make it fail.
fn timing_only_fault(o: &Observation) -> bool {
    let injected_error = o
        .error
        .as_ref()
        .is_some_and(|e| e.kind == ErrorKind::Injected);
    !injected_error
        && o.fault.as_ref().is_some_and(|f| {
            f.action
                .split("; ")
                .all(|a| a.starts_with("latency") || a.starts_with("bandwidth"))
        })
}

/// The rule named in `_fault`, or "unnamed" for an injected error without one.
fn injected_rule(o: &Observation) -> Option<String> {
    match &o.fault {
        Some(f) => Some(f.rule.clone()),
        None if is_injected(o) => Some("unnamed".to_string()),
        None => None,
    }
}

/// What a user would be told about an injected failure: the phase the fault acted in
/// stands for the failure go sees.
fn injected_cause(err: &ExchangeError) -> Cause {
    match err.phase {
        FailPhase::Dns => Cause::DnsFailure,
        // The tunnel closed right after CONNECT: go sees EOF in its TLS handshake.
        FailPhase::Connect | FailPhase::Tls => Cause::TlsHandshakeFailed,
        FailPhase::Response => Cause::NoResponse,
        FailPhase::Body => Cause::ResetOrTruncated,
        FailPhase::Request | FailPhase::Unknown(_) => Cause::OtherError,
    }
}

fn assess_exchange(
    o: &Observation,
    ctx: &Context<'_>,
    opts: &DiagnoseOptions,
    host: &str,
    push: &mut impl FnMut(Cause, Severity, Option<FallbackNote>),
) {
    if o.go.problem.is_some() && (o.go.kind != GoKind::Other || o.go.base.is_some()) {
        push(Cause::MalformedRequest, Severity::Warning, None);
    }
    if let Some(stall) = &o.stall {
        // The stall explains however the body ended (cut, or go killed by a job timeout).
        let note = fallback_note(o, ctx);
        let severity = if stall.resumed && o.body_complete {
            Severity::Warning
        } else {
            failure_severity(&note)
        };
        push(Cause::BodyStalled, severity, note);
    } else if let Some(err) = &o.error {
        let cause = match err.kind {
            ErrorKind::Injected => injected_cause(err),
            _ => cause_for_error(err),
        };
        let note = fallback_note(o, ctx);
        let severity = if cause == Cause::ClientAbort {
            Severity::Info
        } else {
            failure_severity(&note)
        };
        push(cause, severity, note);
    } else {
        match o.status {
            0 => push(Cause::OtherError, Severity::Error, fallback_note(o, ctx)),
            407 => push(Cause::ProxyAuthRequired, Severity::Error, None),
            401 | 403 => {
                let note = fallback_note(o, ctx);
                push(Cause::Forbidden, failure_severity(&note), note)
            }
            404 | 410 => {
                let (cause, severity, note) = assess_not_found(o, host, ctx);
                push(cause, severity, note)
            }
            429 => {
                let note = fallback_note(o, ctx);
                push(Cause::RateLimited, failure_severity(&note), note)
            }
            500..=599 => {
                let note = fallback_note(o, ctx);
                push(Cause::UpstreamServerError, failure_severity(&note), note)
            }
            // go's HTTP client follows redirects itself; they show up as their own exchanges.
            200..=399 => {
                if !o.body_complete {
                    let note = fallback_note(o, ctx);
                    push(Cause::ResetOrTruncated, failure_severity(&note), note)
                }
            }
            _ => {
                let note = fallback_note(o, ctx);
                push(Cause::UnexpectedStatus, Severity::Warning, note)
            }
        }
    }
    if o.timings.wait.is_some_and(|w| w > opts.slow_wait_ms) {
        push(Cause::SlowFirstByte, Severity::Warning, None);
    }
}

// A failure go routes around is a detour, not a breakage.
fn failure_severity(note: &Option<FallbackNote>) -> Severity {
    match note {
        Some(n) if n.go_falls_back => Severity::Warning,
        _ => Severity::Error,
    }
}

fn assess_not_found(
    o: &Observation,
    host: &str,
    ctx: &Context<'_>,
) -> (Cause, Severity, Option<FallbackNote>) {
    let kind = o.go.kind;
    if kind == GoKind::SumdbSupported {
        return (Cause::SumdbNotProxied, Severity::Info, None);
    }
    if matches!(kind, GoKind::List | GoKind::Info | GoKind::Latest)
        && o.go.module.as_deref().is_some_and(|m| ctx.related_found(m))
    {
        return (Cause::ExpectedProbing, Severity::Info, None);
    }
    if ctx.later_host(o, host).is_some() {
        return (Cause::FellBack, Severity::Info, fallback_note(o, ctx));
    }
    let note = fallback_note(o, ctx);
    let severity = if note.as_ref().is_some_and(|n| n.go_falls_back) {
        Severity::Info
    } else if matches!(
        kind,
        GoKind::Mod | GoKind::Zip | GoKind::Toolchain | GoKind::SumdbLookup | GoKind::Git
    ) {
        Severity::Error
    } else {
        Severity::Warning
    };
    (Cause::NotFound, severity, note)
}

/// Where a GOPROXY-protocol (or proxied checksum-database) request sits in the
/// GOPROXY list, and whether go moves past it after this failure.
fn fallback_note(o: &Observation, ctx: &Context<'_>) -> Option<FallbackNote> {
    let kind = o.go.kind;
    if !(kind.is_goproxy() || kind.is_sumdb()) {
        return None;
    }
    let Some(entries) = ctx.proxies.as_ref() else {
        return inferred_fallback(o, ctx);
    };
    let base = o.go.base.as_deref()?;
    let proxy_base = if kind.is_sumdb() {
        // Only the proxied form ($proxy/sumdb/<name>) involves GOPROXY at all.
        let i = base.rfind("/sumdb/")?;
        &base[..i]
    } else {
        base
    };
    let idx = find_entry(entries, proxy_base, &host_key(o))?;
    let entry = entries.get(idx)?;
    let next = entries.get(idx + 1).map(|e| e.display().to_string());
    let not_found = o.error.is_none() && matches!(o.status, 404 | 410);
    // Once a proxy said it serves the checksum database, go sends every lookup there
    // and never retries elsewhere.
    let pinned = kind.is_sumdb() && kind != GoKind::SumdbSupported;
    let go_falls_back =
        !pinned && next.is_some() && (entry.fallback == Fallback::OnAnyError || not_found);
    let suggested_goproxy = (!pinned
        && !go_falls_back
        && !not_found
        && next.is_some()
        && entry.fallback == Fallback::OnNotFound)
        .then(|| render_goproxy(entries, idx));
    Some(FallbackNote {
        entry: entry.display().to_string(),
        separator: entry.fallback,
        go_falls_back,
        next,
        suggested_goproxy,
        inferred: false,
    })
}

/// Without go's environment the separator is unknown, but the trace can show it: a
/// later answer for the same module from another host means go moved on, and after a
/// failure other than 404/410 only '|' does that. Nothing is claimed otherwise.
fn inferred_fallback(o: &Observation, ctx: &Context<'_>) -> Option<FallbackNote> {
    if !o.go.kind.is_goproxy() {
        return None;
    }
    let host = host_key(o);
    let next = ctx.later_host(o, &host)?;
    let not_found = o.error.is_none() && matches!(o.status, 404 | 410);
    Some(FallbackNote {
        entry: o.go.base.clone().unwrap_or_else(|| host.clone()),
        // After a 404/410 either separator moves on; ',' is the default spelling.
        separator: if not_found {
            Fallback::OnNotFound
        } else {
            Fallback::OnAnyError
        },
        go_falls_back: true,
        next: Some(next.to_string()),
        suggested_goproxy: None,
        inferred: true,
    })
}

fn norm_base(url: &str) -> Option<String> {
    let p = gourl::parse(url)?;
    Some(format!(
        "{}://{}{}",
        p.scheme,
        p.canonical_authority(),
        p.path.trim_end_matches('/')
    ))
}

pub(super) fn find_entry(entries: &[ProxyEntry], base: &str, host: &str) -> Option<usize> {
    let want = norm_base(base);
    let urls = entries
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match &e.target {
            ProxyTarget::Url(u) => Some((i, u)),
            _ => None,
        });
    let mut same_host = None;
    for (i, u) in urls {
        if want.is_some() && norm_base(u) == want {
            return Some(i);
        }
        // A base inferred from the URL may disagree with the configured prefix; the
        // host still identifies the entry.
        let entry_host = gourl::parse(u).map(|p| p.canonical_authority());
        if same_host.is_none() && entry_host.as_deref() == Some(host) {
            same_host = Some(i);
        }
    }
    same_host
}

/// GOPROXY written back with '|' after entry `pipe_at` (out of range: unchanged).
fn render_goproxy(entries: &[ProxyEntry], pipe_at: usize) -> String {
    let mut s = String::new();
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            let prev = &entries[i - 1];
            let pipe = i - 1 == pipe_at || prev.fallback == Fallback::OnAnyError;
            s.push(if pipe { '|' } else { ',' });
        }
        s.push_str(e.display());
    }
    s
}

fn assess_env<'a>(o: &'a Observation, env: &GoEnv, out: &mut Vec<Issue<'a>>) {
    let Some(module) = o.go.module.as_deref() else {
        return;
    };
    if o.go.kind.is_goproxy() {
        if let Some((var, globs)) = env.noproxy() {
            if match_prefix_patterns(globs, module) {
                out.push(Issue {
                    cause: Cause::PrivateModuleViaProxy,
                    severity: Severity::Warning,
                    obs: o,
                    host: host_key(o),
                    fallback: None,
                    setting: Some((var, globs.to_string())),
                    injected_by: None,
                    transient: false,
                });
            }
        }
    }
    if o.go.kind == GoKind::SumdbLookup {
        if let Some((var, globs)) = env.nosumdb() {
            if match_prefix_patterns(globs, module) {
                out.push(Issue {
                    cause: Cause::PrivateModuleViaSumdb,
                    severity: Severity::Warning,
                    obs: o,
                    host: host_key(o),
                    fallback: None,
                    setting: Some((var, globs.to_string())),
                    injected_by: None,
                    transient: false,
                });
            }
        }
    }
    if o.go.kind.is_direct() {
        if let Some(globs) = env.goinsecure.as_deref().filter(|g| !g.is_empty()) {
            if match_prefix_patterns(globs, module) {
                out.push(Issue {
                    cause: Cause::InsecureSetting,
                    severity: Severity::Info,
                    obs: o,
                    host: host_key(o),
                    fallback: None,
                    setting: Some(("GOINSECURE", globs.to_string())),
                    injected_by: None,
                    transient: false,
                });
            }
        }
    }
}

fn config_findings(obs: &[Observation], env: &GoEnv) -> Vec<Finding> {
    let mut out = Vec::new();
    let finding = |cause, severity, title: String, advice: String| Finding {
        title,
        advice,
        ..Finding::new(cause, severity)
    };
    let goproxy = env.goproxy_value();
    let entries = parse_goproxy(goproxy);
    if entries.is_empty() {
        out.push(finding(
            Cause::GoproxyUnusable,
            Severity::Error,
            format!("GOPROXY={goproxy:?} holds no entries; go refuses to download modules"),
            go_env_w("GOPROXY", "https://proxy.golang.org,direct"),
        ));
    } else if entries.first().map(|e| &e.target) == Some(&ProxyTarget::Off) {
        out.push(finding(
            Cause::GoproxyUnusable,
            Severity::Info,
            "GOPROXY=off: go fails every module download (\"module lookup disabled by GOPROXY=off\")"
                .to_string(),
            format!(
                "if downloads are wanted: {}",
                go_env_w("GOPROXY", "https://proxy.golang.org,direct")
            ),
        ));
    }
    if env.sumdb_off() {
        let mut f = finding(
            Cause::SumdbDisabled,
            Severity::Info,
            "GOSUMDB=off: new modules are not verified against the checksum database".to_string(),
            "go env -u GOSUMDB, and list private modules in GONOSUMDB (or GOPRIVATE) instead"
                .to_string(),
        );
        f.entries = obs
            .iter()
            .filter(|o| o.go.kind.is_sumdb())
            .map(|o| o.index)
            .collect();
        if !f.entries.is_empty() {
            f.severity = Severity::Warning;
            f.title = format!(
                "GOSUMDB=off, yet {} checksum-database requests were made (another go environment?)",
                f.entries.len()
            );
        }
        out.push(f);
    }
    if let Some(flags) = env.goflags.as_deref() {
        let insecure = flags
            .split_whitespace()
            .any(|f| f == "-insecure" || f.starts_with("-insecure="));
        if insecure {
            out.push(finding(
                Cause::InsecureSetting,
                Severity::Warning,
                "GOFLAGS contains -insecure, which current go versions no longer accept".to_string(),
                "drop -insecure from GOFLAGS and set GOINSECURE=<module glob> (plus GONOSUMDB) for the hosts that need it"
                    .to_string(),
            ));
        }
    }
    out
}

fn group(issues: Vec<Issue<'_>>, ctx: &Context<'_>, opts: &DiagnoseOptions) -> Vec<Finding> {
    type Key = (Cause, String, Option<String>);
    let mut order: Vec<Key> = Vec::new();
    let mut groups: HashMap<Key, Vec<Issue<'_>>> = HashMap::new();
    for issue in issues {
        let key = (issue.cause, issue.host.clone(), issue.injected_by.clone());
        if !groups.contains_key(&key) {
            order.push(key.clone());
        }
        groups.entry(key).or_default().push(issue);
    }
    order
        .into_iter()
        .filter_map(|key| {
            let issues = groups.remove(&key)?;
            Some(build_finding(key.0, key.1, &issues, ctx, opts))
        })
        .collect()
}

fn build_finding(
    cause: Cause,
    host: String,
    issues: &[Issue<'_>],
    ctx: &Context<'_>,
    opts: &DiagnoseOptions,
) -> Finding {
    let severity = issues
        .iter()
        .map(|i| i.severity)
        .max()
        .unwrap_or(Severity::Info);
    let mut entries: Vec<usize> = issues.iter().map(|i| i.obs.index).collect();
    entries.sort_unstable();
    entries.dedup();
    let mut modules: Vec<String> = Vec::new();
    for i in issues {
        if let Some(mv) = i.obs.go.module_version() {
            if !modules.contains(&mv) {
                modules.push(mv);
            }
        }
    }
    let fallback = issues.iter().find_map(|i| i.fallback.clone());
    let detail = issues.iter().find_map(|i| detail_of(cause, i.obs));
    let g = Group {
        cause,
        host: &host,
        issues,
        modules: &modules,
        fallback: fallback.as_ref(),
        ctx,
        opts,
    };
    let (mut title, advice) = g.describe();
    let injected_by = issues.iter().find_map(|i| i.injected_by.clone());
    if let Some(rule) = &injected_by {
        if cause != Cause::InjectedFault {
            title.push_str(&format!(" (injected by rule {rule})"));
        }
    }
    let transient = !issues.is_empty() && issues.iter().all(|i| i.transient);
    if transient {
        title.push_str("; the same request succeeded on a retry (transient)");
    }
    Finding {
        entries,
        host: if host.is_empty() { None } else { Some(host) },
        title,
        advice,
        detail,
        modules,
        fallback,
        injected_by,
        transient,
        ..Finding::new(cause, severity)
    }
}

fn detail_of(cause: Cause, o: &Observation) -> Option<String> {
    let text = match cause {
        Cause::MalformedRequest => o.go.problem.clone(),
        Cause::InjectedFault => o
            .fault
            .as_ref()
            .map(|f| format!("rule {}: {}", f.rule, f.action))
            .or_else(|| o.error.as_ref().map(|e| e.message.clone())),
        _ => o
            .error
            .as_ref()
            .map(|e| e.message.clone())
            .or_else(|| o.response_text.clone()),
    }?;
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    Some(clip(line, 200))
}

pub(super) fn clip(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max_chars.saturating_sub(3)).collect();
    out.push_str("...");
    out
}

/// What kind of server a host is to go, for advice wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Proxy,
    Sumdb,
    Vcs,
    Other,
}

struct Group<'g, 'o> {
    cause: Cause,
    host: &'g str,
    issues: &'g [Issue<'o>],
    modules: &'g [String],
    fallback: Option<&'g FallbackNote>,
    ctx: &'g Context<'g>,
    opts: &'g DiagnoseOptions,
}

impl Group<'_, '_> {
    fn n(&self) -> usize {
        self.issues.len()
    }

    fn requests(&self) -> String {
        plural(self.n(), "request")
    }

    fn hostname(&self) -> &str {
        gourl::host_of(self.host)
    }

    fn role(&self) -> Role {
        let kinds = || self.issues.iter().map(|i| i.obs.go.kind);
        if kinds().any(|k| k.is_goproxy()) {
            Role::Proxy
        } else if kinds().any(|k| k.is_sumdb()) {
            Role::Sumdb
        } else if kinds().any(|k| k.is_direct()) {
            Role::Vcs
        } else {
            Role::Other
        }
    }

    /// What made go ask this host, named as the setting a user would change.
    fn knob(&self) -> String {
        let kinds = || self.issues.iter().map(|i| i.obs.go.kind);
        let base = self.issues.iter().find_map(|i| i.obs.go.base.clone());
        let entry = self
            .fallback
            .map(|n| n.entry.clone())
            .or(base)
            .unwrap_or_else(|| format!("https://{}", self.host));
        if kinds().any(|k| k == GoKind::Toolchain) {
            return format!("the toolchain download that GOTOOLCHAIN asked for (fetched through the GOPROXY entry {entry})");
        }
        match self.role() {
            Role::Proxy => format!("the GOPROXY entry {entry}"),
            Role::Sumdb if entry.contains("/sumdb/") => {
                format!("the GOPROXY entry that proxies the checksum database ({entry})")
            }
            Role::Sumdb => format!("GOSUMDB (the checksum database at {})", self.hostname()),
            Role::Vcs => format!(
                "the direct VCS fetch of {} (go-get/git: it matched GOPRIVATE/GONOPROXY, or GOPROXY reached `direct`)",
                self.first_module().unwrap_or("the module")
            ),
            Role::Other => "the URL that was asked for".to_string(),
        }
    }

    fn first_module(&self) -> Option<&str> {
        self.issues.iter().find_map(|i| i.obs.go.module.as_deref())
    }

    /// " on m@v" / " on a@v, b@v +2 more" (`modules_brief` in a sentence's middle).
    fn modules_on(&self) -> String {
        match self.modules_brief().strip_prefix(": ") {
            Some(list) => format!(" on {list}"),
            None => String::new(),
        }
    }

    fn modules_brief(&self) -> String {
        match self.modules {
            [] => String::new(),
            [one] => format!(": {one}"),
            [a, b] => format!(": {a}, {b}"),
            [a, b, rest @ ..] => format!(": {a}, {b} +{} more", rest.len()),
        }
    }

    fn distinct_statuses(&self) -> Vec<u16> {
        let mut codes: Vec<u16> = self.issues.iter().map(|i| i.obs.status).collect();
        codes.sort_unstable();
        codes.dedup();
        codes
    }

    /// "502 Bad Gateway" for one status, "502/503" for several.
    fn statuses(&self) -> String {
        match self.distinct_statuses().as_slice() {
            [one] => status_text(*one),
            _ => self.codes(),
        }
    }

    fn codes(&self) -> String {
        self.distinct_statuses()
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join("/")
    }

    fn setting(&self) -> (&'static str, &str) {
        self.issues
            .iter()
            .find_map(|i| i.setting.as_ref().map(|(v, g)| (*v, g.as_str())))
            .unwrap_or(("GOPRIVATE", ""))
    }

    /// What go does next after this failure at a GOPROXY entry, as title and
    /// advice; `None` when the request did not go through GOPROXY. `on` names the
    /// failure in "go does not fall back on {on}".
    fn fallback_words(&self, what: &str, on: &str) -> Option<(String, String)> {
        let host = self.host;
        if self.role() == Role::Sumdb {
            let note = self.fallback?;
            return Some((
                format!("{host} {what}; once a proxy claims /sumdb/ support go sends it every checksum lookup and never retries elsewhere"),
                format!("fix the checksum-database proxying on {host}, or drop {} from GOPROXY", note.entry),
            ));
        }
        match self.fallback {
            Some(note) if note.go_falls_back => {
                let next = note.next.as_deref().unwrap_or("the next entry");
                let sep = sep_char(note.separator);
                let how = if note.inferred {
                    format!("so '{sep}' followed {} in GOPROXY", note.entry)
                } else {
                    format!("'{sep}' after {}", note.entry)
                };
                Some((
                    format!("{host} {what}; go fell back to {next} ({how})"),
                    format!("fix {host}, or move it after {next} in GOPROXY, to avoid the detour"),
                ))
            }
            Some(note) => match (&note.next, &note.suggested_goproxy) {
                (Some(_), Some(suggested)) => Some((
                    format!("{host} {what}; with ',' go does not fall back on {on} (only on 404/410)"),
                    format!("use '|' or fix the proxy: {}", go_env_w("GOPROXY", suggested)),
                )),
                (Some(next), None) => Some((
                    format!("{host} {what}; go stops here instead of trying {next}"),
                    format!("fix {host}"),
                )),
                (None, _) => Some((
                    format!("{host} {what}; it is the last GOPROXY entry, so go fails"),
                    format!(
                        "fix {host}, or add a fallback: {}",
                        go_env_w(
                            "GOPROXY",
                            &format!(
                                "{}|direct",
                                self.ctx
                                    .proxies
                                    .as_deref()
                                    .map(|e| render_goproxy(e, usize::MAX))
                                    .unwrap_or_else(|| note.entry.clone())
                            )
                        )
                    ),
                )),
            },
            None if self.role() == Role::Proxy => Some((
                format!("{host} {what}"),
                format!("fix {host}; whether go tried the next GOPROXY entry depends on the separator after it, unknown without go's environment: ',' stops on this failure (it falls back only on 404/410), '|' moves on"),
            )),
            None => None,
        }
    }

    /// A short clause on fallback for failures whose advice is about the cause itself.
    fn fallback_clause(&self) -> String {
        match self.fallback {
            Some(n) if n.go_falls_back => {
                format!(
                    "; go fell back to {}",
                    n.next.as_deref().unwrap_or("the next entry")
                )
            }
            Some(n) if self.role() == Role::Proxy => match &n.next {
                Some(next) => format!(
                    "; with '{}' go does not fall back to {next}",
                    sep_char(n.separator)
                ),
                None => "; last GOPROXY entry, go fails".to_string(),
            },
            _ => String::new(),
        }
    }

    fn describe(&self) -> (String, String) {
        let host = self.host;
        let hostname = self.hostname();
        let n = self.n();
        let reqs = self.requests();
        let or_generic = |words: Option<(String, String)>, title: String, advice: String| {
            words.unwrap_or((title, advice))
        };
        match self.cause {
            Cause::DnsFailure => {
                let title = format!("{host}: no such host ({reqs}){}", self.fallback_clause());
                let advice = match self.role() {
                    Role::Proxy | Role::Sumdb => format!("no such host: check the spelling of {hostname} in {} (`go env GOPROXY GOSUMDB`)", self.knob()),
                    Role::Vcs => format!("no such host: check the spelling of the import path's host; the name came from {}", self.knob()),
                    Role::Other => format!("no such host: check the spelling of {hostname} (`getent hosts {hostname}`)"),
                };
                (title, advice)
            }
            Cause::DnsServerFailure => (
                format!("{host}: the DNS resolver failed to look up {hostname} ({reqs}){}", self.fallback_clause()),
                format!("the resolver or the network is broken, not the name: check /etc/resolv.conf and your VPN, then `getent hosts {hostname}`"),
            ),
            Cause::ConnectionRefused => (
                format!("{host}: connection refused ({reqs}){}", self.fallback_clause()),
                format!("nothing listens on {host}: check the host and port in {} and any --connect-to mapping", self.knob()),
            ),
            Cause::ConnectTimeout => (
                format!("{host}: TCP connect timed out ({reqs}){}", self.fallback_clause()),
                format!("a firewall drops traffic to {hostname} (asked because of {}): go through your corporate proxy (modscope --upstream-proxy URL) or a reachable GOPROXY mirror", self.knob()),
            ),
            Cause::TlsUntrusted => (
                format!("{host}: certificate not trusted ({reqs}){}", self.fallback_clause()),
                "give modscope the issuing CA with --upstream-ca ca.pem (a TLS-inspecting corporate proxy needs its root here)".to_string(),
            ),
            Cause::TlsHostnameMismatch => (
                format!("{host}: certificate does not name {hostname} ({reqs}){}", self.fallback_clause()),
                format!("the server presents another name's certificate: check the host in {} and any --connect-to mapping", self.knob()),
            ),
            Cause::TlsExpired => (
                format!("{host}: certificate expired ({reqs}){}", self.fallback_clause()),
                "renew the server certificate, or fix this machine's clock (compare `date -u`)".to_string(),
            ),
            Cause::TlsNotYetValid => (
                format!("{host}: certificate not valid yet ({reqs}){}", self.fallback_clause()),
                "this machine's clock is probably behind (compare `date -u` with the certificate's notBefore in the trace's _tls); otherwise the server deployed a certificate too early".to_string(),
            ),
            Cause::TlsHandshakeTimeout => (
                format!("{host}: TLS handshake timed out ({reqs}); go gives up after 10 s{}", self.fallback_clause()),
                format!("the path to {hostname} stalls mid-handshake (MTU, firewall): test with `curl -v https://{hostname}/` or use another GOPROXY mirror"),
            ),
            Cause::TlsHandshakeFailed => (
                format!("{host}: TLS handshake failed ({reqs}){}", self.fallback_clause()),
                format!("compare what the server offers: `openssl s_client -connect {} -servername {hostname}`", with_port(host)),
            ),
            Cause::ProxyAuthRequired => (
                format!("{host}: the upstream proxy demands credentials (407, {reqs})"),
                "pass them to modscope: --upstream-proxy http://USER:PASS@PROXY:PORT".to_string(),
            ),
            Cause::UpstreamProxyFailed => (
                format!("{host}: the upstream proxy did not open a tunnel ({reqs})"),
                format!("check --upstream-proxy and that the proxy allows CONNECT to {}", with_port(host)),
            ),
            Cause::Forbidden => {
                let what = format!("refused access ({}) to {reqs}", self.statuses());
                let on = self.codes();
                let netrc = format!("add `machine {hostname} login USER password TOKEN` to ~/.netrc so go sends credentials");
                let generic = match self.role() {
                    Role::Vcs => format!("configure git credentials for {hostname} (credential helper or ~/.netrc); private modules also need GOPRIVATE={}", self.private_glob()),
                    _ => netrc,
                };
                let (title, advice) = or_generic(self.fallback_words(&what, &on), format!("{host} {what}"), generic.clone());
                // The fallback verdict says what go did; credentials are still the fix.
                (title, if advice.starts_with("fix ") { generic } else { advice })
            }
            Cause::NotFound => {
                let mut title = format!("{host}: {n} not found ({}){}", self.statuses(), self.modules_brief());
                if let Some(note) = self.fallback.filter(|n| n.go_falls_back) {
                    let next = note.next.as_deref().unwrap_or("the next entry");
                    title.push_str(&format!("; go moves on to {next}"));
                }
                (title, self.not_found_advice())
            }
            Cause::ExpectedProbing => (
                format!("{host}: {n} expected 404/410 while go probed module path prefixes{}", self.modules_brief()),
                "nothing to fix: `go get` asks for every prefix of a package path until one is a module".to_string(),
            ),
            Cause::SumdbNotProxied => (
                format!("{host} does not proxy the checksum database (404 on /sumdb/.../supported)"),
                "nothing to fix: go then contacts the checksum database directly (sum.golang.org must be reachable)".to_string(),
            ),
            Cause::FellBack => (
                format!("{host}: {n} not found here but served by a later GOPROXY entry{}", self.modules_brief()),
                "nothing to fix; to skip the detour, put the entry that serves these modules first in GOPROXY".to_string(),
            ),
            Cause::RateLimited => {
                let retry = self.issues.iter().find_map(|i| i.obs.retry_after.as_deref());
                let retry_txt = retry.map(|r| format!(", Retry-After: {r}")).unwrap_or_default();
                let title = format!("{host}: rate limited (429) on {reqs}{retry_txt}");
                let wait = match retry {
                    Some(r) => format!("wait the Retry-After ({r}) before retrying"),
                    None => "back off before retrying (no Retry-After given)".to_string(),
                };
                let advice = match self.role() {
                    Role::Vcs => format!("{wait}; go is fetching from {hostname} directly (a go-get/VCS fetch): use a module proxy ({}) or put a token in ~/.netrc", go_env_w("GOPROXY", "https://proxy.golang.org,direct")),
                    _ => format!("{wait}; run fewer go commands in parallel or use a caching GOPROXY"),
                };
                (title, advice)
            }
            Cause::UpstreamServerError => {
                let what = format!("answered {}", self.statuses());
                let words = self.fallback_words(&what, &self.codes());
                let (title, advice) = or_generic(
                    words,
                    format!("{host} {what} ({reqs})"),
                    format!("{hostname} has a server-side problem; retry later or report it to its operator"),
                );
                (with_count(title, n), advice)
            }
            Cause::ResetOrTruncated => {
                let what = "cut responses short (go reports \"unexpected EOF\")";
                let (title, advice) = or_generic(
                    self.fallback_words(what, "a cut-short response"),
                    format!("{host} {what} ({reqs})"),
                    format!("retry; if it repeats, something between here and {hostname} cuts long transfers (proxy timeouts or size limits)"),
                );
                (with_count(title, n), advice)
            }
            Cause::NoResponse => {
                let waited = self
                    .issues
                    .iter()
                    .filter_map(|i| i.obs.timings.wait)
                    .fold(0.0_f64, f64::max);
                let what = format!("accepted {reqs} but closed without a response (after {})", secs(waited));
                let (title, advice) = or_generic(
                    self.fallback_words(&what, "no response"),
                    format!("{host} {what}"),
                    format!("{hostname} drops requests before answering (overload, a crashing backend, an idle timeout on a middlebox): retry, and check its health"),
                );
                (with_count(title, n), advice)
            }
            Cause::BodyStalled => self.body_stalled(),
            // Built per host by slowlink::slow_links, never from grouped exchanges.
            Cause::SlowLink => (format!("{host}: slow link"), "use a nearer GOPROXY mirror".to_string()),
            Cause::ReplayBodyUnavailable => (
                format!("{host}: replay could not serve the recorded body of {reqs}"),
                "the trace's body files are missing or corrupt: record again, or check the trace directory's bodies/".to_string(),
            ),
            Cause::Timeout => {
                let what = "did not answer in time";
                let (title, advice) = or_generic(
                    self.fallback_words(what, "a timeout"),
                    format!("{host} {what} ({reqs})"),
                    format!("go waits forever on a stalled response: check {hostname}'s health"),
                );
                (with_count(title, n), advice)
            }
            Cause::ProtocolError => (
                format!("{host}: HTTP protocol error ({reqs}){}", self.fallback_clause()),
                "if it only happens over HTTP/2, compare with GODEBUG=http2client=0 in go's environment".to_string(),
            ),
            Cause::ClientAbort => (
                format!("{host}: go cancelled {reqs}"),
                "usually follows another failure (go stops its other downloads) or an interrupt: look at the errors first".to_string(),
            ),
            Cause::OtherError => {
                let (title, advice) = or_generic(
                    self.fallback_words("failed", "this error"),
                    format!("{host}: {reqs} failed"),
                    "see the error message in the listed trace entries".to_string(),
                );
                (with_count(title, n), advice)
            }
            Cause::UnexpectedStatus => (
                format!("{host}: unexpected status {} on {reqs}", self.statuses()),
                format!("go treats any non-200 answer as an error: check what {hostname} serves at these URLs"),
            ),
            Cause::SlowFirstByte => {
                let max = self
                    .issues
                    .iter()
                    .filter_map(|i| i.obs.timings.wait)
                    .fold(0.0_f64, f64::max);
                (
                    format!(
                        "{host}: {} waited over {} for the first byte (max {})",
                        plural(n, "response"),
                        secs(self.opts.slow_wait_ms),
                        secs(max)
                    ),
                    format!("go has no response-header timeout and waits indefinitely: check {hostname}'s load or cache, or put a closer GOPROXY mirror first"),
                )
            }
            Cause::InjectedFault => {
                let mut rules: Vec<(String, usize)> = Vec::new();
                for i in self.issues {
                    let rule = i
                        .obs
                        .fault
                        .as_ref()
                        .map(|f| format!("{} ({})", f.rule, f.action))
                        .unwrap_or_else(|| "unnamed".to_string());
                    match rules.iter_mut().find(|(r, _)| *r == rule) {
                        Some((_, c)) => *c += 1,
                        None => rules.push((rule, 1)),
                    }
                }
                let list = rules
                    .iter()
                    .map(|(r, c)| format!("{r} x{c}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                (
                    // The modules matter most here: go's own words for a fault are
                    // often nameless ("zip: checksum error").
                    format!(
                        "{host}: {} injected by modscope: {list}{}{}",
                        plural(n, "fault"),
                        self.modules_on(),
                        self.fallback_clause()
                    ),
                    "intended chaos, not a network problem: drop the --fault/--faults rule to stop it".to_string(),
                )
            }
            Cause::MalformedRequest => (
                format!("{host}: {reqs} the go command would not send"),
                "the client builds proxy URLs by hand: escape upper case as '!' + lower case (see `go help goproxy`)".to_string(),
            ),
            Cause::PrivateModuleViaProxy => {
                let (var, globs) = self.setting();
                (
                    format!("{host}: {reqs} for modules matching {var}={globs} went to a proxy{}", self.modules_brief()),
                    format!("go fetches those directly, so this go did not see {var}: set it where go runs ({})", go_env_w(var, globs)),
                )
            }
            Cause::PrivateModuleViaSumdb => {
                let (var, globs) = self.setting();
                (
                    format!("{host}: {} disclosed modules matching {var}={globs}{}", plural(n, "checksum lookup"), self.modules_brief()),
                    format!("make the setting visible to go ({}); go skips the checksum database for those", go_env_w(var, globs)),
                )
            }
            Cause::InsecureSetting => {
                let (_, globs) = self.setting();
                (
                    format!("{host}: GOINSECURE={globs} lets go use plain HTTP and skip certificate checks for {reqs}"),
                    "keep GOINSECURE as narrow as possible; it applies only to direct fetches, never to GOPROXY".to_string(),
                )
            }
            // Built by config_findings, host_header, the forensic passes or from the trace
            // itself, never from grouped exchanges.
            Cause::SumdbDisabled
            | Cause::GoproxyUnusable
            | Cause::TraceIncomplete
            | Cause::HostHeaderMismatch
            | Cause::ChecksumMismatch
            | Cause::ZipRejected
            | Cause::CredentialsMissing
            | Cause::CredentialsRefused
            | Cause::PrivatePathLeak => (
                format!("{host}: {reqs}"),
                "see go env".to_string(),
            ),
        }
    }

    fn body_stalled(&self) -> (String, String) {
        let host = self.host;
        let worst = self
            .issues
            .iter()
            .filter_map(|i| i.obs.stall.as_ref().map(|s| (i.obs, s)))
            .max_by(|a, b| a.1.longest_ms.total_cmp(&b.1.longest_ms));
        let what = match worst {
            Some((o, s)) => {
                let of = s
                    .expected_bytes
                    .map(|e| format!(" of {}", super::render::fmt_bytes(e)))
                    .unwrap_or_default();
                let end = if s.resumed && o.body_complete {
                    "then resumed and completed"
                } else if s.resumed {
                    "resumed, then failed"
                } else if o
                    .error
                    .as_ref()
                    .is_some_and(|e| e.kind == ErrorKind::ClientAbort)
                {
                    "and the client gave up (a job timeout or an interrupt)"
                } else {
                    "and was then cut"
                };
                format!(
                    "received nothing for {} after {}{of}, {end}",
                    secs(s.longest_ms),
                    super::render::fmt_bytes(s.at_bytes)
                )
            }
            None => "stalled".to_string(),
        };
        let knob = self.knob();
        (
            format!("{host}: {} stalled mid-body{}: {what}", self.requests(), self.modules_brief()),
            format!(
                "the mirror stalls mid-download ({knob}) and go has no read timeout, so it waits forever: put another mirror with '|' after this one (e.g. {}), and give CI jobs a timeout",
                go_env_w("GOPROXY", "https://proxy.golang.org|direct")
            ),
        )
    }

    fn private_glob(&self) -> String {
        self.first_module()
            .map(private_glob)
            .unwrap_or_else(|| self.hostname().to_string())
    }

    fn not_found_advice(&self) -> String {
        let module = self.first_module().unwrap_or("MODULE");
        let kinds = || self.issues.iter().map(|i| i.obs.go.kind);
        if kinds().any(|k| k == GoKind::Toolchain) {
            return "that Go toolchain is not published for this platform/version: check GOTOOLCHAIN and the go/toolchain lines in go.mod".to_string();
        }
        if kinds().any(|k| k == GoKind::SumdbLookup) {
            return format!(
                "the checksum database cannot see {module}; if it is private: {}",
                go_env_w("GONOSUMDB", &private_glob(module))
            );
        }
        if let Some(note) = self.fallback.filter(|n| n.go_falls_back) {
            let next = note.next.as_deref().unwrap_or("the next entry");
            return format!("nothing to fix if {next} serves {module}; otherwise check the version with `go list -m -versions {module}`");
        }
        match self.role() {
            Role::Vcs => format!("check the import path {module} exists and is reachable; private repositories need GOPRIVATE={} and git credentials", private_glob(module)),
            Role::Other => "not a module request go makes: check the URL that was asked for".to_string(),
            _ => format!(
                "check the version exists (`go list -m -versions {module}`); if {module} is private: {}",
                go_env_w("GOPRIVATE", &private_glob(module))
            ),
        }
    }
}

/// The GOPRIVATE glob a user most likely wants for a module: the organisation on
/// shared forges, the whole domain elsewhere.
fn private_glob(module: &str) -> String {
    const FORGES: &[&str] = &["github.com", "gitlab.com", "bitbucket.org", "codeberg.org"];
    let mut parts = module.split('/');
    let first = parts.next().unwrap_or(module);
    match parts.next() {
        Some(org) if FORGES.contains(&first) => format!("{first}/{org}"),
        _ => first.to_string(),
    }
}

fn sep_char(f: Fallback) -> char {
    match f {
        Fallback::OnAnyError => '|',
        Fallback::OnNotFound => ',',
    }
}

fn with_port(host: &str) -> String {
    let has_port = gourl::host_of(host) != host;
    if has_port {
        host.to_string()
    } else {
        format!("{host}:443")
    }
}

fn with_count(title: String, n: usize) -> String {
    if n > 1 && !title.contains(" requests") {
        format!("{title} [{n}x]")
    } else {
        title
    }
}

pub(super) fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Seconds with one decimal, whatever the size: a finding's sentence states its threshold
/// in seconds (`over 10.0 s`, `max 12.0 s`), and the values it compares read in the same
/// unit, which `net::human_ms`'s switch to milliseconds would break.
fn secs(ms: f64) -> String {
    format!("{:.1} s", ms / 1000.0)
}

pub(super) fn status_text(code: u16) -> String {
    let reason = crate::net::reason_phrase(code);
    if reason.is_empty() {
        code.to_string()
    } else {
        format!("{code} {reason}")
    }
}
