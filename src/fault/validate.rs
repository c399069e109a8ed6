//! Rule validation: every check that refuses a rule, with a reason naming the field,
//! run on every path in (TOML, JSON, inline spec, code) before the engine accepts it.

use std::fmt;

use super::rule::{ActionSpec, Jitter, Phase, Rule, StatusPattern};
use super::units::{check_fraction, MAX_DELAY_MS};

impl Rule {
    pub fn validate(&self) -> Result<(), RuleError> {
        check_name(&self.name)?;
        self.validate_match()?;
        self.validate_select()?;
        self.validate_action()?;
        let phase = self.phase();
        if matches!(phase, Phase::Connect | Phase::Tls) {
            let extra = self.when.set_beyond_host();
            if !extra.is_empty() {
                return Err(RuleError::new(
                    Some(format!("match.{}", extra[0])),
                    format!(
                        "`{}` acts at the {phase} phase, where only the host is known; \
                         it cannot match on {}",
                        self.action.name(),
                        extra.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    fn validate_match(&self) -> Result<(), RuleError> {
        let m = &self.when;
        for (field, pattern) in [
            ("host", &m.host),
            ("module", &m.module),
            ("version", &m.version),
            ("path", &m.path),
        ] {
            if let Some(p) = pattern {
                if p.trim().is_empty() {
                    return Err(RuleError::field(
                        format!("match.{field}"),
                        format!("`match.{field}` is empty; leave it out to match any {field}"),
                    ));
                }
            }
        }
        for method in &m.method {
            if method.is_empty() || !method.bytes().all(is_token_byte) {
                return Err(RuleError::field(
                    "match.method",
                    format!("`match.method` `{method}` is not an HTTP method"),
                ));
            }
        }
        for s in &m.status {
            let ok = match *s {
                StatusPattern::Code(c) => (100..=599).contains(&c),
                StatusPattern::Class(d) => (1..=5).contains(&d),
            };
            if !ok {
                return Err(RuleError::field(
                    "match.status",
                    format!("`match.status` {s} is not within 100..=599 or 1xx..5xx"),
                ));
            }
        }
        Ok(())
    }

    fn validate_select(&self) -> Result<(), RuleError> {
        let s = &self.select;
        check_probability(s.probability).map_err(|m| RuleError::field("probability", m))?;
        if s.first == Some(0) {
            return Err(RuleError::field(
                "first",
                "`first = 0` would never apply; leave it out or use 1 or more",
            ));
        }
        if s.every == Some(0) {
            return Err(RuleError::field(
                "every",
                "`every = 0` is meaningless; use 1 (each match) or more",
            ));
        }
        Ok(())
    }

    fn validate_action(&self) -> Result<(), RuleError> {
        let key = self.action.name();
        let err = |field: &str, msg: String| RuleError::field(format!("{key}.{field}"), msg);
        let one_point = |after: Option<u64>, fraction: Option<f64>| {
            if after.is_some() && fraction.is_some() {
                return Err(err(
                    "fraction",
                    format!("`{key}` takes `after_bytes` or `fraction`, not both"),
                ));
            }
            if let Some(f) = fraction {
                check_fraction(f).map_err(|_| {
                    err(
                        "fraction",
                        format!("`{key}.fraction` must be within 0..=1, got {f}"),
                    )
                })?;
            }
            Ok(())
        };
        match &self.action {
            ActionSpec::Respond(r) => {
                if !(200..=599).contains(&r.status) {
                    return Err(err(
                        "status",
                        format!(
                            "`respond.status` must be a final status within 200..=599, got {}",
                            r.status
                        ),
                    ));
                }
                if r.body.as_ref().is_some_and(|b| b.len() > 64 * 1024) {
                    return Err(err("body", "`respond.body` is over 64 KiB".into()));
                }
                for (name, value) in &r.headers {
                    check_header(name, value).map_err(|m| err("headers", m))?;
                }
            }
            ActionSpec::Latency(l) => {
                if l.fixed_ms > MAX_DELAY_MS {
                    return Err(err(
                        "fixed_ms",
                        "`latency.fixed_ms` is longer than 24 hours".into(),
                    ));
                }
                check_jitter(&l.jitter).map_err(|m| err("jitter", m))?;
            }
            ActionSpec::Bandwidth(b) => {
                if b.down_bytes_per_sec.is_none() && b.up_bytes_per_sec.is_none() {
                    return Err(err(
                        "down_bytes_per_sec",
                        "`bandwidth` needs `down_bytes_per_sec`, `up_bytes_per_sec` or both".into(),
                    ));
                }
                for (field, rate) in [
                    ("down_bytes_per_sec", b.down_bytes_per_sec),
                    ("up_bytes_per_sec", b.up_bytes_per_sec),
                ] {
                    if rate == Some(0) {
                        return Err(err(
                            field,
                            format!("`bandwidth.{field}` is zero; use `stall` to stop traffic"),
                        ));
                    }
                }
                if b.up_bytes_per_sec.is_some() && !self.when.status.is_empty() {
                    return Err(err(
                        "up_bytes_per_sec",
                        "`bandwidth.up_bytes_per_sec` cannot apply with `match.status`: \
                         the request body is sent before the status is known"
                            .into(),
                    ));
                }
            }
            ActionSpec::Stall(s) => {
                if s.ms.is_some_and(|ms| ms > MAX_DELAY_MS) {
                    return Err(err("ms", "`stall.ms` is longer than 24 hours".into()));
                }
                one_point(s.after_bytes, s.fraction)?;
            }
            ActionSpec::Reset(r) => one_point(r.after_bytes, r.fraction)?,
            ActionSpec::Truncate(t) => {
                one_point(t.after_bytes, t.fraction)?;
                if t.at().is_none() {
                    return Err(err(
                        "after_bytes",
                        "`truncate` needs `after_bytes` or `fraction`".into(),
                    ));
                }
            }
            ActionSpec::Corrupt(c) => {
                if !(1..=MAX_CORRUPT_BYTES).contains(&c.count) {
                    return Err(err(
                        "count",
                        format!(
                            "`corrupt.count` must be within 1..={MAX_CORRUPT_BYTES}, got {}",
                            c.count
                        ),
                    ));
                }
            }
            ActionSpec::RefuseConnect(r) => {
                if !(400..=599).contains(&r.status) {
                    return Err(err(
                        "status",
                        format!(
                            "`refuse_connect.status` must be an error status within 400..=599, got {}",
                            r.status
                        ),
                    ));
                }
            }
            ActionSpec::CloseAfterConnect => {}
            ActionSpec::Tls(t) => {
                if t.stall_ms.is_none() && t.cert.is_none() {
                    return Err(err("cert", "`tls` needs `stall_ms`, `cert` or both".into()));
                }
                if t.stall_ms.is_some_and(|ms| ms > MAX_DELAY_MS) {
                    return Err(err(
                        "stall_ms",
                        "`tls.stall_ms` is longer than 24 hours".into(),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Caps the bytes one corrupt rule may flip: the plan is held in memory per exchange.
pub const MAX_CORRUPT_BYTES: u32 = 4096;

fn check_name(name: &str) -> Result<(), RuleError> {
    // Names end up in URLs (`DELETE /faults/{name}`) and in trace lines, so keep them plain.
    let ok = name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(RuleError::field(
            "name",
            format!(
                "rule name `{name}` may use only letters, digits, '-', '_' and '.' (at most 64)"
            ),
        ))
    }
}

pub(crate) fn check_status(code: u16, field: &str) -> Result<(), String> {
    if (100..=599).contains(&code) {
        Ok(())
    } else {
        Err(format!(
            "`{field}` must be an HTTP status within 100..=599, got {code}"
        ))
    }
}

pub(crate) fn check_probability(p: f64) -> Result<(), String> {
    if p.is_finite() && (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(format!("`probability` must be within 0..=1, got {p}"))
    }
}

fn check_jitter(j: &Jitter) -> Result<(), String> {
    let finite = |v: f64, what: &str| {
        if v.is_finite() {
            Ok(())
        } else {
            Err(format!("jitter `{what}` must be a finite number"))
        }
    };
    match *j {
        Jitter::None => Ok(()),
        Jitter::Uniform { min_ms, max_ms } => {
            if min_ms > max_ms {
                Err(format!(
                    "uniform jitter needs min_ms <= max_ms, got {min_ms} > {max_ms}"
                ))
            } else {
                Ok(())
            }
        }
        Jitter::Normal { mean_ms, stddev_ms } => {
            finite(mean_ms, "mean_ms")?;
            finite(stddev_ms, "stddev_ms")?;
            if stddev_ms < 0.0 {
                return Err(format!(
                    "normal jitter needs stddev_ms >= 0, got {stddev_ms}"
                ));
            }
            Ok(())
        }
        Jitter::Lognormal { mu, sigma } => {
            finite(mu, "mu")?;
            finite(sigma, "sigma")?;
            if sigma < 0.0 {
                return Err(format!("lognormal jitter needs sigma >= 0, got {sigma}"));
            }
            // e^20 ms is already five days; larger mu can only be a unit mistake.
            if mu > 20.0 {
                return Err(format!(
                    "lognormal mu is the log of milliseconds; {mu} means over e^20 ms"
                ));
            }
            Ok(())
        }
    }
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn check_header(name: &str, value: &str) -> Result<(), String> {
    if name.is_empty() || !name.bytes().all(is_token_byte) {
        return Err(format!("`{name}` is not a valid header name"));
    }
    // Framing headers belong to the proxy shell; letting a rule set them would make
    // the injected response unparseable rather than faulty in the intended way.
    let lower = name.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "content-length" | "transfer-encoding" | "connection"
    ) {
        return Err(format!("header `{name}` is set by the proxy, not by rules"));
    }
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(format!(
            "header `{name}` has a control character in its value"
        ));
    }
    Ok(())
}

/// Why a rule was refused; `field` is the dotted key (`latency.jitter`) when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub field: Option<String>,
    pub message: String,
}

impl RuleError {
    pub(crate) fn new(field: Option<String>, message: impl Into<String>) -> Self {
        RuleError {
            field,
            message: message.into(),
        }
    }

    pub(crate) fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        RuleError::new(Some(field.into()), message)
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RuleError {}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::fault::rule::{
        BandwidthSpec, CorruptSpec, GoKind, LatencySpec, Match, RefuseSpec, ResetSpec, RespondSpec,
        Selection, TlsSpec, TruncateSpec,
    };

    #[test]
    fn validation_refuses_with_reasons() {
        let bad: Vec<(Rule, &str)> = vec![
            (
                Rule {
                    select: Selection {
                        probability: 1.5,
                        ..Selection::default()
                    },
                    ..Rule::new(ActionSpec::CloseAfterConnect)
                },
                "within 0..=1",
            ),
            (
                Rule::new(ActionSpec::Respond(RespondSpec {
                    status: 99,
                    body: None,
                    headers: BTreeMap::new(),
                })),
                "200..=599",
            ),
            (
                Rule::new(ActionSpec::Bandwidth(BandwidthSpec {
                    down_bytes_per_sec: Some(0),
                    up_bytes_per_sec: None,
                })),
                "zero",
            ),
            (
                Rule::new(ActionSpec::Bandwidth(BandwidthSpec::default())),
                "needs",
            ),
            (
                Rule {
                    when: Match {
                        kind: vec![GoKind::Zip],
                        ..Match::default()
                    },
                    ..Rule::new(ActionSpec::RefuseConnect(RefuseSpec::default()))
                },
                "only the host is known",
            ),
            (
                Rule::new(ActionSpec::Truncate(TruncateSpec::default())),
                "needs `after_bytes`",
            ),
            (
                Rule::new(ActionSpec::Reset(ResetSpec {
                    after_bytes: Some(1),
                    fraction: Some(0.5),
                })),
                "not both",
            ),
            (
                Rule {
                    name: "a b".into(),
                    ..Rule::new(ActionSpec::CloseAfterConnect)
                },
                "may use only",
            ),
            (
                Rule::new(ActionSpec::Latency(LatencySpec {
                    fixed_ms: 0,
                    jitter: Jitter::Normal {
                        mean_ms: 0.0,
                        stddev_ms: -1.0,
                    },
                })),
                "stddev_ms >= 0",
            ),
            (
                Rule::new(ActionSpec::Respond(RespondSpec {
                    status: 502,
                    body: None,
                    headers: BTreeMap::from([("X-A".to_string(), "a\r\nb".to_string())]),
                })),
                "control character",
            ),
            (
                Rule::new(ActionSpec::Corrupt(CorruptSpec {
                    offset: None,
                    count: 0,
                })),
                "1..=4096",
            ),
            (
                Rule::new(ActionSpec::Tls(TlsSpec::default())),
                "needs `stall_ms`",
            ),
        ];
        for (rule, want) in bad {
            let err = rule.validate().expect_err(want);
            assert!(err.message.contains(want), "{} lacks {want}", err.message);
        }
    }
}
