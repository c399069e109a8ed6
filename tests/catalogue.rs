//! The failure catalogue: scenarios from the Go module troubleshooting literature,
//! reproduced with a deliberately broken origin on loopback and the real go (both
//! versions) through `modscope run`. Each row checks go's own error text, the cause
//! modscope names, and the key words of its advice; every `go env -w` command in the
//! advice is then run in bash with a temporary GOENV and checked with `go env`.
//! Rows run concurrently so the suite takes about as long as its slowest row.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::gorun::GoRun;
use common::{go_binaries, go_version, run_bounded, TempDir};
use modscope::testkit::broken::{BrokenOrigin, Misbehave};
use modscope::testkit::modules::SyntheticModule;

const LIMIT: Duration = Duration::from_secs(120);

struct Row {
    name: &'static str,
    how: Misbehave,
    /// GOPROXY; every host in it is mapped to the broken origin.
    goproxy: &'static str,
    /// Extra `modscope run` arguments (a fault rule, another mapping).
    extra: Vec<String>,
    /// The names on the origin's certificate (default: the GOPROXY hosts).
    cert_names: Option<&'static [&'static str]>,
    /// Give modscope the origin's CA (`--upstream-ca`).
    trusted: bool,
    /// Run `go mod download` a second time when the first fails (a CI retry step).
    retry: bool,
    go_succeeds: bool,
    /// Words go itself prints (any of them: versions word errors differently).
    go_says: &'static [&'static str],
    /// `[cause]` modscope reports (empty: none expected).
    cause: &'static str,
    /// Words in the report (title or advice).
    report_has: &'static [&'static str],
}

fn module(extra_bytes: usize) -> SyntheticModule {
    SyntheticModule::simple("example.com/hello", "v1.0.0", extra_bytes)
}

fn rows() -> Vec<Row> {
    let status = |status: u16, first: Option<usize>| Misbehave::Status {
        status,
        first,
        retry_after: None,
    };
    vec![
        Row {
            name: "404 at the only proxy",
            how: status(404, None),
            goproxy: "https://proxy.golang.org",
            extra: vec![],
            retry: false,
            cert_names: None,
            trusted: true,
            go_succeeds: false,
            go_says: &["404 Not Found"],
            cause: "not-found",
            report_has: &["go list -m -versions example.com/hello"],
        },
        Row {
            name: "403 private module",
            how: status(403, None),
            goproxy: "https://proxy.golang.org",
            extra: vec![],
            retry: false,
            cert_names: None,
            trusted: true,
            go_succeeds: false,
            go_says: &["403 Forbidden"],
            // Sent without Authorization and no .netrc: the forensics name the missing
            // credential rather than a bare "forbidden".
            cause: "credentials-missing",
            report_has: &["~/.netrc", "no Authorization header"],
        },
        Row {
            name: "429 rate limited",
            how: Misbehave::Status {
                status: 429,
                first: None,
                retry_after: Some("30".into()),
            },
            goproxy: "https://proxy.golang.org",
            extra: vec![],
            retry: false,
            cert_names: None,
            trusted: true,
            go_succeeds: false,
            go_says: &["429 Too Many Requests"],
            cause: "rate-limited",
            report_has: &["Retry-After: 30"],
        },
        Row {
            name: "502 with ',' stops go; advice offers '|'",
            how: status(502, None),
            goproxy: "https://proxy.golang.org,https://mirror.example",
            extra: vec![],
            retry: false,
            cert_names: None,
            trusted: true,
            go_succeeds: false,
            go_says: &["502 Bad Gateway"],
            cause: "upstream-server-error",
            report_has: &["with ',' go does not fall back", "go env -w GOPROXY="],
        },
        Row {
            name: "503 once, then served on retry (transient)",
            how: status(503, Some(1)),
            goproxy: "https://proxy.golang.org",
            extra: vec![],
            retry: true,
            cert_names: None,
            trusted: true,
            go_succeeds: true,
            go_says: &[],
            cause: "upstream-server-error",
            report_has: &["succeeded on a retry (transient)"],
        },
        Row {
            name: "server accepts the request and closes without answering",
            how: Misbehave::NoResponse,
            goproxy: "https://proxy.golang.org",
            extra: vec![],
            retry: false,
            cert_names: None,
            trusted: true,
            go_succeeds: false,
            go_says: &["502 Bad Gateway"],
            cause: "no-response",
            report_has: &["closed without a response"],
        },
        Row {
            name: "body cut mid-way",
            how: Misbehave::CutBody,
            goproxy: "https://proxy.golang.org",
            extra: vec![],
            retry: false,
            cert_names: None,
            trusted: true,
            go_succeeds: false,
            go_says: &[
                "unexpected EOF",
                "stream error",
                "INTERNAL_ERROR",
                "zip: not a valid zip file",
            ],
            cause: "reset-or-truncated",
            report_has: &["cut responses short"],
        },
        Row {
            name: "body stalls 11 s, then resumes",
            how: Misbehave::StallBody {
                stall: Duration::from_secs(11),
                close: false,
            },
            goproxy: "https://proxy.golang.org",
            extra: vec![],
            retry: false,
            cert_names: None,
            trusted: true,
            go_succeeds: true,
            go_says: &[],
            cause: "body-stalled",
            report_has: &["then resumed and completed", "give CI jobs a timeout"],
        },
        Row {
            name: "first byte after 11 s",
            how: Misbehave::DelayHead(Duration::from_secs(11)),
            goproxy: "https://proxy.golang.org",
            extra: vec![],
            retry: false,
            cert_names: None,
            trusted: true,
            go_succeeds: true,
            go_says: &[],
            cause: "slow-first-byte",
            report_has: &["waited over 10.0 s"],
        },
        Row {
            name: "16 KiB/s mirror",
            how: Misbehave::Throttle(16 * 1024),
            goproxy: "https://proxy.golang.org",
            extra: vec![],
            retry: false,
            cert_names: None,
            trusted: true,
            go_succeeds: true,
            go_says: &[],
            cause: "slow-link",
            report_has: &["KiB/s", "goproxy.cn (mainland China)"],
        },
        Row {
            name: "5 s TLS handshake works as without modscope",
            how: Misbehave::HandshakeDelay(Duration::from_secs(5)),
            goproxy: "https://proxy.golang.org",
            extra: vec![],
            retry: false,
            cert_names: None,
            trusted: true,
            go_succeeds: true,
            go_says: &[],
            cause: "",
            report_has: &[],
        },
        Row {
            name: "swapped zip: go refuses it, not the network",
            how: Misbehave::SwapZip(Box::new(SyntheticModule::simple(
                "example.com/other",
                "v1.0.0",
                0,
            ))),
            goproxy: "https://proxy.golang.org",
            extra: vec![],
            retry: false,
            cert_names: None,
            trusted: true,
            go_succeeds: false,
            // Another module's zip: go checks the file names before any hash ("zip for
            // example.com/hello@v1.0.0 has unexpected file example.com/other@v1.0.0/go.mod",
            // go 1.19 and 1.27). This row once passed on "SECURITY ERROR" from modscope's
            // closing note, not from go.
            go_says: &["has unexpected file"],
            cause: "",
            report_has: &["the failure is not the network"],
        },
        Row {
            name: "nothing listens on the proxy's port",
            how: Misbehave::Nothing,
            goproxy: "https://proxy.golang.org",
            // The first matching --connect-to wins; the extra arguments come first.
            extra: vec![
                "--connect-to".into(),
                "proxy.golang.org:443:127.0.0.1:1".into(),
            ],
            retry: false,
            cert_names: None,
            trusted: true,
            go_succeeds: false,
            go_says: &["502 Bad Gateway"],
            cause: "connection-refused",
            report_has: &["the GOPROXY entry https://proxy.golang.org"],
        },
        Row {
            name: "certificate for another name",
            how: Misbehave::Nothing,
            goproxy: "https://proxy.golang.org",
            extra: vec![],
            retry: false,
            cert_names: Some(&["other.example"]),
            trusted: true,
            go_succeeds: false,
            go_says: &["502 Bad Gateway"],
            cause: "tls-hostname-mismatch",
            report_has: &[
                "other.example",
                "the GOPROXY entry https://proxy.golang.org",
            ],
        },
        Row {
            name: "certificate from an unknown CA (a TLS-inspecting proxy)",
            how: Misbehave::Nothing,
            goproxy: "https://proxy.golang.org",
            extra: vec![],
            retry: false,
            cert_names: None,
            trusted: false,
            go_succeeds: false,
            go_says: &["502 Bad Gateway"],
            cause: "tls-untrusted",
            report_has: &["--upstream-ca"],
        },
        Row {
            name: "an injected 503 shows the real diagnosis, tagged",
            how: Misbehave::Nothing,
            goproxy: "https://proxy.golang.org",
            extra: vec!["--fault".into(), "kind=zip:503".into()],
            retry: false,
            cert_names: None,
            trusted: true,
            go_succeeds: false,
            go_says: &["503 Service Unavailable"],
            cause: "upstream-server-error",
            report_has: &["(injected by rule"],
        },
    ]
}

fn hosts_of(goproxy: &str) -> Vec<String> {
    goproxy
        .split([',', '|'])
        .filter_map(|e| e.strip_prefix("https://"))
        .map(|h| h.split('/').next().unwrap_or(h).to_string())
        .collect()
}

/// Runs one row with one go; returns a description of what went wrong, if anything.
async fn run_row(row: Arc<Row>, go: PathBuf) -> Result<(), String> {
    let extra_bytes = match row.how {
        Misbehave::Throttle(_) => 160 * 1024,
        _ => 4096,
    };
    let m = module(extra_bytes);
    let origin = BrokenOrigin::start(
        vec![m.clone()],
        row.cert_names
            .unwrap_or(&["proxy.golang.org", "mirror.example"]),
        row.how.clone(),
    )
    .await
    .map_err(|e| e.to_string())?;
    let dir = TempDir::new("catalogue");
    let app = common::write_app(dir.path(), std::slice::from_ref(&m));
    let hosts = hosts_of(row.goproxy);
    let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
    let mut run = GoRun::new(dir.path(), &app, row.goproxy)
        .args(&row.extra)
        .connect_to(origin.addr, &hosts);
    if row.trusted {
        run = run.upstream_ca(origin.ca_pem());
    }
    let cmd = if row.retry {
        let retry = r#""$0" mod download || "$0" mod download"#;
        run.go(Path::new("bash"), &["-c", retry, go.to_str().unwrap()])
    } else {
        run.go(&go, &["mod", "download"])
    };
    let ran = run_bounded(cmd, LIMIT).await;
    let v = go_version(&go);
    let what = format!("{} [{v}]:\n{}", row.name, ran.stderr);
    if ran.success != row.go_succeeds {
        return Err(format!(
            "go succeeded={} (want {}): {what}",
            ran.success, row.go_succeeds
        ));
    }
    let go_said = go_lines(&ran.stderr);
    if !row.go_says.is_empty() && !row.go_says.iter().any(|w| go_said.contains(w)) {
        return Err(format!("go's error lacks any of {:?}: {what}", row.go_says));
    }
    let tag = format!("[{}]", row.cause);
    if !row.cause.is_empty() && !ran.stderr.contains(&tag) {
        return Err(format!("no {tag} finding: {what}"));
    }
    if row.cause.is_empty() && ran.stderr.contains("  ERROR  ") {
        return Err(format!("an unexpected error finding: {what}"));
    }
    for w in row.report_has {
        if !ran.stderr.contains(w) {
            return Err(format!("the report lacks {w:?}: {what}"));
        }
    }
    paste_advice(&go, dir.path(), &ran.stderr).map_err(|e| format!("{e}: {what}"))
}

/// Runs every `go env -w` command of the report's advice in bash, as a user would
/// paste it, and checks that go then reports the value the advice meant.
fn paste_advice(go: &Path, dir: &Path, report: &str) -> Result<(), String> {
    for line in report
        .lines()
        .filter_map(|l| l.trim().strip_prefix("fix: "))
    {
        for cmd in modscope::diagnose::advice::go_env_commands(line) {
            let goenv = dir.join("pasted.env");
            let _ = std::fs::remove_file(&goenv);
            let go_dir = go.parent().unwrap_or(Path::new("/"));
            let path = format!(
                "{}:{}",
                go_dir.display(),
                std::env::var("PATH").unwrap_or_default()
            );
            let out = std::process::Command::new("bash")
                .arg("-c")
                .arg(cmd)
                .env("GOENV", &goenv)
                .env("PATH", &path)
                .env("HOME", dir)
                .env_remove("GOPROXY")
                .env_remove("GOPRIVATE")
                .env_remove("GONOSUMDB")
                .output()
                .map_err(|e| e.to_string())?;
            if !out.status.success() {
                return Err(format!(
                    "pasting `{cmd}` failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            let assignment = cmd.trim_start_matches("go env -w ");
            let (var, quoted) = assignment.split_once('=').unwrap_or((assignment, ""));
            let want = quoted.trim_matches('\'');
            let got = std::process::Command::new(go)
                .args(["env", var])
                .env("GOENV", &goenv)
                .env("HOME", dir)
                .env_remove(var)
                .output()
                .map_err(|e| e.to_string())?;
            let got = String::from_utf8_lossy(&got.stdout).trim().to_string();
            if got != want {
                return Err(format!(
                    "after `{cmd}`, go env {var} is {got:?}, not {want:?}"
                ));
            }
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failure_catalogue_with_the_real_go() {
    let gos = go_binaries();
    if gos.is_empty() {
        return;
    }
    let started = std::time::Instant::now();
    // Bounded parallelism: the rows mostly wait (stalls, delays), but each runs go.
    let gate = Arc::new(tokio::sync::Semaphore::new(10));
    let mut tasks = Vec::new();
    for row in rows().into_iter().map(Arc::new) {
        for go in &gos {
            let (row, go, gate) = (row.clone(), go.clone(), gate.clone());
            tasks.push(tokio::spawn(async move {
                let _permit = gate.acquire_owned().await.unwrap();
                run_row(row, go).await
            }));
        }
    }
    let failures = common::row_failures(tasks).await;
    eprintln!(
        "catalogue: {} runs in {:.1?}",
        rows().len() * gos.len(),
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{} rows failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// DNS rows: go through modscope, with a resolver this test controls. A missing name
/// and a failing resolver are different causes with different advice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dns_failures_are_named_by_what_broke() {
    use modscope::testkit::dns::DnsAnswer;
    let gos = go_binaries();
    if gos.is_empty() {
        return;
    }
    let dir = TempDir::new("catalogue-dns");
    let names = std::collections::HashMap::from([
        ("servfail.example".to_string(), DnsAnswer::ServFail),
        ("silent.example".to_string(), DnsAnswer::Silent),
    ]);
    let Some(resolver) = common::Resolver::start(dir.path(), names, "timeout:1 attempts:1").await
    else {
        return;
    };
    let resolver = Arc::new(resolver);
    let rows: [(&str, &str, &str); 3] = [
        (
            "https://typo.example",
            "[dns-failure]",
            "check the spelling of typo.example",
        ),
        (
            "https://servfail.example",
            "[dns-server-failure]",
            "/etc/resolv.conf",
        ),
        (
            "https://silent.example",
            "[dns-server-failure]",
            "not the name",
        ),
    ];
    let mut tasks = Vec::new();
    for (goproxy, cause, advice) in rows {
        for go in &gos {
            let (go, resolver) = (go.clone(), resolver.clone());
            tasks.push(tokio::spawn(async move {
                let m = module(0);
                let dir = TempDir::new("catalogue-dns-row");
                let app = common::write_app(dir.path(), std::slice::from_ref(&m));
                let cmd = GoRun::new(dir.path(), &app, goproxy).go(&go, &["mod", "download"]);
                let ran = run_bounded(resolver.wrap(&cmd), LIMIT).await;
                let what = format!("{goproxy} [{}]:\n{}", go_version(&go), ran.stderr);
                if ran.success || !ran.stderr.contains("502 Bad Gateway") {
                    return Err(format!("go must fail with modscope's 502: {what}"));
                }
                if !ran.stderr.contains(cause) || !ran.stderr.contains(advice) {
                    return Err(format!("want {cause} and {advice:?}: {what}"));
                }
                Ok(())
            }));
        }
    }
    let failures = common::row_failures(tasks).await;
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// What go itself printed: stderr before modscope's summary, without modscope's own
/// lines (`modscope: ...` and one `STATUS METHOD URL ...` line per exchange). The
/// summary's findings quote go's words ("unexpected EOF", "SECURITY ERROR"), so a
/// check on the whole stderr could not tell go's error from modscope's explanation.
fn go_lines(stderr: &str) -> String {
    let before_summary = stderr.split("modscope summary:").next().unwrap_or_default();
    before_summary
        .lines()
        .filter(|l| !l.starts_with("modscope"))
        .filter(|l| {
            let mut words = l.split_whitespace();
            let status = words.next().unwrap_or_default();
            let method = words.next().unwrap_or_default();
            let is_status = status == "ERR"
                || (status.len() == 3 && status.bytes().all(|b| b.is_ascii_digit()));
            let is_method = !method.is_empty() && method.bytes().all(|b| b.is_ascii_uppercase());
            !(is_status && is_method)
        })
        .collect::<Vec<_>>()
        .join("\n")
}
