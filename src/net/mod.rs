//! Network text helpers shared by every module that reads a URL, an authority or a
//! host name: one [`Authority`] parser, one host glob, canonical reason phrases, and one
//! human byte count, duration and plural. Pure: strings in, values out.

mod authority;
mod glob;

pub use authority::{default_port, Authority, AuthorityError};
pub use glob::{glob_match, host_match, module_match};

/// The canonical reason phrase of a status (`Bad Gateway`), or "" for a code without
/// one. HTTP/2 carries no reason phrase, so traces and reports fill it from here.
pub fn reason_phrase(status: u16) -> &'static str {
    http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("")
}

/// `1 entry`, `2 entries`: the count with the right form of the noun. Here, not in
/// `console`, so the trace reader can count without importing the console (that made
/// config -> trace -> console -> proxy -> config a circle).
pub fn plural<N: std::fmt::Display + PartialEq + From<u8>>(n: N, one: &str, many: &str) -> String {
    if n == N::from(1) {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// A byte count for people: `512 B`, `1.5 KiB`, `3.0 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// A duration in milliseconds for people: `12.3 ms`, `1.50 s`.
pub fn human_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else {
        format!("{ms:.1} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_and_bytes() {
        assert_eq!(reason_phrase(502), "Bad Gateway");
        assert_eq!(reason_phrase(404), "Not Found");
        assert_eq!(reason_phrase(299), "");
        assert_eq!(reason_phrase(1000), "");
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 20), "3.0 MiB");
        assert_eq!(human_bytes(u64::MAX), "16777216.0 TiB");
        assert_eq!(human_ms(12.34), "12.3 ms");
        assert_eq!(human_ms(1500.0), "1.50 s");
    }
}
