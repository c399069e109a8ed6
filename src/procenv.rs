//! The process environment in both directions: what modscope finds in its own (programs
//! on PATH, GOPROXY) and the variables that send a child process or a shell through the
//! proxy and make it trust the modscope CA.

use std::path::{Path, PathBuf};

/// The first executable `name` on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A GOPROXY value with each URL's userinfo redacted (when `redact`).
pub fn redact_goproxy(goproxy: Option<&str>, redact: bool) -> Option<String> {
    goproxy.map(|g| match redact {
        true => crate::trace::redact_url_list(g, crate::trace::REDACTED),
        false => g.to_string(),
    })
}

/// Variables that send a child through the proxy: both spellings of the proxy variables
/// (curl reads only lower-case `http_proxy`), and the bundle (system roots + the modscope
/// CA) for go (`SSL_CERT_FILE`), git, curl, Python requests and Node.
pub fn child_env(proxy_url: &str, bundle: &Path) -> Vec<(&'static str, String)> {
    let b = bundle.display().to_string();
    let mut vars: Vec<(&'static str, String)> =
        ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"]
            .into_iter()
            .map(|k| (k, proxy_url.to_string()))
            .collect();
    vars.extend(
        [
            "SSL_CERT_FILE",
            "GIT_SSL_CAINFO",
            "CURL_CA_BUNDLE",
            "REQUESTS_CA_BUNDLE",
            "NODE_EXTRA_CA_CERTS",
        ]
        .into_iter()
        .map(|k| (k, b.clone())),
    );
    vars
}

/// The lines a shell needs to send go (and curl, Python, Node) through the proxy.
pub fn export_lines(proxy_url: &str, bundle: &Path) -> String {
    let vars = child_env(proxy_url, bundle);
    let line = |keys: &[(&str, String)]| {
        let parts: Vec<String> = keys.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("export {}\n", parts.join(" "))
    };
    let (proxies, cas) = vars.split_at(4);
    format!("{}{}", line(proxies), line(cas))
}
