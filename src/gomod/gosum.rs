//! go.sum lines and checksum-database lookup records: the `h1:` hashes go holds for a
//! module version, parsed from a go.sum file or a `/lookup/m@v` body.
//!
//! Pure: text in, lines out.

use serde::{Deserialize, Serialize};

/// Which of a module version's two hashes a line holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SumFile {
    /// `m v h1:...`: the module zip.
    Zip,
    /// `m v/go.mod h1:...`: the go.mod file alone.
    GoMod,
}

impl SumFile {
    pub fn as_str(&self) -> &'static str {
        match self {
            SumFile::Zip => "zip",
            SumFile::GoMod => "go.mod",
        }
    }
}

/// One go.sum line.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SumLine {
    pub module: String,
    pub version: String,
    pub file: SumFile,
    /// `h1:...` (other algorithms are kept as written; go ignores unknown ones).
    pub hash: String,
}

impl SumLine {
    /// `module@version` for messages.
    pub fn module_version(&self) -> String {
        format!("{}@{}", self.module, self.version)
    }
}

/// Parses one go.sum-format line (`module version[/go.mod] hash`); `None` for blank or
/// malformed lines, which go itself reports as "malformed go.sum" elsewhere.
pub fn parse_line(line: &str) -> Option<SumLine> {
    let mut parts = line.split_whitespace();
    let (module, version, hash) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !hash.contains(':') {
        return None;
    }
    let (version, file) = match version.strip_suffix("/go.mod") {
        Some(v) => (v, SumFile::GoMod),
        None => (version, SumFile::Zip),
    };
    Some(SumLine {
        module: module.to_string(),
        version: version.to_string(),
        file,
        hash: hash.to_string(),
    })
}

/// Every well-formed line of a go.sum file.
pub fn parse_go_sum(text: &str) -> Vec<SumLine> {
    text.lines().filter_map(parse_line).collect()
}

/// The go.sum lines of a checksum-database `/lookup/m@v` answer: a record number, the
/// lines, a blank line, then the signed tree note (not parsed here; go verifies it).
pub fn parse_lookup(body: &str) -> Vec<SumLine> {
    let mut lines = body.lines();
    let record_id = lines.next().map(str::trim).unwrap_or("");
    if record_id.is_empty() || !record_id.bytes().all(|b| b.is_ascii_digit()) {
        return Vec::new();
    }
    lines
        .take_while(|l| !l.trim().is_empty())
        .filter_map(parse_line)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_sum_lines() {
        let text = "example.com/a v1.0.0 h1:AAA=\nexample.com/a v1.0.0/go.mod h1:BBB=\n\n\
                    broken line\nexample.com/b v0.1.0/go.mod h1:CCC= extra\n";
        let got = parse_go_sum(text);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].file, SumFile::Zip);
        assert_eq!(got[0].hash, "h1:AAA=");
        assert_eq!(got[1].file, SumFile::GoMod);
        assert_eq!(got[1].version, "v1.0.0");
        assert_eq!(got[1].module_version(), "example.com/a@v1.0.0");
    }

    #[test]
    fn lookup_bodies() {
        let body = "1234\nexample.com/a v1.0.0 h1:AAA=\nexample.com/a v1.0.0/go.mod h1:BBB=\n\n\
                    go.sum database tree\n99\nhash=\n\n— sum.golang.org Az3g...\n";
        let got = parse_lookup(body);
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].hash, "h1:BBB=");
        // Not a lookup answer (an HTML error page, a 404 text): nothing.
        assert!(parse_lookup("<html>not found</html>").is_empty());
        assert!(parse_lookup("not found: example.com/a@v1.0.0").is_empty());
        assert!(parse_lookup("").is_empty());
    }
}
