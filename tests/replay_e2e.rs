//! Offline replay: real go served from a recording with the origin gone, misses and
//! GOPROXY fallback, record-on-miss, other tools' HAR files, faults on top, bad traces.

mod common;

use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use common::gorun::{fresh_cache, go_mod_verify, GoRun};
use common::{go_binaries, write_app, TempDir};
use modscope::ca::CertAuthority;
use modscope::cmd::session::Collector;
use modscope::fault::parse_spec;
use modscope::proxy::ReplaySource;
use modscope::replay::{OnMiss, ReplayTiming};
use modscope::testkit::client::{Alpn, ProxiedClient};
use modscope::testkit::modules::{default_modules, SyntheticModule};
use modscope::testkit::origin::{Origin, OriginOptions};
use modscope::tls::UpstreamTrust;
use modscope::trace::load_trace;

/// The names the origin answers for.
const HOSTS: &[&str] = &["proxy.golang.org", "a.example", "b.example"];

/// `modscope run -- go mod download` in `app` with go.mod read-only.
fn go_through(dir: &Path, app: &Path, goproxy: &str) -> GoRun {
    GoRun::new(dir, app, goproxy).env("GOFLAGS", "-mod=readonly -modcacherw")
}

fn origin_opts() -> OriginOptions {
    OriginOptions {
        names: HOSTS.iter().map(|h| h.to_string()).collect(),
        ..OriginOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn go_downloads_offline_from_a_recording_over_h2_and_http11() {
    for go in go_binaries() {
        let modules = default_modules();
        for godebug in [None, Some("http2client=0")] {
            let dir = TempDir::new("replay-go");
            let app = write_app(dir.path(), &modules);
            let trace = dir.path().join("trace");
            let origin = Origin::start(modules.clone(), origin_opts()).await.unwrap();
            let rec = go_through(dir.path(), &app, "https://proxy.golang.org")
                .origin(origin.ca_pem(), origin.addr, HOSTS)
                .record(&trace)
                .godebug(godebug)
                .download(&go)
                .await;
            assert!(rec.success, "{}", rec.stderr);
            origin.shutdown();
            drop(origin);
            fresh_cache(dir.path());
            let rep = go_through(dir.path(), &app, "https://proxy.golang.org")
                .replay(&trace)
                .godebug(godebug)
                .download(&go)
                .await;
            assert!(rep.success, "{godebug:?}\n{}", rep.stderr);
            assert!(rep.stderr.contains(", 0 misses,"), "{}", rep.stderr);
            let v = go_mod_verify(&go, dir.path(), &app).await;
            assert!(
                v.success && v.stdout.contains("all modules verified"),
                "{}{}",
                v.stdout,
                v.stderr
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn misses_answer_404_so_go_falls_back_and_record_fills_the_gap() {
    for go in go_binaries() {
        let modules = default_modules();
        let dir = TempDir::new("replay-miss");
        let app = write_app(dir.path(), &modules);
        let trace = dir.path().join("trace");
        let origin = Origin::start(modules.clone(), origin_opts()).await.unwrap();
        // Recorded against b only.
        let rec = go_through(dir.path(), &app, "https://b.example")
            .origin(origin.ca_pem(), origin.addr, HOSTS)
            .record(&trace)
            .download(&go)
            .await;
        assert!(rec.success, "{}", rec.stderr);

        // a is not in the trace: 404 with modscope's text, then go falls back to b.
        fresh_cache(dir.path());
        let rep = go_through(dir.path(), &app, "https://a.example,https://b.example")
            .replay(&trace)
            .download(&go)
            .await;
        assert!(rep.success, "{}", rep.stderr);
        assert!(
            rep.stderr.contains("miss: GET https://a.example:443/"),
            "{}",
            rep.stderr
        );

        // Only a: go fails and shows why.
        fresh_cache(dir.path());
        let rep = go_through(dir.path(), &app, "https://a.example")
            .replay(&trace)
            .download(&go)
            .await;
        assert!(!rep.success);
        assert!(
            rep.stderr.contains("404 Not Found")
                && rep
                    .stderr
                    .contains("server response: modscope replay: no recorded response"),
            "{}",
            rep.stderr
        );

        // --on-miss record appends a's answers; a second replay serves them offline.
        fresh_cache(dir.path());
        let rep = go_through(dir.path(), &app, "https://a.example")
            .origin(origin.ca_pem(), origin.addr, HOSTS)
            .replay(&trace)
            .args(["--on-miss", "record"])
            .download(&go)
            .await;
        assert!(rep.success, "{}", rep.stderr);
        origin.shutdown();
        drop(origin);
        fresh_cache(dir.path());
        let rep = go_through(dir.path(), &app, "https://a.example")
            .replay(&trace)
            .download(&go)
            .await;
        assert!(rep.success, "{}", rep.stderr);
        assert!(rep.stderr.contains(", 0 misses,"), "{}", rep.stderr);

        // Faults compose with replay.
        fresh_cache(dir.path());
        let rep = go_through(dir.path(), &app, "https://a.example")
            .replay(&trace)
            .faults(&["module=example.com/hello,kind=zip:502"])
            .download(&go)
            .await;
        assert!(!rep.success);
        // go's own line (the summary says "502 Bad Gateway" and lists modules too).
        assert!(
            rep.stderr
                .lines()
                .any(|l| l.contains("example.com/hello@v1.1.0")
                    && l.contains("v1.1.0.zip")
                    && l.contains("502 Bad Gateway")),
            "{}",
            rep.stderr
        );
    }
}

/// An in-process replay proxy over `trace_path`, and a client trusting it.
async fn replay_proxy(
    trace_path: &Path,
    dir: &Path,
) -> (
    modscope::proxy::RunningProxy,
    ProxiedClient,
    Arc<ReplaySource>,
) {
    let (running, client, source, _) = replay_proxy_with(trace_path, dir, &[]).await;
    (running, client, source)
}

/// `replay_proxy` with fault rules (inline specs), and what it observed.
async fn replay_proxy_with(
    trace_path: &Path,
    dir: &Path,
    faults: &[&str],
) -> (
    modscope::proxy::RunningProxy,
    ProxiedClient,
    Arc<ReplaySource>,
    Arc<Collector>,
) {
    let trace = load_trace(trace_path).unwrap();
    let source = Arc::new(ReplaySource::new(
        trace,
        OnMiss::NotFound,
        ReplayTiming::None,
        Vec::new(),
    ));
    let ca = Arc::new(CertAuthority::load_or_create(&dir.join("ca")).unwrap());
    let other = CertAuthority::generate("unused").unwrap();
    let trust = UpstreamTrust::only(&[other.cert_der().clone()]).unwrap();
    let mut config = common::test_config(dir.join("ca"));
    config.fault_rules = faults.iter().map(|f| parse_spec(f).unwrap()).collect();
    let collector = Arc::new(Collector::default());
    let running = modscope::proxy::start_with_replay(
        config,
        ca.clone(),
        trust,
        vec![collector.clone() as Arc<dyn modscope::proxy::Observer>],
        Some(source.clone()),
    )
    .await
    .unwrap();
    let client = ProxiedClient::new(running.addr, &[ca.cert_der().clone()]).unwrap();
    (running, client, source, collector)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replayed_exchange_names_every_fault_that_shaped_it() {
    let dir = TempDir::new("replay-faults");
    let body = b"0123456789".to_vec();
    let har = serde_json::json!({"log": {"version": "1.2", "creator": {"name": "t", "version": "1"}, "entries": [
        har_entry("https://proxy.golang.org/example.com/m/@v/v1.0.0.zip", 200,
            serde_json::json!({"size": body.len(), "mimeType": "application/zip", "text": "0123456789"})),
    ]}});
    let path = dir.path().join("t.har");
    std::fs::write(&path, serde_json::to_vec(&har).unwrap()).unwrap();
    // A request-phase rule (latency) and a response-phase one (it matches the status).
    let (_running, client, _source, seen) = replay_proxy_with(
        &path,
        dir.path(),
        &[
            "name=slow,kind=zip:latency=5ms",
            "name=flip,status=200:corrupt@2",
        ],
    )
    .await;
    for alpn in [Alpn::H1, Alpn::H2] {
        let got = client
            .get("https://proxy.golang.org/example.com/m/@v/v1.0.0.zip", alpn)
            .await
            .unwrap();
        assert_eq!(got.status, 200);
        assert_eq!(got.body[2], b'2' ^ 0xff, "the response-phase rule acted");
    }
    for _ in 0..200 {
        if seen.0.lock().unwrap().len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let exchanges = seen.0.lock().unwrap().clone();
    assert_eq!(exchanges.len(), 2);
    for ex in exchanges {
        let fault = ex.fault.expect("a faulted exchange says so");
        assert_eq!(fault.rule, "slow+flip", "{fault:?}");
        assert!(
            fault.action.contains("latency 5ms") && fault.action.contains("corrupt 1 B"),
            "{fault:?}"
        );
    }
}

fn har_entry(url: &str, status: u16, content: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "startedDateTime": "2025-05-01T10:00:00.000+02:00",
        "time": 12.5,
        "request": {"method": "GET", "url": url, "httpVersion": "HTTP/2", "cookies": [], "headers": [], "queryString": [], "headersSize": -1, "bodySize": 0},
        "response": {"status": status, "statusText": "", "httpVersion": "HTTP/2", "cookies": [],
                     "headers": [{"name": "content-type", "value": "application/zip"}, {"name": "x-from", "value": "mitmproxy"}],
                     "content": content, "redirectURL": "", "headersSize": -1, "bodySize": -1},
        "cache": {},
        "timings": {"send": 0, "wait": 10, "receive": 2.5},
        "_someOtherTool": {"kept": true}
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_har_written_by_another_tool_replays_byte_exact() {
    let dir = TempDir::new("replay-har");
    let m = SyntheticModule::simple("example.com/hello", "v1.0.0", 0);
    let zip = m.zip();
    let har = serde_json::json!({"log": {"version": "1.2", "creator": {"name": "mitmproxy", "version": "10"}, "entries": [
        har_entry("https://proxy.golang.org/example.com/hello/@v/v1.0.0.zip", 200,
            serde_json::json!({"size": zip.len(), "mimeType": "application/zip", "encoding": "base64", "text": base64::engine::general_purpose::STANDARD.encode(&zip)})),
        har_entry("https://proxy.golang.org/example.com/hello/@v/list", 200,
            serde_json::json!({"size": 7, "mimeType": "text/plain", "text": "v1.0.0\n"})),
        har_entry("not a url", 200, serde_json::json!({"size": 0, "mimeType": "text/plain"})),
    ]}});
    let path = dir.path().join("other.har");
    std::fs::write(&path, serde_json::to_vec_pretty(&har).unwrap()).unwrap();
    let (_running, client, source) = replay_proxy(&path, dir.path()).await;
    let got = client
        .get(
            "https://proxy.golang.org/example.com/hello/@v/v1.0.0.zip",
            Alpn::Both,
        )
        .await
        .unwrap();
    assert_eq!((got.status, got.body.to_vec()), (200, zip));
    assert_eq!(got.headers["x-from"], "mitmproxy");
    let list = client
        .get(
            "https://proxy.golang.org/example.com/hello/@v/list",
            Alpn::H1,
        )
        .await
        .unwrap();
    assert_eq!(&list.body[..], b"v1.0.0\n");
    let miss = client
        .get(
            "https://proxy.golang.org/example.com/other/@v/list",
            Alpn::H1,
        )
        .await
        .unwrap();
    assert_eq!(miss.status, 404);
    assert!(String::from_utf8_lossy(&miss.body).contains(
        "no recorded response for GET https://proxy.golang.org/example.com/other/@v/list"
    ));
    let report = source.report();
    assert_eq!((report.hits, report.misses.len()), (2, 1));
}

#[tokio::test(flavor = "multi_thread")]
async fn broken_traces_still_serve_their_good_entries() {
    let dir = TempDir::new("replay-bad");
    let trace_dir = dir.path().join("trace");
    std::fs::create_dir_all(trace_dir.join("bodies")).unwrap();
    let good = b"good body bytes".to_vec();
    let good_sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&good));
    std::fs::write(trace_dir.join("bodies").join(&good_sha), &good).unwrap();
    // A body file whose bytes no longer match its name.
    let bad_sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"original"));
    std::fs::write(trace_dir.join("bodies").join(&bad_sha), b"tampered").unwrap();
    let file_content = |sha: &str, size: usize| serde_json::json!({"size": size, "mimeType": "application/octet-stream", "_sha256": sha, "_file": format!("bodies/{sha}")});
    let lines = [
        har_entry(
            "https://proxy.golang.org/good",
            200,
            file_content(&good_sha, good.len()),
        )
        .to_string(),
        har_entry(
            "https://proxy.golang.org/corrupt",
            200,
            file_content(&bad_sha, 8),
        )
        .to_string(),
        har_entry(
            "https://proxy.golang.org/missing",
            200,
            file_content(&"ab".repeat(32), 3),
        )
        .to_string(),
        "{\"startedDateTime\": \"2025-05-01T1".to_string(),
    ];
    std::fs::write(trace_dir.join("journal.jsonl"), lines.join("\n")).unwrap();
    let trace = load_trace(&trace_dir).unwrap();
    assert_eq!(trace.entries.len(), 3);
    assert!(
        trace
            .problems
            .iter()
            .any(|p| p.to_string().contains("journal.jsonl:4")),
        "{:?}",
        trace.problems
    );

    let (_running, client, source) = replay_proxy(&trace_dir, dir.path()).await;
    let got = client
        .get("https://proxy.golang.org/good", Alpn::Both)
        .await
        .unwrap();
    assert_eq!(got.body.to_vec(), good);
    // A corrupt file is found when served (its hash is checked then): 502.
    let got = client
        .get("https://proxy.golang.org/corrupt", Alpn::Both)
        .await
        .unwrap();
    assert_eq!(got.status, 502);
    let text = String::from_utf8_lossy(&got.body).to_lowercase();
    assert!(
        text.contains("cannot be served") && text.contains("is corrupt"),
        "{text}"
    );
    // A missing file is found at load: the entry is left out, its request is a miss.
    assert_eq!(
        source
            .missing_bodies
            .iter()
            .map(|(i, _)| *i)
            .collect::<Vec<_>>(),
        [2]
    );
    let got = client
        .get("https://proxy.golang.org/missing", Alpn::Both)
        .await
        .unwrap();
    assert_eq!(got.status, 404);
    let report = source.report();
    assert_eq!((report.hits, report.misses.len()), (2, 1));

    // A HAR with an unknown version still loads, with a note.
    let har = serde_json::json!({"log": {"version": "9.9", "creator": {"name": "x", "version": "1"}, "entries": [
        har_entry("https://proxy.golang.org/list", 200, serde_json::json!({"size": 2, "mimeType": "text/plain", "text": "ok"}))]}});
    let path = dir.path().join("v9.har");
    std::fs::write(&path, har.to_string()).unwrap();
    let loaded = load_trace(&path).unwrap();
    assert_eq!(loaded.entries.len(), 1);
    assert!(format!("{:?}{:?}", loaded.notes, loaded.problems).contains("9.9"));
}
