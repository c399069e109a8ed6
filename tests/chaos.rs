//! Fault injection end to end: each action against a Rust client (fast, always runs) and
//! the real go command's reactions (when go is present), plus the control API.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::gorun::GoRun;
use common::{
    go_binaries, go_env, go_minor, go_version, run_bounded, write_app, Fixture, FixtureOptions,
    Ran, TempDir, GOPROXY_HOST, MODSCOPE,
};
use modscope::fault::parse_spec;
use modscope::testkit::client::{drain, get_request, Alpn};
use modscope::testkit::modules::default_modules;
use modscope::testkit::origin::{Origin, OriginOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LIMIT: Duration = Duration::from_secs(120);

async fn fixture_with(specs: &[&str]) -> Fixture {
    let rules: Vec<_> = specs.iter().map(|s| parse_spec(s).unwrap()).collect();
    Fixture::with(FixtureOptions {
        tweak: Box::new(move |c| {
            c.fault_rules = rules;
            c.fault_seed = 7;
        }),
        ..FixtureOptions::default()
    })
    .await
}

fn url(path: &str) -> String {
    format!("https://{GOPROXY_HOST}{path}")
}

#[tokio::test]
async fn every_request_level_action_reaches_the_client_and_the_trace() {
    tokio::time::timeout(LIMIT, async {
        let fx = fixture_with(&[
            "path=/status/*:respond=429,header=Retry-After=7,body=slow down",
            "path=/bytes/111:truncate@50",
            "path=/bytes/222:corrupt@10",
            "path=/bytes/333:reset@100",
            "path=/bytes/444:latency=300ms",
            "path=/bytes/555:reset",
        ])
        .await;
        for alpn in [Alpn::H1, Alpn::H2] {
            let got = fx.client.get(&url("/status/200"), alpn).await.unwrap();
            assert_eq!(got.status, 429);
            assert_eq!(got.headers["retry-after"], "7");
            assert_eq!(String::from_utf8_lossy(&got.body).trim(), "slow down");

            let got = fx.client.get(&url("/bytes/111"), alpn).await.unwrap();
            assert_eq!(got.body.len(), 50, "truncated cleanly");

            let got = fx.client.get(&url("/bytes/222"), alpn).await.unwrap();
            let original: Vec<u8> = (0..222)
                .map(modscope::testkit::origin::pattern_byte)
                .collect();
            let flipped: Vec<usize> = (0..222).filter(|&i| got.body[i] != original[i]).collect();
            assert_eq!(flipped, [10]);

            let mut sender = fx.client.connect(GOPROXY_HOST, 443, alpn).await.unwrap();
            let resp = sender
                .send(get_request(&url("/bytes/333").parse().unwrap()))
                .await
                .unwrap();
            assert!(drain(resp).await.is_err(), "reset mid-body");

            let started = std::time::Instant::now();
            fx.client.get(&url("/bytes/444"), alpn).await.unwrap();
            assert!(started.elapsed() >= Duration::from_millis(300));

            let mut sender = fx.client.connect(GOPROXY_HOST, 443, alpn).await.unwrap();
            assert!(
                sender
                    .send(get_request(&url("/bytes/555").parse().unwrap()))
                    .await
                    .is_err(),
                "reset before the head"
            );
        }
        let ex = fx.wait_exchanges(12).await;
        let injected: Vec<_> = ex.iter().filter(|e| e.fault.is_some()).collect();
        assert_eq!(injected.len(), 12, "{ex:#?}");
        let reset = ex
            .iter()
            .find(|e| e.request.url.ends_with("/bytes/333"))
            .unwrap();
        assert_eq!(reset.error.as_ref().unwrap().kind, "injected");
        let stats = fx.proxy.fault_stats();
        let text = serde_json::to_string(&stats).unwrap();
        assert!(text.contains("rule-1"), "{text}");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn connect_and_tls_level_faults() {
    tokio::time::timeout(LIMIT, async {
        let fx = fixture_with(&[
            "host=refused.example:refuse=403",
            "host=closed.example:close",
            "host=proxy.golang.org:tls=untrusted",
        ])
        .await;
        let refused = fx
            .client
            .tunnel("refused.example:443")
            .await
            .unwrap_err()
            .to_string();
        assert!(refused.contains("403"), "{refused}");
        let mut closed = fx.client.tunnel("closed.example:443").await.unwrap();
        let mut buf = [0u8; 1];
        closed.write_all(b"\x16\x03\x01").await.ok();
        assert_eq!(
            closed.read(&mut buf).await.unwrap_or(0),
            0,
            "closed right after CONNECT"
        );
        let tls = fx
            .client
            .get(&url("/bytes/1"), Alpn::Both)
            .await
            .unwrap_err();
        let text = format!("{tls:?}");
        assert!(text.contains("UnknownIssuer"), "{text}");
        let ex = fx.wait_exchanges(3).await;
        assert!(
            ex.iter()
                .all(|e| e.request.method == "CONNECT" && e.fault.is_some()),
            "{ex:#?}"
        );
    })
    .await
    .unwrap();
}

// --- the real go command ---------------------------------------------------------------

/// The names the origin of the go tests answers for.
const GO_HOSTS: &[&str] = &["proxy.golang.org", "a.example", "b.example"];

/// The default GOPROXY.
const PROXY: &str = "https://proxy.golang.org";

/// go mod download through `modscope run` with GOPROXY hosts mapped to one origin, with
/// a chosen go binary (see `go_binaries`).
async fn go_download_with(
    go: &std::path::Path,
    goproxy: &str,
    faults: &[&str],
    godebug: Option<&str>,
) -> Ran {
    let dir = TempDir::new("chaos-go");
    let modules = default_modules();
    let names = GO_HOSTS.iter().map(|h| h.to_string()).collect();
    let origin = Origin::start(
        modules.clone(),
        OriginOptions {
            names,
            ..OriginOptions::default()
        },
    )
    .await
    .unwrap();
    let app = write_app(dir.path(), &modules);
    GoRun::new(dir.path(), &app, goproxy)
        .args(["--seed", "1"])
        .origin(origin.ca_pem(), origin.addr, GO_HOSTS)
        .faults(faults)
        .godebug(godebug)
        .within(LIMIT)
        .download(go)
        .await
}

/// `go_download_with` over go's default protocol (HTTP/2).
async fn go_download(go: &std::path::Path, goproxy: &str, faults: &[&str]) -> Ran {
    go_download_with(go, goproxy, faults, None).await
}

#[tokio::test(flavor = "multi_thread")]
async fn go_falls_back_on_404_but_not_on_502_with_comma() {
    for go in go_binaries() {
        let ran = go_download(
            &go,
            "https://a.example,https://b.example",
            &["host=a.example:404"],
        )
        .await;
        assert!(ran.success, "404 on a → go uses b:\n{}", ran.stderr);

        let ran = go_download(
            &go,
            "https://a.example,https://b.example",
            &["host=a.example:502"],
        )
        .await;
        assert!(!ran.success);
        assert!(ran.stderr.contains("502 Bad Gateway"), "{}", ran.stderr);
        assert!(
            ran.stderr.contains("server response: modscope: injected"),
            "go shows the fault's text body:\n{}",
            ran.stderr
        );
        assert!(
            ran.stderr
                .contains("with ',' go does not fall back on 502 (only on 404/410)")
                && ran.stderr.contains("(injected by rule rule-1)"),
            "the summary explains ',':\n{}",
            ran.stderr
        );

        let ran = go_download(
            &go,
            "https://a.example|https://b.example",
            &["host=a.example:502"],
        )
        .await;
        assert!(
            ran.success,
            "with '|' go falls back on any error:\n{}",
            ran.stderr
        );
        assert!(
            ran.stderr.contains("go fell back to https://b.example"),
            "the summary says go fell back:\n{}",
            ran.stderr
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn go_rejects_a_corrupted_zip() {
    for go in go_binaries() {
        let ran = go_download(&go, PROXY, &["module=example.com/bigdata,kind=zip:corrupt"]).await;
        assert!(!ran.success);
        // go's own line may name no module ("go: zip: checksum error" when the flipped
        // byte fails a file's CRC; "verifying ...: checksum mismatch" otherwise) ...
        assert!(
            ran.stderr
                .lines()
                .any(|l| l.starts_with("go: ") && l.contains("checksum")),
            "{}",
            ran.stderr
        );
        // ... so the summary's fault finding says which download it hit, and the closing
        // line says the failure is the chaos asked for (the verdict "ok" alone reads
        // like success next to a failed go).
        assert!(
            ran.stderr
                .lines()
                .any(|l| l.contains("injected by modscope")
                    && l.contains("corrupt 1 B")
                    && l.contains(" on example.com/bigdata@v1.0.0")),
            "{}",
            ran.stderr
        );
        assert!(
            ran.stderr.lines().any(|l| l.starts_with(
                "modscope: the command exited with status 1 after modscope injected 1 fault (rule-1 on example.com/bigdata@v1.0.0)"
            )),
            "{}",
            ran.stderr
        );
        assert!(
            !ran.stderr.contains("rerun with --record"),
            "{}",
            ran.stderr
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn go_reports_a_reset_mid_zip() {
    for go in go_binaries() {
        let fault = ["module=example.com/bigdata,kind=zip:reset@100KiB"];
        let h2 = go_download(&go, PROXY, &fault).await;
        assert!(!h2.success);
        assert!(
            h2.stderr.contains("stream error") || h2.stderr.contains("INTERNAL_ERROR"),
            "h2:\n{}",
            h2.stderr
        );
        // Over HTTP/1.1 a reset is a real TCP RST ...
        let h1 = go_download_with(&go, PROXY, &fault, Some("http2client=0")).await;
        assert!(!h1.success);
        assert!(
            h1.stderr.contains("connection reset by peer"),
            "h1 reset:\n{}",
            h1.stderr
        );
        // ... while a connection closed mid-body (stall, then close) is go's unexpected EOF.
        let closed = ["module=example.com/bigdata,kind=zip:stall=1ms@100KiB,then=close"];
        let h1 = go_download_with(&go, PROXY, &closed, Some("http2client=0")).await;
        assert!(!h1.success);
        // go's own line: the summary's cut-body finding quotes "unexpected EOF" too.
        assert!(
            h1.stderr
                .lines()
                .any(|l| l.starts_with("go: ") && l.contains("unexpected EOF")),
            "h1 close:\n{}",
            h1.stderr
        );
    }
}

/// Go-shaped failures (#14): the RST_STREAM code CI scripts grep for, and a login page
/// answered with 200 where a module was expected. Checked with every go at hand.
#[tokio::test(flavor = "multi_thread")]
async fn go_names_the_rst_stream_code_and_chokes_on_a_login_page() {
    let gos = go_binaries();
    if gos.is_empty() {
        return;
    }
    for go in &gos {
        let version = go_version(go);
        let fault = ["module=example.com/bigdata,kind=zip:reset@50%,code=INTERNAL_ERROR"];
        let ran = go_download(go, PROXY, &fault).await;
        assert!(!ran.success, "{version}");
        assert!(
            ran.stderr.contains("stream error: stream ID")
                && ran.stderr.contains("; INTERNAL_ERROR"),
            "{version}:\n{}",
            ran.stderr
        );
        let fault = ["module=example.com/bigdata,kind=zip:reset@50%,code=REFUSED_STREAM"];
        let ran = go_download(go, PROXY, &fault).await;
        assert!(!ran.success, "{version}");
        assert!(
            ran.stderr.contains("; REFUSED_STREAM"),
            "{version}:\n{}",
            ran.stderr
        );

        let fault = ["module=example.com/bigdata,kind=mod:login"];
        let ran = go_download(go, PROXY, &fault).await;
        assert!(!ran.success, "{version}: a login page is no go.mod");
        // With go.sum present, go 1.19 and 1.27 alike take the page for a poisoned go.mod.
        assert!(
            ran.stderr
                .contains("verifying example.com/bigdata@v1.0.0/go.mod: checksum mismatch"),
            "{version}:\n{}",
            ran.stderr
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn go_reports_a_refused_connect_and_a_stalled_handshake() {
    for go in go_binaries() {
        let ran = go_download(&go, PROXY, &["host=proxy.golang.org:refuse=403"]).await;
        assert!(!ran.success);
        assert!(ran.stderr.contains("Forbidden"), "{}", ran.stderr);
        let ran = go_download(&go, PROXY, &["host=proxy.golang.org:tls=12s"]).await;
        assert!(!ran.success);
        assert!(
            ran.stderr.contains("TLS handshake timeout"),
            "{}",
            ran.stderr
        );
        // An untrusted certificate: go 1.20+ prefixes the x509 text.
        let ran = go_download(&go, PROXY, &["host=proxy.golang.org:tls=untrusted"]).await;
        assert!(!ran.success);
        let x509 = "x509: certificate signed by unknown authority";
        let prefixed = format!("tls: failed to verify certificate: {x509}");
        if go_minor(&go) >= 20 {
            assert!(ran.stderr.contains(&prefixed), "{}", ran.stderr);
        } else {
            assert!(
                ran.stderr.contains(x509) && !ran.stderr.contains(&prefixed),
                "{}",
                ran.stderr
            );
        }
    }
}

/// A tiny HTTP/1.1 client for the control API: `headers` are extra header lines.
async fn admin_raw(
    addr: &str,
    headers: &str,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("{method} {path} HTTP/1.1\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// A control API request as a script sends it: own Host, the token, a typed body.
async fn admin(addr: &str, token: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let kind = if body.trim_start().starts_with("[[") {
        "application/toml"
    } else {
        "application/json"
    };
    let headers =
        format!("Host: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: {kind}\r\n");
    admin_raw(addr, &headers, method, path, body).await
}

/// A web page the user visits can make the browser send requests to loopback: a simple
/// cross-site POST (text/plain, no preflight), the same from a rebinding host name, or a
/// preflight. None of them may change the rules.
#[tokio::test]
async fn the_control_api_refuses_web_pages_rebinding_and_requests_without_the_token() {
    let fx = Fixture::with(FixtureOptions {
        tweak: Box::new(|c| c.admin = Some("127.0.0.1:0".parse().unwrap())),
        ..FixtureOptions::default()
    })
    .await;
    let addr = fx.proxy.admin_addr.unwrap().to_string();
    let token = fx.proxy.admin_token.clone().unwrap();
    let rule = r#"{"name":"forged","match":{"kind":"mod"},"respond":{"status":200,"body":"require evil v1.0.0"}}"#;
    let spec = "name=forged,kind=mod:503";
    let bearer = format!("Authorization: Bearer {token}\r\n");
    let own = format!("Host: {addr}\r\n");
    let attacks: Vec<(String, &str, &str, u16)> = vec![
        // A page's cross-site POST: its origin, a simple content type, no token.
        (
            format!("{own}Origin: https://evil.example\r\nContent-Type: text/plain\r\n"),
            "POST",
            spec,
            403,
        ),
        // Even with the token, a foreign origin is refused.
        (
            format!(
                "{own}{bearer}Origin: https://evil.example\r\nContent-Type: application/json\r\n"
            ),
            "POST",
            rule,
            403,
        ),
        // DNS rebinding: the browser sends the page's host name.
        (
            format!(
                "Host: evil.example:{}\r\n{bearer}Content-Type: application/json\r\n",
                fx.proxy.admin_addr.unwrap().port()
            ),
            "POST",
            rule,
            421,
        ),
        // text/plain is what a form or fetch() sends without a preflight.
        (
            format!("{own}{bearer}Content-Type: text/plain\r\n"),
            "POST",
            spec,
            415,
        ),
        (
            format!("{own}{bearer}Content-Type: application/x-www-form-urlencoded\r\n"),
            "POST",
            spec,
            415,
        ),
        // No token.
        (
            format!("{own}Content-Type: application/json\r\n"),
            "POST",
            rule,
            401,
        ),
        (own.clone(), "POST /reset", "", 401),
    ];
    for (headers, method, body, want) in attacks {
        let (method, path) = method.split_once(' ').unwrap_or((method, "/faults"));
        let (status, answer) = admin_raw(&addr, &headers, method, path, body).await;
        assert_eq!(status, want, "{method} {path} with {headers:?}: {answer}");
    }
    // A preflight gets no CORS grant.
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let preflight = format!("OPTIONS /faults HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://{addr}\r\nAccess-Control-Request-Method: POST\r\nConnection: close\r\n\r\n");
    s.write_all(preflight.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 204"), "{out}");
    assert!(
        !out.to_ascii_lowercase().contains("access-control-allow"),
        "{out}"
    );
    let (status, listed) = admin(&addr, &token, "GET", "/faults", "").await;
    assert_eq!(status, 200);
    assert!(
        !listed.contains("forged"),
        "no attack added a rule: {listed}"
    );
    // The legitimate client, for contrast.
    let (status, body) = admin(&addr, &token, "POST", "/faults", rule).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fault_toggled_through_the_control_api_between_two_go_runs() {
    let gos = go_binaries();
    let dir = TempDir::new("admin");
    let modules = default_modules();
    let origin = Origin::start(modules.clone(), OriginOptions::default())
        .await
        .unwrap();
    let ca_file = dir.path().join("origin-ca.pem");
    std::fs::write(&ca_file, origin.ca_pem()).unwrap();
    let mut child = Command::new(MODSCOPE)
        .args([
            "proxy",
            "--quiet",
            "--listen",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
            "--ca-dir",
            dir.path().join("ca").to_str().unwrap(),
            "--upstream-ca",
            ca_file.to_str().unwrap(),
            "--connect-to",
            &format!("proxy.golang.org:443:127.0.0.1:{}", origin.addr.port()),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut proxy_url = String::new();
    let mut admin_addr = String::new();
    let mut token = String::new();
    for _ in 0..6 {
        let line = lines.next().unwrap().unwrap();
        if let Some(u) = line.strip_prefix("modscope: listening on ") {
            proxy_url = u.to_string();
        }
        if let Some(a) = line.strip_prefix("# control API: http://") {
            admin_addr = a.trim_end_matches("/faults").to_string();
        }
        if let Some(t) = line.strip_prefix("export MODSCOPE_ADMIN=") {
            token = t.split_once("MODSCOPE_ADMIN_TOKEN=").unwrap().1.to_string();
        }
    }
    assert!(!admin_addr.is_empty() && !proxy_url.is_empty() && !token.is_empty());
    let token_file = dir.path().join("ca").join(format!(
        "admin-{}.token",
        admin_addr.rsplit(':').next().unwrap()
    ));
    assert_eq!(std::fs::read_to_string(&token_file).unwrap().trim(), token);
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the token file is private: {mode:o}");
    }

    assert_eq!(
        admin(&admin_addr, &token, "GET", "/healthz", "").await.0,
        200
    );
    let (status, body) = admin(
        &admin_addr,
        &token,
        "PUT",
        "/faults",
        "[[rule]]\nname = \"oops\"\nprobability = 2.0\nrespond = { status = 503 }\n",
    )
    .await;
    assert_eq!(status, 400, "an invalid update is refused: {body}");
    let (status, body) = admin(
        &admin_addr,
        &token,
        "POST",
        "/faults",
        "\"name=zips-down,kind=zip:503\"",
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (_, listed) = admin(&admin_addr, &token, "GET", "/faults", "").await;
    assert!(listed.contains("zips-down"), "{listed}");

    let bundle = dir.path().join("ca").join("bundle.pem");
    for (i, go) in gos.iter().enumerate() {
        if i > 0 {
            // The previous go's second round removed the rule: toggle it on again.
            let (status, body) = admin(
                &admin_addr,
                &token,
                "POST",
                "/faults",
                "\"name=zips-down,kind=zip:503\"",
            )
            .await;
            assert_eq!(status, 201, "{body}");
        }
        for (round, want_success) in [(1, false), (2, true)] {
            if round == 2 {
                let (status, body) =
                    admin(&admin_addr, &token, "DELETE", "/faults/zips-down", "").await;
                assert_eq!(status, 200, "{body}");
            }
            let run_dir = TempDir::new("admin-go");
            let app = write_app(run_dir.path(), &modules);
            let mut cmd = Command::new(go);
            go_env(&mut cmd, run_dir.path(), "https://proxy.golang.org");
            cmd.current_dir(&app)
                .env("HTTPS_PROXY", &proxy_url)
                .env("SSL_CERT_FILE", &bundle)
                .args(["mod", "download"]);
            let ran = run_bounded(cmd, LIMIT).await;
            assert_eq!(ran.success, want_success, "round {round}:\n{}", ran.stderr);
            if !want_success {
                assert!(
                    ran.stderr.contains("503 Service Unavailable"),
                    "{}",
                    ran.stderr
                );
            }
        }
    }
    let (_, stats) = admin(&admin_addr, &token, "GET", "/stats", "").await;
    assert!(stats.contains("\"exchanges\""), "{stats}");
    assert_eq!(
        admin(&admin_addr, &token, "POST", "/reset", "").await.0,
        200
    );
    let (_, listed) = admin(&admin_addr, &token, "GET", "/faults", "").await;
    assert!(!listed.contains("zips-down"));
    child.kill().ok();
    child.wait().ok();
}

#[tokio::test]
async fn http11_resets_are_tcp_resets_and_closes_are_clean() {
    tokio::time::timeout(LIMIT, async {
        let fx = fixture_with(&[
            "path=/bytes/7:reset",
            "path=/bytes/8:stall=10ms,then=close",
            "path=/bytes/9:stall=10ms,then=reset",
        ])
        .await;
        let chain = |e: &(dyn std::error::Error + 'static)| {
            let mut text = format!("{e:?}");
            let mut source = e.source();
            while let Some(s) = source {
                text.push_str(&format!(" / {s:?}"));
                source = s.source();
            }
            text
        };
        for (path, want_reset) in [("/bytes/7", true), ("/bytes/8", false), ("/bytes/9", true)] {
            let mut sender = fx
                .client
                .connect(GOPROXY_HOST, 443, Alpn::H1)
                .await
                .unwrap();
            let err = sender
                .send(get_request(&url(path).parse().unwrap()))
                .await
                .unwrap_err();
            let text = chain(&err);
            assert_eq!(
                text.contains("ConnectionReset"),
                want_reset,
                "{path}: {text}"
            );
        }
    })
    .await
    .unwrap();
}
