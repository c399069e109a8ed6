//! Validated run-time configuration shared by the commands: connect-to rules, the parent
//! proxy, interception exclusions and limits. Parsing here is pure; no env reads.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--connect-to {spec:?}: {reason} (expected HOST:PORT:ADDR:PORT, e.g. proxy.golang.org:443:127.0.0.1:8443)")]
    ConnectTo { spec: String, reason: String },
    #[error("--upstream-proxy {spec:?}: {reason} (expected http://[user:pass@]host:port)")]
    UpstreamProxy { spec: String, reason: String },
    #[error("--admin {addr}: the control API changes what the proxy does, so it only listens on loopback (127.0.0.1 or ::1)")]
    RemoteAdmin { addr: SocketAddr },
    #[error("cannot read the fault rules file {path}")]
    FaultsFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Faults(crate::fault::FaultError),
    #[error("refusing to listen on {addr}: an open intercepting proxy lets anyone who reaches it read and change your traffic; pass --allow-remote if you really mean it")]
    RemoteListen { addr: SocketAddr },
}

/// curl's `--connect-to HOST1:PORT1:HOST2:PORT2`: empty HOST1/PORT1 match anything, empty
/// HOST2/PORT2 keep the original.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectTo {
    pub from_host: Option<String>,
    pub from_port: Option<u16>,
    pub to_host: Option<String>,
    pub to_port: Option<u16>,
}

impl ConnectTo {
    pub fn parse(spec: &str) -> Result<Self, ConfigError> {
        let err = |reason: &str| ConfigError::ConnectTo {
            spec: spec.to_string(),
            reason: reason.to_string(),
        };
        let fields = split_host_port_fields(spec)
            .ok_or_else(|| err("unbalanced [ ] around an IPv6 address"))?;
        if fields.len() != 4 {
            return Err(err(&format!("has {} fields, needs 4", fields.len())));
        }
        let host = |s: &str| (!s.is_empty()).then(|| s.to_ascii_lowercase());
        let port = |s: &str| -> Result<Option<u16>, ConfigError> {
            if s.is_empty() {
                return Ok(None);
            }
            s.parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .map(Some)
                .ok_or_else(|| err(&format!("{s:?} is not a port")))
        };
        Ok(ConnectTo {
            from_host: host(&fields[0]),
            from_port: port(&fields[1])?,
            to_host: host(&fields[2]),
            to_port: port(&fields[3])?,
        })
    }
}

/// Splits on ':' outside of `[...]`, dropping the brackets.
fn split_host_port_fields(spec: &str) -> Option<Vec<String>> {
    let mut fields = vec![String::new()];
    let mut in_brackets = false;
    for c in spec.chars() {
        match c {
            '[' if !in_brackets => in_brackets = true,
            ']' if in_brackets => in_brackets = false,
            ':' if !in_brackets => fields.push(String::new()),
            c => fields.last_mut()?.push(c),
        }
    }
    (!in_brackets).then_some(fields)
}

/// The first matching rule decides where `host:port` is dialled.
pub fn apply_connect_to(rules: &[ConnectTo], host: &str, port: u16) -> (String, u16) {
    for rule in rules {
        let host_ok = rule
            .from_host
            .as_deref()
            .is_none_or(|h| h.eq_ignore_ascii_case(host));
        let port_ok = rule.from_port.is_none_or(|p| p == port);
        if host_ok && port_ok {
            return (
                rule.to_host.clone().unwrap_or_else(|| host.to_string()),
                rule.to_port.unwrap_or(port),
            );
        }
    }
    (host.to_string(), port)
}

/// A parent proxy to chain through (`--upstream-proxy`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamProxy {
    pub host: String,
    pub port: u16,
    /// Ready `Proxy-Authorization` value (`Basic ...`).
    pub authorization: Option<String>,
    pub user: Option<String>,
}

impl UpstreamProxy {
    pub fn parse(spec: &str) -> Result<Self, ConfigError> {
        let err = |reason: &str| ConfigError::UpstreamProxy {
            spec: crate::trace::redact_userinfo(spec, crate::trace::REDACTED),
            reason: reason.to_string(),
        };
        let rest = spec
            .strip_prefix("http://")
            .ok_or_else(|| err("only http:// parent proxies are supported"))?;
        let rest = rest.trim_end_matches('/');
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let fields = split_host_port_fields(hostport).ok_or_else(|| err("unbalanced [ ]"))?;
        let (host, port) = match fields.as_slice() {
            [h, p] if !h.is_empty() => (
                h.clone(),
                p.parse::<u16>()
                    .map_err(|_| err(&format!("{p:?} is not a port")))?,
            ),
            [h] if !h.is_empty() => (h.clone(), 8080),
            _ => return Err(err("missing host")),
        };
        let (authorization, user) = match userinfo {
            Some(u) => {
                let (decoded, _) = crate::gomod::url::percent_decode(u);
                let user = decoded.split(':').next().unwrap_or("").to_string();
                (
                    Some(format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(decoded.as_bytes())
                    )),
                    Some(user),
                )
            }
            None => (None, None),
        };
        Ok(UpstreamProxy {
            host,
            port,
            authorization,
            user,
        })
    }

    /// `http://user@host:port` without the password.
    pub fn display(&self) -> String {
        match &self.user {
            Some(u) => format!("http://{u}@{}:{}", self.host, self.port),
            None => format!("http://{}:{}", self.host, self.port),
        }
    }
}

/// go's own budgets for an HTTPS request through a proxy (net/http's DefaultTransport):
/// the dial (DNS + TCP) may take 30 s, and the TLS handshake 10 s from the moment the
/// CONNECT is answered.
pub const GO_DIAL_BUDGET: Duration = Duration::from_secs(30);
pub const GO_TLS_HANDSHAKE_BUDGET: Duration = Duration::from_secs(10);

/// The command line's defaults: clap's `default_value_t` and `ProxyConfig::new` both
/// read them here, so an embedded proxy (the demo, the tests) starts like `modscope proxy`.
pub mod defaults {
    use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

    pub const LISTEN: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8080));
    pub const MAX_CONNECTIONS: usize = 1024;
    pub const HEADER_TIMEOUT_SECS: u64 = 30;
    pub const IDLE_TIMEOUT_SECS: u64 = 300;
    /// go's own budgets: shorter limits would fail origins that go alone reaches.
    pub const CONNECT_TIMEOUT_SECS: u64 = super::GO_DIAL_BUDGET.as_secs();
    pub const TLS_TIMEOUT_SECS: u64 = super::GO_TLS_HANDSHAKE_BUDGET.as_secs();
    pub const STALL_AFTER_SECS: u64 = 10;
    pub const SHUTDOWN_GRACE_SECS: u64 = 10;
}

/// Everything the proxy core needs, validated.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    pub listen: SocketAddr,
    pub allow_remote: bool,
    pub ca_dir: PathBuf,
    pub upstream_ca: Vec<PathBuf>,
    pub connect_to: Vec<ConnectTo>,
    pub upstream_proxy: Option<UpstreamProxy>,
    pub no_intercept: Vec<String>,
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub connect_timeout: Duration,
    pub tls_timeout: Duration,
    /// A response body that waits this long for data from the origin is recorded as
    /// stalled (go has no read timeout, so nothing else would say it).
    pub stall_after: Duration,
    pub shutdown_grace: Duration,
    pub quiet: bool,
    pub color: bool,
    /// Fault rules from --faults/--fault/--profile, and the seed of their randomness.
    pub fault_rules: Vec<crate::fault::Rule>,
    pub fault_seed: u64,
    /// GOPROXY bases known from the environment, for decoding module requests.
    pub goproxy_bases: Vec<String>,
    /// The control API's address (loopback only).
    pub admin: Option<SocketAddr>,
    /// Write TLS secrets of both sides here (NSS key log format).
    pub keylog: Option<PathBuf>,
    /// `--goproxy`: the GOPROXY entries modscope stands in front of.
    pub goproxy: Option<std::sync::Arc<crate::gomod::GoproxyRoutes>>,
}

impl ProxyConfig {
    /// The command line's defaults with the CA in `ca_dir`. The CA directory has no
    /// default here: the CLI's comes from the environment (`ca::default_ca_dir`), and an
    /// embedder that forgot it would sign with the user's own CA. Unlike the CLI, which
    /// draws a seed from the clock and prints it, the fault seed is fixed (1).
    pub fn new(ca_dir: PathBuf) -> Self {
        ProxyConfig {
            listen: defaults::LISTEN,
            allow_remote: false,
            ca_dir,
            upstream_ca: Vec::new(),
            connect_to: Vec::new(),
            upstream_proxy: None,
            no_intercept: Vec::new(),
            max_connections: defaults::MAX_CONNECTIONS,
            header_timeout: Duration::from_secs(defaults::HEADER_TIMEOUT_SECS),
            idle_timeout: Duration::from_secs(defaults::IDLE_TIMEOUT_SECS),
            connect_timeout: Duration::from_secs(defaults::CONNECT_TIMEOUT_SECS),
            tls_timeout: Duration::from_secs(defaults::TLS_TIMEOUT_SECS),
            stall_after: Duration::from_secs(defaults::STALL_AFTER_SECS),
            shutdown_grace: Duration::from_secs(defaults::SHUTDOWN_GRACE_SECS),
            quiet: false,
            color: false,
            fault_rules: Vec::new(),
            fault_seed: 1,
            goproxy_bases: Vec::new(),
            admin: None,
            keylog: None,
            goproxy: None,
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.listen.ip().is_loopback() && !self.allow_remote {
            return Err(ConfigError::RemoteListen { addr: self.listen });
        }
        if let Some(admin) = self.admin.filter(|a| !a.ip().is_loopback()) {
            return Err(ConfigError::RemoteAdmin { addr: admin });
        }
        Ok(())
    }

    /// A warning when the upstream limits are shorter than go's own budgets (30 s to
    /// dial, 10 s for the TLS handshake): modscope would then fail slow origins that go
    /// alone survives, changing the outcome it is meant to observe.
    pub fn go_handshake_warning(&self) -> Option<String> {
        let (dial, tls) = (GO_DIAL_BUDGET, GO_TLS_HANDSHAKE_BUDGET);
        (self.connect_timeout < dial || self.tls_timeout < tls).then(|| {
            format!(
                "--connect-timeout {:?} / --tls-timeout {:?} are shorter than go's own budgets ({dial:?} to dial, {tls:?} for the TLS handshake): a slow origin that go alone reaches can fail through modscope",
                self.connect_timeout, self.tls_timeout
            )
        })
    }

    pub fn intercepts(&self, host: &str) -> bool {
        !self
            .no_intercept
            .iter()
            .any(|g| crate::net::host_match(g, host))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_to_parsing() {
        let table = [
            (
                "proxy.golang.org:443:127.0.0.1:8443",
                Some(("proxy.golang.org", 443, "127.0.0.1", 8443)),
            ),
            ("::127.0.0.1:", Some(("", 0, "127.0.0.1", 0))),
            (
                "a.example:443:[::1]:9000",
                Some(("a.example", 443, "::1", 9000)),
            ),
        ];
        for (spec, want) in table {
            let got = ConnectTo::parse(spec).unwrap();
            let (fh, fp, th, tp) = want.unwrap();
            assert_eq!(got.from_host.as_deref().unwrap_or(""), fh, "{spec}");
            assert_eq!(got.from_port.unwrap_or(0), fp, "{spec}");
            assert_eq!(got.to_host.as_deref().unwrap_or(""), th, "{spec}");
            assert_eq!(got.to_port.unwrap_or(0), tp, "{spec}");
        }
        for bad in ["a:b", "a:443:b:notaport", "[::1:443:a:1", "a:0:b:1"] {
            assert!(ConnectTo::parse(bad).is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn connect_to_first_match_wins() {
        let rules = vec![
            ConnectTo::parse("proxy.golang.org:443:127.0.0.1:8443").unwrap(),
            ConnectTo::parse("::127.0.0.2:").unwrap(),
        ];
        assert_eq!(
            apply_connect_to(&rules, "PROXY.golang.org", 443),
            ("127.0.0.1".into(), 8443)
        );
        assert_eq!(
            apply_connect_to(&rules, "proxy.golang.org", 80),
            ("127.0.0.2".into(), 80)
        );
        assert_eq!(
            apply_connect_to(&[], "x.example", 1),
            ("x.example".into(), 1)
        );
    }

    #[test]
    fn upstream_proxy_parsing() {
        let p = UpstreamProxy::parse("http://alice:s%40cret@corp-proxy:3128").unwrap();
        assert_eq!((p.host.as_str(), p.port), ("corp-proxy", 3128));
        assert_eq!(p.authorization.as_deref(), Some("Basic YWxpY2U6c0BjcmV0"));
        assert_eq!(p.display(), "http://alice@corp-proxy:3128");
        let err = UpstreamProxy::parse("socks5://alice:pw@h:1")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("pw"), "password leaked in {err}");
        assert!(UpstreamProxy::parse("http://:3128").is_err());
    }

    #[test]
    fn host_globs() {
        let table = [
            ("*.corp.example", "git.corp.example", true),
            ("*.corp.example", "corp.example", false),
            ("*", "anything", true),
            ("sum.golang.org", "SUM.golang.org", true),
            ("proxy.*.org", "proxy.golang.org", true),
            ("a?c", "abc", true),
            ("a?c", "abbc", false),
            // One glob for --no-intercept and fault rules: the FQDN form is the same host.
            ("sum.golang.org", "sum.golang.org.", true),
            ("*.corp.example.", "git.corp.example", true),
        ];
        for (glob, host, want) in table {
            assert_eq!(crate::net::host_match(glob, host), want, "{glob} vs {host}");
        }
    }

    #[test]
    fn remote_listen_needs_consent() {
        let mut c = ProxyConfig::new(PathBuf::from("/tmp/x"));
        assert!(c.validate().is_ok(), "the defaults listen on loopback");
        c.listen = "0.0.0.0:8080".parse().unwrap();
        assert!(c.validate().is_err());
        c.allow_remote = true;
        assert!(c.validate().is_ok());
    }
}
