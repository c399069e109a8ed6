//! TCP connections from packets: handshake timing, per-direction reassembly (in order by
//! sequence number, duplicates dropped), retransmissions, zero windows, FIN/RST, and the
//! hand-off of in-order bytes to the HTTP or TLS reader.

use std::collections::BTreeMap;

use super::http::{looks_like_request, HttpConn};
use super::link::{Endpoint, TcpSegment};
use super::output::TraceOutput;
use super::tls::{looks_like_tls, TlsTracker};
use super::{CaptureError, Side};

/// Out-of-order bytes held per direction while waiting for a missing segment; past this
/// the hole is declared lost so memory stays bounded.
const MAX_PENDING_BYTES: usize = 1024 * 1024;
const MAX_PENDING_SEGMENTS: usize = 1024;
const DETECT_BYTES: usize = 16;

/// One direction of a connection.
#[derive(Debug, Default)]
pub(crate) struct Stream {
    /// Sequence number of stream offset 0 (ISN + 1, or the first sequence number seen
    /// when the capture missed the handshake).
    base: Option<u32>,
    /// Next offset to hand to the application.
    next: i64,
    /// Highest offset any segment reached.
    max_end: i64,
    pending: BTreeMap<i64, (i64, Vec<u8>)>,
    pending_bytes: usize,
    pub packets: u64,
    pub bytes: u64,
    pub retransmissions: u64,
    pub out_of_order: u64,
    pub zero_windows: u64,
    pub keepalives: u64,
    /// Holes given up on (segments never captured).
    pub gaps: u64,
    /// Bytes the snapshot length cut from segments of this direction.
    pub snaplen_cut: u64,
    pub fin_ts: Option<i64>,
    pub rst_ts: Option<i64>,
    pub first_data_ts: Option<i64>,
    pub last_data_ts: Option<i64>,
}

impl Stream {
    /// Offset of `seq` in this stream, picking the 2^32 wrap closest to what was seen.
    fn offset(&self, seq: u32) -> i64 {
        let rel = i64::from(seq.wrapping_sub(self.base.unwrap_or(seq)));
        let reference = self.next.max(0);
        let epoch = reference & !0xffff_ffff;
        [epoch - (1 << 32), epoch, epoch + (1 << 32)]
            .into_iter()
            .map(|e| e + rel)
            .min_by_key(|c| (c - reference).abs())
            .unwrap_or(rel)
    }
}

/// Keeps an out-of-order segment until the hole before it is filled.
fn hold(st: &mut Stream, off: i64, ts: i64, payload: &[u8]) {
    st.pending_bytes += payload.len();
    if let Some((_, old)) = st.pending.insert(off, (ts, payload.to_vec())) {
        st.pending_bytes = st.pending_bytes.saturating_sub(old.len());
    }
}

/// What runs over the connection, decided from the client's first bytes.
pub(crate) enum App {
    Detect { buf: Vec<u8>, ts: i64 },
    Http(Box<HttpConn>),
    Tls(Box<TlsTracker>),
    Other,
}

/// How the connection began, as far as the capture shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Opening {
    /// SYN, SYN/ACK and ACK seen.
    Complete,
    /// SYN and SYN/ACK seen, no ACK yet (or the ACK was lost from the capture).
    SynAck,
    /// Only SYNs: nobody answered.
    SynOnly,
    /// The SYN was answered with RST.
    Refused,
    /// The capture started after the handshake.
    Missed,
}

pub(crate) struct Conn {
    /// Stable number in order of first packet.
    pub id: u64,
    pub client: Endpoint,
    pub server: Endpoint,
    pub first_ts: i64,
    pub last_ts: i64,
    client_isn: Option<u32>,
    pub syn_ts: Option<i64>,
    pub last_syn_ts: Option<i64>,
    pub syns: u32,
    pub synack_ts: Option<i64>,
    pub ack_ts: Option<i64>,
    pub refused_ts: Option<i64>,
    pub streams: [Stream; 2],
    pub app: App,
}

impl Conn {
    pub(crate) fn new(id: u64, client: Endpoint, server: Endpoint, ts: i64) -> Self {
        Conn {
            id,
            client,
            server,
            first_ts: ts,
            last_ts: ts,
            client_isn: None,
            syn_ts: None,
            last_syn_ts: None,
            syns: 0,
            synack_ts: None,
            ack_ts: None,
            refused_ts: None,
            streams: [Stream::default(), Stream::default()],
            app: App::Detect {
                buf: Vec::new(),
                ts,
            },
        }
    }

    pub(crate) fn opening(&self) -> Opening {
        match (self.syn_ts, self.synack_ts, self.ack_ts, self.refused_ts) {
            (Some(_), None, _, Some(_)) => Opening::Refused,
            (Some(_), None, _, None) => Opening::SynOnly,
            (Some(_), Some(_), Some(_), _) => Opening::Complete,
            (Some(_), Some(_), None, _) => Opening::SynAck,
            (None, _, _, _) => Opening::Missed,
        }
    }

    /// Closed for good: both sides sent FIN, or someone sent RST.
    pub(crate) fn closed(&self) -> bool {
        let [c, s] = &self.streams;
        (c.fin_ts.is_some() && s.fin_ts.is_some()) || c.rst_ts.is_some() || s.rst_ts.is_some()
    }

    /// Whether a SYN with `isn` from the client starts a new connection on this 4-tuple
    /// (port reuse) rather than repeating the SYN of this one.
    pub(crate) fn is_new_attempt(&self, isn: u32) -> bool {
        match self.client_isn {
            Some(old) => old != isn || self.closed(),
            None => true,
        }
    }

    pub(crate) fn side_of(&self, src: Endpoint) -> Side {
        if src == self.client {
            Side::Client
        } else {
            Side::Server
        }
    }

    /// Processes one segment from `side`.
    pub(crate) fn segment(
        &mut self,
        side: Side,
        ts: i64,
        seg: &TcpSegment<'_>,
        out: &mut dyn TraceOutput,
    ) -> Result<(), CaptureError> {
        self.last_ts = self.last_ts.max(ts);
        let f = seg.flags;
        {
            let st = &mut self.streams[side.index()];
            st.packets += 1;
            if seg.window == 0 && !f.syn && !f.rst {
                st.zero_windows += 1;
            }
        }
        if f.syn && !f.ack {
            if side == Side::Client {
                self.syns += 1;
                self.syn_ts.get_or_insert(ts);
                self.last_syn_ts = Some(ts);
                self.client_isn = Some(seg.seq);
                self.streams[0].base = Some(seg.seq.wrapping_add(1));
            }
            return Ok(());
        }
        if f.syn && f.ack {
            if side == Side::Server {
                self.synack_ts.get_or_insert(ts);
                self.streams[1].base = Some(seg.seq.wrapping_add(1));
            }
            return Ok(());
        }
        if f.rst {
            if side == Side::Server && self.syn_ts.is_some() && self.synack_ts.is_none() {
                self.refused_ts.get_or_insert(ts);
            }
            self.streams[side.index()].rst_ts.get_or_insert(ts);
            return Ok(());
        }
        if side == Side::Client && self.synack_ts.is_some() && self.ack_ts.is_none() && f.ack {
            self.ack_ts = Some(ts);
        }
        if !seg.payload.is_empty() || seg.missing > 0 {
            self.data(side, ts, seg, out)?;
        }
        if f.fin {
            self.streams[side.index()].fin_ts.get_or_insert(ts);
        }
        Ok(())
    }

    fn data(
        &mut self,
        side: Side,
        ts: i64,
        seg: &TcpSegment<'_>,
        out: &mut dyn TraceOutput,
    ) -> Result<(), CaptureError> {
        let st = &mut self.streams[side.index()];
        if st.base.is_none() {
            st.base = Some(seg.seq);
        }
        let off = st.offset(seg.seq);
        let len = seg.payload.len() as i64;
        let end = off + len + i64::from(seg.missing);
        if len <= 1 && seg.missing == 0 && off == st.next - 1 {
            // Keep-alive probe: one old byte (or none) to poke the peer.
            st.keepalives += 1;
            return Ok(());
        }
        let seen_before = end <= st.next
            || off < st.next
            || st
                .pending
                .range(..end)
                .next_back()
                .is_some_and(|(p, (_, d))| p + d.len() as i64 > off);
        if seen_before {
            st.retransmissions += 1;
        } else if off < st.max_end {
            st.out_of_order += 1;
        }
        st.max_end = st.max_end.max(end);
        st.first_data_ts.get_or_insert(ts);
        st.last_data_ts = Some(ts);
        st.snaplen_cut += u64::from(seg.missing);
        if end <= st.next {
            return Ok(());
        }
        if off > st.next {
            if st.pending_bytes + seg.payload.len() > MAX_PENDING_BYTES
                || st.pending.len() >= MAX_PENDING_SEGMENTS
            {
                // Too long a hole: give it up and move on from the earliest held segment.
                self.skip_gap(side, out)?;
                let st = &mut self.streams[side.index()];
                if off > st.next {
                    hold(st, off, ts, seg.payload);
                    return Ok(());
                }
            } else {
                hold(st, off, ts, seg.payload);
                return Ok(());
            }
        }
        let st = &mut self.streams[side.index()];
        let skip = usize::try_from(st.next - off).unwrap_or(0);
        let fresh = seg.payload.get(skip..).unwrap_or_default();
        st.next = off + len;
        st.bytes += fresh.len() as u64;
        self.deliver(side, ts, fresh, out)?;
        if seg.missing > 0 {
            // The snapshot length cut this segment: what follows is unknown.
            let st = &mut self.streams[side.index()];
            st.next = end;
            st.gaps += 1;
            self.gap(side)?;
        }
        self.drain_pending(side, out)
    }

    /// Hands over held segments that have become in order.
    fn drain_pending(&mut self, side: Side, out: &mut dyn TraceOutput) -> Result<(), CaptureError> {
        loop {
            let st = &mut self.streams[side.index()];
            let Some((&off, _)) = st.pending.first_key_value() else {
                return Ok(());
            };
            if off > st.next {
                return Ok(());
            }
            let Some((ts, data)) = st.pending.remove(&off) else {
                return Ok(());
            };
            st.pending_bytes = st.pending_bytes.saturating_sub(data.len());
            let end = off + data.len() as i64;
            if end <= st.next {
                continue;
            }
            let skip = usize::try_from(st.next - off).unwrap_or(0);
            st.next = end;
            let fresh = data.get(skip..).unwrap_or_default();
            st.bytes += fresh.len() as u64;
            self.deliver(side, ts, fresh, out)?;
        }
    }

    /// Declares the hole before the earliest held segment lost and continues after it.
    fn skip_gap(&mut self, side: Side, out: &mut dyn TraceOutput) -> Result<(), CaptureError> {
        let st = &mut self.streams[side.index()];
        let Some((&off, _)) = st.pending.first_key_value() else {
            return Ok(());
        };
        if off > st.next {
            st.next = off;
            st.gaps += 1;
            self.gap(side)?;
        }
        self.drain_pending(side, out)
    }

    /// End of the connection: held segments behind a hole are delivered after it.
    pub(crate) fn flush(&mut self, out: &mut dyn TraceOutput) -> Result<(), CaptureError> {
        for side in [Side::Client, Side::Server] {
            while !self.streams[side.index()].pending.is_empty() {
                self.skip_gap(side, out)?;
            }
        }
        let server_fin = self.streams[1]
            .fin_ts
            .filter(|_| self.streams[1].rst_ts.is_none());
        if let App::Http(http) = &mut self.app {
            http.finish(server_fin)?;
        }
        Ok(())
    }

    fn gap(&mut self, side: Side) -> Result<(), CaptureError> {
        match &mut self.app {
            App::Http(h) => h.gap(side),
            App::Tls(t) => {
                t.gap(side);
                Ok(())
            }
            App::Detect { .. } => {
                self.app = App::Other;
                Ok(())
            }
            App::Other => Ok(()),
        }
    }

    fn deliver(
        &mut self,
        side: Side,
        ts: i64,
        data: &[u8],
        out: &mut dyn TraceOutput,
    ) -> Result<(), CaptureError> {
        if data.is_empty() {
            return Ok(());
        }
        match &mut self.app {
            App::Http(h) => h.feed(side, ts, data, out),
            App::Tls(t) => {
                t.feed(side, ts, data);
                Ok(())
            }
            App::Other => Ok(()),
            App::Detect { buf, ts: first } => {
                if side == Side::Server {
                    // Servers of HTTP and TLS never speak first; a capture that starts
                    // mid-connection may still show TLS records from the server.
                    self.app = if buf.is_empty() && looks_like_tls(data) == Some(true) {
                        let mut t = TlsTracker::new();
                        t.feed(side, ts, data);
                        App::Tls(Box::new(t))
                    } else {
                        App::Other
                    };
                    return Ok(());
                }
                let earlier = std::mem::take(buf);
                let first_ts = if earlier.is_empty() { ts } else { *first };
                let mut probe = earlier.clone();
                probe.extend_from_slice(&data[..data.len().min(DETECT_BYTES)]);
                let tls = looks_like_tls(&probe);
                let http = looks_like_request(&probe);
                if tls == Some(true) {
                    let mut t = TlsTracker::new();
                    t.feed(side, first_ts, &earlier);
                    t.feed(side, ts, data);
                    self.app = App::Tls(Box::new(t));
                } else if http == Some(true) {
                    let mut h = HttpConn::new();
                    h.feed(side, first_ts, &earlier, out)?;
                    h.feed(side, ts, data, out)?;
                    self.app = App::Http(Box::new(h));
                } else if (tls == Some(false) && http == Some(false)) || probe.len() >= DETECT_BYTES
                {
                    self.app = App::Other;
                } else {
                    self.app = App::Detect {
                        buf: probe,
                        ts: first_ts,
                    };
                }
                Ok(())
            }
        }
    }
}
