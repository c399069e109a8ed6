//! From a captured frame to the TCP segment or UDP datagram inside it, for every link
//! type a go user is likely to capture on (Ethernet, Linux cooked v1/v2, raw IP, loopback).

use std::fmt;
use std::net::IpAddr;

use etherparse::{EtherType, LaxNetSlice, LaxSlicedPacket, TransportSlice};

/// Link-layer header types (tcpdump.org/linktypes.html).
pub(crate) mod linktype {
    pub const NULL: i32 = 0;
    pub const ETHERNET: i32 = 1;
    /// DLT_RAW on most systems.
    pub const DLT_RAW_12: i32 = 12;
    /// DLT_RAW on OpenBSD.
    pub const DLT_RAW_14: i32 = 14;
    pub const RAW: i32 = 101;
    pub const LOOP: i32 = 108;
    pub const LINUX_SLL: i32 = 113;
    pub const IPV4: i32 = 228;
    pub const IPV6: i32 = 229;
    pub const LINUX_SLL2: i32 = 276;
}

/// `ip:port`, with brackets for IPv6, as URLs and `_capture` write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Endpoint {
    pub ip: IpAddr,
    pub port: u16,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ip {
            IpAddr::V4(ip) => write!(f, "{ip}:{}", self.port),
            IpAddr::V6(ip) => write!(f, "[{ip}]:{}", self.port),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TcpFlags {
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct TcpSegment<'a> {
    pub seq: u32,
    pub flags: TcpFlags,
    pub window: u16,
    pub payload: &'a [u8],
    /// Payload bytes the snapshot length cut off (they were on the wire, not in the file).
    pub missing: u32,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Transport<'a> {
    Tcp(TcpSegment<'a>),
    Udp(&'a [u8]),
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Packet<'a> {
    pub src: Endpoint,
    pub dst: Endpoint,
    pub transport: Transport<'a>,
}

/// Why a frame carries nothing the import can use. Counted, not fatal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Skip {
    UnsupportedLinktype(i32),
    /// ARP, IPX, ... and IP protocols other than TCP and UDP (ICMP).
    NotTcpUdp,
    Fragment,
    Malformed,
    /// The same packet seen a second time on a Linux "any" capture of loopback.
    LoopbackDuplicate,
}

/// Linux `ARPHRD_LOOPBACK` and the cooked-header packet type "sent by us": on an `any`
/// capture each loopback packet shows up once outgoing and once incoming.
const ARPHRD_LOOPBACK: u16 = 772;
const PACKET_OUTGOING: u8 = 4;

/// Decodes one frame; `orig_len` is the on-the-wire length for snapshot-cut frames.
pub(crate) fn decode(linktype: i32, data: &[u8], orig_len: u32) -> Result<Packet<'_>, Skip> {
    let cut = orig_len.saturating_sub(u32::try_from(data.len()).unwrap_or(u32::MAX));
    let sliced = match linktype {
        linktype::ETHERNET => LaxSlicedPacket::from_ethernet(data).map_err(|_| Skip::Malformed)?,
        linktype::LINUX_SLL => {
            let hatype = be16(data, 2).ok_or(Skip::Malformed)?;
            let pkttype = be16(data, 0).ok_or(Skip::Malformed)?;
            if hatype == ARPHRD_LOOPBACK && pkttype == u16::from(PACKET_OUTGOING) {
                return Err(Skip::LoopbackDuplicate);
            }
            let proto = be16(data, 14).ok_or(Skip::Malformed)?;
            from_ether_type(proto, data.get(16..).ok_or(Skip::Malformed)?)?
        }
        linktype::LINUX_SLL2 => {
            let proto = be16(data, 0).ok_or(Skip::Malformed)?;
            let hatype = be16(data, 8).ok_or(Skip::Malformed)?;
            let pkttype = *data.get(10).ok_or(Skip::Malformed)?;
            if hatype == ARPHRD_LOOPBACK && pkttype == PACKET_OUTGOING {
                return Err(Skip::LoopbackDuplicate);
            }
            from_ether_type(proto, data.get(20..).ok_or(Skip::Malformed)?)?
        }
        linktype::RAW
        | linktype::DLT_RAW_12
        | linktype::DLT_RAW_14
        | linktype::IPV4
        | linktype::IPV6 => LaxSlicedPacket::from_ip(data).map_err(|_| Skip::Malformed)?,
        linktype::NULL | linktype::LOOP => {
            let bytes: [u8; 4] = data
                .get(..4)
                .and_then(|b| b.try_into().ok())
                .ok_or(Skip::Malformed)?;
            // NULL stores the family in the capturing host's byte order, LOOP in network
            // order; the family is small, so whichever reading is small is the right one.
            let le = u32::from_le_bytes(bytes);
            let be = u32::from_be_bytes(bytes);
            let family = if linktype == linktype::LOOP || be < le {
                be
            } else {
                le
            };
            match family {
                // AF_INET everywhere; AF_INET6 differs: Linux 10, BSDs 24/28/30.
                2 | 10 | 24 | 28 | 30 => {
                    LaxSlicedPacket::from_ip(data.get(4..).ok_or(Skip::Malformed)?)
                        .map_err(|_| Skip::Malformed)?
                }
                _ => return Err(Skip::NotTcpUdp),
            }
        }
        other => return Err(Skip::UnsupportedLinktype(other)),
    };
    packet(&sliced, cut)
}

fn from_ether_type(proto: u16, payload: &[u8]) -> Result<LaxSlicedPacket<'_>, Skip> {
    Ok(LaxSlicedPacket::from_ether_type(EtherType(proto), payload))
}

fn be16(data: &[u8], at: usize) -> Option<u16> {
    let b = data.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

fn packet<'a>(sliced: &LaxSlicedPacket<'a>, cut: u32) -> Result<Packet<'a>, Skip> {
    let (src_ip, dst_ip, fragmenting) = match &sliced.net {
        Some(LaxNetSlice::Ipv4(ip)) => (
            IpAddr::V4(ip.header().source_addr()),
            IpAddr::V4(ip.header().destination_addr()),
            ip.payload().fragmented,
        ),
        Some(LaxNetSlice::Ipv6(ip)) => (
            IpAddr::V6(ip.header().source_addr()),
            IpAddr::V6(ip.header().destination_addr()),
            ip.payload().fragmented,
        ),
        Some(LaxNetSlice::Arp(_)) => return Err(Skip::NotTcpUdp),
        None => {
            return Err(if sliced.stop_err.is_some() {
                Skip::Malformed
            } else {
                Skip::NotTcpUdp
            })
        }
    };
    if fragmenting {
        return Err(Skip::Fragment);
    }
    match &sliced.transport {
        Some(TransportSlice::Tcp(tcp)) => Ok(Packet {
            src: Endpoint {
                ip: src_ip,
                port: tcp.source_port(),
            },
            dst: Endpoint {
                ip: dst_ip,
                port: tcp.destination_port(),
            },
            transport: Transport::Tcp(TcpSegment {
                seq: tcp.sequence_number(),
                flags: TcpFlags {
                    syn: tcp.syn(),
                    ack: tcp.ack(),
                    fin: tcp.fin(),
                    rst: tcp.rst(),
                },
                window: tcp.window_size(),
                payload: tcp.payload(),
                missing: cut,
            }),
        }),
        Some(TransportSlice::Udp(udp)) => Ok(Packet {
            src: Endpoint {
                ip: src_ip,
                port: udp.source_port(),
            },
            dst: Endpoint {
                ip: dst_ip,
                port: udp.destination_port(),
            },
            transport: Transport::Udp(udp.payload()),
        }),
        Some(_) => Err(Skip::NotTcpUdp),
        None => Err(if sliced.stop_err.is_some() {
            Skip::Malformed
        } else {
            Skip::NotTcpUdp
        }),
    }
}
