//! PURE: how the wire bytes of one HAR body are rebuilt, by the rules its producer followed.
//!
//! HAR producers disagree on what `content.text` holds. HAR 1.2 and Chrome put the
//! *decoded* body there (after `Content-Encoding`), with `size` the decoded length;
//! mitmproxy also decodes, but writes the wire length as `size` and the difference as
//! `compression`, and stores a body that is not valid in its charset as Latin-1 text;
//! modscope keeps the exact wire bytes in `bodies/` and names them with `_file`/`_sha256`.
//! [`plan`] decides, per body, where the bytes come from and whether the recorded
//! `Content-Encoding` still describes them. It only looks at the entry's fields.

use base64::Engine as _;

/// The fields of one HAR body (response `content` or request `postData`) that decide how
/// it is rebuilt.
#[derive(Debug, Clone, Copy, Default)]
pub struct BodyFields<'a> {
    pub text: Option<&'a str>,
    /// HAR `encoding` (`"base64"` or absent).
    pub encoding: Option<&'a str>,
    /// `content.size` (for a request: `bodySize`); negative means unknown.
    pub size: i64,
    /// `content.compression`.
    pub compression: Option<i64>,
    /// The entry names stored wire bytes (`_file` or `_sha256`).
    pub stored: bool,
    /// The message's `Content-Encoding` header, if any.
    pub content_encoding: Option<&'a str>,
}

/// How `text` (without base64) was turned back into bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextRule {
    Base64,
    Utf8,
    /// One byte per character: mitmproxy's fallback for bodies that are not valid in
    /// the charset of their `Content-Type` (it decodes those as Latin-1).
    Latin1,
}

/// Where the body's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// No body.
    Empty,
    /// The stored wire bytes (`_file`, else `bodies/<_sha256>`), served as they are.
    Stored,
    /// Bytes rebuilt from `text`.
    Text { bytes: Vec<u8>, rule: TextRule },
    /// The entry declares a body but holds neither text nor a stored file.
    Missing,
}

/// The decision for one body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub source: Source,
    /// `text` is the decoded body while the headers still carry a `Content-Encoding`:
    /// the header must be dropped when the bytes are sent (and `Content-Length` set
    /// from the rebuilt bytes).
    pub drop_content_encoding: bool,
    /// The rebuilt length disagrees with every length the entry declares.
    pub size_mismatch: Option<SizeMismatch>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeMismatch {
    /// Bytes rebuilt from `text`.
    pub rebuilt: u64,
    /// `content.size` as recorded.
    pub declared: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("text is not valid base64: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("unsupported encoding {0:?} (only \"base64\" is defined)")]
    UnsupportedEncoding(String),
}

/// An HTTP content coding modscope can decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Gzip,
    /// zlib-wrapped deflate (RFC 9110), or raw deflate from servers that get it wrong.
    Deflate,
    Brotli,
}

impl Coding {
    /// The coding of a `Content-Encoding` value. `None` for identity, an empty value,
    /// a stack of codings or one modscope cannot decode.
    pub fn parse(header: &str) -> Option<Coding> {
        match header.trim().to_ascii_lowercase().as_str() {
            "gzip" | "x-gzip" => Some(Coding::Gzip),
            "deflate" => Some(Coding::Deflate),
            "br" => Some(Coding::Brotli),
            _ => None,
        }
    }
}

/// Whether a `Content-Encoding` value says the wire bytes are encoded at all.
pub(crate) fn is_encoded(header: Option<&str>) -> bool {
    header.is_some_and(|h| {
        let h = h.trim();
        !h.is_empty() && !h.eq_ignore_ascii_case("identity")
    })
}

/// Decides where the bytes of one body come from.
///
/// - Stored wire bytes win when `text` is absent or is the decoded view of an encoded
///   body (modscope's own traces): they are byte-exact and hash-checked.
/// - `text` with `encoding: "base64"` is decoded as base64.
/// - Other `text` is encoded as UTF-8, unless the declared length matches the Latin-1
///   length and not the UTF-8 length (mitmproxy's fallback for non-UTF-8 bodies).
/// - `text` under a `Content-Encoding` is the decoded body (HAR 1.2, Chrome, mitmproxy):
///   the header is dropped rather than the body re-compressed, because a re-compressed
///   stream would be bytes no server sent, while an identity body is what the producer
///   recorded and every client accepts it. Bytes that still start with the gzip magic
///   under `gzip` are taken as the wire bytes and keep the header.
/// - The rebuilt length is compared with `size`, and for decoded text also with
///   `size + compression` (mitmproxy writes the wire length as `size`).
pub fn plan(f: &BodyFields<'_>) -> Result<Plan, ContentError> {
    let encoded = is_encoded(f.content_encoding);
    let Some(text) = f.text else {
        let source = if f.stored {
            Source::Stored
        } else if f.size <= 0 {
            Source::Empty
        } else {
            Source::Missing
        };
        return Ok(Plan::new(source));
    };
    if f.stored && encoded {
        return Ok(Plan::new(Source::Stored));
    }
    let mut declared = vec![f.size];
    if encoded {
        if let Some(c) = f.compression.filter(|c| *c > 0) {
            declared.push(f.size.saturating_add(c));
        }
    }
    let matches = |n: usize| declared.iter().any(|&d| d >= 0 && d as u64 == n as u64);
    let (bytes, rule) = match f.encoding {
        Some(enc) if enc.eq_ignore_ascii_case("base64") => {
            // Some tools wrap base64 at 76 columns.
            let compact: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
            let bytes = base64::engine::general_purpose::STANDARD.decode(compact)?;
            (bytes, TextRule::Base64)
        }
        Some(enc) => return Err(ContentError::UnsupportedEncoding(enc.to_string())),
        None => {
            let latin1 = latin1_bytes(text);
            match latin1 {
                Some(l) if !matches(text.len()) && matches(l.len()) => (l, TextRule::Latin1),
                _ => (text.as_bytes().to_vec(), TextRule::Utf8),
            }
        }
    };
    let wire_gzip = f
        .content_encoding
        .and_then(Coding::parse)
        .is_some_and(|c| c == Coding::Gzip)
        && bytes.starts_with(&[0x1f, 0x8b]);
    let drop_content_encoding = encoded && !wire_gzip;
    let size_mismatch = (f.size >= 0 && !matches(bytes.len())).then_some(SizeMismatch {
        rebuilt: bytes.len() as u64,
        declared: f.size,
    });
    Ok(Plan {
        source: Source::Text { bytes, rule },
        drop_content_encoding,
        size_mismatch,
    })
}

/// Whether plain `text` (no base64) stands for its own UTF-8 bytes on the wire: no
/// `Content-Encoding`, and its UTF-8 length is the declared size (or no size is known).
/// Cheap (no copy), for the loader that moves big bodies out of memory: any other text
/// is left to [`plan`].
pub fn text_is_wire_utf8(text: &str, size: i64, content_encoding: Option<&str>) -> bool {
    !is_encoded(content_encoding) && (size < 0 || size as u64 == text.len() as u64)
}

impl Plan {
    fn new(source: Source) -> Plan {
        Plan {
            source,
            drop_content_encoding: false,
            size_mismatch: None,
        }
    }
}

/// One byte per character, when every character fits in one.
fn latin1_bytes(text: &str) -> Option<Vec<u8>> {
    text.chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(text: Option<&'static str>, size: i64) -> BodyFields<'static> {
        BodyFields {
            text,
            size,
            ..BodyFields::default()
        }
    }

    fn text_of(p: &Plan) -> (&[u8], TextRule) {
        match &p.source {
            Source::Text { bytes, rule } => (bytes, *rule),
            other => panic!("expected text, got {other:?}"),
        }
    }

    #[test]
    fn sources_without_text() {
        let table: [(bool, i64, Source); 5] = [
            (true, 10, Source::Stored),
            (true, 0, Source::Stored),
            (false, 0, Source::Empty),
            (false, -1, Source::Empty),
            (false, 12, Source::Missing),
        ];
        for (stored, size, want) in table {
            let p = plan(&BodyFields {
                stored,
                size,
                ..BodyFields::default()
            })
            .expect("plan");
            assert_eq!(p.source, want, "stored={stored} size={size}");
            assert!(!p.drop_content_encoding && p.size_mismatch.is_none());
        }
    }

    #[test]
    fn charset_rule_by_declared_length() {
        // "é" is 2 bytes in UTF-8 and 1 in Latin-1; "€" has no Latin-1 form.
        let table: [(&'static str, i64, &[u8], TextRule, bool); 6] = [
            ("plain", 5, b"plain", TextRule::Utf8, false),
            (
                "caf\u{e9}",
                5,
                "caf\u{e9}".as_bytes(),
                TextRule::Utf8,
                false,
            ),
            ("caf\u{e9}", 4, b"caf\xe9", TextRule::Latin1, false),
            // Neither length matches: UTF-8, and the mismatch is reported.
            ("caf\u{e9}", 9, "caf\u{e9}".as_bytes(), TextRule::Utf8, true),
            ("\u{20ac}", 1, "\u{20ac}".as_bytes(), TextRule::Utf8, true),
            // A zip header as mitmproxy writes it: PK\x03\x04 then a high byte.
            (
                "PK\u{3}\u{4}\u{ff}",
                5,
                b"PK\x03\x04\xff",
                TextRule::Latin1,
                false,
            ),
        ];
        for (text, size, want, rule, mismatch) in table {
            let p = plan(&fields(Some(text), size)).expect("plan");
            assert_eq!(text_of(&p), (want, rule), "{text:?} size {size}");
            assert_eq!(p.size_mismatch.is_some(), mismatch, "{text:?} size {size}");
            assert!(!p.drop_content_encoding);
        }
    }

    #[test]
    fn base64_and_bad_encodings() {
        let p = plan(&BodyFields {
            encoding: Some("base64"),
            ..fields(Some("AAEC\n/w=="), 4)
        })
        .expect("plan");
        assert_eq!(text_of(&p), (&[0u8, 1, 2, 255][..], TextRule::Base64));
        assert!(p.size_mismatch.is_none());
        assert!(matches!(
            plan(&BodyFields {
                encoding: Some("base64"),
                ..fields(Some("!!"), 1)
            }),
            Err(ContentError::Base64(_))
        ));
        assert!(matches!(
            plan(&BodyFields {
                encoding: Some("quoted-printable"),
                ..fields(Some("x"), 1)
            }),
            Err(ContentError::UnsupportedEncoding(_))
        ));
    }

    #[test]
    fn decoded_text_under_content_encoding() {
        struct Case {
            text: &'static str,
            encoding: Option<&'static str>,
            size: i64,
            compression: Option<i64>,
            stored: bool,
            ce: Option<&'static str>,
            want_stored: bool,
            drop: bool,
            mismatch: bool,
        }
        let table = [
            // Chrome / HAR 1.2: size is the decoded length.
            Case {
                text: "hello",
                encoding: None,
                size: 5,
                compression: Some(-20),
                stored: false,
                ce: Some("gzip"),
                want_stored: false,
                drop: true,
                mismatch: false,
            },
            // mitmproxy: size is the wire length, compression the bytes saved.
            Case {
                text: "hello hello hello",
                encoding: None,
                size: 12,
                compression: Some(5),
                stored: false,
                ce: Some("br"),
                want_stored: false,
                drop: true,
                mismatch: false,
            },
            // modscope: decoded text, the wire bytes are stored.
            Case {
                text: "hello",
                encoding: None,
                size: 5,
                compression: Some(-20),
                stored: true,
                ce: Some("gzip"),
                want_stored: true,
                drop: false,
                mismatch: false,
            },
            // Identity is no encoding.
            Case {
                text: "hello",
                encoding: None,
                size: 5,
                compression: None,
                stored: false,
                ce: Some("identity"),
                want_stored: false,
                drop: false,
                mismatch: false,
            },
            // Base64 of the gzip wire bytes keeps the header.
            Case {
                text: "H4sIAA==",
                encoding: Some("base64"),
                size: 4,
                compression: None,
                stored: false,
                ce: Some("gzip"),
                want_stored: false,
                drop: false,
                mismatch: false,
            },
            // Decoded text whose length fits nothing declared.
            Case {
                text: "hello",
                encoding: None,
                size: 9,
                compression: Some(1),
                stored: false,
                ce: Some("gzip"),
                want_stored: false,
                drop: true,
                mismatch: true,
            },
        ];
        for (i, c) in table.iter().enumerate() {
            let p = plan(&BodyFields {
                text: Some(c.text),
                encoding: c.encoding,
                size: c.size,
                compression: c.compression,
                stored: c.stored,
                content_encoding: c.ce,
            })
            .expect("plan");
            assert_eq!(p.source == Source::Stored, c.want_stored, "case {i}");
            assert_eq!(p.drop_content_encoding, c.drop, "case {i}");
            assert_eq!(p.size_mismatch.is_some(), c.mismatch, "case {i}");
        }
    }

    #[test]
    fn wire_utf8_text_is_recognised_without_copying() {
        assert!(text_is_wire_utf8("abc", 3, None));
        assert!(text_is_wire_utf8("abc", -1, Some("identity")));
        assert!(!text_is_wire_utf8("caf\u{e9}", 4, None), "Latin-1 length");
        assert!(!text_is_wire_utf8("abc", 3, Some("gzip")), "decoded text");
    }

    #[test]
    fn codings() {
        let table = [
            ("gzip", Some(Coding::Gzip)),
            (" X-GZIP ", Some(Coding::Gzip)),
            ("deflate", Some(Coding::Deflate)),
            ("br", Some(Coding::Brotli)),
            ("identity", None),
            ("gzip, br", None),
            ("zstd", None),
        ];
        for (h, want) in table {
            assert_eq!(Coding::parse(h), want, "{h}");
        }
    }
}
