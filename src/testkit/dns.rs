//! A small DNS responder for tests: answers A queries for chosen names with an address
//! (optionally late), or NXDOMAIN, SERVFAIL, or nothing at all, so tests can reproduce
//! the resolver failures go users meet. AAAA queries get an empty answer.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;

/// How the responder answers one name.
#[derive(Debug, Clone)]
pub enum DnsAnswer {
    /// An A record, sent after `delay`.
    Address {
        ip: Ipv4Addr,
        delay: Duration,
    },
    NxDomain,
    ServFail,
    /// Never answer.
    Silent,
}

/// A running responder; stops when dropped.
pub struct DnsResponder {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl DnsResponder {
    /// Serves `names` (lower case, no trailing dot; `*.suffix` matches below a suffix)
    /// on `addr`; unknown names get NXDOMAIN.
    pub async fn start(
        addr: SocketAddr,
        names: HashMap<String, DnsAnswer>,
    ) -> std::io::Result<DnsResponder> {
        let socket = Arc::new(UdpSocket::bind(addr).await?);
        let addr = socket.local_addr()?;
        let names = Arc::new(names);
        let task = tokio::spawn(async move {
            let mut buf = [0u8; 512];
            while let Ok((n, from)) = socket.recv_from(&mut buf).await {
                let query = buf[..n].to_vec();
                let (socket, names) = (socket.clone(), names.clone());
                tokio::spawn(async move {
                    if let Some((reply, delay)) = reply(&query, &names) {
                        tokio::time::sleep(delay).await;
                        let _ = socket.send_to(&reply, from).await;
                    }
                });
            }
        });
        Ok(DnsResponder { addr, task })
    }
}

impl Drop for DnsResponder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lookup<'a>(names: &'a HashMap<String, DnsAnswer>, name: &str) -> Option<&'a DnsAnswer> {
    names.get(name).or_else(|| {
        names.iter().find_map(|(pattern, answer)| {
            let suffix = pattern.strip_prefix("*.")?;
            name.strip_suffix(suffix)
                .is_some_and(|rest| rest.ends_with('.'))
                .then_some(answer)
        })
    })
}

/// The reply to one query and when to send it; `None` for no reply.
fn reply(query: &[u8], names: &HashMap<String, DnsAnswer>) -> Option<(Vec<u8>, Duration)> {
    if query.len() < 12 {
        return None;
    }
    let mut pos = 12;
    let mut labels = Vec::new();
    while *query.get(pos)? != 0 {
        let len = query[pos] as usize;
        labels
            .push(String::from_utf8_lossy(query.get(pos + 1..pos + 1 + len)?).to_ascii_lowercase());
        pos += 1 + len;
    }
    let question_end = pos + 5;
    let qtype = u16::from_be_bytes([*query.get(pos + 1)?, *query.get(pos + 2)?]);
    let question = query.get(12..question_end)?;
    let name = labels.join(".");
    let (rcode, record, delay) = match lookup(names, &name) {
        Some(DnsAnswer::Silent) => return None,
        Some(DnsAnswer::ServFail) => (2u16, None, Duration::ZERO),
        Some(DnsAnswer::Address { ip, delay }) => (0, (qtype == 1).then_some(*ip), *delay),
        Some(DnsAnswer::NxDomain) | None => (3, None, Duration::ZERO),
    };
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&query[..2]);
    // QR, RD copied, RA; the response code.
    let rd = u16::from(query[2] & 1) << 8;
    out.extend_from_slice(&(0x8080 | rd | rcode).to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&u16::from(record.is_some()).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(question);
    if let Some(ip) = record {
        out.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4]);
        out.extend_from_slice(&ip.octets());
    }
    Some((out, delay))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&1u16.to_be_bytes());
        q
    }

    #[test]
    fn answers_by_name() {
        let names = HashMap::from([
            (
                "*.ok.example".to_string(),
                DnsAnswer::Address {
                    ip: Ipv4Addr::LOCALHOST,
                    delay: Duration::ZERO,
                },
            ),
            ("broken.example".to_string(), DnsAnswer::ServFail),
            ("silent.example".to_string(), DnsAnswer::Silent),
        ]);
        let (a, _) = reply(&query("proxy.ok.example", 1), &names).unwrap();
        assert_eq!(a[3] & 0x0f, 0);
        assert_eq!(&a[a.len() - 4..], &[127, 0, 0, 1]);
        let (aaaa, _) = reply(&query("proxy.ok.example", 28), &names).unwrap();
        assert_eq!((aaaa[3] & 0x0f, aaaa[7]), (0, 0), "AAAA: no data");
        let (sf, _) = reply(&query("broken.example", 1), &names).unwrap();
        assert_eq!(sf[3] & 0x0f, 2);
        let (nx, _) = reply(&query("typo.example", 1), &names).unwrap();
        assert_eq!(nx[3] & 0x0f, 3);
        assert!(reply(&query("silent.example", 1), &names).is_none());
        assert_eq!(&a[..2], &[0x12, 0x34]);
    }
}
