//! `modscope bench`: direct vs through-modscope measurements in one run, on loopback,
//! against the synthetic origin (ratios, not absolute times, are the result).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use serde::Serialize;

use crate::cli::{BenchArgs, Measure};
use crate::procenv::which;
use crate::testkit::client::{drain, get_request, Alpn, ProxiedClient, Sender};
use crate::testkit::modules::{app_requiring, SyntheticModule};
use crate::testkit::origin::{Origin, OriginOptions};

mod wan;

impl BenchArgs {
    fn wants(&self, m: Measure) -> bool {
        // The WAN workload takes minutes, longer than all the others together.
        (self.only.is_empty() && m != Measure::Wan) || self.only.contains(&m)
    }
}

/// One measured figure.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub name: String,
    pub unit: String,
    pub direct: Option<f64>,
    pub modscope: f64,
    pub modscope_recording: Option<f64>,
    /// mitmproxy (`mitmdump`) in the same run, when it is installed.
    pub mitmproxy: Option<f64>,
    /// modscope / direct (or the absolute value when there is no direct column).
    pub ratio: Option<f64>,
    pub target: String,
    pub met: Option<bool>,
}

struct Plan {
    body: u64,
    reps: usize,
    sequential: usize,
    concurrent_conns: usize,
    per_conn: usize,
    hosts: usize,
    go_modules: usize,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                body: 16 << 20,
                reps: 1,
                sequential: 200,
                concurrent_conns: 16,
                per_conn: 20,
                hosts: 50,
                go_modules: 20,
            }
        } else {
            Plan {
                body: 256 << 20,
                reps: 3,
                sequential: 2000,
                concurrent_conns: 64,
                per_conn: 200,
                hosts: 1000,
                go_modules: 200,
            }
        }
    }
}

/// A `modscope proxy` child process.
struct ProxyChild {
    child: Child,
    /// Held open: the proxy keeps printing after its first line, and a closed pipe would
    /// make those writes fail.
    _stdout: std::io::BufReader<std::process::ChildStdout>,
    client: ProxiedClient,
    ca_pem: PathBuf,
    url: String,
}

impl ProxyChild {
    fn start(work: &Path, origin: &Origin, record: Option<&Path>) -> Result<ProxyChild> {
        // MODSCOPE_BENCH_PROXY runs another modscope build as the proxy children, so an
        // old and a new build are measured by the same harness (before/after tables).
        let exe = match std::env::var_os("MODSCOPE_BENCH_PROXY") {
            Some(exe) if !exe.is_empty() => PathBuf::from(exe),
            _ => std::env::current_exe().context("cannot find the modscope executable")?,
        };
        let ca_dir = work.join("ca");
        let origin_ca = work.join("origin-ca.pem");
        std::fs::create_dir_all(work)
            .with_context(|| format!("cannot create {}", work.display()))?;
        std::fs::write(&origin_ca, origin.ca_pem())
            .with_context(|| format!("cannot write {}", origin_ca.display()))?;
        // MODSCOPE_BENCH_WRAP runs each proxy child under a profiler, e.g.
        // "valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.%p": instruction counts
        // do not drift with the machine's noise the way seconds do.
        let mut cmd = match std::env::var("MODSCOPE_BENCH_WRAP") {
            Ok(wrap) if !wrap.trim().is_empty() => {
                let mut words = wrap.split_whitespace();
                let mut c = Command::new(words.next().unwrap_or_default());
                c.args(words).arg(exe);
                c
            }
            _ => Command::new(exe),
        };
        cmd.args([
            "proxy",
            "--quiet",
            "--shutdown-grace",
            "2",
            "--listen",
            "127.0.0.1:0",
            "--max-connections",
            "4096",
        ])
        .arg("--ca-dir")
        .arg(&ca_dir)
        .arg("--upstream-ca")
        .arg(&origin_ca)
        .args([
            "--connect-to",
            &format!("::127.0.0.1:{}", origin.addr.port()),
        ]);
        if let Some(dir) = record {
            cmd.arg("--record").arg(dir);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let mut line = String::new();
        use std::io::BufRead;
        let stdout = child.stdout.take().context("no stdout from the proxy")?;
        let mut stdout = std::io::BufReader::new(stdout);
        stdout.read_line(&mut line)?;
        let url = line
            .trim()
            .strip_prefix("modscope: listening on ")
            .context("the proxy did not start")?
            .to_string();
        let addr = url.trim_start_matches("http://").parse()?;
        let ca_pem = ca_dir.join("ca.pem");
        let roots = crate::tls::read_pem_certs(&ca_pem)?;
        Ok(ProxyChild {
            child,
            _stdout: stdout,
            client: ProxiedClient::new(addr, &roots)?,
            ca_pem,
            url,
        })
    }
}

impl Drop for ProxyChild {
    fn drop(&mut self) {
        // SIGTERM first, so a profiler wrapping the proxy (MODSCOPE_BENCH_WRAP) writes its
        // output; SIGKILL if it has not exited within a few seconds.
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: kill(2) on our own child's pid, with a valid signal number.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `mitmdump` (mitmproxy) as a child process, for the comparison column. It cannot map
/// host names like `--connect-to`, so the client tunnels to the origin's IP and port.
struct MitmChild {
    child: Child,
    client: ProxiedClient,
    origin_port: u16,
}

impl MitmChild {
    fn start(work: &Path, origin: &Origin) -> Result<MitmChild> {
        let mitmdump = which("mitmdump").context("mitmdump is not installed")?;
        let confdir = work.join("mitm");
        std::fs::create_dir_all(&confdir)?;
        let origin_ca = work.join("mitm-origin-ca.pem");
        std::fs::write(&origin_ca, origin.ca_pem())?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new(mitmdump)
            .args([
                "--listen-host",
                "127.0.0.1",
                "--listen-port",
                &port.to_string(),
                "-q",
            ])
            .arg("--set")
            .arg(format!("confdir={}", confdir.display()))
            .arg("--set")
            .arg(format!(
                "ssl_verify_upstream_trusted_ca={}",
                origin_ca.display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let ca = confdir.join("mitmproxy-ca-cert.pem");
        let started = Instant::now();
        while !(ca.exists() && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()) {
            if started.elapsed() > std::time::Duration::from_secs(30) {
                bail!("mitmdump did not start listening on 127.0.0.1:{port} within 30 s");
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let roots = crate::tls::read_pem_certs(&ca)?;
        let client = ProxiedClient::new(([127, 0, 0, 1], port).into(), &roots)?;
        Ok(MitmChild {
            child,
            client,
            origin_port: origin.addr.port(),
        })
    }
}

impl Drop for MitmChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU seconds the live threads of process `pid` have run so far, from each thread's
/// `schedstat` (nanoseconds), where `/proc/<pid>/stat` counts 10 ms ticks: too coarse
/// for the microseconds recording adds to one small request.
fn thread_cpu_seconds(pid: u32) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    let ns: u64 = tasks
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    ns as f64 / 1e9
}

/// User plus system CPU seconds used so far by a process (`self` or a pid).
fn cpu_seconds(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // The command name may hold spaces; the fields after it are fixed.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<f64>().ok()))
        .sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks / hz.max(1.0)
}

fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// The ways a measure is run: straight to the origin, through modscope without and with
/// recording, and through mitmproxy when it is installed.
struct Lanes<'a> {
    direct: Via<'a>,
    plain: Via<'a>,
    recording: Via<'a>,
    mitm: Option<Via<'a>>,
}

/// Connects straight to the origin (the "direct" column).
async fn direct(origin: &Origin, host: &str, alpn: Alpn) -> Result<Sender> {
    let tcp = tokio::net::TcpStream::connect(origin.addr).await?;
    tcp.set_nodelay(true)?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(origin.ca.cert_der().clone())?;
    let mut config = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = match alpn {
        Alpn::H1 => vec![b"http/1.1".to_vec()],
        _ => vec![b"h2".to_vec()],
    };
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from(host.to_string())?, tcp)
        .await?;
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let io = TokioIo::new(tls);
    Ok(if h2 {
        let (s, c) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await?;
        tokio::spawn(c);
        Sender::H2(s)
    } else {
        let (s, c) = hyper::client::conn::http1::handshake(io).await?;
        tokio::spawn(c);
        Sender::H1(s)
    })
}

enum Via<'a> {
    Direct(&'a Origin),
    Proxy(&'a ProxyChild),
    Mitm(&'a MitmChild),
}

impl Via<'_> {
    fn pid(&self) -> Option<u32> {
        match self {
            Via::Direct(_) => None,
            Via::Proxy(p) => Some(p.child.id()),
            Via::Mitm(m) => Some(m.child.id()),
        }
    }

    async fn connect(&self, host: &str, alpn: Alpn) -> Result<Sender> {
        match self {
            Via::Direct(o) => direct(o, host, alpn).await,
            Via::Proxy(p) => Ok(p.client.connect(host, 443, alpn).await?),
            Via::Mitm(m) => Ok(m.client.connect("127.0.0.1", m.origin_port, alpn).await?),
        }
    }
}

async fn get(sender: &mut Sender, url: &str) -> Result<u64> {
    let uri: http::Uri = url.parse()?;
    let resp = sender.send(get_request(&uri)).await?;
    let (status, n) = drain(resp).await.map_err(|e| anyhow::anyhow!(e))?;
    if status != 200 {
        bail!("{url} answered {status}");
    }
    Ok(n)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v.get(i).copied().unwrap_or(0.0)
}

/// CPU time used while a measure ran: the bench process (client and origin) plus the
/// proxy child, if any. On this shared 2-core machine CPU seconds are steadier than wall
/// time, and they bound what a ratio can reach: when direct already keeps both cores busy,
/// a proxied run cannot be faster than `direct CPU / proxied CPU` of direct.
struct CpuMeter {
    pid: Option<u32>,
    bench: f64,
    proxy: f64,
    /// The proxy's own threads, precisely (see [`thread_cpu_seconds`]).
    proxy_threads: f64,
}

impl CpuMeter {
    fn start(via: &Via<'_>) -> CpuMeter {
        let pid = via.pid();
        CpuMeter {
            pid,
            bench: cpu_seconds("self"),
            proxy: pid.map_or(0.0, |p| cpu_seconds(&p.to_string())),
            proxy_threads: pid.map_or(0.0, thread_cpu_seconds),
        }
    }

    /// CPU seconds of the proxy process alone since `start`.
    fn proxy_used(&self) -> f64 {
        self.pid
            .map_or(0.0, |p| thread_cpu_seconds(p) - self.proxy_threads)
    }

    /// CPU seconds of both processes since `start`.
    fn used(&self) -> f64 {
        let bench = cpu_seconds("self") - self.bench;
        let proxy = self
            .pid
            .map_or(0.0, |p| cpu_seconds(&p.to_string()) - self.proxy);
        bench + proxy
    }
}

/// A measure's median result and the CPU seconds its repetitions used, per repetition.
struct Measured {
    value: f64,
    cpu_per_rep: f64,
    /// Of which the proxy process's own.
    proxy_cpu_per_rep: f64,
}

/// MiB/s of one large download, median of `reps`.
async fn throughput(via: &Via<'_>, alpn: Alpn, size: u64, reps: usize) -> Result<Measured> {
    let mut rates = Vec::new();
    let (mut cpu, mut proxy_cpu) = (0.0, 0.0);
    for _ in 0..reps {
        let mut s = via.connect("proxy.golang.org", alpn).await?;
        let meter = CpuMeter::start(via);
        let started = Instant::now();
        let n = get(&mut s, &format!("https://proxy.golang.org/bytes/{size}")).await?;
        rates.push(n as f64 / (1 << 20) as f64 / started.elapsed().as_secs_f64());
        cpu += meter.used();
        proxy_cpu += meter.proxy_used();
    }
    Ok(Measured {
        value: median(rates),
        cpu_per_rep: cpu / reps as f64,
        proxy_cpu_per_rep: proxy_cpu / reps as f64,
    })
}

/// Per-request latencies (ms) of `n` sequential small GETs on one keep-alive connection,
/// the CPU microseconds each request cost (both processes) and of those the proxy's.
async fn sequential(via: &Via<'_>, n: usize) -> Result<(Vec<f64>, f64, f64)> {
    let mut s = via.connect("proxy.golang.org", Alpn::H1).await?;
    get(&mut s, "https://proxy.golang.org/bytes/100").await?;
    let mut lat = Vec::with_capacity(n);
    let meter = CpuMeter::start(via);
    for _ in 0..n {
        let t = Instant::now();
        get(&mut s, "https://proxy.golang.org/bytes/100").await?;
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let cpu_us = meter.used() * 1e6 / n as f64;
    Ok((lat, cpu_us, meter.proxy_used() * 1e6 / n as f64))
}

/// Requests per second over `conns` concurrent keep-alive connections.
async fn concurrent(via: &Via<'_>, conns: usize, per_conn: usize) -> Result<f64> {
    let mut senders = Vec::new();
    for _ in 0..conns {
        senders.push(via.connect("proxy.golang.org", Alpn::H1).await?);
    }
    let started = Instant::now();
    let tasks: Vec<_> = senders
        .into_iter()
        .map(|mut s| {
            tokio::spawn(async move {
                for _ in 0..per_conn {
                    get(&mut s, "https://proxy.golang.org/bytes/100").await?;
                }
                Ok::<_, anyhow::Error>(())
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    Ok((conns * per_conn) as f64 / started.elapsed().as_secs_f64())
}

/// Median ms for connect + TLS + one small GET to `hosts` distinct names.
async fn handshakes(via: &Via<'_>, hosts: usize) -> Result<f64> {
    let mut times = Vec::with_capacity(hosts);
    for i in 0..hosts {
        let host = format!("h{i}.bench.example");
        let t = Instant::now();
        let mut s = via.connect(&host, Alpn::H1).await?;
        get(&mut s, &format!("https://{host}/bytes/1")).await?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(median(times))
}

/// `program` (go, or modscope wrapping go) in an app requiring `modules`, with a fresh
/// module cache and go's environment isolated in `work`.
fn go_app_command(
    program: &Path,
    work: &Path,
    modules: &[SyntheticModule],
    goproxy: &str,
) -> Result<Command> {
    let app = work.join("app");
    std::fs::create_dir_all(&app)?;
    let (go_mod, go_sum) = app_requiring(modules);
    std::fs::write(app.join("go.mod"), go_mod)?;
    std::fs::write(app.join("go.sum"), go_sum)?;
    let cache = work.join(format!("modcache-{}", std::process::id()));
    let _ = Command::new("chmod")
        .args(["-R", "u+w"])
        .arg(&cache)
        .stderr(Stdio::null())
        .status();
    let _ = std::fs::remove_dir_all(&cache);
    let mut cmd = Command::new(program);
    cmd.current_dir(&app)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", work)
        .env("GOPATH", work.join("gopath"))
        .env("GOMODCACHE", &cache)
        .env("GOCACHE", work.join("gocache"))
        .env("GOFLAGS", "-modcacherw")
        .env("GOPROXY", goproxy)
        .env("GOSUMDB", "off")
        .env("GOTOOLCHAIN", "local");
    Ok(cmd)
}

/// Seconds `cmd` took; its stderr in the error when it failed.
fn timed(mut cmd: Command, what: &str) -> Result<f64> {
    let t = Instant::now();
    let out = cmd.output()?;
    if !out.status.success() {
        bail!("{what} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(t.elapsed().as_secs_f64())
}

/// Seconds for `go mod download` of `modules` with a fresh module cache.
fn go_download(
    go: &Path,
    work: &Path,
    modules: &[SyntheticModule],
    goproxy: &str,
    proxy_url: Option<&str>,
    cert_file: &Path,
) -> Result<f64> {
    let mut cmd = go_app_command(go, work, modules, goproxy)?;
    cmd.env("SSL_CERT_FILE", cert_file)
        .args(["mod", "download"]);
    if let Some(url) = proxy_url {
        cmd.env("HTTPS_PROXY", url);
    }
    timed(cmd, "go mod download")
}

/// `go mod download` seconds of `reps` rounds, each timing direct, through `proxies[0]`
/// and through `proxies[1]` in turn, so drift in the machine's load hits all three alike.
fn go_lanes(
    go: &Path,
    work: &Path,
    modules: &[SyntheticModule],
    origin: &Origin,
    proxies: [&ProxyChild; 2],
    reps: usize,
) -> Result<(Vec<f64>, Vec<f64>, Vec<f64>)> {
    let origin_ca = work.join("origin-ca.pem");
    std::fs::write(&origin_ca, origin.ca_pem())?;
    let direct_url = format!("https://127.0.0.1:{}", origin.addr.port());
    let mut times: [Vec<f64>; 3] = Default::default();
    for _ in 0..reps {
        times[0].push(go_download(
            go,
            &work.join("go-d"),
            modules,
            &direct_url,
            None,
            &origin_ca,
        )?);
        for (i, proxy) in proxies.iter().enumerate() {
            times[i + 1].push(go_download(
                go,
                &work.join(format!("go-{i}")),
                modules,
                "https://proxy.golang.org",
                Some(&proxy.url),
                &proxy.ca_pem,
            )?);
        }
    }
    let [d, m, r] = times;
    Ok((d, m, r))
}

pub async fn bench(args: BenchArgs) -> Result<i32> {
    let mut plan = Plan::new(args.quick);
    if let Some(reps) = args.reps {
        plan.reps = reps.max(1);
    }
    let work = std::env::temp_dir().join(format!("modscope-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let result = run_all(&plan, &work, &args).await;
    let _ = Command::new("chmod")
        .args(["-R", "u+w"])
        .arg(&work)
        .status();
    let _ = std::fs::remove_dir_all(&work);
    let rows = result?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print!("{}", render(&rows, args.quick));
    }
    Ok(0)
}

async fn run_all(plan: &Plan, work: &Path, args: &BenchArgs) -> Result<Vec<Row>> {
    let modules: Vec<SyntheticModule> = (0..plan.go_modules)
        .map(|i| SyntheticModule::simple(&format!("bench.example/m{i:03}"), "v1.0.0", 2000))
        .collect();
    let origin = Origin::start(
        modules.clone(),
        OriginOptions {
            names: vec![
                "proxy.golang.org".into(),
                "*.bench.example".into(),
                "127.0.0.1".into(),
            ],
            ..OriginOptions::default()
        },
    )
    .await?;
    let plain = ProxyChild::start(&work.join("p1"), &origin, None)?;
    let trace_dir = work.join("trace");
    let recording = ProxyChild::start(&work.join("p2"), &origin, Some(&trace_dir))?;
    let mitm = if which("mitmdump").is_some() && !args.no_mitm {
        match MitmChild::start(&work.join("mitm"), &origin) {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("bench: mitmproxy column skipped: {e:#}");
                None
            }
        }
    } else {
        None
    };
    let lanes = Lanes {
        direct: Via::Direct(&origin),
        plain: Via::Proxy(&plain),
        recording: Via::Proxy(&recording),
        mitm: mitm.as_ref().map(Via::Mitm),
    };
    let mut rows = Vec::new();
    if args.wants(Measure::Throughput) {
        rows.extend(throughput_rows(&lanes, plan).await?);
    }
    if args.wants(Measure::Sequential) {
        rows.extend(sequential_rows(&lanes, plan).await?);
    }
    if args.wants(Measure::Concurrent) {
        rows.extend(concurrent_rows(&lanes, plan).await?);
    }
    if args.wants(Measure::Handshake) {
        rows.extend(handshake_rows(&lanes, plan).await?);
    }
    if let Some(go) = which("go").filter(|_| !args.no_go && args.wants(Measure::Go)) {
        eprintln!("bench: go mod download of {} modules ...", plan.go_modules);
        // One go run lasts a fraction of a second, so scheduling noise is large: take the
        // median of at least seven.
        let reps = plan.reps.max(if args.quick { 1 } else { 7 });
        let (dt, mt, rt) = go_lanes(&go, work, &modules, &origin, [&plain, &recording], reps)?;
        let (dm, mm, rm) = (median(dt), median(mt), median(rt));
        rows.push(Row {
            name: format!("go mod download, {} modules", plan.go_modules),
            unit: "s".into(),
            direct: Some(dm),
            modscope: mm,
            modscope_recording: Some(rm),
            mitmproxy: None,
            ratio: Some(mm / dm),
            target: "<= 1.3x direct".into(),
            met: Some(mm / dm <= 1.3),
        });
        rows.push(Row {
            name: "  go mod download: + record vs modscope".into(),
            unit: "s".into(),
            direct: None,
            modscope: mm,
            modscope_recording: Some(rm),
            mitmproxy: None,
            ratio: Some(rm / mm),
            target: "<= 1.10x".into(),
            met: Some(rm / mm <= 1.10),
        });
    }
    if let Some(go) = which("go").filter(|_| !args.no_go && args.wants(Measure::Otlp)) {
        eprintln!("bench: modscope run with a dead OTLP collector ...");
        rows.extend(otlp_rows(&go, work, &modules, &origin, plan, args.quick)?);
    }
    if let Some(go) = which("go").filter(|_| !args.no_go && args.wants(Measure::Wan)) {
        rows.extend(wan::wan_rows(&go, &work.join("wan"), plan, args.quick).await?);
    }
    Ok(rows)
}

/// Seconds for a whole `modscope run -- go mod download` (start, download, closing summary
/// and flush), optionally exporting spans to `otlp`.
fn run_go_download(
    go: &Path,
    work: &Path,
    modules: &[SyntheticModule],
    origin: &Origin,
    otlp: Option<&str>,
) -> Result<f64> {
    let exe = std::env::current_exe().context("cannot find the modscope executable")?;
    let origin_ca = work.join("origin-ca.pem");
    std::fs::create_dir_all(work)?;
    std::fs::write(&origin_ca, origin.ca_pem())?;
    let mut cmd = go_app_command(&exe, work, modules, "https://proxy.golang.org")?;
    cmd.args(["run", "--quiet", "--ca-dir"])
        .arg(work.join("ca"))
        .arg("--upstream-ca")
        .arg(&origin_ca)
        .arg("--connect-to")
        .arg(format!("::127.0.0.1:{}", origin.addr.port()));
    if let Some(url) = otlp {
        cmd.args(["--otlp", url]);
    }
    cmd.arg("--").arg(go).args(["mod", "download"]);
    timed(cmd, "modscope run -- go mod download")
}

/// What a dead OpenTelemetry collector costs a CI job: whole `run`s, alternating.
fn otlp_rows(
    go: &Path,
    work: &Path,
    modules: &[SyntheticModule],
    origin: &Origin,
    plan: &Plan,
    quick: bool,
) -> Result<Vec<Row>> {
    // A port that was just released: connections to it are refused.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")?;
    let dead_url = format!("http://{}", dead.local_addr()?);
    drop(dead);
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for _ in 0..plan.reps.max(if quick { 1 } else { 5 }) {
        without.push(run_go_download(
            go,
            &work.join("otlp-off"),
            modules,
            origin,
            None,
        )?);
        with.push(run_go_download(
            go,
            &work.join("otlp-dead"),
            modules,
            origin,
            Some(&dead_url),
        )?);
    }
    let (off, dead) = (median(without), median(with));
    Ok(vec![Row {
        name: format!(
            "run -- go mod download ({} modules): direct column = no --otlp, modscope = --otlp to a dead collector",
            plan.go_modules
        ),
        unit: "s".into(),
        direct: Some(off),
        modscope: dead,
        modscope_recording: None,
        mitmproxy: None,
        ratio: Some(dead / off),
        target: "<= 1.05x (a dead collector costs nothing)".into(),
        met: Some(dead / off <= 1.05),
    }])
}

async fn throughput_rows(l: &Lanes<'_>, plan: &Plan) -> Result<Vec<Row>> {
    let (d, m, r, x) = (&l.direct, &l.plain, &l.recording, l.mitm.as_ref());
    let mut rows = Vec::new();
    let mib = plan.body >> 20;
    for (alpn, label) in [(Alpn::H2, "h2"), (Alpn::H1, "http/1.1")] {
        eprintln!("bench: {mib} MiB download over {label} ...");
        let direct = throughput(d, alpn, plan.body, plan.reps).await?;
        let through = throughput(m, alpn, plan.body, plan.reps).await?;
        let rec = throughput(r, alpn, plan.body, plan.reps).await?;
        let mitm_run = match &x {
            Some(x) => Some(throughput(x, alpn, plan.body, plan.reps).await?),
            None => None,
        };
        let ratio = through.value / direct.value;
        rows.push(Row {
            name: format!("{mib} MiB download, {label}"),
            unit: "MiB/s".into(),
            direct: Some(direct.value),
            modscope: through.value,
            modscope_recording: Some(rec.value),
            mitmproxy: mitm_run.as_ref().map(|r| r.value),
            ratio: Some(ratio),
            target: ">= 0.60 of direct; recording costs <= 15%".into(),
            met: Some(ratio >= 0.6 && rec.value >= through.value * 0.85),
        });
        rows.push(Row {
            name: format!("  CPU per download, {label} (all processes)"),
            unit: "s".into(),
            direct: Some(direct.cpu_per_rep),
            modscope: through.cpu_per_rep,
            modscope_recording: Some(rec.cpu_per_rep),
            mitmproxy: mitm_run.as_ref().map(|r| r.cpu_per_rep),
            ratio: Some(through.cpu_per_rep / direct.cpu_per_rep),
            target: "explains the ratio (see docs)".into(),
            met: None,
        });
        let gib = plan.body as f64 / (1u64 << 30) as f64;
        let (plain_gib, rec_gib) = (through.proxy_cpu_per_rep / gib, rec.proxy_cpu_per_rep / gib);
        rows.push(Row {
            name: format!("  proxy CPU per GiB, {label}"),
            unit: "s".into(),
            direct: None,
            modscope: plain_gib,
            modscope_recording: Some(rec_gib),
            mitmproxy: mitm_run.as_ref().map(|r| r.proxy_cpu_per_rep / gib),
            ratio: Some(rec_gib - plain_gib),
            target: "recording adds <= 0.5 CPU-s/GiB".into(),
            met: Some(rec_gib - plain_gib <= 0.5),
        });
    }
    let rss = r.pid().and_then(peak_rss_mib).unwrap_or(0.0);
    rows.push(Row {
        name: format!("proxy peak RSS, {mib} MiB downloads recorded"),
        unit: "MiB".into(),
        direct: None,
        modscope: rss,
        modscope_recording: Some(rss),
        mitmproxy: x.and_then(Via::pid).and_then(peak_rss_mib),
        ratio: None,
        target: "<= 64 MiB".into(),
        met: Some(rss <= 64.0),
    });

    Ok(rows)
}

async fn sequential_rows(l: &Lanes<'_>, plan: &Plan) -> Result<Vec<Row>> {
    let (d, m, r, x) = (&l.direct, &l.plain, &l.recording, l.mitm.as_ref());
    let mut rows = Vec::new();
    eprintln!("bench: {} sequential small requests ...", plan.sequential);
    let (dl, dcpu, _) = sequential(d, plan.sequential).await?;
    let (ml, mcpu, mproxy) = sequential(m, plan.sequential).await?;
    let (rl, rcpu, rproxy) = sequential(r, plan.sequential).await?;
    let (xl, xcpu, xproxy) = match &x {
        Some(x) => {
            let (l, c, p) = sequential(x, plan.sequential).await?;
            (Some(l), Some(c), Some(p))
        }
        None => (None, None, None),
    };
    let (dsum, msum): (f64, f64) = (dl.iter().sum(), ml.iter().sum());
    rows.push(Row {
        name: format!("{} sequential requests, total", plan.sequential),
        unit: "ms".into(),
        direct: Some(dsum),
        modscope: msum,
        modscope_recording: Some(rl.iter().sum()),
        mitmproxy: xl.as_ref().map(|l| l.iter().sum()),
        ratio: Some(msum / dsum),
        target: "<= 2x direct".into(),
        met: Some(msum / dsum <= 2.0),
    });
    rows.push(Row {
        name: "  CPU per sequential request (all processes)".into(),
        unit: "us".into(),
        direct: Some(dcpu),
        modscope: mcpu,
        modscope_recording: Some(rcpu),
        mitmproxy: xcpu,
        ratio: Some(mcpu / dcpu),
        target: "explains the ratio (see docs)".into(),
        met: None,
    });
    rows.push(Row {
        name: "  proxy CPU per sequential request".into(),
        unit: "us".into(),
        direct: None,
        modscope: mproxy,
        modscope_recording: Some(rproxy),
        mitmproxy: xproxy,
        ratio: Some(rproxy - mproxy),
        target: "recording adds <= 15 us".into(),
        met: Some(rproxy - mproxy <= 15.0),
    });
    let (d50, d99) = (percentile(dl.clone(), 0.5), percentile(dl, 0.99));
    let (m50, m99) = (percentile(ml.clone(), 0.5), percentile(ml, 0.99));
    rows.push(Row {
        name: "added latency per request p50".into(),
        unit: "ms".into(),
        direct: Some(d50),
        modscope: m50,
        modscope_recording: Some(percentile(rl.clone(), 0.5)),
        mitmproxy: xl.clone().map(|l| percentile(l, 0.5)),
        ratio: Some(m50 - d50),
        target: "added <= 0.3 ms".into(),
        met: Some(m50 - d50 <= 0.3),
    });
    rows.push(Row {
        name: "added latency per request p99".into(),
        unit: "ms".into(),
        direct: Some(d99),
        modscope: m99,
        modscope_recording: Some(percentile(rl, 0.99)),
        mitmproxy: xl.clone().map(|l| percentile(l, 0.99)),
        ratio: Some(m99 - d99),
        target: "added <= 2 ms".into(),
        met: Some(m99 - d99 <= 2.0),
    });

    Ok(rows)
}

async fn concurrent_rows(l: &Lanes<'_>, plan: &Plan) -> Result<Vec<Row>> {
    let (d, m, r, x) = (&l.direct, &l.plain, &l.recording, l.mitm.as_ref());
    let mut rows = Vec::new();
    eprintln!(
        "bench: {} concurrent connections ...",
        plan.concurrent_conns
    );
    let dc = concurrent(d, plan.concurrent_conns, plan.per_conn).await?;
    let mc = concurrent(m, plan.concurrent_conns, plan.per_conn).await?;
    let rc = concurrent(r, plan.concurrent_conns, plan.per_conn).await?;
    let xc = match &x {
        Some(x) => Some(concurrent(x, plan.concurrent_conns, plan.per_conn).await?),
        None => None,
    };
    rows.push(Row {
        name: format!("{} connections, small requests", plan.concurrent_conns),
        unit: "req/s".into(),
        direct: Some(dc),
        modscope: mc,
        modscope_recording: Some(rc),
        mitmproxy: xc,
        ratio: Some(mc / dc),
        target: ">= 10000 req/s".into(),
        met: Some(mc >= 10_000.0),
    });

    Ok(rows)
}

async fn handshake_rows(l: &Lanes<'_>, plan: &Plan) -> Result<Vec<Row>> {
    let (d, m) = (&l.direct, &l.plain);
    let mut rows = Vec::new();
    eprintln!("bench: first handshake to {} new hosts ...", plan.hosts);
    let dh = handshakes(d, plan.hosts).await?;
    let first = handshakes(m, plan.hosts).await?;
    let cached = handshakes(m, plan.hosts).await?;
    rows.push(Row {
        name: "new host: connect + TLS + GET (leaf minted)".into(),
        unit: "ms".into(),
        direct: Some(dh),
        modscope: first,
        modscope_recording: None,
        mitmproxy: None,
        ratio: Some(first - dh),
        target: "added <= 5 ms".into(),
        met: Some(first - dh <= 5.0),
    });
    rows.push(Row {
        name: "known host: connect + TLS + GET (leaf cached)".into(),
        unit: "ms".into(),
        direct: Some(dh),
        modscope: cached,
        modscope_recording: None,
        mitmproxy: None,
        ratio: Some(cached - dh),
        target: "added <= 0.5 ms".into(),
        met: Some(cached - dh <= 0.5),
    });

    Ok(rows)
}

fn render(rows: &[Row], quick: bool) -> String {
    let fmt = |v: Option<f64>| {
        v.map(|v| {
            if v >= 100.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.2}")
            }
        })
        .unwrap_or_else(|| "-".into())
    };
    let mut out = String::new();
    if quick {
        out.push_str("(quick run: small sizes, one repetition; not a measurement)\n");
    }
    let headers = [
        "measure",
        "unit",
        "direct",
        "modscope",
        "+record",
        "mitmproxy",
        "ratio/added",
        "target",
        "met",
    ];
    let table: Vec<[String; 9]> = rows
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                r.unit.clone(),
                fmt(r.direct),
                fmt(Some(r.modscope)),
                fmt(r.modscope_recording),
                fmt(r.mitmproxy),
                fmt(r.ratio),
                r.target.clone(),
                match r.met {
                    Some(true) => "yes".into(),
                    Some(false) => "NO".into(),
                    None => "-".into(),
                },
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..9)
        .map(|i| {
            table
                .iter()
                .map(|r| r[i].len())
                .chain([headers[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == 0 || i == 7 {
                    format!("{c:<w$}", w = widths[i])
                } else {
                    format!("{c:>w$}", w = widths[i])
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
            + "\n"
    };
    out.push_str(&line(headers.to_vec()));
    for r in &table {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}
