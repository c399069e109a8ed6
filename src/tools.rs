//! Finding the external programs modscope drives or reads (go, tshark, dumpcap) on PATH.

use std::path::PathBuf;

/// The first executable `name` on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}
