//! The `proxy` and `ca` commands, and the start-up steps every proxy-running command shares.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::ca::{describe_cert, CaFiles, CertAuthority};
use crate::cli::{CaAction, CommonArgs, ProxyArgs, ReplayArgs, ReplayOptions, SummaryArgs};
use crate::config::ProxyConfig;
use crate::console::{use_color, ConsoleObserver};
use crate::proxy::ReplaySource;
use crate::proxy::{self, Observer, RunningProxy};
use crate::recorder::{RecordOptions, Recorder};
use crate::replay::OnMiss;
use crate::tls::{certs_to_pem, system_roots, UpstreamTrust};
use crate::trace::load_trace;

/// Colour for stderr output.
pub fn stderr_color() -> bool {
    use_color(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
    )
}

/// Everything a proxy needs, loaded from the common options.
pub struct Prepared {
    pub config: ProxyConfig,
    pub ca: Arc<CertAuthority>,
    pub trust: UpstreamTrust,
    pub bundle: PathBuf,
    pub recorder: Option<Arc<Recorder>>,
    /// Exchanges kept in memory for `--report` when nothing records this session to disk.
    pub collector: Option<Arc<crate::proxy::Collector>>,
    /// Hide credentials in everything printed or stored (not `--no-redact`).
    pub redact: bool,
    /// OpenTelemetry export (`--otlp`, `OTEL_EXPORTER_OTLP_*`) and how spans are grouped.
    pub otlp: Option<Arc<crate::otlp::OtlpExporter>>,
    pub otlp_grouping: crate::otlp::SpanGrouping,
}

pub fn prepare(
    common: &CommonArgs,
    listen: std::net::SocketAddr,
    allow_remote: bool,
) -> Result<Prepared> {
    prepare_with_go(common, listen, allow_remote, None)
}

/// `prepare`, asking `go` (when given) for the effective GOPROXY in `--goproxy` mode.
pub fn prepare_with_go(
    common: &CommonArgs,
    listen: std::net::SocketAddr,
    allow_remote: bool,
    go: Option<&Path>,
) -> Result<Prepared> {
    let mut config = common.to_config(listen, allow_remote, stderr_color())?;
    // The bases end up in `_go.base` and in findings: without the GOPROXY userinfo.
    let goproxy = std::env::var("GOPROXY").ok();
    config.goproxy_bases = crate::report::goproxy_bases(
        redact_goproxy(goproxy.as_deref(), !common.no_redact).as_deref(),
    );
    if common.goproxy {
        let setup = crate::goproxy::setup(go)?;
        if listen.port() != 0 {
            // A fixed port is known now: refuse a list that points back at it before binding.
            setup.routes.rewritten(listen)?;
        }
        eprintln!(
            "modscope: --goproxy: standing in front of GOPROXY={:?} (from {})",
            setup.routes.shown(),
            setup.source
        );
        for note in &setup.notes {
            eprintln!("modscope: {note}");
        }
        config.goproxy_bases = setup.routes.bases();
        config.goproxy = Some(Arc::new(setup.routes));
    }
    if let Some(warning) = config.go_handshake_warning() {
        eprintln!("modscope: warning: {warning}");
    }
    if !config.fault_rules.is_empty() {
        eprintln!(
            "modscope: {} active, seed {} (reproduce with --seed {})",
            plural(config.fault_rules.len(), "fault rule", "fault rules"),
            config.fault_seed,
            config.fault_seed
        );
    }
    if let Some(warning) = CaFiles::new(&config.ca_dir).key_exposure() {
        eprintln!("modscope: warning: {warning}");
    }
    if let Some(path) = &config.keylog {
        let from_env = std::env::var_os("SSLKEYLOGFILE").is_some_and(|v| v == path.as_os_str());
        eprintln!(
            "modscope: TLS session secrets of every connection (client and upstream side) are written to {}{}; anyone who reads that file can decrypt the recorded traffic",
            path.display(),
            if from_env { " (from $SSLKEYLOGFILE)" } else { " (--keylog)" }
        );
    }
    let ca = Arc::new(
        CertAuthority::load_or_create(&config.ca_dir).with_context(|| {
            format!(
                "cannot set up the modscope CA in {}",
                config.ca_dir.display()
            )
        })?,
    );
    let trust =
        UpstreamTrust::new(&config.upstream_ca).context("cannot load upstream trust roots")?;
    let bundle = write_bundle(&ca, &CaFiles::new(&config.ca_dir).bundle_path())?;
    let recorder = match &common.record {
        Some(dir) => Some(
            Recorder::start(RecordOptions {
                dir: dir.clone(),
                redact: !common.no_redact,
                embed_bodies: common.embed_bodies,
                goproxy_bases: config.goproxy_bases.clone(),
                only_network: false,
            })
            .with_context(|| format!("cannot record into {}", dir.display()))?,
        ),
        None => None,
    };
    let collector = (common.report.is_some() && recorder.is_none())
        .then(|| Arc::new(crate::proxy::Collector::default()));
    let otlp = crate::export::start_live(common.otlp.as_deref(), &trust)?;
    Ok(Prepared {
        config,
        ca,
        trust,
        bundle,
        recorder,
        collector,
        redact: !common.no_redact,
        otlp,
        otlp_grouping: crate::export::per_connection_grouping(),
    })
}

/// A GOPROXY value with each URL's userinfo redacted (when `redact`).
pub fn redact_goproxy(goproxy: Option<&str>, redact: bool) -> Option<String> {
    goproxy.map(|g| match redact {
        true => crate::trace::redact_url_list(g, crate::trace::REDACTED),
        false => g.to_string(),
    })
}

/// Sends the last spans (bounded by a short deadline) and says what was sent or lost.
pub async fn finish_otlp(prepared: &Prepared) {
    if let Some(exporter) = &prepared.otlp {
        crate::export::finish_live(exporter, prepared.config.quiet).await;
    }
}

/// Writes trace.har after the proxy stopped, and says where the trace is.
pub fn finish_recording(recorder: Option<&Arc<Recorder>>) -> Result<()> {
    let Some(recorder) = recorder else {
        return Ok(());
    };
    let report = recorder.finish();
    // Said even when finishing failed: the disk that refused exchanges may refuse trace.har.
    let unrecorded = recorder.unrecorded();
    if !unrecorded.is_empty() {
        eprintln!(
            "modscope: warning: {} in {}",
            unrecorded.describe(),
            recorder.dir().display()
        );
    }
    let report = report
        .with_context(|| format!("cannot finish the trace in {}", recorder.dir().display()))?;
    for problem in &report.problems {
        eprintln!("modscope: warning: {problem}");
    }
    eprintln!(
        "modscope: trace written to {} ({})",
        report.har.display(),
        plural(report.entries, "entry", "entries")
    );
    Ok(())
}

/// Writes system roots + the modscope CA to `path` (go's SSL_CERT_FILE replaces the system
/// bundle, so it needs both).
pub fn write_bundle(ca: &CertAuthority, path: &Path) -> Result<PathBuf> {
    let roots = system_roots();
    let mut pem = certs_to_pem(roots.iter());
    pem.push_str(ca.cert_pem());
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    crate::ca::write_atomic(path, pem.as_bytes(), 0o644)
        .with_context(|| format!("cannot write the CA bundle {}", path.display()))?;
    Ok(path.to_path_buf())
}

/// The observers a command runs with: the recorder first (it captures bodies), then the
/// console printer.
pub fn observers(prepared: &Prepared) -> Vec<Arc<dyn Observer>> {
    let mut list: Vec<Arc<dyn Observer>> = Vec::new();
    if let Some(r) = &prepared.recorder {
        list.push(r.clone());
    }
    if let Some(exporter) = &prepared.otlp {
        list.push(Arc::new(crate::otlp::OtlpObserver {
            exporter: exporter.clone(),
            grouping: prepared.otlp_grouping,
            goproxy_bases: Arc::new(prepared.config.goproxy_bases.clone()),
        }));
    }
    if !prepared.config.quiet {
        list.push(Arc::new(ConsoleObserver::new(
            prepared.config.color,
            prepared.redact,
        )));
    }
    if let Some(c) = &prepared.collector {
        list.push(c.clone());
    }
    list
}

/// `--report FILE` at the end of a session: from the recorded trace when this session was
/// recorded, else from the exchanges collected in memory.
pub fn finish_report(
    prepared: &Prepared,
    file: Option<&Path>,
    command: Option<String>,
    env: Option<&crate::diagnose::GoEnv>,
) -> Result<()> {
    let Some(file) = file else { return Ok(()) };
    let bases = crate::report::goproxy_bases(env.and_then(|e| e.goproxy.as_deref()));
    let source = |trace: String| crate::htmlreport::ReportSource {
        command: command.clone(),
        trace,
        producer: env!("CARGO_PKG_VERSION").to_string(),
    };
    let stats = match (&prepared.collector, &prepared.recorder) {
        (None, Some(recorder)) => crate::htmlreport::write_from_trace(
            recorder.dir(),
            file,
            source(recorder.dir().display().to_string()),
            env,
            bases,
        ),
        (collector, _) => {
            let exchanges = collector
                .as_ref()
                .and_then(|c| c.0.lock().ok().map(|l| l.clone()))
                .unwrap_or_default();
            let entries = crate::report::entries_from_exchanges(&exchanges, &bases);
            crate::htmlreport::write_from_entries(
                &entries,
                file,
                source("(this session, not recorded)".to_string()),
                env,
                bases,
            )
        }
    }
    .with_context(|| format!("cannot write the report {}", file.display()))?;
    eprintln!(
        "modscope: report written to {} ({} entries)",
        file.display(),
        stats.entries
    );
    Ok(())
}

/// `modscope report TRACE [-o FILE]`.
pub fn report(args: crate::cli::ReportArgs) -> Result<i32> {
    let out = args
        .output
        .clone()
        .unwrap_or_else(|| crate::htmlreport::default_output(&args.trace));
    let source = crate::htmlreport::ReportSource {
        command: None,
        trace: args.trace.display().to_string(),
        producer: env!("CARGO_PKG_VERSION").to_string(),
    };
    let stats = crate::htmlreport::write_from_trace(&args.trace, &out, source, None, Vec::new())
        .with_context(|| format!("cannot make a report of {}", args.trace.display()))?;
    for note in &stats.notes {
        eprintln!("modscope: {note}");
    }
    for problem in &stats.problems {
        eprintln!("modscope: skipped: {problem}");
    }
    println!(
        "report written to {} ({} entries, {} bytes)",
        out.display(),
        stats.entries,
        stats.bytes
    );
    Ok(0)
}

/// Variables that send a child through the proxy: both spellings of the proxy variables
/// (curl reads only lower-case `http_proxy`), and the bundle (system roots + the modscope
/// CA) for go (`SSL_CERT_FILE`), git, curl, Python requests and Node.
pub fn child_env(proxy_url: &str, bundle: &Path) -> Vec<(&'static str, String)> {
    let b = bundle.display().to_string();
    let mut vars: Vec<(&'static str, String)> =
        ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"]
            .into_iter()
            .map(|k| (k, proxy_url.to_string()))
            .collect();
    vars.extend(
        [
            "SSL_CERT_FILE",
            "GIT_SSL_CAINFO",
            "CURL_CA_BUNDLE",
            "REQUESTS_CA_BUNDLE",
            "NODE_EXTRA_CA_CERTS",
        ]
        .into_iter()
        .map(|k| (k, b.clone())),
    );
    vars
}

/// The lines a shell needs to send go (and curl, Python, Node) through the proxy.
pub fn export_lines(proxy_url: &str, bundle: &Path) -> String {
    let vars = child_env(proxy_url, bundle);
    let line = |keys: &[(&str, String)]| {
        let parts: Vec<String> = keys.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("export {}\n", parts.join(" "))
    };
    let (proxies, cas) = vars.split_at(4);
    format!("{}{}", line(proxies), line(cas))
}

/// The control API's address and token (empty without `--admin`): every request needs
/// `Authorization: Bearer $MODSCOPE_ADMIN_TOKEN`.
pub fn admin_lines(running: &RunningProxy) -> String {
    let (Some(addr), Some(token)) = (running.admin_addr, &running.admin_token) else {
        return String::new();
    };
    let file = running
        .admin_token_file
        .as_ref()
        .map(|f| format!(" (also in {})", f.display()))
        .unwrap_or_default();
    format!(
        "# control API: http://{addr}/faults\n# control API token{file}: {token}\nexport MODSCOPE_ADMIN={addr} MODSCOPE_ADMIN_TOKEN={token}\n"
    )
}

pub async fn proxy(args: ProxyArgs) -> Result<i32> {
    let prepared = prepare(&args.common, args.listen, args.allow_remote)?;
    if !prepared.config.listen.ip().is_loopback() {
        eprintln!(
            "modscope: WARNING: listening on {} — anyone who can reach it can use this proxy and read the traffic it intercepts",
            prepared.config.listen
        );
    }
    let observers = observers(&prepared);
    let running = proxy::start(
        prepared.config.clone(),
        prepared.ca.clone(),
        prepared.trust.clone(),
        observers,
    )
    .await
    .context("cannot start the proxy")?;
    // Handlers first: a script may send SIGTERM as soon as it has read the address.
    let signals = ShutdownSignals::new()?;
    announce(&running, &prepared.bundle)?;
    let code = wait_for_signal_then_shutdown(running, signals).await?;
    finish_otlp(&prepared).await;
    finish_recording(prepared.recorder.as_ref())?;
    finish_report(&prepared, args.common.report.as_deref(), None, None)?;
    Ok(code)
}

/// Loads a trace for replay, saying what could not be used.
pub fn load_replay(path: &Path, opts: &ReplayOptions) -> Result<Arc<ReplaySource>> {
    let trace =
        load_trace(path).with_context(|| format!("cannot read the trace {}", path.display()))?;
    for note in &trace.notes {
        eprintln!("modscope: {note}");
    }
    for problem in &trace.problems {
        eprintln!("modscope: skipped: {problem}");
    }
    let source = ReplaySource::new(trace, opts.on_miss, opts.timing, opts.ignore_query.clone());
    let entry = |i: usize| {
        source
            .trace
            .entries
            .get(i)
            .map(|e| format!("#{} {} {}", i + 1, e.request.method, e.request.url))
            .unwrap_or_else(|| format!("#{}", i + 1))
    };
    for &i in &source.unusable {
        if let Some(e) = source.trace.entries.get(i) {
            eprintln!(
                "modscope: skipped entry #{}: {:?} is not an absolute http(s) URL",
                i + 1,
                e.request.url
            );
        }
    }
    if !source.missing_bodies.is_empty() {
        eprintln!(
            "modscope: error: the body files of {} are missing (was trace.har copied without its bodies/ directory?); their requests will be answered as misses:",
            plural(source.missing_bodies.len(), "entry", "entries"),
        );
        for (i, path) in source.missing_bodies.iter().take(LISTED) {
            eprintln!("  {}: {} not found", entry(*i), path.display());
        }
        if source.missing_bodies.len() > LISTED {
            eprintln!("  ... and {} more", source.missing_bodies.len() - LISTED);
        }
    }
    for (i, e) in &source.broken_bodies {
        eprintln!(
            "modscope: error: {}: the recorded body cannot be rebuilt ({e}); answered as a miss",
            entry(*i)
        );
    }
    for (i, m) in source.size_mismatches.iter().take(LISTED) {
        eprintln!(
            "modscope: warning: {}: the body rebuilt from `text` is {} bytes, but content.size says {}; it is served as rebuilt",
            entry(*i),
            m.rebuilt,
            m.declared
        );
    }
    if source.size_mismatches.len() > LISTED {
        eprintln!(
            "modscope: warning: ... and {} more size mismatches",
            source.size_mismatches.len() - LISTED
        );
    }
    let servable = source.trace.entries.len()
        - source.unusable.len()
        - source.missing_bodies.len()
        - source.broken_bodies.len();
    eprintln!(
        "modscope: replaying {} from {} (on miss: {})",
        plural(servable, "recorded exchange", "recorded exchanges"),
        path.display(),
        opts.on_miss
    );
    Ok(Arc::new(source))
}

/// A recorder appending network exchanges to the replayed trace (`--on-miss record`).
pub fn miss_recorder(
    path: &Path,
    opts: &ReplayOptions,
    common: &CommonArgs,
) -> Result<Option<Arc<Recorder>>> {
    if opts.on_miss != OnMiss::Record {
        return Ok(None);
    }
    if !path.is_dir() {
        anyhow::bail!(
            "--on-miss record appends to a trace directory, and {} is not one",
            path.display()
        );
    }
    if common.record.is_some() {
        anyhow::bail!("--on-miss record already records into the replayed trace; drop --record");
    }
    let recorder = Recorder::start(RecordOptions {
        dir: path.to_path_buf(),
        redact: !common.no_redact,
        embed_bodies: common.embed_bodies,
        goproxy_bases: Vec::new(),
        only_network: true,
    })
    .with_context(|| format!("cannot record into {}", path.display()))?;
    Ok(Some(recorder))
}

/// How many entries a load-time list shows before "... and N more".
const LISTED: usize = 20;

pub use crate::console::plural;

/// Hits, misses and unused entries at the end of a replay.
pub fn print_replay_report(source: &ReplaySource) {
    let report = source.report();
    let mut line = format!(
        "modscope replay: {}, {}, {} never used",
        plural(report.hits, "hit", "hits"),
        plural(report.misses.len(), "miss", "misses"),
        plural(report.unused.len(), "recorded entry", "recorded entries"),
    );
    if !source.missing_bodies.is_empty() || !source.broken_bodies.is_empty() {
        line.push_str(&format!(
            ", {} not servable (missing or broken body)",
            plural(
                source.missing_bodies.len() + source.broken_bodies.len(),
                "entry",
                "entries"
            )
        ));
    }
    if !source.size_mismatches.is_empty() {
        line.push_str(&format!(
            ", {} whose rebuilt body disagrees with content.size",
            plural(source.size_mismatches.len(), "entry", "entries")
        ));
    }
    eprintln!("{line}");
    for miss in &report.misses {
        eprintln!("  miss: {miss}");
    }
    for &i in report.unused.iter().take(LISTED) {
        if let Some(e) = source.trace.entries.get(i) {
            eprintln!(
                "  unused: #{} {} {}",
                i + 1,
                e.request.method,
                e.request.url
            );
        }
    }
    if report.unused.len() > LISTED {
        eprintln!("  ... and {} more unused", report.unused.len() - LISTED);
    }
}

pub async fn replay(args: ReplayArgs) -> Result<i32> {
    let source = load_replay(&args.trace, &args.replay)?;
    let mut prepared = prepare(&args.common, args.listen, args.allow_remote)?;
    if let Some(r) = miss_recorder(&args.trace, &args.replay, &args.common)? {
        prepared.recorder = Some(r);
    }
    let running = proxy::start_with_replay(
        prepared.config.clone(),
        prepared.ca.clone(),
        prepared.trust.clone(),
        observers(&prepared),
        Some(source.clone()),
    )
    .await
    .context("cannot start the replay proxy")?;
    // Handlers first: a script may send SIGTERM as soon as it has read the address.
    let signals = ShutdownSignals::new()?;
    announce(&running, &prepared.bundle)?;
    let code = wait_for_signal_then_shutdown(running, signals).await?;
    finish_otlp(&prepared).await;
    finish_recording(prepared.recorder.as_ref())?;
    print_replay_report(&source);
    finish_report(&prepared, args.common.report.as_deref(), None, None)?;
    Ok(code)
}

pub fn summary(args: SummaryArgs) -> Result<i32> {
    let mut trace = load_trace(&args.trace)
        .with_context(|| format!("cannot read the trace {}", args.trace.display()))?;
    for note in &trace.notes {
        eprintln!("modscope: {note}");
    }
    for problem in &trace.problems {
        eprintln!("modscope: skipped: {problem}");
    }
    crate::verify::fill_missing_h1(&mut trace.entries, &trace.root);
    let go_sum = args
        .go_sum
        .as_deref()
        .map(crate::verify::read_go_sum)
        .transpose()?;
    let obs = crate::report::observations(&trace.entries, &[]);
    let evidence = crate::verify::gather(&trace.entries, &obs, Some(&trace.root), go_sum, None);
    let rendered = crate::report::render_full(
        &trace.entries,
        &trace.unrecorded,
        None,
        &evidence,
        args.json,
        !args.json && stdout_color(),
    );
    let worst = rendered.worst;
    println!("{}", rendered.text);
    use crate::diagnose::Severity;
    let threshold = match args.fail_on {
        Some(crate::cli::FailOn::Error) => Some(Severity::Error),
        Some(crate::cli::FailOn::Warning) => Some(Severity::Warning),
        None => None,
    };
    Ok(match (threshold, worst) {
        (Some(t), Some(w)) if w >= t => 1,
        _ => 0,
    })
}

fn stdout_color() -> bool {
    use_color(
        std::io::stdout().is_terminal(),
        std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
    )
}

/// Prints the listening line and the export lines. A reader that went away (a script that
/// only wanted the first line) must not stop the proxy, so write errors are only logged.
fn announce(running: &RunningProxy, bundle: &Path) -> Result<()> {
    let url = proxy::proxy_url(running.addr);
    let exports = match &running.shared.config.goproxy {
        Some(routes) => {
            crate::goproxy::export_lines(&routes.rewritten(running.addr)?, &url, bundle)
        }
        None => export_lines(&url, bundle),
    };
    let mut text = format!("modscope: listening on {url}\n{exports}");
    text.push_str(&admin_lines(running));
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        tracing::warn!("cannot print the listening address to stdout: {e}");
    }
    Ok(())
}

/// What `proxy` and `replay` say when a signal starts the drain. Only a Ctrl-C (SIGINT)
/// came from someone at a terminal who can press it again.
pub fn shutdown_line(by_ctrl_c: bool) -> &'static str {
    if by_ctrl_c {
        "modscope: shutting down (in-flight exchanges may finish; press Ctrl-C again to quit now)"
    } else {
        "modscope: shutting down (in-flight exchanges may finish; SIGINT quits now)"
    }
}

/// SIGINT and SIGTERM handlers, installed before the proxy announces its address.
struct ShutdownSignals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    fn new() -> Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(ShutdownSignals {
            int: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
            term: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
        })
    }
}

/// Waits for SIGINT/SIGTERM, then drains; a second signal exits at once.
async fn wait_for_signal_then_shutdown(
    running: RunningProxy,
    signals: ShutdownSignals,
) -> Result<i32> {
    let ShutdownSignals { mut int, mut term } = signals;
    let by_ctrl_c = tokio::select! {
        _ = int.recv() => true,
        _ = term.recv() => false,
    };
    eprintln!("{}", shutdown_line(by_ctrl_c));
    let handle = running.handle();
    handle.shutdown();
    tokio::select! {
        report = running.wait() => {
            if report.abandoned > 0 {
                eprintln!("modscope: {} cut at the drain deadline", plural(report.abandoned, "connection was", "connections were"));
            }
            Ok(0)
        }
        _ = int.recv() => Ok(130),
        _ = term.recv() => Ok(143),
    }
}

pub fn ca(action: CaAction, ca_dir: Option<PathBuf>) -> Result<i32> {
    let dir = ca_dir.unwrap_or_else(crate::ca::default_ca_dir);
    let files = CaFiles::new(&dir);
    let load = || {
        CertAuthority::load_or_create(&dir)
            .with_context(|| format!("cannot set up the modscope CA in {}", dir.display()))
    };
    match action {
        CaAction::Init => {
            let existed = files.exists();
            load()?;
            println!(
                "{} {}",
                if existed {
                    "modscope CA already exists:"
                } else {
                    "created modscope CA:"
                },
                files.cert_path().display()
            );
        }
        CaAction::Path => {
            load()?;
            println!("{}", files.cert_path().display());
        }
        CaAction::Show => {
            let ca = load()?;
            print!(
                "file:        {}\n{}",
                files.cert_path().display(),
                describe_cert(ca.cert_der())
            );
        }
        CaAction::Export { der, output } => {
            let ca = load()?;
            let bytes = if der {
                ca.cert_der().to_vec()
            } else {
                ca.cert_pem().as_bytes().to_vec()
            };
            match output {
                Some(path) => std::fs::write(&path, bytes)
                    .with_context(|| format!("cannot write {}", path.display()))?,
                None => std::io::stdout().write_all(&bytes)?,
            }
        }
        CaAction::Bundle { output } => {
            let ca = load()?;
            let path = output.unwrap_or_else(|| files.bundle_path());
            let written = write_bundle(&ca, &path)?;
            println!("{}", written.display());
        }
    }
    Ok(0)
}

pub fn import(args: crate::cli::ImportArgs) -> Result<i32> {
    let options = crate::capture::ImportOptions {
        redact: !args.no_redact,
        goproxy_bases: crate::report::goproxy_bases(
            redact_goproxy(std::env::var("GOPROXY").ok().as_deref(), !args.no_redact).as_deref(),
        ),
    };
    let report = crate::capture::import_with(&args.capture, &args.output, &options)
        .with_context(|| format!("cannot import {}", args.capture.display()))?;
    println!("{report}");
    for warning in &report.warnings {
        eprintln!("modscope: warning: {warning}");
    }
    println!(
        "trace written to {} (see: modscope summary {})",
        args.output.display(),
        args.output.display()
    );
    Ok(0)
}
