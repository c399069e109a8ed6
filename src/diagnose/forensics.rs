//! Diagnosis with evidence beyond the exchanges: go.sum, zip listings and the credential
//! environment. Adds `checksum-mismatch`/`zip-rejected`, turns refusals into credential
//! findings, and raises private paths that reached a public service to `private-path-leak`.
//!
//! Pure: the shell gathers the [`Evidence`].

use std::collections::HashMap;

use super::checksums::checksum_findings;
use super::credentials::{self, AuthEnv};
use super::{diagnose, Cause, Finding, GoEnv, Observation, Severity};
use crate::gomod::dirhash::ZipFile;
use crate::gomod::gosum::SumLine;

/// A go.sum file's lines with a label for messages (its path).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GoSumFile {
    pub label: String,
    pub lines: Vec<SumLine>,
}

/// What the shell could gather besides the exchanges.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    pub go_sum: Option<GoSumFile>,
    /// Listings of served zips by observation index (see `zips_to_compare`).
    pub zips: HashMap<usize, Vec<ZipFile>>,
    pub auth: Option<AuthEnv>,
}

/// Public module proxies: a private path name sent there has left the company.
const PUBLIC_PROXIES: &[&str] = &[
    "proxy.golang.org",
    "goproxy.io",
    "goproxy.cn",
    "proxy.golang.com.cn",
    "mirrors.aliyun.com",
];
/// Public checksum databases (directly, or proxied under `/sumdb/<name>/`).
const PUBLIC_SUMDBS: &[&str] = &["sum.golang.org", "sum.golang.google.cn"];

fn is_public(o: &Observation) -> bool {
    let host = crate::gomod::url::host_of(&o.host).to_ascii_lowercase();
    if o.go.kind.is_sumdb() {
        let base = o.go.base.as_deref().unwrap_or("");
        PUBLIC_SUMDBS.contains(&host.as_str())
            || PUBLIC_SUMDBS
                .iter()
                .any(|db| base.ends_with(&format!("/sumdb/{db}")))
    } else {
        PUBLIC_PROXIES.contains(&host.as_str())
    }
}

/// [`diagnose`] plus the forensic findings, most severe first, then in trace order.
pub fn diagnose_all(obs: &[Observation], env: Option<&GoEnv>, ev: &Evidence) -> Vec<Finding> {
    let by_index = |i: &usize| obs.iter().find(|o| o.index == *i);
    let mut findings: Vec<Finding> = diagnose(obs, env)
        .into_iter()
        .map(|f| {
            let refused = f
                .entries
                .iter()
                .filter_map(by_index)
                .find(|o| o.error.is_none() && matches!(o.status, 401 | 403 | 407));
            match (f.cause, refused) {
                (Cause::Forbidden | Cause::ProxyAuthRequired, Some(o)) => {
                    credentials::explain(f, o, ev.auth.as_ref())
                }
                (Cause::PrivateModuleViaProxy | Cause::PrivateModuleViaSumdb, _)
                    if f.entries.iter().filter_map(by_index).any(is_public) =>
                {
                    leak(f)
                }
                _ => f,
            }
        })
        .collect();
    findings.extend(checksum_findings(obs, ev.go_sum.as_ref(), &ev.zips));
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| {
                let first = |f: &Finding| f.entries.first().copied().unwrap_or(usize::MAX);
                first(a).cmp(&first(b))
            })
            .then_with(|| a.cause.cmp(&b.cause))
    });
    findings
}

fn leak(mut f: Finding) -> Finding {
    let what = if f.cause == Cause::PrivateModuleViaSumdb {
        "a public checksum database"
    } else {
        "a public module proxy"
    };
    let host = f.host.clone().unwrap_or_default();
    let rest = f
        .title
        .strip_prefix(&format!("{host}: "))
        .unwrap_or(&f.title)
        .to_string();
    f.title = format!("private path leak to {what} {host}: {rest}");
    f.cause = Cause::PrivatePathLeak;
    f.severity = Severity::Error;
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gomod::classify;
    use crate::gomod::gosum::parse_go_sum;

    fn served(index: usize, url: &str, h1: &str) -> Observation {
        crate::diagnose::checksums::tests::served(index, url, Some(h1), None)
    }

    const A: &str = "https://proxy.golang.org/example.com/m/@v/v1.0.0.zip";
    const B: &str = "https://mirror.example/example.com/m/@v/v1.0.0.zip";

    #[test]
    fn a_zip_that_disagrees_with_go_sum_names_both_hashes_and_the_host() {
        let obs = vec![served(0, A, "h1:GOOD="), served(1, B, "h1:EVIL=")];
        let ev = Evidence {
            go_sum: Some(GoSumFile {
                label: "app/go.sum".into(),
                lines: parse_go_sum("example.com/m v1.0.0 h1:GOOD=\n"),
            }),
            zips: HashMap::from([
                (
                    0,
                    vec![ZipFile {
                        name: "example.com/m@v1.0.0/m.go".into(),
                        size: 10,
                        sha256: [1; 32],
                    }],
                ),
                (
                    1,
                    vec![
                        ZipFile {
                            name: "example.com/m@v1.0.0/m.go".into(),
                            size: 12,
                            sha256: [2; 32],
                        },
                        ZipFile {
                            name: "example.com/m@v1.0.0/extra.go".into(),
                            size: 5,
                            sha256: [3; 32],
                        },
                    ],
                ),
            ]),
            auth: None,
        };
        let findings = diagnose_all(&obs, None, &ev);
        let bad: Vec<&Finding> = findings
            .iter()
            .filter(|f| f.cause == Cause::ChecksumMismatch)
            .collect();
        assert_eq!(bad.len(), 1, "{findings:#?}");
        let f = bad[0];
        assert_eq!(f.severity, Severity::Error);
        assert_eq!(f.host.as_deref(), Some("mirror.example"));
        assert_eq!(f.modules, ["example.com/m@v1.0.0"]);
        assert!(
            f.title.contains("h1:EVIL=") && f.title.contains("h1:GOOD="),
            "{}",
            f.title
        );
        assert!(f.title.contains("go.sum (app/go.sum)"), "{}", f.title);
        let Some(super::super::FindingEvidence::Checksum(facts)) = &f.evidence else {
            panic!("no checksum evidence: {f:?}");
        };
        let names: Vec<(&str, Option<u64>, Option<u64>)> = facts
            .differing_files
            .iter()
            .map(|d| (d.name.as_str(), d.served_size, d.other_size))
            .collect();
        assert_eq!(
            names,
            [("extra.go", Some(5), None), ("m.go", Some(12), Some(10))]
        );
    }

    #[test]
    fn sources_of_truth() {
        // The checksum database in the trace, and a second host without any record.
        let mut lookup = served(
            2,
            "https://sum.golang.org/lookup/example.com/m@v1.0.0",
            "unused",
        );
        lookup.go.h1 = None;
        lookup.sums = crate::gomod::gosum::parse_lookup(
            "7\nexample.com/m v1.0.0 h1:GOOD=\nexample.com/m v1.0.0/go.mod h1:MOD=\n\nnote\n",
        );
        let obs = vec![served(0, B, "h1:EVIL="), lookup];
        let f = diagnose_all(&obs, None, &Evidence::default());
        assert_eq!(f.len(), 1, "{f:#?}");
        assert!(
            f[0].title.contains("checksum database at sum.golang.org"),
            "{}",
            f[0].title
        );
        assert_eq!(f[0].entries, [0, 2]);

        let obs = vec![served(0, A, "h1:ONE="), served(1, B, "h1:TWO=")];
        let f = diagnose_all(&obs, None, &Evidence::default());
        assert_eq!(f.len(), 1, "one finding per pair: {f:#?}");
        assert!(
            f[0].title.contains("copy served by mirror.example"),
            "{}",
            f[0].title
        );

        // Everything agrees: nothing to say.
        let obs = vec![served(0, A, "h1:GOOD="), served(1, B, "h1:GOOD=")];
        assert!(diagnose_all(&obs, None, &Evidence::default()).is_empty());
    }

    #[test]
    fn private_paths_on_public_services_are_leaks() {
        let env = GoEnv {
            goprivate: Some("corp.example".into()),
            goproxy: Some("https://proxy.golang.org,direct".into()),
            ..GoEnv::default()
        };
        let mut zip = served(
            0,
            "https://proxy.golang.org/corp.example/x/@v/v1.0.0.zip",
            "h1:X=",
        );
        zip.go.h1 = None;
        let mut lookup = served(
            1,
            "https://goproxy.corp/sumdb/sum.golang.org/lookup/corp.example/x@v1.0.0",
            "",
        );
        lookup.go = classify("GET", &lookup.url, &["https://goproxy.corp".into()]);
        let f = diagnose_all(&[zip, lookup], Some(&env), &Evidence::default());
        let leaks: Vec<&Finding> = f
            .iter()
            .filter(|f| f.cause == Cause::PrivatePathLeak)
            .collect();
        assert_eq!(leaks.len(), 2, "{f:#?}");
        assert!(leaks.iter().all(|l| l.severity == Severity::Error));
        assert!(
            leaks[0].title.contains("corp.example/x@v1.0.0"),
            "{}",
            leaks[0].title
        );
        assert!(leaks
            .iter()
            .any(|l| l.title.contains("public checksum database")));
    }
}
