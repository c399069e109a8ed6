//! A proxy session: the start-up and the ending that `proxy`, `replay`, `run` and `demo`
//! share. The command's options become a validated configuration (with the `--faults`
//! file and a seed from the clock read here), then the CA, upstream trust, CA bundle,
//! recorder, OTLP exporter and observers, then a running proxy; `finish` turns the
//! session into its closing report (OTLP flush, trace.har, replay hits and misses,
//! `--report` HTML).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};

use crate::ca::{CaFiles, CertAuthority};
use crate::cli::{CommonArgs, ReplayOptions};
use crate::config::{ConfigError, ProxyConfig};
use crate::console::{plural, stderr_color, ConsoleObserver};
use crate::diagnose::GoEnv;
use crate::exchange::Exchange;
use crate::otlp::{OtlpExporter, OtlpObserver, SpanGrouping};
use crate::procenv::redact_goproxy;
use crate::proxy::replay::ReplaySource;
use crate::proxy::{self, Observer, ProxyError, RunningProxy};
use crate::recorder::{RecordOptions, Recorder};
use crate::replay::OnMiss;
use crate::tls::UpstreamTrust;
use crate::trace::load_trace;

use super::ca::write_bundle;

/// Keeps every exchange in memory (`run`'s verdict and summary, `demo`, `--report`
/// without `--record`).
#[derive(Default)]
pub struct Collector(pub Mutex<Vec<Exchange>>);

impl Observer for Collector {
    fn on_exchange(&self, ex: &Exchange) {
        if let Ok(mut list) = self.0.lock() {
            list.push(ex.clone());
        }
    }
}

impl Collector {
    /// A copy of the exchanges seen so far.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.0.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

/// What a command asks of a session besides the common options.
pub struct Opening<'a> {
    pub listen: SocketAddr,
    pub allow_remote: bool,
    /// The go binary to ask for the effective GOPROXY under `--goproxy` (`run`'s child).
    pub go: Option<&'a Path>,
    /// Answer from this trace instead of the network (`replay`, `run --replay`).
    pub replay: Option<(&'a Path, &'a ReplayOptions)>,
}

impl Opening<'_> {
    /// A session on `listen` that forwards to the network.
    pub fn listen(listen: SocketAddr, allow_remote: bool) -> Self {
        Opening {
            listen,
            allow_remote,
            go: None,
            replay: None,
        }
    }
}

/// Everything a proxy runs with, from start-up to the closing report.
pub struct Session {
    pub config: ProxyConfig,
    pub ca: Arc<CertAuthority>,
    pub trust: UpstreamTrust,
    /// System roots + the modscope CA, for the clients' `SSL_CERT_FILE`.
    pub bundle: PathBuf,
    /// `--record`, or `--on-miss record` appending to the replayed trace.
    pub recorder: Option<Arc<Recorder>>,
    /// Every exchange in memory, when someone reads them at the end.
    pub collector: Option<Arc<Collector>>,
    /// Hide credentials in everything printed or stored (not `--no-redact`).
    pub redact: bool,
    /// OpenTelemetry export (`--otlp`, `OTEL_EXPORTER_OTLP_*`) and how spans are grouped.
    pub otlp: Option<Arc<OtlpExporter>>,
    pub otlp_grouping: SpanGrouping,
    /// The trace answered from.
    pub replay: Option<Arc<ReplaySource>>,
    /// `--report FILE`.
    report: Option<PathBuf>,
    /// The report is made from the `--record` trace (it has the bodies' hashes), else from
    /// the collector.
    report_from_trace: bool,
}

/// What the closing report names besides what the session knows (`run`).
#[derive(Default)]
pub struct Closing<'a> {
    /// The run's root span, sent before the closing flush.
    pub run_span: Option<crate::otlp::proto::Span>,
    /// The command line, for the HTML report's header.
    pub command: Option<String>,
    /// go's settings, for the HTML report's findings.
    pub go_env: Option<&'a GoEnv>,
}

impl Session {
    /// Loads the replayed trace (when any), then the configuration and everything the
    /// proxy needs; says on stderr what the user should know before traffic flows.
    pub fn open(common: &CommonArgs, opening: Opening<'_>) -> Result<Session> {
        let replay = match opening.replay {
            Some((path, opts)) => Some(load_replay(path, opts)?),
            None => None,
        };
        let mut session = prepare(common, opening.listen, opening.allow_remote, opening.go)?;
        if let Some((path, opts)) = opening.replay {
            if let Some(r) = miss_recorder(path, opts, common)? {
                session.recorder = Some(r);
            }
        }
        session.replay = replay;
        Ok(session)
    }

    /// A session whose CA, trust and bundle the command made itself, with nothing
    /// recorded, exported or reported (`demo`, against its synthetic origin).
    pub fn local(
        config: ProxyConfig,
        ca: Arc<CertAuthority>,
        trust: UpstreamTrust,
        bundle: PathBuf,
    ) -> Session {
        Session {
            redact: true,
            config,
            ca,
            trust,
            bundle,
            recorder: None,
            collector: None,
            otlp: None,
            otlp_grouping: crate::export::per_connection_grouping(),
            replay: None,
            report: None,
            report_from_trace: false,
        }
    }

    /// The collector, made now when the session had none (call before `start`).
    pub fn collect(&mut self) -> Arc<Collector> {
        self.collector.get_or_insert_with(Default::default).clone()
    }

    /// The observers the proxy runs with: the recorder first (it captures bodies), then
    /// the OTLP exporter, the console printer and the collector.
    pub fn observers(&self) -> Vec<Arc<dyn Observer>> {
        let mut list: Vec<Arc<dyn Observer>> = Vec::new();
        if let Some(r) = &self.recorder {
            list.push(r.clone());
        }
        if let Some(exporter) = &self.otlp {
            list.push(Arc::new(OtlpObserver {
                exporter: exporter.clone(),
                grouping: self.otlp_grouping,
                goproxy_bases: Arc::new(self.config.goproxy_bases.clone()),
            }));
        }
        if !self.config.quiet {
            list.push(Arc::new(ConsoleObserver::new(
                self.config.color,
                self.redact,
            )));
        }
        if let Some(c) = &self.collector {
            list.push(c.clone());
        }
        list
    }

    /// Binds and starts the proxy.
    pub async fn start(&self) -> Result<RunningProxy, ProxyError> {
        proxy::start_with_replay(
            self.config.clone(),
            self.ca.clone(),
            self.trust.clone(),
            self.observers(),
            self.replay.clone(),
        )
        .await
    }

    /// The exchanges collected so far (empty without a collector).
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.collector
            .as_ref()
            .map(|c| c.exchanges())
            .unwrap_or_default()
    }

    /// The closing report, after the proxy stopped: the last spans, trace.har, the replay's
    /// hits and misses, the `--report` HTML.
    pub async fn finish(&self, closing: Closing<'_>) -> Result<()> {
        if let Some(exporter) = &self.otlp {
            if let Some(span) = closing.run_span {
                exporter.submit(span);
            }
            // Bounded by a short deadline; says what was sent or lost.
            crate::export::finish_live(exporter, self.config.quiet).await;
        }
        finish_recording(self.recorder.as_ref())?;
        if let Some(source) = &self.replay {
            print_replay_report(source);
        }
        self.finish_report(closing.command, closing.go_env)
    }

    /// `--report FILE` at the end of a session: from the recorded trace when this session
    /// was recorded, else from the exchanges collected in memory.
    fn finish_report(&self, command: Option<String>, env: Option<&GoEnv>) -> Result<()> {
        let Some(file) = self.report.as_deref() else {
            return Ok(());
        };
        let bases = crate::report::goproxy_bases(env.and_then(|e| e.goproxy.as_deref()));
        let source = |trace: String| crate::htmlreport::ReportSource {
            command: command.clone(),
            trace,
            producer: env!("CARGO_PKG_VERSION").to_string(),
        };
        let stats = match self.recorder.as_ref().filter(|_| self.report_from_trace) {
            Some(recorder) => crate::htmlreport::write_from_trace(
                recorder.dir(),
                file,
                source(recorder.dir().display().to_string()),
                env,
                bases,
            ),
            None => {
                let entries = crate::report::entries_from_exchanges(&self.exchanges(), &bases);
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
}

/// The validated configuration: the flags as `cli` parsed them, the `--faults` file's
/// rules and seed, and a seed from the clock when neither the flags nor the file set one.
fn config(
    common: &CommonArgs,
    listen: SocketAddr,
    allow_remote: bool,
) -> Result<ProxyConfig, ConfigError> {
    let file = match &common.faults {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::FaultsFile {
                path: path.clone(),
                source,
            })?;
            Some(
                crate::fault::parse_toml(&text, &path.display().to_string())
                    .map_err(ConfigError::Faults)?,
            )
        }
        None => None,
    };
    common.to_config(listen, allow_remote, stderr_color(), file, clock_seed())
}

/// A seed from the clock, printed so a run can be reproduced.
fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64 % 1_000_000_000)
        .unwrap_or(1)
}

/// Everything a proxy needs, from the common options; `go` (when given) is asked for the
/// effective GOPROXY in `--goproxy` mode.
fn prepare(
    common: &CommonArgs,
    listen: SocketAddr,
    allow_remote: bool,
    go: Option<&Path>,
) -> Result<Session> {
    let mut config = config(common, listen, allow_remote)?;
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
    let collector =
        (common.report.is_some() && recorder.is_none()).then(|| Arc::new(Collector::default()));
    let otlp = crate::export::start_live(common.otlp.as_deref(), &trust)?;
    Ok(Session {
        report_from_trace: recorder.is_some(),
        config,
        ca,
        trust,
        bundle,
        recorder,
        collector,
        redact: !common.no_redact,
        otlp,
        otlp_grouping: crate::export::per_connection_grouping(),
        replay: None,
        report: common.report.clone(),
    })
}

/// Writes trace.har after the proxy stopped, and says where the trace is.
fn finish_recording(recorder: Option<&Arc<Recorder>>) -> Result<()> {
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

/// Loads a trace for replay, saying what could not be used.
fn load_replay(path: &Path, opts: &ReplayOptions) -> Result<Arc<ReplaySource>> {
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
fn miss_recorder(
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

/// Hits, misses and unused entries at the end of a replay.
fn print_replay_report(source: &ReplaySource) {
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
