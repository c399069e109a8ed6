//! Plain data describing one finished client exchange, as the proxy shell observed it.
//!
//! The IO shell (`proxy/`) fills these structs from sockets and clocks; everything
//! downstream (HAR building, summaries, diagnosis, replay) is a pure function of them.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// One request/response exchange (or a failed attempt at one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exchange {
    /// Process-unique, increasing id.
    pub id: u64,
    /// Wall clock when the request head arrived from the client.
    #[serde(with = "system_time_serde")]
    pub started: SystemTime,
    pub request: ExchangeRequest,
    /// `None` when no response head was received (see `error`).
    pub response: Option<ResponseFacts>,
    pub timings: PhaseTimes,
    /// Id of the upstream connection that carried the exchange (shared by reused connections).
    pub connection_id: Option<u64>,
    /// Upstream peer IP actually connected to (after `--connect-to` mapping).
    pub server_ip: Option<String>,
    pub tls: Option<TlsFacts>,
    pub error: Option<ExchangeError>,
    pub fault: Option<FaultFacts>,
    /// The response body waited on the origin for the stall threshold or longer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stall: Option<BodyStall>,
    /// Process-unique id of the client connection the request came in on (exchanges of
    /// one go process over one tunnel share it); `None` for imported or synthetic ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_connection: Option<u64>,
}

/// The longest wait of a response body for data from the origin (trace `_stall`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BodyStall {
    /// Milliseconds the body received nothing.
    pub longest_ms: f64,
    /// Bytes received when that wait began.
    pub at_bytes: u64,
    /// The Content-Length the origin announced, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_bytes: Option<u64>,
    /// Data arrived again after the wait (otherwise the body ended during it: cut,
    /// or the client gave up).
    pub resumed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExchangeRequest {
    pub method: String,
    /// Absolute URL, e.g. `https://proxy.golang.org/golang.org/x/mod/@v/list`.
    pub url: String,
    /// `HTTP/1.1`, `HTTP/2`, ...
    pub http_version: String,
    /// Header names in lower case as received, in order, values unredacted.
    pub headers: Vec<(String, String)>,
    pub body: BodyFacts,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseFacts {
    pub status: u16,
    pub http_version: String,
    pub headers: Vec<(String, String)>,
    pub trailers: Vec<(String, String)>,
    pub body: BodyFacts,
}

/// What is known of a body after it streamed through.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BodyFacts {
    /// Bytes that actually passed (after content-encoding, i.e. as on the wire).
    pub size: u64,
    /// Hex SHA-256 of the bytes, when the body was stored.
    pub sha256: Option<String>,
    /// Whether the body ended cleanly (false: cut by reset, abort, fault, error).
    pub complete: bool,
}

/// Durations in milliseconds; `None` means the phase did not happen (HAR `-1`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseTimes {
    /// Waiting for a connection slot or an HTTP handshake.
    pub blocked: Option<f64>,
    pub dns: Option<f64>,
    /// TCP connect only (HAR `connect` = tcp + tls, added when building the entry).
    pub tcp: Option<f64>,
    pub tls: Option<f64>,
    pub send: Option<f64>,
    pub wait: Option<f64>,
    pub receive: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TlsFacts {
    pub client: Option<ClientTls>,
    pub upstream: Option<UpstreamTls>,
}

/// The TLS session between the client (go) and modscope.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientTls {
    pub sni: Option<String>,
    pub alpn: Vec<String>,
    pub version: Option<String>,
    pub cipher: Option<String>,
}

/// The TLS session between modscope and the origin.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpstreamTls {
    pub version: Option<String>,
    pub cipher: Option<String>,
    pub alpn: Option<String>,
    pub verified: bool,
    pub error: Option<String>,
    /// Shared by every exchange of the connection: cloning an exchange (for each
    /// observer, for the recorder's entry) copied the whole chain's strings each time.
    pub certificates: std::sync::Arc<[CertFacts]>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertFacts {
    pub subject: String,
    pub issuer: String,
    /// RFC 3339.
    pub not_before: String,
    pub not_after: String,
    pub dns_names: Vec<String>,
    pub sha256: String,
}

/// Where and how an exchange failed. Both fields serialise to the trace's kebab-case
/// words (`{"phase": "tls", "kind": "tls-untrusted"}`), so the format is unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExchangeError {
    pub phase: FailPhase,
    pub kind: ErrorKind,
    pub message: String,
}

impl ExchangeError {
    pub fn new(phase: FailPhase, kind: ErrorKind, message: impl Into<String>) -> Self {
        ExchangeError {
            phase,
            kind,
            message: message.into(),
        }
    }
}

/// Declares a closed vocabulary that travels as kebab-case words, plus an `Unknown`
/// variant that keeps a word written by another tool or a newer modscope, so reading
/// such a trace still works (and writes it back unchanged).
macro_rules! trace_words {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $word:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A word this version does not know, kept verbatim.
            Unknown(String),
        }

        impl $name {
            /// Every known word, in declaration order.
            pub const KNOWN: &'static [$name] = &[$($name::$variant,)+];

            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $word,)+
                    $name::Unknown(word) => word,
                }
            }

            pub fn parse(word: &str) -> Self {
                match word {
                    $($word => $name::$variant,)+
                    other => $name::Unknown(other.to_string()),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        /// Compares with a trace word, for callers holding text (tests, filters).
        impl PartialEq<&str> for $name {
            fn eq(&self, word: &&str) -> bool {
                self.as_str() == *word
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let word = std::borrow::Cow::<'de, str>::deserialize(d)?;
                Ok($name::parse(&word))
            }
        }
    };
}

trace_words! {
    /// The phase of an exchange in which it failed.
    FailPhase {
        Dns => "dns",
        Connect => "connect",
        Tls => "tls",
        Request => "request",
        Response => "response",
        Body => "body",
    }
}

trace_words! {
    /// Why an exchange failed, in the trace's words. The diagnosis matches these
    /// exhaustively: a new kind without an explanation does not compile.
    ErrorKind {
        /// The name does not exist (NXDOMAIN, "no such host").
        Dns => "dns",
        /// The resolver failed (SERVFAIL, no answer, none reachable), not the name.
        DnsServerFailure => "dns-server-failure",
        ConnectRefused => "connect-refused",
        ConnectTimeout => "connect-timeout",
        TlsUntrusted => "tls-untrusted",
        TlsHostnameMismatch => "tls-hostname-mismatch",
        TlsExpired => "tls-expired",
        TlsNotYetValid => "tls-not-yet-valid",
        TlsHandshakeTimeout => "tls-handshake-timeout",
        TlsHandshake => "tls-handshake",
        UpstreamReset => "upstream-reset",
        UpstreamClosed => "upstream-closed",
        ClientAbort => "client-abort",
        ProxyAuth => "proxy-auth",
        UpstreamProxy => "upstream-proxy",
        Protocol => "protocol",
        Timeout => "timeout",
        Injected => "injected",
        /// Replay could not serve the recorded body (missing or corrupt body file).
        ReplayBody => "replay-body",
        Other => "other",
    }
}

/// An injected fault that shaped this exchange.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultFacts {
    pub rule: String,
    pub action: String,
}

mod system_time_serde {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        let micros = t
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros())
            .unwrap_or(0);
        s.serialize_u64(micros as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let micros = u64::deserialize(d)?;
        Ok(UNIX_EPOCH + Duration::from_micros(micros))
    }
}
