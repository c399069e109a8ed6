//! TLS building blocks: the one crypto provider, trust stores, per-connection configs,
//! certificate facts and the classification of TLS failures into trace vocabulary.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ResolvesServerCert;
use rustls::sign::CertifiedKey;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig};

use crate::exchange::CertFacts;

#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("{path}: certificate {index} was rejected: {source}")]
    BadCertificate {
        path: PathBuf,
        index: usize,
        #[source]
        source: rustls::Error,
    },
    #[error("no trusted root certificates: the system store is empty and no fallback applies")]
    NoRoots,
    #[error("TLS configuration failed: {0}")]
    Config(#[from] rustls::Error),
    #[error("cannot build the certificate verifier: {0}")]
    Verifier(#[from] rustls::client::VerifierBuilderError),
}

/// `n` random bytes from the system RNG, as lower-case hex (tokens, instance ids). The
/// RNG only fails when the kernel has none; a guessable all-zero value would then be
/// worse than one derived from the clock, so that is the fallback.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).is_err() {
        let seed = format!(
            "{:?}{:?}",
            std::time::SystemTime::now(),
            std::thread::current().id()
        );
        let digest = ring::digest::digest(&ring::digest::SHA256, seed.as_bytes());
        for (b, d) in bytes.iter_mut().zip(digest.as_ref().iter().cycle()) {
            *b = *d;
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// ring, chosen explicitly: rcgen signs with ring too, and one provider avoids the
/// "no process-level provider" panic that two linked providers cause.
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// All `CERTIFICATE` blocks of a PEM text.
pub fn certs_from_pem(
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, rustls::pki_types::pem::Error> {
    CertificateDer::pem_slice_iter(pem).collect()
}

/// PEM text for DER certificates (bundle files).
pub fn certs_to_pem<'a>(certs: impl IntoIterator<Item = &'a CertificateDer<'a>>) -> String {
    let mut out = String::new();
    for cert in certs {
        out.push_str("-----BEGIN CERTIFICATE-----\n");
        let b64 = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
        for line in b64.as_bytes().chunks(64) {
            out.push_str(&String::from_utf8_lossy(line));
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
    }
    out
}

/// The operating system's trusted roots (honours `SSL_CERT_FILE`/`SSL_CERT_DIR` like go does).
pub fn system_roots() -> Vec<CertificateDer<'static>> {
    rustls_native_certs::load_native_certs().certs
}

/// Reads every certificate of a PEM file.
pub fn read_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let bytes = std::fs::read(path).map_err(|source| TlsSetupError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let certs = certs_from_pem(&bytes).unwrap_or_default();
    if certs.is_empty() {
        return Err(TlsSetupError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// Writes TLS secrets in the NSS key log format (`SSLKEYLOGFILE`), so Wireshark can
/// decrypt a capture of the same session.
pub struct KeyLogWriter {
    path: PathBuf,
    file: Mutex<std::fs::File>,
}

impl KeyLogWriter {
    /// Appends to `path`, creating it with mode 0600 (it holds session secrets).
    pub fn open(path: &Path) -> Result<Arc<Self>, TlsSetupError> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(|source| TlsSetupError::Read {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Arc::new(KeyLogWriter {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        }))
    }
}

impl std::fmt::Debug for KeyLogWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyLogWriter")
            .field("path", &self.path)
            .finish()
    }
}

impl rustls::KeyLog for KeyLogWriter {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        use std::io::Write;
        let line = format!(
            "{label} {} {}\n",
            hex::encode(client_random),
            hex::encode(secret)
        );
        if let Ok(mut f) = self.file.lock() {
            // One write per line keeps lines whole when both sides log at once.
            let _ = f.write_all(line.as_bytes());
        }
    }
}

/// What modscope trusts when it connects to origins.
#[derive(Clone)]
pub struct UpstreamTrust {
    verifier: Arc<WebPkiServerVerifier>,
    resumption: Resumption,
    key_log: Option<Arc<KeyLogWriter>>,
    /// Where the roots came from, for `--help`-level diagnostics.
    pub root_count: usize,
    /// The `--upstream-ca` certificates themselves: a server presenting one of them as its
    /// own certificate (a self-signed `openssl req -x509`, marked CA:TRUE) is trusted as
    /// that end entity, after the name and date checks webpki would do.
    pinned: Arc<Vec<CertificateDer<'static>>>,
}

impl std::fmt::Debug for UpstreamTrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamTrust")
            .field("root_count", &self.root_count)
            .finish()
    }
}

impl UpstreamTrust {
    /// System roots (webpki-roots when the system has none) plus every extra PEM file.
    pub fn new(extra_pem_files: &[PathBuf]) -> Result<Self, TlsSetupError> {
        let mut roots = RootCertStore::empty();
        let mut pinned = Vec::new();
        let system = system_roots();
        if system.is_empty() {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        } else {
            // Some distributions ship a few certificates webpki cannot parse; skip them.
            let _ = roots.add_parsable_certificates(system);
        }
        for path in extra_pem_files {
            for (index, cert) in read_pem_certs(path)?.into_iter().enumerate() {
                pinned.push(cert.clone());
                roots
                    .add(cert)
                    .map_err(|source| TlsSetupError::BadCertificate {
                        path: path.clone(),
                        index,
                        source,
                    })?;
            }
        }
        Self::from_roots(roots, pinned)
    }

    /// Only the given roots (tests).
    pub fn only(certs: &[CertificateDer<'static>]) -> Result<Self, TlsSetupError> {
        let mut roots = RootCertStore::empty();
        for cert in certs {
            roots.add(cert.clone())?;
        }
        Self::from_roots(roots, certs.to_vec())
    }

    fn from_roots(
        roots: RootCertStore,
        pinned: Vec<CertificateDer<'static>>,
    ) -> Result<Self, TlsSetupError> {
        if roots.is_empty() {
            return Err(TlsSetupError::NoRoots);
        }
        let root_count = roots.len();
        let verifier =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider()).build()?;
        Ok(UpstreamTrust {
            verifier,
            resumption: Resumption::in_memory_sessions(256),
            key_log: None,
            root_count,
            pinned: Arc::new(pinned),
        })
    }

    /// Also log upstream TLS secrets.
    pub fn with_key_log(mut self, key_log: Option<Arc<KeyLogWriter>>) -> Self {
        self.key_log = key_log;
        self
    }

    /// A client config for one upstream connection, offering `alpn`; the presented chain
    /// lands in `seen` whether or not it verifies, so failures can be explained.
    pub fn client_config(
        &self,
        alpn: Vec<Vec<u8>>,
        seen: Arc<Mutex<Vec<CertificateDer<'static>>>>,
    ) -> Result<ClientConfig, TlsSetupError> {
        let verifier = Arc::new(RecordingVerifier {
            inner: self.verifier.clone(),
            seen,
            pinned: self.pinned.clone(),
        });
        let mut config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        config.alpn_protocols = alpn;
        config.resumption = self.resumption.clone();
        if let Some(k) = &self.key_log {
            config.key_log = k.clone();
        }
        Ok(config)
    }
}

/// Delegates to webpki but remembers what the server presented.
#[derive(Debug)]
struct RecordingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    seen: Arc<Mutex<Vec<CertificateDer<'static>>>>,
    pinned: Arc<Vec<CertificateDer<'static>>>,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut seen) = self.seen.lock() {
            seen.clear();
            seen.push(end_entity.clone().into_owned());
            seen.extend(intermediates.iter().map(|c| c.clone().into_owned()));
        }
        let verdict = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        match verdict {
            Err(e)
                if is_ca_used_as_end_entity(&e)
                    && self
                        .pinned
                        .iter()
                        .any(|p| p.as_ref() == end_entity.as_ref()) =>
            {
                verify_pinned_leaf(end_entity, server_name, now)
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// webpki refuses a CA certificate as a server's own certificate; `openssl req -x509`
/// marks every self-signed certificate CA:TRUE, so that is what such a server presents.
fn is_ca_used_as_end_entity(e: &rustls::Error) -> bool {
    match e {
        rustls::Error::InvalidCertificate(CertificateError::Other(other)) => {
            other.0.downcast_ref::<webpki::Error>() == Some(&webpki::Error::CaUsedAsEndEntity)
        }
        _ => false,
    }
}

/// The checks of an end-entity certificate that remain once the certificate is itself the
/// trust anchor the user gave: it must name the server and be valid now. (The handshake
/// signature, checked separately, proves the server holds its key.)
fn verify_pinned_leaf(
    cert: &CertificateDer<'_>,
    server_name: &ServerName<'_>,
    now: UnixTime,
) -> Result<ServerCertVerified, rustls::Error> {
    let ee = webpki::EndEntityCert::try_from(cert)
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
    ee.verify_is_valid_for_subject_name(server_name)
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::NotValidForName))?;
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref())
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
    let now = now.as_secs() as i64;
    let validity = parsed.validity();
    if now < validity.not_before.timestamp() {
        return Err(rustls::Error::InvalidCertificate(
            CertificateError::NotValidYet,
        ));
    }
    if now > validity.not_after.timestamp() {
        return Err(rustls::Error::InvalidCertificate(CertificateError::Expired));
    }
    Ok(ServerCertVerified::assertion())
}

/// Why a certificate's cryptography is refused, in words (`SHA-1`, `RSA-1024`), if it is:
/// go and modscope both reject signatures over SHA-1/MD5 and RSA keys under 2048 bits.
pub fn weak_crypto(der: &CertificateDer<'_>) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let subject = cert.subject().to_string();
    let oid = cert.signature_algorithm.algorithm.to_id_string();
    let digest = match oid.as_str() {
        "1.2.840.113549.1.1.5" | "1.2.840.10045.4.1" | "1.2.840.10040.4.3" => Some("SHA-1"),
        "1.2.840.113549.1.1.4" => Some("MD5"),
        _ => None,
    };
    if let Some(d) = digest {
        return Some(format!(
            "{subject} is signed with {d}, which is no longer accepted"
        ));
    }
    if let Ok(x509_parser::public_key::PublicKey::RSA(rsa)) = cert.public_key().parsed() {
        let bits = rsa.key_size();
        if bits < 2048 {
            return Some(format!(
                "{subject} has an RSA-{bits} key; at least RSA-2048 is required"
            ));
        }
    }
    None
}

/// A server config presenting `leaf` and selecting exactly `alpn` (the protocol the
/// upstream chose, so both sides speak the same HTTP version).
pub fn server_config(
    leaf: Arc<CertifiedKey>,
    alpn: Vec<Vec<u8>>,
    key_log: Option<&Arc<KeyLogWriter>>,
) -> Result<ServerConfig, TlsSetupError> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(FixedCert(leaf)));
    config.alpn_protocols = alpn;
    if let Some(k) = key_log {
        config.key_log = k.clone();
    }
    Ok(config)
}

#[derive(Debug)]
struct FixedCert(Arc<CertifiedKey>);

impl ResolvesServerCert for FixedCert {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

pub fn version_name(v: rustls::ProtocolVersion) -> String {
    match v {
        rustls::ProtocolVersion::TLSv1_3 => "TLS 1.3".into(),
        rustls::ProtocolVersion::TLSv1_2 => "TLS 1.2".into(),
        other => format!("{other:?}"),
    }
}

pub fn cipher_name(s: rustls::SupportedCipherSuite) -> String {
    format!("{:?}", s.suite())
}

/// Subject, issuer, validity, names and fingerprint of one certificate.
pub fn cert_facts(der: &CertificateDer<'_>) -> CertFacts {
    use sha2::Digest;
    let sha256 = hex::encode(sha2::Sha256::digest(der.as_ref()));
    match x509_parser::parse_x509_certificate(der.as_ref()) {
        Ok((_, cert)) => {
            let rfc3339 = |t: x509_parser::time::ASN1Time| {
                t.to_datetime()
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default()
            };
            let dns_names = cert
                .subject_alternative_name()
                .ok()
                .flatten()
                .map(|san| {
                    san.value
                        .general_names
                        .iter()
                        .filter_map(|n| match n {
                            x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_string()),
                            x509_parser::extensions::GeneralName::IPAddress(ip) => {
                                ip_from_bytes(ip)
                            }
                            _ => None,
                        })
                        .collect()
                })
                .unwrap_or_default();
            CertFacts {
                subject: cert.subject().to_string(),
                issuer: cert.issuer().to_string(),
                not_before: rfc3339(cert.validity().not_before),
                not_after: rfc3339(cert.validity().not_after),
                dns_names,
                sha256,
            }
        }
        Err(_) => CertFacts {
            subject: "(unparsable certificate)".into(),
            sha256,
            ..CertFacts::default()
        },
    }
}

fn ip_from_bytes(bytes: &[u8]) -> Option<String> {
    match bytes.len() {
        4 => Some(std::net::Ipv4Addr::from(<[u8; 4]>::try_from(bytes).ok()?).to_string()),
        16 => Some(std::net::Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?).to_string()),
        _ => None,
    }
}

/// Trace `_error.kind` and a sentence for a failed upstream handshake. `chain` is what the
/// server presented (may be empty), used to name the offending date or names.
pub fn classify_handshake_error(
    err: &std::io::Error,
    chain: &[CertFacts],
    weak: Option<&str>,
) -> (&'static str, String) {
    let rustls_err = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    let leaf = chain.first();
    match rustls_err {
        Some(rustls::Error::InvalidCertificate(cert_err)) => match cert_err {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => (
                "tls-expired",
                format!(
                    "certificate expired (notAfter {})",
                    leaf.map(|l| l.not_after.as_str()).unwrap_or("unknown")
                ),
            ),
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => (
                "tls-not-yet-valid",
                format!(
                    "certificate not yet valid (notBefore {})",
                    leaf.map(|l| l.not_before.as_str()).unwrap_or("unknown")
                ),
            ),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => (
                "tls-hostname-mismatch",
                format!(
                    "certificate is not valid for this host (it names {})",
                    leaf.map(|l| l.dns_names.join(", "))
                        .filter(|n| !n.is_empty())
                        .unwrap_or_else(|| "no names".into())
                ),
            ),
            CertificateError::UnknownIssuer => (
                "tls-untrusted",
                format!(
                    "certificate signed by unknown authority (issuer {}); pass --upstream-ca PEM to trust it",
                    leaf.map(|l| l.issuer.as_str()).unwrap_or("unknown")
                ),
            ),
            CertificateError::BadSignature => (
                "tls-untrusted",
                match weak {
                    Some(w) => format!("certificate refused: {w}"),
                    None => "certificate has a bad signature".to_string(),
                },
            ),
            CertificateError::UnsupportedSignatureAlgorithmContext { .. }
            | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => (
                "tls-untrusted",
                match weak {
                    Some(w) => format!("certificate refused: {w}"),
                    None => "certificate refused: it is signed with an algorithm modscope (like go) does not accept".to_string(),
                },
            ),
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => (
                "tls-untrusted",
                "certificate refused: it is not meant for TLS servers (its extended key usage lacks serverAuth)".to_string(),
            ),
            CertificateError::BadEncoding => (
                "tls-untrusted",
                "certificate refused: it is not valid DER".to_string(),
            ),
            CertificateError::UnhandledCriticalExtension => (
                "tls-untrusted",
                "certificate refused: it has a critical extension modscope does not understand".to_string(),
            ),
            CertificateError::Revoked => ("tls-untrusted", "certificate is revoked".to_string()),
            CertificateError::Other(other) => match other.0.downcast_ref::<webpki::Error>() {
                Some(webpki::Error::CaUsedAsEndEntity) => (
                    "tls-untrusted",
                    "certificate refused: the server presents a CA certificate as its own; pass that exact certificate with --upstream-ca to trust it".to_string(),
                ),
                Some(webpki::Error::EndEntityUsedAsCa) => (
                    "tls-untrusted",
                    "certificate refused: the chain uses a server certificate as an issuer".to_string(),
                ),
                Some(webpki::Error::PathLenConstraintViolated) => (
                    "tls-untrusted",
                    "certificate refused: the chain is longer than an issuer allows (path length constraint)".to_string(),
                ),
                Some(webpki::Error::NameConstraintViolation) => (
                    "tls-untrusted",
                    "certificate refused: an issuer's name constraints forbid this name".to_string(),
                ),
                Some(e) => ("tls-untrusted", format!("certificate refused: {e}")),
                None => ("tls-untrusted", format!("certificate refused: {other}")),
            },
            other => ("tls-untrusted", format!("certificate rejected: {other:?}")),
        },
        Some(rustls::Error::AlertReceived(alert)) => (
            "tls-handshake",
            format!("the server sent TLS alert {alert:?}"),
        ),
        Some(other) => ("tls-handshake", format!("TLS handshake failed: {other}")),
        None => match err.kind() {
            std::io::ErrorKind::UnexpectedEof => (
                "tls-handshake",
                "the server closed the connection during the TLS handshake".to_string(),
            ),
            std::io::ErrorKind::ConnectionReset => (
                "upstream-reset",
                "the server reset the connection during the TLS handshake".to_string(),
            ),
            _ => ("tls-handshake", format!("TLS handshake failed: {err}")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem(text: &str) -> CertificateDer<'static> {
        certs_from_pem(text.as_bytes()).unwrap().remove(0)
    }

    #[test]
    fn weak_signatures_and_keys_are_named() {
        let sha1 = weak_crypto(&pem(include_str!("../tests/data/weak-sha1.pem"))).unwrap();
        assert!(sha1.contains("signed with SHA-1"), "{sha1}");
        let rsa = weak_crypto(&pem(include_str!("../tests/data/weak-rsa1024.pem"))).unwrap();
        assert!(rsa.contains("RSA-1024"), "{rsa}");
        assert_eq!(
            weak_crypto(&pem(include_str!(
                "../tests/data/openssl-selfsigned-ec.pem"
            ))),
            None
        );
    }

    fn io(e: rustls::Error) -> std::io::Error {
        std::io::Error::other(e)
    }

    #[test]
    fn every_certificate_refusal_is_said_in_words() {
        use rustls::pki_types::UnixTime;
        let other = |e: webpki::Error| CertificateError::Other(rustls::OtherError(Arc::new(e)));
        let table: Vec<(CertificateError, Option<&str>, &str, &str)> = vec![
            (
                CertificateError::NotValidYetContext {
                    time: UnixTime::since_unix_epoch(std::time::Duration::from_secs(1)),
                    not_before: UnixTime::since_unix_epoch(std::time::Duration::from_secs(2)),
                },
                None,
                "tls-not-yet-valid",
                "not yet valid",
            ),
            (
                CertificateError::NotValidYet,
                None,
                "tls-not-yet-valid",
                "not yet valid",
            ),
            (CertificateError::Expired, None, "tls-expired", "expired"),
            (
                CertificateError::InvalidPurposeContext {
                    required: rustls::ExtendedKeyPurpose::ServerAuth,
                    presented: vec![rustls::ExtendedKeyPurpose::ClientAuth],
                },
                None,
                "tls-untrusted",
                "lacks serverAuth",
            ),
            (
                CertificateError::UnsupportedSignatureAlgorithmContext {
                    signature_algorithm_id: vec![],
                    supported_algorithms: vec![],
                },
                Some("CN=sha1.example is signed with SHA-1, which is no longer accepted"),
                "tls-untrusted",
                "SHA-1",
            ),
            (
                CertificateError::BadSignature,
                Some("CN=rsa1024.example has an RSA-1024 key; at least RSA-2048 is required"),
                "tls-untrusted",
                "RSA-1024",
            ),
            (
                other(webpki::Error::CaUsedAsEndEntity),
                None,
                "tls-untrusted",
                "CA certificate as its own",
            ),
            (
                other(webpki::Error::NameConstraintViolation),
                None,
                "tls-untrusted",
                "name constraints",
            ),
        ];
        for (err, weak, kind, words) in table {
            let label = format!("{err:?}");
            let (k, message) =
                classify_handshake_error(&io(rustls::Error::InvalidCertificate(err)), &[], weak);
            assert_eq!(k, kind, "{label}");
            assert!(message.contains(words), "{label}: {message}");
            assert!(!message.contains("OtherError"), "{label}: {message}");
        }
    }
}
