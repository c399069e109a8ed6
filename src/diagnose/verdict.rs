//! The verdict CI acts on: every failure classified `transient` (worth a retry) or
//! `permanent` (a retry cannot help), with the hop that produced it.
//!
//! Pure. [`failure_class`] is the one place that decides; a new cause gets its class there.

use serde::{Deserialize, Serialize};

use super::findings::{cause_for_error, is_injected};
use super::{Cause, Finding, Observation, Severity};
use crate::exchange::{ErrorKind, FailPhase};

/// Whether a retry could help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureClass {
    Transient,
    Permanent,
}

/// The outcome of a whole trace: `ok`, or the worst class of its failures
/// (`permanent` outranks `transient`: retrying cannot fix the permanent part).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Ok,
    Transient,
    Permanent,
}

impl Verdict {
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Transient => "transient",
            Verdict::Permanent => "permanent",
        }
    }
}

/// One failure behind the verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerdictReason {
    pub class: FailureClass,
    pub cause: Cause,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Which hop failed: a GOPROXY entry, the checksum database, a VCS host, the
    /// upstream proxy.
    pub hop: String,
    pub entries: Vec<usize>,
}

/// Transient or permanent, per cause; `None` for causes that are not failures (notes,
/// detours go routed around, configuration remarks).
pub fn failure_class(cause: Cause) -> Option<FailureClass> {
    use FailureClass::{Permanent, Transient};
    match cause {
        Cause::ResetOrTruncated
        | Cause::Timeout
        | Cause::ConnectTimeout
        | Cause::ConnectionRefused
        | Cause::TlsHandshakeTimeout
        | Cause::UpstreamServerError
        | Cause::RateLimited
        | Cause::ProtocolError
        | Cause::UpstreamProxyFailed
        | Cause::DnsServerFailure
        | Cause::NoResponse
        | Cause::BodyStalled
        | Cause::OtherError => Some(Transient),
        Cause::NotFound
        | Cause::ChecksumMismatch
        | Cause::ZipRejected
        | Cause::TlsUntrusted
        | Cause::TlsHostnameMismatch
        | Cause::TlsExpired
        | Cause::TlsNotYetValid
        | Cause::TlsHandshakeFailed
        | Cause::Forbidden
        | Cause::CredentialsMissing
        | Cause::CredentialsRefused
        | Cause::ProxyAuthRequired
        | Cause::DnsFailure
        | Cause::UnexpectedStatus
        | Cause::MalformedRequest
        | Cause::PrivatePathLeak
        | Cause::ReplayBodyUnavailable
        | Cause::GoproxyUnusable => Some(Permanent),
        Cause::ExpectedProbing
        | Cause::SumdbNotProxied
        | Cause::FellBack
        | Cause::SlowFirstByte
        | Cause::ClientAbort
        | Cause::InjectedFault
        | Cause::PrivateModuleViaProxy
        | Cause::PrivateModuleViaSumdb
        | Cause::SumdbDisabled
        | Cause::InsecureSetting
        | Cause::TraceIncomplete
        | Cause::SlowLink
        | Cause::HostHeaderMismatch => None,
    }
}

/// The cause an injected fault imitates, judged like a real one (a chaos test asks what
/// CI would do with it).
fn imitated(o: &Observation) -> Cause {
    match (&o.error, o.status) {
        (Some(e), _) if e.kind != ErrorKind::Injected => cause_for_error(e),
        (Some(e), _) if e.phase == FailPhase::Tls => Cause::TlsHandshakeFailed,
        (Some(_), _) => Cause::ResetOrTruncated,
        (None, 401 | 403) => Cause::Forbidden,
        (None, 404 | 410) => Cause::NotFound,
        (None, 429) => Cause::RateLimited,
        (None, 500..=599) => Cause::UpstreamServerError,
        (None, s) if !o.body_complete && (200..300).contains(&s) => Cause::ResetOrTruncated,
        (None, 200..=399) => Cause::InjectedFault,
        (None, _) => Cause::UnexpectedStatus,
    }
}

fn hop(f: &Finding, obs: &[Observation]) -> String {
    if let Some(note) = &f.fallback {
        return format!("GOPROXY entry {}", note.entry);
    }
    let kind = f
        .entries
        .first()
        .and_then(|i| obs.iter().find(|o| o.index == *i))
        .map(|o| o.go.kind);
    let host = f.host.clone().unwrap_or_else(|| "?".to_string());
    match (f.cause, kind) {
        (Cause::ProxyAuthRequired | Cause::UpstreamProxyFailed, _) => "upstream proxy".to_string(),
        // The bytes came from the host named in the finding, whatever source disagreed.
        (Cause::ChecksumMismatch | Cause::ZipRejected, _) => format!("GOPROXY host {host}"),
        (_, Some(k)) if k.is_sumdb() => format!("checksum database {host}"),
        (_, Some(k)) if k.is_direct() => format!("VCS host {host}"),
        (_, Some(k)) if k.is_goproxy() => format!("GOPROXY host {host}"),
        _ => host,
    }
}

/// The verdict over findings: errors count; an injected fault counts by what it
/// imitates unless go fell back past it.
pub fn verdict(findings: &[Finding], obs: &[Observation]) -> (Verdict, Vec<VerdictReason>) {
    let mut reasons = Vec::new();
    for f in findings {
        let cause = if f.cause == Cause::InjectedFault {
            if f.fallback.as_ref().is_some_and(|n| n.go_falls_back) {
                continue;
            }
            let Some(o) = f
                .entries
                .iter()
                .find_map(|i| obs.iter().find(|o| o.index == *i && is_injected(o)))
            else {
                continue;
            };
            imitated(o)
        } else if f.injected_by.is_some() {
            // The real diagnosis of an injected failure, shown at severity info: it counts
            // as the failure it is, unless go fell back past it.
            if f.fallback.as_ref().is_some_and(|n| n.go_falls_back) {
                continue;
            }
            f.cause
        } else if f.severity == Severity::Error {
            f.cause
        } else {
            continue;
        };
        if let Some(class) = failure_class(cause) {
            reasons.push(VerdictReason {
                class,
                cause,
                host: f.host.clone(),
                hop: hop(f, obs),
                entries: f.entries.clone(),
            });
        }
    }
    let verdict = match reasons.iter().map(|r| r.class).max() {
        None => Verdict::Ok,
        Some(FailureClass::Transient) => Verdict::Transient,
        Some(FailureClass::Permanent) => Verdict::Permanent,
    };
    (verdict, reasons)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::{ExchangeError, FaultFacts};

    #[test]
    fn classes_per_cause() {
        let table = [
            (Cause::ResetOrTruncated, Some(FailureClass::Transient)),
            (Cause::Timeout, Some(FailureClass::Transient)),
            (Cause::UpstreamServerError, Some(FailureClass::Transient)),
            (Cause::RateLimited, Some(FailureClass::Transient)),
            (Cause::ProtocolError, Some(FailureClass::Transient)),
            (Cause::NotFound, Some(FailureClass::Permanent)),
            (Cause::ChecksumMismatch, Some(FailureClass::Permanent)),
            (Cause::TlsUntrusted, Some(FailureClass::Permanent)),
            (Cause::Forbidden, Some(FailureClass::Permanent)),
            (Cause::CredentialsMissing, Some(FailureClass::Permanent)),
            (Cause::FellBack, None),
            (Cause::ExpectedProbing, None),
            (Cause::SlowFirstByte, None),
        ];
        for (cause, want) in table {
            assert_eq!(failure_class(cause), want, "{cause}");
        }
    }

    fn finding(cause: Cause, severity: Severity, entry: usize) -> Finding {
        Finding {
            entries: vec![entry],
            host: Some("proxy.golang.org".into()),
            ..Finding::new(cause, severity)
        }
    }

    fn zip_obs(index: usize) -> Observation {
        let url = "https://proxy.golang.org/example.com/a/@v/v1.0.0.zip";
        Observation {
            index,
            url: url.into(),
            status: 200,
            body_complete: true,
            go: crate::gomod::classify("GET", url, &[]),
            ..Observation::default()
        }
    }

    #[test]
    fn the_worst_class_wins_and_warnings_do_not_count() {
        let obs = vec![zip_obs(0), zip_obs(1)];
        let cases = [
            (vec![], Verdict::Ok),
            (
                vec![finding(Cause::UpstreamServerError, Severity::Warning, 0)],
                Verdict::Ok,
            ),
            (
                vec![finding(Cause::ResetOrTruncated, Severity::Error, 0)],
                Verdict::Transient,
            ),
            (
                vec![
                    finding(Cause::ResetOrTruncated, Severity::Error, 0),
                    finding(Cause::ChecksumMismatch, Severity::Error, 1),
                ],
                Verdict::Permanent,
            ),
        ];
        for (findings, want) in cases {
            let (got, reasons) = verdict(&findings, &obs);
            assert_eq!(got, want, "{findings:?}");
            if let Some(r) = reasons.first() {
                assert_eq!(r.hop, "GOPROXY host proxy.golang.org");
            }
        }
    }

    #[test]
    fn injected_faults_count_as_what_they_imitate() {
        let mut cut = zip_obs(0);
        cut.fault = Some(FaultFacts {
            rule: "cut".into(),
            action: "reset".into(),
        });
        cut.error = Some(ExchangeError {
            phase: crate::exchange::FailPhase::Body,
            kind: crate::exchange::ErrorKind::Injected,
            message: "cut".into(),
        });
        let mut gone = zip_obs(1);
        gone.status = 404;
        gone.fault = cut.fault.clone();
        let f = |i| finding(Cause::InjectedFault, Severity::Info, i);
        assert_eq!(verdict(&[f(0)], &[cut.clone()]).0, Verdict::Transient);
        assert_eq!(verdict(&[f(1)], &[gone]).0, Verdict::Permanent);
    }
}
