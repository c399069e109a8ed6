//! Reads a module zip the way go does, streaming: the central directory for the names,
//! then each file inflated and SHA-256-hashed, for go's `h1:` and for diffing two zips.
//!
//! A small reader of its own (stored and deflate entries, zip64) instead of a general zip
//! crate: go's module zips need nothing more, go's own name rules are applied here anyway,
//! and memory stays at one buffer whatever the zip's size.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::gomod::dirhash::{self, ZipFile, ZipRejection};

/// The files of a module zip, checked against go's rules for `module@version/`.
pub fn read_module_zip<R: Read + Seek>(
    mut r: R,
    prefix: &str,
) -> Result<Vec<ZipFile>, ZipRejection> {
    let entries = central_directory(&mut r).map_err(corrupt)?;
    dirhash::check_zip_names(prefix, entries.iter().map(|e| (e.name.as_str(), e.size)))?;
    entries.into_iter().map(|e| hash_entry(&mut r, e)).collect()
}

fn corrupt(e: impl std::fmt::Display) -> ZipRejection {
    ZipRejection::Corrupt {
        reason: e.to_string(),
    }
}

struct CdEntry {
    name: String,
    method: u16,
    flags: u16,
    crc: u32,
    compressed: u64,
    size: u64,
    offset: u64,
}

const EOCD_SIG: u32 = 0x0605_4b50;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;
const CD_SIG: u32 = 0x0201_4b50;
const LOCAL_SIG: u32 = 0x0403_4b50;

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}
fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}
fn u64_at(b: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]))
}

fn bad(msg: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.into())
}

fn central_directory<R: Read + Seek>(r: &mut R) -> std::io::Result<Vec<CdEntry>> {
    let len = r.seek(SeekFrom::End(0))?;
    // The end record is 22 bytes plus a comment of at most 64 KiB.
    let tail_len = len.min(22 + 65_535);
    r.seek(SeekFrom::Start(len - tail_len))?;
    let mut tail = vec![0; tail_len as usize];
    r.read_exact(&mut tail)?;
    let at = (0..tail.len().saturating_sub(21))
        .rev()
        .find(|&i| u32_at(&tail, i) == EOCD_SIG)
        .ok_or_else(|| bad("no end of central directory record (not a zip file)"))?;
    let eocd_pos = len - tail_len + at as u64;
    let mut count = u64::from(u16_at(&tail, at + 10));
    let mut cd_size = u64::from(u32_at(&tail, at + 12));
    let mut cd_offset = u64::from(u32_at(&tail, at + 16));
    if count == 0xFFFF || cd_size == 0xFFFF_FFFF || cd_offset == 0xFFFF_FFFF {
        let locator_pos = eocd_pos
            .checked_sub(20)
            .ok_or_else(|| bad("zip64 locator missing"))?;
        r.seek(SeekFrom::Start(locator_pos))?;
        let mut loc = [0; 20];
        r.read_exact(&mut loc)?;
        if u32_at(&loc, 0) != ZIP64_LOCATOR_SIG {
            return Err(bad("zip64 locator missing"));
        }
        r.seek(SeekFrom::Start(u64_at(&loc, 8)))?;
        let mut rec = [0; 56];
        r.read_exact(&mut rec)?;
        if u32_at(&rec, 0) != ZIP64_EOCD_SIG {
            return Err(bad("zip64 end record missing"));
        }
        count = u64_at(&rec, 32);
        cd_size = u64_at(&rec, 40);
        cd_offset = u64_at(&rec, 48);
    }
    if cd_offset.saturating_add(cd_size) > len {
        return Err(bad("central directory lies beyond the end of the file"));
    }
    r.seek(SeekFrom::Start(cd_offset))?;
    let mut cd = std::io::BufReader::new(r.take(cd_size));
    let mut entries = Vec::new();
    for _ in 0..count {
        let mut fixed = [0; 46];
        cd.read_exact(&mut fixed)
            .map_err(|_| bad("central directory shorter than its entry count"))?;
        if u32_at(&fixed, 0) != CD_SIG {
            return Err(bad("bad central directory entry signature"));
        }
        let (name_len, extra_len, comment_len) = (
            u16_at(&fixed, 28) as usize,
            u16_at(&fixed, 30) as usize,
            u16_at(&fixed, 32) as usize,
        );
        let mut var = vec![0; name_len + extra_len + comment_len];
        cd.read_exact(&mut var)?;
        let name = String::from_utf8(var[..name_len].to_vec())
            .map_err(|_| bad("a file name is not UTF-8"))?;
        let mut e = CdEntry {
            name,
            flags: u16_at(&fixed, 8),
            method: u16_at(&fixed, 10),
            crc: u32_at(&fixed, 16),
            compressed: u64::from(u32_at(&fixed, 20)),
            size: u64::from(u32_at(&fixed, 24)),
            offset: u64::from(u32_at(&fixed, 42)),
        };
        apply_zip64_extra(&mut e, &var[name_len..name_len + extra_len]);
        entries.push(e);
    }
    Ok(entries)
}

/// Zip64 extra field (id 1): 64-bit values for the fields saturated in the entry, in order.
fn apply_zip64_extra(e: &mut CdEntry, mut extra: &[u8]) {
    while extra.len() >= 4 {
        let (id, size) = (u16_at(extra, 0), u16_at(extra, 2) as usize);
        let Some(data) = extra.get(4..4 + size) else {
            return;
        };
        if id == 1 {
            let mut fields = data.chunks_exact(8).map(|c| u64_at(c, 0));
            for field in [&mut e.size, &mut e.compressed, &mut e.offset] {
                if *field == 0xFFFF_FFFF {
                    if let Some(v) = fields.next() {
                        *field = v;
                    }
                }
            }
        }
        extra = &extra[4 + size..];
    }
}

fn hash_entry<R: Read + Seek>(r: &mut R, e: CdEntry) -> Result<ZipFile, ZipRejection> {
    let fail = |msg: String| ZipRejection::Corrupt {
        reason: format!("{}: {msg}", e.name),
    };
    if e.flags & 1 != 0 {
        return Err(fail("encrypted".into()));
    }
    r.seek(SeekFrom::Start(e.offset))
        .map_err(|x| fail(x.to_string()))?;
    let mut local = [0; 30];
    r.read_exact(&mut local).map_err(|x| fail(x.to_string()))?;
    if u32_at(&local, 0) != LOCAL_SIG {
        return Err(fail("bad local header signature".into()));
    }
    let skip = u64::from(u16_at(&local, 26)) + u64::from(u16_at(&local, 28));
    r.seek(SeekFrom::Current(skip as i64))
        .map_err(|x| fail(x.to_string()))?;
    let raw = (&mut *r).take(e.compressed);
    // One byte past the declared size is enough to notice a lie without inflating a bomb.
    let mut content: Box<dyn Read + '_> = match e.method {
        0 => Box::new(raw),
        8 => Box::new(flate2::read::DeflateDecoder::new(raw)),
        m => {
            return Err(fail(format!(
                "compression method {m} (go reads only stored and deflate)"
            )))
        }
    };
    let mut content = (&mut content).take(e.size.saturating_add(1));
    let mut sha = Sha256::new();
    let mut crc = crc32fast::Hasher::new();
    let mut n: u64 = 0;
    let mut buf = vec![0; 64 * 1024];
    loop {
        let got = content.read(&mut buf).map_err(|x| fail(x.to_string()))?;
        if got == 0 {
            break;
        }
        sha.update(&buf[..got]);
        crc.update(&buf[..got]);
        n += got as u64;
    }
    if n != e.size {
        return Err(fail(format!("{n} bytes, the directory says {}", e.size)));
    }
    if crc.finalize() != e.crc {
        return Err(fail("checksum error (CRC-32)".into()));
    }
    Ok(ZipFile {
        name: e.name,
        size: e.size,
        sha256: sha.finalize().into(),
    })
}

/// Which body of a module version a `.zip`/`.mod` response held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleFile {
    Zip,
    Mod,
}

/// Whether go's HTTP client would have gzip-decoded this body (it undoes only gzip).
fn is_gzip(content_encoding: Option<&str>) -> Result<bool, ZipRejection> {
    match content_encoding.map(|e| e.trim().to_ascii_lowercase()) {
        None => Ok(false),
        Some(e) if e.is_empty() || e == "identity" => Ok(false),
        Some(e) if e == "gzip" || e == "x-gzip" => Ok(true),
        Some(other) => Err(corrupt(format!(
            "Content-Encoding {other}, which go's HTTP client does not decode"
        ))),
    }
}

/// Where the wire bytes of a recorded body are: its file in the trace, or in memory (a
/// small body embedded in its entry).
#[derive(Debug, Clone, Copy)]
pub enum RecordedBody<'a> {
    File(&'a Path),
    Bytes(&'a [u8]),
}

impl RecordedBody<'_> {
    fn reader(&self) -> Result<Box<dyn Read + '_>, ZipRejection> {
        Ok(match self {
            RecordedBody::File(path) => Box::new(std::io::BufReader::new(
                std::fs::File::open(path).map_err(corrupt)?,
            )),
            RecordedBody::Bytes(bytes) => Box::new(*bytes),
        })
    }
}

/// The files of a recorded module zip body (`content_encoding` as in
/// [`body_file_h1`]); a gzip transfer encoding is inflated into a temporary file beside
/// a body file (a zip needs seeking), or into memory for a body that is in memory.
pub fn recorded_zip_files(
    body: RecordedBody<'_>,
    content_encoding: Option<&str>,
    module: &str,
    version: &str,
) -> Result<Vec<ZipFile>, ZipRejection> {
    let prefix = crate::gomod::module_zip_root(module, version);
    let read = |p: &Path| {
        let file = std::fs::File::open(p).map_err(corrupt)?;
        read_module_zip(std::io::BufReader::new(file), &prefix)
    };
    let gzip = is_gzip(content_encoding)?;
    let path = match body {
        RecordedBody::Bytes(bytes) if gzip => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(bytes)
                .read_to_end(&mut out)
                .map_err(corrupt)?;
            return read_module_zip(std::io::Cursor::new(out), &prefix);
        }
        RecordedBody::Bytes(bytes) => return read_module_zip(std::io::Cursor::new(bytes), &prefix),
        RecordedBody::File(path) if !gzip => return read(path),
        RecordedBody::File(path) => path,
    };
    let tmp = path.with_file_name(format!(
        ".tmp-h1-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("body")
    ));
    let result = (|| {
        let mut out = std::fs::File::create(&tmp).map_err(corrupt)?;
        let raw = std::fs::File::open(path).map_err(corrupt)?;
        let mut gz = flate2::read::GzDecoder::new(std::io::BufReader::new(raw));
        std::io::copy(&mut gz, &mut out).map_err(corrupt)?;
        read(&tmp)
    })();
    let _ = std::fs::remove_file(&tmp);
    result
}

/// go's `h1:` of a recorded `.zip` or `.mod` body. `content_encoding` is the
/// response's `Content-Encoding`: the recorder stores bytes as they crossed the wire,
/// while go hashes them after its transport removed a gzip encoding.
pub fn body_file_h1(
    body: RecordedBody<'_>,
    content_encoding: Option<&str>,
    file: ModuleFile,
    module: &str,
    version: &str,
) -> Result<String, ZipRejection> {
    match file {
        ModuleFile::Mod => {
            let raw = body.reader()?;
            let mut reader: Box<dyn Read> = if is_gzip(content_encoding)? {
                Box::new(flate2::read::GzDecoder::new(raw))
            } else {
                raw
            };
            let mut sha = Sha256::new();
            std::io::copy(&mut reader, &mut sha).map_err(corrupt)?;
            Ok(dirhash::mod_hash1(&sha.finalize().into()))
        }
        ModuleFile::Zip => {
            let files = recorded_zip_files(body, content_encoding, module, version)?;
            dirhash::hash1(files.iter().map(|f| (f.name.as_str(), &f.sha256)))
        }
    }
}

/// Sets `go.h1` of a complete 200 `.zip`/`.mod` body (or, for a zip go would refuse,
/// `go.zip_rejected`); other requests are left alone. The one place the recorder and
/// `verify` (for traces without `_go.h1`) hash recorded bodies.
pub fn hash_recorded_body(
    go: &mut crate::gomod::GoRequest,
    content_encoding: Option<&str>,
    body: RecordedBody<'_>,
) {
    let which = match go.file {
        Some(crate::gomod::ProxyFile::Zip) => ModuleFile::Zip,
        Some(crate::gomod::ProxyFile::Mod) => ModuleFile::Mod,
        _ => return,
    };
    let (Some(module), Some(version)) = (go.module.as_deref(), go.version.as_deref()) else {
        return;
    };
    match body_file_h1(body, content_encoding, which, module, version) {
        Ok(h1) => go.h1 = Some(h1),
        Err(e) if which == ModuleFile::Zip => go.zip_rejected = Some(e.to_string()),
        Err(e) => tracing::warn!("no h1 for {module}@{version}.mod: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::modules::{write_stored_zip, write_zip};
    use std::io::Cursor;

    const P: &str = "example.com/m@v1.0.0/";

    #[test]
    fn stored_and_deflated_zips_hash_like_their_contents() {
        let files: [(&str, &[u8]); 2] = [
            ("example.com/m@v1.0.0/go.mod", b"module example.com/m\n"),
            ("example.com/m@v1.0.0/m.go", &[b'x'; 10_000]),
        ];
        let want = dirhash::hash1_of_contents(files).unwrap();
        let owned = files.map(|(n, d)| (n.to_string(), d));
        for zip in [write_zip(&owned, false), write_zip(&owned, true)] {
            let got = read_module_zip(Cursor::new(&zip), P).unwrap();
            assert_eq!(got.len(), 2);
            assert_eq!(got[1].size, 10_000);
            let h1 = dirhash::hash1(got.iter().map(|f| (f.name.as_str(), &f.sha256))).unwrap();
            assert_eq!(h1, want);
        }
    }

    #[test]
    fn zips_go_rejects_are_reported_not_hashed() {
        let outside = write_stored_zip(&[("other@v1.0.0/go.mod".to_string(), b"x".as_slice())]);
        assert!(matches!(
            read_module_zip(Cursor::new(&outside), P),
            Err(ZipRejection::OutsideRoot { .. })
        ));
        let mut flipped = write_zip(
            &[(
                "example.com/m@v1.0.0/a".to_string(),
                b"hello hello hello".as_slice(),
            )],
            true,
        );
        flipped[30 + 22 + 2] ^= 0xff; // inside the deflated data, past the local header
        assert!(matches!(
            read_module_zip(Cursor::new(&flipped), P),
            Err(ZipRejection::Corrupt { .. })
        ));
        let cut =
            &write_stored_zip(&[("example.com/m@v1.0.0/a".to_string(), b"abc".as_slice())])[..20];
        let err = read_module_zip(Cursor::new(cut), P).unwrap_err();
        assert!(err.to_string().contains("not a zip"), "{err}");
    }

    #[test]
    fn recorded_bodies_are_hashed_as_go_sees_them_after_gzip() {
        use std::io::Write;
        let dir = std::env::temp_dir().join(format!("modscope-gozip-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let gzip = |data: &[u8]| {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(data).unwrap();
            enc.finish().unwrap()
        };
        let go_mod = b"module example.com/m\n".as_slice();
        let files = [("example.com/m@v1.0.0/go.mod".to_string(), go_mod)];
        let zip = write_zip(&files, true);
        let want_zip = dirhash::hash1_of_contents([(files[0].0.as_str(), go_mod)]).unwrap();
        let want_mod = dirhash::hash1_of_contents([("go.mod", go_mod)]).unwrap();
        // (stored body, Content-Encoding, file, the h1 or words of the error)
        type Case<'a> = (
            &'a [u8],
            Option<&'a str>,
            ModuleFile,
            Result<&'a str, &'a str>,
        );
        let cases: [Case<'_>; 5] = [
            (go_mod, None, ModuleFile::Mod, Ok(&want_mod)),
            (&gzip(go_mod), Some("gzip"), ModuleFile::Mod, Ok(&want_mod)),
            (&zip, Some("identity"), ModuleFile::Zip, Ok(&want_zip)),
            (&gzip(&zip), Some("gzip"), ModuleFile::Zip, Ok(&want_zip)),
            (
                &zip,
                Some("br"),
                ModuleFile::Zip,
                Err("Content-Encoding br"),
            ),
        ];
        for (i, (body, encoding, which, want)) in cases.into_iter().enumerate() {
            let path = dir.join(format!("body-{i}"));
            std::fs::write(&path, body).unwrap();
            // The same answer from a body file and from a body embedded in its entry.
            for source in [RecordedBody::File(&path), RecordedBody::Bytes(body)] {
                let got = body_file_h1(source, encoding, which, "example.com/m", "v1.0.0");
                match want {
                    Ok(h) => assert_eq!(got.as_deref(), Ok(h), "case {i} {source:?}"),
                    Err(text) => assert!(
                        got.unwrap_err().to_string().contains(text),
                        "case {i} {source:?}"
                    ),
                }
            }
        }
        // The inflated copy of a gzip-encoded zip does not stay behind.
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-h1-"))
            .collect();
        assert!(left.is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn damaged_zips_are_errors_never_panics() {
        let files = [
            (
                "example.com/m@v1.0.0/go.mod".to_string(),
                b"module example.com/m\n".as_slice(),
            ),
            (
                "example.com/m@v1.0.0/a.go".to_string(),
                b"package m\n\nfunc A() {}\n".as_slice(),
            ),
        ];
        for deflate in [false, true] {
            let zip = write_zip(&files, deflate);
            // Every single-byte change and every truncation: an answer, not a panic.
            for i in 0..zip.len() {
                for flip in [0x01u8, 0x80, 0xff] {
                    let mut bad = zip.clone();
                    bad[i] ^= flip;
                    let _ = read_module_zip(Cursor::new(&bad), P);
                }
                let _ = read_module_zip(Cursor::new(&zip[..i]), P);
            }
        }
    }
}
