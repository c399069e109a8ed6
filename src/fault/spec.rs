//! The compact inline rule syntax of `--fault SPEC`, one rule per spec.
//!
//! ```text
//! SPEC      = [MATCHERS] ":" ACTION
//! MATCHERS  = "*" | ITEM *("," ITEM)          ; "*" or nothing: every request
//! ITEM      = KEY "=" VALUE                   ; VALUE has no "," or ":"; "|" separates alternatives
//!   host=GLOB  kind=K[|K..]  module=GLOB  version=GLOB  method=M[|M..]  path=GLOB
//!   status=S[|S..] (502, 5xx)  p=PROB (0.05 or 5%)  first=N  every=N  after=N  name=NAME
//! ACTION    = NAME ["=" ARG] ["@" AT] *("," PARAM "=" VALUE)
//!   STATUS | respond=STATUS   [header=NAME=VALUE]... [body=TEXT]
//!   latency=DUR | DUR~SD | LO..HI | lognormal:MU/SIGMA
//!   bandwidth[=RATE]          [down=RATE] [up=RATE]
//!   stall[=DUR][@AT]          [then=close|reset]      ; no DUR: forever
//!   reset[@AT]                [code=H2CODE]           ; no AT: before the response head
//!   truncate@AT | truncate=AT
//!   corrupt[=COUNT][@OFFSET]
//!   refuse[=STATUS]           (refuse_connect; default 502)
//!   close                     (close_after_connect)
//!   tls=PART[+PART]           PART = DUR (handshake stall) | untrusted | expired | wrong_host
//!   login[=STATUS]            (login_page: an HTML sign-in page, default 200)
//! DUR  = NUMBER ("ms" | "s")                 250ms, 1.5s
//! SIZE = NUMBER ["B" | "KiB" | "MiB" | "GiB"]  1000, 64KiB
//! RATE = SIZE ["/s"]                         256KiB/s
//! AT   = SIZE | FRACTION                     1000, 4KiB, 0.5, 50%
//! ```
//!
//! The first `:` splits matchers from the action, so matcher values cannot hold `:`
//! (use a rules file for such patterns, or for response bodies with commas).

use std::collections::BTreeMap;

use super::error::FaultError;
use super::rule::{
    ActionSpec, BandwidthSpec, CertFault, CloseSpec, CorruptSpec, GoKind, Jitter, LatencySpec,
    LoginPageSpec, RefuseSpec, ResetSpec, RespondSpec, Rule, StallEnd, StallSpec, StatusPattern,
    TlsSpec, TruncateSpec,
};
use super::values::{parse_duration_ms, parse_rate, BodyPoint, H2Code, Probability, Status};

/// Help text for `--fault`, printed by `--help` and in errors.
pub const SPEC_HELP: &str = "\
--fault SPEC   one rule as [MATCHERS]:ACTION (repeatable; rules apply in order)
  MATCHERS  comma-separated KEY=VALUE, all must hold; empty or * = every request
            host=GLOB kind=K|K module=GLOB version=GLOB method=M path=GLOB
            status=502|5xx (upstream status: acts on the response)
            p=0.05|5% first=N every=N after=N name=NAME
            kinds: list info mod zip latest sumdb-supported sumdb-lookup sumdb-tile
                   sumdb-latest go-get git toolchain other
  ACTION    502 | respond=429,header=Retry-After=5,body=TEXT
            latency=200ms | latency=200ms~50ms (normal) | latency=100ms..300ms (uniform)
              | latency=lognormal:4/0.5 (exp(N(mu,sigma)) ms)
            bandwidth=256KiB/s[,up=64KiB/s]
            stall | stall=5s[,then=close|reset] | stall=5s@1KiB (mid-body)
            reset (before head) | reset@1000 | reset@50%[,code=INTERNAL_ERROR] (h2 RST_STREAM)
            truncate@1000 | truncate=50%
            corrupt | corrupt=4 | corrupt@1000 (byte offset)
            refuse[=403] (answer CONNECT, default 502)   close (close after CONNECT)
            tls=untrusted|expired|wrong_host | tls=15s | tls=5s+expired
            login (an HTML login page with 200, like a captive portal)
  units     durations ms s; sizes B KiB MiB GiB; fractions 0.5 or 50%
  examples  kind=zip,host=proxy.golang.org:502   module=golang.org/x/*:latency=200ms~50ms
            p=0.05:reset@1000   kind=zip:corrupt   host=*:refuse=403   :tls=expired";

/// Parses one inline rule. Unnamed rules are named `rule-N` by the engine.
pub fn parse_spec(spec: &str) -> Result<Rule, FaultError> {
    parse(spec).map_err(|message| FaultError::Spec {
        spec: spec.to_string(),
        message,
    })
}

fn parse(spec: &str) -> Result<Rule, String> {
    let (matchers, action) = spec.split_once(':').ok_or_else(|| {
        "missing `:` between matchers and action (write `:ACTION` to match every request)"
            .to_string()
    })?;
    let mut rule = Rule::new(parse_action(action.trim())?);
    parse_matchers(matchers.trim(), &mut rule)?;
    rule.validate().map_err(|e| e.message)?;
    Ok(rule)
}

const MATCHER_KEYS: &str =
    "host, kind, module, version, method, path, status, p, first, every, after, name";

fn parse_matchers(text: &str, rule: &mut Rule) -> Result<(), String> {
    if text.is_empty() || text == "*" {
        return Ok(());
    }
    let mut seen = Vec::new();
    for item in text.split(',') {
        let item = item.trim();
        let (key, value) = item.split_once('=').ok_or_else(|| {
            if item.is_empty() {
                "empty matcher (stray comma?)".to_string()
            } else {
                format!("matcher `{item}` is not KEY=VALUE (keys: {MATCHER_KEYS})")
            }
        })?;
        let (key, value) = (key.trim().to_ascii_lowercase(), value.trim());
        let canonical = if key == "probability" {
            "p"
        } else {
            key.as_str()
        };
        if seen.contains(&canonical.to_string()) {
            return Err(format!("matcher `{key}` given twice"));
        }
        seen.push(canonical.to_string());
        if value.is_empty() {
            return Err(format!("matcher `{key}` has no value"));
        }
        let alternatives = || value.split('|').map(str::trim);
        let when = &mut rule.when;
        match canonical {
            "host" => when.host = Some(value.to_string()),
            "kind" => {
                when.kind = alternatives()
                    .map(GoKind::parse)
                    .collect::<Result<_, _>>()?
            }
            "module" => when.module = Some(value.to_string()),
            "version" => when.version = Some(value.to_string()),
            "method" => when.method = alternatives().map(str::to_string).collect(),
            "path" => when.path = Some(value.to_string()),
            "status" => {
                when.status = alternatives()
                    .map(StatusPattern::parse)
                    .collect::<Result<_, _>>()?
            }
            "p" => rule.select.probability = Probability::parse(value)?,
            "first" => rule.select.first = Some(parse_count(&key, value)?),
            "every" => rule.select.every = Some(parse_count(&key, value)?),
            "after" => rule.select.after = parse_count(&key, value)?,
            "name" => rule.name = value.to_string(),
            _ => return Err(format!("unknown matcher `{key}` (keys: {MATCHER_KEYS})")),
        }
    }
    Ok(())
}

fn parse_count(key: &str, value: &str) -> Result<u64, String> {
    value
        .parse()
        .map_err(|_| format!("`{key}` needs a whole number, got `{value}`"))
}

const ACTIONS: &str =
    "STATUS, respond, latency, bandwidth, stall, reset, truncate, corrupt, refuse, close, tls, login";

fn parse_action(text: &str) -> Result<ActionSpec, String> {
    if text.is_empty() {
        return Err(format!("no action after `:` (actions: {ACTIONS})"));
    }
    let mut parts = text.split(',');
    let head = parts.next().unwrap_or_default().trim();
    let params = parts
        .map(|p| {
            let p = p.trim();
            p.split_once('=')
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                .ok_or_else(|| format!("action parameter `{p}` is not KEY=VALUE"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (head, at) = match head.rsplit_once('@') {
        Some((h, at)) => (h.trim(), Some(at.trim())),
        None => (head, None),
    };
    let (name, arg) = match head.split_once('=') {
        Some((n, a)) => (n.trim().to_ascii_lowercase(), Some(a.trim())),
        None => (head.to_ascii_lowercase(), None),
    };
    let name = name.as_str();
    let no_at = |at: Option<&str>| match at {
        None => Ok(()),
        Some(_) => Err(format!("`{name}` takes no `@` position")),
    };
    let no_arg = |arg: Option<&str>| match arg {
        None => Ok(()),
        Some(a) => Err(format!("`{name}` takes no value, got `{a}`")),
    };
    let mut params = Params {
        action: name,
        list: params,
    };

    let action = if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
        no_arg(arg)?;
        no_at(at)?;
        respond(name, &mut params)?
    } else {
        match name {
            "respond" => {
                no_at(at)?;
                let status = arg.ok_or("`respond` needs a status, e.g. respond=503")?;
                respond(status, &mut params)?
            }
            "latency" => {
                no_at(at)?;
                let arg = arg.ok_or("`latency` needs a value, e.g. latency=200ms")?;
                ActionSpec::Latency(parse_latency(arg)?)
            }
            "bandwidth" => {
                no_at(at)?;
                let mut spec = BandwidthSpec {
                    down_bytes_per_sec: arg.map(parse_rate).transpose()?,
                    up_bytes_per_sec: None,
                };
                if let Some(down) = params.take("down") {
                    if spec.down_bytes_per_sec.is_some() {
                        return Err("down rate given twice".into());
                    }
                    spec.down_bytes_per_sec = Some(parse_rate(&down)?);
                }
                spec.up_bytes_per_sec = params.take("up").map(|v| parse_rate(&v)).transpose()?;
                ActionSpec::Bandwidth(spec)
            }
            "stall" => {
                let ms = match arg {
                    None | Some("forever") => None,
                    Some(d) => Some(parse_duration_ms(d)?),
                };
                let then = match params.take("then").as_deref() {
                    None | Some("close") => StallEnd::Close,
                    Some("reset") => StallEnd::Reset,
                    Some(other) => {
                        return Err(format!("`then` must be close or reset, got `{other}`"))
                    }
                };
                ActionSpec::Stall(StallSpec {
                    ms,
                    then,
                    at: at.map(BodyPoint::parse).transpose()?,
                })
            }
            "reset" => {
                no_arg(arg)?;
                ActionSpec::Reset(ResetSpec {
                    at: at.map(BodyPoint::parse).transpose()?,
                    code: params.take("code").map(|c| H2Code::parse(&c)).transpose()?,
                })
            }
            "truncate" => {
                let point = match (arg, at) {
                    (Some(_), Some(_)) => {
                        return Err("write truncate@AT or truncate=AT, not both".into())
                    }
                    (Some(p), None) | (None, Some(p)) => BodyPoint::parse(p)?,
                    (None, None) => {
                        return Err(
                            "`truncate` needs a point, e.g. truncate@1000 or truncate=50%".into(),
                        )
                    }
                };
                ActionSpec::Truncate(TruncateSpec { at: point })
            }
            "corrupt" => {
                let count = match arg {
                    None => 1,
                    Some(c) => c
                        .parse()
                        .map_err(|_| format!("corrupt count must be a whole number, got `{c}`"))?,
                };
                let offset = match at.map(BodyPoint::parse).transpose()? {
                    None => None,
                    Some(BodyPoint::Bytes(b)) => Some(b),
                    Some(BodyPoint::Fraction(_)) => {
                        return Err(
                            "corrupt@ takes a byte offset (1000, 4KiB), not a fraction; \
                                    leave it out to hit the middle of the body"
                                .into(),
                        )
                    }
                };
                ActionSpec::Corrupt(CorruptSpec { offset, count })
            }
            "refuse" | "refuse_connect" => {
                no_at(at)?;
                ActionSpec::RefuseConnect(match arg {
                    None => RefuseSpec::default(),
                    Some(s) => RefuseSpec {
                        status: Status::parse(s)?,
                    },
                })
            }
            "close" | "close_after_connect" => {
                no_arg(arg)?;
                no_at(at)?;
                ActionSpec::CloseAfterConnect(CloseSpec)
            }
            "login" | "login_page" => {
                no_at(at)?;
                ActionSpec::LoginPage(match arg {
                    None => LoginPageSpec::default(),
                    Some(s) => LoginPageSpec {
                        status: Status::parse(s)?,
                    },
                })
            }
            "tls" => {
                no_at(at)?;
                let arg = arg.ok_or("`tls` needs a value, e.g. tls=untrusted or tls=15s")?;
                ActionSpec::Tls(parse_tls(arg)?)
            }
            other => return Err(format!("unknown action `{other}` (actions: {ACTIONS})")),
        }
    };
    params.finish()?;
    Ok(action)
}

/// The `,KEY=VALUE` parameters after an action; each must be consumed by the action.
struct Params<'a> {
    action: &'a str,
    list: Vec<(String, String)>,
}

impl Params<'_> {
    fn take(&mut self, key: &str) -> Option<String> {
        let i = self.list.iter().position(|(k, _)| k == key)?;
        Some(self.list.remove(i).1)
    }

    fn finish(self) -> Result<(), String> {
        match self.list.first() {
            None => Ok(()),
            Some((k, _)) => Err(format!(
                "`{}` takes no parameter `{k}` (or it was given twice)",
                self.action
            )),
        }
    }
}

fn respond(status: &str, params: &mut Params) -> Result<ActionSpec, String> {
    let status = Status::parse(status)?;
    let body = params.take("body");
    let mut headers = BTreeMap::new();
    while let Some(h) = params.take("header") {
        let (name, value) = h
            .split_once('=')
            .ok_or_else(|| format!("header `{h}` is not NAME=VALUE"))?;
        headers.insert(name.trim().to_string(), value.trim().to_string());
    }
    Ok(ActionSpec::Respond(RespondSpec {
        status,
        body,
        headers,
    }))
}

fn parse_latency(text: &str) -> Result<LatencySpec, String> {
    if let Some(params) = text.strip_prefix("lognormal:") {
        let (mu, sigma) = params
            .split_once('/')
            .ok_or("lognormal latency is written lognormal:MU/SIGMA, e.g. lognormal:4/0.5")?;
        let num = |s: &str, what: &str| {
            s.trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| format!("lognormal {what} `{s}` is not a number"))
        };
        return Ok(LatencySpec {
            fixed_ms: 0,
            jitter: Jitter::Lognormal {
                mu: num(mu, "mu")?,
                sigma: num(sigma, "sigma")?,
            },
        });
    }
    if let Some((lo, hi)) = text.split_once("..") {
        let (lo, hi) = (parse_duration_ms(lo)?, parse_duration_ms(hi)?);
        if lo > hi {
            return Err(format!("latency range {lo}ms..{hi}ms is backwards"));
        }
        // Durations are capped at 24 h, far inside i64.
        return Ok(LatencySpec {
            fixed_ms: 0,
            jitter: Jitter::Uniform {
                min_ms: lo as i64,
                max_ms: hi as i64,
            },
        });
    }
    if let Some((fixed, sd)) = text.split_once('~') {
        return Ok(LatencySpec {
            fixed_ms: parse_duration_ms(fixed)?,
            jitter: Jitter::Normal {
                mean_ms: 0.0,
                stddev_ms: parse_duration_ms(sd)? as f64,
            },
        });
    }
    Ok(LatencySpec {
        fixed_ms: parse_duration_ms(text)?,
        jitter: Jitter::None,
    })
}

fn parse_tls(text: &str) -> Result<TlsSpec, String> {
    let mut spec = TlsSpec::default();
    for part in text.split('+').map(str::trim) {
        let cert = match part {
            "untrusted" => Some(CertFault::Untrusted),
            "expired" => Some(CertFault::Expired),
            "wrong_host" | "wrong-host" => Some(CertFault::WrongHost),
            _ => None,
        };
        match cert {
            Some(c) if spec.cert.is_none() => spec.cert = Some(c),
            Some(_) => return Err("tls takes one certificate fault".into()),
            None if spec.stall_ms.is_none() => {
                spec.stall_ms = Some(parse_duration_ms(part).map_err(|_| {
                    format!(
                        "tls part `{part}` is neither a duration nor one of untrusted, expired, wrong_host"
                    )
                })?)
            }
            None => return Err("tls takes one stall duration".into()),
        }
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::rule::{Match, Phase, Selection};

    fn p(v: f64) -> Probability {
        Probability::new(v).unwrap()
    }

    fn st(code: u16) -> Status {
        Status::new(code).unwrap()
    }

    #[test]
    fn valid_specs() {
        let cases: Vec<(&str, Rule)> = vec![
            (
                "kind=zip,host=proxy.golang.org:502",
                Rule {
                    when: Match {
                        host: Some("proxy.golang.org".into()),
                        kind: vec![GoKind::Zip],
                        ..Match::default()
                    },
                    ..Rule::new(ActionSpec::Respond(RespondSpec::status(502)))
                },
            ),
            (
                "module=golang.org/x/*:latency=200ms~50ms",
                Rule {
                    when: Match { module: Some("golang.org/x/*".into()), ..Match::default() },
                    ..Rule::new(ActionSpec::Latency(LatencySpec {
                        fixed_ms: 200,
                        jitter: Jitter::Normal { mean_ms: 0.0, stddev_ms: 50.0 },
                    }))
                },
            ),
            (
                "p=0.05:reset@1000",
                Rule {
                    select: Selection { probability: p(0.05), ..Selection::default() },
                    ..Rule::new(ActionSpec::Reset(ResetSpec { at: Some(BodyPoint::Bytes(1000)), code: None }))
                },
            ),
            (
                "kind=zip:corrupt",
                Rule {
                    when: Match { kind: vec![GoKind::Zip], ..Match::default() },
                    ..Rule::new(ActionSpec::Corrupt(CorruptSpec::default()))
                },
            ),
            ("host=*:refuse=403", Rule {
                when: Match { host: Some("*".into()), ..Match::default() },
                ..Rule::new(ActionSpec::RefuseConnect(RefuseSpec { status: st(403) }))
            }),
            (
                "*:bandwidth=256KiB/s",
                Rule::new(ActionSpec::Bandwidth(BandwidthSpec {
                    down_bytes_per_sec: Some(262_144),
                    up_bytes_per_sec: None,
                })),
            ),
            (
                "kind=info:stall=5s",
                Rule {
                    when: Match { kind: vec![GoKind::Info], ..Match::default() },
                    ..Rule::new(ActionSpec::Stall(StallSpec { ms: Some(5000), ..StallSpec::default() }))
                },
            ),
            (
                ":tls=expired",
                Rule::new(ActionSpec::Tls(TlsSpec { stall_ms: None, cert: Some(CertFault::Expired) })),
            ),
            (
                "name=slow-sumdb,kind=sumdb-lookup|sumdb-tile,status=5xx|429,first=2,every=3,after=1,p=50%:latency=100ms..300ms",
                Rule {
                    name: "slow-sumdb".into(),
                    when: Match {
                        kind: vec![GoKind::SumdbLookup, GoKind::SumdbTile],
                        status: vec![StatusPattern::Class(5), StatusPattern::Code(429)],
                        ..Match::default()
                    },
                    select: Selection { probability: p(0.5), first: Some(2), every: Some(3), after: 1 },
                    ..Rule::new(ActionSpec::Latency(LatencySpec {
                        fixed_ms: 0,
                        jitter: Jitter::Uniform { min_ms: 100, max_ms: 300 },
                    }))
                },
            ),
            (
                ":respond=429,header=Retry-After=5,body=slow down",
                Rule::new(ActionSpec::Respond(RespondSpec {
                    body: Some("slow down".into()),
                    headers: BTreeMap::from([("Retry-After".into(), "5".into())]),
                    ..RespondSpec::status(429)
                })),
            ),
            (
                ":latency=lognormal:4/0.5",
                Rule::new(ActionSpec::Latency(LatencySpec {
                    fixed_ms: 0,
                    jitter: Jitter::Lognormal { mu: 4.0, sigma: 0.5 },
                })),
            ),
            (
                "method=POST|put,path=/*/git-upload-pack:bandwidth,up=64KiB/s",
                Rule {
                    when: Match {
                        method: vec!["POST".into(), "put".into()],
                        path: Some("/*/git-upload-pack".into()),
                        ..Match::default()
                    },
                    ..Rule::new(ActionSpec::Bandwidth(BandwidthSpec {
                        down_bytes_per_sec: None,
                        up_bytes_per_sec: Some(65_536),
                    }))
                },
            ),
            (
                "kind=zip:stall=30s@50%,then=reset",
                Rule {
                    when: Match { kind: vec![GoKind::Zip], ..Match::default() },
                    ..Rule::new(ActionSpec::Stall(StallSpec {
                        ms: Some(30_000),
                        then: StallEnd::Reset,
                        at: Some(BodyPoint::Fraction(0.5)),
                    }))
                },
            ),
            (":stall@1KiB", Rule::new(ActionSpec::Stall(StallSpec { at: Some(BodyPoint::Bytes(1024)), ..StallSpec::default() }))),
            (":truncate=0.25", Rule::new(ActionSpec::Truncate(TruncateSpec { at: BodyPoint::Fraction(0.25) }))),
            (":truncate@4KiB", Rule::new(ActionSpec::Truncate(TruncateSpec { at: BodyPoint::Bytes(4096) }))),
            (":corrupt=3@100", Rule::new(ActionSpec::Corrupt(CorruptSpec { offset: Some(100), count: 3 }))),
            (":refuse", Rule::new(ActionSpec::RefuseConnect(RefuseSpec { status: st(502) }))),
            (" * : close ", Rule::new(ActionSpec::CloseAfterConnect(CloseSpec))),
            (":tls=5s+wrong-host", Rule::new(ActionSpec::Tls(TlsSpec { stall_ms: Some(5000), cert: Some(CertFault::WrongHost) }))),
            (":login", Rule::new(ActionSpec::LoginPage(LoginPageSpec::default()))),
            ("kind=zip:reset@50%,code=internal_error", Rule {
                when: Match { kind: vec![GoKind::Zip], ..Match::default() },
                ..Rule::new(ActionSpec::Reset(ResetSpec {
                    at: Some(BodyPoint::Fraction(0.5)),
                    code: Some(H2Code::INTERNAL_ERROR),
                }))
            }),
            ("version=v1.*:reset", Rule {
                when: Match { version: Some("v1.*".into()), ..Match::default() },
                ..Rule::new(ActionSpec::Reset(ResetSpec::default()))
            }),
        ];
        for (spec, want) in cases {
            assert_eq!(
                parse_spec(spec).unwrap_or_else(|e| panic!("{e}")),
                want,
                "{spec}"
            );
        }
        assert_eq!(
            parse_spec("kind=info:stall=5s").unwrap().phase(),
            Phase::Request
        );
        assert_eq!(
            parse_spec("p=0.05:reset@1000").unwrap().phase(),
            Phase::Response
        );
    }

    #[test]
    fn invalid_specs() {
        let cases = [
            ("kind=zip", "missing `:`"),
            ("kind=zip:", "no action"),
            ("kind=zipp:502", "unknown kind `zipp`"),
            ("colour=red:502", "unknown matcher `colour`"),
            ("zip:502", "not KEY=VALUE"),
            ("kind=zip,,host=x:502", "stray comma"),
            ("kind=zip,kind=mod:502", "given twice"),
            ("p=1.5:502", "within 0..=1"),
            ("p=150%:502", "within 0..=1"),
            ("p=often:502", "within 0..=1"),
            ("first=x:502", "whole number"),
            ("first=0:502", "never apply"),
            (":explode", "unknown action `explode`"),
            (":99", "within 100..=599"),
            (":700", "within 100..=599"),
            (":respond", "needs a status"),
            (":latency=200", "needs a unit"),
            (":latency=5m", "unknown duration unit"),
            (":latency=300ms..100ms", "backwards"),
            (":latency=lognormal:4", "lognormal:MU/SIGMA"),
            (":bandwidth=0/s", "zero"),
            (":bandwidth", "needs `down_bytes_per_sec`"),
            (":bandwidth=10KB/s", "use B, KiB, MiB or GiB"),
            (":reset=5", "takes no value"),
            (":reset@lots", "does not start with a number"),
            (":truncate", "needs a point"),
            (":truncate@1.5", "within 0..=1"),
            (":corrupt@50%", "byte offset"),
            (":corrupt=0", "1..=4096"),
            (":refuse=200", "400..=599"),
            ("kind=zip:refuse", "only the host is known"),
            (":tls=sometimes", "neither a duration"),
            (":close=now", "takes no value"),
            (":502,colour=red", "takes no parameter `colour`"),
            (":stall=5s,then=explode", "close or reset"),
            (":latency=5ms@10", "takes no `@`"),
            ("status=6xx:502", "1xx..5xx"),
            (
                "status=200:bandwidth=1KiB/s,up=1KiB/s",
                "request body is sent before",
            ),
            ("name=a b:502", "may use only"),
            (":respond=502,header=Content-Length=3", "set by the proxy"),
            (":login=503", "200..=299"),
            (":reset@1,code=oops", "not an HTTP/2 error code"),
        ];
        for (spec, want) in cases {
            let err = parse_spec(spec).expect_err(spec);
            let text = err.to_string();
            assert!(text.contains(want), "{spec:?}: {text:?} lacks {want:?}");
            assert!(
                text.starts_with(&format!("invalid fault spec `{spec}`")),
                "{text}"
            );
        }
    }

    #[test]
    fn help_mentions_every_action() {
        for a in [
            "respond",
            "latency",
            "bandwidth",
            "stall",
            "reset",
            "truncate",
            "corrupt",
            "refuse",
            "close",
            "tls",
            "login",
        ] {
            assert!(SPEC_HELP.contains(a), "{a}");
        }
        for kind in GoKind::ALL {
            assert!(SPEC_HELP.contains(kind.as_str()), "{kind:?}");
        }
    }

    #[test]
    fn random_specs_never_panic() {
        let alphabet: Vec<char> = "ab=:,@|.%*~/+ 05KiBms-_é\nzipkindp".chars().collect();
        let words = [
            "kind=",
            "zip",
            "p=",
            "0.5",
            ":",
            "502",
            "latency=",
            "1s",
            "..",
            "~",
            "@",
            "50%",
            "reset",
            "stall",
            "tls=",
            "expired",
            "corrupt",
            "bandwidth",
            ",up=",
            "status=",
            "5xx",
        ];
        let mut rng = crate::fault::Rng::new(11);
        for _ in 0..20_000 {
            let mut spec = String::new();
            for _ in 0..rng.below(12) {
                if rng.chance(0.5) {
                    spec.push(alphabet[rng.below(alphabet.len() as u64) as usize]);
                } else {
                    spec.push_str(words[rng.below(words.len() as u64) as usize]);
                }
            }
            if let Ok(rule) = parse_spec(&spec) {
                rule.validate().expect("parsed specs are valid");
            }
        }
    }

    #[test]
    fn never_panics_on_odd_input() {
        for spec in [
            "",
            ":",
            "::",
            "@:@",
            ":@",
            ":=",
            ":,",
            "é:é",
            ":stall=@",
            ":corrupt=99999999999999999999",
            ":tls=+",
            "=:=",
            ":latency=..",
            ":latency=~",
            ":truncate@%",
        ] {
            let _ = parse_spec(spec);
        }
    }
}
