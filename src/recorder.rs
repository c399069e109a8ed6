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
    JournalWriter, StoredBody, TraceError, Unrecorded,
};

/// Body bytes that may wait for the writer before the proxy stops reading from sockets.
const IN_FLIGHT_LIMIT: u64 = 8 * 1024 * 1024;

/// Chunks are gathered up to this size per body before they go to the writer thread: one
/// message (and one thread wake-up) per TLS record costs more CPU than gathering.
const BATCH: usize = 64 * 1024;

/// Chunks at least this long are passed on by reference (`Bytes` is reference
/// counted); shorter ones are copied together, so a few bytes never keep a large
/// receive buffer alive while they wait for the writer.
const BY_REFERENCE: usize = 4 * 1024;

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
    /// Body chunks in order, as they passed through the proxy (small ones gathered);
    /// `true` when they are the body's last: one message (one wake-up of the writer)
    /// instead of two for a small body.
    Chunk(u64, BodyKind, Vec<Bytes>, bool),
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
    /// What this run could not record (a full disk), for the closing report.
    unrecorded: Arc<Mutex<Unrecorded>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Recorder {
    pub fn start(opts: RecordOptions) -> Result<Arc<Recorder>, TraceError> {
        let journal = JournalWriter::open(&opts.dir)?;
        Self::start_on(opts, journal)
    }

    fn start_on(opts: RecordOptions, journal: JournalWriter) -> Result<Arc<Recorder>, TraceError> {
        // Appending to an existing journal: continue its `_id`s instead of repeating them.
        let id_offset = journal.existing_lines();
        let store = BodyStore::new(&opts.dir)?;
        let (tx, rx) = mpsc::channel();
        let gate = Arc::new(Gate {
            in_flight: AtomicU64::new(0),
            waiters: Mutex::new(Vec::new()),
        });
        let entries = Arc::new(AtomicU64::new(0));
        let unrecorded = Arc::new(Mutex::new(Unrecorded::default()));
        let mut writer = Writer {
            journal: Some(journal),
            store,
            opts: opts.clone(),
            open: HashMap::new(),
            stored: HashMap::new(),
            lost: HashMap::new(),
            gate: gate.clone(),
            entries: entries.clone(),
            losses: Losses {
                pending: Unrecorded::default(),
                total: unrecorded.clone(),
                in_burst: false,
            },
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
            unrecorded,
            thread: Mutex::new(Some(thread)),
        }))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Exchanges and bodies this run could not record so far (a full disk).
    pub fn unrecorded(&self) -> Unrecorded {
        self.unrecorded
            .lock()
            .map(|u| u.clone())
            .unwrap_or_default()
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
            batch: Vec::new(),
            small: bytes::BytesMut::new(),
            len: 0,
        }))
    }
}

struct Capture {
    id: u64,
    kind: BodyKind,
    tx: mpsc::Sender<Msg>,
    gate: Arc<Gate>,
    /// Chunks gathered for the next message, in order.
    batch: Vec<Bytes>,
    /// Short chunks copied together since the last chunk passed by reference.
    small: bytes::BytesMut,
    /// Bytes in `batch` and `small`.
    len: usize,
}

impl Capture {
    fn seal_small(&mut self) {
        if !self.small.is_empty() {
            self.batch.push(self.small.split().freeze());
        }
    }

    /// Hands the gathered bytes to the writer; only sent bytes count against the budget,
    /// so a stream waiting at the gate never holds budget the writer cannot release.
    fn flush(&mut self, last: bool) {
        self.seal_small();
        if self.batch.is_empty() && !last {
            return;
        }
        let chunks = std::mem::take(&mut self.batch);
        let len = std::mem::take(&mut self.len) as u64;
        self.gate.in_flight.fetch_add(len, Ordering::AcqRel);
        if self
            .tx
            .send(Msg::Chunk(self.id, self.kind, chunks, last))
            .is_err()
        {
            self.gate.release(len);
        }
    }
}

impl BodyCapture for Capture {
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.gate.poll_ready(cx)
    }

    fn chunk(&mut self, data: &Bytes) {
        if data.len() >= BY_REFERENCE {
            self.seal_small();
            self.batch.push(data.clone());
        } else {
            self.small.extend_from_slice(data);
        }
        self.len += data.len();
        if self.len >= BATCH {
            self.flush(false);
        }
    }

    fn end(mut self: Box<Self>, _complete: bool) {
        self.flush(true);
    }
}

struct Writer {
    journal: Option<JournalWriter>,
    store: BodyStore,
    opts: RecordOptions,
    open: HashMap<(u64, BodyKind), BodySink>,
    stored: HashMap<(u64, BodyKind), StoredBody>,
    /// Bodies whose writing failed, with why: their remaining chunks are dropped, and
    /// their entry is journaled without a body reference.
    lost: HashMap<(u64, BodyKind), String>,
    gate: Arc<Gate>,
    entries: Arc<AtomicU64>,
    losses: Losses,
    /// Entries already in the journal when recording started.
    id_offset: u64,
}

/// What could not be recorded: `pending` is not yet noted in the journal, `total` is the
/// whole run's. A burst of failures is announced once when it starts and once when
/// recording works again, so a full disk does not print a line per exchange.
struct Losses {
    pending: Unrecorded,
    total: Arc<Mutex<Unrecorded>>,
    in_burst: bool,
}

impl Losses {
    /// A write failed; the first failure of a burst is announced.
    fn trouble(&mut self, dir: &Path, e: &std::io::Error) {
        if !self.in_burst {
            self.in_burst = true;
            tracing::warn!(
                "cannot record into {}: {} ({e}); still proxying, counting what is not recorded",
                dir.display(),
                failure_reason(e)
            );
        }
    }

    /// Counts what an exchange lost, once its entry was (or could not be) appended.
    fn count(&mut self, gap: &Unrecorded) {
        self.pending.add(gap);
        if let Ok(mut total) = self.total.lock() {
            total.add(gap);
        }
    }

    /// A whole exchange was recorded again.
    fn recovered(&mut self, dir: &Path) {
        if !self.in_burst {
            return;
        }
        self.in_burst = false;
        let total = self.total.lock().map(|t| t.clone()).unwrap_or_default();
        tracing::warn!(
            "recording into {} again; {} so far",
            dir.display(),
            total.describe()
        );
    }

    /// Notes the pending gap in the journal; kept pending while the disk refuses it.
    fn note(&mut self, journal: &JournalWriter) {
        if !self.pending.is_empty() && journal.append_unrecorded(&self.pending).is_ok() {
            self.pending = Unrecorded::default();
        }
    }
}

/// How long the writer waits for more work once its queue is empty, before it parks.
/// A parked writer is woken by a futex call for each message, and in perf of 2000
/// sequential requests those wake-ups (and the context switches) were most of the
/// recorder thread's time; a message sent while the writer sleeps costs no wake-up, so
/// exchanges that end close together are handled in one pass. An entry reaches the
/// journal at most this much later (a `kill -9` in that window loses it, like any
/// exchange still in flight); the proxy never waits for it (the byte budget is 8 MiB).
/// Not while a body is open: a streaming body keeps the queue busy anyway, and a writer
/// asleep while the proxy waits at the byte budget cost CPU in the large-body bench.
const COALESCE: std::time::Duration = std::time::Duration::from_millis(1);

/// The next message: at once when one is queued, else (when `coalesce`) after one
/// short sleep, else whenever one comes. `None` once every sender is gone.
fn next_message(rx: &mpsc::Receiver<Msg>, coalesce: bool) -> Option<Msg> {
    match rx.try_recv() {
        Ok(msg) => return Some(msg),
        Err(mpsc::TryRecvError::Disconnected) => return None,
        Err(mpsc::TryRecvError::Empty) => {}
    }
    if coalesce {
        std::thread::sleep(COALESCE);
    }
    rx.recv().ok()
}

/// Words for why a write failed; "disk full" for the errors a full disk or quota gives.
fn failure_reason(e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded => "disk full".to_string(),
        ErrorKind::PermissionDenied => "permission denied".to_string(),
        kind => format!("write error: {kind}"),
    }
}

impl Writer {
    fn run(&mut self, rx: mpsc::Receiver<Msg>) {
        while let Some(msg) = next_message(&rx, self.open.is_empty()) {
            match msg {
                Msg::Chunk(id, kind, chunks, last) => {
                    if !chunks.is_empty() {
                        self.write_chunk(id, kind, &chunks);
                        let len: usize = chunks.iter().map(Bytes::len).sum();
                        self.gate.release(len as u64);
                    }
                    if last {
                        self.end_body(id, kind);
                    }
                }
                Msg::Exchange(ex) => self.entry(*ex),
                Msg::Forget(id) => {
                    for kind in [BodyKind::Request, BodyKind::Response] {
                        if let Some(sink) = self.open.remove(&(id, kind)) {
                            sink.abort();
                        }
                        self.stored.remove(&(id, kind));
                        self.lost.remove(&(id, kind));
                    }
                }
                Msg::Finish(reply) => {
                    let result = match self.journal.take() {
                        Some(j) => {
                            self.losses.note(&j);
                            j.finish(env!("CARGO_PKG_VERSION"))
                        }
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

    fn write_chunk(&mut self, id: u64, kind: BodyKind, chunks: &[Bytes]) {
        if self.lost.contains_key(&(id, kind)) {
            return;
        }
        let sink = match self.open.entry((id, kind)) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => match self.store.begin() {
                Ok(s) => v.insert(s),
                Err(e) => return self.body_failed(id, kind, &e),
            },
        };
        if let Err(e) = sink.write_chunks(chunks) {
            self.body_failed(id, kind, &e);
        }
    }

    /// One body could not be written: its temp file goes (dropping the sink removes it),
    /// so no entry can refer to a partial file; other bodies keep trying.
    fn body_failed(&mut self, id: u64, kind: BodyKind, e: &std::io::Error) {
        self.open.remove(&(id, kind));
        self.lost.insert((id, kind), failure_reason(e));
        self.losses.trouble(&self.opts.dir, e);
    }

    fn end_body(&mut self, id: u64, kind: BodyKind) {
        if let Some(sink) = self.open.remove(&(id, kind)) {
            // A small body stays in memory and is embedded in its entry: no file.
            match sink.finish_small_in_memory() {
                Ok(stored) => {
                    self.stored.insert((id, kind), stored);
                }
                Err(e) => self.body_failed(id, kind, &e),
            }
        }
    }

    fn content(
        &mut self,
        id: u64,
        kind: BodyKind,
        content_type: Option<&str>,
        content_encoding: Option<&str>,
    ) -> (BodyContent, Option<StoredBody>) {
        // A request body the origin never read to the end is stored as far as it went.
        self.end_body(id, kind);
        let Some(stored) = self.stored.remove(&(id, kind)) else {
            return (BodyContent::default(), None);
        };
        let content = match stored.content(
            &self.store,
            content_type,
            content_encoding,
            self.opts.embed_bodies,
        ) {
            Ok(c) => c,
            // A small encoded body whose file could not be written (a full disk): no
            // bytes are kept anywhere, so the entry names none and the body counts as
            // unrecorded, like a body whose streaming to disk failed.
            Err(TraceError::Io { source, .. }) if stored.file.is_none() => {
                self.body_failed(id, kind, &source);
                return (BodyContent::default(), None);
            }
            Err(e) => {
                tracing::warn!("body of exchange {id} not embedded: {e}");
                BodyContent {
                    sha256: Some(stored.sha256.clone()),
                    file: stored.file.clone(),
                    ..BodyContent::default()
                }
            }
        };
        (content, Some(stored))
    }

    fn entry(&mut self, mut ex: Exchange) {
        let header = |headers: &[(String, String)], name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let request_ct = header(&ex.request.headers, "content-type");
        let request_ce = header(&ex.request.headers, "content-encoding");
        let (request, _) = self.content(
            ex.id,
            BodyKind::Request,
            request_ct.as_deref(),
            request_ce.as_deref(),
        );
        let response_ct = ex
            .response
            .as_ref()
            .and_then(|r| header(&r.headers, "content-type"));
        let response_ce = ex
            .response
            .as_ref()
            .and_then(|r| header(&r.headers, "content-encoding"));
        let (response, response_stored) = self.content(
            ex.id,
            BodyKind::Response,
            response_ct.as_deref(),
            response_ce.as_deref(),
        );
        // Bodies that failed; they count only if the entry itself makes it to the journal.
        let mut bodies_lost = Unrecorded::default();
        for kind in [BodyKind::Request, BodyKind::Response] {
            if let Some(reason) = self.lost.remove(&(ex.id, kind)) {
                bodies_lost.add(&Unrecorded {
                    exchanges: 0,
                    bodies: 1,
                    reason,
                });
            }
        }
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
        self.add_h1(&mut go, &ex, &response, response_stored.as_ref());
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
        self.losses.note(journal);
        match journal.append(&entry) {
            Ok(()) => {
                self.entries.fetch_add(1, Ordering::Relaxed);
                if bodies_lost.is_empty() {
                    self.losses.recovered(&self.opts.dir);
                } else {
                    self.losses.count(&bodies_lost);
                }
            }
            Err(TraceError::Io { source, .. }) => {
                self.losses.trouble(&self.opts.dir, &source);
                self.losses.count(&Unrecorded {
                    exchanges: 1,
                    bodies: 0,
                    reason: failure_reason(&source),
                });
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
    fn add_h1(
        &self,
        go: &mut gomod::GoRequest,
        ex: &Exchange,
        content: &BodyContent,
        stored: Option<&StoredBody>,
    ) {
        let Some(r) = ex.response.as_ref() else {
            return;
        };
        let path;
        let body = match (content.file.as_deref(), stored) {
            (Some(file), _) => {
                path = self.opts.dir.join(file);
                gozip::RecordedBody::File(&path)
            }
            // Embedded in the entry: the whole body is its head.
            (None, Some(s)) if !s.truncated_head => gozip::RecordedBody::Bytes(&s.head),
            _ => return,
        };
        if r.status != 200 || !r.body.complete || ex.error.is_some() {
            return;
        }
        let encoding = r
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-encoding"))
            .map(|(_, v)| v.as_str());
        gozip::hash_recorded_body(go, encoding, body);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU64;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::testkit::TempDir;
    use crate::trace::testutil::{sample_exchange, FullDisk};
    use crate::trace::{load_trace, read_verified, BODIES_DIR, JOURNAL_FILE};

    fn options(dir: &Path) -> RecordOptions {
        RecordOptions {
            dir: dir.to_path_buf(),
            redact: true,
            embed_bodies: false,
            goproxy_bases: Vec::new(),
            only_network: false,
        }
    }

    /// Waits (bounded) until the writer thread has handled what was sent.
    fn settle(what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !done() {
            assert!(
                Instant::now() < deadline,
                "the recorder never got to: {what}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// One exchange with a response body of `body` bytes, streamed through a capture.
    fn exchange(rec: &Recorder, id: u64, body: usize) {
        let mut ex = sample_exchange();
        ex.id = id;
        // `.info`, not `.zip`: these bodies are not zips, and a `.zip` would get a
        // `zip-rejected` finding (and a longer entry) from the h1 pass.
        ex.request.url = format!("https://proxy.golang.org/m/@v/v1.0.{id}.info");
        let data: Vec<u8> = (0..body).map(|i| (i * 31 + id as usize) as u8).collect();
        if let Some(r) = ex.response.as_mut() {
            r.headers = vec![("content-type".into(), "application/zip".into())];
            r.body.size = body as u64;
            r.body.sha256 = None;
        }
        let mut capture = rec.capture(id, BodyKind::Response).expect("capture");
        for chunk in data.chunks(16 * 1024) {
            capture.chunk(&Bytes::copy_from_slice(chunk));
        }
        capture.end(true);
        rec.on_exchange(&ex);
    }

    #[test]
    fn exchanges_a_full_journal_refuses_are_counted_and_reported() {
        let dir = TempDir::new("recorder-full");
        let room = Arc::new(AtomicU64::new(u64::MAX));
        let journal = JournalWriter::open_with(dir.path(), |file| {
            Box::new(FullDisk {
                file,
                room: room.clone(),
            })
        })
        .expect("open");
        let rec = Recorder::start_on(options(dir.path()), journal).expect("start");
        for id in 1..=2 {
            exchange(&rec, id, 1000);
        }
        settle("2 entries", || rec.entries.load(Ordering::SeqCst) == 2);
        // The journal's disk fills up (the bodies' disk still has room).
        room.store(0, Ordering::SeqCst);
        for id in 3..=5 {
            exchange(&rec, id, 1000);
        }
        settle("3 refused", || rec.unrecorded().exchanges == 3);
        room.store(u64::MAX, Ordering::SeqCst);
        for id in 6..=7 {
            exchange(&rec, id, 1000);
        }
        let report = rec.finish().expect("finish");
        let gap = Unrecorded {
            exchanges: 3,
            bodies: 0,
            reason: "disk full".into(),
        };
        assert_eq!(rec.unrecorded(), gap);
        assert_eq!(
            (report.entries, report.unrecorded.clone()),
            (4, gap.clone())
        );
        assert!(report.problems.is_empty(), "{:?}", report.problems);

        let t = load_trace(dir.path()).expect("load");
        let mut ids: Vec<_> = t.entries.iter().filter_map(|e| e.id).collect();
        ids.sort();
        assert_eq!(ids, [1, 2, 6, 7]);
        assert_eq!(t.unrecorded, gap);
        let (text, worst) =
            crate::report::render_with_gap(&t.entries, &t.unrecorded, None, false, false);
        assert!(
            text.contains("3 exchanges were not recorded (disk full)"),
            "{text}"
        );
        assert!(!text.contains("Findings: none"), "{text}");
        assert_eq!(worst, Some(crate::diagnose::Severity::Warning));
    }

    #[test]
    fn a_small_encoded_body_whose_file_cannot_be_written_is_counted_not_named() {
        let dir = TempDir::new("recorder-encoded-lost");
        let rec = Recorder::start(options(dir.path())).expect("start");
        // `bodies/` turns into a plain file: every file under it fails, even for root.
        std::fs::remove_dir_all(dir.path().join(BODIES_DIR)).expect("rm bodies");
        std::fs::write(dir.path().join(BODIES_DIR), b"not a directory").expect("file");
        let mut ex = sample_exchange();
        ex.id = 1;
        if let Some(r) = ex.response.as_mut() {
            // gzip: the entry's text is the decoded body, so the wire bytes need a file.
            r.headers = vec![("content-encoding".into(), "gzip".into())];
            r.body.size = 3;
        }
        let mut capture = rec.capture(1, BodyKind::Response).expect("capture");
        capture.chunk(&Bytes::from_static(b"\x1f\x8b\x08"));
        capture.end(true);
        rec.on_exchange(&ex);
        let report = rec.finish().expect("finish");
        assert_eq!(report.entries, 1);
        assert_eq!(
            (report.unrecorded.bodies, report.unrecorded.exchanges),
            (1, 0)
        );
        let journal = std::fs::read_to_string(dir.path().join(JOURNAL_FILE)).expect("journal");
        let entry: serde_json::Value =
            serde_json::from_str(journal.lines().next().expect("a line")).expect("json");
        let content = &entry["response"]["content"];
        assert_eq!(
            (&content["_sha256"], &content["_file"]),
            (&serde_json::Value::Null, &serde_json::Value::Null),
            "no entry may name bytes that were never written: {content}"
        );
    }

    /// A tmpfs of a few hundred KiB mounted for one test, unmounted on drop.
    struct Tmpfs(TempDir);

    impl Tmpfs {
        fn mount(size: &str) -> Result<Tmpfs, String> {
            let dir = TempDir::new("recorder-tmpfs");
            let out = std::process::Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
                .arg(dir.path())
                .output()
                .map_err(|e| format!("cannot run mount: {e}"))?;
            if !out.status.success() {
                return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
            }
            Ok(Tmpfs(dir))
        }
    }

    impl Drop for Tmpfs {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg(self.0.path())
                .status();
        }
    }

    /// Fills the file system holding `path` to the last byte.
    fn fill(path: &Path) -> std::fs::File {
        use std::io::Write;
        let mut f = std::fs::File::create(path).expect("filler");
        let block = vec![0u8; 4096];
        while f.write_all(&block).is_ok() {}
        while f.write_all(&block[..1]).is_ok() {}
        f
    }

    #[test]
    fn recording_onto_a_tmpfs_that_fills_and_frees_keeps_every_line_whole() {
        let fs = match Tmpfs::mount("512k") {
            Ok(fs) => fs,
            Err(why) => {
                println!("SKIPPED: cannot mount a tmpfs ({why})");
                return;
            }
        };
        let dir = fs.0.path().join("rec");
        let rec = Recorder::start(options(&dir)).expect("start");
        for id in 1..=3 {
            exchange(&rec, id, 20_000);
        }
        settle("3 entries", || rec.entries.load(Ordering::SeqCst) == 3);
        let filler = fs.0.path().join("filler");
        let file = fill(&filler);
        for id in 4..=6 {
            exchange(&rec, id, 20_000);
        }
        settle("3 refused", || rec.unrecorded().exchanges == 3);
        // 16 KiB free: room for an entry, not for its 20 kB body.
        let len = file.metadata().expect("stat").len();
        file.set_len(len - 16 * 1024).expect("free 16 KiB");
        exchange(&rec, 100, 20_000);
        settle("a body refused", || rec.unrecorded().bodies == 1);
        drop(file);
        std::fs::remove_file(&filler).expect("free the space");
        for id in 7..=8 {
            exchange(&rec, id, 20_000);
        }
        let report = rec.finish().expect("finish");
        let lost = rec.unrecorded();
        assert_eq!((lost.exchanges, lost.reason.as_str()), (3, "disk full"));
        assert_eq!(
            lost.bodies, 1,
            "a refused exchange's body is not counted twice"
        );
        assert_eq!(report.entries, 6);

        let journal = std::fs::read_to_string(dir.join(JOURNAL_FILE)).expect("journal");
        for line in journal.lines() {
            serde_json::from_str::<serde_json::Value>(line).expect("every line parses");
        }
        let t = load_trace(&dir).expect("load");
        assert!(t.problems.is_empty(), "{:?}", t.problems);
        let mut ids: Vec<_> = t.entries.iter().filter_map(|e| e.id).collect();
        ids.sort();
        assert_eq!(ids, [1, 2, 3, 7, 8, 100]);
        assert_eq!(t.unrecorded, lost);
        // No partial body is left, and every body an entry names is whole.
        for name in std::fs::read_dir(dir.join(BODIES_DIR)).expect("ls") {
            let name = name.expect("entry").file_name();
            assert!(
                !name.to_string_lossy().starts_with('.'),
                "{name:?} left behind"
            );
        }
        for e in &t.entries {
            let c = &e.response.content;
            if e.id == Some(100) {
                assert_eq!(
                    (&c.sha256, &c.file),
                    (&None, &None),
                    "no partial file named"
                );
                continue;
            }
            let sha = c.sha256.as_deref().expect("stored body");
            assert_eq!(read_verified(&dir, sha).expect("whole").len(), 20_000);
        }
    }
}
