//! The values inside fault rules, parsed and checked in one leaf module: human units
//! (durations, sizes, rates, fractions), the validating newtypes [`Status`],
//! [`Probability`] and [`BodyPoint`], and the serde helpers that let TOML and JSON
//! write them as numbers or strings. Every check of a single value lives here, so an
//! error points at the value itself; checks across fields live in `validate.rs`.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// Upper bound for any delay the module produces: 24 hours. Heavy-tailed jitter
/// (lognormal) can otherwise draw values that overflow timers in the shell.
pub const MAX_DELAY_MS: u64 = 24 * 60 * 60 * 1000;

/// Splits `"12.5KiB"` into the number and the unit. Only plain decimals are
/// accepted so that Rust's float parser does not quietly accept `inf`, `NaN` or `1e3`.
fn split_number(text: &str) -> Result<(f64, &str), String> {
    let text = text.trim();
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (num, unit) = text.split_at(end);
    if num.is_empty() || num == "." || num.matches('.').count() > 1 {
        return Err(format!("`{text}` does not start with a number"));
    }
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{text}` does not start with a number"))?;
    Ok((value, unit.trim()))
}

fn to_whole(value: f64, scale: f64, text: &str) -> Result<u64, String> {
    let scaled = value * scale;
    // 2^64 is exactly representable; anything at or above it would saturate silently.
    if !scaled.is_finite() || scaled >= 18_446_744_073_709_551_616.0 {
        return Err(format!("`{text}` is too large"));
    }
    Ok(scaled.round() as u64)
}

/// Parses a duration: `250ms`, `1.5s`. A unit is required because a bare `5`
/// is ambiguous between the milliseconds of TOML fields and the seconds people say.
pub fn parse_duration_ms(text: &str) -> Result<u64, String> {
    let (value, unit) = split_number(text)?;
    let scale = match unit {
        "ms" => 1.0,
        "s" => 1000.0,
        "" => return Err(format!("duration `{text}` needs a unit (ms or s)")),
        other => {
            return Err(format!(
                "unknown duration unit `{other}` in `{text}` (use ms or s)"
            ))
        }
    };
    let ms = to_whole(value, scale, text)?;
    if ms > MAX_DELAY_MS {
        return Err(format!("duration `{text}` is longer than 24 hours"));
    }
    Ok(ms)
}

/// Parses a size: `1000`, `1000B`, `64KiB`, `1.5MiB`, `1GiB`. Decimal units (kB, MB)
/// are refused rather than guessed, since a 2.4% error matters for offsets.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let (value, unit) = split_number(text)?;
    let scale = match unit {
        "" | "B" => {
            if text.contains('.') {
                return Err(format!("size `{text}` in bytes must be a whole number"));
            }
            1
        }
        "KiB" => KIB,
        "MiB" => MIB,
        "GiB" => GIB,
        other => {
            return Err(format!(
                "unknown size unit `{other}` in `{text}` (use B, KiB, MiB or GiB)"
            ))
        }
    };
    to_whole(value, scale as f64, text)
}

/// Parses a rate: a size per second, the `/s` being optional (`256KiB/s`, `256KiB`).
pub fn parse_rate(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let size = text.strip_suffix("/s").unwrap_or(text);
    let rate = parse_size(size)?;
    if rate == 0 {
        return Err(format!(
            "rate `{text}` is zero; use `stall` to stop traffic instead"
        ));
    }
    Ok(rate)
}

/// Parses a fraction of a body: `0.5` or `50%`, within 0..=1.
pub fn parse_fraction(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let (value, scale) = match text.strip_suffix('%') {
        Some(pct) => (split_number(pct)?, 100.0),
        None => (split_number(text)?, 1.0),
    };
    if !value.1.is_empty() {
        return Err(format!("`{text}` is not a fraction (write 0.5 or 50%)"));
    }
    let fraction = value.0 / scale;
    check_fraction(fraction)?;
    Ok(fraction)
}

pub fn check_fraction(fraction: f64) -> Result<(), String> {
    if fraction.is_finite() && (0.0..=1.0).contains(&fraction) {
        Ok(())
    } else {
        Err(format!("fraction must be within 0..=1, got {fraction}"))
    }
}

/// An HTTP status code within 100..=599.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Status(u16);

impl Status {
    pub fn new(code: u16) -> Result<Status, String> {
        if (100..=599).contains(&code) {
            Ok(Status(code))
        } else {
            Err(format!(
                "`status` must be an HTTP status within 100..=599, got {code}"
            ))
        }
    }

    /// Parses `502`; anything else is refused with the reason.
    pub fn parse(text: &str) -> Result<Status, String> {
        let code: u16 = text
            .trim()
            .parse()
            .map_err(|_| format!("`{text}` is not an HTTP status code"))?;
        Status::new(code)
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for Status {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u16(self.0)
    }
}

impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Status, D::Error> {
        let code = i64::deserialize(d)?;
        let code = u16::try_from(code).unwrap_or(0);
        Status::new(code).map_err(de::Error::custom)
    }
}

/// The share of selected matches a rule acts on, within 0..=1. Written as a number
/// (`0.05`) or a percentage string (`"5%"`).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Probability(f64);

impl Probability {
    pub const ALWAYS: Probability = Probability(1.0);

    pub fn new(p: f64) -> Result<Probability, String> {
        if p.is_finite() && (0.0..=1.0).contains(&p) {
            Ok(Probability(p))
        } else {
            Err(format!("`probability` must be within 0..=1, got {p}"))
        }
    }

    /// `0.05` or `5%`.
    pub fn parse(text: &str) -> Result<Probability, String> {
        parse_fraction(text).map(Probability).map_err(|_| {
            format!("probability `{text}` must be within 0..=1 (or a percentage like 5%)")
        })
    }

    pub fn get(self) -> f64 {
        self.0
    }

    pub fn is_always(&self) -> bool {
        self.0 == 1.0
    }
}

impl Default for Probability {
    fn default() -> Self {
        Probability::ALWAYS
    }
}

impl Serialize for Probability {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.0)
    }
}

impl<'de> Deserialize<'de> for Probability {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Probability, D::Error> {
        let p = d.deserialize_any(NumberOrPercent)?;
        Probability::new(p).map_err(de::Error::custom)
    }
}

/// A point in a body: a byte count, or a fraction of the declared Content-Length.
/// Rules write it as `after_bytes` or `fraction` (exactly one); inline specs as
/// `@1000`, `@4KiB`, `@0.5` or `@50%`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BodyPoint {
    Bytes(u64),
    Fraction(f64),
}

impl BodyPoint {
    /// `50%` and `0.5` are fractions; `1000` and `4KiB` are byte counts.
    pub fn parse(text: &str) -> Result<BodyPoint, String> {
        let is_fraction = text.ends_with('%')
            || (text.contains('.') && text.bytes().all(|b| b.is_ascii_digit() || b == b'.'));
        if is_fraction {
            parse_fraction(text).map(BodyPoint::Fraction)
        } else {
            parse_size(text).map(BodyPoint::Bytes)
        }
    }

    /// The byte offset in a body of `len` bytes. Fractions need the length; callers
    /// skip rules that place a fault by fraction when it is unknown, so 0 is only a
    /// safe fallback.
    pub fn resolve(self, len: Option<u64>) -> u64 {
        match self {
            BodyPoint::Bytes(b) => b,
            BodyPoint::Fraction(f) => (len.unwrap_or(0) as f64 * f).floor() as u64,
        }
    }

    pub fn is_fraction(self) -> bool {
        matches!(self, BodyPoint::Fraction(_))
    }

    /// The `(after_bytes, fraction)` keys of the rule format.
    pub(crate) fn to_keys(point: Option<BodyPoint>) -> (Option<u64>, Option<f64>) {
        match point {
            None => (None, None),
            Some(BodyPoint::Bytes(b)) => (Some(b), None),
            Some(BodyPoint::Fraction(f)) => (None, Some(f)),
        }
    }

    /// Reads the `(after_bytes, fraction)` keys of the rule format: at most one may be set.
    pub(crate) fn from_keys(
        after_bytes: Option<u64>,
        fraction: Option<f64>,
    ) -> Result<Option<BodyPoint>, String> {
        match (after_bytes, fraction) {
            (Some(_), Some(_)) => Err("takes `after_bytes` or `fraction`, not both".to_string()),
            (Some(b), None) => Ok(Some(BodyPoint::Bytes(b))),
            (None, Some(f)) => Ok(Some(BodyPoint::Fraction(f))),
            (None, None) => Ok(None),
        }
    }
}

/// An HTTP/2 error code (RFC 9113 section 7), for resetting a stream with RST_STREAM.
/// Written by name, case-insensitive (`"INTERNAL_ERROR"`, `"refused_stream"`) or as
/// a number; printed by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct H2Code(u32);

const H2_CODES: [&str; 14] = [
    "NO_ERROR",
    "PROTOCOL_ERROR",
    "INTERNAL_ERROR",
    "FLOW_CONTROL_ERROR",
    "SETTINGS_TIMEOUT",
    "STREAM_CLOSED",
    "FRAME_SIZE_ERROR",
    "REFUSED_STREAM",
    "CANCEL",
    "COMPRESSION_ERROR",
    "CONNECT_ERROR",
    "ENHANCE_YOUR_CALM",
    "INADEQUATE_SECURITY",
    "HTTP_1_1_REQUIRED",
];

impl H2Code {
    /// The one Go users meet in the wild: `stream error: stream ID N; INTERNAL_ERROR`.
    pub const INTERNAL_ERROR: H2Code = H2Code(2);

    pub fn parse(text: &str) -> Result<H2Code, String> {
        let text = text.trim();
        if let Some(i) = H2_CODES.iter().position(|n| n.eq_ignore_ascii_case(text)) {
            return Ok(H2Code(i as u32));
        }
        let number = match text.strip_prefix("0x") {
            Some(hex) => u32::from_str_radix(hex, 16).ok(),
            None => text.parse().ok(),
        };
        number.map(H2Code).ok_or_else(|| {
            format!(
                "`{text}` is not an HTTP/2 error code; use one of {} or a number",
                H2_CODES.join(", ")
            )
        })
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for H2Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match H2_CODES.get(self.0 as usize) {
            Some(name) => f.write_str(name),
            None => write!(f, "0x{:x}", self.0),
        }
    }
}

impl Serialize for H2Code {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for H2Code {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<H2Code, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = H2Code;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an HTTP/2 error code like \"INTERNAL_ERROR\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<H2Code, E> {
                H2Code::parse(v).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<H2Code, E> {
                u32::try_from(v)
                    .map(H2Code)
                    .map_err(|_| E::custom(format!("HTTP/2 error code {v} is too large")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<H2Code, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom(format!("HTTP/2 error code {v} is negative")))
                    .and_then(|v| self.visit_u64(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// Prints a byte count the way people wrote it: exact binary multiples keep their
/// unit (`256KiB`), anything else is plain bytes (`1000 B`).
pub fn format_size(bytes: u64) -> String {
    for (unit, name) in [(GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")] {
        if bytes >= unit && bytes % unit == 0 {
            return format!("{}{name}", bytes / unit);
        }
    }
    format!("{bytes} B")
}

pub fn format_rate(bytes_per_sec: u64) -> String {
    format!("{}/s", format_size(bytes_per_sec))
}

pub fn format_ms(ms: u64) -> String {
    if ms >= 1000 && ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// Serde helpers so TOML and JSON can say `"256KiB"` or `"2s"` where a number is expected.
pub mod serde_units {
    use serde::de::{self, Deserializer, Visitor};
    use std::fmt;

    struct UnitVisitor {
        what: &'static str,
        parse: fn(&str) -> Result<u64, String>,
    }

    impl Visitor<'_> for UnitVisitor {
        type Value = u64;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(self.what)
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v)
                .map_err(|_| E::custom(format!("{} must not be negative, got {v}", self.what)))
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
            (self.parse)(v).map_err(E::custom)
        }
    }

    fn parse_plain_size(text: &str) -> Result<u64, String> {
        super::parse_size(text)
    }

    pub fn size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        d.deserialize_any(UnitVisitor {
            what: "a byte count (number or string like \"64KiB\")",
            parse: parse_plain_size,
        })
    }

    pub fn opt_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        size(d).map(Some)
    }

    pub fn opt_rate<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        let rate = d.deserialize_any(UnitVisitor {
            what: "a rate in bytes per second (number or string like \"256KiB/s\")",
            parse: super::parse_rate,
        })?;
        // Checked here, not only in rule validation, so the error points at the value.
        if rate == 0 {
            return Err(de::Error::custom(
                "rate is zero; use `stall` to stop traffic instead",
            ));
        }
        Ok(Some(rate))
    }

    pub fn ms<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        d.deserialize_any(UnitVisitor {
            what: "milliseconds (number or string like \"250ms\" or \"2s\")",
            parse: super::parse_duration_ms,
        })
    }

    pub fn opt_ms<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        ms(d).map(Some)
    }

    /// A fraction of a body, `0.5` or `"50%"`, checked here so the error points at it.
    pub fn opt_fraction<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        let f = d.deserialize_any(super::NumberOrPercent)?;
        super::check_fraction(f).map_err(de::Error::custom)?;
        Ok(Some(f))
    }
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
        parse_fraction(v).map_err(E::custom)
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

impl ListItem for String {
    const WHAT: &'static str = "string";
    fn from_text(text: &str) -> Result<Self, String> {
        Ok(text.to_string())
    }
    fn serialize_item<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("250ms"), Ok(250));
        assert_eq!(parse_duration_ms("1.5s"), Ok(1500));
        assert_eq!(parse_duration_ms(" 2s "), Ok(2000));
        assert!(parse_duration_ms("5").unwrap_err().contains("needs a unit"));
        assert!(parse_duration_ms("5m")
            .unwrap_err()
            .contains("unknown duration unit `m`"));
        assert!(parse_duration_ms("ms").is_err());
        assert!(parse_duration_ms("1e3ms").is_err());
        assert!(parse_duration_ms("inf s").is_err());
        assert!(parse_duration_ms("100000000s")
            .unwrap_err()
            .contains("24 hours"));
        assert!(parse_duration_ms("99999999999999999999999999s").is_err());
    }

    #[test]
    fn sizes_and_rates() {
        assert_eq!(parse_size("1000"), Ok(1000));
        assert_eq!(parse_size("1000B"), Ok(1000));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("1.5MiB"), Ok(1_572_864));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert!(parse_size("1.5").is_err());
        assert!(parse_size("10KB")
            .unwrap_err()
            .contains("use B, KiB, MiB or GiB"));
        assert!(parse_size("-1").is_err());
        assert!(parse_size("99999999999GiB")
            .unwrap_err()
            .contains("too large"));
        assert_eq!(parse_rate("256KiB/s"), Ok(262_144));
        assert_eq!(parse_rate("256KiB"), Ok(262_144));
        assert!(parse_rate("0/s").unwrap_err().contains("zero"));
    }

    #[test]
    fn fractions() {
        assert_eq!(parse_fraction("0.5"), Ok(0.5));
        assert_eq!(parse_fraction("50%"), Ok(0.5));
        assert_eq!(parse_fraction("100%"), Ok(1.0));
        assert!(parse_fraction("150%").is_err());
        assert!(parse_fraction("1.5").is_err());
        assert!(parse_fraction("half").is_err());
        assert!(parse_fraction("5KiB").is_err());
    }

    #[test]
    fn h2_codes() {
        assert_eq!(H2Code::parse("internal_error"), Ok(H2Code::INTERNAL_ERROR));
        assert_eq!(
            H2Code::parse("0x7").map(|c| c.to_string()),
            Ok("REFUSED_STREAM".into())
        );
        assert_eq!(
            H2Code::parse("99").map(|c| c.to_string()),
            Ok("0x63".into())
        );
        assert!(H2Code::parse("oops")
            .unwrap_err()
            .contains("ENHANCE_YOUR_CALM"));
        let c: H2Code = serde_json::from_str("\"CANCEL\"").unwrap();
        assert_eq!(serde_json::to_string(&c).unwrap(), "\"CANCEL\"");
    }

    #[test]
    fn newtypes_refuse_bad_values() {
        assert_eq!(Status::new(502).map(Status::get), Ok(502));
        assert!(Status::new(99).unwrap_err().contains("100..=599"));
        assert!(Status::parse("5o2")
            .unwrap_err()
            .contains("not an HTTP status"));
        let status: Result<Status, _> = serde_json::from_str("-1");
        assert!(status.unwrap_err().to_string().contains("100..=599"));
        assert_eq!(Probability::parse("5%").map(Probability::get), Ok(0.05));
        assert!(Probability::new(f64::NAN).is_err());
        assert!(Probability::parse("150%").is_err());
        let p: Probability = serde_json::from_str("\"50%\"").unwrap();
        assert_eq!(p.get(), 0.5);
        assert!(serde_json::from_str::<Probability>("1.5").is_err());
        assert_eq!(BodyPoint::parse("50%"), Ok(BodyPoint::Fraction(0.5)));
        assert_eq!(BodyPoint::parse("0.25"), Ok(BodyPoint::Fraction(0.25)));
        assert_eq!(BodyPoint::parse("4KiB"), Ok(BodyPoint::Bytes(4096)));
        assert!(BodyPoint::parse("1.5").is_err());
        assert_eq!(BodyPoint::Fraction(0.5).resolve(Some(1001)), 500);
        assert_eq!(BodyPoint::Bytes(9).resolve(None), 9);
        assert_eq!(BodyPoint::from_keys(None, None), Ok(None));
        assert!(BodyPoint::from_keys(Some(1), Some(0.5)).is_err());
        for point in [
            None,
            Some(BodyPoint::Bytes(3)),
            Some(BodyPoint::Fraction(0.5)),
        ] {
            let (b, f) = BodyPoint::to_keys(point);
            assert_eq!(BodyPoint::from_keys(b, f), Ok(point));
        }
    }

    #[test]
    fn formatting() {
        assert_eq!(format_size(1000), "1000 B");
        assert_eq!(format_size(262_144), "256KiB");
        assert_eq!(format_size(0), "0 B");
        assert_eq!(format_rate(262_144), "256KiB/s");
        assert_eq!(format_rate(1000), "1000 B/s");
        assert_eq!(format_ms(243), "243ms");
        assert_eq!(format_ms(5000), "5s");
        assert_eq!(format_ms(0), "0ms");
    }
}
