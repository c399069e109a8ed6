//! Live console output: one concise line per finished exchange, coloured on a terminal.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::exchange::Exchange;
use crate::proxy::Observer;

pub use crate::net::plural;

/// The lines of an error report: the error, then each cause that adds something. A cause
/// whose text the line before already contains (an error that prints its source) is
/// left out, so no `caused by:` line repeats.
pub fn error_lines(chain: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut lines = Vec::new();
    let mut last: Option<String> = None;
    for message in chain {
        match &last {
            None => lines.push(format!("modscope: error: {message}")),
            Some(prev) if prev.contains(message.as_str()) => continue,
            Some(_) => lines.push(format!("  caused by: {message}")),
        }
        last = Some(message);
    }
    lines
}

/// Whether a panic message is std's report of printing to a closed stdout or stderr.
pub fn is_closed_output_panic(message: &str) -> bool {
    (message.starts_with("failed printing to stdout")
        || message.starts_with("failed printing to stderr"))
        && message.contains("Broken pipe")
}

/// Whether to colour output: never with `NO_COLOR`, else when the stream is a terminal.
pub fn use_color(stream_is_terminal: bool, no_color_env: bool) -> bool {
    stream_is_terminal && !no_color_env
}

/// Whether to colour what goes to stderr (exchange lines, the closing summary).
pub fn stderr_color() -> bool {
    use_color(std::io::stderr().is_terminal(), no_color_env())
}

/// Whether to colour what goes to stdout (`summary`).
pub fn stdout_color() -> bool {
    use_color(std::io::stdout().is_terminal(), no_color_env())
}

/// `NO_COLOR` set to anything but the empty string (no-color.org).
fn no_color_env() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// Prints each exchange to stderr.
pub struct ConsoleObserver {
    color: bool,
    /// Hide URL userinfo, as the trace does (off with `--no-redact`).
    redact: bool,
    pub printed: AtomicU64,
}

impl ConsoleObserver {
    pub fn new(color: bool, redact: bool) -> Self {
        ConsoleObserver {
            color,
            redact,
            printed: AtomicU64::new(0),
        }
    }
}

impl Observer for ConsoleObserver {
    fn on_exchange(&self, ex: &Exchange) {
        let mut line = exchange_line(ex, self.color, self.redact);
        // One write(2) for the whole line: stderr is unbuffered, and `writeln!` writes the
        // text and the newline apart, so a child sharing the terminal or pipe (go's
        // `# get` lines under `run`) could land in between and be glued to ours.
        line.push('\n');
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
        self.printed.fetch_add(1, Ordering::Relaxed);
    }
}

/// `200 GET https://host/path  1.2 KiB  12 ms  [zip example.com/m@v1.0.0]`
pub fn exchange_line(ex: &Exchange, color: bool, redact: bool) -> String {
    let status = ex.response.as_ref().map(|r| r.status).unwrap_or(0);
    let status_text = if status == 0 {
        "ERR".to_string()
    } else {
        status.to_string()
    };
    let paint = |code: &str, text: &str| {
        if color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    };
    let status_col = match status {
        200..=299 => paint("32", &status_text),
        300..=399 => paint("36", &status_text),
        400..=499 => paint("33", &status_text),
        _ => paint("31", &status_text),
    };
    let bytes = ex.response.as_ref().map(|r| r.body.size).unwrap_or(0);
    let total: f64 = [
        ex.timings.blocked,
        ex.timings.dns,
        ex.timings.tcp,
        ex.timings.tls,
        ex.timings.send,
        ex.timings.wait,
        ex.timings.receive,
    ]
    .into_iter()
    .flatten()
    .sum();
    let url = if redact {
        crate::trace::redact_userinfo(&ex.request.url, crate::trace::REDACTED)
    } else {
        ex.request.url.clone()
    };
    let mut line = format!(
        "{status_col} {} {}  {}  {}",
        ex.request.method,
        url,
        human_bytes(bytes),
        human_ms(total)
    );
    if let Some(err) = &ex.error {
        line.push_str(&format!(
            "  {}",
            paint("31", &format!("{}: {}", err.kind, err.message))
        ));
    }
    if let Some(fault) = &ex.fault {
        line.push_str(&format!(
            "  {}",
            paint("35", &format!("[fault {}: {}]", fault.rule, fault.action))
        ));
    }
    line
}

pub use crate::net::{human_bytes, human_ms};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_times() {
        assert_eq!(human_bytes(12), "12 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024), "3.0 MiB");
        assert_eq!(human_ms(12.34), "12.3 ms");
        assert_eq!(human_ms(1500.0), "1.50 s");
    }

    #[test]
    fn error_chains_do_not_repeat_causes() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let table: [(&[&str], &[&str]); 3] = [
            (
                &[
                    "cannot read the trace /etc/passwd",
                    "/etc/passwd: not a HAR file: expected JSON",
                    "expected JSON",
                ],
                &[
                    "modscope: error: cannot read the trace /etc/passwd",
                    "  caused by: /etc/passwd: not a HAR file: expected JSON",
                ],
            ),
            (
                &["a", "b", "c"],
                &["modscope: error: a", "  caused by: b", "  caused by: c"],
            ),
            (&["same", "same"], &["modscope: error: same"]),
        ];
        for (chain, want) in table {
            assert_eq!(error_lines(s(chain)), s(want));
        }
    }

    #[test]
    fn closed_output_panics_are_recognised() {
        assert!(is_closed_output_panic(
            "failed printing to stdout: Broken pipe (os error 32)"
        ));
        assert!(is_closed_output_panic(
            "failed printing to stderr: Broken pipe (os error 32)"
        ));
        assert!(!is_closed_output_panic(
            "failed printing to stdout: No space left on device"
        ));
        assert!(!is_closed_output_panic("index out of bounds"));
    }

    #[test]
    fn colour_only_on_terminals_without_no_color() {
        assert!(use_color(true, false));
        assert!(!use_color(true, true));
        assert!(!use_color(false, false));
    }
}
