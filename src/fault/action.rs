//! Concrete fault actions as the engine hands them to the IO shell (every random
//! choice already made), and their one-line descriptions for the trace.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::rule::{CertFault, StallEnd};
use super::shaping::CorruptPlan;
use super::values::{format_ms, format_rate, format_size, H2Code};

/// What the shell must do. Delays are whole milliseconds; byte positions count body
/// bytes as they go to the client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Answer with this response instead of (Request phase) or in place of (Response
    /// phase) the upstream one. `headers` already include a text/plain content type
    /// unless the rule set one; the shell adds framing (Content-Length).
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// Wait this long before sending the response head.
    Latency { ms: u64 },
    /// Pace the body in each direction (None: not capped), see `bandwidth_delay`.
    Bandwidth {
        down_bytes_per_sec: Option<u64>,
        up_bytes_per_sec: Option<u64>,
    },
    /// Stop sending (before the head, or after `after_bytes` body bytes), wait `ms`
    /// (None: forever, until the client gives up), then end the connection.
    Stall {
        ms: Option<u64>,
        then: StallEnd,
        after_bytes: Option<u64>,
    },
    /// Abort the connection (TCP RST / HTTP/2 RST_STREAM) before the head, or after
    /// `after_bytes` body bytes; on HTTP/2 mid-body, with `h2_code` when set.
    Reset {
        after_bytes: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        h2_code: Option<H2Code>,
    },
    /// End the body cleanly after `after_bytes` bytes. For a clean end the shell must
    /// declare the shorter length (or use chunked / HTTP/2 framing); keeping the
    /// original Content-Length would turn this into a reset.
    Truncate { after_bytes: u64 },
    /// Invert the planned body bytes, see `corrupt_in_place`.
    Corrupt { plan: CorruptPlan },
    /// Answer the CONNECT with this status instead of opening the tunnel.
    RefuseConnect { status: u16 },
    /// Accept the CONNECT (200) and close the connection at once.
    CloseAfterConnect,
    /// Hold the client handshake `stall_ms`, then present a bad certificate if `cert`.
    Tls {
        stall_ms: Option<u64>,
        cert: Option<CertFault>,
    },
}

/// The short text recorded in the trace as `_fault.action`, e.g. `respond 502`,
/// `latency 243ms`, `reset after 1000 B`.
pub fn describe(action: &Action) -> String {
    match action {
        Action::Respond { status, .. } => format!("respond {status}"),
        Action::Latency { ms } => format!("latency {}", format_ms(*ms)),
        Action::Bandwidth {
            down_bytes_per_sec,
            up_bytes_per_sec,
        } => {
            let mut parts = vec!["bandwidth".to_string()];
            if let Some(r) = down_bytes_per_sec {
                parts.push(format!("down {}", format_rate(*r)));
            }
            if let Some(r) = up_bytes_per_sec {
                parts.push(format!("up {}", format_rate(*r)));
            }
            parts.join(" ")
        }
        Action::Stall {
            ms,
            then,
            after_bytes,
        } => {
            let mut out = match ms {
                Some(ms) => format!("stall {}", format_ms(*ms)),
                None => "stall forever".to_string(),
            };
            if let Some(b) = after_bytes {
                out.push_str(&format!(" after {}", format_size(*b)));
            }
            if ms.is_some() {
                out.push_str(match then {
                    StallEnd::Close => " then close",
                    StallEnd::Reset => " then reset",
                });
            }
            out
        }
        Action::Reset {
            after_bytes: None, ..
        } => "reset before head".to_string(),
        Action::Reset {
            after_bytes: Some(b),
            h2_code,
        } => match h2_code {
            None => format!("reset after {}", format_size(*b)),
            Some(code) => format!("reset after {} (h2 {code})", format_size(*b)),
        },
        Action::Truncate { after_bytes } => format!("truncate after {}", format_size(*after_bytes)),
        Action::Corrupt { plan } => match plan.spans.first() {
            None => "corrupt nothing".to_string(),
            Some(first) => format!(
                "corrupt {} at offset {}",
                format_size(plan.byte_count()),
                first.offset
            ),
        },
        Action::RefuseConnect { status } => format!("refuse CONNECT {status}"),
        Action::CloseAfterConnect => "close after CONNECT".to_string(),
        Action::Tls { stall_ms, cert } => {
            let mut parts = vec!["tls".to_string()];
            if let Some(ms) = stall_ms {
                parts.push(format!("stall {}", format_ms(*ms)));
            }
            if let Some(c) = cert {
                parts.push(format!("cert {}", c.as_str()));
            }
            parts.join(" ")
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&describe(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::shaping::ByteSpan;

    #[test]
    fn descriptions() {
        let cases = [
            (
                Action::Respond {
                    status: 502,
                    headers: vec![],
                    body: String::new(),
                },
                "respond 502",
            ),
            (Action::Latency { ms: 243 }, "latency 243ms"),
            (Action::Latency { ms: 2000 }, "latency 2s"),
            (
                Action::Bandwidth {
                    down_bytes_per_sec: Some(262_144),
                    up_bytes_per_sec: Some(1000),
                },
                "bandwidth down 256KiB/s up 1000 B/s",
            ),
            (
                Action::Stall {
                    ms: None,
                    then: StallEnd::Close,
                    after_bytes: None,
                },
                "stall forever",
            ),
            (
                Action::Stall {
                    ms: Some(5000),
                    then: StallEnd::Reset,
                    after_bytes: Some(1000),
                },
                "stall 5s after 1000 B then reset",
            ),
            (
                Action::Reset {
                    after_bytes: None,
                    h2_code: None,
                },
                "reset before head",
            ),
            (
                Action::Reset {
                    after_bytes: Some(4096),
                    h2_code: Some(H2Code::INTERNAL_ERROR),
                },
                "reset after 4KiB (h2 INTERNAL_ERROR)",
            ),
            (
                Action::Reset {
                    after_bytes: Some(1000),
                    h2_code: None,
                },
                "reset after 1000 B",
            ),
            (
                Action::Truncate { after_bytes: 2048 },
                "truncate after 2KiB",
            ),
            (
                Action::Corrupt {
                    plan: CorruptPlan {
                        spans: vec![ByteSpan {
                            offset: 512,
                            len: 1,
                        }],
                    },
                },
                "corrupt 1 B at offset 512",
            ),
            (
                Action::Corrupt {
                    plan: CorruptPlan::default(),
                },
                "corrupt nothing",
            ),
            (Action::RefuseConnect { status: 403 }, "refuse CONNECT 403"),
            (Action::CloseAfterConnect, "close after CONNECT"),
            (
                Action::Tls {
                    stall_ms: Some(15_000),
                    cert: Some(CertFault::Expired),
                },
                "tls stall 15s cert expired",
            ),
        ];
        for (action, want) in cases {
            assert_eq!(describe(&action), want);
            assert_eq!(action.to_string(), want);
        }
    }

    #[test]
    fn actions_serialise_with_a_tag() {
        let json = serde_json::to_string(&Action::Latency { ms: 5 }).unwrap();
        assert_eq!(json, r#"{"action":"latency","ms":5}"#);
        let back: Action = serde_json::from_str(&json).unwrap();
        assert_eq!(back, Action::Latency { ms: 5 });
    }
}
