//! Command-line definitions (clap) and their translation into validated configuration.
//! Parsing only: files and the clock are read by the command (see `cmd::session`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::config::{defaults, ConfigError, ConnectTo, ProxyConfig, UpstreamProxy};
use crate::fault::{Rule, RuleFile};

/// The top-level help's quick start, led by `demo` where the build has it.
macro_rules! quick_start {
    ($($demo:literal)?) => {
        concat!(
            "Quick start:\n",
            $($demo,)?
            "  modscope run -- go mod download     run go through the proxy and see every request\n  modscope proxy -q                   a long-running proxy; paste the export lines it prints\n                                      into the shell where go runs (see README)"
        )
    };
}

#[derive(Debug, Parser)]
#[command(
    name = "modscope",
    version,
    about = "An intercepting HTTPS proxy that shows, records and explains what the go command does on the network"
)]
#[cfg_attr(
    feature = "testkit",
    command(after_help = quick_start!(
        "  modscope demo                       offline demonstration with synthetic modules\n"
    ))
)]
#[cfg_attr(not(feature = "testkit"), command(after_help = quick_start!()))]
pub struct Cli {
    /// More log output on stderr (-v: info, -vv: debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the intercepting proxy until Ctrl-C.
    #[command(
        after_help = "Examples:\n  modscope proxy -q --record /tmp/trace      then paste the export lines into go's shell\n  modscope proxy --listen 127.0.0.1:0 --fault 'kind=zip:502' 2>/tmp/modscope.log"
    )]
    Proxy(ProxyArgs),
    /// Run a command (e.g. `go mod download`) with its traffic going through modscope.
    #[command(
        after_help = "Examples:\n  modscope run -- go mod download\n  modscope run --record /tmp/trace -- go build ./...\n  modscope run --replay /tmp/trace -- go mod download     offline, from the recording"
    )]
    Run(RunArgs),
    /// Manage the modscope certificate authority.
    #[command(
        after_help = "Examples:\n  modscope ca init\n  modscope ca bundle -o /tmp/roots.pem     system roots + the CA, for SSL_CERT_FILE"
    )]
    Ca {
        #[command(subcommand)]
        action: CaAction,
        /// Where the CA lives [default: $MODSCOPE_HOME, else $XDG_DATA_HOME/modscope, else ~/.local/share/modscope].
        #[arg(long, global = true, value_name = "DIR")]
        ca_dir: Option<PathBuf>,
    },
    /// Offline demonstration: a synthetic GOPROXY, go (or a built-in client) through modscope.
    #[command(
        after_help = "Examples:\n  modscope demo\n  modscope demo --no-go                  the built-in client instead of go"
    )]
    #[cfg(feature = "testkit")]
    Demo(DemoArgs),
    /// Summarize and diagnose a trace (a --record directory, a .har file or a journal).
    #[command(
        after_help = "Examples:\n  modscope summary /tmp/trace\n  modscope summary --json --fail-on error capture.har | jq .findings"
    )]
    Summary(SummaryArgs),
    /// Act as the proxy but answer from a recorded trace, with no network.
    #[command(
        after_help = "Examples:\n  modscope replay /tmp/trace -q\n  modscope replay exported.har --on-miss 502 --timing recorded"
    )]
    Replay(ReplayArgs),
    /// Measure direct vs through-modscope on loopback (release build recommended).
    #[command(after_help = "Example:\n  cargo run --release -- bench")]
    #[cfg(feature = "testkit")]
    Bench(BenchArgs),
    /// Turn a packet capture (pcap/pcapng) into a trace directory.
    #[command(
        after_help = "Example:\n  modscope import capture.pcapng -o /tmp/trace && modscope summary /tmp/trace"
    )]
    Import(ImportArgs),
    /// Check every recorded .zip/.mod against go.sum and the checksum database (exit 1 on a mismatch).
    Verify(VerifyArgs),
    /// Send a recorded trace to an OpenTelemetry collector, or write it as OTLP/JSON.
    #[command(
        after_help = "Examples:\n  modscope export /tmp/trace --otlp http://127.0.0.1:4318\n  modscope export /tmp/trace --otlp-file - | head"
    )]
    Export(ExportArgs),
    /// Write a self-contained HTML report (waterfall, connections, Go view) of a trace.
    Report(ReportArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(
        after_help = "Examples:\n  modscope completions bash > ~/.local/share/bash-completion/completions/modscope\n  modscope completions zsh > ~/.zfunc/_modscope"
    )]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) generated from this help.
    #[command(after_help = "Example:\n  modscope man > ~/.local/share/man/man1/modscope.1")]
    Man,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Trace directory, HAR file or journal.jsonl.
    pub trace: PathBuf,
    /// The HTML file to write [default: TRACE/report.html for a directory, else report.html].
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Trace directory, HAR file or journal.jsonl.
    pub trace: PathBuf,
    /// A go.sum to compare with (besides the checksum-database answers in the trace).
    #[arg(long, value_name = "FILE")]
    pub go_sum: Option<PathBuf>,
    /// Print the checked files and findings as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The capture file (tcpdump, dumpcap, tshark, Wireshark: pcap or pcapng).
    pub capture: PathBuf,
    /// The trace directory to write (must not hold a journal yet).
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
    /// Keep credential header values in the trace.
    #[arg(long)]
    pub no_redact: bool,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Trace directory, HAR file (any tool's, with embedded bodies) or journal.jsonl.
    pub trace: PathBuf,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value_t = defaults::LISTEN, value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Allow listening on a non-loopback address.
    #[arg(long)]
    pub allow_remote: bool,
    #[command(flatten)]
    pub replay: ReplayOptions,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// How a trace is replayed.
#[derive(Debug, Clone, Args)]
pub struct ReplayOptions {
    /// A request the trace lacks: answer 404 (go may fall back), 502, forward it
    /// (passthrough), or forward and append it to the trace (record).
    #[arg(long, default_value = "404", value_name = "404|502|passthrough|record")]
    pub on_miss: crate::replay::OnMiss,
    /// Reproduce recorded wait/receive times: none, recorded, or scale=F.
    #[arg(long, default_value = "none", value_name = "none|recorded|scale=F")]
    pub timing: crate::replay::ReplayTiming,
    /// Ignore this query parameter when matching requests (repeatable).
    #[arg(long, value_name = "PARAM")]
    pub ignore_query: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SummaryArgs {
    /// Trace directory, HAR file or journal.jsonl.
    pub trace: PathBuf,
    /// Print the summary and findings as JSON.
    #[arg(long)]
    pub json: bool,
    /// Exit with status 1 when a finding is at least this severe (for CI).
    #[arg(long, value_name = "error|warning")]
    pub fail_on: Option<FailOn>,
    /// Compare recorded .zip/.mod hashes with this go.sum (checksum-mismatch findings).
    #[arg(long, value_name = "FILE")]
    pub go_sum: Option<PathBuf>,
}

/// `summary --fail-on` levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    Error,
    Warning,
}

#[derive(Debug, Subcommand)]
pub enum CaAction {
    /// Create the CA if it does not exist yet, and print where it is.
    Init,
    /// Print the path of the CA certificate (PEM).
    Path,
    /// Print subject, SHA-256 fingerprint and validity of the CA.
    Show,
    /// Write the CA certificate to stdout (or -o FILE), PEM or DER.
    Export {
        #[arg(long)]
        der: bool,
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Write system roots + the CA into one PEM (for SSL_CERT_FILE) and print its path.
    Bundle {
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

/// Options shared by every command that runs the proxy.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Where the CA lives [default: $MODSCOPE_HOME, else $XDG_DATA_HOME/modscope, else ~/.local/share/modscope].
    #[arg(long, value_name = "DIR")]
    pub ca_dir: Option<PathBuf>,
    /// Also trust this PEM file (CA or self-signed cert) for upstream connections. Repeatable.
    #[arg(long, value_name = "PEM")]
    pub upstream_ca: Vec<PathBuf>,
    /// Connect to ADDR:PORT when HOST:PORT is asked (curl semantics; TLS still checks HOST). Repeatable.
    #[arg(long, value_name = "HOST:PORT:ADDR:PORT")]
    pub connect_to: Vec<String>,
    /// Chain through a parent proxy: http://[user:pass@]host:port.
    #[arg(long, value_name = "URL")]
    pub upstream_proxy: Option<String>,
    /// Tunnel hosts matching this glob untouched (no interception, no recording). Repeatable.
    #[arg(long, value_name = "HOST_GLOB")]
    pub no_intercept: Vec<String>,
    /// Do not print a line per exchange (`run`: nor the closing summary).
    #[arg(short, long)]
    pub quiet: bool,
    /// Record every exchange into this trace directory (journal.jsonl, trace.har, bodies/).
    #[arg(long, value_name = "DIR")]
    pub record: Option<PathBuf>,
    /// Keep Authorization, Proxy-Authorization, Cookie and Set-Cookie values in the trace.
    #[arg(long)]
    pub no_redact: bool,
    /// Embed every body in trace.har (base64) for one portable file.
    #[arg(long)]
    pub embed_bodies: bool,
    /// Most client connections served at once; more wait in the accept queue.
    #[arg(long, default_value_t = defaults::MAX_CONNECTIONS, value_name = "N")]
    pub max_connections: usize,
    /// Seconds a client may take to send a request head (or a TLS ClientHello).
    #[arg(long, default_value_t = defaults::HEADER_TIMEOUT_SECS, value_name = "SECS")]
    pub header_timeout: u64,
    /// Seconds without any traffic before a client connection is closed.
    #[arg(long, default_value_t = defaults::IDLE_TIMEOUT_SECS, value_name = "SECS")]
    pub idle_timeout: u64,
    /// Seconds allowed for DNS and TCP connect upstream together (go's own dial budget
    /// is 30 s; less can fail an origin that go alone would reach).
    #[arg(long, default_value_t = defaults::CONNECT_TIMEOUT_SECS, value_name = "SECS")]
    pub connect_timeout: u64,
    /// Seconds allowed for the upstream TLS handshake; it also ends when go's own 10 s
    /// handshake budget runs out.
    #[arg(long, default_value_t = defaults::TLS_TIMEOUT_SECS, value_name = "SECS")]
    pub tls_timeout: u64,
    /// Seconds without body data from the origin after which a download is recorded as
    /// stalled (cause `body-stalled`); nothing is cut.
    #[arg(long, default_value_t = defaults::STALL_AFTER_SECS, value_name = "SECS")]
    pub stall_after: u64,
    /// Fault rules file (TOML, `[[rule]]` tables); see docs/chaos.md.
    #[arg(long, value_name = "FILE")]
    pub faults: Option<PathBuf>,
    /// An inline fault rule, MATCHERS:ACTION (repeatable), e.g. `kind=zip:502`.
    #[arg(long, value_name = "SPEC", long_help = crate::fault::SPEC_HELP)]
    pub fault: Vec<String>,
    /// A named fault preset (repeatable); `--profile help` lists them.
    #[arg(long, value_name = "NAME")]
    pub profile: Vec<String>,
    /// Seed for probabilistic faults and jitter (printed when faults are active).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Serve the control API (JSON over HTTP) on this loopback address, e.g. 127.0.0.1:9090.
    #[arg(long, value_name = "ADDR")]
    pub admin: Option<SocketAddr>,
    /// Write TLS secrets (client and upstream side) to FILE in NSS key log format, for
    /// Wireshark.
    #[arg(
        long,
        value_name = "FILE",
        env = "SSLKEYLOGFILE",
        hide_env_values = true
    )]
    pub keylog: Option<PathBuf>,
    /// Seconds in-flight exchanges get to finish after SIGINT/SIGTERM.
    #[arg(long, default_value_t = defaults::SHUTDOWN_GRACE_SECS, value_name = "SECS")]
    pub shutdown_grace: u64,
    /// Stand in GOPROXY as a plain-HTTP loopback module proxy in front of the real
    /// entries, so go needs to trust no CA (direct/VCS traffic is then not seen).
    #[arg(long)]
    pub goproxy: bool,
    /// Write a self-contained HTML report of the session to FILE when it finishes.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Send every exchange as an OpenTelemetry span to this OTLP/HTTP collector
    /// (e.g. http://127.0.0.1:4318) [default: $OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or
    /// $OTEL_EXPORTER_OTLP_ENDPOINT when set]. See docs/fleet.md.
    #[arg(long, value_name = "URL")]
    pub otlp: Option<String>,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("destination").required(true).args(["otlp", "otlp_file"])))]
pub struct ExportArgs {
    /// Trace directory, HAR file or journal.jsonl.
    pub trace: PathBuf,
    /// Send the spans to this OTLP/HTTP collector (e.g. http://127.0.0.1:4318).
    #[arg(long, value_name = "URL")]
    pub otlp: Option<String>,
    /// Write OTLP/JSON instead, one export request per line ("-" for stdout).
    #[arg(long, value_name = "FILE")]
    pub otlp_file: Option<PathBuf>,
    /// Trust this CA for an https:// collector (repeatable), besides the system roots.
    #[arg(long, value_name = "PEM")]
    pub upstream_ca: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value_t = defaults::LISTEN, value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Allow listening on a non-loopback address.
    #[arg(long)]
    pub allow_remote: bool,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Answer from this recorded trace instead of the network.
    #[arg(long, value_name = "TRACE")]
    pub replay: Option<PathBuf>,
    #[command(flatten)]
    pub replay_options: ReplayOptions,
    /// Rerun the command up to N times when it failed and the verdict is `transient`
    /// (resets, timeouts, 5xx, 429); never for permanent failures.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub retry_transient: u32,
    /// With --goproxy: also give the command the intercepting proxy's environment
    /// (HTTPS_PROXY, SSL_CERT_FILE, GIT_SSL_CAINFO), so direct/VCS traffic is seen where
    /// the command trusts the modscope CA.
    #[arg(long, requires = "goproxy")]
    pub intercept: bool,
    /// The command to run, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// `modscope bench` options.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Small sizes and few repetitions (a smoke run, not a measurement).
    #[arg(long)]
    pub quick: bool,
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Skip the `go mod download` measurement even when go is installed.
    #[arg(long)]
    pub no_go: bool,
    /// Skip the mitmproxy column even when mitmdump is installed.
    #[arg(long)]
    pub no_mitm: bool,
    /// Run only these measures (comma-separated), e.g. to profile one of them; `wan` (the
    /// WAN workload, about 10 minutes) runs only when named here.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub only: Vec<Measure>,
    /// Repetitions of each measure (the median is reported); default 3, 1 with --quick.
    #[arg(long)]
    pub reps: Option<usize>,
}

/// A group of measurements `--only` can select.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Measure {
    /// Large-body downloads over h2 and http/1.1, and the proxy's peak RSS.
    Throughput,
    /// Sequential small requests on one connection, and the added latency.
    Sequential,
    /// Small requests over many concurrent connections.
    Concurrent,
    /// First and cached handshakes to many hosts.
    Handshake,
    /// `go mod download` of synthetic modules.
    Go,
    /// `modscope run -- go mod download` with `--otlp` aimed at a dead collector, vs without.
    Otlp,
    /// `go mod download` of 1,000 modules of log-normal sizes from an origin 20 ms away
    /// (about 10 minutes; runs only when named).
    Wan,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Use the built-in client even when go is installed.
    #[arg(long)]
    pub no_go: bool,
    /// Keep the demo's working directory (GOMODCACHE, app) instead of deleting it.
    #[arg(long)]
    pub keep: bool,
}

impl CommonArgs {
    /// A validated proxy configuration listening on `listen`. `faults_file` is the
    /// `--faults` file as the command read it; `clock_seed` seeds the faults when neither
    /// `--seed` nor the file does.
    pub fn to_config(
        &self,
        listen: SocketAddr,
        allow_remote: bool,
        color: bool,
        faults_file: Option<RuleFile>,
        clock_seed: u64,
    ) -> Result<ProxyConfig, ConfigError> {
        let connect_to = self
            .connect_to
            .iter()
            .map(|s| ConnectTo::parse(s))
            .collect::<Result<Vec<_>, _>>()?;
        let upstream_proxy = self
            .upstream_proxy
            .as_deref()
            .map(UpstreamProxy::parse)
            .transpose()?;
        let file_seed = faults_file.as_ref().and_then(|f| f.seed);
        let fault_rules = self.fault_rules(faults_file)?;
        let config = ProxyConfig {
            listen,
            allow_remote,
            ca_dir: self
                .ca_dir
                .clone()
                .unwrap_or_else(crate::ca::default_ca_dir),
            upstream_ca: self.upstream_ca.clone(),
            connect_to,
            upstream_proxy,
            no_intercept: self.no_intercept.clone(),
            max_connections: self.max_connections.max(1),
            header_timeout: Duration::from_secs(self.header_timeout.max(1)),
            idle_timeout: Duration::from_secs(self.idle_timeout.max(1)),
            connect_timeout: Duration::from_secs(self.connect_timeout.max(1)),
            tls_timeout: Duration::from_secs(self.tls_timeout.max(1)),
            stall_after: Duration::from_secs(self.stall_after.max(1)),
            shutdown_grace: Duration::from_secs(self.shutdown_grace),
            quiet: self.quiet,
            color,
            fault_rules,
            fault_seed: self.seed.or(file_seed).unwrap_or(clock_seed),
            goproxy_bases: Vec::new(),
            admin: self.admin,
            keylog: self.keylog.clone().filter(|p| !p.as_os_str().is_empty()),
            goproxy: None,
        };
        config.validate()?;
        Ok(config)
    }
}

impl CommonArgs {
    /// Rules from the --faults file, --profile and --fault, in that order.
    pub fn fault_rules(&self, file: Option<RuleFile>) -> Result<Vec<Rule>, ConfigError> {
        let mut rules = file.map(|f| f.rules).unwrap_or_default();
        for name in &self.profile {
            rules.extend(crate::fault::preset(name).map_err(ConfigError::Faults)?);
        }
        for spec in &self.fault {
            rules.push(crate::fault::parse_spec(spec).map_err(ConfigError::Faults)?);
        }
        Ok(rules)
    }
}

impl Command {
    /// The text to print instead of running, when `--profile help` was given to a
    /// command that takes fault options; `main` prints it and exits 0.
    pub fn profile_help(&self) -> Option<String> {
        let common = match self {
            Command::Proxy(a) => &a.common,
            Command::Run(a) => &a.common,
            Command::Replay(a) => &a.common,
            _ => return None,
        };
        common
            .profile
            .iter()
            .any(|p| p == "help")
            .then(presets_help)
    }
}

/// The text of `--profile help`.
pub fn presets_help() -> String {
    let mut out = String::from("fault presets (use with --profile NAME):\n");
    for (name, what) in crate::fault::PRESETS {
        out.push_str(&format!("  {name:<12} {what}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_help_is_answered_before_any_command_runs() {
        let cli = Cli::try_parse_from(["modscope", "proxy", "--profile", "help"]).unwrap();
        let help = cli.command.profile_help().expect("help asked for");
        assert!(
            help.contains("flaky") && help.contains("--profile NAME"),
            "{help}"
        );
        let cli = Cli::try_parse_from(["modscope", "proxy", "--profile", "flaky"]).unwrap();
        assert!(cli.command.profile_help().is_none());
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn run_takes_the_command_after_double_dash() {
        let cli = Cli::try_parse_from([
            "modscope",
            "run",
            "--connect-to",
            "proxy.golang.org:443:127.0.0.1:9",
            "--",
            "go",
            "mod",
            "download",
        ])
        .unwrap();
        let Command::Run(run) = cli.command else {
            panic!("not run")
        };
        assert_eq!(run.command, ["go", "mod", "download"]);
        assert_eq!(run.common.connect_to.len(), 1);
    }

    #[test]
    fn the_quick_start_names_demo_only_where_it_is_built() {
        use clap::CommandFactory;
        let help = Cli::command().render_help().to_string();
        let demo = cfg!(feature = "testkit");
        assert_eq!(help.contains("modscope demo"), demo, "{help}");
        assert_eq!(help.contains("  demo "), demo, "{help}");
        assert!(help.contains("modscope run -- go mod download"), "{help}");
    }

    #[test]
    fn an_embedded_proxy_starts_with_the_command_line_defaults() {
        let cli = Cli::try_parse_from(["modscope", "proxy", "--ca-dir", "/ca"]).unwrap();
        let Command::Proxy(p) = cli.command else {
            panic!("not proxy")
        };
        let parsed = p.common.to_config(p.listen, false, false, None, 1).unwrap();
        let embedded = ProxyConfig::new(PathBuf::from("/ca"));
        assert_eq!(format!("{parsed:?}"), format!("{embedded:?}"));
        assert_eq!(embedded.go_handshake_warning(), None);
    }

    #[test]
    fn bad_connect_to_is_refused_with_the_reason() {
        let cli = Cli::try_parse_from(["modscope", "proxy", "--connect-to", "nonsense"]).unwrap();
        let Command::Proxy(p) = cli.command else {
            panic!("not proxy")
        };
        let err = p
            .common
            .to_config(p.listen, false, false, None, 1)
            .unwrap_err()
            .to_string();
        assert!(err.contains("needs 4"), "{err}");
    }

    #[test]
    fn seed_comes_from_the_flag_then_the_faults_file_then_the_clock() {
        let parse = |args: &[&str]| {
            let cli = Cli::try_parse_from(["modscope", "proxy"].iter().chain(args)).unwrap();
            let Command::Proxy(p) = cli.command else {
                panic!("not proxy")
            };
            p.common
        };
        let file = || {
            crate::fault::parse_toml(
                "seed = 7\n[[rule]]\nname = \"from-file\"\nmatch = { kind = \"zip\" }\nrespond = { status = 502 }\n",
                "f.toml",
            )
            .unwrap()
        };
        let listen = SocketAddr::from(([127, 0, 0, 1], 0));
        let common = parse(&["--fault", "kind=mod:503"]);
        let config = common
            .to_config(listen, false, false, Some(file()), 99)
            .unwrap();
        assert_eq!(config.fault_seed, 7);
        // The file's rules first, then the inline ones.
        assert_eq!(config.fault_rules.len(), 2);
        assert_eq!(config.fault_rules[0].name, "from-file");
        assert_eq!(
            common
                .to_config(listen, false, false, None, 99)
                .unwrap()
                .fault_seed,
            99
        );
        let seeded = parse(&["--seed", "5"]);
        let config = seeded
            .to_config(listen, false, false, Some(file()), 99)
            .unwrap();
        assert_eq!(config.fault_seed, 5);
    }
}
