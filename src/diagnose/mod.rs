//! Turns observed exchanges into a traffic summary and Go-aware findings (cause + advice).
//!
//! Pure: the shell maps trace entries into [`Observation`]s; nothing here reads
//! files, sockets, the environment or clocks.

pub mod advice;
mod checksums;
mod credentials;
mod findings;
mod forensics;
mod host_header;
mod render;
mod routes;
pub mod slowlink;
mod summary;
mod verdict;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

use crate::exchange::{BodyStall, ExchangeError, FaultFacts, PhaseTimes};
use crate::gomod::{Fallback, GoRequest};

pub use checksums::{
    checksum_findings, verify_rows, zips_to_compare, ChecksumFacts, FileDiff, Source, VerifyRow,
    VerifyStatus,
};
pub use credentials::{AuthEnv, CredentialFacts};
pub use findings::{diagnose, diagnose_with};
pub use forensics::{diagnose_all, Evidence, GoSumFile};
pub use render::render_text;
pub use routes::{module_routes, ModuleRoute};
pub use summary::{
    percentiles, summarize, Counts, Download, HostSummary, HostTimings, KindSummary, Percentiles,
    Summary,
};
pub use verdict::{failure_class, verdict, FailureClass, Verdict, VerdictReason};

/// One exchange as diagnosis needs it, decoupled from the HAR model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// Entry number: 1-based position in the trace (`#1` is the first entry), the
    /// number every `#N` in modscope's output uses.
    pub index: usize,
    /// Milliseconds since the trace started, for ordering.
    pub started_ms: f64,
    pub method: String,
    pub url: String,
    /// `host[:port]` as requested by the client.
    pub host: String,
    /// 0 when no response head arrived (see `error`).
    pub status: u16,
    pub error: Option<ExchangeError>,
    /// Set when modscope injected a fault into this exchange.
    pub fault: Option<FaultFacts>,
    pub go: GoRequest,
    pub timings: PhaseTimes,
    pub total_ms: f64,
    pub response_bytes: u64,
    /// False when the body was cut short.
    pub body_complete: bool,
    /// A short text/plain response body, if any (a proxy's own explanation).
    pub response_text: Option<String>,
    /// The response's `Retry-After` header, if any (429 and 503 answers).
    pub retry_after: Option<String>,
    /// Bytes client→server and server→client of a captured connection whose requests
    /// could not be seen (TLS in an imported capture): a connection, not a request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_bytes: Option<[u64; 2]>,
    /// The body waited on the origin for the stall threshold or longer (`_stall`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stall: Option<BodyStall>,
    /// The request's `Authorization` scheme (`Basic`, `Bearer`), never its value;
    /// `Some("")` when the header was present but its scheme was redacted away.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<String>,
    /// For a checksum-database lookup: the go.sum lines its answer holds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sums: Vec<crate::gomod::gosum::SumLine>,
    /// The request's `Host` header (or HTTP/2 `:authority`) when the trace kept one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_header: Option<String>,
}

/// The go environment the traced command ran with (`go env` values; `None` = unset).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoEnv {
    pub goproxy: Option<String>,
    pub gonoproxy: Option<String>,
    pub goprivate: Option<String>,
    pub gonosumdb: Option<String>,
    pub gosumdb: Option<String>,
    pub goflags: Option<String>,
    pub goinsecure: Option<String>,
}

impl GoEnv {
    /// GONOPROXY, or GOPRIVATE when GONOPROXY is unset or empty (as go does), with the
    /// variable's name for advice.
    pub fn noproxy(&self) -> Option<(&'static str, &str)> {
        pick("GONOPROXY", &self.gonoproxy).or_else(|| pick("GOPRIVATE", &self.goprivate))
    }

    /// GONOSUMDB, or GOPRIVATE when GONOSUMDB is unset or empty.
    pub fn nosumdb(&self) -> Option<(&'static str, &str)> {
        pick("GONOSUMDB", &self.gonosumdb).or_else(|| pick("GOPRIVATE", &self.goprivate))
    }

    /// GOPROXY as go sees it (unset and empty both mean the default list).
    pub fn goproxy_value(&self) -> &str {
        self.goproxy.as_deref().unwrap_or("")
    }

    pub fn sumdb_off(&self) -> bool {
        self.gosumdb.as_deref().map(str::trim) == Some("off")
    }
}

fn pick<'a>(name: &'static str, v: &'a Option<String>) -> Option<(&'static str, &'a str)> {
    v.as_deref().filter(|s| !s.is_empty()).map(|s| (name, s))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(&self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// Why an exchange (or the configuration) deserves attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    /// The name does not exist (NXDOMAIN): a typo or a missing record.
    DnsFailure,
    /// The resolver failed (SERVFAIL, timeout, none reachable), not the name.
    DnsServerFailure,
    ConnectionRefused,
    ConnectTimeout,
    TlsUntrusted,
    TlsHostnameMismatch,
    TlsExpired,
    /// The certificate's notBefore is in the future (a clock behind, or a cert issued ahead).
    TlsNotYetValid,
    TlsHandshakeTimeout,
    TlsHandshakeFailed,
    ProxyAuthRequired,
    UpstreamProxyFailed,
    /// 401 or 403.
    Forbidden,
    /// 404 or 410 that go could not work around.
    NotFound,
    /// 404/410 from go probing module-path prefixes (`go get a/b/c`).
    ExpectedProbing,
    /// 404/410 on `/sumdb/<name>/supported`: go then talks to the database directly.
    SumdbNotProxied,
    /// 404/410 here, but the same module was served by a later host.
    FellBack,
    RateLimited,
    UpstreamServerError,
    ResetOrTruncated,
    /// The server accepted the request, then closed or reset without any response head.
    NoResponse,
    /// A response body received nothing for the stall threshold.
    BodyStalled,
    /// Connect round trips, first bytes or body throughput far off what module
    /// downloads need (thresholds in [`slowlink`]).
    SlowLink,
    Timeout,
    ProtocolError,
    ClientAbort,
    OtherError,
    /// Replay could not serve a recorded body (missing or corrupt body file).
    ReplayBodyUnavailable,
    /// A non-200 status with no cause of its own (go fails on any non-200).
    UnexpectedStatus,
    SlowFirstByte,
    /// Injected by modscope; never counted as a real failure.
    InjectedFault,
    /// A URL go itself would not produce (bad escapes, unknown proxy file).
    MalformedRequest,
    /// A module matching GONOPROXY/GOPRIVATE went to a proxy instead of direct.
    PrivateModuleViaProxy,
    /// A module matching GONOSUMDB/GOPRIVATE was looked up in the checksum database.
    PrivateModuleViaSumdb,
    SumdbDisabled,
    InsecureSetting,
    /// GOPROXY holds no usable entry.
    GoproxyUnusable,
    /// A served `.zip`/`.mod` whose `h1:` differs from go.sum, the checksum database or
    /// another host's copy.
    ChecksumMismatch,
    /// A module zip go refuses (files outside `module@version/`, unreadable, ...).
    ZipRejected,
    /// 401/403 (or 407 from an origin) where go had no credentials to send.
    CredentialsMissing,
    /// 401/403 although the request carried credentials.
    CredentialsRefused,
    /// A GOPRIVATE/GONOPROXY/GONOSUMDB module name reached a public proxy or checksum database.
    PrivatePathLeak,
    /// The recorder could not write every exchange (a full disk): the trace has a gap.
    TraceIncomplete,
    /// The client's Host named another site than the CONNECT target modscope dialled.
    HostHeaderMismatch,
}

impl Cause {
    pub fn as_str(&self) -> &'static str {
        match self {
            Cause::DnsFailure => "dns-failure",
            Cause::DnsServerFailure => "dns-server-failure",
            Cause::ConnectionRefused => "connection-refused",
            Cause::ConnectTimeout => "connect-timeout",
            Cause::TlsUntrusted => "tls-untrusted",
            Cause::TlsHostnameMismatch => "tls-hostname-mismatch",
            Cause::TlsExpired => "tls-expired",
            Cause::TlsNotYetValid => "tls-not-yet-valid",
            Cause::TlsHandshakeTimeout => "tls-handshake-timeout",
            Cause::TlsHandshakeFailed => "tls-handshake-failed",
            Cause::ProxyAuthRequired => "proxy-auth-required",
            Cause::UpstreamProxyFailed => "upstream-proxy-failed",
            Cause::Forbidden => "forbidden",
            Cause::NotFound => "not-found",
            Cause::ExpectedProbing => "expected-probing",
            Cause::SumdbNotProxied => "sumdb-not-proxied",
            Cause::FellBack => "fell-back",
            Cause::RateLimited => "rate-limited",
            Cause::UpstreamServerError => "upstream-server-error",
            Cause::ResetOrTruncated => "reset-or-truncated",
            Cause::NoResponse => "no-response",
            Cause::BodyStalled => "body-stalled",
            Cause::SlowLink => "slow-link",
            Cause::Timeout => "timeout",
            Cause::ProtocolError => "protocol-error",
            Cause::ClientAbort => "client-abort",
            Cause::OtherError => "other-error",
            Cause::ReplayBodyUnavailable => "replay-body-unavailable",
            Cause::UnexpectedStatus => "unexpected-status",
            Cause::SlowFirstByte => "slow-first-byte",
            Cause::InjectedFault => "injected-fault",
            Cause::MalformedRequest => "malformed-request",
            Cause::PrivateModuleViaProxy => "private-module-via-proxy",
            Cause::PrivateModuleViaSumdb => "private-module-via-sumdb",
            Cause::SumdbDisabled => "sumdb-disabled",
            Cause::InsecureSetting => "insecure-setting",
            Cause::GoproxyUnusable => "goproxy-unusable",
            Cause::ChecksumMismatch => "checksum-mismatch",
            Cause::ZipRejected => "zip-rejected",
            Cause::CredentialsMissing => "credentials-missing",
            Cause::CredentialsRefused => "credentials-refused",
            Cause::PrivatePathLeak => "private-path-leak",
            Cause::TraceIncomplete => "trace-incomplete",
            Cause::HostHeaderMismatch => "host-header-mismatch",
        }
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What go does after a failure at one GOPROXY entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FallbackNote {
    /// The GOPROXY entry the request went to.
    pub entry: String,
    /// The separator after that entry.
    pub separator: Fallback,
    /// Whether go moves on to `next` after this kind of failure.
    pub go_falls_back: bool,
    /// The following entry (`direct`, `off` or a URL), if any.
    pub next: Option<String>,
    /// GOPROXY rewritten with '|' after `entry`, when ',' is what stops go.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggested_goproxy: Option<String>,
    /// The separator was inferred from the trace (go's environment was not known).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub inferred: bool,
}

/// One diagnosed problem, grouped per cause and host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub cause: Cause,
    pub severity: Severity,
    /// `Observation::index` of every exchange involved, ascending.
    pub entries: Vec<usize>,
    pub host: Option<String>,
    pub title: String,
    /// One concrete line in Go terms.
    pub advice: String,
    /// A representative error message or server explanation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// `module[@version]` involved, deduplicated, in trace order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub modules: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<FallbackNote>,
    /// The fault rule that injected this failure; the finding then shows the real
    /// diagnosis of the same failure, at severity info.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub injected_by: Option<String>,
    /// Every failure of this finding was followed by a success of the same request
    /// (method and URL): a retry got through, so the failure was transient.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub transient: bool,
    /// Facts behind a forensic finding (hashes compared, credentials go could send).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<FindingEvidence>,
}

impl Finding {
    /// A finding with nothing but its cause and severity; the rest is filled in with
    /// struct-update syntax, so a field added later has one default, here.
    pub fn new(cause: Cause, severity: Severity) -> Finding {
        Finding {
            cause,
            severity,
            entries: Vec::new(),
            host: None,
            title: String::new(),
            advice: String::new(),
            detail: None,
            modules: Vec::new(),
            fallback: None,
            injected_by: None,
            transient: false,
            evidence: None,
        }
    }
}

/// The facts a forensic finding rests on, for scripts (`summary --json`) and the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "type")]
pub enum FindingEvidence {
    Checksum(ChecksumFacts),
    Credentials(CredentialFacts),
}

/// Tunables for [`diagnose_with`].
#[derive(Debug, Clone, PartialEq)]
pub struct DiagnoseOptions {
    /// A first byte slower than this is reported (go itself never times out waiting).
    pub slow_wait_ms: f64,
}

impl Default for DiagnoseOptions {
    fn default() -> Self {
        DiagnoseOptions {
            slow_wait_ms: 10_000.0,
        }
    }
}
