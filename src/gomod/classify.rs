//! URL -> GoRequest: which go request an exchange was, for which module and version.

use super::escape::{unescape_path, unescape_version};
use super::url::{self, Parsed};
use super::{GoKind, GoRequest, ProxyFile, TileRef, TOOLCHAIN_MODULE};

/// Hosts that serve a checksum database at their root; short endpoints such as
/// `/latest` are only trusted on these or on a known base, since any site may have them.
const SUMDB_HOSTS: &[&str] = &["sum.golang.org", "sum.golang.google.cn"];

/// Classifies one request. `url` is absolute; `known_bases` are GOPROXY/GOSUMDB base
/// URLs the caller knows about (the longest matching one wins over inference).
/// Never panics; whatever cannot be decoded is described in `problem`.
pub fn classify(method: &str, url: &str, known_bases: &[String]) -> GoRequest {
    let Some(parsed) = url::parse(url) else {
        return GoRequest {
            problem: Some("not an absolute URL".to_string()),
            ..GoRequest::other()
        };
    };
    let mut req = classify_parsed(method, &parsed, known_bases);
    if let Some(p) = &parsed.problem {
        add_problem(&mut req, p.clone());
    }
    req
}

fn classify_parsed(method: &str, u: &Parsed, known_bases: &[String]) -> GoRequest {
    if url::query_has(&u.query, "go-get", "1") {
        return GoRequest {
            kind: GoKind::GoGet,
            module: Some(join_host_path(u.host(), u.path.trim_end_matches('/'))),
            ..GoRequest::other()
        };
    }
    if let Some(repo) = git_repo_path(method, u) {
        let repo = repo.strip_suffix(".git").unwrap_or(repo);
        return GoRequest {
            kind: GoKind::Git,
            module: Some(join_host_path(u.host(), repo)),
            ..GoRequest::other()
        };
    }

    if let Some((base, rest)) = longest_known_base(u, known_bases) {
        return classify_under_known_base(base, rest);
    }

    let origin = u.origin();
    if let Some((before, tail)) = split_goproxy(&u.path) {
        let (base, module) = infer_base(&origin, before);
        return goproxy_request(base, module, tail);
    }
    let segs = segments(&u.path);
    let loose = SUMDB_HOSTS.contains(&u.host());
    if let Some(req) = find_sumdb(&origin, &segs, loose) {
        return req;
    }
    GoRequest::other()
}

fn classify_under_known_base(base: String, rest: &str) -> GoRequest {
    if let Some((module, tail)) = split_goproxy(rest) {
        let module = module.strip_prefix('/').unwrap_or(module);
        return goproxy_request(base, module.to_string(), tail);
    }
    let segs = segments(rest);
    // A proxy base that also proxies the checksum database: $base/sumdb/<name>/...
    if let [first, name, tail @ ..] = segs.as_slice() {
        if *first == "sumdb" && !name.is_empty() {
            if let Some(hit) = sumdb_endpoint(tail, true) {
                return sumdb_request(format!("{base}/sumdb/{name}"), hit);
            }
        }
    }
    match sumdb_endpoint(&segs, true) {
        Some(hit) => sumdb_request(base, hit),
        None => GoRequest::other(),
    }
}

/// Longest known base that is a path-element prefix of the URL, with the remaining path.
fn longest_known_base<'a>(u: &'a Parsed, known_bases: &[String]) -> Option<(String, &'a str)> {
    let mut best: Option<(usize, String, &'a str)> = None;
    for known in known_bases {
        let trimmed = known.trim().trim_end_matches('/');
        let Some(kb) = url::parse(trimmed) else {
            continue;
        };
        if kb.scheme != u.scheme || kb.canonical_authority() != u.canonical_authority() {
            continue;
        }
        let prefix = kb.path.trim_end_matches('/');
        let Some(rest) = u.path.strip_prefix(prefix) else {
            continue;
        };
        if !(rest.is_empty() || rest.starts_with('/')) {
            continue;
        }
        if best.as_ref().is_none_or(|(len, _, _)| prefix.len() > *len) {
            best = Some((prefix.len(), trimmed.to_string(), rest));
        }
    }
    best.map(|(_, base, rest)| (base, rest))
}

/// The file part of a GOPROXY-protocol path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tail<'a> {
    List,
    /// Escaped version and file.
    File(&'a str, ProxyFile),
    Latest,
    /// Something under `/@v/` that the protocol does not define.
    Unknown(&'a str),
}

/// Splits `/<prefix+module>/@v/<file>` or `/<prefix+module>/@latest`; the first
/// part keeps its leading slash. Module paths cannot contain '@', so the first
/// `/@v/` is the separator.
fn split_goproxy(path: &str) -> Option<(&str, Tail<'_>)> {
    if let Some(i) = path.find("/@v/") {
        let file = &path[i + 4..];
        let tail = if file == "list" {
            Tail::List
        } else if let Some(v) = file.strip_suffix(".info") {
            Tail::File(v, ProxyFile::Info)
        } else if let Some(v) = file.strip_suffix(".mod") {
            Tail::File(v, ProxyFile::Mod)
        } else if let Some(v) = file.strip_suffix(".zip") {
            Tail::File(v, ProxyFile::Zip)
        } else {
            Tail::Unknown(file)
        };
        return Some((&path[..i], tail));
    }
    path.strip_suffix("/@latest")
        .map(|before| (before, Tail::Latest))
}

/// Without a known base, the module starts at the first domain-like element
/// (one holding a dot); with none, the whole path is the module.
fn infer_base(origin: &str, before: &str) -> (String, String) {
    let before = before.strip_prefix('/').unwrap_or(before);
    let segs: Vec<&str> = before.split('/').collect();
    match segs.iter().position(|s| s.contains('.')) {
        Some(0) | None => (origin.to_string(), before.to_string()),
        Some(k) => (
            format!("{origin}/{}", segs[..k].join("/")),
            segs[k..].join("/"),
        ),
    }
}

fn goproxy_request(base: String, module_escaped: String, tail: Tail<'_>) -> GoRequest {
    let mut req = GoRequest {
        base: Some(base),
        ..GoRequest::other()
    };
    if module_escaped.is_empty() {
        add_problem(
            &mut req,
            "empty module path before /@v/ or /@latest".to_string(),
        );
    } else {
        match unescape_path(&module_escaped) {
            Ok(m) => req.module = Some(m),
            Err(e) => add_problem(
                &mut req,
                format!("invalid escaped module path {module_escaped:?}: {e}"),
            ),
        }
    }
    let file = match tail {
        Tail::List => Some(ProxyFile::List),
        Tail::Latest => Some(ProxyFile::Latest),
        Tail::File(v, f) => {
            match unescape_version(v) {
                Ok(v) => req.version = Some(v),
                Err(e) => add_problem(&mut req, format!("invalid escaped version {v:?}: {e}")),
            }
            Some(f)
        }
        Tail::Unknown(f) => {
            add_problem(&mut req, format!("unknown GOPROXY file {f:?} under /@v/"));
            None
        }
    };
    req.file = file;
    req.kind = match (file, req.module.as_deref()) {
        (Some(_), Some(TOOLCHAIN_MODULE)) => GoKind::Toolchain,
        (Some(f), _) => f.kind(),
        (None, _) => GoKind::Other,
    };
    req
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum SumdbHit {
    Supported,
    Latest,
    /// Escaped `module@version`.
    Lookup(String),
    Tile(Result<TileRef, String>),
}

/// Searches the path for a checksum-database endpoint, direct (`<prefix>/lookup/...`)
/// or through a proxy (`<prefix>/sumdb/<name>/...`).
fn find_sumdb(origin: &str, segs: &[&str], loose: bool) -> Option<GoRequest> {
    for i in 0..segs.len() {
        let prefix = |end: usize| -> String {
            if end == 0 {
                origin.to_string()
            } else {
                format!("{origin}/{}", segs[..end].join("/"))
            }
        };
        if segs[i] == "sumdb" && i + 1 < segs.len() && !segs[i + 1].is_empty() {
            if let Some(hit) = sumdb_endpoint(&segs[i + 2..], true) {
                return Some(sumdb_request(prefix(i + 2), hit));
            }
        }
        if let Some(hit) = sumdb_endpoint(&segs[i..], loose) {
            return Some(sumdb_request(prefix(i), hit));
        }
    }
    None
}

/// `segs` is the path below a checksum-database base. `loose` accepts endpoints that
/// are only plausible when the base is known to be a checksum database.
fn sumdb_endpoint(segs: &[&str], loose: bool) -> Option<SumdbHit> {
    match segs {
        ["supported"] if loose => Some(SumdbHit::Supported),
        ["latest"] if loose => Some(SumdbHit::Latest),
        ["lookup", rest @ ..] if !rest.is_empty() => {
            let joined = rest.join("/");
            (loose || joined.contains('@')).then_some(SumdbHit::Lookup(joined))
        }
        ["tile", rest @ ..] => match parse_tile(rest) {
            Ok(t) => Some(SumdbHit::Tile(Ok(t))),
            Err(e) if loose => Some(SumdbHit::Tile(Err(e))),
            Err(_) => None,
        },
        _ => None,
    }
}

fn sumdb_request(base: String, hit: SumdbHit) -> GoRequest {
    let mut req = GoRequest {
        base: Some(base),
        ..GoRequest::other()
    };
    match hit {
        SumdbHit::Supported => req.kind = GoKind::SumdbSupported,
        SumdbHit::Latest => req.kind = GoKind::SumdbLatest,
        SumdbHit::Tile(t) => {
            req.kind = GoKind::SumdbTile;
            match t {
                Ok(t) => req.tile = Some(t),
                Err(e) => add_problem(&mut req, e),
            }
        }
        SumdbHit::Lookup(mv) => {
            req.kind = GoKind::SumdbLookup;
            match mv.split_once('@') {
                Some((m, v)) => {
                    match unescape_path(m) {
                        Ok(m) => req.module = Some(m),
                        Err(e) => {
                            add_problem(&mut req, format!("invalid escaped module path {m:?}: {e}"))
                        }
                    }
                    match unescape_version(v) {
                        Ok(v) => req.version = Some(v),
                        Err(e) => {
                            add_problem(&mut req, format!("invalid escaped version {v:?}: {e}"))
                        }
                    }
                }
                None => add_problem(&mut req, format!("lookup {mv:?} has no '@version'")),
            }
        }
    }
    req
}

/// Parses `H/L/N[.p/W]` (the part after `tile/`) exactly as x/mod/sumdb/tlog does,
/// including its insistence on the canonical spelling.
fn parse_tile(segs: &[&str]) -> Result<TileRef, String> {
    let original = segs.join("/");
    let bad = || format!("malformed tile path \"tile/{original}\"");
    let [h, l, n_segs @ ..] = segs else {
        return Err(bad());
    };
    if n_segs.is_empty() {
        return Err(bad());
    }
    let height = parse_digits(h).ok_or_else(bad)?;
    if !(1..=30).contains(&height) {
        return Err(bad());
    }
    let data = *l == "data";
    let level = if data {
        0
    } else {
        parse_digits(l).ok_or_else(bad)?
    };
    let mut groups: Vec<&str> = n_segs.to_vec();
    let mut width = None;
    if groups.len() >= 2 {
        let dot_p = groups[groups.len() - 2];
        if let Some(stripped) = dot_p.strip_suffix(".p") {
            let w = groups
                .last()
                .and_then(|s| parse_digits(s))
                .ok_or_else(bad)?;
            if w == 0 || u64::from(w) >= 1u64 << height {
                return Err(bad());
            }
            width = Some(w);
            groups.pop();
            let last = groups.len() - 1;
            groups[last] = stripped;
        }
    }
    let mut index: u64 = 0;
    for g in &groups {
        let digits = g.strip_prefix('x').unwrap_or(g);
        let nn = parse_digits(digits).filter(|v| *v < 1000).ok_or_else(bad)?;
        index = index
            .checked_mul(1000)
            .and_then(|v| v.checked_add(u64::from(nn)))
            .ok_or_else(bad)?;
    }
    let tile = TileRef {
        height,
        level,
        index,
        width,
        data,
    };
    // Non-canonical spellings (missing 'x', unpadded groups) name no tile go would ask for.
    if tile_path(&tile) != format!("tile/{original}") {
        return Err(bad());
    }
    Ok(tile)
}

/// The canonical `tile/...` path of a tile (tlog.Tile.Path).
pub(crate) fn tile_path(t: &TileRef) -> String {
    let mut n = t.index;
    let mut n_str = format!("{:03}", n % 1000);
    while n >= 1000 {
        n /= 1000;
        n_str = format!("x{:03}/{n_str}", n % 1000);
    }
    let level = if t.data {
        "data".to_string()
    } else {
        t.level.to_string()
    };
    let partial = t.width.map(|w| format!(".p/{w}")).unwrap_or_default();
    format!("tile/{}/{level}/{n_str}{partial}", t.height)
}

fn parse_digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The repository path of a git smart-HTTP request, without host.
fn git_repo_path<'a>(method: &str, u: &'a Parsed) -> Option<&'a str> {
    if let Some(repo) = u.path.strip_suffix("/info/refs") {
        let service = url::query_get(&u.query, "service")?;
        if service == "git-upload-pack" || service == "git-receive-pack" {
            return Some(repo);
        }
        return None;
    }
    if method.eq_ignore_ascii_case("POST") {
        return u
            .path
            .strip_suffix("/git-upload-pack")
            .or_else(|| u.path.strip_suffix("/git-receive-pack"));
    }
    None
}

fn join_host_path(host: &str, path: &str) -> String {
    let path = path.trim_start_matches('/');
    if path.is_empty() {
        host.to_string()
    } else {
        format!("{host}/{path}")
    }
}

/// Path elements without the leading empty one.
fn segments(path: &str) -> Vec<&str> {
    let p = path.strip_prefix('/').unwrap_or(path);
    if p.is_empty() {
        Vec::new()
    } else {
        p.split('/').collect()
    }
}

fn add_problem(req: &mut GoRequest, p: String) {
    req.problem = Some(match req.problem.take() {
        Some(prev) => format!("{prev}; {p}"),
        None => p,
    });
}

#[cfg(test)]
pub(crate) fn tile_path_for_tests(t: &TileRef) -> String {
    tile_path(t)
}
