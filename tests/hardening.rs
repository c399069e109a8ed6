//! Hardening: a thousand concurrent clients with recording on, faults around the proxy
//! (upstream and client dying mid-body, stalled upstreams), SIGTERM under load and at the
//! drain deadline, and the connection limit and idle timeout. Loopback only; every test is
//! bounded in time.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{
    modscope_ca, spawn_proxy, Fixture, FixtureOptions, KillOnDrop, TempDir, GOPROXY_HOST,
};
use http_body_util::BodyExt;
use modscope::ca::CertAuthority;
use modscope::config::ConnectTo;
use modscope::exchange::Exchange;
use modscope::proxy::{self, Observer};
use modscope::recorder::{RecordOptions, Recorder};
use modscope::testkit::client::{drain, get_request, read_whole, Alpn, ProxiedClient, Sender};
use modscope::testkit::modules::default_modules;
use modscope::testkit::origin::{pattern_byte, Origin, OriginOptions};
use modscope::tls::UpstreamTrust;
use modscope::trace::{load_trace, validate_har_1_2};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const LIMIT: Duration = Duration::from_secs(60);

/// The load test measures this process' memory: it runs alone (write lock) while the other
/// tests of this file share the read side.
static EXCLUSIVE: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

fn url(path: &str) -> String {
    format!("https://{GOPROXY_HOST}{path}")
}

fn uri(path: &str) -> http::Uri {
    url(path).parse().expect("test URL")
}

/// Resident set size of this process in KiB (Linux).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Waits until an exchange whose URL contains `needle` was published.
async fn wait_exchange(fx: &Fixture, needle: &str, within: Duration) -> Exchange {
    let deadline = Instant::now() + within;
    loop {
        if let Some(e) = fx
            .exchanges()
            .into_iter()
            .find(|e| e.request.url.contains(needle))
        {
            return e;
        }
        assert!(
            Instant::now() < deadline,
            "no exchange for {needle} was published within {within:?}; have: {:#?}",
            fx.exchanges()
                .iter()
                .map(|e| &e.request.url)
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A healthy request on a fresh connection: the proxy still serves.
async fn still_serving(client: &ProxiedClient, what: &str) {
    let got = tokio::time::timeout(
        Duration::from_secs(10),
        client.get(&url("/bytes/1234"), Alpn::Both),
    )
    .await
    .unwrap_or_else(|_| panic!("after {what}: a healthy request did not finish within 10 s"))
    .unwrap_or_else(|e| panic!("after {what}: a healthy request failed: {e}"));
    assert_eq!(
        (got.status, got.body.len()),
        (200, 1234),
        "after {what}: healthy request"
    );
}

fn check_pattern(body: &[u8], offset: u64) -> bool {
    body.iter()
        .enumerate()
        .all(|(i, b)| *b == pattern_byte(offset + i as u64))
}

// ---------------------------------------------------------------------------------------
// Load
// ---------------------------------------------------------------------------------------

const CONNECTIONS: usize = 1000;
const REQUESTS_PER_CONNECTION: usize = 3;
const ROUNDS: usize = 3;

/// What one round of load did.
struct Round {
    served: usize,
    errors: Vec<String>,
    elapsed: Duration,
    /// When the last of the 1,000 connections was up (all open at once from then on).
    all_connected: Duration,
}

/// Opens `CONNECTIONS` connections at once (a barrier holds every one open until all are
/// up), then sends `REQUESTS_PER_CONNECTION` GETs on each: sequential over HTTP/1.1,
/// multiplexed over HTTP/2, alternating by connection. Checks every body.
async fn load_round(client: &ProxiedClient, list_path: &str, version: &str) -> Round {
    let errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let barrier = Arc::new(tokio::sync::Barrier::new(CONNECTIONS));
    let started = Instant::now();
    let all_connected: Arc<Mutex<Duration>> = Arc::default();
    let mut tasks = Vec::with_capacity(CONNECTIONS);
    for c in 0..CONNECTIONS {
        let client = client.clone();
        let errors = errors.clone();
        let barrier = barrier.clone();
        let all_connected = all_connected.clone();
        let list_path = list_path.to_string();
        let version = version.to_string();
        tasks.push(tokio::spawn(async move {
            let alpn = if c % 2 == 0 { Alpn::H1 } else { Alpn::H2 };
            let connected = client.connect(GOPROXY_HOST, 443, alpn).await;
            // Everyone reaches the barrier, failed or not, so nobody waits forever.
            if barrier.wait().await.is_leader() {
                *all_connected.lock().unwrap() = started.elapsed();
            }
            let mut sender = match connected {
                Ok(s) => s,
                Err(e) => {
                    errors
                        .lock()
                        .unwrap()
                        .push(format!("connection {c} ({alpn:?}): {e}"));
                    return 0usize;
                }
            };
            let paths: Vec<(String, Option<usize>)> = (0..REQUESTS_PER_CONNECTION)
                .map(|r| match (c + r) % 3 {
                    0 | 1 => {
                        let n = 100 + (c * 7 + r) % 1000;
                        (format!("/bytes/{n}"), Some(n))
                    }
                    _ => (list_path.clone(), None),
                })
                .collect();
            let check = |path: &str,
                         want: Option<usize>,
                         got: Result<modscope::testkit::client::Fetched, String>|
             -> Result<(), String> {
                let got = got?;
                if got.status != 200 {
                    return Err(format!("{path}: status {}", got.status));
                }
                match want {
                    Some(n) if got.body.len() != n || !check_pattern(&got.body, 0) => Err(format!(
                        "{path}: {} bytes, or not the pattern",
                        got.body.len()
                    )),
                    None if !String::from_utf8_lossy(&got.body).contains(&version) => {
                        Err(format!("{path}: list without {version}"))
                    }
                    _ => Ok(()),
                }
            };
            let mut served = 0;
            match &mut sender {
                Sender::H2(h2) => {
                    // Multiplexed: all requests of the connection at once.
                    let futures = paths.iter().map(|(path, _)| {
                        let mut s = Sender::H2(h2.clone());
                        let u = uri(path);
                        async move {
                            let resp = s.send(get_request(&u)).await.map_err(|e| e.to_string())?;
                            read_whole(resp).await.map_err(|e| e.to_string())
                        }
                    });
                    let results = futures_util::future::join_all(futures).await;
                    for ((path, want), got) in paths.iter().zip(results) {
                        match check(path, *want, got) {
                            Ok(()) => served += 1,
                            Err(e) => errors
                                .lock()
                                .unwrap()
                                .push(format!("connection {c} h2: {e}")),
                        }
                    }
                }
                h1 => {
                    for (path, want) in &paths {
                        let got = match h1.send(get_request(&uri(path))).await {
                            Ok(resp) => read_whole(resp).await.map_err(|e| e.to_string()),
                            Err(e) => Err(e.to_string()),
                        };
                        match check(path, *want, got) {
                            Ok(()) => served += 1,
                            Err(e) => {
                                errors
                                    .lock()
                                    .unwrap()
                                    .push(format!("connection {c} h1: {e}"));
                                break;
                            }
                        }
                    }
                }
            }
            served
        }));
    }
    let mut served = 0usize;
    for t in tasks {
        served += t.await.expect("client task panicked");
    }
    let errors = errors.lock().unwrap().clone();
    let all_connected = *all_connected.lock().unwrap();
    Round {
        served,
        errors,
        elapsed: started.elapsed(),
        all_connected,
    }
}

/// 1,000 client connections open at the same time, 3 requests each, through an
/// in-process proxy recording to a trace; three rounds. No error, one journal entry per
/// request, every socket closed afterwards, and memory that does not grow from one round
/// to the next and is handed back once freed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_connections_with_recording() {
    let _alone = EXCLUSIVE.write().await;
    tokio::time::timeout(Duration::from_secs(240), async {
        let dir = TempDir::new("load");
        let origin = Origin::start(default_modules(), OriginOptions::default())
            .await
            .unwrap();
        let ca = Arc::new(CertAuthority::load_or_create(&dir.path().join("ca")).unwrap());
        let trust = UpstreamTrust::only(&[origin.ca.cert_der().clone()]).unwrap();
        let mut config = common::test_config(dir.path().join("ca"));
        config.connect_to = vec![ConnectTo::parse(&format!(
            "{GOPROXY_HOST}:443:127.0.0.1:{}",
            origin.addr.port()
        ))
        .unwrap()];
        // Connections wait at the barrier until all 1,000 are up; keep the h1 header
        // timeout out of the way (it also runs on idle keep-alive connections).
        config.header_timeout = Duration::from_secs(120);
        assert!(config.max_connections >= CONNECTIONS, "default limit is 1024");
        let trace_dir = dir.path().join("trace");
        let recorder = Recorder::start(RecordOptions {
            dir: trace_dir.clone(),
            redact: true,
            embed_bodies: false,
            goproxy_bases: vec!["https://proxy.golang.org".into()],
            only_network: false,
        })
        .unwrap();
        let observers: Vec<Arc<dyn Observer>> = vec![recorder.clone()];
        let running = proxy::start(config, ca.clone(), trust, observers)
            .await
            .unwrap();
        let client = ProxiedClient::new(running.addr, &[ca.cert_der().clone()]).unwrap();

        // Warm up (leaf minted, pools and allocator settled), then take the baseline.
        for alpn in [Alpn::H1, Alpn::H2] {
            let got = client.get(&url("/bytes/100"), alpn).await.unwrap();
            assert_eq!(got.status, 200);
        }
        let warmup_requests = 2usize;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let baseline = rss_kib();
        let heap_baseline = heap_in_use();
        let fds_baseline = open_fds();

        let peak = Arc::new(AtomicU64::new(baseline));
        let peak_fds = Arc::new(AtomicU64::new(fds_baseline as u64));
        let sampling = Arc::new(AtomicBool::new(true));
        let sampler = {
            let (peak, peak_fds, sampling) = (peak.clone(), peak_fds.clone(), sampling.clone());
            tokio::spawn(async move {
                while sampling.load(Ordering::Relaxed) {
                    peak.fetch_max(rss_kib(), Ordering::Relaxed);
                    peak_fds.fetch_max(open_fds() as u64, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        };

        let module = default_modules().remove(0);
        let list_path = format!(
            "/{}/@v/list",
            modscope::gomod::escape_path(&module.path).unwrap()
        );
        let mut served = 0;
        let mut after_rounds = Vec::new();
        let mut heap_after_rounds = Vec::new();
        let mut timings = Vec::new();
        for round in 1..=ROUNDS {
            let r = load_round(&client, &list_path, &module.version).await;
            assert!(
                r.errors.is_empty(),
                "round {round}: {} of {CONNECTIONS} connections reported errors; first ones: {:#?}",
                r.errors.len(),
                &r.errors[..r.errors.len().min(10)]
            );
            assert_eq!(
                r.served,
                CONNECTIONS * REQUESTS_PER_CONNECTION,
                "round {round}: requests served"
            );
            served += r.served;
            // Clients are gone; give the proxy a moment to notice and free their state. Up
            // to 4 idle upstream connections stay pooled for the next clients, each an fd
            // in the proxy and one in the in-process origin.
            let pooled = 2 * modscope::proxy::POOL_PER_TARGET;
            let mut fds = open_fds();
            for _ in 0..100 {
                if fds <= fds_baseline + 2 + pooled {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                fds = open_fds();
            }
            assert!(
                fds <= fds_baseline + 2 + pooled,
                "round {round}: {fds} file descriptors open after the load, {fds_baseline} before: sockets leaked"
            );
            // And let the recorder catch up with its queue before measuring.
            let want = (served + warmup_requests) as u64;
            for _ in 0..200 {
                if recorder.entries.load(Ordering::Relaxed) >= want {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            after_rounds.push(rss_kib());
            heap_after_rounds.push(heap_in_use());
            timings.push((r.elapsed, r.all_connected));
        }
        sampling.store(false, Ordering::Relaxed);
        sampler.await.unwrap();
        let peak = peak.load(Ordering::Relaxed);
        // glibc keeps freed memory in its arenas; hand it back to see what is really held.
        // SAFETY: malloc_trim only releases free heap memory.
        unsafe { libc::malloc_trim(0) };
        let after_trim = rss_kib();

        let report = running.shutdown().await;
        assert_eq!(report.abandoned, 0, "every client connection had closed");
        let finish = {
            let recorder = recorder.clone();
            tokio::task::spawn_blocking(move || recorder.finish())
                .await
                .unwrap()
                .expect("recorder.finish()")
        };
        let expected = served + warmup_requests;
        assert_eq!(
            finish.entries, expected,
            "journal entries after finish() vs requests served (+{warmup_requests} warm-up)"
        );
        assert_eq!(
            recorder.entries.load(Ordering::Relaxed) as usize,
            expected,
            "entries appended by the recorder"
        );
        assert!(finish.problems.is_empty(), "{:?}", finish.problems);
        let har: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(trace_dir.join("trace.har")).unwrap())
                .unwrap();
        let problems = validate_har_1_2(&har);
        assert!(
            problems.is_empty(),
            "trace.har is not valid HAR 1.2: {:#?}",
            &problems[..problems.len().min(10)]
        );
        let trace = load_trace(&trace_dir).unwrap();
        assert_eq!(
            trace.entries.len(),
            expected,
            "{:?} {:?}",
            trace.notes,
            trace.problems
        );
        let failed: Vec<_> = trace
            .entries
            .iter()
            .filter(|e| e.response.status != 200 || e.error.is_some())
            .map(|e| (&e.request.url, e.response.status, &e.error))
            .take(5)
            .collect();
        assert!(failed.is_empty(), "recorded failures: {failed:#?}");
        let h2 = trace
            .entries
            .iter()
            .filter(|e| e.request.http_version == "HTTP/2")
            .count();
        assert_eq!(h2, expected / 2, "half the requests went over HTTP/2");

        eprintln!(
            "load: {ROUNDS} rounds of {CONNECTIONS} connections x {REQUESTS_PER_CONNECTION} requests; \
             (elapsed, all connected) per round {timings:.2?}; open files {fds_baseline} -> peak {} \
             (limit {}), no client-side semaphore; RSS baseline {:.1} MiB, \
             peak {:.1} MiB, after each round {:.1?} MiB, after malloc_trim {:.1} MiB; \
             malloc'd bytes in use: baseline {:.1?} MiB, after each round {:.1?} MiB",
            peak_fds.load(Ordering::Relaxed),
            open_file_limit(),
            mib(baseline),
            mib(peak),
            after_rounds.iter().map(|k| mib(*k)).collect::<Vec<_>>(),
            mib(after_trim),
            heap_baseline.map(mib),
            heap_after_rounds.iter().map(|h| h.map(mib)).collect::<Vec<_>>(),
        );
        // Raw RSS stays high after the load (glibc keeps freed memory cached in its
        // arenas; it creeps up over rounds and levels off), so it is reported, not
        // asserted; the two checks below tell a leak from that cache.
        // What the allocator hands out (not what it caches) is back near the baseline
        // (the test origin's request log grows by ~100 bytes per request, a few hundred KiB).
        if let (Some(before), Some(Some(after))) = (heap_baseline, heap_after_rounds.last()) {
            assert!(
                *after < before + 32 * 1024,
                "{:.1} MiB malloc'd and still in use after the load, {:.1} MiB before: memory leaked",
                mib(*after),
                mib(before)
            );
        }
        assert!(
            after_trim < baseline + 100 * 1024,
            "RSS after the load (free memory returned) is {:.1} MiB, baseline {:.1} MiB: more than 100 MiB is still held",
            mib(after_trim),
            mib(baseline)
        );
    })
    .await
    .expect("the load test must finish within 240 s");
}

/// Bytes malloc has handed out and not got back (KiB), glibc only: unlike RSS this does
/// not count freed memory the allocator keeps cached in its arenas.
fn heap_in_use() -> Option<u64> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 only reads allocator statistics.
        let mi = unsafe { libc::mallinfo2() };
        Some(((mi.uordblks + mi.hblkhd) / 1024) as u64)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        None
    }
}

/// File descriptors open in this process.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

fn open_file_limit() -> String {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes into the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        format!("{} (hard {})", lim.rlim_cur, lim.rlim_max)
    } else {
        "unknown".into()
    }
}

// ---------------------------------------------------------------------------------------
// Faults around the proxy
// ---------------------------------------------------------------------------------------

/// The origin fails one h2 stream mid-body: the client sees that stream fail, a download
/// multiplexed on the same connection completes byte-exact, the connection stays usable,
/// and the trace says where it broke.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_dying_mid_body_fails_only_that_exchange() {
    let _shared = EXCLUSIVE.read().await;
    tokio::time::timeout(LIMIT, async {
        let fx = Fixture::start().await;
        for alpn in [Alpn::H2, Alpn::H1] {
            let sender = fx.client.connect(GOPROXY_HOST, 443, alpn).await.unwrap();
            let healthy = if let Sender::H2(h2) = &sender {
                // A 5 MB download in flight on the same connection as the failing stream.
                let mut neighbour = Sender::H2(h2.clone());
                Some(tokio::spawn(async move {
                    let resp = neighbour.send(get_request(&uri("/bytes/5000000"))).await?;
                    drain(resp).await
                }))
            } else {
                None
            };
            let mut sender = sender;
            let cut_path = format!("/cut/300000?{alpn:?}");
            let resp = sender.send(get_request(&uri(&cut_path))).await.unwrap();
            assert_eq!(resp.status(), 200, "{alpn:?}: the head arrives before the cut");
            let mut body = resp.into_body();
            let mut received = 0u64;
            let outcome = loop {
                match body.frame().await {
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            received += data.len() as u64;
                        }
                    }
                    Some(Err(e)) => break Err(e.to_string()),
                    None => break Ok(()),
                }
            };
            assert!(
                outcome.is_err(),
                "{alpn:?}: a body cut by the origin after {received} bytes must end in an error, not look complete"
            );
            assert!(received <= 300_000, "{alpn:?}: {received} bytes, origin sent 300000");
            if let Some(healthy) = healthy {
                let got = healthy.await.unwrap();
                assert_eq!(
                    got.map_err(|e| e.to_string()),
                    Ok((200, 5_000_000)),
                    "the neighbouring h2 stream is unaffected"
                );
                let again = read_whole(sender.send(get_request(&uri("/bytes/3"))).await.unwrap())
                    .await
                    .unwrap();
                assert_eq!(again.body.len(), 3, "the h2 connection is still usable");
            }
            let ex = wait_exchange(&fx, &cut_path, Duration::from_secs(5)).await;
            let err = ex.error.as_ref().expect("a cut body is a failed exchange");
            assert_eq!(
                (err.phase.as_str(), err.kind.as_str()),
                ("body", "upstream-reset"),
                "{alpn:?}: {err:?}"
            );
            let body = &ex.response.as_ref().expect("the head was received").body;
            assert!(!body.complete && body.size <= 300_000, "{alpn:?}: {body:?}");
        }
        still_serving(&fx.client, "an upstream dying mid-body").await;
    })
    .await
    .expect("bounded");
}

/// The client drops a 200 MB download after a few chunks: the exchange is published at
/// once as a client abort (the proxy stops relaying), an h2 connection keeps serving other
/// streams, and new clients are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_dying_mid_body_is_a_client_abort() {
    let _shared = EXCLUSIVE.read().await;
    tokio::time::timeout(LIMIT, async {
        let fx = Fixture::start().await;
        for alpn in [Alpn::H1, Alpn::H2] {
            let mut sender = fx.client.connect(GOPROXY_HOST, 443, alpn).await.unwrap();
            let path = format!("/bytes/200000000?{alpn:?}");
            let resp = sender.send(get_request(&uri(&path))).await.unwrap();
            assert_eq!(resp.status(), 200);
            let mut body = resp.into_body();
            let (mut frames, mut received) = (0, 0u64);
            while frames < 3 {
                let frame = body.frame().await.expect("more body").expect("no error yet");
                if let Ok(data) = frame.into_data() {
                    assert!(check_pattern(&data, received), "{alpn:?}: bytes are the origin's");
                    received += data.len() as u64;
                    frames += 1;
                }
            }
            drop(body);
            let dropped_at = Instant::now();
            if alpn == Alpn::H1 {
                // HTTP/1.1 cannot skip the rest of a body: the client closes the connection.
                drop(sender);
            } else {
                let again = read_whole(sender.send(get_request(&uri("/bytes/7"))).await.unwrap())
                    .await
                    .unwrap();
                assert_eq!(again.body.len(), 7, "the h2 connection survives a reset stream");
            }
            let ex = wait_exchange(&fx, &path, Duration::from_secs(5)).await;
            let noticed = dropped_at.elapsed();
            let err = ex.error.as_ref().expect("an abandoned body is a failed exchange");
            assert_eq!(
                (err.phase.as_str(), err.kind.as_str()),
                ("body", "client-abort"),
                "{alpn:?}: {err:?}"
            );
            let body = &ex.response.as_ref().unwrap().body;
            assert!(!body.complete, "{alpn:?}: {body:?}");
            assert!(
                body.size >= received && body.size < 50_000_000,
                "{alpn:?}: the proxy relayed {} bytes (client read {received}) of 200000000: it must stop when the client leaves",
                body.size
            );
            eprintln!("client abort over {alpn:?}: client read {received} bytes, proxy relayed {}, published {noticed:.2?} after the drop", body.size);
        }
        still_serving(&fx.client, "a client dying mid-body").await;
    })
    .await
    .expect("bounded");
}

/// A listener whose accept queue is full: connecting to it hangs (the kernel drops SYNs).
/// Returns it with the connections that fill it (keep them alive).
async fn full_backlog_listener() -> Option<(TcpListener, Vec<TcpStream>, SocketAddr)> {
    let socket = tokio::net::TcpSocket::new_v4().ok()?;
    socket.bind("127.0.0.1:0".parse().unwrap()).ok()?;
    let listener = socket.listen(1).ok()?;
    let addr = listener.local_addr().ok()?;
    let mut fillers = Vec::new();
    for _ in 0..16 {
        match tokio::time::timeout(Duration::from_millis(300), TcpStream::connect(addr)).await {
            Ok(Ok(s)) => fillers.push(s),
            Ok(Err(_)) => return None,
            Err(_) => return Some((listener, fillers, addr)),
        }
    }
    None
}

/// Upstreams that stall: one accepts TCP and never speaks TLS (tls_timeout), one never
/// completes the TCP handshake (connect_timeout). Each client gets a 502 naming the phase
/// within the bound, while a healthy request on the same proxy is served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_upstreams_get_a_502_naming_the_phase_in_time() {
    let _shared = EXCLUSIVE.read().await;
    tokio::time::timeout(LIMIT, async {
        // Accepts, holds the sockets, never answers.
        let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent_port = silent.local_addr().unwrap().port();
        let held: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let holder = {
            let held = held.clone();
            tokio::spawn(async move {
                while let Ok((s, _)) = silent.accept().await {
                    held.lock().unwrap().push(s);
                }
            })
        };
        let backlog = full_backlog_listener().await;
        if backlog.is_none() {
            eprintln!("note: could not fill a listen backlog here; skipping the TCP-connect stall case");
        }
        let backlog_port = backlog.as_ref().map(|(_, _, a)| a.port());
        let timeout = Duration::from_millis(1500);
        let fx = Fixture::with(FixtureOptions {
            tweak: Box::new(move |c| {
                c.tls_timeout = timeout;
                c.connect_timeout = timeout;
                c.connect_to.insert(
                    0,
                    ConnectTo::parse(&format!("tls-stall.example:443:127.0.0.1:{silent_port}")).unwrap(),
                );
                if let Some(p) = backlog_port {
                    c.connect_to.insert(
                        0,
                        ConnectTo::parse(&format!("tcp-stall.example:443:127.0.0.1:{p}")).unwrap(),
                    );
                }
            }),
            ..FixtureOptions::default()
        })
        .await;

        let mut cases = vec![(
            "tls-stall.example",
            vec![
                "TLS to tls-stall.example:443 failed".to_string(),
                "no TLS handshake within 1.5s".to_string(),
            ],
            ("tls", "tls-handshake-timeout"),
        )];
        if let Some(p) = backlog_port {
            cases.push((
                "tcp-stall.example",
                vec![
                    format!("TCP connect to 127.0.0.1:{p}"),
                    "no answer within 1.5s".to_string(),
                ],
                ("connect", "connect-timeout"),
            ));
        }
        let started = Instant::now();
        let mut stalled = Vec::new();
        for (host, _, _) in &cases {
            let client = fx.client.clone();
            let u = format!("https://{host}/stalled");
            stalled.push(tokio::spawn(async move {
                let got = client.get(&u, Alpn::Both).await;
                (got, started.elapsed())
            }));
        }
        // Meanwhile the proxy serves others without waiting for the stalled dials.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let healthy = fx.client.get(&url("/bytes/42"), Alpn::Both).await.unwrap();
        let healthy_at = started.elapsed();
        assert_eq!(healthy.body.len(), 42);
        // Relative, not an absolute bound: on a loaded machine the healthy request may
        // take long, but it must not wait for the stalled dials' deadline.
        let mut answered = Vec::new();
        for task in stalled {
            answered.push(task.await.unwrap());
        }
        let first_stalled = answered.iter().map(|(_, at)| *at).min().unwrap_or(timeout);
        assert!(
            healthy_at < first_stalled,
            "a healthy request took {healthy_at:?}, the stalled upstreams were answered after {first_stalled:?} (timeout {timeout:?})"
        );
        for ((got, at), (host, texts, (phase, kind))) in answered.into_iter().zip(&cases) {
            let got = got.unwrap_or_else(|e| panic!("{host}: expected a 502 explanation, got {e}"));
            let text = String::from_utf8_lossy(&got.body);
            assert_eq!(got.status, 502, "{host}: {text}");
            for t in texts {
                assert!(text.contains(t.as_str()), "{host}: the 502 text must contain {t:?}: {text}");
            }
            assert!(
                at >= timeout && at < timeout + Duration::from_secs(3),
                "{host}: answered after {at:?}, the bound is {timeout:?}"
            );
            let ex = wait_exchange(&fx, &format!("https://{host}/stalled"), Duration::from_secs(5)).await;
            let err = ex.error.as_ref().unwrap();
            assert_eq!((err.phase.as_str(), err.kind.as_str()), (*phase, *kind), "{host}: {err:?}");
            eprintln!("{host}: 502 after {at:.2?}: {}", text.trim());
        }
        still_serving(&fx.client, "stalled upstreams").await;
        holder.abort();
        drop(backlog);
    })
    .await
    .expect("bounded");
}

/// `--tls-timeout` is "the limit for the upstream TLS handshake". When it is longer than
/// the proxy's internal 8 s dial budget, a stalled handshake is still a TLS failure and
/// must be reported as one (phase `tls`), not as a TCP connect timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_stall_beyond_the_dial_budget_is_still_reported_as_tls() {
    let _shared = EXCLUSIVE.read().await;
    tokio::time::timeout(LIMIT, async {
        let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = silent.local_addr().unwrap().port();
        let holder = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = silent.accept().await {
                held.push(s);
            }
        });
        let fx = Fixture::with(FixtureOptions {
            tweak: Box::new(move |c| {
                c.tls_timeout = Duration::from_secs(12);
                c.connect_to.insert(
                    0,
                    ConnectTo::parse(&format!("tls-stall.example:443:127.0.0.1:{port}")).unwrap(),
                );
            }),
            ..FixtureOptions::default()
        })
        .await;
        let started = Instant::now();
        let got = fx
            .client
            .get("https://tls-stall.example/x", Alpn::Both)
            .await
            .unwrap();
        let at = started.elapsed();
        let text = String::from_utf8_lossy(&got.body);
        assert_eq!(got.status, 502, "{text}");
        let ex = wait_exchange(&fx, "tls-stall.example", Duration::from_secs(5)).await;
        let err = ex.error.as_ref().unwrap();
        eprintln!(
            "TLS stall with --tls-timeout 12s: 502 after {at:.2?}: {} [{err:?}]",
            text.trim()
        );
        assert!(
            text.contains("TLS to tls-stall.example:443"),
            "the 502 must name the TLS phase that stalled: {text}"
        );
        assert_eq!(err.phase, "tls", "{err:?}");
        holder.abort();
    })
    .await
    .expect("bounded");
}

// ---------------------------------------------------------------------------------------
// SIGTERM under load (a `modscope proxy` child process)
// ---------------------------------------------------------------------------------------

const DOWNLOAD: u64 = 20_000_000;

// Was flaky (2 of 30 runs alone): the proxy closed its side of a finished HTTP/2
// connection while the client still sent WINDOW_UPDATEs for the body's tail, the close
// became an RST, and the client's kernel dropped the last 150-600 KB it had not read yet.
// The lingering close (`proxy::io::linger_close`) fixed it: 0 of 48 runs failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_finishes_downloads_and_writes_a_valid_trace() {
    let _shared = EXCLUSIVE.read().await;
    tokio::time::timeout(Duration::from_secs(90), async {
        let dir = TempDir::new("sigterm");
        let origin = Origin::start(default_modules(), OriginOptions::default())
            .await
            .unwrap();
        let trace_dir = dir.path().join("trace");
        let grace = Duration::from_secs(20);
        let (child, addr) = spawn_proxy(dir.path(), &origin)
            .record(&trace_dir)
            .grace(grace.as_secs())
            .start();
        let pid = child.id() as i32;
        let mut child = KillOnDrop(Some(child));
        let client = ProxiedClient::new(addr, &[modscope_ca(dir.path())]).unwrap();

        // Two exchanges that complete before the signal.
        for alpn in [Alpn::H1, Alpn::H2] {
            let got = client.get(&url("/bytes/777"), alpn).await.unwrap();
            assert_eq!(got.body.len(), 777);
        }

        // Three 20 MB downloads in flight: two over HTTP/1.1, one over HTTP/2. Each reads
        // at least 1 MiB, then stops reading (backpressure holds the proxy mid-body) until
        // the signal was sent.
        let (go_tx, go_rx) = tokio::sync::watch::channel(false);
        let (started_tx, mut started_rx) = tokio::sync::mpsc::channel::<()>(3);
        let mut downloads = Vec::new();
        for (i, alpn) in [Alpn::H1, Alpn::H1, Alpn::H2].into_iter().enumerate() {
            let client = client.clone();
            let mut go_rx = go_rx.clone();
            let started_tx = started_tx.clone();
            downloads.push(tokio::spawn(async move {
                let mut sender = client.connect(GOPROXY_HOST, 443, alpn).await.map_err(|e| e.to_string())?;
                let resp = sender
                    .send(get_request(&uri(&format!("/bytes/{DOWNLOAD}?d={i}"))))
                    .await
                    .map_err(|e| e.to_string())?;
                let status = resp.status().as_u16();
                let mut body = resp.into_body();
                let mut total = 0u64;
                let mut signalled = false;
                let mut pattern_ok = true;
                while let Some(frame) = body.frame().await {
                    let frame = frame.map_err(|e| format!("{alpn:?} download {i} failed after {total} bytes: {e}"))?;
                    if let Ok(data) = frame.into_data() {
                        if total < 2_000_000 {
                            pattern_ok &= check_pattern(&data, total);
                        }
                        total += data.len() as u64;
                    }
                    if !signalled && total >= 1 << 20 {
                        signalled = true;
                        let _ = started_tx.send(()).await;
                        let _ = go_rx.wait_for(|go| *go).await;
                    }
                }
                Ok::<_, String>((status, total, pattern_ok))
            }));
        }
        drop(started_tx);
        for _ in 0..3 {
            started_rx
                .recv()
                .await
                .expect("a download ended before reaching 1 MiB; see its result");
        }

        let signalled_at = Instant::now();
        // SAFETY: sending a signal to our own child process.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0, "kill(SIGTERM)");
        // The listener closes at once: new clients are refused while the drain runs.
        let mut refused = false;
        while signalled_at.elapsed() < Duration::from_secs(3) {
            if TcpStream::connect(addr).await.is_err() {
                refused = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(refused, "the proxy still accepted connections 3 s after SIGTERM");
        go_tx.send(true).unwrap();

        for (i, d) in downloads.into_iter().enumerate() {
            let (status, total, pattern_ok) = d
                .await
                .unwrap()
                .unwrap_or_else(|e| panic!("download {i} was cut by the shutdown: {e}"));
            assert_eq!((status, total), (200, DOWNLOAD), "download {i} completes after SIGTERM");
            assert!(pattern_ok, "download {i}: bytes are the origin's");
        }
        let drained_at = signalled_at.elapsed();

        let mut c = child.0.take().unwrap();
        let waited = tokio::time::timeout(
            grace + Duration::from_secs(10),
            tokio::task::spawn_blocking(move || {
                let status = c.wait();
                let mut stderr = String::new();
                if let Some(mut e) = c.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
                }
                (status, stderr)
            }),
        )
        .await;
        let (status, stderr) = match waited {
            Ok(joined) => joined.unwrap(),
            Err(_) => {
                // SAFETY: our own child.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                panic!("modscope proxy did not exit within {:?} of SIGTERM", grace + Duration::from_secs(10));
            }
        };
        let exited_at = signalled_at.elapsed();
        let status = status.unwrap();
        assert_eq!(status.code(), Some(0), "exit status after SIGTERM; stderr:\n{stderr}");
        assert!(
            exited_at < grace,
            "exited {exited_at:?} after SIGTERM, the grace is {grace:?}; stderr:\n{stderr}"
        );
        eprintln!(
            "SIGTERM: downloads finished {drained_at:.2?} after the signal, the proxy exited after {exited_at:.2?}"
        );

        let har_path = trace_dir.join("trace.har");
        assert!(har_path.exists(), "clean shutdown writes trace.har; stderr:\n{stderr}");
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&har_path).unwrap()).unwrap();
        let problems = validate_har_1_2(&doc);
        assert!(problems.is_empty(), "{problems:#?}");
        let trace = load_trace(&trace_dir).unwrap();
        assert!(trace.problems.is_empty(), "{:?}", trace.problems);
        assert_eq!(trace.source, har_path, "the HAR is current: {:?}", trace.notes);
        assert_eq!(
            trace.entries.len(),
            5,
            "one entry per completed exchange (2 small + 3 downloads): {:#?}",
            trace.entries.iter().map(|e| &e.request.url).collect::<Vec<_>>()
        );
        let big: Vec<_> = trace
            .entries
            .iter()
            .filter(|e| e.request.url.contains(&format!("/bytes/{DOWNLOAD}")))
            .collect();
        assert_eq!(big.len(), 3);
        for e in big {
            assert_eq!(e.response.status, 200);
            assert_eq!(e.response.content.size, DOWNLOAD as i64, "{}", e.request.url);
            assert_ne!(e.response.content.complete, Some(false), "{}", e.request.url);
            assert!(e.error.is_none(), "{}: {:?}", e.request.url, e.error);
        }
    })
    .await
    .expect("bounded");
}

/// A client that stops reading keeps its download from finishing: SIGTERM then waits
/// only `--shutdown-grace`, the process still exits cleanly with a valid trace, and the
/// exchange cut at the deadline is in it as an incomplete one (not silently missing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drain_deadline_cuts_a_stuck_download_and_records_it() {
    let _shared = EXCLUSIVE.read().await;
    tokio::time::timeout(Duration::from_secs(60), async {
        let dir = TempDir::new("deadline");
        let origin = Origin::start(default_modules(), OriginOptions::default())
            .await
            .unwrap();
        let trace_dir = dir.path().join("trace");
        let grace = Duration::from_secs(2);
        let (child, addr) = spawn_proxy(dir.path(), &origin)
            .record(&trace_dir)
            .grace(grace.as_secs())
            .start();
        let pid = child.id() as i32;
        let mut child = KillOnDrop(Some(child));
        let client = ProxiedClient::new(addr, &[modscope_ca(dir.path())]).unwrap();
        let done = client.get(&url("/bytes/321"), Alpn::H1).await.unwrap();
        assert_eq!(done.body.len(), 321);

        // A 200 MB download whose client reads one chunk and then nothing.
        let mut sender = client.connect(GOPROXY_HOST, 443, Alpn::H1).await.unwrap();
        let resp = sender
            .send(get_request(&uri("/bytes/200000000?stuck")))
            .await
            .unwrap();
        let mut body = resp.into_body();
        let first = body.frame().await.unwrap().unwrap();
        assert!(first.is_data());

        let signalled_at = Instant::now();
        // SAFETY: sending a signal to our own child process.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let mut c = child.0.take().unwrap();
        let (status, stderr) = tokio::time::timeout(
            grace + Duration::from_secs(10),
            tokio::task::spawn_blocking(move || {
                let status = c.wait();
                let mut stderr = String::new();
                if let Some(mut e) = c.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
                }
                (status, stderr)
            }),
        )
        .await
        .unwrap_or_else(|_| {
            // SAFETY: our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("modscope proxy ignored its {grace:?} drain deadline");
        })
        .unwrap();
        let exited_at = signalled_at.elapsed();
        drop(body);
        assert_eq!(status.unwrap().code(), Some(0), "stderr:\n{stderr}");
        assert!(
            exited_at >= grace && exited_at < grace + Duration::from_secs(3),
            "exited {exited_at:?} after SIGTERM with a {grace:?} grace; stderr:\n{stderr}"
        );
        assert!(
            stderr.contains("cut at the drain deadline"),
            "stderr:\n{stderr}"
        );
        eprintln!("drain deadline {grace:?}: exited {exited_at:.2?} after SIGTERM");

        let har_path = trace_dir.join("trace.har");
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&har_path).unwrap()).unwrap();
        assert!(
            validate_har_1_2(&doc).is_empty(),
            "{:#?}",
            validate_har_1_2(&doc)
        );
        let trace = load_trace(&trace_dir).unwrap();
        let urls: Vec<_> = trace
            .entries
            .iter()
            .map(|e| e.request.url.clone())
            .collect();
        assert!(urls.iter().any(|u| u.ends_with("/bytes/321")), "{urls:#?}");
        let stuck = trace
            .entries
            .iter()
            .find(|e| e.request.url.contains("stuck"))
            .unwrap_or_else(|| {
                panic!(
                    "the download cut at the drain deadline is missing from the trace: {urls:#?}"
                )
            });
        assert_eq!(stuck.response.content.complete, Some(false), "{stuck:#?}");
    })
    .await
    .expect("bounded");
}

// ---------------------------------------------------------------------------------------
// Resource limits
// ---------------------------------------------------------------------------------------

/// With `max_connections = 2`, a third client's CONNECT waits in the kernel backlog while
/// two connections are open, and is served as soon as one of them closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_queues_the_third_client_until_one_closes() {
    let _shared = EXCLUSIVE.read().await;
    tokio::time::timeout(LIMIT, async {
        let fx = Fixture::with(FixtureOptions {
            tweak: Box::new(|c| c.max_connections = 2),
            ..FixtureOptions::default()
        })
        .await;
        let mut first = fx
            .client
            .connect(GOPROXY_HOST, 443, Alpn::H1)
            .await
            .unwrap();
        let mut second = fx
            .client
            .connect(GOPROXY_HOST, 443, Alpn::H2)
            .await
            .unwrap();
        for s in [&mut first, &mut second] {
            let got = read_whole(s.send(get_request(&uri("/bytes/10"))).await.unwrap())
                .await
                .unwrap();
            assert_eq!(got.body.len(), 10);
        }

        // The third: TCP connects (kernel backlog) and sends CONNECT, but nobody answers.
        let mut raw = TcpStream::connect(fx.proxy_addr())
            .await
            .expect("the kernel accepts into the backlog");
        raw.write_all(
            format!("CONNECT {GOPROXY_HOST}:443 HTTP/1.1\r\nHost: {GOPROXY_HOST}:443\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
        let mut buf = [0u8; 64];
        let early = tokio::time::timeout(Duration::from_millis(800), raw.read(&mut buf)).await;
        assert!(
            early.is_err(),
            "a third client was answered while two connections were open: {:?}",
            early.map(|r| r.map(|n| String::from_utf8_lossy(&buf[..n]).into_owned()))
        );

        let closed_at = Instant::now();
        drop(first);
        let n = tokio::time::timeout(Duration::from_secs(5), raw.read(&mut buf))
            .await
            .expect("the queued client must be served within 5 s of a slot freeing")
            .unwrap();
        let answer = String::from_utf8_lossy(&buf[..n]);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
        eprintln!(
            "max_connections=2: the queued CONNECT was answered {:.2?} after a connection closed",
            closed_at.elapsed()
        );
        drop(raw);

        // Slots keep turning over: a full GET from a new client, and the second still works.
        still_serving(&fx.client, "queueing at max_connections").await;
        let got = read_whole(second.send(get_request(&uri("/bytes/11"))).await.unwrap())
            .await
            .unwrap();
        assert_eq!(
            got.body.len(),
            11,
            "the second connection was never disturbed"
        );
    })
    .await
    .expect("bounded");
}

/// Polls until `sender` reports its connection closed; returns how long that took.
async fn closed_within(sender: &Sender, limit: Duration) -> Option<Duration> {
    let from = Instant::now();
    while from.elapsed() < limit {
        if sender.is_closed() {
            return Some(from.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// An idle keep-alive connection (HTTP/1.1 and HTTP/2) is closed after `idle_timeout`,
/// while one that keeps exchanging requests for longer than that stays open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_are_closed_after_the_idle_timeout() {
    let _shared = EXCLUSIVE.read().await;
    tokio::time::timeout(LIMIT, async {
        let idle = Duration::from_secs(1);
        let fx = Fixture::with(FixtureOptions {
            tweak: Box::new(move |c| {
                c.idle_timeout = idle;
                // Not the header timeout: it must not be what closes the connection.
                c.header_timeout = Duration::from_secs(30);
            }),
            ..FixtureOptions::default()
        })
        .await;
        let check = |alpn: Alpn| {
            let client = fx.client.clone();
            async move {
                let mut sender = client.connect(GOPROXY_HOST, 443, alpn).await.unwrap();
                // Busy for 2.4 s (> idle) with gaps of 300 ms (< idle): stays open.
                let mut last_byte = Instant::now();
                for i in 0..8 {
                    let got = read_whole(sender.send(get_request(&uri(&format!("/bytes/{}", 10 + i)))).await.unwrap())
                        .await
                        .unwrap_or_else(|e| panic!("{alpn:?}: request {i} on a busy connection: {e}"));
                    last_byte = Instant::now();
                    assert_eq!(got.body.len(), 10 + i);
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                assert!(!sender.is_closed(), "{alpn:?}: a busy connection was closed");
                let waited_before = last_byte.elapsed();
                let closed = closed_within(&sender, Duration::from_secs(5)).await;
                let closed = closed.unwrap_or_else(|| panic!("{alpn:?}: an idle connection was still open 5 s after its last byte (idle timeout {idle:?})"));
                // Measured from the last response (the 300 ms sleep may overshoot on a
                // loaded machine).
                let since_last = closed + waited_before;
                assert!(
                    since_last >= idle - Duration::from_millis(100)
                        && since_last < idle + Duration::from_secs(2),
                    "{alpn:?}: closed {since_last:?} after the last byte, expected about {idle:?}"
                );
                since_last
            }
        };
        let (h1, h2) = tokio::join!(check(Alpn::H1), check(Alpn::H2));
        eprintln!("idle timeout {idle:?}: h1 closed ~{h1:.2?} and h2 ~{h2:.2?} after the last byte");
        still_serving(&fx.client, "idle timeouts").await;
    })
    .await
    .expect("bounded");
}

/// README: `--header-timeout` is "time a client has to send a request head",
/// `--idle-timeout` closes "after this long without traffic". An HTTP/1.1 keep-alive
/// connection idle between requests for longer than the header timeout but shorter than
/// the idle timeout should therefore still be usable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h1_keep_alive_idle_is_bounded_by_the_idle_timeout_not_the_header_timeout() {
    let _shared = EXCLUSIVE.read().await;
    tokio::time::timeout(LIMIT, async {
        let fx = Fixture::with(FixtureOptions {
            tweak: Box::new(|c| {
                c.header_timeout = Duration::from_secs(1);
                c.idle_timeout = Duration::from_secs(10);
            }),
            ..FixtureOptions::default()
        })
        .await;
        for alpn in [Alpn::H2, Alpn::H1] {
            let mut sender = fx.client.connect(GOPROXY_HOST, 443, alpn).await.unwrap();
            let got = read_whole(sender.send(get_request(&uri("/bytes/5"))).await.unwrap())
                .await
                .unwrap();
            assert_eq!(got.body.len(), 5);
            let closed = closed_within(&sender, Duration::from_millis(2500)).await;
            assert!(
                closed.is_none(),
                "{alpn:?}: an idle keep-alive connection was closed {:?} after its last response \
                 (header timeout 1 s, idle timeout 10 s)",
                closed.unwrap()
            );
            let again = read_whole(sender.send(get_request(&uri("/bytes/6"))).await.unwrap())
                .await
                .unwrap();
            assert_eq!(again.body.len(), 6, "{alpn:?}: reuse after 2.5 s idle");
        }
    })
    .await
    .expect("bounded");
}
