//! Packet-capture import: turns a pcap or pcapng file of go's traffic into a modscope
//! trace directory (`journal.jsonl`, `trace.har`, `bodies/`) that `summary` and
//! `replay` read like a recording.
//!
//! What a capture can show without keys: TCP connections (handshake time, bytes,
//! retransmissions, zero windows, who closed or reset), DNS over UDP (answers, rcode,
//! response time, unanswered queries), TLS hellos (SNI, ALPN, versions, cipher,
//! handshake time, plaintext alerts, stalls) and plain HTTP/1.x exchanges in full.
//! See `docs/captures.md`.
//!
//! The reading is streaming: memory depends on the connections open at one time, not on
//! the file size, and bodies go straight to `bodies/`. The output is a pure function of
//! the capture bytes (no clock, no randomness, no hash-map order), so importing the same
//! file twice gives identical journals.

mod dns;
mod entries;
mod error;
mod http;
mod link;
mod output;
mod reader;
mod tcp;
mod tls;

#[cfg(test)]
mod synth;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Read;
use std::path::Path;

use serde::Serialize;

pub use error::CaptureError;
pub use output::{BodyWrite, DirOutput, MemoryOutput, TraceOutput};

use entries::{End, Item};
use link::{Endpoint, Packet, Skip, Transport};
use tcp::Conn;

use crate::gomod;
use crate::trace::{build_entry, BuildOptions, JOURNAL_FILE};

/// How often (in capture time) finished connections and stale DNS queries are written out.
const SWEEP_EVERY_NS: i64 = 1_000_000_000;
/// A closed connection stays around this long for its last ACKs and stray packets.
const CLOSED_LINGER_NS: i64 = 2_000_000_000;
/// A connection silent this long is written out as it stands (go's idle keep-alive
/// timeout is 90 s).
const IDLE_NS: i64 = 300_000_000_000;
/// SYNs nobody answered for this long will not be answered (Linux gives up after about
/// two minutes of retries, go's dialer after 30 s); a port scan must not pile up.
const SYN_ONLY_NS: i64 = 75_000_000_000;
/// A DNS query unanswered this long after its last retry will not be answered.
const DNS_TIMEOUT_NS: i64 = 30_000_000_000;

/// Which side of a TCP connection: the one that sent the SYN (or asked first) is the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Side {
    Client,
    Server,
}

impl Side {
    pub(crate) fn index(self) -> usize {
        match self {
            Side::Client => 0,
            Side::Server => 1,
        }
    }
}

/// What an import found and wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// Frames read from the file (all of them, whatever they carried).
    pub packets: u64,
    /// TCP connections seen (including refused and unanswered attempts).
    pub connections: u64,
    /// HTTP/1.x requests seen (CONNECT included).
    pub http_exchanges: u64,
    pub dns_queries: u64,
    /// Connections (or CONNECT tunnels) that carried TLS.
    pub tls_connections: u64,
    /// Entries written to the trace.
    pub entries: u64,
    /// Truncation, unsupported link types, lost segments...: the import went on.
    pub warnings: Vec<String>,
}

use crate::console::plural;

impl std::fmt::Display for ImportReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} ({} TLS), {}, {}; {}",
            plural(self.packets, "packet", "packets"),
            plural(self.connections, "TCP connection", "TCP connections"),
            self.tls_connections,
            plural(self.http_exchanges, "HTTP exchange", "HTTP exchanges"),
            plural(self.dns_queries, "DNS query", "DNS queries"),
            plural(self.entries, "entry", "entries")
        )
    }
}

/// How to import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Replace credential header values and URL userinfo (as recording does by default).
    pub redact: bool,
    /// GOPROXY bases known to the user, for decoding module requests under a path prefix.
    pub goproxy_bases: Vec<String>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            redact: true,
            goproxy_bases: Vec::new(),
        }
    }
}

/// Imports `capture` (pcap or pcapng) into the trace directory `out_dir`, which must not
/// already hold a journal. Writes `journal.jsonl`, `bodies/` and `trace.har`.
pub fn import(capture: &Path, out_dir: &Path) -> Result<ImportReport, CaptureError> {
    import_with(capture, out_dir, &ImportOptions::default())
}

/// [`import`] with options.
pub fn import_with(
    capture: &Path,
    out_dir: &Path,
    opts: &ImportOptions,
) -> Result<ImportReport, CaptureError> {
    let file = File::open(capture).map_err(|e| CaptureError::io(capture, e))?;
    if std::fs::metadata(capture).is_ok_and(|m| m.is_dir()) {
        return Err(CaptureError::io(
            capture,
            std::io::Error::other("is a directory, expected a pcap or pcapng file"),
        ));
    }
    let journal = out_dir.join(JOURNAL_FILE);
    if std::fs::metadata(&journal).is_ok_and(|m| m.len() > 0) {
        return Err(CaptureError::OutputNotEmpty {
            dir: out_dir.to_path_buf(),
        });
    }
    let mut out = DirOutput::open(out_dir)?;
    let report = analyze(capture, std::io::BufReader::new(file), &mut out, opts)?;
    out.into_journal().finish(env!("CARGO_PKG_VERSION"))?;
    Ok(report)
}

/// The core: reads a capture from `input` (named `name` in messages) and hands entries
/// and bodies to `out`. Deterministic for given bytes.
pub fn analyze<R: Read>(
    name: &Path,
    input: R,
    out: &mut dyn TraceOutput,
    opts: &ImportOptions,
) -> Result<ImportReport, CaptureError> {
    let mut an = Analyzer::new(opts);
    let summary = reader::read_frames(name, input, &mut |frame| {
        an.frame(frame.ts, frame.linktype, frame.data, frame.orig_len, out)
    })?;
    an.finish(out)?;
    let mut warnings = summary.warnings;
    warnings.extend(an.warnings(name));
    let mut report = an.report;
    report.packets = summary.frames;
    report.warnings = warnings;
    Ok(report)
}

struct Analyzer<'o> {
    opts: &'o ImportOptions,
    conns: HashMap<(Endpoint, Endpoint), Conn>,
    dns: dns::DnsTracker,
    next_conn: u64,
    next_entry: u64,
    /// Latest timestamp seen (captures merged from interfaces can step backwards).
    now: Option<i64>,
    next_sweep: i64,
    skipped: BTreeMap<Skip, u64>,
    gapped_connections: u64,
    snaplen_connections: u64,
    broken_http: u64,
    report: ImportReport,
}

fn key(a: Endpoint, b: Endpoint) -> (Endpoint, Endpoint) {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

/// Without a SYN, the side on a well-known or lower port is taken as the server.
fn guess_server(src: Endpoint, dst: Endpoint) -> bool {
    const SERVER_PORTS: [u16; 6] = [80, 443, 8080, 8443, 3128, 3129];
    let known = |p: u16| SERVER_PORTS.contains(&p);
    match (known(src.port), known(dst.port)) {
        (true, false) => true,
        (false, true) => false,
        _ => src.port < dst.port,
    }
}

impl<'o> Analyzer<'o> {
    fn new(opts: &'o ImportOptions) -> Self {
        Analyzer {
            opts,
            conns: HashMap::new(),
            dns: dns::DnsTracker::default(),
            next_conn: 1,
            next_entry: 1,
            now: None,
            next_sweep: i64::MIN,
            skipped: BTreeMap::new(),
            gapped_connections: 0,
            snaplen_connections: 0,
            broken_http: 0,
            report: ImportReport::default(),
        }
    }

    fn frame(
        &mut self,
        ts: i64,
        linktype: i32,
        data: &[u8],
        orig_len: u32,
        out: &mut dyn TraceOutput,
    ) -> Result<(), CaptureError> {
        let now = self.now.map_or(ts, |n| n.max(ts));
        self.now = Some(now);
        match link::decode(linktype, data, orig_len) {
            Ok(packet) => self.packet(ts, &packet, out)?,
            Err(skip) => *self.skipped.entry(skip).or_default() += 1,
        }
        if now >= self.next_sweep {
            self.next_sweep = now.saturating_add(SWEEP_EVERY_NS);
            self.sweep(now, out)?;
        }
        Ok(())
    }

    fn packet(
        &mut self,
        ts: i64,
        p: &Packet<'_>,
        out: &mut dyn TraceOutput,
    ) -> Result<(), CaptureError> {
        match p.transport {
            Transport::Udp(payload) => {
                let dns_port = |e: Endpoint| dns::DNS_PORTS.contains(&e.port);
                if dns_port(p.src) || dns_port(p.dst) {
                    if let Some(lookup) = self.dns.datagram(ts, p.src, p.dst, payload) {
                        let item = entries::dns_item(&lookup, ts);
                        self.emit(item, out)?;
                    }
                }
                Ok(())
            }
            Transport::Tcp(seg) => {
                let k = key(p.src, p.dst);
                let opening = seg.flags.syn && !seg.flags.ack;
                if opening {
                    let reused = self
                        .conns
                        .get(&k)
                        .is_some_and(|c| c.client != p.src || c.is_new_attempt(seg.seq));
                    if reused {
                        if let Some(old) = self.conns.remove(&k) {
                            self.finalize(old, End::Reused, ts, out)?;
                        }
                    }
                }
                if !self.conns.contains_key(&k) {
                    let src_is_client = if seg.flags.syn {
                        !seg.flags.ack
                    } else {
                        !guess_server(p.src, p.dst)
                    };
                    let (client, server) = if src_is_client {
                        (p.src, p.dst)
                    } else {
                        (p.dst, p.src)
                    };
                    let id = self.next_conn;
                    self.next_conn += 1;
                    self.report.connections += 1;
                    self.conns.insert(k, Conn::new(id, client, server, ts));
                }
                match self.conns.get_mut(&k) {
                    Some(conn) => {
                        let side = conn.side_of(p.src);
                        conn.segment(side, ts, &seg, out)
                    }
                    None => Ok(()),
                }
            }
        }
    }

    fn sweep(&mut self, now: i64, out: &mut dyn TraceOutput) -> Result<(), CaptureError> {
        let mut done: Vec<(u64, (Endpoint, Endpoint), End)> = self
            .conns
            .iter()
            .filter_map(|(k, c)| {
                let quiet = now.saturating_sub(c.last_ts);
                if c.closed() && quiet > CLOSED_LINGER_NS {
                    Some((c.id, *k, End::Closed))
                } else if quiet > IDLE_NS
                    || (quiet > SYN_ONLY_NS && c.opening() == tcp::Opening::SynOnly)
                {
                    Some((c.id, *k, End::Idle))
                } else {
                    None
                }
            })
            .collect();
        // HashMap order is random; the output order must not be.
        done.sort_by_key(|(id, _, _)| *id);
        for (_, k, end) in done {
            if let Some(conn) = self.conns.remove(&k) {
                self.finalize(conn, end, now, out)?;
            }
        }
        for lookup in self.dns.expire(now, DNS_TIMEOUT_NS) {
            let item = entries::dns_item(&lookup, now);
            self.emit(item, out)?;
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut dyn TraceOutput) -> Result<(), CaptureError> {
        let now = self.now.unwrap_or(0);
        let mut rest: Vec<Conn> = self.conns.drain().map(|(_, c)| c).collect();
        rest.sort_by_key(|c| c.id);
        for conn in rest {
            let end = if conn.closed() {
                End::Closed
            } else {
                End::CaptureOver
            };
            self.finalize(conn, end, now, out)?;
        }
        for lookup in self.dns.drain() {
            let item = entries::dns_item(&lookup, now);
            self.emit(item, out)?;
        }
        self.report.dns_queries = self.dns.queries;
        Ok(())
    }

    fn finalize(
        &mut self,
        mut conn: Conn,
        end: End,
        until: i64,
        out: &mut dyn TraceOutput,
    ) -> Result<(), CaptureError> {
        conn.flush(out)?;
        if conn.streams.iter().any(|s| s.gaps > 0) {
            self.gapped_connections += 1;
        }
        if conn.streams.iter().any(|s| s.snaplen_cut > 0) {
            self.snaplen_connections += 1;
        }
        match &conn.app {
            tcp::App::Tls(_) => self.report.tls_connections += 1,
            tcp::App::Http(h) => {
                self.report.http_exchanges += h.slots.len() as u64;
                if h.tunnel().is_some_and(|t| t.tls.is_some()) {
                    self.report.tls_connections += 1;
                }
                if h.broken.iter().any(Option::is_some) {
                    self.broken_http += 1;
                }
            }
            _ => {}
        }
        for item in entries::conn_items(&conn, end, until, &self.dns) {
            self.emit(item, out)?;
        }
        Ok(())
    }

    fn emit(&mut self, item: Item, out: &mut dyn TraceOutput) -> Result<(), CaptureError> {
        let Item {
            mut exchange,
            bodies,
            capture,
        } = item;
        exchange.id = self.next_entry;
        self.next_entry += 1;
        let go = gomod::classify(
            &exchange.request.method,
            &exchange.request.url,
            &self.opts.goproxy_bases,
        );
        let mut entry = build_entry(
            &exchange,
            serde_json::to_value(&go).ok(),
            &bodies,
            &BuildOptions {
                redact: self.opts.redact,
            },
        );
        entry.extra.insert("_capture".to_string(), capture);
        out.append(&entry)?;
        self.report.entries += 1;
        Ok(())
    }

    fn warnings(&self, name: &Path) -> Vec<String> {
        let mut w = Vec::new();
        let file = name.display();
        for (skip, n) in &self.skipped {
            match skip {
                Skip::UnsupportedLinktype(lt) => w.push(format!(
                    "{file}: {n} packets with unsupported link type {lt} skipped \
                     (supported: Ethernet, Linux cooked SLL/SLL2, raw IP, BSD loopback)"
                )),
                Skip::Fragment => w.push(format!(
                    "{file}: {n} IP fragments skipped (fragmented packets are not reassembled)"
                )),
                Skip::Malformed => w.push(format!("{file}: {n} malformed packets skipped")),
                Skip::NotTcpUdp | Skip::LoopbackDuplicate => {}
            }
        }
        if self.snaplen_connections > 0 {
            w.push(format!(
                "{file}: the snapshot length cut packets of {} connections: their HTTP bodies \
                 are incomplete (capture with -s 0 for whole packets)",
                self.snaplen_connections
            ));
        }
        if self.gapped_connections > 0 {
            w.push(format!(
                "{file}: {} connections have segments missing from the capture (dropped by \
                 the capture or captured elsewhere); their exchanges may be incomplete",
                self.gapped_connections
            ));
        }
        if self.broken_http > 0 {
            w.push(format!(
                "{file}: HTTP could not be followed to the end on {} connections \
                 (see _capture.http.incomplete)",
                self.broken_http
            ));
        }
        if self.dns.untracked > 0 {
            w.push(format!(
                "{file}: {} DNS queries not tracked (too many outstanding at once)",
                self.dns.untracked
            ));
        }
        w
    }
}
