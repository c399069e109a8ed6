//! go's own module hash (golang.org/x/mod/sumdb/dirhash `Hash1`, the `h1:` in go.sum) and
//! the file-name rules go applies to a module zip before it hashes or extracts it.
//!
//! Pure: callers hash file contents themselves (streaming) and pass `(name, sha256)`.

use base64::Engine;
use sha2::{Digest, Sha256};

/// Largest total uncompressed size go extracts from a module zip (x/mod/zip `MaxZipFile`).
pub const MAX_ZIP_CONTENT: u64 = 500 << 20;

/// One file in a module zip, as its reader saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipFile {
    /// Full name inside the zip (`module@version/path`).
    pub name: String,
    /// Uncompressed size.
    pub size: u64,
    pub sha256: [u8; 32],
}

/// Why go would refuse a module zip (or `Hash1` refuses a name).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZipRejection {
    /// go: `zip for m@v has unexpected file NAME` (checked before hashing).
    #[error("file {name:?} is not under {prefix:?}; go stops with \"zip for {module_version} has unexpected file {name}\"", module_version = prefix.trim_end_matches('/'))]
    OutsideRoot { name: String, prefix: String },
    /// dirhash refuses names holding a newline (they would forge summary lines).
    #[error("file name {name:?} contains a newline, which go's hash refuses")]
    NewlineInName { name: String },
    /// x/mod/zip: two names equal under case folding would collide on extraction.
    #[error("files {first:?} and {second:?} differ only in case; go refuses to extract the zip")]
    CaseCollision { first: String, second: String },
    /// x/mod/zip: `..`, `.`, empty elements or a leading slash.
    #[error("file {name:?} has an unclean path; go refuses to extract the zip")]
    UncleanPath { name: String },
    #[error(
        "the files add up to {total} bytes uncompressed, over go's limit of {MAX_ZIP_CONTENT}"
    )]
    TooLarge { total: u64 },
    /// The archive itself is unreadable or a file fails its CRC (go: `zip: ...`).
    #[error("the zip is unreadable: {reason}")]
    Corrupt { reason: String },
}

/// `Hash1` over files given by name and the SHA-256 of their content: SHA-256 of the
/// sorted lines `hex(sha256)  name\n`, base64, prefixed `h1:`.
pub fn hash1<'a>(
    files: impl IntoIterator<Item = (&'a str, &'a [u8; 32])>,
) -> Result<String, ZipRejection> {
    let mut files: Vec<(&str, &[u8; 32])> = files.into_iter().collect();
    files.sort_by(|a, b| a.0.cmp(b.0));
    let mut summary = Sha256::new();
    for (name, digest) in files {
        if name.contains('\n') {
            return Err(ZipRejection::NewlineInName {
                name: name.to_string(),
            });
        }
        summary.update(hex::encode(digest).as_bytes());
        summary.update(b"  ");
        summary.update(name.as_bytes());
        summary.update(b"\n");
    }
    Ok(format!(
        "h1:{}",
        base64::engine::general_purpose::STANDARD.encode(summary.finalize())
    ))
}

/// The `/go.mod h1:` of a `.mod` file from the SHA-256 of its bytes.
pub fn mod_hash1(go_mod_sha256: &[u8; 32]) -> String {
    hash1([("go.mod", go_mod_sha256)]).unwrap_or_default()
}

/// `h1:` of in-memory files (tests and the test kit).
pub fn hash1_of_contents<'a>(
    files: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Result<String, ZipRejection> {
    let digests: Vec<(&str, [u8; 32])> = files
        .into_iter()
        .map(|(n, d)| (n, Sha256::digest(d).into()))
        .collect();
    hash1(digests.iter().map(|(n, d)| (*n, d)))
}

/// Checks a zip's file names and sizes as go does for `module@version` (`prefix` is
/// `module@version/`): every name under the prefix (go checks this before hashing), then
/// the extraction rules of x/mod/zip (clean paths, no case collisions, size limit).
pub fn check_zip_names<'a>(
    prefix: &str,
    files: impl IntoIterator<Item = (&'a str, u64)>,
) -> Result<(), ZipRejection> {
    let mut total: u64 = 0;
    let mut folded: std::collections::HashMap<String, &str> = std::collections::HashMap::new();
    for (name, size) in files {
        let Some(rest) = name.strip_prefix(prefix) else {
            return Err(ZipRejection::OutsideRoot {
                name: name.to_string(),
                prefix: prefix.to_string(),
            });
        };
        if rest.is_empty() {
            continue;
        }
        let rel = rest.strip_suffix('/').unwrap_or(rest);
        let unclean = rel.is_empty()
            || rel.starts_with('/')
            || rel
                .split('/')
                .any(|e| e.is_empty() || e == "." || e == "..");
        if unclean {
            return Err(ZipRejection::UncleanPath {
                name: name.to_string(),
            });
        }
        if let Some(first) = folded.insert(rel.to_lowercase(), name) {
            return Err(ZipRejection::CaseCollision {
                first: first.to_string(),
                second: name.to_string(),
            });
        }
        total = total.saturating_add(size);
        if total > MAX_ZIP_CONTENT {
            return Err(ZipRejection::TooLarge { total });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(data: &[u8]) -> [u8; 32] {
        Sha256::digest(data).into()
    }

    #[test]
    fn hash1_is_order_independent_and_matches_the_definition() {
        let a = sha(b"package a\n");
        let m = sha(b"module example.com/m\n");
        let one = hash1([("m@v1/go.mod", &m), ("m@v1/a.go", &a)]).unwrap();
        let two = hash1([("m@v1/a.go", &a), ("m@v1/go.mod", &m)]).unwrap();
        assert_eq!(one, two);
        let lines = format!(
            "{}  m@v1/a.go\n{}  m@v1/go.mod\n",
            hex::encode(a),
            hex::encode(m)
        );
        let want = base64::engine::general_purpose::STANDARD.encode(sha(lines.as_bytes()));
        assert_eq!(one, format!("h1:{want}"));
    }

    #[test]
    fn known_go_values() {
        // A .mod is hashed as the single file `go.mod` (go's GoModSum); the e2e tests
        // compare both forms with go's own output.
        assert_eq!(
            mod_hash1(&sha(b"module example.com/m\n")),
            hash1_of_contents([("go.mod", b"module example.com/m\n".as_slice())]).unwrap()
        );
        // The empty file list hashes the empty string.
        assert_eq!(
            hash1([]).unwrap(),
            "h1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }

    #[test]
    fn names_go_refuses() {
        let p = "example.com/m@v1.0.0/";
        // (files with sizes, the words the rejection must contain; None: accepted)
        type Case<'a> = (Vec<(&'a str, u64)>, Option<&'a str>);
        let table: Vec<Case<'_>> = vec![
            (vec![("example.com/m@v1.0.0/go.mod", 10)], None),
            (
                vec![("example.com/m@v1.0.0/", 0), ("example.com/m@v1.0.0/a/", 0)],
                None,
            ),
            (vec![("example.com/m@v1.0.1/go.mod", 10)], Some("not under")),
            (vec![("go.mod", 10)], Some("unexpected file go.mod")),
            (vec![("example.com/m@v1.0.0/../x", 1)], Some("unclean")),
            (vec![("example.com/m@v1.0.0/a//b", 1)], Some("unclean")),
            (
                vec![
                    ("example.com/m@v1.0.0/A.go", 1),
                    ("example.com/m@v1.0.0/a.go", 1),
                ],
                Some("differ only in case"),
            ),
            (
                vec![
                    ("example.com/m@v1.0.0/a", MAX_ZIP_CONTENT),
                    ("example.com/m@v1.0.0/b", 1),
                ],
                Some("over go's limit"),
            ),
        ];
        for (files, want) in table {
            let got = check_zip_names(p, files.clone());
            match want {
                None => assert_eq!(got, Ok(()), "{files:?}"),
                Some(text) => {
                    let msg = got.expect_err(text).to_string();
                    assert!(msg.contains(text), "{files:?}: {msg}");
                }
            }
        }
        assert!(matches!(
            hash1([("a\nb", &sha(b""))]),
            Err(ZipRejection::NewlineInName { .. })
        ));
    }
}
