//! `modscope ca`: create, show and export the modscope CA, and write the CA bundle
//! (system roots + the CA) that the proxy-running commands also write at start-up.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::ca::{describe_cert, CaFiles, CertAuthority};
use crate::cli::CaAction;
use crate::tls::{certs_to_pem, system_roots};

/// Writes system roots + the modscope CA to `path` (go's SSL_CERT_FILE replaces the system
/// bundle, so it needs both).
pub fn write_bundle(ca: &CertAuthority, path: &Path) -> Result<PathBuf> {
    let roots = system_roots();
    let mut pem = certs_to_pem(roots.iter());
    pem.push_str(ca.cert_pem());
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    crate::ca::write_atomic(path, pem.as_bytes(), 0o644)
        .with_context(|| format!("cannot write the CA bundle {}", path.display()))?;
    Ok(path.to_path_buf())
}

pub fn ca(action: CaAction, ca_dir: Option<PathBuf>) -> Result<i32> {
    let dir = ca_dir.unwrap_or_else(crate::ca::default_ca_dir);
    let files = CaFiles::new(&dir);
    let load = || {
        CertAuthority::load_or_create(&dir)
            .with_context(|| format!("cannot set up the modscope CA in {}", dir.display()))
    };
    match action {
        CaAction::Init => {
            let existed = files.exists();
            load()?;
            println!(
                "{} {}",
                if existed {
                    "modscope CA already exists:"
                } else {
                    "created modscope CA:"
                },
                files.cert_path().display()
            );
        }
        CaAction::Path => {
            load()?;
            println!("{}", files.cert_path().display());
        }
        CaAction::Show => {
            let ca = load()?;
            print!(
                "file:        {}\n{}",
                files.cert_path().display(),
                describe_cert(ca.cert_der())
            );
        }
        CaAction::Export { der, output } => {
            let ca = load()?;
            let bytes = if der {
                ca.cert_der().to_vec()
            } else {
                ca.cert_pem().as_bytes().to_vec()
            };
            match output {
                Some(path) => std::fs::write(&path, bytes)
                    .with_context(|| format!("cannot write {}", path.display()))?,
                None => std::io::stdout().write_all(&bytes)?,
            }
        }
        CaAction::Bundle { output } => {
            let ca = load()?;
            let path = output.unwrap_or_else(|| files.bundle_path());
            let written = write_bundle(&ca, &path)?;
            println!("{}", written.display());
        }
    }
    Ok(0)
}
