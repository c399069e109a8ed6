//! The rule model: what a fault rule matches, how often it fires and what it does,
//! and its one serde shape. The action table at the bottom lists each action once;
//! the enum, its keys and the rule format's optional per-action keys come from it.
//! Single values are checked by their types (`values.rs`), checks across fields by
//! `validate.rs`, and matching against a request by the engine.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

use super::error::RuleError;
use super::values::{
    one_or_many, ser_one_or_many, serde_units, BodyPoint, H2Code, ListItem, Probability, Status,
};

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
        Ok(StatusPattern::Code(Status::new(code)?.get()))
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

impl ListItem for GoKind {
    const WHAT: &'static str = "request kind";
    fn from_text(text: &str) -> Result<Self, String> {
        GoKind::parse(text)
    }
    fn serialize_item<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl ListItem for StatusPattern {
    const WHAT: &'static str = "status";
    fn from_text(text: &str) -> Result<Self, String> {
        StatusPattern::parse(text)
    }
    fn from_number(n: i64) -> Result<Self, String> {
        let code = u16::try_from(n).unwrap_or(0);
        Status::new(code)
            .map_err(|_| format!("`match.status` must be within 100..=599, got {n}"))?;
        Ok(StatusPattern::Code(code))
    }
    fn serialize_item<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            StatusPattern::Code(c) => s.serialize_u16(*c),
            StatusPattern::Class(_) => s.serialize_str(&self.to_string()),
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
}

/// Which of the matching requests a rule acts on. Gates apply in this order:
/// skip the first `after` matches, keep the next `first` (window), of those every
/// `every`-th, and of those a `probability` share.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selection {
    pub probability: Probability,
    pub first: Option<u64>,
    pub every: Option<u64>,
    pub after: u64,
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

/// Answer in place of upstream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RespondSpec {
    pub status: Status,
    /// Sent as text/plain so `go` prints it after `server response:`; defaults to a
    /// line naming the rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

impl RespondSpec {
    /// A plain answer with this status (which must be valid; for code and tests).
    pub fn status(code: u16) -> RespondSpec {
        RespondSpec {
            status: Status::new(code).unwrap_or(Status::new(502).expect("502 is a status")),
            body: None,
            headers: BTreeMap::new(),
        }
    }
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

/// The `after_bytes` / `fraction` keys with which the rule format writes a [`BodyPoint`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PointKeys {
    #[serde(
        default,
        deserialize_with = "serde_units::opt_size",
        skip_serializing_if = "Option::is_none"
    )]
    after_bytes: Option<u64>,
    #[serde(
        default,
        deserialize_with = "serde_units::opt_fraction",
        skip_serializing_if = "Option::is_none"
    )]
    fraction: Option<f64>,
}

impl PointKeys {
    fn read(self, action: &str) -> Result<Option<BodyPoint>, String> {
        BodyPoint::from_keys(self.after_bytes, self.fraction).map_err(|e| format!("`{action}` {e}"))
    }

    fn write(point: Option<BodyPoint>) -> PointKeys {
        let (after_bytes, fraction) = BodyPoint::to_keys(point);
        PointKeys {
            after_bytes,
            fraction,
        }
    }
}

/// Stop sending, for `ms` or forever, then end the connection. With `at` the stall
/// happens mid-body (Response phase), else before the head.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "StallKeys", into = "StallKeys")]
pub struct StallSpec {
    pub ms: Option<u64>,
    pub then: StallEnd,
    pub at: Option<BodyPoint>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StallKeys {
    #[serde(
        default,
        deserialize_with = "serde_units::opt_ms",
        skip_serializing_if = "Option::is_none"
    )]
    ms: Option<u64>,
    #[serde(default)]
    then: StallEnd,
    #[serde(
        default,
        deserialize_with = "serde_units::opt_size",
        skip_serializing_if = "Option::is_none"
    )]
    after_bytes: Option<u64>,
    #[serde(
        default,
        deserialize_with = "serde_units::opt_fraction",
        skip_serializing_if = "Option::is_none"
    )]
    fraction: Option<f64>,
}

impl TryFrom<StallKeys> for StallSpec {
    type Error = String;
    fn try_from(k: StallKeys) -> Result<StallSpec, String> {
        let at = PointKeys {
            after_bytes: k.after_bytes,
            fraction: k.fraction,
        }
        .read("stall")?;
        Ok(StallSpec {
            ms: k.ms,
            then: k.then,
            at,
        })
    }
}

impl From<StallSpec> for StallKeys {
    fn from(s: StallSpec) -> StallKeys {
        let p = PointKeys::write(s.at);
        StallKeys {
            ms: s.ms,
            then: s.then,
            after_bytes: p.after_bytes,
            fraction: p.fraction,
        }
    }
}

/// Abort the connection: before the response head, or at a point in the body. On
/// HTTP/2 a mid-body reset is an RST_STREAM with `code` (hyper's INTERNAL_ERROR when
/// unset); on HTTP/1.1 it is a TCP reset and `code` does not apply.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ResetKeys", into = "ResetKeys")]
pub struct ResetSpec {
    pub at: Option<BodyPoint>,
    pub code: Option<H2Code>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetKeys {
    #[serde(
        default,
        deserialize_with = "serde_units::opt_size",
        skip_serializing_if = "Option::is_none"
    )]
    after_bytes: Option<u64>,
    #[serde(
        default,
        deserialize_with = "serde_units::opt_fraction",
        skip_serializing_if = "Option::is_none"
    )]
    fraction: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    code: Option<H2Code>,
}

impl TryFrom<ResetKeys> for ResetSpec {
    type Error = String;
    fn try_from(k: ResetKeys) -> Result<ResetSpec, String> {
        let at = PointKeys {
            after_bytes: k.after_bytes,
            fraction: k.fraction,
        }
        .read("reset")?;
        Ok(ResetSpec { at, code: k.code })
    }
}

impl From<ResetSpec> for ResetKeys {
    fn from(s: ResetSpec) -> ResetKeys {
        let p = PointKeys::write(s.at);
        ResetKeys {
            after_bytes: p.after_bytes,
            fraction: p.fraction,
            code: s.code,
        }
    }
}

/// End the body cleanly but early, at a point (exactly one of the two keys is required).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "PointKeys", into = "PointKeys")]
pub struct TruncateSpec {
    pub at: BodyPoint,
}

impl TryFrom<PointKeys> for TruncateSpec {
    type Error = String;
    fn try_from(k: PointKeys) -> Result<TruncateSpec, String> {
        let at = k
            .read("truncate")?
            .ok_or("`truncate` needs `after_bytes` or `fraction`")?;
        Ok(TruncateSpec { at })
    }
}

impl From<TruncateSpec> for PointKeys {
    fn from(s: TruncateSpec) -> PointKeys {
        PointKeys::write(Some(s.at))
    }
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

fn one_u32() -> u32 {
    1
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
    #[serde(default = "default_refuse_status")]
    pub status: Status,
}

fn default_refuse_status() -> Status {
    Status::new(502).expect("502 is a status")
}

impl Default for RefuseSpec {
    fn default() -> Self {
        RefuseSpec {
            status: default_refuse_status(),
        }
    }
}

/// `close_after_connect` carries no parameters: written `true` or `{}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CloseSpec;

impl Serialize for CloseSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bool(true)
    }
}

impl<'de> Deserialize<'de> for CloseSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<CloseSpec, D::Error> {
        struct FlagVisitor;
        impl<'de> Visitor<'de> for FlagVisitor {
            type Value = CloseSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("`true` or an empty table")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<CloseSpec, E> {
                if v {
                    Ok(CloseSpec)
                } else {
                    Err(E::custom(
                        "`close_after_connect = false` does nothing; remove the key",
                    ))
                }
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<CloseSpec, A::Error> {
                if let Some(key) = map.next_key::<String>()? {
                    return Err(de::Error::custom(format!(
                        "`close_after_connect` takes no parameters, got `{key}`"
                    )));
                }
                Ok(CloseSpec)
            }
        }
        d.deserialize_any(FlagVisitor)
    }
}

/// Answer like a captive portal or an expired single sign-on session: an HTML login
/// page with a success status, in place of what go asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginPageSpec {
    #[serde(default = "ok_status")]
    pub status: Status,
}

fn ok_status() -> Status {
    Status::new(200).expect("200 is a status")
}

impl Default for LoginPageSpec {
    fn default() -> Self {
        LoginPageSpec {
            status: ok_status(),
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

/// The action table: each action once, as `key => Variant(Spec)`. It generates
/// [`ActionSpec`], its key names, and the serde shape of a rule ([`RawRule`]), in
/// which each action is its own optional key (`respond = { status = 502 }`).
macro_rules! action_table {
    ($( $(#[$doc:meta])* $key:ident => $variant:ident($spec:ty), )*) => {
        /// What the rule does when it fires. Exactly one per rule.
        #[derive(Debug, Clone, PartialEq)]
        pub enum ActionSpec {
            $( $(#[$doc])* $variant($spec), )*
        }

        impl ActionSpec {
            /// The key naming this action in TOML and JSON.
            pub fn name(&self) -> &'static str {
                match self {
                    $( ActionSpec::$variant(_) => stringify!($key), )*
                }
            }
        }

        /// Every action key, in table order (for error messages).
        pub(crate) const ACTION_KEYS: &[&str] = &[$( stringify!($key) ),*];

        /// The serde shape of a rule, shared by TOML files and the JSON admin API.
        #[derive(Debug, Clone, Default, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(crate) struct RawRule {
            #[serde(default, skip_serializing_if = "String::is_empty")]
            pub name: String,
            #[serde(rename = "match", default, skip_serializing_if = "Match::is_any")]
            pub when: Match,
            #[serde(default, skip_serializing_if = "Probability::is_always")]
            pub probability: Probability,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub first: Option<u64>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub every: Option<u64>,
            #[serde(default, skip_serializing_if = "is_zero")]
            pub after: u64,
            $(
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $key: Option<$spec>,
            )*
        }

        impl RawRule {
            /// The actions that are set, in table order.
            fn take_actions(&mut self) -> Vec<ActionSpec> {
                let mut out = Vec::new();
                $( if let Some(a) = self.$key.take() { out.push(ActionSpec::$variant(a)); } )*
                out
            }

            fn set_action(&mut self, action: ActionSpec) {
                match action {
                    $( ActionSpec::$variant(a) => self.$key = Some(a), )*
                }
            }
        }
    };
}

action_table! {
    respond => Respond(RespondSpec),
    latency => Latency(LatencySpec),
    bandwidth => Bandwidth(BandwidthSpec),
    stall => Stall(StallSpec),
    reset => Reset(ResetSpec),
    truncate => Truncate(TruncateSpec),
    corrupt => Corrupt(CorruptSpec),
    refuse_connect => RefuseConnect(RefuseSpec),
    close_after_connect => CloseAfterConnect(CloseSpec),
    tls => Tls(TlsSpec),
    login_page => LoginPage(LoginPageSpec),
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl ActionSpec {
    /// Terminal actions decide how the exchange ends, so at most one applies per phase;
    /// the others (latency, bandwidth, corrupt) shape it and combine.
    pub fn is_terminal(&self) -> bool {
        !matches!(
            self,
            ActionSpec::Latency(_) | ActionSpec::Bandwidth(_) | ActionSpec::Corrupt(_)
        )
    }

    /// Where in the response body the action acts, if it acts mid-body.
    pub fn body_point(&self) -> Option<BodyPoint> {
        match self {
            ActionSpec::Stall(s) => s.at,
            ActionSpec::Reset(s) => s.at,
            ActionSpec::Truncate(s) => Some(s.at),
            _ => None,
        }
    }

    /// Whether resolving this action needs the response's Content-Length.
    pub fn needs_body_length(&self) -> bool {
        match self {
            ActionSpec::Corrupt(c) => c.offset.is_none(),
            other => other.body_point().is_some_and(BodyPoint::is_fraction),
        }
    }
}

/// One fault rule. Build it from TOML ([`super::parse_toml`]), an inline spec
/// ([`super::parse_spec`]), a preset, JSON (serde), or by hand; the engine validates
/// it either way (`validate.rs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawRule", into = "RawRule")]
pub struct Rule {
    /// Unique within an engine; empty means "name me": the engine assigns `rule-N`.
    pub name: String,
    pub when: Match,
    pub select: Selection,
    pub action: ActionSpec,
}

impl TryFrom<RawRule> for Rule {
    type Error = RuleError;

    /// The structural check of the rule format: exactly one action key.
    fn try_from(mut raw: RawRule) -> Result<Rule, RuleError> {
        let mut actions = raw.take_actions();
        let action = match actions.len() {
            1 => actions.remove(0),
            0 => {
                return Err(RuleError::new(
                    None,
                    format!(
                        "rule has no action; add exactly one of: {}",
                        ACTION_KEYS.join(", ")
                    ),
                ))
            }
            _ => {
                let names: Vec<&str> = actions.iter().map(ActionSpec::name).collect();
                return Err(RuleError::field(
                    names[1],
                    format!(
                        "rule has {} actions ({}); a rule takes exactly one, so split it \
                         into several rules (non-terminal ones like latency and bandwidth combine)",
                        names.len(),
                        names.join(", ")
                    ),
                ));
            }
        };
        Ok(Rule {
            name: raw.name,
            when: raw.when,
            select: Selection {
                probability: raw.probability,
                first: raw.first,
                every: raw.every,
                after: raw.after,
            },
            action,
        })
    }
}

impl From<Rule> for RawRule {
    fn from(rule: Rule) -> RawRule {
        let mut raw = RawRule {
            name: rule.name,
            when: rule.when,
            probability: rule.select.probability,
            first: rule.select.first,
            every: rule.select.every,
            after: rule.select.after,
            ..RawRule::default()
        };
        raw.set_action(rule.action);
        raw
    }
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
        match &self.action {
            ActionSpec::RefuseConnect(_) | ActionSpec::CloseAfterConnect(_) => Phase::Connect,
            ActionSpec::Tls(_) => Phase::Tls,
            ActionSpec::Corrupt(_) => Phase::Response,
            a if a.body_point().is_some() => Phase::Response,
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

    #[test]
    fn selection_windows() {
        let s = |first, every, after| Selection {
            probability: Probability::ALWAYS,
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
        let reset = |after_bytes: Option<u64>| {
            Rule::new(ActionSpec::Reset(ResetSpec {
                at: after_bytes.map(BodyPoint::Bytes),
                code: None,
            }))
        };
        assert_eq!(reset(None).phase(), Phase::Request);
        assert_eq!(reset(Some(10)).phase(), Phase::Response);
        assert_eq!(
            Rule::new(ActionSpec::CloseAfterConnect(CloseSpec)).phase(),
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
