//! What a capture shows of a TLS connection without its keys: the ClientHello (SNI, offered
//! ALPN and versions), the ServerHello (version, cipher), when the handshake finished,
//! plaintext alerts, and whether the server ever answered.

use serde::Serialize;
use tls_parser::{
    parse_tls_client_hello_extensions, parse_tls_message_handshake,
    parse_tls_server_hello_extensions, TlsCipherSuite, TlsExtension, TlsMessage,
    TlsMessageHandshake, TlsVersion,
};

use super::Side;

/// Largest TLS record body (2^14 plus the most expansion any version allows).
const MAX_RECORD: usize = 16384 + 2048;
/// A handshake message may span records; ClientHellos with post-quantum key shares are a
/// few KiB, certificate chains tens of KiB. Larger means garbage, not TLS.
const MAX_HANDSHAKE_BUFFER: usize = 128 * 1024;
const MAX_ALERTS: usize = 8;

/// The random a TLS 1.3 HelloRetryRequest carries instead of a real one (RFC 8446 4.1.3).
const HELLO_RETRY_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// The size of an encrypted TLS 1.3 alert record body: 2 bytes, content type, 16-byte tag.
const TLS13_ENCRYPTED_ALERT_LEN: usize = 19;

const CONTENT_CCS: u8 = 20;
const CONTENT_ALERT: u8 = 21;
const CONTENT_HANDSHAKE: u8 = 22;
const CONTENT_APPDATA: u8 = 23;
const CONTENT_HEARTBEAT: u8 = 24;

/// Whether `data` (the first bytes a client sent) starts like a TLS record.
pub(crate) fn looks_like_tls(data: &[u8]) -> Option<bool> {
    match data {
        [] => None,
        [t, ..] if !(CONTENT_CCS..=CONTENT_HEARTBEAT).contains(t) => Some(false),
        [_] => None,
        [_, major, ..] if *major != 3 => Some(false),
        [_, _] => None,
        [_, _, minor, ..] => Some(*minor <= 4),
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct Alert {
    #[serde(skip)]
    pub ts: i64,
    pub from: Side,
    /// `warning`, `fatal`, or `unknown` when the alert was encrypted.
    pub level: String,
    pub description: String,
}

#[derive(Debug, Default)]
struct Direction {
    /// Bytes of an incomplete record header or a handshake/alert record body.
    buf: Vec<u8>,
    /// Body bytes of an application-data record still to skip (never buffered).
    skip: usize,
    /// Handshake messages reassembled across records.
    handshake: Vec<u8>,
    /// After ChangeCipherSpec this side's records are encrypted.
    encrypted: bool,
    /// Not TLS (any more): stop looking.
    broken: bool,
    records: u64,
    appdata_records: u64,
    finished_seen: bool,
}

/// Observed facts of one TLS connection.
#[derive(Debug, Default)]
pub(crate) struct TlsTracker {
    pub client_hello_ts: Option<i64>,
    pub sni: Option<String>,
    pub alpn_offered: Vec<String>,
    pub versions_offered: Vec<String>,
    pub server_hello_ts: Option<i64>,
    pub hello_retry: bool,
    pub version: Option<String>,
    pub cipher: Option<String>,
    /// Visible only up to TLS 1.2 (TLS 1.3 sends it encrypted).
    pub alpn_selected: Option<String>,
    /// When the handshake was seen to end: the client's first encrypted record after a
    /// TLS 1.3 ServerHello (its Finished), or the first application data / both Finished
    /// messages for older versions.
    pub done_ts: Option<i64>,
    pub alerts: Vec<Alert>,
    /// A TLS 1.3 client sent an alert-sized encrypted record instead of its Finished: it
    /// rejected the handshake (typically the certificate) and said why only under encryption.
    pub client_rejected_ts: Option<i64>,
    tls13: bool,
    dirs: [Direction; 2],
}

impl TlsTracker {
    pub(crate) fn new() -> Self {
        TlsTracker::default()
    }

    /// Whether the handshake completed.
    pub(crate) fn completed(&self) -> bool {
        self.done_ts.is_some()
    }

    /// Segments of `side` were lost: its record boundaries are unknown from here on.
    pub(crate) fn gap(&mut self, side: Side) {
        self.dirs[side.index()].broken = true;
    }

    pub(crate) fn records(&self, side: Side) -> u64 {
        self.dirs[side.index()].records
    }

    /// Feeds in-order stream bytes of one side.
    pub(crate) fn feed(&mut self, side: Side, ts: i64, mut data: &[u8]) {
        while !data.is_empty() {
            let d = &mut self.dirs[side.index()];
            if d.broken {
                return;
            }
            if d.skip > 0 {
                let n = d.skip.min(data.len());
                d.skip -= n;
                data = &data[n..];
                continue;
            }
            // Need a header: 5 bytes.
            if d.buf.len() < 5 {
                let need = 5 - d.buf.len();
                let n = need.min(data.len());
                d.buf.extend_from_slice(&data[..n]);
                data = &data[n..];
                if d.buf.len() < 5 {
                    return;
                }
                let content = d.buf[0];
                let len = usize::from(u16::from_be_bytes([d.buf[3], d.buf[4]]));
                if !(CONTENT_CCS..=CONTENT_HEARTBEAT).contains(&content)
                    || d.buf[1] != 3
                    || len > MAX_RECORD
                {
                    d.broken = true;
                    return;
                }
                d.records += 1;
                if content == CONTENT_APPDATA {
                    d.appdata_records += 1;
                    d.buf.clear();
                    d.skip = len;
                    self.on_appdata(side, ts, len);
                    continue;
                }
                if len == 0 {
                    d.buf.clear();
                    continue;
                }
                continue;
            }
            // Header present, body of a non-appdata record being collected.
            let len = usize::from(u16::from_be_bytes([d.buf[3], d.buf[4]]));
            let need = 5 + len - d.buf.len();
            let n = need.min(data.len());
            d.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            if d.buf.len() == 5 + len {
                let record = std::mem::take(&mut d.buf);
                let content = record[0];
                self.on_record(side, ts, content, &record[5..]);
            }
        }
    }

    fn on_appdata(&mut self, side: Side, ts: i64, len: usize) {
        if self.done_ts.is_some() {
            return;
        }
        if self.tls13 && self.server_hello_ts.is_some() {
            // Server records after a TLS 1.3 ServerHello are its encrypted handshake; the
            // client's first encrypted record is its Finished, or an alert.
            if side == Side::Client && self.dirs[Side::Client.index()].appdata_records == 1 {
                if len == TLS13_ENCRYPTED_ALERT_LEN {
                    self.client_rejected_ts = Some(ts);
                } else {
                    self.done_ts = Some(ts);
                }
            } else if side == Side::Client && self.client_rejected_ts.is_none() {
                self.done_ts = Some(ts);
            }
            return;
        }
        if self.server_hello_ts.is_some() || self.client_hello_ts.is_none() {
            self.done_ts = Some(ts);
        }
    }

    fn on_record(&mut self, side: Side, ts: i64, content: u8, body: &[u8]) {
        let encrypted = self.dirs[side.index()].encrypted
            || (self.tls13 && side == Side::Server && self.server_hello_ts.is_some());
        match content {
            CONTENT_CCS => {
                // TLS 1.3 sends a dummy ChangeCipherSpec for middleboxes; either way what
                // follows from this side is encrypted.
                self.dirs[side.index()].encrypted = true;
            }
            CONTENT_ALERT => {
                if self.alerts.len() >= MAX_ALERTS {
                    return;
                }
                let alert = if encrypted || body.len() < 2 {
                    Alert {
                        ts,
                        from: side,
                        level: "unknown".to_string(),
                        description: "encrypted".to_string(),
                    }
                } else {
                    Alert {
                        ts,
                        from: side,
                        level: match body[0] {
                            1 => "warning".to_string(),
                            2 => "fatal".to_string(),
                            n => format!("level-{n}"),
                        },
                        description: alert_name(body[1]),
                    }
                };
                self.alerts.push(alert);
            }
            CONTENT_HANDSHAKE => {
                if encrypted {
                    // An encrypted handshake record after ChangeCipherSpec is Finished (TLS 1.2).
                    let d = &mut self.dirs[side.index()];
                    d.finished_seen = true;
                    if self.done_ts.is_none()
                        && self.dirs[0].finished_seen
                        && self.dirs[1].finished_seen
                    {
                        self.done_ts = Some(ts);
                    }
                    return;
                }
                let d = &mut self.dirs[side.index()];
                if d.handshake.len() + body.len() > MAX_HANDSHAKE_BUFFER {
                    d.broken = true;
                    return;
                }
                d.handshake.extend_from_slice(body);
                self.drain_handshake(side, ts);
            }
            _ => {}
        }
    }

    fn drain_handshake(&mut self, side: Side, ts: i64) {
        loop {
            let d = &mut self.dirs[side.index()];
            if d.handshake.len() < 4 {
                return;
            }
            let len = (usize::from(d.handshake[1]) << 16)
                | (usize::from(d.handshake[2]) << 8)
                | usize::from(d.handshake[3]);
            if 4 + len > MAX_HANDSHAKE_BUFFER {
                d.broken = true;
                return;
            }
            if d.handshake.len() < 4 + len {
                return;
            }
            let message: Vec<u8> = d.handshake.drain(..4 + len).collect();
            self.on_handshake_message(side, ts, &message);
        }
    }

    fn on_handshake_message(&mut self, side: Side, ts: i64, message: &[u8]) {
        // Only the hellos matter; the rest (certificates, key exchange) are skipped unparsed.
        let Some(&kind) = message.first() else {
            return;
        };
        if !matches!((side, kind), (Side::Client, 1) | (Side::Server, 2)) {
            return;
        }
        let Ok((_, TlsMessage::Handshake(hs))) = parse_tls_message_handshake(message) else {
            return;
        };
        match hs {
            TlsMessageHandshake::ClientHello(ch) => {
                if self.client_hello_ts.is_some() {
                    // The second ClientHello after a HelloRetryRequest repeats the offer.
                    return;
                }
                self.client_hello_ts = Some(ts);
                let mut versions = Vec::new();
                if let Some(ext) = ch.ext {
                    if let Ok((_, list)) = parse_tls_client_hello_extensions(ext) {
                        for e in list {
                            match e {
                                TlsExtension::SNI(names) => {
                                    if let Some((_, name)) = names.iter().find(|(t, _)| t.0 == 0) {
                                        self.sni = Some(clean_name(name));
                                    }
                                }
                                TlsExtension::ALPN(protos) => {
                                    self.alpn_offered =
                                        protos.iter().take(16).map(|p| clean_name(p)).collect();
                                }
                                TlsExtension::SupportedVersions(list) => {
                                    versions = list
                                        .iter()
                                        .filter(|v| !is_grease(v.0))
                                        .take(16)
                                        .map(|v| version_name(*v))
                                        .collect();
                                }
                                _ => {}
                            }
                        }
                    }
                }
                if versions.is_empty() {
                    versions.push(version_name(ch.version));
                }
                self.versions_offered = versions;
            }
            TlsMessageHandshake::ServerHello(sh) => {
                if sh.random == HELLO_RETRY_RANDOM {
                    self.hello_retry = true;
                    return;
                }
                self.server_hello_ts = Some(ts);
                let mut version = sh.version;
                if let Some(ext) = sh.ext {
                    if let Ok((_, list)) = parse_tls_server_hello_extensions(ext) {
                        for e in list {
                            match e {
                                TlsExtension::SupportedVersions(v) => {
                                    if let Some(v) = v.first() {
                                        version = *v;
                                    }
                                }
                                TlsExtension::ALPN(protos) => {
                                    self.alpn_selected = protos.first().map(|p| clean_name(p));
                                }
                                _ => {}
                            }
                        }
                    }
                }
                self.tls13 = version == TlsVersion::Tls13;
                self.version = Some(version_name(version));
                self.cipher = Some(cipher_name(sh.cipher.0));
            }
            TlsMessageHandshake::ServerHelloV13Draft18(sh) => {
                self.server_hello_ts = Some(ts);
                self.tls13 = true;
                self.version = Some(version_name(sh.version));
                self.cipher = Some(cipher_name(sh.cipher.0));
            }
            _ => {}
        }
    }
}

fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a
}

/// Names as the proxy writes them (`TLS 1.3`), so captured and proxied traces compare.
pub(crate) fn version_name(v: TlsVersion) -> String {
    match v.0 {
        0x0300 => "SSL 3.0".to_string(),
        0x0301 => "TLS 1.0".to_string(),
        0x0302 => "TLS 1.1".to_string(),
        0x0303 => "TLS 1.2".to_string(),
        0x0304 => "TLS 1.3".to_string(),
        other => format!("0x{other:04x}"),
    }
}

/// IANA names, with the TLS 1.3 suites spelled as rustls (and so the proxy) spells them.
pub(crate) fn cipher_name(id: u16) -> String {
    match TlsCipherSuite::from_id(id) {
        Some(s) if (0x1301..=0x1305).contains(&id) => s.name.replacen("TLS_", "TLS13_", 1),
        Some(s) => s.name.to_string(),
        None => format!("0x{id:04x}"),
    }
}

fn alert_name(code: u8) -> String {
    let name = match code {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        21 => "decryption_failed",
        22 => "record_overflow",
        30 => "decompression_failure",
        40 => "handshake_failure",
        41 => "no_certificate",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        49 => "access_denied",
        50 => "decode_error",
        51 => "decrypt_error",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        100 => "no_renegotiation",
        109 => "missing_extension",
        110 => "unsupported_extension",
        112 => "unrecognized_name",
        113 => "bad_certificate_status_response",
        115 => "unknown_psk_identity",
        116 => "certificate_required",
        120 => "no_application_protocol",
        other => return format!("alert-{other}"),
    };
    name.to_string()
}

/// Printable, bounded text from bytes a peer chose (SNI, ALPN).
fn clean_name(bytes: &[u8]) -> String {
    bytes
        .iter()
        .take(255)
        .map(|&b| if b.is_ascii_graphic() { b as char } else { '?' })
        .collect()
}
