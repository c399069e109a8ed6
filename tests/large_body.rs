//! A 256 MiB download through the proxy, over HTTP/1.1 and HTTP/2, with memory that does
//! not grow with the body. Its own test binary, so no other test shares the process' RSS.

mod common;

use std::time::Duration;

use common::{Fixture, GOPROXY_HOST};
use modscope::testkit::client::{drain, get_request, Alpn};

const SIZE: u64 = 256 * 1024 * 1024;

/// Peak resident set size of this process in KiB (Linux).
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_256_mib_body_streams_with_bounded_memory() {
    tokio::time::timeout(Duration::from_secs(240), async {
        let fx = Fixture::start().await;
        let before = peak_rss_kib();
        for alpn in [Alpn::H1, Alpn::H2] {
            let mut sender = fx.client.connect(GOPROXY_HOST, 443, alpn).await.unwrap();
            let uri: http::Uri = format!("https://{GOPROXY_HOST}/bytes/{SIZE}")
                .parse()
                .unwrap();
            let (status, bytes) = drain(sender.send(get_request(&uri)).await.unwrap())
                .await
                .unwrap();
            assert_eq!((status, bytes), (200, SIZE), "{alpn:?}");
        }
        let grown_mib = (peak_rss_kib().saturating_sub(before)) / 1024;
        eprintln!("peak RSS grew by {grown_mib} MiB while streaming 2 x 256 MiB");
        assert!(
            grown_mib < 64,
            "memory grew by {grown_mib} MiB: something buffers whole bodies"
        );
        let ex = fx.wait_exchanges(2).await;
        assert!(ex
            .iter()
            .all(|e| e.response.as_ref().unwrap().body.size == SIZE));
    })
    .await
    .unwrap();
}
