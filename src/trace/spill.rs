//! Embedded bodies of a HAR moved out of memory while it loads: each large `text`
//! (base64 or plain) is decoded into a private temp body store as the entry is read, and
//! the entry keeps only its `_sha256`. Loading a HAR of any size then holds entry heads,
//! not bodies; the bytes come back from the store, verified, when replay asks for them.
//!
//! The store lives under the system temp dir (`$TMPDIR`, `modscope-spill.tmp-<pid>-<n>`)
//! and is removed when the last [`super::LoadedTrace`] holding it is dropped; one left by a
//! killed process is removed by the next load that spills.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;

use super::bodies::{BodySink, BodyStore, HEAD_LIMIT};
use super::har::Entry;
use super::reader::LoadedTrace;
use super::tempfiles;

/// Embedded bodies longer than this (in characters of `text`) are spilled; shorter ones
/// stay in the entry, where diagnosis reads them (error texts, `.mod` files, lists).
pub const SPILL_MIN: usize = HEAD_LIMIT;

const PREFIX: &str = "modscope-spill";

/// Where spilled bodies are, by SHA-256.
#[derive(Debug)]
pub struct SpillStore {
    dir: PathBuf,
    store: BodyStore,
    held: HashSet<String>,
}

/// Why a body stayed in memory instead.
#[derive(Debug)]
pub(crate) enum Kept {
    /// Not valid base64 or an unknown encoding: the reader reports it when the body is used.
    Undecodable,
    Io(io::Error),
}

impl SpillStore {
    /// Creates an empty store under the system temp dir.
    pub(crate) fn create() -> io::Result<SpillStore> {
        let base = std::env::temp_dir();
        // Stores of processes that were killed before they could remove theirs.
        if let Err(e) = tempfiles::remove_stale(&base, PREFIX) {
            tracing::debug!("cannot clean old spill stores in {}: {e}", base.display());
        }
        let dir = tempfiles::temp_path(&base, PREFIX);
        fs::create_dir(&dir)?;
        let store = BodyStore::new(&dir).map_err(io::Error::other)?;
        Ok(SpillStore {
            dir,
            store,
            held: HashSet::new(),
        })
    }

    /// The directory whose `bodies/<sha256>` holds the spilled bodies.
    pub fn root(&self) -> &Path {
        &self.dir
    }

    pub fn holds(&self, sha256: &str) -> bool {
        self.held.contains(sha256)
    }

    /// Writes the bytes `text` stands for (base64 decoded when `encoding` says so) and
    /// returns their SHA-256.
    pub(crate) fn put(&mut self, text: &str, encoding: Option<&str>) -> Result<String, Kept> {
        let mut sink = self.store.begin().map_err(Kept::Io)?;
        match encoding {
            None => sink.write(text.as_bytes()).map_err(Kept::Io)?,
            Some(enc) if enc.eq_ignore_ascii_case("base64") => decode_base64_into(text, &mut sink)?,
            Some(_) => return Err(Kept::Undecodable),
        }
        let stored = sink.finish().map_err(Kept::Io)?;
        self.held.insert(stored.sha256.clone());
        Ok(stored.sha256)
    }
}

/// Spills the large embedded bodies of entries as a trace loads, into the trace's store
/// (made on first use). If the store cannot be made or written, bodies stay in memory
/// and a note says so once.
#[derive(Debug, Default)]
pub(crate) struct Spiller {
    failed: bool,
}

impl Spiller {
    pub(crate) fn entry(&mut self, trace: &mut LoadedTrace, entry: &mut Entry) {
        let c = &mut entry.response.content;
        let response = (&mut c.text, &mut c.encoding, &mut c.sha256);
        let request = entry
            .request
            .post_data
            .as_mut()
            .map(|p| (&mut p.text, &mut p.encoding, &mut p.sha256));
        for (text, encoding, sha256) in std::iter::once(response).chain(request) {
            if self.failed || text.as_ref().is_none_or(|t| t.len() <= SPILL_MIN) {
                continue;
            }
            let Some(store) = self.store(trace) else {
                return;
            };
            let body = text.as_deref().unwrap_or_default();
            match store.put(body, encoding.as_deref()) {
                // A body that does not match the `_sha256` it claims stays embedded, so
                // reading it reports the mismatch as it always did.
                Ok(actual) if sha256.as_ref().is_none_or(|s| *s == actual) => {
                    *text = None;
                    *encoding = None;
                    *sha256 = Some(actual);
                }
                Ok(_) | Err(Kept::Undecodable) => {}
                Err(Kept::Io(e)) => self.give_up(trace, e),
            }
        }
    }

    fn store<'t>(&mut self, trace: &'t mut LoadedTrace) -> Option<&'t mut SpillStore> {
        if trace.spill.is_none() {
            match SpillStore::create() {
                Ok(s) => trace.spill = Some(Arc::new(s)),
                Err(e) => {
                    self.give_up(trace, e);
                    return None;
                }
            }
        }
        // Only the loader holds the store while the trace is being built.
        trace.spill.as_mut().and_then(Arc::get_mut)
    }

    fn give_up(&mut self, trace: &mut LoadedTrace, e: io::Error) {
        self.failed = true;
        trace.notes.push(format!(
            "cannot move embedded bodies out of memory ({e}); they stay in memory"
        ));
    }
}

impl Drop for SpillStore {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Decodes base64 in slices (whitespace, as some tools wrap lines, is skipped) so the
/// decoded copy never exists whole in memory. Slices without whitespace, the common
/// case, are copied whole rather than byte by byte.
fn decode_base64_into(text: &str, sink: &mut BodySink) -> Result<(), Kept> {
    const SLICE: usize = 64 * 1024;
    let engine = &base64::engine::general_purpose::STANDARD;
    let mut pending: Vec<u8> = Vec::with_capacity(SLICE + 4);
    let mut out: Vec<u8> = vec![0; (SLICE + 4) / 4 * 3];
    let mut decode = |pending: &[u8], sink: &mut BodySink| -> Result<(), Kept> {
        let n = engine
            .decode_slice_unchecked(pending, &mut out)
            .map_err(|_| Kept::Undecodable)?;
        sink.write(out.get(..n).unwrap_or_default())
            .map_err(Kept::Io)
    };
    for chunk in text.as_bytes().chunks(SLICE) {
        if chunk.iter().any(u8::is_ascii_whitespace) {
            pending.extend(chunk.iter().filter(|b| !b.is_ascii_whitespace()));
        } else {
            pending.extend_from_slice(chunk);
        }
        // Decode whole 4-character quanta; the rest waits for the next slice.
        let whole = pending.len() / 4 * 4;
        decode(pending.get(..whole).unwrap_or_default(), sink)?;
        pending.drain(..whole);
    }
    if !pending.is_empty() {
        decode(&pending, sink)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::bodies::read_verified;
    use sha2::{Digest, Sha256};

    #[test]
    fn base64_and_plain_text_land_under_their_hash_and_vanish_on_drop() {
        let data: Vec<u8> = (0..300_001u32).map(|i| (i * 31 % 256) as u8).collect();
        let mut b64 = base64::engine::general_purpose::STANDARD.encode(&data);
        // Wrapped at 76 columns, as some tools write it.
        let wrapped: String = b64
            .as_bytes()
            .chunks(76)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join("\r\n");
        let mut spill = SpillStore::create().expect("create");
        let root = spill.root().to_path_buf();
        let sha = spill.put(&wrapped, Some("base64")).expect("spill");
        assert_eq!(sha, hex::encode(Sha256::digest(&data)));
        assert!(spill.holds(&sha));
        assert_eq!(read_verified(&root, &sha).expect("read"), data);

        let text = "v1.0.0\n".repeat(20_000);
        let sha = spill.put(&text, None).expect("spill text");
        assert_eq!(read_verified(&root, &sha).expect("read"), text.as_bytes());

        b64.insert(10, '%');
        assert!(matches!(
            spill.put(&b64, Some("base64")),
            Err(Kept::Undecodable)
        ));
        assert!(matches!(
            spill.put("abc", Some("gzip")),
            Err(Kept::Undecodable)
        ));
        drop(spill);
        assert!(!root.exists(), "the store is removed with its owner");
    }
}
