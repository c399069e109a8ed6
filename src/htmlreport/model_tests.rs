//! The model of a hand-made trace: connection reuse, h2 streams overlapping, a failure, an
//! injected fault, prefix-probing 404s and a checksum lookup with its tile.

use serde_json::{json, Value};

use super::*;
use crate::trace::Entry;

/// One entry; `at` is ms after 10:00:00, `phases` are HAR dns, connect, ssl, wait.
#[allow(clippy::too_many_arguments)]
fn entry(url: &str, at: u32, status: u16, conn: &str, phases: [f64; 4], extra: Value) -> Entry {
    let [dns, connect, ssl, wait] = phases;
    let time = [dns, connect, wait]
        .iter()
        .filter(|v| **v >= 0.0)
        .sum::<f64>()
        + 1.0;
    let mut v = json!({
        "startedDateTime": format!("2026-11-21T10:00:{:02}.{:03}Z", at / 1000, at % 1000),
        "time": time,
        "request": {"method": "GET", "url": url, "httpVersion": "HTTP/2.0",
            "cookies": [], "headers": [{"name": "user-agent", "value": "Go-http-client/2.0"}],
            "queryString": [], "headersSize": -1, "bodySize": 0},
        "response": {"status": status, "statusText": "", "httpVersion": "HTTP/2.0",
            "cookies": [], "headers": [], "content": {"size": 10, "mimeType": "text/plain"},
            "redirectURL": "", "headersSize": -1, "bodySize": 10},
        "cache": {},
        "timings": {"blocked": -1.0, "dns": dns, "connect": connect, "ssl": ssl,
            "send": 0.0, "wait": wait, "receive": 1.0},
        "connection": conn
    });
    if let (Value::Object(o), Value::Object(add)) = (&mut v, extra) {
        o.extend(add);
    }
    serde_json::from_value(v).unwrap()
}

const PROXY: &str = "https://proxy.golang.org";
const NONE: [f64; 4] = [-1.0, -1.0, -1.0, 5.0];

fn trace() -> Vec<Entry> {
    let sumdb_go = |kind: &str| {
        json!({"_go": {"kind": kind, "module": "example.com/a", "version": "v1.0.0",
                       "base": "https://sum.golang.org"}})
    };
    vec![
        // 0, 1: go get example.com/a/b/c probes the prefixes; 2: the module root answers.
        entry(
            &format!("{PROXY}/example.com/a/b/c/@v/list"),
            0,
            404,
            "1",
            [3.0, 20.0, 12.0, 5.0],
            json!({}),
        ),
        entry(
            &format!("{PROXY}/example.com/a/b/@v/list"),
            30,
            404,
            "1",
            NONE,
            json!({}),
        ),
        entry(
            &format!("{PROXY}/example.com/a/@v/list"),
            40,
            200,
            "1",
            NONE,
            json!({}),
        ),
        // 3, 4: two h2 streams on connection 1 at once.
        entry(
            &format!("{PROXY}/example.com/a/@v/v1.0.0.info"),
            50,
            200,
            "1",
            [-1.0, -1.0, -1.0, 30.0],
            json!({}),
        ),
        entry(
            &format!("{PROXY}/example.com/a/@v/v1.0.0.mod"),
            55,
            200,
            "1",
            [-1.0, -1.0, -1.0, 30.0],
            json!({}),
        ),
        // 5: a new connection to a known host, slowed by a fault.
        entry(
            &format!("{PROXY}/example.com/a/@v/v1.0.0.zip"),
            100,
            200,
            "2",
            [2.0, 15.0, 10.0, 900.0],
            json!({"_fault": {"rule": "slow-zip", "action": "latency"}}),
        ),
        // 6: reuses connection 2 after 5 finished, and fails.
        entry(
            &format!("{PROXY}/example.com/b/@v/v1.0.0.zip"),
            1100,
            0,
            "2",
            NONE,
            json!({"_error": {"phase": "response", "kind": "upstream-reset", "message": "connection reset"}}),
        ),
        // 7, 8: the checksum database, a new host; the tile verifies the lookup.
        entry(
            "https://sum.golang.org/lookup/example.com/a@v1.0.0",
            1200,
            200,
            "3",
            [1.0, 8.0, 6.0, 20.0],
            sumdb_go("sumdb-lookup"),
        ),
        entry(
            "https://sum.golang.org/tile/8/0/001",
            1250,
            200,
            "3",
            NONE,
            json!({"_go": {"kind": "sumdb-tile", "base": "https://sum.golang.org"}}),
        ),
    ]
}

fn model() -> (ReportModel, Vec<Detail>) {
    let mut b = ReportBuilder::new(Vec::new());
    for (i, e) in trace().iter().enumerate() {
        b.push(e, (i == 2).then(|| "v1.0.0\n".to_string()));
    }
    b.finish(
        None,
        ReportSource {
            command: Some("go get example.com/a/b/c".into()),
            ..Default::default()
        },
    )
}

#[test]
fn rows_carry_times_phases_faults_and_errors() {
    let (m, details) = model();
    assert_eq!(m.rows.len(), 9);
    assert_eq!(details.len(), 9);
    let starts: Vec<f64> = m.rows.iter().map(|r| r.t).collect();
    assert_eq!(
        starts,
        [0.0, 30.0, 40.0, 50.0, 55.0, 100.0, 1100.0, 1200.0, 1250.0]
    );
    // connect 15 holds ssl 10: the bar shows tcp 5 and tls 10.
    assert_eq!(m.rows[5].p, [-1.0, 2.0, 5.0, 10.0, 0.0, 900.0, 1.0]);
    assert_eq!(m.rows[5].f.as_deref(), Some("slow-zip: latency"));
    assert_eq!(m.rows[6].e.as_deref(), Some("upstream-reset"));
    assert_eq!(m.rows[6].s, 0);
    let kinds: Vec<&str> = m.rows.iter().map(|r| r.k).collect();
    assert_eq!(
        kinds,
        [
            "list",
            "list",
            "list",
            "info",
            "mod",
            "zip",
            "zip",
            "sumdb-lookup",
            "sumdb-tile"
        ]
    );
    let probes: Vec<bool> = m.rows.iter().map(|r| r.probe).collect();
    assert_eq!(
        probes,
        [true, true, false, false, false, false, false, false, false]
    );
    assert_eq!(details[2].preview.as_deref(), Some("v1.0.0\n"));
    assert_eq!(
        details[6].error.as_ref().map(|e| e.message.as_str()),
        Some("connection reset")
    );
    assert_eq!(
        m.kinds,
        ["info", "list", "mod", "sumdb-lookup", "sumdb-tile", "zip"]
    );
    assert_eq!(m.hosts, ["proxy.golang.org", "sum.golang.org"]);
}

#[test]
fn connections_show_reuse_h2_overlap_and_known_hosts() {
    let (m, _) = model();
    let lanes: Vec<(&str, &str, Vec<usize>, usize, bool)> = m
        .connections
        .iter()
        .map(|c| {
            (
                c.id.as_str(),
                c.host.as_str(),
                c.rows.clone(),
                c.max_parallel,
                c.known_host,
            )
        })
        .collect();
    assert_eq!(
        lanes,
        [
            ("1", "proxy.golang.org", vec![0, 1, 2, 3, 4], 2, false),
            ("2", "proxy.golang.org", vec![5, 6], 1, true),
            ("3", "sum.golang.org", vec![7, 8], 1, false),
        ]
    );
    assert_eq!(m.connections[0].handshake, Some([3.0, 8.0, 12.0]));
    assert_eq!(m.connections[1].handshake, Some([2.0, 5.0, 10.0]));
    assert_eq!(m.rows[6].c, Some(1));
}

#[test]
fn go_view_groups_modules_folds_probes_and_says_why() {
    let (m, _) = model();
    let by_key = |k: &str| {
        m.go.iter()
            .find(|g| g.key == k)
            .unwrap_or_else(|| panic!("no group {k}: {:#?}", m.go))
    };
    let a = by_key("example.com/a@v1.0.0");
    assert_eq!(
        a.rows,
        [3, 4, 5, 7, 8],
        "info, mod, zip, lookup and its tile"
    );
    assert_eq!(a.answered_by.as_deref(), Some(PROXY));
    assert!(a.injected && !a.failed);
    assert!(
        a.why.contains("slowest: zip")
            && a.why.contains("wait")
            && a.why.contains("fault slow-zip: latency"),
        "{}",
        a.why
    );
    let kinds: Vec<&str> = a.kinds.iter().map(|k| k.0).collect();
    assert_eq!(kinds, ["info", "mod", "zip", "sumdb-lookup", "sumdb-tile"]);
    let b = by_key("example.com/b@v1.0.0");
    assert!(b.failed && b.answered_by.is_none());
    assert!(b.why.contains("failed: upstream-reset"), "{}", b.why);
    let probe = by_key("probing prefixes of example.com/a/b/c");
    assert_eq!((probe.folded, probe.rows.clone()), (Some(2), vec![0, 1]));
    assert!(probe.causes.contains(&Cause::ExpectedProbing));
    assert_eq!(by_key("example.com/a").rows, [2]);
    assert_eq!(m.go[0].key, "example.com/a@v1.0.0", "slowest first");
}

#[test]
fn header_is_summary_s_diagnosis() {
    let (m, _) = model();
    let entries = trace();
    let h = &m.header;
    assert_eq!(
        (h.requests, h.failures, h.injected, h.not_found),
        (9, 1, 1, 2)
    );
    assert_eq!(h.started.as_deref(), Some("2026-11-21T10:00:00.000Z"));
    assert_eq!(h.duration_ms, m.rows[8].t + m.rows[8].d);
    assert_eq!(
        h.source.command.as_deref(),
        Some("go get example.com/a/b/c")
    );
    let obs = crate::report::observations(&entries, &[]);
    assert_eq!(
        h.findings,
        diagnose::diagnose_all(&obs, None, &diagnose::Evidence::default()),
        "one diagnosis"
    );
    assert_eq!(
        h.summary_text,
        crate::report::render(&entries, None, false, false)
    );
    assert!(h.findings.iter().any(|f| f.cause == Cause::InjectedFault));
}

#[test]
fn max_parallel_counts_only_true_overlap() {
    let table: [(&[(f64, f64)], usize); 4] = [
        (&[], 0),
        (&[(0.0, 10.0), (10.0, 20.0)], 1),
        (&[(0.0, 10.0), (5.0, 20.0), (6.0, 7.0)], 3),
        (&[(0.0, 10.0), (11.0, 12.0)], 1),
    ];
    for (spans, want) in table {
        assert_eq!(max_parallel(spans.iter().copied()), want, "{spans:?}");
    }
}
