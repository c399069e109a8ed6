//! Case-escaping of module paths and versions, as in golang.org/x/mod/module.
//!
//! Only the escaping layer is reproduced (what the proxy protocol puts in URLs);
//! the full `module.CheckPath` grammar is not, because modscope reports what go
//! asked for rather than judging whether go should have asked.

use thiserror::Error;

/// Why a string cannot be escaped or unescaped.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EscapeError {
    #[error("empty string")]
    Empty,
    #[error("non-ASCII character {ch:?} at byte {at}")]
    NonAscii { at: usize, ch: char },
    #[error("literal '!' at byte {at} has no escaped form")]
    LiteralBang { at: usize },
    #[error("'!' at byte {at} is not followed by a lower-case letter")]
    BangNotLower { at: usize },
    #[error("raw upper-case letter {ch:?} at byte {at} (must be written '!' + lower case)")]
    UpperCase { at: usize, ch: char },
    #[error("'/' at byte {at} is not allowed in a version")]
    SlashInVersion { at: usize },
    #[error("character {ch:?} at byte {at} is not allowed here")]
    InvalidChar { at: usize, ch: char },
}

/// Escapes a module path for use in a proxy URL (`github.com/Azure/x` -> `github.com/!azure/x`).
pub fn escape_path(path: &str) -> Result<String, EscapeError> {
    let escaped = escape_string(path)?;
    check_chars(path, path_char_ok)?;
    Ok(escaped)
}

/// Escapes a version for use in a proxy URL.
pub fn escape_version(version: &str) -> Result<String, EscapeError> {
    reject_slash(version)?;
    let escaped = escape_string(version)?;
    check_chars(version, version_char_ok)?;
    Ok(escaped)
}

/// Reverses [`escape_path`]; fails on anything go itself would never have produced.
pub fn unescape_path(escaped: &str) -> Result<String, EscapeError> {
    let path = unescape_string(escaped)?;
    check_chars(escaped, |c| c == '!' || path_char_ok(c))?;
    Ok(path)
}

/// Reverses [`escape_version`].
pub fn unescape_version(escaped: &str) -> Result<String, EscapeError> {
    reject_slash(escaped)?;
    let version = unescape_string(escaped)?;
    check_chars(escaped, |c| c == '!' || version_char_ok(c))?;
    Ok(version)
}

// Import-path characters (module.pathOK) plus the separator.
fn path_char_ok(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.' | '_' | '~' | '/')
}

// File-name characters (module.fileNameOK, ASCII part): versions are file names.
fn version_char_ok(c: char) -> bool {
    c.is_ascii_alphanumeric() || "#$%&()+,-.=@[]^_{}~ ".contains(c)
}

// Character classes are checked after the escape rules so that the more specific
// escape error wins (a raw capital, a stray '!').
fn check_chars(s: &str, ok: impl Fn(char) -> bool) -> Result<(), EscapeError> {
    match s.char_indices().find(|(_, c)| !ok(*c)) {
        Some((at, ch)) => Err(EscapeError::InvalidChar { at, ch }),
        None => Ok(()),
    }
}

/// The directory every file of a module zip must live under.
pub fn module_zip_root(module: &str, version: &str) -> String {
    format!("{module}@{version}/")
}

// A version is a single file-name element in the proxy protocol; a slash would
// silently change which URL is meant.
fn reject_slash(s: &str) -> Result<(), EscapeError> {
    match s.find('/') {
        Some(at) => Err(EscapeError::SlashInVersion { at }),
        None => Ok(()),
    }
}

fn escape_string(s: &str) -> Result<String, EscapeError> {
    if s.is_empty() {
        return Err(EscapeError::Empty);
    }
    let mut out = String::with_capacity(s.len() + 4);
    for (at, ch) in s.char_indices() {
        if !ch.is_ascii() {
            return Err(EscapeError::NonAscii { at, ch });
        }
        // `!` is the escape marker; module paths never allow it, so there is no way to write it.
        if ch == '!' {
            return Err(EscapeError::LiteralBang { at });
        }
        if ch.is_ascii_uppercase() {
            out.push('!');
            out.push(ch.to_ascii_lowercase());
        } else {
            out.push(ch);
        }
    }
    Ok(out)
}

fn unescape_string(escaped: &str) -> Result<String, EscapeError> {
    if escaped.is_empty() {
        return Err(EscapeError::Empty);
    }
    let mut out = String::with_capacity(escaped.len());
    let mut bang_at: Option<usize> = None;
    for (at, ch) in escaped.char_indices() {
        if !ch.is_ascii() {
            return Err(EscapeError::NonAscii { at, ch });
        }
        if let Some(bang) = bang_at.take() {
            if !ch.is_ascii_lowercase() {
                return Err(EscapeError::BangNotLower { at: bang });
            }
            out.push(ch.to_ascii_uppercase());
            continue;
        }
        if ch == '!' {
            bang_at = Some(at);
            continue;
        }
        // A raw capital means the client skipped escaping: two casings of one path
        // would then name different files on a case-insensitive proxy.
        if ch.is_ascii_uppercase() {
            return Err(EscapeError::UpperCase { at, ch });
        }
        out.push(ch);
    }
    match bang_at {
        Some(at) => Err(EscapeError::BangNotLower { at }),
        None => Ok(out),
    }
}
