//! The serde shape of rules, shared by TOML files and the JSON admin API: each action
//! is its own optional key (`respond = { status = 502 }`), and conversion to [`Rule`]
//! checks that exactly one is set. Field-level checks happen while deserializing so
//! that TOML errors point at the offending value.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

use super::rule::{
    ActionSpec, BandwidthSpec, CorruptSpec, GoKind, LatencySpec, Match, RefuseSpec, ResetSpec,
    RespondSpec, Rule, Selection, StallSpec, StatusPattern, TlsSpec, TruncateSpec,
};
use super::units::check_fraction;
use super::validate::{check_probability, check_status, RuleError};

const ACTION_KEYS: [&str; 10] = [
    "respond",
    "latency",
    "bandwidth",
    "stall",
    "reset",
    "truncate",
    "corrupt",
    "refuse_connect",
    "close_after_connect",
    "tls",
];

/// The serde shape of a rule: each action is its own optional key so a TOML rule
/// reads `respond = { status = 502 }`; conversion checks that exactly one is set.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(rename = "match", default, skip_serializing_if = "Match::is_any")]
    pub when: Match,
    #[serde(
        default = "one_f64",
        deserialize_with = "de_probability",
        skip_serializing_if = "is_one"
    )]
    pub probability: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<u64>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub after: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub respond: Option<RespondSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencySpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<BandwidthSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stall: Option<StallSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset: Option<ResetSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncate: Option<TruncateSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrupt: Option<CorruptSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refuse_connect: Option<RefuseSpec>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_flag"
    )]
    pub close_after_connect: Option<Flag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,
}

impl TryFrom<RawRule> for Rule {
    type Error = RuleError;

    fn try_from(raw: RawRule) -> Result<Rule, RuleError> {
        let mut actions = Vec::new();
        if let Some(a) = raw.respond {
            actions.push(ActionSpec::Respond(a));
        }
        if let Some(a) = raw.latency {
            actions.push(ActionSpec::Latency(a));
        }
        if let Some(a) = raw.bandwidth {
            actions.push(ActionSpec::Bandwidth(a));
        }
        if let Some(a) = raw.stall {
            actions.push(ActionSpec::Stall(a));
        }
        if let Some(a) = raw.reset {
            actions.push(ActionSpec::Reset(a));
        }
        if let Some(a) = raw.truncate {
            actions.push(ActionSpec::Truncate(a));
        }
        if let Some(a) = raw.corrupt {
            actions.push(ActionSpec::Corrupt(a));
        }
        if let Some(a) = raw.refuse_connect {
            actions.push(ActionSpec::RefuseConnect(a));
        }
        if raw.close_after_connect.is_some() {
            actions.push(ActionSpec::CloseAfterConnect);
        }
        if let Some(a) = raw.tls {
            actions.push(ActionSpec::Tls(a));
        }
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
        let rule = Rule {
            name: raw.name,
            when: raw.when,
            select: Selection {
                probability: raw.probability,
                first: raw.first,
                every: raw.every,
                after: raw.after,
            },
            action,
        };
        rule.validate()?;
        Ok(rule)
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
        match rule.action {
            ActionSpec::Respond(a) => raw.respond = Some(a),
            ActionSpec::Latency(a) => raw.latency = Some(a),
            ActionSpec::Bandwidth(a) => raw.bandwidth = Some(a),
            ActionSpec::Stall(a) => raw.stall = Some(a),
            ActionSpec::Reset(a) => raw.reset = Some(a),
            ActionSpec::Truncate(a) => raw.truncate = Some(a),
            ActionSpec::Corrupt(a) => raw.corrupt = Some(a),
            ActionSpec::RefuseConnect(a) => raw.refuse_connect = Some(a),
            ActionSpec::CloseAfterConnect => raw.close_after_connect = Some(Flag),
            ActionSpec::Tls(a) => raw.tls = Some(a),
        }
        raw
    }
}

/// The value of `close_after_connect`, which carries no parameters: written `true` or `{}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Flag;

impl Serialize for Flag {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bool(true)
    }
}

fn de_flag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Flag>, D::Error> {
    struct FlagVisitor;
    impl<'de> Visitor<'de> for FlagVisitor {
        type Value = Option<Flag>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("`true` or an empty table")
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            if v {
                Ok(Some(Flag))
            } else {
                Err(E::custom(
                    "`close_after_connect = false` does nothing; remove the key",
                ))
            }
        }
        fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            if let Some(key) = map.next_key::<String>()? {
                return Err(de::Error::custom(format!(
                    "`close_after_connect` takes no parameters, got `{key}`"
                )));
            }
            Ok(Some(Flag))
        }
    }
    d.deserialize_any(FlagVisitor)
}

fn one_f64() -> f64 {
    1.0
}

pub(crate) fn one_u32() -> u32 {
    1
}

pub(crate) fn default_refuse_status() -> u16 {
    502
}

fn is_one(v: &f64) -> bool {
    *v == 1.0
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

pub(crate) fn de_status<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    let code = u16::deserialize(d)?;
    check_status(code, "status").map_err(de::Error::custom)?;
    Ok(code)
}

/// Probability as a number (`0.05`) or a percentage string (`"5%"`), checked here so
/// the error points at the value itself.
fn de_probability<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let p = d.deserialize_any(NumberOrPercent)?;
    check_probability(p).map_err(de::Error::custom)?;
    Ok(p)
}

pub(crate) fn de_fraction<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let f = d.deserialize_any(NumberOrPercent)?;
    check_fraction(f).map_err(de::Error::custom)?;
    Ok(Some(f))
}

struct NumberOrPercent;

impl Visitor<'_> for NumberOrPercent {
    type Value = f64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number within 0..=1 or a percentage like \"5%\"")
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
        Ok(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
        super::units::parse_fraction(v).map_err(E::custom)
    }
}

/// Items that may be written alone or in a list (`kind = "zip"` or `kind = ["zip", "mod"]`).
pub(crate) trait ListItem: Sized {
    const WHAT: &'static str;
    fn from_text(text: &str) -> Result<Self, String>;
    fn from_number(n: i64) -> Result<Self, String> {
        Err(format!("expected a {}, got the number {n}", Self::WHAT))
    }
    fn serialize_item<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error>;
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

impl ListItem for String {
    const WHAT: &'static str = "string";
    fn from_text(text: &str) -> Result<Self, String> {
        Ok(text.to_string())
    }
    fn serialize_item<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self)
    }
}

impl ListItem for StatusPattern {
    const WHAT: &'static str = "status";
    fn from_text(text: &str) -> Result<Self, String> {
        StatusPattern::parse(text)
    }
    fn from_number(n: i64) -> Result<Self, String> {
        let code = u16::try_from(n).unwrap_or(0);
        check_status(code, "match.status")
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

struct ItemVisitor<T>(PhantomData<T>);

impl<'de, T: ListItem> Visitor<'de> for ItemVisitor<T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a {} or a list of them", T::WHAT)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<T>, E> {
        T::from_text(v).map(|t| vec![t]).map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Vec<T>, E> {
        T::from_number(v).map(|t| vec![t]).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Vec<T>, E> {
        self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let mut out = Vec::new();
        while let Some(one) = seq.next_element::<Single<T>>()? {
            out.push(one.0);
        }
        if out.is_empty() {
            return Err(de::Error::custom(format!(
                "empty list of {}s; leave the key out to match any",
                T::WHAT
            )));
        }
        Ok(out)
    }
}

struct Single<T>(T);

impl<'de, T: ListItem> Deserialize<'de> for Single<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<T: ListItem> Visitor<'_> for V<T> {
            type Value = T;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "a {}", T::WHAT)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
                T::from_text(v).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
                T::from_number(v).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
                T::from_number(i64::try_from(v).unwrap_or(i64::MAX)).map_err(E::custom)
            }
        }
        d.deserialize_any(V(PhantomData)).map(Single)
    }
}

pub(crate) fn one_or_many<'de, D: Deserializer<'de>, T: ListItem>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    d.deserialize_any(ItemVisitor(PhantomData))
}

struct AsItem<'a, T>(&'a T);

impl<T: ListItem> Serialize for AsItem<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize_item(s)
    }
}

pub(crate) fn ser_one_or_many<S: Serializer, T: ListItem>(
    items: &[T],
    s: S,
) -> Result<S::Ok, S::Error> {
    if let [one] = items {
        return one.serialize_item(s);
    }
    let mut seq = s.serialize_seq(Some(items.len()))?;
    for item in items {
        seq.serialize_element(&AsItem(item))?;
    }
    seq.end()
}
