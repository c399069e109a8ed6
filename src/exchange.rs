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
    pub request: RequestFacts,
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
    /// Process-unique id of the client connection the request came in on (exchanges of
    /// one go process over one tunnel share it); `None` for imported or synthetic ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_connection: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestFacts {
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
    pub certificates: Vec<CertFacts>,
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

/// Where and how an exchange failed. `phase` and `kind` use the trace vocabulary:
/// phase: dns | connect | tls | request | response | body;
/// kind: dns, connect-refused, connect-timeout, tls-untrusted, tls-hostname-mismatch,
/// tls-expired, tls-not-yet-valid, tls-handshake-timeout, tls-handshake, upstream-reset, upstream-closed,
/// client-abort, proxy-auth, upstream-proxy, protocol, timeout, injected, other.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExchangeError {
    pub phase: String,
    pub kind: String,
    pub message: String,
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
