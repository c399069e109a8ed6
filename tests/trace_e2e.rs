//! Recording: real go through `modscope run --record`, the HAR contract, bodies, crash
//! safety (kill -9), redaction, and `modscope summary` on good and broken traces.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{
    go_binaries, go_env, modscope_ca, run_bounded, spawn_proxy, write_app, TempDir, GOPROXY_HOST,
    MODSCOPE,
};
use modscope::testkit::client::{drain, get_request, read_whole, Alpn, ProxiedClient};
use modscope::testkit::modules::default_modules;
use modscope::testkit::origin::{Origin, OriginOptions};
use modscope::trace::{entry_body, load_trace, validate_har_1_2};

const LIMIT: Duration = Duration::from_secs(180);

#[tokio::test(flavor = "multi_thread")]
async fn go_download_is_recorded_entry_by_entry() {
    for go in go_binaries() {
        let dir = TempDir::new("record-go");
        let modules = default_modules();
        let origin = Origin::start(modules.clone(), OriginOptions::default())
            .await
            .unwrap();
        let ca_file = dir.path().join("origin-ca.pem");
        std::fs::write(&ca_file, origin.ca_pem()).unwrap();
        let app = write_app(dir.path(), &modules);
        let trace_dir = dir.path().join("trace");
        let mut cmd = Command::new(MODSCOPE);
        go_env(&mut cmd, dir.path(), "https://proxy.golang.org");
        cmd.current_dir(&app).args([
            "run",
            "--ca-dir",
            dir.path().join("ca").to_str().unwrap(),
            "--upstream-ca",
            ca_file.to_str().unwrap(),
            "--connect-to",
            &format!("proxy.golang.org:443:127.0.0.1:{}", origin.addr.port()),
            "--record",
            trace_dir.to_str().unwrap(),
            "--",
            go.to_str().unwrap(),
            "mod",
            "download",
            "-x",
        ]);
        let ran = run_bounded(cmd, LIMIT).await;
        assert!(ran.success, "{}", ran.stderr);
        assert!(
            ran.stderr.contains("modscope summary:"),
            "run prints the summary at the end:\n{}",
            ran.stderr
        );

        // One entry per request go reports having made (`# get URL: 200 OK (...)`).
        let mut go_gets: Vec<String> = ran
            .stderr
            .lines()
            .filter_map(|l| l.strip_prefix("# get "))
            .filter_map(|l| l.split_once(": ").map(|(url, _)| url.to_string()))
            .collect();
        go_gets.sort();
        let raw = std::fs::read_to_string(trace_dir.join("trace.har")).unwrap();
        let doc: serde_json::Value = serde_json::from_str(&raw).unwrap();
        let problems = validate_har_1_2(&doc);
        assert!(problems.is_empty(), "{problems:#?}");
        let trace = load_trace(&trace_dir).unwrap();
        assert!(trace.problems.is_empty(), "{:?}", trace.problems);
        let mut urls: Vec<String> = trace
            .entries
            .iter()
            .map(|e| e.request.url.clone())
            .collect();
        urls.sort();
        assert_eq!(urls, go_gets);

        let mut connections = std::collections::HashMap::new();
        for e in &trace.entries {
            // _go decoding matches the URL.
            let go_facts = e.go.as_ref().unwrap();
            let kind = go_facts["kind"].as_str().unwrap();
            let url = &e.request.url;
            let want = ["list", "info", "mod", "zip"]
                .into_iter()
                .find(|k| url.ends_with(&format!(".{k}")) || url.ends_with(&format!("/{k}")))
                .unwrap();
            assert_eq!(kind, want, "{url}");
            if url.contains("%21greeting") {
                assert_eq!(go_facts["module"], "example.com/Greeting");
            }
            assert_eq!(go_facts["base"], "https://proxy.golang.org");
            // Timings: non-negative phases that add up; ssl inside connect.
            let t = &e.timings;
            let sum: f64 = [t.blocked, t.dns, t.connect, t.send, t.wait, t.receive]
                .iter()
                .filter(|v| **v >= 0.0)
                .sum();
            assert!(
                (e.time - sum).abs() < 0.01,
                "{url}: time {} != {sum}",
                e.time
            );
            assert!(t.send >= 0.0 && t.wait >= 0.0 && t.receive >= 0.0);
            if t.ssl >= 0.0 {
                assert!(t.connect >= t.ssl);
            }
            connections
                .entry(e.connection.clone().unwrap())
                .or_insert_with(Vec::new)
                .push(t.connect);
            // Upstream TLS details match the fixture's certificate.
            let tls = e.tls.as_ref().unwrap();
            let up = tls.upstream.as_ref().unwrap();
            assert!(up.verified && up.version.is_some() && up.cipher.is_some());
            assert!(up.certificates[0]
                .dns_names
                .contains(&GOPROXY_HOST.to_string()));
            assert!(up.certificates[0]
                .issuer
                .contains("modscope test origin CA"));
            assert_eq!(
                tls.client.as_ref().unwrap().sni.as_deref(),
                Some(GOPROXY_HOST)
            );
            // Bodies round-trip byte-exact.
            if url.ends_with(".zip") {
                let m = modules
                    .iter()
                    .find(|m| {
                        url.contains(&format!("{}.zip", m.version))
                            && e.go.as_ref().unwrap()["module"] == m.path.as_str()
                    })
                    .unwrap();
                assert_eq!(
                    entry_body(&trace, &e.response.content).unwrap(),
                    m.zip(),
                    "{url}"
                );
            }
        }
        // Exactly one entry per connection carries connect timings; reuse shows -1.
        for (conn, connects) in connections {
            assert_eq!(
                connects.iter().filter(|c| **c >= 0.0).count(),
                1,
                "connection {conn}: {connects:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_mid_download_keeps_every_completed_exchange() {
    tokio::time::timeout(LIMIT, async {
        let dir = TempDir::new("kill9");
        let origin = Origin::start(default_modules(), OriginOptions::default())
            .await
            .unwrap();
        let trace_dir = dir.path().join("trace");
        let (mut child, addr) = spawn_proxy(dir.path(), &origin).record(&trace_dir).start();
        let client = ProxiedClient::new(addr, &[modscope_ca(dir.path())]).unwrap();
        let mut sender = client.connect(GOPROXY_HOST, 443, Alpn::H2).await.unwrap();
        for i in 0..5 {
            let uri: http::Uri = format!("https://{GOPROXY_HOST}/bytes/{}", 1000 + i)
                .parse()
                .unwrap();
            read_whole(sender.send(get_request(&uri)).await.unwrap())
                .await
                .unwrap();
        }
        // Wait until the journal has them (the writer runs off the forwarding path).
        for _ in 0..100 {
            let lines = std::fs::read_to_string(trace_dir.join("journal.jsonl"))
                .unwrap_or_default()
                .lines()
                .count();
            if lines >= 5 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let uri: http::Uri = format!("https://{GOPROXY_HOST}/bytes/2000000000")
            .parse()
            .unwrap();
        let resp = sender.send(get_request(&uri)).await.unwrap();
        let big = tokio::spawn(drain(resp));
        tokio::time::sleep(Duration::from_millis(300)).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        assert!(
            big.await.unwrap().is_err(),
            "the download was cut by the kill"
        );

        assert!(
            !trace_dir.join("trace.har").exists(),
            "no clean shutdown, no trace.har"
        );
        let trace = load_trace(&trace_dir).unwrap();
        assert_eq!(trace.entries.len(), 5, "{:?}", trace.problems);
        assert!(
            trace.notes.iter().any(|n| n.contains("journal")),
            "{:?}",
            trace.notes
        );
        let out = run_bounded(
            {
                let mut c = Command::new(MODSCOPE);
                c.args(["summary", trace_dir.to_str().unwrap()]);
                c
            },
            Duration::from_secs(30),
        )
        .await;
        assert!(out.success, "{}", out.stderr);
        assert!(out.stdout.contains("5 requests"), "{}", out.stdout);

        // The body being written when the kill came is left as a temp file; recording
        // into the directory again removes it (its writer is gone).
        let temp_files = || -> Vec<String> {
            std::fs::read_dir(trace_dir.join("bodies"))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(".tmp-"))
                .collect()
        };
        assert!(
            !temp_files().is_empty(),
            "the kill left the big body's temp file"
        );
        let (mut again, _) = spawn_proxy(dir.path(), &origin).record(&trace_dir).start();
        let left = temp_files();
        again.kill().unwrap();
        again.wait().unwrap();
        assert!(
            left.is_empty(),
            "stale temp files survived reopening: {left:?}"
        );
        assert_eq!(load_trace(&trace_dir).unwrap().entries.len(), 5);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_are_redacted_unless_asked_and_embedding_round_trips() {
    tokio::time::timeout(LIMIT, async {
        let origin = Origin::start(default_modules(), OriginOptions::default())
            .await
            .unwrap();
        let m = default_modules().remove(0);
        for (flags, redacted) in [
            (vec![], true),
            (vec!["--no-redact", "--embed-bodies"], false),
        ] {
            let dir = TempDir::new("redact");
            let trace_dir = dir.path().join("trace");
            let (mut child, addr) = spawn_proxy(dir.path(), &origin)
                .record(&trace_dir)
                .args(&flags)
                .start();
            let client = ProxiedClient::new(addr, &[modscope_ca(dir.path())]).unwrap();
            let mut sender = client.connect(GOPROXY_HOST, 443, Alpn::H1).await.unwrap();
            let uri: http::Uri = format!("https://{GOPROXY_HOST}/{}/@v/{}.zip", m.path, m.version)
                .parse()
                .unwrap();
            let mut req = get_request(&uri);
            req.headers_mut()
                .insert("authorization", "Bearer s3cret-token".parse().unwrap());
            read_whole(sender.send(req).await.unwrap()).await.unwrap();
            drop(sender);
            // SIGTERM: clean shutdown writes trace.har.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let status = tokio::task::spawn_blocking(move || child.wait())
                .await
                .unwrap()
                .unwrap();
            assert!(status.success());
            let har = std::fs::read_to_string(trace_dir.join("trace.har")).unwrap();
            assert_eq!(har.contains("s3cret-token"), !redacted, "{flags:?}");
            let trace = load_trace(&trace_dir).unwrap();
            let content = &trace.entries[0].response.content;
            if !redacted {
                assert_eq!(content.encoding.as_deref(), Some("base64"), "zip embedded");
                // Remove the body files: the embedded copy alone must give the bytes back.
                std::fs::remove_dir_all(trace_dir.join("bodies")).unwrap();
            }
            assert_eq!(entry_body(&trace, content).unwrap(), m.zip());
        }
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn summary_reports_broken_traces_clearly() {
    let dir = TempDir::new("broken");
    let summary = |path: &Path| {
        let mut c = Command::new(MODSCOPE);
        c.args(["summary", path.to_str().unwrap()]);
        run_bounded(c, Duration::from_secs(30))
    };
    // A journal whose last line was cut mid-write.
    let good = r#"{"startedDateTime":"2026-01-01T00:00:00.000Z","time":1.0,"request":{"method":"GET","url":"https://proxy.golang.org/example.com/m/@v/list","httpVersion":"HTTP/2","cookies":[],"headers":[],"queryString":[],"headersSize":-1,"bodySize":0},"response":{"status":200,"statusText":"OK","httpVersion":"HTTP/2","cookies":[],"headers":[],"content":{"size":7,"mimeType":"text/plain","text":"v1.0.0\n"},"redirectURL":"","headersSize":-1,"bodySize":7},"cache":{},"timings":{"send":0,"wait":1,"receive":0}}"#;
    let journal_dir = dir.path().join("t1");
    std::fs::create_dir_all(&journal_dir).unwrap();
    std::fs::write(
        journal_dir.join("journal.jsonl"),
        format!("{good}\n{good}\n{}", &good[..80]),
    )
    .unwrap();
    let out = summary(&journal_dir).await;
    assert!(out.success, "{}", out.stderr);
    assert!(
        out.stderr.contains("journal.jsonl:3"),
        "names file and line: {}",
        out.stderr
    );
    assert!(out.stdout.contains("2 requests"), "{}", out.stdout);

    // JSON that is not HAR.
    let not_har = dir.path().join("package.json");
    std::fs::write(&not_har, r#"{"name":"x"}"#).unwrap();
    let out = summary(&not_har).await;
    assert!(!out.success);
    assert!(
        out.stderr.contains("package.json") && out.stderr.contains("not a HAR"),
        "{}",
        out.stderr
    );

    // A body file that went missing.
    let body_dir = dir.path().join("t2");
    std::fs::create_dir_all(&body_dir).unwrap();
    let entry = good.replace(r#""text":"v1.0.0\n""#, r#""_sha256":"0000000000000000000000000000000000000000000000000000000000000000","_file":"bodies/0000000000000000000000000000000000000000000000000000000000000000""#);
    std::fs::write(body_dir.join("journal.jsonl"), format!("{entry}\n")).unwrap();
    let trace = load_trace(&body_dir).unwrap();
    let err = entry_body(&trace, &trace.entries[0].response.content)
        .unwrap_err()
        .to_string();
    assert!(err.contains("bodies/0000"), "{err}");
    let out = summary(&body_dir).await;
    assert!(
        out.success && out.stdout.contains("1 request,"),
        "{}{}",
        out.stdout,
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn summary_fail_on_gates_ci_on_findings() {
    let dir = TempDir::new("fail-on");
    let entry = r#"{"startedDateTime":"2026-01-01T00:00:00.000Z","time":1.0,"request":{"method":"GET","url":"https://proxy.golang.org/example.com/m/@v/v1.0.0.zip","httpVersion":"HTTP/2","cookies":[],"headers":[],"queryString":[],"headersSize":-1,"bodySize":0},"response":{"status":502,"statusText":"Bad Gateway","httpVersion":"HTTP/2","cookies":[],"headers":[],"content":{"size":0,"mimeType":"text/plain"},"redirectURL":"","headersSize":-1,"bodySize":0},"cache":{},"timings":{"send":0,"wait":1,"receive":0}}"#;
    std::fs::write(dir.path().join("journal.jsonl"), format!("{entry}\n")).unwrap();
    for (flag, want) in [
        (None, Some(0)),
        (Some("error"), Some(1)),
        (Some("warning"), Some(1)),
    ] {
        let mut c = Command::new(MODSCOPE);
        c.args(["summary", dir.path().to_str().unwrap()]);
        if let Some(level) = flag {
            c.args(["--fail-on", level]);
        }
        let out = run_bounded(c, Duration::from_secs(30)).await;
        assert_eq!(out.code, want, "{flag:?}: {}{}", out.stdout, out.stderr);
        assert!(out.stdout.contains("502"), "{}", out.stdout);
    }
}
