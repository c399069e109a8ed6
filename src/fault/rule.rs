//! The rule model: what a fault rule matches, how often it fires and what it does.
//! Its serde shape lives in `raw.rs`, its checks in `validate.rs`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::glob::{glob_match, host_match, module_match};
use super::raw::{
    de_fraction, de_status, default_refuse_status, one_or_many, one_u32, ser_one_or_many, RawRule,
};
use super::units::serde_units;
use super::validate::check_status;
use super::RequestFacts;

/// When, in the life of a proxied exchange, a rule is consulted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// The client's CONNECT arrived; only host and port are known.
    Connect,
    /// The client's TLS handshake with modscope; only host (SNI) and port are known.
    Tls,
    /// A request head arrived and has not been forwarded yet.
    Request,
    /// The upstream response head arrived and has not been relayed yet.
    Response,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Connect => "connect",
            Phase::Tls => "tls",
            Phase::Request => "request",
            Phase::Response => "response",
        })
    }
}

/// The request kinds rules match on: the trace's `_go.kind`.
pub use crate::gomod::GoKind;

/// A status matcher item: an exact code or a class (`5xx`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusPattern {
    Code(u16),
    /// The hundreds digit, 1..=5.
    Class(u8),
}

impl StatusPattern {
    pub fn parse(text: &str) -> Result<StatusPattern, String> {
        let text = text.trim();
        let lower = text.to_ascii_lowercase();
        if let Some(digit) = lower.strip_suffix("xx") {
            return match digit.parse::<u8>() {
                Ok(d @ 1..=5) => Ok(StatusPattern::Class(d)),
                _ => Err(format!("status class `{text}` must be one of 1xx..5xx")),
            };
        }
        let code: u16 = text
            .parse()
            .map_err(|_| format!("status `{text}` is neither a code (502) nor a class (5xx)"))?;
        check_status(code, "status")?;
        Ok(StatusPattern::Code(code))
    }

    pub fn matches(self, status: u16) -> bool {
        match self {
            StatusPattern::Code(c) => c == status,
            StatusPattern::Class(d) => status / 100 == u16::from(d),
        }
    }
}

impl fmt::Display for StatusPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatusPattern::Code(c) => write!(f, "{c}"),
            StatusPattern::Class(d) => write!(f, "{d}xx"),
        }
    }
}

/// Conditions on a request; every one that is set must hold. Empty lists mean "any".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Match {
    /// Host glob, case-insensitive; `*` also crosses dots (`*.example.com`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "one_or_many",
        serialize_with = "ser_one_or_many"
    )]
    pub kind: Vec<GoKind>,
    /// Module glob with GOPRIVATE semantics (element-wise, matches sub-paths too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// Version, exact or glob (`v1.*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "one_or_many",
        serialize_with = "ser_one_or_many"
    )]
    pub method: Vec<String>,
    /// Glob on the URL path (no query); `*` also crosses `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Status of the real upstream response; a rule that sets it acts at the Response phase.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "one_or_many",
        serialize_with = "ser_one_or_many"
    )]
    pub status: Vec<StatusPattern>,
}

impl Match {
    pub fn is_any(&self) -> bool {
        *self == Match::default()
    }

    /// Names of the set matchers other than `host`; used to refuse rules that act
    /// before those facts exist.
    pub(crate) fn set_beyond_host(&self) -> Vec<&'static str> {
        let mut set = Vec::new();
        if !self.kind.is_empty() {
            set.push("kind");
        }
        if self.module.is_some() {
            set.push("module");
        }
        if self.version.is_some() {
            set.push("version");
        }
        if !self.method.is_empty() {
            set.push("method");
        }
        if self.path.is_some() {
            set.push("path");
        }
        if !self.status.is_empty() {
            set.push("status");
        }
        set
    }

    pub fn matches(&self, facts: &RequestFacts) -> bool {
        if let Some(p) = &self.host {
            if !host_match(p, &facts.host) {
                return false;
            }
        }
        if !self.kind.is_empty() {
            // A request gomod could not classify is, for matching, of kind `other`.
            let kind = facts.go_kind.unwrap_or(GoKind::Other);
            if !self.kind.contains(&kind) {
                return false;
            }
        }
        if let Some(p) = &self.module {
            match &facts.module {
                Some(m) if module_match(p, m) => {}
                _ => return false,
            }
        }
        if let Some(p) = &self.version {
            match &facts.version {
                Some(v) if glob_match(p, v) => {}
                _ => return false,
            }
        }
        if !self.method.is_empty()
            && !self
                .method
                .iter()
                .any(|m| m.eq_ignore_ascii_case(&facts.method))
        {
            return false;
        }
        if let Some(p) = &self.path {
            if !glob_match(p, &facts.path) {
                return false;
            }
        }
        if !self.status.is_empty() {
            match facts.status {
                Some(s) if self.status.iter().any(|p| p.matches(s)) => {}
                _ => return false,
            }
        }
        true
    }
}

/// Which of the matching requests a rule acts on. Gates apply in this order:
/// skip the first `after` matches, keep the next `first` (window), of those every
/// `every`-th, and of those a `probability` share.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    pub probability: f64,
    pub first: Option<u64>,
    pub every: Option<u64>,
    pub after: u64,
}

impl Default for Selection {
    fn default() -> Self {
        Selection {
            probability: 1.0,
            first: None,
            every: None,
            after: 0,
        }
    }
}

impl Selection {
    /// Whether the `nth` match (1-based) passes the counting gates; the
    /// probability gate is the caller's, as it needs the RNG.
    pub fn counts_in(&self, nth: u64) -> bool {
        let Some(index) = nth.checked_sub(self.after).filter(|&i| i >= 1) else {
            return false;
        };
        if self.first.is_some_and(|first| index > first) {
            return false;
        }
        self.every
            .is_none_or(|every| every != 0 && index % every == 0)
    }
}

/// What the rule does when it fires. Exactly one per rule.
#[derive(Debug, Clone, PartialEq)]
pub enum ActionSpec {
    Respond(RespondSpec),
    Latency(LatencySpec),
    Bandwidth(BandwidthSpec),
    Stall(StallSpec),
    Reset(ResetSpec),
    Truncate(TruncateSpec),
    Corrupt(CorruptSpec),
    RefuseConnect(RefuseSpec),
    CloseAfterConnect,
    Tls(TlsSpec),
}

/// Answer in place of upstream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RespondSpec {
    #[serde(deserialize_with = "de_status")]
    pub status: u16,
    /// Sent as text/plain so `go` prints it after `server response:`; defaults to a
    /// line naming the rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

/// Delay before the response head: `fixed_ms` plus a jitter draw, clamped to >= 0.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencySpec {
    #[serde(default, deserialize_with = "serde_units::ms")]
    pub fixed_ms: u64,
    #[serde(default, skip_serializing_if = "Jitter::is_none")]
    pub jitter: Jitter,
}

/// Random part of a latency, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Jitter {
    #[default]
    None,
    /// Whole milliseconds uniformly in [min_ms, max_ms]; negative values shorten `fixed_ms`.
    Uniform {
        min_ms: i64,
        max_ms: i64,
    },
    Normal {
        mean_ms: f64,
        stddev_ms: f64,
    },
    /// exp(N(mu, sigma)) milliseconds: median e^mu, long right tail.
    Lognormal {
        mu: f64,
        sigma: f64,
    },
}

impl Jitter {
    pub fn is_none(&self) -> bool {
        matches!(self, Jitter::None)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BandwidthSpec {
    #[serde(
        default,
        deserialize_with = "serde_units::opt_rate",
        skip_serializing_if = "Option::is_none"
    )]
    pub down_bytes_per_sec: Option<u64>,
    #[serde(
        default,
        deserialize_with = "serde_units::opt_rate",
        skip_serializing_if = "Option::is_none"
    )]
    pub up_bytes_per_sec: Option<u64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StallEnd {
    /// Close the connection cleanly (FIN): go sees `unexpected EOF`.
    #[default]
    Close,
    /// Abort it (RST): go sees `connection reset by peer`.
    Reset,
}

/// Stop sending, for `ms` or forever, then end the connection. With `after_bytes` or
/// `fraction` the stall happens mid-body (Response phase), else before the head.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StallSpec {
    #[serde(
        default,
        deserialize_with = "serde_units::opt_ms",
        skip_serializing_if = "Option::is_none"
    )]
    pub ms: Option<u64>,
    #[serde(default)]
    pub then: StallEnd,
    #[serde(
        default,
        deserialize_with = "serde_units::opt_size",
        skip_serializing_if = "Option::is_none"
    )]
    pub after_bytes: Option<u64>,
    #[serde(
        default,
        deserialize_with = "de_fraction",
        skip_serializing_if = "Option::is_none"
    )]
    pub fraction: Option<f64>,
}

/// Abort the connection: before the response head, or after some body bytes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetSpec {
    #[serde(
        default,
        deserialize_with = "serde_units::opt_size",
        skip_serializing_if = "Option::is_none"
    )]
    pub after_bytes: Option<u64>,
    #[serde(
        default,
        deserialize_with = "de_fraction",
        skip_serializing_if = "Option::is_none"
    )]
    pub fraction: Option<f64>,
}

/// End the body cleanly but early (exactly one of the two is required).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TruncateSpec {
    #[serde(
        default,
        deserialize_with = "serde_units::opt_size",
        skip_serializing_if = "Option::is_none"
    )]
    pub after_bytes: Option<u64>,
    #[serde(
        default,
        deserialize_with = "de_fraction",
        skip_serializing_if = "Option::is_none"
    )]
    pub fraction: Option<f64>,
}

/// Invert `count` body bytes: from `offset` on, or scattered over the middle half.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorruptSpec {
    #[serde(
        default,
        deserialize_with = "serde_units::opt_size",
        skip_serializing_if = "Option::is_none"
    )]
    pub offset: Option<u64>,
    #[serde(default = "one_u32")]
    pub count: u32,
}

impl Default for CorruptSpec {
    fn default() -> Self {
        CorruptSpec {
            offset: None,
            count: 1,
        }
    }
}

/// Answer the CONNECT with an error status instead of opening the tunnel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefuseSpec {
    #[serde(default = "default_refuse_status", deserialize_with = "de_status")]
    pub status: u16,
}

impl Default for RefuseSpec {
    fn default() -> Self {
        RefuseSpec {
            status: default_refuse_status(),
        }
    }
}

/// Misbehave in the client-side TLS handshake.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSpec {
    /// Hold the handshake this long first (go gives up after 10 s: `TLS handshake timeout`).
    #[serde(
        default,
        deserialize_with = "serde_units::opt_ms",
        skip_serializing_if = "Option::is_none"
    )]
    pub stall_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<CertFault>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertFault {
    /// Signed by a throwaway CA: `x509: certificate signed by unknown authority`.
    Untrusted,
    /// Signed by the modscope CA but outside its validity period.
    Expired,
    /// Signed by the modscope CA for another name.
    WrongHost,
}

impl CertFault {
    pub fn as_str(self) -> &'static str {
        match self {
            CertFault::Untrusted => "untrusted",
            CertFault::Expired => "expired",
            CertFault::WrongHost => "wrong_host",
        }
    }
}

/// A point in a body, resolved against the Content-Length when it is a fraction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BodyPoint {
    Bytes(u64),
    Fraction(f64),
}

fn body_point(after_bytes: Option<u64>, fraction: Option<f64>) -> Option<BodyPoint> {
    match (after_bytes, fraction) {
        (Some(b), _) => Some(BodyPoint::Bytes(b)),
        (None, Some(f)) => Some(BodyPoint::Fraction(f)),
        (None, None) => None,
    }
}

impl StallSpec {
    pub fn at(&self) -> Option<BodyPoint> {
        body_point(self.after_bytes, self.fraction)
    }
}

impl ResetSpec {
    pub fn at(&self) -> Option<BodyPoint> {
        body_point(self.after_bytes, self.fraction)
    }
}

impl TruncateSpec {
    pub fn at(&self) -> Option<BodyPoint> {
        body_point(self.after_bytes, self.fraction)
    }
}

impl ActionSpec {
    /// The key naming this action in TOML and JSON.
    pub fn name(&self) -> &'static str {
        match self {
            ActionSpec::Respond(_) => "respond",
            ActionSpec::Latency(_) => "latency",
            ActionSpec::Bandwidth(_) => "bandwidth",
            ActionSpec::Stall(_) => "stall",
            ActionSpec::Reset(_) => "reset",
            ActionSpec::Truncate(_) => "truncate",
            ActionSpec::Corrupt(_) => "corrupt",
            ActionSpec::RefuseConnect(_) => "refuse_connect",
            ActionSpec::CloseAfterConnect => "close_after_connect",
            ActionSpec::Tls(_) => "tls",
        }
    }

    /// Terminal actions decide how the exchange ends, so at most one applies per phase;
    /// the others (latency, bandwidth, corrupt) shape it and combine.
    pub fn is_terminal(&self) -> bool {
        !matches!(
            self,
            ActionSpec::Latency(_) | ActionSpec::Bandwidth(_) | ActionSpec::Corrupt(_)
        )
    }

    /// Whether resolving this action needs the response's Content-Length.
    pub fn needs_body_length(&self) -> bool {
        let fraction = |p: Option<BodyPoint>| matches!(p, Some(BodyPoint::Fraction(_)));
        match self {
            ActionSpec::Stall(s) => fraction(s.at()),
            ActionSpec::Reset(s) => fraction(s.at()),
            ActionSpec::Truncate(s) => fraction(s.at()),
            ActionSpec::Corrupt(c) => c.offset.is_none(),
            _ => false,
        }
    }
}

/// One fault rule. Build it from TOML ([`super::parse_toml`]), an inline spec
/// ([`super::parse_spec`]), a preset, JSON (serde), or by hand; the engine validates
/// it again either way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawRule", into = "RawRule")]
pub struct Rule {
    /// Unique within an engine; empty means "name me": the engine assigns `rule-N`.
    pub name: String,
    pub when: Match,
    pub select: Selection,
    pub action: ActionSpec,
}

impl Rule {
    pub fn new(action: ActionSpec) -> Rule {
        Rule {
            name: String::new(),
            when: Match::default(),
            select: Selection::default(),
            action,
        }
    }

    /// The phase at which the engine consults this rule. Each rule has exactly one,
    /// so its counters advance at most once per exchange.
    pub fn phase(&self) -> Phase {
        let mid_body = |p: Option<BodyPoint>| p.is_some();
        match &self.action {
            ActionSpec::RefuseConnect(_) | ActionSpec::CloseAfterConnect => Phase::Connect,
            ActionSpec::Tls(_) => Phase::Tls,
            ActionSpec::Truncate(_) | ActionSpec::Corrupt(_) => Phase::Response,
            ActionSpec::Reset(s) if mid_body(s.at()) => Phase::Response,
            ActionSpec::Stall(s) if mid_body(s.at()) => Phase::Response,
            _ if !self.when.status.is_empty() => Phase::Response,
            _ => Phase::Request,
        }
    }

    /// How errors refer to this rule before and after it has a name.
    pub(crate) fn label(&self) -> String {
        if self.name.is_empty() {
            "(unnamed)".to_string()
        } else {
            format!("'{}'", self.name)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> RequestFacts {
        RequestFacts {
            host: "proxy.golang.org".into(),
            port: 443,
            method: "GET".into(),
            path: "/golang.org/x/mod/@v/v0.14.0.zip".into(),
            go_kind: Some(GoKind::Zip),
            module: Some("golang.org/x/mod".into()),
            version: Some("v0.14.0".into()),
            status: Some(200),
            content_length: Some(1000),
        }
    }

    #[test]
    fn match_on_each_field() {
        let f = facts();
        let yes_no: Vec<(Match, Match)> = vec![
            (
                Match {
                    host: Some("*.golang.org".into()),
                    ..Match::default()
                },
                Match {
                    host: Some("sum.golang.org".into()),
                    ..Match::default()
                },
            ),
            (
                Match {
                    kind: vec![GoKind::Mod, GoKind::Zip],
                    ..Match::default()
                },
                Match {
                    kind: vec![GoKind::Info],
                    ..Match::default()
                },
            ),
            (
                Match {
                    module: Some("golang.org/x/*".into()),
                    ..Match::default()
                },
                Match {
                    module: Some("github.com/*".into()),
                    ..Match::default()
                },
            ),
            (
                Match {
                    version: Some("v0.*".into()),
                    ..Match::default()
                },
                Match {
                    version: Some("v0.14.1".into()),
                    ..Match::default()
                },
            ),
            (
                Match {
                    method: vec!["get".into()],
                    ..Match::default()
                },
                Match {
                    method: vec!["POST".into()],
                    ..Match::default()
                },
            ),
            (
                Match {
                    path: Some("*/@v/*.zip".into()),
                    ..Match::default()
                },
                Match {
                    path: Some("*/@v/list".into()),
                    ..Match::default()
                },
            ),
            (
                Match {
                    status: vec![StatusPattern::Class(2)],
                    ..Match::default()
                },
                Match {
                    status: vec![StatusPattern::Class(5), StatusPattern::Code(404)],
                    ..Match::default()
                },
            ),
        ];
        for (yes, no) in yes_no {
            assert!(yes.matches(&f), "{yes:?}");
            assert!(!no.matches(&f), "{no:?}");
        }
        assert!(Match::default().matches(&f));
    }

    #[test]
    fn missing_facts_do_not_match() {
        let f = RequestFacts {
            host: "example.com".into(),
            ..RequestFacts::default()
        };
        assert!(!Match {
            module: Some("*".into()),
            ..Match::default()
        }
        .matches(&f));
        assert!(!Match {
            version: Some("*".into()),
            ..Match::default()
        }
        .matches(&f));
        assert!(!Match {
            status: vec![StatusPattern::Class(2)],
            ..Match::default()
        }
        .matches(&f));
        // An unclassified request counts as kind `other`.
        assert!(Match {
            kind: vec![GoKind::Other],
            ..Match::default()
        }
        .matches(&f));
    }

    #[test]
    fn selection_windows() {
        let s = |first, every, after| Selection {
            probability: 1.0,
            first,
            every,
            after,
        };
        let fired =
            |sel: Selection| -> Vec<u64> { (1..=10).filter(|&n| sel.counts_in(n)).collect() };
        assert_eq!(fired(s(None, None, 0)), (1..=10).collect::<Vec<_>>());
        assert_eq!(fired(s(Some(3), None, 0)), vec![1, 2, 3]);
        assert_eq!(fired(s(None, Some(3), 0)), vec![3, 6, 9]);
        assert_eq!(fired(s(None, None, 7)), vec![8, 9, 10]);
        assert_eq!(fired(s(Some(2), None, 2)), vec![3, 4]);
        assert_eq!(fired(s(Some(4), Some(2), 1)), vec![3, 5]);
        assert!(!s(None, None, 0).counts_in(0));
    }

    #[test]
    fn phases() {
        let mut r = Rule::new(ActionSpec::Latency(LatencySpec::default()));
        assert_eq!(r.phase(), Phase::Request);
        r.when.status = vec![StatusPattern::Class(5)];
        assert_eq!(r.phase(), Phase::Response);
        let reset = |after_bytes| {
            Rule::new(ActionSpec::Reset(ResetSpec {
                after_bytes,
                fraction: None,
            }))
        };
        assert_eq!(reset(None).phase(), Phase::Request);
        assert_eq!(reset(Some(10)).phase(), Phase::Response);
        assert_eq!(
            Rule::new(ActionSpec::CloseAfterConnect).phase(),
            Phase::Connect
        );
        assert_eq!(
            Rule::new(ActionSpec::Tls(TlsSpec::default())).phase(),
            Phase::Tls
        );
        assert_eq!(
            Rule::new(ActionSpec::Corrupt(CorruptSpec::default())).phase(),
            Phase::Response
        );
    }
}
