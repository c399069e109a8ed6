//! The checksum database end to end: real go verifies modules against a signed database
//! (lookups, tree notes, tiles) through modscope, through the GOPROXY and directly, and
//! again offline from the recording; a database that disagrees with a zip stops go.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::{go_binaries, go_env, map_hosts_to, run_bounded, Ran, TempDir, MODSCOPE};
use modscope::testkit::modules::{app_requiring, default_modules, SyntheticModule};
use modscope::testkit::origin::{Origin, OriginOptions};
use modscope::testkit::sumdb::SumDb;
use modscope::trace::load_trace;

const LIMIT: Duration = Duration::from_secs(180);
const SUMDB: &str = "sum.golang.org";

/// go.mod requiring `modules`, and no go.sum: every hash has to come from the database.
fn app_without_go_sum(dir: &Path, modules: &[SyntheticModule]) -> std::path::PathBuf {
    let app = dir.join("app");
    std::fs::create_dir_all(&app).unwrap();
    let (go_mod, _) = app_requiring(modules);
    std::fs::write(app.join("go.mod"), go_mod).unwrap();
    app
}

fn origin_opts(db: Arc<SumDb>, via_proxy: bool) -> OriginOptions {
    OriginOptions {
        names: vec!["proxy.golang.org".into(), SUMDB.into()],
        sumdb: Some(db),
        sumdb_via_proxy: via_proxy,
        ..OriginOptions::default()
    }
}

/// `modscope run [extra] -- go mod download` with the database's key in GOSUMDB and a
/// GOPATH of its own (go caches verified tiles and notes there).
async fn go_download(
    go: &Path,
    dir: &Path,
    app: &Path,
    gopath: &str,
    db: &SumDb,
    origin: Option<&Origin>,
    extra: &[&str],
) -> Ran {
    let mut cmd = Command::new(MODSCOPE);
    go_env(&mut cmd, dir, "https://proxy.golang.org");
    cmd.env("GOSUMDB", db.verifier_key())
        .env("GOPATH", dir.join(gopath))
        .env("GOMODCACHE", dir.join(gopath).join("modcache"))
        .env("GOFLAGS", "-mod=mod -modcacherw");
    cmd.current_dir(app)
        .args(["run", "--ca-dir", dir.join("ca").to_str().unwrap()]);
    if let Some(o) = origin {
        map_hosts_to(&mut cmd, dir, o, &["proxy.golang.org", SUMDB]);
    }
    cmd.args(extra);
    cmd.args(["--", go.to_str().unwrap(), "mod", "download"]);
    run_bounded(cmd, LIMIT).await
}

#[tokio::test(flavor = "multi_thread")]
async fn go_verifies_against_a_signed_database_through_modscope_and_offline_from_the_trace() {
    for go in go_binaries() {
        let modules = default_modules();
        for via_proxy in [true, false] {
            let dir = TempDir::new("sumdb-go");
            let app = app_without_go_sum(dir.path(), &modules);
            let db = Arc::new(SumDb::new(SUMDB, &modules).unwrap());
            let origin = Origin::start(modules.clone(), origin_opts(db.clone(), via_proxy))
                .await
                .unwrap();
            let trace = dir.path().join("trace");
            let rec = go_download(
                &go,
                dir.path(),
                &app,
                "gopath-rec",
                &db,
                Some(&origin),
                &["--record", trace.to_str().unwrap()],
            )
            .await;
            assert!(rec.success, "via proxy {via_proxy}: {}", rec.stderr);
            // go.sum was filled from the database, and every line in it is true.
            let go_sum = std::fs::read_to_string(app.join("go.sum")).unwrap_or_default();
            let truth: String = modules.iter().map(|m| m.go_sum_lines()).collect();
            assert!(!go_sum.is_empty(), "go wrote no go.sum");
            for line in go_sum.lines() {
                assert!(
                    truth.lines().any(|t| t == line),
                    "untrue go.sum line {line}"
                );
            }
            let verified: std::collections::BTreeSet<String> = go_sum
                .lines()
                .filter_map(|l| {
                    let mut f = l.split(' ');
                    let (m, v) = (f.next()?, f.next()?);
                    Some(format!("{m}@{}", v.trim_end_matches("/go.mod")))
                })
                .collect();

            // The origin saw the database's endpoints on the expected host paths.
            let seen = origin.requests();
            let lookup_prefix = if via_proxy {
                format!("/sumdb/{SUMDB}/lookup/")
            } else {
                "/lookup/".to_string()
            };
            assert!(seen.iter().any(|r| r.contains(&lookup_prefix)), "{seen:#?}");
            assert!(
                seen.iter().any(|r| r.contains("/tile/8/0/000.p/")),
                "{seen:#?}"
            );

            // The trace names them in Go terms.
            let loaded = load_trace(&trace).unwrap();
            let kinds: Vec<(String, String)> = loaded
                .entries
                .iter()
                .filter_map(|e| {
                    let kind = e.go.as_ref()?["kind"].as_str()?.to_string();
                    Some((kind, e.request.url.clone()))
                })
                .collect();
            let lookups: Vec<&(String, String)> =
                kinds.iter().filter(|(k, _)| k == "sumdb-lookup").collect();
            assert_eq!(lookups.len(), verified.len(), "{kinds:#?}\n{verified:#?}");
            assert!(kinds.iter().any(|(k, _)| k == "sumdb-tile"), "{kinds:#?}");
            let host = if via_proxy { "proxy.golang.org" } else { SUMDB };
            assert!(
                lookups
                    .iter()
                    .all(|(_, url)| url.starts_with(&format!("https://{host}/"))),
                "{lookups:#?}"
            );

            // Offline, with nothing cached: go must verify the replayed notes and tiles.
            origin.shutdown();
            drop(origin);
            std::fs::remove_file(app.join("go.sum")).unwrap();
            let rep = go_download(
                &go,
                dir.path(),
                &app,
                "gopath-replay",
                &db,
                None,
                &["--replay", trace.to_str().unwrap()],
            )
            .await;
            assert!(rep.success, "via proxy {via_proxy}: {}", rep.stderr);
            assert!(rep.stderr.contains(", 0 misses,"), "{}", rep.stderr);
            let replayed_go_sum = std::fs::read_to_string(app.join("go.sum")).unwrap_or_default();
            assert_eq!(replayed_go_sum, go_sum, "the same hashes, verified offline");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_that_disagrees_with_the_zip_stops_go() {
    for go in go_binaries() {
        let modules = default_modules();
        let victim = &modules[0];
        let liar = SyntheticModule::simple(&victim.path, &victim.version, 99);
        assert_ne!(liar.zip_hash(), victim.zip_hash());
        let records = modules
            .iter()
            .map(|m| {
                let mut lines = m.go_sum_lines();
                if m.path == victim.path {
                    // The database's zip hash differs from what the proxy serves.
                    lines = lines.replace(&m.zip_hash(), &liar.zip_hash());
                }
                (format!("{}@{}", m.path, m.version), lines)
            })
            .collect();
        let db = Arc::new(SumDb::with_records(SUMDB, records).unwrap());
        let dir = TempDir::new("sumdb-liar");
        let app = app_without_go_sum(dir.path(), &modules);
        let origin = Origin::start(modules.clone(), origin_opts(db.clone(), true))
            .await
            .unwrap();
        let trace = dir.path().join("trace");
        let ran = go_download(
            &go,
            dir.path(),
            &app,
            "gopath",
            &db,
            Some(&origin),
            &["--record", trace.to_str().unwrap()],
        )
        .await;
        assert!(!ran.success, "{}", ran.stderr);
        // go's own "verifying" line names the module (every request URL does too).
        assert!(
            ran.stderr.lines().any(|l| l.contains("verifying")
                && l.contains(&victim.path)
                && l.contains("checksum mismatch")),
            "{}",
            ran.stderr
        );
        // The network was clean, and modscope names the hash that differed: the served
        // zip against the database's record in the same trace.
        assert!(
            ran.stderr.contains("[checksum-mismatch]")
                && ran
                    .stderr
                    .contains(&format!("proxy.golang.org served {}@", victim.path))
                && ran.stderr.contains(&format!(
                    "but the checksum database at proxy.golang.org/sumdb/sum.golang.org holds {}",
                    liar.zip_hash()
                )),
            "{}",
            ran.stderr
        );
    }
}
