//! The go command's own reading of GOPROXY and of GOPRIVATE-style glob lists.

use serde::{Deserialize, Serialize};

/// What go uses when GOPROXY is unset or empty.
pub const DEFAULT_GOPROXY: &str = "https://proxy.golang.org,direct";

/// One element of the GOPROXY list.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "type", content = "url")]
pub enum ProxyTarget {
    /// A proxy base URL, without trailing slash.
    Url(String),
    /// Fetch straight from the version control system.
    Direct,
    /// Module downloads are disabled.
    Off,
}

/// When go moves past an entry to the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fallback {
    /// Followed by ',' (or last): only a 404 or 410 sends go to the next entry.
    OnNotFound,
    /// Followed by '|': any error sends go to the next entry.
    OnAnyError,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProxyEntry {
    pub target: ProxyTarget,
    pub fallback: Fallback,
}

impl ProxyEntry {
    /// The entry as a user would write it back into GOPROXY.
    pub fn display(&self) -> &str {
        match &self.target {
            ProxyTarget::Url(u) => u,
            ProxyTarget::Direct => "direct",
            ProxyTarget::Off => "off",
        }
    }
}

/// Parses GOPROXY the way cmd/go's `proxyList` does.
///
/// An empty value means the default list. A value that holds no entries (",", "  ")
/// yields an empty list: go refuses to run with it ("GOPROXY list is not the empty
/// string, but contains no entries"), so callers can report that.
pub fn parse_goproxy(value: &str) -> Vec<ProxyEntry> {
    let value = if value.is_empty() {
        DEFAULT_GOPROXY
    } else {
        value
    };
    let mut out = Vec::new();
    let mut rest = value;
    while !rest.is_empty() {
        let (raw, fallback) = match rest.find([',', '|']) {
            Some(i) => {
                let sep = rest.as_bytes().get(i).copied();
                let raw = &rest[..i];
                rest = &rest[i + 1..];
                let fb = if sep == Some(b'|') {
                    Fallback::OnAnyError
                } else {
                    Fallback::OnNotFound
                };
                (raw, fb)
            }
            None => {
                let raw = rest;
                rest = "";
                (raw, Fallback::OnNotFound)
            }
        };
        let raw = raw.trim();
        if raw.is_empty() {
            continue;
        }
        // go stops reading at direct/off, reserving later entries for future meaning.
        if raw == "off" {
            out.push(ProxyEntry {
                target: ProxyTarget::Off,
                fallback,
            });
            break;
        }
        if raw == "direct" {
            out.push(ProxyEntry {
                target: ProxyTarget::Direct,
                fallback,
            });
            break;
        }
        out.push(ProxyEntry {
            target: ProxyTarget::Url(normalize_proxy_url(raw)),
            fallback,
        });
    }
    out
}

// go adds https:// to host-looking words, keeps full URLs and absolute paths, and
// trims trailing slashes from the URL path.
fn normalize_proxy_url(raw: &str) -> String {
    let mut url = if raw.contains(['.', ':', '/']) && !raw.contains(":/") && !raw.starts_with('/') {
        format!("https://{raw}")
    } else {
        raw.to_string()
    };
    let keep = url.find("://").map(|i| i + 3).unwrap_or(0);
    while url.len() > keep && url.ends_with('/') {
        url.pop();
    }
    url
}

/// Whether some path prefix of `target` matches one of the comma-separated globs,
/// exactly like golang.org/x/mod/module.MatchPrefixPatterns (GOPRIVATE, GONOPROXY,
/// GONOSUMDB, GOINSECURE). Empty and malformed globs never match.
pub fn match_prefix_patterns(globs: &str, target: &str) -> bool {
    for glob in globs.split(',') {
        let glob = glob.strip_suffix('/').unwrap_or(glob);
        if glob.is_empty() {
            continue;
        }
        // A glob of N+1 elements is matched against the first N+1 elements of target.
        let mut n = glob.matches('/').count();
        let mut prefix = target;
        for (i, b) in target.bytes().enumerate() {
            if b == b'/' {
                if n == 0 {
                    prefix = &target[..i];
                    break;
                }
                n -= 1;
            }
        }
        if n > 0 {
            continue;
        }
        let pat: Vec<char> = glob.chars().collect();
        let name: Vec<char> = prefix.chars().collect();
        if path_match(&pat, &name) == Ok(true) {
            return true;
        }
    }
    false
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BadPattern;

/// Go's `path.Match`: `*` and `?` never cross '/', `[...]` classes with ranges,
/// `^` negation and `\` escapes. Like Go, a malformed pattern is reported even when
/// the name already failed to match, so a bad glob can never match by accident.
fn path_match(mut pattern: &[char], mut name: &[char]) -> Result<bool, BadPattern> {
    'pattern: while !pattern.is_empty() {
        let (star, chunk, rest) = scan_chunk(pattern);
        pattern = rest;
        if star && chunk.is_empty() {
            return Ok(!name.contains(&'/'));
        }
        if let Some(t) = match_chunk(chunk, name)? {
            // The last chunk must consume the whole name, or a star may still do better.
            if t.is_empty() || !pattern.is_empty() {
                name = t;
                continue;
            }
        }
        if star {
            let mut i = 0;
            while i < name.len() && name[i] != '/' {
                if let Some(t) = match_chunk(chunk, &name[i + 1..])? {
                    if !pattern.is_empty() || t.is_empty() {
                        name = t;
                        continue 'pattern;
                    }
                }
                i += 1;
            }
        }
        while !pattern.is_empty() {
            let (_, chunk, rest) = scan_chunk(pattern);
            pattern = rest;
            match_chunk(chunk, &[])?;
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

fn scan_chunk(mut pattern: &[char]) -> (bool, &[char], &[char]) {
    let mut star = false;
    while pattern.first() == Some(&'*') {
        pattern = &pattern[1..];
        star = true;
    }
    let mut in_range = false;
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            '\\' if i + 1 < pattern.len() => i += 1,
            '[' => in_range = true,
            ']' => in_range = false,
            '*' if !in_range => break,
            _ => {}
        }
        i += 1;
    }
    (star, &pattern[..i], &pattern[i..])
}

/// Matches one star-free chunk at the start of `s`; `Some(rest)` on success.
fn match_chunk<'a>(
    mut chunk: &[char],
    mut s: &'a [char],
) -> Result<Option<&'a [char]>, BadPattern> {
    // After a mismatch keep walking the chunk only to validate its syntax.
    let mut failed = false;
    while let Some(&c) = chunk.first() {
        if !failed && s.is_empty() {
            failed = true;
        }
        match c {
            '[' => {
                let mut r = '\0';
                if !failed {
                    if let Some((&first, tail)) = s.split_first() {
                        r = first;
                        s = tail;
                    }
                }
                chunk = &chunk[1..];
                let mut negated = false;
                if chunk.first() == Some(&'^') {
                    negated = true;
                    chunk = &chunk[1..];
                }
                let mut matched = false;
                let mut nrange = 0;
                loop {
                    if chunk.first() == Some(&']') && nrange > 0 {
                        chunk = &chunk[1..];
                        break;
                    }
                    let (lo, rest) = get_esc(chunk)?;
                    chunk = rest;
                    let mut hi = lo;
                    if chunk.first() == Some(&'-') {
                        let (h, rest) = get_esc(&chunk[1..])?;
                        hi = h;
                        chunk = rest;
                    }
                    if lo <= r && r <= hi {
                        matched = true;
                    }
                    nrange += 1;
                }
                if matched == negated {
                    failed = true;
                }
            }
            '?' => {
                if !failed {
                    if let Some((&first, tail)) = s.split_first() {
                        if first == '/' {
                            failed = true;
                        }
                        s = tail;
                    }
                }
                chunk = &chunk[1..];
            }
            _ => {
                let lit = if c == '\\' {
                    chunk = &chunk[1..];
                    match chunk.first() {
                        Some(&l) => l,
                        None => return Err(BadPattern),
                    }
                } else {
                    c
                };
                if !failed {
                    if let Some((&first, tail)) = s.split_first() {
                        if first != lit {
                            failed = true;
                        }
                        s = tail;
                    }
                }
                chunk = &chunk[1..];
            }
        }
    }
    Ok(if failed { None } else { Some(s) })
}

fn get_esc(chunk: &[char]) -> Result<(char, &[char]), BadPattern> {
    let mut chunk = match chunk.first() {
        None | Some('-') | Some(']') => return Err(BadPattern),
        Some(_) => chunk,
    };
    if chunk.first() == Some(&'\\') {
        chunk = &chunk[1..];
    }
    match chunk.split_first() {
        // A class must still be closed after this character.
        Some((&r, rest)) if !rest.is_empty() => Ok((r, rest)),
        _ => Err(BadPattern),
    }
}
