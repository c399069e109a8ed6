//! Gathers forensic evidence from files (go.sum, recorded zips, .netrc `machine` names,
//! GOAUTH) for diagnosis; `cmd::verify` is the command built on it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::diagnose::{zips_to_compare, AuthEnv, Evidence, GoSumFile, Observation};
use crate::gomod;
use crate::gozip;
use crate::trace::Entry;

/// Reads a go.sum file.
pub fn read_go_sum(path: &Path) -> Result<GoSumFile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read go.sum file {}", path.display()))?;
    Ok(GoSumFile {
        label: path.display().to_string(),
        lines: gomod::gosum::parse_go_sum(&text),
    })
}

/// GOAUTH and the .netrc go would read ($NETRC, else $HOME/.netrc), keeping only the
/// `machine` names: logins and passwords are never stored.
pub fn auth_env_from_process() -> AuthEnv {
    let netrc = std::env::var_os("NETRC")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".netrc")))
        .filter(|p| p.is_file());
    let machines = netrc
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .map(|t| crate::gomod::auth::netrc_machines(&t))
        .unwrap_or_default();
    AuthEnv {
        goauth: std::env::var("GOAUTH").ok().filter(|v| !v.is_empty()),
        netrc_path: netrc.map(|p| p.display().to_string()),
        netrc_machines: machines,
    }
}

/// Fills `_go.h1` (or `zipRejected`) of complete 200 `.zip`/`.mod` entries that lack it
/// (traces recorded before modscope hashed, or by another tool), from their body files.
pub fn fill_missing_h1(entries: &mut [Entry], root: &Path) {
    for e in entries.iter_mut() {
        if e.response.status != 200 || e.response.content.complete == Some(false) {
            continue;
        }
        let Some(mut go) =
            e.go.clone()
                .and_then(|v| serde_json::from_value::<gomod::GoRequest>(v).ok())
        else {
            continue;
        };
        if go.h1.is_some() || go.zip_rejected.is_some() {
            continue;
        }
        let Some(body) = RecordedBytes::of(e, root) else {
            continue;
        };
        let encoding = content_encoding(e).map(str::to_string);
        gozip::hash_recorded_body(&mut go, encoding.as_deref(), body.source());
        if go.h1.is_some() || go.zip_rejected.is_some() {
            e.go = serde_json::to_value(&go).ok();
        }
    }
}

/// A response body's wire bytes: its file, or the bytes embedded in the entry.
enum RecordedBytes {
    File(PathBuf),
    Embedded(Vec<u8>),
}

impl RecordedBytes {
    fn of(e: &Entry, root: &Path) -> Option<RecordedBytes> {
        match e.response.content.file.as_deref() {
            Some(file) => Some(RecordedBytes::File(root.join(file))),
            None => crate::trace::embedded_response(e).map(RecordedBytes::Embedded),
        }
    }

    fn source(&self) -> gozip::RecordedBody<'_> {
        match self {
            RecordedBytes::File(path) => gozip::RecordedBody::File(path),
            RecordedBytes::Embedded(bytes) => gozip::RecordedBody::Bytes(bytes),
        }
    }
}

/// The response's `Content-Encoding`: bodies are stored as they crossed the wire.
fn content_encoding(e: &Entry) -> Option<&str> {
    e.response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-encoding"))
        .map(|h| h.value.as_str())
}

/// Evidence for diagnosis: go.sum, the listings of zips that disagree with another copy
/// (to name the files that differ), and the credential environment.
pub fn gather(
    entries: &[Entry],
    obs: &[Observation],
    root: Option<&Path>,
    go_sum: Option<GoSumFile>,
    auth: Option<AuthEnv>,
) -> Evidence {
    let mut zips = HashMap::new();
    if let Some(root) = root {
        for index in zips_to_compare(obs) {
            let Some(o) = obs.iter().find(|o| o.index == index) else {
                continue;
            };
            let (Some(e), Some(m), Some(v)) = (
                // Observations count entries from 1 (as every `#N` does).
                index.checked_sub(1).and_then(|i| entries.get(i)),
                o.go.module.as_deref(),
                o.go.version.as_deref(),
            ) else {
                continue;
            };
            let Some(body) = RecordedBytes::of(e, root) else {
                continue;
            };
            let listing = gozip::recorded_zip_files(body.source(), content_encoding(e), m, v).ok();
            if let Some(listing) = listing {
                zips.insert(index, listing);
            }
        }
    }
    Evidence { go_sum, zips, auth }
}
