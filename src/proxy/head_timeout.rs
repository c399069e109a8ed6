//! `--header-timeout` for every request head a client sends, on the first hop and inside
//! tunnels, HTTP/1.1 and HTTP/2, without cutting idle keep-alive connections (those belong
//! to `--idle-timeout`).
//!
//! HTTP/1.1: hyper's head timer starts as soon as it waits for a head, which on a
//! keep-alive connection is while it idles between requests. [`HeadTimer`] is the timer
//! hyper gets: the first head of a connection is timed from the moment hyper waits for it,
//! every later one from the first byte that arrives after the previous request.
//!
//! HTTP/2: a request head is a HEADERS frame plus CONTINUATIONs up to END_HEADERS.
//! [`H2HeadTracker`] (pure) follows the frame headers of what the client sends and says
//! whether a head is pending; [`H2HeadWatch`] feeds it from the stream hyper reads, and
//! [`H2HeadWatch::expired`] resolves when one has been pending too long. The first request
//! of a connection is pending from the end of the TLS handshake.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, ReadBuf};

/// What a [`ReadTap`] calls with each chunk read.
type OnRead = Box<dyn FnMut(&[u8]) + Send>;

/// A stream that shows every chunk it reads to `on_read` (writes pass through).
pub struct ReadTap<S> {
    inner: S,
    on_read: OnRead,
}

impl<S: AsyncRead + Unpin> AsyncRead for ReadTap<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(res, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            (self.on_read)(&buf.filled()[before..]);
        }
        res
    }
}

super::io::delegate_async_write!(ReadTap<S>);

/// Counts reads that returned bytes, so a timer can tell "the client started a new head".
pub struct CountReads;

impl CountReads {
    /// `inner` wrapped, and a [`HeadTimer`] that times request heads read from it.
    #[allow(clippy::new_ret_no_self)]
    pub fn new<S>(inner: S) -> (ReadTap<S>, HeadTimer) {
        let reads = Arc::new(AtomicU64::new(0));
        let timer = HeadTimer {
            reads: reads.clone(),
            first: Arc::new(AtomicBool::new(true)),
        };
        let on_read = Box::new(move |_: &[u8]| {
            reads.fetch_add(1, Ordering::Relaxed);
        });
        (ReadTap { inner, on_read }, timer)
    }
}

/// The timer of one HTTP/1.1 server connection. hyper's HTTP/1.1 server uses its timer
/// for the header read timeout only, so every sleep it asks for is a head deadline.
#[derive(Clone)]
pub struct HeadTimer {
    reads: Arc<AtomicU64>,
    /// The connection's first head is due from the start; later ones from their first byte.
    first: Arc<AtomicBool>,
}

impl hyper::rt::Timer for HeadTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        let immediate = self.first.swap(false, Ordering::Relaxed);
        Box::pin(HeadSleep {
            reads: self.reads.clone(),
            seen: self.reads.load(Ordering::Relaxed),
            immediate,
            limit: duration,
            armed: None,
        })
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep(deadline.saturating_duration_since(Instant::now()))
    }
}

/// Resolves `limit` after the head started: at once for the first head, else from the
/// first read after it was created. hyper polls it right after each read attempt that left
/// the head incomplete, so "now" at the first poll that sees a new read is the byte's time.
struct HeadSleep {
    reads: Arc<AtomicU64>,
    seen: u64,
    immediate: bool,
    limit: Duration,
    armed: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Future for HeadSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.armed.is_none() {
            if !self.immediate && self.reads.load(Ordering::Relaxed) == self.seen {
                // Idle between requests: the read that ends the idleness wakes hyper,
                // which polls this again.
                return Poll::Pending;
            }
            let limit = self.limit;
            self.armed = Some(Box::pin(tokio::time::sleep(limit)));
        }
        match self.armed.as_mut() {
            Some(sleep) => sleep.as_mut().poll(cx),
            None => Poll::Pending,
        }
    }
}

impl hyper::rt::Sleep for HeadSleep {}

const H2_PREFACE_LEN: usize = 24;
const FRAME_HEADER_LEN: usize = 9;
const TYPE_HEADERS: u8 = 0x1;
const TYPE_PUSH_PROMISE: u8 = 0x5;
const TYPE_CONTINUATION: u8 = 0x9;
const FLAG_END_HEADERS: u8 = 0x4;

/// PURE: follows HTTP/2 frames a client sends and says whether a request head is pending:
/// before the connection's first complete header block, or while a header block
/// (HEADERS or CONTINUATION frames up to END_HEADERS) is incomplete.
#[derive(Debug, Clone, Default)]
pub struct H2HeadTracker {
    preface_left: usize,
    header: Vec<u8>,
    /// Payload bytes of the current frame still to skip.
    payload_left: usize,
    /// The current frame is part of a header block.
    in_block_frame: bool,
    /// A header block started and its END_HEADERS has not been seen (or not yet received).
    block_open: bool,
    /// The current header-block frame carries END_HEADERS.
    end_headers: bool,
    /// At least one header block was completed on this connection.
    had_request: bool,
}

impl H2HeadTracker {
    pub fn new() -> Self {
        H2HeadTracker {
            preface_left: H2_PREFACE_LEN,
            ..Self::default()
        }
    }

    /// Whether a request head is due (see the type's description).
    pub fn head_pending(&self) -> bool {
        !self.had_request || self.block_open
    }

    pub fn feed(&mut self, mut bytes: &[u8]) {
        let skip = self.preface_left.min(bytes.len());
        self.preface_left -= skip;
        bytes = &bytes[skip..];
        while !bytes.is_empty() {
            if self.payload_left > 0 {
                let n = self.payload_left.min(bytes.len());
                self.payload_left -= n;
                bytes = &bytes[n..];
                if self.payload_left == 0 {
                    self.end_frame();
                }
                continue;
            }
            let need = FRAME_HEADER_LEN - self.header.len();
            let n = need.min(bytes.len());
            self.header.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if self.header.len() == FRAME_HEADER_LEN {
                let h = std::mem::take(&mut self.header);
                let len = (usize::from(h[0]) << 16) | (usize::from(h[1]) << 8) | usize::from(h[2]);
                let (kind, flags) = (h[3], h[4]);
                self.in_block_frame =
                    matches!(kind, TYPE_HEADERS | TYPE_PUSH_PROMISE | TYPE_CONTINUATION);
                if self.in_block_frame {
                    // Pending until END_HEADERS arrives with the frame's whole payload.
                    self.block_open = true;
                    self.end_headers = flags & FLAG_END_HEADERS != 0;
                }
                self.payload_left = len;
                if len == 0 {
                    self.end_frame();
                }
            }
        }
    }

    fn end_frame(&mut self) {
        if self.in_block_frame && self.end_headers {
            self.block_open = false;
            self.had_request = true;
        }
        self.in_block_frame = false;
    }
}

/// Feeds what an HTTP/2 server connection reads to an [`H2HeadTracker`].
pub struct H2HeadWatch;

struct WatchState {
    tracker: H2HeadTracker,
    /// Since when a head has been pending (`None`: nothing due).
    since: Option<Instant>,
}

/// Resolves once a request head has been pending for `limit`; clone of the watch's state.
#[derive(Clone)]
pub struct H2Deadline {
    state: Arc<Mutex<WatchState>>,
    limit: Duration,
}

impl H2HeadWatch {
    /// Wraps a stream whose TLS handshake just finished (the first head is due from now).
    #[allow(clippy::new_ret_no_self)]
    pub fn new<S>(inner: S, limit: Duration) -> (ReadTap<S>, H2Deadline) {
        let state = Arc::new(Mutex::new(WatchState {
            tracker: H2HeadTracker::new(),
            since: Some(Instant::now()),
        }));
        let fed = state.clone();
        let on_read = Box::new(move |bytes: &[u8]| {
            if let Ok(mut s) = fed.lock() {
                s.tracker.feed(bytes);
                s.since = match (s.tracker.head_pending(), s.since) {
                    (true, None) => Some(Instant::now()),
                    (true, since) => since,
                    (false, _) => None,
                };
            }
        });
        (ReadTap { inner, on_read }, H2Deadline { state, limit })
    }
}

impl H2Deadline {
    /// Checks a few times per limit (a head is cut between `limit` and `limit` + a quarter).
    pub async fn expired(&self) {
        let step = (self.limit / 4).clamp(Duration::from_millis(10), Duration::from_millis(250));
        loop {
            tokio::time::sleep(step).await;
            let since = self.state.lock().map(|s| s.since).unwrap_or(None);
            if since.is_some_and(|t| t.elapsed() >= self.limit) {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len();
        let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
        f.extend_from_slice(&stream.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

    #[test]
    fn a_head_is_pending_until_its_block_ends() {
        let settings = frame(0x4, 0, 0, &[0; 6]);
        let settings_ack = frame(0x4, 0x1, 0, &[]);
        let ping = frame(0x6, 0, 0, &[0; 8]);
        let window = frame(0x8, 0, 0, &[0, 0, 1, 0]);
        let headers_done = frame(TYPE_HEADERS, FLAG_END_HEADERS | 0x1, 1, &[0x82; 20]);
        let headers_open = frame(TYPE_HEADERS, 0x1, 3, &[0x82; 20]);
        let continuation_done = frame(TYPE_CONTINUATION, FLAG_END_HEADERS, 3, &[0x84; 5]);
        let data = frame(0x0, 0x1, 1, &[7; 100]);
        // (bytes fed in order, pending after them)
        type Step<'a> = (&'a [u8], bool);
        let cases: Vec<(&str, Vec<Step>)> = vec![
            ("silent after the handshake", vec![]),
            (
                "preface and settings only",
                vec![(PREFACE, true), (&settings, true)],
            ),
            (
                "one request, then idle with pings and window updates",
                vec![
                    (PREFACE, true),
                    (&settings, true),
                    (&headers_done, false),
                    (&data, false),
                    (&ping, false),
                    (&window, false),
                    (&settings_ack, false),
                ],
            ),
            (
                "HEADERS without END_HEADERS and no CONTINUATION",
                vec![
                    (PREFACE, true),
                    (&headers_done, false),
                    (&headers_open, true),
                    (&ping, true),
                ],
            ),
            (
                "the CONTINUATION completes it",
                vec![
                    (PREFACE, true),
                    (&headers_done, false),
                    (&headers_open, true),
                    (&continuation_done, false),
                ],
            ),
            (
                "a HEADERS frame whose payload has not all arrived",
                vec![
                    (PREFACE, true),
                    (&headers_done, false),
                    (&headers_done[..12], true),
                    (&headers_done[12..], false),
                ],
            ),
        ];
        for (name, steps) in cases {
            let mut t = H2HeadTracker::new();
            assert!(t.head_pending(), "{name}: the first head is due at once");
            for (i, (bytes, want)) in steps.iter().enumerate() {
                t.feed(bytes);
                assert_eq!(t.head_pending(), *want, "{name}, step {i}");
            }
            // The same bytes fed one at a time give the same answer.
            let mut slow = H2HeadTracker::new();
            for (bytes, _) in &steps {
                for b in bytes.iter() {
                    slow.feed(std::slice::from_ref(b));
                }
            }
            assert_eq!(
                slow.head_pending(),
                t.head_pending(),
                "{name}: byte by byte"
            );
        }
    }
}
