//! Traffic summary: counts per kind and host, bytes, timing percentiles, slowest downloads.

use serde::{Deserialize, Serialize};

use super::findings::host_key;
use super::Observation;
use crate::exchange::ErrorKind;
use crate::gomod::GoKind;

/// How many of the slowest module downloads the summary keeps.
pub const SLOWEST_DOWNLOADS: usize = 10;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    #[serde(flatten)]
    pub totals: Counts,
    /// From the first request's start to the last request's end, in ms.
    pub span_ms: f64,
    /// Kinds in `GoKind::ALL` order, only those seen.
    pub by_kind: Vec<KindSummary>,
    /// Busiest host first.
    pub by_host: Vec<HostSummary>,
    /// Slowest GOPROXY-protocol and git downloads (injected faults excluded).
    pub slowest_downloads: Vec<Download>,
}

/// Request counts. `failures` are real failures: injected faults and 404/410
/// answers (routine in go's protocol) are counted apart.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub requests: usize,
    pub bytes: u64,
    pub failures: usize,
    pub not_found: usize,
    pub injected: usize,
    /// Captured connections whose requests were not seen (imported TLS), and their
    /// bytes each way; they are not counted in `requests` or `bytes`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub connections: usize,
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub connection_bytes_up: u64,
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub connection_bytes_down: u64,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindSummary {
    pub kind: GoKind,
    #[serde(flatten)]
    pub counts: Counts,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostSummary {
    /// `host[:port]`, default port omitted.
    pub host: String,
    #[serde(flatten)]
    pub counts: Counts,
    pub timings: HostTimings,
}

/// Per-phase percentiles in ms over the exchanges where the phase happened
/// (a reused connection has no dns/connect/tls). Injected faults are left out so
/// an injected delay does not pose as network latency.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostTimings {
    pub dns: Option<Percentiles>,
    /// TCP plus TLS, as HAR's `connect`.
    pub connect: Option<Percentiles>,
    pub tls: Option<Percentiles>,
    pub wait: Option<Percentiles>,
    pub receive: Option<Percentiles>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: usize,
    pub p50: f64,
    pub p90: f64,
    pub max: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Download {
    pub index: usize,
    pub host: String,
    pub kind: GoKind,
    pub module: String,
    pub version: Option<String>,
    pub total_ms: f64,
    pub bytes: u64,
    pub status: u16,
}

impl Download {
    pub fn module_version(&self) -> String {
        match &self.version {
            Some(v) => format!("{}@{v}", self.module),
            None => self.module.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    NotFound,
    Failed,
    Injected,
}

fn outcome(o: &Observation) -> Outcome {
    if o.fault.is_some()
        || o.error
            .as_ref()
            .is_some_and(|e| e.kind == ErrorKind::Injected)
    {
        return Outcome::Injected;
    }
    if o.error.is_some() {
        return Outcome::Failed;
    }
    match o.status {
        404 | 410 => Outcome::NotFound,
        0 | 400.. => Outcome::Failed,
        _ if !o.body_complete => Outcome::Failed,
        _ => Outcome::Ok,
    }
}

impl Counts {
    fn add(&mut self, o: &Observation) {
        match o.connection_bytes {
            Some([up, down]) => {
                self.connections += 1;
                self.connection_bytes_up += up;
                self.connection_bytes_down += down;
            }
            None => {
                self.requests += 1;
                self.bytes += o.response_bytes;
            }
        }
        match outcome(o) {
            Outcome::Ok => {}
            Outcome::NotFound => self.not_found += 1,
            Outcome::Failed => self.failures += 1,
            Outcome::Injected => self.injected += 1,
        }
    }
}

/// Nearest-rank percentiles (the smallest value with at least p% of values at or
/// below it), so every reported number is one that was actually observed.
/// Non-finite values are ignored; `None` when nothing is left.
pub fn percentiles(values: &[f64]) -> Option<Percentiles> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let rank = |p: f64| -> f64 {
        let n = v.len();
        let r = ((p / 100.0) * n as f64).ceil() as usize;
        v[r.clamp(1, n) - 1]
    };
    Some(Percentiles {
        count: v.len(),
        p50: rank(50.0),
        p90: rank(90.0),
        max: v[v.len() - 1],
    })
}

#[derive(Default)]
struct PhaseSamples {
    dns: Vec<f64>,
    connect: Vec<f64>,
    tls: Vec<f64>,
    wait: Vec<f64>,
    receive: Vec<f64>,
}

impl PhaseSamples {
    fn add(&mut self, o: &Observation) {
        let t = &o.timings;
        push_opt(&mut self.dns, t.dns);
        let connect = match (t.tcp, t.tls) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
        };
        push_opt(&mut self.connect, connect);
        push_opt(&mut self.tls, t.tls);
        push_opt(&mut self.wait, t.wait);
        push_opt(&mut self.receive, t.receive);
    }

    fn finish(&self) -> HostTimings {
        HostTimings {
            dns: percentiles(&self.dns),
            connect: percentiles(&self.connect),
            tls: percentiles(&self.tls),
            wait: percentiles(&self.wait),
            receive: percentiles(&self.receive),
        }
    }
}

// HAR writes "did not happen" as -1; treat any negative the same as None.
fn push_opt(v: &mut Vec<f64>, x: Option<f64>) {
    if let Some(x) = x.filter(|x| *x >= 0.0) {
        v.push(x);
    }
}

pub fn summarize(obs: &[Observation]) -> Summary {
    let mut totals = Counts::default();
    let mut kinds: Vec<(GoKind, Counts)> = Vec::new();
    let mut hosts: Vec<(String, Counts, PhaseSamples)> = Vec::new();
    let mut downloads = Vec::new();
    let mut first_start = f64::INFINITY;
    let mut last_end = f64::NEG_INFINITY;

    for o in obs {
        totals.add(o);
        match kinds.iter_mut().find(|(k, _)| *k == o.go.kind) {
            Some((_, c)) => c.add(o),
            None => {
                let mut c = Counts::default();
                c.add(o);
                kinds.push((o.go.kind, c));
            }
        }
        let host = host_key(o);
        let injected = outcome(o) == Outcome::Injected;
        let slot = match hosts.iter().position(|(h, _, _)| *h == host) {
            Some(i) => i,
            None => {
                hosts.push((host.clone(), Counts::default(), PhaseSamples::default()));
                hosts.len() - 1
            }
        };
        if let Some((_, counts, samples)) = hosts.get_mut(slot) {
            counts.add(o);
            if !injected {
                samples.add(o);
            }
        }
        if o.started_ms.is_finite() {
            first_start = first_start.min(o.started_ms);
            if o.total_ms.is_finite() {
                last_end = last_end.max(o.started_ms + o.total_ms.max(0.0));
            }
        }
        let is_download = o.go.kind.is_goproxy() || o.go.kind == GoKind::Git;
        if is_download && !injected && o.total_ms.is_finite() {
            if let Some(module) = &o.go.module {
                downloads.push(Download {
                    index: o.index,
                    host,
                    kind: o.go.kind,
                    module: module.clone(),
                    version: o.go.version.clone(),
                    total_ms: o.total_ms,
                    bytes: o.response_bytes,
                    status: o.status,
                });
            }
        }
    }

    let by_kind = GoKind::ALL
        .iter()
        .filter_map(|k| {
            kinds
                .iter()
                .find(|(kk, _)| kk == k)
                .map(|(_, c)| KindSummary {
                    kind: *k,
                    counts: c.clone(),
                })
        })
        .collect();
    let mut by_host: Vec<HostSummary> = hosts
        .into_iter()
        .map(|(host, counts, samples)| HostSummary {
            host,
            counts,
            timings: samples.finish(),
        })
        .collect();
    by_host.sort_by(|a, b| {
        b.counts
            .requests
            .cmp(&a.counts.requests)
            .then_with(|| a.host.cmp(&b.host))
    });
    downloads.sort_by(|a, b| {
        b.total_ms
            .total_cmp(&a.total_ms)
            .then_with(|| a.index.cmp(&b.index))
    });
    downloads.truncate(SLOWEST_DOWNLOADS);

    Summary {
        totals,
        span_ms: if last_end >= first_start {
            last_end - first_start
        } else {
            0.0
        },
        by_kind,
        by_host,
        slowest_downloads: downloads,
    }
}
