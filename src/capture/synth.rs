//! Test captures built in code: IP/TCP/UDP packets (checksums left zero, the importer
//! ignores them), link-layer wrappers, pcap/pcapng writers, TLS hellos and DNS messages.

use std::net::{IpAddr, SocketAddr};

pub(crate) const FIN: u8 = 0x01;
pub(crate) const SYN: u8 = 0x02;
pub(crate) const RST: u8 = 0x04;
pub(crate) const PSH: u8 = 0x08;
pub(crate) const ACK: u8 = 0x10;

pub(crate) fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

fn ip_header(src: IpAddr, dst: IpAddr, proto: u8, payload_len: usize) -> Vec<u8> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let total = (20 + payload_len) as u16;
            let mut h = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, proto, 0, 0];
            h[2..4].copy_from_slice(&total.to_be_bytes());
            h.extend_from_slice(&s.octets());
            h.extend_from_slice(&d.octets());
            h
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut h = vec![0x60, 0, 0, 0];
            h.extend_from_slice(&(payload_len as u16).to_be_bytes());
            h.push(proto);
            h.push(64);
            h.extend_from_slice(&s.octets());
            h.extend_from_slice(&d.octets());
            h
        }
        _ => panic!("mixed address families"),
    }
}

/// An IP packet holding one TCP segment.
pub(crate) fn tcp_packet(
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut tcp = Vec::with_capacity(20 + payload.len());
    tcp.extend_from_slice(&src.port().to_be_bytes());
    tcp.extend_from_slice(&dst.port().to_be_bytes());
    tcp.extend_from_slice(&seq.to_be_bytes());
    tcp.extend_from_slice(&ack.to_be_bytes());
    tcp.push(5 << 4);
    tcp.push(flags);
    tcp.extend_from_slice(&window.to_be_bytes());
    tcp.extend_from_slice(&[0, 0, 0, 0]);
    tcp.extend_from_slice(payload);
    let mut p = ip_header(src.ip(), dst.ip(), 6, tcp.len());
    p.extend_from_slice(&tcp);
    p
}

pub(crate) fn udp_packet(src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let mut udp = Vec::new();
    udp.extend_from_slice(&src.port().to_be_bytes());
    udp.extend_from_slice(&dst.port().to_be_bytes());
    udp.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(payload);
    let mut p = ip_header(src.ip(), dst.ip(), 17, udp.len());
    p.extend_from_slice(&udp);
    p
}

/// Link layers an IP packet can be wrapped in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Link {
    Ethernet,
    Sll,
    Sll2,
    Raw,
    Null,
    Loop,
}

impl Link {
    pub(crate) fn linktype(self) -> u32 {
        match self {
            Link::Ethernet => 1,
            Link::Sll => 113,
            Link::Sll2 => 276,
            Link::Raw => 101,
            Link::Null => 0,
            Link::Loop => 108,
        }
    }

    pub(crate) fn wrap(self, ip: &[u8]) -> Vec<u8> {
        let v6 = ip.first().is_some_and(|b| b >> 4 == 6);
        let ethertype: u16 = if v6 { 0x86dd } else { 0x0800 };
        let mut f = Vec::new();
        match self {
            Link::Ethernet => {
                f.extend_from_slice(&[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2]);
                f.extend_from_slice(&ethertype.to_be_bytes());
            }
            Link::Sll => {
                f.extend_from_slice(&0u16.to_be_bytes()); // to us
                f.extend_from_slice(&1u16.to_be_bytes()); // ARPHRD_ETHER
                f.extend_from_slice(&6u16.to_be_bytes());
                f.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0, 0]);
                f.extend_from_slice(&ethertype.to_be_bytes());
            }
            Link::Sll2 => {
                f.extend_from_slice(&ethertype.to_be_bytes());
                f.extend_from_slice(&[0, 0]);
                f.extend_from_slice(&3u32.to_be_bytes()); // interface index
                f.extend_from_slice(&1u16.to_be_bytes()); // ARPHRD_ETHER
                f.push(0); // to us
                f.push(6);
                f.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0, 0]);
            }
            Link::Raw => {}
            Link::Null => {
                let family: u32 = if v6 { 30 } else { 2 };
                f.extend_from_slice(&family.to_le_bytes());
            }
            Link::Loop => {
                let family: u32 = if v6 { 24 } else { 2 };
                f.extend_from_slice(&family.to_be_bytes());
            }
        }
        f.extend_from_slice(ip);
        f
    }
}

/// File formats the writer produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    MicroLe,
    MicroBe,
    NanoLe,
    NanoBe,
    /// pcapng with one interface at the given `if_tsresol` (6 = µs, 9 = ns).
    Ng(u8),
}

/// Writes `packets` (nanosecond timestamps, IP packets) as a capture file.
pub(crate) fn capture(packets: &[(i64, Vec<u8>)], link: Link, format: Format) -> Vec<u8> {
    capture_cut(packets, link, format, u32::MAX)
}

/// Like [`capture`] with a snapshot length: frames longer than `snaplen` are cut.
pub(crate) fn capture_cut(
    packets: &[(i64, Vec<u8>)],
    link: Link,
    format: Format,
    snaplen: u32,
) -> Vec<u8> {
    match format {
        Format::Ng(resol) => {
            let mut ng = PcapNg::new();
            let iface = ng.interface(link.linktype(), resol);
            for (ts, ip) in packets {
                let frame = link.wrap(ip);
                ng.packet(iface, *ts, &frame, snaplen);
            }
            ng.buf
        }
        _ => {
            let (le, nanos) = match format {
                Format::MicroLe => (true, false),
                Format::MicroBe => (false, false),
                Format::NanoLe => (true, true),
                _ => (false, true),
            };
            let u32b = |v: u32| if le { v.to_le_bytes() } else { v.to_be_bytes() };
            let u16b = |v: u16| if le { v.to_le_bytes() } else { v.to_be_bytes() };
            let mut out = Vec::new();
            out.extend_from_slice(&u32b(if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }));
            out.extend_from_slice(&u16b(2));
            out.extend_from_slice(&u16b(4));
            out.extend_from_slice(&u32b(0));
            out.extend_from_slice(&u32b(0));
            out.extend_from_slice(&u32b(snaplen.min(262_144)));
            out.extend_from_slice(&u32b(link.linktype()));
            for (ts, ip) in packets {
                let frame = link.wrap(ip);
                let cap = frame.len().min(snaplen as usize);
                let sec = (ts / 1_000_000_000) as u32;
                let frac = (ts % 1_000_000_000) as u32;
                out.extend_from_slice(&u32b(sec));
                out.extend_from_slice(&u32b(if nanos { frac } else { frac / 1000 }));
                out.extend_from_slice(&u32b(cap as u32));
                out.extend_from_slice(&u32b(frame.len() as u32));
                out.extend_from_slice(&frame[..cap]);
            }
            out
        }
    }
}

/// A little-endian pcapng writer.
pub(crate) struct PcapNg {
    pub buf: Vec<u8>,
    resolutions: Vec<u8>,
}

impl PcapNg {
    pub(crate) fn new() -> Self {
        let mut ng = PcapNg {
            buf: Vec::new(),
            resolutions: Vec::new(),
        };
        let mut body = Vec::new();
        body.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
        body.extend_from_slice(&1u16.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&(-1i64).to_le_bytes());
        ng.block(0x0a0d_0d0a, &body);
        ng
    }

    fn block(&mut self, kind: u32, body: &[u8]) {
        let padded = body.len().div_ceil(4) * 4;
        let total = (12 + padded) as u32;
        self.buf.extend_from_slice(&kind.to_le_bytes());
        self.buf.extend_from_slice(&total.to_le_bytes());
        self.buf.extend_from_slice(body);
        self.buf.resize(self.buf.len() + padded - body.len(), 0);
        self.buf.extend_from_slice(&total.to_le_bytes());
    }

    /// Declares an interface; returns its id.
    pub(crate) fn interface(&mut self, linktype: u32, tsresol: u8) -> u32 {
        let mut body = Vec::new();
        body.extend_from_slice(&(linktype as u16).to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&0u32.to_le_bytes());
        // if_tsresol option, then opt_endofopt.
        body.extend_from_slice(&9u16.to_le_bytes());
        body.extend_from_slice(&1u16.to_le_bytes());
        body.extend_from_slice(&[tsresol, 0, 0, 0]);
        body.extend_from_slice(&[0, 0, 0, 0]);
        self.block(1, &body);
        self.resolutions.push(tsresol);
        (self.resolutions.len() - 1) as u32
    }

    /// An enhanced packet block; `ts` in nanoseconds, converted to the interface's units.
    pub(crate) fn packet(&mut self, iface: u32, ts: i64, frame: &[u8], snaplen: u32) {
        let resol = self.resolutions[iface as usize];
        let units = 10u64.pow(u32::from(resol));
        let raw = (ts as u128 * units as u128 / 1_000_000_000) as u64;
        let cap = frame.len().min(snaplen as usize);
        let mut body = Vec::new();
        body.extend_from_slice(&iface.to_le_bytes());
        body.extend_from_slice(&((raw >> 32) as u32).to_le_bytes());
        body.extend_from_slice(&(raw as u32).to_le_bytes());
        body.extend_from_slice(&(cap as u32).to_le_bytes());
        body.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        body.extend_from_slice(&frame[..cap]);
        self.block(6, &body);
    }
}

/// A TCP conversation written packet by packet, with sequence numbers kept.
pub(crate) struct Conv {
    pub c: SocketAddr,
    pub s: SocketAddr,
    pub cseq: u32,
    pub sseq: u32,
    pub t: i64,
    pub step: i64,
    pub packets: Vec<(i64, Vec<u8>)>,
}

impl Conv {
    pub(crate) fn new(c: &str, s: &str, t0: i64) -> Self {
        Conv {
            c: addr(c),
            s: addr(s),
            cseq: 1000,
            sseq: 5000,
            t: t0,
            step: 1_000_000,
            packets: Vec::new(),
        }
    }

    fn push(&mut self, from_client: bool, seq: u32, flags: u8, payload: &[u8]) {
        let (src, dst, ack) = if from_client {
            (self.c, self.s, self.sseq)
        } else {
            (self.s, self.c, self.cseq)
        };
        let p = tcp_packet(src, dst, seq, ack, flags, 65535, payload);
        self.packets.push((self.t, p));
        self.t += self.step;
    }

    pub(crate) fn syn(&mut self) {
        self.push(true, self.cseq, SYN, &[]);
    }

    pub(crate) fn handshake(&mut self) {
        self.syn();
        self.cseq += 1;
        self.push(false, self.sseq, SYN | ACK, &[]);
        self.sseq += 1;
        self.push(true, self.cseq, ACK, &[]);
    }

    pub(crate) fn client(&mut self, data: &[u8]) {
        self.push(true, self.cseq, PSH | ACK, data);
        self.cseq = self.cseq.wrapping_add(data.len() as u32);
    }

    pub(crate) fn server(&mut self, data: &[u8]) {
        self.push(false, self.sseq, PSH | ACK, data);
        self.sseq = self.sseq.wrapping_add(data.len() as u32);
    }

    /// Sends `data` from the server in segments of at most `mss` bytes.
    pub(crate) fn server_segments(&mut self, data: &[u8], mss: usize) {
        for chunk in data.chunks(mss) {
            self.server(chunk);
        }
    }

    /// A server segment at an explicit sequence number (retransmissions, reordering).
    pub(crate) fn server_at(&mut self, seq: u32, data: &[u8]) {
        self.push(false, seq, PSH | ACK, data);
    }

    pub(crate) fn ack_from_client(&mut self) {
        self.push(true, self.cseq, ACK, &[]);
    }

    pub(crate) fn fin(&mut self, from_client: bool) {
        if from_client {
            self.push(true, self.cseq, FIN | ACK, &[]);
            self.cseq += 1;
        } else {
            self.push(false, self.sseq, FIN | ACK, &[]);
            self.sseq += 1;
        }
    }

    pub(crate) fn rst(&mut self, from_client: bool) {
        let seq = if from_client { self.cseq } else { self.sseq };
        self.push(from_client, seq, RST | ACK, &[]);
    }

    /// The server's answer to a SYN on a closed port.
    pub(crate) fn refuse(&mut self) {
        self.push(false, 0, RST | ACK, &[]);
    }

    pub(crate) fn wait(&mut self, ns: i64) {
        self.t += ns;
    }
}

fn u16be(v: usize) -> [u8; 2] {
    (v as u16).to_be_bytes()
}

/// A TLS record holding a ClientHello with SNI, ALPN and supported_versions.
pub(crate) fn client_hello(sni: &str, alpn: &[&str]) -> Vec<u8> {
    let mut ext = Vec::new();
    // server_name
    let mut sn = vec![0];
    sn.extend_from_slice(&u16be(sni.len()));
    sn.extend_from_slice(sni.as_bytes());
    let mut list = u16be(sn.len()).to_vec();
    list.extend_from_slice(&sn);
    ext.extend_from_slice(&[0, 0]);
    ext.extend_from_slice(&u16be(list.len()));
    ext.extend_from_slice(&list);
    // ALPN
    let mut protos = Vec::new();
    for p in alpn {
        protos.push(p.len() as u8);
        protos.extend_from_slice(p.as_bytes());
    }
    let mut list = u16be(protos.len()).to_vec();
    list.extend_from_slice(&protos);
    ext.extend_from_slice(&[0, 16]);
    ext.extend_from_slice(&u16be(list.len()));
    ext.extend_from_slice(&list);
    // supported_versions: GREASE, TLS 1.3, TLS 1.2
    ext.extend_from_slice(&[0, 43, 0, 7, 6, 0x3a, 0x3a, 3, 4, 3, 3]);
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7u8; 32]);
    body.push(32);
    body.extend_from_slice(&[9u8; 32]);
    body.extend_from_slice(&[0, 6, 0x13, 0x01, 0x13, 0x02, 0xc0, 0x2f]);
    body.extend_from_slice(&[1, 0]);
    body.extend_from_slice(&u16be(ext.len()));
    body.extend_from_slice(&ext);
    handshake_record(1, &body)
}

/// A TLS record holding a TLS 1.3 ServerHello (TLS_AES_128_GCM_SHA256).
pub(crate) fn server_hello_13() -> Vec<u8> {
    let mut body = vec![3, 3];
    body.extend_from_slice(&[5u8; 32]);
    body.push(32);
    body.extend_from_slice(&[9u8; 32]);
    body.extend_from_slice(&[0x13, 0x01, 0]);
    let ext = [0, 43, 0, 2, 3, 4];
    body.extend_from_slice(&u16be(ext.len()));
    body.extend_from_slice(&ext);
    handshake_record(2, &body)
}

fn handshake_record(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut hs = vec![kind];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(body);
    record(22, &hs)
}

pub(crate) fn record(content: u8, body: &[u8]) -> Vec<u8> {
    let mut r = vec![content, 3, 3];
    r.extend_from_slice(&u16be(body.len()));
    r.extend_from_slice(body);
    r
}

pub(crate) fn alert(level: u8, description: u8) -> Vec<u8> {
    record(21, &[level, description])
}

fn dns_name(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name.split('.').filter(|l| !l.is_empty()) {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

pub(crate) fn dns_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    m.extend_from_slice(&dns_name(name));
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&[0, 1]);
    m
}

/// A response with `answers` as (type, rdata); names point back at the question.
pub(crate) fn dns_response(
    id: u16,
    name: &str,
    qtype: u16,
    rcode: u8,
    answers: &[(u16, Vec<u8>)],
) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0x81, 0x80 | rcode, 0, 1]);
    m.extend_from_slice(&(answers.len() as u16).to_be_bytes());
    m.extend_from_slice(&[0, 0, 0, 0]);
    m.extend_from_slice(&dns_name(name));
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&[0, 1]);
    for (t, rdata) in answers {
        m.extend_from_slice(&[0xc0, 0x0c]);
        m.extend_from_slice(&t.to_be_bytes());
        m.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
        m.extend_from_slice(&u16be(rdata.len()));
        m.extend_from_slice(rdata);
    }
    m
}

/// The rdata of a CNAME pointing at `target`.
pub(crate) fn cname_rdata(target: &str) -> Vec<u8> {
    dns_name(target)
}
