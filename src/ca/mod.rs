//! The modscope certificate authority: create, load and store it, and mint cached leaf certificates.

mod store;

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber, PKCS_ECDSA_P256_SHA256,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;
use time::{Duration, OffsetDateTime};

pub use store::{default_ca_dir, write_atomic, CaFiles};

use crate::tls::provider;

/// How many minted leaves to keep; go talks to a handful of hosts, a browser to hundreds.
const LEAF_CACHE_CAPACITY: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("cannot {action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the CA files in {dir} are unusable: {reason}")]
    Corrupt { dir: PathBuf, reason: String },
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("the crypto provider rejected a minted key: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Validity window for a certificate, relative to "now" supplied by the caller.
#[derive(Debug, Clone, Copy)]
pub struct Validity {
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl Validity {
    /// About a year, back-dated a day so clients with a slightly slow clock accept it.
    pub fn leaf_default(now: OffsetDateTime) -> Self {
        Validity {
            not_before: now - Duration::days(1),
            not_after: now + Duration::days(365),
        }
    }

    fn ca_default(now: OffsetDateTime) -> Self {
        Validity {
            not_before: now - Duration::days(1),
            not_after: now + Duration::days(3650),
        }
    }
}

/// A loaded CA that can sign leaves. Cheap to share behind an `Arc`.
pub struct CertAuthority {
    cert_der: CertificateDer<'static>,
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
    /// One key for every leaf: minting then costs a signature, not a key generation.
    leaf_key: KeyPair,
    leaf_key_rustls: Arc<dyn rustls::sign::SigningKey>,
    cache: Mutex<LeafCache>,
}

impl std::fmt::Debug for CertAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertAuthority").finish_non_exhaustive()
    }
}

impl CertAuthority {
    /// Generates a fresh CA in memory (tests, demo, throwaway origins).
    pub fn generate(common_name: &str) -> Result<Self, CaError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let params = ca_params(common_name, Validity::ca_default(OffsetDateTime::now_utc()));
        let cert = params.self_signed(&key)?;
        let cert_pem = cert.pem();
        Self::from_parts(cert.der().clone(), cert_pem, key)
    }

    /// Loads the CA from `dir`, creating it on first use.
    pub fn load_or_create(dir: &Path) -> Result<Self, CaError> {
        let files = CaFiles::new(dir);
        if !files.exists() {
            let ca = Self::generate(&default_common_name())?;
            files.write(&ca.cert_pem, &ca.key_pem())?;
            return Ok(ca);
        }
        Self::load(dir)
    }

    /// Loads an existing CA from `dir`.
    pub fn load(dir: &Path) -> Result<Self, CaError> {
        let files = CaFiles::new(dir);
        let (cert_pem, key_pem) = files.read()?;
        let corrupt = |reason: String| CaError::Corrupt {
            dir: dir.to_path_buf(),
            reason,
        };
        let key = KeyPair::from_pem(&key_pem).map_err(|e| corrupt(format!("key: {e}")))?;
        let der = first_pem_cert(&cert_pem).ok_or_else(|| corrupt("no certificate".into()))?;
        Self::from_parts(der, cert_pem, key)
    }

    fn from_parts(
        cert_der: CertificateDer<'static>,
        cert_pem: String,
        key: KeyPair,
    ) -> Result<Self, CaError> {
        let issuer = Issuer::from_ca_cert_der(&cert_der, key)?;
        let leaf_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let leaf_key_rustls = rustls_signing_key(&leaf_key)?;
        Ok(CertAuthority {
            cert_der,
            cert_pem,
            issuer,
            leaf_key,
            leaf_key_rustls,
            cache: Mutex::new(LeafCache::default()),
        })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// The leaf for `host` (a DNS name or an IP literal), minted once and then cached.
    pub fn leaf_for(&self, host: &str) -> Result<Arc<CertifiedKey>, CaError> {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        if let Some(hit) = self.lock_cache().get(&host) {
            return Ok(hit);
        }
        let minted = self.mint(&[&host], Validity::leaf_default(OffsetDateTime::now_utc()))?;
        self.lock_cache().insert(host, minted.clone());
        Ok(minted)
    }

    /// Mints a leaf without caching, with an explicit validity (tests and TLS faults use
    /// expired or wrong-host leaves on purpose).
    pub fn mint(&self, names: &[&str], validity: Validity) -> Result<Arc<CertifiedKey>, CaError> {
        let der = self.mint_der(names, validity)?;
        Ok(Arc::new(CertifiedKey::new(
            vec![der, self.cert_der.clone()],
            self.leaf_key_rustls.clone(),
        )))
    }

    /// The DER of a leaf for `names` (DNS names or IP literals; the first is the common
    /// name), signed by this CA with the shared leaf key.
    pub fn mint_der(
        &self,
        names: &[&str],
        validity: Validity,
    ) -> Result<CertificateDer<'static>, CaError> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            names.first().copied().unwrap_or("modscope"),
        );
        dn.push(DnType::OrganizationName, "modscope");
        params.distinguished_name = dn;
        params.subject_alt_names = names
            .iter()
            .map(|name| match name.parse::<IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => Ok(SanType::DnsName((*name).try_into()?)),
            })
            .collect::<Result<_, rcgen::Error>>()?;
        params.serial_number = Some(random_serial());
        params.not_before = validity.not_before;
        params.not_after = validity.not_after;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&self.leaf_key, &self.issuer)?;
        Ok(cert.der().clone())
    }

    pub fn cached_leaves(&self) -> usize {
        self.lock_cache().map.len()
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, LeafCache> {
        // A panic while holding the lock cannot leave the map half-updated, so keep going.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn ca_params(common_name: &str, validity: Validity) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "modscope");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.serial_number = Some(random_serial());
    params.not_before = validity.not_before;
    params.not_after = validity.not_after;
    params
}

fn default_common_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty());
    match host {
        Some(h) => format!("modscope CA ({h})"),
        None => "modscope CA".to_string(),
    }
}

fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    // ring's SystemRandom only fails when the OS has no entropy source at all.
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
    // A positive INTEGER: clear the top bit, and keep it non-zero.
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::from_slice(&bytes)
}

fn rustls_signing_key(key: &KeyPair) -> Result<Arc<dyn rustls::sign::SigningKey>, CaError> {
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    Ok(provider().key_provider.load_private_key(der)?)
}

/// First `CERTIFICATE` block of a PEM text.
pub fn first_pem_cert(pem: &str) -> Option<CertificateDer<'static>> {
    crate::tls::certs_from_pem(pem.as_bytes())
        .ok()?
        .into_iter()
        .next()
}

/// Bounded map host -> leaf, evicting the oldest insertion first.
#[derive(Default)]
struct LeafCache {
    map: HashMap<String, Arc<CertifiedKey>>,
    order: VecDeque<String>,
}

impl LeafCache {
    fn get(&self, host: &str) -> Option<Arc<CertifiedKey>> {
        self.map.get(host).cloned()
    }

    fn insert(&mut self, host: String, leaf: Arc<CertifiedKey>) {
        if self.map.insert(host.clone(), leaf).is_none() {
            self.order.push_back(host);
        }
        while self.order.len() > LEAF_CACHE_CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
    }
}

/// Human-readable facts about a certificate, for `modscope ca show`.
pub fn describe_cert(der: &CertificateDer<'_>) -> String {
    use sha2::Digest;
    let fingerprint = hex::encode_upper(sha2::Sha256::digest(der.as_ref()));
    let pairs: Vec<String> = fingerprint
        .as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    match x509_parser::parse_x509_certificate(der.as_ref()) {
        Ok((_, cert)) => format!(
            "subject:     {}\nissuer:      {}\nnot before:  {}\nnot after:   {}\nsha256:      {}\n",
            cert.subject(),
            cert.issuer(),
            cert.validity().not_before,
            cert.validity().not_after,
            pairs.join(":")
        ),
        Err(e) => format!("unparsable certificate ({e}); sha256 {}\n", pairs.join(":")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_are_cached_and_have_distinct_serials() {
        let ca = CertAuthority::generate("test CA").unwrap();
        let a = ca.leaf_for("proxy.golang.org").unwrap();
        let b = ca.leaf_for("PROXY.golang.org").unwrap();
        assert!(Arc::ptr_eq(&a, &b), "host lookups are case-insensitive");
        let c = ca.leaf_for("sum.golang.org").unwrap();
        let serial = |k: &CertifiedKey| {
            let (_, cert) = x509_parser::parse_x509_certificate(k.cert[0].as_ref()).unwrap();
            cert.raw_serial().to_vec()
        };
        assert_ne!(serial(&a), serial(&c));
        assert_eq!(ca.cached_leaves(), 2);
    }

    #[test]
    fn ip_hosts_get_ip_sans() {
        let ca = CertAuthority::generate("test CA").unwrap();
        let leaf = ca.leaf_for("[::1]").unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(leaf.cert[0].as_ref()).unwrap();
        let san = cert.subject_alternative_name().unwrap().unwrap();
        let rendered = format!("{:?}", san.value.general_names);
        assert!(rendered.contains("IPAddress"), "{rendered}");
    }

    #[test]
    fn cache_is_bounded() {
        let mut cache = LeafCache::default();
        let ca = CertAuthority::generate("test CA").unwrap();
        let leaf = ca.leaf_for("a.example").unwrap();
        for i in 0..(LEAF_CACHE_CAPACITY + 10) {
            cache.insert(format!("h{i}.example"), leaf.clone());
        }
        assert_eq!(cache.map.len(), LEAF_CACHE_CAPACITY);
        assert!(cache.get("h0.example").is_none());
        assert!(cache
            .get(&format!("h{}.example", LEAF_CACHE_CAPACITY + 9))
            .is_some());
    }

    #[test]
    fn stored_ca_round_trips_with_private_key_mode() {
        let tmp = crate::testkit::TempDir::new("ca");
        let dir = tmp.path().join("ca");
        let created = CertAuthority::load_or_create(&dir).unwrap();
        let loaded = CertAuthority::load_or_create(&dir).unwrap();
        assert_eq!(created.cert_der(), loaded.cert_der());
        let mode = {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(CaFiles::new(&dir).key_path())
                .unwrap()
                .permissions()
                .mode()
        };
        assert_eq!(mode & 0o777, 0o600);
    }
}
