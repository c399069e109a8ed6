//! PURE: requests whose `Host` (or HTTP/2 `:authority`) names another site than the one
//! modscope connected to: the recorded URL is the dialled authority, so say what the
//! client claimed instead.

use super::{Cause, Finding, Observation, Severity};

/// One finding per dialled host whose requests named another authority.
pub(super) fn findings(obs: &[Observation]) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    for o in obs {
        let Some(named) = o.host_header.as_deref() else {
            continue;
        };
        if same_authority(&o.url, &o.host, named) {
            continue;
        }
        match out.iter_mut().find(|f| f.host.as_deref() == Some(&o.host)) {
            Some(f) => f.entries.push(o.index),
            None => out.push(Finding {
                entries: vec![o.index],
                host: Some(o.host.clone()),
                title: format!(
                    "{}: requests through the tunnel to {} named another site in Host: {named}",
                    o.host, o.host
                ),
                advice: "modscope records the authority it dialled (the CONNECT target); a client that sends another Host is addressing a different site through this tunnel (go never does): check the client".to_string(),
                detail: Some(format!("{} {} with Host: {named}", o.method, o.url)),
                ..Finding::new(Cause::HostHeaderMismatch, Severity::Warning)
            }),
        }
    }
    out
}

/// `named` and the URL's authority are the same, ignoring case and the scheme's default port.
fn same_authority(url: &str, authority: &str, named: &str) -> bool {
    let default = if url.starts_with("https://") {
        ":443"
    } else {
        ":80"
    };
    let bare = |a: &str| {
        a.trim()
            .strip_suffix(default)
            .unwrap_or(a.trim())
            .to_ascii_lowercase()
    };
    bare(authority) == bare(named)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(index: usize, url: &str, host_header: Option<&str>) -> Observation {
        let host = url.split('/').nth(2).unwrap_or("").to_string();
        Observation {
            index,
            method: "GET".into(),
            url: url.into(),
            host,
            host_header: host_header.map(str::to_string),
            ..Observation::default()
        }
    }

    #[test]
    fn only_a_host_naming_another_site_is_reported() {
        let table = [
            (
                obs(
                    0,
                    "https://goproxy.example/m/@v/list",
                    Some("goproxy.example"),
                ),
                false,
            ),
            (
                obs(
                    1,
                    "https://goproxy.example/m/@v/list",
                    Some("GoProxy.example:443"),
                ),
                false,
            ),
            (obs(2, "https://goproxy.example/m/@v/list", None), false),
            (
                obs(3, "http://plain.example:8080/x", Some("plain.example:8080")),
                false,
            ),
            (
                obs(
                    4,
                    "https://goproxy.example/m/@v/list",
                    Some("evil.example:8443"),
                ),
                true,
            ),
            (
                obs(
                    5,
                    "https://goproxy.example/m/@v/list",
                    Some("goproxy.example:8443"),
                ),
                true,
            ),
            (
                obs(6, "http://plain.example/x", Some("plain.example:443")),
                true,
            ),
        ];
        for (o, want) in &table {
            assert_eq!(
                !findings(std::slice::from_ref(o)).is_empty(),
                *want,
                "{o:?}"
            );
        }
        let all: Vec<Observation> = table.into_iter().map(|(o, _)| o).collect();
        let f = findings(&all);
        assert_eq!(f.len(), 2, "{f:?}");
        assert_eq!(f[0].cause, Cause::HostHeaderMismatch);
        assert_eq!(f[0].entries, vec![4, 5]);
        assert!(f[0].title.contains("evil.example:8443"), "{}", f[0].title);
    }
}
