//! On-disk layout of the CA: `ca.pem` (public) and `ca-key.pem` (mode 0600), written atomically.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::CaError;

/// Default CA directory: `$MODSCOPE_HOME`, else `$XDG_DATA_HOME/modscope`, else
/// `~/.local/share/modscope`.
pub fn default_ca_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("MODSCOPE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(home);
    }
    if let Some(data) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(data).join("modscope");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/share/modscope")
}

/// The files of a CA directory.
#[derive(Debug, Clone)]
pub struct CaFiles {
    dir: PathBuf,
}

impl CaFiles {
    pub fn new(dir: &Path) -> Self {
        CaFiles {
            dir: dir.to_path_buf(),
        }
    }

    pub fn cert_path(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    pub fn key_path(&self) -> PathBuf {
        self.dir.join("ca-key.pem")
    }

    /// System roots plus the CA: what go's `SSL_CERT_FILE` and git's `GIT_SSL_CAINFO` need.
    pub fn bundle_path(&self) -> PathBuf {
        self.dir.join("bundle.pem")
    }

    /// The control API token of the proxy whose API listens on `port` (mode 0600, removed
    /// when that proxy stops); one file per port, so proxies sharing a CA directory coexist.
    pub fn admin_token_path(&self, port: u16) -> PathBuf {
        self.dir.join(format!("admin-{port}.token"))
    }

    /// A warning when an existing `ca-key.pem` can be read by group or others (anyone who
    /// reads it can impersonate every site to whoever trusts this CA).
    pub fn key_exposure(&self) -> Option<String> {
        let path = self.key_path();
        let mode = fs::metadata(&path).ok()?.permissions().mode();
        (mode & 0o077 != 0).then(|| {
            format!(
                "{} is readable by {} (mode {:o}); anyone who can read it can impersonate any site to clients that trust this CA: chmod 600 {}",
                path.display(),
                match (mode & 0o070 != 0, mode & 0o007 != 0) {
                    (true, true) => "group and others",
                    (true, false) => "its group",
                    _ => "others",
                },
                mode & 0o777,
                path.display()
            )
        })
    }

    pub fn exists(&self) -> bool {
        self.cert_path().exists() || self.key_path().exists()
    }

    pub fn read(&self) -> Result<(String, String), CaError> {
        let read = |path: PathBuf| {
            fs::read_to_string(&path).map_err(|source| CaError::Io {
                action: "read",
                path,
                source,
            })
        };
        Ok((read(self.cert_path())?, read(self.key_path())?))
    }

    pub fn write(&self, cert_pem: &str, key_pem: &str) -> Result<(), CaError> {
        fs::create_dir_all(&self.dir).map_err(|source| CaError::Io {
            action: "create directory",
            path: self.dir.clone(),
            source,
        })?;
        // The directory holds a signing key: keep others out of it as well.
        let _ = fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700));
        write_atomic(&self.key_path(), key_pem.as_bytes(), 0o600)?;
        write_atomic(&self.cert_path(), cert_pem.as_bytes(), 0o644)
    }
}

/// Writes `bytes` to `path` through a temporary file created with `mode`, so the file is
/// never visible half-written nor, for keys, ever readable by others.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CaError> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let io_err = |action: &'static str, p: &Path| {
        let p = p.to_path_buf();
        move |source| CaError::Io {
            action,
            path: p,
            source,
        }
    };
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io_err("create", &tmp))?;
    file.write_all(bytes).map_err(io_err("write", &tmp))?;
    file.sync_all().map_err(io_err("sync", &tmp))?;
    drop(file);
    fs::rename(&tmp, path).map_err(io_err("rename into place", path))
}
