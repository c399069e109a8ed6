//! Decodes the go command's network requests (GOPROXY protocol, checksum database,
//! VCS discovery, git) into plain data, and reads GOPROXY/GOPRIVATE the way go does.
//!
//! Pure: no sockets, files, environment or clocks.

pub mod auth;
mod classify;
pub mod dirhash;
mod escape;
mod goenv;
pub mod goproxy_route;
pub mod gosum;
pub(crate) mod url;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use classify::classify;
pub use escape::{
    escape_path, escape_version, module_zip_root, unescape_path, unescape_version, EscapeError,
};
pub use goenv::{
    match_prefix_patterns, parse_goproxy, Fallback, ProxyEntry, ProxyTarget, DEFAULT_GOPROXY,
};
pub use goproxy_route::{plan_goproxy, GoproxyRoute, GoproxyRouteError, GoproxyRoutes};

/// The module every Go toolchain download (GOTOOLCHAIN, Go 1.21+) is fetched as.
pub const TOOLCHAIN_MODULE: &str = "golang.org/toolchain";

/// What kind of go network request an exchange was.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GoKind {
    List,
    Info,
    Mod,
    Zip,
    Latest,
    SumdbSupported,
    SumdbLookup,
    SumdbTile,
    SumdbLatest,
    GoGet,
    Git,
    Toolchain,
    #[default]
    Other,
}

impl GoKind {
    /// Parses a kind name as written in `_go.kind`, fault rules and the CLI.
    pub fn parse(text: &str) -> Result<GoKind, String> {
        let text = text.trim();
        GoKind::ALL
            .into_iter()
            .find(|k| k.as_str() == text)
            .ok_or_else(|| {
                let valid: Vec<&str> = GoKind::ALL.iter().map(|k| k.as_str()).collect();
                format!("unknown kind `{text}` (valid: {})", valid.join(", "))
            })
    }

    pub const ALL: [GoKind; 13] = [
        GoKind::List,
        GoKind::Info,
        GoKind::Mod,
        GoKind::Zip,
        GoKind::Latest,
        GoKind::SumdbSupported,
        GoKind::SumdbLookup,
        GoKind::SumdbTile,
        GoKind::SumdbLatest,
        GoKind::GoGet,
        GoKind::Git,
        GoKind::Toolchain,
        GoKind::Other,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            GoKind::List => "list",
            GoKind::Info => "info",
            GoKind::Mod => "mod",
            GoKind::Zip => "zip",
            GoKind::Latest => "latest",
            GoKind::SumdbSupported => "sumdb-supported",
            GoKind::SumdbLookup => "sumdb-lookup",
            GoKind::SumdbTile => "sumdb-tile",
            GoKind::SumdbLatest => "sumdb-latest",
            GoKind::GoGet => "go-get",
            GoKind::Git => "git",
            GoKind::Toolchain => "toolchain",
            GoKind::Other => "other",
        }
    }

    /// Requests that speak the GOPROXY protocol (toolchains travel the same way).
    pub fn is_goproxy(&self) -> bool {
        matches!(
            self,
            GoKind::List
                | GoKind::Info
                | GoKind::Mod
                | GoKind::Zip
                | GoKind::Latest
                | GoKind::Toolchain
        )
    }

    /// Requests to a checksum database (direct or through a proxy).
    pub fn is_sumdb(&self) -> bool {
        matches!(
            self,
            GoKind::SumdbSupported | GoKind::SumdbLookup | GoKind::SumdbTile | GoKind::SumdbLatest
        )
    }

    /// Requests go makes in `direct` mode (VCS discovery and git).
    pub fn is_direct(&self) -> bool {
        matches!(self, GoKind::GoGet | GoKind::Git)
    }
}

impl std::fmt::Display for GoKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The file a GOPROXY-protocol request asked for; for toolchains it recovers the
/// list/info/mod/zip/latest distinction that `kind` does not carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProxyFile {
    List,
    Info,
    Mod,
    Zip,
    Latest,
}

impl ProxyFile {
    pub fn as_str(&self) -> &'static str {
        match self {
            ProxyFile::List => "list",
            ProxyFile::Info => "info",
            ProxyFile::Mod => "mod",
            ProxyFile::Zip => "zip",
            ProxyFile::Latest => "latest",
        }
    }

    pub fn kind(&self) -> GoKind {
        match self {
            ProxyFile::List => GoKind::List,
            ProxyFile::Info => GoKind::Info,
            ProxyFile::Mod => GoKind::Mod,
            ProxyFile::Zip => GoKind::Zip,
            ProxyFile::Latest => GoKind::Latest,
        }
    }
}

/// A checksum-database tile, `/tile/H/L/N[.p/W]` or `/tile/H/data/N[.p/W]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TileRef {
    pub height: u32,
    /// 0 for data tiles (they hold the level-0 records).
    pub level: u32,
    pub index: u64,
    /// Present only for partial tiles (`.p/W`); a full tile has width 2^height.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    pub data: bool,
}

/// One decoded go request. `module` and `version` are unescaped (real case).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GoRequest {
    pub kind: GoKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// GOPROXY base (`scheme://host[:port][/prefix]`) or checksum-database base, no trailing slash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// For GOPROXY-protocol requests (toolchains included): which file was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<ProxyFile>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tile: Option<TileRef>,
    /// Why the request could not be fully decoded; set instead of guessing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// go's own hash (`h1:`, dirhash Hash1) of a complete 200 `.zip` or `.mod` body,
    /// computed by the recorder; what go compares with go.sum and the checksum database.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub h1: Option<String>,
    /// Why go would refuse this `.zip` (then it has no `h1`).
    #[serde(skip_serializing_if = "Option::is_none", rename = "zipRejected")]
    pub zip_rejected: Option<String>,
}

impl GoRequest {
    pub fn other() -> Self {
        GoRequest::default()
    }

    /// `module@version` when both are known, else the module alone.
    pub fn module_version(&self) -> Option<String> {
        match (&self.module, &self.version) {
            (Some(m), Some(v)) => Some(format!("{m}@{v}")),
            (Some(m), None) => Some(m.clone()),
            _ => None,
        }
    }

    /// The GOPROXY-protocol file kind, looking through toolchain requests.
    pub fn effective_kind(&self) -> GoKind {
        match (self.kind, self.file) {
            (GoKind::Toolchain, Some(f)) => f.kind(),
            (k, _) => k,
        }
    }
}
