//! Parsing and printing of the human units used in fault rules: durations, sizes, rates, fractions.

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
