//! HTTP/1.x over one reassembled TCP connection: requests and responses (Content-Length,
//! chunked, until-close), pipelining, CONNECT tunnels and upgrades, bodies streamed out.
//!
//! The parser never trusts the peer: heads are bounded, chunk sizes are checked, and a
//! direction that stops making sense is marked broken instead of guessed at.

use super::output::{BodyWrite, TraceOutput};
use super::tls::{looks_like_tls, TlsTracker};
use super::{CaptureError, Side};
use crate::trace::BodyContent;

/// Largest request or response head; go's own limit is 1 MiB, real heads are < 8 KiB.
const MAX_HEAD: usize = 256 * 1024;
const MAX_HEADERS: usize = 256;
const MAX_CHUNK_LINE: usize = 4096;
const MAX_TRAILERS: usize = 64 * 1024;
/// Client bytes sent after CONNECT before the proxy answered (a ClientHello fits easily).
const MAX_EARLY_TUNNEL: usize = 256 * 1024;

/// Whether `data` (the first bytes a client sent) starts like an HTTP/1.x request.
pub(crate) fn looks_like_request(data: &[u8]) -> Option<bool> {
    const METHODS: [&[u8]; 9] = [
        b"GET ",
        b"HEAD ",
        b"POST ",
        b"PUT ",
        b"DELETE ",
        b"CONNECT ",
        b"OPTIONS ",
        b"TRACE ",
        b"PATCH ",
    ];
    let mut undecided = false;
    for m in METHODS {
        let n = m.len().min(data.len());
        if data[..n] == m[..n] {
            if n == m.len() {
                return Some(true);
            }
            undecided = true;
        }
    }
    if undecided {
        None
    } else {
        Some(false)
    }
}

#[derive(Debug, Default)]
pub(crate) struct BodyInfo {
    /// Decoded bytes (after de-chunking; still content-encoded, as on the wire).
    pub size: u64,
    /// Content-Length, when declared.
    pub expected: Option<u64>,
    pub content: BodyContent,
    pub complete: bool,
    pub chunked: bool,
}

#[derive(Debug)]
pub(crate) struct Request {
    pub method: String,
    pub target: String,
    pub version: String,
    pub headers: Vec<(String, String)>,
    pub start_ts: i64,
    /// When the last byte of the request arrived; `None` while (or if never) complete.
    pub end_ts: Option<i64>,
    pub body: BodyInfo,
}

#[derive(Debug)]
pub(crate) struct Response {
    pub status: u16,
    pub version: String,
    pub headers: Vec<(String, String)>,
    pub trailers: Vec<(String, String)>,
    pub start_ts: i64,
    pub end_ts: Option<i64>,
    pub body: BodyInfo,
    /// The body ran until the server closed the connection (no length, not chunked).
    pub until_close: bool,
}

/// What went through a CONNECT tunnel (or an upgraded connection).
#[derive(Debug)]
pub(crate) struct Tunnel {
    pub open_ts: i64,
    pub bytes: [u64; 2],
    pub tls: Option<TlsTracker>,
    /// Not TLS (or undecidable): bytes are only counted.
    pub opaque: bool,
    detect: Vec<u8>,
    detect_ts: i64,
}

impl Tunnel {
    fn new(open_ts: i64) -> Self {
        Tunnel {
            open_ts,
            bytes: [0; 2],
            tls: None,
            opaque: false,
            detect: Vec::new(),
            detect_ts: open_ts,
        }
    }

    fn feed(&mut self, side: Side, ts: i64, data: &[u8]) {
        self.bytes[side.index()] += data.len() as u64;
        if self.opaque {
            return;
        }
        if let Some(tls) = self.tls.as_mut() {
            tls.feed(side, ts, data);
            return;
        }
        if side == Side::Server {
            // A server speaking first in a tunnel is not TLS.
            self.opaque = true;
            return;
        }
        let earlier = std::mem::take(&mut self.detect);
        if earlier.is_empty() {
            self.detect_ts = ts;
        }
        let mut probe = earlier.clone();
        probe.extend_from_slice(&data[..data.len().min(16)]);
        match looks_like_tls(&probe) {
            Some(true) => {
                let mut tls = TlsTracker::new();
                tls.feed(side, self.detect_ts, &earlier);
                tls.feed(side, ts, data);
                self.tls = Some(tls);
            }
            Some(false) => self.opaque = true,
            None if probe.len() >= 16 => self.opaque = true,
            None => self.detect = probe,
        }
    }

    fn gap(&mut self, side: Side) {
        match self.tls.as_mut() {
            Some(tls) => tls.gap(side),
            None => self.opaque = true,
        }
    }
}

/// One request and what answered it.
#[derive(Debug)]
pub(crate) struct Slot {
    pub request: Request,
    pub response: Option<Response>,
    pub tunnel: Option<Tunnel>,
}

#[derive(Debug)]
enum Framing {
    Length(u64),
    Chunked(Chunk),
    UntilClose,
}

#[derive(Debug)]
enum Chunk {
    Size(Vec<u8>),
    Data(u64),
    DataEnd,
    Trailers(Vec<u8>),
}

enum Dir {
    Head {
        buf: Vec<u8>,
        start_ts: Option<i64>,
    },
    Body {
        slot: usize,
        framing: Framing,
        sink: Option<Box<dyn BodyWrite>>,
    },
    /// Client side after CONNECT, until the proxy answers.
    AfterConnect,
    Tunnel,
    Broken,
}

impl Dir {
    fn head() -> Self {
        Dir::Head {
            buf: Vec::new(),
            start_ts: None,
        }
    }
}

/// The HTTP state of one connection.
pub(crate) struct HttpConn {
    pub slots: Vec<Slot>,
    client: Dir,
    server: Dir,
    /// Index of the first request no response head has been matched to.
    awaiting: usize,
    tunnel_slot: Option<usize>,
    early_tunnel: Vec<(i64, Vec<u8>)>,
    early_bytes: usize,
    /// Why a direction stopped being parsed, for the entry's `_capture`.
    pub broken: [Option<String>; 2],
}

impl HttpConn {
    pub(crate) fn new() -> Self {
        HttpConn {
            slots: Vec::new(),
            client: Dir::head(),
            server: Dir::head(),
            awaiting: 0,
            tunnel_slot: None,
            early_tunnel: Vec::new(),
            early_bytes: 0,
            broken: [None, None],
        }
    }

    pub(crate) fn tunnel(&self) -> Option<&Tunnel> {
        self.tunnel_slot
            .and_then(|i| self.slots.get(i))
            .and_then(|s| s.tunnel.as_ref())
    }

    pub(crate) fn feed(
        &mut self,
        side: Side,
        ts: i64,
        mut data: &[u8],
        out: &mut dyn TraceOutput,
    ) -> Result<(), CaptureError> {
        while !data.is_empty() {
            let used = match side {
                Side::Client => self.client_step(ts, data, out)?,
                Side::Server => self.server_step(ts, data, out)?,
            };
            if used == 0 {
                break;
            }
            data = data.get(used..).unwrap_or_default();
        }
        Ok(())
    }

    /// Segments were lost: the message in flight on `side` is incomplete and the
    /// direction cannot be followed any more.
    pub(crate) fn gap(&mut self, side: Side) -> Result<(), CaptureError> {
        let dir = match side {
            Side::Client => &mut self.client,
            Side::Server => &mut self.server,
        };
        match std::mem::replace(dir, Dir::Broken) {
            Dir::Body { slot, sink, .. } => {
                close_body(&mut self.slots, side, slot, sink, false, None)?;
            }
            Dir::Tunnel => {
                *dir = Dir::Tunnel;
                if let Some(t) = self
                    .tunnel_slot
                    .and_then(|i| self.slots.get_mut(i))
                    .and_then(|s| s.tunnel.as_mut())
                {
                    t.gap(side);
                }
                return Ok(());
            }
            _ => {}
        }
        if self.broken[side.index()].is_none() {
            self.broken[side.index()] = Some("segments missing from the capture".to_string());
        }
        Ok(())
    }

    /// The connection is over: bodies in flight are stored as far as they got.
    /// A server FIN (`server_fin_ts`) completes a body that runs until close.
    pub(crate) fn finish(&mut self, server_fin_ts: Option<i64>) -> Result<(), CaptureError> {
        for side in [Side::Client, Side::Server] {
            let dir = match side {
                Side::Client => &mut self.client,
                Side::Server => &mut self.server,
            };
            if let Dir::Body {
                slot,
                sink,
                framing,
            } = std::mem::replace(dir, Dir::Broken)
            {
                let complete = side == Side::Server
                    && matches!(framing, Framing::UntilClose)
                    && server_fin_ts.is_some();
                close_body(&mut self.slots, side, slot, sink, complete, None)?;
            }
        }
        Ok(())
    }

    fn client_step(
        &mut self,
        ts: i64,
        data: &[u8],
        out: &mut dyn TraceOutput,
    ) -> Result<usize, CaptureError> {
        match &mut self.client {
            Dir::Broken => Ok(data.len()),
            Dir::Tunnel => {
                self.forward_to_tunnel(Side::Client, ts, data);
                Ok(data.len())
            }
            Dir::AfterConnect => {
                if self.early_bytes + data.len() <= MAX_EARLY_TUNNEL {
                    self.early_bytes += data.len();
                    self.early_tunnel.push((ts, data.to_vec()));
                }
                Ok(data.len())
            }
            Dir::Body { .. } => self.body_step(Side::Client, ts, data, out),
            Dir::Head { buf, start_ts } => match head_step(buf, start_ts, ts, data) {
                HeadStep::More(used) => Ok(used),
                HeadStep::TooLarge(used) => {
                    self.break_dir(Side::Client, "request head larger than 256 KiB");
                    Ok(used)
                }
                HeadStep::Complete { used, start, head } => {
                    self.on_request_head(start, ts, &head);
                    Ok(used)
                }
            },
        }
    }

    fn on_request_head(&mut self, start: i64, ts: i64, head: &[u8]) {
        let Some((line, headers)) = parse_head(head) else {
            self.break_dir(Side::Client, "unparseable request head");
            return;
        };
        let mut parts = line.splitn(3, ' ');
        let (Some(method), Some(target), Some(version)) =
            (parts.next(), parts.next(), parts.next())
        else {
            self.break_dir(Side::Client, "invalid request line");
            return;
        };
        if method.is_empty()
            || method.len() > 32
            || !method.bytes().all(is_tchar)
            || !version.starts_with("HTTP/1.")
        {
            self.break_dir(Side::Client, "invalid request line");
            return;
        }
        let framing = match framing(&headers, true) {
            Ok(f) => f,
            Err(why) => {
                self.break_dir(Side::Client, why);
                return;
            }
        };
        let connect = method == "CONNECT";
        let expected = match &framing {
            Some(Framing::Length(n)) => Some(*n),
            _ => None,
        };
        let chunked = matches!(framing, Some(Framing::Chunked(_)));
        let body_pending =
            !connect && matches!(&framing, Some(f) if !matches!(f, Framing::Length(0)));
        self.slots.push(Slot {
            request: Request {
                method: method.to_string(),
                target: target.to_string(),
                version: version.to_string(),
                headers,
                start_ts: start,
                end_ts: (!body_pending).then_some(ts),
                body: BodyInfo {
                    expected,
                    chunked,
                    complete: !body_pending,
                    ..BodyInfo::default()
                },
            },
            response: None,
            tunnel: None,
        });
        let slot = self.slots.len() - 1;
        self.client = if connect {
            Dir::AfterConnect
        } else if body_pending {
            match framing {
                Some(framing) => Dir::Body {
                    slot,
                    framing,
                    sink: None,
                },
                None => Dir::head(),
            }
        } else {
            Dir::head()
        };
    }

    fn server_step(
        &mut self,
        ts: i64,
        data: &[u8],
        out: &mut dyn TraceOutput,
    ) -> Result<usize, CaptureError> {
        match &mut self.server {
            Dir::Broken | Dir::AfterConnect => Ok(data.len()),
            Dir::Tunnel => {
                self.forward_to_tunnel(Side::Server, ts, data);
                Ok(data.len())
            }
            Dir::Body { .. } => self.body_step(Side::Server, ts, data, out),
            Dir::Head { buf, start_ts } => match head_step(buf, start_ts, ts, data) {
                HeadStep::More(used) => Ok(used),
                HeadStep::TooLarge(used) => {
                    self.break_dir(Side::Server, "response head larger than 256 KiB");
                    Ok(used)
                }
                HeadStep::Complete { used, start, head } => {
                    self.on_response_head(start, ts, &head, out)?;
                    Ok(used)
                }
            },
        }
    }

    fn on_response_head(
        &mut self,
        start: i64,
        ts: i64,
        head: &[u8],
        out: &mut dyn TraceOutput,
    ) -> Result<(), CaptureError> {
        let Some((line, headers)) = parse_head(head) else {
            self.break_dir(Side::Server, "unparseable response head");
            return Ok(());
        };
        let mut parts = line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default();
        let status = parts
            .next()
            .filter(|s| s.len() == 3)
            .and_then(|s| s.parse::<u16>().ok());
        let Some(status) = status.filter(|_| version.starts_with("HTTP/1.")) else {
            self.break_dir(Side::Server, "invalid status line");
            return Ok(());
        };
        if (100..200).contains(&status) && status != 101 {
            // Interim (100 Continue, 103 Early Hints): the real answer follows.
            self.server = Dir::head();
            return Ok(());
        }
        let Some(slot) = (self.awaiting < self.slots.len()).then_some(self.awaiting) else {
            self.break_dir(
                Side::Server,
                "response without a request (the capture started mid-exchange?)",
            );
            return Ok(());
        };
        self.awaiting += 1;
        let method = self.slots[slot].request.method.clone();
        let mut response = Response {
            status,
            version: version.to_string(),
            headers,
            trailers: Vec::new(),
            start_ts: start,
            end_ts: None,
            body: BodyInfo::default(),
            until_close: false,
        };
        let tunnel = (method == "CONNECT" && (200..300).contains(&status)) || status == 101;
        if tunnel {
            response.end_ts = Some(ts);
            response.body.complete = true;
            let s = &mut self.slots[slot];
            s.response = Some(response);
            s.tunnel = Some(Tunnel::new(ts));
            self.tunnel_slot = Some(slot);
            self.client = Dir::Tunnel;
            self.server = Dir::Tunnel;
            for (t, bytes) in std::mem::take(&mut self.early_tunnel) {
                self.forward_to_tunnel(Side::Client, t, &bytes);
            }
            return Ok(());
        }
        if method == "CONNECT" {
            // Refused tunnel: the connection goes on as plain HTTP (or closes).
            self.client = Dir::head();
            self.early_bytes = 0;
            for (t, bytes) in std::mem::take(&mut self.early_tunnel) {
                self.feed(Side::Client, t, &bytes, out)?;
            }
        }
        let framing = if method == "HEAD" || status == 204 || status == 304 {
            None
        } else {
            match framing(&response.headers, false) {
                Ok(f) => f,
                Err(why) => {
                    self.slots[slot].response = Some(response);
                    self.break_dir(Side::Server, why);
                    return Ok(());
                }
            }
        };
        response.body.expected = match &framing {
            Some(Framing::Length(n)) => Some(*n),
            _ => None,
        };
        response.body.chunked = matches!(framing, Some(Framing::Chunked(_)));
        response.until_close = matches!(framing, Some(Framing::UntilClose));
        match framing {
            None | Some(Framing::Length(0)) => {
                response.end_ts = Some(ts);
                response.body.complete = true;
                self.slots[slot].response = Some(response);
                self.server = Dir::head();
            }
            Some(framing) => {
                self.slots[slot].response = Some(response);
                self.server = Dir::Body {
                    slot,
                    framing,
                    sink: None,
                };
            }
        }
        Ok(())
    }

    fn body_step(
        &mut self,
        side: Side,
        ts: i64,
        data: &[u8],
        out: &mut dyn TraceOutput,
    ) -> Result<usize, CaptureError> {
        let dir = match side {
            Side::Client => &mut self.client,
            Side::Server => &mut self.server,
        };
        let Dir::Body {
            slot,
            framing,
            sink,
        } = dir
        else {
            return Ok(0);
        };
        let slot = *slot;
        let mut used = 0;
        let mut done = false;
        let mut trailers = Vec::new();
        let mut failure: Option<&'static str> = None;
        while used < data.len() && !done {
            let rest = &data[used..];
            match framing {
                Framing::Length(remaining) => {
                    let take = usize::try_from(*remaining)
                        .unwrap_or(usize::MAX)
                        .min(rest.len());
                    write_body(&mut self.slots, side, slot, sink, &rest[..take], out)?;
                    *remaining -= take as u64;
                    used += take;
                    done = *remaining == 0;
                }
                Framing::UntilClose => {
                    write_body(&mut self.slots, side, slot, sink, rest, out)?;
                    used += rest.len();
                }
                Framing::Chunked(state) => match state {
                    Chunk::Size(line) => match rest.iter().position(|b| *b == b'\n') {
                        None => {
                            line.extend_from_slice(rest);
                            used += rest.len();
                            if line.len() > MAX_CHUNK_LINE {
                                failure = Some("chunk size line too long");
                                break;
                            }
                        }
                        Some(nl) => {
                            line.extend_from_slice(&rest[..nl]);
                            used += nl + 1;
                            match chunk_size(line) {
                                Some(0) => *state = Chunk::Trailers(Vec::new()),
                                Some(n) => *state = Chunk::Data(n),
                                None => {
                                    failure = Some("invalid chunk size");
                                    break;
                                }
                            }
                        }
                    },
                    Chunk::Data(remaining) => {
                        let take = usize::try_from(*remaining)
                            .unwrap_or(usize::MAX)
                            .min(rest.len());
                        write_body(&mut self.slots, side, slot, sink, &rest[..take], out)?;
                        *remaining -= take as u64;
                        used += take;
                        if *remaining == 0 {
                            *state = Chunk::DataEnd;
                        }
                    }
                    Chunk::DataEnd => match rest.first() {
                        Some(b'\r') => used += 1,
                        Some(b'\n') => {
                            used += 1;
                            *state = Chunk::Size(Vec::new());
                        }
                        _ => {
                            failure = Some("missing CRLF after chunk data");
                            break;
                        }
                    },
                    Chunk::Trailers(buf) => {
                        let (n, complete) = take_head_from(buf, rest, true);
                        used += n;
                        if buf.len() > MAX_TRAILERS {
                            failure = Some("trailers larger than 64 KiB");
                            break;
                        }
                        if complete {
                            trailers = parse_header_lines(buf);
                            done = true;
                        }
                    }
                },
            }
        }
        if let Some(why) = failure {
            let Dir::Body { sink, .. } = std::mem::replace(dir, Dir::Broken) else {
                return Ok(used);
            };
            close_body(&mut self.slots, side, slot, sink, false, None)?;
            self.broken[side.index()] = Some(why.to_string());
            return Ok(data.len());
        }
        if done {
            let Dir::Body { sink, .. } = std::mem::replace(dir, Dir::head()) else {
                return Ok(used);
            };
            if side == Side::Server {
                if let Some(r) = self.slots.get_mut(slot).and_then(|s| s.response.as_mut()) {
                    r.trailers = trailers;
                }
            }
            close_body(&mut self.slots, side, slot, sink, true, Some(ts))?;
        } else if let Some((_, end)) = body_of(&mut self.slots, side, slot) {
            // Progress so far: if the connection dies now, this is how far it got.
            *end = Some(ts);
        }
        Ok(used)
    }

    fn forward_to_tunnel(&mut self, side: Side, ts: i64, data: &[u8]) {
        if let Some(t) = self
            .tunnel_slot
            .and_then(|i| self.slots.get_mut(i))
            .and_then(|s| s.tunnel.as_mut())
        {
            t.feed(side, ts, data);
        }
    }

    fn break_dir(&mut self, side: Side, why: &str) {
        match side {
            Side::Client => self.client = Dir::Broken,
            Side::Server => self.server = Dir::Broken,
        }
        if self.broken[side.index()].is_none() {
            self.broken[side.index()] = Some(why.to_string());
        }
    }
}

/// The body facts and last-byte time of the message `side` is sending in `slot`.
fn body_of(
    slots: &mut [Slot],
    side: Side,
    slot: usize,
) -> Option<(&mut BodyInfo, &mut Option<i64>)> {
    let s = slots.get_mut(slot)?;
    match side {
        Side::Client => Some((&mut s.request.body, &mut s.request.end_ts)),
        Side::Server => s.response.as_mut().map(|r| (&mut r.body, &mut r.end_ts)),
    }
}

fn content_type(slots: &[Slot], side: Side, slot: usize) -> Option<String> {
    let s = slots.get(slot)?;
    let headers = match side {
        Side::Client => &s.request.headers,
        Side::Server => &s.response.as_ref()?.headers,
    };
    header(headers, "content-type").map(str::to_string)
}

fn write_body(
    slots: &mut [Slot],
    side: Side,
    slot: usize,
    sink: &mut Option<Box<dyn BodyWrite>>,
    data: &[u8],
    out: &mut dyn TraceOutput,
) -> Result<(), CaptureError> {
    if data.is_empty() {
        return Ok(());
    }
    if sink.is_none() {
        *sink = Some(out.begin_body()?);
    }
    if let Some(s) = sink.as_mut() {
        s.write(data)?;
    }
    if let Some((body, _)) = body_of(slots, side, slot) {
        body.size += data.len() as u64;
    }
    Ok(())
}

fn close_body(
    slots: &mut [Slot],
    side: Side,
    slot: usize,
    sink: Option<Box<dyn BodyWrite>>,
    complete: bool,
    end_ts: Option<i64>,
) -> Result<(), CaptureError> {
    let ct = content_type(slots, side, slot);
    let content = match sink {
        Some(s) => Some(s.finish(ct.as_deref())?),
        None => None,
    };
    if let Some((body, end)) = body_of(slots, side, slot) {
        if let Some(c) = content {
            body.content = c;
        }
        body.complete = complete;
        if let Some(t) = end_ts {
            *end = Some(t);
        }
    }
    Ok(())
}

/// Appends head bytes from `data` to `buf` up to the blank line; returns how many bytes
/// of `data` were used and whether the head is complete.
/// What one chunk of bytes did to a message head being read.
enum HeadStep {
    /// `used` bytes consumed, the head is not complete yet.
    More(usize),
    /// The head outgrew `MAX_HEAD`; the direction cannot be decoded further.
    TooLarge(usize),
    Complete {
        used: usize,
        start: i64,
        head: Vec<u8>,
    },
}

/// Feeds `data` to a head buffer, the same way for requests and responses.
fn head_step(buf: &mut Vec<u8>, start_ts: &mut Option<i64>, ts: i64, data: &[u8]) -> HeadStep {
    if buf.is_empty() {
        // Stray CRLFs between pipelined messages are allowed (RFC 9112 2.2).
        let blank = data
            .iter()
            .take_while(|b| **b == b'\r' || **b == b'\n')
            .count();
        if blank > 0 {
            return HeadStep::More(blank);
        }
    }
    start_ts.get_or_insert(ts);
    let (used, done) = take_head(buf, data);
    if !done {
        return if buf.len() >= MAX_HEAD {
            HeadStep::TooLarge(used)
        } else {
            HeadStep::More(used)
        };
    }
    HeadStep::Complete {
        used,
        start: start_ts.take().unwrap_or(ts),
        head: std::mem::take(buf),
    }
}

fn take_head(buf: &mut Vec<u8>, data: &[u8]) -> (usize, bool) {
    take_head_from(buf, data, false)
}

/// Like `take_head`; with `allow_empty` a lone blank line at the start ends it (trailers).
fn take_head_from(buf: &mut Vec<u8>, data: &[u8], allow_empty: bool) -> (usize, bool) {
    let old = buf.len();
    let room = (MAX_HEAD + 1).saturating_sub(old);
    buf.extend_from_slice(&data[..data.len().min(room)]);
    let from = old.saturating_sub(3);
    let mut end = None;
    for i in from..buf.len() {
        if buf[i] != b'\n' {
            continue;
        }
        let blank_line = (i == 0 && allow_empty)
            || (i >= 1 && buf[i - 1] == b'\n')
            || (i == 1 && allow_empty && buf[0] == b'\r')
            || (i >= 2 && buf[i - 1] == b'\r' && buf[i - 2] == b'\n');
        if blank_line {
            end = Some(i + 1);
            break;
        }
    }
    match end {
        Some(e) => {
            buf.truncate(e);
            (e - old, true)
        }
        None => (buf.len() - old, false),
    }
}

/// Splits a head into its first line and its header fields (names lower-cased, as the
/// proxy records them).
fn parse_head(head: &[u8]) -> Option<(String, Vec<(String, String)>)> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let first = lines.next()?.trim().to_string();
    if first.is_empty() {
        return None;
    }
    let rest: Vec<&str> = lines.collect();
    Some((first, header_lines(&rest)))
}

fn parse_header_lines(buf: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(buf);
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    header_lines(&lines)
}

fn header_lines(lines: &[&str]) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            // Obsolete line folding: continues the previous value.
            if let Some((_, v)) = headers.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        if headers.len() >= MAX_HEADERS {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim();
            if !name.is_empty() && name.bytes().all(is_tchar) {
                headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
            }
        }
    }
    headers
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

pub(crate) fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Body framing from the headers (RFC 9112 6.3); `None` means no body.
fn framing(headers: &[(String, String)], request: bool) -> Result<Option<Framing>, &'static str> {
    let te: Vec<&str> = headers
        .iter()
        .filter(|(n, _)| n == "transfer-encoding")
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect();
    if let Some(last) = te.last() {
        if last.eq_ignore_ascii_case("chunked") {
            return Ok(Some(Framing::Chunked(Chunk::Size(Vec::new()))));
        }
        return if request {
            Err("request with a transfer coding other than chunked")
        } else {
            Ok(Some(Framing::UntilClose))
        };
    }
    let lengths: Vec<&str> = headers
        .iter()
        .filter(|(n, _)| n == "content-length")
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .collect();
    if let Some(first) = lengths.first() {
        if lengths.iter().any(|l| l != first) {
            return Err("conflicting Content-Length values");
        }
        return match first.parse::<u64>() {
            Ok(n) => Ok(Some(Framing::Length(n))),
            Err(_) => Err("invalid Content-Length"),
        };
    }
    Ok(if request {
        None
    } else {
        Some(Framing::UntilClose)
    })
}

fn chunk_size(line: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(line).ok()?;
    let hex = text.split(';').next()?.trim();
    if hex.is_empty() || hex.len() > 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}
