//! Go forensics against the real go (Debian's 1.19 and a current one): the recorded
//! `_go.h1` equals go's own Sum/GoModSum, a re-tagged mirror is named with both hashes,
//! a refused credential is explained without printing it, a toolchain download is
//! recorded and verified, and `--retry-transient` reruns only transient failures.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use common::gorun::{GoRun, GO_LIMIT};
use common::{
    go_binaries, go_new_binary, go_version, run_bounded, write_app, Ran, TempDir, MODSCOPE,
};
use modscope::testkit::modules::{default_modules, SyntheticModule};
use modscope::testkit::origin::{Origin, OriginOptions};
use modscope::testkit::sumdb::SumDb;
use modscope::trace::load_trace;

/// `modscope run --record DIR/trace` in `app` with GOPROXY=`goproxy`, each origin's
/// hosts sent to it.
fn modscope_go(dir: &Path, app: &Path, goproxy: &str, origins: &[(&Origin, &[&str])]) -> GoRun {
    let mut run = GoRun::new(dir, app, goproxy).record(&dir.join("trace"));
    for (origin, hosts) in origins {
        run = run.origin(origin.ca_pem(), origin.addr, hosts);
    }
    run
}

/// `modscope verify` of the recorded trace against the app's go.sum.
async fn verify_against_go_sum(dir: &Path, app: &Path) -> Ran {
    let mut verify = Command::new(MODSCOPE);
    verify
        .arg("verify")
        .arg(dir.join("trace"))
        .arg("--go-sum")
        .arg(app.join("go.sum"));
    run_bounded(verify, GO_LIMIT).await
}

fn recorded_go(dir: &Path) -> Vec<serde_json::Value> {
    load_trace(&dir.join("trace"))
        .unwrap()
        .entries
        .into_iter()
        .filter_map(|e| e.go)
        .collect()
}

fn h1_of(go: &[serde_json::Value], module: &str, version: &str, file: &str) -> Option<String> {
    go.iter()
        .find(|g| g["module"] == module && g["version"] == version && g["file"] == file)
        .and_then(|g| g["h1"].as_str().map(str::to_string))
}

#[tokio::test(flavor = "multi_thread")]
async fn recorded_h1_equals_go_sum_and_go_mod_sum_of_go_mod_download_json() {
    for go in go_binaries() {
        let version = go_version(&go);
        let dir = TempDir::new("h1-vs-go");
        let modules = default_modules();
        // Deflated zips, as proxy.golang.org serves them.
        let origin = Origin::start(
            modules.clone(),
            OriginOptions {
                deflate_zips: true,
                ..OriginOptions::default()
            },
        )
        .await
        .unwrap();
        let app = write_app(dir.path(), &modules);
        let cmd = modscope_go(
            dir.path(),
            &app,
            "https://proxy.golang.org",
            &[(&origin, &["proxy.golang.org"])],
        )
        .go(&go, &["mod", "download", "-json"]);
        let ran = run_bounded(cmd, GO_LIMIT).await;
        assert!(ran.success, "{version}: {}", ran.stderr);
        let recorded = recorded_go(dir.path());
        let mut compared = 0;
        for doc in serde_json::Deserializer::from_str(&ran.stdout).into_iter::<serde_json::Value>()
        {
            let doc = doc.unwrap();
            let (path, v) = (
                doc["Path"].as_str().unwrap(),
                doc["Version"].as_str().unwrap(),
            );
            assert_eq!(
                h1_of(&recorded, path, v, "zip").as_deref(),
                doc["Sum"].as_str(),
                "{version}: zip of {path}@{v}"
            );
            assert_eq!(
                h1_of(&recorded, path, v, "mod").as_deref(),
                doc["GoModSum"].as_str(),
                "{version}: go.mod of {path}@{v}"
            );
            compared += 1;
        }
        assert!(
            compared >= 4,
            "{version}: only {compared} modules in {}",
            ran.stdout
        );
        // verify agrees: every file matches the app's go.sum.
        let v = verify_against_go_sum(dir.path(), &app).await;
        assert!(v.success, "{version}: {}{}", v.stdout, v.stderr);
        assert!(!v.stdout.contains("MISMATCH"), "{}", v.stdout);
        assert!(v.stdout.contains("ok (go.sum"), "{}", v.stdout);
    }
}

/// The default modules with `example.com/hello v1.1.0` re-tagged: same version, other code.
fn retagged(modules: &[SyntheticModule]) -> Vec<SyntheticModule> {
    modules
        .iter()
        .cloned()
        .map(|mut m| {
            if m.path == "example.com/hello" && m.version == "v1.1.0" {
                for (name, data) in m.files.iter_mut() {
                    if name.ends_with(".go") {
                        data.extend_from_slice(b"\n// re-tagged\n");
                    }
                }
                m.files
                    .push(("backdoor.go".into(), b"package hello\n".to_vec()));
            }
            m
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retagged_mirror_is_named_with_both_hashes_and_the_files_that_differ() {
    for go in go_binaries() {
        let version = go_version(&go);
        let dir = TempDir::new("retagged");
        let modules = default_modules();
        let honest = Origin::start(modules.clone(), OriginOptions::default())
            .await
            .unwrap();
        let mirror = Origin::start(
            retagged(&modules),
            OriginOptions {
                names: vec!["mirror.example".into()],
                ..OriginOptions::default()
            },
        )
        .await
        .unwrap();
        let app = write_app(dir.path(), &modules);
        let origins: [(&Origin, &[&str]); 2] = [
            (&honest, &["proxy.golang.org"]),
            (&mirror, &["mirror.example"]),
        ];
        let ran = modscope_go(dir.path(), &app, "https://mirror.example", &origins)
            .download(&go)
            .await;
        assert!(!ran.success, "{version}: go must refuse the re-tagged zip");
        // go prints it on a line of its own; the finding's advice quotes it in a sentence.
        assert!(
            ran.stderr.lines().any(|l| l.trim() == "SECURITY ERROR"),
            "{version}: {}",
            ran.stderr
        );
        assert!(
            ran.stderr.contains("[checksum-mismatch]"),
            "{version}: {}",
            ran.stderr
        );
        let bad = modules
            .iter()
            .find(|m| m.path == "example.com/hello" && m.version == "v1.1.0")
            .unwrap();
        let evil = retagged(&modules)
            .into_iter()
            .find(|m| m.path == "example.com/hello" && m.version == "v1.1.0")
            .unwrap();
        let title = format!(
            "mirror.example served example.com/hello@v1.1.0.zip with {}, but go.sum",
            evil.zip_hash()
        );
        assert!(ran.stderr.contains(&title), "{version}: {}", ran.stderr);
        // The go.sum hash on the finding's own detail line (go's "go.sum:" line has it too).
        assert!(
            ran.stderr
                .lines()
                .any(|l| l.contains("detail: served by mirror.example")
                    && l.contains(&bad.zip_hash())),
            "{version}: {}",
            ran.stderr
        );
        assert!(
            ran.stderr.contains("Verdict: permanent"),
            "{version}: {}",
            ran.stderr
        );

        let v = verify_against_go_sum(dir.path(), &app).await;
        assert_eq!(v.code, Some(1), "{version}: {}{}", v.stdout, v.stderr);
        assert!(v.stdout.contains("MISMATCH"), "{}", v.stdout);

        // The honest copy into the same trace (fresh module cache): the two zips are diffed.
        let ran = modscope_go(dir.path(), &app, "https://proxy.golang.org", &origins)
            .args(["--quiet"])
            .env("GOMODCACHE", dir.path().join("modcache2"))
            .download(&go)
            .await;
        assert!(ran.success, "{version}: {}", ran.stderr);
        let mut summary = Command::new(MODSCOPE);
        summary
            .args(["summary", "--json"])
            .arg(dir.path().join("trace"))
            .arg("--go-sum")
            .arg(app.join("go.sum"));
        let s = run_bounded(summary, GO_LIMIT).await;
        let doc: serde_json::Value = serde_json::from_str(&s.stdout).unwrap();
        assert_eq!(doc["verdict"], "permanent", "{}", s.stdout);
        let finding = doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["cause"] == "checksum-mismatch" && f["host"] == "mirror.example")
            .unwrap_or_else(|| panic!("{version}: {}", s.stdout));
        let ev = &finding["evidence"];
        assert_eq!(ev["module"], "example.com/hello");
        assert_eq!(ev["served"], evil.zip_hash().as_str());
        assert_eq!(ev["expected"], bad.zip_hash().as_str());
        let files: Vec<(String, serde_json::Value, serde_json::Value)> = ev["differing_files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    d["name"].as_str().unwrap().to_string(),
                    d["served_size"].clone(),
                    d["other_size"].clone(),
                )
            })
            .collect();
        assert!(
            files
                .iter()
                .any(|(n, _, other)| n == "backdoor.go" && other.is_null()),
            "{files:?}"
        );
        assert!(
            files
                .iter()
                .any(|(n, _, _)| n.ends_with(".go") && n != "backdoor.go"),
            "{files:?}"
        );
    }
}

/// A .netrc (0600) holding `machine` lines.
fn netrc(dir: &Path, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("netrc");
    std::fs::write(&path, body).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_credential_is_explained_without_printing_it() {
    let Some(go) = go_new_binary() else { return };
    let modules = vec![SyntheticModule::simple("example.com/hello", "v1.1.0", 0)];
    let origin = Origin::start(
        modules.clone(),
        OriginOptions {
            names: vec!["corp.example".into()],
            basic_auth: Some("alice:s3cret-token".into()),
            ..OriginOptions::default()
        },
    )
    .await
    .unwrap();
    let cases: [(&str, Option<&str>, &str, Option<&str>); 4] = [
        // (netrc, GOAUTH, expected text, expected cause)
        (
            "machine corp.example login alice password s3cret-token\n",
            None,
            "go#81253",
            Some("credentials-missing"),
        ),
        (
            "machine corp.example:8443 login alice password s3cret-token\n",
            Some("off"),
            "GOAUTH=off",
            Some("credentials-missing"),
        ),
        (
            "machine corp.example:8443 login alice password wrong-token\n",
            None,
            "credentials were sent but refused",
            Some("credentials-refused"),
        ),
        (
            "machine corp.example:8443 login alice password s3cret-token\n",
            None,
            "",
            None,
        ),
    ];
    for (body, goauth, want, cause) in cases {
        let dir = TempDir::new("auth");
        let app = write_app(dir.path(), &modules);
        let netrc = netrc(dir.path(), body);
        let mut run = GoRun::new(dir.path(), &app, "https://corp.example:8443")
            .env("NETRC", &netrc)
            .origin(origin.ca_pem(), origin.addr, &["corp.example:8443"]);
        if let Some(v) = goauth {
            run = run.env("GOAUTH", v);
        }
        let ran = run.download(&go).await;
        match cause {
            None => assert!(ran.success, "{body}: {}", ran.stderr),
            Some(cause) => {
                assert!(!ran.success, "{body}: go must fail");
                assert!(ran.stderr.contains("401 Unauthorized"), "{}", ran.stderr);
                assert!(
                    ran.stderr.contains(&format!("[{cause}]")),
                    "{body}: {}",
                    ran.stderr
                );
                assert!(ran.stderr.contains(want), "{body}: {}", ran.stderr);
            }
        }
        assert!(
            !ran.stderr.contains("s3cret") && !ran.stderr.contains("wrong-token"),
            "a secret was printed: {}",
            ran.stderr
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_toolchain_download_is_recorded_and_verified_against_the_checksum_database() {
    let Some(go) = go_new_binary() else { return };
    let dir = TempDir::new("toolchain");
    // A tiny fake toolchain: go switches to it because go.mod asks for go 1.99.0, checks
    // it against the checksum database, then runs its bin/go.
    let mut fake =
        SyntheticModule::simple("golang.org/toolchain", "v0.0.1-go1.99.0.linux-amd64", 0);
    fake.files = vec![
        ("go.mod".into(), b"module golang.org/toolchain\n".to_vec()),
        (
            "bin/go".into(),
            b"#!/bin/sh\necho \"fake go1.99.0: $*\"\n".to_vec(),
        ),
        ("VERSION".into(), b"go1.99.0\n".to_vec()),
        // go makes bin/, pkg/tool/ and lib/ executable after extracting, and needs all.
        ("pkg/tool/linux_amd64/vet".into(), b"#!/bin/sh\n".to_vec()),
        ("lib/wasm/go_js_wasm_exec".into(), b"#!/bin/sh\n".to_vec()),
        ("bin/gofmt".into(), b"#!/bin/sh\n".to_vec()),
    ];
    let db = Arc::new(SumDb::new("sum.golang.org", std::slice::from_ref(&fake)).unwrap());
    let origin = Origin::start(
        vec![fake.clone()],
        OriginOptions {
            names: vec!["proxy.golang.org".into(), "sum.golang.org".into()],
            sumdb: Some(db.clone()),
            ..OriginOptions::default()
        },
    )
    .await
    .unwrap();
    let app = dir.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("go.mod"), "module example.com/app\n\ngo 1.99.0\n").unwrap();
    let hosts: &[&str] = &["proxy.golang.org", "sum.golang.org"];
    let cmd = modscope_go(
        dir.path(),
        &app,
        "https://proxy.golang.org",
        &[(&origin, hosts)],
    )
    .env("GOTOOLCHAIN", "auto")
    .env("GOSUMDB", db.verifier_key())
    .go(&go, &["version"]);
    let ran = run_bounded(cmd, GO_LIMIT).await;
    assert!(
        ran.stdout.contains("fake go1.99.0: version"),
        "go must run the downloaded toolchain:\n{}\n{}",
        ran.stdout,
        ran.stderr
    );
    let recorded = recorded_go(dir.path());
    let zip = recorded
        .iter()
        .find(|g| g["kind"] == "toolchain" && g["file"] == "zip")
        .unwrap_or_else(|| panic!("no toolchain zip in {recorded:#?}"));
    assert_eq!(zip["h1"], fake.zip_hash().as_str());
    let mut verify = Command::new(MODSCOPE);
    verify.arg("verify").arg(dir.path().join("trace"));
    let v = run_bounded(verify, GO_LIMIT).await;
    assert!(v.success, "{}{}", v.stdout, v.stderr);
    assert!(
        v.stdout
            .contains("golang.org/toolchain@v0.0.1-go1.99.0.linux-amd64 zip")
            && v.stdout
                .contains("ok (the checksum database at proxy.golang.org/sumdb/sum.golang.org)"),
        "{}",
        v.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_transient_reruns_only_transient_failures() {
    let Some(go) = go_binaries().into_iter().next_back() else {
        return;
    };
    let modules = default_modules();
    let origin = Origin::start(modules.clone(), OriginOptions::default())
        .await
        .unwrap();
    // First zip request cut mid-body (transient), once; then a permanent 404, always.
    let cases = [
        ("reset-once", "reset", "retrying (1/2)", true),
        (
            "gone",
            "404",
            "not retrying: the verdict is permanent",
            false,
        ),
    ];
    for (name, action, want, succeeds) in cases {
        let dir = TempDir::new("retry");
        let app = write_app(dir.path(), &modules);
        let spec = match action {
            "reset" => format!("name={name},kind=zip,first=1:reset@100"),
            _ => format!("name={name},kind=zip:404"),
        };
        let ran = modscope_go(
            dir.path(),
            &app,
            "https://proxy.golang.org",
            &[(&origin, &["proxy.golang.org"])],
        )
        .args(["--retry-transient", "2"])
        .faults(&[&spec])
        .download(&go)
        .await;
        assert_eq!(ran.success, succeeds, "{name}: {}", ran.stderr);
        assert!(ran.stderr.contains(want), "{name}: {}", ran.stderr);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_private_module_sent_to_the_public_proxy_is_a_leak() {
    for go in go_binaries() {
        let version = go_version(&go);
        let dir = TempDir::new("leak");
        let modules = vec![SyntheticModule::simple("example.com/hello", "v1.1.0", 0)];
        let origin = Origin::start(modules.clone(), OriginOptions::default())
            .await
            .unwrap();
        let app = write_app(dir.path(), &modules);
        // modscope (and the user) mean example.com/hello to be private, but the go that
        // runs does not see it: a wrapper clears GOPRIVATE, as a CI step might.
        let script = format!("GOPRIVATE= exec {} mod download", go.display());
        let cmd = GoRun::new(dir.path(), &app, "https://proxy.golang.org")
            .env("GOPRIVATE", "example.com/hello")
            .origin(origin.ca_pem(), origin.addr, &["proxy.golang.org"])
            .go(Path::new("sh"), &["-c", &script]);
        let ran = run_bounded(cmd, GO_LIMIT).await;
        assert!(ran.success, "{version}: {}", ran.stderr);
        assert!(
            ran.stderr.contains("[private-path-leak]"),
            "{version}: {}",
            ran.stderr
        );
        // One line names the leak and the module (the summary's tables name modules too).
        assert!(
            ran.stderr.lines().any(|l| l.contains(
                "private path leak to a public module proxy proxy.golang.org: 3 requests for modules matching GOPRIVATE=example.com/hello"
            ) && l.contains("example.com/hello@v1.1.0")),
            "{version}: {}",
            ran.stderr
        );
        assert!(
            ran.stderr.contains("Verdict: permanent"),
            "{version}: {}",
            ran.stderr
        );
    }
}
