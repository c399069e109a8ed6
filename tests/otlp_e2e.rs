//! OpenTelemetry export against a receiver written by others: opentelemetry-proto's Python
//! classes decode what modscope sends (tests/data/otlp_receiver.py). Needs go and a python
//! with opentelemetry-proto (`.ci/setup`); SKIPPED without them unless MODSCOPE_REQUIRE_OTLP=1.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use common::{go_binary, go_env, python_with, run_bounded, write_app, TempDir, MODSCOPE};
use modscope::testkit::modules::default_modules;
use modscope::testkit::origin::{Origin, OriginOptions};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(180);
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// The receiver process; killed on drop.
struct Receiver {
    child: Child,
    port: u16,
    out: PathBuf,
}

impl Receiver {
    fn start(python: &Path, dir: &Path, tag: &str, args: &[&str]) -> Receiver {
        let out = dir.join(format!("{tag}.jsonl"));
        let mut child = Command::new(python)
            .arg(receiver_script())
            .arg(&out)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the OTLP receiver");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("port ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("receiver said {line:?}"));
        Receiver { child, port, out }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every request it decoded, as protobuf's canonical JSON.
    fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn spans(&self) -> Vec<Value> {
        spans_of(&self.requests())
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn receiver_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/otlp_receiver.py")
}

fn spans_of(requests: &[Value]) -> Vec<Value> {
    let mut out = Vec::new();
    for req in requests {
        for rs in req["resourceSpans"].as_array().into_iter().flatten() {
            for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                out.extend(ss["spans"].as_array().into_iter().flatten().cloned());
            }
        }
    }
    out
}

/// protobuf's JSON writes bytes as base64; the trace ids people read are hex.
fn id(v: &Value) -> String {
    let b64 = v.as_str().unwrap_or_default();
    hex::encode(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap(),
    )
}

fn attrs(span: &Value) -> HashMap<String, Value> {
    span["attributes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|kv| {
            let v = &kv["value"];
            let value = v
                .get("stringValue")
                .or_else(|| v.get("intValue"))
                .or_else(|| v.get("boolValue"))
                .or_else(|| v.get("doubleValue"))
                .cloned()
                .unwrap_or(Value::Null);
            (kv["key"].as_str().unwrap().to_string(), value)
        })
        .collect()
}

fn modscope_run(dir: &Path, origin: &Origin, app: &Path, go: &Path, extra: &[&str]) -> Command {
    let ca_file = dir.join("origin-ca.pem");
    std::fs::write(&ca_file, origin.ca_pem()).unwrap();
    let mut cmd = Command::new(MODSCOPE);
    go_env(&mut cmd, dir, "https://proxy.golang.org");
    cmd.current_dir(app)
        .args(["run", "--ca-dir", dir.join("ca").to_str().unwrap()])
        .arg("--upstream-ca")
        .arg(&ca_file)
        .arg("--connect-to")
        .arg(format!(
            "proxy.golang.org:443:127.0.0.1:{}",
            origin.addr.port()
        ))
        .args(extra)
        .arg("--")
        .arg(go)
        .args(["mod", "download"]);
    cmd
}

fn peers() -> Option<(PathBuf, PathBuf)> {
    let python = python_with("opentelemetry.proto", "MODSCOPE_REQUIRE_OTLP")?;
    let go = go_binary()?;
    Some((python, go))
}

#[tokio::test(flavor = "multi_thread")]
async fn run_sends_one_client_span_per_exchange_inside_the_ci_trace() {
    let Some((python, go)) = peers() else { return };
    let dir = TempDir::new("otlp-run");
    let modules = default_modules();
    let origin = Origin::start(modules.clone(), OriginOptions::default())
        .await
        .unwrap();
    let app = write_app(dir.path(), &modules);
    let receiver = Receiver::start(&python, dir.path(), "run", &[]);
    let trace_dir = dir.path().join("trace");
    let mut cmd = modscope_run(
        dir.path(),
        &origin,
        &app,
        &go,
        &[
            "--otlp",
            &receiver.url(),
            "--record",
            trace_dir.to_str().unwrap(),
            "--fault",
            "name=slow-mods,kind=mod:latency=1ms",
        ],
    );
    cmd.env("TRACEPARENT", TRACEPARENT)
        .env("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=sekret-42")
        .env("OTEL_RESOURCE_ATTRIBUTES", "ci.job=otlp-e2e");
    let ran = run_bounded(cmd, LIMIT).await;
    assert!(ran.success, "run failed:\n{}", ran.stderr);
    assert!(ran.stderr.contains("OpenTelemetry: "), "{}", ran.stderr);

    let trace = modscope::trace::load_trace(&trace_dir).unwrap();
    let requests = receiver.requests();
    assert!(!requests.is_empty());
    for req in &requests {
        assert_eq!(req["_path"], "/v1/traces");
        assert_eq!(req["_headers"]["content-encoding"], "gzip");
        assert_eq!(
            req["_headers"]["x-api-key"], "sekret-42",
            "headers reach the collector"
        );
        let resource = attrs(&req["resourceSpans"][0]["resource"]);
        assert_eq!(resource["service.name"], "modscope");
        assert_eq!(resource["ci.job"], "otlp-e2e");
    }
    let spans = receiver.spans();
    let (roots, clients): (Vec<&Value>, Vec<&Value>) = spans
        .iter()
        .partition(|s| s["kind"] == "SPAN_KIND_INTERNAL");
    assert_eq!(roots.len(), 1, "one root span per run");
    let root = roots[0];
    assert_eq!(root["name"], "go mod download");
    assert_eq!(
        id(&root["parentSpanId"]),
        "00f067aa0ba902b7",
        "child of TRACEPARENT"
    );
    assert_eq!(attrs(root)["process.exit.code"], "0");
    assert_eq!(
        clients.len(),
        trace.entries.len(),
        "one CLIENT span per recorded entry"
    );
    for span in &spans {
        assert_eq!(id(&span["traceId"]), "4bf92f3577b34da6a3ce929d0e0e4736");
    }
    let root_id = id(&root["spanId"]);
    let mut faulted = 0;
    for entry in &trace.entries {
        let span = clients
            .iter()
            .find(|s| attrs(s)["url.full"] == entry.request.url.as_str())
            .unwrap_or_else(|| panic!("no span for {}", entry.request.url));
        assert_eq!(span["kind"], "SPAN_KIND_CLIENT");
        assert_eq!(id(&span["parentSpanId"]), root_id);
        let a = attrs(span);
        assert_eq!(a["http.request.method"], entry.request.method.as_str());
        assert_eq!(
            a["http.response.status_code"],
            entry.response.status.to_string().as_str()
        );
        assert_eq!(a["server.address"], "proxy.golang.org");
        assert_eq!(a["server.port"], "443");
        let go = entry.go.as_ref().unwrap();
        assert_eq!(a["go.kind"], go["kind"]);
        if let Some(m) = go.get("module") {
            assert_eq!(&a["go.module"], m);
        }
        assert!(a.contains_key("network.protocol.version"));
        let up = entry.tls.as_ref().and_then(|t| t.upstream.as_ref());
        if up.is_some_and(|u| u.version.is_some()) {
            assert!(a.contains_key("tls.protocol.version"), "{a:?}");
            assert!(a.contains_key("tls.server.subject"), "{a:?}");
        }
        assert_eq!(span["events"][0]["name"], "http.client.network_timing");
        if let Some(f) = &entry.fault {
            faulted += 1;
            assert_eq!(a["modscope.fault.rule"], f.rule.as_str());
            assert_eq!(a["modscope.fault.action"], f.action.as_str());
        }
    }
    assert!(faulted > 0, "the fault rule fired on .mod requests");
    // The API key goes to the collector only.
    assert!(!ran.stderr.contains("sekret-42"));
    for file in walk(&trace_dir) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains("sekret-42"),
            "{}",
            file.display()
        );
    }

    // The same recording, sent after the fact and written as OTLP/JSON.
    let later = Receiver::start(&python, dir.path(), "export", &[]);
    let mut export = Command::new(MODSCOPE);
    export.args([
        "export",
        trace_dir.to_str().unwrap(),
        "--otlp",
        &later.url(),
    ]);
    let ran = run_bounded(export, LIMIT).await;
    assert!(ran.success, "export failed:\n{}", ran.stderr);
    let exported = later.spans();
    assert_eq!(exported.len(), trace.entries.len() + 1);
    let export_root = exported
        .iter()
        .find(|s| s["kind"] == "SPAN_KIND_INTERNAL")
        .unwrap();
    assert!(export_root.get("parentSpanId").is_none());
    let json_file = dir.path().join("spans.otlp.jsonl");
    let mut to_file = Command::new(MODSCOPE);
    to_file.args([
        "export",
        trace_dir.to_str().unwrap(),
        "--otlp-file",
        json_file.to_str().unwrap(),
    ]);
    let ran = run_bounded(to_file, LIMIT).await;
    assert!(ran.success, "export --otlp-file failed:\n{}", ran.stderr);
    let mut check = Command::new(&python);
    check
        .arg(receiver_script())
        .arg("--check-json")
        .arg(&json_file);
    let ran = run_bounded(check, LIMIT).await;
    assert!(
        ran.success,
        "protobuf rejected our OTLP/JSON:\n{}",
        ran.stderr
    );
    assert_eq!(ran.stdout.trim(), (trace.entries.len() + 1).to_string());
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_or_failing_collector_changes_nothing_but_a_warning() {
    let Some((python, go)) = peers() else { return };
    let modules = default_modules();
    let origin = Origin::start(modules.clone(), OriginOptions::default())
        .await
        .unwrap();
    // Nothing listens on a port that was just released.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let dir = TempDir::new("otlp-down");
    let failing = Receiver::start(&python, dir.path(), "failing", &["--status", "503"]);
    for url in [dead_url, failing.url()] {
        let dir = TempDir::new("otlp-down-run");
        let app = write_app(dir.path(), &modules);
        let ran = run_bounded(
            modscope_run(dir.path(), &origin, &app, &go, &["--otlp", &url]),
            LIMIT,
        )
        .await;
        assert!(
            ran.success,
            "go must not notice the collector ({url}):\n{}",
            ran.stderr
        );
        assert_eq!(ran.code, Some(0));
        let warnings = ran
            .stderr
            .lines()
            .filter(|l| l.contains("warning: OpenTelemetry export"))
            .count();
        assert_eq!(warnings, 1, "one warning ({url}):\n{}", ran.stderr);
        assert!(
            ran.stderr.contains(" dropped ("),
            "the closing line counts dropped spans ({url}):\n{}",
            ran.stderr
        );
    }
    assert!(
        failing.requests().is_empty(),
        "503 answers are not accepted spans"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_collector_that_recovers_gets_every_span() {
    let Some((python, go)) = peers() else { return };
    let modules = default_modules();
    let origin = Origin::start(modules.clone(), OriginOptions::default())
        .await
        .unwrap();
    let dir = TempDir::new("otlp-retry");
    let app = write_app(dir.path(), &modules);
    let receiver = Receiver::start(&python, dir.path(), "retry", &["--fail-first", "1"]);
    let trace_dir = dir.path().join("trace");
    let ran = run_bounded(
        modscope_run(
            dir.path(),
            &origin,
            &app,
            &go,
            &[
                "--otlp",
                &receiver.url(),
                "--record",
                trace_dir.to_str().unwrap(),
            ],
        ),
        LIMIT,
    )
    .await;
    assert!(ran.success, "{}", ran.stderr);
    assert!(
        !ran.stderr.contains("dropped"),
        "a retry after 503 loses nothing:\n{}",
        ran.stderr
    );
    let trace = modscope::trace::load_trace(&trace_dir).unwrap();
    assert_eq!(receiver.spans().len(), trace.entries.len() + 1);
}
