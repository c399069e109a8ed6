//! `--goproxy` mode: modscope stands in GOPROXY as a plain-HTTP loopback module proxy in
//! front of the real entries, so go trusts no CA. Real go (1.19 and a current one) through
//! `modscope run --goproxy` against loopback origins mapped with --connect-to.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::gorun::GoRun;
use common::{go_binaries, go_version, run_bounded, write_app, Ran, TempDir, MODSCOPE};
use modscope::testkit::modules::{app_requiring, default_modules};
use modscope::testkit::origin::{Origin, OriginOptions};
use modscope::testkit::sumdb::SumDb;
use modscope::trace::load_trace;

/// `modscope run --goproxy` in `app`, with GOPROXY=`goproxy`, the module cache
/// `modcache` and a child that trusts no CA at all (SSL_CERT_FILE is an empty file).
fn goproxy_run(dir: &Path, app: &Path, goproxy: &str, modcache: &str) -> GoRun {
    let empty = dir.join("trusts-nothing.pem");
    std::fs::write(&empty, "").unwrap();
    GoRun::new(dir, app, goproxy)
        .env("SSL_CERT_FILE", &empty)
        .env("GOMODCACHE", dir.join(modcache))
        .env("GOFLAGS", "-mod=mod -modcacherw")
        .args(["--goproxy"])
}

/// Every `.zip` under a module cache's download directory, by relative path.
fn cached_zips(modcache: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else if path.extension().is_some_and(|e| e == "zip") {
                let rel = path.strip_prefix(root).unwrap().to_path_buf();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(modcache, &modcache.join("cache/download"), &mut out);
    out
}

/// `run --goproxy --replay TRACE -- go mod download` into a fresh module cache, with the
/// origins gone and no CA: no miss, and the same zips, byte for byte.
async fn replay_offline_gives_the_same_zips(
    dir: &Path,
    app: &Path,
    go: &Path,
    trace: &Path,
    zips: &BTreeMap<PathBuf, Vec<u8>>,
) {
    let version = go_version(go);
    let rep = goproxy_run(dir, app, "https://proxy.golang.org", "modcache-replay")
        .replay(trace)
        .download(go)
        .await;
    assert!(rep.success, "{version}: {}", rep.stderr);
    assert!(
        rep.stderr.contains(", 0 misses,"),
        "{version}: {}",
        rep.stderr
    );
    let replayed = cached_zips(&dir.join("modcache-replay"));
    assert!(!zips.is_empty(), "{version}: nothing recorded");
    assert_eq!(
        replayed.keys().collect::<Vec<_>>(),
        zips.keys().collect::<Vec<_>>(),
        "{version}"
    );
    for (path, bytes) in zips {
        assert!(
            replayed[path] == *bytes,
            "{version}: {} differs",
            path.display()
        );
    }
}

fn origin_opts(names: &[&str]) -> OriginOptions {
    OriginOptions {
        names: names.iter().map(|n| n.to_string()).collect(),
        ..OriginOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn go_downloads_through_goproxy_mode_trusting_no_ca_and_replays_offline_byte_identical() {
    let modules = default_modules();
    for go in go_binaries() {
        let version = go_version(&go);
        let dir = TempDir::new("goproxy-mode");
        let origin = Origin::start(modules.clone(), origin_opts(&["proxy.golang.org"]))
            .await
            .unwrap();
        let app = write_app(dir.path(), &modules);
        let trace = dir.path().join("trace");
        let rec = goproxy_run(dir.path(), &app, "https://proxy.golang.org", "modcache-rec")
            .origin(origin.ca_pem(), origin.addr, &["proxy.golang.org"])
            .record(&trace)
            .download(&go)
            .await;
        assert!(rec.success, "{version}: {}", rec.stderr);
        let zips = cached_zips(&dir.path().join("modcache-rec"));
        // The module tree's zips (modules go needs only the go.mod of have none).
        assert!(zips.len() >= 4, "{version}: {:?}", zips.keys());
        // One decoded, timed entry per request the origin saw, holding the upstream URL
        // and the upstream TLS details.
        let seen = origin.requests();
        let loaded = load_trace(&trace).unwrap();
        assert_eq!(loaded.entries.len(), seen.len(), "{version}: {seen:#?}");
        let mut fresh_connections = 0;
        for e in &loaded.entries {
            assert!(
                e.request.url.starts_with("https://proxy.golang.org/"),
                "{version}: {}",
                e.request.url
            );
            assert_eq!(e.response.status, 200, "{version}: {}", e.request.url);
            let kind = e.go.as_ref().and_then(|g| g["kind"].as_str()).unwrap_or("");
            assert!(
                ["list", "info", "mod", "zip"].contains(&kind),
                "{version}: {} decoded as {kind:?}",
                e.request.url
            );
            assert!(e.time > 0.0, "{version}: untimed {}", e.request.url);
            let tls = e.tls.as_ref().expect("_tls on every goproxy-mode entry");
            let upstream = tls.upstream.as_ref().expect("upstream TLS details");
            assert!(
                upstream
                    .version
                    .as_deref()
                    .is_some_and(|v| v.starts_with("TLS")),
                "{version}: no upstream TLS version on {}: {upstream:?}",
                e.request.url
            );
            assert!(upstream.verified, "{version}");
            assert!(!upstream.certificates.is_empty(), "{version}");
            if e.timings.ssl > 0.0 {
                fresh_connections += 1;
            }
            // Go's requests reached modscope as plain HTTP: there is no client TLS.
            assert!(tls.client.is_none(), "{version}");
        }
        assert!(
            fresh_connections >= 1,
            "{version}: no entry carries a handshake"
        );

        // Offline: origin stopped, fresh module cache, no CA anywhere.
        origin.shutdown();
        drop(origin);
        replay_offline_gives_the_same_zips(dir.path(), &app, &go, &trace, &zips).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trace_recorded_by_the_intercepting_proxy_replays_in_goproxy_mode() {
    let modules = default_modules();
    for go in go_binaries() {
        let version = go_version(&go);
        let dir = TempDir::new("goproxy-cross");
        let origin = Origin::start(modules.clone(), origin_opts(&["proxy.golang.org"]))
            .await
            .unwrap();
        let app = write_app(dir.path(), &modules);
        let trace = dir.path().join("trace");
        // Recorded through HTTPS_PROXY with the modscope CA (the ordinary `run`).
        let rec = GoRun::new(dir.path(), &app, "https://proxy.golang.org")
            .env("GOMODCACHE", dir.path().join("modcache-rec"))
            .env("GOFLAGS", "-mod=mod -modcacherw")
            .record(&trace)
            .origin(origin.ca_pem(), origin.addr, &["proxy.golang.org"])
            .download(&go)
            .await;
        assert!(rec.success, "{version}: {}", rec.stderr);
        let zips = cached_zips(&dir.path().join("modcache-rec"));
        origin.shutdown();
        drop(origin);

        // Replayed with no CA, no network, in GOPROXY mode.
        replay_offline_gives_the_same_zips(dir.path(), &app, &go, &trace, &zips).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_goproxy_prints_the_export_line_and_serves_the_trace() {
    use std::ffi::OsStr;
    let dir = TempDir::new("goproxy-replay-cmd");
    let origin = Origin::start(default_modules(), origin_opts(&["proxy.golang.org"]))
        .await
        .unwrap();
    let ca_file = dir.path().join("origin-ca.pem");
    std::fs::write(&ca_file, origin.ca_pem()).unwrap();
    let (ca_dir, trace) = (dir.path().join("ca"), dir.path().join("trace"));
    let connect_to = format!("proxy.golang.org:443:127.0.0.1:{}", origin.addr.port());
    let goproxy = "https://proxy.golang.org,direct";
    let (guard, addr, _) = spawn_goproxy(
        &[
            OsStr::new("proxy"),
            OsStr::new("--goproxy"),
            OsStr::new("-q"),
            OsStr::new("--listen"),
            OsStr::new("127.0.0.1:0"),
            OsStr::new("--ca-dir"),
            ca_dir.as_os_str(),
            OsStr::new("--upstream-ca"),
            ca_file.as_os_str(),
            OsStr::new("--connect-to"),
            OsStr::new(&connect_to),
            OsStr::new("--record"),
            trace.as_os_str(),
        ],
        goproxy,
    );
    let info = "/proxy.golang.org/example.com/hello/@v/v1.1.0.info";
    let live = get_via_route(&addr, info);
    stop(guard);
    origin.shutdown();
    drop(origin);

    let (guard, addr, export) = spawn_goproxy(
        &[
            OsStr::new("replay"),
            OsStr::new("--goproxy"),
            OsStr::new("-q"),
            OsStr::new("--listen"),
            OsStr::new("127.0.0.1:0"),
            OsStr::new("--ca-dir"),
            ca_dir.as_os_str(),
            trace.as_os_str(),
        ],
        goproxy,
    );
    assert_eq!(
        export,
        format!("export GOPROXY='http://{addr}/proxy.golang.org,direct'")
    );
    let replayed = get_via_route(&addr, info);
    stop(guard);
    let body = |answer: &str| answer.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    assert!(body(&live).contains("v1.1.0"), "{live}");
    assert_eq!(body(&replayed), body(&live));
}

/// Runs go with `GOPROXY=goproxy` over two origins' names and one fault; returns the run
/// and the (host, status) of every recorded entry.
async fn fallback_case(go: &Path, goproxy: &str, fault: &str) -> (Ran, Vec<(String, u16)>) {
    let modules = default_modules();
    let dir = TempDir::new("goproxy-fallback");
    let origin = Origin::start(modules.clone(), origin_opts(&["a.example", "b.example"]))
        .await
        .unwrap();
    let app = write_app(dir.path(), &modules);
    let trace = dir.path().join("trace");
    let ran = goproxy_run(dir.path(), &app, goproxy, "modcache")
        .origin(origin.ca_pem(), origin.addr, &["a.example", "b.example"])
        .record(&trace)
        .faults(&[fault])
        .download(go)
        .await;
    let hosts = load_trace(&trace)
        .unwrap()
        .entries
        .iter()
        .map(|e| {
            let host = e.request.url.split('/').nth(2).unwrap_or("").to_string();
            (host, e.response.status)
        })
        .collect();
    (ran, hosts)
}

#[tokio::test(flavor = "multi_thread")]
async fn go_fallback_between_entries_is_unchanged_through_goproxy_mode() {
    for go in go_binaries() {
        let version = go_version(&go);
        // ',' : a 404 from a sends go to b.
        let (ran, hosts) = fallback_case(
            &go,
            "https://a.example,https://b.example",
            "host=a.example:respond=404",
        )
        .await;
        assert!(ran.success, "{version}: {}", ran.stderr);
        assert!(
            hosts.iter().any(|(h, s)| h == "a.example" && *s == 404),
            "{version}: {hosts:?}"
        );
        assert!(
            hosts.iter().any(|(h, s)| h == "b.example" && *s == 200),
            "{version}: {hosts:?}"
        );

        // ',' : a 502 from a stops go; b is never asked.
        let (ran, hosts) = fallback_case(
            &go,
            "https://a.example,https://b.example",
            "host=a.example:502",
        )
        .await;
        assert!(!ran.success, "{version}: {}", ran.stderr);
        // go's error names modscope's readable prefix for the entry and the status
        // (modscope's own lines name a.example and 502 too, so on one line of go's).
        assert!(
            ran.stderr.lines().any(|l| l.contains("http://127.0.0.1:")
                && l.contains("/a.example/")
                && l.contains("502 Bad Gateway")),
            "{version}: {}",
            ran.stderr
        );
        assert!(
            hosts.iter().all(|(h, _)| h == "a.example"),
            "{version}: {hosts:?}"
        );

        // '|' : any error from a sends go to b.
        let (ran, hosts) = fallback_case(
            &go,
            "https://a.example|https://b.example",
            "host=a.example:502",
        )
        .await;
        assert!(ran.success, "{version}: {}", ran.stderr);
        assert!(
            hosts.iter().any(|(h, s)| h == "a.example" && *s == 502),
            "{version}: {hosts:?}"
        );
        assert!(
            hosts.iter().any(|(h, s)| h == "b.example" && *s == 200),
            "{version}: {hosts:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_checksum_database_through_goproxy_mode_is_recorded_and_verified_by_go() {
    let modules = default_modules();
    for go in go_binaries() {
        let version = go_version(&go);
        let dir = TempDir::new("goproxy-sumdb");
        let db = Arc::new(SumDb::new("sum.golang.org", &modules).unwrap());
        let origin = Origin::start(
            modules.clone(),
            OriginOptions {
                names: vec!["proxy.golang.org".into()],
                sumdb: Some(db.clone()),
                sumdb_via_proxy: true,
                ..OriginOptions::default()
            },
        )
        .await
        .unwrap();
        // No go.sum: every hash has to come from the database, verified by go.
        let app = dir.path().join("app");
        std::fs::create_dir_all(&app).unwrap();
        std::fs::write(app.join("go.mod"), app_requiring(&modules).0).unwrap();
        let trace = dir.path().join("trace");
        let ran = goproxy_run(dir.path(), &app, "https://proxy.golang.org", "modcache")
            .origin(origin.ca_pem(), origin.addr, &["proxy.golang.org"])
            .record(&trace)
            .env("GOSUMDB", db.verifier_key())
            .download(&go)
            .await;
        assert!(ran.success, "{version}: {}", ran.stderr);
        let go_sum = std::fs::read_to_string(app.join("go.sum")).unwrap_or_default();
        let truth: String = modules.iter().map(|m| m.go_sum_lines()).collect();
        assert!(!go_sum.is_empty(), "{version}: go wrote no go.sum");
        assert!(
            go_sum.lines().all(|l| truth.lines().any(|t| t == l)),
            "{version}: {go_sum}"
        );
        let loaded = load_trace(&trace).unwrap();
        let kinds: Vec<(String, String)> = loaded
            .entries
            .iter()
            .map(|e| {
                let kind = e.go.as_ref().and_then(|g| g["kind"].as_str()).unwrap_or("");
                (kind.to_string(), e.request.url.clone())
            })
            .collect();
        for want in ["sumdb-supported", "sumdb-lookup", "sumdb-tile"] {
            assert!(
                kinds.iter().any(|(k, url)| k == want
                    && url.starts_with("https://proxy.golang.org/sumdb/sum.golang.org/")),
                "{version}: no {want}: {kinds:#?}"
            );
        }
    }
}

/// `modscope ARGS` with `GOPROXY` set, bounded; the command after `--` would create
/// `marker`, so a refusal must leave it absent.
async fn refused(dir: &Path, goproxy: &str, args: &[&str]) -> Ran {
    let marker = dir.join("child-ran");
    let mut cmd = Command::new(MODSCOPE);
    cmd.env("GOPROXY", goproxy)
        .env("MODSCOPE_HOME", dir.join("ca"))
        .args(args);
    if args.first() == Some(&"run") {
        cmd.args(["--", "touch", marker.to_str().unwrap()]);
    }
    let ran = run_bounded(cmd, Duration::from_secs(30)).await;
    assert!(!ran.success, "{args:?} with GOPROXY={goproxy:?} succeeded");
    assert!(!marker.exists(), "the child ran despite {goproxy:?}");
    ran
}

#[tokio::test(flavor = "multi_thread")]
async fn the_child_gets_only_goproxy_unless_intercept_is_asked_too() {
    let dir = TempDir::new("goproxy-env");
    let show = "echo \"GOPROXY=$GOPROXY HTTPS_PROXY=$HTTPS_PROXY SSL_CERT_FILE=$SSL_CERT_FILE\"";
    for intercept in [false, true] {
        let mut cmd = Command::new(MODSCOPE);
        cmd.env("GOPROXY", "https://proxy.golang.org,direct")
            .env_remove("HTTPS_PROXY")
            .env_remove("SSL_CERT_FILE")
            .args(["run", "--goproxy", "-q", "--ca-dir"])
            .arg(dir.path().join("ca"));
        if intercept {
            cmd.arg("--intercept");
        }
        cmd.args(["--", "sh", "-c", show]);
        let ran = run_bounded(cmd, Duration::from_secs(30)).await;
        assert!(ran.success, "{}", ran.stderr);
        let line = ran.stdout.trim();
        assert!(
            line.starts_with("GOPROXY=http://127.0.0.1:")
                && line.contains("/proxy.golang.org,direct "),
            "{line}"
        );
        assert_eq!(
            line.contains("HTTPS_PROXY=http://127.0.0.1:"),
            intercept,
            "{line}"
        );
        assert_eq!(line.ends_with("SSL_CERT_FILE="), !intercept, "{line}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_goproxy_input_is_refused_before_the_child_starts() {
    let dir = TempDir::new("goproxy-bad");
    let run = ["run", "--goproxy", "-q"];
    let table = [
        ("off", "GOPROXY=off"),
        ("direct", "names no proxy"),
        ("ftp://mirror.example/go", "not a URL"),
        ("https://ho st.example", "not a URL"),
    ];
    for (goproxy, want) in table {
        let ran = refused(dir.path(), goproxy, &run).await;
        assert!(ran.stderr.contains(want), "{goproxy}: {}", ran.stderr);
    }

    // An entry naming modscope's own address, and a port someone else holds.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    drop(taken);
    let listen = format!("127.0.0.1:{port}");
    let proxy = ["proxy", "--goproxy", "-q", "--listen", listen.as_str()];
    let ran = refused(dir.path(), &format!("http://127.0.0.1:{port}/x"), &proxy).await;
    assert!(
        ran.stderr.contains("points at modscope itself"),
        "{}",
        ran.stderr
    );

    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let held = format!("127.0.0.1:{}", holder.local_addr().unwrap().port());
    let proxy = ["proxy", "--goproxy", "-q", "--listen", held.as_str()];
    let ran = refused(dir.path(), "https://proxy.golang.org", &proxy).await;
    assert!(
        ran.stderr.contains(&format!("cannot listen on {held}")),
        "{}",
        ran.stderr
    );
}

/// `modscope ARGS` (`proxy` or `replay` with `--goproxy`) as a child with an explicit
/// GOPROXY; returns it with its address and its `export` line.
fn spawn_goproxy(args: &[&std::ffi::OsStr], goproxy: &str) -> (common::KillOnDrop, String, String) {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(MODSCOPE)
        .args(args)
        .env("GOPROXY", goproxy)
        .env_remove("SSLKEYLOGFILE")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let guard = common::KillOnDrop(Some(child));
    let (mut first, mut export) = (String::new(), String::new());
    out.read_line(&mut first).unwrap();
    out.read_line(&mut export).unwrap();
    let addr = first
        .trim()
        .strip_prefix("modscope: listening on http://")
        .unwrap_or_else(|| panic!("{first:?}"))
        .to_string();
    (guard, addr, export.trim().to_string())
}

/// SIGTERM (drain, write the trace) and wait.
fn stop(mut guard: common::KillOnDrop) {
    if let Some(mut child) = guard.0.take() {
        // SAFETY: kill(2) on the pid of our own child.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        child.wait().unwrap();
    }
}

/// One GET as go sends it to a `--goproxy` route: origin-form, `Host` = modscope.
fn get_via_route(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    write!(
        tcp,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        !answer.contains(addr),
        "modscope's address leaked upstream: {answer}"
    );
    answer
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_goproxy_prints_the_export_line_and_forwards_credentials_unrecorded() {
    use std::io::{BufRead, BufReader};
    let dir = TempDir::new("goproxy-proxy");
    let hosts = ["proxy.golang.org", "netrc.example", "goauth.example"];
    let origin = Origin::start(default_modules(), origin_opts(&hosts))
        .await
        .unwrap();
    let ca_file = dir.path().join("origin-ca.pem");
    std::fs::write(&ca_file, origin.ca_pem()).unwrap();
    // go's three sources of credentials: userinfo in the entry, .netrc, a GOAUTH command
    // (run with the entry's URL as its last argument).
    let netrc = dir.path().join("netrc");
    std::fs::write(&netrc, "machine netrc.example login bob password pw2\n").unwrap();
    let helper = dir.path().join("goauth-helper");
    std::fs::write(
        &helper,
        "#!/bin/sh\nprintf '%s\\n\\nAuthorization: Bearer tok3n\\n\\n' \"$1\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let trace = dir.path().join("trace");
    let mut cmd = Command::new(MODSCOPE);
    cmd.args([
        "proxy",
        "--goproxy",
        "-q",
        "--listen",
        "127.0.0.1:0",
        "--no-redact",
    ])
    .arg("--ca-dir")
    .arg(dir.path().join("ca"))
    .arg("--upstream-ca")
    .arg(&ca_file)
    .arg("--record")
    .arg(&trace);
    for host in hosts {
        cmd.arg("--connect-to")
            .arg(format!("{host}:443:127.0.0.1:{}", origin.addr.port()));
    }
    let mut child = cmd
        .env(
            "GOPROXY",
            "https://alice:s3cret@proxy.golang.org|https://netrc.example,https://goauth.example,direct",
        )
        .env("NETRC", &netrc)
        .env("GOAUTH", format!("netrc;{}", helper.display()))
        .env_remove("SSLKEYLOGFILE")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut err = child.stderr.take().unwrap();
    let guard = common::KillOnDrop(Some(child));
    let (mut first, mut export) = (String::new(), String::new());
    out.read_line(&mut first).unwrap();
    out.read_line(&mut export).unwrap();
    let addr = first
        .trim()
        .strip_prefix("modscope: listening on http://")
        .unwrap_or_else(|| panic!("{first:?}"))
        .to_string();
    assert_eq!(
        export.trim(),
        format!(
            "export GOPROXY='http://{addr}/proxy.golang.org|http://{addr}/netrc.example,http://{addr}/goauth.example,direct'"
        )
    );

    let cases = [
        // base64("alice:s3cret"), base64("bob:pw2")
        ("proxy.golang.org", "authorization: Basic YWxpY2U6czNjcmV0"),
        ("netrc.example", "authorization: Basic Ym9iOnB3Mg=="),
        ("goauth.example", "authorization: Bearer tok3n"),
    ];
    for (host, want) in cases {
        let answer = get_via_route(&addr, &format!("/{host}/headers"));
        assert!(answer.contains(want), "{host}: {answer}");
        // The origin was asked for its own name (HTTP/2 :authority, or Host over HTTP/1.1).
        assert!(
            answer.contains(&format!("GET https://{host}/headers"))
                || answer.contains(&format!("host: {host}")),
            "{answer}"
        );
    }

    // SIGTERM drains and writes the trace.
    stop(guard);
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut err, &mut stderr).unwrap();
    assert!(stderr.contains("[redacted]@proxy.golang.org"), "{stderr}");
    for secret in ["s3cret", "pw2", "tok3n"] {
        assert!(!stderr.contains(secret), "{secret} printed: {stderr}");
    }
    let loaded = load_trace(&trace).unwrap();
    assert_eq!(loaded.entries.len(), cases.len());
    for (e, (host, _)) in loaded.entries.iter().zip(cases) {
        assert_eq!(e.request.url, format!("https://{host}/headers"));
        let auth: Vec<&str> = e
            .request
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case("authorization"))
            .map(|h| h.value.as_str())
            .collect();
        assert_eq!(auth, ["[redacted]"], "{host}, even with --no-redact");
        // (The origin's echo of the headers is a response body: it holds them by design.)
        let request = serde_json::to_string(&e.request).unwrap();
        for secret in ["s3cret", "YWxpY2U6czNjcmV0", "Ym9iOnB3Mg==", "tok3n"] {
            assert!(!request.contains(secret), "{host}: {request}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn run_goproxy_says_when_go_went_direct() {
    let Some(go) = go_binaries().into_iter().next() else {
        return;
    };
    let modules = default_modules();
    let dir = TempDir::new("goproxy-direct");
    let origin = Origin::start(modules.clone(), origin_opts(&["a.example"]))
        .await
        .unwrap();
    let app = write_app(dir.path(), &modules);
    let ran = goproxy_run(dir.path(), &app, "https://a.example,direct", "modcache")
        .origin(origin.ca_pem(), origin.addr, &["a.example"])
        .faults(&["host=a.example:respond=404"])
        // go's direct fetch must stay on loopback: its discovery request goes to a closed
        // loopback port as its proxy (go resolves nothing itself then), and no VCS may run.
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .env("GOVCS", "*:off")
        .download(&go)
        .await;
    assert!(!ran.success, "{}", ran.stderr);
    // The note names the entry go fell back from (request lines name a.example too).
    assert!(
        ran.stderr
            .lines()
            .any(|l| l.contains("go fell back to `direct`") && l.contains("https://a.example/")),
        "{}",
        ran.stderr
    );
}
