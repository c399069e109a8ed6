//! `modscope run -- go ...` as the go end-to-end suites run it: go isolated in a temp
//! directory (`go_env`), modscope's CA in it, origins' names sent to loopback, the run
//! bounded in time:
//! `GoRun::new(dir, &app, goproxy).origin(pem, addr, HOSTS).record(&trace).download(&go)`.

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{go_env, run_bounded, Ran, MODSCOPE};

/// How long one go run under modscope may take before the test fails.
pub const GO_LIMIT: Duration = Duration::from_secs(180);

/// A `modscope run` command line being built; `go`/`download` finish it.
pub struct GoRun {
    cmd: Command,
    dir: PathBuf,
    /// Upstream CA files written so far (each origin gets a file of its own).
    cas: usize,
    limit: Duration,
}

impl GoRun {
    /// `modscope run --ca-dir DIR/ca` in `app`, go isolated in `dir` with `goproxy`.
    pub fn new(dir: &Path, app: &Path, goproxy: &str) -> GoRun {
        let mut cmd = Command::new(MODSCOPE);
        go_env(&mut cmd, dir, goproxy);
        cmd.current_dir(app)
            .arg("run")
            .arg("--ca-dir")
            .arg(dir.join("ca"));
        GoRun {
            cmd,
            dir: dir.to_path_buf(),
            cas: 0,
            limit: GO_LIMIT,
        }
    }

    /// Sets a variable of go's (and modscope's) environment.
    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Self {
        self.cmd.env(key, value);
        self
    }

    /// `GODEBUG`, when given (`http2client=0` makes go speak HTTP/1.1).
    pub fn godebug(self, value: Option<&str>) -> Self {
        match value {
            Some(v) => self.env("GODEBUG", v),
            None => self,
        }
    }

    /// More `modscope run` arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(args);
        self
    }

    pub fn record(self, trace: &Path) -> Self {
        self.args([OsStr::new("--record"), trace.as_os_str()])
    }

    pub fn replay(self, trace: &Path) -> Self {
        self.args([OsStr::new("--replay"), trace.as_os_str()])
    }

    /// One `--fault` per spec.
    pub fn faults(mut self, specs: &[&str]) -> Self {
        for spec in specs {
            self.cmd.arg("--fault").arg(spec);
        }
        self
    }

    /// Trusts an origin's CA upstream (`--upstream-ca`, from a file of its own in `dir`).
    pub fn upstream_ca(mut self, pem: &str) -> Self {
        let name = match self.cas {
            0 => "origin-ca.pem".to_string(),
            n => format!("origin-ca-{n}.pem"),
        };
        self.cas += 1;
        let file = self.dir.join(name);
        std::fs::write(&file, pem).unwrap();
        self.cmd.arg("--upstream-ca").arg(file);
        self
    }

    /// Sends each of `hosts` (`host`, meaning port 443, or `host:port`) to `addr`'s port
    /// on loopback (`--connect-to`).
    pub fn connect_to(mut self, addr: SocketAddr, hosts: &[&str]) -> Self {
        for host in hosts {
            let from = match host.contains(':') {
                true => host.to_string(),
                false => format!("{host}:443"),
            };
            self.cmd
                .arg("--connect-to")
                .arg(format!("{from}:127.0.0.1:{}", addr.port()));
        }
        self
    }

    /// Both: `hosts` go to an origin whose CA is trusted.
    pub fn origin(self, ca_pem: &str, addr: SocketAddr, hosts: &[&str]) -> Self {
        self.upstream_ca(ca_pem).connect_to(addr, hosts)
    }

    /// The finished command: modscope runs `go ARGS`.
    pub fn go(mut self, go: &Path, args: &[&str]) -> Command {
        self.cmd.arg("--").arg(go).args(args);
        self.cmd
    }

    /// How long `download` may take (default `GO_LIMIT`).
    pub fn within(mut self, limit: Duration) -> Self {
        self.limit = limit;
        self
    }

    /// Runs `go mod download` under modscope, within the limit.
    pub async fn download(self, go: &Path) -> Ran {
        let limit = self.limit;
        run_bounded(self.go(go, &["mod", "download"]), limit).await
    }
}

/// `go mod verify` of `app` against the module cache of `dir`, offline (GOPROXY=off).
pub async fn go_mod_verify(go: &Path, dir: &Path, app: &Path) -> Ran {
    let mut verify = Command::new(go);
    go_env(&mut verify, dir, "off");
    verify.current_dir(app).args(["mod", "verify"]);
    run_bounded(verify, GO_LIMIT).await
}

/// Empties the module cache of `dir` (go makes it read-only, hence the chmod).
pub fn fresh_cache(dir: &Path) {
    let _ = Command::new("chmod")
        .args(["-R", "u+w"])
        .arg(dir.join("modcache"))
        .status();
    let _ = std::fs::remove_dir_all(dir.join("modcache"));
}
