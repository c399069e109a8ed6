//! Rule validation: the checks that need more than one value (a field against the
//! action, the phase or another field), with a reason naming the field. Single values
//! are checked by their types in `values.rs` as they are read. Run on every path in
//! (TOML, JSON, inline spec, code) before the engine accepts a rule.

use super::error::{FaultError, RuleError};
use super::rule::{ActionSpec, Jitter, Phase, Rule, StatusPattern};
use super::values::MAX_DELAY_MS;

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

    /// [`Rule::validate`] for a rule that is the `index`-th (from 0) of a list: an
    /// unnamed rule is named by its position (`#2`), as the engine will name it.
    pub(crate) fn validate_in_list(&self, index: usize) -> Result<(), FaultError> {
        self.validate().map_err(|e| FaultError::Rule {
            rule: if self.name.is_empty() {
                format!("#{}", index + 1)
            } else {
                format!("'{}'", self.name)
            },
            field: e.field,
            message: e.message,
        })
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
        match &self.action {
            ActionSpec::LoginPage(l) => {
                if !(200..=299).contains(&l.status.get()) {
                    return Err(err(
                        "status",
                        format!(
                            "`login_page.status` must be a success within 200..=299 (a portal \
                             pretends all is well), got {}",
                            l.status
                        ),
                    ));
                }
            }
            ActionSpec::Respond(r) => {
                if !(200..=599).contains(&r.status.get()) {
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
                if !(400..=599).contains(&r.status.get()) {
                    return Err(err(
                        "status",
                        format!(
                            "`refuse_connect.status` must be an error status within 400..=599, got {}",
                            r.status
                        ),
                    ));
                }
            }
            ActionSpec::Reset(_) | ActionSpec::Truncate(_) | ActionSpec::CloseAfterConnect(_) => {}
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::fault::rule::{
        BandwidthSpec, CloseSpec, CorruptSpec, GoKind, LatencySpec, Match, RefuseSpec, RespondSpec,
        Selection, TlsSpec,
    };

    #[test]
    fn validation_refuses_with_reasons() {
        let bad: Vec<(Rule, &str)> = vec![
            (
                Rule {
                    select: Selection {
                        first: Some(0),
                        ..Selection::default()
                    },
                    ..Rule::new(ActionSpec::CloseAfterConnect(CloseSpec))
                },
                "never apply",
            ),
            (
                Rule::new(ActionSpec::Respond(RespondSpec::status(150))),
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
                Rule {
                    name: "a b".into(),
                    ..Rule::new(ActionSpec::CloseAfterConnect(CloseSpec))
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
                    headers: BTreeMap::from([("X-A".to_string(), "a\r\nb".to_string())]),
                    ..RespondSpec::status(502)
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
