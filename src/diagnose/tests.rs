//! Table tests for diagnosis causes, GOPROXY fallback verdicts, leaks, summary and report.

use super::*;
use crate::diagnose::advice;
use crate::exchange::{ErrorKind, ExchangeError, FailPhase, FaultFacts, PhaseTimes};
use crate::gomod::{classify, GoKind};

const PG: &str = "https://proxy.golang.org";
const PX: &str = "https://proxy.example";

fn ob(index: usize, url: &str, status: u16) -> Observation {
    let host = url
        .split_once("://")
        .map(|(_, rest)| rest.split('/').next().unwrap_or(""))
        .unwrap_or("")
        .to_string();
    Observation {
        index,
        started_ms: index as f64 * 10.0,
        method: "GET".to_string(),
        url: url.to_string(),
        host,
        status,
        go: classify("GET", url, &[]),
        total_ms: 5.0,
        response_bytes: 100,
        body_complete: true,
        ..Observation::default()
    }
}

fn failed(o: Observation, kind: &str) -> Observation {
    failed_in(o, FailPhase::Connect, ErrorKind::parse(kind))
}

fn failed_in(mut o: Observation, phase: FailPhase, kind: ErrorKind) -> Observation {
    o.status = 0;
    o.response_bytes = 0;
    o.error = Some(ExchangeError::new(
        phase,
        kind.clone(),
        format!("{kind} happened"),
    ));
    o
}

fn env(goproxy: &str) -> GoEnv {
    GoEnv {
        goproxy: Some(goproxy.to_string()),
        ..GoEnv::default()
    }
}

fn zip(base: &str, module_escaped: &str) -> String {
    format!("{base}/{module_escaped}/@v/v1.0.0.zip")
}

fn causes(f: &[Finding]) -> Vec<(Cause, Severity)> {
    f.iter().map(|f| (f.cause, f.severity)).collect()
}

/// The mapping itself is an exhaustive match (the compiler keeps it complete); this
/// checks what every kind, and a word from a newer version, turns into for a user.
#[test]
fn every_error_kind_has_a_cause() {
    use Cause::*;
    use Severity::*;
    let mut kinds: Vec<ErrorKind> = ErrorKind::KNOWN.to_vec();
    kinds.push(ErrorKind::parse("something-new"));
    for kind in kinds {
        let o = failed(ob(3, &zip(PG, "example.com/m"), 0), kind.as_str());
        let f = diagnose(&[o], None);
        assert_eq!(f.len(), 1, "{kind}: {f:?}");
        let (cause, severity) = (f[0].cause, f[0].severity);
        let generic = matches!(kind, ErrorKind::Other | ErrorKind::Unknown(_));
        assert_eq!(cause == OtherError, generic, "{kind} -> {cause}");
        let expected = match kind {
            ErrorKind::ClientAbort | ErrorKind::Injected => Info,
            _ => Error,
        };
        assert_eq!(severity, expected, "{kind}");
        assert_eq!(f[0].entries, vec![3]);
        assert_eq!(f[0].host.as_deref(), Some("proxy.golang.org"));
        assert!(
            !f[0].advice.is_empty() && !f[0].advice.contains('\n'),
            "{kind}"
        );
        assert_eq!(
            f[0].detail.as_deref(),
            Some(format!("{kind} happened").as_str())
        );
    }
}

#[test]
fn error_kinds_map_to_their_causes() {
    use Cause::*;
    let zip_url = zip(PG, "example.com/m");
    let table = [
        (FailPhase::Dns, ErrorKind::Dns, DnsFailure),
        (
            FailPhase::Dns,
            ErrorKind::DnsServerFailure,
            DnsServerFailure,
        ),
        (FailPhase::Tls, ErrorKind::TlsHandshake, TlsHandshakeFailed),
        (FailPhase::Response, ErrorKind::UpstreamClosed, NoResponse),
        (FailPhase::Response, ErrorKind::UpstreamReset, NoResponse),
        (FailPhase::Body, ErrorKind::UpstreamClosed, ResetOrTruncated),
        (FailPhase::Body, ErrorKind::UpstreamReset, ResetOrTruncated),
        (
            FailPhase::Body,
            ErrorKind::ReplayBody,
            ReplayBodyUnavailable,
        ),
    ];
    for (phase, kind, cause) in table {
        let o = failed_in(ob(0, &zip_url, 0), phase.clone(), kind.clone());
        let f = diagnose(&[o], None);
        assert_eq!(f[0].cause, cause, "{phase}/{kind}");
    }
}

#[test]
fn error_words_round_trip_and_unknown_words_survive() {
    for kind in ErrorKind::KNOWN {
        let json = serde_json::to_string(kind).unwrap();
        assert_eq!(json, format!("\"{}\"", kind.as_str()));
        assert_eq!(&serde_json::from_str::<ErrorKind>(&json).unwrap(), kind);
    }
    for phase in FailPhase::KNOWN {
        let json = serde_json::to_string(phase).unwrap();
        assert_eq!(&serde_json::from_str::<FailPhase>(&json).unwrap(), phase);
    }
    let e: ExchangeError =
        serde_json::from_str(r#"{"phase":"quic","kind":"h3-stream-error","message":"m"}"#).unwrap();
    assert_eq!(e.phase, FailPhase::Unknown("quic".into()));
    assert_eq!(e.kind, ErrorKind::Unknown("h3-stream-error".into()));
    assert_eq!(
        serde_json::to_value(&e).unwrap(),
        serde_json::json!({"phase":"quic","kind":"h3-stream-error","message":"m"})
    );
}

#[test]
fn statuses_map_to_causes() {
    use Cause::*;
    use Severity::*;
    let zip_url = zip(PG, "example.com/m");
    let list_url = format!("{PG}/example.com/m/@v/list");
    let git = "https://github.com/o/r/info/refs?service=git-upload-pack";
    type Row<'a> = (&'a str, u16, bool, Vec<(Cause, Severity)>);
    let table: Vec<Row> = vec![
        (&zip_url, 200, true, vec![]),
        (&zip_url, 304, true, vec![]),
        (&zip_url, 200, false, vec![(ResetOrTruncated, Error)]),
        (&zip_url, 401, true, vec![(Forbidden, Error)]),
        (&zip_url, 403, true, vec![(Forbidden, Error)]),
        (git, 403, true, vec![(Forbidden, Error)]),
        (&zip_url, 404, true, vec![(NotFound, Error)]),
        (&zip_url, 410, true, vec![(NotFound, Error)]),
        (&list_url, 404, true, vec![(NotFound, Warning)]),
        (git, 404, true, vec![(NotFound, Error)]),
        (&zip_url, 407, true, vec![(ProxyAuthRequired, Error)]),
        (&zip_url, 429, true, vec![(RateLimited, Error)]),
        (&zip_url, 500, true, vec![(UpstreamServerError, Error)]),
        (&zip_url, 502, true, vec![(UpstreamServerError, Error)]),
        (&zip_url, 503, true, vec![(UpstreamServerError, Error)]),
        (&zip_url, 418, true, vec![(UnexpectedStatus, Warning)]),
        (&zip_url, 0, true, vec![(OtherError, Error)]),
    ];
    for (url, status, complete, want) in table {
        let mut o = ob(0, url, status);
        o.body_complete = complete;
        assert_eq!(causes(&diagnose(&[o], None)), want, "{url} {status}");
    }
}

#[test]
fn rate_limit_mentions_retry_after() {
    let mut o = ob(
        0,
        "https://github.com/o/r/info/refs?service=git-upload-pack",
        429,
    );
    o.retry_after = Some("60".to_string());
    let f = diagnose(&[o], None);
    assert_eq!(f[0].cause, Cause::RateLimited);
    assert!(f[0].title.contains("Retry-After: 60"), "{}", f[0].title);
    assert!(f[0].advice.contains("Retry-After (60)"), "{}", f[0].advice);
    assert!(f[0]
        .advice
        .contains("`go env -w GOPROXY='https://proxy.golang.org,direct'`"));
    let f = diagnose(&[ob(0, &zip(PG, "example.com/m"), 429)], None);
    assert!(f[0].advice.contains("no Retry-After"), "{}", f[0].advice);
}

#[test]
fn slow_first_byte_threshold_is_a_parameter() {
    let mut o = ob(0, &zip(PG, "example.com/m"), 200);
    o.timings.wait = Some(12_000.0);
    let f = diagnose(std::slice::from_ref(&o), None);
    assert_eq!(causes(&f), vec![(Cause::SlowFirstByte, Severity::Warning)]);
    assert!(f[0].title.contains("over 10.0 s"), "{}", f[0].title);
    assert!(f[0].title.contains("max 12.0 s"), "{}", f[0].title);
    let relaxed = DiagnoseOptions {
        slow_wait_ms: 15_000.0,
    };
    assert!(diagnose_with(std::slice::from_ref(&o), None, &relaxed).is_empty());
    // A slow failure reports both.
    o.status = 502;
    let got = causes(&diagnose(&[o], None));
    assert!(got.contains(&(Cause::UpstreamServerError, Severity::Error)));
    assert!(got.contains(&(Cause::SlowFirstByte, Severity::Warning)));
}

#[test]
fn injected_faults_show_the_real_diagnosis_tagged_with_the_rule() {
    let mut a = ob(0, &zip(PG, "example.com/m"), 502);
    a.fault = Some(FaultFacts {
        rule: "flaky".to_string(),
        action: "status 502".to_string(),
    });
    a.timings.wait = Some(60_000.0);
    let mut b = ob(1, &zip(PG, "example.com/n"), 502);
    b.fault = Some(FaultFacts {
        rule: "flaky".to_string(),
        action: "status 502".to_string(),
    });
    let c = failed_in(
        ob(2, &zip(PG, "example.com/o"), 0),
        FailPhase::Body,
        ErrorKind::Injected,
    );
    let mut d = ob(3, &zip(PG, "example.com/p"), 200);
    d.fault = Some(FaultFacts {
        rule: "slow".to_string(),
        action: "latency 50ms".to_string(),
    });
    let obs = [a, b, c, d];
    let f = diagnose(&obs, Some(&env("https://proxy.golang.org,direct")));
    use Cause::*;
    use Severity::Info;
    assert_eq!(
        causes(&f),
        vec![
            (UpstreamServerError, Info),
            (SlowFirstByte, Info),
            (ResetOrTruncated, Info),
            (InjectedFault, Info)
        ]
    );
    assert_eq!(f[0].entries, vec![0, 1]);
    assert_eq!(f[0].injected_by.as_deref(), Some("flaky"));
    assert!(
        f[0].title.contains("502") && f[0].title.ends_with("(injected by rule flaky)"),
        "{}",
        f[0].title
    );
    // The real advice, not "drop the rule".
    assert!(f[0].advice.contains("fix "), "{}", f[0].advice);
    assert!(
        f[2].title.contains("(injected by rule unnamed)"),
        "{}",
        f[2].title
    );
    // A fault with no visible failure keeps its own cause.
    assert_eq!(f[3].entries, vec![3]);
    assert!(
        f[3].title
            .contains("slow (latency 50ms) x1 on example.com/p@v1.0.0"),
        "{}",
        f[3].title
    );
    // Latency on an exchange that failed for real: the failure is the origin's, untagged.
    let mut e = ob(4, &zip(PG, "example.com/q"), 500);
    e.fault = Some(FaultFacts {
        rule: "slow".to_string(),
        action: "latency 50ms".to_string(),
    });
    let f = diagnose(&[e], Some(&env("https://proxy.golang.org,direct")));
    assert_eq!(causes(&f), vec![(UpstreamServerError, Severity::Error)]);
    assert_eq!(f[0].injected_by, None, "{}", f[0].title);
    let s = summarize(&obs);
    assert_eq!(s.totals.injected, 4);
    assert_eq!(s.totals.failures, 0);
    assert!(s.slowest_downloads.is_empty());
    assert_eq!(s.by_host[0].timings.wait, None);
}

#[test]
fn identical_causes_group_per_host() {
    let obs = [
        ob(0, &zip(PX, "example.com/a"), 502),
        ob(1, &zip(PG, "example.com/b"), 502),
        ob(2, &zip(PX, "example.com/c"), 503),
        failed(ob(3, &zip(PX, "example.com/d"), 0), "dns"),
        ob(4, &zip(PX, "example.com/a"), 502),
    ];
    let f = diagnose(&obs, None);
    let px: Vec<&Finding> = f
        .iter()
        .filter(|f| {
            f.cause == Cause::UpstreamServerError && f.host.as_deref() == Some("proxy.example")
        })
        .collect();
    assert_eq!(px.len(), 1);
    assert_eq!(px[0].entries, vec![0, 2, 4]);
    assert_eq!(
        px[0].modules,
        vec![
            "example.com/a@v1.0.0".to_string(),
            "example.com/c@v1.0.0".to_string()
        ]
    );
    assert!(px[0].title.contains("502/503"), "{}", px[0].title);
    assert_eq!(f.len(), 3);
    // Errors come first, then in trace order.
    assert_eq!(f[0].entries.first(), Some(&0));
}

#[test]
fn prefix_probing_is_expected() {
    // go get github.com/a/b/c/d where the module is github.com/a/b.
    let list = |i, m: &str, s| ob(i, &format!("{PG}/{m}/@v/list"), s);
    let info = |i, m: &str, s| ob(i, &format!("{PG}/{m}/@latest"), s);
    let obs = [
        list(0, "github.com/a/b/c/d", 404),
        list(1, "github.com/a/b/c", 410),
        list(2, "github.com/a/b", 200),
        info(3, "github.com/a", 404),
        // Unrelated miss stays a finding.
        list(4, "github.com/z/y", 404),
        // A .mod miss is never probing.
        ob(5, &format!("{PG}/github.com/a/b/c/@v/v1.0.0.mod"), 404),
    ];
    let f = diagnose(&obs, None);
    let probing = f
        .iter()
        .find(|f| f.cause == Cause::ExpectedProbing)
        .expect("probing finding");
    assert_eq!(probing.severity, Severity::Info);
    assert_eq!(probing.entries, vec![0, 1, 3]);
    let nf = f
        .iter()
        .find(|f| f.cause == Cause::NotFound)
        .expect("not-found finding");
    assert_eq!(nf.entries, vec![4, 5]);
    assert_eq!(nf.severity, Severity::Error);

    // When no candidate path exists at all, the misses are real.
    let obs = [
        list(0, "github.com/a/b/c", 404),
        list(1, "github.com/a/b", 404),
    ];
    assert_eq!(
        causes(&diagnose(&obs, None)),
        vec![(Cause::NotFound, Severity::Warning)]
    );
}

#[test]
fn goproxy_fallback_verdicts() {
    struct Case {
        goproxy: &'static str,
        status: u16,
        error: Option<&'static str>,
        cause: Cause,
        severity: Severity,
        falls_back: bool,
        next: Option<&'static str>,
        suggested: Option<&'static str>,
        title_has: &'static str,
        advice_has: &'static str,
    }
    let cases = [
        Case {
            goproxy: "https://proxy.example,https://proxy.golang.org,direct",
            status: 502,
            error: None,
            cause: Cause::UpstreamServerError,
            severity: Severity::Error,
            falls_back: false,
            next: Some("https://proxy.golang.org"),
            suggested: Some("https://proxy.example|https://proxy.golang.org,direct"),
            title_has: "proxy.example answered 502 Bad Gateway; with ',' go does not fall back on 502 (only on 404/410)",
            advice_has: "use '|' or fix the proxy: `go env -w GOPROXY='https://proxy.example|https://proxy.golang.org,direct'`",
        },
        Case {
            goproxy: "https://proxy.example|https://proxy.golang.org,direct",
            status: 502,
            error: None,
            cause: Cause::UpstreamServerError,
            severity: Severity::Warning,
            falls_back: true,
            next: Some("https://proxy.golang.org"),
            suggested: None,
            title_has: "go fell back to https://proxy.golang.org ('|' after https://proxy.example)",
            advice_has: "fix proxy.example",
        },
        Case {
            goproxy: "https://proxy.example,https://proxy.golang.org,direct",
            status: 404,
            error: None,
            cause: Cause::NotFound,
            severity: Severity::Info,
            falls_back: true,
            next: Some("https://proxy.golang.org"),
            suggested: None,
            title_has: "go moves on to https://proxy.golang.org",
            advice_has: "nothing to fix if https://proxy.golang.org serves example.com/m",
        },
        Case {
            goproxy: "https://proxy.example|direct",
            status: 410,
            error: None,
            cause: Cause::NotFound,
            severity: Severity::Info,
            falls_back: true,
            next: Some("direct"),
            suggested: None,
            title_has: "go moves on to direct",
            advice_has: "nothing to fix",
        },
        Case {
            goproxy: "https://proxy.example",
            status: 502,
            error: None,
            cause: Cause::UpstreamServerError,
            severity: Severity::Error,
            falls_back: false,
            next: None,
            suggested: None,
            title_has: "last GOPROXY entry",
            advice_has: "`go env -w GOPROXY='https://proxy.example|direct'`",
        },
        Case {
            goproxy: "https://proxy.example",
            status: 404,
            error: None,
            cause: Cause::NotFound,
            severity: Severity::Error,
            falls_back: false,
            next: None,
            suggested: None,
            title_has: "1 not found (404 Not Found): example.com/m@v1.0.0",
            advice_has: "go list -m -versions example.com/m",
        },
        Case {
            goproxy: "https://proxy.example/,direct",
            status: 0,
            error: Some("upstream-reset"),
            cause: Cause::ResetOrTruncated,
            severity: Severity::Error,
            falls_back: false,
            next: Some("direct"),
            suggested: Some("https://proxy.example|direct"),
            title_has: "with ',' go does not fall back on a cut-short response",
            advice_has: "GOPROXY='https://proxy.example|direct'",
        },
        Case {
            goproxy: "https://proxy.example|direct",
            status: 0,
            error: Some("timeout"),
            cause: Cause::Timeout,
            severity: Severity::Warning,
            falls_back: true,
            next: Some("direct"),
            suggested: None,
            title_has: "go fell back to direct",
            advice_has: "fix proxy.example",
        },
        Case {
            goproxy: "https://proxy.example,direct",
            status: 0,
            error: Some("dns"),
            cause: Cause::DnsFailure,
            severity: Severity::Error,
            falls_back: false,
            next: Some("direct"),
            suggested: Some("https://proxy.example|direct"),
            title_has: "with ',' go does not fall back to direct",
            advice_has: "check the spelling of proxy.example in the GOPROXY entry",
        },
        Case {
            goproxy: "https://proxy.example|direct",
            status: 0,
            error: Some("tls-untrusted"),
            cause: Cause::TlsUntrusted,
            severity: Severity::Warning,
            falls_back: true,
            next: Some("direct"),
            suggested: None,
            title_has: "go fell back to direct",
            advice_has: "--upstream-ca",
        },
    ];
    for c in cases {
        let mut o = ob(7, &zip(PX, "example.com/m"), c.status);
        if let Some(kind) = c.error {
            o = failed(o, kind);
        }
        let f = diagnose(&[o], Some(&env(c.goproxy)));
        let ctx = format!("{} {} {:?}: {f:#?}", c.goproxy, c.status, c.error);
        assert_eq!(f.len(), 1, "{ctx}");
        let f = &f[0];
        assert_eq!((f.cause, f.severity), (c.cause, c.severity), "{ctx}");
        let note = f.fallback.as_ref().expect("fallback note");
        assert_eq!(note.entry, "https://proxy.example", "{ctx}");
        assert_eq!(note.go_falls_back, c.falls_back, "{ctx}");
        assert_eq!(note.next.as_deref(), c.next, "{ctx}");
        assert_eq!(note.suggested_goproxy.as_deref(), c.suggested, "{ctx}");
        assert!(f.title.contains(c.title_has), "title {:?}: {ctx}", f.title);
        assert!(
            f.advice.contains(c.advice_has),
            "advice {:?}: {ctx}",
            f.advice
        );
    }
}

#[test]
fn fallback_without_env_still_explains_the_rule() {
    let f = diagnose(&[ob(0, &zip(PX, "example.com/m"), 502)], None);
    assert!(f[0].fallback.is_none());
    assert!(
        f[0].advice.contains("falls back only on 404/410"),
        "{}",
        f[0].advice
    );
}

#[test]
fn fallback_matches_entries_by_prefix_and_host() {
    // Known prefix in GOPROXY; the URL's base is inferred identically.
    let url = "https://corp.example/artifactory/api/go/remote/github.com/!azure/x/@v/v1.0.0.zip";
    let e = env("https://corp.example/artifactory/api/go/remote,https://proxy.golang.org,direct");
    let f = diagnose(&[ob(0, url, 503)], Some(&e));
    let note = f[0].fallback.as_ref().expect("note");
    assert_eq!(note.entry, "https://corp.example/artifactory/api/go/remote");
    // A prefix the inference gets wrong still matches by host.
    let url = "https://corp.example/go/v1.2/example.com/m/@v/v1.0.0.zip";
    let e = env("https://corp.example/go/v1.2|direct");
    let f = diagnose(&[ob(0, url, 503)], Some(&e));
    let note = f[0].fallback.as_ref().expect("note");
    assert!(note.go_falls_back);
    assert_eq!(note.next.as_deref(), Some("direct"));
    // Unset GOPROXY means go's default list.
    let f = diagnose(
        &[ob(0, &zip(PG, "example.com/m"), 502)],
        Some(&GoEnv::default()),
    );
    let note = f[0].fallback.as_ref().expect("note");
    assert_eq!(
        note.suggested_goproxy.as_deref(),
        Some("https://proxy.golang.org|direct")
    );
}

#[test]
fn not_found_then_found_elsewhere_is_a_fallback() {
    let obs = [
        ob(0, &zip(PX, "example.com/m"), 404),
        ob(1, &zip(PG, "example.com/m"), 200),
    ];
    let f = diagnose(&obs, None);
    assert_eq!(causes(&f), vec![(Cause::FellBack, Severity::Info)]);
    // Found earlier elsewhere does not excuse a later miss.
    let obs = [
        ob(0, &zip(PG, "example.com/m"), 200),
        ob(1, &zip(PX, "example.com/m"), 404),
    ];
    assert_eq!(diagnose(&obs, None)[0].cause, Cause::NotFound);
}

#[test]
fn checksum_database_through_a_proxy() {
    let supported = ob(
        0,
        "https://proxy.example/sumdb/sum.golang.org/supported",
        404,
    );
    let f = diagnose(&[supported], Some(&env("https://proxy.example,direct")));
    assert_eq!(causes(&f), vec![(Cause::SumdbNotProxied, Severity::Info)]);

    let lookup = ob(
        1,
        "https://proxy.example/sumdb/sum.golang.org/lookup/example.com/m@v1.0.0",
        502,
    );
    let f = diagnose(&[lookup], Some(&env("https://proxy.example|direct")));
    assert_eq!(
        causes(&f),
        vec![(Cause::UpstreamServerError, Severity::Error)]
    );
    let note = f[0].fallback.as_ref().expect("note");
    assert!(!note.go_falls_back);
    assert!(
        f[0].title.contains("never retries elsewhere"),
        "{}",
        f[0].title
    );

    // Direct checksum-database traffic has nothing to do with GOPROXY.
    let direct = ob(
        2,
        "https://sum.golang.org/lookup/corp.example/m@v1.0.0",
        404,
    );
    let f = diagnose(&[direct], Some(&env("https://proxy.example|direct")));
    assert_eq!(causes(&f), vec![(Cause::NotFound, Severity::Error)]);
    assert!(f[0].fallback.is_none());
    assert!(
        f[0].advice.contains("GONOSUMDB=corp.example"),
        "{}",
        f[0].advice
    );
}

#[test]
fn private_modules_leaking() {
    let private_zip = ob(0, &zip(PG, "git.corp.example/team/x"), 200);
    let public_zip = ob(1, &zip(PG, "github.com/org/x"), 200);
    let lookup = ob(
        2,
        "https://sum.golang.org/lookup/git.corp.example/team/x@v1.0.0",
        200,
    );
    let direct = ob(3, "https://git.corp.example/team/x?go-get=1", 200);
    let obs = [private_zip, public_zip, lookup, direct];

    let mut e = env("https://proxy.golang.org,direct");
    e.goprivate = Some("*.corp.example".to_string());
    let f = diagnose(&obs, Some(&e));
    assert_eq!(
        causes(&f),
        vec![
            (Cause::PrivateModuleViaProxy, Severity::Warning),
            (Cause::PrivateModuleViaSumdb, Severity::Warning),
        ]
    );
    assert_eq!(f[0].entries, vec![0]);
    assert!(
        f[0].title.contains("GOPRIVATE=*.corp.example"),
        "{}",
        f[0].title
    );
    assert!(
        f[0].advice
            .contains("`go env -w GOPRIVATE='*.corp.example'`"),
        "{}",
        f[0].advice
    );
    assert_eq!(f[1].entries, vec![2]);
    assert_eq!(f[1].host.as_deref(), Some("sum.golang.org"));

    // GONOPROXY/GONOSUMDB replace GOPRIVATE for their own question.
    e.gonoproxy = Some("github.com/org".to_string());
    e.gonosumdb = Some("none.example".to_string());
    let f = diagnose(&obs, Some(&e));
    assert_eq!(
        causes(&f),
        vec![(Cause::PrivateModuleViaProxy, Severity::Warning)]
    );
    assert_eq!(f[0].entries, vec![1]);
    assert!(
        f[0].title.contains("GONOPROXY=github.com/org"),
        "{}",
        f[0].title
    );

    // An empty GONOPROXY falls back to GOPRIVATE, as in go.
    e.gonoproxy = Some(String::new());
    let f = diagnose(&obs, Some(&e));
    assert_eq!(f[0].entries, vec![0]);
}

#[test]
fn configuration_findings() {
    let e = GoEnv {
        goproxy: Some(",".to_string()),
        gosumdb: Some("off".to_string()),
        goflags: Some("-mod=mod -insecure".to_string()),
        goinsecure: Some("git.corp.example".to_string()),
        ..GoEnv::default()
    };
    let obs = [ob(0, "https://git.corp.example/x?go-get=1", 200)];
    let f = diagnose(&obs, Some(&e));
    assert_eq!(
        causes(&f),
        vec![
            (Cause::GoproxyUnusable, Severity::Error),
            (Cause::InsecureSetting, Severity::Warning),
            (Cause::InsecureSetting, Severity::Info),
            (Cause::SumdbDisabled, Severity::Info),
        ]
    );
    assert_eq!(
        f[0].advice,
        "`go env -w GOPROXY='https://proxy.golang.org,direct'`"
    );
    assert!(f[3].advice.contains("go env -u GOSUMDB"));
    assert_eq!(f[2].entries, vec![0]);

    // GOSUMDB=off, yet sumdb traffic: the trace came from another environment.
    let e = GoEnv {
        gosumdb: Some("off".to_string()),
        ..GoEnv::default()
    };
    let obs = [ob(0, "https://sum.golang.org/latest", 200)];
    let f = diagnose(&obs, Some(&e));
    assert_eq!(causes(&f), vec![(Cause::SumdbDisabled, Severity::Warning)]);
    assert_eq!(f[0].entries, vec![0]);

    let f = diagnose(&[], Some(&env("off")));
    assert_eq!(causes(&f), vec![(Cause::GoproxyUnusable, Severity::Info)]);
    assert!(diagnose(&[], Some(&GoEnv::default())).is_empty());
}

#[test]
fn malformed_requests_are_flagged() {
    let o = ob(
        0,
        "https://proxy.golang.org/github.com/Azure/x/@v/list",
        404,
    );
    let f = diagnose(&[o], None);
    assert!(f.iter().any(|f| f.cause == Cause::MalformedRequest
        && f.detail
            .as_deref()
            .is_some_and(|d| d.contains("upper-case"))));
    // Random non-go traffic with odd URLs is not go's business.
    let o = ob(0, "https://example.com/%zz", 200);
    assert!(diagnose(&[o], None).is_empty());
}

#[test]
fn forbidden_advice_fits_the_server() {
    let f = diagnose(&[ob(0, &zip(PX, "corp.example/m"), 403)], None);
    assert!(
        f[0].advice.contains("machine proxy.example"),
        "{}",
        f[0].advice
    );
    let git = ob(
        0,
        "https://github.com/org/private/info/refs?service=git-upload-pack",
        403,
    );
    let f = diagnose(&[git], None);
    assert!(
        f[0].advice.contains("GOPRIVATE=github.com/org"),
        "{}",
        f[0].advice
    );
}

#[test]
fn findings_serialize_in_kebab_case() {
    let f = diagnose(
        &[ob(0, &zip(PX, "example.com/m"), 502)],
        Some(&env("https://proxy.example,direct")),
    );
    let v = serde_json::to_value(&f[0]).expect("serializes");
    assert_eq!(v["cause"], "upstream-server-error");
    assert_eq!(v["severity"], "error");
    assert_eq!(v["entries"], serde_json::json!([0]));
    assert_eq!(v["fallback"]["separator"], "on-not-found");
    assert_eq!(v["fallback"]["go_falls_back"], false);
}

#[test]
fn percentile_table() {
    type Want = Option<(usize, f64, f64, f64)>;
    let table: &[(&[f64], Want)] = &[
        (&[], None),
        (&[f64::NAN], None),
        (&[5.0], Some((1, 5.0, 5.0, 5.0))),
        (&[4.0, 1.0, 3.0, 2.0], Some((4, 2.0, 4.0, 4.0))),
        (
            &[10.0, 9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0],
            Some((10, 5.0, 9.0, 10.0)),
        ),
        (&[1.0, f64::INFINITY, 2.0], Some((2, 1.0, 2.0, 2.0))),
        (&[0.0, 0.0, 100.0], Some((3, 0.0, 100.0, 100.0))),
    ];
    for (values, want) in table {
        let got = percentiles(values).map(|p| (p.count, p.p50, p.p90, p.max));
        assert_eq!(got, *want, "{values:?}");
    }
}

fn timed(
    i: usize,
    url: &str,
    dns: Option<f64>,
    tcp: Option<f64>,
    tls: Option<f64>,
    wait: f64,
) -> Observation {
    let mut o = ob(i, url, 200);
    o.timings = PhaseTimes {
        dns,
        tcp,
        tls,
        wait: Some(wait),
        receive: Some(1.0),
        ..PhaseTimes::default()
    };
    o.total_ms = dns.unwrap_or(0.0) + tcp.unwrap_or(0.0) + tls.unwrap_or(0.0) + wait + 1.0;
    o
}

#[test]
fn summary_counts_and_timings() {
    let mut obs = vec![
        timed(
            0,
            &format!("{PG}/example.com/m/@v/list"),
            Some(4.0),
            Some(10.0),
            Some(20.0),
            50.0,
        ),
        timed(
            1,
            &format!("{PG}/example.com/m/@v/v1.0.0.info"),
            None,
            None,
            None,
            30.0,
        ),
        timed(2, &zip(PG, "example.com/m"), None, None, None, 70.0),
        timed(
            3,
            "https://sum.golang.org/lookup/example.com/m@v1.0.0",
            Some(2.0),
            Some(5.0),
            Some(6.0),
            9.0,
        ),
        ob(4, &format!("{PG}/example.com/x/@v/list"), 404),
        failed(ob(5, &zip(PG, "example.com/y"), 0), "upstream-reset"),
    ];
    obs[2].response_bytes = 5000;
    let mut inj = ob(6, &zip(PG, "example.com/z"), 502);
    inj.fault = Some(FaultFacts {
        rule: "r".to_string(),
        action: "a".to_string(),
    });
    inj.total_ms = 99_999.0;
    obs.push(inj);

    let s = summarize(&obs);
    assert_eq!(s.totals.requests, 7);
    assert_eq!(s.totals.bytes, 100 * 5 + 5000);
    assert_eq!(s.totals.failures, 1);
    assert_eq!(s.totals.not_found, 1);
    assert_eq!(s.totals.injected, 1);
    let kinds: Vec<(GoKind, usize)> = s
        .by_kind
        .iter()
        .map(|k| (k.kind, k.counts.requests))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (GoKind::List, 2),
            (GoKind::Info, 1),
            (GoKind::Zip, 3),
            (GoKind::SumdbLookup, 1)
        ]
    );
    assert_eq!(s.by_host[0].host, "proxy.golang.org");
    assert_eq!(s.by_host[0].counts.requests, 6);
    assert_eq!(s.by_host[1].host, "sum.golang.org");
    let t = &s.by_host[0].timings;
    assert_eq!(t.dns.map(|p| (p.count, p.max)), Some((1, 4.0)));
    assert_eq!(t.connect.map(|p| p.max), Some(30.0));
    assert_eq!(t.tls.map(|p| p.p50), Some(20.0));
    // 50, 30, 70 plus no wait on the failed/404 entries.
    assert_eq!(
        t.wait.map(|p| (p.count, p.p50, p.p90, p.max)),
        Some((3, 50.0, 70.0, 70.0))
    );
    assert_eq!(t.receive.map(|p| p.count), Some(3));
    // Slowest downloads: injected left out, ordered by total time.
    let slow: Vec<(usize, String)> = s
        .slowest_downloads
        .iter()
        .map(|d| (d.index, d.module_version()))
        .collect();
    assert_eq!(
        slow,
        vec![
            (0, "example.com/m".to_string()),
            (2, "example.com/m@v1.0.0".to_string()),
            (1, "example.com/m@v1.0.0".to_string()),
            (4, "example.com/x".to_string()),
            (5, "example.com/y@v1.0.0".to_string()),
        ]
    );
    // The span is wall time, injected delays included.
    assert_eq!(s.span_ms, 60.0 + 99_999.0);
}

#[test]
fn summary_keeps_ten_slowest() {
    let obs: Vec<Observation> = (0..25)
        .map(|i| {
            let mut o = ob(i, &zip(PG, &format!("example.com/m{i}")), 200);
            o.total_ms = (i * 7 % 25) as f64;
            o
        })
        .collect();
    let s = summarize(&obs);
    assert_eq!(s.slowest_downloads.len(), 10);
    let times: Vec<f64> = s.slowest_downloads.iter().map(|d| d.total_ms).collect();
    assert_eq!(times, (15..25).rev().map(f64::from).collect::<Vec<_>>());
    assert!(summarize(&[]).by_host.is_empty());
}

#[test]
fn text_report() {
    let obs = vec![
        timed(
            0,
            &format!("{PG}/example.com/m/@v/list"),
            Some(4.0),
            Some(10.0),
            Some(20.0),
            50.0,
        ),
        ob(1, &zip(PX, "example.com/m"), 502),
    ];
    let e = env("https://proxy.example,https://proxy.golang.org,direct");
    let s = summarize(&obs);
    let f = diagnose(&obs, Some(&e));
    let plain = render_text(&s, &f, false);
    assert!(!plain.contains('\x1b'), "{plain}");
    for want in [
        "modscope summary: 2 requests",
        "By kind",
        "By host",
        "Timings per host",
        "Slowest module requests (.info, .mod and .zip)",
        "connect includes tls",
        "example.com/m@v1.0.0",
        "Findings: 1 error, 0 warnings, 0 info",
        "ERROR  proxy.example answered 502 Bad Gateway; with ',' go does not fall back on 502",
        "[upstream-server-error] entries #1",
        "fix: use '|' or fix the proxy: `go env -w GOPROXY='https://proxy.example|https://proxy.golang.org,direct'`",
        "4.0 / 4.0 / 4.0",
    ] {
        assert!(plain.contains(want), "missing {want:?} in\n{plain}");
    }
    // Columns line up: every row of the host table has the counts at the same place.
    let host_rows: Vec<&str> = plain
        .lines()
        .skip_while(|l| !l.starts_with("By host"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    assert_eq!(host_rows.len(), 3, "{plain}");
    let widths: Vec<usize> = host_rows.iter().map(|l| l.len()).collect();
    assert!(widths.iter().all(|w| *w == widths[0]), "{host_rows:#?}");

    let colored = render_text(&s, &f, true);
    assert!(colored.contains("\x1b[1;31mERROR\x1b[0m"), "{colored}");
    let empty = render_text(&summarize(&[]), &[], false);
    assert!(empty.contains("Findings: none"), "{empty}");
    assert!(empty.contains("0 requests"), "{empty}");
}

#[test]
fn odd_observations_never_panic() {
    let mut weird = vec![Observation::default()];
    let mut o = ob(1, "not a url", 999);
    o.host = "[::1".to_string();
    o.timings = PhaseTimes {
        dns: Some(f64::NAN),
        tcp: Some(-1.0),
        tls: Some(f64::INFINITY),
        wait: Some(f64::NAN),
        receive: None,
        ..PhaseTimes::default()
    };
    o.total_ms = f64::NAN;
    o.started_ms = f64::NEG_INFINITY;
    o.response_text = Some("\n\n  \n".to_string());
    weird.push(o);
    let mut o = ob(2, "https://h\u{e9}.example/\u{1F600}/@v/list", 404);
    o.error = Some(ExchangeError::new(
        FailPhase::parse(""),
        ErrorKind::parse(""),
        "\u{e9}".repeat(500),
    ));
    weird.push(o);
    let envs = [
        None,
        Some(GoEnv::default()),
        Some(GoEnv {
            goproxy: Some("|,|".to_string()),
            goprivate: Some("[".to_string()),
            gonosumdb: Some("*".to_string()),
            goinsecure: Some("*".to_string()),
            goflags: Some("-insecure".to_string()),
            gosumdb: Some("off".to_string()),
            ..GoEnv::default()
        }),
    ];
    for env in &envs {
        let f = diagnose(&weird, env.as_ref());
        let s = summarize(&weird);
        let _ = render_text(&s, &f, true);
        for finding in &f {
            assert!(finding
                .detail
                .as_ref()
                .is_none_or(|d| d.chars().count() <= 200));
        }
    }
}

#[test]
fn a_failure_that_a_retry_got_through_is_transient() {
    let url = zip(PG, "example.com/m");
    let first = ob(0, &url, 503);
    let second = ob(1, &url, 200);
    let f = diagnose(&[first, second], None);
    assert_eq!(
        causes(&f),
        vec![(Cause::UpstreamServerError, Severity::Warning)]
    );
    assert!(f[0].transient);
    assert!(
        f[0].title.contains("succeeded on a retry"),
        "{}",
        f[0].title
    );
    // Without the retry it stays a breakage.
    let f = diagnose(&[ob(0, &url, 503)], None);
    assert!(!f[0].transient);
    assert_eq!(f[0].severity, Severity::Error);
    // A success before the failure proves nothing about the failure.
    let f = diagnose(&[ob(0, &url, 200), ob(1, &url, 503)], None);
    assert!(!f[0].transient);
}

#[test]
fn without_the_environment_the_separator_is_inferred_or_left_open() {
    let failed_first = ob(0, &zip(PX, "example.com/m"), 502);
    let served_later = ob(1, &zip(PG, "example.com/m"), 200);
    let f = diagnose(&[failed_first.clone(), served_later], None);
    assert_eq!(
        causes(&f),
        vec![(Cause::UpstreamServerError, Severity::Warning)]
    );
    let note = f[0].fallback.as_ref().expect("inferred note");
    assert!(note.inferred && note.go_falls_back);
    assert_eq!(note.separator, crate::gomod::Fallback::OnAnyError);
    assert!(f[0].title.contains("so '|' followed"), "{}", f[0].title);
    assert!(!f[0].title.contains("','"), "{}", f[0].title);
    // Nothing later: the separator is unknown, and neither is asserted.
    let f = diagnose(&[failed_first], None);
    assert!(f[0].fallback.is_none());
    assert!(f[0].advice.contains("unknown"), "{}", f[0].advice);
    assert!(!f[0].title.contains("stops"), "{}", f[0].title);
}

#[test]
fn advice_names_the_knob_that_made_go_ask() {
    let sumdb = "https://sum.golang.org/lookup/example.com/m@v1.0.0";
    let git = "https://git.corp.example/o/r/info/refs?service=git-upload-pack";
    let toolchain = format!("{PG}/golang.org/toolchain/@v/v0.0.1-go1.99.0.linux-amd64.zip");
    let table = [
        (zip(PX, "example.com/m"), "GOPROXY entry"),
        (sumdb.to_string(), "GOSUMDB"),
        (git.to_string(), "direct VCS fetch"),
        (toolchain, "GOTOOLCHAIN"),
    ];
    for (url, knob) in table {
        let o = failed(ob(0, &url, 0), "connect-refused");
        let f = diagnose(&[o], None);
        assert!(f[0].advice.contains(knob), "{url}: {}", f[0].advice);
        if knob != "GOPROXY entry" {
            assert!(!f[0].advice.contains("port in GOPROXY"), "{}", f[0].advice);
        }
    }
}

#[test]
fn every_go_env_command_in_advice_is_one_shell_word_per_argument() {
    // The end-to-end catalogue runs them in bash; here: no bare shell metacharacter.
    let scenarios = [
        (
            failed(ob(0, &zip(PX, "example.com/m"), 0), "connect-refused"),
            env("https://proxy.example"),
        ),
        (
            ob(0, &zip(PX, "example.com/m"), 502),
            env("https://proxy.example,https://proxy.golang.org,direct"),
        ),
        (
            ob(0, &zip(PG, "example.com/m"), 404),
            env("https://proxy.golang.org"),
        ),
    ];
    for (o, e) in scenarios {
        for f in diagnose(&[o], Some(&e)) {
            for cmd in advice::go_env_commands(&f.advice) {
                let (_, value) = cmd.split_once('=').unwrap();
                let bare = !value.starts_with('\'');
                assert!(!(bare && value.contains(['|', ',', '*', ' '])), "{cmd}");
            }
        }
    }
}

#[test]
fn a_stalled_body_says_how_long_where_and_how_it_ended() {
    use crate::exchange::BodyStall;
    let stall = |resumed| BodyStall {
        longest_ms: 12_000.0,
        at_bytes: 4096,
        expected_bytes: Some(1 << 20),
        resumed,
    };
    let mut resumed = ob(0, &zip(PG, "example.com/m"), 200);
    resumed.stall = Some(stall(true));
    let mut gave_up = failed_in(
        ob(1, &zip(PG, "example.com/n"), 0),
        FailPhase::Body,
        ErrorKind::ClientAbort,
    );
    gave_up.status = 200;
    gave_up.body_complete = false;
    gave_up.stall = Some(stall(false));
    let f = diagnose(&[resumed], None);
    assert_eq!(causes(&f), vec![(Cause::BodyStalled, Severity::Warning)]);
    assert!(f[0].title.contains("12.0 s"), "{}", f[0].title);
    assert!(f[0].title.contains("4.0 KiB of 1.0 MiB"), "{}", f[0].title);
    assert!(f[0].title.contains("resumed"), "{}", f[0].title);
    assert!(
        f[0].title.contains("example.com/m@v1.0.0"),
        "{}",
        f[0].title
    );
    let f = diagnose(&[gave_up], None);
    assert_eq!(causes(&f), vec![(Cause::BodyStalled, Severity::Error)]);
    assert!(f[0].title.contains("client gave up"), "{}", f[0].title);
    assert!(
        f[0].advice.contains("timeout") && f[0].advice.contains("'|'"),
        "{}",
        f[0].advice
    );
}
