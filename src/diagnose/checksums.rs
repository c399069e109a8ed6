//! `checksum-mismatch` and `zip-rejected`: every served `.zip`/`.mod` hash (`_go.h1`)
//! compared with go.sum, the checksum-database lookups in the trace, and the same module
//! version served by another host; for two differing zips, which files differ.
//!
//! Pure: the shell reads go.sum and the zip listings and passes them in.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::findings::host_key;
use super::forensics::GoSumFile;
use super::{Cause, Finding, FindingEvidence, Observation, Severity};
use crate::gomod::dirhash::ZipFile;
use crate::gomod::gosum::SumFile;
use crate::gomod::ProxyFile;

/// Where the hash a served copy is compared with comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Source {
    /// A go.sum file (the module `run` ran in, or `--go-sum FILE`).
    GoSum { file: String },
    /// A `/lookup/m@v` answer of a checksum database in the same trace.
    ChecksumDatabase { host: String, entry: usize },
    /// The same module version served by another host (or the same host another time).
    Host { host: String, entry: usize },
}

impl Source {
    fn describe(&self) -> String {
        match self {
            Source::GoSum { file } => format!("go.sum ({file})"),
            Source::ChecksumDatabase { host, .. } => format!("the checksum database at {host}"),
            Source::Host { host, .. } => format!("the copy served by {host}"),
        }
    }

    fn entry(&self) -> Option<usize> {
        match self {
            Source::GoSum { .. } => None,
            Source::ChecksumDatabase { entry, .. } | Source::Host { entry, .. } => Some(*entry),
        }
    }
}

/// One file that differs between two zips of the same module version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDiff {
    /// Path inside the module (without `module@version/`).
    pub name: String,
    /// Size in the served copy; `None` when only the other copy has the file.
    pub served_size: Option<u64>,
    /// Size in the other copy; `None` when only the served copy has the file.
    pub other_size: Option<u64>,
}

/// Both hashes of a mismatch and who holds which.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChecksumFacts {
    pub module: String,
    pub version: String,
    /// `zip` or `go.mod`.
    pub file: SumFile,
    /// The host that served the bytes hashed as `served`.
    pub served_by: String,
    pub served: String,
    /// The hash `source` holds.
    pub expected: String,
    pub source: Source,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub differing_files: Vec<FileDiff>,
}

type Key<'a> = (&'a str, &'a str, SumFile);

/// A served `.zip`/`.mod` with its hash.
struct Served<'a> {
    o: &'a Observation,
    key: Key<'a>,
    h1: &'a str,
}

fn served(obs: &[Observation]) -> Vec<Served<'_>> {
    obs.iter()
        .filter_map(|o| {
            let file = match o.go.file? {
                ProxyFile::Zip => SumFile::Zip,
                ProxyFile::Mod => SumFile::GoMod,
                _ => return None,
            };
            let key = (o.go.module.as_deref()?, o.go.version.as_deref()?, file);
            Some(Served {
                o,
                key,
                h1: o.go.h1.as_deref()?,
            })
        })
        .collect()
}

/// Zips whose listing the shell should read: a served zip that disagrees with another
/// served copy of the same module version (their files are diffed).
pub fn zips_to_compare(obs: &[Observation]) -> Vec<usize> {
    let all = served(obs);
    let mut out: Vec<usize> = all
        .iter()
        .filter(|a| a.key.2 == SumFile::Zip)
        .filter(|a| all.iter().any(|b| b.key == a.key && b.h1 != a.h1))
        .map(|a| a.o.index)
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The files that differ between two listings, by path inside the module.
pub fn diff_files(served: &[ZipFile], other: &[ZipFile]) -> Vec<FileDiff> {
    // `module@version/path`: module paths hold no '@' and versions no '/'.
    let strip = |n: &str| {
        n.split_once('@')
            .and_then(|(_, r)| r.split_once('/'))
            .map_or(n, |(_, rest)| rest)
            .to_string()
    };
    let index = |list: &[ZipFile]| -> HashMap<String, (u64, [u8; 32])> {
        list.iter()
            .map(|f| (strip(&f.name), (f.size, f.sha256)))
            .collect()
    };
    let (a, b) = (index(served), index(other));
    let mut names: Vec<&String> = a.keys().chain(b.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|n| a.get(*n) != b.get(*n))
        .map(|n| FileDiff {
            name: n.clone(),
            served_size: a.get(n).map(|x| x.0),
            other_size: b.get(n).map(|x| x.0),
        })
        .collect()
}

/// Every recorded hash for a module version file: go.sum lines and checksum-database answers.
fn truths<'a>(
    obs: &'a [Observation],
    go_sum: Option<&'a GoSumFile>,
) -> HashMap<Key<'a>, Vec<(String, Source)>> {
    let mut truths: HashMap<Key<'_>, Vec<(String, Source)>> = HashMap::new();
    if let Some(gs) = go_sum {
        for l in &gs.lines {
            truths
                .entry((l.module.as_str(), l.version.as_str(), l.file))
                .or_default()
                .push((
                    l.hash.clone(),
                    Source::GoSum {
                        file: gs.label.clone(),
                    },
                ));
        }
    }
    for o in obs.iter().filter(|o| o.status == 200) {
        for l in &o.sums {
            truths
                .entry((l.module.as_str(), l.version.as_str(), l.file))
                .or_default()
                .push((
                    l.hash.clone(),
                    Source::ChecksumDatabase {
                        // The database's base says whether a proxy relayed it
                        // (`proxy.golang.org/sumdb/sum.golang.org`).
                        host: o
                            .go
                            .base
                            .as_deref()
                            .and_then(|b| b.split_once("://"))
                            .map(|(_, rest)| rest.to_string())
                            .unwrap_or_else(|| host_key(o)),
                        entry: o.index,
                    },
                ));
        }
    }
    truths
}

/// One line of `modscope verify`: a served `.zip`/`.mod` and how it fared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyRow {
    pub entry: usize,
    pub module: String,
    pub version: String,
    pub file: SumFile,
    pub host: String,
    /// The served hash; `None` for a rejected zip.
    pub h1: Option<String>,
    pub status: VerifyStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "status", content = "detail")]
pub enum VerifyStatus {
    /// Equal to every record; the sources that hold it.
    Verified(Vec<String>),
    /// No go.sum line or checksum-database answer covers it.
    NoRecord,
    /// Differs from at least one record (see the `checksum-mismatch` findings).
    Mismatch,
    /// go refuses the zip; why.
    Rejected(String),
}

/// Every served `.zip`/`.mod` (and rejected zip) in trace order, judged against go.sum
/// and the checksum-database answers in the trace.
pub fn verify_rows(obs: &[Observation], go_sum: Option<&GoSumFile>) -> Vec<VerifyRow> {
    let truths = truths(obs, go_sum);
    let mut rows: Vec<VerifyRow> = served(obs)
        .into_iter()
        .map(|s| {
            let records = truths.get(&s.key).map(Vec::as_slice).unwrap_or_default();
            let status = if records.is_empty() {
                VerifyStatus::NoRecord
            } else if records.iter().all(|(h, _)| h == s.h1) {
                let mut sources: Vec<String> =
                    records.iter().map(|(_, src)| src.describe()).collect();
                sources.dedup();
                VerifyStatus::Verified(sources)
            } else {
                VerifyStatus::Mismatch
            };
            VerifyRow {
                entry: s.o.index,
                module: s.key.0.to_string(),
                version: s.key.1.to_string(),
                file: s.key.2,
                host: host_key(s.o),
                h1: Some(s.h1.to_string()),
                status,
            }
        })
        .collect();
    rows.extend(obs.iter().filter_map(|o| {
        let why = o.go.zip_rejected.clone()?;
        Some(VerifyRow {
            entry: o.index,
            module: o.go.module.clone()?,
            version: o.go.version.clone()?,
            file: SumFile::Zip,
            host: host_key(o),
            h1: None,
            status: VerifyStatus::Rejected(why),
        })
    }));
    rows.sort_by_key(|r| r.entry);
    rows
}

/// One finding per served copy and disagreeing source; zips go would refuse get
/// `zip-rejected`. `zips` holds listings by observation index (see [`zips_to_compare`]).
pub fn checksum_findings(
    obs: &[Observation],
    go_sum: Option<&GoSumFile>,
    zips: &HashMap<usize, Vec<ZipFile>>,
) -> Vec<Finding> {
    let all = served(obs);
    let truths = truths(obs, go_sum);
    let mut out = Vec::new();
    for s in &all {
        let mut against: Vec<(String, Source)> = truths
            .get(&s.key)
            .map(|t| t.iter().filter(|(h, _)| h != s.h1).cloned().collect())
            .unwrap_or_default();
        // With no record of its own to judge by, another host's different copy is the
        // evidence; reported once per pair (from the earlier copy's side).
        if truths.get(&s.key).is_none_or(|t| t.is_empty()) {
            against.extend(
                all.iter()
                    .filter(|b| b.key == s.key && b.h1 != s.h1 && b.o.index > s.o.index)
                    .map(|b| {
                        (
                            b.h1.to_string(),
                            Source::Host {
                                host: host_key(b.o),
                                entry: b.o.index,
                            },
                        )
                    }),
            );
        }
        let mut seen = Vec::new();
        for (expected, source) in against {
            if seen.contains(&(expected.clone(), source.clone())) {
                continue;
            }
            seen.push((expected.clone(), source.clone()));
            out.push(mismatch(s, &all, expected, source, zips));
        }
    }
    for o in obs {
        if let Some(why) = &o.go.zip_rejected {
            out.push(rejected(o, why));
        }
    }
    out
}

fn mismatch(
    s: &Served<'_>,
    all: &[Served<'_>],
    expected: String,
    source: Source,
    zips: &HashMap<usize, Vec<ZipFile>>,
) -> Finding {
    let (module, version, file) = s.key;
    let host = host_key(s.o);
    // The copy to diff with: the source itself when it is a served zip, else any served
    // copy whose hash is the expected one.
    let other = match &source {
        Source::Host { entry, .. } => Some(*entry),
        _ => all
            .iter()
            .find(|b| b.key == s.key && b.h1 == expected)
            .map(|b| b.o.index),
    };
    let differing_files = match (zips.get(&s.o.index), other.and_then(|i| zips.get(&i))) {
        (Some(a), Some(b)) => diff_files(a, b),
        _ => Vec::new(),
    };
    let suffix = match file {
        SumFile::Zip => ".zip",
        SumFile::GoMod => ".mod",
    };
    let mv = format!("{module}@{version}");
    let title = format!(
        "{host} served {mv}{suffix} with {}, but {} holds {expected}",
        s.h1,
        source.describe()
    );
    let advice = match &source {
        Source::GoSum { .. } => format!(
            "go stops with \"verifying {mv}: checksum mismatch ... SECURITY ERROR\": do not edit go.sum to match; find out why {host} serves different bytes (a re-tagged release, a poisoned mirror, a corrupted cache) and fetch from a source that matches"
        ),
        Source::ChecksumDatabase { .. } => format!(
            "the checksum database records another {mv}: {host}'s copy is not the published one; report it to {host}'s operator and fetch from a source that matches"
        ),
        Source::Host { host: other, .. } => format!(
            "{host} and {other} serve different {mv}{suffix}: compare with the checksum database (GOSUMDB) before trusting either"
        ),
    };
    let mut detail = format!(
        "served by {host}: {}; {}: {expected}",
        s.h1,
        source.describe()
    );
    for d in &differing_files {
        let size = |v: Option<u64>| v.map_or("missing".to_string(), |n| format!("{n} bytes"));
        detail.push_str(&format!(
            "; {}: served {} / other {}",
            d.name,
            size(d.served_size),
            size(d.other_size)
        ));
    }
    let mut entries: Vec<usize> = std::iter::once(s.o.index).chain(source.entry()).collect();
    entries.sort_unstable();
    entries.dedup();
    Finding {
        entries,
        host: Some(host.clone()),
        title,
        advice,
        detail: Some(detail),
        modules: vec![mv],
        evidence: Some(FindingEvidence::Checksum(ChecksumFacts {
            module: module.to_string(),
            version: version.to_string(),
            file,
            served_by: host,
            served: s.h1.to_string(),
            expected,
            source,
            differing_files,
        })),
        ..Finding::new(Cause::ChecksumMismatch, Severity::Error)
    }
}

fn rejected(o: &Observation, why: &str) -> Finding {
    let host = host_key(o);
    let mv = o.go.module_version().unwrap_or_default();
    Finding {
        entries: vec![o.index],
        host: Some(host.clone()),
        title: format!("{host} served a zip for {mv} that go refuses"),
        advice: format!("the module zip is malformed: {host} must serve files under {mv}/ in a readable zip; clear its cache for this version"),
        detail: Some(why.to_string()),
        modules: vec![mv],
        ..Finding::new(Cause::ZipRejected, Severity::Error)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::gomod::classify;
    use crate::gomod::gosum::parse_go_sum;

    /// A complete 200 answer for `url` with go's `h1:` (or a rejection); forensics'
    /// tests use it too.
    pub(in crate::diagnose) fn served(
        index: usize,
        url: &str,
        h1: Option<&str>,
        rejected: Option<&str>,
    ) -> Observation {
        let mut go = classify("GET", url, &[]);
        go.h1 = h1.map(str::to_string);
        go.zip_rejected = rejected.map(str::to_string);
        Observation {
            index,
            url: url.to_string(),
            host: url.split('/').nth(2).unwrap_or("").to_string(),
            status: 200,
            body_complete: true,
            go,
            ..Observation::default()
        }
    }

    #[test]
    fn verify_rows_judge_each_file() {
        let go_sum = GoSumFile {
            label: "go.sum".into(),
            lines: parse_go_sum(
                "example.com/a v1.0.0 h1:A=\nexample.com/a v1.0.0/go.mod h1:AM=\nexample.com/b v1.0.0 h1:B=\n",
            ),
        };
        let obs = vec![
            served(
                0,
                "https://p.example/example.com/a/@v/v1.0.0.mod",
                Some("h1:AM="),
                None,
            ),
            served(
                1,
                "https://p.example/example.com/a/@v/v1.0.0.zip",
                Some("h1:A="),
                None,
            ),
            served(
                2,
                "https://p.example/example.com/b/@v/v1.0.0.zip",
                Some("h1:EVIL="),
                None,
            ),
            served(
                3,
                "https://p.example/example.com/c/@v/v1.0.0.zip",
                Some("h1:C="),
                None,
            ),
            served(
                4,
                "https://p.example/example.com/d/@v/v1.0.0.zip",
                None,
                Some("unexpected file"),
            ),
            // Listings, infos and other requests are not judged.
            served(5, "https://p.example/example.com/a/@v/list", None, None),
        ];
        let rows = verify_rows(&obs, Some(&go_sum));
        let got: Vec<(usize, SumFile, &VerifyStatus)> =
            rows.iter().map(|r| (r.entry, r.file, &r.status)).collect();
        let verified = VerifyStatus::Verified(vec!["go.sum (go.sum)".into()]);
        assert_eq!(
            got,
            [
                (0, SumFile::GoMod, &verified),
                (1, SumFile::Zip, &verified),
                (2, SumFile::Zip, &VerifyStatus::Mismatch),
                (3, SumFile::Zip, &VerifyStatus::NoRecord),
                (
                    4,
                    SumFile::Zip,
                    &VerifyStatus::Rejected("unexpected file".into())
                ),
            ]
        );
        let findings = checksum_findings(&obs, Some(&go_sum), &HashMap::new());
        let causes: Vec<(Cause, usize)> =
            findings.iter().map(|f| (f.cause, f.entries[0])).collect();
        assert_eq!(
            causes,
            [(Cause::ChecksumMismatch, 2), (Cause::ZipRejected, 4)]
        );
    }
}
