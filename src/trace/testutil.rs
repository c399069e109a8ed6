//! Test helpers shared by the trace tests: a sample exchange and a disk that fills up.

use std::sync::atomic::Ordering;
use std::time::{Duration, UNIX_EPOCH};

use crate::exchange::{
    BodyFacts, ClientTls, Exchange, ExchangeRequest, PhaseTimes, ResponseFacts, TlsFacts,
    UpstreamTls,
};

pub(crate) fn sample_exchange() -> Exchange {
    Exchange {
        id: 42,
        started: UNIX_EPOCH + Duration::from_micros(1_767_225_600_123_456),
        request: ExchangeRequest {
            method: "GET".into(),
            url: "https://alice:s3cret@proxy.golang.org/golang.org/x/mod/@v/list?go-get=1&q=a%20b"
                .into(),
            http_version: "HTTP/2".into(),
            headers: vec![
                ("user-agent".into(), "Go-http-client/2.0".into()),
                ("authorization".into(), "Basic YWxpY2U6czNjcmV0".into()),
                ("Cookie".into(), "session=1".into()),
                ("proxy-authorization".into(), "Bearer t".into()),
            ],
            body: BodyFacts {
                size: 0,
                sha256: None,
                complete: true,
            },
        },
        response: Some(ResponseFacts {
            status: 200,
            http_version: "HTTP/2".into(),
            headers: vec![
                ("content-type".into(), "text/plain; charset=utf-8".into()),
                ("set-cookie".into(), "a=b".into()),
            ],
            trailers: vec![],
            body: BodyFacts {
                size: 13,
                sha256: Some("ab".repeat(32)),
                complete: true,
            },
        }),
        timings: PhaseTimes {
            blocked: Some(0.5),
            dns: Some(2.0),
            tcp: Some(3.0),
            tls: Some(7.25),
            send: Some(0.125),
            wait: Some(30.0),
            receive: Some(1.5),
        },
        connection_id: Some(9),
        server_ip: Some("142.250.1.1".into()),
        tls: Some(TlsFacts {
            client: Some(ClientTls {
                sni: Some("proxy.golang.org".into()),
                alpn: vec!["h2".into(), "http/1.1".into()],
                version: Some("TLSv1_3".into()),
                cipher: None,
            }),
            upstream: Some(UpstreamTls {
                verified: true,
                ..UpstreamTls::default()
            }),
        }),
        error: None,
        fault: None,
        stall: None,
        client_connection: None,
    }
}

/// A journal file on a "disk" with `room` bytes left: a write past it stores what fits,
/// then fails with StorageFull, as write(2) on a full disk does. Set `room` to free space.
#[derive(Debug)]
pub(crate) struct FullDisk {
    pub file: std::fs::File,
    pub room: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl std::io::Write for FullDisk {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let room = self.room.load(Ordering::SeqCst);
        if room == 0 {
            return Err(std::io::Error::from(std::io::ErrorKind::StorageFull));
        }
        let n = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = self.file.write(buf.get(..n).unwrap_or_default())?;
        self.room.fetch_sub(n as u64, Ordering::SeqCst);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl super::journal::LogFile for FullDisk {
    fn truncate_to(&mut self, len: u64) -> std::io::Result<()> {
        self.file.set_len(len)
    }

    fn sync(&mut self) -> std::io::Result<()> {
        self.file.sync_all()
    }
}
