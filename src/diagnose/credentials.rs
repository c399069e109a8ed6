//! `credentials-missing` / `credentials-refused`: for a 401/403/407 answer, whether the
//! request carried `Authorization` (its scheme only), whether go could have had
//! credentials (GOAUTH, the `machine` names of .netrc) and the likely cause.
//!
//! Pure: the shell reads GOAUTH and the .netrc `machine` names (never the secrets).

use serde::{Deserialize, Serialize};

use super::{Cause, Finding, FindingEvidence, Observation};
use crate::gomod::url as gourl;

/// What go could know about credentials in the traced command's environment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthEnv {
    /// GOAUTH as set; `None` when unset (go 1.24+ then uses `netrc`; older go always
    /// reads .netrc).
    pub goauth: Option<String>,
    /// The .netrc go reads ($NETRC, else ~/.netrc), if it exists.
    pub netrc_path: Option<String>,
    /// Its `machine` names, in file order.
    pub netrc_machines: Vec<String>,
}

/// Why go had no working credentials, as far as the trace and environment tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LikelyCause {
    /// Credentials were sent and the server refused them (wrong, expired, no access).
    SentButRefused,
    /// GOAUTH=off: go sends no credentials at all.
    GoauthOff,
    /// GOAUTH does not include `netrc`; its helper or command supplied nothing.
    GoauthGaveNothing,
    /// No .netrc file where go looks.
    NoNetrc,
    /// .netrc exists, but no `machine` names this host.
    NoMatchingMachine,
    /// .netrc names the host without the port the URL uses (go#81253): go matches the
    /// `machine` against host:port and finds nothing.
    MachineWithoutPort,
    /// A matching `machine` exists, yet no Authorization was sent (an older go, or the
    /// entry lacks a login/password).
    MatchNotSent,
    /// The environment of the traced command is unknown (a `summary` of a trace).
    Unknown,
}

/// The facts behind a credentials finding. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialFacts {
    pub host: String,
    pub status: u16,
    /// The `Authorization` scheme the request carried (`Basic`, `Bearer`); `None` when it
    /// carried none; `""` when present but its scheme was redacted.
    pub authorization: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub goauth: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub netrc: Option<String>,
    /// The .netrc `machine` that matches the host exactly, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub netrc_machine: Option<String>,
    pub likely_cause: LikelyCause,
}

/// Analyses one refused request. `auth` is `None` when the environment is unknown.
pub fn analyse(o: &Observation, auth: Option<&AuthEnv>) -> CredentialFacts {
    let parsed = gourl::parse(&o.url);
    // go matches a machine against the URL's host as written, with its port if any.
    let url_host = parsed
        .as_ref()
        .map(|p| p.authority.to_ascii_lowercase())
        .unwrap_or_else(|| o.host.to_ascii_lowercase());
    let bare_host = gourl::host_of(&url_host).to_string();
    let goauth = auth.and_then(|a| a.goauth.clone());
    let exact = auth.and_then(|a| {
        a.netrc_machines
            .iter()
            .find(|m| m.eq_ignore_ascii_case(&url_host))
            .cloned()
    });
    let likely_cause = match (&o.authorization, auth) {
        (Some(_), _) => LikelyCause::SentButRefused,
        (None, None) => LikelyCause::Unknown,
        (None, Some(a)) => {
            let methods: Vec<&str> = a
                .goauth
                .as_deref()
                .unwrap_or("netrc")
                .split(';')
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .collect();
            let uses_netrc = methods.is_empty() || methods.contains(&"netrc");
            if methods == ["off"] {
                LikelyCause::GoauthOff
            } else if !uses_netrc {
                LikelyCause::GoauthGaveNothing
            } else if a.netrc_path.is_none() {
                LikelyCause::NoNetrc
            } else if exact.is_some() {
                LikelyCause::MatchNotSent
            } else if url_host != bare_host
                && a.netrc_machines
                    .iter()
                    .any(|m| m.eq_ignore_ascii_case(&bare_host))
            {
                LikelyCause::MachineWithoutPort
            } else {
                LikelyCause::NoMatchingMachine
            }
        }
    };
    CredentialFacts {
        host: url_host,
        status: o.status,
        authorization: o.authorization.clone(),
        goauth,
        netrc: auth.and_then(|a| a.netrc_path.clone()),
        netrc_machine: exact,
        likely_cause,
    }
}

/// Turns a `forbidden` (or origin 407) finding into a credentials finding.
pub fn explain(mut f: Finding, o: &Observation, auth: Option<&AuthEnv>) -> Finding {
    let facts = analyse(o, auth);
    let host = facts.host.clone();
    let bare = gourl::host_of(&host).to_string();
    let sent = match facts.authorization.as_deref() {
        None => "without credentials (no Authorization header)".to_string(),
        Some("") => "with an Authorization header (scheme redacted)".to_string(),
        Some(s) => format!("with Authorization: {s} …"),
    };
    let netrc = facts.netrc.as_deref().unwrap_or("~/.netrc");
    let (cause, why, advice) = match facts.likely_cause {
        LikelyCause::SentButRefused => (
            Cause::CredentialsRefused,
            "credentials were sent but refused".to_string(),
            format!("the credentials go sent for {host} are wrong, expired or lack access: renew the token (in {netrc} or your GOAUTH helper)"),
        ),
        LikelyCause::GoauthOff => (
            Cause::CredentialsMissing,
            "GOAUTH=off, so go sends no credentials".to_string(),
            "remove GOAUTH=off (go env -u GOAUTH) so go reads ~/.netrc, or set GOAUTH to a helper that supplies them".to_string(),
        ),
        LikelyCause::GoauthGaveNothing => (
            Cause::CredentialsMissing,
            format!("GOAUTH={} supplied no credentials for {host}", facts.goauth.as_deref().unwrap_or("")),
            format!("check that GOAUTH's helper answers for https://{host}/, or add netrc: GOAUTH='netrc;{}'", facts.goauth.as_deref().unwrap_or("")),
        ),
        LikelyCause::NoNetrc => (
            Cause::CredentialsMissing,
            "go found no .netrc (NETRC or ~/.netrc)".to_string(),
            format!("add `machine {host} login USER password TOKEN` to ~/.netrc (or point NETRC at one)"),
        ),
        LikelyCause::NoMatchingMachine => (
            Cause::CredentialsMissing,
            format!("{netrc} has no `machine {host}` entry"),
            format!("add `machine {host} login USER password TOKEN` to {netrc}"),
        ),
        LikelyCause::MachineWithoutPort => (
            Cause::CredentialsMissing,
            format!("{netrc} names `machine {bare}` but the URL uses {host}, and go matches host:port (go#81253)"),
            format!("add a second entry `machine {host} login USER password TOKEN` to {netrc}"),
        ),
        LikelyCause::MatchNotSent => (
            Cause::CredentialsMissing,
            format!("{netrc} has `machine {host}`, yet go sent nothing (go before 1.24 without GOAUTH, or the entry lacks login/password)"),
            format!("check the `machine {host}` entry has login and password, and that this go reads {netrc}"),
        ),
        LikelyCause::Unknown => (
            Cause::CredentialsMissing,
            "go sent no credentials".to_string(),
            format!("give go credentials for {host}: a `machine {host}` line in ~/.netrc, or GOAUTH (go 1.24+)"),
        ),
    };
    f.cause = cause;
    f.title = format!(
        "{host} answered {} to a request sent {sent}: {why}",
        o.status
    );
    f.advice = advice;
    f.evidence = Some(FindingEvidence::Credentials(facts));
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gomod::classify;

    fn refused(url: &str, authorization: Option<&str>) -> Observation {
        Observation {
            url: url.to_string(),
            status: 401,
            go: classify("GET", url, &[]),
            authorization: authorization.map(str::to_string),
            ..Observation::default()
        }
    }

    fn env(goauth: Option<&str>, netrc: Option<&[&str]>) -> AuthEnv {
        AuthEnv {
            goauth: goauth.map(str::to_string),
            netrc_path: netrc.map(|_| "/home/u/.netrc".to_string()),
            netrc_machines: netrc
                .unwrap_or_default()
                .iter()
                .map(|m| m.to_string())
                .collect(),
        }
    }

    #[test]
    fn likely_causes() {
        let with_port = "https://corp.example:8443/example.com/a/@v/list";
        let plain = "https://corp.example/example.com/a/@v/list";
        let table: Vec<(&str, Option<&str>, Option<AuthEnv>, LikelyCause)> = vec![
            (
                plain,
                Some("Basic"),
                Some(env(None, Some(&["corp.example"]))),
                LikelyCause::SentButRefused,
            ),
            (plain, None, None, LikelyCause::Unknown),
            (
                plain,
                None,
                Some(env(Some("off"), Some(&["corp.example"]))),
                LikelyCause::GoauthOff,
            ),
            (
                plain,
                None,
                Some(env(Some("git /src"), None)),
                LikelyCause::GoauthGaveNothing,
            ),
            (plain, None, Some(env(None, None)), LikelyCause::NoNetrc),
            (
                plain,
                None,
                Some(env(Some("netrc"), Some(&["other.example"]))),
                LikelyCause::NoMatchingMachine,
            ),
            (
                with_port,
                None,
                Some(env(None, Some(&["corp.example"]))),
                LikelyCause::MachineWithoutPort,
            ),
            (
                with_port,
                None,
                Some(env(None, Some(&["corp.example:8443"]))),
                LikelyCause::MatchNotSent,
            ),
            (
                plain,
                None,
                Some(env(Some("netrc;git /src"), Some(&[]))),
                LikelyCause::NoMatchingMachine,
            ),
        ];
        for (url, sent, auth, want) in table {
            let got = analyse(&refused(url, sent), auth.as_ref());
            assert_eq!(got.likely_cause, want, "{url} {sent:?} {auth:?}");
        }
    }

    #[test]
    fn the_finding_never_shows_a_secret_and_names_the_port_trap() {
        let o = refused("https://corp.example:8443/example.com/a/@v/list", None);
        let base = Finding {
            entries: vec![0],
            host: Some("corp.example:8443".into()),
            ..Finding::new(Cause::Forbidden, super::super::Severity::Error)
        };
        let f = explain(base, &o, Some(&env(None, Some(&["corp.example"]))));
        assert_eq!(f.cause, Cause::CredentialsMissing);
        assert!(f.title.contains("go#81253"), "{}", f.title);
        assert!(f.title.contains("without credentials"), "{}", f.title);
        assert!(
            f.advice.contains("machine corp.example:8443"),
            "{}",
            f.advice
        );
    }
}
