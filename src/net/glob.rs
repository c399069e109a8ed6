//! The one wildcard matcher: plain globs (fault rule paths and versions), host globs
//! (fault rules and `--no-intercept`: case-insensitive, trailing dot ignored) and Go's
//! path-element-aware module prefix globs (the GOPRIVATE convention).
//!
//! Hand-written because the needs are tiny (`*` and `?`) and a regex engine would
//! invite patterns users cannot read back.

/// Matches `text` against `pattern` where `*` is any run of characters (including
/// `/` and `.`) and `?` is exactly one character. Everything else is literal.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    // Position of the last `*` seen and the text index it is currently absorbing up to;
    // on mismatch we let that star eat one more character. Linear in practice and
    // O(|p|·|t|) at worst, with no recursion to blow the stack.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Host names compare case-insensitively and a trailing dot (FQDN form) is ignored,
/// so `Proxy.Golang.org.` and `proxy.golang.org` are the same host.
pub fn host_match(pattern: &str, host: &str) -> bool {
    let norm = |s: &str| s.trim_end_matches('.').to_ascii_lowercase();
    glob_match(&norm(pattern), &norm(host))
}

/// GOPRIVATE-style match: the pattern matches the module path or any path below it,
/// element by element, and `*` never crosses a `/`. So `golang.org/x/*` matches
/// `golang.org/x/mod` and `golang.org/x/mod/v2` but not `golang.org/xyz`.
pub fn module_match(pattern: &str, module: &str) -> bool {
    let pattern = pattern.trim_end_matches('/');
    if pattern.is_empty() {
        return false;
    }
    let mut path = module.split('/');
    for want in pattern.split('/') {
        match path.next() {
            Some(got) if glob_match(want, got) => {}
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_globs() {
        let cases = [
            ("*", "", true),
            ("*", "anything/at/all", true),
            ("", "", true),
            ("", "x", false),
            ("abc", "abc", true),
            ("abc", "abd", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("*.zip", "/m/@v/v1.0.0.zip", true),
            ("*.zip", "/m/@v/v1.0.0.mod", false),
            ("*/@v/list", "/golang.org/x/mod/@v/list", true),
            ("v1.*", "v1.2.3", true),
            ("v1.*", "v10.0.0", false),
            ("*-rc*", "v1.0.0-rc.1", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("**", "x", true),
            ("é?", "éa", true),
        ];
        for (p, t, want) in cases {
            assert_eq!(glob_match(p, t), want, "{p:?} vs {t:?}");
        }
    }

    #[test]
    fn pathological_pattern_terminates() {
        let text = "a".repeat(2000);
        assert!(!glob_match("*a*a*a*a*a*a*a*b", &text));
    }

    #[test]
    fn hosts() {
        assert!(host_match("*.example.com", "a.example.com"));
        assert!(host_match("*.example.com", "a.b.example.com"));
        assert!(!host_match("*.example.com", "example.com"));
        assert!(host_match("proxy.golang.org", "PROXY.golang.org."));
        assert!(host_match("*", "sum.golang.org"));
        assert!(!host_match("proxy.golang.org", "sum.golang.org"));
    }

    #[test]
    fn modules() {
        let cases = [
            ("golang.org/x/*", "golang.org/x/mod", true),
            ("golang.org/x/*", "golang.org/x/mod/v2", true),
            ("golang.org/x/*", "golang.org/x", false),
            ("golang.org/x/*", "golang.org/xyz/mod", false),
            ("golang.org/x", "golang.org/xyz", false),
            ("github.com/a/b", "github.com/a/b", true),
            ("github.com/a/b", "github.com/a/b/v2", true),
            ("github.com/a/b", "github.com/a", false),
            ("*.corp.example/*", "git.corp.example/team", true),
            ("github.com/*/x", "github.com/a/b/x", false),
            ("github.com/a/b/", "github.com/a/b", true),
            ("", "github.com/a/b", false),
            ("github.com/Azure/*", "github.com/azure/x", false),
        ];
        for (p, m, want) in cases {
            assert_eq!(module_match(p, m), want, "{p:?} vs {m:?}");
        }
    }
}
