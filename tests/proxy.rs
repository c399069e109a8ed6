//! Loopback integration tests of the proxy core with a Rust client: HTTP versions, bodies,
//! tunnels, chaining, upstream certificate failures and bad input.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{Fixture, FixtureOptions, GOPROXY_HOST};
use http_body_util::{BodyExt, Full};
use modscope::ca::Validity;
use modscope::testkit::client::{drain, get_request, read_whole, Alpn, ProxiedClient};
use modscope::testkit::origin::OriginOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const LIMIT: Duration = Duration::from_secs(60);

fn url(path: &str) -> String {
    format!("https://{GOPROXY_HOST}{path}")
}

#[tokio::test]
async fn module_files_through_h2_and_h1_are_byte_exact() {
    tokio::time::timeout(LIMIT, async {
        let fx = Fixture::start().await;
        let m = fx.modules[0].clone();
        for (alpn, want) in [
            (Alpn::Both, http::Version::HTTP_2),
            (Alpn::H1, http::Version::HTTP_11),
        ] {
            let zip = fx
                .client
                .get(&url(&format!("/{}/@v/{}.zip", m.path, m.version)), alpn)
                .await
                .unwrap();
            assert_eq!(zip.status, 200);
            assert_eq!(zip.version, want, "ALPN is mirrored from the origin");
            assert_eq!(zip.body, Bytes::from(m.zip()), "zip bytes are untouched");
            let list = fx
                .client
                .get(&url(&format!("/{}/@v/list", m.path)), alpn)
                .await
                .unwrap();
            assert!(String::from_utf8_lossy(&list.body).contains(&m.version));
        }
        let exchanges = fx.wait_exchanges(4).await;
        let h2 = &exchanges[0];
        assert_eq!(h2.request.http_version, "HTTP/2");
        let tls = h2.tls.as_ref().unwrap();
        assert_eq!(
            tls.client.as_ref().unwrap().sni.as_deref(),
            Some(GOPROXY_HOST)
        );
        let upstream = tls.upstream.as_ref().unwrap();
        assert!(upstream.verified);
        assert_eq!(upstream.alpn.as_deref(), Some("h2"));
        assert!(upstream.certificates[0]
            .dns_names
            .contains(&GOPROXY_HOST.to_string()));
        assert!(
            h2.timings.tls.is_some() && h2.timings.dns.is_none(),
            "IP literal dial: no DNS, a TLS phase"
        );
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn origin_without_h2_gets_http11_clients() {
    tokio::time::timeout(LIMIT, async {
        let fx = Fixture::with(FixtureOptions {
            origin: OriginOptions {
                alpn: vec![b"http/1.1".to_vec()],
                ..OriginOptions::default()
            },
            ..FixtureOptions::default()
        })
        .await;
        let got = fx.client.get(&url("/bytes/10"), Alpn::Both).await.unwrap();
        assert_eq!(got.version, http::Version::HTTP_11);
        assert_eq!(got.body.len(), 10);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn connection_is_reused_and_later_requests_have_no_connect_phases() {
    tokio::time::timeout(LIMIT, async {
        let fx = Fixture::start().await;
        for alpn in [Alpn::H1, Alpn::H2] {
            let mut sender = fx.client.connect(GOPROXY_HOST, 443, alpn).await.unwrap();
            for i in 0..3 {
                let uri: http::Uri = url(&format!("/bytes/{}", 100 + i)).parse().unwrap();
                let got = read_whole(sender.send(get_request(&uri)).await.unwrap())
                    .await
                    .unwrap();
                assert_eq!(got.body.len(), 100 + i);
            }
        }
        let ex = fx.wait_exchanges(6).await;
        for group in ex.chunks(3) {
            let conn = group[0].connection_id;
            assert!(
                group.iter().all(|e| e.connection_id == conn),
                "one upstream connection per client connection"
            );
            assert!(group[0].timings.tcp.is_some());
            assert!(group[1..]
                .iter()
                .all(|e| e.timings.tcp.is_none() && e.timings.tls.is_none()));
        }
    })
    .await
    .unwrap();
}

/// `RunningProxy::settled` (what `run --retry-transient` waits on before judging an
/// attempt): an exchange whose body is still streaming is in flight; once the client
/// goes away it is published, and only then is the proxy settled.
#[tokio::test]
async fn settled_waits_for_exchanges_still_streaming() {
    tokio::time::timeout(LIMIT, async {
        let fx = Fixture::start().await;
        assert!(fx.proxy.settled(Duration::from_millis(50)).await, "idle");
        for alpn in [Alpn::H1, Alpn::H2] {
            let before = fx.exchanges().len();
            let mut sender = fx.client.connect(GOPROXY_HOST, 443, alpn).await.unwrap();
            let uri: http::Uri = url("/bytes/20000000").parse().unwrap();
            let resp = sender.send(get_request(&uri)).await.unwrap();
            // The head is here, the 20 MB body is not read: the exchange is in flight.
            assert!(
                !fx.proxy.settled(Duration::from_millis(100)).await,
                "{alpn:?}: a streaming exchange counts as in flight"
            );
            assert_eq!(fx.exchanges().len(), before);
            drop(resp);
            drop(sender);
            assert!(
                fx.proxy.settled(Duration::from_secs(5)).await,
                "{alpn:?}: the abandoned exchange ends"
            );
            // Settled means published: no waiting for the observer.
            assert_eq!(fx.exchanges().len(), before + 1, "{alpn:?}");
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn chunked_bodies_trailers_and_uploads_stream_through() {
    tokio::time::timeout(LIMIT, async {
        let fx = Fixture::start().await;
        // Chunked (no length) from an h1 origin.
        let got = fx
            .client
            .get(&url("/bytes/300000?chunked=1"), Alpn::H1)
            .await
            .unwrap();
        assert_eq!(got.body.len(), 300_000);
        for (i, b) in got.body.iter().enumerate() {
            assert_eq!(*b, modscope::testkit::origin::pattern_byte(i as u64));
        }
        // Trailers survive h2.
        let mut sender = fx
            .client
            .connect(GOPROXY_HOST, 443, Alpn::H2)
            .await
            .unwrap();
        let uri: http::Uri = url("/trailers").parse().unwrap();
        let resp = sender.send(get_request(&uri)).await.unwrap();
        let collected = resp.into_body().collect().await.unwrap();
        assert_eq!(collected.trailers().unwrap()["x-checksum"], "abc123");
        // An upload is echoed back, both ways streamed.
        for alpn in [Alpn::H1, Alpn::H2] {
            let mut sender = fx.client.connect(GOPROXY_HOST, 443, alpn).await.unwrap();
            let payload = Bytes::from(vec![7u8; 1_000_000]);
            let mut req = http::Request::new(
                Full::new(payload.clone())
                    .map_err(|n| match n {})
                    .boxed_unsync(),
            );
            *req.method_mut() = http::Method::POST;
            *req.uri_mut() = url("/echo").parse().unwrap();
            req.headers_mut()
                .insert("host", GOPROXY_HOST.parse().unwrap());
            let got = read_whole(sender.send(req).await.unwrap()).await.unwrap();
            assert_eq!(got.body, payload);
        }
        let ex = fx.wait_exchanges(4).await;
        let upload = ex.iter().find(|e| e.request.method == "POST").unwrap();
        assert_eq!(upload.request.body.size, 1_000_000);
        assert!(upload.request.body.complete);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn expect_100_continue_and_hop_by_hop_headers() {
    tokio::time::timeout(LIMIT, async {
        let fx = Fixture::start().await;
        let stream = fx.client.tunnel(&format!("{GOPROXY_HOST}:443")).await.unwrap();
        let mut config = rustls::ClientConfig::builder_with_provider(modscope::tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates({
                let mut r = rustls::RootCertStore::empty();
                r.add(fx.ca.cert_der().clone()).unwrap();
                r
            })
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let name = rustls::pki_types::ServerName::try_from(GOPROXY_HOST).unwrap();
        let mut tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
            .connect(name, stream)
            .await
            .unwrap();
        let head = format!(
            "POST /headers HTTP/1.1\r\nHost: {GOPROXY_HOST}\r\nExpect: 100-continue\r\nContent-Length: 5\r\nConnection: keep-alive, x-private\r\nX-Private: secret\r\nProxy-Authorization: Basic abc\r\nX-Keep: yes\r\n\r\n"
        );
        tls.write_all(head.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 64];
        let n = tls.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 100"), "client gets 100 Continue first");
        tls.write_all(b"hello").await.unwrap();
        let mut response = Vec::new();
        let mut chunk = vec![0u8; 4096];
        while !String::from_utf8_lossy(&response).contains("x-keep") {
            let n = tls.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed early: {}", String::from_utf8_lossy(&response));
            response.extend_from_slice(&chunk[..n]);
        }
        let text = String::from_utf8_lossy(&response).to_ascii_lowercase();
        assert!(text.contains("x-keep: yes"));
        assert!(!text.contains("x-private"), "headers named by Connection are hop-by-hop: {text}");
        assert!(!text.contains("proxy-authorization"), "{text}");
        assert!(!text.contains("expect:"), "{text}");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn plain_http_absolute_form_and_plain_inside_a_tunnel() {
    tokio::time::timeout(LIMIT, async {
        let fx = Fixture::with(FixtureOptions {
            origin: OriginOptions {
                tls: false,
                ..OriginOptions::default()
            },
            ..FixtureOptions::default()
        })
        .await;
        let m = &fx.modules[0];
        let got = fx
            .client
            .get_plain(&format!("http://plain.example/{}/@v/list", m.path))
            .await
            .unwrap();
        assert_eq!(got.status, 200);
        assert!(String::from_utf8_lossy(&got.body).contains(&m.version));

        let mut stream = fx.client.tunnel("plain.example:80").await.unwrap();
        stream
            .write_all(b"GET /bytes/5 HTTP/1.1\r\nHost: plain.example\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = Vec::new();
        stream.read_to_end(&mut out).await.unwrap();
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        let ex = fx.wait_exchanges(2).await;
        assert!(
            ex.iter()
                .all(|e| e.request.url.starts_with("http://plain.example")),
            "{ex:#?}"
        );
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn connect_to_an_ip_literal_gets_an_ip_certificate() {
    tokio::time::timeout(LIMIT, async {
        let fx = Fixture::start().await;
        // The origin's leaf names 127.0.0.1, so strict verification passes upstream too.
        let got = fx
            .client
            .get(
                &format!("https://127.0.0.1:{}/bytes/3", fx.origin.addr.port()),
                Alpn::Both,
            )
            .await
            .unwrap();
        assert_eq!(got.status, 200);
        assert_eq!(got.body.len(), 3);
        let ex = fx.wait_exchanges(1).await;
        assert_eq!(
            ex[0].tls.as_ref().unwrap().client.as_ref().unwrap().sni,
            None,
            "no SNI for IPs"
        );
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn no_intercept_hosts_are_tunnelled_untouched() {
    tokio::time::timeout(LIMIT, async {
        let fx = Fixture::with(FixtureOptions {
            tweak: Box::new(|c| c.no_intercept = vec!["*.golang.org".into()]),
            ..FixtureOptions::default()
        })
        .await;
        // Trusting only the origin's CA proves the bytes were not re-encrypted by modscope.
        let origin_trusting =
            ProxiedClient::new(fx.proxy_addr(), &[fx.origin.ca.cert_der().clone()]).unwrap();
        let got = origin_trusting
            .get(&url("/bytes/1000"), Alpn::Both)
            .await
            .unwrap();
        assert_eq!(got.body.len(), 1000);
        let modscope_trusting = fx.client.get(&url("/bytes/1000"), Alpn::Both).await;
        assert!(
            modscope_trusting.is_err(),
            "the modscope CA must not be presented for tunnelled hosts"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(fx.exchanges().is_empty(), "tunnelled traffic is opaque");
    })
    .await
    .unwrap();
}

/// A minimal parent proxy: checks Proxy-Authorization, counts CONNECTs, pipes bytes.
async fn parent_proxy(
    expected_auth: &'static str,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if client.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).to_string();
                if !head.contains(&format!("Proxy-Authorization: {expected_auth}")) {
                    let _ = client.write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n").await;
                    return;
                }
                let target = head.split_whitespace().nth(1).unwrap().to_string();
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Ok(mut upstream) = TcpStream::connect(&target).await else {
                    return;
                };
                let _ = client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await;
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    (addr, count)
}

#[tokio::test]
async fn chains_through_an_upstream_proxy_with_credentials() {
    tokio::time::timeout(LIMIT, async {
        // "alice:s3cret" in base64.
        let (parent, count) = parent_proxy("Basic YWxpY2U6czNjcmV0").await;
        let fx = Fixture::with(FixtureOptions {
            tweak: Box::new(move |c| {
                c.upstream_proxy = Some(
                    modscope::config::UpstreamProxy::parse(&format!(
                        "http://alice:s3cret@{parent}"
                    ))
                    .unwrap(),
                )
            }),
            ..FixtureOptions::default()
        })
        .await;
        let got = fx.client.get(&url("/bytes/42"), Alpn::Both).await.unwrap();
        assert_eq!(got.body.len(), 42);
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 1);

        let (parent, _) = parent_proxy("Basic something-else").await;
        let fx = Fixture::with(FixtureOptions {
            tweak: Box::new(move |c| {
                c.upstream_proxy = Some(
                    modscope::config::UpstreamProxy::parse(&format!("http://alice:wrong@{parent}"))
                        .unwrap(),
                )
            }),
            ..FixtureOptions::default()
        })
        .await;
        let got = fx.client.get(&url("/bytes/42"), Alpn::Both).await.unwrap();
        assert_eq!(got.status, 502);
        let text = String::from_utf8_lossy(&got.body);
        assert!(
            text.contains("407") && text.contains("upstream proxy"),
            "{text}"
        );
        let ex = fx.wait_exchanges(1).await;
        assert_eq!(ex[0].error.as_ref().unwrap().kind, "proxy-auth");
    })
    .await
    .unwrap();
}

async fn failing_origin_text(opts: FixtureOptions) -> (String, modscope::exchange::Exchange) {
    let fx = Fixture::with(opts).await;
    let got = fx.client.get(&url("/bytes/1"), Alpn::Both).await.unwrap();
    assert_eq!(got.status, 502);
    assert!(got.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let ex = fx.wait_exchanges(1).await.remove(0);
    (String::from_utf8_lossy(&got.body).into_owned(), ex)
}

#[tokio::test]
async fn upstream_certificate_failures_are_explained() {
    tokio::time::timeout(LIMIT, async {
        let (text, ex) = failing_origin_text(FixtureOptions {
            trust_origin: false,
            ..FixtureOptions::default()
        })
        .await;
        assert!(
            text.contains("TLS to proxy.golang.org:443 failed")
                && text.contains("unknown authority"),
            "{text}"
        );
        assert_eq!(ex.error.as_ref().unwrap().kind, "tls-untrusted");
        assert_eq!(
            ex.response, None,
            "no upstream response: status 0 in the trace"
        );
        assert!(!ex
            .tls
            .as_ref()
            .unwrap()
            .upstream
            .as_ref()
            .unwrap()
            .certificates
            .is_empty());

        let now = time::OffsetDateTime::now_utc();
        let (text, ex) = failing_origin_text(FixtureOptions {
            origin: OriginOptions {
                validity: Some(Validity {
                    not_before: now - time::Duration::days(400),
                    not_after: now - time::Duration::days(30),
                }),
                ..OriginOptions::default()
            },
            ..FixtureOptions::default()
        })
        .await;
        assert!(text.contains("certificate expired (notAfter 20"), "{text}");
        assert_eq!(ex.error.as_ref().unwrap().kind, "tls-expired");

        let (text, ex) = failing_origin_text(FixtureOptions {
            origin: OriginOptions {
                names: vec!["other.example".into()],
                ..OriginOptions::default()
            },
            ..FixtureOptions::default()
        })
        .await;
        assert!(
            text.contains("not valid for this host") && text.contains("other.example"),
            "{text}"
        );
        assert_eq!(ex.error.as_ref().unwrap().kind, "tls-hostname-mismatch");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn unreachable_upstream_is_a_502_naming_the_phase() {
    tokio::time::timeout(LIMIT, async {
        // A port nobody listens on.
        let closed = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let fx = Fixture::with(FixtureOptions {
            tweak: Box::new(move |c| {
                c.connect_to = vec![modscope::config::ConnectTo::parse(&format!(
                    "{GOPROXY_HOST}:443:127.0.0.1:{closed}"
                ))
                .unwrap()]
            }),
            ..FixtureOptions::default()
        })
        .await;
        let got = fx.client.get(&url("/x"), Alpn::Both).await.unwrap();
        assert_eq!(got.status, 502);
        let text = String::from_utf8_lossy(&got.body);
        assert!(
            text.contains("TCP connect") && text.contains("connection refused"),
            "{text}"
        );
        assert_eq!(
            fx.wait_exchanges(1).await[0].error.as_ref().unwrap().kind,
            "connect-refused"
        );
    })
    .await
    .unwrap();
}

/// Sends raw bytes to the proxy and returns what came back before it closed (or 2 s passed).
async fn raw_exchange(proxy: std::net::SocketAddr, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(proxy).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn bad_input_gets_clear_answers_and_the_proxy_keeps_serving() {
    tokio::time::timeout(LIMIT, async {
        let fx = Fixture::start().await;
        let p = fx.proxy_addr();
        let garbage = raw_exchange(p, b"\x00\x01\x02garbage\r\n\r\n").await;
        assert!(garbage.starts_with("HTTP/1.1 400"), "{garbage:?}");
        let no_port = raw_exchange(
            p,
            b"CONNECT proxy.golang.org HTTP/1.1\r\nHost: proxy.golang.org\r\n\r\n",
        )
        .await;
        assert!(
            no_port.starts_with("HTTP/1.1 400") && no_port.contains("port"),
            "{no_port:?}"
        );
        let bad_host = raw_exchange(p, b"CONNECT bad_host!:443 HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(bad_host.starts_with("HTTP/1.1 400"), "{bad_host:?}");
        let huge = format!(
            "GET http://plain.example/ HTTP/1.1\r\nHost: plain.example\r\nX-Big: {}\r\n\r\n",
            "a".repeat(100_000)
        );
        let oversized = raw_exchange(p, huge.as_bytes()).await;
        assert!(oversized.starts_with("HTTP/1.1 431"), "{oversized:?}");
        let direct = raw_exchange(p, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(
            direct.starts_with("HTTP/1.1 400") && direct.contains("is a proxy"),
            "{direct:?}"
        );

        // Non-TLS after CONNECT to a TLS origin: served as plain HTTP, which the TLS origin
        // cannot answer, so the client gets a clean 502.
        let mut s = fx
            .client
            .tunnel(&format!("{GOPROXY_HOST}:443"))
            .await
            .unwrap();
        s.write_all(
            b"GET /bytes/1 HTTP/1.1\r\nHost: proxy.golang.org\r\nConnection: close\r\n\r\n",
        )
        .await
        .unwrap();
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
        assert!(
            String::from_utf8_lossy(&out).starts_with("HTTP/1.1 502"),
            "{}",
            String::from_utf8_lossy(&out)
        );

        // A client that disconnects in the middle of its ClientHello.
        let mut s = fx
            .client
            .tunnel(&format!("{GOPROXY_HOST}:443"))
            .await
            .unwrap();
        s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
            .await
            .unwrap();
        drop(s);

        // Upstream closes mid-body: the client sees an error, the trace an upstream failure.
        for alpn in [Alpn::H1, Alpn::H2] {
            let mut sender = fx.client.connect(GOPROXY_HOST, 443, alpn).await.unwrap();
            let uri: http::Uri = url("/cut/100000").parse().unwrap();
            let resp = sender.send(get_request(&uri)).await.unwrap();
            assert!(
                drain(resp).await.is_err(),
                "{alpn:?}: a cut body must not look complete"
            );
        }
        // Still serving.
        let ok = fx.client.get(&url("/bytes/7"), Alpn::Both).await.unwrap();
        assert_eq!(ok.body.len(), 7);
        let ex = fx.wait_exchanges(4).await;
        let cut: Vec<_> = ex
            .iter()
            .filter(|e| e.request.url.contains("/cut/"))
            .collect();
        assert_eq!(cut.len(), 2, "{ex:#?}");
        for e in cut {
            let err = e.error.as_ref().unwrap();
            assert_eq!(
                (err.phase.as_str(), err.kind.as_str()),
                ("body", "upstream-reset"),
                "{err:?}"
            );
            assert!(!e.response.as_ref().unwrap().body.complete);
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn slow_headers_are_cut_at_the_header_timeout() {
    tokio::time::timeout(LIMIT, async {
        let fx = Fixture::with(FixtureOptions {
            tweak: Box::new(|c| c.header_timeout = Duration::from_millis(500)),
            ..FixtureOptions::default()
        })
        .await;
        let mut s = TcpStream::connect(fx.proxy_addr()).await.unwrap();
        s.write_all(b"GET http://plain.example/ HTTP/1.1\r\n")
            .await
            .unwrap();
        let started = std::time::Instant::now();
        let mut out = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
        assert!(read.is_ok(), "the proxy must close a trickling client");
        assert!(started.elapsed() < Duration::from_secs(3));
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn shutdown_lets_in_flight_downloads_finish() {
    tokio::time::timeout(LIMIT, async {
        let fx = Fixture::start().await;
        let mut sender = fx
            .client
            .connect(GOPROXY_HOST, 443, Alpn::H1)
            .await
            .unwrap();
        let uri: http::Uri = url("/bytes/20000000").parse().unwrap();
        let resp = sender.send(get_request(&uri)).await.unwrap();
        let handle = fx.proxy.handle();
        handle.shutdown();
        let (status, bytes) = drain(resp).await.unwrap();
        assert_eq!((status, bytes), (200, 20_000_000));
        // New connections are refused once the listener is closed.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            ProxiedClient::new(fx.proxy_addr(), &[fx.ca.cert_der().clone()])
                .unwrap()
                .get(&url("/bytes/1"), Alpn::Both)
                .await
                .is_err()
        );
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_new_client_connection_reuses_a_pooled_upstream_connection() {
    tokio::time::timeout(LIMIT, async {
        let fx = Fixture::start().await;
        fx.client.get(&url("/bytes/10"), Alpn::Both).await.unwrap();
        // The first client's connection ends; its upstream connection goes to the pool.
        let mut ex = Vec::new();
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            fx.client.get(&url("/bytes/11"), Alpn::Both).await.unwrap();
            ex = fx.exchanges();
            if ex.last().unwrap().connection_id == ex[0].connection_id {
                break;
            }
        }
        let (first, last) = (&ex[0], ex.last().unwrap());
        assert_eq!(last.connection_id, first.connection_id, "{ex:#?}");
        assert!(first.timings.tls.is_some());
        assert!(
            last.timings.tcp.is_none() && last.timings.tls.is_none(),
            "a reused connection has no connect phases"
        );
        assert!(
            last.tls
                .as_ref()
                .unwrap()
                .upstream
                .as_ref()
                .unwrap()
                .verified,
            "its TLS facts are still reported"
        );
        // An HTTP/1.1-only client does not get the pooled h2 connection.
        fx.client.get(&url("/bytes/12"), Alpn::H1).await.unwrap();
        let h1 = fx.wait_exchanges(ex.len() + 1).await.pop().unwrap();
        assert_ne!(h1.connection_id, first.connection_id);
    })
    .await
    .unwrap();
}
