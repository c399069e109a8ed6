//! Credentials go would send to a GOPROXY host: `.netrc` lines matched the way cmd/go
//! matches them, GOAUTH's list syntax and a GOAUTH command's output format.
//!
//! Pure: the caller reads the files and runs the commands.

/// One `machine` entry of a `.netrc` file. `login` and `password` are empty when the
/// file does not give them (cmd/go then skips the entry, see [`parse_netrc`]).
#[derive(Clone, PartialEq, Eq)]
pub struct NetrcLine {
    pub machine: String,
    pub login: String,
    pub password: String,
}

impl NetrcLine {
    /// Whether go would use the entry: it has a login and a password.
    pub fn is_complete(&self) -> bool {
        !self.login.is_empty() && !self.password.is_empty()
    }
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

/// The entries go would use: the complete ones of [`netrc_entries`].
pub fn parse_netrc(text: &str) -> Vec<NetrcLine> {
    let mut lines = netrc_entries(text);
    lines.retain(NetrcLine::is_complete);
    lines
}

/// The `machine` names of a `.netrc` text, in file order, whether or not their entry is
/// complete; for explaining a refused request without keeping any secret.
pub fn netrc_machines(text: &str) -> Vec<String> {
    netrc_entries(text).into_iter().map(|l| l.machine).collect()
}

/// Every `machine` entry of `.netrc`, read as cmd/go reads the file: whitespace-separated
/// `keyword value` pairs on each line; `login` and `password` fill the current machine
/// until it has both (later ones are ignored until the next `machine`), `macdef` skips
/// to the next empty line, and a `default` left over at a line's end ends the file.
pub fn netrc_entries(text: &str) -> Vec<NetrcLine> {
    let mut out: Vec<NetrcLine> = Vec::new();
    // The entry still being filled: from its `machine` until it is complete.
    let mut open = false;
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
            let value = fields[i + 1].to_string();
            match (fields[i], out.last_mut().filter(|_| open)) {
                ("machine", _) => {
                    out.push(NetrcLine {
                        machine: value,
                        login: String::new(),
                        password: String::new(),
                    });
                    open = true;
                }
                ("login", Some(entry)) => entry.login = value,
                ("password", Some(entry)) => entry.password = value,
                ("macdef", _) => in_macro = true,
                _ => {}
            }
            if out.last().is_some_and(NetrcLine::is_complete) {
                open = false;
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
        // The diagnosis's view: every machine go's reading gets to, complete or not.
        assert_eq!(
            netrc_machines(text),
            ["corp.example", "corp.example:8443", "half.example"]
        );
    }

    #[test]
    fn netrc_machine_names_only() {
        let text = "machine a.example login u password secret1\n\
                    machine b.example:8443\n  login u\n  password machine\n\
                    macdef init\nmachine evil\n\ndefault login x password y\n";
        assert_eq!(netrc_machines(text), ["a.example", "b.example:8443"]);
        // A login or password after an entry is complete does not reopen it, and
        // values before any machine belong to none.
        let text = "login early password early\n\
                    machine m login a password p login late\nmachine n password q\n";
        let entries = netrc_entries(text);
        assert_eq!(entries.len(), 2);
        assert_eq!(
            (entries[0].login.as_str(), entries[0].password.as_str()),
            ("a", "p")
        );
        assert_eq!(
            (entries[1].login.as_str(), entries[1].password.as_str()),
            ("", "q")
        );
        assert_eq!(parse_netrc(text).len(), 1);
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
