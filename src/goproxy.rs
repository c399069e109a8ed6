//! `--goproxy` start-up and closing notes: reads the effective GOPROXY (environment, else
//! `go env`), gathers the credentials go would have sent to each entry (userinfo,
//! `.netrc`/NETRC, a GOAUTH command), and says when go went `direct`, which this mode
//! does not see.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::exchange::Exchange;
use crate::gomod::auth::{goauth_headers_for, netrc_for, parse_goauth, parse_netrc, GoAuthMode};
use crate::gomod::{plan_goproxy, Fallback, GoproxyRoutes};

/// Where the GOPROXY value came from, for the start-up line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoproxySource {
    Environment,
    GoEnv,
    Default,
}

impl std::fmt::Display for GoproxySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            GoproxySource::Environment => "the environment",
            GoproxySource::GoEnv => "`go env` (includes `go env -w`)",
            GoproxySource::Default => "go's default (no go found to ask `go env`)",
        })
    }
}

/// The routes for `--goproxy`, with credentials filled in, and what the user should know.
pub struct GoproxySetup {
    pub routes: GoproxyRoutes,
    pub source: GoproxySource,
    pub notes: Vec<String>,
}

/// Reads GOPROXY and GOAUTH as go would see them and plans the rewrite. `go` is the go
/// binary to ask (`go` on PATH when `None`).
pub fn setup(go: Option<&Path>) -> Result<GoproxySetup> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let (mut goproxy, mut goauth) = (env("GOPROXY"), env("GOAUTH"));
    let mut source = GoproxySource::Environment;
    if goproxy.is_none() || goauth.is_none() {
        match go_env(go, &["GOPROXY", "GOAUTH"]) {
            Some(values) => {
                let mut values = values.into_iter();
                if goproxy.is_none() {
                    goproxy = values.next().filter(|v| !v.is_empty());
                    source = GoproxySource::GoEnv;
                } else {
                    values.next();
                }
                if goauth.is_none() {
                    goauth = values.next().filter(|v| !v.is_empty());
                }
            }
            None if goproxy.is_none() => source = GoproxySource::Default,
            None => {}
        }
    }
    let value = goproxy.unwrap_or_default();
    let mut routes = plan_goproxy(&value).context("cannot stand in GOPROXY (--goproxy)")?;
    let mut notes = Vec::new();
    let modes = parse_goauth(goauth.as_deref());
    let netrc = if modes.contains(&GoAuthMode::Netrc) {
        read_netrc(&mut notes)
    } else {
        Vec::new()
    };
    for route in routes.routes_mut() {
        if route.userinfo.is_some() {
            notes.push(format!(
                "credentials from the GOPROXY entry for {} are sent upstream by modscope (never recorded)",
                route.base
            ));
            continue;
        }
        for mode in &modes {
            let headers = match mode {
                GoAuthMode::Off => break,
                GoAuthMode::Netrc => netrc_for(&netrc, route.url_host())
                    .map(|l| {
                        use base64::Engine;
                        let token = base64::engine::general_purpose::STANDARD
                            .encode(format!("{}:{}", l.login, l.password));
                        vec![("authorization".to_string(), format!("Basic {token}"))]
                    })
                    .unwrap_or_default(),
                GoAuthMode::Command(words) => run_goauth(words, &route.base, &mut notes),
                GoAuthMode::Git(_) => {
                    notes.push(format!(
                        "GOAUTH `git` credential helpers are not run by modscope; requests to {} carry no credentials from them",
                        route.base
                    ));
                    Vec::new()
                }
            };
            if !headers.is_empty() {
                let names: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
                notes.push(format!(
                    "{} for {} comes from {} and is sent upstream by modscope (never recorded)",
                    names.join(", "),
                    route.base,
                    match mode {
                        GoAuthMode::Netrc => "the .netrc file",
                        _ => "the GOAUTH command",
                    }
                ));
                route.upstream_headers = headers;
                break;
            }
        }
    }
    Ok(GoproxySetup {
        routes,
        source,
        notes,
    })
}

/// The go a `run` command will use, when its program is a go binary.
pub fn go_of_command(command: &[String]) -> Option<PathBuf> {
    let program = Path::new(command.first()?);
    (program.file_name()? == "go").then(|| program.to_path_buf())
}

/// `go env VARS...`, one value per line; `None` when go cannot be run.
fn go_env(go: Option<&Path>, vars: &[&str]) -> Option<Vec<String>> {
    let go = go
        .map(Path::to_path_buf)
        .or_else(|| crate::procenv::which("go"))?;
    let out = Command::new(&go).arg("env").args(vars).output().ok()?;
    if !out.status.success() {
        tracing::warn!(
            "{} env failed: {}",
            go.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return None;
    }
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim().to_string())
            .collect(),
    )
}

/// `$NETRC`, else `~/.netrc`, as go reads it; a missing file is no credentials.
fn read_netrc(notes: &mut Vec<String>) -> Vec<crate::gomod::auth::NetrcLine> {
    let path = match std::env::var_os("NETRC").filter(|v| !v.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(home).join(".netrc"),
            None => return Vec::new(),
        },
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => parse_netrc(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            notes.push(format!("cannot read {}: {e}", path.display()));
            Vec::new()
        }
    }
}

/// Runs a GOAUTH command with the entry's URL as its last argument, as go does.
fn run_goauth(words: &[String], url: &str, notes: &mut Vec<String>) -> Vec<(String, String)> {
    let Some((program, args)) = words.split_first() else {
        return Vec::new();
    };
    match Command::new(program).args(args).arg(url).output() {
        Ok(out) if out.status.success() => {
            goauth_headers_for(&String::from_utf8_lossy(&out.stdout), url)
        }
        Ok(out) => {
            notes.push(format!(
                "GOAUTH command {program:?} failed for {url} ({}); no credentials added",
                out.status
            ));
            Vec::new()
        }
        Err(e) => {
            notes.push(format!(
                "cannot run GOAUTH command {program:?}: {e}; no credentials added"
            ));
            Vec::new()
        }
    }
}

/// The `export` line a shell needs for `--goproxy`, and the optional intercepting lines
/// for direct/VCS traffic where the CA is trusted.
pub fn export_lines(goproxy: &str, proxy_url: &str, bundle: &Path) -> String {
    let intercepting: String = crate::procenv::export_lines(proxy_url, bundle)
        .lines()
        .map(|l| format!("# {l}\n"))
        .collect();
    format!(
        "export GOPROXY='{goproxy}'\n# direct (VCS) traffic too, where go may trust the modscope CA:\n{intercepting}"
    )
}

/// Requests after which go fell back to `direct` (the entry right before it answered
/// 404/410, or anything but 200 after `|`): those fetches bypass modscope in this mode.
pub fn direct_fallbacks(routes: &GoproxyRoutes, exchanges: &[Exchange]) -> Vec<String> {
    let Some((last, fallback)) = routes.last_before_direct() else {
        return Vec::new();
    };
    let prefix = format!("{}/", last.base);
    let mut out: Vec<String> = exchanges
        .iter()
        .filter(|ex| ex.request.url.starts_with(&prefix))
        .filter(|ex| {
            let status = ex.response.as_ref().map(|r| r.status).unwrap_or(0);
            match fallback {
                Fallback::OnNotFound => status == 404 || status == 410,
                Fallback::OnAnyError => status != 200,
            }
        })
        .filter(|ex| !ex.request.url.contains("/sumdb/"))
        .map(|ex| ex.request.url.clone())
        .collect();
    out.dedup();
    out
}

/// Whether the last served entry refused the checksum database, sending go to it directly.
fn sumdb_went_direct(routes: &GoproxyRoutes, exchanges: &[Exchange]) -> bool {
    let Some(last) = routes.last_route() else {
        return false;
    };
    let prefix = format!("{}/sumdb/", last.base);
    exchanges.iter().any(|ex| {
        let status = ex.response.as_ref().map(|r| r.status).unwrap_or(0);
        ex.request.url.starts_with(&prefix)
            && ex.request.url.ends_with("/supported")
            && (status == 404 || status == 410)
    })
}

/// The closing note for `run --goproxy` when go went direct, or when GOPRIVATE-style
/// settings send modules around every proxy.
pub fn direct_note(
    routes: &GoproxyRoutes,
    exchanges: &[Exchange],
    private: bool,
) -> Option<String> {
    let fell_back = direct_fallbacks(routes, exchanges);
    let mut lines = Vec::new();
    if !fell_back.is_empty() {
        lines.push(format!(
            "go fell back to `direct` after {} answer(s) ending the GOPROXY list (e.g. {}): those fetches went to the version control system and are not seen with --goproxy",
            fell_back.len(),
            fell_back[0]
        ));
    }
    if sumdb_went_direct(routes, exchanges) {
        lines.push(
            "no GOPROXY entry serves the checksum database (`sumdb/.../supported` answered 404/410), so go asked GOSUMDB's host itself, which --goproxy does not see"
                .to_string(),
        );
    }
    if private && routes.has_direct() {
        lines.push(
            "GOPRIVATE/GONOPROXY modules are fetched directly and are not seen with --goproxy"
                .to_string(),
        );
    }
    (!lines.is_empty()).then(|| {
        format!(
            "{}; to see them too where go can trust the modscope CA, add --intercept (`modscope run --goproxy --intercept`)",
            lines.join("; ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::{BodyFacts, ExchangeRequest, ResponseFacts};

    fn ex(url: &str, status: u16) -> Exchange {
        Exchange {
            id: 1,
            started: std::time::SystemTime::UNIX_EPOCH,
            request: ExchangeRequest {
                method: "GET".into(),
                url: url.into(),
                http_version: "HTTP/1.1".into(),
                headers: Vec::new(),
                body: BodyFacts::default(),
            },
            response: Some(ResponseFacts {
                status,
                http_version: "HTTP/1.1".into(),
                headers: Vec::new(),
                trailers: Vec::new(),
                body: BodyFacts::default(),
            }),
            timings: Default::default(),
            connection_id: None,
            server_ip: None,
            tls: None,
            error: None,
            fault: None,
            client_connection: None,
            stall: None,
        }
    }

    #[test]
    fn direct_fallback_is_noticed_only_where_go_goes_direct() {
        let list = [
            ex("https://a.example/m/@v/list", 404),
            ex("https://b.example/x/@v/list", 404),
            ex("https://b.example/y/@v/list", 410),
            ex("https://b.example/z/@v/list", 502),
            ex("https://b.example/sumdb/sum.golang.org/supported", 404),
            ex("https://b.example/ok/@v/list", 200),
        ];
        let comma = plan_goproxy("https://a.example,https://b.example,direct").unwrap();
        assert_eq!(
            direct_fallbacks(&comma, &list),
            ["https://b.example/x/@v/list", "https://b.example/y/@v/list"]
        );
        let pipe = plan_goproxy("https://a.example,https://b.example|direct").unwrap();
        assert_eq!(direct_fallbacks(&pipe, &list).len(), 3);
        let none = plan_goproxy("https://a.example,https://b.example").unwrap();
        assert!(direct_fallbacks(&none, &list).is_empty());
        // Without direct, only the checksum database leaves modscope's sight.
        let note = direct_note(&none, &list, false).unwrap();
        assert!(
            note.contains("checksum database") && !note.contains("fell back"),
            "{note}"
        );
        let note = direct_note(&comma, &list, true).unwrap();
        assert!(
            note.contains("2 answer(s)") && note.contains("GOPRIVATE"),
            "{note}"
        );
        // b (the last entry) refused the checksum database: go asked it directly.
        assert!(note.contains("checksum database"), "{note}");
        let a_only = plan_goproxy("https://a.example,https://b.example").unwrap();
        let refused_by_a = [ex("https://a.example/sumdb/sum.golang.org/supported", 404)];
        assert!(direct_note(&a_only, &refused_by_a, false).is_none());
    }

    #[test]
    fn export_lines_name_goproxy_and_comment_the_intercepting_ones() {
        let text = export_lines(
            "http://127.0.0.1:1/proxy.golang.org,direct",
            "http://127.0.0.1:1",
            Path::new("/ca/bundle.pem"),
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "export GOPROXY='http://127.0.0.1:1/proxy.golang.org,direct'"
        );
        assert!(lines[1..].iter().all(|l| l.starts_with('#')), "{text}");
        assert!(
            text.contains("# export HTTPS_PROXY=http://127.0.0.1:1"),
            "{text}"
        );
    }

    #[test]
    fn the_go_of_a_command() {
        let cmd = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            go_of_command(&cmd(&["/opt/go/bin/go", "mod", "download"])),
            Some(PathBuf::from("/opt/go/bin/go"))
        );
        assert_eq!(go_of_command(&cmd(&["make"])), None);
    }
}
