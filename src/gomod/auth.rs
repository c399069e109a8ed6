//! Credentials go would send to a GOPROXY host: `.netrc` lines matched the way cmd/go
//! matches them, GOAUTH's list syntax and a GOAUTH command's output format.
//!
//! Pure: the caller reads the files and runs the commands.

/// One complete `machine` entry of a `.netrc` file.
#[derive(Clone, PartialEq, Eq)]
pub struct NetrcLine {
    pub machine: String,
    pub login: String,
    pub password: String,
}

impl std::fmt::Debug for NetrcLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetrcLine")
            .field("machine", &self.machine)
            .field("login", &self.login)
            .field("password", &"[redacted]")
            .finish()
    }
}

/// Parses `.netrc` as cmd/go does: whitespace-separated `keyword value` pairs on each
/// line, an entry kept once it has machine, login and password, `macdef` skipping to the
/// next empty line, and a line-leading `default` ending the file.
pub fn parse_netrc(text: &str) -> Vec<NetrcLine> {
    let mut out = Vec::new();
    let (mut machine, mut login, mut password) = (String::new(), String::new(), String::new());
    let mut in_macro = false;
    for line in text.split('\n') {
        if in_macro {
            if line.trim_end_matches('\r').is_empty() {
                in_macro = false;
            }
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let mut i = 0;
        while i + 1 < fields.len() {
            match fields[i] {
                "machine" => {
                    machine = fields[i + 1].to_string();
                    login.clear();
                    password.clear();
                }
                "login" => login = fields[i + 1].to_string(),
                "password" => password = fields[i + 1].to_string(),
                "macdef" => in_macro = true,
                _ => {}
            }
            if !machine.is_empty() && !login.is_empty() && !password.is_empty() {
                out.push(NetrcLine {
                    machine: std::mem::take(&mut machine),
                    login: std::mem::take(&mut login),
                    password: std::mem::take(&mut password),
                });
            }
            i += 2;
        }
        if fields.get(i) == Some(&"default") {
            // "There can be only one default token, and it must be after all machine tokens."
            break;
        }
    }
    out
}

/// The entry go would use for a URL whose host part (`host` or `host:port`, exactly as in
/// the URL) is `url_host`: the first whose `machine` equals it. A machine without the port
/// does not match a URL with one.
pub fn netrc_for<'a>(lines: &'a [NetrcLine], url_host: &str) -> Option<&'a NetrcLine> {
    lines.iter().find(|l| l.machine == url_host)
}

/// One GOAUTH element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GoAuthMode {
    Off,
    Netrc,
    /// `git DIR`: git credential helpers (modscope does not run them).
    Git(String),
    /// A command (space-separated arguments) that prints credential sets for a URL.
    Command(Vec<String>),
}

/// Parses GOAUTH (`;`-separated); unset means `netrc`, as in go.
pub fn parse_goauth(value: Option<&str>) -> Vec<GoAuthMode> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return vec![GoAuthMode::Netrc];
    };
    value
        .split(';')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| {
            let words: Vec<String> = c.split_whitespace().map(str::to_string).collect();
            match words.first().map(String::as_str) {
                Some("off") => GoAuthMode::Off,
                Some("netrc") => GoAuthMode::Netrc,
                Some("git") => GoAuthMode::Git(words.get(1).cloned().unwrap_or_default()),
                _ => GoAuthMode::Command(words),
            }
        })
        .collect()
}

/// Headers a GOAUTH command printed for URL prefixes: credential sets of URL lines, a
/// blank line, header lines and a blank line. The set whose URL is the longest prefix of
/// `url` (on a path boundary) wins; malformed sets are skipped.
pub fn goauth_headers_for(output: &str, url: &str) -> Vec<(String, String)> {
    let mut best: Option<(usize, Vec<(String, String)>)> = None;
    let mut lines = output.lines().map(|l| l.trim_end_matches('\r')).peekable();
    while lines.peek().is_some() {
        let urls: Vec<&str> = lines.by_ref().take_while(|l| !l.is_empty()).collect();
        let headers: Vec<(String, String)> = lines
            .by_ref()
            .take_while(|l| !l.is_empty())
            .filter_map(|l| {
                let (k, v) = l.split_once(':')?;
                Some((k.trim().to_string(), v.trim().to_string()))
            })
            .collect();
        if urls.is_empty() || headers.is_empty() {
            continue;
        }
        for prefix in urls {
            let prefix = prefix.trim_end_matches('/');
            let matches = url == prefix
                || url
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with('/'));
            if matches && best.as_ref().is_none_or(|(len, _)| prefix.len() > *len) {
                best = Some((prefix.len(), headers.clone()));
            }
        }
    }
    best.map(|(_, h)| h).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netrc_is_read_like_go() {
        let text = "machine corp.example login alice password s3cret\n\
                    machine corp.example:8443\n  login bob\n  password pw2\n\
                    macdef init\nmachine hidden.example login x password y\n\n\
                    machine half.example login only\n\
                    default\n login anon password anon\n\
                    machine after.example login z password z\n";
        let lines = parse_netrc(text);
        let machines: Vec<&str> = lines.iter().map(|l| l.machine.as_str()).collect();
        assert_eq!(machines, ["corp.example", "corp.example:8443"]);
        let table = [
            ("corp.example", Some("alice")),
            ("corp.example:8443", Some("bob")),
            // go matches URL.Host exactly: a port in the URL needs the port in .netrc.
            ("corp.example:443", None),
            ("CORP.example", None),
            ("hidden.example", None),
            ("after.example", None),
        ];
        for (host, want) in table {
            assert_eq!(
                netrc_for(&lines, host).map(|l| l.login.as_str()),
                want,
                "{host}"
            );
        }
        assert!(!format!("{lines:?}").contains("s3cret"));
    }

    #[test]
    fn goauth_list() {
        assert_eq!(parse_goauth(None), [GoAuthMode::Netrc]);
        assert_eq!(parse_goauth(Some(" ")), [GoAuthMode::Netrc]);
        assert_eq!(
            parse_goauth(Some("netrc; git /src ;my-helper --flag")),
            [
                GoAuthMode::Netrc,
                GoAuthMode::Git("/src".into()),
                GoAuthMode::Command(vec!["my-helper".into(), "--flag".into()]),
            ]
        );
        assert_eq!(parse_goauth(Some("off")), [GoAuthMode::Off]);
    }

    #[test]
    fn goauth_output_longest_prefix_wins() {
        let out = "https://corp.example\nhttps://other.example/\n\nAuthorization: Basic AAA\n\n\
                   https://corp.example/go/private\n\nAuthorization: Bearer BBB\nX-Extra: 1\n\n\
                   garbage-without-headers\n\n";
        assert_eq!(
            goauth_headers_for(out, "https://corp.example/go"),
            [("Authorization".to_string(), "Basic AAA".to_string())]
        );
        assert_eq!(
            goauth_headers_for(out, "https://corp.example/go/private"),
            [
                ("Authorization".to_string(), "Bearer BBB".to_string()),
                ("X-Extra".to_string(), "1".to_string())
            ]
        );
        assert!(goauth_headers_for(out, "https://corp.examplex/").is_empty());
        assert!(goauth_headers_for(out, "https://none.example/").is_empty());
    }
}
