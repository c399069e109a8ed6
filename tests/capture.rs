//! Capture import on real captures made on loopback (tests/data, see its README):
//! concrete facts per file, `modscope summary` on the result, determinism, and Wireshark
//! decrypting modscope's TLS with its key log.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{
    go_env, modscope_ca, spawn_proxy, write_app, KillOnDrop, TempDir, GOPROXY_HOST, MODSCOPE,
};
use modscope::capture::{import, ImportReport};
use modscope::testkit::client::{Alpn, ProxiedClient};
use modscope::testkit::modules::{default_modules, SyntheticModule};
use modscope::testkit::origin::{Origin, OriginOptions};
use modscope::trace::{load_trace, Entry};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

struct Imported {
    dir: TempDir,
    report: ImportReport,
    entries: Vec<Entry>,
}

impl Imported {
    fn trace(&self) -> PathBuf {
        self.dir.path().join("trace")
    }

    fn with_method<'a>(&'a self, method: &'a str) -> impl Iterator<Item = &'a Entry> + 'a {
        self.entries
            .iter()
            .filter(move |e| e.request.method == method)
    }
}

fn import_file(name: &str) -> Imported {
    let dir = TempDir::new("capture-import");
    let out = dir.path().join("trace");
    let report = import(&data(name), &out).unwrap_or_else(|e| panic!("{name}: {e}"));
    let loaded = load_trace(&out).unwrap();
    assert!(loaded.problems.is_empty(), "{name}: {:?}", loaded.problems);
    assert_eq!(loaded.entries.len() as u64, report.entries, "{name}");
    Imported {
        dir,
        report,
        entries: loaded.entries,
    }
}

fn go_kind(e: &Entry) -> &str {
    e.go.as_ref()
        .and_then(|g| g.get("kind"))
        .and_then(|k| k.as_str())
        .unwrap_or("")
}

fn capture_field<'a>(e: &'a Entry, path: &[&str]) -> &'a serde_json::Value {
    let mut v = e.extra.get("_capture").unwrap_or(&serde_json::Value::Null);
    for p in path {
        v = v.get(*p).unwrap_or(&serde_json::Value::Null);
    }
    v
}

/// `modscope summary DIR` on an imported trace: succeeds and says something about it.
fn summary(trace: &Path) -> String {
    let out = Command::new(MODSCOPE)
        .arg("summary")
        .arg(trace)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "summary failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn go_over_plain_http_goproxy_with_a_refused_first_proxy() {
    let t = import_file("goproxy-http.pcapng");
    assert!(t.report.warnings.is_empty(), "{:?}", t.report.warnings);
    let http: Vec<&Entry> = t
        .entries
        .iter()
        .filter(|e| e.request.url.starts_with("http://127.0.0.1:38080/"))
        .collect();
    let kinds: Vec<&str> = http.iter().map(|e| go_kind(e)).collect();
    for kind in ["list", "info", "mod", "zip"] {
        assert!(kinds.contains(&kind), "no {kind} in {kinds:?}");
    }
    assert_eq!(t.report.http_exchanges as usize, http.len());
    let zip = http.iter().find(|e| go_kind(e) == "zip").unwrap();
    assert_eq!(zip.response.status, 200);
    assert!(zip
        .response
        .headers
        .iter()
        .any(|h| h.name == "transfer-encoding" && h.value == "chunked"));
    assert_eq!(zip.response.content.complete, None, "zip body complete");
    let body = modscope::trace::entry_body(&load_trace(&t.trace()).unwrap(), &zip.response.content)
        .unwrap();
    assert!(
        body.starts_with(b"PK\x03\x04"),
        "the de-chunked zip is stored"
    );
    assert_eq!(
        zip.go.as_ref().unwrap()["module"],
        "example.com/hello",
        "{:?}",
        zip.go
    );
    // go probes the shorter path too: a 404 from the proxy, routine in the protocol.
    assert!(http.iter().any(|e| e.response.status == 404));
    // GOPROXY=http://127.0.0.1:9|...: every fetch first meets a closed port.
    let refused: Vec<&Entry> = t
        .entries
        .iter()
        .filter(|e| {
            e.error
                .as_ref()
                .is_some_and(|x| x.kind == "connect-refused")
        })
        .collect();
    assert!(!refused.is_empty());
    assert_eq!(refused[0].request.url, "http://127.0.0.1:9/");
    assert_eq!(refused[0].error.as_ref().unwrap().phase, "connect");
    assert_eq!(refused[0].response.status, 0);
    let text = summary(&t.trace());
    assert!(text.contains("127.0.0.1:38080"), "{text}");
    assert!(text.contains("refused"), "{text}");
}

#[test]
fn go_through_modscope_shows_the_tunnels_and_their_tls() {
    let t = import_file("go-through-modscope.pcapng");
    assert!(t.report.warnings.is_empty(), "{:?}", t.report.warnings);
    assert!(t.report.tls_connections >= 2, "{:?}", t.report);
    // go -> modscope: CONNECT proxy.golang.org:443, TLS inside.
    let tunnels: Vec<&Entry> = t
        .with_method("CONNECT")
        .filter(|e| capture_field(e, &["tunnel"]).is_object())
        .collect();
    assert!(!tunnels.is_empty());
    let tunnel = tunnels[0];
    assert_eq!(tunnel.request.url, "https://proxy.golang.org/");
    assert_eq!(tunnel.response.status, 200);
    assert!(tunnel.error.is_none(), "{:?}", tunnel.error);
    let client = tunnel.tls.as_ref().unwrap().client.as_ref().unwrap();
    assert_eq!(client.sni.as_deref(), Some("proxy.golang.org"));
    assert_eq!(client.alpn, ["h2", "http/1.1"]);
    assert_eq!(client.version.as_deref(), Some("TLS 1.3"));
    assert!(tunnel.timings.ssl > 0.0);
    assert_eq!(
        capture_field(tunnel, &["tunnel", "authority"]),
        "proxy.golang.org:443"
    );
    // modscope -> origin: a direct TLS connection with the same SNI.
    let direct: Vec<&Entry> = t
        .with_method("CONNECT")
        .filter(|e| capture_field(e, &["connection", "protocol"]) == "tls")
        .collect();
    assert!(!direct.is_empty());
    assert_eq!(
        direct[0]
            .tls
            .as_ref()
            .unwrap()
            .client
            .as_ref()
            .unwrap()
            .sni
            .as_deref(),
        Some("proxy.golang.org")
    );
    assert!(capture_field(direct[0], &["connection", "rtt_ms"])
        .as_f64()
        .is_some());
    let text = summary(&t.trace());
    assert!(text.contains("proxy.golang.org"), "{text}");
}

#[test]
fn go_rejecting_the_certificate_is_a_failed_handshake() {
    let t = import_file("tls-untrusted.pcapng");
    let failed: Vec<&Entry> = t
        .entries
        .iter()
        .filter(|e| e.error.as_ref().is_some_and(|x| x.phase == "tls"))
        .collect();
    assert!(!failed.is_empty(), "{:#?}", t.entries);
    let err = failed[0].error.as_ref().unwrap();
    assert_eq!(err.kind, "tls-handshake");
    assert!(err.message.contains("encrypted alert"), "{}", err.message);
    assert_eq!(failed[0].response.status, 0);
    assert_eq!(
        failed[0]
            .tls
            .as_ref()
            .unwrap()
            .client
            .as_ref()
            .unwrap()
            .sni
            .as_deref(),
        Some("proxy.golang.org")
    );
    summary(&t.trace());
}

#[test]
fn go_meeting_nxdomain_shows_dns_failures() {
    let t = import_file("dns-nxdomain.pcapng");
    assert!(t.report.dns_queries >= 2);
    let dns: Vec<&Entry> = t.with_method("DNS").collect();
    assert_eq!(dns.len() as u64, t.report.dns_queries);
    for e in &dns {
        assert_eq!(e.request.url, "https://proxy.golang.org/");
        let err = e.error.as_ref().unwrap();
        assert_eq!((err.phase.as_str(), err.kind.as_str()), ("dns", "dns"));
        assert!(
            err.message.starts_with("NXDOMAIN for proxy.golang.org ("),
            "{}",
            err.message
        );
        assert_eq!(capture_field(e, &["dns", "rcode"]), "NXDOMAIN");
    }
    let types: Vec<&str> = dns
        .iter()
        .map(|e| capture_field(e, &["dns", "type"]).as_str().unwrap())
        .collect();
    assert!(types.contains(&"A") && types.contains(&"AAAA"), "{types:?}");
    let text = summary(&t.trace());
    assert!(text.to_lowercase().contains("dns"), "{text}");
}

#[test]
fn dns_answers_rcodes_and_silence() {
    let t = import_file("dns-5353.pcap");
    assert_eq!(t.report.dns_queries, 5);
    let by_name = |name: &str, ty: &str| -> &Entry {
        t.with_method("DNS")
            .find(|e| {
                capture_field(e, &["dns", "name"]) == name
                    && capture_field(e, &["dns", "type"]) == ty
            })
            .unwrap_or_else(|| panic!("no {ty} query for {name}"))
    };
    let ok = by_name("proxy.golang.org", "A");
    assert_eq!(ok.response.status, 200);
    let answers = capture_field(ok, &["dns", "answers"]).as_array().unwrap();
    assert_eq!(answers[0]["type"], "CNAME");
    assert_eq!(answers[1]["data"], "127.0.0.1");
    assert!(ok.timings.dns >= 2.0, "{}", ok.timings.dns);
    assert_eq!(by_name("proxy.golang.org", "AAAA").response.status, 200);
    let nx = by_name("nonexistent.example", "A");
    assert!(nx.error.as_ref().unwrap().message.starts_with("NXDOMAIN"));
    let sf = by_name("broken.example", "A");
    assert!(sf.error.as_ref().unwrap().message.starts_with("SERVFAIL"));
    let slow = by_name("slow.example", "A");
    let msg = &slow.error.as_ref().unwrap().message;
    assert!(msg.starts_with("no answer for slow.example (A)"), "{msg}");
    assert!(msg.contains("1 retry"), "{msg}");
    summary(&t.trace());
}

#[test]
fn importing_twice_gives_identical_bytes() {
    for name in [
        "goproxy-http.pcapng",
        "go-through-modscope.pcapng",
        "dns-5353.pcap",
    ] {
        let a = import_file(name);
        let b = import_file(name);
        for file in ["journal.jsonl", "trace.har"] {
            let x = std::fs::read(a.trace().join(file)).unwrap();
            let y = std::fs::read(b.trace().join(file)).unwrap();
            assert!(x == y, "{name}: {file} differs between two imports");
        }
    }
}

#[test]
fn a_cut_capture_imports_what_is_there_and_says_where() {
    let bytes = std::fs::read(data("goproxy-http.pcapng")).unwrap();
    let dir = TempDir::new("capture-cut");
    let cut = dir.path().join("cut.pcapng");
    let at = bytes.len() * 2 / 3;
    std::fs::write(&cut, &bytes[..at]).unwrap();
    let report = import(&cut, &dir.path().join("trace")).unwrap();
    assert!(report.entries > 0);
    let w = report.warnings.join("\n");
    assert!(w.contains(&format!("capture cut at byte {at}")), "{w}");
    summary(&dir.path().join("trace"));
}

#[test]
fn a_file_that_is_not_a_capture_is_refused_by_name() {
    let dir = TempDir::new("capture-not");
    let not = data("README.md");
    let err = import(&not, &dir.path().join("trace"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("README.md: not a pcap or pcapng file: bad magic 0x"),
        "{err}"
    );
}

// ---- Wireshark with modscope's key log ----

/// tshark and dumpcap when present and usable; `None` with a SKIPPED line otherwise, or
/// a panic when `MODSCOPE_REQUIRE_TSHARK=1`.
fn tshark_tools() -> Option<(PathBuf, PathBuf)> {
    let required = std::env::var("MODSCOPE_REQUIRE_TSHARK").is_ok_and(|v| v == "1");
    let found = modscope::procenv::which("tshark").zip(modscope::procenv::which("dumpcap"));
    match (found, required) {
        (Some(t), _) => Some(t),
        (None, true) => panic!("MODSCOPE_REQUIRE_TSHARK=1 but tshark or dumpcap is not on PATH"),
        (None, false) => {
            eprintln!("SKIPPED: tshark/dumpcap not on PATH (set MODSCOPE_REQUIRE_TSHARK=1 to make this fatal)");
            None
        }
    }
}

/// `dumpcap` writing `file` with `filter` on loopback, started and capturing.
///
/// "Capturing on" is printed before the filter is live, so the function then connects to
/// `probe_port` (matched by the filter) until dumpcap counts a packet.
fn start_dumpcap(dumpcap: &Path, filter: &str, file: &Path, probe_port: u16) -> KillOnDrop {
    let mut child = Command::new(dumpcap)
        .args(["-i", "lo", "-f", filter, "-w"])
        .arg(file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start dumpcap");
    let mut stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::Read;
        // Progress lines end in \r, the others in \n.
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while let Ok(1) = stderr.read(&mut byte) {
            if byte[0] == b'\r' || byte[0] == b'\n' {
                if !line.is_empty() {
                    let _ = tx.send(String::from_utf8_lossy(&line).into_owned());
                    line.clear();
                }
            } else {
                line.push(byte[0]);
            }
        }
    });
    let capturing = KillOnDrop(Some(child));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    let mut started = false;
    let mut probed = std::time::Instant::now();
    while std::time::Instant::now() < deadline {
        if started && probed.elapsed() > Duration::from_millis(1500) {
            let _ = std::net::TcpStream::connect(("127.0.0.1", probe_port));
            probed = std::time::Instant::now();
        }
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                if line.contains("Capturing on") {
                    started = true;
                    probed = std::time::Instant::now() - Duration::from_secs(1);
                }
                let counted = line
                    .strip_prefix("Packets: ")
                    .and_then(|n| n.trim().parse::<u64>().ok())
                    .is_some_and(|n| n > 0);
                if counted {
                    return capturing;
                }
                seen.push(line);
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    panic!(
        "dumpcap did not capture within 20 s (needs root or capture rights): {}",
        seen.join("\n")
    );
}

/// SIGINT lets dumpcap flush and close the file.
fn stop_dumpcap(mut d: KillOnDrop) {
    std::thread::sleep(Duration::from_millis(500));
    if let Some(mut child) = d.0.take() {
        let pid = child.id() as libc::pid_t;
        // SAFETY: signalling our own child by pid; it has not been waited for yet.
        unsafe {
            libc::kill(pid, libc::SIGINT);
        }
        let _ = child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tshark_decrypts_with_the_keylog() {
    let Some((tshark, dumpcap)) = tshark_tools() else {
        return;
    };
    let dir = TempDir::new("capture-keylog");
    let origin = Origin::start(default_modules(), OriginOptions::default())
        .await
        .unwrap();
    let keylog = dir.path().join("keys.log");
    let (child, addr) = spawn_proxy(dir.path(), &origin)
        .args(&["--keylog", keylog.to_str().unwrap()])
        .start();
    let _proxy = KillOnDrop(Some(child));
    let cap = dir.path().join("cap.pcapng");
    let capturing = start_dumpcap(
        &dumpcap,
        &format!("tcp port {}", addr.port()),
        &cap,
        addr.port(),
    );
    let client = ProxiedClient::new(addr, &[modscope_ca(dir.path())]).unwrap();
    let got = client
        .get(
            "https://proxy.golang.org/example.com/hello/@v/list",
            Alpn::H1,
        )
        .await
        .unwrap();
    assert_eq!(got.status, 200);
    stop_dumpcap(capturing);
    let keys = std::fs::read_to_string(&keylog).unwrap();
    assert!(keys.contains("CLIENT_HANDSHAKE_TRAFFIC_SECRET"), "{keys}");

    // Without the key log Wireshark sees only TLS; with it, the HTTP inside.
    let fields = |extra: &[&str]| -> String {
        let out = Command::new(&tshark)
            .arg("-r")
            .arg(&cap)
            .args(["-d", &format!("tcp.port=={},http", addr.port())])
            .args(extra)
            .args([
                "-Y",
                "http.request",
                "-T",
                "fields",
                "-e",
                "http.request.uri",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let plain = fields(&[]);
    assert!(
        !plain.contains("/@v/list"),
        "visible without keys?\n{plain}"
    );
    let keyopt = format!("tls.keylog_file:{}", keylog.display());
    let decrypted = fields(&["-o", &keyopt]);
    assert!(
        decrypted.contains("/example.com/hello/@v/list"),
        "tshark did not decrypt the request with the key log:\n{decrypted}"
    );

    // The capture itself imports: one tunnel to proxy.golang.org.
    let report = import(&cap, &dir.path().join("trace")).unwrap();
    assert_eq!(report.tls_connections, 1, "{report:?}");
}

// ---- regenerating tests/data ----

/// Small modules only: the capture files must stay small.
fn small_modules() -> Vec<SyntheticModule> {
    default_modules()
        .into_iter()
        .filter(|m| m.files.iter().map(|(_, b)| b.len()).sum::<usize>() < 64 * 1024)
        .collect()
}

/// Remakes `go-through-modscope.pcapng` and `tls-untrusted.pcapng` (go through a modscope
/// proxy in front of the synthetic origin). Needs go, dumpcap and capture rights; runs
/// only with MODSCOPE_REGENERATE_CAPTURES=1 so a plain `--ignored` run changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "regenerates tests/data; set MODSCOPE_REGENERATE_CAPTURES=1"]
async fn regenerate_tls_captures() {
    if std::env::var("MODSCOPE_REGENERATE_CAPTURES").as_deref() != Ok("1") {
        eprintln!("SKIPPED: set MODSCOPE_REGENERATE_CAPTURES=1 to rewrite tests/data");
        return;
    }
    let dumpcap = modscope::procenv::which("dumpcap").expect("dumpcap");
    let go = modscope::procenv::which("go").expect("go");
    for (file, trusted) in [
        ("go-through-modscope.pcapng", true),
        ("tls-untrusted.pcapng", false),
    ] {
        let dir = TempDir::new("regen");
        let modules = small_modules();
        let origin = Origin::start(modules.clone(), OriginOptions::default())
            .await
            .unwrap();
        let (child, addr) = spawn_proxy(dir.path(), &origin).start();
        let _proxy = KillOnDrop(Some(child));
        let bundle = dir.path().join("bundle.pem");
        let pem = if trusted {
            std::fs::read(dir.path().join("ca").join("ca.pem")).unwrap()
        } else {
            origin.ca_pem().as_bytes().to_vec()
        };
        std::fs::write(&bundle, pem).unwrap();
        let app = write_app(dir.path(), &modules);
        let cap = dir.path().join(file);
        let filter = format!(
            "tcp port {} or tcp port {}",
            addr.port(),
            origin.addr.port()
        );
        let capturing = start_dumpcap(&dumpcap, &filter, &cap, addr.port());
        let mut cmd = Command::new(&go);
        go_env(&mut cmd, dir.path(), &format!("https://{GOPROXY_HOST}"));
        let status = cmd
            .args(["mod", "download"])
            .current_dir(&app)
            .env("HTTPS_PROXY", format!("http://{addr}"))
            .env("SSL_CERT_FILE", &bundle)
            .status()
            .unwrap();
        assert_eq!(status.success(), trusted, "go mod download: {status}");
        stop_dumpcap(capturing);
        std::fs::copy(&cap, data(file)).unwrap();
        // dumpcap creates its files private; these are test data for everyone.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(data(file), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
}
