//! Content-addressed body store: streams bodies to `bodies/<sha256>` while they are forwarded.
//!
//! A body is written to a temp file as it passes, hashed on the way, then renamed to
//! its hash; identical bodies (the same module zip fetched twice) are kept once. Only
//! the first [`HEAD_LIMIT`] bytes are held in memory, for embedding small text bodies.
//! A body of at most [`EMBED_LIMIT`] bytes gets no file until one is asked for: the
//! recorder embeds such bodies in their entry, because creating, writing and renaming
//! a file per small body cost more than everything else recording does (#18).

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::build::BodyContent;
use super::content::Coding;
use super::error::TraceError;
use super::tempfiles::{self, Removed};
use super::BODIES_DIR;

/// Bytes of a body kept in memory, and the largest body embedded as HAR `text`.
pub const HEAD_LIMIT: usize = 64 * 1024;

/// The largest body that stays in memory instead of getting a file while it streams
/// (see [`BodySink::finish_small_in_memory`]). At about this size, base64 and JSON
/// escaping in the journal line cost as much CPU as a file's create/write/rename.
pub const EMBED_LIMIT: usize = 16 * 1024;
const _: () = assert!(EMBED_LIMIT <= HEAD_LIMIT, "a body in memory is its head");

/// The `bodies/` directory of one trace directory.
#[derive(Debug, Clone)]
pub struct BodyStore {
    root: PathBuf,
    bodies: PathBuf,
    /// Temp files of killed writers removed when the store was opened.
    stale: Removed,
}

/// A stored body, as [`BodySink::finish`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBody {
    /// Lower-case hex SHA-256 of the bytes.
    pub sha256: String,
    pub size: u64,
    /// Path relative to the trace directory: `bodies/<sha256>`; `None` while the body
    /// is held in memory only (then `head` is the whole body, see [`BodyStore::keep`]).
    pub file: Option<String>,
    /// The first `min(size, HEAD_LIMIT)` bytes.
    pub head: Vec<u8>,
    /// True when the body is longer than `head`.
    pub truncated_head: bool,
}

impl BodyStore {
    /// Uses `dir/bodies/` for recording, creating it. Temp files left there by a writer
    /// that was killed mid-body (they can be as large as the body) are removed now: no
    /// entry refers to them and nothing can finish them.
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self, TraceError> {
        let root = dir.into();
        let bodies = root.join(BODIES_DIR);
        fs::create_dir_all(&bodies).map_err(|e| TraceError::io(&bodies, e))?;
        let stale = tempfiles::remove_stale(&bodies, "").map_err(|e| TraceError::io(&bodies, e))?;
        if stale.files > 0 {
            tracing::warn!(
                "removed {} unfinished body file(s) ({} bytes) from {}, left by a recording that was killed",
                stale.files,
                stale.bytes,
                bodies.display()
            );
        }
        Ok(BodyStore {
            root,
            bodies,
            stale,
        })
    }

    /// What opening the store cleaned up.
    pub fn stale_removed(&self) -> Removed {
        self.stale
    }

    /// The trace directory that `StoredBody::file` is relative to.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Starts a new body. Its temp file is created once the body outgrows
    /// [`EMBED_LIMIT`], so a small body costs no file-system call until it is finished.
    pub fn begin(&self) -> io::Result<BodySink> {
        Ok(BodySink {
            out: None,
            tmp: None,
            bodies: self.bodies.clone(),
            hasher: Sha256::new(),
            size: 0,
            head: Vec::new(),
            truncated_head: false,
            finished: false,
        })
    }

    /// Gives an in-memory body (see [`BodySink::finish_small_in_memory`]) its file,
    /// `bodies/<sha256>`, via a temp file and a rename; a body already stored is kept
    /// once. Does nothing for a body that has its file.
    pub fn keep(&self, body: &mut StoredBody) -> io::Result<()> {
        Self::keep_in(&self.bodies, body)
    }

    fn keep_in(bodies: &Path, body: &mut StoredBody) -> io::Result<()> {
        if body.file.is_some() {
            return Ok(());
        }
        let dest = bodies.join(&body.sha256);
        if !stored_whole(&dest, body.size) {
            let (tmp, mut file) = create_temp(bodies)?;
            let written = file
                .write_all(&body.head)
                .and_then(|()| fs::rename(&tmp, &dest));
            if let Err(e) = written {
                let _ = fs::remove_file(&tmp);
                return Err(with_path(e, &dest));
            }
        }
        body.file = Some(format!("{BODIES_DIR}/{}", body.sha256));
        Ok(())
    }
}

/// `Write::write_all_vectored` is not stable yet: writes every byte of `chunks`,
/// retrying short writes and interruptions.
fn write_all_vectored<B: AsRef<[u8]>>(out: &mut File, chunks: &[B]) -> io::Result<()> {
    let mut slices: Vec<io::IoSlice<'_>> = chunks
        .iter()
        .map(|c| io::IoSlice::new(c.as_ref()))
        .filter(|s| !s.is_empty())
        .collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        match out.write_vectored(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => io::IoSlice::advance_slices(&mut rest, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A new temp file in `bodies/`, named so a later run can tell a killed writer's.
fn create_temp(bodies: &Path) -> io::Result<(PathBuf, File)> {
    let tmp = tempfiles::temp_path(bodies, "");
    let file = File::options()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(|e| with_path(e, &tmp))?;
    Ok((tmp, file))
}

/// Same name means same content, unless an older file was damaged: its size tells.
fn stored_whole(dest: &Path, size: u64) -> bool {
    fs::metadata(dest).is_ok_and(|m| m.is_file() && m.len() == size)
}

/// One body being written. Dropping it unfinished removes the temp file, so a client
/// abort or a fault never leaves partial files behind.
#[derive(Debug)]
pub struct BodySink {
    /// The temp file, once the body outgrew [`EMBED_LIMIT`].
    out: Option<File>,
    tmp: Option<PathBuf>,
    bodies: PathBuf,
    hasher: Sha256,
    size: u64,
    head: Vec<u8>,
    truncated_head: bool,
    finished: bool,
}

impl BodySink {
    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.write_chunks(&[data])
    }

    /// Writes `chunks` in order, to the file with one vectored write where the kernel
    /// takes them all: the recorder hands over a batch of the chunks that passed
    /// through the proxy as they are, without copying them into one buffer first.
    pub fn write_chunks<B: AsRef<[u8]>>(&mut self, chunks: &[B]) -> io::Result<()> {
        if self.finished {
            return Err(io::Error::other(format!(
                "{}: body sink already finished",
                self.bodies.display()
            )));
        }
        let len: usize = chunks.iter().map(|c| c.as_ref().len()).sum();
        let size = self.size.saturating_add(len as u64);
        if self.out.is_none() && size > EMBED_LIMIT as u64 {
            // Outgrew memory: everything so far is `head`; it goes first.
            let (tmp, mut file) = create_temp(&self.bodies)?;
            self.tmp = Some(tmp);
            file.write_all(&self.head).map_err(|e| self.with_tmp(e))?;
            self.out = Some(file);
        }
        if let Some(out) = self.out.as_mut() {
            // Unbuffered: the recorder hands over batches of 64 KiB, and a buffer would
            // copy every byte once more on its way to the page cache.
            if let Err(e) = write_all_vectored(out, chunks) {
                return Err(self.with_tmp(e));
            }
        }
        for data in chunks {
            let data = data.as_ref();
            self.hasher.update(data);
            let room = HEAD_LIMIT.saturating_sub(self.head.len());
            let take = room.min(data.len());
            self.head
                .extend_from_slice(data.get(..take).unwrap_or_default());
            if data.len() > take {
                self.truncated_head = true;
            }
        }
        self.size = size;
        Ok(())
    }

    fn with_tmp(&self, e: io::Error) -> io::Error {
        match &self.tmp {
            Some(tmp) => with_path(e, tmp),
            None => e,
        }
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Moves the body to `bodies/<sha256>`.
    ///
    /// No fsync: like the journal, bodies must survive a crash of modscope, not of the
    /// machine, and an fsync per body would dominate the cost of small responses.
    pub fn finish(self) -> io::Result<StoredBody> {
        let bodies = self.bodies.clone();
        let mut stored = self.finish_small_in_memory()?;
        BodyStore::keep_in(&bodies, &mut stored)?;
        Ok(stored)
    }

    /// Like [`BodySink::finish`], but a body of at most [`EMBED_LIMIT`] bytes stays in
    /// memory (`file: None`, `head` is the whole body) until [`BodyStore::keep`] is
    /// called: the recorder embeds it in its entry instead.
    pub fn finish_small_in_memory(mut self) -> io::Result<StoredBody> {
        if self.finished {
            return Err(io::Error::other(format!(
                "{}: body sink already finished",
                self.bodies.display()
            )));
        }
        self.finished = true;
        let result = self.finish_inner();
        if result.is_err() {
            self.discard();
        }
        result
    }

    fn finish_inner(&mut self) -> io::Result<StoredBody> {
        let sha256 = hex::encode(std::mem::take(&mut self.hasher).finalize());
        let file = match (self.out.take(), self.tmp.clone()) {
            (Some(out), Some(tmp)) => {
                drop(out);
                let dest = self.bodies.join(&sha256);
                if stored_whole(&dest, self.size) {
                    fs::remove_file(&tmp).map_err(|e| with_path(e, &tmp))?;
                } else {
                    fs::rename(&tmp, &dest).map_err(|e| with_path(e, &dest))?;
                }
                self.tmp = None;
                Some(format!("{BODIES_DIR}/{sha256}"))
            }
            _ => None,
        };
        Ok(StoredBody {
            file,
            sha256,
            size: self.size,
            head: std::mem::take(&mut self.head),
            truncated_head: self.truncated_head,
        })
    }

    /// Discards the body (client abort, fault, error).
    pub fn abort(mut self) {
        self.discard();
    }

    fn discard(&mut self) {
        self.finished = true;
        self.out = None;
        if let Some(tmp) = self.tmp.take() {
            let _ = fs::remove_file(&tmp);
        }
    }
}

impl Drop for BodySink {
    fn drop(&mut self) {
        self.discard();
    }
}

/// Decoded bytes counted beyond this are not worth it: a body that inflates past 1 GiB
/// (a compression bomb, or a huge archive) keeps its wire view in the HAR.
const DECODE_LIMIT: u64 = 1 << 30;

/// The decoded view of an encoded body: its length and first bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Decoded {
    size: u64,
    /// The first `min(size, keep)` decoded bytes.
    head: Vec<u8>,
}

impl StoredBody {
    /// What the HAR entry should say about this body: always the file reference (the
    /// wire bytes), the text when it is small UTF-8 text, and base64 of the whole body
    /// when `embed` is set. Under a `Content-Encoding` modscope can decode, `text`,
    /// base64 and `decoded_size` describe the decoded body, as HAR 1.2 asks; a body that
    /// does not decode (cut, or not what its header says) is described as it is stored.
    pub fn content(
        &self,
        store: &BodyStore,
        content_type: Option<&str>,
        content_encoding: Option<&str>,
        embed: bool,
    ) -> Result<BodyContent, TraceError> {
        let Some(file) = &self.file else {
            if !super::content::is_encoded(content_encoding) {
                return Ok(self.embedded(content_type));
            }
            // Encoded: HAR `text` holds the decoded body, so the wire bytes need a file.
            let mut kept = self.clone();
            store
                .keep(&mut kept)
                .map_err(|e| TraceError::io(store.root(), e))?;
            return kept.content(store, content_type, content_encoding, embed);
        };
        let path = store.root().join(file);
        let coding = content_encoding.and_then(Coding::parse);
        let decoded = coding.and_then(|c| {
            let keep = if embed { usize::MAX } else { HEAD_LIMIT + 1 };
            decode_file(&path, c, keep).ok()
        });
        let (head, complete_head) = match &decoded {
            Some(d) => (
                &d.head,
                d.size as usize == d.head.len() && d.head.len() <= HEAD_LIMIT,
            ),
            None => (&self.head, !self.truncated_head),
        };
        let text = if complete_head && looks_like_text(head, content_type) {
            String::from_utf8(head.clone()).ok()
        } else {
            None
        };
        let base64 = match (&decoded, embed && text.is_none()) {
            (_, false) => None,
            (Some(d), true) => Some(base64::engine::general_purpose::STANDARD.encode(&d.head)),
            (None, true) => {
                let bytes = read_verified(store.root(), &self.sha256)?;
                Some(base64::engine::general_purpose::STANDARD.encode(bytes))
            }
        };
        Ok(BodyContent {
            sha256: Some(self.sha256.clone()),
            file: Some(file.clone()),
            text,
            base64,
            decoded_size: decoded.map(|d| d.size),
        })
    }

    /// A body held in memory (no `Content-Encoding`), embedded whole: as `text` when it
    /// is text, else as base64. `_sha256` stays, so readers verify it like a file.
    fn embedded(&self, content_type: Option<&str>) -> BodyContent {
        let text = looks_like_text(&self.head, content_type)
            .then(|| String::from_utf8(self.head.clone()).ok())
            .flatten();
        let base64 = text
            .is_none()
            .then(|| base64::engine::general_purpose::STANDARD.encode(&self.head));
        BodyContent {
            sha256: Some(self.sha256.clone()),
            file: None,
            text,
            base64,
            decoded_size: None,
        }
    }
}

/// Streams a stored body through its decoder, keeping the first `keep` decoded bytes
/// and counting the rest, so memory stays bounded whatever the body's size.
fn decode_file(path: &Path, coding: Coding, keep: usize) -> io::Result<Decoded> {
    let file = io::BufReader::new(File::open(path)?);
    let mut reader: Box<dyn Read> = match coding {
        Coding::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(file)),
        Coding::Deflate => {
            let mut file = file;
            // RFC 9110 "deflate" is zlib-wrapped; some servers send raw deflate.
            let zlib = io::BufRead::fill_buf(&mut file)?.get(..2).is_some_and(|h| {
                h[0] & 0x0f == 8 && (u16::from(h[0]) << 8 | u16::from(h[1])) % 31 == 0
            });
            if zlib {
                Box::new(flate2::bufread::ZlibDecoder::new(file))
            } else {
                Box::new(flate2::bufread::DeflateDecoder::new(file))
            }
        }
        Coding::Brotli => Box::new(brotli_decompressor::Decompressor::new(file, 64 * 1024)),
    };
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = Decoded {
        size: 0,
        head: Vec::new(),
    };
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok(out);
        }
        let chunk = buf.get(..n).unwrap_or_default();
        let room = keep.saturating_sub(out.head.len()).min(n);
        out.head
            .extend_from_slice(chunk.get(..room).unwrap_or_default());
        out.size += n as u64;
        if out.size > DECODE_LIMIT {
            return Err(io::Error::other("decoded body exceeds the decode limit"));
        }
    }
}

/// Whether a body can be embedded as HAR `text`: not a known binary type, valid UTF-8
/// (a multi-byte character cut at the end of `head` is allowed) and free of control
/// characters other than tab, newlines, form feed and escape. Compressed bodies fail the
/// byte test by themselves, so the caller need not look at `content-encoding`.
pub fn looks_like_text(head: &[u8], content_type: Option<&str>) -> bool {
    if let Some(ct) = content_type {
        let essence = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let binary = ["image/", "audio/", "video/", "font/"]
            .iter()
            .any(|p| essence.starts_with(p))
            || matches!(
                essence.as_str(),
                "application/zip"
                    | "application/gzip"
                    | "application/x-gzip"
                    | "application/x-tar"
                    | "application/x-bzip2"
                    | "application/x-xz"
                    | "application/zstd"
                    | "application/pdf"
                    | "application/wasm"
                    | "application/x-git-upload-pack-result"
                    | "application/x-git-upload-pack-request"
                    | "application/x-git-receive-pack-result"
            );
        if binary {
            return false;
        }
    }
    let valid = match std::str::from_utf8(head) {
        Ok(_) => true,
        // `error_len() == None` means the input ended inside a character.
        Err(e) => e.error_len().is_none() && head.len() - e.valid_up_to() < 4,
    };
    valid
        && !head
            .iter()
            .any(|&b| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c | 0x1b)) || b == 0x7f)
}

/// Checks that `sha256` is 64 lower-case hex digits before it becomes a path, so a
/// hostile trace cannot point outside `bodies/`.
pub(crate) fn check_sha(sha256: &str) -> Result<(), String> {
    if sha256.len() == 64
        && sha256
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err("expected 64 lower-case hex digits".to_string())
    }
}

/// Opens `dir/bodies/<sha256>` for streaming. The hash is checked as the reader reaches
/// the end: the last `read` fails with `InvalidData` naming the file if it does not
/// match. Use [`read_verified`] when the bytes must be checked before any is used.
pub fn open_verified(dir: &Path, sha256: &str) -> Result<VerifiedReader, TraceError> {
    let path = body_path(dir, sha256)?;
    open_verified_path(path, sha256)
}

pub(crate) fn open_verified_path(
    path: PathBuf,
    sha256: &str,
) -> Result<VerifiedReader, TraceError> {
    match File::open(&path) {
        Ok(file) => Ok(VerifiedReader {
            file,
            path,
            expected: sha256.to_ascii_lowercase(),
            hasher: Sha256::new(),
            done: false,
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(TraceError::BodyMissing {
            path,
            sha256: sha256.to_string(),
        }),
        Err(e) => Err(TraceError::io(path, e)),
    }
}

/// Reads `dir/bodies/<sha256>` whole and checks its hash.
pub fn read_verified(dir: &Path, sha256: &str) -> Result<Vec<u8>, TraceError> {
    let path = body_path(dir, sha256)?;
    read_verified_path(path, sha256)
}

pub(crate) fn read_verified_path(path: PathBuf, sha256: &str) -> Result<Vec<u8>, TraceError> {
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(TraceError::BodyMissing {
                path,
                sha256: sha256.to_string(),
            })
        }
        Err(e) => return Err(TraceError::io(path, e)),
    };
    let actual = hex::encode(Sha256::digest(&bytes));
    if !actual.eq_ignore_ascii_case(sha256) {
        return Err(TraceError::BodyCorrupt {
            path,
            expected: sha256.to_string(),
            actual,
        });
    }
    Ok(bytes)
}

fn body_path(dir: &Path, sha256: &str) -> Result<PathBuf, TraceError> {
    check_sha(sha256).map_err(|reason| TraceError::BadBodyRef {
        trace: dir.to_path_buf(),
        value: sha256.to_string(),
        reason,
    })?;
    Ok(dir.join(BODIES_DIR).join(sha256))
}

/// A body file that checks its SHA-256 when fully read.
#[derive(Debug)]
pub struct VerifiedReader {
    file: File,
    path: PathBuf,
    expected: String,
    hasher: Sha256,
    done: bool,
}

impl VerifiedReader {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Read for VerifiedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        let n = self.file.read(buf).map_err(|e| with_path(e, &self.path))?;
        if n == 0 && !buf.is_empty() {
            self.done = true;
            let actual = hex::encode(std::mem::take(&mut self.hasher).finalize());
            if actual != self.expected {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    TraceError::BodyCorrupt {
                        path: self.path.clone(),
                        expected: self.expected.clone(),
                        actual,
                    },
                ));
            }
            return Ok(0);
        }
        self.hasher.update(buf.get(..n).unwrap_or_default());
        Ok(n)
    }
}

/// `io::Error` has no path; put it in the message so the user learns which file failed.
fn with_path(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::TempDir;

    /// Deterministic bytes covering every value, so binary handling is exercised.
    fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    fn tmp_files(store_dir: &Path) -> Vec<String> {
        fs::read_dir(store_dir.join(BODIES_DIR))
            .expect("read bodies")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".tmp"))
            .collect()
    }

    #[test]
    fn binary_body_round_trips_and_dedups() {
        let dir = TempDir::new("bodies-bin");
        let store = BodyStore::new(dir.path()).expect("store");
        let data = pseudo_random(200_000, 7);
        let mut sink = store.begin().expect("begin");
        for chunk in data.chunks(4099) {
            sink.write(chunk).expect("write");
        }
        let stored = sink.finish().expect("finish");
        assert_eq!(stored.sha256, hex::encode(Sha256::digest(&data)));
        assert_eq!(stored.size, data.len() as u64);
        assert_eq!(stored.file, Some(format!("bodies/{}", stored.sha256)));
        assert_eq!(stored.head, data[..HEAD_LIMIT]);
        assert!(stored.truncated_head);
        assert_eq!(
            read_verified(dir.path(), &stored.sha256).expect("read"),
            data
        );
        let mut streamed = Vec::new();
        open_verified(dir.path(), &stored.sha256)
            .expect("open")
            .read_to_end(&mut streamed)
            .expect("stream");
        assert_eq!(streamed, data);

        let mut again = store.begin().expect("begin");
        again.write(&data).expect("write");
        assert_eq!(again.finish().expect("finish"), stored);
        let files: Vec<_> = fs::read_dir(dir.path().join(BODIES_DIR))
            .expect("read")
            .collect();
        assert_eq!(files.len(), 1, "deduplicated, no temp files left");
    }

    #[test]
    fn ten_mib_body_keeps_head_bounded() {
        let dir = TempDir::new("bodies-10m");
        let store = BodyStore::new(dir.path()).expect("store");
        let mut sink = store.begin().expect("begin");
        let mut expect = Sha256::new();
        let chunk = pseudo_random(64 * 1024, 3);
        for i in 0..160u8 {
            let mut c = chunk.clone();
            c[0] = i;
            expect.update(&c);
            sink.write(&c).expect("write");
            assert!(sink.head.len() <= HEAD_LIMIT);
        }
        assert_eq!(sink.size(), 10 * 1024 * 1024);
        let stored = sink.finish().expect("finish");
        assert!(stored.head.len() <= HEAD_LIMIT);
        assert!(stored.truncated_head);
        let want = hex::encode(expect.finalize());
        assert_eq!(stored.sha256, want);
        let mut file_hash = Sha256::new();
        let mut r = open_verified(dir.path(), &want).expect("open");
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = r.read(&mut buf).expect("read verified");
            if n == 0 {
                break;
            }
            file_hash.update(&buf[..n]);
        }
        assert_eq!(hex::encode(file_hash.finalize()), want);
    }

    #[test]
    fn small_bodies_stay_in_memory_until_kept() {
        let dir = TempDir::new("bodies-small");
        let store = BodyStore::new(dir.path()).expect("store");
        let files = || {
            fs::read_dir(dir.path().join(BODIES_DIR))
                .expect("ls")
                .count()
        };
        // (body, content type, Content-Encoding, embedded as text, as base64, gets a file)
        let gz = {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(b"v1.0.0\n").expect("gzip");
            enc.finish().expect("gzip")
        };
        let binary = pseudo_random(EMBED_LIMIT, 5);
        type Case<'a> = (&'a [u8], Option<&'a str>, Option<&'a str>, bool, bool, bool);
        let cases: [Case<'_>; 5] = [
            (b"v1.0.0\n", Some("text/plain"), None, true, false, false),
            (&binary, Some("application/zip"), None, false, true, false),
            (&binary, None, Some("identity"), false, true, false),
            (b"", None, None, true, false, false),
            // Encoded: `text` is the decoded body, so the wire bytes get their file.
            (&gz, Some("text/plain"), Some("gzip"), true, false, true),
        ];
        for (i, (body, ct, ce, text, base64, file)) in cases.into_iter().enumerate() {
            let before = files();
            let mut sink = store.begin().expect("begin");
            sink.write(body).expect("write");
            let stored = sink.finish_small_in_memory().expect("finish");
            assert_eq!(
                (stored.file.as_deref(), files()),
                (None, before),
                "case {i}"
            );
            assert_eq!(stored.head, body, "case {i}: the head is the whole body");
            let c = stored.content(&store, ct, ce, false).expect("content");
            assert_eq!(
                c.sha256.as_deref(),
                Some(stored.sha256.as_str()),
                "case {i}"
            );
            assert_eq!(
                (c.text.is_some(), c.base64.is_some(), c.file.is_some()),
                (text, base64, file),
                "case {i}"
            );
            if let Some(b64) = &c.base64 {
                let decoded = base64::engine::general_purpose::STANDARD.decode(b64);
                assert_eq!(decoded.expect("base64"), body, "case {i}");
            }
            if file {
                let path = c.file.as_deref().expect("file");
                assert_eq!(fs::read(dir.path().join(path)).expect("read"), body);
            }
        }
        // `keep` gives an in-memory body its file, once per content.
        let mut sink = store.begin().expect("begin");
        sink.write(b"kept").expect("write");
        let mut stored = sink.finish_small_in_memory().expect("finish");
        let mut again = stored.clone();
        store.keep(&mut stored).expect("keep");
        store.keep(&mut again).expect("keep again");
        assert_eq!(stored.file, again.file);
        let sha = stored.sha256.clone();
        assert_eq!(read_verified(dir.path(), &sha).expect("read"), b"kept");
        assert!(tmp_files(dir.path()).is_empty());
        // A body past the limit streams to its file as before.
        let mut sink = store.begin().expect("begin");
        sink.write(&binary).expect("write");
        sink.write(b"!").expect("write");
        let big = sink.finish_small_in_memory().expect("finish");
        assert!(big.file.is_some());
    }

    #[test]
    fn chunk_batches_store_the_same_bytes_as_single_writes() {
        let dir = TempDir::new("bodies-chunks");
        let store = BodyStore::new(dir.path()).expect("store");
        let data = pseudo_random(3 * EMBED_LIMIT + 17, 9);
        // Batches that cross the in-memory limit inside a batch, with empty chunks.
        let cuts = [
            0,
            1,
            100,
            EMBED_LIMIT - 3,
            EMBED_LIMIT + 5,
            2 * EMBED_LIMIT,
            data.len(),
        ];
        let mut sink = store.begin().expect("begin");
        for pair in cuts.windows(2) {
            let part = &data[pair[0]..pair[1]];
            let (a, b) = part.split_at(part.len() / 2);
            sink.write_chunks(&[a, &[][..], b]).expect("write");
        }
        let stored = sink.finish().expect("finish");
        assert_eq!(stored.sha256, hex::encode(Sha256::digest(&data)));
        assert_eq!(stored.size, data.len() as u64);
        assert_eq!(
            read_verified(dir.path(), &stored.sha256).expect("read"),
            data
        );
        assert_eq!(stored.head, data[..HEAD_LIMIT.min(data.len())]);
    }

    #[test]
    fn abort_and_drop_remove_temp_files() {
        let dir = TempDir::new("bodies-abort");
        let store = BodyStore::new(dir.path()).expect("store");
        let mut a = store.begin().expect("begin");
        a.write(b"partial").expect("write");
        assert!(tmp_files(dir.path()).is_empty(), "a small body has no file");
        a.write(&[b'x'; EMBED_LIMIT]).expect("write");
        let mut b = store.begin().expect("begin");
        b.write(&[b'y'; EMBED_LIMIT + 1]).expect("write");
        assert_eq!(tmp_files(dir.path()).len(), 2);
        a.abort();
        drop(b);
        assert!(tmp_files(dir.path()).is_empty());
        let empty = store
            .begin()
            .expect("begin")
            .finish()
            .expect("finish empty");
        assert_eq!(empty.size, 0);
        assert!(!empty.truncated_head);
        assert_eq!(read_verified(dir.path(), &empty.sha256).expect("read"), b"");
    }

    #[test]
    fn damaged_existing_file_is_replaced() {
        let dir = TempDir::new("bodies-damaged");
        let store = BodyStore::new(dir.path()).expect("store");
        let sha = hex::encode(Sha256::digest(b"hello"));
        fs::write(dir.path().join(BODIES_DIR).join(&sha), b"hel").expect("damage");
        let mut s = store.begin().expect("begin");
        s.write(b"hello").expect("write");
        s.finish().expect("finish");
        assert_eq!(read_verified(dir.path(), &sha).expect("read"), b"hello");
    }

    #[test]
    fn missing_corrupt_and_bad_refs_are_clear_errors() {
        let dir = TempDir::new("bodies-errors");
        BodyStore::new(dir.path()).expect("store");
        let sha = hex::encode(Sha256::digest(b"body"));
        let err = read_verified(dir.path(), &sha).expect_err("missing");
        assert!(matches!(err, TraceError::BodyMissing { .. }));
        let msg = err.to_string();
        assert!(msg.contains(&sha) && msg.contains("missing"), "{msg}");
        assert!(matches!(
            open_verified(dir.path(), &sha),
            Err(TraceError::BodyMissing { .. })
        ));

        fs::write(dir.path().join(BODIES_DIR).join(&sha), b"bodx").expect("write");
        let err = read_verified(dir.path(), &sha).expect_err("corrupt");
        let msg = err.to_string();
        assert!(msg.contains("corrupt") && msg.contains(&sha), "{msg}");
        let mut r = open_verified(dir.path(), &sha).expect("open");
        let mut out = Vec::new();
        let err = r.read_to_end(&mut out).expect_err("corrupt at end");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("corrupt"), "{err}");

        for bad in ["../../etc/passwd", "ABC", &sha.to_uppercase()] {
            assert!(matches!(
                read_verified(dir.path(), bad),
                Err(TraceError::BadBodyRef { .. })
            ));
        }
    }

    #[test]
    fn temp_files_of_a_killed_recorder_are_removed_on_open_and_ignored_on_read() {
        use crate::trace::build::{build_entry, BuildOptions, EntryBodies};
        use crate::trace::testutil::sample_exchange;
        use crate::trace::{entry_body, load_trace, JournalWriter};
        let dir = TempDir::new("bodies-stale");
        let journal = JournalWriter::open(dir.path()).expect("journal");
        let store = BodyStore::new(dir.path()).expect("store");
        let mut sink = store.begin().expect("begin");
        sink.write(b"module example.com/m\n").expect("write");
        let stored = sink.finish().expect("finish");
        let mut ex = sample_exchange();
        if let Some(r) = ex.response.as_mut() {
            r.body.size = stored.size;
            r.body.sha256 = Some(stored.sha256.clone());
        }
        let bodies = EntryBodies {
            request: BodyContent::default(),
            response: BodyContent {
                text: None,
                ..stored.content(&store, None, None, false).expect("content")
            },
        };
        journal
            .append(&build_entry(&ex, None, &bodies, &BuildOptions::default()))
            .expect("append");
        drop(journal);
        // What `kill -9` in the middle of a large body leaves: a temp file of a pid
        // that is gone (above any pid_max), next to one of a live process.
        let bodies_dir = dir.path().join(BODIES_DIR);
        let dead = bodies_dir.join(".tmp-4194304999-7");
        fs::write(&dead, vec![0u8; 1 << 20]).expect("write");
        let live = bodies_dir.join(format!(".tmp-{}-999", std::process::id()));
        fs::write(&live, b"in progress").expect("write");

        // Reading ignores them: the trace loads and its body resolves.
        let t = load_trace(dir.path()).expect("load");
        assert!(t.problems.is_empty(), "{:?}", t.problems);
        let body = entry_body(&t, &t.entries[0].response.content).expect("body");
        assert_eq!(body, b"module example.com/m\n");
        assert!(dead.exists(), "reading removes nothing");

        // Opening for recording removes the dead writer's file only.
        let store = BodyStore::new(dir.path()).expect("reopen");
        assert_eq!(
            store.stale_removed(),
            Removed {
                files: 1,
                bytes: 1 << 20
            }
        );
        assert!(!dead.exists());
        assert!(live.exists());
        assert!(bodies_dir.join(&stored.sha256).exists());
    }

    #[test]
    fn text_detection() {
        assert!(looks_like_text(
            b"v1.0.0\nv1.1.0\n",
            Some("text/plain; charset=utf-8")
        ));
        assert!(looks_like_text(
            br#"{"Version":"v1.0.0"}"#,
            Some("application/json")
        ));
        assert!(looks_like_text("módulo €".as_bytes(), None));
        assert!(looks_like_text(b"", None));
        assert!(looks_like_text(
            b"module x\n",
            Some("application/octet-stream")
        ));
        // A multi-byte character cut by the head limit is still text.
        let cut = "ab€".as_bytes();
        assert!(looks_like_text(&cut[..cut.len() - 1], None));
        assert!(!looks_like_text(
            b"PK\x03\x04\x00\x00",
            Some("application/zip")
        ));
        assert!(!looks_like_text(b"plain", Some("application/zip")));
        assert!(!looks_like_text(b"\x1f\x8b\x08\x00", None));
        assert!(!looks_like_text(b"a\x00b", Some("text/plain")));
        assert!(!looks_like_text(b"\xff\xfe", Some("text/plain")));
        assert!(!looks_like_text(b"PNG", Some("IMAGE/png")));
    }

    #[test]
    fn stored_body_content_embeds_text_or_base64() {
        let dir = TempDir::new("bodies-content");
        let store = BodyStore::new(dir.path()).expect("store");
        let mut s = store.begin().expect("begin");
        s.write(b"v1.0.0\n").expect("write");
        let text = s.finish().expect("finish");
        let c = text
            .content(&store, Some("text/plain"), None, true)
            .expect("content");
        assert_eq!(c.text.as_deref(), Some("v1.0.0\n"));
        assert_eq!(c.base64, None);
        assert_eq!(c.file.as_deref(), text.file.as_deref());

        let data = pseudo_random(1000, 11);
        let mut s = store.begin().expect("begin");
        s.write(&data).expect("write");
        let bin = s.finish().expect("finish");
        let c = bin
            .content(&store, Some("application/zip"), None, false)
            .expect("content");
        assert_eq!((c.text.as_deref(), c.base64.as_deref()), (None, None));
        let c = bin
            .content(&store, Some("application/zip"), None, true)
            .expect("content");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(c.base64.expect("base64"))
            .expect("decode");
        assert_eq!(decoded, data);
    }

    #[test]
    fn encoded_bodies_are_described_decoded_and_stored_as_sent() {
        use std::io::Write as _;
        let plain = b"hello brotli\n".repeat(4);
        let gzip = {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            e.write_all(&plain).expect("gzip");
            e.finish().expect("gzip")
        };
        let zlib = {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
            e.write_all(&plain).expect("zlib");
            e.finish().expect("zlib")
        };
        let raw = {
            let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
            e.write_all(&plain).expect("deflate");
            e.finish().expect("deflate")
        };
        // From Python's brotli.compress(b"hello brotli\n" * 4).
        let br = hex::decode("1b3300f81da9539fbb702d568626a71540d8e8245bda5b18150d1c99e517")
            .expect("hex");
        let dir = TempDir::new("encoded");
        let store = BodyStore::new(dir.path()).expect("store");
        let want_text = String::from_utf8(plain.clone()).expect("utf8");
        for (coding, wire) in [
            ("gzip", &gzip),
            ("deflate", &zlib),
            ("deflate", &raw),
            ("br", &br),
        ] {
            let mut sink = store.begin().expect("begin");
            sink.write(wire).expect("write");
            let stored = sink.finish().expect("finish");
            let c = stored
                .content(&store, Some("text/plain"), Some(coding), false)
                .expect("content");
            assert_eq!(c.text.as_deref(), Some(want_text.as_str()), "{coding}");
            assert_eq!(c.decoded_size, Some(plain.len() as u64), "{coding}");
            assert_eq!(
                fs::read(store.root().join(stored.file.as_deref().expect("a file"))).expect("file"),
                *wire,
                "{coding}: the store keeps the wire bytes"
            );
            let embedded = stored
                .content(&store, Some("application/zip"), Some(coding), true)
                .expect("content");
            let b = base64::engine::general_purpose::STANDARD
                .decode(embedded.base64.unwrap_or_default())
                .expect("base64");
            assert_eq!(b, plain, "{coding}: --embed-bodies embeds the decoded body");
        }
        // A cut gzip stream does not decode: described as stored, nothing invented.
        let mut sink = store.begin().expect("begin");
        sink.write(gzip.get(..gzip.len() / 2).unwrap_or_default())
            .expect("write");
        let stored = sink.finish().expect("finish");
        let c = stored
            .content(&store, Some("text/plain"), Some("gzip"), false)
            .expect("content");
        assert_eq!((c.text, c.decoded_size), (None, None));
        // Identity and unknown codings keep today's wire view.
        let mut sink = store.begin().expect("begin");
        sink.write(&plain).expect("write");
        let stored = sink.finish().expect("finish");
        for ce in [None, Some("identity"), Some("zstd")] {
            let c = stored
                .content(&store, Some("text/plain"), ce, false)
                .expect("content");
            assert_eq!(
                (c.text.as_deref(), c.decoded_size),
                (Some(want_text.as_str()), None),
                "{ce:?}"
            );
        }
    }
}
