//! The trace recorder: an `Observer` that streams bodies into `bodies/` and appends one
//! HAR entry per exchange to the journal, on a writer thread behind a byte budget so the
//! proxy applies backpressure instead of buffering when the disk is slow.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;

use crate::exchange::Exchange;
use crate::gomod;
use crate::gozip;
use crate::proxy::{BodyCapture, BodyKind, Observer};
use crate::trace::{
    build_entry, BodyContent, BodySink, BodyStore, BuildOptions, EntryBodies, FinishReport,
    JournalWriter, StoredBody, TraceError,
};

/// Body bytes that may wait for the writer before the proxy stops reading from sockets.
const IN_FLIGHT_LIMIT: u64 = 8 * 1024 * 1024;

/// Chunks are gathered up to this size per body before they go to the writer thread: one
/// message (and one thread wake-up) per TLS record costs more CPU than the copy.
const BATCH: usize = 64 * 1024;

/// How to record.
#[derive(Debug, Clone)]
pub struct RecordOptions {
    pub dir: PathBuf,
    /// Replace credential header values with `[redacted]` (the default).
    pub redact: bool,
    /// Embed every body (base64) in the HAR for a single portable file.
    pub embed_bodies: bool,
    /// GOPROXY bases known from the environment, for decoding module requests.
    pub goproxy_bases: Vec<String>,
    /// Record only exchanges that went to the network (replay's `--on-miss record`).
    pub only_network: bool,
}

enum Msg {
    Chunk(u64, BodyKind, Bytes),
    BodyEnd(u64, BodyKind),
    Exchange(Box<Exchange>),
    /// An exchange that is not recorded: discard its stored bodies.
    Forget(u64),
    Finish(mpsc::Sender<Result<FinishReport, TraceError>>),
}

/// Bytes handed to the writer and not yet written, with the wakers of streams waiting.
struct Gate {
    in_flight: AtomicU64,
    waiters: Mutex<Vec<Waker>>,
}

impl Gate {
    fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut waiters = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        // Checked under the lock the writer takes to wake, so no wake-up is lost.
        if self.in_flight.load(Ordering::Acquire) < IN_FLIGHT_LIMIT {
            return Poll::Ready(());
        }
        waiters.push(cx.waker().clone());
        Poll::Pending
    }

    fn release(&self, n: u64) {
        let before = self.in_flight.fetch_sub(n, Ordering::AcqRel);
        if before >= IN_FLIGHT_LIMIT && before - n < IN_FLIGHT_LIMIT {
            let waiters =
                std::mem::take(&mut *self.waiters.lock().unwrap_or_else(|p| p.into_inner()));
            waiters.into_iter().for_each(Waker::wake);
        }
    }
}

/// Records exchanges into a trace directory.
pub struct Recorder {
    tx: Mutex<mpsc::Sender<Msg>>,
    only_network: bool,
    gate: Arc<Gate>,
    dir: PathBuf,
    pub entries: Arc<AtomicU64>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Recorder {
    pub fn start(opts: RecordOptions) -> Result<Arc<Recorder>, TraceError> {
        let journal = JournalWriter::open(&opts.dir)?;
        // Appending to an existing journal: continue its `_id`s instead of repeating them.
        let id_offset = std::fs::read(journal.path())
            .map(|bytes| bytes.iter().filter(|b| **b == b'\n').count() as u64)
            .unwrap_or(0);
        let store = BodyStore::new(&opts.dir)?;
        let (tx, rx) = mpsc::channel();
        let gate = Arc::new(Gate {
            in_flight: AtomicU64::new(0),
            waiters: Mutex::new(Vec::new()),
        });
        let entries = Arc::new(AtomicU64::new(0));
        let mut writer = Writer {
            journal: Some(journal),
            store,
            opts: opts.clone(),
            open: HashMap::new(),
            stored: HashMap::new(),
            gate: gate.clone(),
            entries: entries.clone(),
            failed: false,
            id_offset,
        };
        let thread = std::thread::Builder::new()
            .name("modscope-recorder".into())
            .spawn(move || writer.run(rx))
            .map_err(|source| TraceError::Io {
                path: opts.dir.clone(),
                source,
            })?;
        Ok(Arc::new(Recorder {
            tx: Mutex::new(tx),
            only_network: opts.only_network,
            gate,
            dir: opts.dir,
            entries,
            thread: Mutex::new(Some(thread)),
        }))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn send(&self, msg: Msg) {
        if let Ok(tx) = self.tx.lock() {
            let _ = tx.send(msg);
        }
    }

    /// Waits for every queued entry, then writes `trace.har`.
    pub fn finish(&self) -> Result<FinishReport, TraceError> {
        let (reply_tx, reply_rx) = mpsc::channel();
        self.send(Msg::Finish(reply_tx));
        let report = reply_rx.recv().map_err(|_| TraceError::Io {
            path: self.dir.clone(),
            source: std::io::Error::other("the recorder thread stopped unexpectedly"),
        })?;
        if let Some(t) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = t.join();
        }
        report
    }
}

impl Observer for Recorder {
    fn on_exchange(&self, exchange: &Exchange) {
        if self.only_network && exchange.connection_id.is_none() {
            // Served from the trace itself: nothing new to append. Drop its body too.
            self.send(Msg::Forget(exchange.id));
            return;
        }
        self.send(Msg::Exchange(Box::new(exchange.clone())));
    }

    fn capture(&self, id: u64, kind: BodyKind) -> Option<Box<dyn BodyCapture>> {
        let tx = self.tx.lock().ok()?.clone();
        Some(Box::new(Capture {
            id,
            kind,
            tx,
            gate: self.gate.clone(),
            batch: bytes::BytesMut::new(),
        }))
    }
}

struct Capture {
    id: u64,
    kind: BodyKind,
    tx: mpsc::Sender<Msg>,
    gate: Arc<Gate>,
    batch: bytes::BytesMut,
}

impl Capture {
    /// Hands the gathered bytes to the writer; only sent bytes count against the budget,
    /// so a stream waiting at the gate never holds budget the writer cannot release.
    fn flush(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let data = self.batch.split().freeze();
        let len = data.len() as u64;
        self.gate.in_flight.fetch_add(len, Ordering::AcqRel);
        if self.tx.send(Msg::Chunk(self.id, self.kind, data)).is_err() {
            self.gate.release(len);
        }
    }
}

impl BodyCapture for Capture {
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.gate.poll_ready(cx)
    }

    fn chunk(&mut self, data: &Bytes) {
        self.batch.extend_from_slice(data);
        if self.batch.len() >= BATCH {
            self.flush();
        }
    }

    fn end(mut self: Box<Self>, _complete: bool) {
        self.flush();
        let _ = self.tx.send(Msg::BodyEnd(self.id, self.kind));
    }
}

struct Writer {
    journal: Option<JournalWriter>,
    store: BodyStore,
    opts: RecordOptions,
    open: HashMap<(u64, BodyKind), BodySink>,
    stored: HashMap<(u64, BodyKind), StoredBody>,
    gate: Arc<Gate>,
    entries: Arc<AtomicU64>,
    /// After a disk error bodies are dropped, but entries keep being journaled.
    failed: bool,
    /// Entries already in the journal when recording started.
    id_offset: u64,
}

impl Writer {
    fn run(&mut self, rx: mpsc::Receiver<Msg>) {
        while let Ok(msg) = rx.recv() {
            match msg {
                Msg::Chunk(id, kind, data) => {
                    self.write_chunk(id, kind, &data);
                    self.gate.release(data.len() as u64);
                }
                Msg::BodyEnd(id, kind) => self.end_body(id, kind),
                Msg::Exchange(ex) => self.entry(*ex),
                Msg::Forget(id) => {
                    for kind in [BodyKind::Request, BodyKind::Response] {
                        if let Some(sink) = self.open.remove(&(id, kind)) {
                            sink.abort();
                        }
                        self.stored.remove(&(id, kind));
                    }
                }
                Msg::Finish(reply) => {
                    let result = match self.journal.take() {
                        Some(j) => j.finish(env!("CARGO_PKG_VERSION")),
                        None => Err(TraceError::Io {
                            path: self.opts.dir.clone(),
                            source: std::io::Error::other("the trace was already finished"),
                        }),
                    };
                    let _ = reply.send(result);
                    return;
                }
            }
        }
    }

    fn write_chunk(&mut self, id: u64, kind: BodyKind, data: &[u8]) {
        if self.failed {
            return;
        }
        let sink = match self.open.entry((id, kind)) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => match self.store.begin() {
                Ok(s) => v.insert(s),
                Err(e) => return self.disk_failed(&e),
            },
        };
        if let Err(e) = sink.write(data) {
            self.open.remove(&(id, kind));
            self.disk_failed(&e);
        }
    }

    fn disk_failed(&mut self, e: &std::io::Error) {
        tracing::error!(
            "recording bodies to {} failed: {e}; continuing without bodies",
            self.opts.dir.display()
        );
        self.failed = true;
        self.open.clear();
    }

    fn end_body(&mut self, id: u64, kind: BodyKind) {
        if let Some(sink) = self.open.remove(&(id, kind)) {
            match sink.finish() {
                Ok(stored) => {
                    self.stored.insert((id, kind), stored);
                }
                Err(e) => self.disk_failed(&e),
            }
        }
    }

    fn content(&mut self, id: u64, kind: BodyKind, content_type: Option<&str>) -> BodyContent {
        // A request body the origin never read to the end is stored as far as it went.
        self.end_body(id, kind);
        let Some(stored) = self.stored.remove(&(id, kind)) else {
            return BodyContent::default();
        };
        match stored.content(&self.store, content_type, self.opts.embed_bodies) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("body of exchange {id} not embedded: {e}");
                BodyContent {
                    sha256: Some(stored.sha256.clone()),
                    file: Some(stored.file.clone()),
                    ..BodyContent::default()
                }
            }
        }
    }

    fn entry(&mut self, mut ex: Exchange) {
        let content_type = |headers: &[(String, String)]| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                .map(|(_, v)| v.clone())
        };
        let request_ct = content_type(&ex.request.headers);
        let request = self.content(ex.id, BodyKind::Request, request_ct.as_deref());
        let response_ct = ex.response.as_ref().and_then(|r| content_type(&r.headers));
        let response = self.content(ex.id, BodyKind::Response, response_ct.as_deref());
        ex.request.body.sha256 = request.sha256.clone();
        if let Some(r) = ex.response.as_mut() {
            r.body.sha256 = response.sha256.clone();
        }
        ex.id += self.id_offset;
        let mut go = gomod::classify(
            &ex.request.method,
            &ex.request.url,
            &self.opts.goproxy_bases,
        );
        self.add_h1(&mut go, &ex, response.file.as_deref());
        let entry = build_entry(
            &ex,
            serde_json::to_value(&go).ok(),
            &EntryBodies { request, response },
            &BuildOptions {
                redact: self.opts.redact,
            },
        );
        let Some(journal) = self.journal.as_ref() else {
            return;
        };
        match journal.append(&entry) {
            Ok(()) => {
                self.entries.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => tracing::error!(
                "cannot append to the journal in {}: {e}",
                self.opts.dir.display()
            ),
        }
    }
}

impl Writer {
    /// go's `h1:` of a complete 200 `.zip`/`.mod` body, from the stored body file (for
    /// zips a rejection instead when go would refuse the archive).
    fn add_h1(&self, go: &mut gomod::GoRequest, ex: &Exchange, file: Option<&str>) {
        let (Some(r), Some(file)) = (ex.response.as_ref(), file) else {
            return;
        };
        if r.status != 200 || !r.body.complete || ex.error.is_some() {
            return;
        }
        let encoding = r
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-encoding"))
            .map(|(_, v)| v.as_str());
        gozip::hash_recorded_body(go, encoding, &self.opts.dir.join(file));
    }
}
