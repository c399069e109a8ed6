//! Per module: which GOPROXY entry answered, and why go did or did not try the later
//! ones (`,` moves on after 404/410 only, `|` after any error); prefix probing is folded
//! into one line.
//!
//! Pure.

use serde::{Deserialize, Serialize};

use super::findings::{find_entry, host_key, is_injected, path_related};
use super::{GoEnv, Observation};
use crate::gomod::{parse_goproxy, Fallback, GoKind};

/// How one module was fetched through GOPROXY.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleRoute {
    pub module: String,
    /// The GOPROXY entry that served it (2xx), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry: Option<String>,
    /// Earlier entries asked, with what they answered.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tried: Vec<String>,
    /// Why go moved on, stopped, or never needed to.
    pub why: String,
}

struct Attempt<'a> {
    entry: usize,
    o: &'a Observation,
}

fn outcome(o: &Observation) -> String {
    match (&o.error, o.status) {
        (Some(e), _) => e.kind.to_string(),
        (None, s) => s.to_string(),
    }
}

fn ok(o: &Observation) -> bool {
    o.error.is_none() && (200..300).contains(&o.status) && o.body_complete
}

/// One route per module that GOPROXY requests asked for, in trace order; 404-only
/// prefixes of a module found elsewhere are folded into a single line.
pub fn module_routes(obs: &[Observation], env: &GoEnv) -> Vec<ModuleRoute> {
    let entries = parse_goproxy(env.goproxy_value());
    let mut modules: Vec<&str> = Vec::new();
    for o in obs
        .iter()
        .filter(|o| o.go.kind.is_goproxy() && o.go.kind != GoKind::Toolchain)
    {
        if let Some(m) = o.go.module.as_deref() {
            if !modules.contains(&m) {
                modules.push(m);
            }
        }
    }
    let found = |m: &str| {
        obs.iter()
            .any(|o| o.go.kind.is_goproxy() && o.go.module.as_deref() == Some(m) && ok(o))
    };
    let mut out = Vec::new();
    let mut probed: Vec<&str> = Vec::new();
    for m in &modules {
        if !found(m)
            && modules
                .iter()
                .any(|other| found(other) && path_related(m, other))
        {
            probed.push(m);
            continue;
        }
        let mut attempts: Vec<Attempt<'_>> = obs
            .iter()
            .filter(|o| o.go.kind.is_goproxy() && o.go.module.as_deref() == Some(*m))
            .filter_map(|o| {
                let base = o.go.base.as_deref()?;
                Some(Attempt {
                    entry: find_entry(&entries, base, &host_key(o))?,
                    o,
                })
            })
            .collect();
        attempts.sort_by_key(|a| a.entry);
        let winner = attempts.iter().find(|a| ok(a.o)).map(|a| a.entry);
        let mut tried: Vec<String> = Vec::new();
        let mut last_fail: Option<&Attempt<'_>> = None;
        for a in attempts
            .iter()
            .filter(|a| Some(a.entry) != winner && !ok(a.o))
        {
            if winner.is_some_and(|w| a.entry > w) {
                continue;
            }
            let line = format!("{} ({})", entries[a.entry].display(), outcome(a.o));
            if !tried.contains(&line) {
                tried.push(line);
            }
            last_fail = Some(a);
        }
        let display = |i: usize| entries.get(i).map(|e| e.display().to_string());
        let why = match (winner, last_fail) {
            (Some(_), None) if entries.len() == 1 => "the only GOPROXY entry answered".to_string(),
            (Some(w), None) => format!(
                "the {} GOPROXY entry answered; later entries were not needed",
                if w == 0 { "first" } else { "first reachable" }
            ),
            (Some(_), Some(f)) => {
                let sep = entries[f.entry].fallback;
                let not_found = f.o.error.is_none() && matches!(f.o.status, 404 | 410);
                if is_injected(f.o) {
                    "go moved on past an injected fault".to_string()
                } else if not_found {
                    format!(
                        "{} answered {}, so go tried the next entry",
                        display(f.entry).unwrap_or_default(),
                        outcome(f.o)
                    )
                } else if sep == Fallback::OnAnyError {
                    format!(
                        "'|' after {} lets go move on after any error",
                        display(f.entry).unwrap_or_default()
                    )
                } else {
                    "go moved on".to_string()
                }
            }
            (None, Some(f)) => {
                let sep = entries[f.entry].fallback;
                let not_found = f.o.error.is_none() && matches!(f.o.status, 404 | 410);
                let next = display(f.entry + 1);
                match next {
                    None => format!(
                        "no entry served it; {} was the last GOPROXY entry",
                        display(f.entry).unwrap_or_default()
                    ),
                    Some(n) if !not_found && sep == Fallback::OnNotFound => format!(
                        "go stopped at {}: ',' moves on to {n} only after 404/410, this was {}",
                        display(f.entry).unwrap_or_default(),
                        outcome(f.o)
                    ),
                    Some(n) => format!("{n} was next, but the trace holds no answer from it"),
                }
            }
            (None, None) => "not decoded against any GOPROXY entry".to_string(),
        };
        out.push(ModuleRoute {
            module: m.to_string(),
            entry: winner.and_then(display),
            tried,
            why,
        });
    }
    let mut out = fold_alike(out);
    if !probed.is_empty() {
        out.push(ModuleRoute {
            module: format!("{} path prefixes ({}…)", probed.len(), probed[0]),
            entry: None,
            tried: Vec::new(),
            why: "404/410 while go probed which prefix is the module: expected".to_string(),
        });
    }
    out
}

/// Modules served the same way (same entry, nothing tried before) become one line.
fn fold_alike(routes: Vec<ModuleRoute>) -> Vec<ModuleRoute> {
    let mut out: Vec<(ModuleRoute, Vec<String>)> = Vec::new();
    for r in routes {
        let same = out.iter_mut().find(|(o, _)| {
            r.tried.is_empty() && o.tried.is_empty() && o.entry == r.entry && o.why == r.why
        });
        match same {
            Some((_, names)) => names.push(r.module),
            None => {
                let name = r.module.clone();
                out.push((r, vec![name]));
            }
        }
    }
    out.into_iter()
        .map(|(mut r, names)| {
            if names.len() > 1 {
                r.module = format!("{} modules ({})", names.len(), names.join(", "));
            }
            r
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gomod::classify;

    fn o(index: usize, url: &str, status: u16) -> Observation {
        Observation {
            index,
            url: url.to_string(),
            host: url.split('/').nth(2).unwrap_or("").to_string(),
            status,
            body_complete: true,
            go: classify(
                "GET",
                url,
                &["https://a.example".into(), "https://b.example".into()],
            ),
            ..Observation::default()
        }
    }

    fn env(goproxy: &str) -> GoEnv {
        GoEnv {
            goproxy: Some(goproxy.to_string()),
            ..GoEnv::default()
        }
    }

    #[test]
    fn which_entry_answered_and_why() {
        let a = "https://a.example/example.com/m/@v/v1.0.0.zip";
        let b = "https://b.example/example.com/m/@v/v1.0.0.zip";
        let cases = [
            (
                vec![o(0, a, 200)],
                "https://a.example,https://b.example",
                Some("https://a.example"),
                "first GOPROXY entry answered",
            ),
            (
                vec![o(0, a, 404), o(1, b, 200)],
                "https://a.example,https://b.example",
                Some("https://b.example"),
                "answered 404, so go tried the next",
            ),
            (
                vec![o(0, a, 502), o(1, b, 200)],
                "https://a.example|https://b.example",
                Some("https://b.example"),
                "'|' after https://a.example",
            ),
            (
                vec![o(0, a, 502)],
                "https://a.example,https://b.example",
                None,
                "',' moves on to https://b.example only after 404/410, this was 502",
            ),
            (
                vec![o(0, a, 404)],
                "https://a.example",
                None,
                "was the last GOPROXY entry",
            ),
        ];
        for (obs, goproxy, entry, why) in cases {
            let routes = module_routes(&obs, &env(goproxy));
            assert_eq!(routes.len(), 1, "{routes:?}");
            assert_eq!(routes[0].entry.as_deref(), entry, "{goproxy}");
            assert!(routes[0].why.contains(why), "{goproxy}: {}", routes[0].why);
        }
    }

    #[test]
    fn prefix_probing_is_one_line() {
        let obs = vec![
            o(0, "https://a.example/example.com/m/sub/pkg/@v/list", 404),
            o(1, "https://a.example/example.com/m/sub/@v/list", 404),
            o(2, "https://a.example/example.com/m/@v/list", 200),
        ];
        let routes = module_routes(&obs, &env("https://a.example"));
        assert_eq!(routes.len(), 2, "{routes:?}");
        assert!(
            routes[1].module.starts_with("2 path prefixes"),
            "{routes:?}"
        );
    }
}
