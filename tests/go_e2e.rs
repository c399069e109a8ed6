//! The real go command through `modscope run`, against a loopback GOPROXY mapped from
//! proxy.golang.org with --connect-to. Skipped (with a message) when go is absent, unless
//! MODSCOPE_REQUIRE_GO=1.

mod common;

use std::time::Duration;

use common::gorun::go_mod_verify;
use common::{go_binaries, go_env, run_bounded, write_app, TempDir, MODSCOPE};
use modscope::ca::Validity;
use modscope::testkit::modules::default_modules;
use modscope::testkit::origin::{Origin, OriginOptions};

const GO_LIMIT: Duration = Duration::from_secs(180);

fn modscope_run(
    dir: &std::path::Path,
    origin: &Origin,
    app: &std::path::Path,
    go: &std::path::Path,
    godebug: Option<&str>,
) -> std::process::Command {
    let ca_file = dir.join("origin-ca.pem");
    std::fs::write(&ca_file, origin.ca_pem()).unwrap();
    let mut cmd = std::process::Command::new(MODSCOPE);
    go_env(&mut cmd, dir, "https://proxy.golang.org");
    if let Some(v) = godebug {
        cmd.env("GODEBUG", v);
    }
    cmd.current_dir(app).args([
        "run",
        "--ca-dir",
        dir.join("ca").to_str().unwrap(),
        "--upstream-ca",
        ca_file.to_str().unwrap(),
        "--connect-to",
        &format!("proxy.golang.org:443:127.0.0.1:{}", origin.addr.port()),
        "--",
        go.to_str().unwrap(),
        "mod",
        "download",
        "-x",
    ]);
    cmd
}

#[tokio::test(flavor = "multi_thread")]
async fn go_mod_download_through_modscope_over_h2_and_http11() {
    for go in go_binaries() {
        let modules = default_modules();
        for (godebug, want_version) in [(None, "HTTP/2.0"), (Some("http2client=0"), "HTTP/1.1")] {
            let dir = TempDir::new("go-download");
            let origin = Origin::start(modules.clone(), OriginOptions::default())
                .await
                .unwrap();
            let app = write_app(dir.path(), &modules);
            let ran = run_bounded(
                modscope_run(dir.path(), &origin, &app, &go, godebug),
                GO_LIMIT,
            )
            .await;
            assert!(
                ran.success,
                "go mod download failed ({godebug:?}):\n{}",
                ran.stderr
            );

            // Every module landed in the fresh cache, extracted.
            for m in [
                "example.com/hello@v1.1.0",
                "example.com/!greeting@v1.2.0",
                "example.com/hello/v2@v2.0.1",
                "example.com/bigdata@v1.0.0",
            ] {
                assert!(
                    dir.path().join("modcache").join(m).join("go.mod").is_file(),
                    "{m} missing from GOMODCACHE"
                );
            }
            // go itself verifies the cache against go.sum.
            let verified = go_mod_verify(&go, dir.path(), &app).await;
            assert!(
                verified.success && verified.stdout.contains("all modules verified"),
                "{}{}",
                verified.stdout,
                verified.stderr
            );

            // modscope printed a line per exchange, and the origin saw the expected protocol.
            assert!(
                ran.stderr.contains(
                    "200 GET https://proxy.golang.org/example.com/%21greeting/@v/v1.2.0.zip"
                ),
                "{}",
                ran.stderr
            );
            let seen = origin.requests();
            assert!(!seen.is_empty());
            assert!(
                seen.iter().all(|r| r.ends_with(want_version)),
                "{godebug:?}: {seen:#?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn go_shows_modscope_explanation_for_a_bad_upstream_certificate() {
    for go in go_binaries() {
        let dir = TempDir::new("go-expired");
        let now = time::OffsetDateTime::now_utc();
        let origin = Origin::start(
            default_modules(),
            OriginOptions {
                validity: Some(Validity {
                    not_before: now - time::Duration::days(400),
                    not_after: now - time::Duration::days(2),
                }),
                ..OriginOptions::default()
            },
        )
        .await
        .unwrap();
        let app = write_app(dir.path(), &default_modules());
        let ran = run_bounded(modscope_run(dir.path(), &origin, &app, &go, None), GO_LIMIT).await;
        assert!(!ran.success, "go must fail");
        assert_eq!(ran.code, Some(1), "modscope run exits with go's exit code");
        assert!(ran.stderr.contains("502 Bad Gateway"), "{}", ran.stderr);
        assert!(
            ran.stderr.contains("server response: modscope: TLS to proxy.golang.org:443 failed: certificate expired (notAfter"),
            "go prints modscope's text body as the server response:\n{}",
            ran.stderr
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn run_exits_with_the_child_code_and_sets_the_proxy_environment() {
    let dir = TempDir::new("run-env");
    let mut cmd = std::process::Command::new(MODSCOPE);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("NO_PROXY", "golang.org")
        .args(["run", "--quiet", "--ca-dir", dir.path().join("ca").to_str().unwrap(), "--", "sh", "-c"])
        .arg("echo HTTPS_PROXY=$HTTPS_PROXY; echo https_proxy=$https_proxy; echo SSL_CERT_FILE=$SSL_CERT_FILE; echo GIT=$GIT_SSL_CAINFO; exit 7");
    let ran = run_bounded(cmd, Duration::from_secs(30)).await;
    assert_eq!(ran.code, Some(7), "{}", ran.stderr);
    assert!(
        ran.stdout.contains("HTTPS_PROXY=http://127.0.0.1:"),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stdout.contains("https_proxy=http://127.0.0.1:"),
        "{}",
        ran.stdout
    );
    let bundle = dir.path().join("ca").join("bundle.pem");
    assert!(
        ran.stdout
            .contains(&format!("SSL_CERT_FILE={}", bundle.display())),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stdout.contains(&format!("GIT={}", bundle.display())),
        "{}",
        ran.stdout
    );
    let pem = std::fs::read_to_string(&bundle).unwrap();
    let ca = std::fs::read_to_string(dir.path().join("ca").join("ca.pem")).unwrap();
    assert!(pem.ends_with(&ca), "the bundle ends with the modscope CA");
    assert!(
        ran.stderr.contains("NO_PROXY") && ran.stderr.contains("proxy.golang.org"),
        "warns about NO_PROXY: {}",
        ran.stderr
    );
}
