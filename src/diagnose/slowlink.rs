//! `slow-link`: per host, round trips or throughput far off what module downloads need.
//! The slow regions the troubleshooting literature describes (about 200 ms per request,
//! 16 KiB/s) only show in timing tables otherwise.

use std::collections::BTreeMap;

use super::advice::go_env_w;
use super::findings::host_key;
use super::render::fmt_bytes;
use super::{Cause, Finding, Observation, Severity};

/// A median TCP handshake (one round trip) above this is a far-away or congested path.
pub const SLOW_CONNECT_MS: f64 = 150.0;
/// When even the fastest first byte of a host (at least [`MIN_REQUESTS`]) takes this
/// long, every request pays it: `go mod download` of 100 modules makes 300 requests.
pub const SLOW_FIRST_BYTE_MS: f64 = 200.0;
pub const MIN_REQUESTS: usize = 3;
/// Throughput below this, over bodies of at least [`MIN_BODY_BYTES`], makes a typical
/// module zip (a few MiB) take most of a minute.
pub const SLOW_BYTES_PER_SEC: f64 = 100.0 * 1024.0;
pub const MIN_BODY_BYTES: u64 = 64 * 1024;

#[derive(Default)]
struct HostTimes {
    entries: Vec<usize>,
    connects: Vec<f64>,
    first_bytes: Vec<f64>,
    body_bytes: u64,
    body_ms: f64,
}

/// One `slow-link` finding per host whose numbers cross a threshold.
pub fn slow_links(obs: &[Observation]) -> Vec<Finding> {
    let mut hosts: BTreeMap<String, HostTimes> = BTreeMap::new();
    for o in obs {
        // Injected delays are the experiment, failures have causes of their own.
        if o.fault.is_some() || o.error.is_some() || !(200..400).contains(&o.status) {
            continue;
        }
        let h = hosts.entry(host_key(o)).or_default();
        h.entries.push(o.index);
        h.connects.extend(o.timings.tcp.filter(|t| t.is_finite()));
        h.first_bytes
            .extend(o.timings.wait.filter(|t| t.is_finite()));
        if let Some(r) = o.timings.receive.filter(|r| r.is_finite() && *r > 0.0) {
            if o.response_bytes >= MIN_BODY_BYTES {
                h.body_bytes += o.response_bytes;
                h.body_ms += r;
            }
        }
    }
    hosts
        .into_iter()
        .filter_map(|(host, h)| finding(host, h))
        .collect()
}

fn median(v: &mut [f64]) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

fn finding(host: String, mut h: HostTimes) -> Option<Finding> {
    let mut why = Vec::new();
    if let Some(rtt) = median(&mut h.connects).filter(|m| *m > SLOW_CONNECT_MS) {
        why.push(format!(
            "connect round trip {rtt:.0} ms (median, over {SLOW_CONNECT_MS:.0} ms)"
        ));
    }
    if h.first_bytes.len() >= MIN_REQUESTS {
        let fastest = h.first_bytes.iter().copied().fold(f64::INFINITY, f64::min);
        if fastest > SLOW_FIRST_BYTE_MS {
            why.push(format!(
                "every request waited at least {fastest:.0} ms for its first byte (over {SLOW_FIRST_BYTE_MS:.0} ms, {} requests)",
                h.first_bytes.len()
            ));
        }
    }
    if h.body_bytes > 0 {
        let rate = h.body_bytes as f64 / (h.body_ms / 1000.0);
        if rate < SLOW_BYTES_PER_SEC {
            why.push(format!(
                "bodies arrived at {}/s (under {}/s, {} in {:.1} s)",
                fmt_bytes(rate as u64),
                fmt_bytes(SLOW_BYTES_PER_SEC as u64),
                fmt_bytes(h.body_bytes),
                h.body_ms / 1000.0
            ));
        }
    }
    if why.is_empty() {
        return None;
    }
    let title = format!("{host}: slow link: {}", why.join("; "));
    let advice = format!(
        "use a mirror near you, first in GOPROXY: proxy.golang.org (Google's global CDN), goproxy.cn (mainland China), goproxy.io (Asia), or your company's Athens/Artifactory/Nexus inside the network, e.g. {}",
        go_env_w("GOPROXY", "https://goproxy.cn,https://proxy.golang.org,direct")
    );
    Some(Finding {
        entries: h.entries,
        host: Some(host),
        title,
        advice,
        ..Finding::new(Cause::SlowLink, Severity::Warning)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gomod::classify;

    fn ob(
        index: usize,
        host: &str,
        wait: f64,
        tcp: Option<f64>,
        bytes: u64,
        receive: f64,
    ) -> Observation {
        let url = format!("https://{host}/example.com/m/@v/v1.0.{index}.zip");
        Observation {
            index,
            method: "GET".into(),
            go: classify("GET", &url, &[]),
            url,
            host: host.into(),
            status: 200,
            body_complete: true,
            response_bytes: bytes,
            timings: crate::exchange::PhaseTimes {
                tcp,
                wait: Some(wait),
                receive: Some(receive),
                ..Default::default()
            },
            ..Observation::default()
        }
    }

    #[test]
    fn thresholds() {
        type Row = (&'static str, Vec<Observation>, Option<&'static str>);
        let rows: Vec<Row> = vec![
            (
                "fast",
                vec![ob(0, "a.example", 20.0, Some(5.0), 1 << 20, 100.0)],
                None,
            ),
            (
                "far away",
                vec![ob(0, "a.example", 20.0, Some(210.0), 10, 1.0)],
                Some("connect round trip 210 ms"),
            ),
            (
                "210 ms per request",
                (0..3)
                    .map(|i| ob(i, "a.example", 215.0, None, 10, 1.0))
                    .collect(),
                Some("at least 215 ms"),
            ),
            (
                "two slow requests prove nothing",
                (0..2)
                    .map(|i| ob(i, "a.example", 215.0, None, 10, 1.0))
                    .collect(),
                None,
            ),
            (
                "16 KiB/s",
                vec![ob(0, "a.example", 20.0, None, 160 * 1024, 10_000.0)],
                Some("16.0 KiB/s"),
            ),
            (
                "small bodies are not measured",
                vec![ob(0, "a.example", 20.0, None, 1024, 10_000.0)],
                None,
            ),
        ];
        for (name, obs, want) in rows {
            let f = slow_links(&obs);
            match want {
                None => assert!(f.is_empty(), "{name}: {f:?}"),
                Some(words) => {
                    assert_eq!(f.len(), 1, "{name}");
                    assert!(f[0].title.contains(words), "{name}: {}", f[0].title);
                    assert!(
                        f[0].advice.contains("goproxy.cn (mainland China)"),
                        "{name}"
                    );
                }
            }
        }
    }
}
