//! DNS over UDP: a small, bounded, defensive message parser and a tracker that pairs
//! queries with responses (response time, rcode, answers) and notices unanswered ones.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Serialize;

use super::link::Endpoint;

/// Ports whose UDP traffic is read as DNS: the standard port and the one a test
/// responder can bind without privileges (mDNS's port, used here for unicast DNS).
pub(crate) const DNS_PORTS: [u16; 2] = [53, 5353];

/// Longest name (RFC 1035 2.3.4) and most compression jumps followed.
const MAX_NAME: usize = 255;
const MAX_JUMPS: usize = 64;
const MAX_QUESTIONS: usize = 4;
const MAX_ANSWERS: usize = 64;
/// Queries waiting for an answer; beyond this new queries are counted, not tracked.
const MAX_PENDING: usize = 65_536;
/// IP-to-name memory for naming connections; bounded for the same reason.
const MAX_NAMES: usize = 65_536;

pub(crate) const TYPE_A: u16 = 1;
pub(crate) const TYPE_CNAME: u16 = 5;
pub(crate) const TYPE_AAAA: u16 = 28;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Question {
    pub name: String,
    pub qtype: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Answer {
    pub name: String,
    #[serde(rename = "type")]
    pub rtype: String,
    pub ttl: u32,
    pub data: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Message {
    pub id: u16,
    pub response: bool,
    pub opcode: u8,
    pub rcode: u8,
    pub truncated: bool,
    pub questions: Vec<Question>,
    pub answers: Vec<Answer>,
    /// Addresses in A/AAAA answers, for naming later connections.
    pub addresses: Vec<IpAddr>,
}

/// Parses a DNS message; `None` when it is not one. Never reads outside `msg`.
pub(crate) fn parse(msg: &[u8]) -> Option<Message> {
    let id = be16(msg, 0)?;
    let flags = be16(msg, 2)?;
    let qdcount = usize::from(be16(msg, 4)?);
    let ancount = usize::from(be16(msg, 6)?);
    let mut pos = 12;
    let mut questions = Vec::new();
    for _ in 0..qdcount.min(MAX_QUESTIONS) {
        let (name, next) = read_name(msg, pos)?;
        let qtype = be16(msg, next)?;
        pos = next.checked_add(4)?;
        questions.push(Question { name, qtype });
    }
    if qdcount > MAX_QUESTIONS {
        // Cannot find the answers without walking every question; keep what was read.
        return Some(message(id, flags, questions, Vec::new(), Vec::new()));
    }
    let mut answers = Vec::new();
    let mut addresses = Vec::new();
    for _ in 0..ancount.min(MAX_ANSWERS) {
        let Some((name, next)) = read_name(msg, pos) else {
            break;
        };
        let (Some(rtype), Some(ttl), Some(rdlen)) =
            (be16(msg, next), be32(msg, next + 4), be16(msg, next + 8))
        else {
            break;
        };
        let start = next + 10;
        let end = start + usize::from(rdlen);
        let Some(rdata) = msg.get(start..end) else {
            break;
        };
        let data = match rtype {
            TYPE_A => match <[u8; 4]>::try_from(rdata) {
                Ok(b) => {
                    let ip = IpAddr::V4(Ipv4Addr::from(b));
                    addresses.push(ip);
                    ip.to_string()
                }
                Err(_) => "(malformed)".to_string(),
            },
            TYPE_AAAA => match <[u8; 16]>::try_from(rdata) {
                Ok(b) => {
                    let ip = IpAddr::V6(Ipv6Addr::from(b));
                    addresses.push(ip);
                    ip.to_string()
                }
                Err(_) => "(malformed)".to_string(),
            },
            TYPE_CNAME => read_name(msg, start)
                .map(|(n, _)| n)
                .unwrap_or_else(|| "(malformed)".to_string()),
            _ => format!("({} bytes)", rdata.len()),
        };
        answers.push(Answer {
            name,
            rtype: type_name(rtype),
            ttl,
            data,
        });
        pos = end;
    }
    Some(message(id, flags, questions, answers, addresses))
}

fn message(
    id: u16,
    flags: u16,
    questions: Vec<Question>,
    answers: Vec<Answer>,
    addresses: Vec<IpAddr>,
) -> Message {
    Message {
        id,
        response: flags & 0x8000 != 0,
        opcode: ((flags >> 11) & 0xf) as u8,
        rcode: (flags & 0xf) as u8,
        truncated: flags & 0x0200 != 0,
        questions,
        answers,
        addresses,
    }
}

/// Reads a possibly compressed name at `pos`; returns it (lower case, no trailing dot,
/// odd bytes escaped) and the position after it in the original stream.
fn read_name(msg: &[u8], mut pos: usize) -> Option<(String, usize)> {
    let mut name = String::new();
    let mut after: Option<usize> = None;
    let mut jumps = 0;
    loop {
        let len = *msg.get(pos)?;
        match len & 0xc0 {
            0x00 => {
                if len == 0 {
                    let end = after.unwrap_or(pos + 1);
                    return Some((name, end));
                }
                let label = msg.get(pos + 1..pos + 1 + usize::from(len))?;
                if !name.is_empty() {
                    name.push('.');
                }
                for &b in label {
                    if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'*' {
                        name.push(b.to_ascii_lowercase() as char);
                    } else {
                        name.push_str(&format!("\\{b:03}"));
                    }
                }
                if name.len() > MAX_NAME * 4 {
                    return None;
                }
                pos += 1 + usize::from(len);
            }
            0xc0 => {
                let target = usize::from(be16(msg, pos)? & 0x3fff);
                after.get_or_insert(pos + 2);
                jumps += 1;
                if jumps > MAX_JUMPS {
                    return None;
                }
                pos = target;
            }
            _ => return None,
        }
    }
}

fn be16(msg: &[u8], at: usize) -> Option<u16> {
    let b = msg.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

fn be32(msg: &[u8], at: usize) -> Option<u32> {
    let b = msg.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

pub(crate) fn type_name(t: u16) -> String {
    match t {
        1 => "A".to_string(),
        2 => "NS".to_string(),
        5 => "CNAME".to_string(),
        6 => "SOA".to_string(),
        12 => "PTR".to_string(),
        15 => "MX".to_string(),
        16 => "TXT".to_string(),
        28 => "AAAA".to_string(),
        33 => "SRV".to_string(),
        64 => "SVCB".to_string(),
        65 => "HTTPS".to_string(),
        255 => "ANY".to_string(),
        other => format!("TYPE{other}"),
    }
}

pub(crate) fn rcode_name(rcode: u8) -> String {
    match rcode {
        0 => "NOERROR".to_string(),
        1 => "FORMERR".to_string(),
        2 => "SERVFAIL".to_string(),
        3 => "NXDOMAIN".to_string(),
        4 => "NOTIMP".to_string(),
        5 => "REFUSED".to_string(),
        other => format!("RCODE{other}"),
    }
}

/// A query and what came of it.
#[derive(Debug, Clone)]
pub(crate) struct Lookup {
    pub client: Endpoint,
    pub server: Endpoint,
    pub txid: u16,
    pub name: String,
    pub qtype: u16,
    pub query_ts: i64,
    /// The same query sent again before an answer.
    pub retries: u32,
    pub last_query_ts: i64,
    pub response_ts: Option<i64>,
    pub rcode: Option<u8>,
    pub truncated: bool,
    pub answers: Vec<Answer>,
}

type Key = (Endpoint, Endpoint, u16);

#[derive(Debug, Default)]
pub(crate) struct DnsTracker {
    pending: HashMap<Key, Lookup>,
    /// The name each address was last given for, to name bare-IP connections.
    names: HashMap<IpAddr, String>,
    pub queries: u64,
    pub untracked: u64,
    pub unmatched_responses: u64,
}

impl DnsTracker {
    /// One UDP datagram on a DNS port; returns the lookup it completed, if any.
    pub(crate) fn datagram(
        &mut self,
        ts: i64,
        src: Endpoint,
        dst: Endpoint,
        payload: &[u8],
    ) -> Option<Lookup> {
        let msg = parse(payload)?;
        if msg.opcode != 0 {
            return None;
        }
        if !msg.response {
            if !DNS_PORTS.contains(&dst.port) || is_multicast(dst.ip) {
                return None;
            }
            let q = msg.questions.first()?;
            let key = (src, dst, msg.id);
            if let Some(p) = self.pending.get_mut(&key) {
                if p.name == q.name && p.qtype == q.qtype {
                    p.retries += 1;
                    p.last_query_ts = ts;
                    return None;
                }
            }
            if self.pending.len() >= MAX_PENDING {
                self.untracked += 1;
                return None;
            }
            self.queries += 1;
            self.pending.insert(
                key,
                Lookup {
                    client: src,
                    server: dst,
                    txid: msg.id,
                    name: q.name.clone(),
                    qtype: q.qtype,
                    query_ts: ts,
                    retries: 0,
                    last_query_ts: ts,
                    response_ts: None,
                    rcode: None,
                    truncated: false,
                    answers: Vec::new(),
                },
            );
            return None;
        }
        if !DNS_PORTS.contains(&src.port) {
            return None;
        }
        let key = (dst, src, msg.id);
        let matches = self.pending.get(&key).is_some_and(|p| {
            msg.questions
                .first()
                .is_none_or(|q| q.name == p.name && q.qtype == p.qtype)
        });
        if !matches {
            self.unmatched_responses += 1;
            return None;
        }
        let mut lookup = self.pending.remove(&key)?;
        lookup.response_ts = Some(ts);
        lookup.rcode = Some(msg.rcode);
        lookup.truncated = msg.truncated;
        lookup.answers = msg.answers;
        for ip in msg.addresses {
            if self.names.len() < MAX_NAMES || self.names.contains_key(&ip) {
                self.names.insert(ip, lookup.name.clone());
            }
        }
        Some(lookup)
    }

    /// Queries still unanswered `older_than` nanoseconds after their last send, oldest first.
    pub(crate) fn expire(&mut self, now: i64, older_than: i64) -> Vec<Lookup> {
        let mut keys: Vec<Key> = self
            .pending
            .iter()
            .filter(|(_, l)| now.saturating_sub(l.last_query_ts) > older_than)
            .map(|(k, _)| *k)
            .collect();
        self.take_sorted(&mut keys)
    }

    /// Every query still waiting (the capture ended).
    pub(crate) fn drain(&mut self) -> Vec<Lookup> {
        let mut keys: Vec<Key> = self.pending.keys().copied().collect();
        self.take_sorted(&mut keys)
    }

    fn take_sorted(&mut self, keys: &mut [Key]) -> Vec<Lookup> {
        let mut out: Vec<Lookup> = keys.iter().filter_map(|k| self.pending.remove(k)).collect();
        // HashMap order is random; output must not be.
        out.sort_by(|a, b| {
            (a.query_ts, a.client, a.server, a.txid).cmp(&(b.query_ts, b.client, b.server, b.txid))
        });
        out
    }

    /// The name `ip` was resolved from, if the capture saw that answer.
    pub(crate) fn name_of(&self, ip: IpAddr) -> Option<&str> {
        self.names.get(&ip).map(String::as_str)
    }
}

fn is_multicast(ip: IpAddr) -> bool {
    ip.is_multicast()
}
