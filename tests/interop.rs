//! Other tools' HAR files: a HAR mitmproxy wrote of `go mod download` and a Chrome-shaped
//! HAR replay to the real go byte-exact, and mitmproxy's own HAR reader gets the origin's
//! bytes from modscope's HAR of a gzip-encoded response.
//!
//! `tests/data/mitmproxy-go.har` is remade with
//! `cargo test --test interop regenerate_mitmproxy_har -- --ignored` (needs mitmproxy and go).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{
    go_binaries, go_binary, go_env, python_with, run_bounded, write_app, KillOnDrop, TempDir,
    MODSCOPE,
};
use modscope::testkit::modules::SyntheticModule;
use modscope::testkit::origin::{gzip_text, Origin, OriginOptions};

const LIMIT: Duration = Duration::from_secs(180);

/// The modules the committed HARs hold: few and small, so the files stay a few KiB.
fn modules() -> Vec<SyntheticModule> {
    vec![
        SyntheticModule::simple("example.com/hello", "v1.0.0", 0),
        SyntheticModule::simple("example.com/Greeting", "v1.2.0", 0),
    ]
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// Where go keeps the zip it downloaded for `m`.
fn cached_zip(dir: &Path, m: &SyntheticModule) -> PathBuf {
    let path = modscope::gomod::escape_path(&m.path).unwrap();
    dir.join("modcache/cache/download")
        .join(path)
        .join("@v")
        .join(format!("{}.zip", m.version))
}

/// `modscope run --replay TRACE -- go mod download` with no origin anywhere (offline),
/// for every go; each must end with byte-identical zips and no misses.
async fn replay_to_go(trace: &Path, tag: &str) {
    let modules = modules();
    for go in go_binaries() {
        let dir = TempDir::new(tag);
        let app = write_app(dir.path(), &modules);
        let mut cmd = Command::new(MODSCOPE);
        go_env(&mut cmd, dir.path(), "https://proxy.golang.org");
        cmd.env("GOFLAGS", "-mod=mod -modcacherw")
            .current_dir(&app)
            .args(["run", "--ca-dir"])
            .arg(dir.path().join("ca"))
            .arg("--replay")
            .arg(trace)
            .arg("--")
            .arg(&go)
            .args(["mod", "download"]);
        let ran = run_bounded(cmd, LIMIT).await;
        let version = common::go_version(&go);
        assert!(ran.success, "{version}: {}", ran.stderr);
        assert!(
            ran.stderr.contains(", 0 misses"),
            "{version}: {}",
            ran.stderr
        );
        assert!(
            !ran.stderr.contains("disagrees with content.size"),
            "{version}: {}",
            ran.stderr
        );
        for m in &modules {
            let got = std::fs::read(cached_zip(dir.path(), m)).unwrap();
            assert!(
                got == m.zip(),
                "{version}: {}@{} zip differs",
                m.path,
                m.version
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn mitmproxy_har_of_go_replays_byte_exact() {
    let trace = data("mitmproxy-go.har");
    // The committed file really is mitmproxy's: Latin-1 text for the zips, no `encoding`.
    let har: serde_json::Value = serde_json::from_slice(&std::fs::read(&trace).unwrap()).unwrap();
    assert_eq!(har["log"]["creator"]["name"], "mitmproxy");
    let zips: Vec<&serde_json::Value> = har["log"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["request"]["url"].as_str().unwrap().ends_with(".zip"))
        .collect();
    assert!(!zips.is_empty());
    for z in &zips {
        let c = &z["response"]["content"];
        let text = c["text"].as_str().unwrap();
        assert!(c.get("encoding").is_none(), "{c}");
        assert_ne!(
            text.len() as u64,
            c["size"].as_u64().unwrap(),
            "not plain UTF-8"
        );
        assert_eq!(text.chars().count() as u64, c["size"].as_u64().unwrap());
    }
    if go_binaries().is_empty() {
        return;
    }
    replay_to_go(&trace, "interop-mitm").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn chrome_shaped_har_with_decoded_gzip_text_replays() {
    let trace = data("chrome-go.har");
    let har: serde_json::Value = serde_json::from_slice(&std::fs::read(&trace).unwrap()).unwrap();
    let gzipped = har["log"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["response"]["headers"]
                .as_array()
                .unwrap()
                .iter()
                .any(|h| h["name"] == "content-encoding" && h["value"] == "gzip")
        })
        .count();
    assert!(
        gzipped >= 2,
        "the file has decoded text under content-encoding: gzip"
    );
    if go_binaries().is_empty() {
        return;
    }
    replay_to_go(&trace, "interop-chrome").await;
}

/// mitmproxy's `mitmproxy.io.har` reads modscope's entry of a gzip response and gets the
/// origin's decoded bytes (before, it re-compressed the already compressed bytes).
#[tokio::test(flavor = "multi_thread")]
async fn mitmproxy_reads_modscopes_gzip_entry_as_the_origins_bytes() {
    let Some(python) = python_with("mitmproxy", "MODSCOPE_REQUIRE_MITMPROXY") else {
        return;
    };
    let dir = TempDir::new("interop-gzip");
    let origin = Origin::start(Vec::new(), OriginOptions::default())
        .await
        .unwrap();
    let (child, addr) = common::spawn_proxy(dir.path(), &origin)
        .record(&dir.path().join("trace"))
        .start();
    let mut child = KillOnDrop(Some(child));
    let ca = common::modscope_ca(dir.path());
    let client = modscope::testkit::client::ProxiedClient::new(addr, &[ca]).unwrap();
    let got = client
        .get(
            "https://proxy.golang.org/gzip/40",
            modscope::testkit::client::Alpn::Both,
        )
        .await
        .unwrap();
    assert_eq!(got.headers["content-encoding"], "gzip");
    if let Some(c) = child.0.as_ref() {
        send_sigint(c.id());
    }
    let status = child.0.take().unwrap().wait().unwrap();
    assert!(status.success());
    let har_path = dir.path().join("trace/trace.har");
    let har: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&har_path).unwrap()).unwrap();
    let entry = &har["log"]["entries"][0];
    let plain = gzip_text(40);
    let c = &entry["response"]["content"];
    assert_eq!(c["size"], plain.len());
    assert_eq!(c["text"].as_str().unwrap().as_bytes(), &plain[..]);
    assert_eq!(
        c["compression"].as_i64().unwrap(),
        plain.len() as i64 - entry["response"]["bodySize"].as_i64().unwrap()
    );
    let script = r#"
import json, sys
from mitmproxy.io import har
flows = har.request_to_flow(json.load(open(sys.argv[1]))["log"]["entries"][0])
r = flows.response
sys.stdout.write(json.dumps({"content": r.content.decode("latin-1"), "raw": len(r.raw_content), "ce": r.headers.get("content-encoding")}))
"#;
    let mut cmd = Command::new(python);
    cmd.arg("-c").arg(script).arg(&har_path);
    let ran = run_bounded(cmd, LIMIT).await;
    assert!(ran.success, "{}", ran.stderr);
    let out: serde_json::Value = serde_json::from_str(&ran.stdout).unwrap();
    assert_eq!(out["content"].as_str().unwrap().as_bytes(), &plain[..]);
    assert_eq!(out["ce"], "gzip");
    // The replayed wire bytes (modscope's own replay) stay the origin's compressed bytes.
    let served = modscope::trace::load_trace(&dir.path().join("trace")).unwrap();
    let (bytes, plan) = modscope::trace::response_body(&served, &served.entries[0]).unwrap();
    assert_eq!(
        bytes.len() as i64,
        entry["response"]["bodySize"].as_i64().unwrap()
    );
    assert!(!plan.drop_content_encoding);
}

fn send_sigint(pid: u32) {
    let _ = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status();
}

/// Remakes `tests/data/mitmproxy-go.har`: go downloads `modules()` through mitmdump (its
/// `hardump` option), which forwards to the test origin on loopback.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "remakes tests/data/mitmproxy-go.har; needs mitmdump and go"]
async fn regenerate_mitmproxy_har() {
    let mitmdump = PathBuf::from(std::env::var("MODSCOPE_MITMDUMP").expect("MODSCOPE_MITMDUMP"));
    let go = go_binary().expect("go");
    let dir = TempDir::new("regen-mitm");
    let modules = modules();
    let origin = Origin::start(modules.clone(), OriginOptions::default())
        .await
        .unwrap();
    let origin_ca = dir.path().join("origin-ca.pem");
    std::fs::write(&origin_ca, origin.ca_pem()).unwrap();
    // mitmproxy resolves the name itself: this addon sends every upstream connection to the
    // origin on loopback, keeping the name for SNI and the recorded URL.
    let addon = dir.path().join("to_origin.py");
    std::fs::write(
        &addon,
        format!(
            "def server_connect(data):\n    data.server.address = (\"127.0.0.1\", {})\n",
            origin.addr.port()
        ),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let confdir = dir.path().join("mitmproxy");
    let har = dir.path().join("out.har");
    let child = Command::new(&mitmdump)
        .args([
            "--listen-host",
            "127.0.0.1",
            "--listen-port",
            &port.to_string(),
        ])
        .args(["-s", addon.to_str().unwrap()])
        .args(["--set", &format!("confdir={}", confdir.display())])
        .args(["--set", &format!("hardump={}", har.display())])
        .args([
            "--set",
            &format!("ssl_verify_upstream_trusted_ca={}", origin_ca.display()),
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(Some(child));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "mitmdump did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let app = write_app(dir.path(), &modules);
    let mut cmd = Command::new(&go);
    go_env(&mut cmd, dir.path(), "https://proxy.golang.org");
    cmd.env("HTTPS_PROXY", format!("http://127.0.0.1:{port}"))
        .env("SSL_CERT_FILE", confdir.join("mitmproxy-ca-cert.pem"))
        .current_dir(&app)
        .args(["mod", "download"]);
    let ran = run_bounded(cmd, LIMIT).await;
    assert!(ran.success, "{}", ran.stderr);
    send_sigint(child.0.as_ref().unwrap().id());
    child.0.take().unwrap().wait().unwrap();
    std::fs::copy(&har, data("mitmproxy-go.har")).unwrap();
}

/// A HAR copied without its `bodies/`: the missing files are found at load, before any
/// request, and their requests are misses (not hits that fail); a `text` whose length fits
/// no declared size is counted.
#[test]
fn missing_body_files_and_size_mismatches_are_found_at_load() {
    use modscope::proxy::ReplaySource;
    use modscope::replay::{OnMiss, ReplayTiming};
    let dir = TempDir::new("interop-missing");
    let sha = "ab".repeat(32);
    let entry = |url: &str, content: serde_json::Value| {
        serde_json::json!({
            "startedDateTime": "2026-11-25T12:00:00.000Z", "time": 1,
            "request": {"method": "GET", "url": url, "httpVersion": "HTTP/1.1", "cookies": [], "headers": [], "queryString": [], "headersSize": -1, "bodySize": 0},
            "response": {"status": 200, "statusText": "OK", "httpVersion": "HTTP/1.1", "cookies": [], "headers": [],
                         "content": content, "redirectURL": "", "headersSize": -1, "bodySize": -1},
            "cache": {}, "timings": {"send": 0, "wait": 0, "receive": 0}
        })
    };
    let har = serde_json::json!({"log": {"version": "1.2", "creator": {"name": "t", "version": "1"}, "entries": [
        entry("https://proxy.golang.org/a/@v/v1.0.0.zip", serde_json::json!({"size": 3, "mimeType": "application/zip", "_sha256": sha, "_file": format!("bodies/{sha}")})),
        entry("https://proxy.golang.org/a/@v/list", serde_json::json!({"size": 99, "mimeType": "text/plain", "text": "v1.0.0\n"})),
    ]}});
    let path = dir.path().join("trace.har");
    std::fs::write(&path, serde_json::to_vec(&har).unwrap()).unwrap();
    let trace = modscope::trace::load_trace(&path).unwrap();
    let source = ReplaySource::new(trace, OnMiss::NotFound, ReplayTiming::None, Vec::new());
    assert_eq!(source.missing_bodies.len(), 1);
    assert_eq!(source.missing_bodies[0].0, 0);
    assert_eq!(source.size_mismatches.len(), 1);
    assert_eq!(
        (
            source.size_mismatches[0].1.rebuilt,
            source.size_mismatches[0].1.declared
        ),
        (7, 99)
    );
    assert!(source
        .lookup("GET", "https://proxy.golang.org/a/@v/v1.0.0.zip")
        .is_none());
    assert!(source
        .lookup("GET", "https://proxy.golang.org/a/@v/list")
        .is_some());
    let report = source.report();
    assert_eq!((report.hits, report.misses.len()), (1, 1));
    assert!(
        report.unused.is_empty(),
        "a withdrawn entry is not 'unused'"
    );
    // The CLI says so before it listens.
    let out = Command::new(MODSCOPE)
        // A remote listen address without --allow-remote stops it right after loading.
        .args(["replay", "--listen", "0.0.0.0:0", "--ca-dir"])
        .arg(dir.path().join("ca"))
        .arg(&path)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the body files of 1 entry are missing"),
        "{stderr}"
    );
    assert!(
        stderr.contains("#1 GET https://proxy.golang.org/a/@v/v1.0.0.zip"),
        "{stderr}"
    );
    assert!(stderr.contains("#2 GET https://proxy.golang.org/a/@v/list: the body rebuilt from `text` is 7 bytes, but content.size says 99"), "{stderr}");
}
